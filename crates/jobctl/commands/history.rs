//! `jobctl history`: the recorded runs, newest first; `jobctl history prune`:
//! apply retention now.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use jobctl_core::duration::Timespan;
use jobctl_core::size::ByteSize;
use jobctl_history::liveness::LivenessProbe;
use jobctl_history::{OpenMode, PruneReport, RunFilter, RunRecord, Status, Store};
use serde::Serialize;

use crate::error::{CliError, CliResult, EXIT_PARTIAL};
use crate::history_db::{
    self, Readers, format_duration, format_local, format_utc, now_us, signal_name,
};
use crate::output::{self, Lines};
use crate::paths::Paths;

/// Show recorded runs, newest first.
///
/// As root in system mode, the runs of every job are shown: root's jobs from
/// the main database and every other user's jobs from their own (a user's
/// database is trusted only for the jobs that run as that user; a run from it
/// is marked `users/<user>`). A run whose shim died (SIGKILL, power loss)
/// shows as `lost`, never as running forever.
///
/// Control characters in recorded text (job names) are shown escaped
/// (`\x1b`), unless --raw. Exit status 5: runs were shown, but a database
/// or a row could not be read (see the warnings).
///
/// Examples:
///   jobctl history
///   jobctl history nightly-refresh --limit 10
///   jobctl history --status failed,timeout --since 2d
///   jobctl history --failed --json
///   jobctl history prune --keep-runs 100
///
/// (A job named "prune" is shown with `jobctl history --job prune`.)
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub action: Option<HistoryAction>,

    /// Only this job's runs.
    #[arg(value_name = "JOB")]
    pub job: Option<String>,

    /// Only this job's runs (same as JOB; for a job named like a subcommand).
    #[arg(long = "job", value_name = "JOB", conflicts_with = "job")]
    pub job_flag: Option<String>,

    /// Only runs with these statuses (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "STATUS")]
    pub status: Vec<StatusArg>,

    /// Only runs that ended badly: failed, error, timeout, killed, lost.
    #[arg(long, conflicts_with = "status")]
    pub failed: bool,

    /// Only runs started at or after this: a duration ago ("2d", "90min"), a
    /// date, a local time ("2027-03-01 02:15") or an RFC 3339 timestamp.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,

    /// Only runs started before this (same forms as --since).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,

    /// At most this many runs (0: all).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 50)]
    pub limit: usize,

    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,

    /// Print recorded text (job names) exactly as stored, control characters
    /// included, instead of escaping them (for pipes).
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Read this database only.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Apply retention now: per-job run count, age, total output; mark lost
    /// runs. Runs after every `jobctl exec` too, for the job that ran.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep this many runs per job (0: no limit) [default: keep_runs of the
    /// configuration's [history], else 1000].
    #[arg(long, value_name = "N")]
    pub keep_runs: Option<u64>,

    /// Drop runs older than this ("infinity" or 0: no limit) [default:
    /// keep_age of the configuration, else 180d].
    #[arg(long, value_name = "DUR")]
    pub keep_age: Option<Timespan>,

    /// Stored output of all runs together, oldest dropped first (0: no
    /// limit) [default: max_output of the configuration, else 256M].
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<ByteSize>,

    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,

    /// Prune this database only.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Running,
    Success,
    Failed,
    Error,
    Timeout,
    Killed,
    Lost,
    Expired,
}

impl From<StatusArg> for Status {
    fn from(s: StatusArg) -> Status {
        match s {
            StatusArg::Running => Status::Running,
            StatusArg::Success => Status::Success,
            StatusArg::Failed => Status::Failed,
            StatusArg::Error => Status::Error,
            StatusArg::Timeout => Status::Timeout,
            StatusArg::Killed => Status::Killed,
            StatusArg::Lost => Status::Lost,
            StatusArg::Expired => Status::Expired,
        }
    }
}

/// A run as `--json` shows it: the record plus readable times and where it
/// was read from.
#[derive(Serialize)]
pub struct RunView<'a> {
    #[serde(flatten)]
    pub run: &'a RunRecord,
    pub started: String,
    pub ended: Option<String>,
    pub duration_us: Option<i64>,
    pub database: String,
    /// The user folder the run was read from (None: the main database).
    pub owner: Option<String>,
}

