//! The systemd Manager over D-Bus: the few calls jobctl makes, each with a
//! method timeout, and bulk versions that respect the bus's limits.
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

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, stream};
use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use crate::error::{Error, ErrorKind, Result};
use crate::proxy::{ManagerProxy, ManagerProxyBlocking, UnitStatus};

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

/// How one queued job ended: systemd's JobRemoved result ("done", "failed",
/// "canceled", "timeout", "dependency", "skipped"), or the error of the call
/// that should have queued it.
#[derive(Debug)]
pub struct JobOutcome {
    pub unit: String,
    pub op: JobOp,
    pub result: Result<String>,
}

/// Unit, timer and service properties jobctl reads, from one `GetAll`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitProperties {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub unit_file_state: String,
    pub fragment_path: String,
    /// The current or last invocation, hex (empty before the first).
    pub invocation_id: String,
    pub active_enter_usec: u64,
    pub inactive_enter_usec: u64,
    /// Timers: the next elapse on the realtime clock, µs since the epoch (0 = none).
    pub next_elapse_realtime_usec: u64,
    /// Timers: the next elapse on the monotonic clock (0 = none).
    pub next_elapse_monotonic_usec: u64,
    /// Timers: the last time it triggered, µs since the epoch (0 = never).
    pub last_trigger_usec: u64,
    /// Timers and services: "success", "exit-code", "signal", "timeout", …
    pub result: String,
    /// Services: the main process's exit code or signal (see `exec_main_code`).
    pub exec_main_status: i32,
    /// Services: CLD_EXITED (1), CLD_KILLED (2), CLD_DUMPED (3); 0 = no exit yet.
    pub exec_main_code: i32,
    pub exec_main_start_usec: u64,
    pub exec_main_exit_usec: u64,
    pub main_pid: u32,
    /// Why the unit did not load (`LoadError`: D-Bus error name and
    /// systemd's message; empty when it loaded).
    pub load_error_name: String,
    pub load_error: String,
    /// Whether the unit's conditions held at their last check (`true`
    /// before any check).
    pub condition_result: bool,
    /// Whether its asserts held at their last check.
    pub assert_result: bool,
    /// The conditions that failed at the last check, as written in the unit
    /// (`ConditionPathExists=/srv/ready`).
    pub failed_conditions: Vec<String>,
}

impl UnitProperties {
    fn from_map(name: &str, map: &HashMap<String, OwnedValue>) -> UnitProperties {
        let s = |key: &str| -> String {
            map.get(key)
                .and_then(|v| String::try_from(v.try_clone().ok()?).ok())
                .unwrap_or_default()
        };
        let t = |key: &str| -> u64 {
            map.get(key)
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0)
        };
        let i = |key: &str| -> i32 {
            map.get(key)
                .and_then(|v| i32::try_from(v).ok())
                .unwrap_or(0)
        };
        let u = |key: &str| -> u32 {
            map.get(key)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(0)
        };
        let invocation_id = map
            .get("InvocationID")
            .and_then(|v| Vec::<u8>::try_from(v.try_clone().ok()?).ok())
            .map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default();
        let b = |key: &str| -> bool {
            map.get(key)
                .and_then(|v| bool::try_from(v).ok())
                .unwrap_or(true)
        };
        let (load_error_name, load_error) = map
            .get("LoadError")
            .and_then(|v| <(String, String)>::try_from(v.try_clone().ok()?).ok())
            .unwrap_or_default();
        // Conditions: a(sbbsi) = type, trigger, negate, parameter, state
        // (state < 0: failed at the last check).
        let failed_conditions = map
            .get("Conditions")
            .and_then(|v| {
                Vec::<(String, bool, bool, String, i32)>::try_from(v.try_clone().ok()?).ok()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, _, _, _, state)| *state < 0)
            .map(|(kind, trigger, negate, param, _)| {
                format!(
                    "{kind}={}{}{param}",
                    if trigger { "|" } else { "" },
                    if negate { "!" } else { "" }
                )
            })
            .collect();
        UnitProperties {
            name: name.to_string(),
            load_state: s("LoadState"),
            active_state: s("ActiveState"),
            sub_state: s("SubState"),
            unit_file_state: s("UnitFileState"),
            fragment_path: s("FragmentPath"),
            invocation_id,
            active_enter_usec: t("ActiveEnterTimestamp"),
            inactive_enter_usec: t("InactiveEnterTimestamp"),
            next_elapse_realtime_usec: t("NextElapseUSecRealtime"),
            next_elapse_monotonic_usec: t("NextElapseUSecMonotonic"),
            last_trigger_usec: t("LastTriggerUSec"),
            result: s("Result"),
            exec_main_status: i("ExecMainStatus"),
            exec_main_code: i("ExecMainCode"),
            exec_main_start_usec: t("ExecMainStartTimestamp"),
            exec_main_exit_usec: t("ExecMainExitTimestamp"),
            main_pid: u("MainPID"),
            load_error_name,
            load_error,
            condition_result: b("ConditionResult"),
            assert_result: b("AssertResult"),
            failed_conditions,
        }
    }
}

