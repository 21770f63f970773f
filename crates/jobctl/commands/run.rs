//! `jobctl run JOB [--wait] [--follow]`: start a job's service now.
//!
//! Follows only the run this call starts: the unit's invocation id is read
//! right before the start, and a run counts as begun only when a new one
//! appears (`jobctl_core::start`). A start that systemd refuses or that
//! begins no run (start limit, unmet condition, failed dependency, masked,
//! not loaded, already running) is reported as such and exits
//! [`Exit::NotStarted`], never with the previous run's status. With `--wait`
//! the exit status is the job's: its exit code, or 128+signal when it was
//! killed. The shim records the run with trigger `manual` (it sees
//! `$INVOCATION_ID` and no `$TRIGGER_UNIT`); started from the web (inside
//! [`crate::origin::acting`]), this records the run's origin, which readers
//! show as trigger `web` and its actor.

use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use anyhow::anyhow;
use clap::Args;
use jobctl_core::start::{self, NotStarted, StartFacts, Verdict};
use jobctl_core::state::JobState;
use jobctl_systemd::{ErrorKind, StartUntil, UnitProperties};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::exit::Exit;
use crate::output;
use crate::overview;
use crate::paths::{Mode, Paths};
use crate::systemd;

/// Start a job now, outside its schedule.
///
/// Exit status: 0 once the run has begun; with --wait (or --follow) the
/// job's own exit code (128+N when killed by signal N). 4 when the job did
/// not start: systemd refused the start or began no run (its start limit,
/// an unmet condition, a failed dependency, masked, not loaded, a run
/// already in progress or queued by another caller, into which systemd
/// merges this start); --json says "started": false and the reason.
/// 1 when jobctl could not ask systemd.
///
/// Examples:
///   jobctl run nightly-refresh
///   jobctl run nightly-refresh --wait --follow
///   jobctl run nightly-refresh --wait && next-step
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RunArgs {
    /// The job to start.
    pub job: String,
    /// Wait for the run to end and exit with its exit code.
    #[arg(long)]
    pub wait: bool,
    /// Stream the run's output (its journal lines) while it runs; implies --wait.
    #[arg(long)]
    pub follow: bool,
    /// Machine-readable report (with --wait: after the run).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    job: String,
    service: String,
    /// A run began (a new invocation).
    started: bool,
    already_running: bool,
    /// Why no run began (stable names: `jobctl_core::start::NotStarted`).
    reason: Option<NotStarted>,
    /// What systemd did, in words, when no run began.
    message: Option<String>,
    /// The invocation this call started (with `already_running`: the run in
    /// progress).
    invocation_id: Option<String>,
    /// With --wait: the run as the history records it (`jobctl logs JOB
    /// --run ID`), when its record could be read.
    run_id: Option<String>,
    /// With --wait: how the run ended, in the history's words (success,
    /// failed, error, timeout, killed).
    result: Option<String>,
    /// With --wait: systemd's `Result` of the service (success, exit-code,
    /// signal, timeout, …).
    systemd_result: Option<String>,
    exit_status: Option<i32>,
    signal: Option<i32>,
}

