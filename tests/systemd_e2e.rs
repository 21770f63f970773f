//! End-to-end tests of `jobctl apply/list/status/run/enable/disable/remove`
//! against a real systemd 252, booted once in a throwaway sandbox
//! (crates/jobctl-sandbox) and shared by every case. The cases run one at a
//! time: they share one systemd, one unit folder and one apply lock.
//!
//! Skips with a printed reason where a sandbox cannot run; fails instead when
//! JOBCTL_REQUIRE_ALL_TESTS=1 (CI).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobctl_sandbox::{Options, Sandbox};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

const JOBCTL: &str = env!("CARGO_BIN_EXE_jobctl");
const UNIT_DIR: &str = "/etc/systemd/system";

struct Env {
    sb: Sandbox,
    scratch: PathBuf,
    config: PathBuf,
}

type R = Result<(), Failed>;

fn main() {
    let mut args = Arguments::from_args();
    // One systemd, one unit folder, one lock: the cases run in sequence.
    args.test_threads = Some(1);
    let names = [
        "apply_from_empty_installs_and_starts_timers",
        "reapply_changes_nothing_and_does_not_reload",
        "updating_a_schedule_restarts_only_that_timer",
        "check_and_diff_report_without_changing",
        "removing_a_job_file_removes_its_units",
        "a_timer_fires_on_schedule",
        "run_wait_exits_with_the_jobs_exit_code",
        "a_job_runs_as_nobody_and_its_journal_is_found_by_invocation_id",
        "disabled_and_expired_jobs_have_no_running_timer",
        "a_foreign_unit_is_never_touched",
        "a_job_removed_while_running_is_not_killed",
        "operator_disable_survives_apply_until_the_job_file_changes",
        "remove_command_uninstalls_a_job",
        "unknown_jobs_get_a_suggestion",
        "user_mode_through_user_at_0",
        "run_follow_streams_the_output_once",
        "permission_denied_says_run_as_root",
        "a_partial_failure_reports_what_was_done_and_the_next_apply_converges",
    ];
    let host_trials = vec![Trial::test(
        "host_without_systemd_is_reported",
        host_without_systemd,
    )];
    let Some(env) = boot() else {
        // Not possible here (printed why): run only what needs no sandbox.
        let trials = host_trials
            .into_iter()
            .chain(
                names
                    .iter()
                    .map(|n| Trial::test(*n, || Ok(())).with_ignored_flag(true)),
            )
            .collect();
        libtest_mimic::run(&args, trials).exit();
    };
    let env = Arc::new(env);
    let mut trials = host_trials;
    for name in names {
        let env = env.clone();
        trials.push(Trial::test(name, move || {
            let f: fn(&Env) -> R = match name {
                "apply_from_empty_installs_and_starts_timers" => apply_from_empty,
                "reapply_changes_nothing_and_does_not_reload" => reapply_is_a_no_op,
                "updating_a_schedule_restarts_only_that_timer" => update_schedule,
                "check_and_diff_report_without_changing" => check_and_diff,
                "removing_a_job_file_removes_its_units" => remove_job_file,
                "a_timer_fires_on_schedule" => timer_fires,
                "run_wait_exits_with_the_jobs_exit_code" => run_wait_exit_codes,
                "a_job_runs_as_nobody_and_its_journal_is_found_by_invocation_id" => runs_as_nobody,
                "disabled_and_expired_jobs_have_no_running_timer" => disabled_and_expired,
                "a_foreign_unit_is_never_touched" => foreign_unit,
                "a_job_removed_while_running_is_not_killed" => removed_while_running,
                "operator_disable_survives_apply_until_the_job_file_changes" => operator_override,
                "remove_command_uninstalls_a_job" => remove_command,
                "unknown_jobs_get_a_suggestion" => unknown_job,
                "user_mode_through_user_at_0" => user_mode,
                "run_follow_streams_the_output_once" => run_follow,
                "permission_denied_says_run_as_root" => permission_denied,
                "a_partial_failure_reports_what_was_done_and_the_next_apply_converges" => {
                    partial_failure
                }
                _ => unreachable!(),
            };
            f(&env)
        }));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    match Arc::try_unwrap(env) {
        Ok(env) => env.sb.shutdown().expect("sandbox shutdown"),
        Err(_) => eprintln!("sandbox still referenced; dropped at exit"),
    }
    conclusion.exit();
}

fn boot() -> Option<Env> {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .to_path_buf();
    let scratch =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("systemd-e2e-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    fs::create_dir_all(&scratch).unwrap();
    // Jobs running as `nobody` reach their stand-in shim through here.
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o755)).unwrap();
    let sb = jobctl_sandbox::boot_for_tests(Options::default().share(&target))?;
    // Until `jobctl exec` (the shim) lands, units run a stand-in that execs
    // the command after `--`, so exit codes, users and output are the job's.
    let shim = scratch.join("exec-stand-in");
    fs::write(
        &shim,
        "#!/bin/sh\n# stand-in for `jobctl exec`: run the command after --\n\
         while [ \"$#\" -gt 0 ]; do a=$1; shift; [ \"$a\" = -- ] && break; done\nexec \"$@\"\n",
    )
    .unwrap();
    fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
    let config = scratch.join("config.toml");
    fs::write(&config, format!("jobctl_path = \"{}\"\n", shim.display())).unwrap();
    Some(Env {
        sb,
        scratch,
        config,
    })
}

