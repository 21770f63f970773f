//! Multi-user storage, with real users: a job running as `nobody` records
//! its runs in its own folder (as `StateDirectory=jobctl/users/nobody` gives
//! it), cannot read or alter root's database or another user's, and root's
//! `jobctl history` merges them all.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::*;

fn chown(path: &Path, user: &str) {
    let u = nix::unistd::User::from_name(user).unwrap().unwrap();
    nix::unistd::chown(path, Some(u.uid), Some(u.gid)).unwrap();
}

#[test]
fn each_user_records_privately_and_root_sees_all() {
    if !root_or_skip("to run the shim as other users") {
        return;
    }
    let s = TestEnv::new();
    let state = s.state_dir();

    // A root job: the main database, created 0600 in a 0755 folder.
    let out = s
        .jobctl()
        .args([
            "exec",
            "--job",
            "root-job",
            "--",
            FAKEJOB,
            "out",
            "root secret",
        ])
        .run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let main_db = state.join("history.db");
    assert_eq!(std::fs::metadata(&main_db).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o755);

    // systemd's StateDirectory=jobctl/users/<user> + StateDirectoryMode=0700.
    for user in ["nobody", "daemon"] {
        let dir = state.join("users").join(user);
        std::fs::create_dir_all(&dir).unwrap();
        chown(&dir, user);
        chmod(&dir, 0o700);
    }
    let nobody_dir = state.join("users/nobody");
    let daemon_dir = state.join("users/daemon");

    for (user, dir, job) in [
        ("nobody", &nobody_dir, "nobody-job"),
        ("daemon", &daemon_dir, "daemon-job"),
    ] {
        let out = s
            .jobctl_as(user)
            .env("STATE_DIRECTORY", dir)
            .args(["exec", "--job", job, "--"])
            .arg(s.user_visible_bin("fakejob"))
            .args(["out", "secret output", "exit", "0"])
            .run();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            !text(&out.stderr).contains("not recorded"),
            "{}",
            text(&out.stderr)
        );
        let db = dir.join("history.db");
        let meta = std::fs::metadata(&db).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(
            meta.uid(),
            nix::unistd::User::from_name(user)
                .unwrap()
                .unwrap()
                .uid
                .as_raw()
        );
    }

    // nobody reads its own runs...
    let own = s
        .jobctl_as("nobody")
        .args(["history", "--json", "--db"])
        .arg(nobody_dir.join("history.db"))
        .run();
    assert!(own.status.success(), "{}", text(&own.stderr));
    let v: serde_json::Value = serde_json::from_slice(&own.stdout).unwrap();
    assert_eq!(v["runs"][0]["job"], "nobody-job");

    // ...but neither root's nor daemon's, whose output root can read.
    for (db, job, secret) in [
        (main_db.clone(), "root-job", "root secret"),
        (daemon_dir.join("history.db"), "daemon-job", "secret output"),
    ] {
        let logs = s.jobctl().args(["logs", job, "--db"]).arg(&db).run();
        assert!(
            logs.status.success() && text(&logs.stdout).contains(secret),
            "root reads {job}'s output: {}{}",
            text(&logs.stdout),
            text(&logs.stderr)
        );
        for command in ["history", "logs"] {
            let mut cmd = s.jobctl_as("nobody");
            cmd.arg(command);
            if command == "logs" {
                cmd.arg(job);
            }
            let out = cmd.arg("--db").arg(&db).run();
            let stderr = text(&out.stderr);
            // Refused because the file cannot be opened (SQLite says only
            // "unable to open database file"; a folder nobody cannot enter
            // reads as no database at all), not for want of runs.
            let refused = [
                format!("cannot open the history database {}", db.display()),
                format!("no history database at {}", db.display()),
            ];
            assert!(
                out.status.code() == Some(1) && refused.iter().any(|r| stderr.contains(r)),
                "nobody's {command} of {}: exit {:?}\n{}{stderr}",
                db.display(),
                out.status.code(),
                text(&out.stdout)
            );
            assert!(!text(&out.stdout).contains(secret));
        }
    }
    // Nor alter them: a run pointed at root's database goes unrecorded.
    let out = s
        .jobctl_as("nobody")
        .args(["exec", "--job", "intruder", "--db"])
        .arg(&main_db)
        .args(["--", "/bin/true"])
        .run();
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("not recorded"));
    let out = s
        .jobctl_as("nobody")
        .env("STATE_DIRECTORY", &daemon_dir)
        .args(["exec", "--job", "intruder", "--", "/bin/true"])
        .run();
    assert!(text(&out.stderr).contains("not recorded"));

    // nobody's view of the system history: only what it may read, with a note.
    let out = s.jobctl_as("nobody").args(["history", "--json"]).run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs = jobs_of(v["runs"].as_array().unwrap());
    assert_eq!(jobs, ["nobody-job"]);
    assert_contains(&text(&out.stderr), "run as root");

    // Root sees every job, each with where it came from: a user's database
    // is read for the jobs whose installed unit records there (as `jobctl
    // apply` renders them for `user = "nobody"`).
    let units = s.path().join("units");
    std::fs::create_dir(&units).unwrap();
    for (job, user) in [("nobody-job", "nobody"), ("daemon-job", "daemon")] {
        std::fs::write(
            units.join(format!("jobctl-{job}.service")),
            format!(
                "[Unit]\nX-Jobctl-Job={job}\n\n[Service]\nUser={user}\n\
                 StateDirectory=jobctl/users/{user}\nStateDirectoryMode=0700\n"
            ),
        )
        .unwrap();
    }
    let root = || {
        let mut cmd = s.jobctl();
        cmd.arg("--unit-dir").arg(&units);
        cmd
    };
    let out = root().args(["history", "--json"]).run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut seen: Vec<(String, String)> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["job"].as_str().unwrap().to_string(),
                r["owner"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("daemon-job".to_string(), "daemon".to_string()),
            ("nobody-job".to_string(), "nobody".to_string()),
            ("root-job".to_string(), "-".to_string()),
        ]
    );
    // And their output.
    let out = root().args(["logs", "nobody-job"]).run();
    assert_contains(&text(&out.stdout), "out| secret output");
    // Root's reading did not leave files the users cannot use.
    for entry in std::fs::read_dir(&nobody_dir).unwrap() {
        let meta = entry.unwrap().metadata().unwrap();
        assert_eq!(
            meta.uid(),
            nix::unistd::User::from_name("nobody")
                .unwrap()
                .unwrap()
                .uid
                .as_raw()
        );
    }
}