pub fn run(paths: &Paths, args: RunArgs) -> CliResult {
    let only = [args.job.clone()];
    let overview = overview::gather(
        paths,
        overview::Options {
            only: Some(&only),
            ..Default::default()
        },
    )?;
    let view = &overview.jobs[0];
    if view.derived.state == JobState::Orphaned {
        return Err(CliError::failure(anyhow!(
            "job {}'s file is gone; it is about to be removed",
            args.job
        )));
    }
    if !view.derived.installed || view.service.is_empty() {
        return Err(
            CliError::failure(anyhow!("job {} is not installed", args.job))
                .hint(format!("run `{}` first", crate::paths::jobctl("apply"))),
        );
    }
    let sd = systemd::connect(paths)?;
    let mode = paths.mode;
    let service = view.service.clone();
    let mut report = Report {
        job: args.job.clone(),
        service: service.clone(),
        started: false,
        already_running: false,
        reason: None,
        message: None,
        invocation_id: None,
        run_id: None,
        result: None,
        systemd_result: None,
        exit_status: None,
        signal: None,
    };
    // One jobctl at a time starts this unit, until its run has begun: a
    // second caller then finds that run in progress instead of having its
    // start merged into the first one's (which it would take for its own).
    let mut lock = StartLock::acquire(paths, &service);
    let before = sd
        .properties(&service)
        .map_err(|e| systemd::systemd_error(e, mode))?;
    if running(&before.active_state) {
        report.already_running = true;
        report.invocation_id = Some(before.invocation_id.clone()).filter(|s| !s.is_empty());
        let since = crate::view::format::systemd_time(
            before.exec_main_start_usec.max(before.active_enter_usec),
            &crate::zones::local_zone(),
        );
        let detail = format!("since {since}, invocation {}", before.invocation_id);
        let hint = format!(
            "follow it with `{}`",
            crate::paths::journal(&service, &before.invocation_id, true)
        );
        return not_started(
            &args,
            report,
            NotStarted::AlreadyRunning,
            Some(detail),
            Some(hint),
        );
    }
    match before.load_state.as_str() {
        "loaded" => {}
        "masked" => {
            let hint = format!("`{} unmask {service}`", systemctl(mode));
            return not_started(&args, report, NotStarted::Masked, None, Some(hint));
        }
        _ => {
            let detail = load_detail(&before);
            let hint = format!(
                "fix the job file and run `{}`, which reports systemd's reason",
                crate::paths::jobctl("apply")
            );
            return not_started(&args, report, NotStarted::NotLoaded, detail, Some(hint));
        }
    }

    let wait = args.wait || args.follow;
    // --follow: journalctl follows the unit's new lines from before the
    // start; only those of the invocation this call starts are printed.
    let follower = if args.follow {
        Follower::start(mode, &service)
    } else {
        None
    };
    let until = if wait {
        StartUntil::Ended
    } else {
        StartUntil::Began
    };
    let outcome = sd.start_tracked(&service, until, &mut |id| {
        // The run began: a caller waiting for the lock now finds it running.
        lock.take();
        if let Some(f) = &follower {
            f.follow(id);
        }
    });
    drop(lock);
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            if let Some(f) = follower {
                f.abandon();
            }
            return Err(systemd::systemd_error(e, mode));
        }
    };
    if let Some(err) = outcome.refused {
        if let Some(f) = follower {
            f.abandon();
        }
        let reason = match err.kind() {
            ErrorKind::UnitMasked => NotStarted::Masked,
            ErrorKind::LoadFailed | ErrorKind::NoSuchUnit => NotStarted::NotLoaded,
            ErrorKind::Transaction | ErrorKind::Other => NotStarted::Refused,
            // Not an answer about the unit: jobctl could not ask.
            _ => return Err(systemd::systemd_error(err, mode)),
        };
        let detail = Some(err.message.clone());
        return not_started(&args, report, reason, detail, None);
    }
    let p = &outcome.props;
    if outcome.merged {
        // systemd merged the start into the unit's start job: another
        // caller's (or the timer's) run, in progress or about to begin.
        if let Some(f) = follower {
            f.abandon();
        }
        report.already_running = true;
        let (detail, hint) = if running(&p.active_state) && !p.invocation_id.is_empty() {
            report.invocation_id = Some(p.invocation_id.clone());
            let since = crate::view::format::systemd_time(
                p.exec_main_start_usec.max(p.active_enter_usec),
                &crate::zones::local_zone(),
            );
            (
                format!(
                    "a start by another caller, since {since}, invocation {}",
                    p.invocation_id
                ),
                Some(format!(
                    "follow it with `{}`",
                    crate::paths::journal(&service, &p.invocation_id, true)
                )),
            )
        } else {
            ("a start by another caller is queued".to_string(), None)
        };
        return not_started(
            &args,
            report,
            NotStarted::AlreadyRunning,
            Some(detail),
            hint,
        );
    }
    let facts = StartFacts {
        previous_invocation: &outcome.previous_invocation,
        invocation: outcome
            .invocation
            .as_deref()
            .unwrap_or(&outcome.previous_invocation),
        job_result: outcome.job_result.as_deref(),
        load_state: &p.load_state,
        active_state: &p.active_state,
        unit_result: &p.result,
        condition_result: p.condition_result,
        assert_result: p.assert_result,
    };
    let invocation = match start::judge(&facts) {
        Verdict::Started(id) => id,
        Verdict::NotStarted(reason) => {
            if let Some(f) = follower {
                f.abandon();
            }
            let detail = match reason {
                NotStarted::ConditionFailed => Some(p.failed_conditions.join(", ")),
                NotStarted::NotLoaded => load_detail(p),
                NotStarted::DependencyFailed | NotStarted::Refused | NotStarted::Canceled => {
                    outcome.job_result.as_ref().map(|r| format!("job {r}"))
                }
                _ => None,
            };
            let hint = (reason == NotStarted::StartLimitHit).then(|| {
                format!(
                    "`{} reset-failed {service}` clears the count; jobctl's units have no start limit unless the job sets one (unit_extra StartLimitIntervalSec=/StartLimitBurst=) or restarts (service_extra Restart=)",
                    systemctl(mode)
                )
            });
            return not_started(&args, report, reason, detail, hint);
        }
        Verdict::Pending => {
            // start_tracked returns only once a run began or the job ended.
            if let Some(f) = follower {
                f.abandon();
            }
            return not_started(&args, report, NotStarted::Refused, None, None);
        }
    };
    report.started = true;
    report.invocation_id = Some(invocation.clone());
    // Started from the web (jobctl-web runs this command inside
    // `origin::acting`): record who, keyed by the invocation this call
    // started, before answering, so that every later read says `web`.
    if let Some(acting) = crate::origin::current()
        && let Err(e) = crate::origin::record(paths, &args.job, &invocation, &acting)
    {
        output::warn(&format!(
            "job {}: invocation {invocation} was started from the web, but who started it could not be recorded ({e:#}); its run shows as manual",
            args.job
        ));
    }
    if !wait {
        if args.json {
            output::print_json("run", &report)?;
        } else {
            output::print_text(&format!(
                "started {} ({service}), invocation {invocation}\n",
                args.job
            ))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(follower) = follower {
        follower.finish(mode, &service, &invocation);
    }
    if outcome.superseded {
        return Err(CliError::failure(anyhow!(
            "job {}'s run (invocation {invocation}) ended, but another run began before systemd's result could be read",
            args.job
        ))
        .hint(format!(
            "`{}` shows what the shim recorded",
            crate::paths::jobctl(&format!("logs {} --last", args.job))
        )));
    }
    let job_result = outcome.job_result.unwrap_or_default();
    report.systemd_result = Some(p.result.clone());
    // ExecMainCode: 1 exited, 2 killed, 3 dumped (CLD_*).
    let code: u8 = match p.exec_main_code {
        1 => {
            report.exit_status = Some(p.exec_main_status);
            u8::try_from(p.exec_main_status).unwrap_or(1)
        }
        2 | 3 => {
            report.signal = Some(p.exec_main_status);
            u8::try_from(128 + p.exec_main_status).unwrap_or(1)
        }
        _ if job_result == "done" => 0,
        _ => {
            // No process ever ran (a missing environment_file, user or
            // working folder): not the job's status, nor jobctl's failure.
            let detail = format!(
                "systemd's result: {}; `{}` shows why",
                p.result,
                crate::paths::journal(&service, &invocation, false)
            );
            return not_started(&args, report, NotStarted::SetupFailed, Some(detail), None);
        }
    };
    let recorded = recorded_run(paths, &args.job, &invocation);
    report.run_id = recorded.as_ref().map(|(id, _)| id.clone());
    report.result = Some(match &recorded {
        Some((_, status)) => status.to_string(),
        None => start::status_of(&p.result).to_string(),
    });
    if args.json {
        output::print_json("run", &report)?;
    } else {
        let how = match (report.exit_status, report.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (_, Some(sig)) => format!("killed by {}", crate::view::format::signal_name(sig)),
            _ => format!("job {job_result}"),
        };
        let run = report
            .run_id
            .as_ref()
            .map(|id| format!(", run {id}"))
            .unwrap_or_default();
        output::note(&format!(
            "{} finished: {} ({how}{run}); {}",
            args.job,
            report.result.as_deref().unwrap_or_default(),
            crate::paths::journal(&service, &invocation, false)
        ));
    }
    Ok(ExitCode::from(code))
}

/// The run the history recorded for `invocation` of `job` (its id and
/// status), read from the databases this caller may read; `None` when it
/// cannot be found (the history is not writable for the job, or not
/// readable for the caller).
fn recorded_run(
    paths: &Paths,
    job: &str,
    invocation: &str,
) -> Option<(String, jobctl_history::Status)> {
    let readers = crate::history_db::Readers::open(paths, None).ok()?;
    let probe = jobctl_history::liveness::LivenessProbe::current(crate::host::hostname());
    let now = crate::host::now_us();
    for (located, store) in &readers.stores {
        if !readers.accepts(located, job) {
            continue;
        }
        if let Ok(Some(run)) =
            store.find_run(Some(job), &jobctl_history::RunLookup::Last, &probe, now)
            && run.invocation_id.as_deref() == Some(invocation)
        {
            return Some((run.id.to_string(), run.status));
        }
    }
    None
}

/// Reports a start that began no run: the JSON report (with `--json`), then
/// the error, exit [`Exit::NotStarted`].
fn not_started(
    args: &RunArgs,
    mut report: Report,
    reason: NotStarted,
    detail: Option<String>,
    hint: Option<String>,
) -> CliResult {
    let message = start::explain(reason, detail.as_deref());
    report.started = false;
    report.reason = Some(reason);
    report.message = Some(message.clone());
    if args.json {
        output::print_json("run", &report)?;
    }
    let mut err = CliError::not_started(anyhow!("job {} did not start: {message}", args.job));
    if let Some(hint) = hint {
        err = err.hint(hint);
    }
    debug_assert_eq!(err.exit(), Exit::NotStarted);
    Err(err)
}

/// systemd's reason a unit did not load (`LoadError`), without the D-Bus name.
fn load_detail(p: &UnitProperties) -> Option<String> {
    let detail = if p.load_error.is_empty() {
        format!("LoadState={}", p.load_state)
    } else {
        p.load_error.clone()
    };
    Some(detail)
}

/// A run is in progress: the service is starting, running or stopping.
fn running(active_state: &str) -> bool {
    matches!(
        active_state,
        "activating" | "active" | "deactivating" | "reloading"
    )
}

/// An exclusive lock on `<runtime folder>/jobctl/<service>.lock` (system
/// mode: `/run/jobctl`; per-user mode: `$XDG_RUNTIME_DIR/jobctl`), held by
/// one `jobctl run` of that service from before it reads the unit's state
/// until the run it started has begun (or the start ended). Best effort: a
/// caller that cannot create the lock (not root in system mode), or that
/// waited [`StartLock::PATIENCE`] for it (a start queued behind a slow
/// dependency), goes on without it; systemd's own answer then still tells a
/// merged start (the unit's job before the call is the one returned).
struct StartLock(Option<std::fs::File>);

impl StartLock {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

    fn acquire(paths: &Paths, service: &str) -> StartLock {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let dir = match paths.mode {
            Mode::System => std::path::PathBuf::from("/run/jobctl"),
            Mode::User => match crate::env::var_os(crate::env::XDG_RUNTIME_DIR) {
                Some(run) => std::path::PathBuf::from(run).join("jobctl"),
                None => return StartLock(None),
            },
        };
        if paths.mode == Mode::System && !nix::unistd::geteuid().is_root() {
            return StartLock(None);
        }
        // The folder the shipped sockets share (`jobctl-watch.socket`,
        // `jobctl-web.socket`): systemd makes it with their `DirectoryMode=`
        // (0755 for the system's, 0700 per user) only when it does not exist
        // yet, so a lock taken first must not leave it open to others.
        let mode = match paths.mode {
            Mode::System => 0o755,
            Mode::User => 0o700,
        };
        let _ = std::fs::DirBuilder::new().mode(mode).create(&dir);
        if paths.mode == Mode::User {
            private_runtime_dir(&dir);
        }
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(dir.join(format!("{service}.lock")))
        else {
            return StartLock(None);
        };
        let deadline = std::time::Instant::now() + StartLock::PATIENCE;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return StartLock(Some(file)),
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    if std::time::Instant::now() > deadline {
                        return StartLock(None);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(_) => return StartLock(None),
            }
        }
    }

    /// Releases the lock (closing the file).
    fn take(&mut self) {
        self.0 = None;
    }
}

