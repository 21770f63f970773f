//! A job's installation state as `list`, `status` and `health` show it:
//! the job file (rendered, or invalid), jobctl's units in the unit folder,
//! whether systemd runs its timer, and the operator's override.
//!
//! Pure: the caller reads the unit folder and asks systemd; `now` decides
//! expiry. The rule for what the timer *should* be is apply's own
//! ([`crate::plan::timer_wish`]), so what `list` calls `inactive` is exactly
//! what the next `apply` would start.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use crate::plan::{Override, TimerState, TimerWish, timer_wish};
use crate::render::RenderedJob;

/// One word (or two) for a job's state. The order of the checks in
/// [`derive()`] decides which one shows when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// The timer is enabled and waiting for its schedule.
    Active,
    /// The timer should run (enabled, not expired) but systemd does not run it.
    Inactive,
    /// `enabled = false` in the job file.
    Disabled,
    /// Turned off with `jobctl disable`.
    DisabledByOperator,
    /// Past `not_after`.
    Expired,
    /// No timer: runs only with `jobctl run`.
    Manual,
    /// The job file changed since the last apply: the units on disk differ
    /// from what the file renders to.
    PendingApply,
    /// A job file with no units yet.
    NotApplied,
    /// Some of the job's units are installed, not all (one was deleted by hand).
    MissingUnit,
    /// Units of a job whose file is gone (kept by `apply --no-prune`).
    Orphaned,
    /// The job file does not validate (`jobctl validate` says why); whatever
    /// units it had stay as they were, since apply refuses to run.
    Invalid,
}

impl JobState {
    pub const ALL: [JobState; 11] = [
        JobState::Active,
        JobState::Inactive,
        JobState::Disabled,
        JobState::DisabledByOperator,
        JobState::Expired,
        JobState::Manual,
        JobState::PendingApply,
        JobState::NotApplied,
        JobState::MissingUnit,
        JobState::Orphaned,
        JobState::Invalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Active => "active",
            JobState::Inactive => "inactive",
            JobState::Disabled => "disabled",
            JobState::DisabledByOperator => "disabled by operator",
            JobState::Expired => "expired",
            JobState::Manual => "manual",
            JobState::PendingApply => "pending apply",
            JobState::NotApplied => "not applied",
            JobState::MissingUnit => "missing unit",
            JobState::Orphaned => "orphaned",
            JobState::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for JobState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What is known about one job.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The job file, rendered for this host (`None`: no valid job file).
    pub rendered: Option<&'a RenderedJob>,
    /// A job file of this name exists but does not validate.
    pub invalid: bool,
    /// jobctl's units of this job in the unit folder, by name, with their
    /// contents (`None` or empty: none).
    pub units: Option<&'a BTreeMap<String, String>>,
    /// systemd runs the job's timer (ActiveState `active`).
    pub timer_active: bool,
    /// The operator's override for this job, if any.
    pub override_: Option<&'a Override>,
    pub now: jiff::Timestamp,
}

/// The derived facts; `state` is the one-word summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub state: JobState,
    /// What the timer should be (for a job with a valid file).
    pub wish: Option<TimerWish>,
    /// At least one of the job's units is installed.
    pub installed: bool,
    /// Units the job file wants that are not installed (when some are).
    pub missing_units: Vec<String>,
    /// Installed units whose contents differ from the job file's, and
    /// installed units the job file no longer wants.
    pub outdated_units: Vec<String>,
    /// The job's timer unit is installed.
    pub timer_installed: bool,
}