/// What one start did, as systemd tells it ([`Systemd::start_tracked`]).
#[derive(Debug)]
pub struct StartOutcome {
    /// The unit's invocation before the start ("" before its first run).
    pub previous_invocation: String,
    /// The invocation this start began, when one began.
    pub invocation: Option<String>,
    /// How the start job ended (JobRemoved: "done", "failed", "dependency",
    /// "canceled", "assert", …); `None` when the call returned as soon as
    /// the run began, or when systemd refused to queue the job.
    pub job_result: Option<String>,
    /// systemd refused the `StartUnit` call itself (masked, not loaded, a
    /// conflicting transaction): its error. Nothing was queued.
    pub refused: Option<Error>,
    /// The unit's properties at the end (after the run with
    /// [`StartUntil::Ended`]).
    pub props: UnitProperties,
    /// A newer invocation than the one this start began had already begun
    /// when the properties were read: they describe that one, not ours.
    pub superseded: bool,
    /// systemd merged this start into the start job the unit already had
    /// (another caller's, or its timer's): that job's run is not this
    /// call's. Returned at once, without waiting for that job.
    pub merged: bool,
}

/// How long [`Systemd::start_tracked`] follows a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartUntil {
    /// Until the run begins (or systemd gives up on the start).
    Began,
    /// Until the start job ends: for a oneshot service, the end of the run.
    Ended,
}

/// The Timer and Service properties `list` needs, read straight out of a
/// `GetAll` reply: unknown keys are skipped without being materialised
/// (a Service's GetAll carries ~200 properties).
#[derive(Debug, Default, zbus::zvariant::DeserializeDict, zbus::zvariant::Type)]
#[zvariant(signature = "a{sv}", rename_all = "PascalCase")]
struct Selected {
    result: Option<String>,
    #[zvariant(rename = "NextElapseUSecRealtime")]
    next_elapse_usec_realtime: Option<u64>,
    #[zvariant(rename = "NextElapseUSecMonotonic")]
    next_elapse_usec_monotonic: Option<u64>,
    #[zvariant(rename = "LastTriggerUSec")]
    last_trigger_usec: Option<u64>,
    exec_main_status: Option<i32>,
    exec_main_code: Option<i32>,
    exec_main_start_timestamp: Option<u64>,
    exec_main_exit_timestamp: Option<u64>,
    #[zvariant(rename = "MainPID")]
    main_pid: Option<u32>,
}

impl Selected {
    fn into_map(self) -> HashMap<String, OwnedValue> {
        let mut m = HashMap::new();
        let mut put = |k: &str, v: Option<OwnedValue>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put(
            "Result",
            self.result
                .and_then(|v| OwnedValue::try_from(zbus::zvariant::Value::from(v)).ok()),
        );
        put(
            "NextElapseUSecRealtime",
            self.next_elapse_usec_realtime.map(OwnedValue::from),
        );
        put(
            "NextElapseUSecMonotonic",
            self.next_elapse_usec_monotonic.map(OwnedValue::from),
        );
        put(
            "LastTriggerUSec",
            self.last_trigger_usec.map(OwnedValue::from),
        );
        put(
            "ExecMainStatus",
            self.exec_main_status.map(OwnedValue::from),
        );
        put("ExecMainCode", self.exec_main_code.map(OwnedValue::from));
        put(
            "ExecMainStartTimestamp",
            self.exec_main_start_timestamp.map(OwnedValue::from),
        );
        put(
            "ExecMainExitTimestamp",
            self.exec_main_exit_timestamp.map(OwnedValue::from),
        );
        put("MainPID", self.main_pid.map(OwnedValue::from));
        m
    }
}

