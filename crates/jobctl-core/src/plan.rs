//! Apply planning: desired state (the rendered jobs) against actual state (the
//! unit files jobctl owns, and what systemd reports about them) → a plan.
//!
//! Pure: the caller reads the unit folder and asks systemd; `now` decides
//! which jobs have expired. The binary executes the plan (`jobctl apply`).
//!
//! Rules (docs/operations.md explains them to operators):
//! - A unit file is jobctl's only if its `[Unit]` section carries
//!   `X-Jobctl-Job=`. Anything else is foreign: never written, started,
//!   stopped or deleted. A job whose unit name is taken by a foreign unit (in
//!   the unit folder or anywhere else systemd finds units) is an error.
//! - Only changed files are written; a timer is restarted only when its
//!   `[Timer]` section changed (a restart can fire or skip a run
//!   off-schedule, systemd#31231): a change to the service alone, or to the
//!   timer's description or hash line, is picked up by the reload.
//! - A timer is on when the job has a schedule, the job file does not say
//!   `enabled = false`, the job has not expired (`not_after`), and no operator
//!   override says otherwise. An override (`jobctl enable/disable`) holds while
//!   the job's hash is the one it was recorded with; once the job file
//!   changes, the file wins and the override is dropped.
//! - Jobs whose files are gone are removed (with `prune`): timer stopped and
//!   disabled, units deleted, failed state reset. A run in progress is not
//!   killed; it finishes under the old definition.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::render::{HASH_KEY, OWNER_KEY, RenderedJob};

/// The ownership mark of a unit file, read from its `[Unit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub job: String,
    pub hash: Option<String>,
}

/// Reads the ownership mark: `X-Jobctl-Job=` (and `X-Jobctl-Hash=`) in the
/// `[Unit]` section. `None` for a unit jobctl does not own.
pub fn ownership(contents: &str) -> Option<Ownership> {
    let mut in_unit = false;
    let mut job = None;
    let mut hash = None;
    for line in contents.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_unit = line == "[Unit]";
            continue;
        }
        if !in_unit {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            match key.trim() {
                k if k == OWNER_KEY => job = Some(value.trim().to_string()),
                k if k == HASH_KEY => hash = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    job.filter(|j| !j.is_empty())
        .map(|job| Ownership { job, hash })
}

/// A `.service`/`.timer` entry of the unit folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskUnit {
    pub name: String,
    /// `None` for a symlink or an unreadable file (never jobctl's).
    pub contents: Option<String>,
}

/// What systemd says about one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    /// Enabled (its `[Install]` symlinks exist).
    pub enabled: bool,
    /// active, activating, reloading (a timer that is waiting is active).
    pub active: bool,
    /// Failed state (to reset).
    pub failed: bool,
}

/// The actual state the plan starts from.
#[derive(Debug, Clone, Default)]
pub struct Actual {
    /// Every `.service`/`.timer` entry of the unit folder.
    pub units: Vec<DiskUnit>,
    /// systemd's view of the units named in the plan (missing = unknown, off).
    pub states: HashMap<String, UnitState>,
    /// Unit files of these names that systemd finds outside the unit folder
    /// (e.g. /usr/lib/systemd/system): name → path. Such names are taken.
    pub elsewhere: HashMap<String, String>,
}

/// An operator's `jobctl enable`/`disable`, recorded with the job's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Override {
    pub enabled: bool,
    pub hash: String,
}

/// What happens to a job as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Create,
    Update,
    Remove,
    Unchanged,
    /// Units of a job whose file is gone, kept because pruning is off.
    Orphaned,
}

/// The timer's state once the plan is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerState {
    /// Enabled and waiting for its schedule.
    Active,
    /// `enabled = false` in the job file.
    Disabled,
    /// Turned off by `jobctl disable` (override).
    DisabledByOperator,
    /// Past `not_after`.
    Expired,
    /// No timer: runs only with `jobctl run`.
    Manual,
    /// The job is removed.
    Removed,
}

/// One unit file to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitWrite {
    pub name: String,
    /// The current contents (`None` when new), for `--diff`.
    #[serde(skip)]
    pub old: Option<String>,
    #[serde(skip)]
    pub new: String,
}

