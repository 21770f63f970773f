//! The adapter against a fake systemd Manager served over a peer-to-peer
//! D-Bus connection (a UnixStream pair): version parsing, job batching and
//! JobRemoved tracking, error-name mapping, and the bulk property reader
//! against fake unit objects. The commands are tested against the real
//! systemd in tests/systemd_e2e/.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use jobctl_systemd::{ErrorKind, JOB_BATCH, JobOp, Systemd, UnitProperties};
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

#[derive(Default)]
struct Stats {
    started: AtomicUsize,
    subscribed: AtomicUsize,
}

struct FakeManager {
    next_job: AtomicU32,
    stats: Arc<Stats>,
}

#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum SdError {
    NoSuchUnit(String),
    AlreadySubscribed(String),
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeManager {
    #[zbus(property)]
    fn version(&self) -> String {
        "252 (252.38-1~deb12u1)".into()
    }

    async fn start_unit(
        &self,
        name: String,
        _mode: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedObjectPath, zbus::fdo::Error> {
        if name.starts_with("missing") {
            return Err(zbus::fdo::Error::Failed(format!("no {name}")));
        }
        if name.starts_with("denied") {
            return Err(zbus::fdo::Error::AccessDenied("not root".into()));
        }
        self.stats.started.fetch_add(1, Ordering::SeqCst);
        let id = self.next_job.fetch_add(1, Ordering::SeqCst);
        let path =
            OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/job/{id}")).unwrap();
        let result = if name.starts_with("bad") {
            "failed"
        } else {
            "done"
        };
        // systemd may emit JobRemoved before the caller sees the reply.
        FakeManager::job_removed(&emitter, id, path.as_ref(), &name, result)
            .await
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        Ok(path)
    }

    async fn subscribe(&self) -> Result<(), SdError> {
        if self.stats.subscribed.fetch_add(1, Ordering::SeqCst) > 0 {
            return Err(SdError::AlreadySubscribed(
                "Client is already subscribed.".into(),
            ));
        }
        Ok(())
    }

    async fn reset_failed_unit(&self, name: String) -> Result<(), SdError> {
        Err(SdError::NoSuchUnit(format!("Unit {name} not loaded.")))
    }

    async fn enable_unit_files(
        &self,
        _files: Vec<String>,
        _runtime: bool,
        _force: bool,
    ) -> Result<(bool, Vec<(String, String, String)>), zbus::fdo::Error> {
        Err(zbus::fdo::Error::AccessDenied("Access denied".into()))
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// A unit's `org.freedesktop.systemd1.Unit` interface (what the bulk reader
/// asks of it).
struct FakeUnit {
    invocation: Vec<u8>,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl FakeUnit {
    #[zbus(property, name = "InvocationID")]
    fn invocation_id(&self) -> Vec<u8> {
        self.invocation.clone()
    }

    #[zbus(property)]
    fn active_state(&self) -> String {
        "inactive".into()
    }
}

/// A service's `org.freedesktop.systemd1.Service` interface; `exit: None`
/// makes reading `ExecMainExitTimestamp` fail, as a `Get` can.
struct FakeService {
    result: &'static str,
    start: u64,
    exit: Option<u64>,
    status: i32,
    code: i32,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Service")]
impl FakeService {
    #[zbus(property)]
    fn result(&self) -> String {
        self.result.into()
    }

    #[zbus(property)]
    fn exec_main_start_timestamp(&self) -> u64 {
        self.start
    }

    #[zbus(property)]
    fn exec_main_exit_timestamp(&self) -> zbus::fdo::Result<u64> {
        self.exit
            .ok_or_else(|| zbus::fdo::Error::Failed("the property cannot be read".into()))
    }

    #[zbus(property)]
    fn exec_main_status(&self) -> i32 {
        self.status
    }

    #[zbus(property)]
    fn exec_main_code(&self) -> i32 {
        self.code
    }

    #[zbus(property, name = "MainPID")]
    fn main_pid(&self) -> u32 {
        0
    }
}

/// A timer's `org.freedesktop.systemd1.Timer` interface, with a property the
/// reader does not ask for.
struct FakeTimer {
    next_realtime: u64,
    last_trigger: u64,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Timer")]
impl FakeTimer {
    #[zbus(property, name = "NextElapseUSecRealtime")]
    fn next_elapse_usec_realtime(&self) -> u64 {
        self.next_realtime
    }

    #[zbus(property, name = "NextElapseUSecMonotonic")]
    fn next_elapse_usec_monotonic(&self) -> u64 {
        0
    }

    #[zbus(property, name = "LastTriggerUSec")]
    fn last_trigger_usec(&self) -> u64 {
        self.last_trigger
    }

    #[zbus(property)]
    fn result(&self) -> String {
        "success".into()
    }

    #[zbus(property)]
    fn unit(&self) -> String {
        "backup.service".into()
    }
}

/// The object path systemd gives a unit (`.` escaped as `_2e`, `-` as `_2d`).
fn unit_path(unit: &str) -> OwnedObjectPath {
    let escaped: String = unit
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("_{b:02x}")
            }
        })
        .collect();
    OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/unit/{escaped}")).unwrap()
}

const STARTED: u64 = 1_767_225_600_000_000;
const INVOCATION: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];

/// A peer serving the fake Manager and three units: `backup.timer`,
/// `backup.service` (its last run failed with exit code 3), and
/// `broken.service`, whose `ExecMainExitTimestamp` cannot be read.
fn pair_with_units() -> (Systemd, zbus::blocking::Connection) {
    let (sd, _, server) = pair();
    {
        let objects = server.object_server();
        objects
            .at(
                unit_path("backup.timer"),
                FakeTimer {
                    next_realtime: STARTED + 86_400_000_000,
                    last_trigger: STARTED,
                },
            )
            .unwrap();
        for (unit, exit) in [
            ("backup.service", Some(STARTED + 5_000_000)),
            ("broken.service", None),
        ] {
            objects
                .at(
                    unit_path(unit),
                    FakeService {
                        result: "exit-code",
                        start: STARTED,
                        exit,
                        status: 3,
                        code: 1,
                    },
                )
                .unwrap();
            objects
                .at(
                    unit_path(unit),
                    FakeUnit {
                        invocation: INVOCATION.to_vec(),
                    },
                )
                .unwrap();
        }
    }
    (sd, server)
}

/// `bulk_properties` of units of [`pair_with_units`].
fn bulk_read(names: &[&str], detailed: bool) -> Vec<jobctl_systemd::Result<UnitProperties>> {
    let (sd, _server) = pair_with_units();
    sd.bulk_properties(&units(names), detailed).unwrap()
}

fn units(names: &[&str]) -> Vec<(String, OwnedObjectPath)> {
    names
        .iter()
        .map(|n| (n.to_string(), unit_path(n)))
        .collect()
}

fn pair() -> (Systemd, Arc<Stats>, zbus::blocking::Connection) {
    let (a, b) = UnixStream::pair().unwrap();
    let stats = Arc::new(Stats::default());
    let guid = zbus::Guid::generate();
    let fake = FakeManager {
        next_job: AtomicU32::new(1),
        stats: stats.clone(),
    };
    let server = std::thread::spawn(move || {
        zbus::blocking::connection::Builder::unix_stream(a)
            .server(guid)
            .unwrap()
            .p2p()
            .serve_at("/org/freedesktop/systemd1", fake)
            .unwrap()
            .build()
            .unwrap()
    });
    let client = zbus::blocking::connection::Builder::unix_stream(b)
        .p2p()
        .method_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let server = server.join().unwrap();
    (
        Systemd::from_connection(client, Duration::from_secs(10)).unwrap(),
        stats,
        server,
    )
}

#[test]
fn reads_the_version() {
    let (sd, _, _server) = pair();
    let v = sd.version().unwrap();
    assert_eq!(v.major, 252);
    assert_eq!(v.full, "252 (252.38-1~deb12u1)");
}

#[test]
fn starts_many_units_in_bounded_batches_and_tracks_every_job() {
    let (sd, stats, _server) = pair();
    let units: Vec<String> = (0..JOB_BATCH * 2 + 50)
        .map(|i| format!("u{i}.timer"))
        .collect();
    let outcomes = sd
        .run_jobs(JobOp::Start, &units, Duration::from_secs(10))
        .unwrap();
    let errors: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err())
        .take(3)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(outcomes.len(), units.len());
    assert!(
        outcomes
            .iter()
            .all(|o| o.result.as_deref().ok() == Some("done"))
    );
    assert_eq!(stats.started.load(Ordering::SeqCst), units.len());
    // A second batch of calls on the same connection does not subscribe twice.
    let again = sd
        .run_jobs(JobOp::Start, &units[..3], Duration::from_secs(10))
        .unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(stats.subscribed.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failed_job_and_a_refused_call_are_reported_per_unit_and_stop_the_batches() {
    let (sd, stats, _server) = pair();
    let mut units: Vec<String> = vec!["bad.timer".into(), "denied.timer".into()];
    units.extend((0..JOB_BATCH * 2).map(|i| format!("u{i}.timer")));
    let outcomes = sd
        .run_jobs(JobOp::Start, &units, Duration::from_secs(10))
        .unwrap();
    // The first batch ran; the batches after a refused call were not queued.
    assert_eq!(outcomes.len(), JOB_BATCH);
    assert_eq!(outcomes[0].result.as_deref().ok(), Some("failed"));
    let denied = outcomes[1].result.as_ref().unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::PermissionDenied, "{denied}");
    assert!(
        denied.to_string().contains("StartUnit denied.timer"),
        "{denied}"
    );
    assert_eq!(stats.started.load(Ordering::SeqCst), JOB_BATCH - 1);
}

#[test]
fn dbus_error_names_become_kinds() {
    let (sd, _, _server) = pair();
    // NoSuchUnit on reset-failed means there is nothing to reset.
    sd.reset_failed("gone.service").unwrap();
    let err = sd.enable_unit_files(&["x.timer".to_string()]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        err.dbus_name.as_deref(),
        Some("org.freedesktop.DBus.Error.AccessDenied")
    );
    // A method the fake does not implement.
    let err = sd.reload().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other, "{err}");
}

#[test]
fn bulk_reads_decode_timers_and_services() {
    let read: Vec<UnitProperties> = bulk_read(&["backup.timer", "backup.service"], true)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        read,
        [
            UnitProperties {
                name: "backup.timer".into(),
                next_elapse_realtime_usec: STARTED + 86_400_000_000,
                last_trigger_usec: STARTED,
                result: "success".into(),
                condition_result: true,
                assert_result: true,
                ..UnitProperties::default()
            },
            UnitProperties {
                name: "backup.service".into(),
                result: "exit-code".into(),
                exec_main_start_usec: STARTED,
                exec_main_exit_usec: STARTED + 5_000_000,
                exec_main_status: 3,
                exec_main_code: 1,
                invocation_id: "0123456789abcdeffedcba9876543210".into(),
                condition_result: true,
                assert_result: true,
                ..UnitProperties::default()
            },
        ]
    );
    // Without `detailed`, a service's exit status and invocation are not read.
    let brief = bulk_read(&["backup.service"], false).remove(0).unwrap();
    assert_eq!(
        (
            brief.exec_main_status,
            brief.exec_main_code,
            brief.invocation_id.as_str()
        ),
        (0, 0, "")
    );
    assert_eq!(brief.exec_main_exit_usec, STARTED + 5_000_000);
}

