//! What a newcomer found after issues 10 and 11, checked on real systemd:
//! concurrent `run --wait`, schedules that can never fire, hints that do not
//! work or do harm, users' rows root trusted for display, and a timer
//! disabled behind jobctl's back.

use super::*;

/// `n` `jobctl run JOB --wait --json` started at once; their exit statuses
/// and reports.
fn parallel_runs(env: &Env, dir: &Path, job: &str, n: usize) -> Vec<(Option<i32>, Value)> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            env.sb
                .command(JOBCTL)
                .arg("--config")
                .arg(&env.config)
                .arg("--jobs-dir")
                .arg(dir)
                .args(["run", job, "--wait", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let report =
                serde_json::from_slice(&out.stdout).unwrap_or_else(|_| Value::String(text(&out)));
            (out.status.code(), report)
        })
        .collect()
}

/// Item 1: starts that systemd merged into a run in progress (another
/// caller's) are `already-running`, never `start-limit-hit` or `refused`,
/// and no two callers claim the same run as started.
pub fn concurrent_runs_report_the_run_in_progress(env: &Env) -> R {
    let dir = env.jobs_dir("concurrent-runs");
    write_job(
        &dir,
        "conc-fail",
        "command = [\"/bin/sh\", \"-c\", \"sleep 1; exit 3\"]\nmanual = true\n",
    );
    write_job(
        &dir,
        "conc-ok",
        "command = [\"/bin/sh\", \"-c\", \"sleep 1\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    for (job, code) in [("conc-fail", 3), ("conc-ok", 0)] {
        let before = env.runs(job)?.len();
        let mut started = Vec::new();
        for round in 0..2 {
            let reports = parallel_runs(env, &dir, job, 8);
            for (exit, report) in &reports {
                if report["started"] == true {
                    check(
                        *exit == Some(code) && report["invocation_id"].is_string(),
                        || format!("{job} round {round}: {exit:?} {report:#}"),
                    )?;
                    started.push(report["invocation_id"].as_str().unwrap().to_string());
                } else {
                    check(
                        *exit == Some(4)
                            && report["reason"] == "already-running"
                            && report["already_running"] == true,
                        || format!("{job} round {round}: {exit:?} {report:#}\nall: {reports:#?}"),
                    )?;
                }
            }
            check(reports.iter().any(|(_, r)| r["started"] == true), || {
                format!("{job} round {round}: nobody started it: {reports:#?}")
            })?;
        }
        // Each run is claimed once, and the shim recorded exactly those.
        let mut unique = started.clone();
        unique.sort();
        unique.dedup();
        check(unique.len() == started.len(), || {
            format!("{job}: one run claimed by several callers: {started:#?}")
        })?;
        let runs = env.runs(job)?;
        check(runs.len() - before == started.len(), || {
            format!(
                "{job}: {} runs recorded, {} claimed: {runs:#?}",
                runs.len() - before,
                started.len()
            )
        })?;
    }

    // A start queued by someone else (systemctl, here behind a slow
    // dependency): systemd merges ours into it; the run that follows is
    // not this call's.
    env.sh(
        "printf '[Service]\\nType=oneshot\\nExecStart=/bin/sleep 2\\n' > /etc/systemd/system/e2e-slow-dep.service && systemctl daemon-reload",
    )?;
    write_job(
        &dir,
        "queued",
        "command = [\"/bin/true\"]\nmanual = true\nafter = [\"e2e-slow-dep.service\"]\n",
    );
    env.apply(&dir)?;
    env.sh("systemctl start --no-block e2e-slow-dep.service jobctl-queued.service")?;
    let out = env.jobctl_in(&dir, &["run", "queued", "--wait", "--json"]);
    let report: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    check(
        out.status.code() == Some(4)
            && report["started"] == false
            && report["reason"] == "already-running"
            && report["invocation_id"].is_null()
            && report["message"]
                .as_str()
                .is_some_and(|m| m.contains("queued")),
        || format!("{report:#}\n{}", text(&out)),
    )?;
    env.wait_for("the queued run", Duration::from_secs(10), || {
        Ok(env.runs("queued")?.len() == 1)
    })?;
    env.sh("rm -f /etc/systemd/system/e2e-slow-dep.service && systemctl daemon-reload")?;
    Ok(())
}

