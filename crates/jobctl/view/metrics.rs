//! `jobctl metrics`: the facts of every job as `jobctl_core::metrics`
//! wants them, and Prometheus' text exposition of its families
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>).

use std::fmt::Write as _;

use jobctl_core::health::RunStatus;
use jobctl_core::metrics::{Family, JobFacts, LastRun};
use jobctl_history::{RunRecord, Status};

use crate::overview::{JobView, Overview};

/// The facts of every job in `overview`. `default_user` is whom a job runs
/// as when its file names nobody (root in system mode, the caller with
/// `--user`); `overdue` is the overdue rule's verdict on a job.
pub fn facts(
    overview: &Overview,
    default_user: &str,
    overdue: &dyn Fn(&JobView) -> bool,
) -> Vec<JobFacts> {
    overview
        .jobs
        .iter()
        .map(|view| {
            let history = view.history.as_ref();
            let labels = view.labels.clone().unwrap_or_default();
            let user = view
                .definition
                .as_ref()
                .and_then(|d| d.user.clone())
                .or_else(|| view.rendered.as_ref().and_then(|r| r.users_folder.clone()))
                .unwrap_or_else(|| default_user.to_string());
            JobFacts {
                job: view.job.clone(),
                user,
                team: labels.team,
                tags: labels.tags,
                enabled: view.derived.wish.is_some_and(|w| w.on),
                overdue: overdue(view),
                next_run_us: (view.next_elapse_usec > 0)
                    .then(|| i64::try_from(view.next_elapse_usec).unwrap_or(i64::MAX)),
                last: history.map(|h| last_run(&h.summary.last)),
                last_success_us: history.and_then(|h| h.summary.last_success_us),
                failure_streak: history.map_or(0, |h| h.summary.failure_streak),
                runs_total: history
                    .and_then(|h| h.run_counts.as_ref())
                    .map(|counts| {
                        counts
                            .iter()
                            .map(|(status, n)| (run_status(*status), *n))
                            .collect()
                    })
                    .unwrap_or_default(),
                succeed_within_us: view
                    .definition
                    .as_ref()
                    .and_then(|d| d.notify.succeed_within)
                    .map(|t| t.as_usec()),
            }
        })
        .collect()
}

fn last_run(run: &RunRecord) -> LastRun {
    LastRun {
        status: run_status(run.status),
        started_us: run.started_us,
        ended_us: run.ended_us,
        cpu_us: run.usage.map(|u| (u.cpu_user_us, u.cpu_system_us)),
        memory_peak_bytes: run.usage.map(|u| u.memory_peak_bytes),
    }
}

fn run_status(status: Status) -> RunStatus {
    match status {
        Status::Running => RunStatus::Running,
        Status::Success => RunStatus::Success,
        Status::Failed => RunStatus::Failed,
        Status::Error => RunStatus::Error,
        Status::Timeout => RunStatus::Timeout,
        Status::Killed => RunStatus::Killed,
        Status::Lost => RunStatus::Lost,
        Status::Expired => RunStatus::Expired,
    }
}

/// The text exposition: `# HELP` and `# TYPE` for each family, then its
/// series, label values escaped as the format says.
pub fn text(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let _ = writeln!(out, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
        for sample in &family.samples {
            out.push_str(family.name);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", label(value));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", sample.value);
        }
    }
    out
}

/// A label value as the format wants it: `\`, `"` and line breaks
/// escaped. Other control characters (which no job file, configuration or
/// channel name can hold) become U+FFFD: the format has no escape for them,
/// and a terminal must not get them raw.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_control_characters_replaced() {
        assert_eq!(
            label("a\"b\\c\nd\x1b[0m\u{85}"),
            "a\\\"b\\\\c\\nd\u{fffd}[0m\u{fffd}"
        );
    }
}
