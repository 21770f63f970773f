//! The run shim's command line, defined once.
//!
//! Every job's `ExecStart=` is `jobctl [--user] exec OPTIONS -- COMMAND…`
//! (docs/design.md, "The shim's command line"). The renderer writes the
//! options with [`ShimArgs::to_args`], the shim reads them back with
//! [`ShimArgs::parse`] (the fast path of every run), and clap's description
//! of `jobctl exec` (for `--help` and for the messages about a command line
//! the fast parser declines) takes its flag names from [`flag`] and its
//! defaults from the constants here. A property test checks that whatever
//! is rendered parses back to the same value.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::duration::Timespan;
use crate::size::ByteSize;

/// The flags' names, without their leading `--`.
pub mod flag {
    pub const JOB: &str = "job";
    pub const TIMEOUT: &str = "timeout";
    pub const NOT_AFTER: &str = "not-after";
    pub const RETRY_ATTEMPTS: &str = "retry-attempts";
    pub const RETRY_DELAY: &str = "retry-delay";
    pub const RETRY_BACKOFF: &str = "retry-backoff";
    pub const RETRY_MAX_DELAY: &str = "retry-max-delay";
    pub const OUTPUT_LIMIT: &str = "output-limit";
    pub const MERGE_OUTPUT: &str = "merge-output";
    pub const NOTIFY: &str = "notify";
    pub const DB: &str = "db";
    pub const TRIGGER: &str = "trigger";
    pub const WORKING_DIRECTORY: &str = "working-directory";
    pub const KEEP_RUNS: &str = "keep-runs";
    pub const KEEP_AGE: &str = "keep-age";
    pub const MAX_OUTPUT: &str = "max-output";
    pub const DB_TIMEOUT: &str = "db-timeout";

    /// The flags that take no value.
    pub const BARE: [&str; 2] = [MERGE_OUTPUT, NOTIFY];

    /// Every flag, in the order [`super::ShimArgs::to_args`] writes them.
    pub const ALL: [&str; 17] = [
        JOB,
        TIMEOUT,
        NOT_AFTER,
        RETRY_ATTEMPTS,
        RETRY_DELAY,
        RETRY_BACKOFF,
        RETRY_MAX_DELAY,
        OUTPUT_LIMIT,
        MERGE_OUTPUT,
        NOTIFY,
        DB,
        WORKING_DIRECTORY,
        KEEP_RUNS,
        KEEP_AGE,
        MAX_OUTPUT,
        TRIGGER,
        DB_TIMEOUT,
    ];
}

/// What started a run, as `--trigger` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShimTrigger {
    Timer,
    Manual,
    Shell,
}

impl ShimTrigger {
    /// `--trigger`'s values.
    pub const NAMES: [&'static str; 3] = ["timer", "manual", "shell"];

    pub fn as_str(self) -> &'static str {
        match self {
            ShimTrigger::Timer => "timer",
            ShimTrigger::Manual => "manual",
            ShimTrigger::Shell => "shell",
        }
    }
}