impl Env {
    /// A fresh, empty jobs folder.
    fn jobs_dir(&self, name: &str) -> PathBuf {
        let dir = self.scratch.join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn jobctl(&self, args: &[&str]) -> Output {
        self.sb
            .command(JOBCTL)
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .unwrap()
    }

    fn jobctl_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--jobs-dir", dir.to_str().unwrap()];
        all.extend_from_slice(args);
        self.jobctl(&all)
    }

    /// `apply --json` in `dir`, which must succeed; returns the report.
    fn apply(&self, dir: &Path) -> Result<Value, Failed> {
        let out = self.jobctl_in(dir, &["apply", "--json"]);
        ok(&out)?;
        Ok(serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?)
    }

    fn sh(&self, script: &str) -> Result<String, Failed> {
        self.sb.sh(script).map_err(|e| Failed::from(e.to_string()))
    }

    fn prop(&self, unit: &str, prop: &str) -> Result<String, Failed> {
        Ok(self
            .sh(&format!("systemctl show -P {prop} {unit}"))?
            .trim()
            .to_string())
    }

    fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Result<bool, Failed>,
    ) -> R {
        let deadline = Instant::now() + timeout;
        loop {
            if f()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out after {timeout:?} waiting for {what}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn reload_count(&self) -> Result<usize, Failed> {
        // systemd logs "Reloading." (252) for every daemon-reload.
        Ok(self
            .sh("journalctl -b -o cat _PID=1 | grep -c '^Reloading' || true")?
            .trim()
            .parse()
            .unwrap_or(0))
    }
}

fn write_job(dir: &Path, name: &str, body: &str) {
    fs::write(dir.join(format!("{name}.toml")), body).unwrap();
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output) -> R {
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("jobctl failed: {}", text(out)).into())
    }
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> R {
    if cond { Ok(()) } else { Err(msg().into()) }
}

fn job_plan<'a>(report: &'a Value, job: &str) -> Result<&'a Value, Failed> {
    report["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["job"] == job))
        .ok_or_else(|| format!("job {job} not in the report: {report:#}").into())
}

const DAILY: &str = "command = [\"/bin/true\"]\ndaily = \"03:00\"\n";

// ---------------------------------------------------------------- cases

