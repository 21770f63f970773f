//! Who started a run (origins, migration 4) as the CLI's readers show it,
//! without systemd: a `manual` run whose invocation has an origin in the
//! mode's main database is `web`, with the actor, in `history` and `logs`;
//! the actor is escaped on the terminal; a database that is not the mode's
//! main one is never a source of origins. (Recording them, through a real
//! "run now", is tests/systemd_e2e/origin.rs.)

use std::path::Path;

use crate::support::*;

const FROM_WEB: &str = "0123456789abcdef0123456789abcdef";
const FROM_SHELL: &str = "fedcba9876543210fedcba9876543210";
const OTHER_JOB: &str = "00000000000000000000000000000001";

/// A run of `job` the shim records as `manual` (under systemd, invocation
/// `invocation`).
fn manual_run(s: &TestEnv, db: &Path, job: &str, invocation: &str) {
    let out = s
        .jobctl()
        .args(["exec", "--job", job, "--db"])
        .arg(db)
        .env("INVOCATION_ID", invocation)
        .args(["--", "/bin/true"])
        .run();
    assert!(out.status.success(), "{}", out.describe());
}

/// What jobctl-web records for a "run now" (`Store::record_origin`).
fn origin(db: &Path, invocation: &str, job: &str, actor: &str) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute(
            "INSERT INTO origins (invocation_id, job, trigger, actor, at_us) \
             VALUES (?1, ?2, 'web', ?3, 1800000000000000)",
            [invocation, job, actor],
        )
        .unwrap();
}

/// (trigger, actor) of each run, by invocation, from `history --json`.
fn triggers(
    s: &TestEnv,
    globals: &[&str],
    args: &[&str],
) -> Vec<(String, String, serde_json::Value)> {
    let out = s
        .jobctl()
        .args(globals)
        .args(["history", "--json"])
        .args(args)
        .run();
    assert!(out.status.success(), "{}", out.describe());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut runs: Vec<_> = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["invocation_id"].as_str().unwrap().to_string(),
                r["trigger"].as_str().unwrap().to_string(),
                r["actor"].clone(),
            )
        })
        .collect();
    runs.sort_by(|x, y| x.0.cmp(&y.0));
    runs
}

#[test]
fn the_main_databases_origins_make_manual_runs_web_with_their_actor() {
    let s = TestEnv::new();
    let state = s.dir("state");
    let main = state.join("history.db");
    manual_run(&s, &main, "a", FROM_WEB);
    manual_run(&s, &main, "a", FROM_SHELL);
    manual_run(&s, &main, "b", OTHER_JOB);
    origin(&main, FROM_WEB, "a", "token ci\x1b[31m");
    // An origin of job a does not make a run of b `web`.
    origin(&main, OTHER_JOB, "a", "token ci");
    let expected = vec![
        (
            OTHER_JOB.to_string(),
            "manual".to_string(),
            serde_json::Value::Null,
        ),
        (
            FROM_WEB.to_string(),
            "web".to_string(),
            "token ci\x1b[31m".into(),
        ),
        (
            FROM_SHELL.to_string(),
            "manual".to_string(),
            serde_json::Value::Null,
        ),
    ];
    // Per-user mode: the user's own database is the main one.
    assert_eq!(triggers(&s, &["--user"], &[]), expected);
    // System mode (root's main database), and the same file named with --db.
    assert_eq!(triggers(&s, &[], &[]), expected);
    let db = main.to_str().unwrap();
    assert_eq!(triggers(&s, &["--user"], &["--db", db]), expected);

    // logs: the run's header says who, escaped; --json has the actor as is.
    let runs = s.jobctl().args(["--user", "history", "--json"]).run();
    let doc: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    let id = doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["invocation_id"] == FROM_WEB)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = s.jobctl().args(["--user", "logs", "a", "--run", &id]).run();
    assert!(out.status.success(), "{}", out.describe());
    let header = text(&out.stdout);
    assert!(
        header.contains(", started from the web by token ci\\x1b[31m") && !header.contains('\x1b'),
        "{header}"
    );
    let out = s
        .jobctl()
        .args(["--user", "logs", "a", "--json", "--run", &id])
        .run();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&doc["run"]["trigger"], &doc["run"]["actor"]),
        (&"web".into(), &"token ci\x1b[31m".into())
    );
}

#[test]
fn a_database_that_is_not_the_modes_main_one_is_no_source_of_origins() {
    let s = TestEnv::new();
    s.dir("state");
    // Runs and an origin in some other database: its runs are shown as
    // recorded, whoever wrote the origin.
    let other = s.db();
    manual_run(&s, &other, "a", FROM_WEB);
    origin(&other, FROM_WEB, "a", "token admin");
    let db = other.to_str().unwrap();
    for mode in [&["--user"][..], &[]] {
        assert_eq!(
            triggers(&s, mode, &["--db", db]),
            vec![(
                FROM_WEB.to_string(),
                "manual".to_string(),
                serde_json::Value::Null
            )],
            "{mode:?}"
        );
    }
}
