//! `jobctl health`: what is wrong with a job, judged from its state
//! ([`crate::state`]), what systemd says about its units, and its run history.
//!
//! Pure: the binary gathers the facts (job files, unit folder, one bulk
//! systemd call, the history databases) and prints the problems. Every
//! problem has a stable kind (for `--ignore` and for monitoring rules) and a
//! message that says what to do.
//!
//! Runs of jobs that are turned off (disabled in the file or by an operator,
//! or expired) are not judged: an operator who pauses a failing job has seen
//! the failure. A run that hangs past its timeout is reported for every job.

use jiff::tz::TimeZone;
use serde::{Serialize, Serializer};

use crate::plan::TimerState;
use crate::state::{Derived, JobState};

/// How a run ended, as the history records it (mirrors the history crate's
/// status, which the pure core cannot depend on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Running,
    Success,
    Failed,
    Error,
    Timeout,
    Killed,
    Lost,
    Expired,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
            RunStatus::Error => "error",
            RunStatus::Timeout => "timeout",
            RunStatus::Killed => "killed",
            RunStatus::Lost => "lost",
            RunStatus::Expired => "expired",
        }
    }

    /// A run that ended badly.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            RunStatus::Failed
                | RunStatus::Error
                | RunStatus::Timeout
                | RunStatus::Killed
                | RunStatus::Lost
        )
    }
}

/// One recorded run, as much as health needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFacts {
    /// The run id as shown (`jobctl logs JOB --run ID`).
    pub id: String,
    pub status: RunStatus,
    /// Microseconds since the epoch.
    pub started_us: i64,
    pub ended_us: Option<i64>,
    /// When the job's timeout expires for this run.
    pub deadline_us: Option<i64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why an `error` run could not start.
    pub error: Option<String>,
}

/// A job's recent history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryFacts {
    /// The newest run (possibly still running).
    pub last: RunFacts,
    /// The newest *finished* run, when it failed (`None` when it succeeded
    /// or no run has finished).
    pub last_failure: Option<RunFacts>,
    /// Failed finished runs in a row, newest first (0: the newest finished
    /// run succeeded).
    pub failure_streak: u32,
    pub last_success_us: Option<i64>,
}

/// The newest run of a job that its shim could not record in the history (it
/// said so in the journal, with the run's record; see docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnrecordedRun {
    /// The run id the shim gave it.
    pub id: String,
    /// When the shim gave up (µs since the epoch).
    pub at_us: i64,
    /// How the run ended (`success`, `failed` …), as the shim saw it.
    pub status: String,
    /// The database it could not write, and why.
    pub db: String,
    pub error: String,
}

/// Everything known about one job.
#[derive(Debug, Clone, Copy)]
pub struct JobFacts<'a> {
    pub job: &'a str,
    pub derived: &'a Derived,
    /// The first error of an invalid job file.
    pub invalid_reason: Option<&'a str>,
    /// systemd runs the job's timer.
    pub timer_active: bool,
    /// The job's timer is enabled (its `[Install]` link is in the unit
    /// folder): it starts again after a reboot.
    pub timer_enabled: bool,
    /// systemd reports the job's service `failed`.
    pub service_failed: bool,
    /// systemd's `Result` of the failed service ("" when not read).
    pub service_result: &'a str,
    /// The job's units systemd could not load, each with systemd's reason
    /// (`jobctl-x.service: Unit … has a bad unit file setting.`).
    pub not_loaded: &'a [String],
    /// The job's service unit name (for messages).
    pub service: &'a str,
    /// The first instant the job may no longer run.
    pub not_after: Option<jiff::Timestamp>,
    /// Why none of the job's schedules can fire again
    /// ([`crate::job::Job::never_fires`]), if so.
    pub never_fires: Option<&'a str>,
    pub history: Option<&'a HistoryFacts>,
    /// The newest run the shim could not record, if any (whether the
    /// history has a newer one is decided here).
    pub unrecorded: Option<&'a UnrecordedRun>,
    /// A scheduled run that should have started by now and did not
    /// ([`crate::overdue::judge`]), for a job whose timer should run.
    pub overdue: Option<&'a crate::overdue::Expected>,
}

/// Thresholds and formatting.
pub struct Options<'a> {
    /// A failed last run is a problem once this many runs in a row failed
    /// (at least 1).
    pub failures: u32,
    /// A run still `running` this long after its deadline is a problem.
    pub overrun_grace_us: i64,
    /// Times in messages are shown in this zone.
    pub zone: &'a TimeZone,
    /// Signal numbers as names (`SIGKILL`).
    pub signal_name: &'a dyn Fn(i32) -> String,
    pub now_us: i64,
    /// How the remedies in messages call jobctl so that, pasted, they reach
    /// the same jobs: `jobctl`, `jobctl --user`, with `--jobs-dir` … when
    /// the caller used other folders.
    pub jobctl: &'a str,
    /// How they call systemctl for the jobs' manager (`systemctl --user`).
    pub systemctl: &'a str,
    /// The configuration has errors: `apply` refuses to run, so its
    /// remedies say to fix them first.
    pub apply_blocked: bool,
}

