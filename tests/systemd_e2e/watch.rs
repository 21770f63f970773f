//! Notifications end to end on a real systemd 252: the shipped watch units
//! (`units/system/jobctl-watch.{service,socket}`, unmodified, with a
//! drop-in naming this case's configuration and jobs folder) run `jobctl
//! watch --once` when a job's shim pokes the socket or when a case starts a
//! pass itself, and deliver through a real channel: a command that appends
//! the JSON it receives to a file. The suite's shared sandbox; each case
//! installs the shipped units (`install`), and stops the watch's socket and
//! removes its drop-in when it ends (`uninstall`), so no later case wakes a
//! watch. The watch's timer is not started, so every pass is one the case
//! can account for.

use std::os::unix::fs::PermissionsExt as _;

use super::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The shipped watch units, as the package installs them, with
/// /usr/bin/jobctl the binary under test (in the sandbox's overlay, gone at
/// shutdown), and the system socket started.
fn install(env: &Env) -> R {
    env.sh(&format!("ln -sf {JOBCTL} /usr/bin/jobctl"))?;
    for (dir, to) in [
        ("units/system", "/lib/systemd/system"),
        ("units/user", "/usr/lib/systemd/user"),
    ] {
        for unit in [
            "jobctl-watch.service",
            "jobctl-watch.socket",
            "jobctl-watch.timer",
        ] {
            env.sh(&format!("install -m 0644 {ROOT}/{dir}/{unit} {to}/{unit}"))?;
        }
    }
    env.sh("systemctl daemon-reload && systemctl start jobctl-watch.socket")?;
    Ok(())
}

/// Stops the watch (system and per-user) and removes the cases' drop-ins:
/// the suite's later cases run jobs of their own, and no watch may wake
/// for them.
fn uninstall(env: &Env) {
    let _ = env.sh(
        "systemctl stop jobctl-watch.socket jobctl-watch.service; \
         rm -rf /etc/systemd/system/jobctl-watch.service.d; systemctl daemon-reload; \
         if test -S /run/user/0/bus; then \
           XDG_RUNTIME_DIR=/run/user/0 systemctl --user stop jobctl-watch.socket jobctl-watch.service; \
           rm -rf /etc/systemd/user/jobctl-watch.service.d; \
           XDG_RUNTIME_DIR=/run/user/0 systemctl --user daemon-reload; \
         fi; true",
    );
}

/// Runs `case` with the watch installed, and uninstalls it afterwards
/// whatever happened.
pub(super) fn with_watch(env: &Env, case: fn(&Env) -> R) -> R {
    let result = install(env).and_then(|()| case(env));
    uninstall(env);
    result
}

pub fn a_failure_reaches_the_channel_through_the_socket_once_then_one_recovery(env: &Env) -> R {
    with_watch(env, failure_once_then_recovery)
}

pub fn a_timer_stopped_behind_jobctls_back_is_overdue_once_then_recovers(env: &Env) -> R {
    with_watch(env, overdue_once_then_recovery)
}

pub fn a_shim_killed_mid_run_is_lost_once(env: &Env) -> R {
    with_watch(env, lost_once)
}

pub fn a_run_past_warn_after_is_an_overrun_once(env: &Env) -> R {
    with_watch(env, overrun_once)
}

pub fn a_failing_channel_is_retried_with_backoff_then_given_up_and_the_job_is_untouched(
    env: &Env,
) -> R {
    with_watch(env, failing_channel_given_up)
}

pub fn user_mode_watch_through_the_user_socket(env: &Env) -> R {
    with_watch(env, user_mode)
}

/// One case's world: its jobs folder, its configuration (with a command
/// channel `rec` writing to `received`), and the watch pointed at both.
pub(super) struct WatchCase<'a> {
    env: &'a Env,
    dir: PathBuf,
    config: PathBuf,
    received: PathBuf,
    user: bool,
}

