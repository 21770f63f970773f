//! The history store against real SQLite files: migrations and the schema,
//! writing and reading runs, lost-run resolution, retention, and that the read
//! paths use their indexes.

use std::time::Duration;

use jobctl_history::liveness::ProcessStamp;
use jobctl_history::output::{Segment, Stream, decode};
use jobctl_history::testing::{probe, run, spread_id};
use jobctl_history::{
    LATEST_VERSION, MIGRATIONS, OpenMode, Retention, RunFilter, RunId, RunLookup, RunRecord,
    Source, Status, Store, Trigger, Upstream, Usage, UsageSource,
};

const T0: i64 = 1_800_000_000_000_000;
const SEC: i64 = 1_000_000;

/// A record with an id made from `n` (spread over all digits, as real
/// random ids are).
fn record(n: u64, job: &str, started: i64, status: Status) -> RunRecord {
    run(spread_id(n), job, started, status)
}

fn open(path: &std::path::Path) -> Store {
    Store::open(path, OpenMode::Write, Duration::from_secs(5)).unwrap()
}

#[test]
fn migrations_build_the_expected_schema_on_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let store = open(&path);
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    assert_eq!(LATEST_VERSION, MIGRATIONS.len() as i64);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut stmt = conn
        .prepare("SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap();
    let objects: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expected = [
        ("index", "runs_by_job", "runs"),
        ("index", "runs_by_start", "runs"),
        ("index", "runs_unsuccessful", "runs"),
        ("table", "origins", "origins"),
        ("table", "outputs", "outputs"),
        ("table", "pruned_runs", "pruned_runs"),
        ("table", "runs", "runs"),
        ("table", "totals", "totals"),
        ("trigger", "outputs_added", "outputs"),
        ("trigger", "outputs_removed", "outputs"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(objects, expected);
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('runs') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        columns.join(","),
        "id,job,invocation_id,trigger,attempt,host,user,uid,pid,shim_pid,shim_start_ticks,\
         boot_id,pid_ns,started_us,ended_us,deadline_us,status,exit_code,signal,error,\
         output_bytes,output_truncated,cpu_user_us,cpu_system_us,memory_peak_bytes,read_bytes,\
         written_bytes,usage_source,upstream_invocation_id,upstream_run_id"
    );
    // Reopening is a no-op, and a reader sees the same version.
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    assert_eq!(reader.schema_version().unwrap(), LATEST_VERSION);
}

#[test]
fn an_older_database_is_upgraded_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    // Version 0: an existing, empty SQLite file (as left by a crash between
    // creating the file and migrating it).
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 0; CREATE TABLE unrelated (x);")
        .unwrap();
    // Readers never migrate.
    let err = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("older than this jobctl"), "{err}");
    let store = Store::open(&path, OpenMode::Maintain, Duration::from_secs(1)).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    drop(store);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {}", LATEST_VERSION + 1))
        .unwrap();
    for mode in [OpenMode::Read, OpenMode::Write, OpenMode::Maintain] {
        let err = Store::open(&path, mode, Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("newer than this jobctl"), "{err}");
    }
}

#[test]
fn runs_round_trip_and_finish_upserts() {
    let mut store = Store::open_in_memory().unwrap();
    let mut run = record(7, "a", T0, Status::Running);
    run.invocation_id = Some("0123456789abcdef0123456789abcdef".into());
    store.begin_run(&run).unwrap();
    let listed = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(listed.len(), 1);
    // The stamp's boot id is not this host's: the shim is gone.
    assert_eq!(listed[0].status, Status::Lost);

    run.status = Status::Failed;
    run.exit_code = Some(2);
    run.ended_us = Some(T0 + 5 * SEC);
    run.output_bytes = 9;
    let segments = [
        Segment::Data(Stream::Stdout, b"out\n"),
        Segment::Data(Stream::Stderr, b"err\n"),
        Segment::Omitted(1),
    ];
    store
        .finish_run(&run, Some(&segments), &Retention::UNLIMITED, T0)
        .unwrap();
    let listed = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(listed, vec![run.clone()]);
    let data = store.output(run.id).unwrap().unwrap();
    assert_eq!(decode(&data).unwrap(), segments.to_vec());

    // A finish without a start row inserts the whole row.
    let other = record(8, "b", T0 + SEC, Status::Success);
    store
        .finish_run(&other, None, &Retention::UNLIMITED, T0)
        .unwrap();
    assert_eq!(
        store
            .runs(&RunFilter::default(), &probe(), T0)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.output(other.id).unwrap(), None);
}