fn apply_from_empty(env: &Env) -> R {
    let dir = env.jobs_dir("from-empty");
    write_job(&dir, "alpha", DAILY);
    write_job(&dir, "beta", "command = [\"/bin/true\"]\nmanual = true\n");
    let report = env.apply(&dir)?;
    check(report["changed"] == true, || format!("{report:#}"))?;
    check(job_plan(&report, "alpha")?["change"] == "create", || {
        format!("{report:#}")
    })?;
    for unit in [
        "jobctl-alpha.service",
        "jobctl-alpha.timer",
        "jobctl-beta.service",
    ] {
        let contents = fs::read_to_string(env.sb_path(&format!("{UNIT_DIR}/{unit}")))
            .map_err(|e| format!("{unit}: {e}"))?;
        check(contents.contains("X-Jobctl-Job="), || {
            format!("{unit} has no ownership mark")
        })?;
    }
    check(
        !env.sb_path(&format!("{UNIT_DIR}/jobctl-beta.timer"))
            .exists(),
        || "a manual job got a timer".into(),
    )?;
    check(
        env.prop("jobctl-alpha.timer", "ActiveState")? == "active",
        || "timer not active".into(),
    )?;
    check(
        env.prop("jobctl-alpha.timer", "UnitFileState")? == "enabled",
        || "timer not enabled".into(),
    )?;
    let next = env.prop("jobctl-alpha.timer", "NextElapseUSecRealtime")?;
    check(next.contains("03:00:00"), || format!("next elapse {next}"))?;
    // `list` agrees.
    let out = env.jobctl_in(&dir, &["list", "--json"]);
    ok(&out)?;
    let rows: Value = serde_json::from_slice(&out.stdout)?;
    let alpha = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "alpha")
        .unwrap();
    check(
        alpha["state"] == "active" && alpha["next_run"].is_string(),
        || format!("{alpha:#}"),
    )?;
    let beta = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["job"] == "beta")
        .unwrap();
    check(beta["state"] == "manual", || format!("{beta:#}"))
}

impl Env {
    /// A path inside the sandbox, seen from the host (through its init's root).
    fn sb_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.sb.init_pid()))
    }
}

