//! What `list`, `status` and `health` know about every job, gathered in bulk:
//! the job files (loaded and rendered for this host), jobctl's units in the
//! unit folder, systemd's runtime state (one `ListUnitsByNames` for every
//! unit, then one pipelined `GetAll` of the Timer interface per active timer,
//! the only fact the history cannot give: the next elapse), the operators'
//! overrides, and the run history (last run, failure streak, last success).
//!
//! The three sources are read at the same time: systemd answers on its side
//! of the bus and SQLite reads its pages while this thread parses and renders
//! the job files.
//!
//! A job's runs are read only from the database of the user the job runs as
//! (its `StateDirectory=jobctl/users/<user>`, else the main database): a
//! user's database is that user's to write, so rows it holds for a job that
//! runs as someone else are ignored here (`jobctl history` still shows them,
//! labelled with where they came from).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use jobctl_core::health::UnrecordedRun;
use jobctl_core::job::Job;
use jobctl_core::labels::{LabelFilter, Labels};
use jobctl_core::plan::{Override, ownership};
use jobctl_core::render::{RenderedJob, users_folder_of};
use jobctl_core::state::{self, Derived};
use jobctl_history::liveness::LivenessProbe;
use jobctl_history::locate::Located;
use jobctl_history::{BadRow, JobSummary, RunLookup, RunRecord, Status, StatusCounts, Store};
use jobctl_systemd::{Property, Systemd, UnitDir, UnitProperties, UnitStatus};

use crate::error::CliError;
use crate::history_db::Readers;
use crate::load::{self, JobSelection};
use crate::paths::Paths;
use crate::rendering;
use crate::systemd::{self, systemd_error};

/// What to gather.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// Only these jobs (each must exist: an unknown name is a usage error
    /// with a suggestion).
    pub only: Option<&'a [String]>,
    /// Read the run history.
    pub history: bool,
    /// Also read the service's own last result from systemd (for `status`).
    pub unit_details: bool,
    /// Also read the runs the shims could not record (their warnings in the
    /// journal), for `health` and `status`.
    pub unrecorded: bool,
    /// Also count every job's finished runs by status, including those
    /// retention deleted (`jobctl metrics`).
    pub run_counts: bool,
}

/// `--owner`, `--team`, `--tag`: the jobs to show by their labels (see
/// `jobctl_core::labels`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LabelArgs {
    /// Only jobs whose `owner` is this.
    #[arg(long, value_name = "OWNER")]
    pub owner: Option<String>,
    /// Only jobs whose `team` is this.
    #[arg(long, value_name = "TEAM")]
    pub team: Option<String>,
    /// Only jobs with this tag (repeat, or separate with commas: every one
    /// must be among the job's tags). A job whose labels cannot be read (its
    /// file is gone or is not TOML) is always shown.
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    pub tags: Vec<String>,
}

impl LabelArgs {
    /// Keeps the jobs these labels select.
    pub fn retain(&self, overview: &mut Overview) {
        let filter = LabelFilter {
            owner: self.owner.clone(),
            team: self.team.clone(),
            tags: self.tags.clone(),
        };
        if !filter.is_empty() {
            overview
                .jobs
                .retain(|view| filter.matches(view.labels.as_ref()));
        }
    }
}

/// One job's history, from the database of the user it runs as.
#[derive(Debug, Clone)]
pub struct JobHistory {
    pub summary: JobSummary,
    /// The newest finished run, when it failed and a newer run is still in
    /// progress (otherwise `summary.last` is it).
    pub last_failure: Option<RunRecord>,
    pub database: PathBuf,
    /// Finished runs by status, ever (with `run_counts`; `jobctl metrics`).
    pub run_counts: Option<StatusCounts>,
}

impl JobHistory {
    /// The newest finished run, when it failed.
    pub fn last_failed_run(&self) -> Option<&RunRecord> {
        if self.summary.failure_streak == 0 {
            return None;
        }
        if self.summary.last.status.is_failure() {
            Some(&self.summary.last)
        } else {
            self.last_failure.as_ref()
        }
    }
}