/// The timer steps for one job, in execution order: stop, disable, enable,
/// start or restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimerSteps {
    pub stop: bool,
    pub disable: bool,
    pub enable: bool,
    pub start: bool,
    pub restart: bool,
}

impl TimerSteps {
    pub fn any(&self) -> bool {
        self.stop || self.disable || self.enable || self.start || self.restart
    }
}

/// The plan for one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobPlan {
    pub job: String,
    pub change: Change,
    pub service: String,
    /// The timer unit's name (for a manual job whose timer is removed, too).
    pub timer: Option<String>,
    pub timer_state: TimerState,
    pub writes: Vec<UnitWrite>,
    /// Unit files to delete.
    pub deletes: Vec<String>,
    pub timer_steps: TimerSteps,
    /// Units whose failed state to reset (removed units).
    pub reset_failed: Vec<String>,
    /// The service is running now (it is not stopped; see the module docs).
    pub running: bool,
    /// Human notes: why a timer is off, what happens to a running run.
    pub notes: Vec<String>,
}

impl JobPlan {
    /// Whether applying this job changes anything.
    pub fn changes_anything(&self) -> bool {
        !self.writes.is_empty()
            || !self.deletes.is_empty()
            || self.timer_steps.any()
            || !self.reset_failed.is_empty()
    }
}

/// A whole apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub jobs: Vec<JobPlan>,
    /// Overrides recorded for a job hash that is no longer current (dropped
    /// after a successful apply) or for jobs that no longer exist.
    pub stale_overrides: Vec<String>,
}

impl Plan {
    pub fn changed(&self) -> bool {
        self.jobs.iter().any(JobPlan::changes_anything)
    }

    /// One reload when any unit file or enablement changes, none otherwise.
    pub fn needs_reload(&self) -> bool {
        self.jobs.iter().any(|j| {
            !j.writes.is_empty()
                || !j.deletes.is_empty()
                || j.timer_steps.enable
                || j.timer_steps.disable
        })
    }

    /// Timers with a given step, in job order.
    pub fn timers_where(&self, step: impl Fn(&TimerSteps) -> bool) -> Vec<String> {
        self.jobs
            .iter()
            .filter(|j| step(&j.timer_steps))
            .filter_map(|j| j.timer.clone())
            .collect()
    }

    pub fn writes(&self) -> impl Iterator<Item = &UnitWrite> {
        self.jobs.iter().flat_map(|j| j.writes.iter())
    }

    pub fn deletes(&self) -> impl Iterator<Item = &String> {
        self.jobs.iter().flat_map(|j| j.deletes.iter())
    }
}

/// Why no plan could be made; nothing may be changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "job {job}: unit {unit} already exists in the unit folder and is not jobctl's \
         (no {OWNER_KEY}= in its [Unit] section); jobctl never touches it — rename the job \
         or remove that unit"
    )]
    ForeignInFolder { job: String, unit: String },
    #[error(
        "job {job}: a unit named {unit} already exists at {path}; a jobctl unit of that name \
         would override it — rename the job"
    )]
    ForeignElsewhere {
        job: String,
        unit: String,
        path: String,
    },
}

/// What a job's timer should be, from the job file, an operator override and
/// expiry: the one rule `apply` enforces and `list`/`health` compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerWish {
    /// The timer should be enabled and running.
    pub on: bool,
    pub state: TimerState,
    /// An override decides, against the job file.
    pub by_operator: bool,
    /// An override was made for another version of the job file: the file
    /// wins again (and the override is to be dropped).
    pub stale_override: bool,
}

/// See [`TimerWish`]. A manual job (no timer) is [`TimerState::Manual`].
pub fn timer_wish(
    job: &RenderedJob,
    override_: Option<&Override>,
    now: jiff::Timestamp,
) -> TimerWish {
    let expired = job.not_after.is_some_and(|t| now >= t);
    if job.timer.is_none() {
        return TimerWish {
            on: false,
            state: TimerState::Manual,
            by_operator: false,
            stale_override: false,
        };
    }
    let mut on = job.timer_enabled && !expired;
    let mut by_operator = false;
    let mut stale_override = false;
    if let Some(o) = override_ {
        if o.hash == job.hash {
            // An expired job stays off whatever the operator said.
            if !expired {
                by_operator = on != o.enabled;
                on = o.enabled;
            }
        } else {
            stale_override = true;
        }
    }
    let state = if on {
        TimerState::Active
    } else if expired {
        TimerState::Expired
    } else if by_operator {
        TimerState::DisabledByOperator
    } else {
        TimerState::Disabled
    };
    TimerWish {
        on,
        state,
        by_operator,
        stale_override,
    }
}

