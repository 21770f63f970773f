//! What `jobctl metrics` exports, as Prometheus metric families: which
//! facts about a job become which series, with which labels, and which
//! status counts as what. The binary gathers the facts and prints the
//! families in Prometheus' text format (`view::metrics`); docs/metrics.md
//! describes every metric.
//!
//! Labels are bounded by what root's job files and configuration declare:
//! `job`, `user` (whom the job runs as), `team` and `tags` (one label, the
//! job's tags sorted and joined with commas) where the job file sets them,
//! and for a few families a `status`, `mode`, `channel` or `result` from a
//! fixed set (or the configured channels). No run id, exit code or time is
//! ever a label.

use crate::health::RunStatus;

/// Every status a run can have, in the order series are printed.
pub const STATUSES: [RunStatus; 8] = [
    RunStatus::Running,
    RunStatus::Success,
    RunStatus::Failed,
    RunStatus::Error,
    RunStatus::Timeout,
    RunStatus::Killed,
    RunStatus::Lost,
    RunStatus::Expired,
];

/// The statuses a finished run ends with: `jobctl_job_runs_total` has one
/// series for each, 0 until a run ends so (a counter that appears only at
/// its first increment hides that increment from `increase()`).
pub const FINISHED: [RunStatus; 7] = [
    RunStatus::Success,
    RunStatus::Failed,
    RunStatus::Error,
    RunStatus::Timeout,
    RunStatus::Killed,
    RunStatus::Lost,
    RunStatus::Expired,
];

/// A job's last run, as the metrics need it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub status: RunStatus,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    /// CPU time of the command, user and system, µs (once it ended, when
    /// measured).
    pub cpu_us: Option<(u64, u64)>,
    pub memory_peak_bytes: Option<u64>,
}

/// What is known about one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFacts {
    pub job: String,
    /// Whom the job runs as.
    pub user: String,
    pub team: Option<String>,
    pub tags: Vec<String>,
    /// The timer should run: the job is enabled (by its file or an
    /// operator) and not expired.
    pub enabled: bool,
    /// A scheduled run did not start in time (the rule of `health` and
    /// `watch`).
    pub overdue: bool,
    /// The timer's next elapse, µs since the epoch.
    pub next_run_us: Option<i64>,
    pub last: Option<LastRun>,
    /// Start of the newest successful run still in the history.
    pub last_success_us: Option<i64>,
    pub failure_streak: u32,
    /// Finished runs by status, ever (kept rows plus pruned ones).
    pub runs_total: Vec<(RunStatus, u64)>,
    /// The job's `succeed_within`, µs: the threshold of the alert on the
    /// time since its last success.
    pub succeed_within_us: Option<u64>,
}

/// Delivery attempts of one notification channel with one outcome, ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelAttempts {
    pub channel: String,
    pub ok: bool,
    pub attempts: u64,
}

/// Prometheus' metric types jobctl uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One series: its labels in order, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// One metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// The labels of a job: `job`, `user`, then `team` and `tags` when set.
pub fn job_labels(job: &JobFacts) -> Vec<(&'static str, String)> {
    let mut labels = vec![("job", job.job.clone()), ("user", job.user.clone())];
    if let Some(team) = &job.team {
        labels.push(("team", team.clone()));
    }
    if !job.tags.is_empty() {
        let mut tags = job.tags.clone();
        tags.sort();
        tags.dedup();
        labels.push(("tags", tags.join(",")));
    }
    labels
}

