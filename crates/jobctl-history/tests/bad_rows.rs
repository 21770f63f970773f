//! A row that cannot be decoded is skipped and named, never fails a reader
//! (issue 10, item 3): a user's database is that user's to write, with any
//! value in any column, even a table rebuilt without jobctl's types.

use std::time::Duration;

use jobctl_history::testing::{probe, run};
use jobctl_history::{
    BadRow, OpenMode, Retention, RunFilter, RunId, RunLookup, RunRecord, Status, Store,
};

const T0: i64 = 1_800_000_000_000_000;

fn record(id: i64, job: &str, started: i64, status: Status) -> RunRecord {
    RunRecord {
        user: "u".into(),
        uid: 1000,
        ..run(RunId::from_i64(id), job, started, status)
    }
}

/// A database with runs 0x1001 (a, oldest) … 0x1003 (b, newest), and two
/// rows the shim would never write: 0x2001 (a, newer than all, trigger
/// `bogus-trigger`) and 0x2002 (b, status `exploded`).
fn seeded() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    for (id, job, at) in [(0x1001, "a", 1), (0x1002, "a", 2), (0x1003, "b", 3)] {
        store
            .finish_run(
                &record(id, job, T0 + at, Status::Success),
                None,
                &Retention::UNLIMITED,
                T0,
            )
            .unwrap();
    }
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO runs SELECT 8193, job, invocation_id, 'bogus-trigger', attempt, host, user, \
           uid, pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us + 100, ended_us, \
           deadline_us, status, exit_code, signal, error, output_bytes, output_truncated\
           , cpu_user_us, cpu_system_us, memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, upstream_run_id FROM runs WHERE id = 4097;
         INSERT INTO runs SELECT 8194, job, invocation_id, trigger, attempt, host, user, \
           uid, pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us + 100, ended_us, \
           deadline_us, 'exploded', exit_code, signal, error, output_bytes, output_truncated\
           , cpu_user_us, cpu_system_us, memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, upstream_run_id FROM runs WHERE id = 4099;",
    )
    .unwrap();
    (dir, path)
}

fn reader(path: &std::path::Path) -> Store {
    Store::open(path, OpenMode::Read, Duration::from_secs(1)).unwrap()
}

fn ids(runs: &[RunRecord]) -> Vec<i64> {
    runs.iter().map(|r| r.id.as_i64()).collect()
}

fn expected_bad() -> Vec<BadRow> {
    vec![
        BadRow {
            row_id: Some(8193),
            run: Some(RunId::from_i64(8193)),
            reason: "unknown trigger \"bogus-trigger\"".into(),
        },
        BadRow {
            row_id: Some(8194),
            run: Some(RunId::from_i64(8194)),
            reason: "unknown status \"exploded\"".into(),
        },
    ]
}

#[test]
fn listings_skip_undecodable_rows_and_name_them() {
    let (_dir, path) = seeded();
    let store = reader(&path);
    let runs = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(ids(&runs), [0x1003, 0x1002, 0x1001]);
    assert_eq!(store.take_bad_rows(), expected_bad());
    // Taken once.
    assert_eq!(store.take_bad_rows(), []);
    assert_eq!(
        expected_bad()[0].to_string(),
        "row id 8193 (run 0000000000002001): unknown trigger \"bogus-trigger\""
    );

    // A limit counts the runs shown, not the rows skipped.
    let one = RunFilter {
        limit: 1,
        ..RunFilter::default()
    };
    assert_eq!(ids(&store.runs(&one, &probe(), T0).unwrap()), [0x1003]);
    assert_eq!(store.take_bad_rows(), expected_bad());
    // Filtered by job, status and a job list too.
    let filter = RunFilter {
        jobs: Some(vec!["a".into()]),
        statuses: vec![Status::Success],
        ..RunFilter::default()
    };
    assert_eq!(
        ids(&store.runs(&filter, &probe(), T0).unwrap()),
        [0x1002, 0x1001]
    );
    assert_eq!(store.take_bad_rows(), expected_bad()[..1]);
}

