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
//! - What one apply covers is its [`Scope`]: a job whose file does not
//!   validate has its installed units left exactly as they are (never
//!   removed because its file is broken); units installed from another jobs
//!   folder (their `X-Jobctl-Source=`) are left alone, not pruned; and an
//!   apply of named jobs plans those jobs only.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::render::{HASH_KEY, OWNER_KEY, RenderedJob, SOURCE_KEY, UnitFile};

mod phase;
pub use phase::{Phase, Target};

/// The ownership mark of a unit file, read from its `[Unit]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    pub job: String,
    pub hash: Option<String>,
    /// The job file the unit was rendered from (`X-Jobctl-Source=`).
    pub source: Option<String>,
}

/// Reads the ownership mark: `X-Jobctl-Job=` (and `X-Jobctl-Hash=`,
/// `X-Jobctl-Source=`) in the `[Unit]` section. `None` for a unit jobctl
/// does not own.
pub fn ownership(contents: &str) -> Option<Ownership> {
    let mut in_unit = false;
    let mut job = None;
    let mut hash = None;
    let mut source = None;
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
                k if k == SOURCE_KEY => source = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    job.filter(|j| !j.is_empty()).map(|job| Ownership {
        job,
        hash,
        source: source.filter(|s| !s.is_empty()),
    })
}

/// The job file each installed job's units name (`X-Jobctl-Source=` of its
/// service, else of its timer; `None` when neither names one), by job: what
/// the caller needs to tell which folder a job was installed from
/// ([`Scope::elsewhere`]).
pub fn installed_sources(actual: &Actual) -> BTreeMap<String, Option<String>> {
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut units: Vec<&DiskUnit> = actual.units.iter().collect();
    // The service's mark first: it names the file the job's command came from.
    units.sort_by_key(|u| !u.name.ends_with(".service"));
    for unit in units {
        if let Some(o) = unit.contents.as_deref().and_then(ownership) {
            let entry = out.entry(o.job).or_default();
            if entry.is_none() {
                *entry = o.source;
            }
        }
    }
    out
}

/// What one apply covers (see the module's rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Remove the units of jobs whose files are gone.
    pub prune: bool,
    /// Plan only these jobs (`jobctl apply JOB…`); `None`: every job.
    pub only: Option<BTreeSet<String>>,
    /// Jobs whose files do not validate (or cannot be rendered for this
    /// host), with the first reason: their installed units are left exactly
    /// as they are, and their overrides kept.
    pub invalid: BTreeMap<String, String>,
    /// Installed jobs whose units were rendered from a job file outside the
    /// folder being applied (job → that file): left alone when this folder
    /// has no such job, taken over when it has.
    pub elsewhere: BTreeMap<String, String>,
}

impl Scope {
    fn covers(&self, job: &str) -> bool {
        self.only.as_ref().is_none_or(|only| only.contains(job))
    }
}

