//! `jobctl health [JOB...]`: the monitoring view. Finds what is wrong with
//! each job — a failed last run (or a streak of them), a run hanging past its
//! timeout, a timer that should run and does not, units out of date with the
//! job files, a job file that does not validate, an expired job still
//! installed — and exits 0 when there is nothing, 1 when there is anything.
//! The judging is pure (`jobctl_core::health`); this gathers the facts
//! ([`crate::overview`]) and prints them for people (a one-line summary
//! first, as Nagios expects), `--json`, or Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use jobctl_core::health::{
    self, DEFAULT_OVERRUN_GRACE_US, HistoryFacts, JobFacts, Problem, ProblemKind, RunFacts,
    RunStatus,
};
use jobctl_core::job::Now;
use jobctl_core::state::JobState;
use jobctl_history::{RunRecord, Status};
use serde::Serialize;

use crate::commands::list::LastRun;
use crate::error::{CliResult, EXIT_FAILURE};
use crate::history_db::{format_utc, signal_name};
use crate::output;
use crate::overview::{self, JobView, Overview};
use crate::paths::{Mode, Paths};

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
///   jobctl health --json | jq '.jobs[] | select(.healthy | not)'
///   jobctl health --prometheus > /var/lib/node_exporter/jobctl.prom.tmp;
///     mv /var/lib/node_exporter/jobctl.prom.tmp /var/lib/node_exporter/jobctl.prom
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HealthArgs {
    /// Only these jobs (default: every job).
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,

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

/// One job's verdict.
#[derive(Debug, Serialize)]
struct JobHealth<'a> {
    job: &'a str,
    state: JobState,
    healthy: bool,
    problems: Vec<Problem>,
    running: bool,
    failure_streak: u32,
    last_run: Option<LastRun>,
    last_success: Option<String>,
}

/// Problems that belong to no job.
#[derive(Debug, Serialize)]
struct GlobalProblem {
    kind: ProblemKind,
    message: String,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    healthy: bool,
    summary: String,
    jobs_checked: usize,
    problems: usize,
    /// Problems by kind.
    counts: BTreeMap<ProblemKind, usize>,
    /// Problems of no particular job (the configuration, a database).
    global: Vec<GlobalProblem>,
    jobs: Vec<JobHealth<'a>>,
}

pub fn run(paths: &Paths, args: HealthArgs) -> CliResult {
    let only = (!args.jobs.is_empty()).then_some(args.jobs.as_slice());
    let overview = overview::gather(
        paths,
        overview::Options {
            only,
            history: true,
            unit_details: false,
            unrecorded: true,
        },
    )?;
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
        if !nix::unistd::geteuid().is_root() {
            message.push_str(" (run as root to check every user's jobs)");
        }
        global.push(GlobalProblem {
            kind: ProblemKind::HistoryUnreadable,
            message,
        });
    }
    if paths.mode == Mode::User {
        // Timers that should run, and stop with the user's manager at logout.
        let timers = overview
            .jobs
            .iter()
            .filter(|v| v.derived.wish.is_some_and(|w| w.on))
            .count();
        if timers > 0
            && let Some((user, false)) = crate::linger::caller()
        {
            let p = health::linger_problem(&user, timers);
            global.push(GlobalProblem {
                kind: p.kind,
                message: p.message,
            });
        }
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
    global.retain(|p| !args.ignore.contains(&p.kind));

    let jobs: Vec<JobHealth<'_>> = overview
        .jobs
        .iter()
        .map(|view| {
            let mut problems = problems_of(view, &overview, args.failures);
            problems.retain(|p| !args.ignore.contains(&p.kind));
            let history = view.history.as_ref().map(|h| &h.summary);
            JobHealth {
                job: &view.job,
                state: view.derived.state,
                healthy: problems.is_empty(),
                problems,
                running: view.running(),
                failure_streak: history.map_or(0, |h| h.failure_streak),
                last_run: history.map(|h| LastRun::of(&h.last)),
                last_success: history.and_then(|h| h.last_success_us).map(format_utc),
            }
        })
        .collect();

    let mut counts: BTreeMap<ProblemKind, usize> = BTreeMap::new();
    for p in jobs.iter().flat_map(|j| &j.problems) {
        *counts.entry(p.kind).or_default() += 1;
    }
    for p in &global {
        *counts.entry(p.kind).or_default() += 1;
    }
    let total: usize = counts.values().sum();
    let unhealthy = jobs.iter().filter(|j| !j.healthy).count();
    let summary = if total == 0 {
        format!(
            "OK - {} job{}, no problems",
            jobs.len(),
            if jobs.len() == 1 { "" } else { "s" }
        )
    } else {
        let by_kind: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "PROBLEMS - {total} in {unhealthy} of {} job{}{}: {}",
            jobs.len(),
            if jobs.len() == 1 { "" } else { "s" },
            if global.is_empty() {
                String::new()
            } else {
                format!(" and {} global", global.len())
            },
            by_kind.join(", ")
        )
    };
    let healthy = total == 0;
    let report = Report {
        healthy,
        summary,
        jobs_checked: jobs.len(),
        problems: total,
        counts,
        global,
        jobs,
    };
    if args.json {
        output::print_json(&report)?;
    } else if args.prometheus {
        output::print_text(&prometheus(&report, &overview))?;
    } else {
        let mut text = format!("{}\n", report.summary);
        if !args.quiet {
            for p in &report.global {
                let _ = writeln!(text, "{}: {}", p.kind, p.message);
            }
            for j in &report.jobs {
                for p in &j.problems {
                    let _ = writeln!(text, "{}: {}: {}", j.job, p.kind, p.message);
                }
            }
        }
        // Problems quote recorded text (a run's error), a user's to write.
        output::print_text(&output::escape(&text, output::Lines::Keep))?;
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILURE)
    })
}