/// Everything known about one job.
#[derive(Debug)]
pub struct JobView {
    pub job: String,
    pub derived: Derived,
    pub rendered: Option<RenderedJob>,
    pub definition: Option<Job>,
    /// The first error of a job file that does not validate.
    pub invalid_reason: Option<String>,
    /// The job file, when there is one.
    pub source: Option<String>,
    /// `owner`, `team`, `tags`: of the job, or read leniently from a file
    /// that does not validate; `None` when they cannot be known.
    pub labels: Option<Labels>,
    pub service: String,
    pub timer: Option<String>,
    /// systemd's ActiveState of the service and the timer ("" when systemd
    /// does not know the unit).
    pub service_state: String,
    pub timer_state: String,
    /// The timer is enabled: its `[Install]` link is in the unit folder's
    /// `*.wants/` (where apply puts it), so it starts again after a reboot.
    pub timer_enabled: bool,
    /// The timer's next elapse, µs since the epoch on the realtime clock
    /// (monotonic timers converted as `systemctl list-timers` does); 0: none.
    pub next_elapse_usec: u64,
    pub history: Option<JobHistory>,
    /// The service's own last result (with `unit_details`).
    pub unit: Option<UnitProperties>,
    /// The newest run of this job's service that its shim could not record
    /// (with `unrecorded`; whether a newer run was recorded is health's to
    /// judge).
    pub unrecorded: Option<UnrecordedRun>,
    /// systemd's `Result` of the service when it is `failed`.
    pub service_result: String,
    /// The job's units systemd could not load, each as `unit: reason`.
    pub not_loaded: Vec<String>,
}

impl JobView {
    /// A run is in progress (systemd's view: the service is starting,
    /// running or stopping).
    pub fn running(&self) -> bool {
        matches!(
            self.service_state.as_str(),
            "activating" | "active" | "deactivating" | "reloading"
        )
    }

    pub fn timer_active(&self) -> bool {
        self.timer_state == "active"
    }

    pub fn service_failed(&self) -> bool {
        self.service_state == "failed"
    }
}

/// All jobs, plus what could not be read.
#[derive(Debug)]
pub struct Overview {
    pub jobs: Vec<JobView>,
    /// History databases that could not be opened or read, with why.
    pub skipped: Vec<(Located, anyhow::Error)>,
    /// Rows of the history that could not be decoded and were skipped.
    pub bad_rows: Vec<(Located, Vec<BadRow>)>,
    /// Errors in the configuration file (not in a job file).
    pub config_errors: Vec<String>,
    /// The configuration has errors: `apply` refuses to run until fixed
    /// (invalid job files do not block it: it skips them, leaving their
    /// units as they are, unless `--strict`).
    pub apply_blocked: bool,
    /// The jobs folder does not exist (read as empty: a fresh host).
    pub missing_dir: Option<PathBuf>,
    pub now_us: i64,
    /// Where the jobs were gathered from (the unit folder, the history).
    pub paths: Paths,
}

/// Systemd's side, read on its own thread.
struct SystemdSide {
    /// Load state and active state, by unit name.
    statuses: HashMap<String, (String, String)>,
    timers: HashMap<String, UnitProperties>,
    /// `Result` of failed services, `LoadError` of units that did not load.
    troubled: HashMap<String, UnitProperties>,
}

/// Gathers the overview.
pub fn gather(paths: &Paths, opts: Options<'_>) -> Result<Overview, CliError> {
    gather_with(paths, opts, true)
}

/// [`gather`] without the timers' next elapses (`next_elapse_usec` is 0):
/// one D-Bus read per active timer less, for `jobctl watch`, which computes
/// when runs are due itself.
pub fn gather_without_next_elapses(paths: &Paths, opts: Options<'_>) -> Result<Overview, CliError> {
    gather_with(paths, opts, false)
}