fn reapply_is_a_no_op(env: &Env) -> R {
    let dir = env.jobs_dir("no-op");
    write_job(&dir, "alpha", DAILY);
    write_job(
        &dir,
        "gamma",
        "command = [\"/bin/true\"]\nhourly = \":05\"\n",
    );
    env.apply(&dir)?;
    let mtime = |u: &str| {
        fs::metadata(env.sb_path(&format!("{UNIT_DIR}/{u}")))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = (mtime("jobctl-alpha.timer"), mtime("jobctl-gamma.service"));
    let since = env.prop("jobctl-gamma.timer", "ActiveEnterTimestampMonotonic")?;
    let reloads = env.reload_count()?;
    let report = env.apply(&dir)?;
    check(
        report["changed"] == false && report["reload"] == false,
        || format!("{report:#}"),
    )?;
    check(
        report["done"].as_array().is_some_and(|d| d.is_empty()),
        || format!("{report:#}"),
    )?;
    check(
        before == (mtime("jobctl-alpha.timer"), mtime("jobctl-gamma.service")),
        || "a unit file was rewritten".into(),
    )?;
    check(env.reload_count()? == reloads, || {
        "a no-op apply reloaded systemd".into()
    })?;
    check(
        env.prop("jobctl-gamma.timer", "ActiveEnterTimestampMonotonic")? == since,
        || "an unchanged timer was restarted".into(),
    )?;
    let out = env.jobctl_in(&dir, &["apply"]);
    ok(&out)?;
    check(
        String::from_utf8_lossy(&out.stdout).contains("nothing to change"),
        || text(&out),
    )
}

fn update_schedule(env: &Env) -> R {
    let dir = env.jobs_dir("update");
    write_job(&dir, "alpha", DAILY);
    write_job(
        &dir,
        "gamma",
        "command = [\"/bin/true\"]\nhourly = \":05\"\n",
    );
    env.apply(&dir)?;
    let gamma_since = env.prop("jobctl-gamma.timer", "ActiveEnterTimestampMonotonic")?;
    let reloads = env.reload_count()?;
    write_job(
        &dir,
        "alpha",
        "command = [\"/bin/true\"]\ndaily = \"04:30\"\n",
    );
    let report = env.apply(&dir)?;
    let alpha = job_plan(&report, "alpha")?;
    check(
        alpha["change"] == "update" && alpha["timer_steps"]["restart"] == true,
        || format!("{report:#}"),
    )?;
    check(job_plan(&report, "gamma")?["change"] == "unchanged", || {
        format!("{report:#}")
    })?;
    check(env.reload_count()? == reloads + 1, || {
        "expected exactly one reload".into()
    })?;
    let next = env.prop("jobctl-alpha.timer", "NextElapseUSecRealtime")?;
    check(next.contains("04:30:00"), || {
        format!("alpha's next elapse is {next}")
    })?;
    check(
        env.prop("jobctl-gamma.timer", "ActiveEnterTimestampMonotonic")? == gamma_since,
        || "gamma's timer was restarted".into(),
    )
}

fn check_and_diff(env: &Env) -> R {
    let dir = env.jobs_dir("check");
    write_job(&dir, "alpha", DAILY);
    env.apply(&dir)?;
    write_job(
        &dir,
        "alpha",
        "command = [\"/bin/true\"]\ndaily = \"05:45\"\n",
    );
    let before = fs::read_to_string(env.sb_path(&format!("{UNIT_DIR}/jobctl-alpha.timer")))?;
    let out = env.jobctl_in(&dir, &["apply", "--check", "--diff"]);
    check(out.status.code() == Some(3), || {
        format!("--check with changes must exit 3: {}", text(&out))
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    check(
        stdout.contains("+OnCalendar=") && stdout.contains("-OnCalendar="),
        || text(&out),
    )?;
    check(
        fs::read_to_string(env.sb_path(&format!("{UNIT_DIR}/jobctl-alpha.timer")))? == before,
        || "--check wrote".into(),
    )?;
    let out = env.jobctl_in(&dir, &["apply", "--check", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(report["changed"] == true && report["check"] == true, || {
        format!("{report:#}")
    })?;
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["apply", "--check"]);
    check(out.status.code() == Some(0), || {
        format!("--check without changes must exit 0: {}", text(&out))
    })
}

fn remove_job_file(env: &Env) -> R {
    let dir = env.jobs_dir("remove-file");
    write_job(&dir, "alpha", DAILY);
    write_job(&dir, "doomed", DAILY);
    env.apply(&dir)?;
    fs::remove_file(dir.join("doomed.toml"))?;
    let report = env.apply(&dir)?;
    let doomed = job_plan(&report, "doomed")?;
    check(doomed["change"] == "remove", || format!("{report:#}"))?;
    for u in ["jobctl-doomed.service", "jobctl-doomed.timer"] {
        check(!env.sb_path(&format!("{UNIT_DIR}/{u}")).exists(), || {
            format!("{u} still exists")
        })?;
    }
    check(
        !env.sb_path(&format!(
            "{UNIT_DIR}/timers.target.wants/jobctl-doomed.timer"
        ))
        .exists(),
        || "the enablement symlink is left".into(),
    )?;
    let state = env.prop("jobctl-doomed.timer", "ActiveState")?;
    check(state == "inactive", || format!("removed timer is {state}"))?;
    // --no-prune keeps orphans.
    write_job(&dir, "kept", DAILY);
    env.apply(&dir)?;
    fs::remove_file(dir.join("kept.toml"))?;
    let out = env.jobctl_in(&dir, &["apply", "--no-prune", "--json"]);
    ok(&out)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(job_plan(&report, "kept")?["change"] == "orphaned", || {
        format!("{report:#}")
    })?;
    check(
        env.sb_path(&format!("{UNIT_DIR}/jobctl-kept.timer"))
            .exists(),
        || "--no-prune removed".into(),
    )
}

fn timer_fires(env: &Env) -> R {
    let dir = env.jobs_dir("fires");
    let marker = env.scratch.join("fired");
    let _ = fs::remove_file(&marker);
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(4);
    let when = at
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    write_job(
        &dir,
        "soon",
        &format!(
            "command = [\"/bin/sh\", \"-c\", \"echo fired > {}\"]\non_calendar = \"{when}\"\ntimezone = \"UTC\"\n",
            marker.display()
        ),
    );
    env.apply(&dir)?;
    env.wait_for(
        "the timer to fire and the job to run",
        Duration::from_secs(30),
        || Ok(marker.exists()),
    )?;
    let out = env.jobctl_in(&dir, &["status", "soon", "--json"]);
    ok(&out)?;
    let row: Value = serde_json::from_slice(&out.stdout)?;
    check(
        row["last_trigger"].is_string() && row["last_run"].is_string(),
        || format!("{row:#}"),
    )?;
    env.wait_for("the run to finish", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-soon.service", "ActiveState")? == "inactive")
    })?;
    check(
        env.prop("jobctl-soon.service", "Result")? == "success",
        || "the fired run failed".into(),
    )
}

fn run_wait_exit_codes(env: &Env) -> R {
    let dir = env.jobs_dir("run-wait");
    write_job(&dir, "ok", "command = [\"/bin/true\"]\nmanual = true\n");
    write_job(
        &dir,
        "three",
        "command = [\"/bin/sh\", \"-c\", \"exit 3\"]\nmanual = true\n",
    );
    write_job(
        &dir,
        "killed",
        "command = [\"/bin/sh\", \"-c\", \"kill -KILL $$\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    for (job, code) in [("ok", 0), ("three", 3), ("killed", 128 + 9)] {
        let out = env.jobctl_in(&dir, &["run", job, "--wait"]);
        check(out.status.code() == Some(code), || {
            format!("run {job} --wait: want {code}: {}", text(&out))
        })?;
    }
    let out = env.jobctl_in(&dir, &["run", "three", "--wait", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(
        report["exit_status"] == 3 && report["result"] == "exit-code",
        || format!("{report:#}"),
    )?;
    // Without --wait: started, exit 0.
    let out = env.jobctl_in(&dir, &["run", "three"]);
    check(out.status.success(), || text(&out))?;
    // A run in progress is reported, not duplicated.
    write_job(
        &dir,
        "slow",
        "command = [\"/bin/sleep\", \"30\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "slow"]))?;
    env.wait_for("slow to run", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-slow.service", "ActiveState")? == "activating")
    })?;
    let first = env.prop("jobctl-slow.service", "InvocationID")?;
    let out = env.jobctl_in(&dir, &["run", "slow"]);
    check(out.status.code() == Some(1), || text(&out))?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("already running"),
        || text(&out),
    )?;
    check(
        env.prop("jobctl-slow.service", "InvocationID")? == first,
        || "a second run started".into(),
    )?;
    env.sh("systemctl stop jobctl-slow.service")?;
    Ok(())
}

fn runs_as_nobody(env: &Env) -> R {
    let dir = env.jobs_dir("nobody");
    write_job(
        &dir,
        "whoami",
        // The sleep keeps the process alive while journald resolves its
        // metadata: for a process that is already gone journald cannot read
        // its cgroup, and the line lacks _SYSTEMD_INVOCATION_ID (a journald
        // limitation; `journalctl -u` still finds it).
        "command = [\"/bin/sh\", \"-c\", \"echo running-as-$(id -un); sleep 0.5\"]\nmanual = true\nuser = \"nobody\"\n",
    );
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["run", "whoami", "--wait", "--json"]);
    ok(&out)?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let id = report["invocation_id"]
        .as_str()
        .ok_or("no invocation id")?
        .to_string();
    check(id.len() == 32, || format!("{report:#}"))?;
    // The run's journal lines, found by its invocation id.
    env.wait_for("the run's journal line", Duration::from_secs(10), || {
        Ok(env
            .sh(&format!("journalctl -o cat _SYSTEMD_INVOCATION_ID={id}"))?
            .contains("running-as-nobody"))
    })
}

fn disabled_and_expired(env: &Env) -> R {
    let dir = env.jobs_dir("disabled");
    write_job(&dir, "off", &format!("{DAILY}enabled = false\n"));
    write_job(&dir, "old", &format!("{DAILY}not_after = 2020-01-31\n"));
    write_job(&dir, "on", DAILY);
    let report = env.apply(&dir)?;
    check(
        job_plan(&report, "off")?["timer_state"] == "disabled",
        || format!("{report:#}"),
    )?;
    check(
        job_plan(&report, "old")?["timer_state"] == "expired",
        || format!("{report:#}"),
    )?;
    for job in ["off", "old"] {
        let t = format!("jobctl-{job}.timer");
        check(env.prop(&t, "ActiveState")? != "active", || {
            format!("{t} is active")
        })?;
        check(env.prop(&t, "UnitFileState")? != "enabled", || {
            format!("{t} is enabled")
        })?;
    }
    check(
        env.prop("jobctl-on.timer", "ActiveState")? == "active",
        || "on is not active".into(),
    )?;
    // Turning `off` off after it ran: stopped and disabled.
    write_job(&dir, "on", &format!("{DAILY}enabled = false\n"));
    env.apply(&dir)?;
    check(
        env.prop("jobctl-on.timer", "ActiveState")? == "inactive",
        || "not stopped".into(),
    )?;
    check(
        env.prop("jobctl-on.timer", "UnitFileState")? == "disabled",
        || "not disabled".into(),
    )?;
    let out = env.jobctl_in(&dir, &["list", "--json"]);
    let rows: Value = serde_json::from_slice(&out.stdout)?;
    let state = |j: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["job"] == j)
            .map(|r| r["state"].clone())
    };
    check(
        state("old") == Some("expired".into()) && state("off") == Some("disabled".into()),
        || format!("{rows:#}"),
    )
}

fn foreign_unit(env: &Env) -> R {
    let dir = env.jobs_dir("foreign");
    let foreign = "[Unit]\nDescription=not jobctl's\n[Service]\nExecStart=/bin/true\n";
    for u in ["jobctl-taken.service", "bystander.service"] {
        fs::write(env.sb_path(&format!("{UNIT_DIR}/{u}")), foreign)?;
    }
    write_job(&dir, "taken", DAILY);
    write_job(&dir, "fine", DAILY);
    let out = env.jobctl_in(&dir, &["apply"]);
    check(out.status.code() == Some(2), || {
        format!("a collision must be a usage error: {}", text(&out))
    })?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("jobctl-taken.service"),
        || text(&out),
    )?;
    check(
        !env.sb_path(&format!("{UNIT_DIR}/jobctl-fine.service"))
            .exists(),
        || "apply changed something despite the error".into(),
    )?;
    fs::remove_file(dir.join("taken.toml"))?;
    env.apply(&dir)?;
    for u in ["jobctl-taken.service", "bystander.service"] {
        let c = fs::read_to_string(env.sb_path(&format!("{UNIT_DIR}/{u}")))?;
        check(c == foreign, || format!("{u} was modified or removed"))?;
    }
    env.sh(&format!(
        "rm {UNIT_DIR}/jobctl-taken.service {UNIT_DIR}/bystander.service"
    ))?;
    Ok(())
}

