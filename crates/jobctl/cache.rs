//! What a long-lived reader (jobctl-web) keeps between readings, never
//! older than the reading that uses it (docs/design.md, "What the server
//! keeps between requests").
//!
//! Off unless [`enable`]d: the CLI reads once per process and never keeps
//! anything (it pays one atomic load per reading for this module).
//!
//! A file's text, or a result computed from files, is reused only while
//! every file it came from is proven unchanged by a new `lstat` in the
//! reading that reuses it: device, inode, size, mode, owner, mtime and
//! ctime (ns) all equal to when it was read ([`FileKey`]). ctime is set by
//! the kernel on every change of the file (write, truncate, chmod, rename
//! onto its name gives another inode), and cannot be set by a user, so an
//! equal key means an unchanged file — except within the clock's
//! granularity: a file changed twice in the same tick keeps its key (git's
//! "racily clean" index entry). So a key is only kept when the file's ctime
//! was at least [`SETTLED`] before the reading looked at it; a file changed
//! more recently is read again in every reading until it has settled.
//!
//! Folders are keyed the same way: their mtime and ctime change when an
//! entry is added, removed or renamed in them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use jobctl_core::context::PathStep;
use jobctl_core::render::{RenderError, RenderedJob};
use jobctl_systemd::{UnitDir, UnitFileOnDisk};

use crate::load::LoadedJobs;
use crate::paths::Paths;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Keep results between readings in this process (jobctl-web).
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Whether this process keeps results between readings.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How long before a reading a file's last change (ctime) must be for its
/// key to prove it unchanged next time: far above any file system's
/// timestamp granularity (Linux stamps with a clock that advances once per
/// tick, 1–10 ms; some file systems keep seconds).
pub const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

/// What proves a file unchanged: its `lstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: i64,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileKey {
    fn of(st: &rustix::fs::Stat) -> FileKey {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        FileKey {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            mtime_ns: ns(st.st_mtime, st.st_mtime_nsec as i64),
            ctime_ns: ns(st.st_ctime, st.st_ctime_nsec as i64),
        }
    }

    /// The key of `path` itself (not following a link); `None` when it
    /// cannot be had (no such file: also a fact that is checked again).
    pub fn lstat(path: &Path) -> Option<FileKey> {
        rustix::fs::lstat(path).ok().map(|st| FileKey::of(&st))
    }

    fn lstat_at(dir: &rustix::fd::OwnedFd, name: &str) -> Option<FileKey> {
        rustix::fs::statat(dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| FileKey::of(&st))
    }

    fn is_link(&self) -> bool {
        self.mode & 0o170000 == 0o120000
    }

    /// Whether the file's last change was safely before `since` (ns since
    /// the epoch), so that any later change gives another key.
    fn settled(&self, since: i128) -> bool {
        self.ctime_ns + SETTLED.as_nanos() as i128 <= since
    }
}

/// Now, in ns since the epoch (taken before the files it judges are looked
/// at).
fn now_ns() -> i128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Realtime);
    i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec)
}

/// A path as a reading saw it: its own key and, for a link, its target's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    key: Option<FileKey>,
    target: Option<FileKey>,
}

impl Seen {
    fn look(path: &Path) -> Seen {
        let key = FileKey::lstat(path);
        let target = key
            .filter(FileKey::is_link)
            .and_then(|_| rustix::fs::stat(path).ok().map(|st| FileKey::of(&st)));
        Seen { key, target }
    }

    fn settled(&self, since: i128) -> bool {
        [self.key, self.target]
            .iter()
            .flatten()
            .all(|k| k.settled(since))
    }
}

/// Every file and path a computation looked at, recorded on its thread
/// while [`record`] runs it.
#[derive(Debug, Default)]
struct Record {
    since: i128,
    files: BTreeMap<PathBuf, Seen>,
    traces: BTreeMap<String, Result<Vec<PathStep>, String>>,
    /// Every file had settled when it was looked at.
    settled: bool,
}

thread_local! {
    static RECORDING: std::cell::RefCell<Option<Record>> = const { std::cell::RefCell::new(None) };
}

/// Notes that the computation being recorded reads (or lists, or checks the
/// permissions of) `path`; called *before* it is read, so the key is never
/// newer than what was read. Does nothing when no recording runs.
pub fn note_file(path: &Path) {
    RECORDING.with_borrow_mut(|r| {
        if let Some(r) = r.as_mut()
            && !r.files.contains_key(path)
        {
            let seen = Seen::look(path);
            r.settled &= seen.settled(r.since);
            r.files.insert(path.to_path_buf(), seen);
        }
    });
}

/// Notes a path traced for its owners and modes (`PathInspector`): reuse
/// needs the same trace again.
pub fn note_trace(path: &str, result: &Result<Vec<PathStep>, String>) {
    RECORDING.with_borrow_mut(|r| {
        if let Some(r) = r.as_mut() {
            r.traces
                .entry(path.to_string())
                .or_insert_with(|| result.clone());
        }
    });
}

