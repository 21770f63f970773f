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

/// `curl` of Prometheus' HTTP API inside the sandbox, as JSON. Commands
/// the sandbox runs for a test do not join its network namespace (only
/// its units live there): curl enters PID 1's to reach its loopback.
fn prometheus_api(env: &Env, path: &str, query: Option<&str>) -> Result<Value, Failed> {
    let data = query
        .map(|q| format!(" --data-urlencode {}", shell_quote(&format!("query={q}"))))
        .unwrap_or_default();
    let body = env.sh(&format!(
        "nsenter -t 1 -n curl -sS --max-time 5 -G http://127.0.0.1:9090{path}{data}"
    ))?;
    Ok(serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The value of the one series `query` returns, if exactly one.
fn query_value(env: &Env, query: &str) -> Result<Option<f64>, Failed> {
    let answer = prometheus_api(env, "/api/v1/query", Some(query))?;
    let results = answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(match results.as_slice() {
        [one] => one["value"][1].as_str().and_then(|v| v.parse().ok()),
        _ => None,
    })
}

pub fn a_real_prometheus_scrapes_a_failed_job_through_node_exporter(env: &Env) -> R {
    for binary in ["/usr/bin/prometheus", "/usr/bin/prometheus-node-exporter"] {
        if !Path::new(binary).exists() {
            jobctl_sandbox::skip(&format!(
                "{binary} is not installed (Debian's prometheus, prometheus-node-exporter; scripts/setup installs them)"
            ))?;
            return Ok(());
        }
    }
    env.clean_slate()?;
    let dir = env.jobs_dir("prometheus");
    write_job(&dir, "p-ok", "command = [\"/bin/true\"]\nmanual = true\n");
    write_job(
        &dir,
        "p-fail",
        "command = [\"/bin/sh\", \"-c\", \"exit 4\"]\nmanual = true\n",
    );
    env.apply_and_run(&dir, &["p-ok"])?;
    for _ in 0..3 {
        let out = env.jobctl_in(&dir, &["run", "p-fail", "--wait"]);
        check(out.status.code() == Some(4), || text(&out))?;
    }
    let folder = "/var/lib/prometheus/node-exporter";
    env.sh(&format!("mkdir -p {folder}"))?;
    ok(&env.jobctl_in(&dir, &["metrics", "--textfile"]))?;

    // node_exporter with only its textfile collector, and Prometheus
    // scraping it every second with the shipped rules, both on loopback.
    let prom = env.scratch.join("prometheus");
    let _ = fs::remove_dir_all(&prom);
    fs::create_dir_all(prom.join("data"))?;
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/prometheus/jobctl.rules.yml"),
        prom.join("jobctl.rules.yml"),
    )?;
    fs::write(
        prom.join("prometheus.yml"),
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - jobctl.rules.yml\n\
         scrape_configs:\n  - job_name: node\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['127.0.0.1:9100']\n",
    )?;
    let prom_dir = prom.display().to_string();
    env.sh(&format!(
        "systemd-run --quiet --unit=e2e-node-exporter /usr/bin/prometheus-node-exporter \
         --web.listen-address=127.0.0.1:9100 --collector.disable-defaults \
         --collector.textfile --collector.textfile.directory={folder} && \
         systemd-run --quiet --unit=e2e-prometheus /usr/bin/prometheus \
         --config.file={prom_dir}/prometheus.yml --storage.tsdb.path={prom_dir}/data \
         --web.listen-address=127.0.0.1:9090"
    ))?;
    let result = (|| -> R {
        let failed = "jobctl_job_runs_total{job=\"p-fail\",status=\"failed\"}";
        let mut seen = None;
        env.wait_for(
            "Prometheus to have scraped jobctl's textfile",
            Duration::from_secs(90),
            || {
                seen = query_value(env, failed).unwrap_or(None);
                Ok(seen.is_some())
            },
        )
        .map_err(|e| {
            let log = env
                .sh("journalctl -u e2e-prometheus --no-pager | tail -12; \
                     nsenter -t 1 -n curl -sS --max-time 5 http://127.0.0.1:9100/metrics | grep -c jobctl_; \
                     nsenter -t 1 -n curl -sS --max-time 5 'http://127.0.0.1:9090/api/v1/targets' | head -c 1500")
                .unwrap_or_else(|e| format!("{e:?}"));
            format!("{}\n{log}", e.message().unwrap_or(""))
        })?;
        check(seen == Some(3.0), || format!("{failed} = {seen:?}"))?;
        for (query, want) in [
            (
                "jobctl_job_last_run_status{job=\"p-fail\",status=\"failed\"}",
                1.0,
            ),
            (
                "jobctl_job_last_run_status{job=\"p-fail\",status=\"success\"}",
                0.0,
            ),
            ("jobctl_job_failure_streak{job=\"p-fail\"}", 3.0),
            (
                "jobctl_job_runs_total{job=\"p-ok\",status=\"success\"}",
                1.0,
            ),
            ("jobctl_job_failure_streak{job=\"p-ok\"}", 0.0),
        ] {
            let got = query_value(env, query)?;
            check(got == Some(want), || {
                format!("{query} = {got:?}, expected {want}")
            })?;
        }
        // The shipped rule fires for the failed job, and only for it.
        let mut firing = Vec::new();
        env.wait_for("JobctlJobFailed to fire", Duration::from_secs(30), || {
            let alerts = prometheus_api(env, "/api/v1/alerts", None)?;
            firing = alerts["data"]["alerts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a["state"] == "firing" && a["labels"]["alertname"] == "JobctlJobFailed")
                .map(|a| a["labels"]["job"].as_str().unwrap_or_default().to_string())
                .collect();
            Ok(!firing.is_empty())
        })?;
        check(firing == ["p-fail"], || format!("firing for {firing:?}"))
    })();
    let _ = env.sh("systemctl stop e2e-prometheus e2e-node-exporter; systemctl reset-failed e2e-prometheus e2e-node-exporter; true");
    let _ = env.sh(&format!("rm -f {folder}/jobctl.prom"));
    let _ = fs::remove_dir_all(&prom);
    result
}