fn removed_while_running(env: &Env) -> R {
    let dir = env.jobs_dir("running");
    write_job(
        &dir,
        "busy",
        "command = [\"/bin/sleep\", \"60\"]\ndaily = \"03:00\"\n",
    );
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "busy"]))?;
    env.wait_for("busy to run", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-busy.service", "ActiveState")? == "activating")
    })?;
    let pid = env.prop("jobctl-busy.service", "MainPID")?;
    fs::remove_file(dir.join("busy.toml"))?;
    let report = env.apply(&dir)?;
    let busy = job_plan(&report, "busy")?;
    check(
        busy["change"] == "remove" && busy["running"] == true,
        || format!("{report:#}"),
    )?;
    check(busy["notes"].to_string().contains("not stopped"), || {
        format!("{report:#}")
    })?;
    check(
        !env.sb_path(&format!("{UNIT_DIR}/jobctl-busy.service"))
            .exists(),
        || "unit not deleted".into(),
    )?;
    check(env.prop("jobctl-busy.service", "MainPID")? == pid, || {
        "the running run was killed".into()
    })?;
    check(
        env.prop("jobctl-busy.service", "ActiveState")? == "activating",
        || "the run is gone".into(),
    )?;
    env.sh("systemctl stop jobctl-busy.service")?;
    Ok(())
}

