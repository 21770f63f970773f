//! The JSON bodies: exact for a fixed notification (written by hand, not
//! copied from output), and the Slack and Teams bodies checked against the
//! structure and limits their documentation gives (Slack's Block Kit
//! reference; the Adaptive Card schema and Teams' webhook format), also for
//! hostile input.

#[path = "support/fixture.rs"]
mod fixture;

use jobctl_notify::{Format, Notification, payload, payload_at};
use serde_json::{Value, json};

#[test]
fn generic_payload_is_exactly_the_documented_object() {
    let got = payload_at(Format::Generic, &fixture::failure(), "2026-12-01T03:01:06Z");
    let want = json!({
        "version": 1,
        "event_id": "9f2c4e1a",
        "event": "failure",
        "job": "backup",
        "host": "db1",
        "status": "failed",
        "exit_code": 3,
        "signal": null,
        "signal_name": null,
        "run_id": "r-0001",
        "invocation_id": "0123456789abcdef0123456789abcdef",
        "started": "2026-12-01T03:00:00Z",
        "ended": "2026-12-01T03:01:05Z",
        "duration_ms": 65000,
        "output_tail": "dumping db\nerror: disk full\n",
        "failure_streak": 2,
        "summary": "backup FAILED on db1 (exit 3)",
        "details": [{"label": "Schedule", "value": "daily"}],
        "journal_hint": "journalctl _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef",
        "sent_at": "2026-12-01T03:01:06Z",
    });
    assert_eq!(got, want);
}

#[test]
fn generic_payload_keeps_recorded_text_as_it_is() {
    let n = fixture::hostile();
    let got = payload_at(Format::Generic, &n, "x");
    assert_eq!(got["job"], n.job.as_str());
    assert_eq!(got["output_tail"], n.output_tail.as_deref().unwrap());
    // JSON escapes the control characters: the serialized body has none.
    let text = got.to_string();
    assert!(!text.chars().any(|c| c.is_control()), "{text}");
    let signal = payload_at(
        Format::Generic,
        &Notification {
            signal: Some(9),
            ..fixture::failure()
        },
        "x",
    );
    assert_eq!(signal["signal"], 9);
    assert_eq!(signal["signal_name"], "SIGKILL");
}

#[test]
fn payload_stamps_the_time_it_is_made() {
    let got = payload(Format::Generic, &fixture::failure());
    let sent_at = got["sent_at"].as_str().unwrap();
    // RFC 3339 UTC, to the second: 2026-12-01T03:01:06Z.
    assert_eq!(sent_at.len(), 20, "{sent_at}");
    assert!(
        sent_at.ends_with('Z') && sent_at.as_bytes()[10] == b'T',
        "{sent_at}"
    );
}

#[test]
fn slack_payload_is_exactly_this_for_a_failure() {
    let got = payload_at(Format::Slack, &fixture::failure(), "x");
    let want = json!({
        "text": "backup FAILED on db1 (exit 3)",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "🔴 backup FAILED on db1 (exit 3)", "emoji": true}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Status*\nfailed (exit 3)"},
                {"type": "mrkdwn", "text": "*Job*\nbackup"},
                {"type": "mrkdwn", "text": "*Host*\ndb1"},
                {"type": "mrkdwn", "text": "*Event*\nfailure"},
                {"type": "mrkdwn", "text": "*Started*\n2026-12-01T03:00:00Z"},
                {"type": "mrkdwn", "text": "*Ended*\n2026-12-01T03:01:05Z"},
                {"type": "mrkdwn", "text": "*Duration*\n1 min 5 s"},
                {"type": "mrkdwn", "text": "*Failures in a row*\n2"},
                {"type": "mrkdwn", "text": "*Schedule*\ndaily"},
                {"type": "mrkdwn", "text": "*Run*\nr-0001"},
            ]},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Invocation:* 0123456789abcdef0123456789abcdef"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Output (last lines)*\n```\ndumping db\nerror: disk full\n```"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "More: `journalctl _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef`"}]},
        ],
    });
    assert_eq!(got, want, "{got:#}");
    check_slack(&got).unwrap();
}