/// Derives a job's state. Precedence: invalid, orphaned, not applied,
/// pending apply, missing unit, then the timer: manual, expired, active or
/// inactive (the timer should run), disabled by operator, disabled.
pub fn derive(inputs: &Inputs<'_>) -> Derived {
    let empty = BTreeMap::new();
    let units = inputs.units.unwrap_or(&empty);
    let installed = !units.is_empty();
    let timer_installed = units.keys().any(|n| n.ends_with(".timer"));
    let mut derived = Derived {
        state: JobState::Orphaned,
        wish: None,
        installed,
        missing_units: Vec::new(),
        outdated_units: Vec::new(),
        timer_installed,
    };
    if inputs.invalid {
        derived.state = JobState::Invalid;
        return derived;
    }
    let Some(job) = inputs.rendered else {
        return derived;
    };
    let wish = timer_wish(job, inputs.override_, inputs.now);
    derived.wish = Some(wish);
    if !installed {
        derived.state = JobState::NotApplied;
        return derived;
    }
    let wanted: Vec<_> = std::iter::once(&job.service)
        .chain(job.timer.as_ref())
        .collect();
    for unit in &wanted {
        match units.get(&unit.name) {
            None => derived.missing_units.push(unit.name.clone()),
            Some(contents) if *contents != unit.contents => {
                derived.outdated_units.push(unit.name.clone())
            }
            Some(_) => {}
        }
    }
    for name in units.keys() {
        if !wanted.iter().any(|u| u.name == *name) {
            derived.outdated_units.push(name.clone());
        }
    }
    derived.state = if !derived.outdated_units.is_empty() {
        JobState::PendingApply
    } else if !derived.missing_units.is_empty() {
        JobState::MissingUnit
    } else {
        match wish.state {
            TimerState::Manual => JobState::Manual,
            TimerState::Expired => JobState::Expired,
            TimerState::Active if inputs.timer_active => JobState::Active,
            TimerState::Active => JobState::Inactive,
            TimerState::DisabledByOperator => JobState::DisabledByOperator,
            TimerState::Disabled | TimerState::Removed | TimerState::Kept => JobState::Disabled,
        }
    };
    derived
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{HASH_KEY, OWNER_KEY, UnitFile};

    fn unit(job: &str, kind: &str, body: &str) -> UnitFile {
        UnitFile {
            name: format!("jobctl-{job}.{kind}"),
            contents: format!("[Unit]\n{OWNER_KEY}={job}\n{HASH_KEY}=h\n{body}\n"),
        }
    }

    fn job(name: &str) -> RenderedJob {
        RenderedJob {
            job: name.into(),
            service: unit(name, "service", "[Service]\nExecStart=/bin/true"),
            timer: Some(unit(name, "timer", "[Timer]\nOnCalendar=daily")),
            timer_enabled: true,
            not_after: None,
            hash: format!("hash-{name}"),
            users_folder: None,
        }
    }

    fn installed(job: &RenderedJob) -> BTreeMap<String, String> {
        std::iter::once(&job.service)
            .chain(job.timer.as_ref())
            .map(|u| (u.name.clone(), u.contents.clone()))
            .collect()
    }

    fn now() -> jiff::Timestamp {
        "2026-06-01T12:00:00Z".parse().unwrap()
    }

    fn state(
        rendered: Option<&RenderedJob>,
        units: Option<&BTreeMap<String, String>>,
        timer_active: bool,
        override_: Option<&Override>,
    ) -> JobState {
        derive(&Inputs {
            rendered,
            invalid: false,
            units,
            timer_active,
            override_,
            now: now(),
        })
        .state
    }

    #[test]
    fn an_installed_job_is_active_or_inactive_by_its_timer() {
        let j = job("a");
        let units = installed(&j);
        assert_eq!(state(Some(&j), Some(&units), true, None), JobState::Active);
        assert_eq!(
            state(Some(&j), Some(&units), false, None),
            JobState::Inactive
        );
    }

    #[test]
    fn files_against_units() {
        let j = job("a");
        assert_eq!(state(Some(&j), None, false, None), JobState::NotApplied);
        let mut units = installed(&j);
        assert_eq!(state(None, Some(&units), true, None), JobState::Orphaned);
        units.insert("jobctl-a.timer".into(), "[Unit]\nchanged\n".into());
        let d = derive(&Inputs {
            rendered: Some(&j),
            invalid: false,
            units: Some(&units),
            timer_active: true,
            override_: None,
            now: now(),
        });
        assert_eq!(d.state, JobState::PendingApply);
        assert_eq!(d.outdated_units, vec!["jobctl-a.timer".to_string()]);
        let mut units = installed(&j);
        units.remove("jobctl-a.timer");
        let d = derive(&Inputs {
            rendered: Some(&j),
            invalid: false,
            units: Some(&units),
            timer_active: false,
            override_: None,
            now: now(),
        });
        assert_eq!(d.state, JobState::MissingUnit);
        assert_eq!(d.missing_units, vec!["jobctl-a.timer".to_string()]);
        assert!(!d.timer_installed);
        // A timer left from when the job had a schedule: the file changed.
        let mut manual = job("a");
        manual.timer = None;
        assert_eq!(
            state(Some(&manual), Some(&installed(&j)), true, None),
            JobState::PendingApply
        );
        assert_eq!(
            state(Some(&manual), Some(&installed(&manual)), false, None),
            JobState::Manual
        );
    }

    #[test]
    fn invalid_wins_over_everything() {
        let j = job("a");
        let units = installed(&j);
        let d = derive(&Inputs {
            rendered: None,
            invalid: true,
            units: Some(&units),
            timer_active: true,
            override_: None,
            now: now(),
        });
        assert_eq!(d.state, JobState::Invalid);
        assert!(d.installed && d.timer_installed);
    }

    #[test]
    fn disabled_expired_and_overrides() {
        let mut off = job("off");
        off.timer_enabled = false;
        assert_eq!(
            state(Some(&off), Some(&installed(&off)), false, None),
            JobState::Disabled
        );
        let mut old = job("old");
        old.not_after = Some("2026-05-01T00:00:00Z".parse().unwrap());
        assert_eq!(
            state(Some(&old), Some(&installed(&old)), false, None),
            JobState::Expired
        );
        // An operator's enable does not revive an expired job.
        let revive = Override {
            enabled: true,
            hash: old.hash.clone(),
        };
        assert_eq!(
            state(Some(&old), Some(&installed(&old)), false, Some(&revive)),
            JobState::Expired
        );
        let j = job("a");
        let paused = Override {
            enabled: false,
            hash: j.hash.clone(),
        };
        assert_eq!(
            state(Some(&j), Some(&installed(&j)), false, Some(&paused)),
            JobState::DisabledByOperator
        );
        // An override made for an older file no longer holds: the timer
        // should run, and does not.
        let stale = Override {
            enabled: false,
            hash: "older".into(),
        };
        assert_eq!(
            state(Some(&j), Some(&installed(&j)), false, Some(&stale)),
            JobState::Inactive
        );
        // enable of a job whose file says enabled = false.
        let on = Override {
            enabled: true,
            hash: off.hash.clone(),
        };
        assert_eq!(
            state(Some(&off), Some(&installed(&off)), true, Some(&on)),
            JobState::Active
        );
        assert_eq!(
            state(Some(&off), Some(&installed(&off)), false, Some(&on)),
            JobState::Inactive
        );
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::BTreeSet<_> =
            JobState::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names.len(), JobState::ALL.len());
    }
}
