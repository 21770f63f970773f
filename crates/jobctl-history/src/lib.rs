//! jobctl's run history: one SQLite database per writer identity, written by
//! the run shim (`jobctl exec`) and read by `history`, `logs`, `list` and
//! `health`.
//!
//! - [`Store`] opens a database for the shim (create, migrate, write a run's
//!   start row and its completion) or for a reader (read-only).
//! - [`RunRecord`] is one run; [`Status`] and [`Trigger`] its classifications;
//!   [`verdict`] the rules that classify an attempt (status, retry).
//! - [`liveness`] proves that a `running` row's shim is gone, so readers show
//!   [`Status::Lost`] instead of `running` forever ([`RunRecord::effective_status`]).
//! - [`Retention`] keeps the history bounded, cheaply after every run and in
//!   full by `jobctl history prune`.
//! - [`output`] is the stored format of a run's captured output: the two
//!   streams interleaved in arrival order, with the middle of long outputs
//!   elided.
//! - [`locate`] finds every database a reader should merge (root reads the
//!   main database and every user's), and checks a user's database so that
//!   root never acts on a file that user chose ([`Store::open_located`]).
//! - [`Origin`] says who started a run when the shim cannot know (a "run
//!   now" from the web: trigger `web` and its actor), keyed by invocation id;
//!   readers join it with [`Store::apply_origins`].
//! - [`notify`] is the notification queue and the watch's incident state
//!   (`jobctl watch`, `jobctl notifications`).
//! - A row that cannot be decoded is skipped, never fails a listing:
//!   [`Store::take_bad_rows`] says which were.
//! - `testing` (feature `test-util`, for tests only) builds run records.
//!
//! The library prints nothing and reads no environment; times are microseconds
//! since the Unix epoch (UTC), passed in by the caller.

mod counts;
pub mod liveness;
pub mod locate;
pub mod notify;
mod origin;
pub mod output;
mod purge;
mod query;
mod record;
mod retention;
mod schema;
mod store;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod verdict;

pub use counts::{AttemptCount, StatusCounts};
pub use origin::{ACTOR_MAX_BYTES, ORIGINS_SINCE, Origin};
pub use query::{BadRow, JobSummary, Recorder, RunFilter, RunLookup, merge_newest_first};
pub use record::{
    OUTPUT_NOT_STORED, RunId, RunRecord, Source, Status, Trigger, Upstream, Usage, UsageSource,
    is_invocation_id,
};
pub use retention::{PruneReport, Retention};
pub use schema::{LATEST_VERSION, MIGRATIONS, Migration, NOTIFY_LATEST_VERSION, NOTIFY_MIGRATIONS};
pub use store::{OpenMode, READABLE_FROM, Store, UPSTREAM_WINDOW};

use std::path::PathBuf;

/// Everything that can go wrong with the history.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the history database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the history database {path}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the history database {path} has schema version {found}, newer than this jobctl understands ({supported}); upgrade jobctl"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "the history database {path} has schema version {found}, older than this jobctl's {supported}, and is opened read-only; run any `jobctl exec` or `jobctl history prune` to upgrade it"
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// Version 0 and no tables: a database whose first writer has not yet
    /// committed its schema (or crashed before it). No runs are recorded in
    /// it; readers take it as not there yet.
    #[error(
        "the history database {path} is being created (no schema yet): it holds no runs until its first run is recorded"
    )]
    BeingCreated { path: PathBuf },
    #[error("cannot sync the history log {path} to disk")]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("history database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored output of run {run} is malformed: {reason}")]
    BadOutput { run: RunId, reason: String },
    #[error("run id prefix \"{prefix}\" is ambiguous: it matches {count} runs; give more digits")]
    AmbiguousRunId { prefix: String, count: usize },
    #[error(
        "\"{0}\" is not a run id: a run id, or its start, is 4 to 16 hexadecimal digits, \
         the first of them 0 to 7"
    )]
    BadRunId(String),
    #[error("stored value is malformed: {0}")]
    BadValue(String),
    #[error("refused to open {path}: {reason}")]
    Refused { path: PathBuf, reason: String },
}

impl Error {
    /// The SQLite result code under this error, if any (e.g. to tell "disk
    /// full" from "locked" in a warning).
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        let source = match self {
            Error::Open { source, .. } => source,
            Error::Sqlite(source) => source,
            _ => return None,
        };
        source.sqlite_error_code()
    }

    /// Whether another connection's lock made this write give up (after
    /// waiting the busy timeout): trying again at once cannot help.
    pub fn is_busy(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

impl Error {
    /// Whether the database could not be opened for lack of permission (a
    /// non-root reader and a database that is not theirs).
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self.sqlite_code(),
            Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
