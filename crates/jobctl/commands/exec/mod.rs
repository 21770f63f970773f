//! `jobctl exec`: the run shim every job's `ExecStart=` goes through.
//!
//! It records the run in the history (a start row before the command starts,
//! completed when it ends), runs the command with its output forwarded
//! unchanged and a bounded copy captured, forwards stop signals, retries
//! within the timeout, and exits exactly as the command did. Bookkeeping
//! never breaks the job: when the database cannot be written, the command
//! still runs and its status still propagates, and the run's record goes to
//! the journal as a warning instead (see `journal.rs`).

//! The parts: [`args`] (the command line), [`book`] (the history side),
//! [`identity`] (trigger, run id, user name); this file runs the attempts
//! and classifies each with `jobctl_history::verdict`.

mod args;
mod book;
mod identity;
mod usage;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use jobctl_core::duration::Timespan;
use jobctl_core::shim::ShimArgs;
use jobctl_core::size::ByteSize;
use jobctl_exec::{End, Signals, Spec};
use jobctl_history::liveness::ProcessStamp;
use jobctl_history::verdict::{self, Ending, Stop, Verdict};
use jobctl_history::{Retention, RunId, RunRecord, Status, Upstream};

pub use args::ExecArgs;
pub(crate) use identity::user_name_of;

use crate::env;
use crate::error::CliResult;
use crate::history_db::{self, system_time_us};
use crate::output;
use crate::paths::Paths;
use book::{Bookkeeper, RunObserver, stored_output};
use identity::{new_run_id, trigger, upstream_invocation, user_name};

/// Exit status for the shim's own errors, as `env(1)`.
const EXIT_SHIM_ERROR: u8 = crate::exit::Exit::ShimError.code();

/// Writes one of the shim's own messages to its stderr, which systemd sends
/// to the journal along with the job's lines (`jobctl exec: …`, one write).
fn say(text: &str) {
    let _ = output::print_error_text(&format!("jobctl exec: {text}\n"));
}

/// The shim starts for every run of every job: parse `jobctl [--user] exec
/// …` with only the shim's own arguments, instead of building the whole
/// command line with every subcommand first (a measurable share of the shim's
/// start-up). Returns `None` for anything else, which then goes through the
/// full parser. A bad shim command line exits 125, as `env(1)` does for its
/// own errors.
pub fn fast_path() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let word = |i: usize| args.get(i).and_then(|a| a.to_str());
    let (user, first) = match (word(1), word(2)) {
        (Some("exec"), _) => (false, 2),
        (Some("--user"), Some("exec")) => (true, 3),
        _ => return None,
    };
    // Global options inside the exec arguments: leave them to the full parser.
    let globals = ["--user", "--jobs-dir", "--unit-dir", "--config"];
    let own = args[first..].iter().take_while(|a| a.as_os_str() != "--");
    for arg in own {
        let text = arg.to_string_lossy();
        if globals
            .iter()
            .any(|g| text == *g || text.starts_with(&format!("{g}=")))
        {
            return None;
        }
    }
    // The command lines the renderer writes take the short way; clap sees
    // the rest (help, mistakes), so that every message is clap's.
    let exec_args = match args::parse(&args[first..]) {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_SHIM_ERROR } else { 0 };
            let _ = e.print();
            return Some(ExitCode::from(code));
        }
    };
    let global = crate::cli::GlobalArgs {
        user,
        jobs_dir: env::var_os(env::JOBS_DIR).map(PathBuf::from),
        unit_dir: env::var_os(env::UNIT_DIR).map(PathBuf::from),
        config: env::var_os(env::CONFIG).map(PathBuf::from),
    };
    let paths = match Paths::resolve(&global) {
        Ok(p) => p,
        Err(e) => {
            say(&format!("{e:#}"));
            return Some(ExitCode::from(EXIT_SHIM_ERROR));
        }
    };
    Some(match run(&paths, exec_args) {
        Ok(code) => code,
        Err(err) => err.report(),
    })
}