#[test]
fn teams_payload_is_exactly_this_for_a_failure() {
    let got = payload_at(Format::Teams, &fixture::failure(), "x");
    let want = json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "fallbackText": "backup FAILED on db1 (exit 3)",
                "msteams": {"width": "Full"},
                "body": [
                    {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": "🔴 backup FAILED on db1 (exit 3)", "weight": "Bolder", "size": "Medium", "color": "Attention"}]},
                    {"type": "FactSet", "facts": [
                        {"title": "Status", "value": "failed (exit 3)"},
                        {"title": "Job", "value": "backup"},
                        {"title": "Host", "value": "db1"},
                        {"title": "Event", "value": "failure"},
                        {"title": "Started", "value": "2026-12-01T03:00:00Z"},
                        {"title": "Ended", "value": "2026-12-01T03:01:05Z"},
                        {"title": "Duration", "value": "1 min 5 s"},
                        {"title": "Failures in a row", "value": "2"},
                        {"title": "Schedule", "value": "daily"},
                        {"title": "Run", "value": "r-0001"},
                        {"title": "Invocation", "value": "0123456789abcdef0123456789abcdef"},
                    ]},
                    {"type": "TextBlock", "text": "Output (last lines)", "weight": "Bolder", "wrap": true, "spacing": "Medium"},
                    {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": "dumping db\nerror: disk full", "fontType": "Monospace", "size": "Small"}]},
                    {"type": "RichTextBlock", "inlines": [
                        {"type": "TextRun", "text": "More: ", "isSubtle": true},
                        {"type": "TextRun", "text": "journalctl _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef", "fontType": "Monospace", "isSubtle": true},
                    ]},
                ],
            },
        }],
    });
    assert_eq!(got, want, "{got:#}");
    check_teams(&got).unwrap();
}

#[test]
fn chat_payloads_of_every_event_kind_fit_the_documented_shapes() {
    let mut cases = vec![fixture::failure(), fixture::hostile()];
    for event in ["recovery", "overdue", "lost", "overrun", "test"] {
        cases.push(Notification {
            event: event.into(),
            status: None,
            exit_code: None,
            output_tail: None,
            details: vec![],
            journal_hint: None,
            ..fixture::failure()
        });
    }
    // Nothing but the required fields.
    cases.push(Notification::default());
    // Many details: more facts than Slack's ten fields.
    cases.push(Notification {
        details: (0..30)
            .map(|i| (format!("k{i}"), "v".repeat(3000)))
            .collect(),
        summary: "s".repeat(1000),
        ..fixture::failure()
    });
    for n in &cases {
        let slack = payload_at(Format::Slack, n, "x");
        check_slack(&slack).unwrap_or_else(|e| panic!("{e}\n{slack:#}"));
        let teams = payload_at(Format::Teams, n, "x");
        check_teams(&teams).unwrap_or_else(|e| panic!("{e}\n{teams:#}"));
    }
}

#[test]
fn hostile_text_cannot_mention_link_or_escape_the_code_block() {
    let n = fixture::hostile();
    let slack = payload_at(Format::Slack, &n, "x");
    // Mentions and links are parsed in mrkdwn and the top-level text; the
    // header is plain_text, shown as it is.
    let mut parsed = slack.clone();
    parsed["blocks"].as_array_mut().unwrap().remove(0);
    let all = parsed.to_string();
    assert!(
        !all.contains("<!channel>") && !all.contains("<@U123>"),
        "{all}"
    );
    assert!(all.contains("&lt;!channel&gt;"), "{all}");
    let blocks = slack["blocks"].as_array().unwrap();
    let output = blocks
        .iter()
        .filter_map(|b| b["text"]["text"].as_str())
        .find(|t| t.starts_with("*Output"))
        .unwrap();
    // Exactly one code block: the fences of the output are broken up.
    assert_eq!(output.matches("```").count(), 2, "{output}");
    assert!(output.ends_with("\n```"), "{output}");
    // The end of the output is kept, the start dropped, the escape visible.
    assert!(output.contains("line 399 "), "{output}");
    assert!(!output.contains("line 0 "), "{output}");
    // The header is one line.
    let title = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(!title.contains('\n') && !title.contains('\r'), "{title:?}");
    let teams = payload_at(Format::Teams, &n, "x");
    let text = teams.to_string();
    assert!(!text.contains("\\u001b"), "{text}");
    // An escape sequence in the output is shown, not sent raw.
    let n = Notification {
        output_tail: Some("\u{1b}[2Jboom\r\n".into()),
        ..fixture::failure()
    };
    for format in [Format::Slack, Format::Teams] {
        let text = payload_at(format, &n, "x").to_string();
        assert!(!text.contains("\\u001b"), "{text}");
        assert!(text.contains(r"\\x1b[2Jboom"), "{text}");
    }
}

// ---- The documented structures, by hand ----

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

fn keys_within(v: &Value, allowed: &[&str], what: &str) -> Result<(), String> {
    let obj = v.as_object().ok_or(format!("{what} is not an object"))?;
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{what} has an undocumented key {k:?}"));
        }
    }
    Ok(())
}