/// Makes the per-user `$XDG_RUNTIME_DIR/jobctl` 0700 when an older jobctl
/// made it 0755 (it stays until logout otherwise): only the caller's own
/// real folder, opened without following a link (`O_NOFOLLOW`, so `fstat`
/// sees what `lstat` would, without a window to swap it) and changed
/// through that descriptor, never by path. Best effort, as the lock.
fn private_runtime_dir(dir: &std::path::Path) {
    use rustix::fs::{Mode as FileMode, OFlags};
    let Ok(fd) = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        FileMode::empty(),
    ) else {
        return;
    };
    let Ok(stat) = rustix::fs::fstat(&fd) else {
        return;
    };
    if stat.st_uid == rustix::process::geteuid().as_raw() && stat.st_mode & 0o077 != 0 {
        let _ = rustix::fs::fchmod(&fd, FileMode::from_raw_mode(0o700));
    }
}

fn systemctl(mode: Mode) -> &'static str {
    match mode {
        Mode::System => "systemctl",
        Mode::User => "systemctl --user",
    }
}

/// A `journalctl --follow` of the unit that prints only the entries of one
/// invocation: the one this call started, known once systemd has begun it.
/// Entries read before then wait; entries of another invocation (the
/// previous run's last lines, a timer run that follows) are dropped.
struct Follower {
    child: std::process::Child,
    reader: std::thread::JoinHandle<()>,
    state: Arc<Mutex<FollowState>>,
    /// The journal's end before the start.
    start_cursor: Option<String>,
}