/// The Service properties `list` reads (the exit status is for `status`,
/// which reads one unit whole).
const SERVICE_PROPS: &[&str] = &["Result", "ExecMainStartTimestamp", "ExecMainExitTimestamp"];

/// What to read of one unit object.
#[derive(Debug, Clone, Copy)]
enum Fetch {
    /// Every interface (`GetAll("")`).
    All,
    /// One interface (`GetAll(iface)`).
    Interface(&'static str),
    /// One property (`Get`).
    Property(&'static str, &'static str),
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

    /// All properties of one unit (every interface), in one call. Reading
    /// every interface includes `UnitFileState`, which systemd 252 computes
    /// by scanning the unit folders: fine for one unit, never for a thousand
    /// (see [`Systemd::bulk_properties`]).
    pub fn properties(&self, name: &str) -> Result<UnitProperties> {
        let path = self.load_unit(name)?;
        let mut raw = self.bulk_raw(&[(name.to_string(), path, Fetch::All)])?;
        let map = raw.pop().ok_or_else(|| {
            Error::new(format!("GetAll {name}"), ErrorKind::Protocol, "no reply")
        })??;
        Ok(UnitProperties::from_map(name, &map))
    }

    /// Properties of many units (paths from [`Systemd::list_units_by_names`]),
    /// pipelined with at most [`MAX_IN_FLIGHT`] calls outstanding: a timer's
    /// Timer interface (one small GetAll), a service's last-run properties
    /// (a few Gets; `detailed` adds the exit status and `InvocationID`).
    /// Never whole property sets: the Unit interface's `UnitFileState` costs
    /// systemd 252 a scan of the unit folders per unit (half a minute for
    /// 1,000 jobs), and a Service's GetAll carries ~200 properties.
    pub fn bulk_properties(
        &self,
        units: &[(String, OwnedObjectPath)],
        detailed: bool,
    ) -> Result<Vec<Result<UnitProperties>>> {
        let mut calls = Vec::new();
        for (name, path) in units {
            if name.ends_with(".timer") {
                calls.push((
                    name.clone(),
                    path.clone(),
                    Fetch::Interface("org.freedesktop.systemd1.Timer"),
                ));
            } else if name.ends_with(".service") {
                // A few small Gets: a Service's GetAll reply carries ~200
                // properties that systemd must serialize and we must skip.
                for prop in SERVICE_PROPS {
                    calls.push((
                        name.clone(),
                        path.clone(),
                        Fetch::Property("org.freedesktop.systemd1.Service", prop),
                    ));
                }
                if detailed {
                    for prop in ["ExecMainStatus", "ExecMainCode"] {
                        calls.push((
                            name.clone(),
                            path.clone(),
                            Fetch::Property("org.freedesktop.systemd1.Service", prop),
                        ));
                    }
                    calls.push((
                        name.clone(),
                        path.clone(),
                        Fetch::Property("org.freedesktop.systemd1.Unit", "InvocationID"),
                    ));
                }
            } else {
                calls.push((name.clone(), path.clone(), Fetch::All));
            }
        }
        let raw = self.bulk_raw(&calls)?;
        let mut merged: Vec<(String, Result<HashMap<String, OwnedValue>>)> = Vec::new();
        for ((name, _, _), r) in calls.iter().zip(raw) {
            match merged.last_mut() {
                Some((last, acc)) if last == name => {
                    if let (Ok(acc), Ok(map)) = (acc.as_mut(), r) {
                        acc.extend(map);
                    }
                }
                _ => merged.push((name.clone(), r)),
            }
        }
        Ok(merged
            .into_iter()
            .map(|(name, r)| r.map(|map| UnitProperties::from_map(&name, &map)))
            .collect())
    }

    /// A few named properties of each unit (`(interface, property)` pairs),
    /// pipelined like [`Systemd::bulk_properties`]: for the handful of units
    /// that need more than their load and active state (a failed service's
    /// `Result`, a unit's `LoadError`).
    pub fn selected_properties(
        &self,
        units: &[(String, OwnedObjectPath)],
        props: &[(&'static str, &'static str)],
    ) -> Result<Vec<Result<UnitProperties>>> {
        let calls: Vec<_> = units
            .iter()
            .flat_map(|(name, path)| {
                props
                    .iter()
                    .map(|(iface, prop)| (name.clone(), path.clone(), Fetch::Property(iface, prop)))
            })
            .collect();
        let raw = self.bulk_raw(&calls)?;
        let mut out = Vec::with_capacity(units.len());
        let mut raw = raw.into_iter();
        for (name, _) in units {
            let mut map = HashMap::new();
            let mut error = None;
            for r in raw.by_ref().take(props.len()) {
                match r {
                    Ok(m) => map.extend(m),
                    Err(e) => error = Some(e),
                }
            }
            out.push(match error {
                Some(e) => Err(e),
                None => Ok(UnitProperties::from_map(name, &map)),
            });
        }
        Ok(out)
    }

    /// Sends every call and collects the replies, in order, with at most
    /// [`MAX_IN_FLIGHT`] outstanding. The calls go out as raw messages and
    /// the replies come back through one message stream, matched by serial:
    /// zbus's own `call_method` registers every call and arms a timer for
    /// its method timeout (an eventfd write and a timerfd update each), which
    /// for a thousand small reads cost more than the reads. One deadline
    /// covers the whole batch instead.
    fn bulk_raw(
        &self,
        calls: &[(String, OwnedObjectPath, Fetch)],
    ) -> Result<Vec<Result<HashMap<String, OwnedValue>>>> {
        use std::num::NonZeroU32;
        use zbus::message::{Message, Type};

        let conn = self.conn.inner().clone();
        let deadline = Instant::now() + self.timeout;
        zbus::block_on(async move {
            let fail = |e: zbus::Error| Error::from_zbus("reading unit properties", e);
            // Subscribed before the first call goes out: no reply is missed.
            let mut replies = zbus::MessageStream::from(&conn);
            let mut timer = async_io::Timer::at(deadline);
            let mut results: Vec<Option<Result<HashMap<String, OwnedValue>>>> =
                (0..calls.len()).map(|_| None).collect();
            let mut pending: HashMap<NonZeroU32, usize> = HashMap::new();
            let mut next = 0;
            let mut done = 0;
            while done < calls.len() {
                while next < calls.len() && pending.len() < MAX_IN_FLIGHT {
                    let (_, path, fetch) = &calls[next];
                    let builder = Message::method_call(
                        path.as_ref(),
                        if matches!(fetch, Fetch::Property(..)) {
                            "Get"
                        } else {
                            "GetAll"
                        },
                    )
                    .and_then(|b| b.destination("org.freedesktop.systemd1"))
                    .and_then(|b| b.interface("org.freedesktop.DBus.Properties"))
                    .map_err(fail)?;
                    let msg = match fetch {
                        Fetch::Property(iface, prop) => builder.build(&(*iface, *prop)),
                        Fetch::Interface(iface) => builder.build(&(*iface,)),
                        // An empty interface name asks sd-bus for the
                        // properties of every interface of the object.
                        Fetch::All => builder.build(&("",)),
                    }
                    .map_err(fail)?;
                    pending.insert(msg.primary_header().serial_num(), next);
                    conn.send(&msg).await.map_err(fail)?;
                    next += 1;
                }
                let reply = match futures_util::future::select(replies.next(), &mut timer).await {
                    futures_util::future::Either::Left((Some(reply), _)) => reply.map_err(fail)?,
                    futures_util::future::Either::Left((None, _)) => {
                        return Err(fail(zbus::Error::InputOutput(std::sync::Arc::new(
                            std::io::Error::new(
                                std::io::ErrorKind::ConnectionAborted,
                                "the bus connection closed",
                            ),
                        ))));
                    }
                    futures_util::future::Either::Right(_) => {
                        return Err(Error::new(
                            "reading unit properties",
                            ErrorKind::Timeout,
                            format!(
                                "systemd answered {done} of {} calls in {:?}",
                                calls.len(),
                                self.timeout
                            ),
                        ));
                    }
                };
                if !matches!(reply.message_type(), Type::MethodReturn | Type::Error) {
                    continue;
                }
                let Some(index) = reply
                    .header()
                    .reply_serial()
                    .and_then(|serial| pending.remove(&serial))
                else {
                    continue;
                };
                let (name, _, fetch) = &calls[index];
                let op = || format!("reading properties of {name}");
                let value = if reply.message_type() == Type::Error {
                    Err(Error::from_zbus(op(), zbus::Error::from(reply)))
                } else {
                    let body = reply.body();
                    match fetch {
                        Fetch::Property(_, prop) => body
                            .deserialize::<OwnedValue>()
                            .map(|value| HashMap::from([(prop.to_string(), value)]))
                            .map_err(|e| Error::from_zbus(op(), e)),
                        Fetch::Interface(_) => body
                            .deserialize::<Selected>()
                            .map(Selected::into_map)
                            .map_err(|e| Error::from_zbus(op(), e)),
                        Fetch::All => body.deserialize().map_err(|e| Error::from_zbus(op(), e)),
                    }
                };
                results[index] = Some(value);
                done += 1;
            }
            Ok(results
                .into_iter()
                .map(|r| r.expect("every call answered"))
                .collect())
        })
    }

    /// Queues `op` for every unit and waits until systemd has finished each
    /// job (its JobRemoved signal), in batches of at most [`JOB_BATCH`] queued
    /// jobs with at most [`MAX_IN_FLIGHT`] calls outstanding. Stops queueing
    /// after the first batch that had a failed call (the caller reports what
    /// was done); `deadline_per_batch` bounds the wait for each batch.
    pub fn run_jobs(
        &self,
        op: JobOp,
        units: &[String],
        deadline_per_batch: Duration,
    ) -> Result<Vec<JobOutcome>> {
        if units.is_empty() {
            return Ok(Vec::new());
        }
        let manager = self.async_manager()?;
        zbus::block_on(async {
            // Subscribe and open the signal stream before queueing anything,
            // so no JobRemoved can be missed.
            let mut removed = manager
                .receive_job_removed()
                .await
                .map_err(|e| Error::from_zbus("subscribing to JobRemoved", e))?;
            self.subscribe(&manager).await?;
            let mut outcomes = Vec::with_capacity(units.len());
            let mut finished: HashMap<OwnedObjectPath, String> = HashMap::new();
            for batch in units.chunks(JOB_BATCH) {
                let calls = stream::iter(batch.iter().cloned())
                    .map(|unit| {
                        let manager = manager.clone();
                        async move {
                            let r = match op {
                                JobOp::Start => manager.start_unit(&unit, "replace").await,
                                JobOp::Stop => manager.stop_unit(&unit, "replace").await,
                                JobOp::Restart => manager.restart_unit(&unit, "replace").await,
                            };
                            (unit, r)
                        }
                    })
                    .buffered(MAX_IN_FLIGHT)
                    .collect::<Vec<(String, zbus::Result<OwnedObjectPath>)>>();
                // Drain JobRemoved while the calls are in flight: zbus queues
                // a bounded number of signals per stream and stops reading
                // the socket (replies included) when that queue is full.
                let mut calls = std::pin::pin!(calls);
                let queued = loop {
                    match futures_util::future::select(calls.as_mut(), removed.next()).await {
                        futures_util::future::Either::Left((queued, _)) => break queued,
                        futures_util::future::Either::Right((Some(signal), _)) => {
                            if let Ok(args) = signal.args() {
                                finished.insert(
                                    OwnedObjectPath::from(args.job().clone()),
                                    args.result().to_string(),
                                );
                            }
                        }
                        futures_util::future::Either::Right((None, _)) => {
                            return Err(Error::new(
                                format!("waiting for {} jobs", op.method()),
                                ErrorKind::Disconnected,
                                "the bus connection closed",
                            ));
                        }
                    }
                };
                let mut waiting: HashSet<OwnedObjectPath> = queued
                    .iter()
                    .filter_map(|(_, r)| r.as_ref().ok().cloned())
                    .collect();
                waiting.retain(|p| !finished.contains_key(p));
                let deadline = Instant::now() + deadline_per_batch;
                while !waiting.is_empty() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let next = futures_util::future::select(
                        removed.next(),
                        Box::pin(async_io_timer(left)),
                    )
                    .await;
                    match next {
                        futures_util::future::Either::Left((Some(signal), _)) => {
                            if let Ok(args) = signal.args() {
                                let path = OwnedObjectPath::from(args.job().clone());
                                waiting.remove(&path);
                                finished.insert(path, args.result().to_string());
                            }
                        }
                        futures_util::future::Either::Left((None, _)) => {
                            return Err(Error::new(
                                format!("waiting for {} jobs", op.method()),
                                ErrorKind::Disconnected,
                                "the bus connection closed",
                            ));
                        }
                        futures_util::future::Either::Right(_) => break,
                    }
                }
                let mut failed_call = false;
                for (unit, r) in queued {
                    let result = match r {
                        Ok(path) => match finished.get(&path) {
                            Some(result) => Ok(result.clone()),
                            None => Err(Error::new(
                                format!("{} {unit}", op.method()),
                                ErrorKind::Timeout,
                                format!("the job did not finish within {deadline_per_batch:?}"),
                            )),
                        },
                        Err(e) => {
                            failed_call = true;
                            Err(Error::from_zbus(format!("{} {unit}", op.method()), e))
                        }
                    };
                    outcomes.push(JobOutcome { unit, op, result });
                }
                if failed_call {
                    break;
                }
            }
            Ok(outcomes)
        })
    }