/// Runs `f`, recording every file it notes.
fn record<T>(f: impl FnOnce() -> T) -> (T, Record) {
    let since = now_ns();
    RECORDING.with_borrow_mut(|r| {
        *r = Some(Record {
            since,
            settled: true,
            ..Record::default()
        })
    });
    // Taken back even if `f` panics, so a later computation on this thread
    // is not recorded into it.
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            RECORDING.with_borrow_mut(|r| *r = None);
        }
    }
    let stop = Stop;
    let out = f();
    let record = RECORDING.with_borrow_mut(Option::take).unwrap_or_default();
    drop(stop);
    (out, record)
}

/// Whether everything `record` saw is still as it was.
fn unchanged(record: &Record, trace: &dyn Fn(&str) -> Result<Vec<PathStep>, String>) -> bool {
    record
        .files
        .iter()
        .all(|(path, seen)| Seen::look(path) == *seen)
        && record
            .traces
            .iter()
            .all(|(path, result)| trace(path) == *result)
}

/// The job files loaded and rendered, and what they were made from.
#[derive(Debug)]
pub struct Prepared {
    pub loaded: LoadedJobs,
    pub exe: String,
    pub version: Option<u32>,
    pub rendered: BTreeMap<String, RenderedJob>,
    pub failures: Vec<(String, RenderError)>,
}

struct JobsEntry {
    paths: Paths,
    record: Record,
    prepared: Arc<Prepared>,
}

static JOBS: Mutex<Option<Arc<JobsEntry>>> = Mutex::new(None);

/// How a reading got its jobs (the tests and the benchmark tell them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Loaded and rendered afresh.
    None,
    /// The files were unchanged; rendered again (another systemd version
    /// or jobctl path).
    Loaded,
    /// The files were unchanged and so was the rest.
    All,
}

/// The job files of `paths` loaded and rendered for this host: `load` and
/// `render` run unless every file the last loading looked at is unchanged
/// (then its result is reused), `render` also when the jobctl path or
/// systemd's version (`version`, asked only once the files are loaded)
/// differ.
pub fn jobs(
    paths: &Paths,
    load: impl FnOnce() -> anyhow::Result<LoadedJobs>,
    exe: impl FnOnce(&LoadedJobs) -> anyhow::Result<String>,
    version: impl FnOnce() -> Option<u32>,
    render: impl FnOnce(
        &LoadedJobs,
        &str,
        Option<u32>,
    ) -> (BTreeMap<String, RenderedJob>, Vec<(String, RenderError)>),
) -> anyhow::Result<(Arc<Prepared>, Reuse)> {
    let last = JOBS.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let valid = last.filter(|e| {
        same_paths(&e.paths, paths)
            && unchanged(&e.record, &|p| crate::load::HostPaths.trace_uncached(p))
    });
    if let Some(entry) = valid {
        let prepared = &entry.prepared;
        let exe = exe(&prepared.loaded)?;
        let version = version();
        if exe == prepared.exe && version == prepared.version {
            return Ok((entry.prepared.clone(), Reuse::All));
        }
        // Rendering looks at files too (zone files): what it noted joins
        // what the loading noted.
        let ((rendered, failures), more) = record(|| render(&prepared.loaded, &exe, version));
        let mut noted = clone_record(&entry.record);
        noted.settled &= more.settled;
        noted.files.extend(more.files);
        noted.traces.extend(more.traces);
        let prepared = Arc::new(Prepared {
            loaded: clone_loaded(&prepared.loaded),
            exe,
            version,
            rendered,
            failures,
        });
        store(paths, noted, &prepared);
        return Ok((prepared, Reuse::Loaded));
    }
    let (prepared, noted) = record(|| -> anyhow::Result<Prepared> {
        let loaded = load()?;
        let exe = exe(&loaded)?;
        let version = version();
        let (rendered, failures) = render(&loaded, &exe, version);
        Ok(Prepared {
            loaded,
            exe,
            version,
            rendered,
            failures,
        })
    });
    let prepared = Arc::new(prepared?);
    store(paths, noted, &prepared);
    Ok((prepared, Reuse::None))
}

/// Keeps `prepared` for the next reading when every file it came from had
/// settled; otherwise keeps nothing (a file changed too recently to be
/// proven unchanged by its key next time: the next reading loads again).
fn store(paths: &Paths, noted: Record, prepared: &Arc<Prepared>) {
    let entry = noted.settled.then(|| {
        Arc::new(JobsEntry {
            paths: paths.clone(),
            record: noted,
            prepared: prepared.clone(),
        })
    });
    *JOBS.lock().unwrap_or_else(PoisonError::into_inner) = entry;
}

fn clone_record(r: &Record) -> Record {
    Record {
        since: r.since,
        files: r.files.clone(),
        traces: r.traces.clone(),
        settled: r.settled,
    }
}

