//! STUB of `jobctl-notify`, written by the k-engine branch so that the engine
//! builds and its end-to-end tests run before the real crate (k-deliver's)
//! lands; that crate replaces this one at merge.
//!
//! It has exactly the interface of docs/design.md (knowing.md), and it
//! implements honestly only:
//! - the command channel (the generic payload on stdin, `JOBCTL_*` in the
//!   environment, its process group killed at the timeout);
//! - `payload(Format::Generic, …)`.
//!
//! Webhooks and mail are not built here: `deliver` reports a failed,
//! non-retryable attempt ("not built yet") for them, `payload` of the Slack
//! and Teams formats is `null`, and `mail_message` is empty.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What happened; all text as recorded (the crate escapes for each format).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    pub event_id: String,
    pub event: String,
    pub job: String,
    pub host: String,
    pub status: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub run_id: Option<String>,
    pub invocation_id: Option<String>,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub duration_ms: Option<u64>,
    pub output_tail: Option<String>,
    pub failure_streak: u32,
    pub summary: String,
    pub details: Vec<(String, String)>,
    pub journal_hint: Option<String>,
}

/// The payload formats of webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Generic,
    Slack,
    Teams,
}

/// Where a notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    Webhook {
        url: String,
        format: Format,
        timeout: Duration,
    },
    Mail {
        to: Vec<String>,
        from: Option<String>,
        sendmail: PathBuf,
        timeout: Duration,
    },
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub ok: bool,
    pub retryable: bool,
    pub http_status: Option<u16>,
    pub exit_status: Option<i32>,
    pub detail: String,
    pub duration_ms: u64,
}

/// Delivers `n` over `channel`. Never panics, never blocks past the timeout.
pub fn deliver(channel: &Channel, n: &Notification) -> Attempt {
    let start = Instant::now();
    let mut attempt = match channel {
        Channel::Command { argv, timeout } => run_command(argv, *timeout, n),
        Channel::Webhook { .. } | Channel::Mail { .. } => Attempt {
            ok: false,
            retryable: false,
            http_status: None,
            exit_status: None,
            detail: "not built yet".into(),
            duration_ms: 0,
        },
    };
    attempt.duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    attempt
}

/// The JSON body for `format` (only the generic one in this stub).
pub fn payload(format: Format, n: &Notification) -> Value {
    match format {
        Format::Generic => {
            let details: serde_json::Map<String, Value> = n
                .details
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({
                "version": 1,
                "event_id": n.event_id,
                "event": n.event,
                "job": n.job,
                "host": n.host,
                "status": n.status,
                "exit_code": n.exit_code,
                "signal": n.signal,
                "run_id": n.run_id,
                "invocation_id": n.invocation_id,
                "started": n.started,
                "ended": n.ended,
                "duration_ms": n.duration_ms,
                "output_tail": n.output_tail,
                "failure_streak": n.failure_streak,
                "summary": n.summary,
                "details": details,
                "journal_hint": n.journal_hint,
                "sent_at": jiff::Timestamp::now().to_string(),
            })
        }
        Format::Slack | Format::Teams => Value::Null,
    }
}

/// The RFC 5322 message for the mail channel (not built in this stub).
pub fn mail_message(_to: &[String], _from: &str, _n: &Notification) -> Vec<u8> {
    Vec::new()
}

fn failed(retryable: bool, exit_status: Option<i32>, detail: String) -> Attempt {
    Attempt {
        ok: false,
        retryable,
        http_status: None,
        exit_status,
        detail,
        duration_ms: 0,
    }
}