/// A series of a job: the label besides the job's own, if any, and the
/// value.
type Extra = (Option<(&'static str, String)>, f64);

fn seconds(us: i64) -> f64 {
    us as f64 / 1e6
}

/// Every family, in a fixed order, each with one series per job it applies
/// to (a family with no series is still listed, so its HELP and TYPE are
/// always there). `notifications` is `None` where there is no notification
/// database to read (then the family is left out).
pub fn families(jobs: &[JobFacts], notifications: Option<&[ChannelAttempts]>) -> Vec<Family> {
    let mut out = Vec::new();
    let mut per_job = |name: &'static str,
                       help: &'static str,
                       kind: Kind,
                       value: &dyn Fn(&JobFacts) -> Vec<Extra>| {
        let mut samples = Vec::new();
        for job in jobs {
            for (extra, v) in value(job) {
                let mut labels = job_labels(job);
                labels.extend(extra);
                samples.push(Sample { labels, value: v });
            }
        }
        out.push(Family {
            name,
            help,
            kind,
            samples,
        });
    };
    let one = |v: Option<f64>| v.map(|v| (None, v)).into_iter().collect::<Vec<_>>();
    per_job(
        "jobctl_job_enabled",
        "1 when the job's timer should run (enabled by its file or an operator, not expired).",
        Kind::Gauge,
        &|j| one(Some(f64::from(u8::from(j.enabled)))),
    );
    per_job(
        "jobctl_job_last_run_start_timestamp_seconds",
        "Start of the job's last recorded run.",
        Kind::Gauge,
        &|j| one(j.last.as_ref().map(|l| seconds(l.started_us))),
    );
    per_job(
        "jobctl_job_last_run_end_timestamp_seconds",
        "End of the job's last recorded run, once it ended.",
        Kind::Gauge,
        &|j| one(j.last.as_ref().and_then(|l| l.ended_us).map(seconds)),
    );
    per_job(
        "jobctl_job_last_run_duration_seconds",
        "Duration of the job's last recorded run, once it ended.",
        Kind::Gauge,
        &|j| {
            one(j.last.as_ref().and_then(|l| {
                l.ended_us
                    .map(|end| seconds(end.saturating_sub(l.started_us).max(0)))
            }))
        },
    );
    per_job(
        "jobctl_job_last_run_status",
        "1 for the status of the job's last recorded run, 0 for the others.",
        Kind::Gauge,
        &|j| match &j.last {
            Some(last) => STATUSES
                .iter()
                .map(|s| {
                    (
                        Some(("status", s.as_str().to_string())),
                        f64::from(u8::from(*s == last.status)),
                    )
                })
                .collect(),
            None => Vec::new(),
        },
    );
    per_job(
        "jobctl_job_last_success_timestamp_seconds",
        "Start of the job's newest successful run still in the history.",
        Kind::Gauge,
        &|j| one(j.last_success_us.map(seconds)),
    );
    per_job(
        "jobctl_job_runs_total",
        "Finished runs of the job by status, including those retention deleted.",
        Kind::Counter,
        &|j| {
            FINISHED
                .iter()
                .map(|s| {
                    let n = j
                        .runs_total
                        .iter()
                        .filter(|(status, _)| status == s)
                        .map(|(_, n)| *n)
                        .sum::<u64>();
                    (Some(("status", s.as_str().to_string())), n as f64)
                })
                .collect()
        },
    );
    per_job(
        "jobctl_job_failure_streak",
        "Failed runs in a row (0: the last finished run succeeded).",
        Kind::Gauge,
        &|j| one(Some(f64::from(j.failure_streak))),
    );
    per_job(
        "jobctl_job_overdue",
        "1 when a scheduled run of the job did not start in time (its time and grace passed).",
        Kind::Gauge,
        &|j| one(Some(f64::from(u8::from(j.overdue)))),
    );
    per_job(
        "jobctl_job_next_run_timestamp_seconds",
        "When the job's timer fires next.",
        Kind::Gauge,
        &|j| one(j.next_run_us.map(seconds)),
    );
    per_job(
        "jobctl_job_succeed_within_seconds",
        "The job's succeed_within: how often it must succeed (the threshold of JobctlJobNotSucceededSince).",
        Kind::Gauge,
        &|j| one(j.succeed_within_us.map(|us| us as f64 / 1e6)),
    );
    per_job(
        "jobctl_job_last_run_cpu_seconds",
        "CPU time the command of the job's last recorded run used, by mode, once it ended.",
        Kind::Gauge,
        &|j| match j.last.as_ref().and_then(|l| l.cpu_us) {
            Some((user, system)) => vec![
                (Some(("mode", "user".to_string())), user as f64 / 1e6),
                (Some(("mode", "system".to_string())), system as f64 / 1e6),
            ],
            None => Vec::new(),
        },
    );
    per_job(
        "jobctl_job_last_run_memory_peak_bytes",
        "Peak memory of the command of the job's last recorded run, once it ended.",
        Kind::Gauge,
        &|j| {
            one(j
                .last
                .as_ref()
                .and_then(|l| l.memory_peak_bytes)
                .map(|b| b as f64))
        },
    );
    if let Some(channels) = notifications {
        out.push(Family {
            name: "jobctl_notifications_total",
            help: "Delivery attempts of notifications by channel and result (sent, failed), including those pruned.",
            kind: Kind::Counter,
            samples: channels
                .iter()
                .map(|c| Sample {
                    labels: vec![
                        ("channel", c.channel.clone()),
                        ("result", if c.ok { "sent" } else { "failed" }.to_string()),
                    ],
                    value: c.attempts as f64,
                })
                .collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> JobFacts {
        JobFacts {
            job: name.into(),
            user: "root".into(),
            team: None,
            tags: Vec::new(),
            enabled: true,
            overdue: false,
            next_run_us: None,
            last: None,
            last_success_us: None,
            failure_streak: 0,
            runs_total: Vec::new(),
            succeed_within_us: None,
        }
    }

    fn family<'a>(all: &'a [Family], name: &str) -> &'a Family {
        all.iter().find(|f| f.name == name).unwrap()
    }

    #[test]
    fn tags_are_one_sorted_label_and_unset_labels_are_left_out() {
        let mut j = job("a");
        j.team = Some("data".into());
        j.tags = vec!["nightly".into(), "etl".into(), "etl".into()];
        assert_eq!(
            job_labels(&j),
            [
                ("job", "a".to_string()),
                ("user", "root".to_string()),
                ("team", "data".to_string()),
                ("tags", "etl,nightly".to_string())
            ]
        );
        assert_eq!(job_labels(&job("b")).len(), 2);
    }

    #[test]
    fn every_finished_status_has_a_counter_from_zero() {
        let mut j = job("a");
        j.runs_total = vec![(RunStatus::Success, 3), (RunStatus::Lost, 1)];
        let all = families(&[j], None);
        let runs = family(&all, "jobctl_job_runs_total");
        assert_eq!(runs.kind, Kind::Counter);
        let values: Vec<(String, f64)> = runs
            .samples
            .iter()
            .map(|s| (s.labels[2].1.clone(), s.value))
            .collect();
        assert_eq!(
            values,
            [
                ("success".to_string(), 3.0),
                ("failed".to_string(), 0.0),
                ("error".to_string(), 0.0),
                ("timeout".to_string(), 0.0),
                ("killed".to_string(), 0.0),
                ("lost".to_string(), 1.0),
                ("expired".to_string(), 0.0)
            ]
        );
        assert!(all.iter().all(|f| f.name != "jobctl_notifications_total"));
    }

    #[test]
    fn the_last_status_is_one_series_per_status() {
        let mut j = job("a");
        j.last = Some(LastRun {
            status: RunStatus::Timeout,
            started_us: 10_000_000,
            ended_us: Some(12_500_000),
            cpu_us: None,
            memory_peak_bytes: None,
        });
        let all = families(&[j, job("never-ran")], None);
        let status = family(&all, "jobctl_job_last_run_status");
        assert_eq!(
            status.samples.len(),
            STATUSES.len(),
            "only the job that ran"
        );
        let ones: Vec<&str> = status
            .samples
            .iter()
            .filter(|s| s.value == 1.0)
            .map(|s| s.labels[2].1.as_str())
            .collect();
        assert_eq!(ones, ["timeout"]);
        let duration = family(&all, "jobctl_job_last_run_duration_seconds");
        assert_eq!(duration.samples.len(), 1);
        assert_eq!(duration.samples[0].value, 2.5);
        // No cpu figures: no series, but the family is listed.
        assert!(
            family(&all, "jobctl_job_last_run_cpu_seconds")
                .samples
                .is_empty()
        );
    }

    #[test]
    fn no_label_is_unbounded() {
        let mut j = job("a");
        j.last = Some(LastRun {
            status: RunStatus::Failed,
            started_us: 1,
            ended_us: Some(2),
            cpu_us: Some((1, 2)),
            memory_peak_bytes: Some(3),
        });
        j.next_run_us = Some(5);
        j.last_success_us = Some(1);
        let channels = [ChannelAttempts {
            channel: "ops".into(),
            ok: false,
            attempts: 2,
        }];
        let allowed = [
            "job", "user", "team", "tags", "status", "mode", "channel", "result",
        ];
        for f in families(&[j], Some(&channels)) {
            assert!(f.name.starts_with("jobctl_"));
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            for s in &f.samples {
                for (name, _) in &s.labels {
                    assert!(allowed.contains(name), "{}: {name}", f.name);
                }
            }
        }
    }
}
