//! `jobctl status [JOB]`: the `list` row of one job in detail (or of every
//! job), with its units, invocation and where to find its logs.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;

use crate::commands::list::{self, human_ms};
use crate::error::CliResult;
use crate::output;
use crate::paths::Paths;
use crate::systemd::format_usec;

/// Show a job's state, schedule, next and last run in detail.
///
/// Examples:
///   jobctl status nightly-refresh
///   jobctl status --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    /// The job (all jobs when omitted).
    pub job: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &Paths, args: StatusArgs) -> CliResult {
    let rows = list::collect(paths, args.job.as_deref())?;
    if args.json {
        if args.job.is_some() {
            output::print_json(&rows[0])?;
        } else {
            output::print_json(&rows)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for r in &rows {
        let _ = writeln!(
            out,
            "{}{}",
            r.job,
            if r.running { " (running)" } else { "" }
        );
        let _ = writeln!(out, "  state:      {}", r.state);
        let _ = writeln!(out, "  schedule:   {}", r.schedule);
        let _ = writeln!(out, "  next run:   {}", format_usec(r.next_usec));
        let last = match (&r.last_result, r.last_duration_ms) {
            (Some(res), Some(ms)) => {
                format!("{} ({res}, {})", format_usec(r.last_usec), human_ms(ms))
            }
            (Some(res), None) => format!("{} ({res})", format_usec(r.last_usec)),
            _ => format_usec(r.last_usec),
        };
        let _ = writeln!(out, "  last run:   {last}");
        if let Some(code) = r.last_exit_status {
            let _ = writeln!(out, "  exit:       {code}");
        }
        let _ = writeln!(
            out,
            "  units:      {}{}",
            r.service,
            r.timer
                .as_ref()
                .map(|t| format!(", {t}"))
                .unwrap_or_default()
        );
        if let Some(src) = &r.source {
            let _ = writeln!(out, "  job file:   {src}");
        }
        if let Some(id) = &r.invocation_id {
            let _ = writeln!(
                out,
                "  invocation: {id}  (journalctl _SYSTEMD_INVOCATION_ID={id})"
            );
        }
    }
    output::print_text(&out)?;
    Ok(ExitCode::SUCCESS)
}
