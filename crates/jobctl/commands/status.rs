//! `jobctl status [JOB]`: the `list` row of one job in detail (or of every
//! job): its last run from the history, the failure streak, what systemd
//! itself says about the service's last run, where to find the logs, and the
//! problems `jobctl health` would report.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use jobctl_core::health::Problem;
use jobctl_history::Status;
use serde::Serialize;

use crate::commands::health::problems_of;
use crate::commands::list::{self, JobRow, duration_text, result_text};
use crate::error::CliResult;
use crate::history_db::{format_local, signal_name};
use crate::output;
use crate::overview::{self, JobView};
use crate::paths::Paths;

/// Show a job's state, schedule, next and last run, and problems in detail.
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

/// What systemd keeps about the service's last run (it knows of runs the
/// shim could not record, e.g. when the shim itself could not start).
#[derive(Debug, Serialize)]
pub struct UnitView {
    pub active_state: String,
    /// systemd's result: success, exit-code, signal, timeout, …
    pub result: String,
    pub exit_status: Option<i32>,
    pub signal: Option<i32>,
    pub invocation_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct StatusRow {
    #[serde(flatten)]
    row: JobRow,
    unit: Option<UnitView>,
    /// What `jobctl health` reports for this job.
    problems: Vec<Problem>,
    /// Where the job's runs were read from.
    database: Option<String>,
}

pub fn run(paths: &Paths, args: StatusArgs) -> CliResult {
    let only = args.job.clone().map(|j| vec![j]);
    let overview = overview::gather(
        paths,
        overview::Options {
            only: only.as_deref(),
            history: true,
            unit_details: true,
            unrecorded: true,
        },
    )?;
    list::report_unread(&overview);
    let rows: Vec<StatusRow> = overview
        .jobs
        .iter()
        .map(|view| StatusRow {
            row: JobRow::of(view),
            unit: unit_view(view),
            problems: problems_of(view, &overview, 1),
            database: view
                .history
                .as_ref()
                .map(|h| h.database.display().to_string()),
        })
        .collect();
    if args.json {
        if args.job.is_some() {
            output::print_json(&rows[0])?;
        } else {
            output::print_json(&rows)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for (view, status) in overview.jobs.iter().zip(&rows) {
        if !out.is_empty() {
            out.push('\n');
        }
        describe(&mut out, view, status, overview.now_us);
    }
    if rows.is_empty() {
        out.push_str("(no jobs)\n");
    }
    // The last run's user, error and invocation id are a user's to write.
    output::print_text(&output::escape(&out, output::Lines::Keep))?;
    Ok(ExitCode::SUCCESS)
}

fn unit_view(view: &JobView) -> Option<UnitView> {
    let p = view.unit.as_ref()?;
    // CLD_EXITED = 1; CLD_KILLED = 2, CLD_DUMPED = 3.
    let (exit_status, signal) = match p.exec_main_code {
        1 => (Some(p.exec_main_status), None),
        2 | 3 => (None, Some(p.exec_main_status)),
        _ => (None, None),
    };
    Some(UnitView {
        active_state: p.active_state.clone(),
        result: p.result.clone(),
        exit_status,
        signal,
        invocation_id: Some(p.invocation_id.clone()).filter(|s| !s.is_empty()),
    })
}

fn describe(out: &mut String, view: &JobView, status: &StatusRow, now_us: i64) {
    let r = &status.row;
    let _ = writeln!(
        out,
        "{}{}",
        r.job,
        if r.running { " (running)" } else { "" }
    );
    let _ = writeln!(out, "  state:      {}", r.state);
    if let Some(reason) = &view.invalid_reason {
        let _ = writeln!(out, "  invalid:    {reason}");
    }
    let _ = writeln!(out, "  schedule:   {}", r.schedule);
    let next = if view.next_elapse_usec == 0 {
        "-".to_string()
    } else {
        format_local(view.next_elapse_usec as i64)
    };
    let _ = writeln!(out, "  next run:   {next}");
    match view.history.as_ref().map(|h| &h.summary) {
        Some(h) => {
            let run = &h.last;
            let _ = writeln!(
                out,
                "  last run:   {}, {}, {} ({}, attempt {}, as {})",
                format_local(run.started_us),
                result_text(run),
                duration_text(run, now_us),
                run.trigger,
                run.attempt,
                run.user
            );
            if let Some(error) = &run.error {
                let _ = writeln!(out, "  error:      {error}");
            }
            let _ = writeln!(out, "  run id:     {}", run.id);
            let mut failures = match h.failure_streak {
                0 => "none in a row".to_string(),
                1 => "1 (the last finished run)".to_string(),
                n => format!("{n} in a row"),
            };
            match h.last_success_us {
                Some(us) => {
                    let _ = write!(failures, "; last success {}", format_local(us));
                }
                None => failures.push_str("; no successful run recorded"),
            }
            let _ = writeln!(out, "  failures:   {failures}");
            if let Some(id) = &run.invocation_id {
                let _ = writeln!(
                    out,
                    "  invocation: {id}  ({})",
                    crate::paths::journal(id, false)
                );
            }
            // The history holds a run's output once it has ended; until
            // then the journal has it.
            let output = match (&run.status, &run.invocation_id) {
                (Status::Running, Some(id)) => crate::paths::journal(id, true),
                _ => crate::paths::jobctl(&format!("logs {} --last", r.job)),
            };
            let _ = writeln!(out, "  output:     {output}");
        }
        None => {
            let _ = writeln!(out, "  last run:   - (none recorded)");
        }
    }
    if let Some(u) = &status.unit {
        let mut text = format!("{}: {}", r.service, u.active_state);
        if !u.result.is_empty() {
            let _ = write!(text, ", result {}", u.result);
        }
        if let Some(code) = u.exit_status {
            let _ = write!(text, ", exit status {code}");
        }
        if let Some(sig) = u.signal {
            let _ = write!(text, ", {}", signal_name(sig));
        }
        let _ = writeln!(out, "  systemd:    {text}");
    }
    let _ = writeln!(
        out,
        "  units:      {}{}",
        if r.service.is_empty() {
            "-"
        } else {
            &r.service
        },
        r.timer
            .as_ref()
            .map(|t| format!(", {t}"))
            .unwrap_or_default()
    );
    if let Some(src) = &r.source {
        let _ = writeln!(out, "  job file:   {src}");
    }
    if status.problems.is_empty() {
        let _ = writeln!(out, "  problems:   none");
    } else {
        for (i, p) in status.problems.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}{}: {}",
                if i == 0 {
                    "problems:   "
                } else {
                    "            "
                },
                p.kind,
                p.message
            );
        }
    }
}
