//! `jobctl health`: the report (`--json`), its one-line summary and
//! problem lines for people, and Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jobctl_core::health::{Problem, ProblemKind};
use jobctl_core::state::JobState;
use jobctl_history::{RunRecord, Status};
use serde::Serialize;

use super::format::json_time;
use super::list::LastRun;
use crate::output::{self, Lines};
use crate::overview::{JobView, Overview};

/// One job's verdict.
#[derive(Debug, Serialize)]
pub struct JobHealth<'a> {
    pub job: &'a str,
    pub state: JobState,
    pub healthy: bool,
    pub problems: Vec<Problem>,
    pub running: bool,
    pub failure_streak: u32,
    pub last_run: Option<LastRun>,
    pub last_success: Option<String>,
}

impl<'a> JobHealth<'a> {
    /// The verdict on `view`, given its problems.
    pub fn of(view: &'a JobView, problems: Vec<Problem>) -> JobHealth<'a> {
        let history = view.history.as_ref().map(|h| &h.summary);
        JobHealth {
            job: &view.job,
            state: view.derived.state,
            healthy: problems.is_empty(),
            problems,
            running: view.running(),
            failure_streak: history.map_or(0, |h| h.failure_streak),
            last_run: history.map(|h| LastRun::of(&h.last)),
            last_success: history.and_then(|h| h.last_success_us).map(json_time),
        }
    }
}

/// Problems that belong to no job.
#[derive(Debug, Serialize)]
pub struct GlobalProblem {
    pub kind: ProblemKind,
    pub message: String,
}

/// What `health` found, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub healthy: bool,
    /// The one-line summary (Nagios' status line).
    pub summary: String,
    pub jobs_checked: usize,
    pub problems: usize,
    /// Problems by kind.
    pub counts: BTreeMap<ProblemKind, usize>,
    /// Problems of no particular job (the configuration, a database).
    pub global: Vec<GlobalProblem>,
    pub jobs: Vec<JobHealth<'a>>,
}

impl<'a> Report<'a> {
    /// Counts the problems and writes the summary line.
    pub fn new(jobs: Vec<JobHealth<'a>>, global: Vec<GlobalProblem>) -> Report<'a> {
        let mut counts: BTreeMap<ProblemKind, usize> = BTreeMap::new();
        for p in jobs.iter().flat_map(|j| &j.problems) {
            *counts.entry(p.kind).or_default() += 1;
        }
        for p in &global {
            *counts.entry(p.kind).or_default() += 1;
        }
        let total: usize = counts.values().sum();
        let unhealthy = jobs.iter().filter(|j| !j.healthy).count();
        let summary = summary_line(jobs.len(), unhealthy, &counts, global.len());
        Report {
            healthy: total == 0,
            summary,
            jobs_checked: jobs.len(),
            problems: total,
            counts,
            global,
            jobs,
        }
    }
}

/// The one-line summary (Nagios' status line) of `jobs` jobs checked, of
/// which `unhealthy` have problems, with these problems by kind, `global` of
/// them of no particular job. Also used by jobctl-web to recount a report
/// narrowed to the jobs a filtered token may see.
pub fn summary_line(
    jobs: usize,
    unhealthy: usize,
    counts: &BTreeMap<ProblemKind, usize>,
    global: usize,
) -> String {
    let total: usize = counts.values().sum();
    let plural = if jobs == 1 { "" } else { "s" };
    if total == 0 {
        format!("OK - {jobs} job{plural}, no problems")
    } else {
        let by_kind: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "PROBLEMS - {total} in {unhealthy} of {jobs} job{plural}{}: {}",
            if global == 0 {
                String::new()
            } else {
                format!(" and {global} global")
            },
            by_kind.join(", ")
        )
    }
}

/// The summary line, then (unless `quiet`) one line per problem. Problems
/// quote recorded text (a run's error), a user's to write: control
/// characters are escaped.
pub fn text(report: &Report<'_>, quiet: bool) -> String {
    let mut text = format!("{}\n", report.summary);
    if !quiet {
        for p in &report.global {
            let _ = writeln!(text, "{}: {}", p.kind, p.message);
        }
        for j in &report.jobs {
            for p in &j.problems {
                let _ = writeln!(text, "{}: {}: {}", j.job, p.kind, p.message);
            }
        }
    }
    output::escape(&text, Lines::Keep).into_owned()
}

/// node_exporter's textfile format: one gauge family per fact, labelled by
/// job (<https://prometheus.io/docs/instrumenting/exposition_formats/>).
pub fn prometheus(report: &Report<'_>, overview: &Overview) -> String {
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
        "jobctl_job_last_run_cpu_seconds",
        "CPU time the command of the job's last recorded run used, once it ended, by mode.",
        report
            .jobs
            .iter()
            .filter_map(|j| {
                let u = views.get(j.job)?.history.as_ref()?.summary.last.usage?;
                Some(
                    [("user", u.cpu_user_us), ("system", u.cpu_system_us)].map(|(mode, us)| {
                        (
                            format!("{{job=\"{}\",mode=\"{mode}\"}}", label(j.job)),
                            us as f64 / 1e6,
                        )
                    }),
                )
            })
            .flatten()
            .collect(),
    );
    family(
        "jobctl_job_last_run_memory_peak_bytes",
        "Peak memory of the command of the job's last recorded run, once it ended.",
        runs(&|r| r.usage.map(|u| u.memory_peak_bytes as f64)),
    );
    family(
        "jobctl_job_last_run_read_bytes",
        "Bytes the command of the job's last recorded run read from storage, once it ended.",
        runs(&|r| r.usage.map(|u| u.read_bytes as f64)),
    );
    family(
        "jobctl_job_last_run_written_bytes",
        "Bytes the command of the job's last recorded run wrote to storage, once it ended.",
        runs(&|r| r.usage.map(|u| u.written_bytes as f64)),
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
}
