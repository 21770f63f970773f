//! `jobctl history` and `jobctl history prune` against databases written by
//! real shim runs.

use crate::support::*;

fn seeded() -> TestEnv {
    let s = TestEnv::new();
    for (job, steps, status) in [
        ("alpha", &["exit", "0"][..], 0),
        ("beta", &["err", "bad", "exit", "2"], 2),
        ("alpha", &["kill", "KILL"], 128 + 9),
        ("gamma", &["out", "ok"], 0),
    ] {
        assert_eq!(shell_status(s.exec(job, &[], steps).status), status);
    }
    s
}

fn history(s: &TestEnv, args: &[&str]) -> Run {
    s.read("history", args)
}

#[test]
fn table_lists_runs_newest_first() {
    let s = seeded();
    let out = history(&s, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "RUN", "JOB", "TRIGGER", "START", "DURATION", "STATUS", "EXIT", "CPU", "MEMORY"
        ]
    );
    assert_eq!(lines.len(), 5);
    let jobs: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(jobs, ["gamma", "alpha", "beta", "alpha"]);
    // Every run that started a process has its cost (rusage: outside
    // systemd), in the last two columns.
    for line in &lines[1..] {
        // `… 0ms  10.2 MiB`: a CPU time, a number and a unit.
        let words: Vec<&str> = line.split_whitespace().collect();
        let [cpu, amount, unit] = words[words.len() - 3..] else {
            unreachable!()
        };
        let numeric = |w: &str| w.chars().next().is_some_and(|c| c.is_ascii_digit());
        assert!(
            numeric(cpu) && numeric(amount) && ["B", "KiB", "MiB"].contains(&unit),
            "{line}"
        );
    }
    assert!(
        lines[2].contains("killed") && lines[2].contains(" SIGKILL "),
        "{}",
        lines[2]
    );
    assert!(lines[3].contains("failed") && lines[3].contains(" 2 "));
    assert!(lines[1].contains(" shell "));
    // Run ids are 12 digits in the table; no colour with NO_COLOR.
    assert_eq!(lines[1].split_whitespace().next().unwrap().len(), 12);
    assert!(!stdout.contains('\x1b'));
}

