//! `jobctl exec`: the run shim every job's `ExecStart=` goes through.
//!
//! It records the run in the history (a start row before the command starts,
//! completed when it ends), runs the command with its output forwarded
//! unchanged and a bounded copy captured, forwards stop signals, retries
//! within the timeout, and exits exactly as the command did. Bookkeeping
//! never breaks the job: when the database cannot be written, the command
//! still runs and its status still propagates, and the run's record goes to
//! the journal as a warning instead (see `journal.rs`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use jobctl_core::duration::Timespan;
use jobctl_core::size::ByteSize;
use jobctl_exec::{End, Observer, Signals, Spec, StopRequest};
use jobctl_history::liveness::ProcessStamp;
use jobctl_history::output::{Segment, Stream};
use jobctl_history::{OpenMode, Retention, RunId, RunRecord, Status, Store, Trigger};

use crate::env;
use crate::error::CliResult;
use crate::history_db::{self, system_time_us};
use crate::paths::Paths;

/// Exit status for the shim's own errors, as `env(1)`.
const EXIT_SHIM_ERROR: u8 = 125;

/// Run a command as a recorded run of a job (the shim in every job's
/// ExecStart=).
///
/// The command's output passes through unchanged; its exit status (or the
/// signal that killed it) becomes jobctl's. Own errors exit 125, a command
/// that cannot be executed 126, one that is not found 127, as env(1).
///
/// Examples:
///   jobctl exec --job nightly-refresh -- /opt/app/refresh --full
///   jobctl exec --job backup --timeout 2h --retry-attempts 3 --retry-delay 30s -- /usr/local/bin/backup
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The job this run belongs to: a job name as job files have them
    /// (letters, digits, '_', '.', '-'); any other is refused (exit 125).
    #[arg(long, value_name = "NAME")]
    pub job: String,

    /// The job's timeout (its TimeoutStartSec=): a stop signal at or after it
    /// makes the run `timeout` rather than `killed`, and retries never start
    /// past it. systemd enforces it, not the shim.
    #[arg(long, value_name = "DUR")]
    pub timeout: Option<Timespan>,

    /// The first instant the job may no longer run (RFC 3339 with an offset).
    /// At or after it the command is not run and the run is recorded
    /// `expired` (exit status 0).
    #[arg(long, value_name = "TIMESTAMP")]
    pub not_after: Option<jiff::Timestamp>,

    /// Attempts in all, the first included (1 to 100, as in job files): a
    /// failed command (non-zero exit, or killed by a signal the shim did not
    /// forward) is run again, each attempt recorded.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub retry_attempts: u32,

    /// Wait before the second attempt.
    #[arg(long, value_name = "DUR", default_value = "0")]
    pub retry_delay: Timespan,

    /// Each further wait is the previous one times this factor.
    #[arg(long, value_name = "FACTOR", default_value_t = 1.0)]
    pub retry_backoff: f64,

    /// Cap on the wait between attempts.
    #[arg(long, value_name = "DUR")]
    pub retry_max_delay: Option<Timespan>,

    /// Output kept per run: the first and the last half of this many bytes
    /// (0 keeps none). The total byte count is always recorded.
    #[arg(long, value_name = "SIZE", default_value = "4M")]
    pub output_limit: ByteSize,

    /// Give the command one pipe for both stdout and stderr (the job key
    /// `merge_output`): the history keeps exactly the order it wrote in,
    /// but no longer tells the streams apart, and all of it is passed on to
    /// stdout. Without it, each stream keeps its own order, and lines
    /// written close together to both are ordered as read.
    #[arg(long)]
    pub merge_output: bool,

    /// Wake jobctl's watch when the run has been recorded (a datagram to its
    /// socket; never waited for, errors ignored), so that a failure is
    /// notified within a second. Rendered for jobs with notification channels.
    #[arg(long)]
    pub notify: bool,

    /// Record in this database instead of the default location.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// What started the run [default: timer when $TRIGGER_UNIT is set, else
    /// manual when $INVOCATION_ID is set, else shell].
    #[arg(long, value_enum, value_name = "TRIGGER")]
    pub trigger: Option<TriggerArg>,

    /// Run the command in this folder. A missing folder is recorded as an
    /// `error` run (exit 125) instead of failing before the shim starts.
    #[arg(long, value_name = "DIR")]
    pub working_directory: Option<PathBuf>,

    /// Retention: keep this many runs per job (0: no limit) [default: 1000].
    #[arg(long, value_name = "N")]
    pub keep_runs: Option<u64>,

    /// Retention: drop runs older than this ("infinity" or 0: no limit)
    /// [default: 180d].
    #[arg(long, value_name = "DUR")]
    pub keep_age: Option<Timespan>,

    /// Retention: stored output of all runs together, oldest dropped first
    /// (0: no limit) [default: 256M].
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<ByteSize>,

    /// How long the completing history write waits for other writers (a
    /// crowd of shims finishing at once on a slow disk) before the run goes
    /// unrecorded (to the journal instead). The start row waits a twentieth
    /// of it, so a busy database holds the command back little; a start row
    /// that could not be written is written whole at the end.
    #[arg(long, value_name = "DUR", default_value = "60s")]
    pub db_timeout: Timespan,

    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TriggerArg {
    Timer,
    Manual,
    Shell,
}