#[test]
fn lookups_and_summaries_skip_undecodable_rows() {
    let (_dir, path) = seeded();
    let store = reader(&path);
    // The newest row of `a` is the bad one: the newest run shown is the next.
    let last = store
        .find_run(Some("a"), &RunLookup::Last, &probe(), T0)
        .unwrap()
        .unwrap();
    assert_eq!(last.id.as_i64(), 0x1002);
    let by_id = store
        .find_run(
            None,
            &RunLookup::Id("0000000000002001".into()),
            &probe(),
            T0,
        )
        .unwrap();
    assert_eq!(by_id, None);
    let summaries = store.job_summaries(None, &probe(), T0).unwrap();
    let last: Vec<(String, i64)> = summaries
        .iter()
        .map(|s| (s.job.clone(), s.last.id.as_i64()))
        .collect();
    assert_eq!(last, [("a".to_string(), 0x1002), ("b".to_string(), 0x1003)]);
    assert_eq!(store.take_bad_rows(), expected_bad());
}

#[test]
fn prune_leaves_an_undecodable_running_row_and_names_it() {
    let (_dir, path) = seeded();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("UPDATE runs SET status = 'running', trigger = 'x' WHERE id = 8193")
        .unwrap();
    let mut store = Store::open(&path, OpenMode::Maintain, Duration::from_secs(1)).unwrap();
    let report = store
        .prune(&Retention::default(), &probe(), T0 + 10)
        .unwrap();
    assert_eq!(report.marked_lost, 0);
    let bad = store.take_bad_rows();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].row_id, Some(8193));
}

#[test]
fn a_table_rebuilt_with_other_types_cannot_break_readers() {
    let (_dir, path) = seeded();
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The user's own `runs`: no STRICT, anything in any column.
    conn.execute_batch(
        "ALTER TABLE runs RENAME TO old_runs;
         CREATE TABLE runs AS SELECT * FROM old_runs;
         CREATE INDEX my_runs_by_job ON runs (job, started_us);
         UPDATE runs SET started_us = 'yesterday' WHERE id = 8194;
         INSERT INTO runs SELECT 8195, CAST(x'ff6a6f62' AS TEXT), invocation_id, trigger, attempt, \
           host, user, uid, pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us + 5, \
           ended_us, deadline_us, status, exit_code, signal, error, output_bytes, \
           output_truncated, cpu_user_us, cpu_system_us, memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, upstream_run_id FROM old_runs WHERE id = 4097;
         INSERT INTO runs SELECT 8196, x'00ff', invocation_id, trigger, attempt, \
           host, user, uid, pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us + 6, \
           ended_us, deadline_us, status, exit_code, signal, error, output_bytes, \
           output_truncated, cpu_user_us, cpu_system_us, memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, upstream_run_id FROM old_runs WHERE id = 4097;
         INSERT INTO runs SELECT 8197, job, invocation_id, trigger, attempt, \
           host, user, NULL, pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us + 7, \
           ended_us, deadline_us, status, exit_code, signal, error, output_bytes, \
           output_truncated, cpu_user_us, cpu_system_us, memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, upstream_run_id FROM old_runs WHERE id = 4097;",
    )
    .unwrap();
    drop(conn);
    let store = reader(&path);
    let runs = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(ids(&runs), [0x1003, 0x1002, 0x1001]);
    // Named by rowid (here no longer the run id) and run id.
    let bad: Vec<(Option<i64>, Option<i64>)> = store
        .take_bad_rows()
        .iter()
        .map(|b| (b.row_id, b.run.map(RunId::as_i64)))
        .collect();
    assert_eq!(
        bad,
        [
            (Some(4), Some(8193)),
            (Some(5), Some(8194)),
            (Some(6), Some(8195)),
            (Some(7), Some(8196)),
            (Some(8), Some(8197))
        ]
    );
    // Job names that are not text or not UTF-8 are stepped over.
    assert_eq!(store.jobs().unwrap(), ["a", "b"]);
    let summaries = store.job_summaries(None, &probe(), T0).unwrap();
    assert_eq!(summaries.len(), 2);
}

