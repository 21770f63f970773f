//! The dashboard keeps what it read between requests (jobctl::cache: the
//! job files loaded and rendered, the unit files' texts, the `*.wants/`
//! links) and still, asked for the exact state (`Cache-Control: no-cache`,
//! web::NO_CACHE), never answers with a state older than the request:
//! every change made between two requests to the same long-lived server is
//! in the second answer, which is exactly what the CLI (which keeps
//! nothing) prints at that moment.
//!
//! The files are let settle first (their ctime more than
//! `jobctl::cache::SETTLED` in the past, a condition waited for with a
//! deadline), so that the server does keep its reading and the next change
//! has to be found by comparing keys; the changes keep the size and the
//! mtime, so only the inode or the ctime tells them apart.

use super::web::{cli_json, get, install_units, json, stop_units};
use super::*;
use serde_json::json;

const UNIT_DIR: &str = "/etc/systemd/system";

/// Waits until nothing in `dirs` (and their subfolders) changed in the last
/// three seconds (more than jobctl::cache::SETTLED), with a deadline.
fn settle(env: &Env, dirs: &[&str]) -> R {
    let dirs = dirs.join(" ");
    env.sh(&format!(
        "for i in $(seq 1 200); do \
           [ -z \"$(find {dirs} -maxdepth 2 -cmin -0.05 -print -quit)\" ] && exit 0; sleep 0.05; \
         done; echo 'files still changing after 10 s' >&2; exit 1"
    ))?;
    Ok(())
}

/// The API's answer at `path`, checked to be the CLI's document for `args`
/// at the same moment.
fn same_as_cli(
    env: &Env,
    dir: &Path,
    config: &Path,
    path: &str,
    args: &[&str],
) -> Result<Value, Failed> {
    let (status, body) = get(env, path)?;
    check(status == 200, || format!("{path}: {status} {body}"))?;
    let got = json(&body)?;
    let want = cli_json(env, dir, config, args)?;
    check(got == want, || {
        format!(
            "{path} differs from jobctl {}:\n{body}\n{want:#}",
            args.join(" ")
        )
    })?;
    Ok(got)
}

fn row<'a>(list: &'a Value, job: &str) -> Option<&'a Value> {
    list["jobs"].as_array()?.iter().find(|r| r["job"] == job)
}

/// `touch -m` back to the mtime `file` had (ns), so that only the ctime
/// (in place) or the inode (rename-over) says it changed.
fn restore_mtime(env: &Env, file: &Path, mtime: (i64, i64)) -> R {
    env.sh(&format!(
        "touch -m -d @{}.{:09} {}",
        mtime.0,
        mtime.1,
        file.display()
    ))?;
    Ok(())
}

fn mtime_of(file: &Path) -> (i64, i64) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(file).unwrap();
    (m.mtime(), m.mtime_nsec())
}