fn gather_with(paths: &Paths, opts: Options<'_>, next_elapses: bool) -> Result<Overview, CliError> {
    let mode = paths.mode;
    let sd = systemd::connect(paths)?;
    let now = jiff::Timestamp::now();
    let now_us = now.as_microsecond();

    let unit_dir = UnitDir::new(&paths.unit_dir);
    std::thread::scope(|scope| -> Result<Overview, CliError> {
        // systemd's side starts at once, from a listing of the unit folder
        // (names only: asking about a foreign unit too costs nothing), and
        // runs while this thread reads the units and parses the job files.
        let (version_tx, version_rx) = std::sync::mpsc::channel();
        let sd = &sd;
        let unit_dir = &unit_dir;
        let systemd_side = scope.spawn(move || -> jobctl_systemd::Result<SystemdSide> {
            let version = sd.version();
            let _ = version_tx.send(version.as_ref().map(|v| v.major).ok());
            version?;
            let mut names = unit_dir.unit_names()?;
            if let Some(only) = opts.only {
                // Whatever the unit prefix: `<prefix><job>.service`.
                names.retain(|n| {
                    only.iter().any(|job| {
                        n.strip_suffix(".service")
                            .or_else(|| n.strip_suffix(".timer"))
                            .is_some_and(|stem| stem.ends_with(job.as_str()))
                    })
                });
            }
            read_systemd(sd, &names, next_elapses)
        });

        // The history on a third thread: every job's summary in every
        // database; each job's is picked from its own database below.
        let history_side = opts
            .history
            .then(|| scope.spawn(move || read_history(paths, opts.only, opts.run_counts, now_us)));
        // The shims' "not recorded" warnings, from the journal.
        let journal_side = opts
            .unrecorded
            .then(|| scope.spawn(move || crate::journal::unrecorded_runs(mode)));

        let mut on_disk: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        // A long-lived reader (jobctl-web) keeps what it read between
        // readings while the files are unchanged (`crate::cache`).
        let keep = crate::cache::enabled();
        let units = if keep {
            crate::cache::read_units(unit_dir, &paths.unit_dir).map(|(units, _)| units)
        } else {
            unit_dir.read_units()
        };
        for u in units.map_err(|e| systemd_error(e, mode))? {
            if let Some(contents) = u.contents
                && let Some(o) = ownership(&contents)
            {
                on_disk.entry(o.job).or_default().insert(u.name, contents);
            }
        }
        // Enablement from the unit folder's links, as apply reads it
        // (asking systemd costs it a scan of every unit folder per unit).
        let enabled: std::collections::HashSet<String> = if keep {
            crate::cache::enabled_units(&paths.unit_dir)
        } else {
            systemd::enabled_units(&paths.unit_dir)
        }
        .into_iter()
        .collect();
        // Feature detection needs systemd's version; the files are parsed
        // while systemd answers.
        let version = || version_rx.recv().ok().flatten();
        let load = || load::load_jobs(paths, &JobSelection::Dir(paths.jobs_dir.clone()));
        let exe = |loaded: &load::LoadedJobs| rendering::jobctl_path(loaded, None);
        let render = |loaded: &load::LoadedJobs, exe: &str, version| {
            rendering::render_each(loaded, paths, exe, version)
        };
        let (loaded, rendered, failures) = if keep {
            let (prepared, _) = crate::cache::jobs(paths, load, exe, version, render)?;
            (
                prepared.loaded.clone(),
                prepared.rendered.clone(),
                prepared.failures.clone(),
            )
        } else {
            let loaded = load()?;
            let exe = exe(&loaded)?;
            let version = version();
            let (rendered, failures) = render(&loaded, &exe, version);
            (loaded, rendered, failures)
        };
        let missing_dir = loaded.missing_dir.clone();
        let config_file = paths.config.display().to_string();
        let mut invalid: BTreeMap<String, String> = BTreeMap::new();
        let mut config_errors = Vec::new();
        for d in loaded.diagnostics.iter().filter(|d| d.is_error()) {
            let text = load::short_reason(d);
            if d.file == config_file {
                config_errors.push(format!("{}: {text}", d.file));
            } else {
                let stem = load::job_stem(std::path::Path::new(&d.file));
                invalid.entry(stem).or_insert(text);
            }
        }
        for (job, error) in failures {
            invalid
                .entry(job)
                .or_insert_with(|| format!("cannot be rendered for this host: {error}"));
        }
        let overrides = systemd::read_overrides(paths)?;
        // A file none of whose schedules can fire (any more) is one apply
        // refuses (`load::Checks::now`): invalid, unless its units are
        // already what it renders to (a one-off date that has passed since
        // it was applied: `health` says `never-fires`, and the units stay).
        {
            let zones = crate::zones::HostZones::new();
            let zone = zones.local();
            let when = jobctl_core::job::Now {
                instant: now,
                local: &zone,
            };
            for job in &loaded.jobs {
                let name = job.name.to_string();
                let current = rendered.get(&name).is_some_and(|r| {
                    let d = state::derive(&state::Inputs {
                        rendered: Some(r),
                        invalid: false,
                        units: on_disk.get(&name),
                        timer_active: false,
                        override_: None,
                        now,
                    });
                    d.installed && d.outdated_units.is_empty() && d.missing_units.is_empty()
                });
                if !current
                    && !invalid.contains_key(&name)
                    && let Some(why) = job.never_fires(&when, &zones)
                {
                    invalid.insert(name, why);
                }
            }
        }
        // A configuration error makes apply refuse to do anything: its
        // remedies say to fix it first. Invalid job files do not (per-job
        // isolation: apply skips them).
        let apply_blocked = !config_errors.is_empty();

        // Every job: a file (valid or not) or units on disk.
        let mut names: BTreeSet<String> = on_disk.keys().cloned().collect();
        names.extend(rendered.keys().cloned());
        names.extend(invalid.keys().cloned());
        if let Some(only) = opts.only {
            for one in only {
                if !names.contains(one) {
                    let known: Vec<String> = names.iter().cloned().collect();
                    return Err(systemd::unknown_job(one, &known));
                }
            }
            names.retain(|n| only.contains(n));
        }

        // Whose database each job records in: as rendered, else as the
        // installed service says.
        let owners: HashMap<String, Option<String>> = names
            .iter()
            .map(|job| {
                let folder = match rendered.get(job) {
                    Some(r) => r.users_folder.clone(),
                    None => on_disk.get(job).and_then(|units| {
                        units
                            .iter()
                            .find(|(n, _)| n.ends_with(".service"))
                            .and_then(|(_, c)| users_folder_of(c))
                    }),
                };
                (job.clone(), folder)
            })
            .collect();

        let sd_side = systemd_side
            .join()
            .expect("the systemd reader panicked")
            .map_err(|e| systemd_error(e, mode))?;
        let (mut histories, skipped, bad_rows) = match history_side {
            Some(handle) => handle.join().expect("the history reader panicked")?,
            None => (BTreeMap::new(), Vec::new(), Vec::new()),
        };
        let mut unrecorded = journal_side
            .map(|handle| handle.join().expect("the journal reader panicked"))
            .unwrap_or_default();
        let mono = monotonic_offset();

        let mut definitions: HashMap<String, Job> = loaded
            .jobs
            .into_iter()
            .map(|j| (j.name.to_string(), j))
            .collect();
        let mut rendered = rendered;
        let mut jobs = Vec::with_capacity(names.len());
        for job in names {
            let r = rendered.remove(&job);
            let units = on_disk.get(&job);
            let (service, timer) = match &r {
                Some(r) => (
                    r.service.name.clone(),
                    r.timer.as_ref().map(|t| t.name.clone()),
                ),
                None => {
                    let find = |ext: &str| {
                        units.and_then(|u| u.keys().find(|n| n.ends_with(ext)).cloned())
                    };
                    (find(".service").unwrap_or_default(), find(".timer"))
                }
            };
            let state_of = |name: &str| {
                sd_side
                    .statuses
                    .get(name)
                    .map(|(_, active)| active.clone())
                    .unwrap_or_default()
            };
            let service_state = state_of(&service);
            let timer_state = timer.as_deref().map(state_of).unwrap_or_default();
            let invalid_reason = invalid.get(&job).cloned();
            let derived = state::derive(&state::Inputs {
                rendered: r.as_ref(),
                invalid: invalid_reason.is_some(),
                units,
                timer_active: timer_state == "active",
                override_: overrides.get(&job).map(|o: &Override| o),
                now,
            });
            let next_elapse_usec = timer
                .as_ref()
                .and_then(|t| sd_side.timers.get(t))
                .map(|p| next_elapse(p, mono))
                .unwrap_or(0);
            let definition = definitions.remove(&job);
            let source = definition.as_ref().map(|d| d.source.clone()).or_else(|| {
                invalid_reason.as_ref().map(|_| {
                    paths
                        .jobs_dir
                        .join(format!("{job}.toml"))
                        .display()
                        .to_string()
                })
            });
            // The uid the job's runs have, for the journal's entries that
            // journald could not place in the unit.
            let uid = match mode {
                crate::paths::Mode::User => Some(nix::unistd::geteuid().as_raw()),
                crate::paths::Mode::System => match owners.get(&job) {
                    Some(Some(user)) => nix::unistd::User::from_name(user)
                        .ok()
                        .flatten()
                        .map(|u| u.uid.as_raw()),
                    _ => Some(0),
                },
            };
            let unrecorded = unrecorded.take(&job, &service, uid);
            let labels = match &definition {
                Some(d) => Some(Labels::of(d)),
                None if invalid_reason.is_some() => {
                    let file = paths.jobs_dir.join(format!("{job}.toml"));
                    crate::files::read_text_limited(&file, crate::files::JOB_FILE_LIMIT)
                        .ok()
                        .and_then(|text| Labels::read(&text))
                }
                None => None,
            };
            let service_result = sd_side
                .troubled
                .get(&service)
                .map(|p| p.result.clone())
                .unwrap_or_default();
            let unloaded: Vec<String> = std::iter::once(&service)
                .chain(timer.as_ref())
                .filter_map(|unit| {
                    let (load, _) = sd_side.statuses.get(unit)?;
                    if !not_loaded(load) {
                        return None;
                    }
                    let why = sd_side
                        .troubled
                        .get(unit)
                        .map(|p| p.load_error.trim_end_matches('.').to_string())
                        .filter(|e| !e.is_empty())
                        .unwrap_or_else(|| format!("LoadState={load}"));
                    Some(format!("{unit}: {why}"))
                })
                .collect();
            let timer_enabled = timer.as_ref().is_some_and(|t| enabled.contains(t));
            jobs.push(JobView {
                unrecorded,
                history: owners
                    .get(&job)
                    .and_then(|owner| histories.get_mut(owner))
                    .and_then(|by_job| by_job.remove(&job)),
                job,
                derived,
                rendered: r,
                definition,
                invalid_reason,
                source,
                labels,
                service,
                timer,
                timer_enabled,
                service_state,
                timer_state,
                next_elapse_usec,
                unit: None,
                service_result,
                not_loaded: unloaded,
            });
        }
        if opts.unit_details {
            for view in jobs.iter_mut() {
                if sd_side
                    .statuses
                    .get(&view.service)
                    .is_some_and(|(load, _)| load == "loaded")
                {
                    view.unit =
                        Some(unit_details(sd, &view.service).map_err(|e| systemd_error(e, mode))?);
                }
            }
        }
        Ok(Overview {
            jobs,
            skipped,
            bad_rows,
            config_errors,
            apply_blocked,
            missing_dir,
            now_us,
            paths: paths.clone(),
        })
    })
}

