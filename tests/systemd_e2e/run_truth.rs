//! What jobctl says about systemd is true (issue 11, "Trust II"): a start
//! that did not happen is never reported as a run, systemd's start limit
//! never swallows a scheduled run, a unit systemd cannot load is refused or
//! reported, and the shim's records of real timeouts, stops, retries and
//! systemd's final SIGKILL.

use super::*;

/// `jobctl run`'s exit status when the job did not start (docs/operations.md).
const NOT_STARTED: i32 = 4;

/// `run --json` of `job`, with its exit status.
fn run_json(env: &Env, dir: &Path, args: &[&str]) -> Result<(Option<i32>, Value), Failed> {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = env.jobctl_in(dir, &all);
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("run {args:?}: no JSON report ({e}): {}", text(&out)))?;
    Ok((out.status.code(), report))
}

/// Checks a `run --json` report of a start that did not happen.
fn not_started(what: &str, (code, report): &(Option<i32>, Value), reason: &str) -> R {
    check(
        *code == Some(NOT_STARTED)
            && report["started"] == false
            && report["reason"] == reason
            && report["message"].is_string()
            && report["exit_status"].is_null()
            && report["result"].is_null(),
        || format!("{what}: want exit {NOT_STARTED}, reason {reason}: exit {code:?}, {report:#}"),
    )
}

pub fn run_reports_starts_that_did_not_happen(env: &Env) -> R {
    let dir = env.jobs_dir("not-started");
    // A start limit set low on purpose: jobctl's own units have none.
    let limit = "[unit_extra]\nStartLimitBurst = \"2\"\nStartLimitIntervalSec = \"1h\"\n";
    write_job(
        &dir,
        "limited",
        &format!(
            "command = [\"/bin/sh\", \"-c\", \"echo ran-limited; exit 1\"]\nmanual = true\n{limit}"
        ),
    );
    // Scheduled: its timer keeps the service loaded, and with it systemd's
    // count of its starts (a manual-only service that succeeded is unloaded).
    write_job(
        &dir,
        "limited-ok",
        &format!("command = [\"/bin/true\"]\ndaily = \"03:00\"\n{limit}"),
    );
    write_job(
        &dir,
        "unmet",
        "command = [\"/bin/true\"]\nmanual = true\n[unit_extra]\nConditionPathExists = \"/nonexistent-e2e\"\n",
    );
    write_job(
        &dir,
        "needs-broken",
        "command = [\"/bin/true\"]\nmanual = true\nafter = [\"e2e-broken-dep.service\"]\n[unit_extra]\nRequires = \"e2e-broken-dep.service\"\n",
    );
    write_job(&dir, "hidden", "command = [\"/bin/true\"]\nmanual = true\n");
    write_job(
        &dir,
        "slow-one",
        "command = [\"/bin/sleep\", \"30\"]\nmanual = true\n",
    );
    env.sh(
        "printf '[Service]\\nType=oneshot\\nExecStart=/bin/false\\n' > /etc/systemd/system/e2e-broken-dep.service",
    )?;
    env.apply(&dir)?;

    // Two real runs, then systemd refuses the third start.
    for _ in 0..2 {
        let out = env.jobctl_in(&dir, &["run", "limited", "--wait"]);
        check(out.status.code() == Some(1), || text(&out))?;
    }
    let last = env.prop("jobctl-limited.service", "InvocationID")?;
    let refused = run_json(env, &dir, &["limited", "--wait"])?;
    not_started("limited --wait", &refused, "start-limit-hit")?;
    check(refused.1["invocation_id"].is_null(), || {
        format!(
            "the previous run ({last}) reported as this one: {:#}",
            refused.1
        )
    })?;
    check(env.runs("limited")?.len() == 2, || "a third run".into())?;
    // In words, and never "finished".
    let out = env.jobctl_in(&dir, &["run", "limited", "--wait"]);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(NOT_STARTED)
            && err.contains("did not start")
            && err.contains("start limit")
            && !err.contains("finished"),
        || text(&out),
    )?;
    // --follow does not replay the previous run's output.
    let out = env.jobctl_in(&dir, &["run", "limited", "--follow"]);
    check(
        out.status.code() == Some(NOT_STARTED)
            && !String::from_utf8_lossy(&out.stdout).contains("ran-limited"),
        || text(&out),
    )?;
    // Without --wait.
    not_started(
        "limited",
        &run_json(env, &dir, &["limited"])?,
        "start-limit-hit",
    )?;
    // The previous run succeeded: systemd's Result says start-limit-hit and
    // the exit status is still 0, but nothing ran: not 0.
    for _ in 0..2 {
        ok(&env.jobctl_in(&dir, &["run", "limited-ok", "--wait"]))?;
    }
    let out = env.jobctl_in(&dir, &["run", "limited-ok", "--wait"]);
    check(out.status.code() == Some(NOT_STARTED), || text(&out))?;
    check(env.runs("limited-ok")?.len() == 2, || "a third run".into())?;

    // A condition that is not met: systemd's job is "done", nothing ran.
    let unmet = run_json(env, &dir, &["unmet", "--wait"])?;
    not_started("unmet --wait", &unmet, "condition-failed")?;
    check(
        unmet.1["message"]
            .as_str()
            .is_some_and(|m| m.contains("ConditionPathExists=/nonexistent-e2e")),
        || format!("{:#}", unmet.1),
    )?;
    not_started(
        "unmet",
        &run_json(env, &dir, &["unmet"])?,
        "condition-failed",
    )?;
    check(env.runs("unmet")?.is_empty(), || "unmet ran".into())?;

    // A dependency that fails.
    not_started(
        "needs-broken --wait",
        &run_json(env, &dir, &["needs-broken", "--wait"])?,
        "dependency-failed",
    )?;
    check(env.runs("needs-broken")?.is_empty(), || "ran".into())?;

    // A masked unit (a mask above the unit folder, where an operator's
    // `systemctl mask --runtime` cannot reach a unit in /etc).
    env.sh(
        "mkdir -p /run/systemd/system.control && ln -sf /dev/null /run/systemd/system.control/jobctl-hidden.service && systemctl daemon-reload",
    )?;
    let masked = run_json(env, &dir, &["hidden", "--wait"]);
    env.sh("rm -f /run/systemd/system.control/jobctl-hidden.service && systemctl daemon-reload")?;
    not_started("hidden --wait", &masked?, "masked")?;

    // Already running: reported, with the running invocation, not started.
    let (code, report) = run_json(env, &dir, &["slow-one"])?;
    check(
        code == Some(0) && report["started"] == true && report["invocation_id"].is_string(),
        || format!("{code:?} {report:#}"),
    )?;
    let running = report["invocation_id"].clone();
    let second = run_json(env, &dir, &["slow-one", "--wait"])?;
    env.sh("systemctl stop jobctl-slow-one.service")?;
    not_started("slow-one again", &second, "already-running")?;
    check(
        second.1["already_running"] == true && second.1["invocation_id"] == running,
        || format!("{:#}", second.1),
    )?;
    env.sh("rm -f /etc/systemd/system/e2e-broken-dep.service && systemctl daemon-reload")?;
    Ok(())
}