/// An installed job the plan leaves alone because its units came from
/// another jobs folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftAlone {
    pub job: String,
    /// The job file its units were rendered from.
    pub source: String,
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
    /// The job file does not validate: its installed units (if any) are
    /// left exactly as they are.
    Invalid,
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
    /// Left as it is installed (the job file does not validate).
    Kept,
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
    /// Installed jobs of other jobs folders, not touched ([`Scope::elsewhere`]).
    pub left_alone: Vec<LeftAlone>,
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

    /// The jobs left as they are because their files do not validate.
    pub fn invalid(&self) -> impl Iterator<Item = &JobPlan> {
        self.jobs.iter().filter(|j| j.change == Change::Invalid)
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

/// Computes the plan of every job, pruning the units of jobs whose files
/// are gone when `prune` says so: [`plan_scoped`] with no other limit.
pub fn plan(
    desired: &[RenderedJob],
    actual: &Actual,
    overrides: &BTreeMap<String, Override>,
    now: jiff::Timestamp,
    prune: bool,
) -> Result<Plan, Vec<PlanError>> {
    let scope = Scope {
        prune,
        ..Scope::default()
    };
    plan_scoped(desired, actual, overrides, now, &scope)
}

/// Computes the plan of what `scope` covers. `now` decides which jobs have
/// expired.
///
/// One function per case: a job whose file exists (`desired_job`), its
/// units under an earlier name (`renamed_units`), a job whose file does not
/// validate (`invalid_job`), a job whose file is gone (`gone_job`); every
/// unit name is checked against foreign units first (`collisions`).
pub fn plan_scoped(
    desired: &[RenderedJob],
    actual: &Actual,
    overrides: &BTreeMap<String, Override>,
    now: jiff::Timestamp,
    scope: &Scope,
) -> Result<Plan, Vec<PlanError>> {
    let disk = Disk::read(actual);
    let mut errors = Vec::new();
    let mut out = Plan::default();
    for job in desired.iter().filter(|j| scope.covers(&j.job)) {
        errors.extend(collisions(job, &disk));
        let mut wanted = desired_job(job, &disk, overrides.get(&job.job), now);
        if wanted.stale_override {
            out.stale_overrides.push(job.job.clone());
        }
        if let Some(source) = scope.elsewhere.get(&job.job) {
            wanted.plan.notes.push(format!(
                "installed from {source}; this folder's job file takes it over"
            ));
        }
        if let Some(old) = renamed_units(job, &disk, &wanted.plan.deletes) {
            out.jobs.push(old);
        }
        out.jobs.push(wanted.plan);
    }
    for (job, reason) in scope.invalid.iter().filter(|(j, _)| scope.covers(j)) {
        out.jobs.push(invalid_job(job, reason, &disk));
    }

    let desired_jobs: BTreeSet<&str> = desired.iter().map(|j| j.job.as_str()).collect();
    let known = |job: &str| desired_jobs.contains(job) || scope.invalid.contains_key(job);
    for (job, units) in &disk.owned {
        if known(job) || !scope.covers(job) {
            continue;
        }
        match scope.elsewhere.get(job) {
            Some(source) => out.left_alone.push(LeftAlone {
                job: job.clone(),
                source: source.clone(),
            }),
            None => out.jobs.push(gone_job(job, units, &disk, scope.prune)),
        }
    }
    for job in overrides.keys() {
        // An override of a job this apply does not judge is kept: a broken
        // file, another folder's job, a job not named.
        let judged = scope.covers(job)
            && !scope.invalid.contains_key(job)
            && !scope.elsewhere.contains_key(job);
        if !desired_jobs.contains(job.as_str()) && judged && !out.stale_overrides.contains(job) {
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

/// The unit folder split into jobctl's units (by job) and foreign names,
/// with systemd's states.
struct Disk<'a> {
    actual: &'a Actual,
    /// Job → its units in the folder (name → contents).
    owned: BTreeMap<String, BTreeMap<String, String>>,
    /// Every unit of jobctl's → its contents.
    owned_names: HashMap<&'a str, &'a str>,
    foreign: BTreeSet<&'a str>,
}

impl<'a> Disk<'a> {
    fn read(actual: &'a Actual) -> Disk<'a> {
        let mut disk = Disk {
            actual,
            owned: BTreeMap::new(),
            owned_names: HashMap::new(),
            foreign: BTreeSet::new(),
        };
        for unit in &actual.units {
            match unit.contents.as_deref().and_then(ownership) {
                Some(o) => {
                    let contents = unit.contents.as_deref().unwrap_or("");
                    disk.owned_names.insert(unit.name.as_str(), contents);
                    disk.owned
                        .entry(o.job)
                        .or_default()
                        .insert(unit.name.clone(), contents.to_string());
                }
                None => {
                    disk.foreign.insert(unit.name.as_str());
                }
            }
        }
        disk
    }

    /// systemd's view of a unit (unknown: off).
    fn state(&self, name: &str) -> UnitState {
        self.actual.states.get(name).cloned().unwrap_or_default()
    }

    fn has(&self, name: &str) -> bool {
        self.owned_names.contains_key(name)
    }
}

/// The steps that turn a timer off: stop it if it runs, disable it if it is
/// enabled. The same for a timer that is switched off, one a manual job no
/// longer has, and one of a removed job.
fn turn_off(state: &UnitState) -> TimerSteps {
    TimerSteps {
        stop: state.active,
        disable: state.enabled,
        ..TimerSteps::default()
    }
}

/// The job's unit names that are taken by units jobctl does not own.
fn collisions(job: &RenderedJob, disk: &Disk<'_>) -> Vec<PlanError> {
    let mut errors = Vec::new();
    for unit in std::iter::once(&job.service).chain(job.timer.as_ref()) {
        if disk.foreign.contains(unit.name.as_str()) {
            errors.push(PlanError::ForeignInFolder {
                job: job.job.clone(),
                unit: unit.name.clone(),
            });
        } else if !disk.has(&unit.name)
            && let Some(path) = disk.actual.elsewhere.get(&unit.name)
        {
            errors.push(PlanError::ForeignElsewhere {
                job: job.job.clone(),
                unit: unit.name.clone(),
                path: path.clone(),
            });
        }
    }
    errors
}

/// The plan of a job whose file exists, and whether its override is stale.
struct Wanted {
    plan: JobPlan,
    stale_override: bool,
}

/// A job whose file exists: write what changed, and set its timer to what
/// the job file, an operator override and expiry want.
fn desired_job(
    job: &RenderedJob,
    disk: &Disk<'_>,
    override_: Option<&Override>,
    now: jiff::Timestamp,
) -> Wanted {
    let writes: Vec<UnitWrite> = std::iter::once(&job.service)
        .chain(job.timer.as_ref())
        .filter_map(|unit| {
            let old = disk
                .owned_names
                .get(unit.name.as_str())
                .map(|s| s.to_string());
            (old.as_deref() != Some(unit.contents.as_str())).then(|| UnitWrite {
                name: unit.name.clone(),
                old,
                new: unit.contents.clone(),
            })
        })
        .collect();
    let existed =
        disk.has(&job.service.name) || job.timer.as_ref().is_some_and(|t| disk.has(&t.name));
    let timer = match &job.timer {
        None => manual_timer(job, disk),
        Some(timer) => scheduled_timer(job, timer, disk, override_, now),
    };
    // A unit written or deleted (a job turned manual loses its timer, its
    // service the same) is an update.
    let change = if !existed {
        Change::Create
    } else if writes.is_empty() && timer.deletes.is_empty() {
        Change::Unchanged
    } else {
        Change::Update
    };
    let running = disk.state(&job.service.name).active;
    let mut notes = Vec::new();
    if running && change == Change::Update {
        notes.push("running now: the run in progress keeps its old definition; the new one applies from the next run".to_string());
    }
    notes.extend(timer.notes);
    Wanted {
        plan: JobPlan {
            job: job.job.clone(),
            change,
            service: job.service.name.clone(),
            timer: timer.name,
            timer_state: timer.state,
            writes,
            deletes: timer.deletes.clone(),
            timer_steps: timer.steps,
            reset_failed: timer.deletes,
            running,
            notes,
        },
        stale_override: timer.stale_override,
    }
}

/// What the plan does with one job's timer.
struct TimerPlan {
    name: Option<String>,
    state: TimerState,
    steps: TimerSteps,
    /// Timer units to delete (and whose failed state to reset).
    deletes: Vec<String>,
    notes: Vec<String>,
    stale_override: bool,
}

/// A manual job: a timer left from an earlier definition goes.
fn manual_timer(job: &RenderedJob, disk: &Disk<'_>) -> TimerPlan {
    let old_timer = disk
        .owned
        .get(&job.job)
        .and_then(|units| units.keys().find(|n| n.ends_with(".timer")).cloned());
    let mut plan = TimerPlan {
        name: old_timer.clone(),
        state: TimerState::Manual,
        steps: TimerSteps::default(),
        deletes: Vec::new(),
        notes: Vec::new(),
        stale_override: false,
    };
    if let Some(old) = old_timer {
        plan.steps = turn_off(&disk.state(&old));
        plan.deletes.push(old);
    }
    plan
}

/// A scheduled job's timer: on or off as [`timer_wish`] says; restarted
/// only when its `[Timer]` section changed.
fn scheduled_timer(
    job: &RenderedJob,
    timer: &UnitFile,
    disk: &Disk<'_>,
    override_: Option<&Override>,
    now: jiff::Timestamp,
) -> TimerPlan {
    let wish = timer_wish(job, override_, now);
    let mut notes = Vec::new();
    if wish.stale_override
        && let Some(o) = override_
    {
        notes.push(format!(
            "the job file changed since `jobctl {}`: the file's setting applies again",
            if o.enabled { "enable" } else { "disable" }
        ));
    }
    let st = disk.state(&timer.name);
    let steps = if wish.on {
        // Restart only for a change of what the timer does: a new
        // description or hash line is picked up by the reload alone.
        let schedule_changed = disk
            .owned_names
            .get(timer.name.as_str())
            .is_some_and(|old| timer_section(old) != timer_section(&timer.contents));
        let timer_new = !disk.has(&timer.name);
        let mut steps = TimerSteps {
            enable: !st.enabled,
            ..TimerSteps::default()
        };
        if schedule_changed && st.active {
            steps.restart = true;
        } else if !st.active || timer_new {
            steps.start = true;
        }
        steps
    } else {
        turn_off(&st)
    };
    match wish.state {
        TimerState::Active if wish.by_operator => {
            notes.push("enabled by an operator (the job file says enabled = false)".into())
        }
        TimerState::Expired => {
            notes.push("expired (not_after has passed): the timer is off".into())
        }
        TimerState::DisabledByOperator => notes.push(format!(
            "disabled by an operator; `jobctl enable {}` turns it back on",
            job.job
        )),
        _ => {}
    }
    TimerPlan {
        name: Some(timer.name.clone()),
        state: wish.state,
        steps,
        deletes: Vec::new(),
        notes,
        stale_override: wish.stale_override && override_.is_some(),
    }
}

/// Units of a job under an earlier name (the unit prefix changed): removed
/// like a removed job's, timer stopped first. `None` when there are none.
fn renamed_units(job: &RenderedJob, disk: &Disk<'_>, deleted: &[String]) -> Option<JobPlan> {
    let units = disk.owned.get(&job.job)?;
    let mine = units_of(job);
    let old: Vec<String> = units
        .keys()
        .filter(|n| !mine.contains(&n.as_str()) && !deleted.contains(n))
        .cloned()
        .collect();
    if old.is_empty() {
        return None;
    }
    let mut plan = removal(&job.job, old, disk);
    plan.running = false;
    plan.notes = vec!["units under an earlier name (the unit prefix changed)".into()];
    Some(plan)
}

/// A job whose file does not validate: nothing is written, started,
/// stopped or deleted; its installed units (if any) stay exactly as they
/// are, and the plan says why.
fn invalid_job(job: &str, reason: &str, disk: &Disk<'_>) -> JobPlan {
    let units = disk.owned.get(job);
    let find = |ext: &str| units.and_then(|u| u.keys().find(|n| n.ends_with(ext)).cloned());
    let service = find(".service").unwrap_or_default();
    let installed = if units.is_some() {
        "its installed units are left as they are"
    } else {
        "nothing of it is installed"
    };
    JobPlan {
        job: job.to_string(),
        change: Change::Invalid,
        running: !service.is_empty() && disk.state(&service).active,
        service,
        timer: find(".timer"),
        timer_state: TimerState::Kept,
        writes: Vec::new(),
        deletes: Vec::new(),
        timer_steps: TimerSteps::default(),
        reset_failed: Vec::new(),
        notes: vec![format!(
            "its job file does not validate ({reason}): skipped; {installed}"
        )],
    }
}

/// A job whose file is gone: removed with `prune`, else kept as orphaned.
fn gone_job(job: &str, units: &BTreeMap<String, String>, disk: &Disk<'_>, prune: bool) -> JobPlan {
    let mut plan = removal(job, units.keys().cloned().collect(), disk);
    if prune {
        if plan.running {
            plan.notes.push(
                "running now: the run is not stopped; it finishes under the removed definition \
                 and is recorded in the history"
                    .into(),
            );
        }
    } else {
        plan.change = Change::Orphaned;
        plan.deletes.clear();
        plan.reset_failed.clear();
        plan.timer_steps = TimerSteps::default();
        plan.notes
            .push("its job file is gone; kept because --no-prune was given".into());
    }
    plan
}

/// Removing a job's `units`: timer turned off, every unit deleted and its
/// failed state reset. A run in progress is not stopped.
fn removal(job: &str, units: Vec<String>, disk: &Disk<'_>) -> JobPlan {
    let service = units.iter().find(|n| n.ends_with(".service")).cloned();
    let timer = units.iter().find(|n| n.ends_with(".timer")).cloned();
    JobPlan {
        job: job.to_string(),
        change: Change::Remove,
        running: service.as_deref().is_some_and(|s| disk.state(s).active),
        service: service.unwrap_or_default(),
        timer_steps: timer
            .as_deref()
            .map(|t| turn_off(&disk.state(t)))
            .unwrap_or_default(),
        timer,
        timer_state: TimerState::Removed,
        writes: Vec::new(),
        deletes: units.clone(),
        reset_failed: units,
        notes: Vec::new(),
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
mod tests;
