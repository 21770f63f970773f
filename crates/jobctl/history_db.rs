//! Where the history lives for this invocation, and opening it for readers.
//!
//! The shim writes one database (see [`shim_database`]); readers open every
//! database they should see and merge (see [`Readers::open`]), and say what
//! they had to leave out ([`Readers::report_skipped`], [`report_left_out`]).
//! The layout and the reasons for it are in docs/design.md, "Where runs are
//! recorded".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use jobctl_core::config::HistoryConfig;
use jobctl_history::locate::{self, Located, Refused};
use jobctl_history::{BadRow, OpenMode, Recorder, RunRecord, Store};

use crate::env;
use crate::output;
use crate::paths::{Mode, Paths};

// `commands/exec.rs` takes these from here; they are this host's, not the
// history's (crate::host).
pub use crate::host::{hostname, now_us, system_time_us};

/// How long a reader waits for a writer's lock (readers rarely wait at all
/// in WAL mode; only a checkpoint's brief lock can block them).
pub const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The state folder: `JOBCTL_STATE_DIR`, else the mode's default.
pub fn state_dir(paths: &Paths) -> PathBuf {
    env::var_os(env::STATE_DIR)
        .map(PathBuf::from)
        .unwrap_or_else(|| paths.state_dir.clone())
}

/// Where the shim records its runs, and whether it may create the folder.
///
/// `--db` wins; then the entry of `$STATE_DIRECTORY` that is a users folder
/// of the state folder (`<state>/users/<user>`: systemd created it for the
/// job's user, `StateDirectory=jobctl/users/<user>`); then the state folder
/// itself, created if missing. Other entries are the job's own
/// `StateDirectory=` (`service_extra`), where no reader looks for runs.
pub fn shim_database(paths: &Paths, explicit: Option<&Path>) -> (PathBuf, bool) {
    if let Some(path) = explicit {
        return (path.to_path_buf(), false);
    }
    let state = state_dir(paths);
    if let Some(dirs) = env::var_os(env::STATE_DIRECTORY) {
        let users = state.join("users");
        let dirs = dirs.to_string_lossy().into_owned();
        if let Some(mine) = dirs.split(':').find(|d| {
            let d = Path::new(d);
            d.file_name().is_some() && d.parent() == Some(users.as_path())
        }) {
            return (Path::new(mine).join("history.db"), false);
        }
    }
    (state.join("history.db"), true)
}

