//! Run records for tests: one builder instead of one per test file. Built
//! for this crate's own tests and, with the `test-util` feature, for the
//! tests of this crate's integration suite and of its users (a
//! dev-dependency); never in a release build.

use crate::liveness::{LivenessProbe, ProcessStamp};
use crate::record::{RunId, RunRecord, Status, Trigger};

/// The host of [`run`]'s records.
pub const HOST: &str = "h";

/// A run as the shim records it: `job` started by its timer at
/// `started_us` (first attempt, no invocation id, no output), as root (uid
/// 0) on [`HOST`], its command pid 42, its shim pid 1 on boot `b`; ended a
/// second later unless `status` is `running`; exit 0 for a success, 1 for a
/// failure, none otherwise. A test changes what it is about with struct
/// update syntax: `RunRecord { uid: 1000, ..run(id, "a", t, Status::Success) }`.
pub fn run(id: RunId, job: &str, started_us: i64, status: Status) -> RunRecord {
    RunRecord {
        id,
        job: job.to_string(),
        invocation_id: None,
        trigger: Trigger::Timer,
        actor: None,
        attempt: 1,
        host: HOST.into(),
        user: "root".into(),
        uid: 0,
        pid: Some(42),
        shim: ProcessStamp {
            boot_id: "b".into(),
            pid: 1,
            start_ticks: 1,
            pid_ns: 0,
        },
        started_us,
        ended_us: (status != Status::Running).then_some(started_us + 1_000_000),
        deadline_us: None,
        status,
        exit_code: match status {
            Status::Success => Some(0),
            Status::Failed => Some(1),
            _ => None,
        },
        signal: None,
        error: None,
        output_bytes: 0,
        output_truncated: false,
        usage: None,
        upstream: None,
    }
}

/// A run id made from `n`, spread over all 63 bits as the shim's random ids
/// are (distinct for distinct `n`).
pub fn spread_id(n: u64) -> RunId {
    RunId::from_random(n.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// This host's liveness probe, naming it [`HOST`]: the shims of [`run`]'s
/// records are checked by pid (pid 1 on another boot: gone).
pub fn probe() -> LivenessProbe {
    LivenessProbe::current(Some(HOST.into()))
}