pub fn start_limits_never_swallow_scheduled_runs(env: &Env) -> R {
    let dir = env.jobs_dir("start-limits");
    // A valid every-second job runs on and on (systemd's default limit,
    // 5 starts in 10 s, stopped it after a few runs).
    write_job(
        &dir,
        "fast",
        "command = [\"/bin/true\"]\nevery = \"1s\"\naccuracy = \"1ms\"\n",
    );
    write_job(
        &dir,
        "restarting",
        "command = [\"/bin/true\"]\nmanual = true\n[service_extra]\nRestart = \"on-failure\"\n",
    );
    // Manual runs never make the next timer run vanish.
    let (at, when) = utc_in(9);
    write_job(
        &dir,
        "manual-then-timer",
        &format!("command = [\"/bin/true\"]\non_calendar = \"{when}\"\ntimezone = \"UTC\"\n"),
    );
    env.apply(&dir)?;
    env.expect_prop(
        "jobctl-fast.service",
        "StartLimitIntervalUSec",
        "0",
        "a start limit on a job service",
    )?;
    // With Restart= the limit guards a restart loop: systemd's default stays.
    let restarting = env.prop("jobctl-restarting.service", "StartLimitIntervalUSec")?;
    check(restarting == "10s", || {
        format!("Restart= job's start limit interval: {restarting}")
    })?;
    for i in 0..6 {
        let out = env.jobctl_in(&dir, &["run", "manual-then-timer", "--wait"]);
        check(out.status.code() == Some(0), || {
            format!("manual run {}: {}", i + 1, text(&out))
        })?;
    }
    check(env.runs("manual-then-timer")?.len() == 6, || {
        "six manual runs".into()
    })?;
    check(jiff::Timestamp::now() < at, || {
        "the manual runs took until the timer's elapse; the case proves nothing".into()
    })?;
    env.wait_for_run("manual-then-timer", Duration::from_secs(30), |r| {
        r["trigger"] == "timer"
    })?;
    // Under systemd's default limit (5 starts in 10 s) the sixth start of
    // every 10-s window is refused: "Start request repeated too quickly".
    env.wait_for(
        "eight runs of an every-second job",
        Duration::from_secs(40),
        || Ok(env.runs("fast")?.len() >= 8),
    )?;
    let refused = env.sh(
        "journalctl -b -o cat -u jobctl-fast.service | grep -c 'Start request repeated too quickly' || true",
    )?;
    check(refused.trim() == "0", || {
        format!(
            "systemd refused {} scheduled starts of fast",
            refused.trim()
        )
    })?;
    let result = env.prop("jobctl-fast.service", "Result")?;
    check(result == "success", || format!("fast: Result={result}"))?;
    env.expect_prop(
        "jobctl-fast.timer",
        "ActiveState",
        "active",
        "the timer stopped",
    )?;

    // A job that sets its own limit hits it: health and status say so.
    write_job(
        &dir,
        "once",
        "command = [\"/bin/true\"]\ndaily = \"03:00\"\n[unit_extra]\nStartLimitBurst = \"1\"\nStartLimitIntervalSec = \"1h\"\n",
    );
    fs::remove_file(dir.join("fast.toml"))?;
    // Its one date has passed: validate would now refuse it (never fires).
    fs::remove_file(dir.join("manual-then-timer.toml"))?;
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "once", "--wait"]))?;
    let out = env.jobctl_in(&dir, &["run", "once", "--wait"]);
    check(out.status.code() == Some(NOT_STARTED), || text(&out))?;
    env.expect_prop(
        "jobctl-once.service",
        "Result",
        "start-limit-hit",
        "systemd's result",
    )?;
    let out = env.jobctl_in(&dir, &["health", "once"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.code() == Some(1)
            && stdout.contains("once: start-limit-hit:")
            && !stdout.contains("could not run or record"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["status", "once"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.success()
            && stdout.contains("start-limit-hit:")
            && !stdout.contains("problems:   none"),
        || text(&out),
    )?;
    env.sh("systemctl reset-failed jobctl-once.service")?;
    Ok(())
}

pub fn units_systemd_cannot_load_are_refused_or_reported(env: &Env) -> R {
    let dir = env.jobs_dir("cannot-load");
    let words = |n: usize, len: usize| {
        let word = format!("\"{}\"", "x".repeat(len));
        vec![word; n].join(", ")
    };
    let refused = |job: &str, key: &str| -> R {
        let out = env.jobctl_in(&dir, &["validate"]);
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(2)
                && err.contains(&format!("{job}.toml:"))
                && err.contains(&format!("`{key}`")),
            || format!("validate {job}: {}", text(&out)),
        )?;
        // Skipped (exit 6) by default, refused (exit 2) with --strict.
        for (args, want) in [(&["apply"][..], 6), (&["apply", "--strict"][..], 2)] {
            let out = env.jobctl_in(&dir, args);
            check(
                out.status.code() == Some(want)
                    && !env.unit_path(&format!("jobctl-{job}.service")).exists(),
                || format!("{args:?} {job}: {}", text(&out)),
            )?;
        }
        fs::remove_file(dir.join(format!("{job}.toml")))?;
        Ok(())
    };
    // A 1.2 MB ExecStart= line: systemd reads lines of up to 1 MiB.
    write_job(
        &dir,
        "huge",
        &format!(
            "command = [\"/bin/echo\", {}]\nmanual = true\n",
            words(40, 30_000)
        ),
    );
    refused("huge", "command")?;
    // A 3 MB environment (each variable within the 32 KiB jobctl allows):
    // Linux refuses to exec it (systemd: 203/EXEC).
    let mut env_table = String::from("[environment]\n");
    for i in 0..100 {
        env_table.push_str(&format!("BIG_{i} = \"{}\"\n", "y".repeat(30_000)));
    }
    write_job(
        &dir,
        "bigenv",
        &format!("command = [\"/bin/true\"]\nmanual = true\n{env_table}"),
    );
    refused("bigenv", "environment")?;
    // An ExecStart= line of exactly the longest length validate accepts
    // loads and runs; one byte more is refused by validate, and systemd
    // itself refuses a unit with such a line.
    const LINE_MAX: usize = 1024 * 1024 - 1;
    let near = |last: usize| {
        format!(
            "command = [\"/bin/true\", {}, \"{}\"]\nmanual = true\n",
            words(32, 32_000),
            "z".repeat(last)
        )
    };
    let exec_line = |service: &str| {
        service
            .lines()
            .find(|l| l.starts_with("ExecStart="))
            .map_or(0, str::len)
    };
    write_job(&dir, "near", &near(1));
    let near_file = dir.join("near.toml");
    let out = env.jobctl_in(&dir, &["render", "--json", near_file.to_str().unwrap()]);
    ok(&out)?;
    let rendered: Value = serde_json::from_slice(&out.stdout)?;
    let measured = exec_line(
        rendered["jobs"][0]["service"]["contents"]
            .as_str()
            .unwrap_or(""),
    );
    let longest = 1 + LINE_MAX - measured;
    write_job(&dir, "near", &near(longest + 1));
    let out = env.jobctl_in(&dir, &["validate"]);
    check(
        out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("1 MiB"),
        || format!("one byte over: {}", text(&out)),
    )?;
    write_job(&dir, "near", &near(longest));
    // A setting systemd refuses to load (Restart=always on a oneshot).
    write_job(
        &dir,
        "restarts",
        "command = [\"/bin/true\"]\nmanual = true\n[service_extra]\nRestart = \"always\"\n",
    );
    ok(&env.jobctl_in(&dir, &["validate"]))?;
    let out = env.jobctl_in(&dir, &["apply"]);
    let all = text(&out);
    check(
        out.status.code() == Some(1)
            && all.contains("restarts")
            && all.contains("jobctl-restarts.service")
            && all.contains("bad unit file setting"),
        || format!("apply: {all}"),
    )?;
    env.expect_prop(
        "jobctl-restarts.service",
        "LoadState",
        "bad-setting",
        "LoadState",
    )?;
    env.expect_prop(
        "jobctl-near.service",
        "LoadState",
        "loaded",
        "near did not load",
    )?;
    let installed = fs::read_to_string(env.unit_path("jobctl-near.service"))?;
    check(exec_line(&installed) == LINE_MAX, || {
        format!("ExecStart= is {} bytes", exec_line(&installed))
    })?;
    let out = env.jobctl_in(&dir, &["run", "near", "--wait"]);
    check(out.status.code() == Some(0), || text(&out))?;
    check(env.runs("near")?[0]["status"] == "success", || {
        "near".into()
    })?;
    // The same unit with one more byte on that line, installed by hand.
    let too_long: String = installed
        .lines()
        .map(|l| match l {
            l if l.starts_with("ExecStart=") => format!("{l}z\n"),
            l if l.starts_with("X-Jobctl-") => String::new(),
            l => format!("{l}\n"),
        })
        .collect();
    fs::write(
        env.sb_path("/etc/systemd/system/e2e-too-long.service"),
        too_long,
    )?;
    env.sh("systemctl daemon-reload")?;
    let state = env.prop("e2e-too-long.service", "LoadState")?;
    env.sh("rm /etc/systemd/system/e2e-too-long.service && systemctl daemon-reload")?;
    check(state == "error", || {
        format!("systemd loaded a line of {} bytes: {state}", LINE_MAX + 1)
    })?;
    // Every later apply says so too, although it writes nothing.
    let out = env.jobctl_in(&dir, &["apply", "--json"]);
    check(
        out.status.code() == Some(1) && text(&out).contains("bad unit file setting"),
        || format!("second apply: {}", text(&out)),
    )?;
    // status, health and run tell the truth.
    let out = env.jobctl_in(&dir, &["status", "restarts"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        stdout.contains("not-loaded:") && !stdout.contains("problems:   none"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["health", "restarts"]);
    check(
        out.status.code() == Some(1)
            && String::from_utf8_lossy(&out.stdout).contains("restarts: not-loaded:"),
        || text(&out),
    )?;
    let report = run_json(env, &dir, &["restarts", "--wait"])?;
    not_started("restarts", &report, "not-loaded")?;
    check(
        !text(&env.jobctl_in(&dir, &["run", "restarts"])).contains("dropped the connection"),
        || "run blames the connection".into(),
    )?;
    fs::remove_file(dir.join("restarts.toml"))?;
    fs::remove_file(dir.join("near.toml"))?;
    env.apply(&dir)?;
    Ok(())
}

pub fn real_timeouts_stops_retries_and_sigkill_are_recorded(env: &Env) -> R {
    let dir = env.jobs_dir("real-ends");
    write_job(
        &dir,
        "overtime",
        "command = [\"/bin/sleep\", \"30\"]\nmanual = true\ntimeout = \"2s\"\n",
    );
    write_job(
        &dir,
        "stopped-midway",
        "command = [\"/bin/sleep\", \"30\"]\nmanual = true\n",
    );
    write_job(
        &dir,
        "retrying",
        "command = [\"/bin/sh\", \"-c\", \"echo attempt; exit 7\"]\nmanual = true\nretry = { attempts = 3, delay = \"1s\", backoff = 2.0 }\n",
    );
    // Ignores SIGTERM: systemd's final SIGKILL (TimeoutStopSec=) ends the
    // command and the shim together.
    write_job(
        &dir,
        "stubborn",
        "command = [\"/bin/sh\", \"-c\", \"trap '' TERM; sleep 30; sleep 30\"]\nmanual = true\ntimeout = \"2s\"\n[service_extra]\nTimeoutStopSec = \"2s\"\n",
    );
    env.apply(&dir)?;

    // TimeoutStartSec= expires: SIGTERM reaches the shim, which forwards it.
    let (code, report) = run_json(env, &dir, &["overtime", "--wait"])?;
    check(
        code == Some(128 + 15) && report["result"] == "timeout" && report["started"] == true,
        || format!("{code:?} {report:#}"),
    )?;
    let run = &env.runs("overtime")?[0];
    check(
        run["status"] == "timeout" && run["invocation_id"] == report["invocation_id"],
        || format!("{run:#}"),
    )?;

    // systemctl stop in the middle of a run.
    ok(&env.jobctl_in(&dir, &["run", "stopped-midway"]))?;
    env.wait_for_run("stopped-midway", Duration::from_secs(10), |r| {
        r["status"] == "running"
    })?;
    env.sh("systemctl stop jobctl-stopped-midway.service")?;
    let run = env.wait_for_run("stopped-midway", Duration::from_secs(10), |r| {
        r["status"] != "running"
    })?;
    check(run["status"] == "killed" && run["signal"] == 15, || {
        format!("{run:#}")
    })?;

    // Retries under systemd: one row per attempt, one invocation, the waits
    // (1 s, then 2 s) respected.
    let (code, report) = run_json(env, &dir, &["retrying", "--wait"])?;
    check(code == Some(7), || format!("{code:?} {report:#}"))?;
    let mut runs = env.runs("retrying")?;
    runs.reverse();
    check(runs.len() == 3, || format!("{runs:#?}"))?;
    for (i, run) in runs.iter().enumerate() {
        check(
            run["attempt"] == i + 1
                && run["status"] == "failed"
                && run["exit_code"] == 7
                && run["invocation_id"] == report["invocation_id"],
            || format!("attempt {}: {run:#}", i + 1),
        )?;
    }
    for (i, wait_us) in [(1, 1_000_000), (2, 2_000_000)] {
        let gap = runs[i]["started_us"].as_i64().unwrap_or(0)
            - runs[i - 1]["ended_us"].as_i64().unwrap_or(i64::MAX);
        check(gap >= wait_us, || {
            format!(
                "attempt {} started {gap} µs after the previous ended",
                i + 1
            )
        })?;
    }

    // The shim killed by systemd's final SIGKILL: the row says timeout (the
    // provisional end written at the first SIGTERM), never running or lost.
    let (code, report) = run_json(env, &dir, &["stubborn", "--wait"])?;
    check(
        code == Some(128 + 9) && report["result"] == "timeout",
        || format!("{code:?} {report:#}"),
    )?;
    let run = &env.runs("stubborn")?[0];
    check(
        run["status"] == "timeout" && run["ended_us"].is_i64(),
        || format!("{run:#}"),
    )?;
    Ok(())
}
