//! Opening a history database and writing runs to it.
//!
//! The shim opens the database once per run, writes the start row (one
//! transaction), runs the command, and completes the row together with the
//! captured output and the cheap retention step (a second transaction). Both
//! commits are durable: WAL with `synchronous=FULL` fsyncs the log at each
//! commit. What keeps that cheap for a process that lives a millisecond:
//!
//! - no checkpoint when the connection closes (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`):
//!   by default the last connection to close checkpoints the whole log into
//!   the database and deletes it, costing two more fsyncs and a rebuild of the
//!   WAL index at the next open; instead, the occasional commit that finds the
//!   log over [`CHECKPOINT_PAGES`] folds it back in (a passive checkpoint whose
//!   failure is ignored: SQLite's own auto-checkpoint reports a busy
//!   checkpoint as the commit's error, though the commit succeeded);
//! - a write that meets SQLITE_BUSY anyway (a lock SQLite does not wait on,
//!   such as WAL recovery by another opener) is retried, with jitter, until
//!   the busy timeout; every write is idempotent (upserts), so a retry never
//!   doubles a row;
//! - `journal_mode=WAL` is persistent in the file, so it is set once, by the
//!   first migration, not at every open;
//! - `BEGIN IMMEDIATE` takes the write lock up front, so concurrent shims wait
//!   in the busy handler instead of failing on a lock upgrade.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, MAIN_DB, OpenFlags, TransactionBehavior, params};

use crate::output::{self, Segment};
use crate::record::RunRecord;
use crate::retention::Retention;
use crate::schema::{LATEST_VERSION, MIGRATIONS};
use crate::{Error, Result};

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

/// Pages in the write-ahead log after which a commit folds it back into the
/// database. Small, because every shim is a fresh process: a short log keeps
/// each checkpoint short and the file small.
pub const CHECKPOINT_PAGES: i32 = 64;

/// An open history database.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
    /// The write-ahead log did not exist at open: sync the folder after the
    /// first commit, which creates it.
    sync_dir_after_commit: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens the database at `path`. `busy_timeout` bounds how long a write
    /// waits for another writer's lock.
    pub fn open(path: &Path, mode: OpenMode, busy_timeout: Duration) -> Result<Store> {
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        if mode == OpenMode::Write {
            create_private(path)?;
        }
        let flags = match mode {
            OpenMode::Write | OpenMode::Maintain => OpenFlags::SQLITE_OPEN_READ_WRITE,
            OpenMode::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
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
            conn.wal_hook(Some(checkpoint_hook));
        }
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            busy_timeout,
            sync_dir_after_commit: mode != OpenMode::Read && !Path::new(&wal).exists(),
        };
        let version = retry_busy(busy_timeout, || store.schema_version()).map_err(|e| match e {
            Error::Sqlite(source) => open_err(source),
            other => other,
        })?;
        if version > LATEST_VERSION {
            return Err(Error::NewerSchema {
                path: path.to_path_buf(),
                found: version,
                supported: LATEST_VERSION,
            });
        }
        if version < LATEST_VERSION {
            if mode == OpenMode::Read {
                return Err(Error::OlderSchema {
                    path: path.to_path_buf(),
                    found: version,
                    supported: LATEST_VERSION,
                });
            }
            retry_busy(busy_timeout, || store.migrate())?;
        }
        Ok(store)
    }

    /// Opens a private in-memory database with the full schema (tests).
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            busy_timeout: Duration::from_secs(1),
            sync_dir_after_commit: false,
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
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
        if version > LATEST_VERSION {
            return Err(Error::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: LATEST_VERSION,
            });
        }
        for migration in MIGRATIONS.iter().filter(|m| m.version > version) {
            tx.execute_batch(migration.sql)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {LATEST_VERSION}"))?;
        tx.commit()?;
        self.after_commit();
        Ok(())
    }

    /// Writes the start row of a run (status `running`, no end), durably,
    /// before the command starts.
    pub fn begin_run(&mut self, record: &RunRecord) -> Result<()> {
        self.write(|tx| upsert(tx, record))
    }

    /// Rewrites a run's row (e.g. the provisional `timeout`/`killed` status
    /// written when a stop signal arrives, in case the shim is killed before
    /// the command ends).
    pub fn update_run(&mut self, record: &RunRecord) -> Result<()> {
        self.begin_run(record)
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
        self.write(|tx| {
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
            retention.after_run(tx, &record.job, now_us)
        })
    }

    /// Runs `work` in an immediate transaction, retrying on SQLITE_BUSY or
    /// SQLITE_LOCKED until the busy timeout.
    fn write(&mut self, mut work: impl FnMut(&Connection) -> Result<()>) -> Result<()> {
        let conn = &mut self.conn;
        retry_busy(self.busy_timeout, || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            work(&tx)?;
            tx.commit()?;
            Ok(())
        })?;
        self.after_commit();
        Ok(())
    }

    fn after_commit(&mut self) {
        if self.sync_dir_after_commit {
            self.sync_dir_after_commit = false;
            sync_parent(&self.path);
        }
    }

    /// Prepares the statements [`Store::finish_run`] uses, so that the work is
    /// done while the command runs rather than after it.
    pub fn prepare_finish(&self) -> Result<()> {
        self.conn.prepare_cached(UPSERT_SQL)?;
        self.conn.prepare_cached(DELETE_OUTPUT_SQL)?;
        self.conn.prepare_cached(INSERT_OUTPUT_SQL)?;
        crate::retention::prepare(&self.conn)?;
        Ok(())
    }
}

