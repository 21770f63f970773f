//! Whether `jobctl run` started a run, judged from what systemd says about
//! the start.
//!
//! systemd can end a start without running anything: at the unit's start
//! limit, for an unmet condition, for a failed dependency. Then the unit's
//! `InvocationID` and every property of its last run (`Result`,
//! `ExecMainStatus`) still describe the *previous* run, so the only proof
//! that a run began is a new invocation id. Pure: the binary gathers the
//! facts ([`StartFacts`]) from systemd and prints the verdict.

use serde::{Serialize, Serializer};

/// Why a start did not produce a run. The names are stable (`run --json`'s
/// `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotStarted {
    /// A run of the job was already in progress; no second one was started.
    AlreadyRunning,
    /// The service is still active from an earlier start (`RemainAfterExit=`).
    AlreadyActive,
    /// systemd refused the start: the unit's start limit
    /// (`StartLimitIntervalSec=`/`StartLimitBurst=`) was hit.
    StartLimitHit,
    /// A `Condition…=` of the unit was not met: systemd skipped the start.
    ConditionFailed,
    /// An `Assert…=` of the unit failed.
    AssertFailed,
    /// A unit the job requires failed to start.
    DependencyFailed,
    /// The unit is masked.
    Masked,
    /// systemd could not load the unit file.
    NotLoaded,
    /// The start job was canceled (e.g. by a stop or a conflicting job).
    Canceled,
    /// systemd refused the start for another reason (see the message).
    Refused,
    /// systemd began a run but could not set up its process, so the job's
    /// command never ran (a missing `environment_file`, user or working
    /// folder: `Result=resources`, no main process).
    SetupFailed,
}

impl NotStarted {
    pub const ALL: [NotStarted; 11] = [
        NotStarted::AlreadyRunning,
        NotStarted::AlreadyActive,
        NotStarted::StartLimitHit,
        NotStarted::ConditionFailed,
        NotStarted::AssertFailed,
        NotStarted::DependencyFailed,
        NotStarted::Masked,
        NotStarted::NotLoaded,
        NotStarted::Canceled,
        NotStarted::Refused,
        NotStarted::SetupFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotStarted::AlreadyRunning => "already-running",
            NotStarted::AlreadyActive => "already-active",
            NotStarted::StartLimitHit => "start-limit-hit",
            NotStarted::ConditionFailed => "condition-failed",
            NotStarted::AssertFailed => "assert-failed",
            NotStarted::DependencyFailed => "dependency-failed",
            NotStarted::Masked => "masked",
            NotStarted::NotLoaded => "not-loaded",
            NotStarted::Canceled => "canceled",
            NotStarted::Refused => "refused",
            NotStarted::SetupFailed => "setup-failed",
        }
    }
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for NotStarted {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What systemd said about one start, after its job ended (or once a new
/// invocation was seen).
#[derive(Debug, Clone, Copy, Default)]
pub struct StartFacts<'a> {
    /// The unit's `InvocationID` right before the start ("" before the first).
    pub previous_invocation: &'a str,
    /// Its `InvocationID` afterwards.
    pub invocation: &'a str,
    /// How the start job ended (JobRemoved: "done", "failed", "dependency",
    /// "assert", "canceled", …); `None` while it has not.
    pub job_result: Option<&'a str>,
    /// The unit's `LoadState` afterwards.
    pub load_state: &'a str,
    /// The unit's `ActiveState` afterwards.
    pub active_state: &'a str,
    /// The unit's `Result` afterwards (systemd sets `start-limit-hit` only
    /// when the previous run had succeeded; otherwise it keeps that run's).
    pub unit_result: &'a str,
    /// `ConditionResult` and `AssertResult` afterwards.
    pub condition_result: bool,
    pub assert_result: bool,
}

/// The verdict on one start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A run began: its invocation id.
    Started(String),
    /// No run began.
    NotStarted(NotStarted),
    /// The start job is still queued and no run has begun yet.
    Pending,
}

/// Judges a start. A run began exactly when the unit shows an invocation
/// other than the one it had before the start.
pub fn judge(f: &StartFacts<'_>) -> Verdict {
    if !f.invocation.is_empty() && f.invocation != f.previous_invocation {
        return Verdict::Started(f.invocation.to_string());
    }
    let Some(job) = f.job_result else {
        return Verdict::Pending;
    };
    let reason = match job {
        // systemd 252 fails the start job of a loaded service without a new
        // invocation only at its start limit (unit_start → can_start →
        // unit_test_start_limit; a failed exec still gets an invocation).
        "failed" if f.unit_result == "start-limit-hit" || f.load_state == "loaded" => {
            NotStarted::StartLimitHit
        }
        "failed" if f.load_state == "masked" => NotStarted::Masked,
        "failed" => NotStarted::NotLoaded,
        // A start job is "done" without a run when a condition was not met,
        // or when the unit was already active.
        "done" | "skipped" if !f.condition_result => NotStarted::ConditionFailed,
        "done" | "skipped" if matches!(f.active_state, "active" | "activating" | "reloading") => {
            NotStarted::AlreadyActive
        }
        "assert" => NotStarted::AssertFailed,
        "dependency" => NotStarted::DependencyFailed,
        "canceled" => NotStarted::Canceled,
        "done" | "skipped" if !f.assert_result => NotStarted::AssertFailed,
        _ => NotStarted::Refused,
    };
    Verdict::NotStarted(reason)
}

