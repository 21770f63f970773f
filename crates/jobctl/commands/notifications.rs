//! `jobctl notifications [JOB]`: the notification queue as the watch left
//! it — every event, the channel it went to, its state, and every attempt
//! with its result (HTTP status, sendmail's or the command's exit status).

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use jobctl_history::notify::{AttemptRecord, Delivery};
use jobctl_history::{OpenMode, Store};
use serde::Serialize;

use crate::commands::watch::notify_database;
use crate::error::{CliError, CliResult};
use crate::history_db;
use crate::view::format::json_time as format_utc;

/// A time in the host's zone, as every table shows it.
fn format_local(us: i64) -> String {
    crate::view::format::local_time(us, &crate::zones::local_zone())
}
use crate::output::{self, Lines};
use crate::paths::{Mode, Paths};

/// Show notifications and every attempt to deliver them, newest first.
///
/// One line per event and channel: when the event was queued, the job, the
/// event (failure, recovery, overdue, lost, overrun), the channel, its state
/// (pending, sent, given-up), the attempts made, the last result (HTTP
/// status, exit status of sendmail or the command, and detail) and, while
/// pending, when the next attempt is due. --attempts lists each attempt;
/// --json always includes them.
///
/// Examples:
///   jobctl notifications
///   jobctl notifications backup --attempts
///   jobctl notifications --json | jq '.notifications[] | select(.state == "given-up")'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct NotificationsArgs {
    /// Only this job's notifications.
    #[arg(value_name = "JOB")]
    pub job: Option<String>,

    /// At most this many (event, channel) lines (0: all).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub limit: usize,

    /// List every attempt under its notification.
    #[arg(long)]
    pub attempts: bool,

    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct NotificationView {
    event_id: String,
    job: String,
    event: String,
    channel: String,
    created: String,
    summary: String,
    run_id: Option<String>,
    state: String,
    attempts: u32,
    next_attempt: Option<String>,
    last_attempt: Option<String>,
    http_status: Option<u16>,
    exit_status: Option<i32>,
    detail: Option<String>,
    attempts_made: Vec<AttemptView>,
}

#[derive(Debug, Serialize)]
struct AttemptView {
    at: String,
    ok: bool,
    retryable: bool,
    http_status: Option<u16>,
    exit_status: Option<i32>,
    detail: String,
    duration_ms: u64,
}

impl From<&AttemptRecord> for AttemptView {
    fn from(a: &AttemptRecord) -> Self {
        AttemptView {
            at: format_utc(a.at_us),
            ok: a.ok,
            retryable: a.retryable,
            http_status: a.http_status,
            exit_status: a.exit_status,
            detail: a.detail.clone(),
            duration_ms: a.duration_ms,
        }
    }
}

