//! Opening a history database and writing runs to it.
//!
//! The shim opens the database once per run, writes the start row (one
//! transaction), runs the command, and completes the row together with the
//! captured output and the cheap retention step (a second transaction). Both
//! are durable before the shim exits.
//!
//! What a run costs and why it is done this way is told once, in
//! docs/design.md, "What the per-run cost is made of" and "Concurrency"
//! (figures in docs/benchmarks.md, "Run shim and history"). Where each part
//! of it lives here:
//!
//! - the start row's fsync overlapping the command:
//!   [`Store::begin_run_sync_later`], then [`Store::sync_log`];
//! - no checkpoint when the connection closes; a passive checkpoint while
//!   the command runs once the log holds [`CHECKPOINT_PAGES`] frames
//!   ([`Store::checkpoint_if_due`]); a long log truncated at once
//!   ([`BIG_LOG_PAGES`]);
//! - a plain insert for the start row and an update for the completion (an
//!   insert only when the start row is missing), the update compiled while
//!   the command runs;
//! - `BEGIN IMMEDIATE` and SQLITE_BUSY retried with jitter until the busy
//!   timeout (every write is idempotent, so a retry never doubles a row);
//! - `journal_mode=WAL` is persistent in the file: set once, by the first
//!   migration, not at every open.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, MAIN_DB, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::locate::Located;
use crate::output::{self, Segment};
use crate::query::BadRow;
use crate::record::{RunId, RunRecord};
use crate::retention::Retention;
use crate::schema::{MIGRATIONS, Migration, NOTIFY_MIGRATIONS};
use crate::{Error, Result};

/// The oldest schema readers read (what later migrations added reads as
/// absent); older databases are refused with [`Error::OlderSchema`].
pub const READABLE_FROM: i64 = 1;

/// How many of the newest runs [`Store::run_of_invocation`] looks through:
/// the upstream of a chained run has just ended, so it is among the newest
/// unless a thousand runs started in that database while it ran. Bounds the
/// shim's work when the upstream is not there at all (it ran as another
/// user, or was not recorded).
pub const UPSTREAM_WINDOW: i64 = 1000;

/// How a database is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// The shim: create the file (mode 0600) if missing, migrate, write runs.
    Write,
    /// Maintenance (`history prune`): the file must exist; migrate, write.
    Maintain,
    /// Readers: the file must exist; never written, never migrated.
    Read,
}

/// Frames in the write-ahead log after which the shim checkpoints it while
/// the command runs. Every new process rebuilds the WAL index by reading the
/// frames written since the log last started over (its cost per frame is
/// measured in docs/benchmarks.md, "Run shim and history"); every checkpoint
/// costs two fsyncs and the next start of the log a third.
/// A run writes about six frames, so this is one checkpoint in ten runs, and
/// a rebuild of about 30 frames on average.
pub const CHECKPOINT_PAGES: i32 = 64;

/// A commit that leaves more frames than this in the log checkpoints and
/// truncates it right away (best effort, when no other connection is using
/// it), so that no later process has to read it all to rebuild its index:
/// runs that stored a large output, `history prune`.
pub const BIG_LOG_PAGES: i32 = 512;

/// An open history database.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
    /// The write-ahead log did not exist at open: sync the folder after the
    /// first commit, which creates it.
    sync_dir_after_commit: bool,
    /// Frames in the log after this connection's last commit (0: unknown).
    wal_frames: i32,
    /// Whether commits fsync the log (`synchronous=FULL`, set at open) or
    /// leave that to [`Store::sync_log`] (`NORMAL`).
    sync_commits: bool,
    /// A commit made with `synchronous=NORMAL` is not yet on disk.
    log_unsynced: bool,
    /// The file opened (device, inode), for writers: see
    /// [`Store::still_at_path`].
    file_id: Option<FileId>,
    /// Rows readers skipped because they could not be decoded.
    pub(crate) bad_rows: std::cell::RefCell<Vec<BadRow>>,
    /// Who may have written the rows a reader takes (root reading a user's
    /// database); `None`: every row.
    pub(crate) recorder: Option<crate::query::Recorder>,
    /// The schema of this file: the runs' ([`MIGRATIONS`]) or the
    /// notification queue's ([`NOTIFY_MIGRATIONS`]).
    migrations: &'static [Migration],
    /// A reader's database from before the usage and upstream columns
    /// (migration 2): they are read as NULL.
    legacy_runs: bool,
    /// A reader's database from before the origins table (migration 4):
    /// it holds no origin.
    pub(crate) no_origins: bool,
}

