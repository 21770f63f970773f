//! `jobctl run JOB [--wait] [--follow]`: start a job's service now.
//!
//! Subscribes to systemd's JobRemoved signal before starting, so the end of
//! the run cannot be missed. A run already in progress is reported, not
//! duplicated. With `--wait` the exit status is the job's: its exit code, or
//! 128+signal when it was killed. The shim records the run with trigger
//! `manual` (it sees `$INVOCATION_ID` and no `$TRIGGER_UNIT`).

use std::process::{Command, ExitCode, Stdio};

use anyhow::anyhow;
use clap::Args;
use jobctl_core::state::JobState;
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::overview;
use crate::paths::{Mode, Paths};
use crate::systemd;

/// Start a job now, outside its schedule.
///
/// Exit status without --wait: 0 once started. With --wait: the job's own
/// exit code (128+N when killed by signal N), 1 if it could not start.
///
/// Examples:
///   jobctl run nightly-refresh
///   jobctl run nightly-refresh --wait --follow
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
    started: bool,
    already_running: bool,
    invocation_id: Option<String>,
    result: Option<String>,
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
    let running = view.running();
    let sd = systemd::connect(paths)?;
    let mode = paths.mode;
    let service = view.service.clone();
    let mut report = Report {
        job: args.job.clone(),
        service: service.clone(),
        started: false,
        already_running: running,
        invocation_id: None,
        result: None,
        exit_status: None,
        signal: None,
    };
    if running {
        let props = sd
            .properties(&service)
            .map_err(|e| systemd::systemd_error(e, mode))?;
        report.invocation_id = Some(props.invocation_id.clone());
        if args.json {
            output::print_json(&report)?;
        }
        return Err(CliError::failure(anyhow!(
            "job {} is already running (since {}, invocation {}); not starting another",
            args.job,
            systemd::format_usec(props.exec_main_start_usec.max(props.active_enter_usec)),
            props.invocation_id
        ))
        .hint(format!(
            "follow it with `{}`",
            crate::paths::journal(&props.invocation_id, true)
        )));
    }
    let wait = args.wait || args.follow;
    if !wait {
        sd.queue(jobctl_systemd::JobOp::Start, &service)
            .map_err(|e| systemd::systemd_error(e, mode))?;
        report.started = true;
        let props = sd
            .properties(&service)
            .map_err(|e| systemd::systemd_error(e, mode))?;
        report.invocation_id = Some(props.invocation_id).filter(|s| !s.is_empty());
        if args.json {
            output::print_json(&report)?;
        } else {
            output::print_text(&format!("started {} ({service})\n", args.job))?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    // --follow: journalctl follows the unit's new lines while we wait; when
    // the run has ended, journald is synced and whatever the follower had not
    // read yet is printed from its last cursor, so no line is lost or doubled.
    let follower = if args.follow {
        Follower::start(mode, &service)
    } else {
        None
    };
    let result = sd.start_and_wait(&service, None);
    if let Some(follower) = follower {
        let invocation = result.as_ref().ok().map(|(_, p)| p.invocation_id.as_str());
        follower.finish(mode, &service, invocation);
    }
    let (job_result, props) = result.map_err(|e| systemd::systemd_error(e, mode))?;
    report.started = true;
    report.invocation_id = Some(props.invocation_id.clone()).filter(|s| !s.is_empty());
    report.result = Some(props.result.clone());
    // ExecMainCode: 1 exited, 2 killed, 3 dumped (CLD_*).
    let code: u8 = match props.exec_main_code {
        1 => {
            report.exit_status = Some(props.exec_main_status);
            u8::try_from(props.exec_main_status).unwrap_or(1)
        }
        2 | 3 => {
            report.signal = Some(props.exec_main_status);
            u8::try_from(128 + props.exec_main_status).unwrap_or(1)
        }
        _ if job_result == "done" => 0,
        _ => 1,
    };
    if args.json {
        output::print_json(&report)?;
    } else {
        let how = match (report.exit_status, report.signal) {
            (Some(s), _) => format!("exit status {s}"),
            (_, Some(sig)) => format!("killed by signal {sig}"),
            _ => format!("job {job_result}"),
        };
        eprintln!(
            "jobctl: {} finished: {} ({how}); {}",
            args.job,
            props.result,
            crate::paths::journal(&props.invocation_id, false)
        );
    }
    Ok(ExitCode::from(code))
}

/// A `journalctl --follow` of the unit, printing each entry's message.
struct Follower {
    child: std::process::Child,
    reader: std::thread::JoinHandle<()>,
    cursor: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Follower {
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
        let end = Command::new("journalctl")
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
        match end {
            Some(cursor) => cmd.arg(format!("--after-cursor={cursor}")),
            None => cmd.arg("--lines=0"),
        };
        let mut child = cmd.stdout(Stdio::piped()).spawn().ok()?;
        let stdout = child.stdout.take()?;
        let cursor = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = cursor.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(c) = print_entry(&line) {
                    *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                }
            }
        });
        Some(Follower {
            child,
            reader,
            cursor,
        })
    }

    fn finish(mut self, mode: Mode, service: &str, invocation: Option<&str>) {
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
        let cursor = self
            .cursor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let rest = match (cursor, invocation) {
            (Some(cursor), _) => Follower::journalctl(mode, service)
                .arg(format!("--after-cursor={cursor}"))
                .output(),
            // The follower saw nothing (it started after a short run ended):
            // print the whole invocation.
            (None, Some(id)) if !id.is_empty() => Command::new("journalctl")
                .args([
                    "--output=json",
                    &format!("_SYSTEMD_INVOCATION_ID={id}"),
                    "+",
                ])
                .arg(format!("USER_INVOCATION_ID={id}"))
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output(),
            (None, _) => return,
        };
        if let Ok(out) = rest {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                print_entry(line);
            }
        }
    }
}

/// Prints a journal entry's MESSAGE (text or bytes); returns its cursor.
fn print_entry(json_line: &str) -> Option<String> {
    use std::io::Write as _;
    let entry: serde_json::Value = serde_json::from_str(json_line).ok()?;
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
    entry["__CURSOR"].as_str().map(str::to_string)
}
