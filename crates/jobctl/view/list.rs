//! `jobctl list`: one line per job, and the row `--json` (and `status`,
//! `health`) show for a job.

use jiff::tz::TimeZone;
use jobctl_core::state::JobState;
use jobctl_history::{RunRecord, Status, Trigger, Upstream, Usage};
use serde::Serialize;

use super::format::{self, json_elapse, json_time, local_time};
use crate::output::{self, Lines};
use crate::overview::{JobView, Overview};

/// A job's last run, as `list` and `status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    pub id: String,
    pub status: Status,
    pub trigger: Trigger,
    /// Who started it, for trigger `web` (`null` otherwise).
    pub actor: Option<String>,
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
    /// What the command cost, once the run ended.
    pub usage: Option<Usage>,
    /// For trigger `chain`: the run whose end started it.
    pub upstream: Option<Upstream>,
}

impl LastRun {
    pub fn of(run: &RunRecord) -> LastRun {
        LastRun {
            id: run.id.to_string(),
            status: run.status,
            trigger: run.trigger,
            actor: run.actor.clone(),
            attempt: run.attempt,
            started: json_time(run.started_us),
            ended: run.ended_us.map(json_time),
            duration_ms: run.duration_us().map(|us| us / 1_000),
            exit_code: run.exit_code,
            signal: run.signal,
            error: run.error.clone(),
            invocation_id: run.invocation_id.clone(),
            user: run.user.clone(),
            usage: run.usage,
            upstream: run.upstream.clone(),
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
    /// The job file's `owner`, `team` and `tags` (`null`/empty when unset
    /// or unknown).
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tags: Vec<String>,
}

impl JobRow {
    pub fn of(view: &JobView) -> JobRow {
        let history = view.history.as_ref().map(|h| &h.summary);
        JobRow {
            job: view.job.clone(),
            state: view.derived.state,
            running: view.running(),
            schedule: schedule(view),
            service: view.service.clone(),
            timer: view.timer.clone(),
            next_run: json_elapse(view.next_elapse_usec),
            last_run: history.map(|h| LastRun::of(&h.last)),
            failure_streak: history.map_or(0, |h| h.failure_streak),
            last_success: history.and_then(|h| h.last_success_us).map(json_time),
            source: view.source.clone(),
            owner: view.labels.as_ref().and_then(|l| l.owner.clone()),
            team: view.labels.as_ref().and_then(|l| l.team.clone()),
            tags: view
                .labels
                .as_ref()
                .map(|l| l.tags.clone())
                .unwrap_or_default(),
        }
    }
}

/// The SCHEDULE column: `manual`, or every schedule and the boot delay.
pub fn schedule(view: &JobView) -> String {
    match &view.definition {
        Some(d) if d.is_manual() => "manual".to_string(),
        Some(d) => d
            .schedules
            .iter()
            .map(|s| s.describe_in(d.timezone.as_deref()))
            .chain(d.timer.on_boot.map(|b| format!("{b} after boot")))
            .collect::<Vec<_>>()
            .join("; "),
        None => "-".to_string(),
    }
}

/// The STATE column, `(running)` added while a run is in progress.
pub fn state(view: &JobView) -> String {
    if view.running() {
        format!("{} (running)", view.derived.state)
    } else {
        view.derived.state.to_string()
    }
}

/// The table `jobctl list` prints, times in `zone`. Recorded text (a run's
/// user, error) is a user's to write: control characters are escaped.
pub fn text(overview: &Overview, zone: &TimeZone) -> String {
    output::escape(&table(overview, zone), Lines::Keep).into_owned()
}

fn table(overview: &Overview, zone: &TimeZone) -> String {
    if overview.jobs.is_empty() {
        return "(no jobs)\n".into();
    }
    let mut rows: Vec<[String; 8]> = vec![
        [
            "JOB", "STATE", "NEXT", "LAST", "RESULT", "DURATION", "FAILS", "SCHEDULE",
        ]
        .map(String::from),
    ];
    for view in &overview.jobs {
        let last = view.history.as_ref().map(|h| &h.summary);
        rows.push([
            view.job.clone(),
            state(view),
            format::next_elapse(view.next_elapse_usec, zone),
            last.map_or("-".into(), |h| local_time(h.last.started_us, zone)),
            last.map_or("-".into(), |h| format::result(&h.last)),
            last.map_or("-".into(), |h| {
                format::run_duration(&h.last, overview.now_us)
            }),
            match last.map_or(0, |h| h.failure_streak) {
                0 => "-".into(),
                n => n.to_string(),
            },
            schedule(view),
        ]);
    }
    super::table::columns(&rows)
}