/// One `ListUnitsByNames` for every unit, then the Timer interface of every
/// active timer, pipelined.
fn read_systemd(
    sd: &Systemd,
    names: &[String],
    next_elapses: bool,
) -> jobctl_systemd::Result<SystemdSide> {
    let mut side = SystemdSide {
        statuses: HashMap::new(),
        timers: HashMap::new(),
        troubled: HashMap::new(),
    };
    if names.is_empty() {
        return Ok(side);
    }
    let statuses = sd.list_units_by_names(names)?;
    // Only an active timer has a next elapse; asking an inactive one would
    // cost a round trip for "never".
    let timers: Vec<_> = statuses
        .iter()
        .filter(|s| {
            next_elapses
                && s.name.ends_with(".timer")
                && s.load_state == "loaded"
                && s.active_state == "active"
        })
        .map(|s| (s.name.clone(), s.path.clone()))
        .collect();
    for p in sd.bulk_properties(&timers, false)? {
        let p = p?;
        side.timers.insert(p.name.clone(), p);
    }
    // The few units in trouble: why a service failed (its start limit?),
    // why a unit did not load.
    let (failed, unloaded): (Vec<_>, Vec<_>) = statuses
        .iter()
        .filter(|s| not_loaded(&s.load_state) || s.active_state == "failed")
        .partition(|s| !not_loaded(&s.load_state) && s.name.ends_with(".service"));
    let path_of = |s: &&UnitStatus| (s.name.clone(), s.path.clone());
    let failed: Vec<_> = failed.iter().map(path_of).collect();
    let unloaded: Vec<_> = unloaded.iter().map(path_of).collect();
    for (units, props) in [
        (failed, &[Property::Result][..]),
        (unloaded, &[Property::LoadError][..]),
    ] {
        if units.is_empty() {
            continue;
        }
        for p in sd.selected_properties(&units, props)? {
            let p = p?;
            side.troubled.insert(p.name.clone(), p);
        }
    }
    side.statuses = statuses
        .into_iter()
        .map(|s| (s.name, (s.load_state, s.active_state)))
        .collect();
    Ok(side)
}