/// The retention limits from flags over the built-in defaults.
pub fn retention_from(
    keep_runs: Option<u64>,
    keep_age: Option<Timespan>,
    max_output: Option<ByteSize>,
) -> Retention {
    let defaults = Retention::default();
    Retention {
        keep_runs: match keep_runs {
            Some(0) => None,
            Some(n) => Some(n),
            None => defaults.keep_runs,
        },
        keep_age_us: match keep_age {
            Some(age) if age.is_infinite() || age.as_usec() == 0 => None,
            Some(age) => Some(i64::try_from(age.as_usec()).unwrap_or(i64::MAX)),
            None => defaults.keep_age_us,
        },
        max_output: match max_output {
            Some(size) if size.bytes() == 0 => None,
            Some(size) => Some(size.bytes()),
            None => defaults.max_output,
        },
    }
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
    let parsed = match parse_plain(&args[first..]) {
        Some(a) => Ok(a),
        None => parse_with_clap(&args[first..]),
    };
    let exec_args = match parsed {
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
            eprintln!("jobctl exec: {e:#}");
            return Some(ExitCode::from(EXIT_SHIM_ERROR));
        }
    };
    Some(match run(&paths, exec_args) {
        Ok(code) => code,
        Err(err) => err.report(),
    })
}

/// `jobctl exec`'s own arguments through clap (only `ExecArgs`, not the
/// whole command line).
fn parse_with_clap(args: &[OsString]) -> Result<ExecArgs, clap::Error> {
    use clap::{Args as _, FromArgMatches as _};
    let command = ExecArgs::augment_args(
        clap::Command::new("exec")
            .bin_name("jobctl exec")
            .no_binary_name(true)
            .max_term_width(100),
    );
    command
        .try_get_matches_from(args)
        .and_then(|m| ExecArgs::from_arg_matches(&m))
}

/// Parses `jobctl exec`'s own arguments without clap, for the plain forms a
/// rendered `ExecStart=` uses: each option once, as `--name VALUE` or
/// `--name=VALUE`, a value that parses and neither is empty nor starts with
/// `-` (and the flags `--merge-output` and `--notify`, bare), then `--` and the command. Anything else (help, an unknown or
/// repeated option, a bad value, a missing `--job` or command) gives `None`,
/// and clap parses it instead: the result is always what clap would give
/// (the tests below compare the two), only without building clap's
/// command first, which is a measurable share of the shim's start-up.
fn parse_plain(args: &[OsString]) -> Option<ExecArgs> {
    use std::str::FromStr;
    fn set<T: FromStr>(slot: &mut Option<T>, value: &str) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(value.parse().ok()?);
        Some(())
    }
    let mut job: Option<String> = None;
    let mut timeout = None;
    let mut not_after = None;
    let mut retry_attempts = None;
    let mut retry_delay = None;
    let mut retry_backoff = None;
    let mut retry_max_delay = None;
    let mut output_limit = None;
    let mut db: Option<PathBuf> = None;
    let mut trigger = None;
    let mut working_directory: Option<PathBuf> = None;
    let mut keep_runs = None;
    let mut keep_age = None;
    let mut max_output = None;
    let mut db_timeout = None;
    let mut merge_output = false;
    let mut notify = false;
    let mut i = 0;
    let command = loop {
        let arg = args.get(i)?.to_str()?;
        if arg == "--" {
            break args[i + 1..].to_vec();
        }
        // The one flag without a value (clap refuses it repeated or with
        // `=VALUE`; so does this, by declining).
        if arg == "--merge-output" {
            if merge_output {
                return None;
            }
            merge_output = true;
            i += 1;
            continue;
        }
        if arg == "--notify" {
            if notify {
                return None;
            }
            notify = true;
            i += 1;
            continue;
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, value),
            None => {
                i += 1;
                (arg, args.get(i)?.to_str()?)
            }
        };
        if value.is_empty() || value.starts_with('-') {
            return None;
        }
        match name {
            "--job" => set(&mut job, value)?,
            "--timeout" => set(&mut timeout, value)?,
            "--not-after" => set(&mut not_after, value)?,
            "--retry-attempts" => set(&mut retry_attempts, value)?,
            "--retry-delay" => set(&mut retry_delay, value)?,
            "--retry-backoff" => set(&mut retry_backoff, value)?,
            "--retry-max-delay" => set(&mut retry_max_delay, value)?,
            "--output-limit" => set(&mut output_limit, value)?,
            "--db" => set(&mut db, value)?,
            "--trigger" => {
                if trigger.is_some() {
                    return None;
                }
                trigger = Some(match value {
                    "timer" => TriggerArg::Timer,
                    "manual" => TriggerArg::Manual,
                    "shell" => TriggerArg::Shell,
                    _ => return None,
                });
            }
            "--working-directory" => set(&mut working_directory, value)?,
            "--keep-runs" => set(&mut keep_runs, value)?,
            "--keep-age" => set(&mut keep_age, value)?,
            "--max-output" => set(&mut max_output, value)?,
            "--db-timeout" => set(&mut db_timeout, value)?,
            _ => return None,
        }
        i += 1;
    };
    if command.is_empty() {
        return None;
    }
    Some(ExecArgs {
        job: job?,
        timeout,
        not_after,
        retry_attempts: retry_attempts.unwrap_or(1),
        retry_delay: retry_delay.map_or_else(|| "0".parse().ok(), Some)?,
        retry_backoff: retry_backoff.unwrap_or(1.0),
        retry_max_delay,
        output_limit: output_limit.map_or_else(|| "4M".parse().ok(), Some)?,
        merge_output,
        notify,
        db,
        trigger,
        working_directory,
        keep_runs,
        keep_age,
        max_output,
        db_timeout: db_timeout.map_or_else(|| "60s".parse().ok(), Some)?,
        command,
    })
}

