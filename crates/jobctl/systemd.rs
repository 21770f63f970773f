//! Glue between the commands and the systemd adapter: connecting to the right
//! manager, turning adapter errors into operator messages with hints, the
//! apply lock, operator overrides, and gathering the actual state of units.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use jobctl_core::plan::{Actual, DiskUnit, Override, UnitState};

use jobctl_core::render::RenderedJob;
use jobctl_systemd::{Bus, ErrorKind, Systemd, UnitDir};

use crate::env;
use crate::error::CliError;
use crate::load::{self, JobSelection, LoadedJobs};
use crate::paths::{Mode, Paths};
use crate::rendering;

/// Every D-Bus call fails after this long instead of hanging. A reload of
/// thousands of units takes seconds (docs/benchmarks.md, "Installing and
/// listing 1,000 jobs").
pub const METHOD_TIMEOUT: Duration = Duration::from_secs(60);

/// Connects to the system manager, or the user's own with `--user`.
pub fn connect(paths: &Paths) -> Result<Systemd, CliError> {
    let bus = match paths.mode {
        Mode::System => {
            if !Path::new("/run/systemd/system").exists() {
                return Err(
                    CliError::failure(anyhow!("systemd is not running on this host")).hint(
                        "jobctl installs jobs into a running systemd; on a container or CI box \
                           without one, try scripts/demo, which boots a throwaway systemd",
                    ),
                );
            }
            match env::var_os(env::DBUS_SYSTEM_BUS_ADDRESS) {
                Some(addr) => Bus::Address(addr.to_string_lossy().into_owned()),
                None => Bus::System,
            }
        }
        Mode::User => match env::var_os(env::DBUS_SESSION_BUS_ADDRESS) {
            Some(addr) => Bus::Address(addr.to_string_lossy().into_owned()),
            None => match env::var_os(env::XDG_RUNTIME_DIR) {
                Some(dir) => {
                    Bus::Address(format!("unix:path={}/bus", PathBuf::from(dir).display()))
                }
                None => {
                    return Err(CliError::failure(anyhow!(
                        "no user session bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set"
                    ))
                    .hint("--user needs your systemd user manager: log in through a session \
                           (or `loginctl enable-linger $USER`), or run as root without --user"));
                }
            },
        },
    };
    Systemd::connect(&bus, METHOD_TIMEOUT).map_err(|e| systemd_error(e, paths.mode))
}

/// An adapter error as an operator message, with a hint by kind.
pub fn systemd_error(err: jobctl_systemd::Error, mode: Mode) -> CliError {
    let kind = err.kind();
    let cli = CliError::failure(anyhow::Error::new(err));
    match kind {
        ErrorKind::PermissionDenied => cli.hint(match mode {
            Mode::System => "run as root, or use --user to manage your own jobs",
            Mode::User => "your user manager refused; check `systemctl --user status`",
        }),
        ErrorKind::BusUnavailable | ErrorKind::NotRunning => cli.hint(match mode {
            Mode::System => "systemd is not running on this host (or its D-Bus is down: `systemctl status dbus`)",
            Mode::User => "your systemd user manager is not running: check `systemctl --user status`, or `loginctl enable-linger $USER`",
        }),
        ErrorKind::Timeout => cli.hint(format!(
            "systemd did not answer in time; check `{}` and `{}`, then retry",
            crate::paths::systemctl("status"),
            crate::paths::manager_log()
        )),
        ErrorKind::Disconnected | ErrorKind::LimitsExceeded => {
            cli.hint("systemd dropped the connection; run the command again (apply converges)")
        }
        ErrorKind::NoSuchUnit => cli.hint(format!(
            "the job's units are not installed: run `{}`",
            crate::paths::jobctl("apply")
        )),
        ErrorKind::UnitMasked => cli.hint(format!(
            "the unit is masked (`{}` it first)",
            crate::paths::systemctl("unmask")
        )),
        ErrorKind::LoadFailed => cli.hint(format!(
            "systemd could not load the unit: `systemd-analyze verify` it, or see `{}`",
            crate::paths::manager_log()
        )),
        _ => cli,
    }
}

/// An exclusive lock on `<state dir>/apply.lock` for commands that change
/// units; held until dropped. Waits up to a minute for another holder.
pub struct ApplyLock {
    _file: fs::File,
}

