//! Run and delivery counters that survive retention (`jobctl metrics`'
//! `jobctl_job_runs_total` and `jobctl_notifications_total`): pruning,
//! the shim's own retention and a purge leave them as they were (or, for a
//! purge, remove the job's), a database from before migration 3 is still
//! counted, and in a user's database only what the user's shim could have
//! written counts.

use std::collections::BTreeMap;
use std::time::Duration;

use jobctl_history::notify::{AttemptRecord, NewEvent, Outcome};
use jobctl_history::testing::{probe, run};
use jobctl_history::{
    MIGRATIONS, OpenMode, Recorder, Retention, RunId, RunRecord, Status, StatusCounts, Store,
};

const T0: i64 = 1_800_000_000_000_000;
const SEC: i64 = 1_000_000;
const REAL: i64 = 0x5a5a_0000_0000_0000;

fn record(n: i64, job: &str, started: i64, status: Status) -> RunRecord {
    run(RunId::from_i64(REAL + n), job, started, status)
}

fn counts(path: &std::path::Path, jobs: &[&str]) -> BTreeMap<String, StatusCounts> {
    let reader = Store::open(path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    let jobs: Vec<String> = jobs.iter().map(|j| j.to_string()).collect();
    reader
        .run_counts(&jobs, &probe(), T0 + 1000 * SEC)
        .unwrap()
        .into_iter()
        .collect()
}

fn expect(rows: &[(&str, &[(Status, u64)])]) -> BTreeMap<String, StatusCounts> {
    rows.iter()
        .map(|(job, c)| (job.to_string(), c.iter().copied().collect()))
        .collect()
}

/// Six runs of `a` (4 successes, 2 failures, one of them a timeout) and
/// two of `b`, plus a running row of `a` whose shim is gone (another boot).
fn seeded() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    let statuses = [
        Status::Success,
        Status::Failed,
        Status::Success,
        Status::Timeout,
        Status::Success,
        Status::Success,
    ];
    for (i, status) in statuses.into_iter().enumerate() {
        let run = record(i as i64, "a", T0 + i as i64 * 10 * SEC, status);
        store
            .finish_run(&run, None, &Retention::UNLIMITED, T0)
            .unwrap();
    }
    for i in 0..2 {
        let run = record(100 + i, "b", T0 + i * 10 * SEC, Status::Success);
        store
            .finish_run(&run, None, &Retention::UNLIMITED, T0)
            .unwrap();
    }
    let mut gone = record(200, "a", T0 + 100 * SEC, Status::Running);
    gone.shim.boot_id = "another boot".into();
    store.begin_run(&gone).unwrap();
    (dir, path)
}

#[test]
fn counts_are_finished_runs_by_effective_status() {
    let (_dir, path) = seeded();
    assert_eq!(
        counts(&path, &["a", "b", "c"]),
        expect(&[
            (
                "a",
                &[
                    (Status::Success, 4),
                    (Status::Failed, 1),
                    (Status::Timeout, 1),
                    (Status::Lost, 1)
                ]
            ),
            ("b", &[(Status::Success, 2)]),
        ])
    );
    // Only the jobs asked for.
    assert_eq!(
        counts(&path, &["b"]),
        expect(&[("b", &[(Status::Success, 2)])])
    );
}

#[test]
fn pruning_leaves_the_counters_unchanged() {
    let (_dir, path) = seeded();
    let before = counts(&path, &["a", "b"]);
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    let report = store
        .prune(
            &Retention {
                keep_runs: Some(1),
                keep_age_us: None,
                max_output: None,
            },
            &probe(),
            T0 + 1000 * SEC,
        )
        .unwrap();
    assert!(report.runs_over_count >= 6, "{report:?}");
    drop(store);
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    let kept = reader
        .runs(&Default::default(), &probe(), T0 + 1000 * SEC)
        .unwrap();
    assert_eq!(kept.len(), 2, "one run of each job is kept");
    assert_eq!(counts(&path, &["a", "b"]), before);
    // Age-based pruning, which also reaches the lost running row, too.
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    store
        .prune(
            &Retention {
                keep_runs: None,
                keep_age_us: Some(1),
                max_output: None,
            },
            &probe(),
            T0 + 1000 * SEC,
        )
        .unwrap();
    drop(store);
    assert_eq!(counts(&path, &["a", "b"]), before);
}

#[test]
fn the_shims_own_retention_keeps_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    let keep_two = Retention {
        keep_runs: Some(2),
        keep_age_us: None,
        max_output: None,
    };
    for i in 0..5 {
        let status = if i == 0 {
            Status::Failed
        } else {
            Status::Success
        };
        store
            .finish_run(&record(i, "a", T0 + i * SEC, status), None, &keep_two, T0)
            .unwrap();
    }
    drop(store);
    assert_eq!(
        counts(&path, &["a"]),
        expect(&[("a", &[(Status::Success, 4), (Status::Failed, 1)])])
    );
}

#[test]
fn a_purge_removes_the_jobs_counters_only() {
    let (_dir, path) = seeded();
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    store
        .prune(
            &Retention {
                keep_runs: Some(1),
                keep_age_us: None,
                max_output: None,
            },
            &probe(),
            T0 + 1000 * SEC,
        )
        .unwrap();
    store.purge_job("a").unwrap();
    drop(store);
    assert_eq!(
        counts(&path, &["a", "b"]),
        expect(&[("b", &[(Status::Success, 2)])])
    );
}