pub fn run(paths: &Paths, args: HistoryArgs) -> CliResult<ExitCode> {
    if let Some(HistoryAction::Prune(prune_args)) = args.action {
        return prune(paths, prune_args);
    }
    let now = now_us();
    let since = args
        .since
        .as_deref()
        .map(|t| history_db::parse_time_bound(t, now))
        .transpose()
        .context("invalid --since")
        .map_err(CliError::usage)?;
    let until = args
        .until
        .as_deref()
        .map(|t| history_db::parse_time_bound(t, now))
        .transpose()
        .context("invalid --until")
        .map_err(CliError::usage)?;
    let statuses = if args.failed {
        RunFilter::failures()
    } else {
        args.status.iter().map(|s| Status::from(*s)).collect()
    };
    let filter = RunFilter {
        job: args.job.or(args.job_flag),
        statuses,
        since_us: since,
        until_us: until,
        limit: args.limit,
        jobs: None,
    };
    let readers = Readers::open(paths, args.db.as_deref()).map_err(CliError::failure)?;
    let mut partial = readers.report_skipped();
    if readers.stores.is_empty() && !readers.skipped.is_empty() {
        return Err(CliError::failure(anyhow::anyhow!(
            "no history database could be read"
        )));
    }
    let probe = LivenessProbe::current(history_db::hostname());
    let mut all = Vec::new();
    let mut read_any = false;
    for (located, store) in &readers.stores {
        let filter = RunFilter {
            jobs: readers.allowed_jobs(located),
            ..filter.clone()
        };
        let read = || -> anyhow::Result<(Vec<RunRecord>, u64)> {
            Ok(store.snapshot(|store| {
                Ok((
                    store.runs(&filter, &probe, now)?,
                    store.count_untrusted_runs(&filter)?,
                ))
            })?)
        };
        match read() {
            Ok((runs, untrusted)) => {
                read_any = true;
                let bad = store.take_bad_rows();
                history_db::report_left_out(located, untrusted, &bad);
                partial |= !bad.is_empty();
                all.extend(runs.into_iter().map(|r| (r, located)));
            }
            Err(e) => {
                partial = true;
                let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
                output::warn(&format!(
                    "skipped {}: {}",
                    located.path.display(),
                    causes.join(": ")
                ));
            }
        }
    }
    // Nothing could be read at all: that is a failure, not a partial result.
    if !read_any && !readers.stores.is_empty() {
        return Err(CliError::failure(anyhow::anyhow!(
            "no history database could be read"
        )));
    }
    all.sort_by(|(a, _), (b, _)| {
        b.started_us
            .cmp(&a.started_us)
            .then_with(|| b.id.cmp(&a.id))
    });
    if filter.limit != 0 {
        all.truncate(filter.limit);
    }
    let done = if partial {
        ExitCode::from(EXIT_PARTIAL)
    } else {
        ExitCode::SUCCESS
    };

    if args.json {
        let views: Vec<RunView<'_>> = all
            .iter()
            .map(|(run, located)| view(run, &located.path, located.owner.clone()))
            .collect();
        output::print_json(&serde_json::json!({ "runs": views }))?;
        return Ok(done);
    }
    if all.is_empty() {
        output::print_text("No runs recorded.\n")?;
        return Ok(done);
    }
    let color = output::use_color();
    let text_of = |value: &str| -> String {
        if args.raw {
            value.to_string()
        } else {
            output::escape(value, Lines::Escape).into_owned()
        }
    };
    // Which database a run came from, when any is not the main one.
    let mixed = all.iter().any(|(_, located)| located.owner.is_some());
    let mut rows: Vec<Vec<String>> = vec![
        [
            "RUN", "JOB", "TRIGGER", "START", "DURATION", "STATUS", "EXIT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    if mixed {
        rows[0].push("DATABASE".into());
    }
    for (run, located) in &all {
        let duration = match run.ended_us {
            Some(end) => format_duration(end - run.started_us),
            None if run.status == Status::Running => {
                format!("{} so far", format_duration(now - run.started_us))
            }
            None => "-".into(),
        };
        let mut row = vec![
            run.id.short(),
            text_of(&run.job),
            run.trigger.to_string(),
            format_local(run.started_us),
            duration,
            run.status.to_string(),
            exit_text(run),
        ];
        if mixed {
            row.push(text_of(&history_db::database_label(located)));
        }
        rows.push(row);
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
            let pad = widths[col] - cell.chars().count();
            let cell = if color && i > 0 && col == 5 {
                paint(all[i - 1].0.status, cell)
            } else {
                cell.clone()
            };
            line.push_str(&cell);
            if col + 1 < row.len() {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    output::print_text(&text)?;
    Ok(done)
}

pub fn view<'a>(run: &'a RunRecord, db: &std::path::Path, owner: Option<String>) -> RunView<'a> {
    RunView {
        run,
        started: format_utc(run.started_us),
        ended: run.ended_us.map(format_utc),
        duration_us: run.duration_us(),
        database: db.display().to_string(),
        owner,
    }
}

/// The EXIT column: the exit code, the signal's name, or `-`.
pub fn exit_text(run: &RunRecord) -> String {
    match (run.exit_code, run.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(sig)) => signal_name(sig),
        (None, None) => "-".into(),
    }
}