    /// Starts `unit` and follows that start: which invocation it began, if
    /// any, and (with [`StartUntil::Ended`]) how its job ended. A start can
    /// end without a run: systemd refuses it at its start limit, skips it for
    /// an unmet condition, fails it for a failed dependency; then the unit's
    /// `InvocationID` still names the previous run, and so does every
    /// property of its last run. So a run counts as begun only when the unit
    /// shows an invocation other than the one it had right before the start.
    ///
    /// `began` is called with the new invocation id as soon as it is seen
    /// (a `PropertiesChanged` of the unit, or the properties read at the
    /// end). The unit is pinned (`Unit.Ref`) for the duration, so systemd
    /// cannot garbage-collect it (and its exit status) before the read.
    pub fn start_tracked(
        &self,
        unit: &str,
        until: StartUntil,
        began: &mut dyn FnMut(&str),
    ) -> Result<StartOutcome> {
        let path = self.load_unit(unit)?;
        self.unit_call(&path, unit, "Ref")?;
        let result = self.start_tracked_pinned(unit, &path, until, began);
        // Best effort: the reference also ends with this connection.
        let _ = self.unit_call(&path, unit, "Unref");
        result
    }

    fn unit_call(&self, path: &OwnedObjectPath, unit: &str, method: &str) -> Result<()> {
        self.conn
            .call_method(
                Some("org.freedesktop.systemd1"),
                path.as_ref(),
                Some("org.freedesktop.systemd1.Unit"),
                method,
                &(),
            )
            .map(|_| ())
            .map_err(|e| Error::from_zbus(format!("{method} {unit}"), e))
    }