/// Creates the default state folder: 0755 in system mode (users' folders
/// live below it and must be reachable; the database itself is 0600), 0700 in
/// per-user mode.
pub fn create_state_dir(paths: &Paths, dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    let mode = match paths.mode {
        Mode::System => 0o755,
        Mode::User => 0o700,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
}

/// The `[history]` settings of the configuration file, for readers and
/// `history prune` (the shim never reads it: the renderer passes what it
/// needs as flags). A missing file is the defaults; a broken one is reported
/// and its valid settings still apply.
pub fn history_config(paths: &Paths) -> HistoryConfig {
    let zones = crate::zones::HostZones::new();
    match crate::load::load_config(paths, &zones) {
        Ok((config, diagnostics)) => {
            if diagnostics.iter().any(|d| d.is_error()) {
                output::warn(&format!(
                    "{} has errors (see `{}`); its valid [history] settings apply",
                    paths.config.display(),
                    crate::paths::jobctl("validate")
                ));
            }
            config.history
        }
        Err(e) => {
            output::warn(&format!("{e:#}; using the built-in history settings"));
            HistoryConfig::default()
        }
    }
}

/// The databases a reader should see: `--db` alone when given; in per-user
/// mode the user's own; in system mode the main one (the configuration's
/// `[history] db` when set) and every user's. Users' databases that fail
/// their checks ([`locate`]) are returned apart, with why.
pub fn reader_databases(paths: &Paths, explicit: Option<&Path>) -> (Vec<Located>, Vec<Refused>) {
    let dir = state_dir(paths);
    if let Some(path) = explicit {
        // Root acts on a user's file only after the checks a user's
        // database gets; anyone else reads what they may.
        if !nix::unistd::geteuid().is_root() {
            return (
                vec![Located {
                    path: path.to_path_buf(),
                    owner: None,
                    folder: None,
                }],
                Vec::new(),
            );
        }
        return match locate::explicit(path, &dir) {
            Ok(located) => (vec![located], Vec::new()),
            Err(refused) => (Vec::new(), vec![refused]),
        };
    }
    let main = main_database(paths);
    let mut found = Vec::new();
    if main.is_file() {
        found.push(Located {
            path: main,
            owner: None,
            folder: None,
        });
    }
    let mut refused = Vec::new();
    if paths.mode == Mode::System {
        // Users' databases; the main one is already in the list.
        let users = locate::users_databases(&dir);
        found.extend(users.found);
        refused = users.refused;
    }
    (found, refused)
}

/// The main database of the mode: the configuration's `[history] db` (system
/// mode), else `history.db` in the state folder. In system mode it is root's
/// (written only by root's shims and root's jobctl-web); in per-user mode
/// the user's own. Origins ([`crate::origin`]) are recorded and believed
/// only there.
pub fn main_database(paths: &Paths) -> PathBuf {
    history_config(paths)
        .db
        .map(PathBuf::from)
        .unwrap_or_else(|| state_dir(paths).join("history.db"))
}

/// How far after now a run in a user's database may start before it is
/// taken for a row no shim wrote (a bad row): a day, far more than any clock
/// step (an NTP correction, a time zone mix-up) moves a start.
pub const FUTURE_SLACK_US: i64 = 86_400_000_000;

/// The name systemd 252 gives the dynamic user of unit `<prefix>.service`
/// (no `User=`) when `<prefix>` is not a valid user name (longer than 31
/// characters, say): `_du` and the SipHash-2-4 of the prefix under
/// systemd's fixed key, in hex (`dynamic_user_from_unit_name`). Such a job's
/// folder is `users/<prefix>`; its runs are recorded under this name.
pub fn hashed_dynamic_user(prefix: &str) -> String {
    use std::hash::Hasher as _;
    const KEY: [u8; 16] = [
        0x58, 0x1a, 0xaf, 0xe6, 0x28, 0x58, 0x4e, 0x96, 0xb4, 0x4e, 0xf5, 0x3b, 0x8c, 0x92, 0x07,
        0xec,
    ];
    let half = |bytes: &[u8]| {
        let mut b = [0u8; 8];
        b.copy_from_slice(bytes);
        u64::from_le_bytes(b)
    };
    // std's SipHasher is SipHash-2-4; `write` hashes the bytes as given.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new_with_keys(half(&KEY[..8]), half(&KEY[8..]));
    hasher.write(prefix.as_bytes());
    format!("_du{:016x}", hasher.finish())
}

/// Which jobs root may take from each user's database: those whose
/// installed service records into that user's folder
/// (`StateDirectory=jobctl/users/<user>`, written for `User=` and
/// `DynamicUser=` jobs). A user's database is that user's to write, so runs
/// it holds of any other job (root's `good1`, another user's job) are not
/// shown as that job's.
#[derive(Debug, Default)]
pub struct Trust {
    /// Job → the users' folder its runs are recorded in (`None`: the main
    /// database).
    folders: HashMap<String, Option<String>>,
}

impl Trust {
    /// From the unit files in jobctl's unit folder.
    pub fn from_installed_units(paths: &Paths) -> Result<Trust> {
        let units = jobctl_systemd::UnitDir::new(&paths.unit_dir)
            .read_units()
            .with_context(|| format!("cannot read the unit folder {}", paths.unit_dir.display()))?;
        let mut folders = HashMap::new();
        for unit in units {
            if !unit.name.ends_with(".service") {
                continue;
            }
            let Some(contents) = unit.contents else {
                continue;
            };
            if let Some(owner) = jobctl_core::plan::ownership(&contents) {
                folders.insert(owner.job, jobctl_core::render::users_folder_of(&contents));
            }
        }
        Ok(Trust { folders })
    }

    /// The jobs whose runs `owner`'s folder may hold, in name order.
    pub fn jobs_of(&self, owner: &str) -> Vec<String> {
        let mut jobs: Vec<String> = self
            .folders
            .iter()
            .filter(|(_, folder)| folder.as_deref() == Some(owner))
            .map(|(job, _)| job.clone())
            .collect();
        jobs.sort();
        jobs
    }
}

/// Opened readers, plus the databases that could not be opened (with why).
pub struct Readers {
    pub stores: Vec<(Located, Store)>,
    pub skipped: Vec<(Located, anyhow::Error)>,
    /// Root reading users' databases in system mode: which jobs each may
    /// hold. `None`: every run is taken (non-root readers, per-user mode, the
    /// main database).
    trust: Option<Trust>,
    /// The store whose origins are believed ([`crate::origin`]): the mode's
    /// main database, when it is among `stores`.
    origins: Option<usize>,
}

impl Readers {
    /// Opens every database a reader should see. `--db` pointing nowhere (or
    /// at a database that fails its checks) is an error; an unreadable
    /// database among several is reported by the caller.
    pub fn open(paths: &Paths, explicit: Option<&Path>) -> Result<Readers> {
        Readers::open_with(paths, explicit, true)
    }

    /// Opens every database, for a caller that decides itself which runs to
    /// take from which database (`list`/`status`/`health` look up each job
    /// only in the database of the user it runs as): no unit folder read.
    pub fn open_unfiltered(paths: &Paths) -> Result<Readers> {
        Readers::open_with(paths, None, false)
    }

    fn open_with(paths: &Paths, explicit: Option<&Path>, filter: bool) -> Result<Readers> {
        if let Some(path) = explicit
            && !path.is_file()
        {
            anyhow::bail!("no history database at {}", path.display());
        }
        let mut stores = Vec::new();
        let mut skipped = Vec::new();
        let (found, refused) = reader_databases(paths, explicit);
        for r in refused {
            let error = anyhow::Error::new(jobctl_history::Error::Refused {
                path: r.path.clone(),
                reason: r.reason,
            });
            if explicit.is_some() {
                return Err(error);
            }
            skipped.push((
                Located {
                    path: r.path,
                    owner: r.owner,
                    folder: None,
                },
                error,
            ));
        }
        let as_root = nix::unistd::geteuid().is_root();
        let latest_start_us = now_us().saturating_add(FUTURE_SLACK_US);
        for located in found {
            match Store::open_located(&located, OpenMode::Read, READ_BUSY_TIMEOUT) {
                Ok(mut store) => {
                    // Root reading a user's database it found itself: only
                    // what that user's shim could have recorded (a database
                    // named with --db is shown whole, marked).
                    if as_root
                        && explicit.is_none()
                        && let (Some(owner), Some(folder)) = (&located.owner, &located.folder)
                    {
                        let mut users = vec![owner.clone()];
                        if folder.dynamic {
                            users.push(hashed_dynamic_user(owner));
                        }
                        store.only_recorded_by(Recorder {
                            users,
                            uid: folder.uid,
                            dynamic_uids: folder.dynamic.then_some(Recorder::DYNAMIC_UIDS),
                            latest_start_us,
                        });
                    }
                    stores.push((located, store))
                }
                // The first run's shim is creating it: no runs yet, as if
                // it were not there (not a database to warn about).
                Err(jobctl_history::Error::BeingCreated { .. }) if explicit.is_none() => {}
                Err(e) => {
                    let error = anyhow::Error::new(e);
                    if explicit.is_some() {
                        return Err(error);
                    }
                    skipped.push((located, error));
                }
            }
        }
        let users = stores.iter().any(|(l, _)| l.owner.is_some());
        // A database named with --db is shown whole (each run marked with
        // its database and owner): the caller asked for that file.
        let trust = if filter && users && explicit.is_none() && as_root {
            Some(Trust::from_installed_units(paths)?)
        } else {
            None
        };
        // Origins only from the mode's main database (never a user's,
        // whatever a user's database holds): the one entry without an owner
        // among the databases found, or `--db` when it names that file.
        let main_store = |(l, _): &(Located, Store)| l.owner.is_none() && l.folder.is_none();
        let origins = match explicit {
            None => stores.iter().position(main_store),
            Some(_) => {
                let main = main_database(paths);
                let main = std::fs::canonicalize(&main).unwrap_or(main);
                stores.iter().position(|entry| {
                    main_store(entry)
                        && std::fs::canonicalize(&entry.0.path).is_ok_and(|p| p == main)
                })
            }
        };
        Ok(Readers {
            stores,
            skipped,
            trust,
            origins,
        })
    }

    /// Gives the `manual` runs among `runs` that were started from the web
    /// their trigger `web` and actor, from the origins in the mode's main
    /// database (`jobctl_history::Store::apply_origins`). Without that
    /// database (a non-root reader in system mode) they stay `manual`; an
    /// error reading it is a warning, and the runs stay as recorded.
    pub fn apply_origins<'a>(&self, runs: impl IntoIterator<Item = &'a mut RunRecord>) {
        let Some((located, store)) = self.origins.and_then(|i| self.stores.get(i)) else {
            return;
        };
        if let Err(e) = store.apply_origins(runs) {
            output::warn(&format!(
                "cannot read who started runs from {}: {}; they are shown as recorded",
                located.path.display(),
                anyhow::Error::new(e)
                    .chain()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(": ")
            ));
        }
    }

    /// The jobs whose runs may be taken from `located` (`None`: all).
    pub fn allowed_jobs(&self, located: &Located) -> Option<Vec<String>> {
        match (&self.trust, &located.owner) {
            (Some(trust), Some(owner)) => Some(trust.jobs_of(owner)),
            _ => None,
        }
    }

    /// Whether runs of `job` may be taken from `located`.
    pub fn accepts(&self, located: &Located, job: &str) -> bool {
        self.allowed_jobs(located)
            .is_none_or(|jobs| jobs.iter().any(|j| j == job))
    }

    /// Prints one note per skipped database on stderr. Returns whether any
    /// of them hides runs the caller should have seen (everything but a
    /// non-root reader's "permission denied" for databases that are not
    /// theirs).
    pub fn report_skipped(&self) -> bool {
        let as_root = nix::unistd::geteuid().is_root();
        let mut hidden = false;
        for (located, error) in &self.skipped {
            let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
            if let Some(refused @ jobctl_history::Error::Refused { .. }) = error.downcast_ref() {
                // "refused to open PATH: why"
                output::warn(&refused.to_string());
            } else {
                output::warn(&format!(
                    "skipped {}: {}",
                    located.path.display(),
                    causes.join(": ")
                ));
            }
            hidden |= as_root || !is_permission_denied(error);
        }
        if !self.skipped.is_empty() && !as_root {
            hint_run_as_root();
        }
        hidden
    }
}

