//! The job model: what one job file says, checked and resolved.
//!
//! [`load_job`] turns a job file's text into a [`Job`], or into the complete
//! list of what is wrong with it. A job file and the `[defaults]` table of
//! the global configuration share one decoder ([`JobSpec`]): defaults are a
//! partial job that each job file overrides key by key (the `environment`
//! table is merged variable by variable).
//!
//! The reference for every key is docs/job-file.md; keep the two in step.
//!
//! Here: the model ([`Job`] and its parts) and loading; `keys.rs` the key
//! tables, `decode.rs` the decoder, `resolve.rs` defaults and the rules that
//! span keys, `checks.rs` the checks against the job's surroundings.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Serialize;
use toml::de::{DeTable, DeValue};

use crate::config::Config;
use crate::context::{Mode, PathInspector, ZoneLookup};
use crate::diag::{Diagnostic, Diagnostics};
use crate::directives::{self, Section, SystemdTarget};
use crate::duration::Timespan;
use crate::escape;
use crate::naming::{self, JobName};
use crate::render;
use crate::schedule::{self, Schedule};
use crate::size::ByteSize;
use crate::walk::{self, Sp, TableReader};

mod chain;
mod checks;
mod decode;
mod keys;
mod resolve;

pub use chain::{ChainProblems, ChainTarget, Chained, Place, chain_problems};
use checks::*;
pub use decode::JobSpec;
pub(crate) use decode::decode_defaults;
use keys::*;
pub use keys::{DEFAULTABLE_KEYS, JOB_KEYS, KEY_ALIASES};
use resolve::*;

/// The timeout of a job that sets none, anywhere. A oneshot service has no
/// start timeout of its own, so without one a hung run would block its timer
/// forever.
pub const DEFAULT_TIMEOUT: Timespan = Timespan::from_secs(3600);

/// How the job's command is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// `command = [...]`: run directly, no shell.
    Argv { argv: Vec<String> },
    /// `shell = "..."`: run by `SHELL -c`, `/bin/sh` unless `shell_path`
    /// says otherwise.
    Shell { script: String, shell: String },
}

/// The shell a `shell` script runs in when no `shell_path` is set: POSIX
/// sh (dash on Debian and Ubuntu, so no bash features such as `$RANDOM`,
/// arrays or `[[`).
pub const DEFAULT_SHELL: &str = "/bin/sh";

impl Command {
    /// The argv that runs the command.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Argv { argv } => argv.clone(),
            Command::Shell { script, shell } => vec![shell.clone(), "-c".into(), script.clone()],
        }
    }
}

/// The most attempts a retry policy may have, the first included (job files
/// and the shim's `--retry-attempts` alike).
pub const MAX_RETRY_ATTEMPTS: u32 = 100;

/// `retry = { attempts, delay, backoff, max_delay }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retry {
    /// Attempts in all, the first run included.
    pub attempts: u32,
    pub delay: Timespan,
    pub backoff: f64,
    pub max_delay: Option<Timespan>,
}

/// Timer behaviour.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimerOptions {
    pub persistent: bool,
    pub randomized_delay: Option<Timespan>,
    pub accuracy: Option<Timespan>,
    pub on_boot: Option<Timespan>,
}

/// Service hardening and resources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceOptions {
    pub nice: Option<i32>,
    /// As systemd spells it: a size in bytes, a percentage or `infinity`.
    pub memory_max: Option<String>,
    /// A percentage, e.g. `50%`.
    pub cpu_quota: Option<String>,
    pub io_weight: Option<u16>,
    pub private_tmp: Option<bool>,
    /// `yes`, `no`, `full` or `strict`.
    pub protect_system: Option<String>,
    pub no_new_privileges: Option<bool>,
}

/// Raw directives from the `*_extra` tables, in file order per section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtraDirectives {
    pub unit: Vec<(String, String)>,
    pub service: Vec<(String, String)>,
    pub timer: Vec<(String, String)>,
}

