//! `jobctl health [JOB...]`: the monitoring view. Finds what is wrong with
//! each job — a failed last run (or a streak of them), a run hanging past its
//! timeout, a timer that should run and does not, units out of date with the
//! job files, a job file that does not validate, an expired job still
//! installed — and exits 0 when there is nothing, 1 when there is anything.
//! The judging is pure (`jobctl_core::health`); this gathers the facts
//! ([`crate::overview`]) and prints them for people (a one-line summary
//! first, as Nagios expects), `--json`, or Prometheus' text format.

use std::process::ExitCode;

use clap::Args;
use jobctl_core::context::ZoneLookup;
use jobctl_core::health::{
    self, DEFAULT_OVERRUN_GRACE_US, HistoryFacts, JobFacts, Problem, ProblemKind, RunFacts,
    RunStatus,
};
use jobctl_core::job::Now;
use jobctl_history::{RunRecord, Status};

use crate::error::CliResult;
use crate::exit::Exit;
use crate::output;
use crate::overview::{self, JobView, Overview};
use crate::paths::{Mode, Paths};
use crate::view::format::signal_name;
use crate::view::health::{self as view, GlobalProblem, JobHealth, Report};
use crate::zones::HostZones;

/// Check every job (or the named ones) and report problems; exit 1 if any.
///
/// Problems (their kinds, for --ignore and monitoring rules):
///   failed, error, timeout, killed, lost   the last finished run ended so
///                                          (with --failures N: N runs in a row)
///   overrunning      a run is still running a minute past its timeout
///   unit-failed      systemd says the service failed, no failed run recorded
///   start-limit-hit  systemd refused to start the service at its start limit
///   not-loaded       systemd could not load one of the job's units
///   timer-inactive   the job is enabled but its timer is not running
///   timer-not-enabled  the job is enabled but its timer is not (disabled
///                    outside jobctl): it will not start after a reboot
///   never-fires      none of the job's schedules can fire again (a date
///                    that has passed, February 30, past not_after)
///   pending-apply    the installed units differ from the job file
///   not-applied      a job file without units
///   missing-unit     one of the job's units is gone
///   orphaned         units whose job file is gone
///   invalid          the job file (or the configuration) does not validate
///   expired          an expired job is still installed
///   history-unreadable  a history database could not be read
///   linger-off       (--user) timers stop when you log out: lingering is off
///   history-unwritable  the job's last run could not be recorded (its shim
///                       said so in the journal): sandboxing that hides the
///                       history, a full or broken disk
///   overdue          a scheduled run did not start: its time and grace
///                    passed (a timer stopped behind jobctl's back, a start
///                    refused, a manager that was down, a host that was off)
///
/// Runs of disabled and expired jobs are not judged. The first line of the
/// output is a one-line summary (Nagios' status line); then one line per
/// problem.
///
/// Exit status: 0 no problem, 1 a problem (or jobctl could not check),
/// 2 usage error (e.g. an unknown job).
///
/// Examples:
///   jobctl health
///   jobctl health nightly-refresh backup --failures 3
///   jobctl health --ignore expired,pending-apply
///   jobctl health --team analytics --tag etl      # one team's jobs
///   jobctl health --json | jq '.jobs[] | select(.healthy | not)'
///   jobctl health --prometheus > /var/lib/node_exporter/jobctl.prom.tmp;
///     mv /var/lib/node_exporter/jobctl.prom.tmp /var/lib/node_exporter/jobctl.prom
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HealthArgs {
    /// Only these jobs (default: every job).
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,

    #[command(flatten)]
    pub labels: overview::LabelArgs,

    /// A failed last run is a problem only after this many failed runs in a
    /// row (flaky jobs that usually recover).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub failures: u32,

    /// Do not count problems of these kinds (comma-separated).
    #[arg(long, value_name = "KIND", value_delimiter = ',', value_parser = parse_kind)]
    pub ignore: Vec<ProblemKind>,

    /// Print only the one-line summary.
    #[arg(long, short = 'q', conflicts_with_all = ["json", "prometheus"])]
    pub quiet: bool,

    /// Machine-readable output.
    #[arg(long, conflicts_with = "prometheus")]
    pub json: bool,

    /// Prometheus text format, for node_exporter's textfile collector.
    #[arg(long)]
    pub prometheus: bool,
}