impl Env {
    /// A case with its own folder and configuration. `notify` is the
    /// configuration's `[notify]` settings; channels are added to it.
    pub(super) fn watch_case(
        &self,
        name: &str,
        notify: &str,
        extra_channels: &str,
    ) -> Result<WatchCase<'_>, Failed> {
        self.watch_case_for(name, notify, extra_channels, false)
    }

    pub(super) fn watch_case_for(
        &self,
        name: &str,
        notify: &str,
        extra_channels: &str,
        user: bool,
    ) -> Result<WatchCase<'_>, Failed> {
        let base = self.scratch.join(name);
        let _ = fs::remove_dir_all(&base);
        let dir = base.join("jobs.d");
        fs::create_dir_all(&dir)?;
        let received = base.join("received.jsonl");
        fs::write(&received, "")?;
        fs::set_permissions(&received, fs::Permissions::from_mode(0o666))?;
        let config = base.join("config.toml");
        fs::write(
            &config,
            format!(
                "jobctl_path = \"{JOBCTL}\"\n[notify]\n{notify}\n\
                 [notify.channels.rec]\n\
                 command = [\"/bin/sh\", \"-c\", \"cat >> {r}; echo >> {r}\"]\n{extra_channels}",
                r = received.display()
            ),
        )?;
        // The shipped unit, unmodified, plus what `systemctl edit` would
        // add: this case's files, and a place its command channel may write
        // (the shipped sandbox makes everything else read-only).
        let dropin = format!(
            "[Service]\nEnvironment=JOBCTL_CONFIG={} JOBCTL_JOBS_DIR={}\nReadWritePaths={}\n",
            config.display(),
            dir.display(),
            base.display()
        );
        if user {
            self.sh(&format!(
                "mkdir -p /etc/systemd/user/jobctl-watch.service.d && cat > /etc/systemd/user/jobctl-watch.service.d/test.conf <<'EOF'\n{dropin}EOF\n\
                 XDG_RUNTIME_DIR=/run/user/0 systemctl --user daemon-reload"
            ))?;
        } else {
            self.sh(&format!(
                "mkdir -p /etc/systemd/system/jobctl-watch.service.d && cat > /etc/systemd/system/jobctl-watch.service.d/test.conf <<'EOF'\n{dropin}EOF\n\
                 systemctl daemon-reload"
            ))?;
        }
        Ok(WatchCase {
            env: self,
            dir,
            config,
            received,
            user,
        })
    }
}

impl WatchCase<'_> {
    pub(super) fn write_job(&self, name: &str, body: &str) {
        fs::write(self.dir.join(format!("{name}.toml")), body).unwrap();
    }

    pub(super) fn jobctl(&self, args: &[&str]) -> Output {
        let mut cmd = if self.user {
            let mut c = self.env.sb.user_command(JOBCTL);
            c.arg("--user");
            c
        } else {
            self.env.sb.command(JOBCTL)
        };
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--jobs-dir")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
    }

    pub(super) fn apply(&self) -> R {
        ok(&self.jobctl(&["apply"]))
    }

    /// `run JOB` (not waiting), then waits until its shim has recorded the
    /// run's start.
    pub(super) fn start_running(&self, job: &str) -> R {
        ok(&self.jobctl(&["run", job]))?;
        self.env
            .wait_for(&format!("{job} running"), Duration::from_secs(10), || {
                Ok(self
                    .runs(job)?
                    .first()
                    .is_some_and(|r| r["status"] == "running"))
            })
    }

    /// One watch pass through the shipped service (`systemctl start` of a
    /// oneshot waits for it), as the timer would start it.
    pub(super) fn pass(&self) -> R {
        let systemctl = if self.user {
            "XDG_RUNTIME_DIR=/run/user/0 systemctl --user"
        } else {
            "systemctl"
        };
        self.env
            .sh(&format!("{systemctl} start jobctl-watch.service"))
            .map(|_| ())
    }

    /// The notifications the channel received, in order (JSON values one
    /// after another, however each is laid out).
    fn received(&self) -> Result<Vec<Value>, Failed> {
        let text = fs::read_to_string(&self.received)?;
        let mut out = Vec::new();
        for value in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
            match value {
                Ok(v) => out.push(v),
                // The channel is still writing the last one.
                Err(e) if e.is_eof() => break,
                Err(e) => return Err(format!("{e}: {text}").into()),
            }
        }
        Ok(out)
    }

    fn received_of(&self, job: &str, event: &str) -> Result<Vec<Value>, Failed> {
        Ok(self
            .received()?
            .into_iter()
            .filter(|n| n["job"] == job && n["event"] == event)
            .collect())
    }

    /// Starts passes until `event` of `job` has been received (the timer is
    /// not running: only these passes and the shims' pokes wake the watch).
    fn pass_until(&self, job: &str, event: &str, timeout: Duration) -> Result<Value, Failed> {
        let mut got = None;
        self.env
            .wait_for(&format!("{event} of {job}"), timeout, || {
                got = self.received_of(job, event)?.into_iter().next();
                if got.is_none() {
                    self.pass()?;
                    got = self.received_of(job, event)?.into_iter().next();
                }
                Ok(got.is_some())
            })
            .map_err(|e| {
                format!(
                    "{}; received: {:#?}; notifications: {}",
                    e.message().unwrap_or(""),
                    self.received().unwrap_or_default(),
                    text(&self.jobctl(&["notifications", "--json"]))
                )
            })?;
        Ok(got.unwrap())
    }

    /// `notifications JOB --json`.
    fn notifications(&self, job: &str) -> Result<Vec<Value>, Failed> {
        let out = self.jobctl(&["notifications", job, "--json", "-n", "0"]);
        ok(&out)?;
        let v: Value = serde_json::from_slice(&out.stdout)?;
        Ok(v["notifications"].as_array().cloned().unwrap_or_default())
    }

    pub(super) fn runs(&self, job: &str) -> Result<Vec<Value>, Failed> {
        let out = self.jobctl(&["history", "--job", job, "--json", "--limit", "0"]);
        ok(&out)?;
        let v: Value = serde_json::from_slice(&out.stdout)?;
        Ok(v["runs"].as_array().cloned().unwrap_or_default())
    }
}

