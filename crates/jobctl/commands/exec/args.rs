//! `jobctl exec`'s command line: clap's description of it (`--help`, and the
//! messages about a line the fast parser declines), and the checks the
//! parsers cannot make. The flags' names, their defaults and the fast parser
//! are `jobctl_core::shim`'s, shared with the renderer that writes them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use jobctl_core::duration::Timespan;
use jobctl_core::shim::{ShimArgs, ShimTrigger, flag};
use jobctl_core::size::ByteSize;

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
#[command(verbatim_doc_comment)]
pub struct ExecArgs {
    /// The job this run belongs to: a job name as job files have them
    /// (letters, digits, '_', '.', '-'); any other is refused (exit 125).
    #[arg(long = flag::JOB, value_name = "NAME")]
    pub job: String,

    /// The job's timeout (its TimeoutStartSec=): a stop signal at or after it
    /// makes the run `timeout` rather than `killed`, and retries never start
    /// past it. systemd enforces it, not the shim.
    #[arg(long = flag::TIMEOUT, value_name = "DUR")]
    pub timeout: Option<Timespan>,

    /// The first instant the job may no longer run (RFC 3339 with an offset).
    /// At or after it the command is not run and the run is recorded
    /// `expired` (exit status 0).
    #[arg(long = flag::NOT_AFTER, value_name = "TIMESTAMP")]
    pub not_after: Option<jiff::Timestamp>,

    /// Attempts in all, the first included (1 to 100, as in job files): a
    /// failed command (non-zero exit, or killed by a signal the shim did not
    /// forward) is run again, each attempt recorded.
    #[arg(long = flag::RETRY_ATTEMPTS, value_name = "N", default_value_t = ShimArgs::DEFAULT_RETRY_ATTEMPTS)]
    pub retry_attempts: u32,

    /// Wait before the second attempt.
    #[arg(long = flag::RETRY_DELAY, value_name = "DUR", default_value_t = ShimArgs::DEFAULT_RETRY_DELAY)]
    pub retry_delay: Timespan,

    /// Each further wait is the previous one times this factor.
    #[arg(long = flag::RETRY_BACKOFF, value_name = "FACTOR", default_value_t = ShimArgs::DEFAULT_RETRY_BACKOFF)]
    pub retry_backoff: f64,

    /// Cap on the wait between attempts.
    #[arg(long = flag::RETRY_MAX_DELAY, value_name = "DUR")]
    pub retry_max_delay: Option<Timespan>,

    /// Output kept per run: the first and the last half of this many bytes
    /// (0 keeps none). The total byte count is always recorded.
    #[arg(long = flag::OUTPUT_LIMIT, value_name = "SIZE", default_value_t = ShimArgs::DEFAULT_OUTPUT_LIMIT)]
    pub output_limit: ByteSize,

    /// Give the command one pipe for both stdout and stderr (the job key
    /// `merge_output`): the history keeps exactly the order it wrote in,
    /// but no longer tells the streams apart, and all of it is passed on to
    /// stdout. Without it, each stream keeps its own order, and lines
    /// written close together to both are ordered as read.
    #[arg(long = flag::MERGE_OUTPUT)]
    pub merge_output: bool,

    /// Wake jobctl's watch when the run has been recorded (a datagram to its
    /// socket; never waited for, errors ignored), so that a failure is
    /// notified within a second. Rendered for jobs with notification channels.
    #[arg(long = flag::NOTIFY)]
    pub notify: bool,

    /// Record in this database instead of the default location.
    #[arg(long = flag::DB, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// What started the run [default: timer when $TRIGGER_UNIT is set, else
    /// manual when $INVOCATION_ID is set, else shell].
    #[arg(
        long = flag::TRIGGER,
        value_name = "TRIGGER",
        value_parser = PossibleValuesParser::new(ShimTrigger::NAMES)
            .try_map(|name| name.parse::<ShimTrigger>())
    )]
    pub trigger: Option<ShimTrigger>,

    /// Run the command in this folder. A missing folder is recorded as an
    /// `error` run (exit 125) instead of failing before the shim starts.
    #[arg(long = flag::WORKING_DIRECTORY, value_name = "DIR")]
    pub working_directory: Option<PathBuf>,

    /// Retention: keep this many runs per job (0: no limit) [default: 1000].
    #[arg(long = flag::KEEP_RUNS, value_name = "N")]
    pub keep_runs: Option<u64>,

    /// Retention: drop runs older than this ("infinity" or 0: no limit)
    /// [default: 180d].
    #[arg(long = flag::KEEP_AGE, value_name = "DUR")]
    pub keep_age: Option<Timespan>,

    /// Retention: stored output of all runs together, oldest dropped first
    /// (0: no limit) [default: 256M].
    #[arg(long = flag::MAX_OUTPUT, value_name = "SIZE")]
    pub max_output: Option<ByteSize>,

    /// How long the completing history write waits for other writers (a
    /// crowd of shims finishing at once on a slow disk) before the run goes
    /// unrecorded (to the journal instead). The start row waits a twentieth
    /// of it, so a busy database holds the command back little; a start row
    /// that could not be written is written whole at the end.
    #[arg(long = flag::DB_TIMEOUT, value_name = "DUR", default_value_t = ShimArgs::DEFAULT_DB_TIMEOUT)]
    pub db_timeout: Timespan,

    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl From<ExecArgs> for ShimArgs {
    fn from(a: ExecArgs) -> ShimArgs {
        ShimArgs {
            job: a.job,
            timeout: a.timeout,
            not_after: a.not_after,
            retry_attempts: Some(a.retry_attempts),
            retry_delay: Some(a.retry_delay),
            retry_backoff: Some(a.retry_backoff),
            retry_max_delay: a.retry_max_delay,
            output_limit: Some(a.output_limit),
            merge_output: a.merge_output,
            notify: a.notify,
            db: a.db,
            trigger: a.trigger,
            working_directory: a.working_directory,
            keep_runs: a.keep_runs,
            keep_age: a.keep_age,
            max_output: a.max_output,
            db_timeout: Some(a.db_timeout),
            command: a.command,
        }
    }
}

