//! The watch's engine: from what is known about a job (its settings, its
//! schedule, its newest runs), the incident state stored by the previous
//! pass and the present, which events are due and the new state.
//!
//! Pure: the binary gathers the facts (`jobctl watch --once`), stores the
//! state and the events in the history, and sends them.
//!
//! Rules (docs/notifications.md):
//! - **failure**: once `notify_after` finished runs in a row have failed
//!   (failed, error, timeout, killed, lost), one event opens an incident —
//!   `lost` instead when the run that opened it is lost. Then nothing more
//!   for that incident but reminders, each channel every its `repeat`.
//!   While a run is retrying (its newest attempt is the second or later and
//!   still running) the earlier attempts are not judged yet.
//! - **recovery** of a failure: the first success that started after the
//!   run that opened the incident.
//! - **overdue**: [`crate::overdue`]'s rule, for a job whose timer should run
//!   (enabled, installed, up to date); once, then reminders; **recovery**
//!   when a run starts. A job that stops being judged (disabled, removed,
//!   expired, its file changed) closes its overdue incident without an
//!   event, and is judged afresh from when it is judged again.
//! - **overrun**: a run still running past `warn_after` after its start, or
//!   a minute past its timeout, whichever is first: once per run.
//!
//! Every event has an id that depends only on the host, the job, the kind
//! and what opened the incident (plus the reminder's number and interval),
//! so a pass that runs again after a crash makes the same ids, and the queue
//! keeps each event once.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::context::ZoneLookup;
use crate::duration::Timespan;
use crate::health::RunStatus;
use crate::job::Job;
use crate::overdue::{self, Expected, LastRun};

/// A minute past the timeout: a run still there is stuck (systemd stops it
/// at its timeout).
pub const OVERRUN_PAST_TIMEOUT_US: i64 = 60_000_000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Failure,
    Recovery,
    Overdue,
    Lost,
    Overrun,
    /// `jobctl notify test`.
    Test,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Failure,
        EventKind::Recovery,
        EventKind::Overdue,
        EventKind::Lost,
        EventKind::Overrun,
        EventKind::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Failure => "failure",
            EventKind::Recovery => "recovery",
            EventKind::Overdue => "overdue",
            EventKind::Lost => "lost",
            EventKind::Overrun => "overrun",
            EventKind::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run, as much as the engine needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// The run id (hex), as `jobctl logs --run` takes it.
    pub id: String,
    pub status: RunStatus,
    pub started_us: i64,
    pub ended_us: Option<i64>,
    pub deadline_us: Option<i64>,
    pub attempt: u32,
}

/// A job's newest runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runs {
    /// The newest run (possibly in progress).
    pub last: RunInfo,
    /// The newest finished run, when it failed.
    pub last_failure: Option<RunInfo>,
    /// Failed finished runs in a row (0: the newest finished one succeeded).
    pub failure_streak: u32,
    /// Start of the newest successful run.
    pub last_success_us: Option<i64>,
}

/// One channel of a job, with its reminder interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRepeat {
    pub name: String,
    pub repeat: Option<Timespan>,
}

/// Everything known about one job with channels.
#[derive(Debug, Clone, Copy)]
pub struct JobInput<'a> {
    pub job: &'a Job,
    pub channels: &'a [ChannelRepeat],
    pub runs: Option<&'a Runs>,
    /// The job's timer should run and is installed as its file says:
    /// judge it for overdue runs.
    pub judge_schedule: bool,
    /// What identifies the installed schedule (the timer's `[Timer]`
    /// section): when it changes, the schedule is judged afresh.
    pub schedule_key: Option<&'a str>,
    /// When the installed timer was written (its file's time), if known:
    /// where the schedule is judged from when the watch first sees it.
    pub installed_us: Option<i64>,
}

/// The incident state of one job, kept between passes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchState {
    /// The open failure (or lost) incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Incident>,
    /// The open overdue incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<Incident>,
    /// The run the last overrun event was about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrun_run: Option<String>,
    /// The schedule judged (see [`JobInput::schedule_key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Since when this schedule has been judged (µs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_us: Option<i64>,
    /// The job was not judged at the last pass (disabled, expired, its file
    /// changed and not applied): once judged again, it is judged from then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

