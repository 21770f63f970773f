//! What a newcomer ran into (round 3's trial, docs as the only guide), each
//! as a case of the shared sandbox.

use super::*;

/// docs/dashboard.md's setup has no `jobctl_path` in the configuration, so
/// units are rendered with "the running jobctl" (job-file.md). jobctl-web
/// runs the CLI's code in its own process: it must compare the installed
/// units with what `jobctl` (the binary beside it) renders, not with units
/// naming `jobctl-web` in `ExecStart=`, which made every applied job
/// `pending apply` on the dashboard and in `/api/v1/health`.
pub fn the_dashboard_sees_applied_jobs_as_applied_without_jobctl_path(env: &Env) -> R {
    let web = web::web_binary()?;
    let dir = env.jobs_dir("trial-web-jobs");
    write_job(&dir, "trial-web", "command = [\"/bin/true\"]\nmanual = true\n");
    let config = env.scratch.join("trial-web-config.toml");
    fs::write(&config, "# no jobctl_path: the running jobctl\n").unwrap();
    let jobctl = |args: &[&str]| {
        env.sb
            .command(JOBCTL)
            .arg("--config")
            .arg(&config)
            .arg("--jobs-dir")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    ok(&jobctl(&["apply"]))?;
    let out = jobctl(&["list", "--json"]);
    ok(&out)?;
    let cli: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    check(cli["jobs"][0]["state"] == "manual", || {
        format!("the CLI itself sees the job as {}", cli["jobs"][0]["state"])
    })?;
    const SOCK: &str = "/run/jobctl/trial-web.sock";
    env.sh(&format!(
        "systemctl stop trial-web.service 2>/dev/null; systemctl reset-failed trial-web.service 2>/dev/null; \
         rm -f {SOCK}; systemd-run --quiet --unit=trial-web {} --config {} --jobs-dir {} --socket {SOCK}",
        web.display(),
        config.display(),
        dir.display()
    ))?;
    let result = (|| {
        env.wait_for("jobctl-web's socket", Duration::from_secs(20), || {
            Ok(Path::new(SOCK).exists() || env.sh(&format!("test -S {SOCK}")).is_ok())
        })?;
        let body = env.sh(&format!(
            "curl -sS --unix-socket {SOCK} http://localhost/api/v1/jobs"
        ))?;
        let api: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        check(api["jobs"][0]["state"] == "manual", || {
            format!(
                "jobctl-web shows the applied job as {} (the CLI: manual): {body}",
                api["jobs"][0]["state"]
            )
        })?;
        let body = env.sh(&format!(
            "curl -sS --unix-socket {SOCK} http://localhost/api/v1/health"
        ))?;
        check(!body.contains("pending-apply"), || {
            format!("/api/v1/health reports a pending apply: {body}")
        })
    })();
    let _ = env.sh(&format!(
        "systemctl stop trial-web.service; systemctl reset-failed trial-web.service 2>/dev/null; rm -f {SOCK}; true"
    ));
    let _ = jobctl(&["remove", "trial-web"]);
    result
}