pub fn run(paths: &Paths, args: ExecArgs) -> CliResult<ExitCode> {
    // First, so that a stop signal or the child's exit is never missed.
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("jobctl exec: {e}");
            return Ok(ExitCode::from(EXIT_SHIM_ERROR));
        }
    };
    if let Some(problem) = bad_arguments(&args) {
        eprintln!("jobctl exec: {problem}");
        return Ok(ExitCode::from(EXIT_SHIM_ERROR));
    }
    let retention = retention_from(args.keep_runs, args.keep_age, args.max_output);
    let (db_path, create_dir) = history_db::shim_database(paths, args.db.as_deref());
    let mut book = Bookkeeper {
        db_path,
        create_dir,
        paths,
        busy: args.db_timeout.to_std().unwrap_or(Duration::from_secs(60)),
        store: None,
        failed: None,
        retention,
        notify: args.notify,
    };

    let invocation_start = std::time::SystemTime::now();
    let start_us = system_time_us(invocation_start);
    let deadline_us = args
        .timeout
        .filter(|t| !t.is_infinite() && t.as_usec() > 0)
        .map(|t| start_us.saturating_add(i64::try_from(t.as_usec()).unwrap_or(i64::MAX)));
    let template = RunRecord {
        id: RunId::from_random(0),
        job: args.job.clone(),
        invocation_id: env::var_os(env::INVOCATION_ID).map(|v| v.to_string_lossy().into_owned()),
        trigger: trigger(args.trigger),
        attempt: 1,
        host: history_db::hostname().unwrap_or_default(),
        user: String::new(),
        uid: nix::unistd::getuid().as_raw(),
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
    };
    let mut template = template;
    template.user = user_name(template.uid);

    if let Some(not_after) = args.not_after
        && start_us >= not_after.as_microsecond()
    {
        let mut record = template.clone();
        record.id = new_run_id();
        record.status = Status::Expired;
        record.ended_us = Some(start_us);
        eprintln!(
            "jobctl exec: job {} expired at {not_after}; not running it",
            args.job
        );
        book.finish(&record, None);
        return Ok(ExitCode::SUCCESS);
    }

    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let spec = Spec {
        program: program.clone(),
        args: rest.to_vec(),
        working_directory: args.working_directory.clone(),
        capture_limit: usize::try_from(args.output_limit.bytes()).unwrap_or(usize::MAX),
        merge_output: args.merge_output,
    };
    let retry = jobctl_core::job::Retry {
        attempts: args.retry_attempts,
        delay: args.retry_delay,
        backoff: args.retry_backoff,
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

        let mut observer = RunObserver {
            book: &mut book,
            record: &record,
            pid: None,
            deadline_us,
        };
        let outcome = match jobctl_exec::run(&spec, &mut signals, &mut observer) {
            Ok(outcome) => outcome,
            Err(e) => {
                // The command may still run; nothing sane is left to do but
                // record the shim's failure and stop.
                eprintln!("jobctl exec: {e}");
                record.status = Status::Error;
                record.ended_us = Some(history_db::now_us());
                record.exit_code = Some(i32::from(EXIT_SHIM_ERROR));
                record.error = Some(e.to_string());
                book.finish(&record, None);
                book.leave();
                return Ok(ExitCode::from(EXIT_SHIM_ERROR));
            }
        };

        record.pid = outcome.pid;
        record.started_us = system_time_us(outcome.started);
        record.ended_us = Some(system_time_us(outcome.ended).max(record.started_us));
        record.output_bytes = outcome.capture.total_bytes();
        record.output_truncated = outcome.capture.truncated();
        let mut forwarded_stop = false;
        match &outcome.end {
            End::Exited(code) => {
                record.exit_code = Some(*code);
                record.status = if *code == 0 {
                    Status::Success
                } else {
                    Status::Failed
                };
            }
            End::Signaled(sig) => {
                record.signal = Some(*sig);
                record.status = Status::Killed;
            }
            End::NotStarted(failure) => {
                eprintln!("jobctl exec: {}", failure.message());
                record.exit_code = Some(failure.exit_code());
                record.error = Some(failure.message().to_string());
                record.status = Status::Error;
            }
        }
        if let Some(stop) = outcome.stop {
            forwarded_stop = true;
            record.status = stop_status(stop, deadline_us);
            if record.signal.is_none() && matches!(outcome.end, End::Exited(_)) {
                // Keep the exit code, note the signal that asked for the stop.
                record.signal = Some(stop.signal);
            }
        }
        let output = stored_output(&outcome.capture);
        book.finish(&record, output.as_deref());

        // A failure is worth another attempt; a stop is not, whoever sent it
        // (a terminal's Ctrl-C reaches the command, not the shim).
        let stopped_by_signal = record
            .signal
            .is_some_and(|sig| jobctl_exec::STOP_SIGNALS.iter().any(|s| *s as i32 == sig));
        let retryable = !forwarded_stop
            && !stopped_by_signal
            && matches!(record.status, Status::Failed | Status::Killed);
        if retryable && let Some(wait) = waits.next() {
            let wait_us = i64::try_from(wait.as_usec()).unwrap_or(i64::MAX);
            let in_time = deadline_us
                .is_none_or(|deadline| history_db::now_us().saturating_add(wait_us) < deadline);
            if in_time {
                eprintln!(
                    "jobctl exec: attempt {attempt} of {} failed; retrying in {wait}",
                    retry.attempts
                );
                match signals.sleep(wait.to_std().unwrap_or(Duration::MAX)) {
                    None => {
                        attempt += 1;
                        continue;
                    }
                    Some(sig) => {
                        eprintln!("jobctl exec: stopped by {sig} while waiting to retry");
                        book.leave();
                        jobctl_exec::reraise(sig as i32);
                    }
                }
            }
            eprintln!(
                "jobctl exec: attempt {attempt} failed; no retry, the next would start past the job's timeout"
            );
        }
        book.leave();
        return Ok(match outcome.end {
            End::Exited(code) => ExitCode::from(code as u8),
            End::NotStarted(failure) => ExitCode::from(failure.exit_code() as u8),
            End::Signaled(sig) => jobctl_exec::reraise(sig),
        });
    }
}

