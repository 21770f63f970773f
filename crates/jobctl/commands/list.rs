//! `jobctl list`: one line per job — state, next run, last run with its
//! result and duration, failure streak, schedule — joined from the job files,
//! the unit folder, systemd (one bulk call for every unit's state and one
//! Timer read per active timer) and the run history (see
//! [`crate::overview`]).

use std::process::ExitCode;

use clap::Args;
use jobctl_core::state::JobState;
use jobctl_history::{RunRecord, Status, Trigger};
use serde::Serialize;

use crate::error::CliResult;
use crate::history_db::{self, format_duration, format_local, format_utc, signal_name};
use crate::output;
use crate::overview::{self, JobView, Overview};
use crate::paths::Paths;
use crate::systemd::rfc3339_usec;

/// List every job with its state, next and last run, and schedule.
///
/// States: active (timer waiting), inactive (the timer should run and does
/// not: `jobctl apply` starts it), disabled (enabled = false), disabled by
/// operator (`jobctl disable`), expired (past not_after), manual (no timer),
/// pending apply (the job file changed since the last apply), not applied (no
/// units yet), missing unit (a unit file vanished), orphaned (units of a job
/// whose file is gone), invalid (the job file does not validate). "(running)"
/// marks a run in progress.
///
/// RESULT is the last run's status from the run history (success, failed,
/// error, timeout, killed, lost, expired, running) with its exit status or
/// signal; FAILS counts the failed runs in a row.
///
/// Examples:
///   jobctl list
///   jobctl list --json | jq '.[] | select(.failure_streak > 0)'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// A job's last run, as `list` and `status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub id: String,
    pub status: Status,
    pub trigger: Trigger,
    pub attempt: u32,
    pub started: String,
    pub ended: Option<String>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why an `error` run could not start.
    pub error: Option<String>,
    /// `journalctl _SYSTEMD_INVOCATION_ID=…` finds the run's journal lines.
    pub invocation_id: Option<String>,
    pub user: String,
}

impl LastRun {
    pub fn of(run: &RunRecord) -> LastRun {
        LastRun {
            id: run.id.to_string(),
            status: run.status,
            trigger: run.trigger,
            attempt: run.attempt,
            started: format_utc(run.started_us),
            ended: run.ended_us.map(format_utc),
            duration_ms: run.duration_us().map(|us| us / 1_000),
            exit_code: run.exit_code,
            signal: run.signal,
            error: run.error.clone(),
            invocation_id: run.invocation_id.clone(),
            user: run.user.clone(),
        }
    }
}

/// One job as `list` shows it (and `status` extends).
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub job: String,
    pub state: JobState,
    /// A run is in progress (systemd's view).
    pub running: bool,
    pub schedule: String,
    pub service: String,
    pub timer: Option<String>,
    pub next_run: Option<String>,
    /// The newest recorded run (`null` when none is recorded).
    pub last_run: Option<LastRun>,
    /// Failed runs in a row, newest first (0: the last finished run
    /// succeeded, or none is recorded).
    pub failure_streak: u32,
    pub last_success: Option<String>,
    pub source: Option<String>,
}

impl JobRow {
    pub fn of(view: &JobView) -> JobRow {
        let schedule = match &view.definition {
            Some(d) if d.is_manual() => "manual".to_string(),
            Some(d) => d
                .schedules
                .iter()
                .map(|s| s.describe_in(d.timezone.as_deref()))
                .chain(d.timer.on_boot.map(|b| format!("{b} after boot")))
                .collect::<Vec<_>>()
                .join("; "),
            None => "-".to_string(),
        };
        let history = view.history.as_ref().map(|h| &h.summary);
        JobRow {
            job: view.job.clone(),
            state: view.derived.state,
            running: view.running(),
            schedule,
            service: view.service.clone(),
            timer: view.timer.clone(),
            next_run: rfc3339_usec(view.next_elapse_usec),
            last_run: history.map(|h| LastRun::of(&h.last)),
            failure_streak: history.map_or(0, |h| h.failure_streak),
            last_success: history.and_then(|h| h.last_success_us).map(format_utc),
            source: view.source.clone(),
        }
    }
}