    fn start_tracked_pinned(
        &self,
        unit: &str,
        path: &OwnedObjectPath,
        until: StartUntil,
        began: &mut dyn FnMut(&str),
    ) -> Result<StartOutcome> {
        let manager = self.async_manager()?;
        let conn = self.conn.inner().clone();
        let closed = || {
            Error::new(
                format!("waiting for {unit}"),
                ErrorKind::Disconnected,
                "the bus connection closed",
            )
        };
        let mut merged = false;
        let (previous_invocation, invocation, job_result, refused) = zbus::block_on(async {
            // Every signal stream is open before the start, so nothing about
            // it can be missed.
            let mut removed = manager
                .receive_job_removed()
                .await
                .map_err(|e| Error::from_zbus("subscribing to JobRemoved", e))?;
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .sender("org.freedesktop.systemd1")
                .and_then(|b| b.interface("org.freedesktop.DBus.Properties"))
                .and_then(|b| b.member("PropertiesChanged"))
                .and_then(|b| b.path(path.as_str()))
                .map_err(|e| Error::from_zbus("subscribing to PropertiesChanged", e))?
                .build();
            let mut changed = zbus::MessageStream::for_match_rule(rule, &conn, Some(64))
                .await
                .map_err(|e| Error::from_zbus("subscribing to PropertiesChanged", e))?;
            self.subscribe(&manager).await?;
            let previous = invocation_of(&conn, path, unit).await?;
            // systemd answers a start of a unit that already has a start job
            // with that job (job_install merges them).
            let queued = job_of(&conn, path, unit).await?;
            let job = match manager.start_unit(unit, "replace").await {
                Ok(job) => job,
                Err(e) => {
                    let err = Error::from_zbus(format!("StartUnit {unit}"), e);
                    return Ok((previous, None, None, Some(err)));
                }
            };
            if queued.as_ref() == Some(&job) {
                merged = true;
                return Ok((previous, None, None, None));
            }
            let mut invocation: Option<String> = None;
            loop {
                match futures_util::future::select(removed.next(), changed.next()).await {
                    futures_util::future::Either::Left((Some(signal), _)) => {
                        if let Ok(args) = signal.args()
                            && args.job().as_str() == job.as_str()
                        {
                            let result = args.result().to_string();
                            return Ok((previous, invocation, Some(result), None));
                        }
                    }
                    futures_util::future::Either::Right((Some(_), _)) if invocation.is_none() => {
                        let now = invocation_of(&conn, path, unit).await?;
                        if !now.is_empty() && now != previous {
                            began(&now);
                            invocation = Some(now);
                            if until == StartUntil::Began {
                                return Ok((previous, invocation, None, None));
                            }
                        }
                    }
                    futures_util::future::Either::Right((Some(_), _)) => {}
                    futures_util::future::Either::Left((None, _))
                    | futures_util::future::Either::Right((None, _)) => return Err(closed()),
                }
            }
        })?;
        let props = self.properties(unit)?;
        let mut invocation = invocation;
        let mut superseded = false;
        match &invocation {
            // The run began and ended between two signals we read: its id is
            // the unit's now.
            None if refused.is_none()
                && !merged
                && !props.invocation_id.is_empty()
                && props.invocation_id != previous_invocation =>
            {
                began(&props.invocation_id);
                invocation = Some(props.invocation_id.clone());
            }
            Some(ours) if until == StartUntil::Ended && *ours != props.invocation_id => {
                superseded = true;
            }
            _ => {}
        }
        Ok(StartOutcome {
            previous_invocation,
            invocation,
            job_result,
            refused,
            props,
            superseded,
            merged,
        })
    }