/// The default [`Options::overrun_grace_us`]: a minute. systemd stops a run
/// at its timeout and the shim records `timeout` at once, so a row still
/// `running` a minute later is stuck, not slow.
pub const DEFAULT_OVERRUN_GRACE_US: i64 = 60 * 1_000_000;

/// What kind of problem; the names are stable (`--ignore`, monitoring rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProblemKind {
    /// The job file does not validate.
    Invalid,
    /// A job file with no units: never applied.
    NotApplied,
    /// The units differ from the job file.
    PendingApply,
    /// A unit the job file wants is not installed.
    MissingUnit,
    /// Units whose job file is gone.
    Orphaned,
    /// The timer should run and does not.
    TimerInactive,
    /// The timer should run but is not enabled (`systemctl disable` behind
    /// jobctl's back): it will not start after a reboot.
    TimerNotEnabled,
    /// None of the job's schedules can fire again: it will never run on
    /// its own.
    NeverFires,
    /// An expired job is still installed.
    Expired,
    /// The last finished run failed (non-zero exit).
    Failed,
    /// The last finished run could not start.
    Error,
    /// The last finished run was stopped at its timeout.
    Timeout,
    /// The last finished run was killed by a signal.
    Killed,
    /// The last run's shim died without recording an end.
    Lost,
    /// A run is still `running` past its timeout.
    Overrunning,
    /// systemd reports the service failed, and no failed run explains it
    /// (the shim itself could not run).
    UnitFailed,
    /// systemd refused to start the service at its start limit: runs were
    /// skipped.
    StartLimitHit,
    /// systemd could not load one of the job's units: it cannot run.
    NotLoaded,
    /// A history database could not be read.
    HistoryUnreadable,
    /// The job's last run could not be recorded: its shim cannot write the
    /// history (sandboxing that hides it, a full or broken disk).
    HistoryUnwritable,
    /// Per-user jobs with timers, and the user's manager stops at logout
    /// (logind's lingering is off).
    LingerOff,
    /// A scheduled run did not start (its time and grace have passed).
    Overdue,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 22] = [
        ProblemKind::Invalid,
        ProblemKind::NotApplied,
        ProblemKind::PendingApply,
        ProblemKind::MissingUnit,
        ProblemKind::Orphaned,
        ProblemKind::TimerInactive,
        ProblemKind::TimerNotEnabled,
        ProblemKind::NeverFires,
        ProblemKind::Expired,
        ProblemKind::Failed,
        ProblemKind::Error,
        ProblemKind::Timeout,
        ProblemKind::Killed,
        ProblemKind::Lost,
        ProblemKind::Overrunning,
        ProblemKind::UnitFailed,
        ProblemKind::StartLimitHit,
        ProblemKind::NotLoaded,
        ProblemKind::HistoryUnreadable,
        ProblemKind::HistoryUnwritable,
        ProblemKind::LingerOff,
        ProblemKind::Overdue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Invalid => "invalid",
            ProblemKind::NotApplied => "not-applied",
            ProblemKind::PendingApply => "pending-apply",
            ProblemKind::MissingUnit => "missing-unit",
            ProblemKind::Orphaned => "orphaned",
            ProblemKind::TimerInactive => "timer-inactive",
            ProblemKind::TimerNotEnabled => "timer-not-enabled",
            ProblemKind::NeverFires => "never-fires",
            ProblemKind::Expired => "expired",
            ProblemKind::Failed => "failed",
            ProblemKind::Error => "error",
            ProblemKind::Timeout => "timeout",
            ProblemKind::Killed => "killed",
            ProblemKind::Lost => "lost",
            ProblemKind::Overrunning => "overrunning",
            ProblemKind::UnitFailed => "unit-failed",
            ProblemKind::StartLimitHit => "start-limit-hit",
            ProblemKind::NotLoaded => "not-loaded",
            ProblemKind::HistoryUnreadable => "history-unreadable",
            ProblemKind::LingerOff => "linger-off",
            ProblemKind::HistoryUnwritable => "history-unwritable",
            ProblemKind::Overdue => "overdue",
        }
    }

    pub fn parse(text: &str) -> Option<ProblemKind> {
        ProblemKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProblemKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One problem of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub message: String,
}

impl Problem {
    fn new(kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem {
            kind,
            message: message.into(),
        }
    }
}