/// What the parser cannot check: values it accepts that the shim must
/// refuse (before anything runs or is recorded; exit 125). The job name
/// follows the job-file rule (a job's name is its file's name), so no run can
/// be recorded under a name no job can have: an empty one, or one with line
/// breaks or terminal escapes that a reader would print.
fn bad_arguments(args: &ExecArgs) -> Option<String> {
    use jobctl_core::job::MAX_RETRY_ATTEMPTS;
    if let Err(problem) = jobctl_core::naming::JobName::new(&args.job) {
        return Some(format!(
            "--job: {problem} (job names follow the job-file naming rule)"
        ));
    }
    if !(1..=MAX_RETRY_ATTEMPTS).contains(&args.retry_attempts) {
        return Some(format!(
            "--retry-attempts {}: use 1 to {MAX_RETRY_ATTEMPTS} (attempts in all, the first included)",
            args.retry_attempts
        ));
    }
    if !(args.retry_backoff.is_finite() && args.retry_backoff >= 1.0) {
        return Some(format!(
            "--retry-backoff {}: use a number of at least 1",
            args.retry_backoff
        ));
    }
    None
}

/// A stop signal at or after the deadline is the timeout (systemd counts the
/// timeout from a moment slightly before the shim started, hence the
/// tolerance); any other is a plain stop.
fn stop_status(stop: StopRequest, deadline_us: Option<i64>) -> Status {
    let at = system_time_us(stop.at);
    match deadline_us {
        Some(deadline) if at >= deadline - TIMEOUT_TOLERANCE_US => Status::Timeout,
        _ => Status::Killed,
    }
}

const TIMEOUT_TOLERANCE_US: i64 = 1_000_000;