pub fn run(paths: &Paths, args: ShimArgs) -> CliResult<ExitCode> {
    // First, so that a stop signal or the child's exit is never missed.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            say(&e.to_string());
            return Ok(ExitCode::from(EXIT_SHIM_ERROR));
        }
    };
    if let Some(problem) = args::bad_arguments(&args) {
        say(&problem);
        return Ok(ExitCode::from(EXIT_SHIM_ERROR));
    }
    let retention = Retention::from_given(
        args.keep_runs,
        args.keep_age.map(Timespan::as_usec),
        args.max_output.map(ByteSize::bytes),
    );
    let (db_path, create_dir) = history_db::shim_database(paths, args.db.as_deref());
    let busy = args
        .db_timeout()
        .to_std()
        .or(ShimArgs::DEFAULT_DB_TIMEOUT.to_std())
        .unwrap_or_default();
    let mut book =
        Bookkeeper::new(paths, db_path, create_dir, busy, retention).notify_watch(args.notify);

    let invocation_start = std::time::SystemTime::now();
    let start_us = system_time_us(invocation_start);
    let deadline_us = verdict::deadline_us(start_us, args.timeout.map(Timespan::as_usec));
    let uid = nix::unistd::getuid().as_raw();
    let trigger = trigger(args.trigger);
    // A chained run names its upstream: systemd's invocation id, and the
    // run id when this database holds that run.
    let upstream = upstream_invocation(trigger).map(|invocation_id| Upstream {
        run_id: book.run_of_invocation(&invocation_id),
        invocation_id,
    });
    let template = RunRecord {
        id: RunId::from_random(0),
        job: args.job.clone(),
        invocation_id: env::var_os(env::INVOCATION_ID).map(|v| v.to_string_lossy().into_owned()),
        trigger,
        actor: None,
        attempt: 1,
        host: history_db::hostname().unwrap_or_default(),
        user: user_name(uid),
        uid,
        pid: None,
        shim: ProcessStamp::current().unwrap_or(ProcessStamp {
            boot_id: String::new(),
            pid: std::process::id(),
            start_ticks: 0,
            pid_ns: 0,
        }),
        started_us: start_us,
        ended_us: None,
        deadline_us,
        status: Status::Running,
        exit_code: None,
        signal: None,
        error: None,
        output_bytes: 0,
        output_truncated: false,
        usage: None,
        upstream,
    };

    if let Some(not_after) = args.not_after
        && start_us >= not_after.as_microsecond()
    {
        let mut record = template.clone();
        record.id = new_run_id();
        record.status = Status::Expired;
        record.ended_us = Some(start_us);
        say(&format!(
            "job {} expired at {not_after}; not running it",
            args.job
        ));
        book.finish(&record, None);
        // No command, no start: the end entry alone says it did not run.
        crate::journal::run_ended(&record);
        return Ok(ExitCode::SUCCESS);
    }

    let Some((program, rest)) = args.command.split_first() else {
        // Both parsers require a command; a caller that built the arguments
        // itself gets the shim's error.
        say("no command to run");
        return Ok(ExitCode::from(EXIT_SHIM_ERROR));
    };
    let spec = Spec {
        program: program.clone(),
        args: rest.to_vec(),
        working_directory: args.working_directory.clone(),
        capture_limit: usize::try_from(args.output_limit().bytes()).unwrap_or(usize::MAX),
        merge_output: args.merge_output,
    };
    let retry = jobctl_core::job::Retry {
        attempts: args.retry_attempts(),
        delay: args.retry_delay(),
        backoff: args.retry_backoff(),
        max_delay: args.retry_max_delay,
    };
    // Computed one at a time, as failures call for them.
    let mut waits = jobctl_core::job::retry_waits(&retry);

    let mut attempt = 1u32;
    loop {
        let mut record = template.clone();
        record.id = new_run_id();
        record.attempt = attempt;
        record.started_us = history_db::now_us();
        book.begin(&record);

        let meter = usage::Meter::start(&args.job);
        let mut observer = RunObserver::new(&mut book, &record, deadline_us);
        let result = jobctl_exec::run(&spec, &mut signals, &mut observer);
        if !observer.announced {
            crate::journal::run_started(&record);
        }
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                // The command may still run; nothing sane is left to do but
                // record the shim's failure and stop.
                say(&e.to_string());
                record.status = Status::Error;
                record.ended_us = Some(history_db::now_us());
                record.exit_code = Some(i32::from(EXIT_SHIM_ERROR));
                record.error = Some(e.to_string());
                book.finish(&record, None);
                crate::journal::run_ended(&record);
                book.leave();
                return Ok(ExitCode::from(EXIT_SHIM_ERROR));
            }
        };

        record.pid = outcome.pid;
        // The start row keeps its own start (the completion changes who,
        // what and when nothing): the journal's duration must be history's.
        let row_started_us = record.started_us;
        record.started_us = system_time_us(outcome.started);
        record.ended_us = Some(system_time_us(outcome.ended).max(record.started_us));
        record.output_bytes = outcome.capture.total_bytes();
        record.output_truncated = outcome.capture.truncated();
        let ending = match &outcome.end {
            End::Exited(code) => Ending::Exited(*code),
            End::Signaled(sig) => Ending::Signaled(*sig),
            End::NotStarted(failure) => {
                say(failure.message());
                record.error = Some(failure.message().to_string());
                Ending::NotStarted(failure.exit_code())
            }
        };
        let stop = outcome.stop.map(|s| Stop {
            signal: s.signal,
            at_us: system_time_us(s.at),
        });
        let verdict = Verdict::of(ending, stop, deadline_us);
        record.status = verdict.status;
        record.exit_code = verdict.exit_code;
        record.signal = verdict.signal;
        record.usage = meter.finish(outcome.usage);
        let output = stored_output(&outcome.capture);
        book.finish(&record, output.as_deref());
        record.started_us = row_started_us;
        crate::journal::run_ended(&record);

        if verdict.retryable
            && let Some(wait) = waits.next()
        {
            let wait_us = i64::try_from(wait.as_usec()).unwrap_or(i64::MAX);
            if verdict::retry_in_time(history_db::now_us(), wait_us, deadline_us) {
                say(&format!(
                    "attempt {attempt} of {} failed; retrying in {wait}",
                    retry.attempts
                ));
                match signals.sleep(wait.to_std().unwrap_or(Duration::MAX)) {
                    None => {
                        attempt += 1;
                        continue;
                    }
                    Some(sig) => {
                        say(&format!("stopped by {sig} while waiting to retry"));
                        book.leave();
                        jobctl_exec::reraise(sig as i32);
                    }
                }
            }
            say(&format!(
                "attempt {attempt} failed; no retry, the next would start past the job's timeout"
            ));
        }
        book.leave();
        return Ok(match outcome.end {
            End::Exited(code) => ExitCode::from(code as u8),
            End::NotStarted(failure) => ExitCode::from(failure.exit_code() as u8),
            End::Signaled(sig) => jobctl_exec::reraise(sig),
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_verdict_stops_at_the_signals_the_shim_forwards() {
        let mut forwarded: Vec<i32> = jobctl_exec::STOP_SIGNALS
            .iter()
            .map(|s| *s as i32)
            .collect();
        let mut stops = jobctl_history::verdict::STOP_SIGNALS.to_vec();
        forwarded.sort();
        stops.sort();
        assert_eq!(forwarded, stops);
    }
}