pub fn the_dashboard_keeps_nothing_older_than_a_request(env: &Env) -> R {
    let dir = env.jobs_dir("web-fresh");
    let job_a = "command = [\"/bin/true\"]\ndaily = \"04:00\"\nowner = \"aaaa-1\"\n";
    write_job(&dir, "fresh-a", job_a);
    write_job(&dir, "fresh-b", DAILY);
    let config = env.scratch.join("web-fresh-config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n[web]\n")).unwrap();
    ok(&env.jobctl_with(&config, &dir, &["apply", "--json"]))?;
    install_units(env, &dir, &config, None)?;
    let d = dir.to_str().unwrap();
    let result = (|| -> R {
        let list = |what: &str| -> Result<Value, Failed> {
            same_as_cli(env, &dir, &config, "/api/v1/jobs", &["list", "--json"])
                .map_err(|e| Failed::from(format!("{what}: {}", e.message().unwrap_or_default())))
        };
        let owner = |v: &Value| row(v, "fresh-a").map(|r| r["owner"].clone());
        // Two readings of settled files: the second reuses the first.
        settle(env, &[d, UNIT_DIR])?;
        list("first reading")?;
        let first = list("second reading")?;
        check(owner(&first) == Some(json!("aaaa-1")), || {
            format!("{first:#}")
        })?;
        let pid = env.prop("jobctl-web.service", "MainPID")?;

        // In place, same size, same mtime: only the ctime changed.
        let file = dir.join("fresh-a.toml");
        let mtime = mtime_of(&file);
        fs::write(&file, job_a.replace("aaaa-1", "bbbb-1")).unwrap();
        restore_mtime(env, &file, mtime)?;
        let v = list("after an in-place rewrite")?;
        check(owner(&v) == Some(json!("bbbb-1")), || {
            format!("an in-place rewrite of the same size and mtime was not seen: {v:#}")
        })?;

        // Renamed over, as Ansible writes: another inode, same size and mtime.
        settle(env, &[d])?;
        list("settled after the rewrite")?;
        let tmp = dir.join(".fresh-a.toml.ansible-tmp");
        fs::write(&tmp, job_a.replace("aaaa-1", "cccc-1")).unwrap();
        restore_mtime(env, &tmp, mtime)?;
        fs::rename(&tmp, &file).unwrap();
        let v = list("after a rename-over")?;
        check(owner(&v) == Some(json!("cccc-1")), || {
            format!("a rename-over of the same size and mtime was not seen: {v:#}")
        })?;

        // A job file added, then removed.
        settle(env, &[d])?;
        list("settled after the rename")?;
        write_job(&dir, "fresh-c", DAILY);
        let v = list("after adding a file")?;
        check(row(&v, "fresh-c").is_some(), || {
            format!("a new job file is not listed: {v:#}")
        })?;
        settle(env, &[d])?;
        list("settled after adding")?;
        fs::remove_file(dir.join("fresh-c.toml")).unwrap();
        let v = list("after removing a file")?;
        check(row(&v, "fresh-c").is_none(), || {
            format!("a removed job file is still listed: {v:#}")
        })?;

        // A unit file changed behind jobctl's back, in place, same size and
        // mtime: the job's units are no longer what it renders to.
        settle(env, &[d, UNIT_DIR])?;
        let before = list("settled before the unit change")?;
        let unit = format!("{UNIT_DIR}/jobctl-fresh-b.service");
        env.sh(&format!(
            "python3 -c 'import os, sys; p = sys.argv[1]; st = os.stat(p); t = open(p).read(); \
             f = open(p, \"r+\"); f.write(t.replace(\"Description=\", \"Description~\", 1)); f.close(); \
             os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))' {unit}"
        ))?;
        let v = list("after a unit file changed")?;
        check(
            row(&v, "fresh-b").map(|r| &r["state"]) != row(&before, "fresh-b").map(|r| &r["state"]),
            || format!("a changed unit file was not seen: {v:#}"),
        )?;
        ok(&env.jobctl_with(&config, &dir, &["apply", "--json"]))?;

        // The timer stopped and started between two requests.
        settle(env, &[d, UNIT_DIR])?;
        let state = |v: &Value| row(v, "fresh-b").map(|r| r["state"].clone());
        check(
            state(&list("settled after apply")?) == Some(json!("active")),
            || "fresh-b is not active after apply".into(),
        )?;
        env.sh("systemctl stop jobctl-fresh-b.timer")?;
        let v = list("after stopping the timer")?;
        check(state(&v) == Some(json!("inactive")), || {
            format!("a stopped timer was not seen: {v:#}")
        })?;
        env.sh("systemctl start jobctl-fresh-b.timer")?;
        let v = list("after starting the timer")?;
        check(state(&v) == Some(json!("active")), || {
            format!("a started timer was not seen: {v:#}")
        })?;

        // Disabled and enabled again (its link in timers.target.wants).
        let health = || same_as_cli(env, &dir, &config, "/api/v1/health", &["health", "--json"]);
        let not_enabled = |v: &Value| v["counts"]["timer-not-enabled"].as_u64().unwrap_or(0);
        settle(env, &[d, UNIT_DIR])?;
        let v = health()?;
        check(not_enabled(&v) == 0, || format!("{v:#}"))?;
        env.sh("systemctl disable jobctl-fresh-b.timer")?;
        let v = health()?;
        check(not_enabled(&v) == 1, || {
            format!("a disabled timer was not seen: {v:#}")
        })?;
        settle(env, &[d, UNIT_DIR])?;
        health()?;
        env.sh("systemctl enable jobctl-fresh-b.timer")?;
        let v = health()?;
        check(not_enabled(&v) == 0, || {
            format!("an enabled timer was not seen: {v:#}")
        })?;

        // One server answered all of it: what it kept was in play.
        let now = env.prop("jobctl-web.service", "MainPID")?;
        check(now == pid && pid != "0", || {
            format!(
                "the server was restarted (MainPID {pid}, then {now}): nothing was kept between requests"
            )
        })
    })();
    stop_units(env)?;
    result
}