#[test]
fn usage_and_upstream_round_trip() {
    let mut store = Store::open_in_memory().unwrap();
    let upstream_inv = "00112233445566778899aabbccddeeff";
    let mut upstream = record(20, "report", T0, Status::Failed);
    upstream.invocation_id = Some(upstream_inv.into());
    store
        .finish_run(&upstream, None, &Retention::UNLIMITED, T0)
        .unwrap();
    // A later attempt of the same invocation is the one a chain names.
    let mut retry = record(21, "report", T0 + SEC, Status::Failed);
    retry.invocation_id = Some(upstream_inv.into());
    retry.attempt = 2;
    store
        .finish_run(&retry, None, &Retention::UNLIMITED, T0)
        .unwrap();
    assert_eq!(
        store.run_of_invocation(upstream_inv).unwrap(),
        Some(retry.id)
    );
    assert_eq!(
        store
            .run_of_invocation("ffffffffffffffffffffffffffffffff")
            .unwrap(),
        None
    );
    // Only systemd's form is looked up.
    assert_eq!(store.run_of_invocation("' OR 1=1 --").unwrap(), None);

    let mut run = record(22, "cleanup", T0 + 2 * SEC, Status::Running);
    run.trigger = Trigger::Chain;
    run.upstream = Some(Upstream {
        invocation_id: upstream_inv.into(),
        run_id: Some(retry.id),
    });
    store.begin_run(&run).unwrap();
    let usage = Usage {
        cpu_user_us: 1_000_000,
        cpu_system_us: 20_000,
        memory_peak_bytes: 200 << 20,
        read_bytes: 4096,
        written_bytes: 1 << 30,
        source: UsageSource {
            cpu: Source::Cgroup,
            memory: Source::Rusage,
            io: Source::Rusage,
        },
    };
    run.status = Status::Success;
    run.exit_code = Some(0);
    run.ended_us = Some(T0 + 3 * SEC);
    run.usage = Some(usage);
    store
        .finish_run(&run, None, &Retention::UNLIMITED, T0)
        .unwrap();
    let got = store
        .find_run(Some("cleanup"), &RunLookup::Last, &probe(), T0)
        .unwrap()
        .unwrap();
    assert_eq!(got, run);
    // An upstream invocation id of another form is not stored.
    let mut forged = record(23, "cleanup", T0 + 4 * SEC, Status::Success);
    forged.upstream = Some(Upstream {
        invocation_id: "not-an-id".into(),
        run_id: None,
    });
    store
        .finish_run(&forged, None, &Retention::UNLIMITED, T0)
        .unwrap();
    let got = store
        .find_run(Some("cleanup"), &RunLookup::Last, &probe(), T0)
        .unwrap()
        .unwrap();
    assert_eq!((got.id, got.upstream), (forged.id, None));
}

/// A database with the first schema: migration 1 alone, and one run.
fn first_schema_database(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(MIGRATIONS[0].sql).unwrap();
    conn.execute_batch(
        "PRAGMA user_version = 1;
         INSERT INTO runs (id, job, invocation_id, trigger, attempt, host, user, uid, pid, \
           shim_pid, shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, \
           status, exit_code, signal, error, output_bytes, output_truncated) \
         VALUES (4660, 'old', NULL, 'timer', 1, 'h', 'root', 0, 42, 1, 1, 'b', 0, \
           1800000000000000, 1800000001000000, NULL, 'success', 0, NULL, NULL, 0, 0);",
    )
    .unwrap();
}

