//! Found by tests/systemd_e2e/gaps.rs: `jobctl history` while the first
//! shim on a host is creating the history database (the file exists, its
//! schema is not committed yet).

use crate::support::*;

#[test]
fn a_history_database_still_being_created_is_no_history_yet() {
    let s = TestEnv::new();
    let db = s.path().join("configured.db");
    let config = s.write_config(&format!("[history]\ndb = \"{}\"\n", db.display()));
    // As the first shim leaves it until its migration commits: version 0,
    // no tables.
    std::fs::write(&db, b"").unwrap();
    let out = s
        .jobctl()
        .arg("--config")
        .arg(&config)
        .args(["history", "--json"])
        .run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"], serde_json::json!([]), "{v:#}");
    assert_eq!(text(&out.stderr), "");
    // Named with --db, it is said as it is.
    let out = s.jobctl().args(["history", "--db"]).arg(&db).run();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is being created"),
        "{}",
        text(&out.stderr)
    );
}
