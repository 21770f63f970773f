//! The command channel and the sendmail runner, with real processes: the
//! event on stdin, the JOBCTL_* variables, exit statuses, and the timeout
//! that kills the whole process group.

#[path = "support/fixture.rs"]
mod fixture;

use std::path::Path;
use std::time::{Duration, Instant};

use jobctl_notify::{Channel, Format, Notification, deliver, payload_at};
use serde_json::Value;

fn sh(script: &str, timeout: Duration) -> Channel {
    Channel::Command {
        argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
        timeout,
    }
}

/// Waits until `path` has content (written by a process we started).
fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True once `pid` is gone or a zombie (killed, waiting for its reaper).
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn the_command_gets_the_event_on_stdin_and_in_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!(
        "cat > {d}/stdin.json; env | grep -E '^JOBCTL_(EVENT|EVENT_ID|EXIT_CODE|HOST|INVOCATION_ID|JOB|RUN_ID|SIGNAL|STATUS|SUMMARY)=' | sort > {d}/env; echo delivered"
    );
    let n = fixture::failure();
    let a = deliver(&sh(&script, Duration::from_secs(10)), &n);
    assert!(a.ok && !a.retryable, "{a:?}");
    assert_eq!(a.exit_status, Some(0));
    assert_eq!(a.detail, "the command /bin/sh exited 0: delivered");
    let stdin = std::fs::read(dir.path().join("stdin.json")).unwrap();
    let mut got: Value = serde_json::from_slice(&stdin).unwrap();
    got["sent_at"] = Value::from("x");
    assert_eq!(got, payload_at(Format::Generic, &n, "x"));
    let env = std::fs::read_to_string(dir.path().join("env")).unwrap();
    assert_eq!(
        env,
        "JOBCTL_EVENT=failure
JOBCTL_EVENT_ID=9f2c4e1a
JOBCTL_EXIT_CODE=3
JOBCTL_HOST=db1
JOBCTL_INVOCATION_ID=0123456789abcdef0123456789abcdef
JOBCTL_JOB=backup
JOBCTL_RUN_ID=r-0001
JOBCTL_SIGNAL=
JOBCTL_STATUS=failed
JOBCTL_SUMMARY=backup FAILED on db1 (exit 3)
"
    );
}

#[test]
fn variables_are_one_line_whatever_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let a = deliver(
        &sh(
            &format!(
                "printf '%s|' \"$JOBCTL_JOB\" \"$JOBCTL_STATUS\" \"$JOBCTL_SUMMARY\" > {d}/v; echo >> {d}/v"
            ),
            Duration::from_secs(10),
        ),
        &fixture::hostile(),
    );
    assert!(a.ok, "{a:?}");
    assert_eq!(
        wait_for_file(&dir.path().join("v")),
        "evil Bcc: victim@example.com|failed X-Status: injected|évil <!channel> FAILED Bcc: victim@example.com X-Injected: yes|\n"
    );
}

#[test]
fn exit_statuses_are_reported_and_classified() {
    let n = fixture::failure();
    let cases = [
        (
            "echo oops >&2; exit 3",
            Some(3),
            true,
            "the command /bin/sh exited 3: oops",
        ),
        ("exit 75", Some(75), true, "the command /bin/sh exited 75"),
        (
            "echo 'bad config' >&2; exit 78",
            Some(78),
            false,
            "the command /bin/sh exited 78: bad config",
        ),
        (
            "exit 127",
            Some(127),
            false,
            "the command /bin/sh exited 127",
        ),
        (
            "kill -TERM $$",
            Some(128 + 15),
            true,
            "the command /bin/sh was killed by SIGTERM",
        ),
    ];
    for (script, status, retryable, detail) in cases {
        let a = deliver(&sh(script, Duration::from_secs(10)), &n);
        assert!(!a.ok, "{script}: {a:?}");
        assert_eq!(
            (a.exit_status, a.retryable),
            (status, retryable),
            "{script}: {a:?}"
        );
        assert_eq!(a.detail, detail, "{script}");
    }
    let missing = Channel::Command {
        argv: vec![
            "/nonexistent/page".into(),
            "--token".into(),
            "SECRET".into(),
        ],
        timeout: Duration::from_secs(10),
    };
    let a = deliver(&missing, &n);
    assert!(!a.ok && !a.retryable && a.exit_status.is_none(), "{a:?}");
    assert!(
        a.detail
            .starts_with("cannot run the command /nonexistent/page: "),
        "{a:?}"
    );
    assert!(
        !a.detail.contains("SECRET"),
        "arguments are never shown: {a:?}"
    );
    let empty = Channel::Command {
        argv: vec![],
        timeout: Duration::from_secs(10),
    };
    let a = deliver(&empty, &n);
    assert!(!a.ok && !a.retryable, "{a:?}");
}