/// A composition text object: `plain_text` or `mrkdwn`, 1..=max characters;
/// `emoji` only on plain_text, `verbatim` only on mrkdwn. mrkdwn must have
/// `&`, `<`, `>` escaped (we write no links or mentions of our own).
fn check_text(t: &Value, max: usize, only: Option<&str>, what: &str) -> Result<(), String> {
    let kind = t["type"].as_str().unwrap_or_default();
    let allowed: &[&str] = match kind {
        "plain_text" => &["type", "text", "emoji"],
        "mrkdwn" => &["type", "text", "verbatim"],
        other => return Err(format!("{what}: text type {other:?}")),
    };
    if only.is_some_and(|o| o != kind) {
        return Err(format!("{what}: must be {only:?}, is {kind}"));
    }
    keys_within(t, allowed, what)?;
    let text = t["text"].as_str().ok_or(format!("{what}: no text"))?;
    let n = chars(&t["text"]);
    if n == 0 || n > max {
        return Err(format!("{what}: {n} characters (1..={max})"));
    }
    if kind == "mrkdwn" {
        if text.contains('<') || text.contains('>') {
            return Err(format!("{what}: unescaped < or > in mrkdwn: {text}"));
        }
        for (i, _) in text.match_indices('&') {
            let rest = &text[i..];
            if !["&amp;", "&lt;", "&gt;"]
                .iter()
                .any(|e| rest.starts_with(e))
            {
                return Err(format!("{what}: unescaped & in mrkdwn: {text}"));
            }
        }
    }
    Ok(())
}

/// Slack incoming webhook body (Block Kit reference): `text` (the
/// notification fallback) and at most 50 blocks; header: plain_text ≤ 150;
/// section: `text` ≤ 3000 and/or 1..=10 `fields` ≤ 2000 each; context:
/// 1..=10 elements; divider.
fn check_slack(v: &Value) -> Result<(), String> {
    keys_within(v, &["text", "blocks"], "message")?;
    if chars(&v["text"]) == 0 {
        return Err("message: no fallback text".into());
    }
    let blocks = v["blocks"].as_array().ok_or("message: no blocks")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!("{} blocks (1..=50)", blocks.len()));
    }
    if blocks[0]["type"] != "header" {
        return Err("the summary is not first".into());
    }
    for (i, b) in blocks.iter().enumerate() {
        let what = format!("block {i}");
        match b["type"].as_str().unwrap_or_default() {
            "header" => {
                keys_within(b, &["type", "text", "block_id"], &what)?;
                check_text(&b["text"], 150, Some("plain_text"), &what)?;
            }
            "section" => {
                keys_within(
                    b,
                    &["type", "text", "fields", "block_id", "accessory"],
                    &what,
                )?;
                let text = b.get("text");
                let fields = b.get("fields");
                if text.is_none() && fields.is_none() {
                    return Err(format!("{what}: a section needs text or fields"));
                }
                if let Some(t) = text {
                    check_text(t, 3000, None, &what)?;
                }
                if let Some(f) = fields {
                    let f = f.as_array().ok_or(format!("{what}: fields not a list"))?;
                    if f.is_empty() || f.len() > 10 {
                        return Err(format!("{what}: {} fields (1..=10)", f.len()));
                    }
                    for t in f {
                        check_text(t, 2000, None, &what)?;
                    }
                }
            }
            "context" => {
                keys_within(b, &["type", "elements", "block_id"], &what)?;
                let e = b["elements"]
                    .as_array()
                    .ok_or(format!("{what}: no elements"))?;
                if e.is_empty() || e.len() > 10 {
                    return Err(format!("{what}: {} elements (1..=10)", e.len()));
                }
                for t in e {
                    check_text(t, 3000, None, &what)?;
                }
            }
            "divider" => keys_within(b, &["type", "block_id"], &what)?,
            other => return Err(format!("{what}: unexpected block type {other:?}")),
        }
    }
    Ok(())
}

const SPACING: &[&str] = &[
    "None",
    "Small",
    "Default",
    "Medium",
    "Large",
    "ExtraLarge",
    "Padding",
];
const WEIGHT: &[&str] = &["Default", "Lighter", "Bolder"];
const SIZE: &[&str] = &["Default", "Small", "Medium", "Large", "ExtraLarge"];
const COLOR: &[&str] = &[
    "Default",
    "Dark",
    "Light",
    "Accent",
    "Good",
    "Warning",
    "Attention",
];
const FONT: &[&str] = &["Default", "Monospace"];