/// A file's device and inode number.
type FileId = (u64, u64);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path`. `busy_timeout` bounds how long a write
    /// waits for another writer's lock.
    pub fn open(path: &Path, mode: OpenMode, busy_timeout: Duration) -> Result<Store> {
        Store::open_with(path, mode, busy_timeout, OpenFlags::empty(), MIGRATIONS)
    }

    /// Opens the notification queue's database (`notify.db`): the same
    /// opening, files and durability as a history database, with its own
    /// schema ([`NOTIFY_MIGRATIONS`]). See [`crate::notify`].
    pub fn open_notify(
        path: &Path,
        mode: OpenMode,
        busy_timeout: Duration,
    ) -> Result<crate::notify::NotifyStore> {
        Store::open_with(
            path,
            mode,
            busy_timeout,
            OpenFlags::empty(),
            NOTIFY_MIGRATIONS,
        )
        .map(crate::notify::NotifyStore::new)
    }

    /// Opens a database [`crate::locate`] found. A user's database (one with
    /// [`Located::folder`]) is checked again right before SQLite opens it and
    /// once SQLite has its files open (the database, its log and its shared
    /// memory), and SQLite gets `SQLITE_OPEN_NOFOLLOW` and a path without
    /// links: whatever the user put in the folder, this process opens only
    /// that user's own regular files. Never creates a user's database
    /// (`OpenMode::Write` is taken as `Maintain` for one).
    pub fn open_located(
        located: &Located,
        mode: OpenMode,
        busy_timeout: Duration,
    ) -> Result<Store> {
        let Some(folder) = &located.folder else {
            return Store::open(&located.path, mode, busy_timeout);
        };
        let path = folder.dir.join(crate::locate::DATABASE_FILES[0]);
        let refused = |reason| Error::Refused {
            path: path.clone(),
            reason,
        };
        crate::locate::recheck(folder).map_err(refused)?;
        let mode = match mode {
            OpenMode::Write => OpenMode::Maintain,
            other => other,
        };
        let store = Store::open_with(
            &path,
            mode,
            busy_timeout,
            OpenFlags::SQLITE_OPEN_NOFOLLOW,
            MIGRATIONS,
        )?;
        // Reading the schema version made SQLite open the log and the shared
        // memory too: check what it opened.
        crate::locate::recheck(folder).map_err(refused)?;
        Ok(store)
    }

    fn open_with(
        path: &Path,
        mode: OpenMode,
        busy_timeout: Duration,
        extra: OpenFlags,
        migrations: &'static [Migration],
    ) -> Result<Store> {
        let latest = migrations.len() as i64;
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let file_id = if mode == OpenMode::Write {
            Some(create_private(path)?)
        } else {
            None
        };
        let flags = match mode {
            OpenMode::Write | OpenMode::Maintain => OpenFlags::SQLITE_OPEN_READ_WRITE,
            OpenMode::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | extra;
        let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
        conn.busy_handler(Some(wait_for_lock)).map_err(open_err)?;
        // Also for readers: the log file then stays in place for good once
        // created (its directory entry made durable by `create_private`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(open_err)?;
        // A user's database is that user's to shape: when root reads it, no
        // function in a view or trigger runs, and no schema trickery applies.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)
            .map_err(open_err)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
            .map_err(open_err)?;
        conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 4194304;")
            .map_err(open_err)?;
        if mode != OpenMode::Read {
            conn.wal_hook(Some(note_log_length));
        }
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            busy_timeout,
            sync_dir_after_commit: mode != OpenMode::Read && !log_path(path).exists(),
            wal_frames: 0,
            sync_commits: true,
            log_unsynced: false,
            file_id,
            bad_rows: Default::default(),
            recorder: None,
            migrations,
            legacy_runs: false,
            no_origins: false,
        };
        let version = retry_busy(busy_timeout, || store.schema_version()).map_err(|e| match e {
            Error::Sqlite(source) => open_err(source),
            other => other,
        })?;
        if version > latest {
            return Err(Error::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: latest,
            });
        }
        if version < latest {
            if mode == OpenMode::Read {
                // Readers never migrate. A database from READABLE_FROM on
                // is read as it is (what later migrations added reads as
                // absent), so that installing a new jobctl does not blind
                // `history` until each database's next run upgrades it.
                if version == 0 && retry_busy(busy_timeout, || store.has_no_tables())? {
                    return Err(Error::BeingCreated {
                        path: path.to_path_buf(),
                    });
                }
                if version < READABLE_FROM {
                    return Err(Error::OlderSchema {
                        path: path.to_path_buf(),
                        found: version,
                        supported: latest,
                    });
                }
                if std::ptr::eq(migrations, MIGRATIONS) {
                    store.no_origins = version < crate::origin::ORIGINS_SINCE;
                    store.legacy_runs = store
                        .conn
                        .prepare("SELECT usage_source, upstream_run_id FROM runs LIMIT 0")
                        .is_err();
                }
            } else {
                retry_busy(busy_timeout, || store.migrate())?;
            }
        }
        Ok(store)
    }

    /// Opens a private in-memory database with the full schema (tests).
    pub fn open_in_memory() -> Result<Store> {
        Store::in_memory(MIGRATIONS)
    }

    /// A private in-memory notification database (tests).
    pub fn open_notify_in_memory() -> Result<crate::notify::NotifyStore> {
        Store::in_memory(NOTIFY_MIGRATIONS).map(crate::notify::NotifyStore::new)
    }

    fn in_memory(migrations: &'static [Migration]) -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            busy_timeout: Duration::from_secs(1),
            sync_dir_after_commit: false,
            wal_frames: 0,
            sync_commits: true,
            log_unsynced: false,
            file_id: None,
            bad_rows: Default::default(),
            recorder: None,
            migrations,
            legacy_runs: false,
            no_origins: false,
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The columns of `runs` readers select, for [`decode_row`]: [`COLUMNS`],
    /// or, in a database from before migration 2, the same with NULL for
    /// the columns it lacks.
    pub(crate) fn columns(&self) -> &'static str {
        if self.legacy_runs {
            LEGACY_COLUMNS
        } else {
            COLUMNS
        }
    }

    /// The run id of the newest run recorded with systemd invocation id
    /// `invocation_id` (its last attempt) among the newest
    /// [`UPSTREAM_WINDOW`] runs: how the shim of a chained run names the
    /// run whose end started it. Only an id of systemd's form is looked up.
    pub fn run_of_invocation(&self, invocation_id: &str) -> Result<Option<RunId>> {
        if !crate::record::is_invocation_id(invocation_id) {
            return Ok(None);
        }
        let id = self
            .conn
            .prepare_cached(
                "SELECT id FROM (SELECT id, invocation_id, started_us, attempt FROM runs \
                 ORDER BY started_us DESC LIMIT ?2) WHERE invocation_id = ?1 \
                 ORDER BY attempt DESC, started_us DESC LIMIT 1",
            )?
            .query_row(rusqlite::params![invocation_id, UPSTREAM_WINDOW], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?;
        Ok(id.map(RunId::from_i64))
    }

    /// Changes how long the next writes wait for the lock (the shim waits
    /// less before the command starts than after it ended).
    pub fn set_busy_timeout(&mut self, timeout: Duration) {
        self.busy_timeout = timeout;
    }

    /// `PRAGMA user_version`: the number of migrations applied.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))?)
    }

    /// No table at all: a database not yet migrated by its first writer.
    fn has_no_tables(&self) -> Result<bool> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| {
                row.get::<_, i64>(0)
            })?
            == 0)
    }

    /// Applies the migrations the database lacks, in one transaction. Safe
    /// when many shims open a new database at once: the write lock serializes
    /// them and each re-reads the version under it.
    fn migrate(&mut self) -> Result<()> {
        // journal_mode cannot change inside a transaction; it is persistent,
        // so this runs once per database (and is harmless when repeated).
        let _mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let latest = self.migrations.len() as i64;
        if version > latest {
            return Err(Error::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: latest,
            });
        }
        for migration in self.migrations.iter().filter(|m| m.version > version) {
            tx.execute_batch(migration.sql)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {latest}"))?;
        tx.commit()?;
        self.after_commit();
        Ok(())
    }

    /// Writes the start row of a run (status `running`, no end), durably.
    pub fn begin_run(&mut self, record: &RunRecord) -> Result<()> {
        self.write(Commit::Durable, |tx| insert(tx, record))
    }

    /// Commits the start row of a run without waiting for the disk: the
    /// caller starts the command, then calls [`Store::sync_log`], so that the
    /// fsync overlaps the command (the shim). Until then a power loss may
    /// forget this row (never corrupt the database); any later write of this
    /// store is a durable commit and makes it durable too.
    pub fn begin_run_sync_later(&mut self, record: &RunRecord) -> Result<()> {
        self.write(Commit::SyncLater, |tx| insert(tx, record))
    }

    /// Makes every commit so far durable (fdatasync of the log) and the next
    /// ones durable at commit again.
    pub fn sync_log(&mut self) -> Result<()> {
        if self.log_unsynced {
            let log = log_path(&self.path);
            let synced = std::fs::File::open(&log).and_then(|file| file.sync_data());
            synced.map_err(|source| Error::Sync { path: log, source })?;
            self.log_unsynced = false;
        }
        self.set_sync_commits(true)
    }

    /// Rewrites a run's row (e.g. the provisional `timeout`/`killed` status
    /// written when a stop signal arrives, in case the shim is killed before
    /// the command ends), inserting it if the start row is missing.
    pub fn update_run(&mut self, record: &RunRecord) -> Result<()> {
        self.write(Commit::Durable, |tx| upsert(tx, record))
    }

    /// Whether the next commit fsyncs the log before it returns
    /// (`PRAGMA synchronous` is FULL or stronger).
    pub fn commits_are_durable(&self) -> Result<bool> {
        let level: i64 = self
            .conn
            .query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        Ok(level >= 2)
    }

    /// `synchronous=FULL` (each commit fsyncs the log) or `NORMAL` (the
    /// log is synced by [`Store::sync_log`] or the next `FULL` commit).
    fn set_sync_commits(&mut self, sync: bool) -> Result<()> {
        if self.sync_commits != sync {
            self.conn.execute_batch(if sync {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            })?;
            self.sync_commits = sync;
        }
        Ok(())
    }

    /// Completes a run: its final row (inserted whole if the start row is
    /// missing, e.g. the database was locked when the run began), its captured
    /// output (in [`crate::output`]'s format, streamed into the row without an
    /// intermediate copy), and the retention step for its job, in one durable
    /// transaction.
    pub fn finish_run(
        &mut self,
        record: &RunRecord,
        output: Option<&[Segment<'_>]>,
        retention: &Retention,
        now_us: i64,
    ) -> Result<()> {
        self.write(Commit::Durable, |tx| {
            upsert(tx, record)?;
            if let Some(segments) = output {
                let size = output::encoded_len(segments);
                tx.prepare_cached(DELETE_OUTPUT_SQL)?
                    .execute([record.id.as_i64()])?;
                tx.prepare_cached(INSERT_OUTPUT_SQL)?
                    .execute(params![record.id.as_i64(), size as i64])?;
                let row = tx.last_insert_rowid();
                let mut blob = tx.blob_open(MAIN_DB, "outputs", "data", row, false)?;
                output::write_encoded(&mut blob, segments)
                    .map_err(|e| Error::BadValue(format!("cannot store the output: {e}")))?;
                blob.close()?;
            }
            retention.after_run(tx, &record.job, record.id.as_i64(), now_us)
        })
    }

    /// Runs `work` in an immediate transaction, retrying on SQLITE_BUSY or
    /// SQLITE_LOCKED until the busy timeout; the commit fsyncs the log, or
    /// leaves that to [`Store::sync_log`].
    pub(crate) fn write(
        &mut self,
        commit: Commit,
        mut work: impl FnMut(&Connection) -> Result<()>,
    ) -> Result<()> {
        self.set_sync_commits(commit == Commit::Durable)?;
        let conn = &mut self.conn;
        retry_busy(self.busy_timeout, || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            work(&tx)?;
            tx.commit()?;
            Ok(())
        })?;
        if commit == Commit::SyncLater {
            self.log_unsynced = true;
        }
        self.after_commit();
        Ok(())
    }

    pub(crate) fn after_commit(&mut self) {
        self.wal_frames = LOG_FRAMES.with(|f| f.take());
        if self.sync_commits {
            // A FULL commit synced the whole log, earlier commits included.
            self.log_unsynced = false;
        }
        if self.sync_dir_after_commit {
            self.sync_dir_after_commit = false;
            sync_parent(&self.path);
        }
        if self.wal_frames > BIG_LOG_PAGES {
            self.truncate_log();
        }
    }

    /// Checkpoints the log if it has grown past `CHECKPOINT_PAGES`: the
    /// shim calls this while the command runs, so that the checkpoint's
    /// fsyncs overlap the command, and its completing commit starts the log
    /// over. Passive: it never waits for other connections, and failing
    /// changes nothing (a later run tries again).
    pub fn checkpoint_if_due(&mut self) {
        if self.wal_frames >= CHECKPOINT_PAGES {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            self.wal_frames = 0;
        }
    }

    /// Copies a long log into the database and truncates it to nothing, if no
    /// other connection is using it (waiting at most a few milliseconds for
    /// one to finish). Best effort: when it cannot, the log stays and the
    /// next run's passive checkpoint deals with it.
    fn truncate_log(&mut self) {
        LOCK_DEADLINE.with(|d| d.set(Some(Instant::now() + Duration::from_millis(20))));
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        self.wal_frames = 0;
    }

    /// Whether the database file this store opened is still the one at its
    /// path (one `stat`). A file deleted or replaced while the shim ran (an
    /// operator removing or restoring the history) would take what the shim
    /// writes next with it, unseen: the shim checks before its completion
    /// and, if not, lets this store go ([`Store::retire`]) and opens the path
    /// again. Always true for readers and for an in-memory database.
    pub fn still_at_path(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.file_id
            .is_none_or(|id| std::fs::metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == id))
    }

    /// Closes a store whose file is no longer at its path, first emptying
    /// its write-ahead log into that file (best effort). The log is found
    /// by path too: left as it was, it would be applied to whatever
    /// database is now at the path, as if it were that database's own.
    pub fn retire(mut self) {
        self.truncate_log();
    }

    /// Lets go of the database without closing the connection, for a process
    /// about to exit (the shim, after its last commit). With no checkpoint on
    /// close, closing would only finalize statements, free memory, unmap the
    /// shared-memory index and close files, which the kernel does anyway at
    /// exit; its POSIX locks go with the process. Committed data is durable
    /// either way.
    pub fn abandon(self) {
        std::mem::forget(self);
    }

    /// Prepares the statements [`Store::finish_run`] uses, so that the work is
    /// done while the command runs rather than after it.
    pub fn prepare_finish(&self) -> Result<()> {
        self.conn.prepare_cached(UPDATE_SQL)?;
        self.conn.prepare_cached(DELETE_OUTPUT_SQL)?;
        self.conn.prepare_cached(INSERT_OUTPUT_SQL)?;
        crate::retention::prepare(&self.conn)?;
        Ok(())
    }
}

/// Whether a write's commit waits for the disk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// `synchronous=FULL`: durable when the commit returns.
    Durable,
    /// `synchronous=NORMAL`: durable at the next [`Store::sync_log`] or
    /// durable commit.
    SyncLater,
}

/// The write-ahead log of the database at `db`.
fn log_path(db: &Path) -> PathBuf {
    let mut log = db.as_os_str().to_owned();
    log.push("-wal");
    PathBuf::from(log)
}

const DELETE_OUTPUT_SQL: &str = "DELETE FROM outputs WHERE run_id = ?1";
const INSERT_OUTPUT_SQL: &str =
    "INSERT INTO outputs (run_id, size, data) VALUES (?1, ?2, zeroblob(?2))";

thread_local! {
    /// The log length the WAL hook saw at the last commit on this thread,
    /// picked up by [`Store::after_commit`].
    static LOG_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

/// The WAL hook: notes how many frames the log holds after a commit. The
/// checkpoint itself is [`Store`]'s decision (SQLite's own auto-checkpoint
/// would run it right after the start row's commit, before the command, and
/// report a busy checkpoint as the commit's error).
fn note_log_length(_wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    LOG_FRAMES.with(|f| f.set(pages));
    Ok(())
}

/// Runs `attempt` again while it fails with SQLITE_BUSY/SQLITE_LOCKED, until
/// `timeout`. SQLite's busy handler already waits for ordinary locks; this
/// covers the few it reports at once.
fn retry_busy<T>(timeout: Duration, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    LOCK_DEADLINE.with(|d| d.set(Some(deadline)));
    let mut pause_us = 500u64;
    loop {
        match attempt() {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                // Jitter keeps a crowd of shims from retrying in step.
                let jitter = u64::from(std::process::id()) % pause_us;
                std::thread::sleep(Duration::from_micros(pause_us + jitter));
                pause_us = (pause_us * 2).min(20_000);
            }
            other => return other,
        }
    }
}

thread_local! {
    /// Until when [`wait_for_lock`] keeps waiting: set by each write.
    static LOCK_DEADLINE: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// SQLite's busy handler. Its default one sleeps up to 100 ms at a time; with
/// hundreds of shims on two cores that lets a few late arrivals starve while
/// the lock is free most of the time. Short, jittered sleeps keep every
/// waiter close to the front.
fn wait_for_lock(count: i32) -> bool {
    let deadline = LOCK_DEADLINE.with(|d| d.get());
    let Some(deadline) = deadline else {
        // A read outside any write: wait a few seconds' worth of attempts.
        std::thread::sleep(Duration::from_millis(2));
        return count < 2_000;
    };
    if Instant::now() >= deadline {
        return false;
    }
    let step = u64::try_from(count.clamp(0, 9)).unwrap_or(0) + 1;
    // A cheap per-process, per-attempt jitter (no need for good randomness).
    let mut x = u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (count as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 31;
    let pause = Duration::from_micros(step * 200 + x % 400);
    std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
    true
}

/// fsyncs the folder holding `path` (best effort: a failure here only
/// weakens durability of a brand-new file across a power loss).
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
}

fn is_busy(e: &Error) -> bool {
    e.is_busy()
}

/// Creates the database file with mode 0600 if it does not exist, so that
/// SQLite (which gives its `-wal` and `-shm` files the database's mode) never
/// creates any of them readable by others: job output may hold secrets.
/// Returns the file's identity (device, inode), from the `stat` that tells
/// whether it exists.
fn create_private(path: &Path) -> Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    let folder_err = |source| Error::Folder {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) => return Ok(id(meta)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(folder_err(source)),
    }
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(file) => {
            // SQLite is built without its per-process directory fsync
            // (SQLITE_DISABLE_DIRSYNC, .cargo/config.toml): the new file's
            // directory entry is made durable here, once; the log's after the
            // first commit that creates it (`Store::after_commit`).
            sync_parent(path);
            file.metadata().map(id).map_err(folder_err)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::metadata(path).map(id).map_err(folder_err)
        }
        Err(source) => Err(folder_err(source)),
    }
}

/// The columns readers select, for [`decode_row`]: the row id first (to name
/// a row that cannot be decoded), then the record's.
pub(crate) const COLUMNS: &str = "rowid, id, job, invocation_id, trigger, attempt, host, user, uid, \
     pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, status, \
     exit_code, signal, error, output_bytes, output_truncated, cpu_user_us, cpu_system_us, \
     memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, \
     upstream_run_id";

/// [`COLUMNS`] for a database from before migration 2.
const LEGACY_COLUMNS: &str = "rowid, id, job, invocation_id, trigger, attempt, host, user, uid, \
     pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, status, \
     exit_code, signal, error, output_bytes, output_truncated, NULL, NULL, NULL, NULL, NULL, NULL, \
     NULL, NULL";

const INSERT_SQL: &str = "INSERT INTO runs (id, job, invocation_id, trigger, attempt, host, user, uid, pid, \
     shim_pid, shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, status, \
     exit_code, signal, error, output_bytes, output_truncated, cpu_user_us, cpu_system_us, \
     memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, \
     upstream_run_id) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
     ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30) \
     ON CONFLICT (id) DO NOTHING";

/// What a run's row may change after its start: everything but who, what
/// and when it started (and what started it).
const UPDATE_SQL: &str = "UPDATE runs SET pid = ?2, ended_us = ?3, deadline_us = ?4, status = ?5, \
     exit_code = ?6, signal = ?7, error = ?8, output_bytes = ?9, output_truncated = ?10, \
     cpu_user_us = ?11, cpu_system_us = ?12, memory_peak_bytes = ?13, read_bytes = ?14, \
     written_bytes = ?15, usage_source = ?16 WHERE id = ?1";

/// A run's usage as its columns: the five figures (as SQLite integers) and
/// the source, all NULL without usage.
type UsageColumns = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn usage_columns(usage: Option<&crate::record::Usage>) -> UsageColumns {
    let int = |v: u64| Some(i64::try_from(v).unwrap_or(i64::MAX));
    match usage {
        None => (None, None, None, None, None, None),
        Some(u) => (
            int(u.cpu_user_us),
            int(u.cpu_system_us),
            int(u.memory_peak_bytes),
            int(u.read_bytes),
            int(u.written_bytes),
            Some(u.source.to_text()),
        ),
    }
}

/// Inserts a run's row; an existing row with its id (a retried write) stays.
fn insert(conn: &Connection, r: &RunRecord) -> Result<()> {
    let usage = usage_columns(r.usage.as_ref());
    // Anything but systemd's own form is not kept (as for the invocation id).
    let upstream = r
        .upstream
        .as_ref()
        .filter(|u| crate::record::is_invocation_id(&u.invocation_id));
    conn.prepare_cached(INSERT_SQL)?.execute(params![
        r.id.as_i64(),
        r.job,
        // Anything but systemd's own form (a value a caller put in the
        // shim's environment) is not kept.
        r.invocation_id
            .as_deref()
            .filter(|id| crate::record::is_invocation_id(id)),
        r.trigger.as_str(),
        r.attempt,
        r.host,
        r.user,
        r.uid,
        r.pid,
        r.shim.pid,
        r.shim.start_ticks as i64,
        r.shim.boot_id,
        r.shim.pid_ns as i64,
        r.started_us,
        r.ended_us,
        r.deadline_us,
        r.status.as_str(),
        r.exit_code,
        r.signal,
        r.error,
        r.output_bytes as i64,
        r.output_truncated,
        usage.0,
        usage.1,
        usage.2,
        usage.3,
        usage.4,
        usage.5,
        upstream.map(|u| u.invocation_id.as_str()),
        upstream.and_then(|u| u.run_id).map(RunId::as_i64),
    ])?;
    Ok(())
}

/// Updates a run's row, or inserts it whole when it is missing (its start
/// row could not be written). Inside the caller's immediate transaction, so
/// nothing can come between the two.
fn upsert(conn: &Connection, r: &RunRecord) -> Result<()> {
    let usage = usage_columns(r.usage.as_ref());
    let changed = conn.prepare_cached(UPDATE_SQL)?.execute(params![
        r.id.as_i64(),
        r.pid,
        r.ended_us,
        r.deadline_us,
        r.status.as_str(),
        r.exit_code,
        r.signal,
        r.error,
        r.output_bytes as i64,
        r.output_truncated,
        usage.0,
        usage.1,
        usage.2,
        usage.3,
        usage.4,
        usage.5,
    ])?;
    if changed == 0 {
        insert(conn, r)?;
    }
    Ok(())
}

/// Maps a row selected with [`COLUMNS`] to a record, or says why it cannot
/// be: a user's database is that user's to write, so any value may be of
/// the wrong type or not one jobctl knows.
pub(crate) fn decode_row(row: &rusqlite::Row<'_>) -> std::result::Result<RunRecord, BadRow> {
    let row_id: Option<i64> = row.get(0).ok();
    record_from_row(row).map_err(|e| BadRow {
        row_id,
        run: row.get::<_, i64>(1).ok().map(RunId::from_i64),
        reason: match e {
            rusqlite::Error::FromSqlConversionFailure(_, _, source) => {
                match source.downcast_ref::<crate::Error>() {
                    Some(crate::Error::BadValue(what)) => what.clone(),
                    _ => source.to_string(),
                }
            }
            rusqlite::Error::InvalidColumnType(i, name, ty) => {
                format!("column {name} (#{i}) holds a value of type {ty}")
            }
            rusqlite::Error::IntegralValueOutOfRange(i, value) => {
                format!("column #{i} holds {value}, out of range")
            }
            other => other.to_string(),
        },
    })
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    use crate::liveness::ProcessStamp;
    let bad = |i: usize, what: crate::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(what))
    };
    let trigger: String = row.get(4)?;
    let status: String = row.get(17)?;
    let invocation_id: Option<String> = row.get(3)?;
    if let Some(id) = &invocation_id
        && !crate::record::is_invocation_id(id)
    {
        return Err(bad(
            3,
            crate::Error::BadValue(
                "its invocation id is not systemd's (32 hex digits)".to_string(),
            ),
        ));
    }
    Ok(RunRecord {
        id: RunId::from_i64(row.get(1)?),
        job: row.get(2)?,
        invocation_id,
        trigger: trigger.parse().map_err(|e| bad(4, e))?,
        actor: None,
        attempt: row.get(5)?,
        host: row.get(6)?,
        user: row.get(7)?,
        uid: row.get(8)?,
        pid: row.get(9)?,
        shim: ProcessStamp {
            pid: row.get(10)?,
            start_ticks: row.get::<_, i64>(11)? as u64,
            boot_id: row.get(12)?,
            pid_ns: row.get::<_, i64>(13)? as u64,
        },
        started_us: row.get(14)?,
        ended_us: row.get(15)?,
        deadline_us: row.get(16)?,
        status: status.parse().map_err(|e| bad(17, e))?,
        exit_code: row.get(18)?,
        signal: row.get(19)?,
        error: row.get(20)?,
        output_bytes: row.get::<_, i64>(21)?.max(0) as u64,
        output_truncated: row.get(22)?,
        usage: usage_from_row(row).map_err(|what| bad(28, what))?,
        upstream: upstream_from_row(row).map_err(|what| bad(29, what))?,
    })
}

/// The usage columns (23 to 28) of a row selected with [`COLUMNS`]: all
/// NULL (no usage), or every figure a non-negative integer and a source
/// jobctl writes.
fn usage_from_row(
    row: &rusqlite::Row<'_>,
) -> std::result::Result<Option<crate::record::Usage>, crate::Error> {
    use crate::record::{Usage, UsageSource};
    let bad = |what: &str| crate::Error::BadValue(format!("its usage {what}"));
    let figure = |i: usize| -> std::result::Result<Option<u64>, crate::Error> {
        match row.get::<_, Option<i64>>(i) {
            Ok(None) => Ok(None),
            Ok(Some(v)) if v >= 0 => Ok(Some(v as u64)),
            _ => Err(bad("figures are not non-negative integers")),
        }
    };
    let source: Option<String> = row.get(28).map_err(|_| bad("source is not text"))?;
    let figures = [
        figure(23)?,
        figure(24)?,
        figure(25)?,
        figure(26)?,
        figure(27)?,
    ];
    let Some(source) = source else {
        return if figures.iter().all(Option::is_none) {
            Ok(None)
        } else {
            Err(bad("figures have no source"))
        };
    };
    let source =
        UsageSource::parse(&source).ok_or_else(|| bad("source is not one jobctl writes"))?;
    let [
        Some(cpu_user_us),
        Some(cpu_system_us),
        Some(memory_peak_bytes),
        Some(read_bytes),
        Some(written_bytes),
    ] = figures
    else {
        return Err(bad("figures are incomplete"));
    };
    Ok(Some(Usage {
        cpu_user_us,
        cpu_system_us,
        memory_peak_bytes,
        read_bytes,
        written_bytes,
        source,
    }))
}

/// The upstream columns (29, 30) of a row selected with [`COLUMNS`]: an
/// invocation id of systemd's form, and a run id only with one.
fn upstream_from_row(
    row: &rusqlite::Row<'_>,
) -> std::result::Result<Option<crate::record::Upstream>, crate::Error> {
    let bad = |what: &str| crate::Error::BadValue(format!("its upstream {what}"));
    let invocation_id: Option<String> =
        row.get(29).map_err(|_| bad("invocation id is not text"))?;
    let run_id: Option<i64> = row.get(30).map_err(|_| bad("run id is not an integer"))?;
    match invocation_id {
        None if run_id.is_none() => Ok(None),
        None => Err(bad("run id has no invocation id")),
        Some(id) if !crate::record::is_invocation_id(&id) => {
            Err(bad("invocation id is not systemd's (32 hex digits)"))
        }
        Some(invocation_id) => Ok(Some(crate::record::Upstream {
            invocation_id,
            run_id: run_id.map(RunId::from_i64),
        })),
    }
}