const DELETE_OUTPUT_SQL: &str = "DELETE FROM outputs WHERE run_id = ?1";
const INSERT_OUTPUT_SQL: &str =
    "INSERT INTO outputs (run_id, size, data) VALUES (?1, ?2, zeroblob(?2))";

/// Folds the log back into the database once it is long. A passive
/// checkpoint never waits; if another connection is checkpointing, this one
/// simply skips (and the commit that called it is still reported as done).
fn checkpoint_hook(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    if pages >= CHECKPOINT_PAGES {
        let _ = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE);
    }
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
    matches!(
        e.sqlite_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Creates the database file with mode 0600 if it does not exist, so that
/// SQLite (which gives its `-wal` and `-shm` files the database's mode) never
/// creates any of them readable by others: job output may hold secrets.
fn create_private(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => {
            // SQLite is built without its per-process directory fsync
            // (SQLITE_DISABLE_DIRSYNC, .cargo/config.toml): the new file's
            // directory entry is made durable here, once; the log's after the
            // first commit that creates it (`Store::after_commit`).
            sync_parent(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(Error::Folder {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(crate) const COLUMNS: &str = "id, job, invocation_id, trigger, attempt, host, user, uid, pid, \
     shim_pid, shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, status, \
     exit_code, signal, error, output_bytes, output_truncated";

const UPSERT_SQL: &str = "INSERT INTO runs (id, job, invocation_id, trigger, attempt, host, user, uid, pid, \
     shim_pid, shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, status, \
     exit_code, signal, error, output_bytes, output_truncated) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22) \
     ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, ended_us = excluded.ended_us, \
     deadline_us = excluded.deadline_us, status = excluded.status, exit_code = excluded.exit_code, \
     signal = excluded.signal, error = excluded.error, output_bytes = excluded.output_bytes, \
     output_truncated = excluded.output_truncated";

fn upsert(conn: &Connection, r: &RunRecord) -> Result<()> {
    conn.prepare_cached(UPSERT_SQL)?.execute(params![
        r.id.as_i64(),
        r.job,
        r.invocation_id,
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
    ])?;
    Ok(())
}

/// Maps a row selected with [`COLUMNS`] to a record.
pub(crate) fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    use crate::liveness::ProcessStamp;
    use crate::record::RunId;
    let bad = |i: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::new(Error::BadValue(what)),
        )
    };
    let trigger: String = row.get(3)?;
    let status: String = row.get(16)?;
    Ok(RunRecord {
        id: RunId::from_i64(row.get(0)?),
        job: row.get(1)?,
        invocation_id: row.get(2)?,
        trigger: trigger.parse().map_err(|_| bad(3, trigger.clone()))?,
        attempt: row.get(4)?,
        host: row.get(5)?,
        user: row.get(6)?,
        uid: row.get(7)?,
        pid: row.get(8)?,
        shim: ProcessStamp {
            pid: row.get(9)?,
            start_ticks: row.get::<_, i64>(10)? as u64,
            boot_id: row.get(11)?,
            pid_ns: row.get::<_, i64>(12)? as u64,
        },
        started_us: row.get(13)?,
        ended_us: row.get(14)?,
        deadline_us: row.get(15)?,
        status: status.parse().map_err(|_| bad(16, status.clone()))?,
        exit_code: row.get(17)?,
        signal: row.get(18)?,
        error: row.get(19)?,
        output_bytes: row.get::<_, i64>(20)?.max(0) as u64,
        output_truncated: row.get(21)?,
    })
}