fn parse_kind(text: &str) -> Result<ProblemKind, String> {
    ProblemKind::parse(text).ok_or_else(|| {
        let kinds: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown problem kind; one of: {}", kinds.join(", "))
    })
}

pub fn run(paths: &Paths, args: HealthArgs) -> CliResult {
    let only = (!args.jobs.is_empty()).then_some(args.jobs.as_slice());
    let mut overview = overview::gather(
        paths,
        overview::Options {
            only,
            history: true,
            unit_details: false,
            unrecorded: true,
            run_counts: false,
        },
    )?;
    args.labels.retain(&mut overview);
    if let Some(dir) = &overview.missing_dir {
        output::note(&format!(
            "the jobs folder {} does not exist yet (no jobs to check)",
            dir.display()
        ));
        output::hint(&crate::paths::missing_jobs_dir_hint(dir));
    }
    let linger = if paths.mode == Mode::User {
        // Timers that should run, and stop with the user's manager at logout.
        let timers = overview
            .jobs
            .iter()
            .filter(|v| v.derived.wish.is_some_and(|w| w.on))
            .count();
        if timers > 0
            && let Some((user, false)) = crate::linger::caller()
        {
            Some(health::linger_problem(&user, timers))
        } else {
            None
        }
    } else {
        None
    };
    let host = HostZones::new();
    let local = host.local();
    let zones = Zones {
        lookup: &host,
        local: &local,
    };
    let checks = Checks {
        failures: args.failures,
        ignore: &args.ignore,
        as_root: nix::unistd::geteuid().is_root(),
        linger,
    };
    let report = assess(&overview, &checks, &zones);
    if args.json {
        output::print_json_host("health", &report)?;
    } else if args.prometheus {
        output::print_text(&view::prometheus(&report, &overview))?;
    } else {
        output::print_text(&view::text(&report, args.quiet))?;
    }
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        Exit::Failure.into()
    })
}

/// What `health` checks besides the overview.
pub struct Checks<'a> {
    /// `--failures`: failed runs in a row before a failure is a problem.
    pub failures: u32,
    /// `--ignore`: problem kinds not counted.
    pub ignore: &'a [ProblemKind],
    /// Whether the caller is root (a non-root reader is told to ask as root
    /// when a database could not be read).
    pub as_root: bool,
    /// Per-user mode without lingering: the problem that timers stop at
    /// logout.
    pub linger: Option<Problem>,
}

/// Every job's problems and the global ones (the configuration, the
/// history's databases, lingering), less the ignored kinds.
pub fn assess<'a>(overview: &'a Overview, checks: &Checks<'_>, zones: &Zones<'_>) -> Report<'a> {
    let mut global = Vec::new();
    for e in &overview.config_errors {
        global.push(GlobalProblem {
            kind: ProblemKind::Invalid,
            message: format!("the configuration does not validate: {e}"),
        });
    }
    for (located, error) in &overview.skipped {
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        let mut message = format!(
            "cannot read the history in {}: {}",
            located.path.display(),
            causes.join(": ")
        );
        if !checks.as_root {
            message.push_str(" (run as root to check every user's jobs)");
        }
        global.push(GlobalProblem {
            kind: ProblemKind::HistoryUnreadable,
            message,
        });
    }
    if let Some(p) = &checks.linger {
        global.push(GlobalProblem {
            kind: p.kind,
            message: p.message.clone(),
        });
    }
    for (located, bad) in &overview.bad_rows {
        let first = bad.first().map(ToString::to_string).unwrap_or_default();
        global.push(GlobalProblem {
            kind: ProblemKind::HistoryUnreadable,
            message: format!(
                "{} row{} of the history in {} cannot be decoded and {} skipped ({first}{})",
                bad.len(),
                if bad.len() == 1 { "" } else { "s" },
                located.path.display(),
                if bad.len() == 1 { "was" } else { "were" },
                if bad.len() > 1 { ", …" } else { "" },
            ),
        });
    }
    global.retain(|p| !checks.ignore.contains(&p.kind));
    let jobs: Vec<JobHealth<'_>> = overview
        .jobs
        .iter()
        .map(|view| {
            let mut problems = problems_of(view, overview, checks.failures, zones);
            problems.retain(|p| !checks.ignore.contains(&p.kind));
            JobHealth::of(view, problems)
        })
        .collect();
    Report::new(jobs, global)
}

