//! The adapter against a fake systemd Manager served over a peer-to-peer
//! D-Bus connection (a UnixStream pair): version parsing, job batching and
//! JobRemoved tracking, error-name mapping. The commands are tested against
//! the real systemd in tests/systemd_e2e.rs.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use jobctl_systemd::{ErrorKind, JOB_BATCH, JobOp, Property, Systemd};
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

type Builder = zbus::blocking::connection::Builder<'static>;

/// A client connected to a fake systemd served on the other end of a
/// socket pair; `serve` adds its objects.
fn connect(
    serve: impl FnOnce(Builder) -> zbus::Result<Builder> + Send + 'static,
) -> (Systemd, zbus::blocking::Connection) {
    let (a, b) = UnixStream::pair().unwrap();
    let guid = zbus::Guid::generate();
    let server = std::thread::spawn(move || {
        let builder = Builder::unix_stream(a).server(guid).unwrap().p2p();
        serve(builder).unwrap().build().unwrap()
    });
    let client = Builder::unix_stream(b)
        .p2p()
        .method_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let server = server.join().unwrap();
    (
        Systemd::from_connection(client, Duration::from_secs(10)).unwrap(),
        server,
    )
}

fn fake_manager() -> (FakeManager, Arc<Stats>) {
    let stats = Arc::new(Stats::default());
    let fake = FakeManager {
        next_job: AtomicU32::new(1),
        stats: stats.clone(),
    };
    (fake, stats)
}

fn pair() -> (Systemd, Arc<Stats>, zbus::blocking::Connection) {
    let (fake, stats) = fake_manager();
    let (sd, server) = connect(move |b| b.serve_at("/org/freedesktop/systemd1", fake));
    (sd, stats, server)
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

/// A service unit's Service interface: the properties `list` reads one by
/// one; `fail_start` makes the second of them fail, as a unit that vanished
/// between two Gets (or a refused one) does.
struct FakeService {
    fail_start: bool,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Service")]
impl FakeService {
    #[zbus(property)]
    fn result(&self) -> String {
        "exit-code".into()
    }

    #[zbus(property)]
    fn exec_main_start_timestamp(&self) -> zbus::fdo::Result<u64> {
        if self.fail_start {
            Err(zbus::fdo::Error::UnknownObject("gone".into()))
        } else {
            Ok(5_000_000)
        }
    }

    #[zbus(property)]
    fn exec_main_exit_timestamp(&self) -> u64 {
        7_000_000
    }

    #[zbus(property)]
    fn exec_main_status(&self) -> i32 {
        3
    }

    #[zbus(property)]
    fn exec_main_code(&self) -> i32 {
        1
    }
}

/// A timer unit's Timer interface, read whole (one GetAll).
struct FakeTimer;

#[zbus::interface(name = "org.freedesktop.systemd1.Timer")]
impl FakeTimer {
    #[zbus(property, name = "NextElapseUSecRealtime")]
    fn next_elapse_usec_realtime(&self) -> u64 {
        1_800_000_000_000_000
    }

    #[zbus(property, name = "NextElapseUSecMonotonic")]
    fn next_elapse_usec_monotonic(&self) -> u64 {
        0
    }

    #[zbus(property, name = "LastTriggerUSec")]
    fn last_trigger_usec(&self) -> u64 {
        1_700_000_000_000_000
    }

    #[zbus(property)]
    fn result(&self) -> String {
        "success".into()
    }

    #[zbus(property)]
    fn unit(&self) -> String {
        "ok.service".into()
    }
}

/// A unit's Unit interface, for `selected_properties`.
struct FakeUnit;

#[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
impl FakeUnit {
    #[zbus(property)]
    fn load_error(&self) -> (String, String) {
        (
            "org.freedesktop.systemd1.BadUnitSetting".into(),
            "Unit has a bad unit file setting.".into(),
        )
    }

    #[zbus(property, name = "InvocationID")]
    fn invocation_id(&self) -> Vec<u8> {
        vec![0xab, 0x01]
    }
}

fn unit_path(name: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(format!("/org/freedesktop/systemd1/unit/{name}")).unwrap()
}

/// The fake Manager plus unit objects: `ok_2eservice` (whose Unit interface
/// answers too), `bad_2eservice` (one Get fails), `t_2etimer`.
fn units_pair() -> (Systemd, zbus::blocking::Connection) {
    let (fake, _) = fake_manager();
    connect(move |b| {
        b.serve_at("/org/freedesktop/systemd1", fake)?
            .serve_at(unit_path("ok_2eservice"), FakeService { fail_start: false })?
            .serve_at(unit_path("ok_2eservice"), FakeUnit)?
            .serve_at(unit_path("bad_2eservice"), FakeService { fail_start: true })?
            .serve_at(unit_path("t_2etimer"), FakeTimer)
    })
}

#[test]
fn bulk_properties_decode_each_unit_and_keep_every_error() {
    let (sd, _server) = units_pair();
    let units: Vec<(String, OwnedObjectPath)> = ["ok.service", "bad.service", "t.timer"]
        .into_iter()
        .map(|n| (n.to_string(), unit_path(&n.replace('.', "_2e"))))
        .collect();
    for detailed in [false, true] {
        let props = sd.bulk_properties(&units, detailed).unwrap();
        assert_eq!(props.len(), 3);
        let ok = props[0].as_ref().unwrap();
        assert_eq!(ok.name, "ok.service");
        assert_eq!(ok.result, "exit-code");
        assert_eq!(ok.exec_main_start_usec, 5_000_000);
        assert_eq!(ok.exec_main_exit_usec, 7_000_000);
        if detailed {
            assert_eq!((ok.exec_main_status, ok.exec_main_code), (3, 1));
            assert_eq!(ok.invocation_id, "ab01");
        } else {
            assert_eq!((ok.exec_main_status, ok.exec_main_code), (0, 0));
        }
        // The second of its Gets failed: the unit is an error, not a unit
        // with empty fields.
        let bad = props[1].as_ref().map(|p| p.clone()).unwrap_err();
        assert!(
            bad.to_string().contains("bad.service"),
            "{bad}: detailed {detailed}"
        );
        let timer = props[2].as_ref().unwrap();
        assert_eq!(timer.name, "t.timer");
        assert_eq!(timer.next_elapse_realtime_usec, 1_800_000_000_000_000);
        assert_eq!(timer.last_trigger_usec, 1_700_000_000_000_000);
        assert_eq!(timer.result, "success");
    }
}

#[test]
fn selected_properties_read_a_few_named_ones() {
    let (sd, _server) = units_pair();
    let units = vec![
        ("ok.service".to_string(), unit_path("ok_2eservice")),
        ("bad.service".to_string(), unit_path("bad_2eservice")),
    ];
    let props = sd
        .selected_properties(&units, &[Property::LoadError, Property::Result])
        .unwrap();
    let ok = props[0].as_ref().unwrap();
    assert_eq!(
        ok.load_error_name,
        "org.freedesktop.systemd1.BadUnitSetting"
    );
    assert_eq!(ok.load_error, "Unit has a bad unit file setting.");
    assert_eq!(ok.result, "exit-code");
    // bad.service has no Unit interface here: its LoadError Get fails.
    assert!(props[1].is_err());
}