/// A load state that means systemd could not load the unit ("not-found":
/// no file, which `missing-unit` reports from the unit folder).
fn not_loaded(load_state: &str) -> bool {
    matches!(load_state, "error" | "bad-setting" | "masked")
}

/// The service's last result as systemd keeps it: result, exit status,
/// invocation (a handful of small reads, for one job).
fn unit_details(sd: &Systemd, service: &str) -> jobctl_systemd::Result<UnitProperties> {
    let statuses = sd.list_units_by_names(&[service.to_string()])?;
    let Some(status) = statuses.into_iter().next() else {
        return Ok(UnitProperties::default());
    };
    let mut props = sd
        .bulk_properties(&[(status.name.clone(), status.path.clone())], true)?
        .pop()
        .transpose()?
        .unwrap_or_default();
    props.load_state = status.load_state;
    props.active_state = status.active_state;
    props.sub_state = status.sub_state;
    Ok(props)
}

/// The realtime clock minus the monotonic clock, in µs: converts systemd's
/// monotonic elapses (`OnBootSec=`, `OnUnitActiveSec=`) to wall-clock time.
fn monotonic_offset() -> i64 {
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let mono_us = mono.tv_sec as i64 * 1_000_000 + mono.tv_nsec as i64 / 1_000;
    crate::host::now_us() - mono_us
}