#[test]
fn bulk_reads_report_a_unit_that_cannot_be_read() {
    // No object at all: every read of the unit fails.
    let read = bulk_read(&["gone.service", "backup.timer"], true);
    assert!(read[0].is_err(), "{:?}", read[0]);
    assert!(read[1].is_ok(), "{:?}", read[1]);
}

/// A unit one of whose reads fails after others succeeded is an error, not
/// a unit with empty fields. Fails until manager.rs stops dropping the
/// errors of a unit's later `Get`s (issue 12; fixed on another branch).
#[test]
#[ignore = "fails until manager.rs reports a unit's later Get errors (issue 12, another branch)"]
fn bulk_reads_report_an_error_in_any_of_a_units_reads() {
    for detailed in [false, true] {
        let read = bulk_read(&["broken.service", "backup.service"], detailed);
        let error = read[0]
            .as_ref()
            .expect_err("broken.service must not come back as read");
        assert!(
            error.to_string().contains("broken.service")
                && error.to_string().contains("the property cannot be read"),
            "{error}"
        );
        assert!(read[1].is_ok(), "{:?}", read[1]);
    }
    // The selected reader already reports it.
    let (sd, _server) = pair_with_units();
    let read = sd
        .selected_properties(
            &units(&["broken.service"]),
            &[
                ("org.freedesktop.systemd1.Service", "Result"),
                ("org.freedesktop.systemd1.Service", "ExecMainExitTimestamp"),
            ],
        )
        .unwrap();
    assert!(read[0].is_err(), "{:?}", read[0]);
}