/// Every problem of one job, in a stable order (installation first, then
/// runs).
pub fn assess(facts: &JobFacts<'_>, opts: &Options<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let d = facts.derived;
    let jobctl = opts.jobctl;
    let systemctl = opts.systemctl;
    let apply = if opts.apply_blocked {
        format!(
            "fix the configuration (`{jobctl} validate` shows its errors), then run `{jobctl} apply`"
        )
    } else {
        format!("run `{jobctl} apply`")
    };
    match d.state {
        JobState::Invalid => out.push(Problem::new(
            ProblemKind::Invalid,
            match facts.invalid_reason {
                Some(reason) => format!(
                    "the job file does not validate: {reason}; `{jobctl} validate` shows every error (its installed units, if any, stay as they were)"
                ),
                None => format!(
                    "the job file does not validate: see `{jobctl} validate` (its installed units, if any, stay as they were)"
                ),
            },
        )),
        JobState::Orphaned => out.push(Problem::new(
            ProblemKind::Orphaned,
            format!("units are installed ({}) but the job file is gone; `{jobctl} apply` removes them", facts.service),
        )),
        JobState::NotApplied => out.push(Problem::new(
            ProblemKind::NotApplied,
            format!("the job file has no units yet; {apply}"),
        )),
        _ => {}
    }
    if !d.outdated_units.is_empty() {
        out.push(Problem::new(
            ProblemKind::PendingApply,
            format!(
                "the installed units differ from the job file ({}); {apply} (`{jobctl} apply --check --diff` shows the change)",
                d.outdated_units.join(", ")
            ),
        ));
    }
    if d.installed && !facts.not_loaded.is_empty() {
        out.push(Problem::new(
            ProblemKind::NotLoaded,
            format!(
                "systemd could not load {}; the job cannot run: fix the job file, then run `{jobctl} apply` (it shows systemd's detail)",
                facts.not_loaded.join("; ")
            ),
        ));
    }
    if d.installed && !d.missing_units.is_empty() {
        out.push(Problem::new(
            ProblemKind::MissingUnit,
            format!("{} missing; {apply}", plural_is(&d.missing_units)),
        ));
    }
    let wish = d.wish.map(|w| w.state);
    if d.wish.is_some_and(|w| w.on) && d.timer_installed && !facts.timer_active {
        out.push(Problem::new(
            ProblemKind::TimerInactive,
            format!("the timer is not running although the job is enabled; {apply} to start it"),
        ));
    }
    if d.wish.is_some_and(|w| w.on) && d.timer_installed && !facts.timer_enabled {
        let now = if facts.timer_active {
            "it runs now, but "
        } else {
            ""
        };
        out.push(Problem::new(
            ProblemKind::TimerNotEnabled,
            format!(
                "the timer is not enabled (disabled outside jobctl, e.g. `{systemctl} disable`): {now}it will not start after a reboot; {apply} to enable it"
            ),
        ));
    }
    if let Some(why) = facts.never_fires
        && d.wish.is_some_and(|w| w.on)
    {
        out.push(Problem::new(
            ProblemKind::NeverFires,
            format!(
                "the job will never run again on its own: {why}; give it a schedule that fires and {apply}, or `{jobctl} remove {}`",
                facts.job
            ),
        ));
    }
    if wish == Some(TimerState::Expired) && d.installed {
        let when = facts
            .not_after
            .map(|t| format!(" since {}", local(t.as_microsecond(), opts.zone)))
            .unwrap_or_default();
        out.push(Problem::new(
            ProblemKind::Expired,
            format!(
                "the job has expired{when} and is still installed; delete its job file and {apply}, or `{jobctl} remove {}`",
                facts.job
            ),
        ));
    }

    let judged = !matches!(
        wish,
        Some(TimerState::Disabled | TimerState::DisabledByOperator | TimerState::Expired)
    );
    let history = facts.history;
    // A run the shim could not record, newer than every recorded one: the
    // history of this job is not being kept (whatever the job's state).
    let unrecorded = facts
        .unrecorded
        .filter(|u| history.is_none_or(|h| u.at_us > h.last.started_us));
    if let Some(u) = unrecorded {
        out.push(Problem::new(
            ProblemKind::HistoryUnwritable,
            format!(
                "run {} (ended {}, {}) was not recorded in {}: {}; the job's shim cannot write \
                 its history (sandboxing in service_extra that hides or write-protects that \
                 folder, e.g. InaccessiblePaths= or ProtectHome=yes in per-user mode, or a full \
                 or broken disk); its runs are in the journal: `journalctl JOBCTL_JOB={}`",
                u.id,
                local(u.at_us, opts.zone),
                u.status,
                u.db,
                u.error,
                facts.job
            ),
        ));
    }
    if judged {
        if let Some(h) = history
            && h.failure_streak >= opts.failures.max(1)
            && let Some(run) = &h.last_failure
        {
            out.push(run_problem(run, h, opts));
        }
        let streak = history.map_or(0, |h| h.failure_streak);
        if facts.service_failed && facts.service_result == "start-limit-hit" {
            out.push(Problem::new(
                ProblemKind::StartLimitHit,
                format!(
                    "systemd refused to start {}: its start limit (StartLimitIntervalSec=/StartLimitBurst=) was hit, so runs were skipped; `{} reset-failed {}` clears it",
                    facts.service, opts.systemctl, facts.service
                ),
            ));
        } else if facts.service_failed && streak == 0 && unrecorded.is_none() {
            out.push(Problem::new(
                ProblemKind::UnitFailed,
                format!(
                    "systemd reports {} failed, but no failed run is recorded: the run shim itself could not run or record; see `{systemctl} status {}`",
                    facts.service, facts.service
                ),
            ));
        }
    }
    if let Some(expected) = facts.overdue
        && d.wish.is_some_and(|w| w.on)
    {
        out.push(Problem::new(
            ProblemKind::Overdue,
            format!(
                "no run started since the one expected at {} (grace {}): the timer may have been stopped or its start refused, systemd may have been down, or the host off; `{jobctl} status {}` shows the timer, `{jobctl} run {}` starts a run now",
                local(expected.expected_us, opts.zone),
                duration(expected.leeway_us.saturating_add(expected.grace_us)),
                facts.job,
                facts.job
            ),
        ));
    }
    if let Some(h) = history
        && h.last.status == RunStatus::Running
        && let Some(deadline) = h.last.deadline_us
        && opts.now_us > deadline.saturating_add(opts.overrun_grace_us)
    {
        out.push(Problem::new(
            ProblemKind::Overrunning,
            format!(
                "run {} started {} is still running, {} past its timeout; systemd should have stopped it (see `{systemctl} status {}`)",
                h.last.id,
                local(h.last.started_us, opts.zone),
                duration(opts.now_us - deadline),
                facts.service
            ),
        ));
    }
    out
}