#[test]
fn filters_by_job_status_time_and_limit() {
    let s = seeded();
    let count = |args: &[&str]| -> usize {
        let out = history(&s, &[args, &["--json"]].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["runs"].as_array().unwrap().len()
    };
    assert_eq!(count(&[]), 4);
    assert_eq!(count(&["alpha"]), 2);
    assert_eq!(count(&["--job", "alpha"]), 2);
    assert_eq!(count(&["--status", "failed"]), 1);
    assert_eq!(count(&["--status", "failed,killed"]), 2);
    assert_eq!(count(&["--failed"]), 2);
    assert_eq!(count(&["--status", "success", "alpha"]), 1);
    assert_eq!(count(&["--since", "1h"]), 4);
    assert_eq!(count(&["--until", "1h"]), 0);
    assert_eq!(count(&["--since", "2000-01-01"]), 4);
    assert_eq!(count(&["--until", "2000-01-01T00:00:00Z"]), 0);
    assert_eq!(count(&["--limit", "3"]), 3);
    assert_eq!(count(&["-n", "0"]), 4);
    assert_eq!(count(&["nosuchjob"]), 0);
}

#[test]
fn json_has_the_whole_record() {
    let s = seeded();
    let out = history(&s, &["beta", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &v["runs"][0];
    for key in [
        "id",
        "job",
        "invocation_id",
        "trigger",
        "attempt",
        "host",
        "user",
        "uid",
        "pid",
        "shim",
        "started_us",
        "ended_us",
        "deadline_us",
        "status",
        "exit_code",
        "signal",
        "error",
        "output_bytes",
        "output_truncated",
        "started",
        "ended",
        "duration_us",
        "database",
        "owner",
    ] {
        assert!(run.get(key).is_some(), "missing {key} in {run}");
    }
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 2);
    assert_eq!(run["output_bytes"], 4);
}

#[test]
fn bad_input_is_a_usage_error() {
    let s = seeded();
    for args in [
        &["--since", "last tuesday"][..],
        &["--until", "2027-13-01"],
        &["--status", "weird"],
    ] {
        let out = history(&s, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!text(&out.stderr).is_empty());
    }
    let out = s
        .jobctl()
        .args(["history", "--db"])
        .arg(s.path().join("missing.db"))
        .run();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no history database"));
}

#[test]
fn empty_history_says_so() {
    let s = TestEnv::new();
    let out = s.jobctl().args(["history"]).run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "No runs recorded.\n");
}

#[test]
fn prune_applies_retention_and_reports() {
    let s = TestEnv::new();
    for i in 0..6 {
        s.exec("many", &["--keep-runs", "0"], &["out", &format!("run {i}")])
            .success();
    }
    s.exec("other", &[], &[]).success();
    let out = s.read("history", &["prune", "--keep-runs", "2", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pruned"][0]["report"]["runs_over_count"], 4);
    assert_eq!(jobs_of(&s.runs()), ["other", "many", "many"]);
    // The two kept are the newest, with their output.
    let logs = s.read("logs", &["many"]);
    assert!(text(&logs.stdout).contains("out| run 5"));
    // Text report; output cap.
    let out = s.read("history", &["prune", "--max-output", "1"]);
    assert_contains(&text(&out.stdout), "dropped 2 outputs");
    let logs = s.read("logs", &["many"]);
    assert_contains(&text(&logs.stdout), "removed by retention");
    // Retention also runs after each exec, for the job that ran.
    s.exec("other", &["--keep-runs", "1"], &[]).success();
    let others = s.runs().iter().filter(|r| r["job"] == "other").count();
    assert_eq!(others, 1);
}

#[test]
fn the_configuration_names_the_database_and_the_retention() {
    let s = TestEnv::new();
    let db = s.path().join("configured.db");
    let config = s.write_config(&format!(
        "[history]\ndb = \"{}\"\nkeep_runs = 2\n",
        db.display()
    ));
    for i in 0..4 {
        let out = s
            .jobctl()
            .args(["exec", "--job", "cfg", "--db"])
            .arg(&db)
            .args(["--", "/bin/echo", &format!("run {i}")])
            .run();
        assert!(out.status.success());
    }
    let with_config = |args: &[&str]| s.jobctl().arg("--config").arg(&config).args(args).run();
    // Readers find the configured database without --db.
    let listed = with_config(&["history", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
    // prune applies the configured keep_runs when no flag is given.
    let out = with_config(&["history", "prune", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pruned"][0]["report"]["runs_over_count"], 2);
    assert_eq!(s.runs_in(&db).len(), 2);
    // A flag still wins over the configuration.
    let out = with_config(&["history", "prune", "--keep-runs", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pruned"][0]["report"]["runs_over_count"], 1);
}

/// Copies run `like` of `db` as a new row `id` with `trigger`, newest of all.
fn insert_bad_row(db: &std::path::Path, id: i64, trigger: &str) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO runs SELECT ?1, job, invocation_id, ?2, attempt, host, user, uid, pid, \
           shim_pid, shim_start_ticks, boot_id, pid_ns, started_us + 1000000, ended_us, \
           deadline_us, status, exit_code, signal, error, output_bytes, output_truncated\
           , cpu_user_us, cpu_system_us, memory_peak_bytes, read_bytes, written_bytes, usage_source, upstream_invocation_id, upstream_run_id FROM runs ORDER BY started_us DESC LIMIT 1",
        rusqlite::params![id, trigger],
    )
    .unwrap();
}

/// Issue 10, item 3: one row that cannot be decoded made `history` and
/// `history --json` exit 1 with no output.
#[test]
fn one_bad_row_never_hides_the_rest() {
    let s = seeded();
    insert_bad_row(&s.db(), 4242, "bogus-trigger");
    let warning = format!(
        "Warning: cannot decode row id 4242 (run 0000000000001092) of {}: unknown trigger \"bogus-trigger\"; skipped it\n",
        s.db().display()
    );
    let out = history(&s, &["--json"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), warning);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = jobs_of(v["runs"].as_array().unwrap());
    assert_eq!(jobs, ["gamma", "alpha", "beta", "alpha"]);
    let out = history(&s, &[]);
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(text(&out.stderr), warning);
    assert_eq!(
        text(&out.stdout).lines().count(),
        5,
        "{}",
        text(&out.stdout)
    );
    // `logs` of the job whose newest row is the bad one shows the run before.
    let out = s.read("logs", &["gamma"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), warning);
    assert_ends_with(&text(&out.stdout), "out| ok\n");
}

/// The same in a user's database, read by root with the others.
#[test]
fn a_bad_row_in_a_users_database_hides_nothing_else() {
    let s = TestEnv::new();
    let state = s.path().join("state");
    let folder = state.join("users/alice");
    std::fs::create_dir_all(&folder).unwrap();
    let mode = |p: &std::path::Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    mode(&state, 0o755);
    mode(&state.join("users"), 0o755);
    mode(&folder, 0o700);
    let alice_db = folder.join("history.db");
    for (job, db) in [
        ("root-job", state.join("history.db")),
        ("alice-job", alice_db.clone()),
    ] {
        // (Recorded as alice, as systemd would start her job: root reads a
        // user's folder only for runs recorded as that user.)
        let out = s
            .jobctl()
            .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
            .env("USER", if job == "alice-job" { "alice" } else { "root" })
            .args(["exec", "--job", job, "--db"])
            .arg(&db)
            .args(["--", "/bin/true"])
            .run();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    insert_bad_row(&alice_db, 77, "bogus-trigger");
    // alice-job is installed to run as alice.
    let units = s.dir("units");
    std::fs::write(
        units.join("jobctl-alice-job.service"),
        "[Unit]\nX-Jobctl-Job=alice-job\n\n[Service]\nUser=alice\nStateDirectory=jobctl/users/alice\n",
    )
    .unwrap();
    let out = s
        .jobctl()
        .arg("--unit-dir")
        .arg(&units)
        .args(["history", "--json"])
        .run();
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot decode row id 77 (run 000000000000004d)")
            && stderr.contains(&alice_db.display().to_string()),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut jobs = jobs_of(v["runs"].as_array().unwrap());
    jobs.sort();
    assert_eq!(jobs, ["alice-job", "root-job"]);
}

/// A database with two runs at fixed times, the newer one of a job whose
/// name carries terminal escape sequences (as a user's database may).
fn hostile_names() -> TestEnv {
    let s = TestEnv::new();
    s.exec("seed", &[], &[]).success();
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    // 2027-01-15 10:00:00 UTC.
    let t = 1_800_007_200_000_000i64;
    conn.execute_batch(&format!(
        "INSERT INTO runs SELECT 81985529216486895, 'x' || char(27) || '[2J' || char(27) || '[31mFAKE', \
           invocation_id, 'timer', attempt, host, user, uid, pid, shim_pid, shim_start_ticks, \
           boot_id, pid_ns, {t}, {t} + 2500000, NULL, 'failed', 3, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM runs;
         INSERT INTO runs SELECT 1147797409030816545, 'backup', invocation_id, 'manual', attempt, \
           host, user, uid, pid, shim_pid, shim_start_ticks, boot_id, pid_ns, {t} - 3600000000, \
           {t} - 3600000000 + 850000, NULL, 'success', 0, NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM runs WHERE job = 'seed';
         DELETE FROM runs WHERE job = 'seed';"
    ))
    .unwrap();
    s
}

/// Issue 10, item 4: job names were printed raw. Expected text written by
/// hand: the control characters as `\x1b`, columns aligned on the escaped
/// text.
#[test]
fn control_characters_in_job_names_are_escaped() {
    let s = hostile_names();
    let table = |args: &[&str]| {
        let out = history(&s, args);
        assert!(out.status.success(), "{}", out.describe());
        out.stdout()
    };
    assert_eq!(
        table(&[]),
        concat!(
            "RUN           JOB                   TRIGGER  START                    DURATION  STATUS   EXIT  CPU  MEMORY\n",
            "0123456789ab  x\\x1b[2J\\x1b[31mFAKE  timer    2027-01-15 10:00:00 UTC  2.5s      failed   3     -    -\n",
            "0fedcba98765  backup                manual   2027-01-15 09:00:00 UTC  850ms     success  0     -    -\n",
        )
    );
    // --raw: the bytes as stored (columns counted in characters).
    assert_eq!(
        table(&["--raw"]),
        concat!(
            "RUN           JOB             TRIGGER  START                    DURATION  STATUS   EXIT  CPU  MEMORY\n",
            "0123456789ab  x\x1b[2J\x1b[31mFAKE  timer    2027-01-15 10:00:00 UTC  2.5s      failed   3     -    -\n",
            "0fedcba98765  backup          manual   2027-01-15 09:00:00 UTC  850ms     success  0     -    -\n",
        )
    );
    // JSON escapes by its own rules.
    let out = history(&s, &["--json"]);
    assert_contains(&text(&out.stdout), r#""job": "x\u001b[2J\u001b[31mFAKE""#);
    assert!(!out.stdout.contains(&0x1b));
}

/// Found by a newcomer's trial: `status` built its `journalctl` hint from the
/// invocation id a user's database holds, so a row whose id was
/// `$(touch /tmp/pwned) ; …` made a hint that ran the user's commands when
/// root pasted it. systemd's invocation ids are 32 hex digits: the shim
/// records nothing else, and readers skip a row that holds anything else.
#[test]
fn an_invocation_id_that_is_not_systemds_is_never_recorded_or_shown() {
    let hostile = "$(touch /tmp/pwned) ; touch /tmp/pwned2 #";
    let s = TestEnv::new();
    let out = s
        .jobctl()
        .env("INVOCATION_ID", hostile)
        .args(["exec", "--job", "forged", "--db"])
        .arg(s.db())
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let good = "0123456789abcdef0123456789abcdef";
    let out = s
        .jobctl()
        .env("INVOCATION_ID", good)
        .args(["exec", "--job", "real", "--db"])
        .arg(s.db())
        .args(["--", "/bin/true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runs = s.runs();
    let ids: Vec<(&str, &serde_json::Value)> = runs
        .iter()
        .map(|r| (r["job"].as_str().unwrap(), &r["invocation_id"]))
        .collect();
    assert_eq!(
        ids,
        [
            ("real", &serde_json::Value::from(good)),
            ("forged", &serde_json::Value::Null)
        ]
    );

    // Written into the database by other means: the row is skipped, said so.
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute(
        "UPDATE runs SET invocation_id = ?1 WHERE job = 'real'",
        [hostile],
    )
    .unwrap();
    drop(conn);
    let out = history(&s, &["--json"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invocation id") && stderr.contains("skipped it"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["forged"]);
}