fn run_command(argv: &[String], timeout: Duration, n: &Notification) -> Attempt {
    let Some((program, args)) = argv.split_first() else {
        return failed(false, None, "the command is empty".into());
    };
    let body = payload(Format::Generic, n).to_string();
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .env("JOBCTL_EVENT", &n.event)
        .env("JOBCTL_JOB", &n.job)
        .env("JOBCTL_STATUS", n.status.as_deref().unwrap_or(""))
        .env(
            "JOBCTL_EXIT_CODE",
            n.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        )
        .env("JOBCTL_RUN_ID", n.run_id.as_deref().unwrap_or(""))
        .env("JOBCTL_EVENT_ID", &n.event_id)
        .env("JOBCTL_HOST", &n.host);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return failed(false, None, format!("cannot start {program}: {e}")),
    };
    let pgid = child.id() as i32;
    // The payload is small (bounded output tail): it fits the pipe, so this
    // write does not wait for the command to read.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(body.as_bytes());
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(status)) => {
            // Reaped: its pid (the group's id) may be reused now, so the
            // group is not signalled.
            match status.code() {
                Some(0) => Attempt {
                    ok: true,
                    retryable: false,
                    http_status: None,
                    exit_status: Some(0),
                    detail: "exit status 0".into(),
                    duration_ms: 0,
                },
                Some(code) => failed(true, Some(code), format!("exit status {code}")),
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    let sig = status.signal().unwrap_or(0);
                    failed(true, None, format!("killed by signal {sig}"))
                }
            }
        }
        Ok(Err(e)) => failed(true, None, format!("cannot wait for {program}: {e}")),
        Err(_) => {
            // Not reaped yet (the waiting thread is still blocked), so the
            // group id still belongs to the command's group.
            kill_group(pgid);
            failed(
                true,
                None,
                format!("timed out after {}s", timeout.as_secs_f64()),
            )
        }
    }
}

fn kill_group(pgid: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group the
        // command was started in (process_group(0)); it touches no memory.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Notification {
        Notification {
            event_id: "00ff".into(),
            event: "failure".into(),
            job: "backup".into(),
            host: "db1".into(),
            status: Some("failed".into()),
            exit_code: Some(3),
            summary: "backup FAILED on db1 (exit 3)".into(),
            ..Notification::default()
        }
    }

    #[test]
    fn the_command_gets_the_payload_and_the_variables() {
        let dir = std::env::temp_dir().join(format!("jobctl-notify-stub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("got");
        let script = format!(
            "cat > {0}; echo \"$JOBCTL_EVENT $JOBCTL_JOB $JOBCTL_EXIT_CODE $JOBCTL_EVENT_ID\" >> {0}",
            out.display()
        );
        let channel = Channel::Command {
            argv: vec!["/bin/sh".into(), "-c".into(), script],
            timeout: Duration::from_secs(10),
        };
        let attempt = deliver(&channel, &event());
        assert!(attempt.ok, "{attempt:?}");
        let got = std::fs::read_to_string(&out).unwrap();
        let (json, vars) = got.rsplit_once('}').unwrap();
        let body: Value = serde_json::from_str(&format!("{json}}}")).unwrap();
        assert_eq!(body["event"], "failure");
        assert_eq!(body["exit_code"], 3);
        assert_eq!(vars.trim(), "failure backup 3 00ff");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failing_command_is_retryable_and_a_missing_one_is_not() {
        let fail = Channel::Command {
            argv: vec!["/bin/sh".into(), "-c".into(), "exit 7".into()],
            timeout: Duration::from_secs(10),
        };
        let a = deliver(&fail, &event());
        assert_eq!((a.ok, a.retryable, a.exit_status), (false, true, Some(7)));
        let missing = Channel::Command {
            argv: vec!["/nonexistent/jobctl-notify-test".into()],
            timeout: Duration::from_secs(10),
        };
        let a = deliver(&missing, &event());
        assert!(!a.ok && !a.retryable, "{a:?}");
    }

    #[test]
    fn a_command_past_its_timeout_is_killed() {
        let slow = Channel::Command {
            argv: vec!["/bin/sleep".into(), "30".into()],
            timeout: Duration::from_millis(200),
        };
        let start = Instant::now();
        let a = deliver(&slow, &event());
        assert!(
            !a.ok && a.retryable && a.detail.contains("timed out"),
            "{a:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }
}