#[derive(Default)]
struct FollowState {
    invocation: Option<String>,
    /// Entries read before the invocation was known.
    pending: Vec<serde_json::Value>,
    /// The cursor of the last entry read.
    cursor: Option<String>,
}

impl FollowState {
    fn lock(state: &Mutex<FollowState>) -> std::sync::MutexGuard<'_, FollowState> {
        state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Follower {
    /// `journalctl` for the unit's entries: journalctl's own unit matches
    /// select them by fields journald sets (system mode: `_SYSTEMD_UNIT=`,
    /// and `UNIT=` only with `_PID=1`, `OBJECT_SYSTEMD_UNIT=` and
    /// `COREDUMP_UNIT=` only with `_UID=0`; per user, each with this
    /// user's `_UID=`), so a line that merely claims the unit or its
    /// invocation is not among them.
    fn journalctl(mode: Mode, service: &str) -> Command {
        let mut cmd = Command::new("journalctl");
        cmd.arg("--output=json").arg(match mode {
            Mode::System => format!("--unit={service}"),
            Mode::User => format!("--user-unit={service}"),
        });
        cmd.stdin(Stdio::null()).stderr(Stdio::null());
        cmd
    }

    fn start(mode: Mode, service: &str) -> Option<Follower> {
        // Follow from the journal's current end, fixed now by its cursor:
        // however late journalctl gets going, it starts right after the last
        // entry written before the run (not at whatever the tail is then).
        let start_cursor = Command::new("journalctl")
            .args(["--lines=1", "--output=json"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .and_then(|o| {
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
                v["__CURSOR"].as_str().map(str::to_string)
            });
        let mut cmd = Follower::journalctl(mode, service);
        cmd.arg("--follow");
        match &start_cursor {
            Some(cursor) => cmd.arg(format!("--after-cursor={cursor}")),
            None => cmd.arg("--lines=0"),
        };
        let mut child = cmd.stdout(Stdio::piped()).spawn().ok()?;
        let stdout = child.stdout.take()?;
        let state = Arc::new(Mutex::new(FollowState::default()));
        let shared = state.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let mut state = FollowState::lock(&shared);
                if let Some(c) = entry["__CURSOR"].as_str() {
                    state.cursor = Some(c.to_string());
                }
                match &state.invocation {
                    Some(id) => {
                        if belongs(&entry, id) {
                            print_entry(&entry);
                        }
                    }
                    None => state.pending.push(entry),
                }
            }
        });
        Some(Follower {
            child,
            reader,
            state,
            start_cursor,
        })
    }