#[test]
fn a_database_from_before_the_counters_is_counted_by_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(MIGRATIONS[0].sql).unwrap();
    conn.execute_batch(MIGRATIONS[1].sql).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 2;
         INSERT INTO runs (id, job, invocation_id, trigger, attempt, host, user, uid, pid, \
           shim_pid, shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, \
           status, exit_code, signal, error, output_bytes, output_truncated) \
         VALUES (6510615555426900570, 'old', NULL, 'timer', 1, 'h', 'root', 0, 42, 1, 1, 'b', 0, \
           1800000000000000, 1800000001000000, NULL, 'failed', 1, NULL, NULL, 0, 0);",
    )
    .unwrap();
    drop(conn);
    assert_eq!(
        counts(&path, &["old"]),
        expect(&[("old", &[(Status::Failed, 1)])])
    );
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 2, "readers never migrate");
}

#[test]
fn in_a_users_database_only_what_their_shim_could_write_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    let mine = |n: i64, status| {
        let mut r = record(n, "m", T0 + n * SEC, status);
        r.user = "mallory".into();
        r.uid = 1001;
        r
    };
    let mut rows = vec![mine(1, Status::Success), mine(2, Status::Failed)];
    // Forged: as root, another uid, in the far future, a small id; for
    // success and failure alike.
    for status in [Status::Success, Status::Failed] {
        let mut as_root = mine(10, status);
        as_root.id = RunId::from_i64(REAL + 10 + status as i64);
        as_root.user = "root".into();
        let mut other_uid = mine(20, status);
        other_uid.id = RunId::from_i64(REAL + 20 + status as i64);
        other_uid.uid = 0;
        let mut future = mine(30, status);
        future.id = RunId::from_i64(REAL + 30 + status as i64);
        future.started_us = 7_000_000_000_000_000;
        let mut small = mine(40, status);
        small.id = RunId::from_i64(40 + status as i64);
        rows.extend([as_root, other_uid, future, small]);
    }
    for r in &rows {
        store
            .finish_run(r, None, &Retention::UNLIMITED, T0)
            .unwrap();
    }
    // Pruned counts are the user's to write: negative and unknown ones
    // are ignored.
    store.prune(&Retention::UNLIMITED, &probe(), T0).unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO pruned_runs VALUES ('m', 'failed', -5), ('m', 'bogus', 9), ('m', 'killed', 2)",
    )
    .unwrap();
    drop(conn);
    let mut reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    reader.only_recorded_by(Recorder {
        users: vec!["mallory".into()],
        uid: 1001,
        dynamic_uids: None,
        latest_start_us: T0 + 86_400 * SEC,
    });
    let got: BTreeMap<String, StatusCounts> = reader
        .run_counts(&["m".to_string()], &probe(), T0 + 1000 * SEC)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        got,
        expect(&[(
            "m",
            &[
                (Status::Success, 1),
                (Status::Failed, 1),
                (Status::Killed, 2)
            ]
        )])
    );
}

#[test]
fn pruning_notifications_leaves_the_delivery_counters_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.db");
    let mut store = Store::open_notify(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    let event = |id: &str, created| NewEvent {
        id: id.into(),
        job: "a".into(),
        kind: "failure".into(),
        created_us: created,
        run_id: None,
        summary: "a FAILED".into(),
        payload: "{}".into(),
        channels: vec!["ops".into()],
    };
    let attempt = |id: &str, at, ok| AttemptRecord {
        event_id: id.into(),
        channel: "ops".into(),
        at_us: at,
        ok,
        retryable: !ok,
        http_status: None,
        exit_status: Some(i32::from(!ok)),
        detail: "x".into(),
        duration_ms: 1,
    };
    store
        .commit_pass(&[], &[event("old", 10), event("new", 100)])
        .unwrap();
    store
        .record_attempt(&attempt("old", 11, false), Outcome::Retry { next_us: 12 })
        .unwrap();
    store
        .record_attempt(&attempt("old", 12, true), Outcome::Sent)
        .unwrap();
    store
        .record_attempt(&attempt("new", 101, false), Outcome::GivenUp)
        .unwrap();
    let before = store.attempt_counts().unwrap();
    let summary: Vec<(String, bool, u64)> = before
        .iter()
        .map(|c| (c.channel.clone(), c.ok, c.attempts))
        .collect();
    assert_eq!(
        summary,
        [("ops".to_string(), false, 2), ("ops".to_string(), true, 1)]
    );
    assert_eq!(store.prune_notifications(50).unwrap(), 1);
    assert_eq!(store.attempt_counts().unwrap(), before);
}

#[test]
fn the_counts_read_the_unsuccessful_runs_from_their_index_alone() {
    let (_dir, path) = seeded();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let plan = |sql: &str| -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let grouped = plan(
        "SELECT job, status, count(*) FROM runs WHERE status <> 'success' \
         AND started_us >= -9223372036854775807 GROUP BY job, status",
    );
    assert!(
        grouped.contains("COVERING INDEX runs_unsuccessful"),
        "{grouped}"
    );
    let per_job = plan("SELECT count(*) FROM runs WHERE job = 'a'");
    assert!(per_job.contains("COVERING INDEX runs_by_job"), "{per_job}");
}