pub fn lock(paths: &Paths) -> Result<ApplyLock, CliError> {
    // Permission denied here is the first thing a non-root caller meets in
    // system mode: say what to do.
    let denied = |e: std::io::Error, what: String| -> CliError {
        let hint = e.kind() == std::io::ErrorKind::PermissionDenied && paths.mode == Mode::System;
        let err = CliError::failure(anyhow::Error::new(e).context(what));
        if hint {
            err.hint("run as root, or use --user to manage your own jobs")
        } else {
            err
        }
    };
    fs::create_dir_all(&paths.state_dir)
        .map_err(|e| denied(e, format!("cannot create {}", paths.state_dir.display())))?;
    let path = paths.state_dir.join("apply.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| denied(e, format!("cannot open the lock {}", path.display())))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut told = false;
    loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(ApplyLock { _file: file }),
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                if Instant::now() > deadline {
                    return Err(CliError::failure(anyhow!(
                        "another jobctl apply/enable/disable/remove holds {} since more than a minute",
                        path.display()
                    ))
                    .hint("wait for it to finish, then run this again"));
                }
                if !told {
                    crate::output::note(&format!(
                        "waiting for another jobctl to finish ({})",
                        path.display()
                    ));
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(CliError::failure(
                    anyhow::Error::new(std::io::Error::from(e))
                        .context(format!("cannot lock {}", path.display())),
                ));
            }
        }
    }
}

fn overrides_path(paths: &Paths) -> PathBuf {
    paths.state_dir.join("overrides.json")
}