/// Runs `hint` (a `jobctl …` command a hint printed) pasted into a root
/// shell from `/` with `jobctl` on the PATH.
fn paste_as_root(env: &Env, hint: &str) -> Output {
    let bin = env.scratch.join("hint-bin-root");
    if !bin.join("jobctl").exists() {
        fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(JOBCTL, bin.join("jobctl")).unwrap();
    }
    env.sb
        .command("/bin/sh")
        .arg("-c")
        .arg(format!("cd / && PATH={}:$PATH; {hint}", bin.display()))
        .output()
        .unwrap()
}

/// Item 2: a file that apply refuses (here: a schedule that can never fire,
/// a directive this systemd is too old for, a typo, broken TOML, a date
/// in the past) is `invalid` in `list`, `status` and `health`, the counts
/// are right, and the hint printed for it works.
pub fn a_file_apply_refuses_is_invalid_everywhere(env: &Env) -> R {
    let dir = env.jobs_dir("invalid-everywhere");
    write_job(&dir, "fine", DAILY);
    env.apply(&dir)?;
    let invalid = [
        (
            "never",
            "command = [\"/bin/true\"]\non_calendar = \"*-02-30\"\n",
        ),
        (
            "long-ago",
            "command = [\"/bin/true\"]\non_calendar = \"2020-06-01 12:00\"\n",
        ),
        (
            "too-new",
            "command = [\"/bin/true\"]\ndaily = \"03:00\"\n[timer_extra]\nRandomizedOffsetSec = \"1h\"\n",
        ),
        ("typo", "comand = [\"/bin/true\"]\ndaily = \"03:00\"\n"),
        ("broken", "command = [\"/bin/true\"\n"),
    ];
    for (job, body) in invalid {
        write_job(&dir, job, body);
    }
    // `fine` changed after its apply too: pending, with apply as the remedy
    // (apply skips the invalid files and leaves their units alone).
    write_job(
        &dir,
        "fine",
        "command = [\"/bin/true\"]\ndaily = \"04:00\"\n",
    );
    let out = env.jobctl_in(&dir, &["validate"]);
    check(out.status.code() == Some(2), || text(&out))?;
    let out = env.jobctl_in(&dir, &["list", "--json"]);
    ok(&out)?;
    let rows: Value = serde_json::from_slice::<Value>(&out.stdout)?["jobs"].take();
    for (job, _) in invalid {
        let row = rows
            .as_array()
            .and_then(|r| r.iter().find(|r| r["job"] == job))
            .ok_or_else(|| format!("{job} not listed: {rows:#}"))?;
        check(row["state"] == "invalid", || format!("{job}: {row:#}"))?;
    }
    let out = env.jobctl_in(&dir, &["list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        err.contains(&format!("{} job files do not validate", invalid.len())),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["health"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    check(out.status.code() == Some(1), || text(&out))?;
    for (job, _) in invalid {
        check(stdout.contains(&format!("\n{job}: invalid: ")), || {
            format!("{job}: {}", text(&out))
        })?;
    }
    check(!stdout.contains("not-applied"), || text(&out))?;
    let fine = stdout
        .lines()
        .find(|l| l.starts_with("fine: pending-apply: "))
        .unwrap_or_default();
    check(
        fine.contains("run `jobctl ") && fine.contains(" apply` ("),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["health", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(report["counts"]["invalid"] == invalid.len(), || {
        format!("{report:#}")
    })?;
    let out = env.jobctl_in(&dir, &["status", "never"]);
    check(
        String::from_utf8_lossy(&out.stdout).contains("invalid"),
        || text(&out),
    )?;
    // Every jobctl hint they print works when pasted: validate names the
    // files and exits 2 (what is wrong); apply applies the valid jobs and
    // says it skipped the others (exit 6), and exits 0 once they are fixed.
    let mut outputs = String::new();
    for args in [
        &["list"][..],
        &["health"],
        &["status"],
        &["status", "never"],
    ] {
        outputs.push_str(&both(&env.jobctl_in(&dir, args)));
    }
    let hints: Vec<String> = hints_in(&outputs)
        .into_iter()
        .filter(|h| h.starts_with("jobctl "))
        .collect();
    check(hints.iter().any(|h| h.contains(" validate")), || {
        format!("no validate hint: {hints:#?}\n{outputs}")
    })?;
    let (later, now): (Vec<&String>, Vec<&String>) =
        hints.iter().partition(|h| h.contains(" apply"));
    for hint in &later {
        let out = paste_as_root(env, hint);
        check(out.status.code() == Some(6), || {
            format!("pasted `{hint}` with invalid files: {}", text(&out))
        })?;
    }
    for hint in now {
        let out = paste_as_root(env, hint);
        let all = both(&out);
        let works = if hint.contains(" validate") {
            out.status.code() == Some(2)
                && invalid
                    .iter()
                    .all(|(job, _)| all.contains(&format!("{job}.toml")))
        } else {
            out.status.code().is_some_and(|c| c <= 1)
        };
        check(works, || format!("pasted `{hint}`: {}", text(&out)))?;
    }
    // Fixed, the apply hints work.
    for (job, _) in invalid {
        fs::remove_file(dir.join(format!("{job}.toml"))).unwrap();
    }
    check(!later.is_empty(), || format!("no apply hint: {hints:#?}"))?;
    for hint in later {
        let out = paste_as_root(env, hint);
        check(out.status.code().is_some_and(|c| c <= 1), || {
            format!("pasted `{hint}`: {}", text(&out))
        })?;
    }
    let out = env.jobctl_in(&dir, &["apply", "--check"]);
    check(out.status.success(), || text(&out))
}

/// `jobctl --config config.toml --jobs-dir DIR ARGS` run from the scratch
/// folder: both paths relative, as a user in that folder would type them.
fn relative_jobctl(env: &Env, dir: &str, args: &[&str]) -> Output {
    let mut script = format!(
        "cd {} && exec {JOBCTL} --config config.toml --jobs-dir {dir}",
        env.scratch.display()
    );
    for a in args {
        script.push(' ');
        script.push_str(a);
    }
    env.sb
        .command("/bin/sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap()
}

/// The commands in `text` that a hint shows in backticks, starting with
/// `install `.
fn install_hints(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|h| h.starts_with("install "))
        .map(str::to_string)
        .collect()
}

/// Item 3: hints that did harm or did not work. As root, with a relative
/// `--jobs-dir` and `--config`: an `environment_file` reached through a link
/// into a user's home gets a fix that copies it (never `chown root:` of the
/// home), apply's note names the job to enable, and every `jobctl` hint
/// works when pasted from another folder.
pub fn every_hint_printed_as_root_works_when_pasted(env: &Env) -> R {
    let users = AttackUsers::create(env, &["mallory"])?;
    env.sh(
        "mkdir -p /home/mallory && chown mallory: /home/mallory && chmod 0777 /home/mallory \
         && rm -rf /etc/e2e-env /etc/jobctl/env && mkdir -p /etc/e2e-env \
         && ln -s /home/mallory/app.env /etc/e2e-env/app.env",
    )?;
    let out = users.sh("mallory", "echo GREETING=hello > /home/mallory/app.env")?;
    check(out.status.success(), || text(&out))?;
    let dir = env.jobs_dir("hints-root");
    write_job(
        &dir,
        "envjob",
        "command = [\"/bin/sh\", \"-c\", \"echo $GREETING\"]\nmanual = true\nenvironment_file = \"/etc/e2e-env/app.env\"\n",
    );
    let out = relative_jobctl(env, "hints-root", &["validate"]);
    let all = both(&out);
    check(
        out.status.code() == Some(2) && all.contains("/home/mallory") && !all.contains("chown"),
        || text(&out),
    )?;
    let fixes = install_hints(&all);
    check(
        fixes
            == ["install -D -m 0600 -o root -g root /home/mallory/app.env /etc/jobctl/env/app.env"],
        || format!("{fixes:?}\n{}", text(&out)),
    )?;
    let out = paste_as_root(env, &fixes[0]);
    ok(&out)?;
    check(
        env.sh("stat -c '%U %a' /home/mallory /etc/jobctl/env/app.env")?
            == "mallory 777\nroot 600\n",
        || "the fix changed the user's home, or made no root-only copy".into(),
    )?;
    write_job(
        &dir,
        "envjob",
        "command = [\"/bin/sh\", \"-c\", \"echo $GREETING\"]\nmanual = true\nenvironment_file = \"/etc/jobctl/env/app.env\"\n",
    );
    write_job(&dir, "paused", DAILY);
    write_job(&dir, "stopped", DAILY);
    write_job(
        &dir,
        "flaky",
        "command = [\"/bin/sh\", \"-c\", \"echo flaky-out; exit 3\"]\nmanual = true\n",
    );
    ok(&relative_jobctl(env, "hints-root", &["apply"]))?;

    // Hints from every command that prints them, run in the scratch folder.
    let mut outputs: Vec<(String, String)> = Vec::new();
    ok(&relative_jobctl(env, "hints-root", &["disable", "paused"]))?;
    let out = relative_jobctl(env, "hints-root", &["apply"]);
    ok(&out)?;
    check(
        both(&out).contains("enable paused` turns it back on"),
        || text(&out),
    )?;
    outputs.push(("apply".into(), both(&out)));
    let out = relative_jobctl(env, "hints-root", &["run", "flaky", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    outputs.push(("run flaky --wait".into(), both(&out)));
    env.sh("systemctl stop jobctl-stopped.timer")?;
    write_job(&dir, "added", DAILY);
    for args in [
        &["status"][..],
        &["list"],
        &["health"],
        &["status", "flaky"],
    ] {
        outputs.push((
            args.join(" "),
            both(&relative_jobctl(env, "hints-root", args)),
        ));
    }
    let hints: Vec<(String, String)> = collect_hints(&outputs, &[])
        .into_iter()
        .filter(|(_, h)| h.starts_with("jobctl "))
        .collect();
    for want in [" enable paused", " apply", " logs flaky --last"] {
        check(hints.iter().any(|(_, h)| h.contains(want)), || {
            format!("no hint with {want:?}: {hints:#?}\n{outputs:#?}")
        })?;
    }
    let abs = format!("--jobs-dir {}", dir.display());
    let config = format!("--config {}", env.config.display());
    for (what, hint) in &hints {
        check(hint.contains(&abs) && hint.contains(&config), || {
            format!("`{hint}` (from {what}) names a relative path")
        })?;
    }
    // Read-only hints first, then those that change things.
    let mut hints = hints;
    hints.sort_by_key(|(_, h)| [" enable ", " apply"].iter().any(|w| h.contains(w)));
    for (what, hint) in &hints {
        let out = paste_as_root(env, hint);
        let all = both(&out);
        let works = if hint.contains(" logs ") {
            out.status.success() && all.contains("flaky-out")
        } else {
            out.status.success()
        };
        check(works, || {
            format!("pasted `{hint}` (from {what}): {}", text(&out))
        })?;
    }
    // They did what they said: paused is enabled again, the stopped timer
    // runs, the new job is installed.
    check(
        env.prop("jobctl-paused.timer", "UnitFileState")? == "enabled"
            && env.prop("jobctl-stopped.timer", "ActiveState")? == "active"
            && env.prop("jobctl-added.timer", "ActiveState")? == "active",
        || "a pasted hint did not do what it said".into(),
    )?;
    env.sh("rm -rf /home/mallory /etc/e2e-env /etc/jobctl/env")?;
    drop(users);
    Ok(())
}

/// Item 4: as root, a user's database says only what that user could have
/// recorded. mallory writes rows into her own database with sqlite3: one
/// for her job claiming it ran as root, one dated in 2191, one with a run id
/// the shim never draws (1). Root's `history`, `logs`, `list` and `health`
/// leave all three out (the first counted with the runs of other jobs, the
/// others as bad rows), and `history --db` still shows everything, marked.
pub fn a_users_rows_say_only_what_that_user_recorded(env: &Env) -> R {
    let users = AttackUsers::create(env, &["mallory"])?;
    let dir = env.jobs_dir("users-rows");
    write_job(
        &dir,
        "mjob",
        "command = [\"/bin/sh\", \"-c\", \"echo real-run; exit 3\"]\nmanual = true\nuser = \"mallory\"\n",
    );
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["run", "mjob", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    let db = "/var/lib/jobctl/users/mallory/history.db";
    let columns = "id, job, invocation_id, trigger, attempt, host, user, uid, pid, shim_pid, \
                   shim_start_ticks, boot_id, pid_ns, started_us, ended_us, deadline_us, status, \
                   exit_code, signal, error, output_bytes, output_truncated";
    let forge = |id: &str, user: &str, uid: &str, start: &str| {
        format!(
            "INSERT INTO runs ({columns}) SELECT {id}, job, NULL, 'timer', 1, host, {user}, {uid}, \
             pid, shim_pid, shim_start_ticks, boot_id, pid_ns, {start}, {start} + 1000000, NULL, \
             'success', 0, NULL, NULL, 0, 0 FROM runs WHERE job = 'mjob' LIMIT 1;"
        )
    };
    let sql = [
        forge("8070450532247928832", "'root'", "0", "started_us + 1000000"),
        forge("8070450532247928833", "user", "uid", "7000000000000000"),
        forge("1", "user", "uid", "started_us + 2000000"),
    ]
    .concat();
    let out = users.sh("mallory", &format!("sqlite3 {db} \"{sql}\""))?;
    check(out.status.success(), || text(&out))?;

    // history: the real run only; the forged ones said in warnings.
    let out = env.jobctl_in(&dir, &["history", "mjob", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    let runs = report["runs"].as_array().cloned().unwrap_or_default();
    check(
        out.status.code() == Some(5)
            && runs.len() == 1
            && runs[0]["user"] == "mallory"
            && runs[0]["exit_code"] == 3
            && err.contains(&format!("{db} holds 1 run"))
            && err.contains("row id 8070450532247928833")
            && err.contains("row id 1 "),
        || text(&out),
    )?;
    // (The warnings name the skipped rows; the listing shows none of them.)
    let out = env.jobctl_in(&dir, &["history", "mjob"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        stdout.lines().count() == 2 && !stdout.contains("2191") && !stdout.contains("000000000000"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["logs", "mjob"]);
    let all = both(&out);
    check(
        out.status.code() == Some(5) && all.contains("real-run") && all.contains("exit 3"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["status", "mjob"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        stdout.contains("(manual, attempt 1, as mallory)")
            && !stdout.contains("as root")
            && !stdout.contains("2191"),
        || text(&out),
    )?;
    // list and health judge the real, failed run.
    let row = env.row(&dir, "mjob")?;
    check(
        row["last_run"]["status"] == "failed" && row["last_run"]["exit_code"] == 3,
        || format!("{row:#}"),
    )?;
    let out = env.jobctl_in(&dir, &["list"]);
    check(
        !String::from_utf8_lossy(&out.stdout).contains("2191"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["health", "mjob"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        out.status.code() == Some(1)
            && stdout.contains("mjob: failed: ")
            && !stdout.contains("unit-failed"),
        || text(&out),
    )?;
    // Named explicitly, the database is shown whole, each run marked.
    let out = env.jobctl(&["history", "--db", db, "--json"]);
    let report: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    let runs = report["runs"].as_array().cloned().unwrap_or_default();
    check(
        runs.len() == 4
            && runs
                .iter()
                .all(|r| r["owner"] == "mallory" && r["database"] == db),
        || text(&out),
    )?;
    drop(users);
    Ok(())
}

/// Item 5: `systemctl disable` of a job's timer behind jobctl's back leaves
/// it running until the next boot, when it would not come back: `health`
/// and `status` name it, and the remedy they print works when pasted.
pub fn a_timer_disabled_behind_jobctls_back_is_a_problem(env: &Env) -> R {
    let dir = env.jobs_dir("timer-disabled");
    write_job(&dir, "nightly", DAILY);
    write_job(&dir, "other", DAILY);
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["health"]);
    check(out.status.success(), || text(&out))?;
    env.sh("systemctl disable jobctl-nightly.timer")?;
    check(
        env.prop("jobctl-nightly.timer", "ActiveState")? == "active"
            && env.prop("jobctl-nightly.timer", "UnitFileState")? == "disabled",
        || "the timer should still run, disabled".into(),
    )?;
    let out = env.jobctl_in(&dir, &["health"]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("nightly: timer-not-enabled: "))
        .unwrap_or_default()
        .to_string();
    check(
        out.status.code() == Some(1)
            && stdout.starts_with("PROBLEMS - 1 in 1 of 2 jobs: timer-not-enabled 1")
            && line.contains("reboot"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["health", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(report["counts"]["timer-not-enabled"] == 1, || {
        format!("{report:#}")
    })?;
    let out = env.jobctl_in(&dir, &["health", "--ignore", "timer-not-enabled"]);
    check(out.status.success(), || text(&out))?;
    let out = env.jobctl_in(&dir, &["status", "nightly"]);
    check(
        String::from_utf8_lossy(&out.stdout).contains("timer-not-enabled"),
        || text(&out),
    )?;
    // The remedy, pasted, enables it again.
    let hints: Vec<String> = hints_in(&line)
        .into_iter()
        .filter(|h| h.starts_with("jobctl "))
        .collect();
    check(hints.len() == 1 && hints[0].ends_with(" apply"), || {
        format!("{hints:?} in {line}")
    })?;
    ok(&paste_as_root(env, &hints[0]))?;
    check(
        env.prop("jobctl-nightly.timer", "UnitFileState")? == "enabled",
        || "the pasted remedy did not enable the timer".into(),
    )?;
    let out = env.jobctl_in(&dir, &["health"]);
    check(out.status.success(), || text(&out))
}
