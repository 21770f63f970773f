//! jobctl's systemd adapter.
//!
//! - [`Systemd`]: the Manager over D-Bus (zbus, blocking API, a method
//!   timeout on every call), with bulk calls bounded by the bus's limits.
//! - [`UnitDir`]: reads the unit files jobctl owns in a folder passed in, and
//!   writes and removes them atomically (temp file, fsync, rename, fsync the
//!   folder).
//!
//! Errors are typed ([`Error`], [`ErrorKind`]); the binary turns them into
//! operator messages and hints. Nothing here prints.

mod error;
mod manager;
mod proxy;
mod unitdir;

pub use error::{Error, ErrorKind, Result, kind_of_dbus_name};
pub use manager::{
    Bus, FileChange, JOB_BATCH, JobOp, JobOutcome, MAX_IN_FLIGHT, Property, StartOutcome,
    StartUntil, Systemd, UnitProperties, Version,
};
pub use proxy::UnitStatus;
pub use unitdir::{Partial, UnitDir, UnitFileOnDisk};