/// A finished run's status in the history's words (`success`, `failed`,
/// `killed`, `timeout`, `error`) from systemd's `Result` of the service:
/// what `jobctl run` reports when the shim's own record cannot be read.
pub fn status_of(unit_result: &str) -> &'static str {
    match unit_result {
        "success" => "success",
        "exit-code" => "failed",
        "signal" | "core-dump" | "oom-kill" | "watchdog" => "killed",
        "timeout" => "timeout",
        _ => "error",
    }
}

/// What to tell the operator about a start that did not happen: what
/// systemd did, in words. `detail` is systemd's own detail when there is
/// one (the failed condition, the load error, the refused call's message).
pub fn explain(reason: NotStarted, detail: Option<&str>) -> String {
    let base = match reason {
        NotStarted::AlreadyRunning => "it is already running; no second run was started",
        NotStarted::AlreadyActive => {
            "the service is still active from an earlier start (RemainAfterExit=?); systemd did nothing"
        }
        NotStarted::StartLimitHit => {
            "systemd refused the start: the unit's start limit was hit (more than StartLimitBurst= starts within StartLimitIntervalSec=)"
        }
        NotStarted::ConditionFailed => "systemd skipped the start: a condition was not met",
        NotStarted::AssertFailed => "systemd refused the start: an assertion failed",
        NotStarted::DependencyFailed => {
            "systemd did not start it: a unit it requires failed to start"
        }
        NotStarted::Masked => "the unit is masked",
        NotStarted::NotLoaded => "systemd could not load the unit",
        NotStarted::Canceled => "the start was canceled before the run began",
        NotStarted::Refused => "systemd refused the start",
        NotStarted::SetupFailed => {
            "systemd began the run but could not set up its process, so the command never ran"
        }
    };
    match detail.map(str::trim).filter(|d| !d.is_empty()) {
        Some(detail) => format!("{base} ({detail})"),
        None => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "0a1b";
    const NEW: &str = "9c8d";

    fn facts(job: Option<&'static str>, invocation: &'static str) -> StartFacts<'static> {
        StartFacts {
            previous_invocation: OLD,
            invocation,
            job_result: job,
            load_state: "loaded",
            active_state: "failed",
            unit_result: "exit-code",
            condition_result: true,
            assert_result: true,
        }
    }

    #[test]
    fn a_new_invocation_is_a_run_whatever_its_result() {
        for job in [None, Some("done"), Some("failed")] {
            assert_eq!(judge(&facts(job, NEW)), Verdict::Started(NEW.into()));
        }
        // The first run ever.
        let mut f = facts(Some("done"), NEW);
        f.previous_invocation = "";
        assert_eq!(judge(&f), Verdict::Started(NEW.into()));
    }

    #[test]
    fn the_previous_invocation_is_never_a_run() {
        // The start limit, whether or not systemd's Result says so (it
        // keeps a failed previous run's result).
        let f = facts(Some("failed"), OLD);
        assert_eq!(judge(&f), Verdict::NotStarted(NotStarted::StartLimitHit));
        let mut f = facts(Some("failed"), OLD);
        f.unit_result = "start-limit-hit";
        f.active_state = "failed";
        assert_eq!(judge(&f), Verdict::NotStarted(NotStarted::StartLimitHit));
        let mut f = facts(Some("done"), OLD);
        f.condition_result = false;
        f.active_state = "inactive";
        assert_eq!(judge(&f), Verdict::NotStarted(NotStarted::ConditionFailed));
        // A condition failed before the first run ever: no invocation at all.
        let mut f = facts(Some("done"), "");
        f.previous_invocation = "";
        f.condition_result = false;
        assert_eq!(judge(&f), Verdict::NotStarted(NotStarted::ConditionFailed));
        for (job, reason) in [
            ("dependency", NotStarted::DependencyFailed),
            ("assert", NotStarted::AssertFailed),
            ("canceled", NotStarted::Canceled),
            ("timeout", NotStarted::Refused),
            ("invalid", NotStarted::Refused),
        ] {
            assert_eq!(judge(&facts(Some(job), OLD)), Verdict::NotStarted(reason));
        }
        let mut f = facts(Some("done"), OLD);
        f.active_state = "active";
        assert_eq!(judge(&f), Verdict::NotStarted(NotStarted::AlreadyActive));
        let mut f = facts(Some("failed"), OLD);
        f.load_state = "masked";
        assert_eq!(judge(&f), Verdict::NotStarted(NotStarted::Masked));
        let mut f = facts(Some("failed"), OLD);
        f.load_state = "bad-setting";
        assert_eq!(judge(&f), Verdict::NotStarted(NotStarted::NotLoaded));
        // Still queued.
        assert_eq!(judge(&facts(None, OLD)), Verdict::Pending);
    }

    #[test]
    fn explanations_carry_systemds_detail() {
        assert_eq!(
            explain(
                NotStarted::ConditionFailed,
                Some("ConditionPathExists=/srv/ready")
            ),
            "systemd skipped the start: a condition was not met (ConditionPathExists=/srv/ready)"
        );
        assert!(explain(NotStarted::StartLimitHit, None).contains("StartLimitBurst="));
        for reason in NotStarted::ALL {
            // A blank detail adds nothing.
            assert_eq!(
                explain(reason, Some(" ")),
                explain(reason, None),
                "{reason}"
            );
        }
        let names: std::collections::HashSet<_> =
            NotStarted::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), NotStarted::ALL.len());
    }
}