#[test]
fn the_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // A shell that starts a child and a grandchild, then waits forever.
    let script = format!(
        "sleep 1000 & echo $! > {d}/child; sh -c 'sleep 1000 & echo $! > {d}/grandchild; wait' & echo $$ > {d}/leader; wait"
    );
    let timeout = Duration::from_millis(800);
    let start = Instant::now();
    let a = deliver(&sh(&script, timeout), &fixture::failure());
    let took = start.elapsed();
    assert!(!a.ok && a.retryable, "{a:?}");
    assert_eq!(a.exit_status, Some(128 + 9));
    assert_eq!(
        a.detail,
        "the command /bin/sh timed out after 0.8 s; its process group was killed"
    );
    assert!(a.duration_ms >= 800, "{a:?}");
    // Liveness, not speed: it returned.
    assert!(took < timeout + Duration::from_secs(5), "{took:?}");
    for name in ["leader", "child", "grandchild"] {
        let pid: i32 = wait_for_file(&dir.path().join(name))
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dead(pid) {
            assert!(
                Instant::now() < deadline,
                "the {name} ({pid}) survived the timeout"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn a_command_that_reads_nothing_or_floods_its_output_never_blocks_delivery() {
    // 1 MiB of event on stdin that `true` never reads, and a command that
    // writes 50 MB: both finish, only the last output line is kept.
    let n = Notification {
        output_tail: Some("x".repeat(1 << 20)),
        ..fixture::failure()
    };
    let a = deliver(&sh("true", Duration::from_secs(30)), &n);
    assert!(a.ok, "{a:?}");
    let a = deliver(
        &sh(
            "head -c 50000000 /dev/zero | tr '\\0' 'y'; echo; echo last words",
            Duration::from_secs(60),
        ),
        &fixture::failure(),
    );
    assert!(a.ok, "{a:?}");
    assert_eq!(a.detail, "the command /bin/sh exited 0: last words");
    // A background writer that outlives the command does not hold it up.
    let a = deliver(
        &sh("(sleep 30; echo late) & echo done", Duration::from_secs(20)),
        &fixture::failure(),
    );
    assert!(a.ok, "{a:?}");
    assert!(a.duration_ms < 20_000, "{a:?}");
}

/// Writes an executable script through a child process. Written by this
/// process, the file would be open for writing here while another test's
/// thread forks to run a command, and that child would hold the descriptor
/// until its exec: running the script then fails with ETXTBSY ("Text file
/// busy"), as it did in CI.
fn write_script(path: &Path, text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "write_script"])
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "cannot write {path:?}");
}

#[test]
fn mail_goes_to_sendmail_with_t_and_oi() {
    // A stand-in sendmail that records its arguments and the message.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("sendmail");
    let d = dir.path().display();
    write_script(
        &fake,
        &format!("#!/bin/sh\necho \"$@\" > {d}/args\ncat > {d}/message\n"),
    );
    let channel = Channel::Mail {
        to: vec!["ops@example.com".into()],
        from: None,
        sendmail: fake.clone(),
        timeout: Duration::from_secs(10),
    };
    let a = deliver(&channel, &fixture::failure());
    assert!(a.ok, "{a:?}");
    assert_eq!(a.exit_status, Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("args")).unwrap(),
        "-t -oi\n"
    );
    let message = std::fs::read_to_string(dir.path().join("message")).unwrap();
    assert!(
        message
            .starts_with("To: ops@example.com\nSubject: [jobctl] backup FAILED on db1 (exit 3)\n"),
        "{message}"
    );

    // sendmail's own failures: EX_TEMPFAIL retried, EX_NOUSER not.
    for (code, retryable) in [(75, true), (67, false), (1, true)] {
        write_script(
            &fake,
            &format!("#!/bin/sh\ncat >/dev/null\necho 'sendmail: said no' >&2\nexit {code}\n"),
        );
        let a = deliver(&channel, &fixture::failure());
        assert!(
            !a.ok && a.retryable == retryable && a.exit_status == Some(code),
            "{a:?}"
        );
        assert!(
            a.detail
                .ends_with(&format!("exited {code}: sendmail: said no")),
            "{a:?}"
        );
    }
    // Addresses that would add recipients are refused before sendmail runs.
    for bad in [
        "a@b, evil@example.com",
        "ops@example.com\nBcc: evil@example.com",
        "",
    ] {
        let channel = Channel::Mail {
            to: vec![bad.into()],
            from: None,
            sendmail: fake.clone(),
            timeout: Duration::from_secs(10),
        };
        let a = deliver(&channel, &fixture::failure());
        assert!(!a.ok && !a.retryable && a.exit_status.is_none(), "{a:?}");
    }
    let none = Channel::Mail {
        to: vec![],
        from: None,
        sendmail: fake,
        timeout: Duration::from_secs(10),
    };
    assert!(!deliver(&none, &fixture::failure()).ok);
}