/// The zones `health`'s rules read: the host's, or fixed ones in tests.
pub struct Zones<'a> {
    pub lookup: &'a dyn ZoneLookup,
    /// The local zone (for jobs without a `timezone`, and the times in
    /// messages).
    pub local: &'a jiff::tz::TimeZone,
}

/// A job's problems (also shown by `jobctl status`).
pub fn problems_of(
    view: &JobView,
    overview: &Overview,
    failures: u32,
    zones: &Zones<'_>,
) -> Vec<Problem> {
    let history = view.history.as_ref().map(|h| HistoryFacts {
        last: run_facts(&h.summary.last),
        last_failure: h.last_failed_run().map(run_facts),
        failure_streak: h.summary.failure_streak,
        last_success_us: h.summary.last_success_us,
    });
    let zone = zones.local;
    let now = Now {
        instant: jiff::Timestamp::from_microsecond(overview.now_us)
            .unwrap_or_else(|_| jiff::Timestamp::now()),
        local: zone,
    };
    let never_fires = view
        .definition
        .as_ref()
        .and_then(|job| job.never_fires(&now, zones.lookup));
    let overdue = crate::commands::watch::overdue_of(view, overview, zone, zones.lookup);
    let facts = JobFacts {
        job: &view.job,
        derived: &view.derived,
        invalid_reason: view.invalid_reason.as_deref(),
        timer_active: view.timer_active(),
        timer_enabled: view.timer_enabled,
        service_failed: view.service_failed(),
        service_result: &view.service_result,
        not_loaded: &view.not_loaded,
        service: &view.service,
        not_after: view.rendered.as_ref().and_then(|r| r.not_after),
        never_fires: never_fires.as_deref(),
        history: history.as_ref(),
        unrecorded: view.unrecorded.as_ref(),
        overdue: overdue.as_ref(),
    };
    let name = |sig: i32| signal_name(sig);
    health::assess(
        &facts,
        &health::Options {
            failures,
            overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
            zone,
            signal_name: &name,
            now_us: overview.now_us,
            jobctl: &crate::paths::jobctl(""),
            systemctl: &crate::paths::systemctl(""),
            apply_blocked: overview.apply_blocked,
        },
    )
}

fn run_facts(run: &RunRecord) -> RunFacts {
    RunFacts {
        id: run.id.short(),
        status: match run.status {
            Status::Running => RunStatus::Running,
            Status::Success => RunStatus::Success,
            Status::Failed => RunStatus::Failed,
            Status::Error => RunStatus::Error,
            Status::Timeout => RunStatus::Timeout,
            Status::Killed => RunStatus::Killed,
            Status::Lost => RunStatus::Lost,
            Status::Expired => RunStatus::Expired,
        },
        started_us: run.started_us,
        ended_us: run.ended_us,
        deadline_us: run.deadline_us,
        exit_code: run.exit_code,
        signal: run.signal,
        error: run.error.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses() {
        for kind in ProblemKind::ALL {
            assert_eq!(parse_kind(kind.as_str()), Ok(kind));
        }
        assert!(parse_kind("nope").unwrap_err().contains("timer-inactive"));
    }
}
