//! From the watch's events to what `jobctl-notify` sends: the notification
//! (summary, run facts, output tail, journal hint) and the channel (the
//! configuration's, with a `webhook_file` read at the moment of sending).
//! The crate delivers one notification over one channel and reports the
//! attempt; the queue, retries and rate limits are the watch's.

use std::path::PathBuf;
use std::time::Duration;

use jobctl_core::notify::{ChannelConfig, Format, Target};
use jobctl_core::watch::{Event, EventKind};
use jobctl_history::output::{Segment, decode};
use jobctl_history::{RunRecord, Status};
use jobctl_notify::{Attempt, Channel, Notification};

use crate::paths::Mode;
use crate::view::format::{json_time as format_utc, signal_name};

/// A notification as queued in the history (JSON), to be sent later, by
/// this or a later pass. jobctl's own shape, independent of how the
/// delivering crate serializes anything.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoredNotification {
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

impl From<&Notification> for StoredNotification {
    fn from(n: &Notification) -> Self {
        StoredNotification {
            event_id: n.event_id.clone(),
            event: n.event.clone(),
            job: n.job.clone(),
            host: n.host.clone(),
            status: n.status.clone(),
            exit_code: n.exit_code,
            signal: n.signal,
            run_id: n.run_id.clone(),
            invocation_id: n.invocation_id.clone(),
            started: n.started.clone(),
            ended: n.ended.clone(),
            duration_ms: n.duration_ms,
            output_tail: n.output_tail.clone(),
            failure_streak: n.failure_streak,
            summary: n.summary.clone(),
            details: n.details.clone(),
            journal_hint: n.journal_hint.clone(),
        }
    }
}

impl From<StoredNotification> for Notification {
    fn from(s: StoredNotification) -> Self {
        Notification {
            event_id: s.event_id,
            event: s.event,
            job: s.job,
            host: s.host,
            status: s.status,
            exit_code: s.exit_code,
            signal: s.signal,
            run_id: s.run_id,
            invocation_id: s.invocation_id,
            started: s.started,
            ended: s.ended,
            duration_ms: s.duration_ms,
            output_tail: s.output_tail,
            failure_streak: s.failure_streak,
            summary: s.summary,
            details: s.details,
            journal_hint: s.journal_hint,
        }
    }
}

/// The longest output tail a notification carries.
pub const TAIL_BYTES: usize = 4096;
/// The most lines of it.
pub const TAIL_LINES: usize = 20;