/// Operator overrides (`jobctl enable/disable`), by job.
pub fn read_overrides(paths: &Paths) -> anyhow::Result<BTreeMap<String, Override>> {
    let path = overrides_path(paths);
    match crate::files::read_limited(&path, crate::files::STATE_LIMIT) {
        Ok(text) => serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is not valid; delete it to drop all `jobctl enable/disable` overrides",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn write_overrides(
    paths: &Paths,
    overrides: &BTreeMap<String, Override>,
) -> anyhow::Result<()> {
    let path = overrides_path(paths);
    fs::create_dir_all(&paths.state_dir)
        .with_context(|| format!("cannot create {}", paths.state_dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(serde_json::to_string_pretty(overrides)?.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The jobs an apply installs: every valid job of the selection rendered for
/// this host's systemd, and the jobs skipped as invalid.
pub struct Desired {
    pub loaded: LoadedJobs,
    pub rendered: Vec<RenderedJob>,
    /// Job → the first reason it is skipped (its file does not validate, or
    /// it cannot be rendered for this host).
    pub invalid: BTreeMap<String, String>,
    /// The errors of the jobs skipped, and of those that could not be
    /// rendered (as diagnostics of their files).
    skipped: Vec<jobctl_core::diag::Diagnostic>,
}

impl Desired {
    /// The errors that made jobs invalid, for the report.
    pub fn invalid_diagnostics(&self) -> Vec<jobctl_core::diag::Diagnostic> {
        self.skipped.clone()
    }
}

/// Loads and renders the selected jobs for this host's systemd (feature
/// detection: directives newer than `checks.systemd` are refused where they
/// are written, as `jobctl validate` does). Problems that are not one job's
/// (the configuration, the jobs folder, two files for one job) fail the
/// whole apply; so does any invalid job with `strict`. Otherwise an invalid
/// job is left out and named in [`Desired::invalid`].
pub fn desired(
    paths: &Paths,
    selection: &JobSelection,
    checks: load::Checks,
    strict: bool,
) -> Result<Desired, CliError> {
    let loaded = load::load_jobs_checked(paths, selection, checks)?;
    let triage = loaded.triage();
    if !triage.fatal.is_empty() || (strict && !triage.invalid.is_empty()) {
        return Err(crate::commands::invalid_jobs(&loaded.diagnostics));
    }
    let exe = rendering::jobctl_path(&loaded, None)?;
    let version = checks.systemd.map(|t| t.version);
    let (by_name, failures) = rendering::render_each(&loaded, paths, &exe, version);
    if strict && !failures.is_empty() {
        return Err(crate::commands::render_failures(failures));
    }
    let mut invalid = BTreeMap::new();
    let mut skipped = Vec::new();
    for (job, errors) in &triage.invalid {
        if let Some(first) = errors.first() {
            invalid.insert(job.clone(), load::short_reason(first));
        }
        skipped.extend(errors.iter().cloned());
    }
    for (job, error) in failures {
        let file = loaded
            .jobs
            .iter()
            .find(|j| j.name.as_str() == job)
            .map(|j| j.source.clone())
            .unwrap_or_default();
        let message = format!("cannot be rendered for this host: {error}");
        skipped.push(jobctl_core::diag::Diagnostic {
            severity: jobctl_core::diag::Severity::Error,
            file,
            line: 0,
            column: 0,
            key: None,
            message: message.clone(),
            hint: None,
        });
        invalid.insert(job, message);
    }
    Ok(Desired {
        rendered: by_name.into_values().collect(),
        loaded,
        invalid,
        skipped,
    })
}

/// Installed jobs whose units name a job file outside `jobs_dir`
/// (`X-Jobctl-Source=`), with that file: another jobs folder's jobs, which
/// an apply of `jobs_dir` leaves alone. Units that name no file count as
/// this folder's.
pub fn installed_elsewhere(actual: &Actual, jobs_dir: &Path) -> BTreeMap<String, String> {
    jobctl_core::plan::installed_sources(actual)
        .into_iter()
        .filter_map(|(job, source)| {
            let source = source?;
            let folder = Path::new(&source).parent()?;
            (!same_folder(folder, jobs_dir)).then_some((job, source))
        })
        .collect()
}

/// Whether two names of folders name the same folder: the same absolute
/// path once `.`, `..` and repeated slashes are resolved, or the same
/// folder on disk (links followed).
pub fn same_folder(a: &Path, b: &Path) -> bool {
    let absolute = |p: &Path| -> PathBuf {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        let mut out = PathBuf::new();
        for c in joined.components() {
            match c {
                std::path::Component::CurDir => {}
                std::path::Component::ParentDir => {
                    out.pop();
                }
                other => out.push(other),
            }
        }
        out
    };
    if absolute(a) == absolute(b) {
        return true;
    }
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// systemd's `LoadState` of each unit named in an apply ("loaded",
/// "bad-setting", "error", "masked", "not-found").
pub type LoadStates = std::collections::HashMap<String, String>;

/// The actual state: the unit folder, plus what systemd says about every unit
/// named there or wanted, in three bulk calls; and the units' load states.
pub fn actual(
    systemd: &Systemd,
    unit_dir: &UnitDir,
    desired: &[RenderedJob],
    mode: Mode,
) -> Result<(Actual, LoadStates), CliError> {
    let mut load_states = LoadStates::new();
    let units = unit_dir.read_units().map_err(|e| systemd_error(e, mode))?;
    let mut names: Vec<String> = desired
        .iter()
        .flat_map(|j| {
            std::iter::once(j.service.name.clone()).chain(j.timer.as_ref().map(|t| t.name.clone()))
        })
        .collect();
    for u in &units {
        if u.contents
            .as_deref()
            .and_then(jobctl_core::plan::ownership)
            .is_some()
        {
            names.push(u.name.clone());
        }
    }
    names.sort();
    names.dedup();

    let mut actual = Actual {
        units: units
            .into_iter()
            .map(|u| DiskUnit {
                name: u.name,
                contents: u.contents,
            })
            .collect(),
        ..Actual::default()
    };
    if names.is_empty() {
        return Ok((actual, load_states));
    }
    // Enablement: the [Install] symlinks in the unit folder's `*.wants/`
    // folders, where EnableUnitFiles puts them. (Asking systemd instead —
    // ListUnitFilesByPatterns, or the UnitFileState property — costs systemd
    // 252 a scan of every unit folder per unit: 13 s for 2,000 units.)
    for name in enabled_units(unit_dir.path()) {
        actual.states.entry(name).or_default().enabled = true;
    }
    let on_disk: std::collections::HashSet<&str> =
        actual.units.iter().map(|u| u.name.as_str()).collect();
    let mut taken = Vec::new();
    for status in systemd
        .list_units_by_names(&names)
        .map_err(|e| systemd_error(e, mode))?
    {
        load_states.insert(status.name.clone(), status.load_state.clone());
        let st: &mut UnitState = actual.states.entry(status.name.clone()).or_default();
        st.active = matches!(
            status.active_state.as_str(),
            "active" | "activating" | "reloading" | "deactivating"
        );
        st.failed = status.active_state == "failed";
        // systemd loads a unit by name from anywhere in its search path: a
        // unit we have no file for that still loads is someone else's.
        if !on_disk.contains(status.name.as_str())
            && matches!(status.load_state.as_str(), "loaded" | "masked")
        {
            taken.push(status.name.clone());
        }
    }
    for name in taken {
        let path = systemd
            .properties(&name)
            .map(|p| p.fragment_path)
            .unwrap_or_default();
        let path = if path.is_empty() {
            "(masked or transient)".to_string()
        } else {
            path
        };
        actual.elsewhere.insert(name, path);
    }
    Ok((actual, load_states))
}

/// Names of the units with an `[Install]` symlink in `dir/*.wants/`.
pub fn enabled_units(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    crate::cache::note_file(dir);
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().ends_with(".wants") {
            continue;
        }
        crate::cache::note_file(&entry.path());
        if let Ok(links) = fs::read_dir(entry.path()) {
            out.extend(
                links
                    .flatten()
                    .filter_map(|l| l.file_name().into_string().ok()),
            );
        }
    }
    out
}

/// A job name not found: the error, with the closest known name as a hint.
pub fn unknown_job(name: &str, known: &[String]) -> CliError {
    let mut err = CliError::usage(anyhow!("unknown job {name:?}"));
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    if let Some(s) = jobctl_core::walk::suggest(name, &refs) {
        err = err.hint(format!("did you mean {s:?}?"));
    } else {
        err = err.hint(format!("`{}` shows the jobs", crate::paths::jobctl("list")));
    }
    err
}