fn operator_override(env: &Env) -> R {
    let dir = env.jobs_dir("override");
    write_job(&dir, "alpha", DAILY);
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["disable", "alpha"]))?;
    check(
        env.prop("jobctl-alpha.timer", "ActiveState")? == "inactive",
        || "disable did not stop".into(),
    )?;
    let report = env.apply(&dir)?;
    check(
        job_plan(&report, "alpha")?["timer_state"] == "disabled_by_operator",
        || format!("{report:#}"),
    )?;
    check(report["changed"] == false, || {
        format!("apply undid `jobctl disable`: {report:#}")
    })?;
    check(
        env.prop("jobctl-alpha.timer", "ActiveState")? == "inactive",
        || "apply restarted it".into(),
    )?;
    // The job file changes: the file wins.
    write_job(
        &dir,
        "alpha",
        "command = [\"/bin/true\"]\ndaily = \"03:30\"\n",
    );
    env.apply(&dir)?;
    check(
        env.prop("jobctl-alpha.timer", "ActiveState")? == "active",
        || "the file's enabled did not win".into(),
    )?;
    // enable of a job whose file says enabled = false holds too.
    write_job(&dir, "beta", &format!("{DAILY}enabled = false\n"));
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["enable", "beta"]))?;
    env.apply(&dir)?;
    check(
        env.prop("jobctl-beta.timer", "ActiveState")? == "active",
        || "apply undid `jobctl enable`".into(),
    )
}

