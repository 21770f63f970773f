//! `jobctl notify test CHANNEL`: sends a `test` event over one configured
//! channel, now, and prints the attempt (nothing is queued or retried).

use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use jobctl_core::notify::Target;
use jobctl_core::watch::{EventKind, event_id};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::history_db;
use crate::output::{self, Lines};
use crate::paths::Paths;
use crate::view::format::json_time as format_utc;
use crate::zones::HostZones;

/// Notification channels: try one.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub action: NotifyAction,
}

#[derive(Debug, Subcommand)]
pub enum NotifyAction {
    Test(TestArgs),
}

/// Send a test notification over a channel now and print the result.
///
/// The event is `test`; it is sent once, as the watch would send it, and
/// not queued or retried. Exit status 0 when the channel accepted it, 1 when
/// it did not (the detail says why), 2 for an unknown channel.
///
/// Examples:
///   jobctl notify test ops
///   jobctl notify test pager --json
///   jobctl notify test ops --dry-run     # print what would be sent
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct TestArgs {
    /// The channel, as named in [notify.channels.NAME] of the configuration.
    #[arg(value_name = "CHANNEL")]
    pub channel: String,

    /// Print what would be sent (the payload, the mail), send nothing. A
    /// webhook's URL is never printed.
    #[arg(long)]
    pub dry_run: bool,

    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    channel: String,
    kind: &'static str,
    event_id: String,
    ok: bool,
    retryable: bool,
    http_status: Option<u16>,
    exit_status: Option<i32>,
    detail: String,
    duration_ms: u64,
}

/// The job name a test event carries.
pub const TEST_JOB: &str = "jobctl-notify-test";

pub fn run(paths: &Paths, args: NotifyArgs) -> CliResult {
    let NotifyAction::Test(args) = args.action;
    let zones = HostZones::new();
    let (config, diagnostics) = crate::load::load_config(paths, &zones)?;
    let Some(channel) = config.notify.channels.get(&args.channel) else {
        let own_errors: Vec<String> = diagnostics
            .iter()
            .filter(|d| {
                d.is_error()
                    && d.key.as_deref().is_some_and(|k| {
                        k == format!("notify.channels.{}", args.channel)
                            || k.starts_with(&format!("notify.channels.{}.", args.channel))
                    })
            })
            .map(ToString::to_string)
            .collect();
        if !own_errors.is_empty() {
            return Err(CliError::usage(anyhow!(
                "the channel \"{}\" is not valid:\n{}",
                args.channel,
                own_errors.join("\n")
            )));
        }
        let known: Vec<&str> = config.notify.channels.keys().map(String::as_str).collect();
        let hint = match jobctl_core::walk::suggest(&args.channel, &known) {
            Some(s) => format!("did you mean `{s}`?"),
            None if known.is_empty() => format!(
                "no channel is configured in {}: add [notify.channels.NAME] (docs/notifications.md)",
                paths.config.display()
            ),
            None => format!("the configured channels are: {}", known.join(", ")),
        };
        return Err(CliError::usage(anyhow!(
            "unknown notification channel \"{}\"",
            output::escape(&args.channel, Lines::Escape)
        ))
        .hint(hint));
    };
    let host = history_db::hostname().unwrap_or_default();
    let now = history_db::now_us();
    let event = jobctl_core::watch::Event {
        id: event_id(&host, TEST_JOB, EventKind::Test, &now.to_string()),
        kind: EventKind::Test,
        job: TEST_JOB.into(),
        channels: vec![channel.name.clone()],
        run: None,
        failure_streak: 0,
        reminder: 0,
        recovers: None,
        expected: None,
        opened_us: now,
    };
    let mut n = crate::notify_send::notification(&event, &host, None, None, paths.mode, "");
    n.details.push(("sent at".into(), format_utc(now)));
    if args.dry_run {
        let text = match &channel.target {
            Target::Webhook(_) | Target::WebhookFile(_) => {
                let format = match channel.format {
                    jobctl_core::notify::Format::Generic => jobctl_notify::Format::Generic,
                    jobctl_core::notify::Format::Slack => jobctl_notify::Format::Slack,
                    jobctl_core::notify::Format::Teams => jobctl_notify::Format::Teams,
                };
                format!(
                    "POST ({} webhook, URL not shown)\n{}\n",
                    channel.format.as_str(),
                    serde_json::to_string_pretty(&jobctl_notify::payload(format, &n))
                        .unwrap_or_default()
                )
            }
            Target::Mail(to) => {
                let from = channel
                    .from
                    .clone()
                    .unwrap_or_else(|| format!("jobctl@{host}"));
                format!(
                    "{} -t -oi\n{}",
                    channel.sendmail,
                    String::from_utf8_lossy(&jobctl_notify::mail_message(to, &from, &n))
                )
            }
            Target::Command(argv) => format!(
                "{}\nstdin:\n{}\n",
                argv.join(" "),
                serde_json::to_string_pretty(&jobctl_notify::payload(
                    jobctl_notify::Format::Generic,
                    &n
                ))
                .unwrap_or_default()
            ),
        };
        output::print_text(&output::escape(&text, Lines::Keep))?;
        return Ok(ExitCode::SUCCESS);
    }
    let attempt = crate::notify_send::send(channel, &n, paths.mode);
    let report = Report {
        channel: channel.name.clone(),
        kind: channel.target.kind(),
        event_id: n.event_id.clone(),
        ok: attempt.ok,
        retryable: attempt.retryable,
        http_status: attempt.http_status,
        exit_status: attempt.exit_status,
        detail: attempt.detail.clone(),
        duration_ms: attempt.duration_ms,
    };
    if args.json {
        output::print_json("notify-test", &report)?;
    } else {
        // The status, unless the detail already says it.
        let status = match (report.http_status, report.exit_status) {
            (Some(code), _) => format!("HTTP {code}"),
            (None, Some(code)) => format!("exit status {code}"),
            _ => String::new(),
        };
        let status = if status.is_empty() || report.detail.contains(&status) {
            String::new()
        } else {
            format!("{status}: ")
        };
        let text = format!(
            "{} test notification over {} ({}): {status}{} ({} ms){}\n",
            if report.ok { "sent" } else { "FAILED to send" },
            report.channel,
            report.kind,
            report.detail,
            report.duration_ms,
            if !report.ok && report.retryable {
                "; the watch would retry this"
            } else {
                ""
            }
        );
        output::print_text(&output::escape(&text, Lines::Keep))?;
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        crate::exit::Exit::Failure.into()
    })
}
