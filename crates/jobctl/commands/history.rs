//! `jobctl history`: the recorded runs, newest first; `jobctl history prune`:
//! apply retention now.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use jobctl_core::duration::Timespan;
use jobctl_core::size::ByteSize;
use jobctl_history::liveness::LivenessProbe;
use jobctl_history::{OpenMode, PruneReport, Retention, RunFilter, RunRecord, Status, Store};

use crate::error::{CliError, CliResult};
use crate::exit::Exit;
use crate::history_db::{self, Readers};
use crate::host::{hostname, now_us};
use crate::output;
use crate::paths::Paths;
use crate::view::history::{self as view, RunView, Style};

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
#[command(verbatim_doc_comment)]
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
    #[arg(long, value_parser = parse_status(), value_delimiter = ',', value_name = "STATUS")]
    pub status: Vec<Status>,

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

impl HistoryArgs {
    /// Whether `--json` was given (to `history` or `history prune`).
    pub fn wants_json(&self) -> bool {
        match &self.action {
            Some(HistoryAction::Prune(p)) => p.json,
            None => self.json,
        }
    }
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
    #[allow(rustdoc::broken_intra_doc_links)] // `--help` text: "[history]" is no link
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

/// `--status`: one of the statuses' own names (clap lists them in `--help`
/// and in its error for any other word).
fn parse_status() -> impl clap::builder::TypedValueParser<Value = Status> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Status::ALL.map(Status::as_str)).try_map(
        |name: String| {
            Status::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| format!("unknown status {name:?}"))
        },
    )
}

pub fn run(paths: &Paths, args: HistoryArgs) -> CliResult<ExitCode> {
    if let Some(HistoryAction::Prune(prune_args)) = args.action {
        return prune(paths, prune_args);
    }
    let now = now_us();
    let bound = |text: &Option<String>, flag: &str| {
        text.as_deref()
            .map(|t| parse_time_bound(t, now))
            .transpose()
            .with_context(|| format!("invalid {flag}"))
            .map_err(CliError::usage)
    };
    let since = bound(&args.since, "--since")?;
    let until = bound(&args.until, "--until")?;
    let statuses = if args.failed {
        RunFilter::failures()
    } else {
        args.status.clone()
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
    let probe = LivenessProbe::current(hostname());
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
    // "Run now" from the web: trigger `web` and who (crate::origin).
    readers.apply_origins(all.iter_mut().map(|(run, _)| run));
    let done = if partial {
        Exit::Partial.into()
    } else {
        ExitCode::SUCCESS
    };
    if all.is_empty()
        && let Some(job) = &filter.job
    {
        super::note_if_no_such_job(paths, job);
    }

    if args.json {
        let views: Vec<RunView<'_>> = all
            .iter()
            .map(|(run, located)| RunView::of(run, &located.path, located.owner.clone()))
            .collect();
        output::print_json_host("history", &serde_json::json!({ "runs": views }))?;
        return Ok(done);
    }
    let style = Style {
        raw: args.raw,
        color: output::use_color(),
    };
    output::print_text(&view::table(&all, now, &crate::zones::local_zone(), style))?;
    Ok(done)
}

fn prune(paths: &Paths, args: PruneArgs) -> CliResult<ExitCode> {
    // Flags, then the configuration's [history], then the built-in defaults.
    let config = history_db::history_config(paths);
    let retention = Retention::from_given(
        args.keep_runs.or(config.keep_runs.map(u64::from)),
        args.keep_age.or(config.keep_age).map(Timespan::as_usec),
        args.max_output.or(config.max_output).map(ByteSize::bytes),
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
    let probe = LivenessProbe::current(hostname());
    let now = now_us();
    let mut reports: Vec<(String, PruneReport)> = Vec::new();
    let mut failures = 0;
    let mut failed = |path: &std::path::Path, e: jobctl_history::Error| {
        failures += 1;
        let e = anyhow::Error::new(e);
        let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
        output::error(&format!(
            "cannot prune {}: {}",
            path.display(),
            causes.join(": ")
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
        output::print_json_host("history-prune", &serde_json::json!({ "pruned": list }))?;
    } else if reports.is_empty() && failures == 0 {
        output::print_text("No history database to prune.\n")?;
    } else {
        output::print_text(&view::prune_report(&reports))?;
    }
    Ok(if failures > 0 {
        Exit::Failure.into()
    } else {
        ExitCode::SUCCESS
    })
}

/// A time bound for `--since`/`--until`: a duration ago (`2d`, `90min`), an
/// RFC 3339 timestamp, or a local date or date-time (`2027-03-01`,
/// `2027-03-01 02:15`, `2027-03-01T02:15:00`).
fn parse_time_bound(text: &str, now_us: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(span) = jobctl_core::duration::Timespan::parse(text) {
        let ago = i64::try_from(span.as_usec()).unwrap_or(i64::MAX);
        return Ok(now_us.saturating_sub(ago));
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.as_microsecond());
    }
    let tz = crate::zones::local_zone();
    let civil = text
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| text.parse::<jiff::civil::Date>().map(|d| d.to_datetime(jiff::civil::Time::midnight())))
        .with_context(|| {
            format!(
                "\"{text}\" is not a time: write a duration ago (\"2d\", \"90min\"), a date (\"2027-03-01\"), a local time (\"2027-03-01 02:15\") or an RFC 3339 timestamp"
            )
        })?;
    let zoned = civil
        .to_zoned(tz)
        .with_context(|| format!("\"{text}\" does not exist in the local time zone"))?;
    Ok(zoned.timestamp().as_microsecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds() {
        let now = 1_800_000_000_000_000;
        assert_eq!(
            parse_time_bound("2d", now).unwrap(),
            now - 2 * 86_400_000_000
        );
        assert_eq!(
            parse_time_bound("2027-03-01T00:00:00Z", now).unwrap(),
            1_803_859_200_000_000
        );
        assert!(parse_time_bound("2027-03-01", now).is_ok());
        assert!(parse_time_bound("2027-03-01 02:15", now).is_ok());
        assert!(parse_time_bound("yesterday-ish", now).is_err());
    }
}