pub fn run(paths: &Paths, args: ListArgs) -> CliResult {
    let overview = overview::gather(
        paths,
        overview::Options {
            history: true,
            ..Default::default()
        },
    )?;
    report_unread(&overview);
    let rows: Vec<JobRow> = overview.jobs.iter().map(JobRow::of).collect();
    if args.json {
        output::print_json(&rows)?;
    } else {
        // Recorded text (a run's user, error) is a user's to write.
        output::print_text(&output::escape(&table(&overview), output::Lines::Keep))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Warnings about what could not be read (stderr; the listing goes on).
pub fn report_unread(overview: &Overview) {
    for e in &overview.config_errors {
        output::warn(e);
    }
    let invalid = overview
        .jobs
        .iter()
        .filter(|j| j.derived.state == JobState::Invalid)
        .count();
    if invalid > 0 {
        output::warn(&format!(
            "{invalid} job file(s) do not validate; they show as `invalid` (run `{}`)",
            crate::paths::jobctl("validate")
        ));
    }
    for (located, error) in &overview.skipped {
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        output::warn(&format!(
            "skipped the history in {}: {}",
            located.path.display(),
            causes.join(": ")
        ));
    }
    for (located, bad) in &overview.bad_rows {
        history_db::report_left_out(located, 0, bad);
    }
    if !overview.skipped.is_empty() && !nix::unistd::geteuid().is_root() {
        let _ =
            output::print_error_text("Hint: run as root to see the runs of every user's jobs\n");
    }
}

/// The RESULT column: status, with the exit status or signal.
pub fn result_text(run: &RunRecord) -> String {
    match (run.status, run.exit_code, run.signal) {
        (Status::Failed | Status::Error, Some(code), _) => format!("{} {code}", run.status),
        (Status::Killed | Status::Timeout, _, Some(sig)) => {
            format!("{} {}", run.status, signal_name(sig))
        }
        (status, _, _) => status.to_string(),
    }
}

/// The DURATION column: how long the run took, or has run so far.
pub fn duration_text(run: &RunRecord, now_us: i64) -> String {
    match run.ended_us {
        Some(end) => format_duration(end - run.started_us),
        None if run.status == Status::Running => {
            format!("{} so far", format_duration(now_us - run.started_us))
        }
        None => "-".into(),
    }
}

/// Formats µs since the epoch in the host's zone, to the second ("-" for 0).
fn time_text(usec: u64) -> String {
    if usec == 0 || usec == u64::MAX {
        "-".into()
    } else {
        format_local(usec as i64)
    }
}

fn table(overview: &Overview) -> String {
    if overview.jobs.is_empty() {
        return "(no jobs)\n".into();
    }
    let mut rows: Vec<[String; 8]> = vec![[
        "JOB".into(),
        "STATE".into(),
        "NEXT".into(),
        "LAST".into(),
        "RESULT".into(),
        "DURATION".into(),
        "FAILS".into(),
        "SCHEDULE".into(),
    ]];
    for view in &overview.jobs {
        let last = view.history.as_ref().map(|h| &h.summary);
        let state = if view.running() {
            format!("{} (running)", view.derived.state)
        } else {
            view.derived.state.to_string()
        };
        let row = JobRow::of(view);
        rows.push([
            view.job.clone(),
            state,
            time_text(view.next_elapse_usec),
            last.map_or("-".into(), |h| format_local(h.last.started_us)),
            last.map_or("-".into(), |h| result_text(&h.last)),
            last.map_or("-".into(), |h| duration_text(&h.last, overview.now_us)),
            match last.map_or(0, |h| h.failure_streak) {
                0 => "-".into(),
                n => n.to_string(),
            },
            row.schedule,
        ]);
    }
    columns(&rows)
}

/// Left-aligned columns two spaces apart, the last one unpadded.
pub fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (col, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if col + 1 < N {
                line.push_str(&" ".repeat(widths[col] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