fn clone_loaded(l: &LoadedJobs) -> LoadedJobs {
    l.clone()
}

fn same_paths(a: &Paths, b: &Paths) -> bool {
    a.mode == b.mode
        && a.jobs_dir == b.jobs_dir
        && a.unit_dir == b.unit_dir
        && a.config == b.config
        && a.state_dir == b.state_dir
}

/// The unit folder's texts, kept by file key (see the module's comment).
type UnitTexts = HashMap<String, (FileKey, Option<String>)>;

static UNITS: Mutex<Option<(PathBuf, UnitTexts)>> = Mutex::new(None);

/// [`UnitDir::read_units`], reusing the text of every file whose key is
/// unchanged since it was last read. Returns how many files were read.
pub fn read_units(
    unit_dir: &UnitDir,
    dir: &Path,
) -> jobctl_systemd::Result<(Vec<UnitFileOnDisk>, usize)> {
    let since = now_ns();
    let entries = unit_dir.entries()?;
    let last = {
        let mut guard = UNITS.lock().unwrap_or_else(PoisonError::into_inner);
        match guard.take() {
            Some((d, texts)) if d == dir => texts,
            _ => HashMap::new(),
        }
    };
    let fd = unit_dir.open();
    let mut kept = HashMap::with_capacity(entries.len());
    let mut out = Vec::with_capacity(entries.len());
    let mut read = 0;
    for (name, is_file) in entries {
        if !is_file {
            out.push(UnitFileOnDisk {
                name,
                contents: None,
            });
            continue;
        }
        let Some(fd) = fd.as_ref() else {
            out.push(UnitFileOnDisk {
                name,
                contents: None,
            });
            continue;
        };
        // The key before the text: a change after it gives another key.
        let key = FileKey::lstat_at(fd, &name);
        let contents = match (key, last.get(&name)) {
            (Some(key), Some((was, text))) if key == *was => text.clone(),
            _ => {
                read += 1;
                UnitDir::read_file_at(fd, &name)
            }
        };
        if let Some(key) = key.filter(|k| k.settled(since)) {
            kept.insert(name.clone(), (key, contents.clone()));
        }
        out.push(UnitFileOnDisk { name, contents });
    }
    *UNITS.lock().unwrap_or_else(PoisonError::into_inner) = Some((dir.to_path_buf(), kept));
    Ok((out, read))
}

/// The enabled units (`*.wants/` links of the unit folder), kept while the
/// folder and each `*.wants/` folder keep their keys.
pub fn enabled_units(dir: &Path) -> Vec<String> {
    static ENABLED_UNITS: Mutex<Option<(Record, Arc<Vec<String>>)>> = Mutex::new(None);
    let last = ENABLED_UNITS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some((record, units)) = last
        && record.files.contains_key(dir)
        && unchanged(&record, &|_| Err(String::new()))
    {
        let out = units.as_ref().clone();
        *ENABLED_UNITS.lock().unwrap_or_else(PoisonError::into_inner) = Some((record, units));
        return out;
    }
    let (units, record) = record(|| crate::systemd::enabled_units(dir));
    if record.settled {
        *ENABLED_UNITS.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((record, Arc::new(units.clone())));
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_changes_with_a_same_size_rewrite_and_a_rename_over() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "one").unwrap();
        let first = FileKey::lstat(&file).unwrap();
        std::fs::write(&file, "two").unwrap();
        let second = FileKey::lstat(&file).unwrap();
        // Same size; the ctime (or, within one tick, nothing) tells them
        // apart: a key this fresh is never trusted.
        assert!(
            !second.settled(now_ns()),
            "a file changed just now is not settled"
        );
        let tmp = dir.path().join(".a.toml.tmp");
        std::fs::write(&tmp, "thr").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        let third = FileKey::lstat(&file).unwrap();
        assert_ne!(first.ino, third.ino, "a rename-over is another inode");
        assert_ne!(second, third);
    }

    #[test]
    fn a_recording_holds_what_was_noted_and_only_while_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "one").unwrap();
        note_file(&file);
        let ((), record) = record(|| {
            note_file(&file);
            note_file(&dir.path().join("missing"));
        });
        assert_eq!(record.files.len(), 2);
        assert!(!record.settled, "the file was written just now");
        assert!(unchanged(&record, &|_| Err(String::new())));
        std::fs::write(dir.path().join("missing"), "").unwrap();
        assert!(
            !unchanged(&record, &|_| Err(String::new())),
            "a file that appeared"
        );
    }

    #[test]
    fn a_trace_that_changed_is_a_change() {
        let ((), record) = record(|| note_trace("/etc/jobctl/env", &Ok(Vec::new())));
        assert!(unchanged(&record, &|_| Ok(Vec::new())));
        assert!(!unchanged(&record, &|_| Err("no such file".into())));
    }
}
