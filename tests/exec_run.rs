//! `jobctl exec` end to end with the real binary and the fakejob helper:
//! every status from a real run, transparent output and exit status, signal
//! forwarding, retries, lost runs, and the triggers.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn only_run(s: &TestEnv) -> serde_json::Value {
    let runs = s.runs();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    runs[0].clone()
}

#[test]
fn success_records_everything_and_forwards_output() {
    let s = TestEnv::new();
    let steps = ["out", "hello", "err", "warning: x", "out", "bye"];
    let out = s.exec("nightly", &[], &steps);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "hello\nbye\n");
    assert_eq!(text(&out.stderr), "warning: x\n");
    let run = only_run(&s);
    assert_eq!(run["job"], "nightly");
    assert_eq!(run["status"], "success");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["trigger"], "shell");
    assert_eq!(run["attempt"], 1);
    assert_eq!(run["output_bytes"], 21);
    assert_eq!(run["output_truncated"], false);
    assert_eq!(run["user"], whoami());
    assert!(run["pid"].as_u64().unwrap() > 0);
    assert!(run["ended_us"].as_i64().unwrap() >= run["started_us"].as_i64().unwrap());
    assert!(run["invocation_id"].is_null());
    assert_eq!(run["id"].as_str().unwrap().len(), 16);
    assert!(run["started"].as_str().unwrap().ends_with('Z'));
    // The database is private: job output may hold secrets.
    use std::os::unix::fs::PermissionsExt;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", s.db().display());
        if let Ok(meta) = std::fs::metadata(&path) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{path}");
        }
    }
}

fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name
}

#[test]
fn failed_run_propagates_the_exit_code() {
    let s = TestEnv::new();
    let out = s.exec("j", &[], &["err", "boom", "exit", "3"]);
    assert_eq!(out.status.code(), Some(3));
    let run = only_run(&s);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
}

#[test]
fn start_failures_use_env_exit_codes_and_record_error() {
    let s = TestEnv::new();
    let run_cmd = |argv: &[&str], extra: &[&str]| {
        let mut cmd = s.jobctl();
        cmd.arg("exec").arg("--db").arg(s.db()).args(["--job", "e"]);
        cmd.args(extra).arg("--").args(argv);
        cmd.run()
    };
    // Not found: 127.
    let out = run_cmd(&["/nonexistent/program"], &[]);
    assert_eq!(out.status.code(), Some(127));
    assert_contains(&text(&out.stderr), "not found");
    let out = run_cmd(&["no-such-command-anywhere"], &[]);
    assert_eq!(out.status.code(), Some(127));
    // Not executable: 126.
    let script = s.path().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    // (Even root cannot execute a file without any x bit.)
    let out = run_cmd(&[script.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(126));
    // A folder: 126.
    let out = run_cmd(&["/tmp"], &[]);
    assert_eq!(out.status.code(), Some(126));
    // Bad working directory: 125.
    let out = run_cmd(&["/bin/true"], &["--working-directory", "/nonexistent/dir"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("/nonexistent/dir"));

    let runs = s.runs();
    assert_eq!(runs.len(), 5);
    let mut codes: Vec<i64> = runs
        .iter()
        .map(|r| r["exit_code"].as_i64().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, vec![125, 126, 126, 127, 127]);
    for run in &runs {
        assert_eq!(run["status"], "error");
        assert!(run["error"].as_str().unwrap().len() > 5);
        assert!(run["pid"].is_null());
    }
}

#[test]
fn working_directory_is_applied() {
    let s = TestEnv::new();
    let dir = s.path().join("work");
    std::fs::create_dir(&dir).unwrap();
    let out = s.exec(
        "wd",
        &["--working-directory", dir.to_str().unwrap()],
        &["cwd"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout).trim(), dir.to_str().unwrap());
}

#[test]
fn death_by_signal_is_reraised_and_recorded_killed() {
    let s = TestEnv::new();
    let out = s.exec("sig", &[], &["out", "before", "kill", "USR1"]);
    assert_eq!(out.status.signal(), Some(Signal::SIGUSR1 as i32));
    assert_eq!(text(&out.stdout), "before\n");
    let run = only_run(&s);
    assert_eq!(run["status"], "killed");
    assert_eq!(run["signal"], Signal::SIGUSR1 as i32);
    assert!(run["exit_code"].is_null());
    // A command that dumps core does not make the shim dump its own.
    let out = s.exec("sig", &[], &["kill", "SEGV"]);
    assert_eq!(out.status.signal(), Some(Signal::SIGSEGV as i32));
    assert!(!out.status.core_dumped());
}

#[test]
fn stdout_and_stderr_interleave_in_the_order_written() {
    let s = TestEnv::new();
    // The shim's stdout and stderr go to one file; fakejob waits until each
    // line has reached it before writing the next, so the order the shim
    // sees is fixed without sleeping. (Two pipes that are both readable at
    // once cannot tell which was written first; this fixes that order.)
    let forwarded = s.path().join("forwarded");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&forwarded)
        .unwrap();
    let f = forwarded.to_str().unwrap();
    let mut cmd = s.jobctl();
    cmd.args(["exec", "--job", "mix", "--db"])
        .arg(s.db())
        .arg("--")
        .arg(FAKEJOB);
    for (stream, line) in [
        ("out", "o1"),
        ("err", "e1"),
        ("out", "o2"),
        ("err", "e2"),
        ("out", "o3"),
    ] {
        cmd.args([stream, line, "await-file", f, line]);
    }
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    assert!(cmd.status().unwrap().success());
    let out = s.read("logs", &["mix"]);
    let text = text(&out.stdout);
    let body: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(
        body,
        ["out| o1", "err| e1", "out| o2", "err| e2", "out| o3"],
        "{text}"
    );
}

#[test]
fn a_prompt_without_newline_is_forwarded_at_once() {
    let s = TestEnv::new();
    let mut child = s
        .jobctl()
        .args(["exec", "--job", "ask", "--db"])
        .arg(s.db())
        .arg("--")
        .arg(FAKEJOB)
        .args(["prompt", "Name? ", "read-line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read until the prompt shows; it has no newline, so a line-buffering
    // wrapper would hang here (the test's own timeout then fails it).
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"Name? ") {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "EOF before the prompt");
        seen.push(byte[0]);
    }
    child.stdin.take().unwrap().write_all(b"Ada\n").unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "got: Ada\n");
    assert!(child.wait().unwrap().success());
}