#[test]
fn a_database_with_the_first_schema_is_read_as_it_is_and_upgraded_by_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    first_schema_database(&path);
    // Readers read it without migrating it: the new figures are absent.
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 1);
    let runs = reader.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].job.as_str(),
            runs[0].usage,
            runs[0].upstream.clone()
        ),
        ("old", None, None)
    );
    assert_eq!(reader.take_bad_rows(), vec![]);
    let summaries = reader.job_summaries(None, &probe(), T0).unwrap();
    assert_eq!(summaries.len(), 1);
    assert!(
        reader
            .find_run(
                None,
                &RunLookup::Id("0000000000001234".into()),
                &probe(),
                T0
            )
            .unwrap()
            .is_some()
    );
    drop(reader);
    // The first writer adds the columns; the old row keeps NULL in them.
    let mut writer = open(&path);
    assert_eq!(writer.schema_version().unwrap(), LATEST_VERSION);
    let mut run = record(30, "new", T0, Status::Success);
    run.usage = Some(Usage {
        cpu_user_us: 1,
        source: UsageSource::all(Source::Rusage),
        ..Usage::default()
    });
    writer
        .finish_run(&run, None, &Retention::UNLIMITED, T0)
        .unwrap();
    drop(writer);
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    let runs = reader.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(runs.len(), 2);
    let old = runs.iter().find(|r| r.job == "old").unwrap();
    let new = runs.iter().find(|r| r.job == "new").unwrap();
    assert_eq!((old.usage, new.usage), (None, run.usage));
}

#[test]
fn a_start_row_synced_later_is_committed_at_once_and_durable_commits_resume() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(1)).unwrap();
    assert!(store.commits_are_durable().unwrap());
    let mut run = record(21, "deferred", T0, Status::Running);
    store.begin_run_sync_later(&run).unwrap();
    // Committed: another connection sees the start row before any sync.
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    let seen = reader.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, run.id);
    assert!(!store.commits_are_durable().unwrap());
    store.sync_log().unwrap();
    assert!(store.commits_are_durable().unwrap());

    // Without a sync_log, the completion is a durable commit all the same.
    let next = record(22, "deferred", T0 + SEC, Status::Running);
    store.begin_run_sync_later(&next).unwrap();
    run.status = Status::Success;
    run.ended_us = Some(T0 + 2 * SEC);
    store
        .finish_run(&run, None, &Retention::UNLIMITED, T0)
        .unwrap();
    assert!(store.commits_are_durable().unwrap());
    let seen = reader.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .any(|r| r.id == run.id && r.status == Status::Success)
    );
}

#[test]
fn a_log_that_cannot_be_synced_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(1)).unwrap();
    store
        .begin_run_sync_later(&record(23, "gone", T0, Status::Running))
        .unwrap();
    let wal = dir.path().join("history.db-wal");
    std::fs::remove_file(&wal).unwrap();
    let err = store.sync_log().unwrap_err();
    assert!(err.to_string().contains("history.db-wal"), "{err}");
}

#[test]
fn a_running_row_of_a_live_shim_stays_running() {
    let mut store = Store::open_in_memory().unwrap();
    let mut run = record(9, "live", T0, Status::Running);
    run.shim = ProcessStamp::current().unwrap();
    store.begin_run(&run).unwrap();
    let listed = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(listed[0].status, Status::Running);
    let running = RunFilter {
        statuses: vec![Status::Running],
        ..RunFilter::default()
    };
    assert_eq!(store.runs(&running, &probe(), T0).unwrap().len(), 1);
    let lost = RunFilter {
        statuses: vec![Status::Lost],
        ..RunFilter::default()
    };
    assert_eq!(store.runs(&lost, &probe(), T0).unwrap().len(), 0);
}