/// A job's problems (also shown by `jobctl status`).
pub fn problems_of(view: &JobView, overview: &Overview, failures: u32) -> Vec<Problem> {
    let history = view.history.as_ref().map(|h| HistoryFacts {
        last: run_facts(&h.summary.last),
        last_failure: h.last_failed_run().map(run_facts),
        failure_streak: h.summary.failure_streak,
        last_success_us: h.summary.last_success_us,
    });
    let zones = crate::zones::HostZones::new();
    let zone = zones.local();
    let now = Now {
        instant: jiff::Timestamp::from_microsecond(overview.now_us)
            .unwrap_or_else(|_| jiff::Timestamp::now()),
        local: &zone,
    };
    let never_fires = view
        .definition
        .as_ref()
        .and_then(|job| job.never_fires(&now, &zones));
    let overdue = crate::commands::watch::overdue_of(view, overview, &zone, &zones);
    let facts = JobFacts {
        job: &view.job,
        derived: &view.derived,
        invalid_reason: view.invalid_reason.as_deref(),
        timer_active: view.timer_active(),
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
            zone: &zone,
            signal_name: &name,
            now_us: overview.now_us,
            jobctl: &crate::paths::jobctl(""),
            systemctl: &crate::paths::systemctl(""),
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

/// node_exporter's textfile format: one gauge family per fact, labelled by
/// job (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
fn prometheus(report: &Report<'_>, overview: &Overview) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let job = |j: &str| format!("{{job=\"{}\"}}", label(j));
    family(
        "jobctl_health_ok",
        "1 when jobctl health found no problem at all.",
        vec![(String::new(), f64::from(u8::from(report.healthy)))],
    );
    family(
        "jobctl_health_problems",
        "Problems jobctl health found, by kind.",
        report
            .counts
            .iter()
            .map(|(k, n)| (format!("{{kind=\"{k}\"}}"), *n as f64))
            .collect(),
    );
    family(
        "jobctl_health_check_timestamp_seconds",
        "When this check ran.",
        vec![(String::new(), overview.now_us as f64 / 1e6)],
    );
    family(
        "jobctl_job_healthy",
        "1 when jobctl health found no problem with the job.",
        report
            .jobs
            .iter()
            .map(|j| (job(j.job), f64::from(u8::from(j.healthy))))
            .collect(),
    );
    family(
        "jobctl_job_problem",
        "1 for each problem of a job, by kind.",
        report
            .jobs
            .iter()
            .flat_map(|j| {
                j.problems.iter().map(move |p| {
                    (
                        format!("{{job=\"{}\",kind=\"{}\"}}", label(j.job), p.kind),
                        1.0,
                    )
                })
            })
            .collect(),
    );
    family(
        "jobctl_job_running",
        "1 while a run of the job is in progress.",
        report
            .jobs
            .iter()
            .map(|j| (job(j.job), f64::from(u8::from(j.running))))
            .collect(),
    );
    family(
        "jobctl_job_failure_streak",
        "Failed runs in a row (0: the last finished run succeeded).",
        report
            .jobs
            .iter()
            .map(|j| (job(j.job), f64::from(j.failure_streak)))
            .collect(),
    );
    let views: BTreeMap<&str, &JobView> =
        overview.jobs.iter().map(|v| (v.job.as_str(), v)).collect();
    let runs = |f: &dyn Fn(&RunRecord) -> Option<f64>| -> Vec<(String, f64)> {
        report
            .jobs
            .iter()
            .filter_map(|j| {
                let h = views.get(j.job)?.history.as_ref()?;
                Some((job(j.job), f(&h.summary.last)?))
            })
            .collect()
    };
    family(
        "jobctl_job_last_run_timestamp_seconds",
        "Start of the job's last recorded run.",
        runs(&|r| Some(r.started_us as f64 / 1e6)),
    );
    family(
        "jobctl_job_last_run_duration_seconds",
        "Duration of the job's last recorded run, once it ended.",
        runs(&|r| r.duration_us().map(|us| us as f64 / 1e6)),
    );
    family(
        "jobctl_job_last_run_success",
        "1 when the job's last recorded run succeeded.",
        runs(&|r| Some(f64::from(u8::from(r.status == Status::Success)))),
    );
    family(
        "jobctl_job_last_success_timestamp_seconds",
        "Start of the job's last successful run still in the history.",
        report
            .jobs
            .iter()
            .filter_map(|j| {
                let h = views.get(j.job)?.history.as_ref()?;
                Some((job(j.job), h.summary.last_success_us? as f64 / 1e6))
            })
            .collect(),
    );
    out
}

/// A label value with `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_kind_parses() {
        for kind in ProblemKind::ALL {
            assert_eq!(parse_kind(kind.as_str()), Ok(kind));
        }
        assert!(parse_kind("nope").unwrap_err().contains("timer-inactive"));
    }
}