fn check_enum(v: &Value, key: &str, allowed: &[&str], what: &str) -> Result<(), String> {
    match v.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(other) => Err(format!("{what}: {key} = {other} is not one of {allowed:?}")),
    }
}

fn check_style(v: &Value, what: &str) -> Result<(), String> {
    check_enum(v, "weight", WEIGHT, what)?;
    check_enum(v, "size", SIZE, what)?;
    check_enum(v, "color", COLOR, what)?;
    check_enum(v, "fontType", FONT, what)?;
    check_enum(v, "spacing", SPACING, what)?;
    for key in ["wrap", "isSubtle"] {
        if v.get(key).is_some_and(|b| !b.is_boolean()) {
            return Err(format!("{what}: {key} not a boolean"));
        }
    }
    Ok(())
}

/// Teams incoming webhooks and Workflows: `{"type": "message",
/// "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
/// "content": CARD}]}`; the card an AdaptiveCard of version ≤ 1.5 (Teams'
/// highest) whose body uses TextBlock (text), FactSet (facts of title and
/// value), RichTextBlock (1.2; inlines of TextRun) with their documented
/// properties and values; the whole message under Teams' 28 KB.
fn check_teams(v: &Value) -> Result<(), String> {
    keys_within(v, &["type", "attachments", "summary"], "message")?;
    if v["type"] != "message" {
        return Err("type is not message".into());
    }
    let atts = v["attachments"].as_array().ok_or("no attachments")?;
    if atts.len() != 1 {
        return Err(format!("{} attachments", atts.len()));
    }
    let att = &atts[0];
    keys_within(att, &["contentType", "contentUrl", "content"], "attachment")?;
    if att["contentType"] != "application/vnd.microsoft.card.adaptive" {
        return Err("not an adaptive card attachment".into());
    }
    let card = &att["content"];
    keys_within(
        card,
        &[
            "$schema",
            "type",
            "version",
            "body",
            "fallbackText",
            "msteams",
            "speak",
            "lang",
        ],
        "card",
    )?;
    if card["type"] != "AdaptiveCard" {
        return Err("content is not an AdaptiveCard".into());
    }
    let version = card["version"].as_str().ok_or("no version")?;
    let minor: u32 = version
        .strip_prefix("1.")
        .and_then(|m| m.parse().ok())
        .ok_or(format!("version {version}"))?;
    if minor > 5 {
        return Err(format!("version {version} is newer than Teams renders"));
    }
    let body = card["body"].as_array().ok_or("no body")?;
    if body.is_empty() {
        return Err("empty body".into());
    }
    for (i, e) in body.iter().enumerate() {
        let what = format!("element {i}");
        match e["type"].as_str().unwrap_or_default() {
            "TextBlock" => {
                keys_within(
                    e,
                    &[
                        "type", "text", "wrap", "weight", "size", "color", "isSubtle", "fontType",
                        "spacing", "maxLines",
                    ],
                    &what,
                )?;
                if chars(&e["text"]) == 0 {
                    return Err(format!("{what}: no text"));
                }
                check_style(e, &what)?;
            }
            "FactSet" => {
                keys_within(e, &["type", "facts", "spacing"], &what)?;
                let facts = e["facts"].as_array().ok_or(format!("{what}: no facts"))?;
                for f in facts {
                    keys_within(f, &["title", "value"], &what)?;
                    if !f["title"].is_string() || !f["value"].is_string() {
                        return Err(format!("{what}: a fact needs title and value strings"));
                    }
                }
            }
            "RichTextBlock" => {
                if minor < 2 {
                    return Err(format!("{what}: RichTextBlock needs version 1.2"));
                }
                keys_within(e, &["type", "inlines", "spacing"], &what)?;
                let inlines = e["inlines"]
                    .as_array()
                    .ok_or(format!("{what}: no inlines"))?;
                for r in inlines {
                    keys_within(
                        r,
                        &[
                            "type",
                            "text",
                            "weight",
                            "size",
                            "color",
                            "isSubtle",
                            "fontType",
                            "italic",
                            "strikethrough",
                            "highlight",
                        ],
                        &what,
                    )?;
                    if r["type"] != "TextRun" || !r["text"].is_string() {
                        return Err(format!("{what}: inlines must be TextRuns with text"));
                    }
                    check_style(r, &what)?;
                }
            }
            other => return Err(format!("{what}: unexpected element {other:?}")),
        }
    }
    let size = v.to_string().len();
    if size > 28_000 {
        return Err(format!("{size} bytes, over Teams' 28 KB"));
    }
    Ok(())
}