    /// Asks systemd to send job signals to this connection (once).
    async fn subscribe(&self, manager: &ManagerProxy<'static>) -> Result<()> {
        use std::sync::atomic::Ordering;
        if self.subscribed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match manager.subscribe().await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = Error::from_zbus("Subscribe", e);
                if err.dbus_name.as_deref() == Some("org.freedesktop.systemd1.AlreadySubscribed") {
                    Ok(())
                } else {
                    self.subscribed.store(false, Ordering::SeqCst);
                    Err(err)
                }
            }
        }
    }

    /// The method timeout every call of this connection uses.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The unit's `InvocationID`, hex ("" before its first run).
async fn invocation_of(
    conn: &zbus::Connection,
    path: &OwnedObjectPath,
    unit: &str,
) -> Result<String> {
    let op = || format!("reading the InvocationID of {unit}");
    let reply = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            path.as_ref(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.systemd1.Unit", "InvocationID"),
        )
        .await
        .map_err(|e| Error::from_zbus(op(), e))?;
    let value: OwnedValue = reply
        .body()
        .deserialize()
        .map_err(|e| Error::from_zbus(op(), e))?;
    let bytes = Vec::<u8>::try_from(value).map_err(|e| Error::from_zbus(op(), e.into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The unit's installed job (its `Job` property), `None` without one.
async fn job_of(
    conn: &zbus::Connection,
    path: &OwnedObjectPath,
    unit: &str,
) -> Result<Option<OwnedObjectPath>> {
    let op = || format!("reading the Job of {unit}");
    let reply = conn
        .call_method(
            Some("org.freedesktop.systemd1"),
            path.as_ref(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.systemd1.Unit", "Job"),
        )
        .await
        .map_err(|e| Error::from_zbus(op(), e))?;
    let value: OwnedValue = reply
        .body()
        .deserialize()
        .map_err(|e| Error::from_zbus(op(), e))?;
    let (id, job) =
        <(u32, OwnedObjectPath)>::try_from(value).map_err(|e| Error::from_zbus(op(), e.into()))?;
    Ok((id != 0).then_some(job))
}

/// Completes after `d`, on the async-io reactor that also drives zbus.
async fn async_io_timer(d: Duration) {
    async_io::Timer::after(d).await;
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
