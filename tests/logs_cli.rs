//! `jobctl logs`: a run's captured output, streams marked, chosen by last,
//! last failure or id prefix; `--journal` for runs systemd started.

use crate::support::*;

fn logs(s: &TestEnv, args: &[&str]) -> Run {
    s.read("logs", args)
}

#[test]
fn last_failed_and_by_id() {
    let s = TestEnv::new();
    let steps = ["out", "first run", "err", "it broke", "exit", "1"];
    assert_eq!(s.exec("job", &[], &steps).status.code(), Some(1));
    s.exec("job", &[], &["out", "second run"]).success();
    let out = logs(&s, &["job"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("-- run "), "{stdout}");
    assert_contains(&stdout, ": success (exit 0)");
    assert_ends_with(&stdout, "out| second run\n");
    assert_eq!(text(&logs(&s, &["job", "--last"]).stdout), stdout);

    let failed = text(&logs(&s, &["job", "--failed"]).stdout);
    assert!(failed.contains(": failed (exit 1)"));
    assert_ends_with(&failed, "out| first run\nerr| it broke\n");

    let runs = s.runs();
    let id = runs[1]["id"].as_str().unwrap();
    let by_id = text(&logs(&s, &["job", "--run", &id[..8]]).stdout);
    assert_eq!(by_id, failed);
    let by_full_id = text(&logs(&s, &["job", "--run", &id.to_uppercase()]).stdout);
    assert_eq!(by_full_id, failed);
}

#[test]
fn errors_name_the_problem() {
    let s = TestEnv::new();
    s.exec("job", &[], &["out", "x"]).success();
    let out = logs(&s, &["job", "--failed"]);
    assert_eq!(out.status.code(), Some(1));
    assert_contains(&text(&out.stderr), "job job: no failed run");
    let out = logs(&s, &["nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("Hint:"));
    let out = logs(&s, &["job", "--run", "xyz"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a run id"));
    let out = logs(&s, &["job", "--run", "0000000000000000"]);
    assert_eq!(out.status.code(), Some(1));
    let out = logs(&s, &["job", "--journal"]);
    assert_eq!(out.status.code(), Some(1));
    assert_contains(&text(&out.stderr), "started from a shell");
    let out = logs(&s, &["job", "--last", "--failed"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_and_raw_output() {
    let s = TestEnv::new();
    s.exec("job", &[], &["prompt", "no newline", "err", "e"])
        .success();
    let out = logs(&s, &["job", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["run"]["job"], "job");
    assert_eq!(
        v["output"],
        serde_json::json!([
            {"stream": "stdout", "text": "no newline"},
            {"stream": "stderr", "text": "e\n"}
        ])
    );
    let raw = logs(&s, &["job", "--raw"]);
    assert_eq!(text(&raw.stdout), "no newlinee\n");
    let marked = text(&logs(&s, &["job"]).stdout);
    assert_ends_with(&marked, "out| no newline\nerr| e\n");
}

/// The invocation of the run [`svc_run_with_fake_journalctl`] records.
const INVOCATION: &str = "0123456789abcdef0123456789abcdef";

/// A run of job `svc` under invocation [`INVOCATION`], and a stand-in
/// `journalctl` that prints its arguments: the `PATH` that finds it.
fn svc_run_with_fake_journalctl(s: &TestEnv) -> String {
    let fake_bin = s.path().join("fakebin");
    std::fs::create_dir(&fake_bin).unwrap();
    write_script(
        &fake_bin.join("journalctl"),
        "#!/bin/sh\necho \"journalctl $*\"\n",
    );
    let out = s
        .jobctl()
        .env("INVOCATION_ID", INVOCATION)
        .args(["exec", "--job", "svc", "--db"])
        .arg(s.db())
        .args(["--", "/bin/true"])
        .run();
    assert!(out.status.success());
    format!("{}:/usr/bin:/bin", fake_bin.display())
}

/// `jobctl [--config CONFIG] logs svc MODE --db DB` with `path` as `PATH`.
fn logs_svc(s: &TestEnv, path: &str, config: Option<&std::path::Path>, mode: &str) -> Run {
    let mut command = s.jobctl();
    command.env("PATH", path);
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let out = command
        .args(["logs", "svc", mode, "--db"])
        .arg(s.db())
        .run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

#[test]
fn journal_mode_asks_journalctl_for_the_invocation() {
    let s = TestEnv::new();
    let path = svc_run_with_fake_journalctl(&s);
    let out = logs_svc(&s, &path, None, "--journal");
    assert_eq!(
        text(&out.stdout),
        // The job's service's lines and PID 1's about the run, by fields
        // journald sets itself (sysjournal.rs runs the real thing).
        "journalctl _SYSTEMD_UNIT=jobctl-svc.service \
         _SYSTEMD_INVOCATION_ID=0123456789abcdef0123456789abcdef \
         + _PID=1 INVOCATION_ID=0123456789abcdef0123456789abcdef --no-pager --output=short-iso\n"
    );
}

/// `--journal` and `--json`'s `journal_hint` name the job's service as
/// `apply` names it (the configuration's `unit_prefix`), so that a line
/// that merely claims the invocation is left out: the expected text is
/// written by hand.
#[test]
fn the_journal_lines_are_the_services_of_the_configured_prefix() {
    let s = TestEnv::new();
    let config = s.write_config("unit_prefix = \"acme-\"\n");
    let path = svc_run_with_fake_journalctl(&s);
    let hint = format!(
        "journalctl _SYSTEMD_UNIT=acme-svc.service _SYSTEMD_INVOCATION_ID={INVOCATION} \
         + _PID=1 INVOCATION_ID={INVOCATION}"
    );
    let out = logs_svc(&s, &path, Some(&config), "--journal");
    assert_eq!(
        text(&out.stdout),
        format!("{hint} --no-pager --output=short-iso\n")
    );
    let out = logs_svc(&s, &path, Some(&config), "--json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["service"], "acme-svc.service");
    assert_eq!(doc["journal_hint"], hint.as_str());
}

/// Issue 10, item 4: captured output and job names were printed raw, so a
/// job's output could clear root's screen or forge lines. Expected text
/// written by hand: control characters as `\xNN`, line breaks kept, one mark
/// per line; --raw gives the exact bytes.
#[test]
fn control_characters_are_escaped_unless_raw() {
    let s = TestEnv::new();
    let steps = [
        "out",
        "x\x1b[2J\x1b[31mFAKE",
        "err",
        "bell\x07 cr\rover\ttab",
    ];
    s.exec("job", &[], &steps).success();
    // 15 + 18 bytes captured. A hostile job name and fixed times
    // (2027-01-15 10:00:00 UTC, 2.5 s).
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.execute_batch(
        "UPDATE runs SET job = 'job' || char(27) || ']0;owned' || char(7), \
         started_us = 1800007200000000, ended_us = 1800007202500000",
    )
    .unwrap();
    let id = s.runs()[0]["id"].as_str().unwrap().to_string();
    let out = s.read("logs", &["job\x1b]0;owned\x07"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "-- run {id} of job\\x1b]0;owned\\x07: success (exit 0), started 2027-01-15 10:00:00 UTC, took 2.5s, 33 bytes of output --\n\
             out| x\\x1b[2J\\x1b[31mFAKE\n\
             err| bell\\x07 cr\\x0dover\ttab\n"
        )
    );
    let out = s.read("logs", &["job\x1b]0;owned\x07", "--raw"]);
    assert_eq!(
        out.stdout,
        b"x\x1b[2J\x1b[31mFAKE\nbell\x07 cr\rover\ttab\n"
    );
}