fn remove_command(env: &Env) -> R {
    let dir = env.jobs_dir("remove-cmd");
    write_job(&dir, "alpha", DAILY);
    write_job(&dir, "beta", DAILY);
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["remove", "beta"]);
    ok(&out)?;
    check(!dir.join("beta.toml").exists(), || "job file kept".into())?;
    check(
        !env.sb_path(&format!("{UNIT_DIR}/jobctl-beta.timer"))
            .exists(),
        || "unit kept".into(),
    )?;
    check(
        env.prop("jobctl-beta.timer", "ActiveState")? == "inactive",
        || "timer still active".into(),
    )?;
    let report = env.apply(&dir)?;
    check(report["changed"] == false, || format!("{report:#}"))
}

fn unknown_job(env: &Env) -> R {
    let dir = env.jobs_dir("unknown");
    write_job(&dir, "nightly-refresh", DAILY);
    env.apply(&dir)?;
    for cmd in [
        ["status", "nightly-refesh"],
        ["run", "nightly-refesh"],
        ["disable", "nightly-refesh"],
    ] {
        let out = env.jobctl_in(&dir, &cmd);
        check(out.status.code() == Some(2), || text(&out))?;
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            err.contains("unknown job") && err.contains("did you mean \"nightly-refresh\""),
            || text(&out),
        )?;
    }
    Ok(())
}

fn user_mode(env: &Env) -> R {
    env.sb.start_user_manager().map_err(|e| e.to_string())?;
    let dir = env.jobs_dir("user");
    write_job(&dir, "mine", DAILY);
    write_job(
        &dir,
        "hello",
        "command = [\"/bin/sh\", \"-c\", \"echo hello-user; exit 4\"]\nmanual = true\n",
    );
    let run = |args: &[&str]| {
        env.sb
            .user_command(JOBCTL)
            .args(["--user", "--config"])
            .arg(&env.config)
            .arg("--jobs-dir")
            .arg(&dir)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["apply", "--json"]);
    ok(&out)?;
    check(
        env.sb_path("/root/.config/systemd/user/jobctl-mine.timer")
            .exists(),
        || "user unit not in ~/.config/systemd/user".into(),
    )?;
    let state = env
        .sh("XDG_RUNTIME_DIR=/run/user/0 systemctl --user show -P ActiveState jobctl-mine.timer")?;
    check(state.trim() == "active", || {
        format!("user timer is {state}")
    })?;
    check(
        !env.sb_path(&format!("{UNIT_DIR}/jobctl-mine.timer"))
            .exists(),
        || "user mode wrote a system unit".into(),
    )?;
    let out = run(&["apply", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(report["changed"] == false, || format!("{report:#}"))?;
    let out = run(&["run", "hello", "--wait"]);
    check(out.status.code() == Some(4), || text(&out))?;
    let out = run(&["list", "--json"]);
    ok(&out)?;
    // Without a runtime dir, --user explains itself.
    let out = env
        .sb
        .command(JOBCTL)
        .args(["--user", "--jobs-dir"])
        .arg(&dir)
        .args(["list"])
        .output()
        .unwrap();
    check(out.status.code() == Some(1), || text(&out))?;
    check(
        String::from_utf8_lossy(&out.stderr).contains("Hint:"),
        || text(&out),
    )
}

fn run_follow(env: &Env) -> R {
    let dir = env.jobs_dir("follow");
    write_job(
        &dir,
        "talk",
        "command = [\"/bin/sh\", \"-c\", \"echo follow-one; sleep 1; echo follow-two; exit 5\"]\nmanual = true\n",
    );
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["run", "talk", "--follow"]);
    check(out.status.code() == Some(5), || text(&out))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in ["follow-one", "follow-two"] {
        check(stdout.matches(line).count() == 1, || {
            format!("{line} not printed exactly once: {}", text(&out))
        })?;
    }
    check(
        stdout.find("follow-one") < stdout.find("follow-two"),
        || text(&out),
    )
}

fn permission_denied(env: &Env) -> R {
    let dir = env.jobs_dir("denied");
    write_job(&dir, "alpha", "command = [\"/bin/true\"]\nmanual = true\n");
    env.apply(&dir)?;
    let out = env
        .sb
        .command("/usr/bin/setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            JOBCTL,
            "--config",
        ])
        .arg(&env.config)
        .arg("--jobs-dir")
        .arg(&dir)
        .args(["run", "alpha"])
        .output()
        .unwrap();
    check(out.status.code() == Some(1), || text(&out))?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(err.contains("Hint: run as root, or use --user"), || {
        text(&out)
    })
}

