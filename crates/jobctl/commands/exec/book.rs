//! The shim's history side: the bookkeeper that writes a run's start row
//! and its end, opens the database lazily, remembers the first failure and
//! never returns an error to the run (a run it cannot record goes to the
//! journal instead, `journal.rs`); and the observer that records a run's
//! provisional end the moment a stop signal arrives.

use std::path::PathBuf;
use std::time::Duration;

use jobctl_exec::{Observer, StopRequest};
use jobctl_history::output::{Segment, Stream};
use jobctl_history::{OpenMode, Retention, RunRecord, Status, Store};

use crate::history_db::{self, system_time_us};
use crate::paths::Paths;

/// Records the run's provisional end as soon as a stop signal arrives: if
/// the command ignores it, systemd SIGKILLs the whole unit (the shim too)
/// after its stop timeout, and the row should then say `timeout`/`killed`,
/// not `running`, and hold the output captured up to the stop.
pub struct RunObserver<'a, 'p> {
    book: &'a mut Bookkeeper<'p>,
    record: &'a RunRecord,
    pid: Option<u32>,
    deadline_us: Option<i64>,
    /// The run's start entry went to the journal.
    pub announced: bool,
}

impl<'a, 'p> RunObserver<'a, 'p> {
    /// Observes one attempt, whose start row is `record`.
    pub fn new(
        book: &'a mut Bookkeeper<'p>,
        record: &'a RunRecord,
        deadline_us: Option<i64>,
    ) -> Self {
        RunObserver {
            book,
            record,
            pid: None,
            deadline_us,
            announced: false,
        }
    }
}

impl Observer for RunObserver<'_, '_> {
    fn started(&mut self, pid: u32) {
        self.pid = Some(pid);
        // The run's start entry, sent once the command runs (it does not
        // wait for this).
        crate::journal::run_started(self.record);
        self.announced = true;
        // Work that would otherwise delay the command or follow it: sync the
        // start row, prepare the completing statements, and checkpoint the
        // log if it is due (the fsyncs overlap the command; its output waits
        // in the pipes meanwhile, nothing is lost).
        if let Some(store) = self.book.store.as_mut() {
            // The start row's fsync, which the command did not wait for. If
            // it fails, the completing commit (a durable one) tries again,
            // and a run it cannot record goes to the journal.
            let _ = store.sync_log();
            let _ = store.prepare_finish();
            store.checkpoint_if_due();
        }
    }

    fn stop_requested(&mut self, request: StopRequest, capture: &jobctl_exec::Capture) {
        let mut record = self.record.clone();
        record.pid = self.pid;
        let at_us = system_time_us(request.at);
        record.status = Status::of_stop(at_us, self.deadline_us);
        record.signal = Some(request.signal);
        record.ended_us = Some(at_us);
        record.output_bytes = capture.total_bytes();
        record.output_truncated = capture.truncated();
        let output = stored_output(capture);
        // No retention step here: the completion makes it, if it comes.
        if let Err(e) = self
            .book
            .write_end(&record, output.as_deref(), &Retention::UNLIMITED)
        {
            self.book.failed = Some(e);
            self.book.store = None;
        }
    }
}

/// The database side of the shim: opens lazily, remembers the first failure,
/// and never returns an error to the run.
pub struct Bookkeeper<'p> {
    db_path: PathBuf,
    create_dir: bool,
    paths: &'p Paths,
    busy: Duration,
    store: Option<Store>,
    failed: Option<String>,
    retention: Retention,
    /// Wake the watch once the run is recorded (`--notify`).
    notify: bool,
}

impl<'p> Bookkeeper<'p> {
    /// Records into `db_path` (creating its folder first when `create_dir`),
    /// waiting up to `busy` for other writers at the end of a run, and
    /// applying `retention` to the job after each.
    pub fn new(
        paths: &'p Paths,
        db_path: PathBuf,
        create_dir: bool,
        busy: Duration,
        retention: Retention,
    ) -> Self {
        Bookkeeper {
            db_path,
            create_dir,
            paths,
            busy,
            store: None,
            failed: None,
            retention,
            notify: false,
        }
    }

    /// Wake jobctl's watch when leaving (`--notify`: a job with channels).
    pub fn notify_watch(mut self, notify: bool) -> Self {
        self.notify = notify;
        self
    }

    /// The shim is about to exit: every write is committed, so leave the
    /// connection to the kernel instead of closing it (see [`Store::abandon`]).
    pub fn leave(mut self) {
        if let Some(store) = self.store.take() {
            store.abandon();
        }
        if self.notify {
            crate::poke::poke(self.paths.mode);
        }
    }

    fn open(&mut self) -> Option<&mut Store> {
        if self.store.is_none() {
            if self.create_dir
                && let Some(dir) = self.db_path.parent()
            {
                let _ = history_db::create_state_dir(self.paths, dir);
            }
            match self.open_store() {
                Ok(store) => self.store = Some(store),
                Err(e) => {
                    self.failed = Some(error_chain(&e));
                    return None;
                }
            }
        }
        self.store.as_mut()
    }