#[test]
fn long_output_keeps_head_and_tail_and_counts_everything() {
    let s = TestEnv::new();
    let out = s.exec(
        "big",
        &["--output-limit", "64K"],
        &["bytes", "1M", "out", "THE-END"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout.len(), (1 << 20) + 8);
    let run = only_run(&s);
    assert_eq!(run["output_bytes"], (1 << 20) + 8);
    assert_eq!(run["output_truncated"], true);
    let logs = s.read("logs", &["big", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&logs.stdout).unwrap();
    let segs = v["output"].as_array().unwrap();
    let omitted: u64 = segs
        .iter()
        .filter_map(|s| s["omitted_bytes"].as_u64())
        .sum();
    let kept: usize = segs
        .iter()
        .filter_map(|s| s["text"].as_str())
        .map(str::len)
        .sum();
    assert!(omitted > 900_000, "{omitted}");
    assert_eq!(kept as u64 + omitted, (1 << 20) + 8);
    assert!(kept <= 64 << 10);
    let last = segs.last().unwrap()["text"].as_str().unwrap();
    assert!(last.ends_with("THE-END\n"));
    // Raw mode prints the kept bytes exactly.
    let raw = s.read("logs", &["big", "--raw"]);
    assert_eq!(raw.stdout.len(), kept);
    assert!(text(&raw.stderr).contains("omitted"));
}

/// `jobctl exec --job flaky FLAGS` (words separated by spaces) of a command
/// that fails (exit 1) until its `succeeds_at`-th attempt in this
/// environment.
fn exec_flaky(s: &TestEnv, flags: &str, succeeds_at: u32) -> Run {
    let counter = s.path().join("count");
    let steps = [
        "fail-until",
        counter.to_str().unwrap(),
        &succeeds_at.to_string(),
    ];
    let flags: Vec<&str> = flags.split_whitespace().collect();
    s.exec("flaky", &flags, &steps)
}

#[test]
fn retries_until_success_each_attempt_recorded() {
    let s = TestEnv::new();
    let out = exec_flaky(
        &s,
        "--retry-attempts 4 --retry-delay 10ms --retry-backoff 2",
        3,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let runs = s.runs();
    let mut attempts: Vec<(i64, String)> = runs
        .iter()
        .map(|r| {
            (
                r["attempt"].as_i64().unwrap(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    attempts.sort();
    assert_eq!(
        attempts,
        vec![
            (1, "failed".to_string()),
            (2, "failed".to_string()),
            (3, "success".to_string())
        ]
    );
    // Each attempt is a run of its own: its own id, and it starts after
    // the previous attempt ended.
    let ids: std::collections::BTreeSet<&str> =
        runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "{runs:#?}");
    let mut by_attempt: Vec<&serde_json::Value> = runs.iter().collect();
    by_attempt.sort_by_key(|r| r["attempt"].as_i64());
    for pair in by_attempt.windows(2) {
        let (ended, next_started) = (
            pair[0]["ended_us"].as_i64().unwrap(),
            pair[1]["started_us"].as_i64().unwrap(),
        );
        assert!(
            next_started >= ended,
            "attempt {} started at {next_started}, before attempt {} ended at {ended}",
            pair[1]["attempt"],
            pair[0]["attempt"]
        );
    }
}

#[test]
fn retries_give_up_after_the_attempts_and_never_past_the_timeout() {
    let s = TestEnv::new();
    let out = exec_flaky(&s, "--retry-attempts 2", 10);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(s.runs().len(), 2);

    let s = TestEnv::new();
    // The first wait (1h) would end past the timeout (10min): no retry.
    let out = exec_flaky(
        &s,
        "--retry-attempts 5 --retry-delay 1h --timeout 10min",
        10,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(s.runs().len(), 1);
    assert!(text(&out.stderr).contains("past the job's timeout"));
}

/// Starts `jobctl exec` with fakejob writing its pid to a file first; returns
/// the shim and the command's pid once the command runs.
fn start_background(s: &TestEnv, extra: &[&str], steps: &[&str]) -> (std::process::Child, i32) {
    let pidfile = s.path().join("cmd.pid");
    let _ = std::fs::remove_file(&pidfile);
    let child = s
        .jobctl()
        .args(["exec", "--job", "long", "--db"])
        .arg(s.db())
        .args(extra)
        .arg("--")
        .arg(FAKEJOB)
        .arg("pidfile")
        .arg(&pidfile)
        .args(steps)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, wait_for_pid_file(&pidfile))
}

/// [`start_background`] of `steps`, then `touch ready; sleep 60000`;
/// returns once the steps ran.
fn start_until_ready(s: &TestEnv, extra: &[&str], steps: &[&str]) -> (std::process::Child, i32) {
    let ready = s.path().join("ready");
    let tail = ["touch", ready.to_str().unwrap(), "sleep", "60000"];
    let started = start_background(s, extra, &[steps, &tail].concat());
    wait_for("the command's output", Duration::from_secs(20), || {
        ready.exists()
    });
    started
}

#[test]
fn sigterm_is_forwarded_to_the_process_group_and_recorded() {
    // A stop well before the deadline: killed.
    let s = TestEnv::new();
    let (child, cmd_pid) = start_background(&s, &["--timeout", "1h"], &["sleep", "60000"]);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(Signal::SIGTERM as i32));
    // The command got it too: it is gone.
    assert!(kill(Pid::from_raw(cmd_pid), None).is_err());
    let run = only_run(&s);
    assert_eq!(run["status"], "killed");
    assert_eq!(run["signal"], Signal::SIGTERM as i32);

    // A stop at the deadline: timeout. (Deadline 1ms after start: any stop
    // signal comes after it.)
    let s = TestEnv::new();
    let (child, _) = start_until_ready(
        &s,
        &["--timeout", "1ms"],
        &["out", "first", "trap-term", "0"],
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    // The command caught SIGTERM and exited 0: the shim exits 0 too...
    assert_eq!(out.status.code(), Some(0));
    let run = only_run(&s);
    // ...but the run was stopped by the timeout.
    assert_eq!(run["status"], "timeout");
    assert_eq!(run["exit_code"], 0);
    // The completion replaced the provisional row and its output.
    assert!(run["error"].is_null(), "{run:#}");
    assert_eq!(run["output_bytes"], 6);
    let logs = s.read("logs", &["long"]);
    assert_ends_with(&text(&logs.stdout), "\nout| first\n");
}

#[test]
fn a_command_ignoring_sigterm_leaves_a_provisional_status_if_the_shim_is_killed() {
    let s = TestEnv::new();
    // The output is in the pipes (or already read) before the stop.
    let (child, cmd_pid) = start_until_ready(
        &s,
        &["--timeout", "1h"],
        &["out", "done so far", "err", "a warning", "ignore-term"],
    );
    let shim = Pid::from_raw(child.id() as i32);
    kill(shim, Signal::SIGTERM).unwrap();
    // The shim records the stop at once; wait for that row.
    wait_for("the provisional stop row", Duration::from_secs(20), || {
        s.runs().first().is_some_and(|r| r["status"] == "killed")
    });
    // systemd's final SIGKILL to the unit.
    kill(shim, Signal::SIGKILL).unwrap();
    let _ = kill(Pid::from_raw(cmd_pid), Signal::SIGKILL);
    child.wait_with_output().unwrap();
    let run = only_run(&s);
    assert_eq!(run["status"], "killed");
    assert_eq!(run["signal"], Signal::SIGTERM as i32);
    assert!(run["error"].is_null(), "{run:#}");
    // The output captured up to the stop was stored with that first row.
    assert_eq!(run["output_bytes"], 22);
    let logs = s.read("logs", &["long"]);
    let body: Vec<String> = text(&logs.stdout)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert_eq!(
        body,
        ["out| done so far", "err| a warning"],
        "{}",
        text(&logs.stderr)
    );
}

#[test]
fn a_shim_killed_mid_run_shows_as_lost() {
    let s = TestEnv::new();
    let (child, cmd_pid) = start_background(&s, &[], &["sleep", "60000"]);
    assert_eq!(only_run(&s)["status"], "running");
    let shim = Pid::from_raw(child.id() as i32);
    kill(shim, Signal::SIGKILL).unwrap();
    child.wait_with_output().unwrap();
    let _ = kill(Pid::from_raw(cmd_pid), Signal::SIGKILL);
    let run = only_run(&s);
    assert_eq!(run["status"], "lost");
    assert!(run["ended_us"].is_null());
    // The table and the status filter agree.
    let out = s.read("history", &["--status", "lost"]);
    assert_contains(&text(&out.stdout), " lost ");
    let out = s.read("history", &["--status", "running"]);
    assert_eq!(text(&out.stdout), "No runs recorded.\n");
}

#[test]
fn descendants_that_outlive_the_command_do_not_hold_the_shim() {
    let s = TestEnv::new();
    let orphan_pid = s.path().join("orphan.pid");
    // The orphan keeps the output pipes open for a minute; the shim must
    // return as soon as the command itself exits.
    let mut cmd = s.jobctl();
    cmd.args(["exec", "--job", "forker", "--db"])
        .arg(s.db())
        .arg("--")
        .arg(FAKEJOB);
    cmd.args(["spawn-orphan", "60000"])
        .arg(&orphan_pid)
        .args(["out", "parent done"]);
    let start = std::time::Instant::now();
    let out = run_to_files(&s, &mut cmd);
    assert!(start.elapsed() < Duration::from_secs(50));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("parent done"));
    // The orphan writes its pid once it runs (maybe after the shim is gone).
    let pid = wait_for_pid_file(&orphan_pid);
    // Still alive: not the shim's to clean up (systemd's cgroup kill is).
    assert!(kill(Pid::from_raw(pid), None).is_ok());
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    assert_eq!(only_run(&s)["status"], "success");
}

/// `Command::output` that does not wait for pipe EOF (the orphan holds the
/// pipes): the streams go to files of the environment.
fn run_to_files(s: &TestEnv, cmd: &mut std::process::Command) -> Run {
    let out_path = s.path().join("stdout");
    let err_path = s.path().join("stderr");
    cmd.stdout(std::fs::File::create(&out_path).unwrap());
    cmd.stderr(std::fs::File::create(&err_path).unwrap());
    let status = cmd.status().unwrap();
    Run(std::process::Output {
        status,
        stdout: std::fs::read(&out_path).unwrap(),
        stderr: std::fs::read(&err_path).unwrap(),
    })
}

#[test]
fn triggers_come_from_systemd_variables_or_the_flag() {
    let s = TestEnv::new();
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case<'_>; 4] = [
        (&[], &[], "shell"),
        (
            &[("INVOCATION_ID", "0123456789abcdef0123456789abcdef")],
            &[],
            "manual",
        ),
        (
            &[
                ("INVOCATION_ID", "fedcba9876543210fedcba9876543210"),
                ("TRIGGER_UNIT", "jobctl-t.timer"),
            ],
            &[],
            "timer",
        ),
        (&[], &["--trigger", "manual"], "manual"),
    ];
    for (env, flags, expected) in cases {
        let mut cmd = s.jobctl();
        cmd.args(["exec", "--job", expected, "--db"])
            .arg(s.db())
            .args(flags);
        cmd.envs(env.iter().copied()).arg("--").arg("/bin/true");
        assert!(cmd.status().unwrap().success());
        let runs = s.runs();
        let run = &runs[0];
        assert_eq!(run["trigger"], expected, "{env:?} {flags:?}");
        if let Some((_, id)) = env.iter().find(|(k, _)| *k == "INVOCATION_ID") {
            assert_eq!(run["invocation_id"], *id);
        }
    }
}

#[test]
fn past_not_after_the_command_is_not_run() {
    let s = TestEnv::new();
    let marker = s.path().join("ran");
    let out = s.exec(
        "old",
        &["--not-after", "2020-01-01T00:00:00+08:00"],
        &["touch", marker.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(!marker.exists());
    assert!(text(&out.stderr).contains("expired"));
    assert_eq!(only_run(&s)["status"], "expired");
    // Before not_after it runs.
    let out = s.exec(
        "new",
        &["--not-after", "2999-01-01T00:00:00Z"],
        &["touch", marker.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(marker.exists());
}

#[test]
fn bad_flags_are_refused_before_anything_runs() {
    let s = TestEnv::new();
    for flags in [
        &["--timeout", "soon"][..],
        &["--output-limit", "lots"],
        &["--not-after", "2027-03-01"],
    ] {
        let out = s
            .jobctl()
            .args(["exec", "--job", "x", "--db"])
            .arg(s.db())
            .args(flags)
            .args(["--", "/bin/true"])
            .run();
        assert!(!out.status.success(), "{flags:?}");
        assert_contains(&text(&out.stderr), flags[0]);
    }
    let out = s
        .jobctl()
        .args(["exec", "--job", "x", "--retry-attempts", "0", "--db"])
        .arg(s.db())
        .args(["--", "/bin/true"])
        .run();
    assert_eq!(out.status.code(), Some(125));
    assert!(!s.db().exists());
}

#[test]
fn default_location_is_the_state_directory_systemd_passes() {
    let s = TestEnv::new();
    // What StateDirectory=jobctl/users/etl gives (JOBCTL_STATE_DIR is the
    // scratch folder's `state`).
    let state = s.path().join("state/users/etl");
    std::fs::create_dir_all(&state).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        // StateDirectoryMode=0700, as the renderer writes it.
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // The job's own StateDirectory= (service_extra) may come first; the
    // runs still go to jobctl's users folder.
    let app = s.path().join("app-state");
    std::fs::create_dir(&app).unwrap();
    let out = s
        .jobctl()
        .env(
            "STATE_DIRECTORY",
            format!("{}:{}:/elsewhere", app.display(), state.display()),
        )
        .args(["exec", "--job", "u", "--", "/bin/true"])
        .run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(s.runs_in(&state.join("history.db")).len(), 1);
    assert!(!app.join("history.db").exists());
    // A root job with only its own StateDirectory=: the main database.
    let out = s
        .jobctl()
        .env("STATE_DIRECTORY", &app)
        .args(["exec", "--job", "w", "--", "/bin/true"])
        .run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!app.join("history.db").exists());
    let listed = s.jobctl().args(["history", "--json"]).run();
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v["runs"][0]["job"], "w");
    // Without it: the state folder (created), as readers expect.
    let out = s
        .jobctl()
        .args(["exec", "--job", "v", "--", "/bin/true"])
        .run();
    assert!(out.status.success());
    let listed = s.jobctl().args(["history", "--json"]).run();
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(v["runs"][0]["job"], "v");
}

#[test]
fn global_options_before_or_after_exec() {
    // `jobctl --user exec` (what user-mode units run) and global options
    // among the exec arguments (handled by the full parser) both work.
    let s = TestEnv::new();
    let state = s.path().join("state");
    for args in [
        &["--user", "exec", "--job", "a", "--", "/bin/true"][..],
        &["exec", "--user", "--job", "b", "--", "/bin/true"],
        &[
            "exec",
            "--config",
            "/nonexistent.toml",
            "--job",
            "c",
            "--",
            "/bin/true",
        ],
    ] {
        let out = s.jobctl().args(args).run();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let jobs = jobs_of(&s.runs_in(&state.join("history.db")));
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    let help = s.jobctl().args(["exec", "--help"]).run();
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("--retry-attempts"));
}

/// `jobctl exec` under an address-space limit: a shim that tried to allocate
/// gigabytes fails at once instead of waking the OOM killer.
fn exec_with_memory_limit(s: &TestEnv, flags: &[&str]) -> Run {
    use std::os::unix::process::CommandExt;
    let mut cmd = s.jobctl();
    cmd.args(["exec", "--job", "capped", "--db"])
        .arg(s.db())
        .args(flags)
        .args(["--", FAKEJOB, "exit", "0"])
        .stdin(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            use nix::sys::resource::{Resource, setrlimit};
            setrlimit(Resource::RLIMIT_AS, 1 << 30, 1 << 30).map_err(std::io::Error::from)
        });
    }
    cmd.run()
}

#[test]
fn retry_attempts_are_capped_as_in_job_files() {
    // `--retry-attempts 4294967295` once made the shim compute every wait
    // before the first run (tens of GB). The flag takes what a job file
    // takes: 1 to 100 attempts.
    let s = TestEnv::new();
    for attempts in ["4294967295", "101"] {
        let out = exec_with_memory_limit(&s, &["--retry-attempts", attempts]);
        assert_eq!(
            out.status.code(),
            Some(125),
            "{attempts}: {:?} {}",
            out.status,
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("--retry-attempts") && stderr.contains("1 to 100"),
            "{stderr}"
        );
    }
    assert!(!s.db().exists(), "nothing was recorded");
    // The cap itself is accepted, and a run that succeeds needs no wait.
    let out = exec_with_memory_limit(&s, &["--retry-attempts", "100", "--retry-delay", "1h"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(only_run(&s)["status"], "success");
}

#[test]
fn job_names_the_job_file_rule_refuses_are_refused() {
    // A job file's name is checked (letters, digits, '_', '.', '-'); the
    // shim's --job takes the same names, so nobody can record a run under a
    // name no job can have: empty, with line breaks, with terminal escapes.
    let s = TestEnv::new();
    let marker = s.path().join("ran");
    for (name, expected) in [
        ("", "empty"),
        ("two\nlines", "a newline"),
        ("x\x1b[2J\x1b[31mFAKE", "U+001B"),
        ("tab\there", "tab"),
        ("-dash", "starts with"),
        ("a b", "space"),
    ] {
        let out = s
            .jobctl()
            .args(["exec", "--db"])
            .arg(s.db())
            .arg(format!("--job={name}"))
            .arg("--")
            .arg(FAKEJOB)
            .arg("touch")
            .arg(&marker)
            .stdin(Stdio::null())
            .run();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{name:?}: {stderr}");
        assert!(stderr.contains("--job"), "{name:?}: {stderr}");
        assert!(stderr.contains(expected), "{name:?}: {stderr}");
        // The refused name is not echoed raw.
        assert!(!stderr.contains('\x1b'), "{name:?}: {stderr:?}");
        assert!(!marker.exists(), "{name:?}: the command ran");
    }
    assert!(!s.db().exists(), "nothing was recorded");
    // The full parser (global options among the exec arguments) too.
    let out = s
        .jobctl()
        .args(["exec", "--user", "--job", "", "--", "/bin/true"])
        .run();
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
}

/// `logs JOB` of the run, its lines (the header left out).
fn log_lines(s: &TestEnv, job: &str) -> Vec<String> {
    let out = s.read("logs", &[job]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .skip(1)
        .map(String::from)
        .collect()
}

#[test]
fn each_stream_keeps_its_order_and_across_streams_pieces_are_as_read() {
    // What two pipes can promise: every line of each stream, in that
    // stream's order. Across the streams, writes close in time come back in
    // the order the shim read them (often grouped: all that was waiting on
    // stdout, then all on stderr), not necessarily the order written.
    let s = TestEnv::new();
    let out = s.exec("two-pipes", &[], &["alternate", "200"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines = log_lines(&s, "two-pipes");
    assert_eq!(lines.len(), 400);
    let stream = |mark: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(mark))
            .map(String::from)
            .collect()
    };
    let expected = |p: &str| -> Vec<String> { (1..=200).map(|i| format!("{p}{i}")).collect() };
    assert_eq!(stream("out| "), expected("o"));
    assert_eq!(stream("err| "), expected("e"));
    // The forwarded streams are the command's, unchanged.
    assert_eq!(
        text(&out.stdout),
        (1..=200).map(|i| format!("o{i}\n")).collect::<String>()
    );
    assert_eq!(
        text(&out.stderr),
        (1..=200).map(|i| format!("e{i}\n")).collect::<String>()
    );
}

#[test]
fn merged_output_keeps_the_exact_order_of_both_streams() {
    // --merge-output (the job key `merge_output = true`): one pipe for both
    // streams, so the capture has exactly the order written; the streams are
    // no longer told apart, and everything is forwarded to the shim's stdout.
    let s = TestEnv::new();
    let out = s.exec(
        "one-pipe",
        &["--merge-output"],
        &["alternate", "200", "exit", "4"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let written: Vec<String> = (1..=200)
        .flat_map(|i| [format!("o{i}"), format!("e{i}")])
        .collect();
    let forwarded: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(forwarded, written);
    assert_eq!(text(&out.stderr), "");
    let marked: Vec<String> = written.iter().map(|l| format!("o+e| {l}")).collect();
    assert_eq!(log_lines(&s, "one-pipe"), marked);
    let json = s.read("logs", &["one-pipe", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let segments = v["output"].as_array().unwrap();
    assert!(
        segments.iter().all(|seg| seg["stream"] == "merged"),
        "{v:#}"
    );
    let run = only_run(&s);
    assert_eq!(run["output_bytes"], out.stdout.len());
    assert_eq!(run["status"], "failed");
    // Through the fork path too (a working directory).
    let s = TestEnv::new();
    let dir = s.path().to_str().unwrap().to_string();
    let out = s.exec(
        "one-pipe",
        &["--merge-output", "--working-directory", &dir],
        &["alternate", "50"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written: Vec<String> = (1..=50)
        .flat_map(|i| [format!("o+e| o{i}"), format!("o+e| e{i}")])
        .collect();
    assert_eq!(log_lines(&s, "one-pipe"), written);
}

#[test]
fn sigint_sighup_and_sigquit_are_forwarded_like_sigterm() {
    // Each stop signal reaches the command's whole group; the command dies
    // of it, the shim dies of the same signal, the run is `killed` with it,
    // and a stop is never retried.
    for sig in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT] {
        let s = TestEnv::new();
        let pidfile = s.path().join("cmd.pid");
        let mut cmd = s.jobctl();
        cmd.args(["exec", "--job", "stopped", "--retry-attempts", "3", "--db"])
            .arg(s.db())
            .arg("--")
            .arg(FAKEJOB)
            .arg("pidfile")
            .arg(&pidfile)
            .args(["sleep", "60000"])
            .stdin(Stdio::null());
        // Whatever this test runs under (a shell's background job ignores
        // SIGINT and SIGQUIT), the shim starts with default dispositions.
        use std::os::unix::process::CommandExt;
        // SAFETY: signal(2) with SIG_DFL is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                use nix::sys::signal::{SigHandler, signal};
                for s in [Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT] {
                    signal(s, SigHandler::SigDfl).map_err(std::io::Error::from)?;
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        let mut pid = 0;
        wait_for("the command's pid file", Duration::from_secs(20), || {
            pid = std::fs::read_to_string(&pidfile)
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            pid > 0
        });
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.signal(), Some(sig as i32), "{sig}: {out:?}");
        assert!(!out.status.core_dumped(), "{sig}");
        assert!(
            kill(Pid::from_raw(pid), None).is_err(),
            "{sig}: the command lives on"
        );
        let run = only_run(&s);
        assert_eq!(run["status"], "killed", "{sig}");
        assert_eq!(run["signal"], sig as i32, "{sig}");
        assert_eq!(run["attempt"], 1, "{sig}");
    }
}