/// Records the run's provisional end as soon as a stop signal arrives: if
/// the command ignores it, systemd SIGKILLs the whole unit (the shim too)
/// after its stop timeout, and the row should then say `timeout`/`killed`,
/// not `running`, and hold the output captured up to the stop.
struct RunObserver<'a, 'p> {
    book: &'a mut Bookkeeper<'p>,
    record: &'a RunRecord,
    pid: Option<u32>,
    deadline_us: Option<i64>,
}

impl Observer for RunObserver<'_, '_> {
    fn started(&mut self, pid: u32) {
        self.pid = Some(pid);
        // Work that would otherwise delay the command or follow it: sync the
        // start row, prepare the completing statements, and checkpoint the
        // log if it is due (the fsyncs overlap the command; its output waits
        // in the pipes meanwhile, nothing is lost).
        if let Some(store) = self.book.store.as_mut() {
            // The start row's fsync, which the command did not wait for. If
            // it fails, the completing commit (a durable one) tries again,
            // and a run it cannot record goes to the journal.
            let _ = store.sync_log();
            let _ = store.prepare_finish();
            store.checkpoint_if_due();
        }
    }

    fn stop_requested(&mut self, request: StopRequest, capture: &jobctl_exec::Capture) {
        let mut record = self.record.clone();
        record.pid = self.pid;
        record.status = stop_status(request, self.deadline_us);
        record.signal = Some(request.signal);
        record.ended_us = Some(system_time_us(request.at));
        record.output_bytes = capture.total_bytes();
        record.output_truncated = capture.truncated();
        let output = stored_output(capture);
        // No retention step here: the completion makes it, if it comes.
        if let Err(e) = self
            .book
            .write_end(&record, output.as_deref(), &Retention::UNLIMITED)
        {
            self.book.failed = Some(e);
            self.book.store = None;
        }
    }
}

/// The database side of the shim: opens lazily, remembers the first failure,
/// and never returns an error to the run.
struct Bookkeeper<'p> {
    db_path: PathBuf,
    create_dir: bool,
    paths: &'p Paths,
    busy: Duration,
    store: Option<Store>,
    failed: Option<String>,
    retention: Retention,
    /// Wake the watch once the run is recorded (`--notify`).
    notify: bool,
}