fn partial_failure(env: &Env) -> R {
    let dir = env.jobs_dir("partial");
    write_job(&dir, "old", DAILY);
    env.apply(&dir)?;
    // Removing `old` stops its timer first; writing `new` then fails on a
    // read-only unit folder.
    fs::remove_file(dir.join("old.toml"))?;
    write_job(&dir, "new", DAILY);
    env.sh(&format!(
        "mount --bind {UNIT_DIR} {UNIT_DIR} && mount -o remount,bind,ro {UNIT_DIR}"
    ))?;
    let out = env.jobctl_in(&dir, &["apply", "--json"]);
    env.sh(&format!("umount {UNIT_DIR}"))?;
    check(out.status.code() == Some(1), || text(&out))?;
    let report: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))?;
    check(
        report["done"] == serde_json::json!(["stopped timers: 1 of 1"]),
        || format!("{report:#}"),
    )?;
    let not_done = report["not_done"].to_string();
    check(
        not_done.contains("write unit files") && not_done.contains("reload"),
        || format!("{report:#}"),
    )?;
    check(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("Read-only")),
        || format!("{report:#}"),
    )?;
    check(
        !env.sb_path(&format!("{UNIT_DIR}/jobctl-new.service"))
            .exists(),
        || "a file was written".into(),
    )?;
    // The next apply converges.
    let report = env.apply(&dir)?;
    check(job_plan(&report, "new")?["change"] == "create", || {
        format!("{report:#}")
    })?;
    check(job_plan(&report, "old")?["change"] == "remove", || {
        format!("{report:#}")
    })?;
    check(
        env.prop("jobctl-new.timer", "ActiveState")? == "active",
        || "new timer not active".into(),
    )?;
    let report = env.apply(&dir)?;
    check(report["changed"] == false, || format!("{report:#}"))
}

/// On this host systemd is not PID 1: a clear error, not a hang.
fn host_without_systemd() -> R {
    if Path::new("/run/systemd/system").exists() {
        return Ok(()); // the host runs systemd: nothing to check here
    }
    let dir = tempfile_dir();
    let out = std::process::Command::new(JOBCTL)
        .args(["--jobs-dir"])
        .arg(&dir)
        .arg("apply")
        .output()
        .unwrap();
    check(out.status.code() == Some(1), || text(&out))?;
    let err = String::from_utf8_lossy(&out.stderr);
    check(
        err.contains("systemd is not running on this host") && err.contains("Hint:"),
        || text(&out),
    )
}

fn tempfile_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("host-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}