/// The earlier of a timer's realtime and (converted) monotonic next elapse,
/// as `systemctl list-timers` shows it; 0 for none.
fn next_elapse(p: &UnitProperties, mono_offset: i64) -> u64 {
    let set = |v: u64| v != 0 && v != u64::MAX;
    let realtime = set(p.next_elapse_realtime_usec).then_some(p.next_elapse_realtime_usec);
    let monotonic = set(p.next_elapse_monotonic_usec).then(|| {
        (p.next_elapse_monotonic_usec as i64)
            .saturating_add(mono_offset)
            .max(1) as u64
    });
    match (realtime, monotonic) {
        (Some(r), Some(m)) => r.min(m),
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => 0,
    }
}

/// Job summaries by database owner (`None`: the main database), then by
/// job; and the databases that could not be read.
type Histories = (
    BTreeMap<Option<String>, HashMap<String, JobHistory>>,
    Vec<(Located, anyhow::Error)>,
    Vec<(Located, Vec<BadRow>)>,
);

/// Every job's summary (or the named jobs') in every database.
fn read_history(
    paths: &Paths,
    only: Option<&[String]>,
    run_counts: bool,
    now_us: i64,
) -> Result<Histories, CliError> {
    let readers = Readers::open_unfiltered(paths).map_err(CliError::failure)?;
    let probe = LivenessProbe::current(crate::host::hostname());
    let mut out = BTreeMap::new();
    let mut bad_rows = Vec::new();
    let mut skipped = Vec::new();
    for (located, store) in &readers.stores {
        // One snapshot per database: the same view for every job, and one
        // lock of its shared memory rather than one per statement.
        let read = || -> anyhow::Result<HashMap<String, JobHistory>> {
            Ok(store.snapshot(|store| {
                read_summaries(store, located, only, run_counts, &probe, now_us)
            })?)
        };
        match read().with_context(|| format!("cannot read {}", located.path.display())) {
            Ok(by_job) => {
                out.insert(located.owner.clone(), by_job);
            }
            Err(e) => skipped.push((located.clone(), e)),
        }
        let bad = store.take_bad_rows();
        if !bad.is_empty() {
            bad_rows.push((located.clone(), bad));
        }
    }
    // "Run now" from the web: trigger `web` and who (crate::origin).
    readers.apply_origins(out.values_mut().flat_map(|by_job| {
        by_job
            .values_mut()
            .flat_map(|h| std::iter::once(&mut h.summary.last).chain(h.last_failure.as_mut()))
    }));
    skipped.extend(readers.skipped);
    Ok((out, skipped, bad_rows))
}

