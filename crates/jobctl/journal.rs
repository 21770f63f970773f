//! The shim's warnings when bookkeeping fails: a structured journal entry
//! (tracing-journald) that carries the whole run record, so nothing is lost
//! when the history database cannot be written; a structured line on stderr
//! when no journal answers (a container, a bare machine, a test).
//!
//! Journal fields: `JOBCTL_JOB`, `JOBCTL_RUN_ID`, `JOBCTL_STATUS`,
//! `JOBCTL_EXIT_CODE`, `JOBCTL_SIGNAL`, `JOBCTL_TRIGGER`, `JOBCTL_ATTEMPT`,
//! `JOBCTL_INVOCATION_ID`, `JOBCTL_STARTED`, `JOBCTL_ENDED`,
//! `JOBCTL_DURATION_US`, `JOBCTL_OUTPUT_BYTES`, `JOBCTL_RUN_ERROR`,
//! `JOBCTL_DB`, `JOBCTL_DB_ERROR`, plus `MESSAGE`.

use std::io::Write;
use std::path::Path;

use jobctl_history::RunRecord;

use crate::env;
use crate::history_db::format_utc;

/// Where warnings go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Journal,
    Stderr,
    Auto,
}

fn target() -> Target {
    match env::var_os(env::WARNINGS)
        .as_deref()
        .and_then(|v| v.to_str())
    {
        Some("journal") => Target::Journal,
        Some("stderr") => Target::Stderr,
        _ => Target::Auto,
    }
}

/// Warns that `record` could not be stored in the database at `db` because
/// of `db_error`.
pub fn run_not_recorded(record: &RunRecord, db: &Path, db_error: &str) {
    let message = format!(
        "jobctl exec: warning: run {} of job {} was not recorded in the history: {db_error}",
        record.id, record.job
    );
    warn(message, &fields(record, db, db_error));
}

/// Warns that `record` was stored in the database at `db` without its
/// captured output, because of `reason` (the run's result is in the history;
/// its output is only in the journal, as the command wrote it).
pub fn output_not_stored(record: &RunRecord, db: &Path, reason: &str) {
    let message = format!(
        "jobctl exec: warning: the output of run {} of job {} ({} bytes) was not stored in the history: {reason}",
        record.id, record.job, record.output_bytes
    );
    warn(message, &fields(record, db, reason));
}

/// Sends one warning to the journal, or as a logfmt line to stderr.
fn warn(message: String, fields: &[(&'static str, String)]) {
    if target() != Target::Stderr && to_journal(&message, fields) {
        return;
    }
    let mut line = message;
    for (key, value) in fields {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        line.push_str(&logfmt_value(value));
    }
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn fields(r: &RunRecord, db: &Path, db_error: &str) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("JOBCTL_JOB", r.job.clone()),
        ("JOBCTL_RUN_ID", r.id.to_string()),
        ("JOBCTL_STATUS", r.status.to_string()),
        ("JOBCTL_TRIGGER", r.trigger.to_string()),
        ("JOBCTL_ATTEMPT", r.attempt.to_string()),
        ("JOBCTL_STARTED", format_utc(r.started_us)),
    ];
    if let Some(end) = r.ended_us {
        f.push(("JOBCTL_ENDED", format_utc(end)));
        f.push(("JOBCTL_DURATION_US", (end - r.started_us).to_string()));
    }
    if let Some(code) = r.exit_code {
        f.push(("JOBCTL_EXIT_CODE", code.to_string()));
    }
    if let Some(sig) = r.signal {
        f.push(("JOBCTL_SIGNAL", crate::history_db::signal_name(sig)));
    }
    if let Some(id) = &r.invocation_id {
        f.push(("JOBCTL_INVOCATION_ID", id.clone()));
    }
    if let Some(pid) = r.pid {
        f.push(("JOBCTL_PID", pid.to_string()));
    }
    f.push(("JOBCTL_HOST", r.host.clone()));
    f.push(("JOBCTL_USER", r.user.clone()));
    f.push(("JOBCTL_OUTPUT_BYTES", r.output_bytes.to_string()));
    if let Some(error) = &r.error {
        f.push(("JOBCTL_RUN_ERROR", error.clone()));
    }
    f.push(("JOBCTL_DB", db.display().to_string()));
    f.push(("JOBCTL_DB_ERROR", db_error.to_string()));
    f
}

/// Sends one entry through the native journal protocol; false when no
/// journal answers.
fn to_journal(message: &str, fields: &[(&'static str, String)]) -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    let Ok(layer) = tracing_journald::layer() else {
        return false;
    };
    let layer = layer
        .with_field_prefix(None)
        .with_syslog_identifier("jobctl".to_string());
    let subscriber = tracing_subscriber::registry().with(layer);
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(
            jobctl_job = get("JOBCTL_JOB"),
            jobctl_run_id = get("JOBCTL_RUN_ID"),
            jobctl_status = get("JOBCTL_STATUS"),
            jobctl_trigger = get("JOBCTL_TRIGGER"),
            jobctl_attempt = get("JOBCTL_ATTEMPT"),
            jobctl_started = get("JOBCTL_STARTED"),
            jobctl_ended = get("JOBCTL_ENDED"),
            jobctl_duration_us = get("JOBCTL_DURATION_US"),
            jobctl_exit_code = get("JOBCTL_EXIT_CODE"),
            jobctl_signal = get("JOBCTL_SIGNAL"),
            jobctl_invocation_id = get("JOBCTL_INVOCATION_ID"),
            jobctl_pid = get("JOBCTL_PID"),
            jobctl_host = get("JOBCTL_HOST"),
            jobctl_user = get("JOBCTL_USER"),
            jobctl_output_bytes = get("JOBCTL_OUTPUT_BYTES"),
            jobctl_run_error = get("JOBCTL_RUN_ERROR"),
            jobctl_db = get("JOBCTL_DB"),
            jobctl_db_error = get("JOBCTL_DB_ERROR"),
            "{message}"
        );
    });
    true
}

/// A logfmt value: bare when it has no spaces, quotes or `=`, else quoted
/// with `"` and `\` escaped and control characters written as escapes.
fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if bare {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::logfmt_value;

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(logfmt_value("nightly"), "nightly");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("disk full"), "\"disk full\"");
        assert_eq!(logfmt_value("a\"b\nc"), "\"a\\\"b\\nc\"");
    }
}