/// The problem of per-user jobs when `user`'s lingering is off: systemd
/// stops the user's manager, and the `timers` timers of these jobs with it,
/// when the user's last session ends (`apply --user` prints it as a warning).
pub fn linger_problem(user: &str, timers: usize) -> Problem {
    Problem::new(
        ProblemKind::LingerOff,
        format!(
            "lingering is off for {user}: systemd stops your user manager, and the {} of {timers} job{} with it, when your last session ends, and starts them again only at your next login; `loginctl enable-linger {user}` keeps them running",
            if timers == 1 { "timer" } else { "timers" },
            if timers == 1 { "" } else { "s" },
        ),
    )
}

/// The problem for a failed last run, with the streak.
fn run_problem(run: &RunFacts, h: &HistoryFacts, opts: &Options<'_>) -> Problem {
    let signal = run.signal.map(|s| (opts.signal_name)(s));
    let (kind, what) = match run.status {
        RunStatus::Error => (
            ProblemKind::Error,
            format!(
                "the last run could not start: {}",
                run.error.as_deref().unwrap_or("unknown reason")
            ),
        ),
        RunStatus::Timeout => (
            ProblemKind::Timeout,
            "the last run was stopped at its timeout".to_string(),
        ),
        RunStatus::Killed => (
            ProblemKind::Killed,
            match &signal {
                Some(s) => format!("the last run was killed by {s}"),
                None => "the last run was killed".to_string(),
            },
        ),
        RunStatus::Lost => (
            ProblemKind::Lost,
            "the last run was lost: its shim died (SIGKILL, a crash or a reboot) before recording an end".to_string(),
        ),
        _ => (
            ProblemKind::Failed,
            match run.exit_code {
                Some(code) => format!("the last run failed with exit status {code}"),
                None => "the last run failed".to_string(),
            },
        ),
    };
    let mut message = format!(
        "{what} (started {}, run {})",
        local(run.started_us, opts.zone),
        run.id
    );
    if h.failure_streak > 1 {
        message.push_str(&format!("; {} failed runs in a row", h.failure_streak));
        match h.last_success_us {
            Some(us) => message.push_str(&format!(", last success {}", local(us, opts.zone))),
            None => message.push_str(", no successful run recorded"),
        }
    }
    Problem::new(kind, message)
}

fn plural_is(names: &[String]) -> String {
    if names.len() == 1 {
        format!("{} is", names[0])
    } else {
        format!("{} are", names.join(", "))
    }
}

/// A time in `zone`, to the second.
fn local(us: i64, zone: &TimeZone) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(t) => t
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => us.to_string(),
    }
}

