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
