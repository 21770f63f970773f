//! The order in which a plan is carried out, as typed phases: `apply` runs
//! [`Plan::phases`] one after the other and executes each; which phases
//! there are, in which order, and what each acts on is decided here.
//!
//! The order is safe to interrupt and to repeat: timers are stopped before
//! their units change, files are written before enablement changes (systemd
//! reads the `[Install]` section of the file), deletions come after
//! disabling, one reload picks up every change, and timers are started only
//! once systemd has loaded their units. On a failure the next apply
//! converges.

use super::{Plan, TimerSteps, UnitWrite};

/// A unit a phase acts on, with the job it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'p> {
    pub job: &'p str,
    pub unit: &'p str,
}

/// One phase of carrying out a plan, with what it acts on. Only phases with
/// something to do are in [`Plan::phases`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase<'p> {
    /// Stop timers (jobs removed, timers turned off) before anything
    /// changes under them.
    StopTimers(Vec<Target<'p>>),
    /// Write the changed unit files (atomically, as one batch).
    WriteUnits(Vec<&'p UnitWrite>),
    DisableTimers(Vec<Target<'p>>),
    EnableTimers(Vec<Target<'p>>),
    /// Delete the unit files of removed jobs and timers.
    DeleteUnits(Vec<Target<'p>>),
    /// One `daemon-reload` for every change of files and enablement.
    Reload,
    /// Read back what systemd made of the units the plan keeps: a job whose
    /// units did not load gets no timer started (systemd would refuse) and
    /// is reported. Changes nothing.
    CheckLoaded(Vec<Target<'p>>),
    StartTimers(Vec<Target<'p>>),
    /// Timers whose `[Timer]` section changed.
    RestartTimers(Vec<Target<'p>>),
    /// Forget the failed state of removed units.
    ResetFailed(Vec<Target<'p>>),
}

impl<'p> Phase<'p> {
    /// What the phase does, for reports ("NOT done: write unit files (2)").
    pub fn label(&self) -> &'static str {
        match self {
            Phase::StopTimers(_) => "stop timers",
            Phase::WriteUnits(_) => "write unit files",
            Phase::DisableTimers(_) => "disable timers",
            Phase::EnableTimers(_) => "enable timers",
            Phase::DeleteUnits(_) => "delete unit files",
            Phase::Reload => "reload systemd",
            Phase::CheckLoaded(_) => "check that systemd loaded the units",
            Phase::StartTimers(_) => "start timers",
            Phase::RestartTimers(_) => "restart timers",
            Phase::ResetFailed(_) => "reset failed units",
        }
    }

    /// The units it acts on (none for the reload).
    pub fn units(&self) -> Vec<&'p str> {
        match self {
            Phase::WriteUnits(writes) => writes.iter().map(|w| w.name.as_str()).collect(),
            Phase::Reload => Vec::new(),
            Phase::StopTimers(t)
            | Phase::DisableTimers(t)
            | Phase::EnableTimers(t)
            | Phase::DeleteUnits(t)
            | Phase::CheckLoaded(t)
            | Phase::StartTimers(t)
            | Phase::RestartTimers(t)
            | Phase::ResetFailed(t) => t.iter().map(|t| t.unit).collect(),
        }
    }

    /// Whether the phase changes anything (all but [`Phase::CheckLoaded`]):
    /// the phases a report lists as done or not done.
    pub fn changes_something(&self) -> bool {
        !matches!(self, Phase::CheckLoaded(_))
    }

    /// The same phase without the timers of `jobs`: the timers of jobs
    /// whose units systemd did not load are neither started nor restarted.
    pub fn without_jobs(self, jobs: &[&str]) -> Phase<'p> {
        let keep = |targets: Vec<Target<'p>>| -> Vec<Target<'p>> {
            targets
                .into_iter()
                .filter(|t| !jobs.contains(&t.job))
                .collect()
        };
        match self {
            Phase::StartTimers(t) => Phase::StartTimers(keep(t)),
            Phase::RestartTimers(t) => Phase::RestartTimers(keep(t)),
            other => other,
        }
    }
}

impl Plan {
    /// The phases that carry the plan out, in order, each with what it acts
    /// on; phases with nothing to do are left out. Empty when nothing
    /// changes.
    pub fn phases(&self) -> Vec<Phase<'_>> {
        if !self.changed() {
            return Vec::new();
        }
        let timers = |step: fn(&TimerSteps) -> bool| -> Vec<Target<'_>> {
            self.jobs
                .iter()
                .filter(|j| step(&j.timer_steps))
                .filter_map(|j| j.timer.as_deref().map(|unit| Target { job: &j.job, unit }))
                .collect()
        };
        let of_jobs = |units: fn(&super::JobPlan) -> &[String]| -> Vec<Target<'_>> {
            self.jobs
                .iter()
                .flat_map(|j| units(j).iter().map(|unit| Target { job: &j.job, unit }))
                .collect()
        };
        let all = [
            Phase::StopTimers(timers(|s| s.stop)),
            Phase::WriteUnits(self.writes().collect()),
            Phase::DisableTimers(timers(|s| s.disable)),
            Phase::EnableTimers(timers(|s| s.enable)),
            Phase::DeleteUnits(of_jobs(|j| &j.deletes)),
            Phase::Reload,
            Phase::CheckLoaded(self.kept_units()),
            Phase::StartTimers(timers(|s| s.start)),
            Phase::RestartTimers(timers(|s| s.restart)),
            Phase::ResetFailed(of_jobs(|j| &j.reset_failed)),
        ];
        let reload = self.needs_reload();
        all.into_iter()
            .filter(|phase| match phase {
                Phase::Reload => reload,
                other => !other.units().is_empty(),
            })
            .collect()
    }

    /// The units the plan keeps (every unit of a job that is not removed,
    /// but those it deletes; not those of a job left as it is because its
    /// file does not validate), with their jobs: the units systemd should have
    /// loaded once the plan is carried out.
    pub fn kept_units(&self) -> Vec<Target<'_>> {
        self.jobs
            .iter()
            .filter(|j| {
                !matches!(
                    j.change,
                    super::Change::Remove | super::Change::Orphaned | super::Change::Invalid
                )
            })
            .flat_map(|j| {
                std::iter::once(&j.service)
                    .chain(j.timer.as_ref())
                    .filter(|unit| !j.deletes.contains(unit))
                    .map(|unit| Target { job: &j.job, unit })
            })
            .collect()
    }
}