    /// Opens (creating if missing) the database. A shim running as root
    /// whose database is in a folder that is not root's alone (`--db` into a
    /// user's folder) opens it only with the checks root's readers use, and
    /// never creates it there ([`Store::open_located`]); costs one `stat` of
    /// the folder for root's shims, nothing for others.
    fn open_store(&self) -> jobctl_history::Result<Store> {
        use std::os::unix::fs::MetadataExt;
        let untrusted_folder = nix::unistd::geteuid().is_root()
            && self
                .db_path
                .parent()
                .and_then(|dir| std::fs::metadata(dir).ok())
                .is_some_and(|m| m.uid() != 0 || m.mode() & 0o022 != 0);
        if !untrusted_folder {
            return Store::open(&self.db_path, OpenMode::Write, self.busy);
        }
        let state_dir = history_db::state_dir(self.paths);
        match jobctl_history::locate::explicit(&self.db_path, &state_dir) {
            Ok(located) => Store::open_located(&located, OpenMode::Write, self.busy),
            Err(refused) => Err(jobctl_history::Error::Refused {
                path: refused.path,
                reason: refused.reason,
            }),
        }
    }

    /// The run id recorded in this database for systemd invocation
    /// `invocation_id` (the upstream of a chained run), if any. Only this
    /// database is asked: the one the shim writes, never another user's.
    pub fn run_of_invocation(&mut self, invocation_id: &str) -> Option<jobctl_history::RunId> {
        self.open()?.run_of_invocation(invocation_id).ok().flatten()
    }

    pub fn begin(&mut self, record: &RunRecord) {
        let patience = self.busy / 20;
        if let Some(store) = self.open() {
            store.set_busy_timeout(patience);
        }
        // Committed now, fsynced once the command has started (see
        // `RunObserver::started`): the command does not wait for the disk.
        if let Some(store) = self.open()
            && let Err(e) = store.begin_run_sync_later(record)
        {
            self.failed = Some(error_chain(&e));
            // A locked or broken connection is retried fresh at the end.
            self.store = None;
        }
    }

    /// Completes the run; if that fails, the journal gets the record.
    pub fn finish(&mut self, record: &RunRecord, output: Option<&[Segment<'_>]>) {
        // A database deleted or replaced while the command ran would take the
        // run with it: record it in whatever is at the path now (created if
        // nothing is), the whole row.
        if self
            .store
            .as_ref()
            .is_some_and(|store| !store.still_at_path())
            && let Some(store) = self.store.take()
        {
            store.retire();
        }
        let busy = self.busy;
        if let Some(store) = self.store.as_mut() {
            store.set_busy_timeout(busy);
        }
        let retention = self.retention;
        match self.write_end(record, output, &retention) {
            Ok(None) => self.failed = None,
            Ok(Some(reason)) => {
                self.failed = None;
                crate::journal::output_not_stored(record, &self.db_path, &reason);
            }
            Err(error) => {
                self.store = None;
                crate::journal::run_not_recorded(record, &self.db_path, &error);
            }
        }
    }

    /// Writes a run's end (`finish_run`: the row, its output, `retention`),
    /// in one transaction. A result the shim knows is never left `running`
    /// for want of room for its output: when that write fails for any reason
    /// but another writer's lock (a full disk, an output too big for the
    /// database, a damaged page among the outputs), the row is written again
    /// without the output, marked with why (`RunRecord::without_output`).
    /// Returns that reason when the output was left out; an error when
    /// nothing could be written.
    fn write_end(
        &mut self,
        record: &RunRecord,
        output: Option<&[Segment<'_>]>,
        retention: &Retention,
    ) -> Result<Option<String>, String> {
        let now = history_db::now_us();
        let Some(store) = self.open() else {
            return Err(self.failed.clone().unwrap_or_else(|| "cannot open".into()));
        };
        let error = match store.finish_run(record, output, retention, now) {
            Ok(()) => return Ok(None),
            Err(e) if output.is_none() || e.is_busy() => return Err(error_chain(&e)),
            Err(e) => e,
        };
        let reason = output_error(&error);
        match store.update_run(&record.without_output(&reason)) {
            Ok(()) => Ok(Some(reason)),
            Err(_) => Err(error_chain(&error)),
        }
    }
}

/// A short reason for the marker: SQLite's own message ("database or disk is
/// full") without the layers around it.
fn output_error(e: &jobctl_history::Error) -> String {
    match e {
        jobctl_history::Error::Sqlite(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The capture as the history stores it (borrowed, not copied), or nothing
/// when the run printed nothing (no output row at all).
pub fn stored_output(capture: &jobctl_exec::Capture) -> Option<Vec<Segment<'_>>> {
    if capture.total_bytes() == 0 {
        return None;
    }
    Some(
        capture
            .pieces()
            .into_iter()
            .map(|piece| match piece {
                jobctl_exec::Piece::Data(stream, data) => Segment::Data(
                    match stream {
                        jobctl_exec::Stream::Stdout => Stream::Stdout,
                        jobctl_exec::Stream::Stderr => Stream::Stderr,
                        jobctl_exec::Stream::Merged => Stream::Merged,
                    },
                    data,
                ),
                jobctl_exec::Piece::Omitted(n) => Segment::Omitted(n),
            })
            .collect(),
    )
}