pub fn run(paths: &Paths, args: NotificationsArgs) -> CliResult {
    let db = notify_database(paths);
    if !db.exists() {
        if let Some(job) = &args.job {
            super::note_if_no_such_job(paths, job);
        }
        if args.json {
            output::print_json_host("notifications", &serde_json::json!({ "notifications": [] }))?;
        } else {
            output::print_text("No notifications yet.\n")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = Store::open_notify(&db, OpenMode::Read, history_db::READ_BUSY_TIMEOUT)
        .with_context(|| format!("cannot read the notifications in {}", db.display()))
        .map_err(|e| {
            let err = CliError::failure(e);
            if paths.mode == Mode::System && !nix::unistd::geteuid().is_root() {
                err.hint("the system watch's queue is in root's history: run as root, or use --user for your own jobs")
            } else {
                err
            }
        })?;
    let deliveries = store
        .snapshot(|store| {
            let list = store.deliveries(args.job.as_deref(), args.limit)?;
            let mut out = Vec::with_capacity(list.len());
            for d in list {
                let attempts = store.attempts_of(&d.event_id, &d.channel)?;
                out.push((d, attempts));
            }
            Ok(out)
        })
        .map_err(CliError::failure)?;
    if deliveries.is_empty()
        && let Some(job) = &args.job
    {
        super::note_if_no_such_job(paths, job);
    }
    if args.json {
        let views: Vec<NotificationView> = deliveries.iter().map(|(d, a)| view(d, a)).collect();
        output::print_json_host(
            "notifications",
            &serde_json::json!({ "notifications": views }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if deliveries.is_empty() {
        output::print_text("No notifications yet.\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows: Vec<Vec<String>> = vec![
        [
            "QUEUED",
            "JOB",
            "EVENT",
            "CHANNEL",
            "STATE",
            "TRIES",
            "LAST RESULT",
            "NEXT ATTEMPT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let mut attempt_lines: Vec<Vec<String>> = Vec::new();
    for (d, attempts) in &deliveries {
        rows.push(vec![
            format_local(d.created_us),
            d.job.clone(),
            d.kind.clone(),
            d.channel.clone(),
            d.state.clone(),
            d.attempts.to_string(),
            result(
                d.http_status,
                d.exit_status,
                d.detail.as_deref().unwrap_or("-"),
            ),
            d.next_us
                .filter(|_| d.state == "pending")
                .map_or("-".into(), format_local),
        ]);
        attempt_lines.push(
            attempts
                .iter()
                .map(|a| {
                    format!(
                        "    {} {} ({} ms): {}",
                        format_local(a.at_us),
                        if a.ok {
                            "ok"
                        } else if a.retryable {
                            "failed, will retry"
                        } else {
                            "failed"
                        },
                        a.duration_ms,
                        result(a.http_status, a.exit_status, &a.detail)
                    )
                })
                .collect(),
        );
    }
    let mut widths = vec![0usize; rows[0].len()];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (col, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if col + 1 < row.len() {
                line.push_str(&" ".repeat(widths[col] - cell.chars().count() + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
        if args.attempts && i > 0 {
            for a in &attempt_lines[i - 1] {
                text.push_str(a);
                text.push('\n');
            }
        }
    }
    // Details quote what channels answered and what jobs printed.
    output::print_text(&output::escape(&text, Lines::Keep))?;
    Ok(ExitCode::SUCCESS)
}

fn view(d: &Delivery, attempts: &[AttemptRecord]) -> NotificationView {
    NotificationView {
        event_id: d.event_id.clone(),
        job: d.job.clone(),
        event: d.kind.clone(),
        channel: d.channel.clone(),
        created: format_utc(d.created_us),
        summary: d.summary.clone(),
        run_id: d.run_id.clone(),
        state: d.state.clone(),
        attempts: d.attempts,
        next_attempt: d.next_us.filter(|_| d.state == "pending").map(format_utc),
        last_attempt: d.last_us.map(format_utc),
        http_status: d.http_status,
        exit_status: d.exit_status,
        detail: d.detail.clone(),
        attempts_made: attempts.iter().map(AttemptView::from).collect(),
    }
}

/// `HTTP 503: …`, `exit 1: …`, or the detail alone.
fn result(http: Option<u16>, exit: Option<i32>, detail: &str) -> String {
    // The senders' details usually name the status already ("HTTP 200 from
    // http://…", "the command /bin/sh exited 3"): said once, not twice.
    match (http, exit) {
        (Some(code), _) if detail.starts_with(&format!("HTTP {code}")) => detail.to_string(),
        (Some(code), _) => format!("HTTP {code}: {detail}"),
        (None, Some(code)) if detail.contains(&format!("exited {code}")) => detail.to_string(),
        (None, Some(code)) => format!("exit {code}: {detail}"),
        _ => detail.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::result;

    #[test]
    fn a_status_the_detail_names_is_not_repeated() {
        assert_eq!(
            result(Some(200), None, "HTTP 200 from http://127.0.0.1:8099"),
            "HTTP 200 from http://127.0.0.1:8099"
        );
        assert_eq!(
            result(None, Some(0), "the command /bin/sh exited 0"),
            "the command /bin/sh exited 0"
        );
        assert_eq!(
            result(None, Some(75), "sendmail exited 75: try again later"),
            "sendmail exited 75: try again later"
        );
        // A detail that does not say it keeps the prefix.
        assert_eq!(
            result(Some(500), None, "server said no"),
            "HTTP 500: server said no"
        );
        assert_eq!(result(None, Some(1), "timed out"), "exit 1: timed out");
        assert_eq!(
            result(None, None, "connection refused"),
            "connection refused"
        );
    }
}
