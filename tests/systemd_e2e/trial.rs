//! What a newcomer ran into (round 3's trial, docs as the only guide), each
//! as a case of the shared sandbox.

use super::*;
use crate::web::NO_CACHE;

const SOCK: &str = "/run/jobctl/trial-web.sock";

/// A jobs folder `name` holding `jobs`, a configuration with no
/// `jobctl_path` (as docs/dashboard.md sets up), `apply`, then `f` with a
/// `jobctl` on them and a jobctl-web (a transient unit) serving them on
/// [`SOCK`]. Stops the server and removes the jobs afterwards.
fn with_web(
    env: &Env,
    name: &str,
    jobs: &[(&str, &str)],
    f: impl FnOnce(&dyn Fn(&[&str]) -> Output) -> R,
) -> R {
    let web = web::web_binary()?;
    let dir = env.jobs_dir(name);
    for (job, body) in jobs {
        write_job(&dir, job, body);
    }
    let config = env.scratch.join(format!("{name}-config.toml"));
    fs::write(&config, "# no jobctl_path: the running jobctl\n").unwrap();
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply"]))?;
    env.sh(&format!(
        "systemctl stop trial-web.service 2>/dev/null; systemctl reset-failed trial-web.service 2>/dev/null; \
         rm -f {SOCK}; systemd-run --quiet --unit=trial-web {} --config {} --jobs-dir {} --socket {SOCK}",
        web.display(),
        config.display(),
        dir.display()
    ))?;
    let result = env
        .wait_for("jobctl-web's socket", Duration::from_secs(20), || {
            Ok(env.sh(&format!("test -S {SOCK}")).is_ok())
        })
        .and_then(|()| f(&jobctl));
    let _ = env.sh(&format!(
        "systemctl stop trial-web.service; systemctl reset-failed trial-web.service 2>/dev/null; rm -f {SOCK}; true"
    ));
    for (job, _) in jobs {
        let _ = jobctl(&["remove", job]);
    }
    result
}

/// `GET path` on [`SOCK`] as root: the body.
fn get(env: &Env, path: &str) -> Result<String, Failed> {
    env.sh(&format!(
        "curl -sS --fail-with-body {NO_CACHE} --unix-socket {SOCK} 'http://localhost{path}'"
    ))
}

/// docs/dashboard.md's setup has no `jobctl_path` in the configuration, so
/// units are rendered with "the running jobctl" (job-file.md). jobctl-web
/// runs the CLI's code in its own process: it must compare the installed
/// units with what `jobctl` (the binary beside it) renders, not with units
/// naming `jobctl-web` in `ExecStart=`, which made every applied job
/// `pending apply` on the dashboard and in `/api/v1/health`.
pub fn the_dashboard_sees_applied_jobs_as_applied_without_jobctl_path(env: &Env) -> R {
    let job = ("trial-web", "command = [\"/bin/true\"]\nmanual = true\n");
    with_web(env, "trial-web-jobs", &[job], |jobctl| {
        let out = jobctl(&["list", "--json"]);
        ok(&out)?;
        let cli: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        check(cli["jobs"][0]["state"] == "manual", || {
            format!("the CLI itself sees the job as {}", cli["jobs"][0]["state"])
        })?;
        let body = get(env, "/api/v1/jobs")?;
        let api: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        check(api["jobs"][0]["state"] == "manual", || {
            format!(
                "jobctl-web shows the applied job as {} (the CLI: manual): {body}",
                api["jobs"][0]["state"]
            )
        })?;
        let body = get(env, "/api/v1/health")?;
        check(!body.contains("pending-apply"), || {
            format!("/api/v1/health reports a pending apply: {body}")
        })
    })
}

/// The job page's runs table has a CPU column (docs/dashboard.md: "the last
/// 50 runs with status colours and cost"); it read a `usage.cpu_us` that no
/// document has (docs/json.md, "object: usage": `cpu_user_us` and
/// `cpu_system_us`), so the column was always empty.
pub fn the_job_page_shows_each_runs_cpu_time(env: &Env) -> R {
    let job = (
        "trial-cpu",
        "command = [\"/bin/sh\", \"-c\", \"i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done\"]\nmanual = true\n",
    );
    with_web(env, "trial-cpu-jobs", &[job], |jobctl| {
        ok(&jobctl(&["run", "trial-cpu", "--wait"]))?;
        let out = jobctl(&["history", "trial-cpu", "--json"]);
        ok(&out)?;
        let runs: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let usage = &runs["runs"][0]["usage"];
        let cpu_ms = (usage["cpu_user_us"].as_i64().unwrap_or(0)
            + usage["cpu_system_us"].as_i64().unwrap_or(0))
            / 1000;
        check(cpu_ms > 0, || format!("the run used no CPU time: {usage}"))?;
        let page = get(env, "/jobs/trial-cpu")?;
        // The one run's row: Run, Started, Status, Duration, Trigger, CPU, Peak memory.
        let row = page
            .split("<tbody>")
            .nth(1)
            .and_then(|t| t.split("</tr>").next())
            .ok_or_else(|| format!("no runs table on the job page: {page}"))?;
        let cells: Vec<&str> = row
            .split("<td")
            .skip(1)
            .map(|c| c.split_once('>').map_or("", |(_, rest)| rest))
            .map(|c| c.split("</td>").next().unwrap_or(""))
            .collect();
        check(cells.len() == 7, || format!("not 7 cells: {row}"))?;
        check(!cells[5].trim().is_empty(), || {
            format!("the CPU cell is empty for a run that used {cpu_ms} ms: {row}")
        })
    })
}
