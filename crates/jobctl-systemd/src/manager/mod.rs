//! The systemd Manager over D-Bus: the few calls jobctl makes, each with a
//! method timeout, and bulk versions that respect the bus's limits. This
//! file holds the connection and the simple calls; `properties.rs` the bulk
//! reads of unit properties, `jobs.rs` queueing jobs and waiting for them.
//!
//! Limits this is designed around (docs/operations.md, field notes):
//! - dbus-daemon allows 128 pending replies per connection: bulk calls keep at
//!   most [`MAX_IN_FLIGHT`] requests outstanding.
//! - systemd 252 adds bus match rules per queued job and drops its own bus
//!   connection near 600 queued jobs: start/stop/restart run in batches of at
//!   most [`JOB_BATCH`] units, each batch waited for (JobRemoved) before the
//!   next is queued.
//! - One round trip costs ~0.14 ms, so a thousand sequential calls cost a
//!   noticeable fraction of a second: properties come from `ListUnitsByNames`,
//!   `ListUnitFilesByPatterns` and pipelined `GetAll`, never one call per property.

mod jobs;
mod properties;

use std::collections::HashMap;
use std::time::Duration;

use zbus::blocking::Connection;
use zbus::zvariant::OwnedObjectPath;

use crate::error::{Error, ErrorKind, Result};
use crate::proxy::{ManagerProxy, ManagerProxyBlocking, UnitStatus};

pub use jobs::{JobOutcome, StartOutcome, StartUntil};
pub use properties::{Property, UnitProperties};

/// Most requests outstanding on one connection (dbus-daemon allows 128).
pub const MAX_IN_FLIGHT: usize = 64;
/// Most jobs jobctl queues in systemd at once (systemd 252 fails near 600).
pub const JOB_BATCH: usize = 200;
/// Names per `ListUnitsByNames`/`ListUnitFilesByPatterns` call.
const NAMES_PER_CALL: usize = 1000;

/// Which bus to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bus {
    /// The system bus at its standard address (system manager).
    System,
    /// A bus at an explicit D-Bus address: the user's session bus
    /// (`unix:path=$XDG_RUNTIME_DIR/bus`, user manager), or a test peer.
    Address(String),
}

/// systemd's version, from the Manager's `Version` property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The release number (252 for "252.38-1~deb12u1" or "252 (252.38-1~deb12u1)").
    pub major: u32,
    /// The string as systemd reports it.
    pub full: String,
}

impl Version {
    pub fn parse(full: &str) -> Option<Version> {
        let digits: String = full
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        Some(Version {
            major: digits.parse().ok()?,
            full: full.to_string(),
        })
    }
}

/// A unit-file change reported by Enable/DisableUnitFiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// "symlink" or "unlink".
    pub kind: String,
    pub path: String,
    pub target: String,
}

/// The job operations jobctl queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOp {
    Start,
    Stop,
    Restart,
}

impl JobOp {
    pub fn method(self) -> &'static str {
        match self {
            JobOp::Start => "StartUnit",
            JobOp::Stop => "StopUnit",
            JobOp::Restart => "RestartUnit",
        }
    }
}

/// A connection to one systemd manager (system or user).
pub struct Systemd {
    conn: Connection,
    manager: ManagerProxyBlocking<'static>,
    timeout: Duration,
    /// systemd refuses a second Subscribe from the same connection.
    subscribed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Systemd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Systemd")
            .field("unique_name", &self.conn.unique_name())
            .finish()
    }
}

impl Systemd {
    /// Connects; every method call then fails after `timeout` rather than hang.
    pub fn connect(bus: &Bus, timeout: Duration) -> Result<Systemd> {
        let builder = match bus {
            Bus::System => zbus::blocking::connection::Builder::system(),
            Bus::Address(addr) => zbus::blocking::connection::Builder::address(addr.as_str()),
        }
        .map_err(|e| Error::from_zbus("connecting to the bus", e))?;
        let conn = builder
            .method_timeout(timeout)
            .build()
            .map_err(|e| Error::from_zbus(format!("connecting to {}", describe(bus)), e))?;
        Systemd::from_connection(conn, timeout)
    }