/// A valid job, with the configuration's defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub name: JobName,
    /// The job file, as the caller named it.
    pub source: String,
    pub description: Option<String>,
    pub command: Command,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    pub group: Option<String>,
    pub dynamic_user: bool,
    pub environment: BTreeMap<String, String>,
    pub environment_files: Vec<String>,
    pub timeout: Timespan,
    pub stdin: Option<String>,
    /// Empty for a manual-only job.
    pub schedules: Vec<Schedule>,
    pub timezone: Option<String>,
    pub timer: TimerOptions,
    pub service: ServiceOptions,
    pub after: Vec<String>,
    pub wants: Vec<String>,
    /// Started when a run succeeds (`OnSuccess=`, systemd ≥ 249): other jobs
    /// of the folder, or units.
    pub on_success: Vec<Chained>,
    /// Started when a run fails (`OnFailure=`): other jobs of the folder, or
    /// units (`notify@%n.service`).
    pub on_failure: Vec<Chained>,
    pub extra: ExtraDirectives,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub tags: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub enabled: bool,
    /// The last day the job may run, in the job's time zone.
    pub not_after: Option<jiff::civil::Date>,
    pub retry: Option<Retry>,
    pub output_limit: Option<ByteSize>,
    /// Both output streams on one pipe (the shim's `--merge-output`): the
    /// history keeps their exact order but no longer tells them apart.
    pub merge_output: bool,
    /// Notifications: channels, threshold, overdue grace, overrun warning
    /// ([`crate::notify`]).
    pub notify: crate::notify::JobNotify,
}

impl Job {
    /// True for a job with no schedule: it runs only when triggered.
    pub fn is_manual(&self) -> bool {
        self.schedules.is_empty() && self.timer.on_boot.is_none()
    }

    /// Why the job will never run again on its own: each of its schedules
    /// can never fire (see [`schedule::never_fires`]). `None` when one can,
    /// for jobs without a calendar schedule, and for expired jobs (their
    /// end has passed: that is `expired`, not this).
    pub fn never_fires(&self, now: &Now<'_>, zones: &dyn ZoneLookup) -> Option<String> {
        if self.schedules.is_empty() || self.timer.on_boot.is_some() {
            return None;
        }
        let window = window(now, self.not_after, self.timezone.as_deref(), zones)?;
        let mut reasons = Vec::new();
        for schedule in &self.schedules {
            let why = schedule::never_fires(schedule, self.timezone.as_deref(), &window, zones)?;
            reasons.push(format!(
                "{} can never fire: {}",
                schedule.subject(),
                why.why(self.not_after)
            ));
        }
        Some(reasons.join("; "))
    }

    /// Whether the job runs as root (system mode, no other user).
    pub fn runs_as_root(&self) -> bool {
        runs_as_root(self.user.as_deref(), self.dynamic_user)
    }
}

fn runs_as_root(user: Option<&str>, dynamic_user: bool) -> bool {
    !dynamic_user && user.is_none_or(|u| u == "root" || u == "0")
}

/// One job file to load.
#[derive(Debug, Clone, Copy)]
pub struct JobSource<'a> {
    /// How to name the file in messages (and in the unit header).
    pub path: &'a str,
    /// The file name without `.toml`: the job's name.
    pub stem: &'a str,
    pub text: &'a str,
}

/// The outcome of loading one job file: the job when it is valid, and every
/// diagnostic (errors and warnings) either way.
#[derive(Debug, Clone)]
pub struct LoadedJob {
    pub job: Option<Job>,
    pub diagnostics: Vec<Diagnostic>,
}

/// What loading needs besides the file.
pub struct LoadContext<'a> {
    pub mode: Mode,
    pub config: &'a Config,
    pub zones: &'a dyn ZoneLookup,
    /// When set, the files that decide what a root job runs
    /// (`environment_file`) must pass the ownership rule
    /// ([`crate::ownership`]). The binary sets it in system mode as root,
    /// where it also checks the job files themselves.
    pub root_files: Option<&'a dyn PathInspector>,
    /// When set, schedules that can never fire after this instant (or
    /// before the job's end) are reported: an error when no schedule of the
    /// job can fire, a warning when one of several cannot (`validate`,
    /// `apply`).
    pub now: Option<Now<'a>>,
    /// When set, `*_extra` directives this systemd does not know yet are
    /// refused ([`crate::directives`]).
    pub systemd: Option<SystemdTarget>,
}

