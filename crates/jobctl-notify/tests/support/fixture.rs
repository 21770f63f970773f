//! Notifications the tests share.

#![allow(dead_code)]

use jobctl_notify::Notification;

/// A failed run with every field set.
pub fn failure() -> Notification {
    Notification {
        event_id: "9f2c4e1a".into(),
        event: "failure".into(),
        job: "backup".into(),
        host: "db1".into(),
        status: Some("failed".into()),
        exit_code: Some(3),
        signal: None,
        run_id: Some("r-0001".into()),
        invocation_id: Some("0123456789abcdef0123456789abcdef".into()),
        started: Some("2026-12-01T03:00:00Z".into()),
        ended: Some("2026-12-01T03:01:05Z".into()),
        duration_ms: Some(65_000),
        output_tail: Some("dumping db\nerror: disk full\n".into()),
        failure_streak: 2,
        summary: "backup FAILED on db1 (exit 3)".into(),
        details: vec![("Schedule".into(), "daily".into())],
        journal_hint: Some(
            "journalctl _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef".into(),
        ),
    }
}

/// Everything a user controls, hostile: line breaks to start headers or
/// lines, an escape sequence, Slack and Markdown markup, backticks, a lone
/// ".", non-ASCII, and a tail far longer than any format allows.
pub fn hostile() -> Notification {
    let mut n = failure();
    n.job = "evil\r\nBcc: victim@example.com".into();
    n.summary = "évil <!channel> FAILED\r\nBcc: victim@example.com\nX-Injected: yes".into();
    n.status = Some("failed\nX-Status: injected".into());
    n.host = "db1\u{1b}[31m".into();
    n.details = vec![(
        "Note\r\nX-Detail: injected".into(),
        "a & b <@U123> *bold* `tick`".into(),
    )];
    let mut tail = String::from(
        "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\n.\r\nRCPT TO:<victim@example.com>\n```\nclosing fence\n",
    );
    for i in 0..400 {
        tail.push_str(&format!("line {i} ünïcödé & <tag> ``` \n"));
    }
    n.output_tail = Some(tail);
    n
}
