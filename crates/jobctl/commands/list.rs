//! `jobctl list`: one line per job — state, next run, last run with its
//! result and duration, failure streak, schedule — joined from the job files,
//! the unit folder, systemd (one bulk call for every unit's state and one
//! Timer read per active timer) and the run history (see
//! [`crate::overview`]).

use std::process::ExitCode;

use clap::Args;
use jobctl_core::state::JobState;

use crate::error::CliResult;
use crate::history_db;
use crate::output;
use crate::overview::{self, Overview};
use crate::paths::Paths;
use crate::view::list::{self, JobRow};

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
/// --owner, --team and --tag show the jobs with those labels (the job
/// files' `owner`, `team`, `tags`; shown by `status` and in --json).
///
/// Examples:
///   jobctl list
///   jobctl list --team analytics --tag etl
///   jobctl list --json | jq '.jobs[] | select(.failure_streak > 0)'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ListArgs {
    #[command(flatten)]
    pub labels: overview::LabelArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &Paths, args: ListArgs) -> CliResult {
    let mut overview = overview::gather(
        paths,
        overview::Options {
            history: true,
            ..Default::default()
        },
    )?;
    args.labels.retain(&mut overview);
    report_unread(&overview);
    let rows: Vec<JobRow> = overview.jobs.iter().map(JobRow::of).collect();
    if args.json {
        #[derive(serde::Serialize)]
        struct Document<'a> {
            jobs: &'a [JobRow],
        }
        output::print_json_host("list", &Document { jobs: &rows })?;
    } else {
        output::print_text(&list::text(&overview, &crate::zones::local_zone()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Warnings about what could not be read (stderr; the listing goes on).
pub fn report_unread(overview: &Overview) {
    if let Some(dir) = &overview.missing_dir {
        output::note(&format!(
            "the jobs folder {} does not exist yet",
            dir.display()
        ));
        output::hint(&crate::paths::missing_jobs_dir_hint(dir));
    }
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
            "{} {} not validate; {} as `invalid` (run `{}`)",
            crate::view::format::count(invalid, "job file", "job files"),
            if invalid == 1 { "does" } else { "do" },
            if invalid == 1 {
                "it shows"
            } else {
                "they show"
            },
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
        history_db::hint_run_as_root();
    }
}