    /// The run began: print what was read of it so far, then follow it.
    fn follow(&self, invocation: &str) {
        let mut state = FollowState::lock(&self.state);
        for entry in std::mem::take(&mut state.pending) {
            if belongs(&entry, invocation) {
                print_entry(&entry);
            }
        }
        state.invocation = Some(invocation.to_string());
    }

    /// No run began: print nothing.
    fn abandon(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
    }

    fn finish(mut self, mode: Mode, service: &str, invocation: &str) {
        // Everything the service wrote before it ended is in the journal
        // once this returns (journalctl --sync).
        let _ = Command::new("journalctl")
            .arg("--sync")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        let cursor = {
            let mut state = FollowState::lock(&self.state);
            // follow() was called before the run ended; anything still
            // pending was read after it and printed by the reader.
            for entry in std::mem::take(&mut state.pending) {
                if belongs(&entry, invocation) {
                    print_entry(&entry);
                }
            }
            state.cursor.clone().or(self.start_cursor.take())
        };
        // What the follower had not read yet: after its last cursor, or the
        // whole invocation when there is no cursor at all.
        let rest = match cursor {
            Some(cursor) => Follower::journalctl(mode, service)
                .arg(format!("--after-cursor={cursor}"))
                .output(),
            // The run's entries as the printed hint selects them
            // (crate::paths::journal): journald's trusted fields alone.
            None if !invocation.is_empty() => Command::new("journalctl")
                .arg("--output=json")
                .args(
                    jobctl_core::journal::RunMatch::new(
                        mode,
                        nix::unistd::geteuid().as_raw(),
                        service,
                        invocation,
                    )
                    .args(),
                )
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output(),
            None => return,
        };
        if let Ok(out) = rest {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Ok(entry) = serde_json::from_str::<serde_json::Value>(line)
                    && belongs(&entry, invocation)
                {
                    print_entry(&entry);
                }
            }
        }
    }
}