fn paint(status: Status, text: &str) -> String {
    let code = match status {
        Status::Success => "32",
        Status::Running => "33",
        Status::Expired => "2",
        Status::Lost => "35",
        _ => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn prune(paths: &Paths, args: PruneArgs) -> CliResult<ExitCode> {
    // Flags, then the configuration's [history], then the built-in defaults.
    let config = history_db::history_config(paths);
    let retention = super::exec::retention_from(
        args.keep_runs.or(config.keep_runs.map(u64::from)),
        args.keep_age.or(config.keep_age),
        args.max_output.or(config.max_output),
    );
    if let Some(db) = &args.db
        && !db.is_file()
    {
        return Err(CliError::failure(anyhow::anyhow!(
            "no history database at {}",
            db.display()
        )));
    }
    let (targets, refused) = history_db::reader_databases(paths, args.db.as_deref());
    let probe = LivenessProbe::current(history_db::hostname());
    let now = now_us();
    let mut reports: Vec<(String, PruneReport)> = Vec::new();
    let mut failures = 0;
    let mut failed = |path: &std::path::Path, e: jobctl_history::Error| {
        failures += 1;
        let e = anyhow::Error::new(e);
        let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
        let _ = output::print_error_text(&format!(
            "Error: cannot prune {}: {}\n",
            path.display(),
            output::escape(&causes.join(": "), Lines::Keep)
        ));
    };
    for r in refused {
        failed(
            &r.path.clone(),
            jobctl_history::Error::Refused {
                path: r.path,
                reason: r.reason,
            },
        );
    }
    for located in &targets {
        let result =
            Store::open_located(located, OpenMode::Maintain, history_db::READ_BUSY_TIMEOUT)
                .and_then(|mut store| {
                    let report = store.prune(&retention, &probe, now)?;
                    history_db::report_left_out(located, 0, &store.take_bad_rows());
                    Ok(report)
                });
        match result {
            Ok(report) => reports.push((located.path.display().to_string(), report)),
            Err(e) => failed(&located.path, e),
        }
    }
    if args.json {
        let list: Vec<_> = reports
            .iter()
            .map(|(db, r)| serde_json::json!({ "database": db, "report": r }))
            .collect();
        output::print_json(&serde_json::json!({ "pruned": list }))?;
    } else if reports.is_empty() && failures == 0 {
        output::print_text("No history database to prune.\n")?;
    } else {
        let mut text = String::new();
        for (db, r) in &reports {
            text.push_str(&format!(
                "{db}: deleted {} runs over keep_runs and {} over keep_age, dropped {} outputs ({} → {} bytes of output), marked {} lost\n",
                r.runs_over_count,
                r.runs_over_age,
                r.outputs_dropped,
                r.output_bytes_before,
                r.output_bytes_after,
                r.marked_lost
            ));
        }
        output::print_text(&text)?;
    }
    Ok(if failures > 0 {
        ExitCode::from(crate::error::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}