pub(super) const NOTIFY: &str = "";

// ---------------------------------------------------------------- cases

/// Three failures in a row (notify_after = 1, no repeat): one `failure`,
/// delivered through the shim's poke alone; then one `recovery`.
fn failure_once_then_recovery(env: &Env) -> R {
    let case = env.watch_case("failure", NOTIFY, "")?;
    let flag = case.dir.parent().unwrap().join("fail");
    fs::write(&flag, "")?;
    case.write_job(
        "w-flaky",
        &format!(
            "shell = \"echo step-one; echo the disk is full >&2; test ! -e {} || exit 3\"\nmanual = true\nnotify = [\"rec\"]\n",
            flag.display()
        ),
    );
    case.apply()?;
    // Only jobs with channels get the shim's flag.
    let exec = env.prop("jobctl-w-flaky.service", "ExecStart")?;
    check(exec.contains("--notify"), || exec.clone())?;

    let out = case.jobctl(&["run", "w-flaky", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    let ended = Instant::now();
    // No pass of our own: the shim's datagram starts the watch.
    env.wait_for(
        "the failure through the socket",
        Duration::from_secs(20),
        || Ok(!case.received_of("w-flaky", "failure")?.is_empty()),
    )?;
    eprintln!(
        "failure received {:?} after `run --wait` returned (socket poke)",
        ended.elapsed()
    );
    for _ in 0..2 {
        let out = case.jobctl(&["run", "w-flaky", "--wait"]);
        check(out.status.code() == Some(3), || text(&out))?;
    }
    case.pass()?;
    case.pass()?;
    let failures = case.received_of("w-flaky", "failure")?;
    check(failures.len() == 1, || format!("{failures:#?}"))?;
    let n = &failures[0];
    let runs = case.runs("w-flaky")?;
    check(runs.len() == 3, || format!("{runs:#?}"))?;
    let first = runs.last().unwrap();
    check(
        n["status"] == "failed"
            && n["exit_code"] == 3
            && n["failure_streak"] == 1
            && n["run_id"] == first["id"]
            && n["invocation_id"] == first["invocation_id"]
            && n["event_id"].as_str().is_some_and(|id| id.len() == 32)
            && n["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("w-flaky FAILED on ") && s.ends_with("(exit 3)"))
            && n["output_tail"]
                .as_str()
                .is_some_and(|t| t.contains("step-one") && t.contains("the disk is full"))
            && n["journal_hint"].as_str().is_some_and(|h| {
                h.starts_with(
                    "journalctl _SYSTEMD_UNIT=jobctl-w-flaky.service _SYSTEMD_INVOCATION_ID=",
                )
            }),
        || format!("{n:#}\nruns: {runs:#?}"),
    )?;
    // The queue says the same: one event, sent in one attempt.
    let queued = case.notifications("w-flaky")?;
    check(
        queued.len() == 1
            && queued[0]["state"] == "sent"
            && queued[0]["attempts"] == 1
            && queued[0]["exit_status"] == 0
            && queued[0]["attempts_made"].as_array().map(Vec::len) == Some(1),
        || format!("{queued:#?}"),
    )?;

    // The job is fixed: one recovery, again through the socket.
    fs::remove_file(&flag)?;
    ok(&case.jobctl(&["run", "w-flaky", "--wait"]))?;
    env.wait_for(
        "the recovery through the socket",
        Duration::from_secs(20),
        || Ok(!case.received_of("w-flaky", "recovery")?.is_empty()),
    )?;
    ok(&case.jobctl(&["run", "w-flaky", "--wait"]))?;
    case.pass()?;
    let recoveries = case.received_of("w-flaky", "recovery")?;
    check(
        recoveries.len() == 1 && recoveries[0]["status"] == "success",
        || format!("{recoveries:#?}"),
    )?;
    check(case.received_of("w-flaky", "failure")?.len() == 1, || {
        "a second failure".into()
    })?;
    // `notifications` in text: both events, sent.
    let out = case.jobctl(&["notifications", "w-flaky"]);
    ok(&out)?;
    let listing = String::from_utf8_lossy(&out.stdout);
    check(
        listing.lines().filter(|l| l.contains(" sent ")).count() == 2
            && listing.contains("recovery")
            && listing.contains("failure"),
        || listing.to_string(),
    )
}

/// A timer stopped behind jobctl's back: `overdue` once its next run's time,
/// leeway and grace have passed, reported by `health` too; `recovery` once a
/// run starts again.
fn overdue_once_then_recovery(env: &Env) -> R {
    let case = env.watch_case("overdue", NOTIFY, "")?;
    case.write_job(
        "w-ticker",
        "command = [\"/bin/true\"]\nevery = \"2s\"\ngrace = \"2s\"\nnotify = [\"rec\"]\n",
    );
    case.apply()?;
    env.wait_for("a run of w-ticker", Duration::from_secs(20), || {
        Ok(!case.runs("w-ticker")?.is_empty())
    })?;
    // The watch has seen the schedule.
    case.pass()?;
    env.sh("systemctl stop jobctl-w-ticker.timer")?;
    let stopped = Instant::now();
    let n = case.pass_until("w-ticker", "overdue", Duration::from_secs(30))?;
    eprintln!(
        "overdue received {:?} after the timer stopped",
        stopped.elapsed()
    );
    let details = &n["details"];
    check(
        n["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("w-ticker OVERDUE on ") && s.contains("no run started"))
            && detail(details, "expected start").is_string()
            && detail(details, "grace") == "2s",
        || format!("{n:#}"),
    )?;
    // health says so too.
    let out = case.jobctl(&["health", "w-ticker", "--json"]);
    check(out.status.code() == Some(1), || text(&out))?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    check(report["counts"]["overdue"] == 1, || format!("{report:#}"))?;
    let out = case.jobctl(&["health", "w-ticker", "--prometheus"]);
    check(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == "jobctl_job_problem{job=\"w-ticker\",kind=\"overdue\"} 1"),
        || text(&out),
    )?;
    // Once.
    case.pass()?;
    case.pass()?;
    check(case.received_of("w-ticker", "overdue")?.len() == 1, || {
        format!("{:#?}", case.received())
    })?;
    // The timer runs again: a run starts, and the incident is over.
    env.sh("systemctl start jobctl-w-ticker.timer")?;
    let r = case.pass_until("w-ticker", "recovery", Duration::from_secs(30))?;
    check(detail(&r["details"], "recovers") == "overdue", || {
        format!("{r:#}")
    })?;
    let out = case.jobctl(&["health", "w-ticker"]);
    check(
        !String::from_utf8_lossy(&out.stdout).contains("overdue"),
        || text(&out),
    )?;
    // Leave nothing running for the next case.
    env.sh("systemctl stop jobctl-w-ticker.timer")?;
    Ok(())
}

/// A shim SIGKILLed mid-run: the run is lost, and `lost` is sent once.
fn lost_once(env: &Env) -> R {
    let case = env.watch_case("lost", NOTIFY, "")?;
    case.write_job(
        "w-hang",
        "command = [\"/bin/sleep\", \"300\"]\nmanual = true\nnotify = [\"rec\"]\n",
    );
    case.apply()?;
    case.start_running("w-hang")?;
    let shim = env.prop("jobctl-w-hang.service", "MainPID")?;
    env.sh(&format!("kill -KILL {shim}"))?;
    env.wait_for("the service to fail", Duration::from_secs(10), || {
        Ok(env.prop("jobctl-w-hang.service", "ActiveState")? == "failed")
    })?;
    let n = case.pass_until("w-hang", "lost", Duration::from_secs(30))?;
    let run = &case.runs("w-hang")?[0];
    check(
        n["status"] == "lost"
            && n["run_id"] == run["id"]
            && n["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("w-hang LOST on ")),
        || format!("{n:#}\n{run:#}"),
    )?;
    case.pass()?;
    check(case.received_of("w-hang", "lost")?.len() == 1, || {
        format!("{:#?}", case.received())
    })?;
    check(case.received_of("w-hang", "failure")?.is_empty(), || {
        "a lost run is `lost`, not also `failure`".into()
    })
}

/// A run still going past `warn_after`: `overrun` once for that run.
fn overrun_once(env: &Env) -> R {
    let case = env.watch_case("overrun", NOTIFY, "")?;
    case.write_job(
        "w-slow",
        "command = [\"/bin/sleep\", \"300\"]\nmanual = true\ntimeout = \"1h\"\nwarn_after = \"2s\"\nnotify = [\"rec\"]\n",
    );
    case.apply()?;
    case.start_running("w-slow")?;
    let n = case.pass_until("w-slow", "overrun", Duration::from_secs(30))?;
    let run = &case.runs("w-slow")?[0];
    check(
        n["status"] == "running"
            && n["run_id"] == run["id"]
            && n["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("w-slow still RUNNING on ")),
        || format!("{n:#}"),
    )?;
    case.pass()?;
    case.pass()?;
    check(case.received_of("w-slow", "overrun")?.len() == 1, || {
        format!("{:#?}", case.received())
    })?;
    env.sh("systemctl stop jobctl-w-slow.service")?;
    Ok(())
}

/// A channel that fails: retried with growing waits, then given up after
/// `retry_for`, every attempt recorded; the job's own runs and exit status
/// are what the job did.
fn failing_channel_given_up(env: &Env) -> R {
    let attempts_file = env.scratch.join("broken-attempts");
    let _ = fs::remove_file(&attempts_file);
    let case = env.watch_case(
        "broken",
        "retry_for = \"6s\"",
        &format!(
            "[notify.channels.broken]\ncommand = [\"/bin/sh\", \"-c\", \"date +%s.%N >> {}; echo receiver down >&2; exit 75\"]\n",
            attempts_file.display()
        ),
    )?;
    // The attempts file is written by the watch: let its sandbox write it.
    env.sh(&format!(
        "sed -i 's|^ReadWritePaths=.*|& {}|' /etc/systemd/system/jobctl-watch.service.d/test.conf && systemctl daemon-reload",
        env.scratch.display()
    ))?;
    case.write_job(
        "w-doomed",
        "command = [\"/bin/sh\", \"-c\", \"echo working; exit 7\"]\nmanual = true\nnotify = [\"broken\"]\n",
    );
    case.apply()?;
    let started = Instant::now();
    let out = case.jobctl(&["run", "w-doomed", "--wait"]);
    // The job's own status, whatever the channel does.
    check(out.status.code() == Some(7), || text(&out))?;
    check(started.elapsed() < Duration::from_secs(10), || {
        format!("run --wait took {:?}", started.elapsed())
    })?;
    let mut last = Vec::new();
    env.wait_for(
        "the delivery to be given up",
        Duration::from_secs(40),
        || {
            case.pass()?;
            last = case.notifications("w-doomed")?;
            Ok(last.first().is_some_and(|n| n["state"] == "given-up"))
        },
    )
    .map_err(|e| format!("{}: {last:#?}", e.message().unwrap_or("")))?;
    let n = &last[0];
    let made = n["attempts_made"].as_array().cloned().unwrap_or_default();
    check(
        made.len() >= 2
            && n["attempts"] == made.len()
            && made
                .iter()
                .all(|a| a["ok"] == false && a["exit_status"] == 75)
            && n["exit_status"] == 75
            && n["next_attempt"].is_null()
            && n["event"] == "failure",
        || format!("{n:#}"),
    )?;
    // The waits grew: 1 s, then 2 s (an eighth of retry_for, doubling).
    let times: Vec<f64> = fs::read_to_string(&attempts_file)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    check(times.len() == made.len(), || {
        format!("{times:?} vs {made:#?}")
    })?;
    for (i, pair) in times.windows(2).enumerate() {
        let want = f64::from(1u32 << i);
        check(pair[1] - pair[0] >= want - 0.05, || {
            format!(
                "wait {i} was {:.2}s, want at least {want}s: {times:?}",
                pair[1] - pair[0]
            )
        })?;
    }
    // Given up: no more attempts.
    case.pass()?;
    check(
        fs::read_to_string(&attempts_file)?.lines().count() == times.len(),
        || "attempted after giving up".into(),
    )?;
    // The job's history is the job's: one failed run, exit 7, its output.
    let runs = case.runs("w-doomed")?;
    check(
        runs.len() == 1 && runs[0]["status"] == "failed" && runs[0]["exit_code"] == 7,
        || format!("{runs:#?}"),
    )?;
    let out = case.jobctl(&["logs", "w-doomed"]);
    check(
        String::from_utf8_lossy(&out.stdout).contains("working"),
        || text(&out),
    )?;
    // The listing names the result and the state.
    let out = case.jobctl(&["notifications", "w-doomed", "--attempts"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    check(
        // (The detail after the status is the delivery crate's wording.)
        listing.contains("given-up") && listing.contains("exited 75"),
        || listing.to_string(),
    )
}

/// Per-user mode: the user unit's socket under $XDG_RUNTIME_DIR, woken by a
/// per-user job's shim, delivering from the user's own history.
fn user_mode(env: &Env) -> R {
    env.sb.start_user_manager().map_err(|e| e.to_string())?;
    let case = env.watch_case_for("user", NOTIFY, "", true)?;
    env.sh("XDG_RUNTIME_DIR=/run/user/0 systemctl --user start jobctl-watch.socket && test -S /run/user/0/jobctl/watch.sock")?;
    case.write_job(
        "w-mine",
        "command = [\"/bin/sh\", \"-c\", \"exit 5\"]\nmanual = true\nnotify = [\"rec\"]\n",
    );
    case.apply()?;
    let out = case.jobctl(&["run", "w-mine", "--wait"]);
    check(out.status.code() == Some(5), || text(&out))?;
    env.wait_for(
        "the user's failure through the socket",
        Duration::from_secs(20),
        || Ok(!case.received_of("w-mine", "failure")?.is_empty()),
    )?;
    let n = &case.received_of("w-mine", "failure")?[0];
    check(
        n["exit_code"] == 5
            && n["journal_hint"]
                .as_str()
                // Root's manager: its uid, not --user (userjournal.rs).
                .is_some_and(|h| {
                    h.starts_with(
                        "journalctl _UID=0 _SYSTEMD_USER_UNIT=jobctl-w-mine.service _SYSTEMD_INVOCATION_ID=",
                    )
                }),
        || format!("{n:#}"),
    )?;
    // Queued in the user's state folder, not root's.
    let queued = case.notifications("w-mine")?;
    check(queued.len() == 1 && queued[0]["state"] == "sent", || {
        format!("{queued:#?}")
    })?;
    check(
        env.sh("test -e /root/.local/state/jobctl/notify.db && echo yes")?
            .trim()
            == "yes",
        || "no per-user notification database".into(),
    )?;
    env.sh("XDG_RUNTIME_DIR=/run/user/0 systemctl --user stop jobctl-watch.socket")?;
    Ok(())
}

/// The value of a labelled fact in a generic payload's `details` (a list of
/// `{"label", "value"}`), or `null`.
pub(super) fn detail<'a>(details: &'a Value, label: &str) -> &'a Value {
    details
        .as_array()
        .and_then(|d| d.iter().find(|f| f["label"] == label))
        .map_or(&Value::Null, |f| &f["value"])
}

pub fn reminders_repeat_while_an_incident_stays_open(env: &Env) -> R {
    with_watch(env, reminders_while_open)
}

/// `repeat` (issue 13, "Events, once per incident"): a channel with
/// `repeat = "1min"` gets the failure once, then one reminder each time a
/// pass finds another interval gone by since the incident opened (skipped
/// ones not made up, none twice), then one recovery. The watch reads the
/// clock of the host; rather than wait minutes, the case moves the
/// incident's opening back in the watch's stored state (`notify.db`,
/// `notify_state`), as time passing would, and starts the passes itself.
fn reminders_while_open(env: &Env) -> R {
    let case = env.watch_case("reminders", NOTIFY, "repeat = \"1min\"\n")?;
    let flag = case.dir.parent().unwrap().join("fail");
    fs::write(&flag, "")?;
    case.write_job(
        "nagging",
        &format!(
            "shell = \"test ! -e {} || exit 3\"\nmanual = true\nnotify = [\"rec\"]\n",
            flag.display()
        ),
    );
    case.apply()?;
    let out = case.jobctl(&["run", "nagging", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    case.pass_until("nagging", "failure", Duration::from_secs(20))?;
    // Another pass at once: no interval has gone by, nothing is sent.
    case.pass()?;
    let reminders = |case: &WatchCase<'_>| -> Result<Vec<Value>, Failed> {
        Ok(case
            .received_of("nagging", "failure")?
            .into_iter()
            .filter(|n| {
                n["summary"]
                    .as_str()
                    .is_some_and(|s| s.contains("[reminder"))
            })
            .collect())
    };
    check(reminders(&case)?.is_empty(), || {
        format!("{:#?}", case.received())
    })?;
    // 2.5 intervals later: the second reminder (the first is not made up).
    let back_date = |seconds: i64| {
        env.sh(&format!(
            "sqlite3 /var/lib/jobctl/notify.db \"UPDATE notify_state SET state = \
             json_set(state, '$.failure.opened_us', \
             json_extract(state, '$.failure.opened_us') - {seconds}000000) \
             WHERE job = 'nagging'\""
        ))
    };
    back_date(150)?;
    case.pass()?;
    let got = reminders(&case)?;
    check(
        got.len() == 1
            && got[0]["summary"]
                .as_str()
                .is_some_and(|s| s.ends_with("[reminder 2]"))
            && got[0]["status"] == "failed",
        || format!("{got:#?}"),
    )?;
    // Nothing new until the next interval; then the third.
    case.pass()?;
    check(reminders(&case)?.len() == 1, || {
        format!("{:#?}", case.received())
    })?;
    back_date(60)?;
    case.pass()?;
    let got = reminders(&case)?;
    check(
        got.len() == 2
            && got[1]["summary"]
                .as_str()
                .is_some_and(|s| s.ends_with("[reminder 3]"))
            && got[0]["event_id"] != got[1]["event_id"],
        || format!("{got:#?}"),
    )?;
    // Fixed: one recovery, and no reminder after it, however late.
    fs::remove_file(&flag)?;
    ok(&case.jobctl(&["run", "nagging", "--wait"]))?;
    case.pass_until("nagging", "recovery", Duration::from_secs(20))?;
    case.pass()?;
    let all = case.received()?;
    let kinds: Vec<&str> = all.iter().filter_map(|n| n["event"].as_str()).collect();
    check(
        kinds == ["failure", "failure", "failure", "recovery"],
        || format!("{all:#?}"),
    )
}

/// Starts fakehook as the transient service `unit`, recording into the
/// scratch folder `folder` (emptied first) and listening on 127.0.0.1:`port`;
/// returns the folder once the receiver listens. Stop the unit when done.
pub(super) fn start_receiver(
    env: &Env,
    unit: &str,
    folder: &str,
    port: u16,
) -> Result<PathBuf, Failed> {
    const FAKEHOOK: &str = env!("CARGO_BIN_EXE_fakehook");
    let hook_dir = env.scratch.join(folder);
    let _ = fs::remove_dir_all(&hook_dir);
    fs::create_dir_all(&hook_dir)?;
    env.sh(&format!(
        "systemd-run --quiet --unit={unit} {FAKEHOOK} --dir {} --listen 127.0.0.1:{port}",
        hook_dir.display()
    ))?;
    let listening = env.wait_for("the receiver", Duration::from_secs(10), || {
        Ok(hook_dir.join("port").exists())
    });
    if listening.is_err() {
        let _ = env.sh(&format!("systemctl stop {unit}"));
    }
    listening.map(|_| hook_dir)
}

/// A request the receiver recorded, with its body read as JSON.
pub(super) type Post = (crate::hook::Request, Value);

/// Every request the receiver in `hook_dir` recorded so far, in order.
pub(super) fn posts(hook_dir: &Path) -> Result<Vec<Post>, Failed> {
    crate::hook::requests(hook_dir)
        .into_iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("{e}: {:?}", String::from_utf8_lossy(&r.body)))?;
            Ok((r, body))
        })
        .collect()
}

/// The recorded requests whose body is an `event`.
pub(super) fn posts_of(hook_dir: &Path, event: &str) -> Result<Vec<Post>, Failed> {
    Ok(posts(hook_dir)?
        .into_iter()
        .filter(|(_, b)| b["event"] == event)
        .collect())
}

/// Every field of the generic payload (docs/notifications.md, "Webhooks").
const GENERIC_FIELDS: [&str; 20] = [
    "version",
    "event_id",
    "event",
    "job",
    "host",
    "status",
    "exit_code",
    "signal",
    "signal_name",
    "run_id",
    "invocation_id",
    "started",
    "ended",
    "duration_ms",
    "output_tail",
    "failure_streak",
    "summary",
    "details",
    "journal_hint",
    "sent_at",
];

/// Checks what every generic POST carries: the method and `target`, JSON,
/// jobctl's User-Agent, an `Idempotency-Key` equal to the body's
/// `event_id` (32 hex digits), version 1, the `event` of `job` on this
/// host, and every documented field present (`null` where it does not
/// apply). Returns the host's name.
pub(super) fn check_generic_post(
    env: &Env,
    (post, body): &Post,
    target: &str,
    event: &str,
    job: &str,
) -> Result<String, Failed> {
    let host = env.sh("hostname")?.trim().to_string();
    let event_id = body["event_id"].as_str().unwrap_or_default();
    check(
        post.method == "POST"
            && post.target == target
            && post
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/json"))
            && post
                .header("user-agent")
                .is_some_and(|a| a.starts_with("jobctl/"))
            && post.header("idempotency-key") == Some(event_id)
            && event_id.len() == 32
            && event_id.bytes().all(|b| b.is_ascii_hexdigit())
            && body["version"] == 1
            && body["event"] == event
            && body["job"] == job
            && !host.is_empty()
            && body["host"] == host.as_str(),
        || format!("{post:#?}\n{body:#}\nhost {host:?}"),
    )?;
    let missing: Vec<&str> = GENERIC_FIELDS
        .into_iter()
        .filter(|k| body.get(*k).is_none())
        .collect();
    check(missing.is_empty(), || {
        format!("missing {missing:?}: {body:#}")
    })?;
    Ok(host)
}

impl WatchCase<'_> {
    /// Starts passes, as the watch's timer would, until the receiver in
    /// `hook_dir` has a POST of `event` (at most 30 s).
    pub(super) fn pass_until_post(&self, hook_dir: &Path, event: &str) -> R {
        self.env
            .wait_for(
                &format!("the {event} POST"),
                Duration::from_secs(30),
                || {
                    if posts_of(hook_dir, event)?.is_empty() {
                        self.pass()?;
                    }
                    Ok(!posts_of(hook_dir, event)?.is_empty())
                },
            )
            .map_err(|e| {
                format!(
                    "{}; received: {:#?}; notifications: {}",
                    e.message().unwrap_or(""),
                    posts(hook_dir).unwrap_or_default(),
                    text(&self.jobctl(&["notifications", "--json"]))
                )
                .into()
            })
    }
}

pub fn a_webhook_on_loopback_gets_one_failure_and_one_recovery(env: &Env) -> R {
    with_watch(env, webhook_on_loopback)
}

/// The issue's own words (issue 13, "Tests, on real parts"): an HTTP
/// receiver on 127.0.0.1 inside the sandbox (fakehook, a service of its
/// own) gets exactly one generic `failure` POST for a job failing three
/// times, woken by the shim's poke, and one `recovery`.
fn webhook_on_loopback(env: &Env) -> R {
    const PORT: u16 = 18081;
    let hook_dir = start_receiver(env, "jobctl-e2e-hook", "webhook-receiver", PORT)?;
    let result = (|| {
        let case = env.watch_case(
            "webhook",
            NOTIFY,
            &format!(
                "[notify.channels.hook]\nwebhook = \"http://127.0.0.1:{PORT}/hooks/T000?token=x\"\n"
            ),
        )?;
        let flag = case.dir.parent().unwrap().join("fail");
        fs::write(&flag, "")?;
        case.write_job(
            "posted",
            &format!(
                "shell = \"test ! -e {} || exit 3\"\nmanual = true\nnotify = [\"hook\"]\n",
                flag.display()
            ),
        );
        case.apply()?;
        let out = case.jobctl(&["run", "posted", "--wait"]);
        check(out.status.code() == Some(3), || text(&out))?;
        // The poke alone: no pass of the case's own.
        env.wait_for("the failure POST", Duration::from_secs(20), || {
            Ok(!crate::hook::requests(&hook_dir).is_empty())
        })?;
        for _ in 0..2 {
            let out = case.jobctl(&["run", "posted", "--wait"]);
            check(out.status.code() == Some(3), || text(&out))?;
        }
        case.pass()?;
        case.pass()?;
        let requests = crate::hook::requests(&hook_dir);
        check(requests.len() == 1, || format!("{requests:#?}"))?;
        let first = case.runs("posted")?.pop().ok_or("no run")?;
        let post = &requests[0];
        let body: Value = serde_json::from_slice(&post.body).map_err(|e| e.to_string())?;
        check(
            post.method == "POST"
                && post.target == "/hooks/T000?token=x"
                && post
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("application/json"))
                && body["event"] == "failure"
                && body["job"] == "posted"
                && body["status"] == "failed"
                && body["exit_code"] == 3
                && body["run_id"] == first["id"]
                && body["invocation_id"] == first["invocation_id"]
                && body["event_id"].as_str().is_some_and(|id| id.len() == 32),
            || format!("{post:#?}\n{body:#}\nfirst run: {first:#}"),
        )?;
        fs::remove_file(&flag)?;
        ok(&case.jobctl(&["run", "posted", "--wait"]))?;
        env.wait_for("the recovery POST", Duration::from_secs(20), || {
            Ok(crate::hook::requests(&hook_dir).len() >= 2)
        })?;
        case.pass()?;
        let requests = crate::hook::requests(&hook_dir);
        let events: Vec<Value> = requests
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .map(|b| b["event"].clone())
            .collect();
        check(events == ["failure", "recovery"], || format!("{events:?}"))
    })();
    let _ = env.sh("systemctl stop jobctl-e2e-hook.service");
    result
}