impl WatchState {
    pub fn is_empty(&self) -> bool {
        *self == WatchState::default()
    }
}

/// An open incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// `failure`, `lost` or `overdue`.
    pub kind: EventKind,
    /// What opened it: the failed run's id, or the expected start (µs).
    pub key: String,
    /// When the watch opened it (µs): reminders count from here.
    pub opened_us: i64,
    /// The start of the run that opened a failure incident; the baseline of
    /// an overdue one (a run started after it closes it).
    pub since_us: i64,
    /// Reminders sent so far, per channel.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reminders: BTreeMap<String, u32>,
}

/// One event to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Idempotency key (32 hex digits).
    pub id: String,
    pub kind: EventKind,
    pub job: String,
    pub channels: Vec<String>,
    /// The run it is about (the failed, lost, overrunning or recovering run).
    pub run: Option<RunInfo>,
    pub failure_streak: u32,
    /// 0 for the first event of an incident; n for its n-th reminder.
    pub reminder: u32,
    /// For a recovery: what ended.
    pub recovers: Option<EventKind>,
    /// For overdue (and its recovery): when the run was expected.
    pub expected: Option<Expected>,
    /// When the incident was opened (µs).
    pub opened_us: i64,
}

/// The present and where events are made.
pub struct Ctx<'a> {
    pub host: &'a str,
    pub now_us: i64,
    /// The host's zone (schedules without one).
    pub local: &'a TimeZone,
    pub zones: &'a dyn ZoneLookup,
}

