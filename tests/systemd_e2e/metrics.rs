//! `jobctl metrics` on a real systemd 252 (issue 15): the exposition of
//! jobs that ran (as root and as another user), checked by Prometheus' own
//! `promtool check metrics`; run counters that survive `history prune`;
//! the textfile written atomically into node_exporter's folder.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Stdio;

use super::*;

/// promtool (Debian's `prometheus` package, installed by scripts/setup),
/// or a skip (a failure in CI).
pub fn promtool() -> Result<Option<PathBuf>, Failed> {
    let path = PathBuf::from("/usr/bin/promtool");
    if path.exists() {
        return Ok(Some(path));
    }
    jobctl_sandbox::skip(
        "promtool is not installed (Debian's prometheus; scripts/setup installs it)",
    )?;
    Ok(None)
}

/// `promtool check metrics` on `text`: it must pass, with no lint finding.
pub fn promtool_check_metrics(promtool: &Path, text: &str) -> R {
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    check(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        || format!("promtool check metrics: {}\n{text}", self::text(&out)),
    )
}

/// The samples of an exposition: `name{labels}` → value.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> Result<f64, Failed> {
    samples.get(series).copied().ok_or_else(|| {
        let known: Vec<&String> = samples.keys().collect();
        format!("no series {series} among {known:#?}").into()
    })
}