    /// Wraps an existing connection (tests use a peer-to-peer pair).
    pub fn from_connection(conn: Connection, timeout: Duration) -> Result<Systemd> {
        let manager = ManagerProxyBlocking::new(&conn)
            .map_err(|e| Error::from_zbus("creating the Manager proxy", e))?;
        Ok(Systemd {
            conn,
            manager,
            timeout,
            subscribed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn async_manager(&self) -> Result<ManagerProxy<'static>> {
        zbus::block_on(ManagerProxy::new(self.conn.inner()))
            .map_err(|e| Error::from_zbus("creating the Manager proxy", e))
    }

    /// systemd's version (`Version` property).
    pub fn version(&self) -> Result<Version> {
        let full = self
            .manager
            .version()
            .map_err(|e| Error::from_zbus("reading the Manager's Version", e))?;
        Version::parse(&full).ok_or_else(|| {
            Error::new(
                "reading the Manager's Version",
                ErrorKind::Protocol,
                format!("unexpected version {full:?}"),
            )
        })
    }

    /// `daemon-reload`: re-reads every unit file. Slow with many units (~1 s
    /// per 1,000 active timers): one per apply, none when nothing changed.
    pub fn reload(&self) -> Result<()> {
        self.manager
            .reload()
            .map_err(|e| Error::from_zbus("Reload", e))
    }

    /// The unit's object path, loading it from disk if needed.
    pub fn load_unit(&self, name: &str) -> Result<OwnedObjectPath> {
        self.manager
            .load_unit(name)
            .map_err(|e| Error::from_zbus(format!("LoadUnit {name}"), e))
    }

    /// The unit's object path if it is loaded (`NoSuchUnit` otherwise).
    pub fn get_unit(&self, name: &str) -> Result<OwnedObjectPath> {
        self.manager
            .get_unit(name)
            .map_err(|e| Error::from_zbus(format!("GetUnit {name}"), e))
    }

    /// Queues one job and returns its object path at once.
    pub fn queue(&self, op: JobOp, name: &str) -> Result<OwnedObjectPath> {
        let r = match op {
            JobOp::Start => self.manager.start_unit(name, "replace"),
            JobOp::Stop => self.manager.stop_unit(name, "replace"),
            JobOp::Restart => self.manager.restart_unit(name, "replace"),
        };
        r.map_err(|e| Error::from_zbus(format!("{} {name}", op.method()), e))
    }

    /// Enables unit files (creates their `[Install]` symlinks), replacing
    /// conflicting symlinks. Needs a `reload` afterwards to take effect.
    pub fn enable_unit_files(&self, files: &[String]) -> Result<Vec<FileChange>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        let (_carries_install_info, changes) = self
            .manager
            .enable_unit_files(&refs, false, true)
            .map_err(|e| {
            Error::from_zbus(format!("EnableUnitFiles ({} units)", files.len()), e)
        })?;
        Ok(changes.into_iter().map(change).collect())
    }

    /// Removes unit files' `[Install]` symlinks.
    pub fn disable_unit_files(&self, files: &[String]) -> Result<Vec<FileChange>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let refs: Vec<&str> = files.iter().map(String::as_str).collect();
        let changes = self.manager.disable_unit_files(&refs, false).map_err(|e| {
            Error::from_zbus(format!("DisableUnitFiles ({} units)", files.len()), e)
        })?;
        Ok(changes.into_iter().map(change).collect())
    }

    /// Forgets a unit's failed state. A unit systemd does not know is fine.
    pub fn reset_failed(&self, name: &str) -> Result<()> {
        match self.manager.reset_failed_unit(name) {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = Error::from_zbus(format!("ResetFailedUnit {name}"), e);
                if err.kind() == ErrorKind::NoSuchUnit {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Runtime state of many units in one call per thousand names (units not
    /// loaded come back with load state "not-found" or are loaded from disk).
    pub fn list_units_by_names(&self, names: &[String]) -> Result<Vec<UnitStatus>> {
        let mut out = Vec::with_capacity(names.len());
        for chunk in names.chunks(NAMES_PER_CALL) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            out.extend(
                self.manager
                    .list_units_by_names(&refs)
                    .map_err(|e| Error::from_zbus("ListUnitsByNames", e))?,
            );
        }
        Ok(out)
    }

    /// Unit files on disk matching the glob patterns, anywhere in systemd's
    /// search path: name → (path, enablement state such as "enabled",
    /// "disabled", "static", "masked", "linked").
    pub fn unit_files_by_patterns(
        &self,
        patterns: &[String],
    ) -> Result<HashMap<String, (String, String)>> {
        let mut out = HashMap::new();
        for chunk in patterns.chunks(NAMES_PER_CALL) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for (path, state) in self
                .manager
                .list_unit_files_by_patterns(&[], &refs)
                .map_err(|e| Error::from_zbus("ListUnitFilesByPatterns", e))?
            {
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                out.insert(name, (path, state));
            }
        }
        Ok(out)
    }

    /// The method timeout every call of this connection uses.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn change((kind, path, target): (String, String, String)) -> FileChange {
    FileChange { kind, path, target }
}

fn describe(bus: &Bus) -> String {
    match bus {
        Bus::System => "the system bus".to_string(),
        Bus::Address(a) => format!("the bus at {a}"),
    }
}