/// The present, for judging schedules: the instant and the host's zone
/// (for jobs without a `timezone`).
#[derive(Debug, Clone, Copy)]
pub struct Now<'a> {
    pub instant: jiff::Timestamp,
    pub local: &'a jiff::tz::TimeZone,
}

/// Loads one job file. Never panics, whatever the input.
pub fn load_job(source: JobSource<'_>, ctx: &LoadContext<'_>) -> LoadedJob {
    let mut diags = Diagnostics::new(source.path, source.text);
    let job = load_into(source, ctx, &mut diags);
    let diagnostics = diags.into_vec();
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    LoadedJob {
        job: if has_errors { None } else { job },
        diagnostics,
    }
}

fn load_into(
    source: JobSource<'_>,
    ctx: &LoadContext<'_>,
    diags: &mut Diagnostics<'_>,
) -> Option<Job> {
    let name = match JobName::new(source.stem) {
        Ok(name) => Some(name),
        Err(message) => {
            diags.push(
                crate::diag::Severity::Error,
                None,
                None,
                format!("bad file name: {message}"),
                Some("rename the file: the job's name is the file name without .toml, and it becomes part of unit names".into()),
            );
            None
        }
    };
    let document = walk::parse_document(source.text, diags)?;
    let reader = TableReader::new("", document.get_ref(), JOB_KEYS, KEY_ALIASES, diags);
    let spec = JobSpec::decode(&reader, ctx.mode, ctx.zones, diags);
    if let Some(target) = &ctx.systemd {
        for (section, name, span) in &spec.extra_names {
            if let Some(message) = directives::too_new(*section, name, target) {
                diags.error(
                    span.clone(),
                    &format!("{}.{name}", section.extra_key()),
                    message,
                    Some("remove it, or install the job on a newer systemd".to_string()),
                );
            }
        }
    }
    resolve(spec, &ctx.config.defaults, name, source.path, ctx, diags)
}

/// The waits between attempts of a retry policy, in order (one fewer than
/// the attempts), each computed when asked for: nothing is allocated, so
/// the work is bounded by the attempts actually made, whatever `attempts`
/// says.
pub fn retry_waits(retry: &Retry) -> impl Iterator<Item = Timespan> + use<> {
    let (delay, backoff, max_delay) =
        (retry.delay.as_usec() as f64, retry.backoff, retry.max_delay);
    (1..retry.attempts).scan(delay, move |delay, _| {
        let mut wait = delay.min(u64::MAX as f64 / 2.0) as u64;
        if let Some(max) = max_delay {
            wait = wait.min(max.as_usec());
        }
        *delay *= backoff;
        Some(Timespan::from_usec(wait))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(attempts: u32, delay: &str, backoff: f64, max: Option<&str>) -> Retry {
        Retry {
            attempts,
            delay: delay.parse().unwrap(),
            backoff,
            max_delay: max.map(|m| m.parse().unwrap()),
        }
    }

    #[test]
    fn retry_waits_grow_by_the_backoff_up_to_the_cap() {
        let waits: Vec<String> = retry_waits(&retry(5, "10s", 2.0, Some("50s")))
            .map(|w| w.to_string())
            .collect();
        assert_eq!(waits, ["10s", "20s", "40s", "50s"]);
        assert_eq!(retry_waits(&retry(1, "10s", 2.0, None)).count(), 0);
        // Huge delays saturate instead of overflowing.
        let last = retry_waits(&retry(100, "1y", 10.0, None)).last().unwrap();
        assert_eq!(last.as_usec(), u64::MAX / 2 + 1);
    }

    #[test]
    fn retry_waits_are_computed_only_when_asked_for() {
        // Any attempt count costs only the waits taken: nothing is collected.
        let mut waits = retry_waits(&retry(u32::MAX, "1s", 1.0, None));
        assert_eq!(waits.next(), Some(Timespan::from_secs(1)));
        assert_eq!(waits.size_hint().1, Some(u32::MAX as usize - 2));
    }
}