/// Computes the plan. `now` decides which jobs have expired.
pub fn plan(
    desired: &[RenderedJob],
    actual: &Actual,
    overrides: &BTreeMap<String, Override>,
    now: jiff::Timestamp,
    prune: bool,
) -> Result<Plan, Vec<PlanError>> {
    let mut errors = Vec::new();
    // The unit folder, split into jobctl's units (by job) and foreign names.
    let mut owned: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut owned_names: HashMap<&str, &str> = HashMap::new();
    let mut foreign: BTreeSet<&str> = BTreeSet::new();
    for unit in &actual.units {
        match unit.contents.as_deref().and_then(ownership) {
            Some(o) => {
                owned_names.insert(unit.name.as_str(), unit.contents.as_deref().unwrap_or(""));
                owned
                    .entry(o.job)
                    .or_default()
                    .insert(unit.name.clone(), unit.contents.clone().unwrap_or_default());
            }
            None => {
                foreign.insert(unit.name.as_str());
            }
        }
    }
    let state = |name: &str| actual.states.get(name).cloned().unwrap_or_default();

    let mut out = Plan::default();
    let mut desired_units: BTreeSet<&str> = BTreeSet::new();
    for job in desired {
        let units: Vec<_> = std::iter::once(&job.service)
            .chain(job.timer.as_ref())
            .collect();
        for unit in &units {
            desired_units.insert(unit.name.as_str());
            if foreign.contains(unit.name.as_str()) {
                errors.push(PlanError::ForeignInFolder {
                    job: job.job.clone(),
                    unit: unit.name.clone(),
                });
            } else if !owned_names.contains_key(unit.name.as_str())
                && let Some(path) = actual.elsewhere.get(&unit.name)
            {
                errors.push(PlanError::ForeignElsewhere {
                    job: job.job.clone(),
                    unit: unit.name.clone(),
                    path: path.clone(),
                });
            }
        }

        let mut writes = Vec::new();
        for unit in &units {
            let old = owned_names.get(unit.name.as_str()).map(|s| s.to_string());
            if old.as_deref() != Some(unit.contents.as_str()) {
                writes.push(UnitWrite {
                    name: unit.name.clone(),
                    old,
                    new: unit.contents.clone(),
                });
            }
        }
        let existed = owned_names.contains_key(job.service.name.as_str())
            || job
                .timer
                .as_ref()
                .is_some_and(|t| owned_names.contains_key(t.name.as_str()));
        let change = if !existed {
            Change::Create
        } else if writes.is_empty() {
            Change::Unchanged
        } else {
            Change::Update
        };
        let service_state = state(&job.service.name);
        let running = service_state.active;
        let mut notes = Vec::new();
        if running && change == Change::Update {
            notes.push("running now: the run in progress keeps its old definition; the new one applies from the next run".to_string());
        }

        // The timer: the job's wish, the operator's override, expiry.
        let mut deletes = Vec::new();
        let mut reset_failed = Vec::new();
        let mut steps = TimerSteps::default();
        let (timer_name, timer_state) = match &job.timer {
            None => {
                // Manual job: a timer left from an earlier definition goes.
                let old_timer = owned
                    .get(&job.job)
                    .and_then(|units| units.keys().find(|n| n.ends_with(".timer")).cloned());
                if let Some(old) = &old_timer {
                    let st = state(old);
                    steps.stop = st.active;
                    steps.disable = st.enabled;
                    deletes.push(old.clone());
                    reset_failed.push(old.clone());
                }
                (old_timer, TimerState::Manual)
            }
            Some(timer) => {
                let wish = timer_wish(job, overrides.get(&job.job), now);
                let (on, by_operator) = (wish.on, wish.by_operator);
                if wish.stale_override
                    && let Some(o) = overrides.get(&job.job)
                {
                    out.stale_overrides.push(job.job.clone());
                    notes.push(format!(
                        "the job file changed since `jobctl {}`: the file's setting applies again",
                        if o.enabled { "enable" } else { "disable" }
                    ));
                }
                let st = state(&timer.name);
                // Restart only for a change of what the timer does: a new
                // description or hash line is picked up by the reload alone.
                let schedule_changed = owned_names
                    .get(timer.name.as_str())
                    .is_some_and(|old| timer_section(old) != timer_section(&timer.contents));
                let timer_new = !owned_names.contains_key(timer.name.as_str());
                if on {
                    steps.enable = !st.enabled;
                    if schedule_changed && st.active {
                        steps.restart = true;
                    } else if !st.active || timer_new {
                        steps.start = true;
                    }
                } else {
                    steps.stop = st.active;
                    steps.disable = st.enabled;
                }
                match wish.state {
                    TimerState::Active if by_operator => notes
                        .push("enabled by an operator (the job file says enabled = false)".into()),
                    TimerState::Expired => {
                        notes.push("expired (not_after has passed): the timer is off".into())
                    }
                    TimerState::DisabledByOperator => notes.push(format!(
                        "disabled by an operator; `jobctl enable {}` turns it back on",
                        job.job
                    )),
                    _ => {}
                }
                let ts = wish.state;
                (Some(timer.name.clone()), ts)
            }
        };
        if let Some(units) = owned.get(&job.job) {
            // Units of this job under an earlier name (the unit prefix
            // changed): removed like a removed job's, timer stopped first.
            let mine = units_of(job);
            let old: Vec<&String> = units
                .keys()
                .filter(|n| !mine.contains(&n.as_str()) && !deletes.contains(n))
                .collect();
            if !old.is_empty() {
                let old_timer = old
                    .iter()
                    .find(|n| n.ends_with(".timer"))
                    .map(|n| n.to_string());
                let mut steps = TimerSteps::default();
                if let Some(t) = &old_timer {
                    let st = state(t);
                    steps.stop = st.active;
                    steps.disable = st.enabled;
                }
                out.jobs.push(JobPlan {
                    job: job.job.clone(),
                    change: Change::Remove,
                    service: old
                        .iter()
                        .find(|n| n.ends_with(".service"))
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    timer: old_timer,
                    timer_state: TimerState::Removed,
                    writes: Vec::new(),
                    deletes: old.iter().map(|n| n.to_string()).collect(),
                    timer_steps: steps,
                    reset_failed: old.iter().map(|n| n.to_string()).collect(),
                    running: false,
                    notes: vec!["units under an earlier name (the unit prefix changed)".into()],
                });
            }
        }
        out.jobs.push(JobPlan {
            job: job.job.clone(),
            change,
            service: job.service.name.clone(),
            timer: timer_name,
            timer_state,
            writes,
            deletes,
            timer_steps: steps,
            reset_failed,
            running,
            notes,
        });
    }

    // Jobs whose files are gone.
    let desired_jobs: BTreeSet<&str> = desired.iter().map(|j| j.job.as_str()).collect();
    for (job, units) in &owned {
        if desired_jobs.contains(job.as_str()) {
            continue;
        }
        let service = units.keys().find(|n| n.ends_with(".service")).cloned();
        let timer = units.keys().find(|n| n.ends_with(".timer")).cloned();
        let running = service.as_deref().is_some_and(|s| state(s).active);
        let mut plan = JobPlan {
            job: job.clone(),
            change: Change::Orphaned,
            service: service.clone().unwrap_or_default(),
            timer: timer.clone(),
            timer_state: TimerState::Removed,
            writes: Vec::new(),
            deletes: Vec::new(),
            timer_steps: TimerSteps::default(),
            reset_failed: Vec::new(),
            running,
            notes: Vec::new(),
        };
        if prune {
            plan.change = Change::Remove;
            if let Some(t) = &timer {
                let st = state(t);
                plan.timer_steps.stop = st.active;
                plan.timer_steps.disable = st.enabled;
            }
            plan.deletes = units.keys().cloned().collect();
            plan.reset_failed = units.keys().cloned().collect();
            if running {
                plan.notes.push(
                    "running now: the run is not stopped; it finishes under the removed definition \
                     and is recorded in the history"
                        .into(),
                );
            }
        } else {
            plan.notes
                .push("its job file is gone; kept because --no-prune was given".into());
        }
        out.jobs.push(plan);
    }
    for job in overrides.keys() {
        if !desired_jobs.contains(job.as_str()) && !out.stale_overrides.contains(job) {
            out.stale_overrides.push(job.clone());
        }
    }
    out.jobs.sort_by(|a, b| a.job.cmp(&b.job));
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The directives of a timer's `[Timer]` section, in order: what decides
/// when it fires. Its `[Unit]` section (description, jobctl's marks) and
/// `[Install]` section (enablement, handled apart) do not.
pub fn timer_section(contents: &str) -> Vec<&str> {
    let mut in_timer = false;
    let mut out = Vec::new();
    for line in contents.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_timer = line == "[Timer]";
        } else if in_timer {
            out.push(line);
        }
    }
    out
}

