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
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output;
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
    let rows = crate::commands::list::collect(paths, Some(&args.job))?;
    let row = &rows[0];
    if row.state == "not applied" || row.state == "pending apply" && row.service.is_empty() {
        return Err(
            CliError::failure(anyhow!("job {} is not installed", args.job))
                .hint("run `jobctl apply` first"),
        );
    }
    if row.state == "orphaned" {
        return Err(CliError::failure(anyhow!(
            "job {}'s file is gone; it is about to be removed",
            args.job
        )));
    }
    let sd = systemd::connect(paths)?;
    let mode = paths.mode;
    let service = row.service.clone();
    let mut report = Report {
        job: args.job.clone(),
        service: service.clone(),
        started: false,
        already_running: row.running,
        invocation_id: None,
        result: None,
        exit_status: None,
        signal: None,
    };
    if row.running {
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
            "follow it with `journalctl -f _SYSTEMD_INVOCATION_ID={}`",
            props.invocation_id
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

    // --follow: journalctl follows the unit's new lines while we wait.
    let follower = if args.follow {
        let mut cmd = Command::new("journalctl");
        if mode == Mode::User {
            cmd.arg("--user");
        }
        cmd.args(["--follow", "--output=cat", "--lines=0", "--unit", &service])
            .stdin(Stdio::null());
        cmd.spawn().ok()
    } else {
        None
    };
    let result = sd.start_and_wait(&service, None);
    if let Some(mut child) = follower {
        // Let journald deliver the last lines of the run before stopping.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let _ = child.kill();
        let _ = child.wait();
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
            "jobctl: {} finished: {} ({how}); journalctl _SYSTEMD_INVOCATION_ID={}",
            args.job, props.result, props.invocation_id
        );
    }
    Ok(ExitCode::from(code))
}