impl Bookkeeper<'_> {
    /// The shim is about to exit: every write is committed, so leave the
    /// connection to the kernel instead of closing it (see [`Store::abandon`]).
    fn leave(mut self) {
        if let Some(store) = self.store.take() {
            store.abandon();
        }
        if self.notify {
            crate::poke::poke(self.paths.mode);
        }
    }

    fn open(&mut self) -> Option<&mut Store> {
        if self.store.is_none() {
            if self.create_dir
                && let Some(dir) = self.db_path.parent()
            {
                let _ = history_db::create_state_dir(self.paths, dir);
            }
            match self.open_store() {
                Ok(store) => self.store = Some(store),
                Err(e) => {
                    self.failed = Some(error_chain(&e));
                    return None;
                }
            }
        }
        self.store.as_mut()
    }

    /// Opens (creating if missing) the database. A shim running as root
    /// whose database is in a folder that is not root's alone (`--db` into a
    /// user's folder) opens it only with the checks root's readers use, and
    /// never creates it there ([`Store::open_located`]); costs one `stat` of
    /// the folder for root's shims, nothing for others.
    fn open_store(&self) -> jobctl_history::Result<Store> {
        use std::os::unix::fs::MetadataExt;
        let untrusted_folder = nix::unistd::geteuid().is_root()
            && self
                .db_path
                .parent()
                .and_then(|dir| std::fs::metadata(dir).ok())
                .is_some_and(|m| m.uid() != 0 || m.mode() & 0o022 != 0);
        if !untrusted_folder {
            return Store::open(&self.db_path, OpenMode::Write, self.busy);
        }
        let state_dir = history_db::state_dir(self.paths);
        match jobctl_history::locate::explicit(&self.db_path, &state_dir) {
            Ok(located) => Store::open_located(&located, OpenMode::Write, self.busy),
            Err(refused) => Err(jobctl_history::Error::Refused {
                path: refused.path,
                reason: refused.reason,
            }),
        }
    }

    fn begin(&mut self, record: &RunRecord) {
        let patience = self.busy / 20;
        if let Some(store) = self.open() {
            store.set_busy_timeout(patience);
        }
        // Committed now, fsynced once the command has started (see
        // `RunObserver::started`): the command does not wait for the disk.
        if let Some(store) = self.open()
            && let Err(e) = store.begin_run_sync_later(record)
        {
            self.failed = Some(error_chain(&e));
            // A locked or broken connection is retried fresh at the end.
            self.store = None;
        }
    }

    /// Completes the run; if that fails, the journal gets the record.
    fn finish(&mut self, record: &RunRecord, output: Option<&[Segment<'_>]>) {
        // A database deleted or replaced while the command ran would take the
        // run with it: record it in whatever is at the path now (created if
        // nothing is), the whole row.
        if self
            .store
            .as_ref()
            .is_some_and(|store| !store.still_at_path())
        {
            if let Some(store) = self.store.take() {
                store.retire();
            }
        }
        let busy = self.busy;
        if let Some(store) = self.store.as_mut() {
            store.set_busy_timeout(busy);
        }
        let retention = self.retention;
        match self.write_end(record, output, &retention) {
            Ok(None) => self.failed = None,
            Ok(Some(reason)) => {
                self.failed = None;
                crate::journal::output_not_stored(record, &self.db_path, &reason);
            }
            Err(error) => {
                self.store = None;
                crate::journal::run_not_recorded(record, &self.db_path, &error);
            }
        }
    }

    /// Writes a run's end (`finish_run`: the row, its output, `retention`),
    /// in one transaction. A result the shim knows is never left `running`
    /// for want of room for its output: when that write fails for any reason
    /// but another writer's lock (a full disk, an output too big for the
    /// database, a damaged page among the outputs), the row is written again
    /// without the output, marked with why (`RunRecord::without_output`).
    /// Returns that reason when the output was left out; an error when
    /// nothing could be written.
    fn write_end(
        &mut self,
        record: &RunRecord,
        output: Option<&[Segment<'_>]>,
        retention: &Retention,
    ) -> Result<Option<String>, String> {
        let now = history_db::now_us();
        let Some(store) = self.open() else {
            return Err(self.failed.clone().unwrap_or_else(|| "cannot open".into()));
        };
        let error = match store.finish_run(record, output, retention, now) {
            Ok(()) => return Ok(None),
            Err(e) if output.is_none() || e.is_busy() => return Err(error_chain(&e)),
            Err(e) => e,
        };
        let reason = output_error(&error);
        match store.update_run(&record.without_output(&reason)) {
            Ok(()) => Ok(Some(reason)),
            Err(_) => Err(error_chain(&error)),
        }
    }
}

/// A short reason for the marker: SQLite's own message ("database or disk is
/// full") without the layers around it.
fn output_error(e: &jobctl_history::Error) -> String {
    match e {
        jobctl_history::Error::Sqlite(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn trigger(flag: Option<TriggerArg>) -> Trigger {
    match flag {
        Some(TriggerArg::Timer) => Trigger::Timer,
        Some(TriggerArg::Manual) => Trigger::Manual,
        Some(TriggerArg::Shell) => Trigger::Shell,
        None if env::var_os(env::TRIGGER_UNIT).is_some() => Trigger::Timer,
        None if env::var_os(env::INVOCATION_ID).is_some() => Trigger::Manual,
        None => Trigger::Shell,
    }
}

/// A fresh random run id; falls back to time and pid bits if the kernel's
/// random source fails (it does not, in practice).
fn new_run_id() -> RunId {
    let bits = getrandom::u64().unwrap_or_else(|_| {
        (history_db::now_us() as u64).rotate_left(17) ^ u64::from(std::process::id())
    });
    RunId::from_random(bits)
}

/// The user's name, resolved now (a `DynamicUser=` name exists only while
/// its unit runs). systemd sets `$USER` for services with `User=` or
/// `DynamicUser=`, which saves a name-service lookup on the hot path; uid 0
/// is root. Otherwise `/etc/passwd`, then the name service through
/// `getent(1)`, else the uid as text. (The record also keeps the uid, which
/// is authoritative.)
fn user_name(uid: u32) -> String {
    if env::var_os(env::INVOCATION_ID).is_some()
        && let Some(name) = env::var_os(env::USER)
    {
        return name.to_string_lossy().into_owned();
    }
    user_name_of(uid).unwrap_or_else(|| uid.to_string())
}

/// The name of `uid`: root, else `/etc/passwd`, else the name service
/// (`getent`); `None` when it has no name.
pub(crate) fn user_name_of(uid: u32) -> Option<String> {
    if uid == 0 {
        return Some("root".to_string());
    }
    std::fs::read("/etc/passwd")
        .ok()
        .and_then(|passwd| passwd_name(&passwd, uid))
        .or_else(|| name_service_user(uid, NAME_SERVICE_DEADLINE))
}

/// The name of `uid` in the contents of a `passwd(5)` file.
fn passwd_name(passwd: &[u8], uid: u32) -> Option<String> {
    passwd.split(|b| *b == b'\n').find_map(|line| {
        // Comments and NIS compat entries (`+`, `-`) name nobody.
        if line
            .first()
            .is_some_and(|b| matches!(b, b'#' | b'+' | b'-'))
        {
            return None;
        }
        let mut fields = line.split(|b| *b == b':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?;
        (!name.is_empty() && std::str::from_utf8(entry_uid).ok()?.parse::<u32>().ok()? == uid)
            .then(|| String::from_utf8_lossy(name).into_owned())
    })
}

/// How long the shim waits for the name service before it records the uid
/// as the name (an unreachable LDAP server must not hold the job back).
const NAME_SERVICE_DEADLINE: Duration = Duration::from_secs(2);

/// The name service (NSS: LDAP, sssd, nss-systemd, …), asked through
/// `getent passwd UID` rather than in-process: the shipped binary links glibc
/// statically, and a static glibc can load the host's NSS modules only if
/// they come from the very glibc it was built with (docs/design.md, "Static
/// linking"). A separate process also lets the shim give up after
/// `deadline`. Only users missing from /etc/passwd who run `jobctl exec`
/// outside systemd get here.
fn name_service_user(uid: u32, deadline: Duration) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::process::{Command, Stdio};
    let mut child = Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let until = std::time::Instant::now() + deadline;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    // One passwd line: read until end of file, each wait bounded by what is
    // left of the deadline.
    let complete = loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let timeout = nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::MAX);
        let mut fds = [nix::poll::PollFd::new(
            stdout.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => break false,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break false,
        }
        match stdout.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) if out.len() < 64 << 10 => out.extend_from_slice(&chunk[..n]),
            Ok(_) => break false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };
    if !complete {
        let _ = child.kill();
    }
    let status = child.wait().ok()?;
    (complete && status.success())
        .then(|| passwd_name(&out, uid))
        .flatten()
}

/// The capture as the history stores it (borrowed, not copied), or nothing
/// when the run printed nothing (no output row at all).
fn stored_output(capture: &jobctl_exec::Capture) -> Option<Vec<Segment<'_>>> {
    if capture.total_bytes() == 0 {
        return None;
    }
    Some(
        capture
            .pieces()
            .into_iter()
            .map(|piece| match piece {
                jobctl_exec::Piece::Data(stream, data) => Segment::Data(
                    match stream {
                        jobctl_exec::Stream::Stdout => Stream::Stdout,
                        jobctl_exec::Stream::Stderr => Stream::Stderr,
                        jobctl_exec::Stream::Merged => Stream::Merged,
                    },
                    data,
                ),
                jobctl_exec::Piece::Omitted(n) => Segment::Omitted(n),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    /// The plain parser either declines or agrees with clap exactly.
    fn agrees_with_clap(line: &[&str]) -> bool {
        let args = words(line);
        let clap = parse_with_clap(&args);
        match parse_plain(&args) {
            Some(plain) => {
                let clap = clap.unwrap_or_else(|e| panic!("{line:?}: plain parsed, clap said {e}"));
                assert_eq!(format!("{plain:?}"), format!("{clap:?}"), "{line:?}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn plain_parser_takes_rendered_command_lines() {
        let taken: &[&[&str]] = &[
            &["--job", "nightly", "--", "/bin/true"],
            &["--job=nightly", "--", "/bin/true", "--job", "x", "--"],
            &[
                "--job",
                "backup",
                "--timeout",
                "2h",
                "--retry-attempts",
                "3",
                "--retry-delay",
                "30s",
                "--retry-backoff",
                "2.5",
                "--retry-max-delay",
                "10min",
                "--output-limit",
                "1M",
                "--db",
                "/var/lib/jobctl/h.db",
                "--trigger",
                "timer",
                "--working-directory",
                "/srv/app",
                "--keep-runs",
                "50",
                "--keep-age",
                "30d",
                "--max-output",
                "64M",
                "--db-timeout",
                "5s",
                "--not-after",
                "2027-04-01T00:00:00+08:00",
                "--merge-output",
                "--",
                "/usr/local/bin/backup",
                "--full",
            ],
            &["--merge-output", "--job", "j", "--", "true"],
            &["--job", "j", "--notify", "--merge-output", "--", "true"],
            &[
                "--trigger=manual",
                "--job",
                "a b",
                "--keep-age=infinity",
                "--",
                "x",
            ],
            &[
                "--keep-runs",
                "0",
                "--max-output",
                "0",
                "--job",
                "j",
                "--",
                "sh",
                "-c",
                "exit 3",
            ],
            &["--job", "ünïcode", "--retry-attempts", "+2", "--", "true"],
            &["--db=/tmp/a=b.db", "--job", "j", "--", "true"],
        ];
        for line in taken {
            assert!(agrees_with_clap(line), "declined: {line:?}");
        }
    }

    #[test]
    fn plain_parser_leaves_everything_else_to_clap() {
        let declined: &[&[&str]] = &[
            &[],
            &["--help"],
            &["-h"],
            &["--job", "j"],
            &["--job", "j", "--"],
            &["--", "true"],
            &["--job", "j", "--job", "k", "--", "true"],
            &["--job", "j", "--timeout", "soon", "--", "true"],
            &["--job", "j", "--retry-attempts", "-1", "--", "true"],
            &["--job", "j", "--retry-attempts", "4294967296", "--", "true"],
            &["--job", "j", "--retry-backoff", "fast", "--", "true"],
            &["--job", "j", "--trigger", "Timer", "--", "true"],
            &["--job", "j", "--trigger", "cron", "--", "true"],
            &["--job", "j", "--output-limit", "lots", "--", "true"],
            &["--job", "j", "--not-after", "tomorrow", "--", "true"],
            &["--job=", "--", "true"],
            &["--job", "-x", "--", "true"],
            &["--job", "j", "--db", "--", "true"],
            &["--job", "j", "--unknown", "1", "--", "true"],
            &["--job", "j", "stray", "--", "true"],
            &["--job", "j", "-t", "5s", "--", "true"],
            &["--job", "j", "--db-timeout", "--", "true"],
            &[
                "--job",
                "j",
                "--merge-output",
                "--merge-output",
                "--",
                "true",
            ],
            &["--job", "j", "--merge-output=true", "--", "true"],
            &["--job", "j", "--notify", "--notify", "--", "true"],
            &["--job", "j", "--notify=yes", "--", "true"],
            &["--job", "j", "--merge-output", "yes", "--", "true"],
        ];
        for line in declined {
            assert!(!agrees_with_clap(line), "plain parser took {line:?}");
        }
    }

    #[test]
    fn plain_parser_agrees_with_clap_on_generated_lines() {
        // Every option, with a good and a bad value, in both spellings, in a
        // few orders: whatever the plain parser takes, clap takes the same way.
        let options: &[(&str, &str, &str)] = &[
            ("--timeout", "90s", "x"),
            ("--not-after", "2030-01-01T00:00:00Z", "2030"),
            ("--retry-attempts", "2", "two"),
            ("--retry-delay", "1min", "-1"),
            ("--retry-backoff", "1.5", "1,5"),
            ("--retry-max-delay", "1h", ""),
            ("--output-limit", "512K", "512Q"),
            ("--db", "/x/h.db", ""),
            ("--trigger", "shell", "SHELL"),
            ("--working-directory", "/tmp", ""),
            ("--keep-runs", "7", "seven"),
            ("--keep-age", "2d", "2 parsecs"),
            ("--max-output", "1G", "1Z"),
            ("--db-timeout", "100ms", "forever"),
        ];
        let mut taken = 0;
        for (i, (name, good, bad)) in options.iter().enumerate() {
            for value in [good, bad] {
                for inline in [false, true] {
                    let (other, other_value, _) = options[(i + 5) % options.len()];
                    let mut line: Vec<String> = Vec::new();
                    if inline {
                        line.push(format!("{name}={value}"));
                    } else {
                        line.push(name.to_string());
                        line.push(value.to_string());
                    }
                    line.extend(["--job".into(), "j".into()]);
                    line.extend([other.into(), other_value.into()]);
                    line.extend(["--".into(), "cmd".into(), "--db".into()]);
                    let line: Vec<&str> = line.iter().map(String::as_str).collect();
                    taken += usize::from(agrees_with_clap(&line));
                }
            }
        }
        // Each good value in both spellings.
        assert_eq!(taken, options.len() * 2);
    }

    #[test]
    fn passwd_lookup_finds_the_uid_field() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
# a comment:x:5\n\
www-data:x:33:1001:www-data:/var/www:/usr/sbin/nologin\n\
alice:x:1001:100:Alice:/home/alice:/bin/bash\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
broken-line\n\
:x:7:7::/:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(passwd_name(passwd, 1).as_deref(), Some("daemon"));
        assert_eq!(passwd_name(passwd, 5), None);
        // The uid field, not the gid: 1001 is www-data's group (listed
        // first) and alice's uid; 100 is only a group; 33 is www-data.
        assert_eq!(passwd_name(passwd, 1001).as_deref(), Some("alice"));
        assert_eq!(passwd_name(passwd, 33).as_deref(), Some("www-data"));
        assert_eq!(passwd_name(passwd, 100), None);
        // Empty names do not count.
        assert_eq!(passwd_name(passwd, 7), None);
        assert_eq!(passwd_name(passwd, 1000), None);
        assert_eq!(passwd_name(b"", 0), None);
    }

    #[test]
    fn name_service_lookup_goes_through_getent() {
        assert_eq!(
            name_service_user(0, Duration::from_secs(10)).as_deref(),
            Some("root")
        );
        // A uid nobody has: getent exits 2, and the caller records the uid.
        assert_eq!(
            name_service_user(4_000_000_123, Duration::from_secs(10)),
            None
        );
    }
}