/// `jobctl exec`'s own arguments: the fast parser for the plain lines a
/// rendered `ExecStart=` has, clap for the rest (help, mistakes), so that
/// every message is clap's.
pub fn parse(args: &[OsString]) -> Result<ShimArgs, clap::Error> {
    match ShimArgs::parse(args) {
        Some(a) => Ok(a),
        None => parse_with_clap(args).map(ShimArgs::from),
    }
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

/// What the parsers cannot check: values they accept that the shim must
/// refuse (before anything runs or is recorded; exit 125). The job name
/// follows the job-file rule (a job's name is its file's name), so no run can
/// be recorded under a name no job can have: an empty one, or one with line
/// breaks or terminal escapes that a reader would print.
pub fn bad_arguments(args: &ShimArgs) -> Option<String> {
    use jobctl_core::job::MAX_RETRY_ATTEMPTS;
    if let Err(problem) = jobctl_core::naming::JobName::new(&args.job) {
        return Some(format!(
            "--job: {problem} (job names follow the job-file naming rule)"
        ));
    }
    if !(1..=MAX_RETRY_ATTEMPTS).contains(&args.retry_attempts()) {
        return Some(format!(
            "--retry-attempts {}: use 1 to {MAX_RETRY_ATTEMPTS} (attempts in all, the first included)",
            args.retry_attempts()
        ));
    }
    let backoff = args.retry_backoff();
    if !(backoff.is_finite() && backoff >= 1.0) {
        return Some(format!(
            "--retry-backoff {backoff}: use a number of at least 1"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    /// The plain parser either declines or agrees with clap exactly (once
    /// clap's filled-in defaults are written out on both sides).
    fn agrees_with_clap(line: &[&str]) -> bool {
        let args = words(line);
        let clap = parse_with_clap(&args);
        match ShimArgs::parse(&args) {
            Some(plain) => {
                let clap = clap.unwrap_or_else(|e| panic!("{line:?}: plain parsed, clap said {e}"));
                assert_eq!(
                    plain.with_defaults(),
                    ShimArgs::from(clap).with_defaults(),
                    "{line:?}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn clap_describes_every_flag_of_the_shim_and_no_other() {
        use clap::CommandFactory as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            exec: ExecArgs,
        }
        let mut longs: Vec<String> = Wrapper::command()
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect();
        longs.sort();
        let mut names: Vec<String> = flag::ALL.iter().map(|f| f.to_string()).collect();
        names.sort();
        assert_eq!(longs, names);
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
    fn what_the_renderer_writes_clap_reads_the_same() {
        // The renderer's words go through the fast parser; clap, which
        // explains every other line, must read them alike.
        let args = ShimArgs {
            job: "backup".into(),
            timeout: Some(Timespan::from_secs(9000)),
            retry_attempts: Some(3),
            retry_delay: Some(Timespan::ZERO),
            retry_backoff: Some(1.5),
            output_limit: Some(ByteSize::from_bytes(1 << 20)),
            merge_output: true,
            notify: true,
            db: Some("/var/lib/jobctl/h.db".into()),
            working_directory: Some("/srv".into()),
            keep_runs: Some(0),
            keep_age: Some(Timespan::INFINITY),
            max_output: Some(ByteSize::from_bytes(0)),
            command: words(&["/bin/sh", "-c", "exit 3"]),
            ..ShimArgs::default()
        };
        let rendered = args.to_args();
        let clap = parse_with_clap(&rendered).expect("clap reads the rendered line");
        assert_eq!(ShimArgs::from(clap).with_defaults(), args.with_defaults());
    }

    #[test]
    fn the_shim_refuses_what_the_parsers_take() {
        let good = ShimArgs {
            job: "j".into(),
            command: words(&["true"]),
            ..ShimArgs::default()
        };
        assert_eq!(bad_arguments(&good), None);
        for (args, problem) in [
            (
                ShimArgs {
                    job: "a b".into(),
                    ..good.clone()
                },
                "--job",
            ),
            (
                ShimArgs {
                    retry_attempts: Some(0),
                    ..good.clone()
                },
                "--retry-attempts 0",
            ),
            (
                ShimArgs {
                    retry_attempts: Some(101),
                    ..good.clone()
                },
                "--retry-attempts 101",
            ),
            (
                ShimArgs {
                    retry_backoff: Some(0.5),
                    ..good.clone()
                },
                "--retry-backoff 0.5",
            ),
            (
                ShimArgs {
                    retry_backoff: Some(f64::INFINITY),
                    ..good.clone()
                },
                "--retry-backoff inf",
            ),
        ] {
            let said = bad_arguments(&args).unwrap_or_default();
            assert!(said.starts_with(problem), "{args:?}: {said}");
        }
    }
}