#[test]
fn filters_and_lookups() {
    let mut store = Store::open_in_memory().unwrap();
    let statuses = [
        Status::Success,
        Status::Failed,
        Status::Success,
        Status::Timeout,
        Status::Success,
    ];
    for (i, status) in statuses.iter().enumerate() {
        let job = if i % 2 == 0 { "even" } else { "odd" };
        store
            .finish_run(
                &record(100 + i as u64, job, T0 + i as i64 * SEC, *status),
                None,
                &Retention::UNLIMITED,
                T0,
            )
            .unwrap();
    }
    let p = probe();
    let all = store.runs(&RunFilter::default(), &p, T0).unwrap();
    let starts: Vec<i64> = all.iter().map(|r| (r.started_us - T0) / SEC).collect();
    assert_eq!(starts, [4, 3, 2, 1, 0], "newest first");
    let failures = RunFilter {
        statuses: RunFilter::failures(),
        ..RunFilter::default()
    };
    let got: Vec<Status> = store
        .runs(&failures, &p, T0)
        .unwrap()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(got, [Status::Timeout, Status::Failed]);
    let window = RunFilter {
        job: Some("even".into()),
        since_us: Some(T0 + SEC),
        until_us: Some(T0 + 4 * SEC),
        ..RunFilter::default()
    };
    let got = store.runs(&window, &p, T0).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].started_us, T0 + 2 * SEC);
    let limited = RunFilter {
        limit: 2,
        ..RunFilter::default()
    };
    assert_eq!(store.runs(&limited, &p, T0).unwrap().len(), 2);

    assert_eq!(store.jobs().unwrap(), ["even", "odd"]);
    let last = store
        .find_run(Some("odd"), &RunLookup::Last, &p, T0)
        .unwrap()
        .unwrap();
    assert_eq!(last.status, Status::Timeout);
    let last_failure = store
        .find_run(Some("odd"), &RunLookup::LastFailure, &p, T0)
        .unwrap()
        .unwrap();
    assert_eq!(last_failure.status, Status::Timeout);
    let id = last.id.to_string();
    let by_prefix = store
        .find_run(Some("odd"), &RunLookup::Id(id[..6].to_string()), &p, T0)
        .unwrap()
        .unwrap();
    assert_eq!(by_prefix.id, last.id);
    assert!(
        store
            .find_run(Some("even"), &RunLookup::Id(id.clone()), &p, T0)
            .unwrap()
            .is_none()
    );
    // Two ids sharing their first digits: a short prefix is ambiguous.
    for low in [1u64, 2] {
        let id = RunId::from_random((0x1234_5600_0000_0000 | low) << 1);
        store
            .finish_run(
                &run(id, "twin", T0, Status::Success),
                None,
                &Retention::UNLIMITED,
                T0,
            )
            .unwrap();
    }
    let err = store
        .find_run(None, &RunLookup::Id("123456".into()), &p, T0)
        .unwrap_err();
    assert!(err.to_string().contains("ambiguous"), "{err}");

    let summaries = store.job_summaries(None, &p, T0).unwrap();
    assert_eq!(summaries.len(), 3);
    let odd = summaries.iter().find(|s| s.job == "odd").unwrap();
    assert_eq!(odd.failure_streak, 2);
    assert_eq!(odd.last_success_us, None);
    let even = summaries.iter().find(|s| s.job == "even").unwrap();
    assert_eq!(even.failure_streak, 0);
    assert_eq!(even.last_success_us, Some(T0 + 4 * SEC));
}

#[test]
fn retention_after_each_run_and_by_prune() {
    let mut store = Store::open_in_memory().unwrap();
    let keep3 = Retention {
        keep_runs: Some(3),
        keep_age_us: None,
        max_output: None,
    };
    for i in 0..10u64 {
        store
            .finish_run(
                &record(1000 + i, "a", T0 + i as i64 * SEC, Status::Success),
                None,
                &keep3,
                T0,
            )
            .unwrap();
        store
            .finish_run(
                &record(2000 + i, "b", T0 + i as i64 * SEC, Status::Success),
                None,
                &Retention::UNLIMITED,
                T0,
            )
            .unwrap();
    }
    let p = probe();
    let count = |store: &Store, job: &str| {
        store
            .runs(
                &RunFilter {
                    job: Some(job.into()),
                    ..RunFilter::default()
                },
                &p,
                T0,
            )
            .unwrap()
            .len()
    };
    assert_eq!(count(&store, "a"), 3, "cut as each run of a finished");
    assert_eq!(count(&store, "b"), 10, "other jobs untouched");
    // Prune applies the count to every job, and the age to all.
    let report = store
        .prune(
            &Retention {
                keep_runs: Some(5),
                keep_age_us: Some(10 * SEC),
                max_output: None,
            },
            &p,
            T0 + 12 * SEC,
        )
        .unwrap();
    assert_eq!(report.runs_over_count, 5);
    // Runs of b at T0+5s..T0+9s remain; the age cut (before T0+2s) then has
    // nothing left of b; a's last three (7, 8, 9) are young enough.
    assert_eq!(report.runs_over_age, 0);
    assert_eq!(count(&store, "b"), 5);
    let report = store
        .prune(
            &Retention {
                keep_runs: None,
                keep_age_us: Some(4 * SEC),
                max_output: None,
            },
            &p,
            T0 + 12 * SEC,
        )
        .unwrap();
    // Cut-off T0+8s: a loses 7, b loses 5, 6, 7.
    assert_eq!(report.runs_over_age, 4);
    assert_eq!((count(&store, "a"), count(&store, "b")), (2, 2));
}