impl fmt::Display for ShimTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `--trigger` value that is not one of [`ShimTrigger::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a trigger (timer, manual or shell)")]
pub struct BadTrigger(String);

impl FromStr for ShimTrigger {
    type Err = BadTrigger;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "timer" => Ok(ShimTrigger::Timer),
            "manual" => Ok(ShimTrigger::Manual),
            "shell" => Ok(ShimTrigger::Shell),
            other => Err(BadTrigger(other.to_string())),
        }
    }
}

/// `jobctl exec`'s arguments: each option as given on the command line
/// (`None`: not given, its default applies; see the accessors), then the
/// command.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShimArgs {
    pub job: String,
    pub timeout: Option<Timespan>,
    pub not_after: Option<jiff::Timestamp>,
    pub retry_attempts: Option<u32>,
    pub retry_delay: Option<Timespan>,
    pub retry_backoff: Option<f64>,
    pub retry_max_delay: Option<Timespan>,
    pub output_limit: Option<ByteSize>,
    pub merge_output: bool,
    /// Wake jobctl's watch once the run is recorded (jobs with notification
    /// channels).
    pub notify: bool,
    pub db: Option<PathBuf>,
    pub trigger: Option<ShimTrigger>,
    pub working_directory: Option<PathBuf>,
    pub keep_runs: Option<u64>,
    pub keep_age: Option<Timespan>,
    pub max_output: Option<ByteSize>,
    pub db_timeout: Option<Timespan>,
    pub command: Vec<OsString>,
}

impl ShimArgs {
    /// Attempts in all, the first included.
    pub const DEFAULT_RETRY_ATTEMPTS: u32 = 1;
    pub const DEFAULT_RETRY_DELAY: Timespan = Timespan::ZERO;
    pub const DEFAULT_RETRY_BACKOFF: f64 = 1.0;
    /// Output kept per run.
    pub const DEFAULT_OUTPUT_LIMIT: ByteSize = ByteSize::from_bytes(4 << 20);
    /// How long the completing history write waits for other writers.
    pub const DEFAULT_DB_TIMEOUT: Timespan = Timespan::from_secs(60);

    pub fn retry_attempts(&self) -> u32 {
        self.retry_attempts.unwrap_or(Self::DEFAULT_RETRY_ATTEMPTS)
    }

    pub fn retry_delay(&self) -> Timespan {
        self.retry_delay.unwrap_or(Self::DEFAULT_RETRY_DELAY)
    }

    pub fn retry_backoff(&self) -> f64 {
        self.retry_backoff.unwrap_or(Self::DEFAULT_RETRY_BACKOFF)
    }

    pub fn output_limit(&self) -> ByteSize {
        self.output_limit.unwrap_or(Self::DEFAULT_OUTPUT_LIMIT)
    }

    pub fn db_timeout(&self) -> Timespan {
        self.db_timeout.unwrap_or(Self::DEFAULT_DB_TIMEOUT)
    }

    /// The same arguments with every default written out: two command lines
    /// that mean the same have equal `with_defaults()`.
    pub fn with_defaults(mut self) -> ShimArgs {
        self.retry_attempts = Some(self.retry_attempts());
        self.retry_delay = Some(self.retry_delay());
        self.retry_backoff = Some(self.retry_backoff());
        self.output_limit = Some(self.output_limit());
        self.db_timeout = Some(self.db_timeout());
        self
    }

    /// The words after `exec`: each option given, as `--name VALUE` (the
    /// flag `--merge-output` bare), in [`flag::ALL`]'s order, then `--` and
    /// the command.
    ///
    /// [`ShimArgs::parse`] reads them back to the same value when every
    /// value is one the shim's fast parser takes: not empty, not starting
    /// with `-`, UTF-8 (what the renderer writes: job names, absolute paths,
    /// systemd durations and sizes, finite backoff factors of at least 1).
    pub fn to_args(&self) -> Vec<OsString> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        fn text<T: fmt::Display>(value: &Option<T>) -> Option<String> {
            value.as_ref().map(ToString::to_string)
        }
        // Each flag's value in `flag::ALL`'s order (the bare flags have
        // none: an empty one stands for "given").
        let values: [Option<String>; 17] = [
            Some(self.job.clone()),
            text(&self.timeout),
            text(&self.not_after),
            text(&self.retry_attempts),
            text(&self.retry_delay),
            text(&self.retry_backoff),
            text(&self.retry_max_delay),
            text(&self.output_limit),
            self.merge_output.then(String::new),
            self.notify.then(String::new),
            path(&self.db),
            path(&self.working_directory),
            text(&self.keep_runs),
            text(&self.keep_age),
            text(&self.max_output),
            text(&self.trigger),
            text(&self.db_timeout),
        ];
        let mut out: Vec<OsString> = Vec::with_capacity(2 * values.len() + self.command.len());
        for (name, value) in flag::ALL.iter().zip(values) {
            let Some(value) = value else { continue };
            out.push(format!("--{name}").into());
            if !flag::BARE.contains(name) {
                out.push(value.into());
            }
        }
        out.push("--".into());
        out.extend(self.command.iter().cloned());
        out
    }

    /// Parses the words after `exec` in the plain forms a rendered
    /// `ExecStart=` uses: each option once, as `--name VALUE` or
    /// `--name=VALUE`, with a value that parses and neither is empty nor
    /// starts with `-` (and the flags `--merge-output` and `--notify`,
    /// bare), then `--` and
    /// at least one word of command. Anything else (help, an unknown or
    /// repeated option, a bad value, a missing `--job` or command) is
    /// `None`: the caller hands it to clap, whose messages explain it.
    ///
    /// This is the shim's start-up path for every run of every job, which is
    /// why it does not build clap's command (a measurable share of the
    /// shim's start). Values that the parser takes but the shim refuses
    /// (a bad job name, attempts out of range) are the shim's to check.
    pub fn parse(args: &[OsString]) -> Option<ShimArgs> {
        fn set<T: FromStr>(slot: &mut Option<T>, value: &str) -> Option<()> {
            if slot.is_some() {
                return None;
            }
            *slot = Some(value.parse().ok()?);
            Some(())
        }
        let mut parsed = ShimArgs::default();
        let mut job: Option<String> = None;
        let mut i = 0;
        let command = loop {
            let arg = args.get(i)?.to_str()?;
            if arg == "--" {
                break args[i + 1..].to_vec();
            }
            let arg = arg.strip_prefix("--")?;
            // The flags without a value (clap refuses them repeated or with
            // `=VALUE`; so does this, by declining).
            let bare = match arg {
                flag::MERGE_OUTPUT => Some(&mut parsed.merge_output),
                flag::NOTIFY => Some(&mut parsed.notify),
                _ => None,
            };
            if let Some(given) = bare {
                if *given {
                    return None;
                }
                *given = true;
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
                flag::JOB => set(&mut job, value)?,
                flag::TIMEOUT => set(&mut parsed.timeout, value)?,
                flag::NOT_AFTER => set(&mut parsed.not_after, value)?,
                flag::RETRY_ATTEMPTS => set(&mut parsed.retry_attempts, value)?,
                flag::RETRY_DELAY => set(&mut parsed.retry_delay, value)?,
                flag::RETRY_BACKOFF => set(&mut parsed.retry_backoff, value)?,
                flag::RETRY_MAX_DELAY => set(&mut parsed.retry_max_delay, value)?,
                flag::OUTPUT_LIMIT => set(&mut parsed.output_limit, value)?,
                flag::DB => set(&mut parsed.db, value)?,
                flag::TRIGGER => set(&mut parsed.trigger, value)?,
                flag::WORKING_DIRECTORY => set(&mut parsed.working_directory, value)?,
                flag::KEEP_RUNS => set(&mut parsed.keep_runs, value)?,
                flag::KEEP_AGE => set(&mut parsed.keep_age, value)?,
                flag::MAX_OUTPUT => set(&mut parsed.max_output, value)?,
                flag::DB_TIMEOUT => set(&mut parsed.db_timeout, value)?,
                _ => return None,
            }
            i += 1;
        };
        if command.is_empty() {
            return None;
        }
        parsed.job = job?;
        parsed.command = command;
        Some(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::option::of;
    use proptest::prelude::*;

    fn words(line: &[&str]) -> Vec<OsString> {
        line.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_what_a_unit_says() {
        let args = ShimArgs::parse(&words(&[
            "--job",
            "backup",
            "--timeout",
            "2h 30min",
            "--retry-attempts=3",
            "--merge-output",
            "--trigger",
            "timer",
            "--",
            "/bin/sh",
            "-c",
            "exit 3",
        ]))
        .unwrap();
        assert_eq!(args.job, "backup");
        assert_eq!(args.timeout, Some(Timespan::from_secs(9000)));
        assert_eq!(args.retry_attempts(), 3);
        assert!(args.merge_output);
        assert_eq!(args.trigger, Some(ShimTrigger::Timer));
        assert_eq!(args.command, words(&["/bin/sh", "-c", "exit 3"]));
        // Defaults for what is not given.
        assert_eq!(args.retry_delay, None);
        assert_eq!(args.retry_delay(), ShimArgs::DEFAULT_RETRY_DELAY);
        assert_eq!(args.output_limit().bytes(), 4 << 20);
        assert_eq!(args.db_timeout(), Timespan::from_secs(60));
        assert_eq!(args.retry_backoff(), 1.0);
    }

    #[test]
    fn writes_only_what_is_given_in_a_fixed_order() {
        let args = ShimArgs {
            job: "j".into(),
            timeout: Some(Timespan::from_secs(3600)),
            retry_delay: Some(Timespan::ZERO),
            merge_output: true,
            db: Some("/var/lib/x.db".into()),
            command: words(&["a", "--", "-b"]),
            ..ShimArgs::default()
        };
        assert_eq!(
            args.to_args(),
            words(&[
                "--job",
                "j",
                "--timeout",
                "1h",
                "--retry-delay",
                "0",
                "--merge-output",
                "--db",
                "/var/lib/x.db",
                "--",
                "a",
                "--",
                "-b"
            ])
        );
    }

    #[test]
    fn trigger_names_are_the_values() {
        for name in ShimTrigger::NAMES {
            assert_eq!(name.parse::<ShimTrigger>().unwrap().as_str(), name);
        }
        assert!("cron".parse::<ShimTrigger>().is_err());
    }

    /// A value the renderer can write: not empty, no leading `-`.
    fn word() -> impl Strategy<Value = String> {
        "[^-\\x00][^\\x00]{0,30}"
    }

    fn timespan() -> impl Strategy<Value = Timespan> {
        prop_oneof![
            Just(Timespan::ZERO),
            Just(Timespan::INFINITY),
            (0u64..10_000_000_000).prop_map(Timespan::from_usec),
            any::<u64>().prop_map(Timespan::from_usec),
        ]
    }

    fn size() -> impl Strategy<Value = ByteSize> {
        prop_oneof![
            (0u64..64).prop_map(|n| ByteSize::from_bytes(n << 20)),
            any::<u64>().prop_map(ByteSize::from_bytes),
        ]
    }

    fn timestamp() -> impl Strategy<Value = jiff::Timestamp> {
        (0i64..253_402_300_799, 0i32..1_000_000_000)
            .prop_map(|(s, n)| jiff::Timestamp::new(s, n).unwrap_or(jiff::Timestamp::UNIX_EPOCH))
    }

    fn backoff() -> impl Strategy<Value = f64> {
        prop_oneof![Just(1.0f64), 1.0f64..1e6, Just(f64::INFINITY)]
    }

    fn path() -> impl Strategy<Value = PathBuf> {
        "/[^\\x00]{0,40}".prop_map(PathBuf::from)
    }

    fn trigger() -> impl Strategy<Value = ShimTrigger> {
        prop_oneof![
            Just(ShimTrigger::Timer),
            Just(ShimTrigger::Manual),
            Just(ShimTrigger::Shell)
        ]
    }

    /// Any words at all, at least one.
    fn command() -> impl Strategy<Value = Vec<OsString>> {
        use proptest::collection::vec;
        use std::os::unix::ffi::OsStringExt;
        vec(vec(1u8..=255, 0..12).prop_map(OsString::from_vec), 1..5)
    }

    prop_compose! {
        /// Arguments the renderer can write.
        fn shim_args()(
            job in word(),
            (timeout, retry_delay, retry_max_delay, keep_age, db_timeout) in
                (of(timespan()), of(timespan()), of(timespan()), of(timespan()), of(timespan())),
            (output_limit, max_output) in (of(size()), of(size())),
            (not_after, retry_attempts, retry_backoff, keep_runs) in
                (of(timestamp()), of(any::<u32>()), of(backoff()), of(any::<u64>())),
            (db, working_directory, trigger) in (of(path()), of(path()), of(trigger())),
            (merge_output, notify) in (any::<bool>(), any::<bool>()),
            command in command(),
        ) -> ShimArgs {
            ShimArgs {
                job,
                timeout,
                not_after,
                retry_attempts,
                retry_delay,
                retry_backoff,
                retry_max_delay,
                output_limit,
                merge_output,
                notify,
                db,
                trigger,
                working_directory,
                keep_runs,
                keep_age,
                max_output,
                db_timeout,
                command,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever the renderer writes, the shim reads back as written.
        #[test]
        fn rendered_arguments_parse_back_to_the_same_value(args in shim_args()) {
            let rendered = args.to_args();
            prop_assert_eq!(ShimArgs::parse(&rendered), Some(args.clone()), "{:?}", rendered);
            // And in the `--name=VALUE` spelling, too.
            let mut joined: Vec<OsString> = Vec::new();
            let mut words = rendered.iter();
            while let Some(w) = words.next() {
                let text = w.to_string_lossy();
                if text == "--" {
                    joined.push(w.clone());
                    joined.extend(words.by_ref().cloned());
                    break;
                }
                if flag::BARE.iter().any(|f| text == format!("--{f}")) {
                    joined.push(w.clone());
                } else if let Some(value) = words.next() {
                    joined.push(format!("{text}={}", value.to_string_lossy()).into());
                }
            }
            prop_assert_eq!(ShimArgs::parse(&joined), Some(args));
        }
    }
}
