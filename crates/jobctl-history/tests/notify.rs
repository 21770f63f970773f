//! The notification database (`notify.db`): its own schema and migrations,
//! created private, and apart from the runs' history, whose schema the run
//! shim parses at every run.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use jobctl_history::notify::NewEvent;
use jobctl_history::{
    LATEST_VERSION, MIGRATIONS, NOTIFY_LATEST_VERSION, NOTIFY_MIGRATIONS, OpenMode, Store,
};

fn objects(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_notification_database_has_its_own_schema_and_leaves_the_history_alone() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.db");
    let history = dir.path().join("history.db");
    let store = Store::open_notify(&notify, OpenMode::Write, Duration::from_secs(5)).unwrap();
    drop(store);
    drop(Store::open(&history, OpenMode::Write, Duration::from_secs(5)).unwrap());
    assert_eq!(
        std::fs::metadata(&notify).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let names: Vec<String> = objects(&notify)
        .into_iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    assert_eq!(
        names,
        [
            "index notify_attempts_by_channel",
            "index notify_attempts_by_event",
            "index notify_deliveries_due",
            "index notify_events_by_job",
            "index notify_events_by_time",
            "table notify_attempts",
            "table notify_deliveries",
            "table notify_events",
            "table notify_pruned_attempts",
            "table notify_state",
            "trigger notify_attempts_deleted",
        ]
    );
    let conn = rusqlite::Connection::open(&notify).unwrap();
    for (table, expected) in [
        ("notify_state", "job,state"),
        (
            "notify_events",
            "id,job,kind,created_us,run_id,summary,payload",
        ),
        (
            "notify_deliveries",
            "event_id,channel,state,attempts,next_us,last_us,http_status,exit_status,detail",
        ),
        (
            "notify_attempts",
            "id,event_id,channel,at_us,ok,retryable,http_status,exit_status,detail,duration_ms",
        ),
        ("notify_pruned_attempts", "channel,ok,attempts"),
    ] {
        let columns: Vec<String> = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(columns.join(","), expected, "{table}");
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, NOTIFY_LATEST_VERSION);
    assert_eq!(NOTIFY_LATEST_VERSION, NOTIFY_MIGRATIONS.len() as i64);
    // The runs' history has none of it: the shim parses only its own tables.
    assert!(
        objects(&history)
            .iter()
            .all(|(_, n)| !n.starts_with("notify"))
    );
    assert_eq!(LATEST_VERSION, MIGRATIONS.len() as i64);
    // The queue's read paths use their indexes.
    let plan = |sql: &str| -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let due =
        plan("SELECT event_id FROM notify_deliveries WHERE state = 'pending' AND next_us <= 5");
    assert!(due.contains("notify_deliveries_due"), "{due}");
    let rate = plan("SELECT count(*) FROM notify_attempts WHERE channel = 'ops' AND at_us >= 5");
    assert!(rate.contains("notify_attempts_by_channel"), "{rate}");
}

#[test]
fn a_reader_of_a_newer_or_older_notification_database_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let notify = dir.path().join("notify.db");
    let mut store = Store::open_notify(&notify, OpenMode::Write, Duration::from_secs(5)).unwrap();
    store
        .commit_pass(
            &[("a".into(), Some("{}".into()))],
            &[NewEvent {
                id: "e".into(),
                job: "a".into(),
                kind: "failure".into(),
                created_us: 1,
                run_id: None,
                summary: "a FAILED".into(),
                payload: "{}".into(),
                channels: vec!["ops".into()],
            }],
        )
        .unwrap();
    drop(store);
    let reader = Store::open_notify(&notify, OpenMode::Read, Duration::from_secs(1)).unwrap();
    assert_eq!(reader.deliveries(None, 0).unwrap().len(), 1);
    drop(reader);
    rusqlite::Connection::open(&notify)
        .unwrap()
        .execute_batch(&format!(
            "PRAGMA user_version = {}",
            NOTIFY_LATEST_VERSION + 1
        ))
        .unwrap();
    let err = Store::open_notify(&notify, OpenMode::Read, Duration::from_secs(1)).unwrap_err();
    assert!(err.to_string().contains("newer than this jobctl"), "{err}");
}