#[test]
fn large_keep_runs_limits_are_checked_on_some_runs_and_then_cut_exactly() {
    let mut store = Store::open_in_memory().unwrap();
    let keep = Retention {
        keep_runs: Some(100),
        keep_age_us: None,
        max_output: None,
    };
    // A run checks a limit of 64 or more when its id is a multiple of 16: here
    // every 20th run (i = 19, 39, …) does.
    let id = |i: u64| RunId::from_random((16 + i * 16 + u64::from(i % 20 != 19)) << 1);
    let p = probe();
    let kept = |store: &Store| {
        store
            .runs(
                &RunFilter {
                    job: Some("busy".into()),
                    ..RunFilter::default()
                },
                &p,
                T0,
            )
            .unwrap()
    };
    for i in 0..150u64 {
        let run = run(id(i), "busy", T0 + i as i64 * SEC, Status::Success);
        store.finish_run(&run, None, &keep, T0).unwrap();
        let runs = kept(&store);
        match i {
            // Past the limit, but no check yet.
            118 => assert_eq!(runs.len(), 119),
            // A checking run cuts back to exactly the newest 100.
            119 | 139 => {
                assert_eq!(runs.len(), 100);
                assert_eq!(runs.last().unwrap().started_us, T0 + (i as i64 - 99) * SEC);
            }
            149 => assert_eq!(runs.len(), 110),
            _ => {}
        }
    }
    // Prune is exact whatever the ids.
    store.prune(&keep, &p, T0).unwrap();
    assert_eq!(kept(&store).len(), 100);
}

#[test]
fn age_limit_applies_after_each_run() {
    let mut store = Store::open_in_memory().unwrap();
    let young = Retention {
        keep_runs: None,
        keep_age_us: Some(5 * SEC),
        max_output: None,
    };
    for i in 0..10u64 {
        let run = record(3000 + i, "aging", T0 + i as i64 * SEC, Status::Success);
        store.finish_run(&run, None, &young, T0 + 20 * SEC).unwrap();
        // The cut-off is T0 + 15 s: each of these runs is already older when
        // it finishes, and goes.
        let left = store
            .runs(&RunFilter::default(), &probe(), T0 + 20 * SEC)
            .unwrap();
        assert_eq!(left.len(), 0, "run {i}");
    }
    let fresh = record(4000, "aging", T0 + 18 * SEC, Status::Success);
    store
        .finish_run(&fresh, None, &young, T0 + 20 * SEC)
        .unwrap();
    let left = store
        .runs(&RunFilter::default(), &probe(), T0 + 20 * SEC)
        .unwrap();
    assert_eq!(left.len(), 1);
}