pub fn metrics_of_real_runs_pass_promtool_and_survive_pruning(env: &Env) -> R {
    let Some(promtool) = promtool()? else {
        return Ok(());
    };
    env.clean_slate()?;
    let dir = env.jobs_dir("metrics");
    write_job(
        &dir,
        "m-ok",
        "command = [\"/bin/true\"]\nmanual = true\nteam = \"ops\"\ntags = [\"nightly\", \"etl\"]\nsucceed_within = \"26h\"\n",
    );
    write_job(
        &dir,
        "m-fail",
        "command = [\"/bin/sh\", \"-c\", \"exit 3\"]\nmanual = true\nuser = \"nobody\"\n",
    );
    env.apply_and_run(&dir, &["m-ok", "m-ok", "m-ok"])?;
    for _ in 0..2 {
        let out = env.jobctl_in(&dir, &["run", "m-fail", "--wait"]);
        check(out.status.code() == Some(3), || text(&out))?;
    }
    let out = env.jobctl_in(&dir, &["metrics"]);
    ok(&out)?;
    let exposition = String::from_utf8_lossy(&out.stdout).into_owned();
    promtool_check_metrics(&promtool, &exposition)?;
    let got = samples(&exposition);
    let ok_labels = "job=\"m-ok\",user=\"root\",team=\"ops\",tags=\"etl,nightly\"";
    let fail_labels = "job=\"m-fail\",user=\"nobody\"";
    for (series, want) in [
        (
            format!("jobctl_job_runs_total{{{ok_labels},status=\"success\"}}"),
            3.0,
        ),
        (
            format!("jobctl_job_runs_total{{{ok_labels},status=\"failed\"}}"),
            0.0,
        ),
        (
            format!("jobctl_job_runs_total{{{fail_labels},status=\"failed\"}}"),
            2.0,
        ),
        (
            format!("jobctl_job_last_run_status{{{fail_labels},status=\"failed\"}}"),
            1.0,
        ),
        (
            format!("jobctl_job_last_run_status{{{fail_labels},status=\"success\"}}"),
            0.0,
        ),
        (format!("jobctl_job_failure_streak{{{fail_labels}}}"), 2.0),
        (format!("jobctl_job_failure_streak{{{ok_labels}}}"), 0.0),
        (format!("jobctl_job_overdue{{{ok_labels}}}"), 0.0),
        (
            format!("jobctl_job_succeed_within_seconds{{{ok_labels}}}"),
            93600.0,
        ),
        // Manual jobs: no timer to run.
        (format!("jobctl_job_enabled{{{ok_labels}}}"), 0.0),
    ] {
        let v = value(&got, &series)?;
        check(v == want, || {
            format!("{series} = {v}, expected {want}\n{exposition}")
        })?;
    }
    // Times: the last success is the last run's start, and it ended.
    let start = value(
        &got,
        &format!("jobctl_job_last_run_start_timestamp_seconds{{{ok_labels}}}"),
    )?;
    let success = value(
        &got,
        &format!("jobctl_job_last_success_timestamp_seconds{{{ok_labels}}}"),
    )?;
    let end = value(
        &got,
        &format!("jobctl_job_last_run_end_timestamp_seconds{{{ok_labels}}}"),
    )?;
    let now = jiff::Timestamp::now().as_second() as f64;
    check(
        start == success && end >= start && now - start < 600.0 && start <= now + 1.0,
        || format!("start {start}, success {success}, end {end}, now {now}"),
    )?;
    check(
        !got.keys()
            .any(|k| k.contains("m-fail") && k.contains("success_timestamp")),
        || "a job that never succeeded has a last success".into(),
    )?;

    // Pruning down to one run per job leaves the counters as they were.
    let out = env.jobctl(&["history", "prune", "--keep-runs", "1"]);
    ok(&out)?;
    check(env.runs("m-ok")?.len() == 1, || {
        "prune kept more than one run".into()
    })?;
    let out = env.jobctl_in(&dir, &["metrics"]);
    ok(&out)?;
    let after = samples(&String::from_utf8_lossy(&out.stdout));
    for series in [
        format!("jobctl_job_runs_total{{{ok_labels},status=\"success\"}}"),
        format!("jobctl_job_runs_total{{{fail_labels},status=\"failed\"}}"),
    ] {
        check(after.get(&series) == got.get(&series), || {
            format!(
                "{series}: {:?} before prune, {:?} after",
                got.get(&series),
                after.get(&series)
            )
        })?;
    }

    // The textfile: Debian's node_exporter folder by default, written
    // whole, readable by node_exporter, no temporary file left.
    let folder = "/var/lib/prometheus/node-exporter";
    env.sh(&format!("mkdir -p {folder}"))?;
    let out = env.jobctl_in(&dir, &["metrics", "--textfile"]);
    ok(&out)?;
    check(out.stdout.is_empty(), || text(&out))?;
    let written = fs::read_to_string(env.sb_path(&format!("{folder}/jobctl.prom")))?;
    promtool_check_metrics(&promtool, &written)?;
    check(samples(&written) == after, || written.clone())?;
    let listing = env.sh(&format!(
        "stat -c '%a %U %n' {folder}/* {folder}/.[!.]* 2>/dev/null; true"
    ))?;
    check(
        listing.trim() == format!("644 root {folder}/jobctl.prom"),
        || listing.clone(),
    )?;
    // With --user there is no default folder: a usage error.
    let out = env.jobctl_in(&dir, &["--user", "metrics", "--textfile"]);
    check(
        out.status.code() == Some(2) && text(&out).contains("needs a PATH"),
        || text(&out),
    )?;
    env.sh(&format!("rm -f {folder}/jobctl.prom"))?;

    // `[metrics] textfile`: every watch pass writes it.
    let config = env.scratch.join("metrics-config.toml");
    fs::write(
        &config,
        format!(
            "jobctl_path = \"{JOBCTL}\"\n[metrics]\ntextfile = \"{folder}/jobctl-watch.prom\"\n"
        ),
    )?;
    let out = env
        .sb
        .command(JOBCTL)
        .arg("--config")
        .arg(&config)
        .args([
            "--jobs-dir",
            dir.to_str().unwrap_or_default(),
            "watch",
            "--once",
        ])
        .output()?;
    ok(&out)?;
    let written = fs::read_to_string(env.sb_path(&format!("{folder}/jobctl-watch.prom")))
        .map_err(|e| format!("the watch wrote no textfile ({e}): {}", text(&out)))?;
    promtool_check_metrics(&promtool, &written)?;
    let watched = samples(&written);
    for series in [
        format!("jobctl_job_runs_total{{{ok_labels},status=\"success\"}}"),
        format!("jobctl_job_failure_streak{{{fail_labels}}}"),
    ] {
        check(watched.get(&series) == after.get(&series), || {
            format!(
                "{series}: {:?} from the watch, {:?} from metrics",
                watched.get(&series),
                after.get(&series)
            )
        })?;
    }
    env.sh(&format!("rm -f {folder}/jobctl-watch.prom"))?;
    Ok(())
}