/// A duration for messages: `45s`, `12min 05s`, `3h 20min`, `2d 4h`.
fn duration(us: i64) -> String {
    let secs = us.max(0) / 1_000_000;
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3_600 {
        format!("{}min {:02}s", secs / 60, secs % 60)
    } else if secs < 86_400 {
        format!("{}h {:02}min", secs / 3_600, (secs % 3_600) / 60)
    } else {
        format!("{}d {}h", secs / 86_400, (secs % 86_400) / 3_600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TimerWish;

    const NOW: i64 = 1_780_000_000_000_000;
    const MIN: i64 = 60_000_000;

    fn derived(state: JobState, wish: Option<TimerState>) -> Derived {
        Derived {
            state,
            wish: wish.map(|state| TimerWish {
                on: state == TimerState::Active,
                state,
                by_operator: false,
                stale_override: false,
            }),
            installed: state != JobState::NotApplied,
            missing_units: Vec::new(),
            outdated_units: Vec::new(),
            timer_installed: state != JobState::NotApplied
                && wish.is_some_and(|w| w != TimerState::Manual),
        }
    }

    fn run(status: RunStatus, started_us: i64) -> RunFacts {
        RunFacts {
            id: "5eadbeef0123".into(),
            status,
            started_us,
            ended_us: (status != RunStatus::Running).then_some(started_us + 1_000_000),
            deadline_us: Some(started_us + 60 * MIN),
            exit_code: (status == RunStatus::Failed).then_some(3),
            signal: (status == RunStatus::Killed).then_some(9),
            error: (status == RunStatus::Error).then(|| "/x: command not found".into()),
        }
    }

    fn history(last: RunFacts, streak: u32) -> HistoryFacts {
        HistoryFacts {
            last_failure: last.status.is_failure().then(|| last.clone()),
            last,
            failure_streak: streak,
            last_success_us: Some(NOW - 600 * MIN),
        }
    }

    fn check(
        d: &Derived,
        timer_active: bool,
        service_failed: bool,
        h: Option<&HistoryFacts>,
        failures: u32,
    ) -> Vec<Problem> {
        let facts = JobFacts {
            job: "nightly",
            derived: d,
            invalid_reason: Some("line 2: unknown key `comand`"),
            timer_active,
            timer_enabled: true,
            service_failed,
            service_result: if service_failed { "exit-code" } else { "" },
            not_loaded: &[],
            service: "jobctl-nightly.service",
            not_after: Some(jiff::Timestamp::from_microsecond(NOW - 86_400_000_000).unwrap()),
            never_fires: None,
            history: h,
            unrecorded: None,
            overdue: None,
        };
        let opts = Options {
            failures,
            overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
            zone: &TimeZone::UTC,
            signal_name: &|s| format!("SIG{s}"),
            now_us: NOW,
            jobctl: "jobctl --user --jobs-dir /j",
            systemctl: "systemctl --user",
            apply_blocked: false,
        };
        assess(&facts, &opts)
    }

    fn kinds(problems: &[Problem]) -> Vec<ProblemKind> {
        problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn a_healthy_job_has_no_problem() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        assert!(check(&d, true, false, None, 1).is_empty());
        let h = history(run(RunStatus::Success, NOW - MIN), 0);
        assert!(check(&d, true, false, Some(&h), 1).is_empty());
        // A run in progress inside its timeout is fine.
        let h = history(run(RunStatus::Running, NOW - 30 * MIN), 0);
        assert!(check(&d, true, false, Some(&h), 1).is_empty());
        // A manual job that has never run.
        let d = derived(JobState::Manual, Some(TimerState::Manual));
        assert!(check(&d, false, false, None, 1).is_empty());
    }

    #[test]
    fn each_failed_status_is_its_own_kind() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        for (status, kind, text) in [
            (RunStatus::Failed, ProblemKind::Failed, "exit status 3"),
            (RunStatus::Error, ProblemKind::Error, "command not found"),
            (RunStatus::Timeout, ProblemKind::Timeout, "timeout"),
            (RunStatus::Killed, ProblemKind::Killed, "SIG9"),
            (RunStatus::Lost, ProblemKind::Lost, "shim died"),
        ] {
            let h = history(run(status, NOW - MIN), 1);
            let problems = check(&d, true, true, Some(&h), 1);
            assert_eq!(kinds(&problems), vec![kind], "{status:?}");
            assert!(problems[0].message.contains(text), "{problems:?}");
            assert!(problems[0].message.contains("5eadbeef0123"));
        }
    }

    #[test]
    fn the_streak_threshold() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        let h = history(run(RunStatus::Failed, NOW - MIN), 2);
        assert_eq!(
            kinds(&check(&d, true, false, Some(&h), 1)),
            [ProblemKind::Failed]
        );
        assert_eq!(
            kinds(&check(&d, true, false, Some(&h), 2)),
            [ProblemKind::Failed]
        );
        assert!(check(&d, true, false, Some(&h), 3).is_empty());
        let message = &check(&d, true, false, Some(&h), 1)[0].message;
        assert!(message.contains("2 failed runs in a row"), "{message}");
        assert!(message.contains("last success"), "{message}");
        // 0 counts as 1: a failure is never silently fine.
        assert_eq!(
            kinds(&check(&d, true, false, Some(&h), 0)),
            [ProblemKind::Failed]
        );
    }

    #[test]
    fn a_failure_before_a_run_in_progress_still_counts() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        let mut h = history(run(RunStatus::Running, NOW - MIN), 1);
        h.last_failure = Some(run(RunStatus::Failed, NOW - 100 * MIN));
        assert_eq!(
            kinds(&check(&d, true, false, Some(&h), 1)),
            [ProblemKind::Failed]
        );
    }

    #[test]
    fn disabled_and_expired_jobs_runs_are_not_judged() {
        let h = history(run(RunStatus::Failed, NOW - MIN), 3);
        for wish in [TimerState::Disabled, TimerState::DisabledByOperator] {
            let d = derived(JobState::Disabled, Some(wish));
            assert!(check(&d, false, true, Some(&h), 1).is_empty(), "{wish:?}");
        }
        let d = derived(JobState::Expired, Some(TimerState::Expired));
        let problems = check(&d, false, true, Some(&h), 1);
        assert_eq!(kinds(&problems), [ProblemKind::Expired]);
        assert!(
            problems[0]
                .message
                .contains("`jobctl --user --jobs-dir /j remove nightly`")
        );
        // A hung run is reported whatever the job's state.
        let d = derived(JobState::Disabled, Some(TimerState::Disabled));
        let h = history(run(RunStatus::Running, NOW - 62 * MIN), 0);
        assert_eq!(
            kinds(&check(&d, false, false, Some(&h), 1)),
            [ProblemKind::Overrunning]
        );
    }

    #[test]
    fn overrunning_after_the_grace() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        // Deadline 60 min after the start, grace 1 min.
        let h = history(run(RunStatus::Running, NOW - 60 * MIN - MIN / 2), 0);
        assert!(check(&d, true, false, Some(&h), 1).is_empty());
        let h = history(run(RunStatus::Running, NOW - 75 * MIN), 0);
        let problems = check(&d, true, false, Some(&h), 1);
        assert_eq!(kinds(&problems), [ProblemKind::Overrunning]);
        assert!(
            problems[0].message.contains("15min 00s past"),
            "{problems:?}"
        );
        // No deadline (an ad-hoc `jobctl exec` without --timeout): never.
        let mut h = history(run(RunStatus::Running, NOW - 600 * MIN), 0);
        h.last.deadline_us = None;
        assert!(check(&d, true, false, Some(&h), 1).is_empty());
    }

    #[test]
    fn apply_remedies_say_to_fix_the_configuration_first() {
        let d = derived(JobState::NotApplied, Some(TimerState::Active));
        let facts = JobFacts {
            job: "nightly",
            derived: &d,
            invalid_reason: None,
            timer_active: false,
            timer_enabled: true,
            service_failed: false,
            service_result: "",
            not_loaded: &[],
            service: "jobctl-nightly.service",
            not_after: None,
            never_fires: None,
            history: None,
            unrecorded: None,
            overdue: None,
        };
        let mut opts = Options {
            failures: 1,
            overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
            zone: &TimeZone::UTC,
            signal_name: &|s| format!("SIG{s}"),
            now_us: NOW,
            jobctl: "jobctl --jobs-dir /j",
            systemctl: "systemctl",
            apply_blocked: false,
        };
        let problems = assess(&facts, &opts);
        assert_eq!(
            problems[0].message,
            "the job file has no units yet; run `jobctl --jobs-dir /j apply`"
        );
        // apply refuses to run while the configuration has errors (invalid
        // job files it skips).
        opts.apply_blocked = true;
        let problems = assess(&facts, &opts);
        assert_eq!(
            problems[0].message,
            "the job file has no units yet; fix the configuration \
             (`jobctl --jobs-dir /j validate` shows its errors), then run `jobctl --jobs-dir /j apply`"
        );
    }

    #[test]
    fn a_timer_that_is_not_enabled_will_not_come_back() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        let facts = |active: bool, enabled: bool| JobFacts {
            job: "nightly",
            derived: &d,
            invalid_reason: None,
            timer_active: active,
            timer_enabled: enabled,
            service_failed: false,
            service_result: "",
            not_loaded: &[],
            service: "jobctl-nightly.service",
            not_after: None,
            never_fires: None,
            history: None,
            unrecorded: None,
            overdue: None,
        };
        let opts = Options {
            failures: 1,
            overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
            zone: &TimeZone::UTC,
            signal_name: &|s| format!("SIG{s}"),
            now_us: NOW,
            jobctl: "jobctl",
            systemctl: "systemctl",
            apply_blocked: false,
        };
        assert!(assess(&facts(true, true), &opts).is_empty());
        let problems = assess(&facts(true, false), &opts);
        assert_eq!(
            problems,
            [Problem::new(
                ProblemKind::TimerNotEnabled,
                "the timer is not enabled (disabled outside jobctl, e.g. `systemctl disable`): \
                 it runs now, but it will not start after a reboot; run `jobctl apply` to enable it"
            )]
        );
        // Stopped too (`disable --now`): both, each with its remedy.
        assert_eq!(
            kinds(&assess(&facts(false, false), &opts)),
            [ProblemKind::TimerInactive, ProblemKind::TimerNotEnabled]
        );
        // Off on purpose: not expected to be enabled.
        for wish in [
            TimerState::Disabled,
            TimerState::DisabledByOperator,
            TimerState::Expired,
        ] {
            let d = derived(JobState::Disabled, Some(wish));
            let mut f = facts(false, false);
            f.derived = &d;
            assert!(
                !kinds(&assess(&f, &opts)).contains(&ProblemKind::TimerNotEnabled),
                "{wish:?}"
            );
        }
    }

    #[test]
    fn installation_problems() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        assert_eq!(
            kinds(&check(&d, false, false, None, 1)),
            [ProblemKind::TimerInactive]
        );
        let d = derived(JobState::NotApplied, Some(TimerState::Active));
        assert_eq!(
            kinds(&check(&d, false, false, None, 1)),
            [ProblemKind::NotApplied]
        );
        let d = derived(JobState::Orphaned, None);
        assert_eq!(
            kinds(&check(&d, true, false, None, 1)),
            [ProblemKind::Orphaned]
        );
        let d = derived(JobState::Invalid, None);
        let problems = check(&d, true, false, None, 1);
        assert_eq!(kinds(&problems), [ProblemKind::Invalid]);
        assert!(problems[0].message.contains("unknown key `comand`"));
        let mut d = derived(JobState::PendingApply, Some(TimerState::Active));
        d.outdated_units = vec!["jobctl-nightly.timer".into()];
        d.missing_units = vec!["jobctl-nightly.service".into()];
        assert_eq!(
            kinds(&check(&d, false, false, None, 1)),
            [
                ProblemKind::PendingApply,
                ProblemKind::MissingUnit,
                ProblemKind::TimerInactive
            ]
        );
        // A job whose timer was deleted by hand: missing, and not running.
        let mut d = derived(JobState::MissingUnit, Some(TimerState::Active));
        d.missing_units = vec!["jobctl-nightly.timer".into()];
        d.timer_installed = false;
        let problems = check(&d, false, false, None, 1);
        assert_eq!(kinds(&problems), [ProblemKind::MissingUnit]);
        assert!(
            problems[0]
                .message
                .starts_with("jobctl-nightly.timer is missing")
        );
    }

    #[test]
    fn a_failed_unit_without_a_recorded_failure() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        // The shim never ran (e.g. the jobctl binary is gone: 203/EXEC).
        assert_eq!(
            kinds(&check(&d, true, true, None, 1)),
            [ProblemKind::UnitFailed]
        );
        let h = history(run(RunStatus::Success, NOW - 600 * MIN), 0);
        assert_eq!(
            kinds(&check(&d, true, true, Some(&h), 1)),
            [ProblemKind::UnitFailed]
        );
        // A recorded failure explains the failed unit: reported once.
        let h = history(run(RunStatus::Failed, NOW - MIN), 1);
        assert_eq!(
            kinds(&check(&d, true, true, Some(&h), 1)),
            [ProblemKind::Failed]
        );
        // Below the threshold, the failed unit is explained too.
        assert!(check(&d, true, true, Some(&h), 2).is_empty());
    }

    #[test]
    fn remedies_name_the_callers_jobctl_and_systemctl() {
        let d = derived(JobState::NotApplied, Some(TimerState::Active));
        let problems = check(&d, false, false, None, 1);
        assert!(
            problems[0]
                .message
                .ends_with("run `jobctl --user --jobs-dir /j apply`"),
            "{problems:?}"
        );
        let d = derived(JobState::Active, Some(TimerState::Active));
        let problems = check(&d, true, true, None, 1);
        assert!(
            problems[0]
                .message
                .contains("`systemctl --user status jobctl-nightly.service`"),
            "{problems:?}"
        );
        let p = linger_problem("alice", 2);
        assert_eq!(p.kind, ProblemKind::LingerOff);
        assert!(p.message.starts_with("lingering is off for alice: "));
        assert!(p.message.contains("the timers of 2 jobs"));
        assert!(
            p.message
                .ends_with("`loginctl enable-linger alice` keeps them running")
        );
    }

    #[test]
    fn a_job_whose_schedules_never_fire_again() {
        let opts = Options {
            failures: 1,
            overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
            zone: &TimeZone::UTC,
            signal_name: &|s| format!("SIG{s}"),
            now_us: NOW,
            jobctl: "jobctl",
            systemctl: "systemctl",
            apply_blocked: false,
        };
        let why =
            "the calendar expression \"2020-06-01\" can never fire: its times are all in the past";
        fn facts<'a>(d: &'a Derived, why: &'a str) -> JobFacts<'a> {
            JobFacts {
                job: "once",
                derived: d,
                invalid_reason: None,
                timer_active: true,
                timer_enabled: true,
                service_failed: false,
                service: "jobctl-once.service",
                not_after: None,
                never_fires: Some(why),
                history: None,
                unrecorded: None,
                overdue: None,
                service_result: "",
                not_loaded: &[],
            }
        }
        let d = derived(JobState::Active, Some(TimerState::Active));
        let problems = assess(&facts(&d, why), &opts);
        assert_eq!(kinds(&problems), [ProblemKind::NeverFires]);
        assert!(problems[0].message.contains(why), "{problems:?}");
        assert!(problems[0].message.contains("jobctl remove once"));
        // A timer that is off on purpose is not expected to fire.
        for wish in [TimerState::Disabled, TimerState::DisabledByOperator] {
            let d = derived(JobState::Disabled, Some(wish));
            assert!(assess(&facts(&d, why), &opts).is_empty(), "{wish:?}");
        }
    }

    #[test]
    fn an_overdue_run_of_an_enabled_timer_is_a_problem() {
        let opts = Options {
            failures: 1,
            overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
            zone: &TimeZone::UTC,
            signal_name: &|s| format!("SIG{s}"),
            now_us: NOW,
            jobctl: "jobctl",
            systemctl: "systemctl",
            apply_blocked: false,
        };
        let expected = crate::overdue::Expected {
            expected_us: NOW - 10 * MIN,
            leeway_us: 1_000_000,
            grace_us: 6 * MIN,
            derived_grace: true,
        };
        let facts = |d: &'static Derived| JobFacts {
            job: "hourly",
            derived: d,
            invalid_reason: None,
            timer_active: false,
            service_failed: false,
            service: "jobctl-hourly.service",
            not_after: None,
            never_fires: None,
            history: None,
            unrecorded: None,
            overdue: Some(&expected),
            service_result: "",
            not_loaded: &[],
            timer_enabled: true,
        };
        let on: &'static Derived = Box::leak(Box::new(derived(
            JobState::Inactive,
            Some(TimerState::Active),
        )));
        let problems = assess(&facts(on), &opts);
        assert!(
            kinds(&problems).contains(&ProblemKind::Overdue),
            "{problems:?}"
        );
        let p = problems
            .iter()
            .find(|p| p.kind == ProblemKind::Overdue)
            .unwrap();
        assert!(
            p.message
                .starts_with("no run started since the one expected at "),
            "{p:?}"
        );
        assert!(
            p.message.contains("(grace 6min 01s)") && p.message.contains("`jobctl run hourly`"),
            "{p:?}"
        );
        assert_eq!(ProblemKind::parse("overdue"), Some(ProblemKind::Overdue));
        // A timer off on purpose is not expected to fire.
        let off: &'static Derived = Box::leak(Box::new(derived(
            JobState::Disabled,
            Some(TimerState::Disabled),
        )));
        assert!(!kinds(&assess(&facts(off), &opts)).contains(&ProblemKind::Overdue));
    }

    #[test]
    fn a_run_newer_than_the_history_that_was_not_recorded() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        let unrecorded = UnrecordedRun {
            id: "18c356ab0168991a".into(),
            at_us: NOW - MIN,
            status: "failed".into(),
            db: "/var/lib/jobctl/history.db".into(),
            error: "attempt to write a readonly database".into(),
        };
        let assess_with = |h: Option<&HistoryFacts>, service_failed: bool| {
            let facts = JobFacts {
                job: "nightly",
                derived: &d,
                invalid_reason: None,
                timer_active: true,
                timer_enabled: true,
                service_failed,
                service: "jobctl-nightly.service",
                not_after: None,
                never_fires: None,
                history: h,
                unrecorded: Some(&unrecorded),
                overdue: None,
                service_result: "",
                not_loaded: &[],
            };
            assess(
                &facts,
                &Options {
                    failures: 1,
                    overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
                    zone: &TimeZone::UTC,
                    signal_name: &|s| format!("SIG{s}"),
                    now_us: NOW,
                    jobctl: "jobctl",
                    systemctl: "systemctl",
                    apply_blocked: false,
                },
            )
        };
        // Never recorded at all; the failed unit is the unrecorded run.
        let problems = assess_with(None, true);
        assert_eq!(kinds(&problems), [ProblemKind::HistoryUnwritable]);
        let message = &problems[0].message;
        for text in [
            "run 18c356ab0168991a",
            "failed",
            "not recorded in /var/lib/jobctl/history.db: attempt to write a readonly database",
            "journalctl JOBCTL_JOB=nightly",
        ] {
            assert!(message.contains(text), "{text}: {message}");
        }
        // Newer than the last recorded run: still a problem.
        let h = history(run(RunStatus::Success, NOW - 10 * MIN), 0);
        assert_eq!(
            kinds(&assess_with(Some(&h), false)),
            [ProblemKind::HistoryUnwritable]
        );
        // A run recorded since: the history works again.
        let h = history(run(RunStatus::Success, NOW - MIN / 2), 0);
        assert!(assess_with(Some(&h), false).is_empty());
    }

    #[test]
    fn start_limit_hit_and_units_that_did_not_load_are_named() {
        let d = derived(JobState::Active, Some(TimerState::Active));
        let not_loaded = ["jobctl-nightly.service: Unit has a bad unit file setting.".to_string()];
        let mut facts = JobFacts {
            job: "nightly",
            derived: &d,
            invalid_reason: None,
            timer_active: true,
            timer_enabled: true,
            service_failed: true,
            service_result: "start-limit-hit",
            not_loaded: &[],
            service: "jobctl-nightly.service",
            not_after: None,
            history: None,
            never_fires: None,
            unrecorded: None,
            overdue: None,
        };
        let opts = Options {
            failures: 1,
            overrun_grace_us: DEFAULT_OVERRUN_GRACE_US,
            zone: &TimeZone::UTC,
            signal_name: &|s| format!("SIG{s}"),
            jobctl: "jobctl",
            systemctl: "systemctl",
            apply_blocked: false,
            now_us: NOW,
        };
        let problems = assess(&facts, &opts);
        assert_eq!(kinds(&problems), [ProblemKind::StartLimitHit]);
        assert!(
            problems[0]
                .message
                .contains("reset-failed jobctl-nightly.service")
        );
        // A recorded failure before the refused start is reported too.
        let h = history(run(RunStatus::Failed, NOW - MIN), 1);
        facts.history = Some(&h);
        assert_eq!(
            kinds(&assess(&facts, &opts)),
            [ProblemKind::Failed, ProblemKind::StartLimitHit]
        );
        facts.history = None;
        facts.service_failed = false;
        facts.service_result = "";
        facts.not_loaded = &not_loaded;
        let problems = assess(&facts, &opts);
        assert_eq!(kinds(&problems), [ProblemKind::NotLoaded]);
        assert!(problems[0].message.contains("bad unit file setting"));
    }

    #[test]
    fn kinds_round_trip() {
        for kind in ProblemKind::ALL {
            assert_eq!(ProblemKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ProblemKind::parse("bogus"), None);
        assert_eq!(duration(45_000_000), "45s");
        assert_eq!(duration(3 * 86_400_000_000 + 7_200_000_000), "3d 2h");
    }
}