/// Root's readers take from a user's database only that user's jobs, and
/// count the rest for their warning.
#[test]
fn a_job_list_filters_and_the_rest_is_counted() {
    let (_dir, path) = seeded();
    let store = reader(&path);
    let only_b = RunFilter {
        jobs: Some(vec!["b".into()]),
        ..RunFilter::default()
    };
    assert_eq!(ids(&store.runs(&only_b, &probe(), T0).unwrap()), [0x1003]);
    // Runs of `a`: two decodable, one not (counted all the same: they are
    // left out either way).
    assert_eq!(store.count_untrusted_runs(&only_b).unwrap(), 3);
    let none = RunFilter {
        jobs: Some(Vec::new()),
        ..RunFilter::default()
    };
    assert_eq!(store.runs(&none, &probe(), T0).unwrap(), []);
    assert_eq!(store.count_untrusted_runs(&none).unwrap(), 5);
    // With a job and a time window.
    let a_since = RunFilter {
        job: Some("a".into()),
        since_us: Some(T0 + 2),
        ..none.clone()
    };
    assert_eq!(store.count_untrusted_runs(&a_since).unwrap(), 2);
    let b_only = RunFilter {
        job: Some("b".into()),
        ..only_b.clone()
    };
    assert_eq!(store.count_untrusted_runs(&b_only).unwrap(), 0);
    // No list: nothing is left out.
    assert_eq!(
        store.count_untrusted_runs(&RunFilter::default()).unwrap(),
        0
    );
}

/// The usage and upstream columns (issue 13) are a user's to write too:
/// anything jobctl would not have written makes the row a bad row, named,
/// and the others stay readable.
#[test]
fn usage_and_upstream_values_jobctl_never_writes_are_bad_rows() {
    let (_dir, path) = seeded();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DELETE FROM runs WHERE id IN (8193, 8194);")
        .unwrap();
    let cases: [(i64, &str, &str); 6] = [
        (
            0x3001,
            "cpu_user_us = -1, cpu_system_us = 0, memory_peak_bytes = 0, read_bytes = 0, \
             written_bytes = 0, usage_source = 'rusage'",
            "its usage figures are not non-negative integers",
        ),
        (
            0x3002,
            "cpu_user_us = 1, cpu_system_us = 0, memory_peak_bytes = 0, read_bytes = 0, \
             written_bytes = 0, usage_source = 'procfs'",
            "its usage source is not one jobctl writes",
        ),
        (
            0x3003,
            "cpu_user_us = 1, usage_source = 'rusage'",
            "its usage figures are incomplete",
        ),
        (
            0x3004,
            "cpu_user_us = 1",
            "its usage figures have no source",
        ),
        (
            0x3005,
            "upstream_invocation_id = 'x'';rm -rf /'",
            "its upstream invocation id is not systemd's (32 hex digits)",
        ),
        (
            0x3006,
            "upstream_run_id = 5",
            "its upstream run id has no invocation id",
        ),
    ];
    for (id, set, _) in &cases {
        conn.execute_batch(&format!(
            "INSERT INTO runs SELECT {id}, job, invocation_id, trigger, attempt, host, user, \
               uid, pid, shim_pid, shim_start_ticks, boot_id, pid_ns, started_us + {id}, \
               ended_us, deadline_us, status, exit_code, signal, error, output_bytes, \
               output_truncated, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
               FROM runs WHERE id = 4097;
             UPDATE runs SET {set} WHERE id = {id};"
        ))
        .unwrap_or_else(|e| panic!("{set}: {e}"));
    }
    drop(conn);
    let store = reader(&path);
    let runs = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(ids(&runs), [0x1003, 0x1002, 0x1001]);
    let bad: Vec<(Option<i64>, String)> = store
        .take_bad_rows()
        .into_iter()
        .map(|b| (b.row_id, b.reason))
        .collect();
    let expected: Vec<(Option<i64>, String)> = cases
        .iter()
        .map(|(id, _, why)| (Some(*id), why.to_string()))
        .collect();
    assert_eq!(bad, expected);
}
