//! Origins (migration 4): who started a run the shim recorded as `manual`
//! (a "run now" from the web), keyed by invocation id and joined by readers.

use std::time::Duration;

use jobctl_history::testing::{probe, run, spread_id};
use jobctl_history::{
    ACTOR_MAX_BYTES, MIGRATIONS, OpenMode, Origin, Retention, RunFilter, RunRecord, Status, Store,
    Trigger,
};

const T0: i64 = 1_800_000_000_000_000;
const SEC: i64 = 1_000_000;
const INV_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const INV_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const INV_C: &str = "cccccccccccccccccccccccccccccccc";

fn record(n: u64, job: &str, invocation: Option<&str>, trigger: Trigger) -> RunRecord {
    RunRecord {
        invocation_id: invocation.map(str::to_string),
        trigger,
        ..run(spread_id(n), job, T0 + n as i64 * SEC, Status::Success)
    }
}

fn web(invocation: &str, job: &str, actor: &str, at_us: i64) -> Origin {
    Origin::new(invocation, job, Trigger::Web, actor, at_us).unwrap()
}

fn listed(store: &Store) -> Vec<RunRecord> {
    let mut runs = store
        .runs(&RunFilter::default(), &probe(), T0 + 100 * SEC)
        .unwrap();
    store.apply_origins(runs.iter_mut()).unwrap();
    runs.sort_by_key(|r| r.started_us);
    runs
}

#[test]
fn a_manual_run_of_the_same_job_with_an_origin_is_web_with_its_actor() {
    let mut store = Store::open_in_memory().unwrap();
    for r in [
        record(1, "a", Some(INV_A), Trigger::Manual),
        // The origin names job a: a run of b with that invocation is not it.
        record(2, "b", Some(INV_B), Trigger::Manual),
        // A timer's run keeps its trigger whatever an origin says.
        record(3, "a", Some(INV_C), Trigger::Timer),
        record(4, "a", None, Trigger::Manual),
    ] {
        store.begin_run(&r).unwrap();
    }
    store
        .record_origin(&web(INV_A, "a", "token ci", T0))
        .unwrap();
    store
        .record_origin(&web(INV_B, "a", "token ci", T0))
        .unwrap();
    store
        .record_origin(&web(INV_C, "a", "token ci", T0))
        .unwrap();
    let runs = listed(&store);
    let seen: Vec<(Trigger, Option<&str>)> = runs
        .iter()
        .map(|r| (r.trigger, r.actor.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Trigger::Web, Some("token ci")),
            (Trigger::Manual, None),
            (Trigger::Timer, None),
            (Trigger::Manual, None),
        ]
    );
}

#[test]
fn the_first_origin_of_an_invocation_stays() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .begin_run(&record(1, "a", Some(INV_A), Trigger::Manual))
        .unwrap();
    store
        .record_origin(&web(INV_A, "a", "uid 1000 (alice)", T0))
        .unwrap();
    store
        .record_origin(&web(INV_A, "a", "token later", T0 + SEC))
        .unwrap();
    assert_eq!(listed(&store)[0].actor.as_deref(), Some("uid 1000 (alice)"));
    assert_eq!(
        store.origin(INV_A).unwrap().map(|o| o.at_us),
        Some(T0),
        "the first write is kept"
    );
}

#[test]
fn rows_jobctl_does_not_write_are_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    store
        .begin_run(&record(1, "a", Some(INV_A), Trigger::Manual))
        .unwrap();
    store
        .begin_run(&record(2, "a", Some(INV_B), Trigger::Manual))
        .unwrap();
    drop(store);
    // Written by hand: an origin with a trigger jobctl never records as one,
    // and one with an actor over the bound.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO origins VALUES (?1, 'a', 'timer', 'x', 1)",
        [INV_A],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO origins VALUES (?1, 'a', 'web', ?2, 1)",
        rusqlite::params![INV_B, "y".repeat(ACTOR_MAX_BYTES + 1)],
    )
    .unwrap();
    // A run row that says `web` itself: the shim never writes that.
    let forged = record(3, "a", Some(INV_C), Trigger::Manual);
    drop(conn);
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    store.begin_run(&forged).unwrap();
    drop(store);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE runs SET trigger = 'web' WHERE id = ?1",
            [forged.id.as_i64()],
        )
        .unwrap();
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    let runs = listed(&reader);
    assert_eq!(runs.len(), 2, "the row saying web is a bad row");
    assert!(
        runs.iter()
            .all(|r| r.trigger == Trigger::Manual && r.actor.is_none())
    );
    let bad = reader.take_bad_rows();
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].reason.contains("unknown trigger \"web\""),
        "{}",
        bad[0].reason
    );
}

#[test]
fn a_database_from_before_origins_is_read_without_them_and_upgraded_by_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    for m in &MIGRATIONS[..3] {
        conn.execute_batch(m.sql).unwrap();
    }
    conn.execute_batch("PRAGMA user_version = 3;").unwrap();
    drop(conn);
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    // Opening as a writer migrated it; take it back to 3 to test readers.
    store
        .begin_run(&record(1, "a", Some(INV_A), Trigger::Manual))
        .unwrap();
    drop(store);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE origins; PRAGMA user_version = 3;")
        .unwrap();
    let reader = Store::open(&path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    assert_eq!(reader.schema_version().unwrap(), 3, "readers never migrate");
    assert_eq!(reader.origin(INV_A).unwrap(), None);
    let runs = listed(&reader);
    assert_eq!(
        (runs[0].trigger, runs[0].actor.as_deref()),
        (Trigger::Manual, None)
    );
    drop(reader);
    // A writer (the web server recording an origin) upgrades it.
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    assert_eq!(store.schema_version().unwrap(), 4);
    store
        .record_origin(&web(INV_A, "a", "token ci", T0))
        .unwrap();
    assert_eq!(listed(&store)[0].trigger, Trigger::Web);
}

#[test]
fn history_prune_drops_origins_older_than_keep_age() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .record_origin(&web(INV_A, "a", "token old", T0))
        .unwrap();
    store
        .record_origin(&web(INV_B, "a", "token new", T0 + 10 * SEC))
        .unwrap();
    let retention = Retention {
        keep_age_us: Some(5 * SEC),
        ..Retention::UNLIMITED
    };
    let report = store.prune(&retention, &probe(), T0 + 12 * SEC).unwrap();
    assert_eq!(report.origins_over_age, 1);
    assert_eq!(store.origin(INV_A).unwrap(), None);
    assert!(store.origin(INV_B).unwrap().is_some());
    // Without an age limit they stay, as the runs do.
    let report = store
        .prune(&Retention::UNLIMITED, &probe(), T0 + 100 * SEC)
        .unwrap();
    assert_eq!(report.origins_over_age, 0);
    assert!(store.origin(INV_B).unwrap().is_some());
}
