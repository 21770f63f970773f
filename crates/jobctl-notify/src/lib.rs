//! Delivers ONE notification over ONE channel and reports the attempt.
//!
//! An adapter at the edge (docs/design.md): it knows nothing of jobs, runs or
//! the history. The binary maps an event of the watch into a
//! [`Notification`], a configured channel into a [`Channel`], and records the
//! [`Attempt`] that [`deliver`] returns. Retries, backoff and rate limits are
//! the caller's; this crate says whether a failed attempt is worth retrying.
//!
//! - **Webhook**: one HTTP POST of a JSON body ([`payload`]: the generic
//!   object, Slack's `text` + `blocks`, or a Teams message carrying an Adaptive
//!   Card). HTTPS is verified against the host's CA store; redirects are
//!   followed only to the same origin and only when they keep the method
//!   (307/308). The URL's path, query and credentials never appear in an
//!   [`Attempt`]: webhook secrets live there.
//! - **Mail**: an RFC 5322 message ([`mail_message`]) piped to
//!   `sendmail -t -oi`.
//! - **Command**: an argv run with the generic payload on its standard input
//!   and `JOBCTL_*` variables, in a process group of its own that is killed at
//!   the timeout.
//!
//! [`deliver`] never panics and never blocks past the channel's timeout (plus
//! the few milliseconds it takes to kill and reap a process).

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod format;
mod http;
mod mail;
mod process;
mod text;

pub use format::{payload, payload_at};
pub use mail::{mail_message, mail_message_at};

/// The schema version of the generic JSON payload (`"version"`).
pub const PAYLOAD_VERSION: u32 = 1;

/// The timeout of a channel that sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The sendmail(8) of a mail channel that names none.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// What happened, as recorded; the crate escapes it for each format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    /// Idempotency key, stable for the same event (hex).
    pub event_id: String,
    /// `failure`, `recovery`, `overdue`, `lost`, `overrun` or `test`.
    pub event: String,
    pub job: String,
    pub host: String,
    /// The run's status (`failed`, `timeout`, …); `None` for overdue and test.
    pub status: Option<String>,
    pub exit_code: Option<i32>,
    /// A signal number; the formats name it (`SIGKILL`).
    pub signal: Option<i32>,
    pub run_id: Option<String>,
    pub invocation_id: Option<String>,
    /// RFC 3339, UTC.
    pub started: Option<String>,
    pub ended: Option<String>,
    pub duration_ms: Option<u64>,
    /// The last lines of the run's output, already bounded by the caller
    /// (≤ 4 KiB, ≤ 20 lines); the chat formats bound it again to their limits.
    pub output_tail: Option<String>,
    pub failure_streak: u32,
    /// One human line, e.g. "backup FAILED on db1 (exit 3)".
    pub summary: String,
    /// Extra labelled facts, in order (expected start, grace, …).
    pub details: Vec<(String, String)>,
    /// How to see more, e.g. "journalctl _SYSTEMD_INVOCATION_ID=…".
    pub journal_hint: Option<String>,
}

/// The body format of a webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object with every field ([`PAYLOAD_VERSION`]).
    #[default]
    Generic,
    /// Slack incoming webhooks: `text` and `blocks`.
    Slack,
    /// Microsoft Teams (incoming webhook connectors and Workflows): a
    /// `message` with an Adaptive Card attachment.
    Teams,
}

impl Format {
    /// Every format with its configuration name.
    pub const ALL: [(&'static str, Format); 3] = [
        ("generic", Format::Generic),
        ("slack", Format::Slack),
        ("teams", Format::Teams),
    ];

    /// The format of a configuration name (`"generic"`, `"slack"`, `"teams"`).
    pub fn from_name(name: &str) -> Option<Format> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The configuration name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Generic => "generic",
            Format::Slack => "slack",
            Format::Teams => "teams",
        }
    }
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
        /// `None`: no `From:` header; sendmail fills it in (the user running
        /// the watch, at the mail system's own domain).
        from: Option<String>,
        sendmail: PathBuf,
        timeout: Duration,
    },
    Command {
        argv: Vec<String>,
        timeout: Duration,
    },
}

/// What one delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attempt {
    pub ok: bool,
    /// Worth trying again later: 5xx, 408, 429, timeouts, refused or reset
    /// connections, TLS failures, a temporary failure of sendmail or a
    /// command. Not: other 4xx, a redirect not followed, an invalid channel.
    pub retryable: bool,
    pub http_status: Option<u16>,
    /// sendmail's or the command's exit status (128 + N when killed by
    /// signal N).
    pub exit_status: Option<i32>,
    /// Short, one line, printable ASCII; never the webhook URL's path, query
    /// or credentials.
    pub detail: String,
    pub duration_ms: u64,
}

/// Delivers `n` over `channel` once. Never panics; returns within the
/// channel's timeout (plus the time to kill and reap a process at it).
pub fn deliver(channel: &Channel, n: &Notification) -> Attempt {
    let start = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match channel {
        Channel::Webhook {
            url,
            format,
            timeout,
        } => http::post(url, *format, *timeout, n, start),
        Channel::Mail {
            to,
            from,
            sendmail,
            timeout,
        } => mail::send(to, from.as_deref(), sendmail, *timeout, n, start),
        Channel::Command { argv, timeout } => process::command(argv, *timeout, n, start),
    }));
    let mut attempt = outcome.unwrap_or_else(|_| Outcome {
        // A bug of ours: retrying will hit it again.
        detail: "internal error while delivering (a bug in jobctl; see its stderr)".into(),
        ..Outcome::default()
    });
    attempt.detail = text::detail(&attempt.detail);
    Attempt {
        ok: attempt.ok,
        retryable: !attempt.ok && attempt.retryable,
        http_status: attempt.http_status,
        exit_status: attempt.exit_status,
        detail: attempt.detail,
        duration_ms: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}

/// An attempt before its duration is measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub ok: bool,
    pub retryable: bool,
    pub http_status: Option<u16>,
    pub exit_status: Option<i32>,
    pub detail: String,
}

impl Outcome {
    pub(crate) fn failed(retryable: bool, detail: impl Into<String>) -> Outcome {
        Outcome {
            retryable,
            detail: detail.into(),
            ..Outcome::default()
        }
    }
}