/// The notification for `event`. `run` is the run it is about, when the
/// history still has it; `output` its stored output (encoded).
pub fn notification(
    event: &Event,
    host: &str,
    run: Option<&RunRecord>,
    output: Option<&[u8]>,
    mode: Mode,
    service: &str,
) -> Notification {
    let job = event.job.as_str();
    let mut details: Vec<(String, String)> = Vec::new();
    let what = run.map(describe_end);
    let mut summary = match event.kind {
        EventKind::Failure => format!(
            "{job} FAILED on {host}{}",
            what.as_deref()
                .map(|w| format!(" ({w})"))
                .unwrap_or_default()
        ),
        EventKind::Lost => {
            format!("{job} LOST on {host} (its run ended without a record: the shim died)")
        }
        EventKind::Recovery => match event.recovers {
            Some(EventKind::Overdue) => format!("{job} RECOVERED on {host} (a run started)"),
            _ => format!("{job} RECOVERED on {host} (a run succeeded)"),
        },
        EventKind::Overdue => {
            let when = event
                .expected
                .map(|e| format_utc(e.expected_us))
                .unwrap_or_default();
            format!("{job} OVERDUE on {host} (expected at {when}, no run started)")
        }
        EventKind::Overrun => {
            let since = run.map(|r| format_utc(r.started_us)).unwrap_or_default();
            format!("{job} still RUNNING on {host} (started {since}, past its warning time)")
        }
        EventKind::Test => format!("jobctl test notification from {host}"),
    };
    if event.reminder > 0 {
        summary.push_str(&format!(" [reminder {}]", event.reminder));
        details.push(("reminder".into(), event.reminder.to_string()));
        details.push(("incident opened".into(), format_utc(event.opened_us)));
    }
    if let Some(recovers) = event.recovers {
        details.push(("recovers".into(), recovers.as_str().into()));
        details.push(("incident opened".into(), format_utc(event.opened_us)));
    }
    if let Some(expected) = event.expected {
        details.push(("expected start".into(), format_utc(expected.expected_us)));
        details.push((
            "grace".into(),
            format!(
                "{}{}",
                jobctl_core::duration::Timespan::from_usec(expected.grace_us.max(0) as u64),
                if expected.derived_grace {
                    " (derived from the schedule)"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(r) = run {
        details.push(("trigger".into(), r.trigger.as_str().into()));
        if r.attempt > 1 {
            details.push(("attempt".into(), r.attempt.to_string()));
        }
        if let Some(error) = &r.error {
            details.push(("error".into(), error.clone()));
        }
    }
    if let Some(run) = &event.run {
        let jobctl = if mode == Mode::User {
            "jobctl --user"
        } else {
            "jobctl"
        };
        details.push((
            "logs".into(),
            format!("{jobctl} logs {job} --run {}", run.id),
        ));
    }
    let status = run.map(|r| r.status.as_str().to_string());
    Notification {
        event_id: event.id.clone(),
        event: event.kind.as_str().into(),
        job: job.into(),
        host: host.into(),
        status,
        exit_code: run.and_then(|r| r.exit_code),
        signal: run.and_then(|r| r.signal),
        run_id: event.run.as_ref().map(|r| r.id.clone()),
        invocation_id: run.and_then(|r| r.invocation_id.clone()),
        started: run.map(|r| format_utc(r.started_us)),
        ended: run.and_then(|r| r.ended_us).map(format_utc),
        duration_ms: run
            .and_then(|r| r.duration_us())
            .map(|us| u64::try_from(us / 1000).unwrap_or(0)),
        output_tail: output.and_then(output_tail),
        failure_streak: event.failure_streak,
        summary,
        details,
        journal_hint: run.and_then(|r| {
            r.invocation_id
                .as_ref()
                .map(|id| journal_hint(mode, nix::unistd::geteuid().as_raw(), service, id))
        }),
    }
}

/// The `journalctl` command for a run's lines (`id` its invocation of the
/// unit `service`), as the user `uid` who reads them: the one `run` and
/// `status` print ([`crate::paths::journal_in`]), which selects the job's
/// lines and the manager's about the run by journald's trusted fields
/// alone, never a line that merely claims the invocation.
fn journal_hint(mode: Mode, uid: u32, service: &str, id: &str) -> String {
    crate::paths::journal_in(mode, uid, service, id, false)
}

/// How a run ended, in a few words: `exit 3`, `timed out`, `killed by
/// SIGKILL`, `could not start: …`.
fn describe_end(run: &RunRecord) -> String {
    match run.status {
        Status::Failed => match run.exit_code {
            Some(code) => format!("exit {code}"),
            None => "failed".into(),
        },
        Status::Timeout => "timed out".into(),
        Status::Killed => match run.signal {
            Some(sig) => format!("killed by {}", signal_name(sig)),
            None => "killed".into(),
        },
        Status::Error => match (&run.error, run.exit_code) {
            (Some(e), _) => format!("could not start: {}", first_line(e)),
            (None, Some(code)) => format!("could not start: exit {code}"),
            _ => "could not start".into(),
        },
        other => other.as_str().into(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The last [`TAIL_LINES`] lines of a run's stored output, at most
/// [`TAIL_BYTES`] bytes (cut at a character boundary), both streams as
/// recorded; `None` when it printed nothing.
pub fn output_tail(encoded: &[u8]) -> Option<String> {
    let segments = decode(encoded).ok()?;
    let mut bytes = Vec::new();
    for segment in segments {
        match segment {
            Segment::Data(_, data) => bytes.extend_from_slice(data),
            Segment::Omitted(n) => {
                bytes.extend_from_slice(format!("\n[… {n} bytes omitted …]\n").as_bytes())
            }
        }
    }
    text_tail(&bytes)
}

/// The last [`TAIL_LINES`] lines of `bytes` (output as printed, e.g. a lost
/// run's lines from the journal), at most [`TAIL_BYTES`] bytes; `None` when
/// there is nothing but line breaks.
pub fn text_tail(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_end_matches('\n');
    if trimmed.is_empty() {
        return None;
    }
    // The start of the last TAIL_LINES lines.
    let start = trimmed
        .rmatch_indices('\n')
        .nth(TAIL_LINES - 1)
        .map_or(0, |(index, _)| index + 1);
    let mut tail = &trimmed[start..];
    if tail.len() > TAIL_BYTES {
        let mut cut = tail.len() - TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = &tail[cut..];
    }
    Some(tail.to_string())
}

/// The channel to send over, or why it cannot be used now (and whether
/// that may change: a secret file not written yet).
pub fn channel(config: &ChannelConfig, mode: Mode) -> Result<Channel, (String, bool)> {
    let timeout = config.timeout.to_std().unwrap_or(Duration::from_secs(10));
    Ok(match &config.target {
        Target::Webhook(url) => Channel::Webhook {
            url: url.expose().to_string(),
            format: format(config.format),
            timeout,
        },
        Target::WebhookFile(path) => Channel::Webhook {
            url: read_secret(path, mode)?,
            format: format(config.format),
            timeout,
        },
        Target::Mail(to) => Channel::Mail {
            to: to.clone(),
            from: config.from.clone(),
            sendmail: PathBuf::from(&config.sendmail),
            timeout,
        },
        Target::Command(argv) => Channel::Command {
            argv: argv.clone(),
            timeout,
        },
    })
}

fn format(f: Format) -> jobctl_notify::Format {
    match f {
        Format::Generic => jobctl_notify::Format::Generic,
        Format::Slack => jobctl_notify::Format::Slack,
        Format::Teams => jobctl_notify::Format::Teams,
    }
}

/// Reads a `webhook_file`: in system mode as root only when it is root's
/// alone (checked again now: it is read at each send), at most 64 KiB, its
/// first line. The error never quotes the file's contents.
fn read_secret(path: &str, mode: Mode) -> Result<String, (String, bool)> {
    use jobctl_core::context::PathInspector;
    if mode == Mode::System && nix::unistd::geteuid().is_root() {
        let steps = crate::load::HostPaths
            .trace(path)
            .map_err(|e| (format!("cannot check the secret file: {e}"), false))?;
        let problems = jobctl_core::ownership::root_only_problems(&steps);
        if !problems.is_empty() {
            let what: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
            return Err((
                format!("refusing the secret file: {}", what.join(", ")),
                false,
            ));
        }
    }
    let text =
        crate::files::read_text_limited(std::path::Path::new(path), 64 * 1024).map_err(|e| {
            let missing = e.kind() == std::io::ErrorKind::NotFound;
            (format!("cannot read the secret file {path}: {e}"), missing)
        })?;
    let url = text.lines().next().unwrap_or("").trim().to_string();
    if url.is_empty() {
        return Err((format!("the secret file {path} is empty"), true));
    }
    Ok(url)
}

/// Sends `n` over the configured channel: an attempt, always (a channel
/// that cannot be used now is a failed attempt saying why).
pub fn send(config: &ChannelConfig, n: &Notification, mode: Mode) -> Attempt {
    match channel(config, mode) {
        Ok(channel) => jobctl_notify::deliver(&channel, n),
        Err((detail, retryable)) => Attempt {
            ok: false,
            retryable,
            http_status: None,
            exit_status: None,
            detail,
            duration_ms: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobctl_history::output::{Encoder, Stream};

    fn encoded(parts: &[(Stream, &str)]) -> Vec<u8> {
        let mut e = Encoder::with_capacity(64);
        for (stream, text) in parts {
            e.data(*stream, text.as_bytes());
        }
        e.finish()
    }

    #[test]
    fn the_tail_is_the_last_lines_within_the_byte_limit() {
        let lines: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let tail = output_tail(&encoded(&[(Stream::Stdout, &lines)])).unwrap();
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(
            tail.starts_with("line 11\n") && tail.ends_with("line 30"),
            "{tail}"
        );
        let short = output_tail(&encoded(&[
            (Stream::Stdout, "a\n"),
            (Stream::Stderr, "b\n"),
        ]))
        .unwrap();
        assert_eq!(short, "a\nb");
        assert_eq!(output_tail(&encoded(&[])), None);
        let long = "é".repeat(5000);
        let tail = output_tail(&encoded(&[(Stream::Stdout, &long)])).unwrap();
        assert!(tail.len() <= TAIL_BYTES && tail.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_journal_hint_is_the_clis() {
        let id = "0123456789abcdef0123456789abcdef";
        let unit = "jobctl-backup.service";
        assert_eq!(
            journal_hint(Mode::System, 0, unit, id),
            format!(
                "journalctl _SYSTEMD_UNIT={unit} _SYSTEMD_INVOCATION_ID={id} + _PID=1 INVOCATION_ID={id}"
            )
        );
        assert_eq!(
            journal_hint(Mode::User, 999, unit, id),
            format!(
                "journalctl _UID=999 _SYSTEMD_USER_UNIT={unit} _SYSTEMD_INVOCATION_ID={id} \
                 + _UID=999 USER_INVOCATION_ID={id}"
            )
        );
    }
}