/// Every job's summary (or the named jobs') in one database.
fn read_summaries(
    store: &Store,
    located: &Located,
    only: Option<&[String]>,
    run_counts: bool,
    probe: &LivenessProbe,
    now_us: i64,
) -> jobctl_history::Result<HashMap<String, JobHistory>> {
    let mut by_job = HashMap::new();
    let summaries = store.job_summaries(only, probe, now_us)?;
    let mut counts = if run_counts {
        let jobs: Vec<String> = summaries.iter().map(|s| s.job.clone()).collect();
        store.run_counts(&jobs, probe, now_us)?
    } else {
        HashMap::new()
    };
    for summary in summaries {
        // A failure before a run in progress: the newest finished run.
        let last_failure = if summary.failure_streak > 0 && summary.last.status == Status::Running {
            store.find_run(Some(&summary.job), &RunLookup::LastFailure, probe, now_us)?
        } else {
            None
        };
        by_job.insert(
            summary.job.clone(),
            JobHistory {
                run_counts: counts
                    .remove(&summary.job)
                    .or(run_counts.then(StatusCounts::new)),
                summary,
                last_failure,
                database: located.path.clone(),
            },
        );
    }
    Ok(by_job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_elapses_become_wall_clock_times() {
        let p = UnitProperties {
            next_elapse_realtime_usec: u64::MAX,
            next_elapse_monotonic_usec: 5_000_000,
            ..UnitProperties::default()
        };
        assert_eq!(next_elapse(&p, 1_000_000_000), 1_005_000_000);
        let p = UnitProperties {
            next_elapse_realtime_usec: 2_000_000_000,
            next_elapse_monotonic_usec: 0,
            ..UnitProperties::default()
        };
        assert_eq!(next_elapse(&p, 1_000_000_000), 2_000_000_000);
        let p = UnitProperties {
            next_elapse_realtime_usec: 2_000_000_000,
            next_elapse_monotonic_usec: 5_000_000,
            ..UnitProperties::default()
        };
        assert_eq!(next_elapse(&p, 1_000_000_000), 1_005_000_000);
        assert_eq!(next_elapse(&UnitProperties::default(), 7), 0);
    }
}