#[test]
fn output_total_is_capped_oldest_first() {
    let mut store = Store::open_in_memory().unwrap();
    let cap = Retention {
        keep_runs: None,
        keep_age_us: None,
        max_output: Some(2_500),
    };
    let chunk = vec![b'x'; 1_000];
    let mut ids = Vec::new();
    for i in 0..5u64 {
        let mut run = record(3000 + i, "out", T0 + i as i64 * SEC, Status::Success);
        run.output_bytes = 1_000;
        ids.push(run.id);
        store
            .finish_run(
                &run,
                Some(&[Segment::Data(Stream::Stdout, &chunk)]),
                &cap,
                T0,
            )
            .unwrap();
    }
    let kept: Vec<bool> = ids
        .iter()
        .map(|id| store.output(*id).unwrap().is_some())
        .collect();
    assert_eq!(kept, [false, false, false, true, true]);
    // The runs themselves stay.
    assert_eq!(
        store
            .runs(&RunFilter::default(), &probe(), T0)
            .unwrap()
            .len(),
        5
    );
    // Deleting runs frees their output in the running total too.
    let report = store
        .prune(
            &Retention {
                keep_runs: Some(1),
                keep_age_us: None,
                max_output: Some(0),
            },
            &probe(),
            T0,
        )
        .unwrap();
    assert_eq!(report.output_bytes_before, 2 * 1_003);
    assert_eq!(report.output_bytes_after, 0);
}

#[test]
fn prune_marks_lost_runs() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .begin_run(&record(5000, "gone", T0, Status::Running))
        .unwrap();
    let mut alive = record(5001, "alive", T0, Status::Running);
    alive.shim = ProcessStamp::current().unwrap();
    store.begin_run(&alive).unwrap();
    let report = store.prune(&Retention::UNLIMITED, &probe(), T0).unwrap();
    assert_eq!(report.marked_lost, 1);
    let lost = RunFilter {
        statuses: vec![Status::Lost],
        ..RunFilter::default()
    };
    let got = store.runs(&lost, &probe(), T0).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].job, "gone");
}

#[test]
fn read_paths_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    drop(open(&path));
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
    // A step that reads the whole table: `SCAN runs` (`SCAN TABLE runs`
    // before SQLite 3.36), not `SCAN runs USING [COVERING] INDEX …`.
    let scans_the_table = |plan: &str| {
        plan.split("; ").any(|step| {
            let rest = step.strip_prefix("SCAN ");
            let rest = rest.map(|r| r.strip_prefix("TABLE ").unwrap_or(r));
            rest.is_some_and(|r| (r == "runs" || r.starts_with("runs ")) && !r.contains("USING"))
        })
    };
    // The check finds a scan where there is one.
    assert!(scans_the_table(&plan(
        "SELECT * FROM runs WHERE exit_code = 3"
    )));
    let cases = [
        (
            "SELECT * FROM runs WHERE 1 AND job = 'x' ORDER BY started_us DESC, id DESC",
            "runs_by_job",
        ),
        (
            "SELECT * FROM runs WHERE 1 AND status <> 'success' AND status IN ('error', 'failed') ORDER BY started_us DESC, id DESC",
            "runs_unsuccessful",
        ),
        (
            "SELECT * FROM runs WHERE 1 ORDER BY started_us DESC, id DESC",
            "runs_by_start",
        ),
        ("DELETE FROM runs WHERE started_us < 5", "runs_by_start"),
        (
            "SELECT job FROM runs WHERE job > 'a' ORDER BY job LIMIT 1",
            "runs_by_job",
        ),
        // Store::run_of_invocation: the newest runs only, by start.
        (
            "SELECT id FROM (SELECT id, invocation_id, started_us, attempt FROM runs \
             ORDER BY started_us DESC LIMIT 1000) WHERE invocation_id = 'x' \
             ORDER BY attempt DESC, started_us DESC LIMIT 1",
            "runs_by_start",
        ),
    ];
    for (sql, index) in cases {
        let p = plan(sql);
        assert!(p.contains(index), "{sql}\n→ {p}");
        assert!(!scans_the_table(&p), "{sql}\n→ {p}");
    }
}

#[test]
fn a_database_still_being_created_reads_as_not_there_yet() {
    // The first shim on a host creates the file, then migrates it in one
    // transaction: until that commits a reader sees version 0 and no
    // tables. That is no history yet, not an old schema to upgrade.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    std::fs::write(&path, b"").unwrap();
    let err = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(err, jobctl_history::Error::BeingCreated { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("being created"), "{err}");
    // Version 0 with tables that are not jobctl's stays an old schema.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated (x);")
        .unwrap();
    let err = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap_err();
    assert!(
        matches!(err, jobctl_history::Error::OlderSchema { .. }),
        "{err}"
    );
}
