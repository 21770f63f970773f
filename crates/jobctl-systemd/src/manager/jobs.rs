//! Job waiting: queueing start/stop/restart jobs in bounded batches and
//! following each to its JobRemoved signal, and following one start to the
//! invocation it began (`jobctl run`).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, stream};
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

use super::{JOB_BATCH, JobOp, MAX_IN_FLIGHT, Systemd, UnitProperties};
use crate::error::{Error, ErrorKind, Result};
use crate::proxy::ManagerProxy;

/// How one queued job ended: systemd's JobRemoved result ("done", "failed",
/// "canceled", "timeout", "dependency", "skipped"), or the error of the call
/// that should have queued it.
#[derive(Debug)]
pub struct JobOutcome {
    pub unit: String,
    pub op: JobOp,
    pub result: Result<String>,
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

impl Systemd {
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