/// Whether a journal entry of the unit belongs to `invocation`: it names
/// that invocation, or none (an entry naming another one is another run's).
fn belongs(entry: &serde_json::Value, invocation: &str) -> bool {
    let named: Vec<&str> = [
        "_SYSTEMD_INVOCATION_ID",
        "INVOCATION_ID",
        "USER_INVOCATION_ID",
    ]
    .iter()
    .filter_map(|field| entry[*field].as_str())
    .collect();
    named.is_empty() || named.contains(&invocation)
}

/// Prints a journal entry's MESSAGE (text or bytes).
fn print_entry(entry: &serde_json::Value) {
    use std::io::Write as _;
    let message: Vec<u8> = match &entry["MESSAGE"] {
        serde_json::Value::String(s) => s.as_bytes().to_vec(),
        serde_json::Value::Array(bytes) => bytes
            .iter()
            .filter_map(|b| b.as_u64())
            .map(|b| b as u8)
            .collect(),
        _ => Vec::new(),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&message);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_another_invocation_are_not_ours() {
        let ours = serde_json::json!({"MESSAGE": "x", "_SYSTEMD_INVOCATION_ID": "aa"});
        let theirs = serde_json::json!({"MESSAGE": "x", "_SYSTEMD_INVOCATION_ID": "bb"});
        let manager = serde_json::json!({"MESSAGE": "Starting", "INVOCATION_ID": "aa"});
        let user = serde_json::json!({"MESSAGE": "x", "USER_INVOCATION_ID": "bb"});
        let anonymous = serde_json::json!({"MESSAGE": "x"});
        assert!(belongs(&ours, "aa") && belongs(&manager, "aa") && belongs(&anonymous, "aa"));
        assert!(!belongs(&theirs, "aa") && !belongs(&user, "aa"));
    }
}