fn units_of(job: &RenderedJob) -> Vec<&str> {
    std::iter::once(job.service.name.as_str())
        .chain(job.timer.as_ref().map(|t| t.name.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::UnitFile;

    fn unit(job: &str, kind: &str, body: &str) -> UnitFile {
        UnitFile {
            name: format!("jobctl-{job}.{kind}"),
            contents: format!("[Unit]\n{OWNER_KEY}={job}\n{HASH_KEY}=h\n{body}\n"),
        }
    }

    fn job(name: &str, schedule: &str) -> RenderedJob {
        RenderedJob {
            job: name.into(),
            service: unit(name, "service", "[Service]\nExecStart=/bin/true"),
            timer: Some(unit(
                name,
                "timer",
                &format!("[Timer]\nOnCalendar={schedule}"),
            )),
            timer_enabled: true,
            not_after: None,
            hash: format!("hash-{name}-{schedule}"),
        }
    }

    fn on_disk(jobs: &[RenderedJob]) -> Actual {
        let mut actual = Actual::default();
        for j in jobs {
            actual.units.push(DiskUnit {
                name: j.service.name.clone(),
                contents: Some(j.service.contents.clone()),
            });
            if let Some(t) = &j.timer {
                actual.units.push(DiskUnit {
                    name: t.name.clone(),
                    contents: Some(t.contents.clone()),
                });
                actual.states.insert(
                    t.name.clone(),
                    UnitState {
                        enabled: true,
                        active: true,
                        failed: false,
                    },
                );
            }
        }
        actual
    }

    fn now() -> jiff::Timestamp {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn plan_of(desired: &[RenderedJob], actual: &Actual) -> Plan {
        plan(desired, actual, &BTreeMap::new(), now(), true).unwrap()
    }

    #[test]
    fn ownership_is_read_from_the_unit_section_only() {
        let o =
            ownership("[Unit]\nDescription=x\nX-Jobctl-Job=backup\nX-Jobctl-Hash=abc\n[Service]\n")
                .unwrap();
        assert_eq!(
            o,
            Ownership {
                job: "backup".into(),
                hash: Some("abc".into())
            }
        );
        assert_eq!(ownership("[Service]\nX-Jobctl-Job=backup\n"), None);
        assert_eq!(ownership("[Unit]\nDescription=X-Jobctl-Job=backup\n"), None);
        assert_eq!(ownership("[Unit]\nX-Jobctl-Job=\n"), None);
    }

    #[test]
    fn new_jobs_are_created_enabled_and_started() {
        let p = plan_of(&[job("a", "daily")], &Actual::default());
        let a = &p.jobs[0];
        assert_eq!(a.change, Change::Create);
        assert_eq!(a.writes.len(), 2);
        assert_eq!(
            a.timer_steps,
            TimerSteps {
                enable: true,
                start: true,
                ..Default::default()
            }
        );
        assert!(p.needs_reload() && p.changed());
    }

    #[test]
    fn reapplying_changes_nothing_and_needs_no_reload() {
        let jobs = [job("a", "daily"), job("b", "hourly")];
        let p = plan_of(&jobs, &on_disk(&jobs));
        assert!(!p.changed(), "{p:#?}");
        assert!(!p.needs_reload());
        assert!(p.jobs.iter().all(|j| j.change == Change::Unchanged));
    }

    #[test]
    fn a_changed_timer_is_restarted_and_an_unchanged_one_left_alone() {
        let old = [job("a", "daily"), job("b", "hourly")];
        let new = [job("a", "weekly"), job("b", "hourly")];
        let p = plan_of(&new, &on_disk(&old));
        assert_eq!(p.jobs[0].change, Change::Update);
        assert_eq!(
            p.jobs[0].timer_steps,
            TimerSteps {
                restart: true,
                ..Default::default()
            }
        );
        assert_eq!(p.jobs[1].timer_steps, TimerSteps::default());
        assert_eq!(p.timers_where(|s| s.restart), ["jobctl-a.timer"]);
    }

    #[test]
    fn a_service_only_change_does_not_touch_the_timer() {
        let old = [job("a", "daily")];
        let mut new = job("a", "daily");
        new.service = unit("a", "service", "[Service]\nExecStart=/bin/false");
        let mut actual = on_disk(&old);
        actual.states.insert(
            new.service.name.clone(),
            UnitState {
                active: true,
                ..Default::default()
            },
        );
        let p = plan_of(&[new], &actual);
        assert_eq!(p.jobs[0].writes.len(), 1);
        assert!(!p.jobs[0].timer_steps.any());
        assert!(p.jobs[0].running);
        assert!(p.jobs[0].notes[0].contains("next run"));
    }

    /// A job file rendered for real (the hand-made units above cannot show
    /// what the renderer puts into both units).
    fn rendered(body: &str) -> RenderedJob {
        use crate::config::{Config, HistoryConfig};
        use crate::context::{Mode, UtcOnly};
        use crate::job::{JobSource, LoadContext, load_job};
        use crate::render::{RenderOptions, render};
        let config = Config::default();
        let loaded = load_job(
            JobSource {
                path: "/etc/jobctl/jobs.d/a.toml",
                stem: "a",
                text: body,
            },
            &LoadContext {
                mode: Mode::System,
                config: &config,
                zones: &UtcOnly,
                now: None,
                systemd: None,
                root_files: None,
            },
        );
        let job = loaded
            .job
            .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics));
        render(
            &job,
            &RenderOptions {
                mode: Mode::System,
                unit_prefix: "jobctl-",
                jobctl_path: "/usr/bin/jobctl",
                local_zone: &jiff::tz::TimeZone::UTC,
                zones: &UtcOnly,
                history: &HistoryConfig::default(),
                systemd_version: Some(252),
                user_state_dir: None,
            },
        )
        .unwrap()
    }

    /// Every key that concerns only the service, each changed on its own.
    pub(crate) const SERVICE_ONLY_CHANGES: &[(&str, &str)] = &[
        ("timeout", "timeout = \"2h\"\n"),
        ("command", "command = [\"/bin/false\"]\n"),
        ("environment", "[environment]\nMODE = \"fast\"\n"),
        ("user", "user = \"nobody\"\n"),
        ("group", "group = \"nogroup\"\n"),
        ("dynamic_user", "dynamic_user = true\n"),
        ("nice", "nice = 5\n"),
        ("memory_max", "memory_max = \"1G\"\n"),
        ("cpu_quota", "cpu_quota = \"50%\"\n"),
        ("io_weight", "io_weight = 50\n"),
        ("private_tmp", "private_tmp = true\n"),
        ("protect_system", "protect_system = \"strict\"\n"),
        ("no_new_privileges", "no_new_privileges = true\n"),
        ("description", "description = \"Nightly copy\"\n"),
        ("working_directory", "working_directory = \"/srv\"\n"),
        ("retry", "[retry]\nattempts = 3\n"),
        ("output_limit", "output_limit = \"1M\"\n"),
        ("after", "after = [\"network-online.target\"]\n"),
        ("service_extra", "[service_extra]\nLimitNOFILE = \"4096\"\n"),
    ];

    #[test]
    fn a_service_only_change_of_a_real_job_file_never_restarts_the_timer() {
        let base = "every = \"7min\"\n";
        let command = "command = [\"/bin/true\"]\n";
        let before = rendered(&format!("{command}{base}"));
        for (key, change) in SERVICE_ONLY_CHANGES {
            let command = if *key == "command" { "" } else { command };
            let after = rendered(&format!("{command}{base}{change}"));
            assert_ne!(after.service, before.service, "{key}: the service changed");
            let p = plan_of(
                std::slice::from_ref(&after),
                &on_disk(std::slice::from_ref(&before)),
            );
            let a = &p.jobs[0];
            assert_eq!(a.change, Change::Update, "{key}");
            assert_eq!(a.timer_steps, TimerSteps::default(), "{key}: {a:#?}");
        }
        // Units written by jobctl before each unit had its own hash (one hash
        // of both units in both files): the timer file is rewritten, not
        // restarted.
        let mut old = before.clone();
        for unit in [&mut old.service, old.timer.as_mut().unwrap()] {
            unit.contents = unit
                .contents
                .lines()
                .map(|l| match l.strip_prefix("X-Jobctl-Hash=") {
                    Some(_) => format!("X-Jobctl-Hash={}\n", before.hash),
                    None => format!("{l}\n"),
                })
                .collect();
        }
        let p = plan_of(
            std::slice::from_ref(&before),
            &on_disk(std::slice::from_ref(&old)),
        );
        assert_eq!(p.jobs[0].writes.len(), 2, "{p:#?}");
        assert_eq!(p.jobs[0].timer_steps, TimerSteps::default());

        // A schedule change does restart it.
        let after = rendered("command = [\"/bin/true\"]\nevery = \"9min\"\n");
        let p = plan_of(
            std::slice::from_ref(&after),
            &on_disk(std::slice::from_ref(&before)),
        );
        assert!(p.jobs[0].timer_steps.restart);
    }

    #[test]
    fn removed_jobs_are_stopped_disabled_deleted_and_reset_unless_no_prune() {
        let old = [job("a", "daily"), job("gone", "daily")];
        let mut actual = on_disk(&old);
        actual.states.insert(
            "jobctl-gone.service".into(),
            UnitState {
                active: true,
                ..Default::default()
            },
        );
        let p = plan_of(&old[..1], &actual);
        let gone = &p.jobs[1];
        assert_eq!(gone.change, Change::Remove);
        assert_eq!(
            gone.timer_steps,
            TimerSteps {
                stop: true,
                disable: true,
                ..Default::default()
            }
        );
        assert_eq!(gone.deletes, ["jobctl-gone.service", "jobctl-gone.timer"]);
        assert_eq!(gone.reset_failed.len(), 2);
        assert!(gone.running && gone.notes[0].contains("not stopped"));

        let kept = plan(&old[..1], &actual, &BTreeMap::new(), now(), false).unwrap();
        assert_eq!(kept.jobs[1].change, Change::Orphaned);
        assert!(!kept.changed());
    }

    #[test]
    fn foreign_units_are_never_touched_and_collisions_are_errors() {
        let mut actual = Actual::default();
        actual.units.push(DiskUnit {
            name: "jobctl-a.timer".into(),
            contents: Some("[Timer]\nOnCalendar=daily\n".into()),
        });
        actual.units.push(DiskUnit {
            name: "other.service".into(),
            contents: None,
        });
        actual.elsewhere.insert(
            "jobctl-b.service".into(),
            "/usr/lib/systemd/system/jobctl-b.service".into(),
        );
        let errs = plan(
            &[job("a", "daily"), job("b", "daily")],
            &actual,
            &BTreeMap::new(),
            now(),
            true,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            matches!(&errs[0], PlanError::ForeignInFolder { unit, .. } if unit == "jobctl-a.timer")
        );
        assert!(
            matches!(&errs[1], PlanError::ForeignElsewhere { unit, .. } if unit == "jobctl-b.service")
        );
        // Foreign units are not removed either.
        let p = plan_of(&[], &actual);
        assert!(p.jobs.is_empty());
    }

    #[test]
    fn disabled_and_expired_jobs_have_their_timer_off() {
        let mut disabled = job("d", "daily");
        disabled.timer_enabled = false;
        let mut expired = job("e", "daily");
        expired.not_after = Some("2026-05-01T00:00:00Z".parse().unwrap());
        let mut future = job("f", "daily");
        future.not_after = Some("2027-01-01T00:00:00Z".parse().unwrap());
        let all = [disabled.clone(), expired.clone(), future.clone()];
        // From empty: nothing is enabled or started for d and e.
        let p = plan_of(&all, &Actual::default());
        assert_eq!(p.jobs[0].timer_state, TimerState::Disabled);
        assert!(!p.jobs[0].timer_steps.any());
        assert_eq!(p.jobs[1].timer_state, TimerState::Expired);
        assert!(!p.jobs[1].timer_steps.any());
        assert_eq!(p.jobs[2].timer_state, TimerState::Active);
        // Running timers get stopped and disabled.
        let p = plan_of(&all, &on_disk(&all));
        assert_eq!(
            p.jobs[0].timer_steps,
            TimerSteps {
                stop: true,
                disable: true,
                ..Default::default()
            }
        );
        assert_eq!(
            p.jobs[1].timer_steps,
            TimerSteps {
                stop: true,
                disable: true,
                ..Default::default()
            }
        );
        assert!(!p.jobs[2].timer_steps.any());
    }

    #[test]
    fn operator_overrides_hold_until_the_job_file_changes() {
        let a = job("a", "daily");
        let actual = on_disk(std::slice::from_ref(&a));
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "a".to_string(),
            Override {
                enabled: false,
                hash: a.hash.clone(),
            },
        );
        let p = plan(std::slice::from_ref(&a), &actual, &overrides, now(), true).unwrap();
        assert_eq!(p.jobs[0].timer_state, TimerState::DisabledByOperator);
        assert_eq!(
            p.jobs[0].timer_steps,
            TimerSteps {
                stop: true,
                disable: true,
                ..Default::default()
            }
        );
        assert!(p.stale_overrides.is_empty());

        // The job file changed: the file's `enabled = true` wins again.
        let changed = job("a", "weekly");
        let p = plan(
            std::slice::from_ref(&changed),
            &actual,
            &overrides,
            now(),
            true,
        )
        .unwrap();
        assert_eq!(p.jobs[0].timer_state, TimerState::Active);
        assert_eq!(p.stale_overrides, ["a"]);

        // `jobctl enable` of a job whose file says enabled = false.
        let mut off = job("b", "daily");
        off.timer_enabled = false;
        let mut ov = BTreeMap::new();
        ov.insert(
            "b".to_string(),
            Override {
                enabled: true,
                hash: off.hash.clone(),
            },
        );
        let p = plan(
            std::slice::from_ref(&off),
            &Actual::default(),
            &ov,
            now(),
            true,
        )
        .unwrap();
        assert_eq!(p.jobs[0].timer_state, TimerState::Active);
        assert!(p.jobs[0].timer_steps.start);
    }

    #[test]
    fn units_under_an_earlier_prefix_are_removed() {
        let old = job("a", "daily");
        let mut actual = on_disk(std::slice::from_ref(&old));
        // The same job, now rendered with the prefix "svc-".
        let mut renamed = old.clone();
        renamed.service.name = "svc-a.service".into();
        renamed.timer.as_mut().unwrap().name = "svc-a.timer".into();
        actual.states.insert(
            "jobctl-a.timer".into(),
            UnitState {
                enabled: true,
                active: true,
                failed: false,
            },
        );
        let p = plan_of(&[renamed], &actual);
        let gone = p
            .jobs
            .iter()
            .find(|j| j.change == Change::Remove)
            .expect("a removal");
        assert_eq!(gone.deletes, ["jobctl-a.service", "jobctl-a.timer"]);
        assert_eq!(
            gone.timer_steps,
            TimerSteps {
                stop: true,
                disable: true,
                ..Default::default()
            }
        );
        let new = p
            .jobs
            .iter()
            .find(|j| j.change == Change::Create)
            .expect("a creation");
        assert!(new.timer_steps.start && new.timer_steps.enable);
    }

    #[test]
    fn a_job_turned_manual_loses_its_timer() {
        let old = [job("a", "daily")];
        let mut manual = job("a", "daily");
        manual.timer = None;
        let p = plan_of(&[manual], &on_disk(&old));
        let a = &p.jobs[0];
        assert_eq!(a.timer_state, TimerState::Manual);
        assert_eq!(a.deletes, ["jobctl-a.timer"]);
        assert_eq!(
            a.timer_steps,
            TimerSteps {
                stop: true,
                disable: true,
                ..Default::default()
            }
        );
    }
}