/// The hint after a non-root reader skipped databases.
pub fn hint_run_as_root() {
    output::hint("run as root to see the runs of every user's jobs");
}

/// Whether opening a database failed for lack of permission.
fn is_permission_denied(error: &anyhow::Error) -> bool {
    error
        .downcast_ref::<jobctl_history::Error>()
        .is_some_and(jobctl_history::Error::is_permission_denied)
}

/// What readers skipped in one database, said once per database.
pub fn report_left_out(located: &Located, untrusted: u64, bad_rows: &[BadRow]) {
    let db = located.path.display();
    if untrusted > 0 {
        let owner = located.owner.as_deref().unwrap_or("its owner");
        output::warn(&format!(
            "{db} holds {untrusted} run{} of jobs that do not run as {owner}, or recorded as \
             another user; not shown (a user's database is trusted only for the runs of that \
             user's own jobs, as that user)",
            if untrusted == 1 { "" } else { "s" }
        ));
    }
    const SHOWN: usize = 10;
    for bad in bad_rows.iter().take(SHOWN) {
        output::warn(&format!(
            "cannot decode {} of {db}: {}; skipped it",
            bad.name(),
            bad.reason
        ));
    }
    if bad_rows.len() > SHOWN {
        output::warn(&format!(
            "cannot decode {} more rows of {db}; skipped them",
            bad_rows.len() - SHOWN
        ));
    }
}
