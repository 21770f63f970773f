//! Knowing what ran, what started it and what it cost (issue 13), on a real
//! systemd 252: jobs chained by name (`on_success`/`on_failure` rendered as
//! `OnSuccess=`/`OnFailure=`, the downstream run recorded with trigger
//! `chain` and its upstream run), chains refused by `validate`, the cost of
//! a run from its unit's cgroup, and every run's start and end entries in
//! the journal.

use super::*;

const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");

/// A manual job running fakejob with `steps`, plus `extra` lines.
fn fake(steps: &[&str], extra: &str) -> String {
    let words: Vec<String> = std::iter::once(FAKEJOB)
        .chain(steps.iter().copied())
        .map(|w| format!("{w:?}"))
        .collect();
    format!("command = [{}]\nmanual = true\n{extra}", words.join(", "))
}

/// The id of `job`'s newest run and its invocation id.
fn newest(env: &Env, job: &str) -> Result<(String, String), Failed> {
    let run = env
        .runs(job)?
        .into_iter()
        .next()
        .ok_or_else(|| format!("no run of {job}"))?;
    Ok((
        run["id"].as_str().unwrap_or_default().to_string(),
        run["invocation_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

pub fn jobs_chain_by_name_on_success_and_on_failure(env: &Env) -> R {
    let dir = env.jobs_dir("chain");
    write_job(
        &dir,
        "chain-build",
        &fake(
            &["out", "built"],
            "on_success = [\"chain-publish\"]\non_failure = [\"chain-never\"]\n",
        ),
    );
    // A job by its name, and one by its unit's name (the form on_failure
    // took before jobs could be named).
    write_job(
        &dir,
        "chain-broken",
        &fake(
            &["exit", "3"],
            "on_success = [\"chain-never\"]\n\
             on_failure = [\"chain-cleanup\", \"jobctl-chain-by-unit.service\"]\n",
        ),
    );
    for job in [
        "chain-publish",
        "chain-cleanup",
        "chain-by-unit",
        "chain-never",
    ] {
        write_job(&dir, job, &fake(&["out", job], ""));
    }
    env.apply(&dir)?;
    env.expect_prop(
        "jobctl-chain-build.service",
        "OnSuccess",
        "jobctl-chain-publish.service",
        "on_success by job name",
    )?;
    // A dependency list: systemd keeps it in a set, so its order is not the
    // file's.
    let on_failure = env.prop("jobctl-chain-broken.service", "OnFailure")?;
    let mut on_failure: Vec<&str> = on_failure.split(' ').collect();
    on_failure.sort_unstable();
    check(
        on_failure
            == [
                "jobctl-chain-by-unit.service",
                "jobctl-chain-cleanup.service",
            ],
        || format!("on_failure by job and unit name: OnFailure={on_failure:?}"),
    )?;

    // Success starts on_success's job, not on_failure's.
    ok(&env.jobctl_in(&dir, &["run", "chain-build", "--wait"]))?;
    let (build, build_invocation) = newest(env, "chain-build")?;
    let publish = env.wait_for_run("chain-publish", Duration::from_secs(30), |r| {
        r["status"] == "success"
    })?;
    check(
        publish["trigger"] == "chain"
            && publish["upstream"]["run_id"] == build.as_str()
            && publish["upstream"]["invocation_id"] == build_invocation.as_str(),
        || format!("build {build} ({build_invocation}) → publish {publish:#}"),
    )?;

    // Failure starts both of on_failure's, each knowing the failed run.
    let out = env.jobctl_in(&dir, &["run", "chain-broken", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    let (broken, broken_invocation) = newest(env, "chain-broken")?;
    for job in ["chain-cleanup", "chain-by-unit"] {
        let run = env.wait_for_run(job, Duration::from_secs(30), |r| r["status"] == "success")?;
        check(
            run["trigger"] == "chain"
                && run["upstream"]["run_id"] == broken.as_str()
                && run["upstream"]["invocation_id"] == broken_invocation.as_str(),
            || format!("broken {broken} → {job} {run:#}"),
        )?;
    }
    // Started at the same moment as those, had it been started at all.
    check(env.runs("chain-never")?.is_empty(), || {
        "chain-never ran".into()
    })?;
    // status and history say where a chained run came from.
    let out = env.jobctl_in(&dir, &["status", "chain-cleanup"]);
    ok(&out)?;
    let status = String::from_utf8_lossy(&out.stdout);
    check(
        status.contains(&format!(
            "chained:    from run {broken}, invocation {broken_invocation}"
        )) && status.contains("(chain, attempt 1, as root)"),
        || status.to_string(),
    )?;
    let out = env.jobctl(&["history", "--job", "chain-publish"]);
    ok(&out)?;
    check(
        String::from_utf8_lossy(&out.stdout).contains(" chain "),
        || text(&out),
    )
}

pub fn chains_that_loop_or_name_no_job_are_refused(env: &Env) -> R {
    let dir = env.jobs_dir("chain-refused");
    write_job(&dir, "loop-a", &fake(&[], "on_failure = [\"loop-b\"]\n"));
    write_job(&dir, "loop-b", &fake(&[], "on_success = [\"loop-a\"]\n"));
    write_job(
        &dir,
        "stray",
        &fake(&[], "on_success = [\"no-such-job\"]\n"),
    );
    let at = |job: &str, pos: &str| format!("{}/{job}.toml:{pos}: ", dir.display());
    // `apply` skips the invalid jobs (per-job isolation: exit 6, nothing of
    // them installed); `--strict` and `validate` refuse the folder (2).
    for (command, status) in [
        (&["validate"][..], 2),
        (&["apply"][..], 6),
        (&["apply", "--strict"][..], 2),
    ] {
        let out = env.jobctl_in(&dir, command);
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            out.status.code() == Some(status)
                && err.contains(&format!(
                    "{}`on_failure[0]`: on_failure makes a loop: loop-a →(on_failure) loop-b \
                     →(on_success) loop-a",
                    at("loop-a", "3:15")
                ))
                && err.contains(&format!(
                    "{}`on_success[0]`: on_success makes a loop: loop-b →(on_success) loop-a \
                     →(on_failure) loop-b",
                    at("loop-b", "3:15")
                ))
                && err.contains(&format!(
                    "{}`on_success[0]`: on_success names job \"no-such-job\", which is not a \
                     job of this folder",
                    at("stray", "3:15")
                )),
            || format!("{command:?}: {}", text(&out)),
        )?;
    }
    for job in ["loop-a", "loop-b", "stray"] {
        check(
            !env.unit_path(&format!("jobctl-{job}.service")).exists(),
            || format!("{job} was installed"),
        )?;
    }
    // One file named alone is checked against the jobs beside it.
    let out = env.jobctl_in(
        &dir,
        &["validate", dir.join("loop-b.toml").to_str().unwrap()],
    );
    check(
        out.status.code() == Some(2)
            && String::from_utf8_lossy(&out.stderr).contains(&at("loop-b", "3:15")),
        || text(&out),
    )?;

    // OnSuccess= is systemd 249's: refused, where it is written, for an
    // older target; this host's 252 takes it.
    let dir = env.jobs_dir("chain-old-systemd");
    write_job(&dir, "succeeds", &fake(&[], "on_success = [\"after\"]\n"));
    write_job(&dir, "after", &fake(&[], ""));
    let out = env.jobctl_in(&dir, &["validate", "--systemd-version", "248"]);
    check(
        out.status.code() == Some(2)
            && String::from_utf8_lossy(&out.stderr).contains(&format!(
                "{}/succeeds.toml:3:14: `on_success`: OnSuccess= needs systemd 249; the target \
                 is systemd 248 (--systemd-version)",
                dir.display()
            )),
        || text(&out),
    )?;
    ok(&env.jobctl_in(&dir, &["validate", "--systemd-version", "249"]))?;
    // `render` for an old systemd refuses as well.
    let file = dir.join("succeeds.toml");
    let out = env.jobctl_in(
        &dir,
        &["render", file.to_str().unwrap(), "--systemd-version", "248"],
    );
    check(
        out.status.code() == Some(2)
            && String::from_utf8_lossy(&out.stderr).contains("OnSuccess= needs systemd 249"),
        || text(&out),
    )?;
    ok(&env.jobctl_in(&dir, &["validate"]))
}

/// Whether the unit cgroups below system.slice get `controller` (its files,
/// such as memory.peak, exist only then).
fn unit_cgroups_have(env: &Env, controller: &str) -> Result<bool, Failed> {
    let enabled = env.sh("cat /sys/fs/cgroup/system.slice/cgroup.subtree_control")?;
    Ok(enabled.split_whitespace().any(|c| c == controller))
}

pub fn the_cost_of_a_run_comes_from_its_cgroup(env: &Env) -> R {
    let dir = env.jobs_dir("cost");
    let written = env.scratch.join("cost-written");
    write_job(
        &dir,
        "cost",
        &fake(
            &[
                "alloc",
                "200M",
                "write-file",
                written.to_str().unwrap(),
                "20M",
                "burn-cpu",
                "1000",
            ],
            "",
        ),
    );
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "cost", "--wait"]))?;
    let run = env
        .runs("cost")?
        .into_iter()
        .next()
        .ok_or("no run of cost")?;
    let usage = &run["usage"];
    let figure = |name: &str| usage[name].as_u64().unwrap_or(0) as f64;
    let within = |value: f64, expected: f64| (value - expected).abs() <= expected * 0.2;
    const MIB: f64 = 1024.0 * 1024.0;
    let cpu = figure("cpu_user_us") + figure("cpu_system_us");
    // The CPU time is the cgroup's (cpu.stat is in every cgroup v2), less
    // the shim's own; memory and I/O are the cgroup's where the unit's
    // cgroup has those controllers (a hybrid host, this sandbox: not), else
    // rusage's, and the record says which.
    let source = |has: bool| if has { "cgroup" } else { "rusage" };
    let expected_source = serde_json::json!({
        "cpu": "cgroup",
        "memory": source(unit_cgroups_have(env, "memory")?),
        "io": source(unit_cgroups_have(env, "io")?),
    });
    check(
        within(cpu, 1e6)
            && within(figure("memory_peak_bytes"), 200.0 * MIB)
            && within(figure("written_bytes"), 20.0 * MIB)
            && usage["source"] == expected_source,
        || format!("want 1 s CPU, 200 MiB, 20 MiB written, {expected_source}: {usage:#}"),
    )?;
    let _ = fs::remove_file(&written);
    // Shown by status and health --prometheus.
    let out = env.jobctl_in(&dir, &["status", "cost"]);
    ok(&out)?;
    let status = String::from_utf8_lossy(&out.stdout);
    check(status.contains("  cost:       CPU "), || status.to_string())?;
    let out = env.jobctl_in(&dir, &["health", "--prometheus"]);
    let metrics = String::from_utf8_lossy(&out.stdout);
    check(
        metrics.contains(&format!(
            "jobctl_job_last_run_cpu_seconds{{job=\"cost\",mode=\"user\"}} {}",
            figure("cpu_user_us") / 1e6
        )) && metrics.contains(&format!(
            "jobctl_job_last_run_memory_peak_bytes{{job=\"cost\"}} {}",
            figure("memory_peak_bytes")
        )),
        || metrics.to_string(),
    )
}

/// `journalctl -o json MATCHES…` as parsed entries.
fn journal(env: &Env, matches: &str) -> Result<Vec<Value>, Failed> {
    Ok(env
        .sh(&format!("journalctl -o json {matches}"))?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

pub fn every_run_is_in_the_journal_even_when_its_history_is_gone(env: &Env) -> R {
    let dir = env.jobs_dir("journaled");
    write_job(
        &dir,
        "journaled",
        &fake(&["out", "working", "exit", "3"], ""),
    );
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["run", "journaled", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    let (id, invocation) = newest(env, "journaled")?;
    let run = env.runs("journaled")?.remove(0);
    // The start and end entries are not warnings: health sees no history
    // problem (it reads the shim's warnings back from the journal).
    let out = env.jobctl_in(&dir, &["health", "journaled", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(!report.to_string().contains("history-unwritable"), || {
        format!("{report:#}")
    })?;
    // Even with its history gone.
    ok(&env.jobctl_in(&dir, &["remove", "journaled", "--purge"]))?;
    check(env.runs("journaled")?.is_empty(), || "runs left".into())?;
    let mut failed = Value::Null;
    env.wait_for(
        "the failed run in the journal",
        Duration::from_secs(10),
        || {
            failed = journal(env, "JOBCTL_JOB=journaled JOBCTL_STATUS=failed")?
                .into_iter()
                .find(|e| e["JOBCTL_RUN_ID"] == id.as_str())
                .unwrap_or(Value::Null);
            Ok(!failed.is_null())
        },
    )?;
    let usage = &run["usage"];
    check(
        failed["JOBCTL_EXIT_CODE"] == "3"
            && failed["JOBCTL_TRIGGER"] == "manual"
            && failed["JOBCTL_ATTEMPT"] == "1"
            && failed["JOBCTL_DURATION_US"] == run["duration_us"].to_string().as_str()
            && failed["JOBCTL_CPU_USER_US"] == usage["cpu_user_us"].to_string().as_str()
            && failed["JOBCTL_MEMORY_PEAK_BYTES"]
                == usage["memory_peak_bytes"].to_string().as_str()
            && failed["JOBCTL_USAGE_SOURCE"].is_string()
            && failed["JOBCTL_WRITTEN_BYTES"].is_string()
            && failed["PRIORITY"] == "5"
            && failed["SYSLOG_IDENTIFIER"] == "jobctl"
            && failed["MESSAGE_ID"] == "aec38bfebe5945bab10eb9ca7ea3c720"
            && failed["JOBCTL_INVOCATION_ID"] == invocation.as_str()
            // journald's own fields: the shim's unit and invocation, when
            // journald could still read the shim's cgroup (the end entry is
            // the shim's last act; docs/design.md, "Every run in the
            // journal"), never another unit's.
            && (failed["_SYSTEMD_UNIT"].is_null()
                || failed["_SYSTEMD_UNIT"] == "jobctl-journaled.service")
            && (failed["_SYSTEMD_INVOCATION_ID"].is_null()
                || failed["_SYSTEMD_INVOCATION_ID"] == invocation.as_str()),
        || format!("{failed:#}\nrun: {run:#}"),
    )?;
    let started = journal(env, "JOBCTL_JOB=journaled JOBCTL_STATUS=running")?;
    check(
        started.iter().any(|e| {
            e["JOBCTL_RUN_ID"] == id.as_str()
                && e["MESSAGE_ID"] == "24aaa54b2b2f47e1950af29fb80e6056"
                && e["JOBCTL_EXIT_CODE"].is_null()
                && e["JOBCTL_INVOCATION_ID"] == invocation.as_str()
                // The start entry is sent while the shim keeps running: the
                // unit is always known to journald then.
                && e["_SYSTEMD_INVOCATION_ID"] == invocation.as_str()
        }),
        || format!("{started:#?}"),
    )?;
    // One start and one end for the one run.
    let all = journal(env, &format!("JOBCTL_RUN_ID={id}"))?;
    check(all.len() == 2, || format!("{all:#?}"))
}