/// The event id: the first 128 bits of SHA-256 over the host, the job, the
/// kind and what identifies the incident, in hex.
pub fn event_id(host: &str, job: &str, kind: EventKind, incident: &str) -> String {
    let mut h = Sha256::new();
    for part in [host, job, kind.as_str(), incident] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One pass over one job: the events due and the state to store.
pub fn evaluate(
    input: &JobInput<'_>,
    state: &WatchState,
    ctx: &Ctx<'_>,
) -> (Vec<Event>, WatchState) {
    let mut next = state.clone();
    let mut events = Vec::new();
    let job = input.job.name.as_str();
    let all: Vec<String> = input.channels.iter().map(|c| c.name.clone()).collect();
    let event = |kind: EventKind, incident: &str, run: Option<&RunInfo>, opened_us: i64| Event {
        id: event_id(ctx.host, job, kind, incident),
        kind,
        job: job.to_string(),
        channels: all.clone(),
        run: run.cloned(),
        failure_streak: input.runs.map_or(0, |r| r.failure_streak),
        reminder: 0,
        recovers: None,
        expected: None,
        opened_us,
    };

    // Failures, lost runs and their recovery.
    if let Some(r) = input.runs {
        let retrying = r.last.status == RunStatus::Running && r.last.attempt > 1;
        match &mut next.failure {
            None if !retrying => {
                if r.failure_streak >= input.job.notify.after.max(1)
                    && let Some(failed) = &r.last_failure
                {
                    let kind = if failed.status == RunStatus::Lost {
                        EventKind::Lost
                    } else {
                        EventKind::Failure
                    };
                    events.push(event(kind, &failed.id, Some(failed), ctx.now_us));
                    next.failure = Some(Incident {
                        kind,
                        key: failed.id.clone(),
                        opened_us: ctx.now_us,
                        since_us: failed.started_us,
                        reminders: BTreeMap::new(),
                    });
                }
            }
            None => {}
            Some(incident) => {
                let recovered = !retrying
                    && r.failure_streak == 0
                    && r.last_success_us.is_some_and(|s| s > incident.since_us);
                if recovered {
                    let mut e = event(
                        EventKind::Recovery,
                        &format!("{}:{}", incident.kind, incident.key),
                        (r.last.status == RunStatus::Success).then_some(&r.last),
                        incident.opened_us,
                    );
                    e.recovers = Some(incident.kind);
                    events.push(e);
                    next.failure = None;
                } else {
                    let failed = r.last_failure.as_ref();
                    events.extend(reminders(
                        incident,
                        input.channels,
                        ctx,
                        job,
                        failed,
                        r.failure_streak,
                        None,
                    ));
                }
            }
        }
    }

    // Overdue runs and their recovery.
    track_schedule(input, state, ctx.now_us, &mut next);
    if let (true, Some(since)) = (input.judge_schedule, next.since_us) {
        let last = input.runs.map(|r| LastRun {
            started_us: r.last.started_us,
            ended_us: r.last.ended_us,
            running: r.last.status == RunStatus::Running,
        });
        match &mut next.overdue {
            Some(incident) => {
                let started = input.runs.filter(|r| r.last.started_us > incident.since_us);
                if let Some(r) = started {
                    let mut e = event(
                        EventKind::Recovery,
                        &format!("overdue:{}", incident.key),
                        Some(&r.last),
                        incident.opened_us,
                    );
                    e.recovers = Some(EventKind::Overdue);
                    events.push(e);
                    next.overdue = None;
                } else {
                    let expected =
                        overdue::expected_after(input.job, incident.since_us, ctx.local, ctx.zones);
                    events.extend(reminders(
                        incident,
                        input.channels,
                        ctx,
                        job,
                        None,
                        0,
                        expected,
                    ));
                }
            }
            None => {
                if let Some(expected) = overdue::judge(
                    input.job,
                    last,
                    Some(since),
                    ctx.now_us,
                    ctx.local,
                    ctx.zones,
                ) {
                    let base = overdue::baseline(
                        last.map(|l| l.started_us),
                        last.and_then(|l| l.ended_us),
                        Some(since),
                    )
                    .unwrap_or(since);
                    let key = expected.expected_us.to_string();
                    let mut e = event(EventKind::Overdue, &key, None, ctx.now_us);
                    e.expected = Some(expected);
                    events.push(e);
                    next.overdue = Some(Incident {
                        kind: EventKind::Overdue,
                        key,
                        opened_us: ctx.now_us,
                        since_us: base,
                        reminders: BTreeMap::new(),
                    });
                }
            }
        }
    } else {
        next.overdue = None;
    }

    // A run past its warning time or a minute past its timeout.
    if let Some(r) = input.runs
        && r.last.status == RunStatus::Running
        && state.overrun_run.as_deref() != Some(r.last.id.as_str())
    {
        let warn = input.job.notify.warn_after.map(|w| {
            r.last
                .started_us
                .saturating_add(i64::try_from(w.as_usec()).unwrap_or(i64::MAX))
        });
        let stuck = r
            .last
            .deadline_us
            .map(|d| d.saturating_add(OVERRUN_PAST_TIMEOUT_US));
        let threshold = [warn, stuck].into_iter().flatten().min();
        if threshold.is_some_and(|t| ctx.now_us >= t) {
            events.push(event(
                EventKind::Overrun,
                &r.last.id,
                Some(&r.last),
                ctx.now_us,
            ));
            next.overrun_run = Some(r.last.id.clone());
        }
    }
    (events, next)
}

/// Since when the job's schedule is judged, kept in `next`: what the
/// previous pass stored while the schedule is the same; from now for a job
/// judged again after a pause; from when its timer was installed (else now)
/// for a schedule seen for the first time. A job not judged is paused.
pub fn track_schedule(
    input: &JobInput<'_>,
    state: &WatchState,
    now_us: i64,
    next: &mut WatchState,
) {
    if !input.judge_schedule {
        next.schedule = None;
        next.since_us = None;
        next.paused = true;
        return;
    }
    let key = input.schedule_key.map(str::to_string);
    let since = match (state.since_us, state.schedule == key) {
        (Some(since), true) if !state.paused => since,
        _ if state.paused => now_us,
        _ => input.installed_us.map_or(now_us, |t| t.min(now_us)),
    };
    next.schedule = key;
    next.since_us = Some(since);
    next.paused = false;
}

/// Since when a job's schedule counts for `health`, from the watch's stored
/// state when it tracked this schedule, else from when the timer was
/// installed. `None`: judge from the runs alone.
pub fn schedule_since(
    state: Option<&WatchState>,
    schedule_key: Option<&str>,
    installed_us: Option<i64>,
    now_us: i64,
) -> Option<i64> {
    match state {
        Some(s) if s.paused => Some(now_us),
        Some(s) if s.schedule.as_deref() == schedule_key && s.since_us.is_some() => s.since_us,
        _ => installed_us,
    }
}

/// The reminders due for an open incident: each channel with a `repeat`
/// gets its n-th reminder once n intervals have passed since the incident
/// opened (skipped ones are not made up). Channels due the same reminder of
/// the same interval share one event.
fn reminders(
    incident: &mut Incident,
    channels: &[ChannelRepeat],
    ctx: &Ctx<'_>,
    job: &str,
    run: Option<&RunInfo>,
    failure_streak: u32,
    expected: Option<Expected>,
) -> Vec<Event> {
    let mut due: BTreeMap<(u64, u32), Vec<String>> = BTreeMap::new();
    let elapsed = u64::try_from(ctx.now_us.saturating_sub(incident.opened_us)).unwrap_or(0);
    for channel in channels {
        let Some(repeat) = channel
            .repeat
            .filter(|r| r.as_usec() > 0 && !r.is_infinite())
        else {
            continue;
        };
        let n = u32::try_from(elapsed / repeat.as_usec()).unwrap_or(u32::MAX);
        let sent = incident.reminders.get(&channel.name).copied().unwrap_or(0);
        if n > sent {
            due.entry((repeat.as_usec(), n))
                .or_default()
                .push(channel.name.clone());
            incident.reminders.insert(channel.name.clone(), n);
        }
    }
    due.into_iter()
        .map(|((repeat, n), channels)| Event {
            id: event_id(
                ctx.host,
                job,
                incident.kind,
                &format!("{}:reminder:{repeat}:{n}", incident.key),
            ),
            kind: incident.kind,
            job: job.to_string(),
            channels,
            run: run.cloned(),
            failure_streak,
            reminder: n,
            recovers: None,
            expected,
            opened_us: incident.opened_us,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_config;
    use crate::context::{Mode, UtcOnly};
    use crate::job::{JobSource, LoadContext, load_job};

    const S: i64 = 1_000_000;
    const MIN: i64 = 60 * S;
    const H: i64 = 60 * MIN;
    /// 2026-03-02T00:00:00Z.
    const T0: i64 = 1_772_409_600 * S;

    fn job(body: &str) -> Job {
        let (config, diags) = load_config(
            "c.toml",
            "[notify.channels.ops]\ncommand = [\"/bin/true\"]\nrepeat = \"4h\"\n[notify.channels.mail]\ncommand = [\"/bin/true\"]\n",
            Mode::System,
            &UtcOnly,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let text = format!("command = [\"/bin/true\"]\nnotify = [\"ops\", \"mail\"]\n{body}");
        let loaded = load_job(
            JobSource {
                path: "j.toml",
                stem: "backup",
                text: &text,
            },
            &LoadContext {
                mode: Mode::System,
                config: &config,
                zones: &UtcOnly,
                root_files: None,
                now: None,
                systemd: None,
            },
        );
        loaded
            .job
            .unwrap_or_else(|| panic!("{body}: {:?}", loaded.diagnostics))
    }

    fn channels(repeat_ops: bool) -> Vec<ChannelRepeat> {
        vec![
            ChannelRepeat {
                name: "ops".into(),
                repeat: repeat_ops.then_some(Timespan::from_secs(4 * 3600)),
            },
            ChannelRepeat {
                name: "mail".into(),
                repeat: None,
            },
        ]
    }

    fn run(id: &str, status: RunStatus, start: i64) -> RunInfo {
        RunInfo {
            id: id.into(),
            status,
            started_us: start,
            ended_us: (status != RunStatus::Running && status != RunStatus::Lost)
                .then_some(start + S),
            deadline_us: Some(start + H),
            attempt: 1,
        }
    }

    /// The history as the summaries give it, from runs oldest first.
    fn runs(history: &[RunInfo]) -> Option<Runs> {
        let last = history.last()?.clone();
        let finished: Vec<&RunInfo> = history
            .iter()
            .filter(|r| r.status != RunStatus::Running)
            .collect();
        let streak = finished
            .iter()
            .rev()
            .take_while(|r| r.status.is_failure())
            .count() as u32;
        Some(Runs {
            last,
            last_failure: finished
                .last()
                .filter(|r| r.status.is_failure())
                .map(|r| (*r).clone()),
            failure_streak: streak,
            last_success_us: history
                .iter()
                .rev()
                .find(|r| r.status == RunStatus::Success)
                .map(|r| r.started_us),
        })
    }

    /// Passes of the watch over one job, keeping the state between them.
    struct Watch {
        job: Job,
        channels: Vec<ChannelRepeat>,
        state: WatchState,
        judge: bool,
        key: String,
        installed: Option<i64>,
    }

    impl Watch {
        fn new(job: Job) -> Watch {
            Watch {
                job,
                channels: channels(false),
                state: WatchState::default(),
                judge: false,
                key: "k1".into(),
                installed: None,
            }
        }

        fn pass(&mut self, history: &[RunInfo], now: i64) -> Vec<Event> {
            let runs = runs(history);
            let input = JobInput {
                job: &self.job,
                channels: &self.channels,
                runs: runs.as_ref(),
                judge_schedule: self.judge,
                schedule_key: Some(&self.key),
                installed_us: self.installed,
            };
            let ctx = Ctx {
                host: "db1",
                now_us: now,
                local: &TimeZone::UTC,
                zones: &UtcOnly,
            };
            let (events, next) = evaluate(&input, &self.state, &ctx);
            // Idempotent: the same pass from the same state makes the same events.
            let (again, _) = evaluate(&input, &self.state, &ctx);
            assert_eq!(events, again);
            self.state = next;
            events
        }
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn three_failures_send_one_failure_then_one_recovery() {
        let mut w = Watch::new(job("manual = true"));
        let mut h = vec![run("r1", RunStatus::Failed, T0)];
        let e = w.pass(&h, T0 + 2 * S);
        assert_eq!(kinds(&e), ["failure"]);
        assert_eq!(e[0].channels, ["ops", "mail"]);
        assert_eq!(e[0].run.as_ref().unwrap().id, "r1");
        let first_id = e[0].id.clone();
        h.push(run("r2", RunStatus::Failed, T0 + MIN));
        assert!(w.pass(&h, T0 + MIN + 2 * S).is_empty());
        h.push(run("r3", RunStatus::Timeout, T0 + 2 * MIN));
        assert!(w.pass(&h, T0 + 2 * MIN + 2 * S).is_empty());
        assert!(w.pass(&h, T0 + 10 * H).is_empty(), "no repeat: no reminder");
        h.push(run("r4", RunStatus::Success, T0 + 11 * H));
        let e = w.pass(&h, T0 + 11 * H + 2 * S);
        assert_eq!(kinds(&e), ["recovery"]);
        assert_eq!(e[0].recovers, Some(EventKind::Failure));
        assert_eq!(e[0].run.as_ref().unwrap().id, "r4");
        assert!(w.pass(&h, T0 + 12 * H).is_empty());
        // A new failure is a new incident, with a new id.
        h.push(run("r5", RunStatus::Failed, T0 + 13 * H));
        let e = w.pass(&h, T0 + 13 * H + 2 * S);
        assert_eq!(kinds(&e), ["failure"]);
        assert_ne!(e[0].id, first_id);
    }

    #[test]
    fn notify_after_waits_for_that_many_failures_in_a_row() {
        let mut w = Watch::new(job("manual = true\nnotify_after = 3"));
        let mut h = vec![run("r1", RunStatus::Failed, T0)];
        assert!(w.pass(&h, T0 + 2 * S).is_empty());
        h.push(run("r2", RunStatus::Error, T0 + MIN));
        assert!(w.pass(&h, T0 + MIN + 2 * S).is_empty());
        // A success in between starts the count again, and is no recovery.
        h.push(run("r3", RunStatus::Success, T0 + 2 * MIN));
        assert!(w.pass(&h, T0 + 2 * MIN + 2 * S).is_empty());
        for (i, id) in ["r4", "r5"].iter().enumerate() {
            h.push(run(id, RunStatus::Killed, T0 + (3 + i as i64) * MIN));
            assert!(w.pass(&h, T0 + (3 + i as i64) * MIN + 2 * S).is_empty());
        }
        h.push(run("r6", RunStatus::Failed, T0 + 5 * MIN));
        let e = w.pass(&h, T0 + 5 * MIN + 2 * S);
        assert_eq!(kinds(&e), ["failure"]);
        assert_eq!(
            (e[0].failure_streak, e[0].run.as_ref().unwrap().id.as_str()),
            (3, "r6")
        );
    }

    #[test]
    fn a_lost_run_opens_a_lost_incident() {
        let mut w = Watch::new(job("manual = true"));
        let h = vec![
            run("r1", RunStatus::Success, T0),
            run("r2", RunStatus::Lost, T0 + MIN),
        ];
        let e = w.pass(&h, T0 + 2 * MIN);
        assert_eq!(kinds(&e), ["lost"]);
        let h2 = [h.clone(), vec![run("r3", RunStatus::Success, T0 + 3 * MIN)]].concat();
        let e = w.pass(&h2, T0 + 4 * MIN);
        assert_eq!(kinds(&e), ["recovery"]);
        assert_eq!(e[0].recovers, Some(EventKind::Lost));
    }

    #[test]
    fn a_run_still_retrying_is_judged_when_its_last_attempt_ends() {
        let mut w = Watch::new(job("manual = true"));
        let mut h = vec![run("a1", RunStatus::Failed, T0)];
        let mut second = run("a2", RunStatus::Running, T0 + 10 * S);
        second.attempt = 2;
        h.push(second.clone());
        assert!(w.pass(&h, T0 + 11 * S).is_empty());
        second.status = RunStatus::Success;
        second.ended_us = Some(T0 + 12 * S);
        h[1] = second;
        assert!(
            w.pass(&h, T0 + 13 * S).is_empty(),
            "recovered within the run: nothing to say"
        );
        // A plain new run after a failure does not hold the failure back.
        let h = vec![
            run("b1", RunStatus::Failed, T0 + MIN),
            run("b2", RunStatus::Running, T0 + 2 * MIN),
        ];
        assert_eq!(kinds(&w.pass(&h, T0 + 2 * MIN + S)), ["failure"]);
    }

    #[test]
    fn a_success_that_started_before_the_watch_noticed_the_failure_recovers_it() {
        let mut w = Watch::new(job("manual = true"));
        let h = vec![
            run("r1", RunStatus::Failed, T0),
            run("r2", RunStatus::Running, T0 + 10 * S),
        ];
        assert_eq!(kinds(&w.pass(&h, T0 + 20 * S)), ["failure"]);
        let h = vec![
            run("r1", RunStatus::Failed, T0),
            run("r2", RunStatus::Success, T0 + 10 * S),
        ];
        assert_eq!(kinds(&w.pass(&h, T0 + 30 * S)), ["recovery"]);
    }

    #[test]
    fn reminders_follow_each_channels_repeat() {
        let mut w = Watch::new(job("manual = true"));
        w.channels = channels(true);
        let h = vec![run("r1", RunStatus::Failed, T0)];
        let opened = T0 + 2 * S;
        assert_eq!(kinds(&w.pass(&h, opened)), ["failure"]);
        assert!(w.pass(&h, opened + 3 * H).is_empty());
        let e = w.pass(&h, opened + 4 * H);
        assert_eq!(kinds(&e), ["failure"]);
        assert_eq!(
            (e[0].reminder, e[0].channels.clone()),
            (1, vec!["ops".to_string()])
        );
        assert!(w.pass(&h, opened + 5 * H).is_empty());
        // A pass that comes late skips to the reminder due now.
        let e = w.pass(&h, opened + 13 * H);
        assert_eq!((e.len(), e[0].reminder), (1, 3));
        assert!(w.pass(&h, opened + 13 * H + MIN).is_empty());
    }

    #[test]
    fn overdue_once_then_recovery_when_a_run_starts() {
        let mut w = Watch::new(job("hourly = \":00\""));
        w.judge = true;
        // The last run was long ago, but the schedule is judged from the
        // first pass that sees it.
        let mut h = vec![run("r1", RunStatus::Success, T0)];
        assert!(w.pass(&h, T0 + 5 * H + 30 * MIN).is_empty());
        assert_eq!(w.state.since_us, Some(T0 + 5 * H + 30 * MIN));
        // Expected 06:00; derived grace 6 min.
        assert!(w.pass(&h, T0 + 6 * H + 6 * MIN).is_empty());
        let e = w.pass(&h, T0 + 6 * H + 6 * MIN + 2 * S);
        assert_eq!(kinds(&e), ["overdue"]);
        let expected = e[0].expected.unwrap();
        assert_eq!(
            (expected.expected_us, expected.grace_us),
            (T0 + 6 * H, 6 * MIN)
        );
        assert!(w.pass(&h, T0 + 9 * H).is_empty(), "once per incident");
        h.push(run("r2", RunStatus::Running, T0 + 9 * H + MIN));
        let e = w.pass(&h, T0 + 9 * H + MIN + S);
        assert_eq!(kinds(&e), ["recovery"]);
        assert_eq!(e[0].recovers, Some(EventKind::Overdue));
        assert!(w.pass(&h, T0 + 9 * H + 2 * MIN).is_empty());
    }

    #[test]
    fn a_job_no_longer_judged_closes_its_overdue_incident_silently_and_starts_afresh() {
        let mut w = Watch::new(job("hourly = \":00\""));
        w.judge = true;
        let h = vec![run("r1", RunStatus::Success, T0)];
        assert!(w.pass(&h, T0 + 30 * MIN).is_empty());
        assert_eq!(kinds(&w.pass(&h, T0 + 2 * H)), ["overdue"]);
        w.judge = false; // disabled by the operator
        assert!(w.pass(&h, T0 + 3 * H).is_empty());
        assert_eq!(
            w.state,
            WatchState {
                paused: true,
                ..WatchState::default()
            }
        );
        w.judge = true; // enabled again: judged from now, not from the install
        w.installed = Some(T0);
        assert!(w.pass(&h, T0 + 10 * H + 30 * MIN).is_empty());
        assert!(w.pass(&h, T0 + 11 * H + 5 * MIN).is_empty());
        assert_eq!(kinds(&w.pass(&h, T0 + 11 * H + 7 * MIN)), ["overdue"]);
    }

    #[test]
    fn a_new_schedule_is_judged_from_when_it_is_first_seen() {
        let mut w = Watch::new(job("hourly = \":00\""));
        w.judge = true;
        let h = vec![run("r1", RunStatus::Success, T0)];
        assert!(w.pass(&h, T0 + 10 * MIN).is_empty());
        w.key = "k2".into();
        assert!(w.pass(&h, T0 + 3 * H).is_empty());
        assert_eq!(w.state.since_us, Some(T0 + 3 * H));
        assert_eq!(kinds(&w.pass(&h, T0 + 4 * H + 7 * MIN)), ["overdue"]);
    }

    #[test]
    fn a_schedule_seen_first_is_judged_from_its_installation() {
        let mut w = Watch::new(job("hourly = \":00\""));
        w.judge = true;
        w.installed = Some(T0 + 30 * MIN);
        // Installed at 00:30, never ran: 01:00 was due.
        let e = w.pass(&[], T0 + 3 * H);
        assert_eq!(kinds(&e), ["overdue"]);
        assert_eq!(e[0].expected.unwrap().expected_us, T0 + H);
        assert_eq!(w.state.since_us, Some(T0 + 30 * MIN));
        // Without an install time: from the first pass.
        let mut w = Watch::new(job("hourly = \":00\""));
        w.judge = true;
        assert!(w.pass(&[], T0 + 3 * H).is_empty());
        assert_eq!(w.state.since_us, Some(T0 + 3 * H));
    }

    #[test]
    fn health_takes_the_watchs_since_else_the_install_time() {
        let tracked = WatchState {
            schedule: Some("k".into()),
            since_us: Some(5),
            ..WatchState::default()
        };
        assert_eq!(
            schedule_since(Some(&tracked), Some("k"), Some(1), 100),
            Some(5)
        );
        assert_eq!(
            schedule_since(Some(&tracked), Some("other"), Some(1), 100),
            Some(1)
        );
        assert_eq!(schedule_since(None, Some("k"), Some(1), 100), Some(1));
        assert_eq!(schedule_since(None, Some("k"), None, 100), None);
        let paused = WatchState {
            paused: true,
            ..WatchState::default()
        };
        assert_eq!(
            schedule_since(Some(&paused), Some("k"), Some(1), 100),
            Some(100)
        );
    }

    #[test]
    fn overrun_once_per_run() {
        let mut w = Watch::new(job("manual = true\ntimeout = \"1h\""));
        let mut h = vec![run("r1", RunStatus::Running, T0)];
        assert!(w.pass(&h, T0 + H + 59 * S).is_empty());
        let e = w.pass(&h, T0 + H + MIN);
        assert_eq!(kinds(&e), ["overrun"]);
        assert_eq!(e[0].run.as_ref().unwrap().id, "r1");
        assert!(w.pass(&h, T0 + 2 * H).is_empty());
        h[0].status = RunStatus::Success;
        h.push(run("r2", RunStatus::Running, T0 + 3 * H));
        assert!(w.pass(&h, T0 + 3 * H + 10 * MIN).is_empty());
        assert_eq!(kinds(&w.pass(&h, T0 + 4 * H + MIN)), ["overrun"]);
        // warn_after comes first when set.
        let mut w = Watch::new(job(
            "manual = true\ntimeout = \"1h\"\nwarn_after = \"10min\"",
        ));
        let h = vec![run("r9", RunStatus::Running, T0)];
        assert!(w.pass(&h, T0 + 9 * MIN).is_empty());
        assert_eq!(kinds(&w.pass(&h, T0 + 10 * MIN)), ["overrun"]);
        // No timeout, no warn_after: never.
        let mut w = Watch::new(job("manual = true\ntimeout = \"infinity\""));
        let mut r = run("r10", RunStatus::Running, T0);
        r.deadline_us = None;
        assert!(w.pass(&[r], T0 + 1000 * H).is_empty());
    }

    #[test]
    fn event_ids_depend_on_host_job_kind_and_incident_only() {
        let a = event_id("db1", "backup", EventKind::Failure, "r1");
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, event_id("db1", "backup", EventKind::Failure, "r1"));
        for other in [
            event_id("db2", "backup", EventKind::Failure, "r1"),
            event_id("db1", "backup2", EventKind::Failure, "r1"),
            event_id("db1", "backup", EventKind::Lost, "r1"),
            event_id("db1", "backup", EventKind::Failure, "r2"),
            // No ambiguity from joining the parts.
            event_id("db1b", "ackup", EventKind::Failure, "r1"),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn the_state_round_trips_and_an_empty_one_is_empty() {
        assert!(WatchState::default().is_empty());
        let mut w = Watch::new(job("hourly = \":00\""));
        w.channels = channels(true);
        w.judge = true;
        let h = vec![run("r1", RunStatus::Failed, T0)];
        w.pass(&h, T0 + MIN);
        w.pass(&h, T0 + 5 * H);
        assert!(
            w.state
                .failure
                .as_ref()
                .is_some_and(|f| f.reminders["ops"] == 1)
        );
        assert!(!w.state.is_empty());
        let kinds: Vec<_> = EventKind::ALL
            .iter()
            .map(|k| EventKind::parse(k.as_str()))
            .collect();
        assert!(kinds.iter().all(Option::is_some));
    }
}
