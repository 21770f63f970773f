//! Rendering a [`Job`] into its `.service`/`.timer` pair.
//!
//! The units are what a careful systemd administrator would write by hand:
//! `Type=oneshot`, a start timeout, `KillMode=mixed` so that the run shim
//! (`jobctl exec`) receives the stop signal first and can record the run, and
//! `WantedBy=timers.target` on the timer. Both units carry jobctl's ownership
//! mark (`X-Jobctl-Job=`) and a hash of their own contents (`X-Jobctl-Hash=`:
//! a change to the service alone leaves the timer's hash as it was); systemd
//! ignores `X-` keys. Every value is encoded by [`crate::escape`].

use std::ffi::OsString;
use std::fmt::Write;
use std::path::PathBuf;

use jiff::tz::TimeZone;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::HistoryConfig;
use crate::context::{Mode, ZoneLookup};
use crate::directives::Section;
use crate::duration::Timespan;
use crate::escape;
use crate::job::Job;
use crate::naming::UnitNames;
use crate::schedule::Trigger;
use crate::shim::ShimArgs;

/// The accuracy used when a job sets none. systemd's default (1min) lets a
/// timer fire up to a minute late to batch wake-ups; jobs moving from cron
/// expect to start on time, and servers do not need the power saving.
pub const DEFAULT_ACCURACY: Timespan = Timespan::from_secs(1);

/// The ownership mark: present in every unit jobctl writes, absent elsewhere.
pub const OWNER_KEY: &str = "X-Jobctl-Job";
/// The content hash key.
pub const HASH_KEY: &str = "X-Jobctl-Hash";
/// The job file the unit came from.
pub const SOURCE_KEY: &str = "X-Jobctl-Source";

const HASH_PLACEHOLDER: &str = "@JOBCTL-HASH@";

/// One unit file: its name and contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitFile {
    pub name: String,
    pub contents: String,
}

/// A job rendered into units, with what apply needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedJob {
    pub job: String,
    pub service: UnitFile,
    /// `None` for a manual-only job.
    pub timer: Option<UnitFile>,
    /// `false` when the job file says `enabled = false`.
    pub timer_enabled: bool,
    /// The first instant the job may no longer run (`not_after` + 1 day, at
    /// midnight in the job's time zone).
    pub not_after: Option<jiff::Timestamp>,
    /// The job's hash: both units' contents (without their own hash lines).
    /// Operator overrides are recorded against it, so any change of the job
    /// file that changes a unit drops them. Not written into the units,
    /// which carry their own hashes.
    pub hash: String,
    /// Where the job's shim records its runs: the folder under the state
    /// folder's `users/` (`StateDirectory=jobctl/users/<user>`, for jobs that
    /// run as another user in system mode), or `None` for the main database
    /// (or the configured `[history] db`). [`users_folder_of`] reads it back
    /// from an installed service.
    #[serde(skip)]
    pub users_folder: Option<String>,
}

/// What rendering needs besides the job.
pub struct RenderOptions<'a> {
    pub mode: Mode,
    pub unit_prefix: &'a str,
    /// Absolute path of the jobctl binary for `ExecStart=`.
    pub jobctl_path: &'a str,
    /// The host's zone, for `not_after` of jobs without a `timezone`.
    pub local_zone: &'a TimeZone,
    pub zones: &'a dyn ZoneLookup,
    pub history: &'a HistoryConfig,
    /// The target systemd's version, when known: directives it does not
    /// support are refused.
    pub systemd_version: Option<u32>,
    /// Per-user mode: the folder the shim records in when `$XDG_STATE_HOME`
    /// is set (`$XDG_STATE_HOME/jobctl`); `None` for the default
    /// (`%h/.local/state/jobctl`). Unused in system mode.
    pub user_state_dir: Option<&'a str>,
}

/// Why a valid job could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RenderError {
    #[error("time zone \"{0}\" is not available on this host")]
    UnknownZone(String),
    #[error("not_after {date}: the day after it does not exist in {zone}")]
    BadDate { date: String, zone: String },
    #[error("{section}_extra.{directive} needs systemd {needed}; the target systemd is {running}")]
    UnsupportedDirective {
        section: &'static str,
        directive: String,
        needed: u32,
        running: u32,
    },
    #[error("on_success (OnSuccess=) needs systemd {needed}; the target systemd is {running}")]
    UnsupportedKey { needed: u32, running: u32 },
    #[error("a value cannot be written into the unit: {0}")]
    Encoding(#[from] escape::EscapeError),
    #[error(
        "the history folder {path} cannot be named in BindPaths= (it {reason}), which this job's \
         sandboxing needs to keep its runs recorded; choose a [history] db path without \
         whitespace, quotes, backslashes or colons"
    )]
    HistoryPath { path: String, reason: &'static str },
    #[error("`{}`: {}", .0.key, .0.message)]
    TooLarge(TooLarge),
}

/// The longest line systemd 252 reads from a unit file: it reads lines with
/// a limit of `LONG_LINE_MAX` (1 MiB) and fails the whole unit (`LoadState=
/// error`, "No buffer space available") on a line of that length or more.
pub const UNIT_LINE_MAX: usize = 1024 * 1024 - 1;
/// What `execve` allows for all argument and environment strings and their
/// pointers together: a quarter of the stack limit, 2 MiB under the default
/// 8 MiB `RLIMIT_STACK`.
pub const EXEC_TOTAL_MAX: usize = 2 * 1024 * 1024;
/// The part of [`EXEC_TOTAL_MAX`] kept for the variables systemd adds to a
/// service's environment (`INVOCATION_ID`, `PATH`, `HOME`, the manager's
/// own environment, …) and for `EnvironmentFile=` contents.
pub const EXEC_RESERVE: usize = 64 * 1024;

/// A value that would make a unit systemd cannot load, or a command Linux
/// cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// The job-file key (`command`, `environment.DATA`, `service_extra.X`).
    pub key: String,
    pub message: String,
}

impl TooLarge {
    /// What to do about it.
    pub const HINT: &'static str = "pass large data through a file (the command can read it from a path, or use `environment_file` for variables) instead of the job file";
}

/// Renders a job's units.
pub fn render(job: &Job, opts: &RenderOptions<'_>) -> Result<RenderedJob, RenderError> {
    check_versions(job, opts.systemd_version)?;
    let names = UnitNames::new(opts.unit_prefix, &job.name);
    let not_after = not_after_instant(job, opts)?;
    if let Some(first) = size_problems_at(job, opts, not_after)?.into_iter().next() {
        return Err(RenderError::TooLarge(first));
    }
    let mut service = render_service(job, opts, not_after)?;
    let mut timer = if job.is_manual() {
        None
    } else {
        Some(render_timer(job, &names)?)
    };

    // The job's hash covers both units, computed as jobctl always has (so
    // overrides recorded by earlier versions still match); each unit carries
    // the hash of its own text only.
    let mut parts: Vec<&[u8]> = vec![service.as_bytes()];
    if let Some(timer) = &timer {
        parts.extend([&[0u8][..], timer.as_bytes()]);
    }
    let hash = short_hash(&parts);
    service = service.replace(HASH_PLACEHOLDER, &short_hash(&[service.as_bytes()]));
    timer = timer.map(|t| t.replace(HASH_PLACEHOLDER, &short_hash(&[t.as_bytes()])));

    Ok(RenderedJob {
        job: job.name.to_string(),
        service: UnitFile {
            name: names.service,
            contents: service,
        },
        timer: timer.map(|contents| UnitFile {
            name: names.timer,
            contents,
        }),
        timer_enabled: job.enabled,
        not_after,
        hash,
        users_folder: users_folder(job, opts),
    })
}

/// The prefix of the `StateDirectory=` line of a job that records in a
/// users' folder.
const USERS_STATE_DIRECTORY: &str = "StateDirectory=jobctl/users/";

/// The users' folder a job's runs are recorded in (see
/// [`RenderedJob::users_folder`]): runs of non-root jobs in system mode are
/// recorded in a folder of their own that systemd creates for the job's
/// user (docs/design.md, "Where runs are recorded").
fn users_folder(job: &Job, opts: &RenderOptions<'_>) -> Option<String> {
    (opts.mode == Mode::System && !job.runs_as_root()).then(|| {
        job.user
            .clone()
            .unwrap_or_else(|| format!("{}{}", opts.unit_prefix, job.name))
    })
}

/// The users' folder an installed service records its runs in, read from
/// its `StateDirectory=` line as [`render`] writes it; `None` for the main
/// database.
pub fn users_folder_of(service_text: &str) -> Option<String> {
    service_text.lines().find_map(|line| {
        line.strip_prefix(USERS_STATE_DIRECTORY)
            .map(|owner| owner.trim().to_string())
    })
}

/// The first 128 bits of SHA-256 over `parts`, in hex.
fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    let digest = hasher.finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn check_versions(job: &Job, version: Option<u32>) -> Result<(), RenderError> {
    let Some(running) = version else {
        return Ok(());
    };
    if !job.on_success.is_empty()
        && let Some(needed) = crate::directives::added_in(Section::Unit, "OnSuccess")
        && needed > running
    {
        return Err(RenderError::UnsupportedKey { needed, running });
    }
    let sections: [(&'static str, &Vec<(String, String)>); 3] = [
        ("unit", &job.extra.unit),
        ("service", &job.extra.service),
        ("timer", &job.extra.timer),
    ];
    for (section, directives) in sections {
        let table = match section {
            "unit" => Section::Unit,
            "service" => Section::Service,
            _ => Section::Timer,
        };
        for (name, _) in directives {
            if let Some(needed) = crate::directives::added_in(table, name)
                && needed > running
            {
                return Err(RenderError::UnsupportedDirective {
                    section,
                    directive: name.clone(),
                    needed,
                    running,
                });
            }
        }
    }
    Ok(())
}

fn not_after_instant(
    job: &Job,
    opts: &RenderOptions<'_>,
) -> Result<Option<jiff::Timestamp>, RenderError> {
    let Some(date) = job.not_after else {
        return Ok(None);
    };
    let zone = match &job.timezone {
        Some(name) => opts
            .zones
            .zone(name)
            .ok_or_else(|| RenderError::UnknownZone(name.clone()))?,
        None => opts.local_zone.clone(),
    };
    let bad_date = || RenderError::BadDate {
        date: date.to_string(),
        zone: job
            .timezone
            .clone()
            .unwrap_or_else(|| "the local zone".into()),
    };
    let next_day = date.tomorrow().map_err(|_| bad_date())?;
    let zoned = next_day.to_zoned(zone).map_err(|_| bad_date())?;
    Ok(Some(zoned.timestamp()))
}

/// The header comment of both units.
fn header(out: &mut String, job: &Job) {
    let _ = writeln!(
        out,
        "# Generated by jobctl from {}.",
        escape::comment_text(&job.source)
    );
    out.push_str("# Do not edit: change the job file and run `jobctl apply`.\n");
}

fn unit_section(out: &mut String, job: &Job, description: &str) -> Result<(), RenderError> {
    out.push_str("[Unit]\n");
    let _ = writeln!(out, "Description={}", escape::plain_value(description)?);
    let _ = writeln!(out, "{OWNER_KEY}={}", job.name);
    let _ = writeln!(out, "{SOURCE_KEY}={}", escape::comment_text(&job.source));
    let _ = writeln!(out, "{HASH_KEY}={HASH_PLACEHOLDER}");
    Ok(())
}

fn description(job: &Job) -> String {
    job.description
        .clone()
        .unwrap_or_else(|| format!("jobctl job {}", job.name))
}

fn render_service(
    job: &Job,
    opts: &RenderOptions<'_>,
    not_after: Option<jiff::Timestamp>,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(1024);
    header(&mut out, job);
    unit_section(&mut out, job, &description(job))?;
    for unit in &job.after {
        let _ = writeln!(out, "After={unit}");
    }
    for unit in &job.wants {
        let _ = writeln!(out, "Wants={unit}");
    }
    // Other jobs of the folder by their service's name; units as written.
    for link in &job.on_success {
        let _ = writeln!(out, "OnSuccess={}", link.target.unit(opts.unit_prefix));
    }
    for link in &job.on_failure {
        let _ = writeln!(out, "OnFailure={}", link.target.unit(opts.unit_prefix));
    }
    if !keeps_start_limit(job) {
        // The timer is the job's rate: systemd's default start limit (5
        // starts in 10 s) would refuse scheduled and manual runs of a valid
        // job (docs/design.md, "Start limits").
        out.push_str("StartLimitIntervalSec=0\n");
    }
    for (name, value) in &job.extra.unit {
        let _ = writeln!(out, "{name}={value}");
    }

    out.push_str("\n[Service]\nType=oneshot\n");
    // The working directory is the shim's to enter (`--working-directory`),
    // not systemd's: a missing folder then becomes a recorded `error` run
    // instead of a 200/CHDIR failure before the shim starts.
    let _ = writeln!(out, "ExecStart={}", exec_start(job, opts, not_after)?);
    if let Some(user) = &job.user {
        let _ = writeln!(out, "User={user}");
    }
    if let Some(group) = &job.group {
        let _ = writeln!(out, "Group={group}");
    }
    if job.dynamic_user {
        out.push_str("DynamicUser=yes\n");
    }
    if let Some(owner) = users_folder(job, opts) {
        let _ = writeln!(out, "{USERS_STATE_DIRECTORY}{owner}");
        out.push_str("StateDirectoryMode=0700\n");
    }
    for (key, value) in &job.environment {
        let _ = writeln!(
            out,
            "Environment={}",
            escape::environment_assignment(key, value)?
        );
    }
    for file in &job.environment_files {
        let _ = writeln!(out, "EnvironmentFile={}", escape::plain_value(file)?);
    }
    if let Some(stdin) = &job.stdin {
        // Base64 carries the text exactly (StandardInputText= cannot hold an
        // empty line and always appends a newline).
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(stdin.as_bytes());
        let _ = writeln!(out, "StandardInputData={encoded}");
    }
    let _ = writeln!(out, "TimeoutStartSec={}", job.timeout);
    out.push_str("KillMode=mixed\n");
    let _ = writeln!(out, "SyslogIdentifier={}", job.name);
    let s = &job.service;
    if let Some(nice) = s.nice {
        let _ = writeln!(out, "Nice={nice}");
    }
    if let Some(mem) = &s.memory_max {
        let _ = writeln!(out, "MemoryMax={mem}");
    }
    if let Some(cpu) = &s.cpu_quota {
        let _ = writeln!(out, "CPUQuota={cpu}");
    }
    if let Some(weight) = s.io_weight {
        let _ = writeln!(out, "IOWeight={weight}");
    }
    if let Some(private) = s.private_tmp {
        let _ = writeln!(out, "PrivateTmp={}", yes_no(private));
    }
    if let Some(protect) = &s.protect_system {
        let _ = writeln!(out, "ProtectSystem={protect}");
    }
    if let Some(nnp) = s.no_new_privileges {
        let _ = writeln!(out, "NoNewPrivileges={}", yes_no(nnp));
    }
    if restricts_file_system(job)
        && let Some(dir) = history_bind(job, opts)?
    {
        // The job's sandboxing would make the history folder read-only or
        // hide it: mount it back, writable, into the job's namespace
        // (docs/design.md, "Sandboxing and the history").
        let _ = writeln!(out, "BindPaths=-{dir}");
    }
    for (name, value) in &job.extra.service {
        let _ = writeln!(out, "{name}={value}");
    }
    Ok(out)
}

/// `service_extra` directives that can take write access to files away from
/// the job (a read-only or hidden path, a private tmpfs, another root).
/// Together with `protect_system` and `private_tmp`, these are what makes
/// jobctl mount the history folder into the job's namespace.
const RESTRICTING_DIRECTIVES: &[&str] = &[
    "ProtectHome",
    "ReadOnlyPaths",
    "ReadOnlyDirectories",
    "InaccessiblePaths",
    "InaccessibleDirectories",
    "TemporaryFileSystem",
    "BindReadOnlyPaths",
    "RootDirectory",
    "RootImage",
];

/// Whether the job's service runs in a mount namespace that can make the
/// history folder read-only or hide it. Only then is the folder bound back:
/// without sandboxing, the service gets no mount namespace of its own (which
/// would change how mounts made by the job propagate).
fn restricts_file_system(job: &Job) -> bool {
    let off = |v: &str| {
        v.trim().is_empty() || matches!(v.trim(), "no" | "false" | "0" | "off" | "n" | "f")
    };
    job.service
        .protect_system
        .as_deref()
        .is_some_and(|v| !off(v))
        || job.service.private_tmp == Some(true)
        || job
            .extra
            .service
            .iter()
            .any(|(name, value)| RESTRICTING_DIRECTIVES.contains(&name.as_str()) && !off(value))
}

/// The `BindPaths=` value (without the `-`) for the folder of the database
/// the job's shim writes at a fixed path: the configured `[history] db`, else
/// the main state folder (system mode, root jobs) or the user's (per-user
/// mode). `None` for jobs whose folder is their `StateDirectory=`, which
/// systemd itself keeps writable.
fn history_bind(job: &Job, opts: &RenderOptions<'_>) -> Result<Option<String>, RenderError> {
    if opts.mode == Mode::System && !job.runs_as_root() {
        return Ok(None);
    }
    let configured = opts.history.db.as_deref().map(|db| {
        std::path::Path::new(db)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".to_string())
    });
    let dir = match (configured, opts.mode) {
        (Some(dir), _) => dir,
        (None, Mode::System) => STATE_FOLDER.to_string(),
        (None, Mode::User) => match opts.user_state_dir {
            Some(dir) => dir.to_string(),
            // systemd 252 has no specifier for $XDG_STATE_HOME (%S is
            // ~/.config in per-user mode); this is the shim's default.
            None => return Ok(Some("%h/.local/state/jobctl".to_string())),
        },
    };
    let reason = if dir.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if dir.contains(['"', '\'', '\\']) {
        Some("contains a quote or a backslash")
    } else if dir.contains(':') {
        Some("contains a colon")
    } else if dir.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(RenderError::HistoryPath { path: dir, reason });
    }
    Ok(Some(dir.replace('%', "%%")))
}

/// Where the shim of a root job records in system mode, unless configured.
const STATE_FOLDER: &str = "/var/lib/jobctl";

/// Directives that set a start limit of the job's own.
const START_LIMIT_DIRECTIVES: [&str; 3] = [
    "StartLimitIntervalSec",
    "StartLimitInterval",
    "StartLimitBurst",
];

/// Whether the job's service keeps a start limit: one the job sets itself
/// (`unit_extra`, or the older `[Service]` spellings in `service_extra`), or
/// systemd's default when the job restarts its service (`Restart=` other than
/// `no` in `service_extra`), where the limit is what stops a restart loop.
/// Otherwise jobctl writes `StartLimitIntervalSec=0`.
pub fn keeps_start_limit(job: &Job) -> bool {
    let own = job
        .extra
        .unit
        .iter()
        .chain(&job.extra.service)
        .any(|(name, _)| START_LIMIT_DIRECTIVES.contains(&name.as_str()));
    // The last assignment wins; an empty one resets to the default, `no`.
    let restarts = job
        .extra
        .service
        .iter()
        .rev()
        .find(|(name, _)| name == "Restart")
        .is_some_and(|(_, value)| !matches!(value.trim(), "" | "no"));
    own || restarts
}

fn render_timer(job: &Job, names: &UnitNames) -> Result<String, RenderError> {
    let mut out = String::with_capacity(512);
    header(&mut out, job);
    unit_section(&mut out, job, &description(job))?;
    out.push_str("\n[Timer]\n");
    for schedule in &job.schedules {
        for trigger in schedule.triggers() {
            match trigger {
                Trigger::Calendar(expr) => match &job.timezone {
                    Some(zone) => {
                        let _ = writeln!(out, "OnCalendar={expr} {zone}");
                    }
                    None => {
                        let _ = writeln!(out, "OnCalendar={expr}");
                    }
                },
                Trigger::Boot(delay) => {
                    let _ = writeln!(out, "OnBootSec={delay}");
                }
                Trigger::Interval(every) => {
                    let _ = writeln!(out, "OnActiveSec={every}");
                    let _ = writeln!(out, "OnUnitActiveSec={every}");
                }
            }
        }
    }
    if let Some(delay) = job.timer.on_boot {
        let _ = writeln!(out, "OnBootSec={delay}");
    }
    if job.timer.persistent {
        out.push_str("Persistent=true\n");
    }
    let _ = writeln!(
        out,
        "AccuracySec={}",
        job.timer.accuracy.unwrap_or(DEFAULT_ACCURACY)
    );
    if let Some(delay) = job.timer.randomized_delay {
        let _ = writeln!(out, "RandomizedDelaySec={delay}");
    }
    let _ = writeln!(out, "Unit={}", names.service);
    for (name, value) in &job.extra.timer {
        let _ = writeln!(out, "{name}={value}");
    }
    out.push_str("\n[Install]\nWantedBy=timers.target\n");
    Ok(out)
}

/// `jobctl exec --job NAME [settings] -- ARGV...`, each word encoded.
fn exec_start(
    job: &Job,
    opts: &RenderOptions<'_>,
    not_after: Option<jiff::Timestamp>,
) -> Result<String, RenderError> {
    let words = exec_words(job, opts, not_after);
    let mut line = String::new();
    for (index, word) in words.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        line.push_str(&exec_word(word)?);
    }
    Ok(line)
}

/// The words of `ExecStart=` as systemd passes them to the shim: the
/// binary, `--user` in per-user mode, `exec` and [`shim_args`].
fn exec_words(
    job: &Job,
    opts: &RenderOptions<'_>,
    not_after: Option<jiff::Timestamp>,
) -> Vec<String> {
    let mut words: Vec<String> = vec![opts.jobctl_path.to_string()];
    if opts.mode == Mode::User {
        words.push("--user".into());
    }
    words.push("exec".into());
    // Every word came from a string: nothing is lost.
    words.extend(
        shim_args(job, opts, not_after)
            .to_args()
            .into_iter()
            .map(|w| {
                w.into_string()
                    .unwrap_or_else(|w| w.to_string_lossy().into_owned())
            }),
    );
    words
}

/// The shim's arguments for a job: its timeout always, its other settings
/// and the configuration's `[history]` limits when they are set.
pub fn shim_args(
    job: &Job,
    opts: &RenderOptions<'_>,
    not_after: Option<jiff::Timestamp>,
) -> ShimArgs {
    let history = opts.history;
    let retry = job.retry.as_ref();
    ShimArgs {
        job: job.name.to_string(),
        timeout: Some(job.timeout),
        not_after,
        retry_attempts: retry.map(|r| r.attempts),
        retry_delay: retry.map(|r| r.delay),
        retry_backoff: retry.map(|r| r.backoff),
        retry_max_delay: retry.and_then(|r| r.max_delay),
        output_limit: job.output_limit,
        merge_output: job.merge_output,
        // Only jobs with notification channels wake the watch when a run ends.
        notify: !job.notify.channels.is_empty(),
        // A configured database applies to jobs that run as the configuring
        // user; other users' jobs record in their own state folder.
        db: history
            .db
            .as_ref()
            .filter(|_| opts.mode == Mode::User || job.runs_as_root())
            .map(PathBuf::from),
        working_directory: job.working_directory.as_ref().map(PathBuf::from),
        keep_runs: history.keep_runs.map(u64::from),
        keep_age: history.keep_age,
        max_output: history.max_output,
        trigger: None,
        db_timeout: None,
        command: job.command.argv().into_iter().map(OsString::from).collect(),
    }
}

/// Whether a job's values are small enough that none of the limits of
/// [`size_problems`] can be reached, whatever the escaping (at most 4 bytes
/// per byte) and jobctl's own words: the cheap test done for every job.
pub fn surely_small(job: &Job) -> bool {
    const SMALL: usize = 120 * 1024;
    let argv: usize = match &job.command {
        crate::job::Command::Argv { argv } => argv.iter().map(|w| w.len() + 1).sum(),
        crate::job::Command::Shell { script, shell } => script.len() + shell.len(),
    };
    let env: usize = job
        .environment
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    let extra: usize = [&job.extra.unit, &job.extra.service, &job.extra.timer]
        .iter()
        .flat_map(|e| e.iter())
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    let other = job.description.as_ref().map_or(0, String::len)
        + job.stdin.as_ref().map_or(0, String::len)
        + job.working_directory.as_ref().map_or(0, String::len)
        + job.environment_files.iter().map(String::len).sum::<usize>();
    argv + env + extra + other <= SMALL
}

/// Every value of the job that would make a unit line systemd cannot read
/// ([`UNIT_LINE_MAX`]) or an `execve` Linux refuses ([`EXEC_TOTAL_MAX`]
/// less [`EXEC_RESERVE`]; single values are capped at 32 KiB when the job
/// file is read, below Linux's 128 KiB per string), each with its job-file
/// key.
/// `render` refuses such a job; the loader reports these with the key's
/// position (`jobctl validate`).
pub fn size_problems(job: &Job, opts: &RenderOptions<'_>) -> Result<Vec<TooLarge>, RenderError> {
    let not_after = not_after_instant(job, opts)?;
    size_problems_at(job, opts, not_after)
}

fn size_problems_at(
    job: &Job,
    opts: &RenderOptions<'_>,
    not_after: Option<jiff::Timestamp>,
) -> Result<Vec<TooLarge>, RenderError> {
    let mut out = Vec::new();
    if surely_small(job) {
        return Ok(out);
    }
    let command_key = match job.command {
        crate::job::Command::Argv { .. } => "command",
        crate::job::Command::Shell { .. } => "shell",
    };
    let mut line = |key: String, directive: &str, len: usize| {
        let len = directive.len() + 1 + len;
        if len > UNIT_LINE_MAX {
            out.push(TooLarge {
                key,
                message: format!(
                    "its {directive}= line would be {len} bytes; systemd cannot load a unit file with a line of 1 MiB ({} bytes) or more",
                    UNIT_LINE_MAX + 1
                ),
            });
        }
    };
    line(
        command_key.into(),
        "ExecStart",
        exec_start(job, opts, not_after)?.len(),
    );
    if let Some(d) = &job.description {
        line(
            "description".into(),
            "Description",
            escape::plain_value(d)?.len(),
        );
    }
    for (key, value) in &job.environment {
        let assignment = escape::environment_assignment(key, value)?;
        line(
            format!("environment.{key}"),
            "Environment",
            assignment.len(),
        );
    }
    for file in &job.environment_files {
        line("environment_file".into(), "EnvironmentFile", file.len());
    }
    if let Some(stdin) = &job.stdin {
        line(
            "stdin".into(),
            "StandardInputData",
            stdin.len().div_ceil(3) * 4,
        );
    }
    for (section, extra) in [
        ("unit_extra", &job.extra.unit),
        ("service_extra", &job.extra.service),
        ("timer_extra", &job.extra.timer),
    ] {
        for (name, value) in extra {
            line(format!("{section}.{name}"), name, value.len());
        }
    }

    // What the shim's execve carries: its file name, its words, the
    // environment, and a pointer per string.
    let words = exec_words(job, opts, not_after);
    let argv_bytes: usize =
        opts.jobctl_path.len() + 1 + words.iter().map(|w| w.len() + 1).sum::<usize>();
    let env_bytes: usize = job
        .environment
        .iter()
        .map(|(k, v)| k.len() + v.len() + 2)
        .sum();
    let pointers = 8 * (words.len() + job.environment.len() + 2);
    let budget = EXEC_TOTAL_MAX - EXEC_RESERVE;
    if argv_bytes + env_bytes + pointers > budget {
        out.push(TooLarge {
            key: if env_bytes > argv_bytes {
                "environment".into()
            } else {
                command_key.into()
            },
            message: format!(
                "the command line ({argv_bytes} bytes) and the environment ({env_bytes} bytes) take more than {budget} bytes: Linux starts no program whose arguments and environment exceed 2 MiB (a quarter of the default 8 MiB stack limit; systemd reports status 203/EXEC), and jobctl keeps {} KiB of that for the variables systemd adds",
                EXEC_RESERVE / 1024
            ),
        });
    }
    Ok(out)
}

/// An `ExecStart=` word: bare when it is made only of characters systemd
/// gives no meaning to, quoted and escaped otherwise.
fn exec_word(word: &str) -> Result<String, escape::EscapeError> {
    let plain = !word.is_empty()
        && word != ";"
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '/' | '.' | '_' | '-' | '+' | ',' | ':' | '=' | '@')
        });
    if plain {
        Ok(word.to_string())
    } else {
        escape::exec_arg(word)
    }
}

/// Checks the structure of a rendered unit: only comments, blank lines, the
/// sections jobctl writes (each once, in order) and `Name=value` lines with
/// a directive-shaped name; no control characters, no line continuations;
/// the ownership mark exactly once. Used by tests and the fuzzer to prove
/// that no job file can smuggle a line, a directive or a section in.
pub fn check_unit_shape(text: &str) -> Result<(), String> {
    const ORDER: [&str; 4] = ["[Unit]", "[Service]", "[Timer]", "[Install]"];
    let mut last_section = None;
    let mut owner_marks = 0;
    for (number, line) in text.split('\n').enumerate() {
        let where_ = |what: String| format!("line {}: {what}: {line:?}", number + 1);
        if let Some(c) = line.chars().find(|c| c.is_control()) {
            return Err(where_(format!("control character {c:?}")));
        }
        if line.trim_end().ends_with('\\') {
            return Err(where_("line continuation".into()));
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let index = ORDER
                .iter()
                .position(|s| *s == line)
                .ok_or_else(|| where_("unexpected section".into()))?;
            if last_section.is_some_and(|last| index <= last) {
                return Err(where_("section out of order or repeated".into()));
            }
            last_section = Some(index);
            continue;
        }
        let (name, _) = line
            .split_once('=')
            .ok_or_else(|| where_("not a directive".into()))?;
        crate::naming::check_directive_name(name).map_err(where_)?;
        if last_section.is_none() {
            return Err(where_("directive before any section".into()));
        }
        if name == OWNER_KEY {
            owner_marks += 1;
        }
    }
    if owner_marks != 1 {
        return Err(format!("{owner_marks} ownership marks"));
    }
    Ok(())
}

/// The words of the rendered `ExecStart=` line after `--`: the command as
/// systemd will run it (see [`escape::read_exec_words`]).
pub fn command_words(service_text: &str) -> Result<Vec<String>, String> {
    let line = service_text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .ok_or("no ExecStart= line")?;
    let words = escape::read_exec_words(line)?;
    let separator = words
        .iter()
        .position(|w| w == "--")
        .ok_or("no -- in ExecStart=")?;
    Ok(words[separator + 1..].to_vec())
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::escape::read_exec_words;
    use crate::escape::tests::hostile_values;

    /// The `BindPaths=` line of `body` rendered in `mode`.
    fn bind_line(
        body: &str,
        mode: Mode,
        db: Option<&str>,
        user_state_dir: Option<&str>,
    ) -> Result<Option<String>, RenderError> {
        let history = HistoryConfig {
            db: db.map(str::to_string),
            ..HistoryConfig::default()
        };
        let rendered = render(
            &job_in(body, mode),
            &RenderOptions {
                user_state_dir,
                ..options(mode, &history)
            },
        )?;
        check_unit_shape(&rendered.service.contents).unwrap();
        Ok(rendered
            .service
            .contents
            .lines()
            .find(|l| l.starts_with("BindPaths="))
            .map(str::to_string))
    }

    #[test]
    fn sandboxed_jobs_get_their_history_folder_bound_back() {
        let job = "command = [\"/bin/true\"]\nmanual = true\n";
        let sys = |extra: &str| bind_line(&format!("{job}{extra}"), Mode::System, None, None);
        let root = Some("BindPaths=-/var/lib/jobctl".to_string());
        // No sandboxing: no mount namespace is added.
        assert_eq!(sys("").unwrap(), None);
        assert_eq!(
            sys("protect_system = false\nprivate_tmp = false\n").unwrap(),
            None
        );
        assert_eq!(
            sys("[service_extra]\nProtectHome = \"no\"\n").unwrap(),
            None
        );
        assert_eq!(sys("[service_extra]\nLimitNOFILE = \"8\"\n").unwrap(), None);
        for extra in [
            "protect_system = true\n",
            "protect_system = \"full\"\n",
            "protect_system = \"strict\"\n",
            "private_tmp = true\n",
            "[service_extra]\nReadOnlyPaths = \"/\"\n",
            "[service_extra]\nProtectHome = \"tmpfs\"\n",
            "[service_extra]\nInaccessiblePaths = \"/home\"\n",
            "[service_extra]\nTemporaryFileSystem = \"/var\"\n",
        ] {
            assert_eq!(sys(extra).unwrap(), root, "{extra}");
        }
        // Another user's job records in its StateDirectory=, which systemd
        // keeps writable itself.
        for user in ["user = \"nobody\"\n", "dynamic_user = true\n"] {
            let text = format!("{job}{user}protect_system = \"strict\"\n");
            assert_eq!(bind_line(&text, Mode::System, None, None).unwrap(), None);
        }
        // A configured database: its folder.
        let strict = format!("{job}protect_system = \"strict\"\n");
        assert_eq!(
            bind_line(&strict, Mode::System, Some("/srv/h%st/history.db"), None).unwrap(),
            Some("BindPaths=-/srv/h%%st".to_string())
        );
        for bad in ["/srv/my history/h.db", "/srv/a:b/h.db", "/srv/\"q\"/h.db"] {
            assert!(
                matches!(
                    bind_line(&strict, Mode::System, Some(bad), None),
                    Err(RenderError::HistoryPath { .. })
                ),
                "{bad}"
            );
        }
        // Per-user mode: the user's state folder.
        assert_eq!(
            bind_line(&strict, Mode::User, None, None).unwrap(),
            Some("BindPaths=-%h/.local/state/jobctl".to_string())
        );
        assert_eq!(
            bind_line(&strict, Mode::User, None, Some("/data/state/jobctl")).unwrap(),
            Some("BindPaths=-/data/state/jobctl".to_string())
        );
    }

    use crate::config::Config;
    use crate::context::UtcOnly;
    use crate::job::{JobSource, LoadContext, load_job};

    static UTC: TimeZone = TimeZone::UTC;

    /// A job file (`t.toml`) loaded for `mode`, with the default
    /// configuration.
    pub(crate) fn load(text: &str, mode: Mode) -> crate::job::LoadedJob {
        let config = Config::default();
        let ctx = LoadContext {
            mode,
            config: &config,
            zones: &UtcOnly,
            now: None,
            systemd: None,
            root_files: None,
        };
        load_job(
            JobSource {
                path: "t.toml",
                stem: "t",
                text,
            },
            &ctx,
        )
    }

    /// A job file's job, loaded for `mode` (it must be valid).
    pub(crate) fn job_in(text: &str, mode: Mode) -> Job {
        let loaded = load(text, mode);
        loaded
            .job
            .unwrap_or_else(|| panic!("{text}: {:?}", loaded.diagnostics))
    }

    pub(crate) fn job(text: &str) -> Job {
        job_in(text, Mode::System)
    }

    /// The options the tests render with: jobctl at /usr/bin, UTC,
    /// systemd 252.
    pub(crate) fn options(mode: Mode, history: &HistoryConfig) -> RenderOptions<'_> {
        RenderOptions {
            mode,
            unit_prefix: "jobctl-",
            jobctl_path: "/usr/bin/jobctl",
            local_zone: &UTC,
            zones: &UtcOnly,
            history,
            systemd_version: Some(252),
            user_state_dir: None,
        }
    }

    /// A job file rendered in system mode with the default configuration.
    pub(crate) fn rendered(text: &str) -> RenderedJob {
        render(
            &job(text),
            &options(Mode::System, &HistoryConfig::default()),
        )
        .unwrap()
    }

    pub(crate) fn service(job: &Job) -> String {
        render(job, &options(Mode::System, &HistoryConfig::default()))
            .unwrap()
            .service
            .contents
    }

    #[test]
    fn a_shell_script_runs_in_sh_unless_shell_path_says_otherwise() {
        let script = "shell = \"echo $RANDOM\"\nmanual = true\n";
        let exec = |text: &str| {
            service(&job(text))
                .lines()
                .find(|l| l.starts_with("ExecStart="))
                .unwrap()
                .to_string()
        };
        assert!(exec(script).contains(" -- /bin/sh -c "), "{}", exec(script));
        let bash = format!("{script}shell_path = \"/bin/bash\"\n");
        assert!(exec(&bash).contains(" -- /bin/bash -c "), "{}", exec(&bash));
        // Not an absolute path, or set beside `command`: errors at the key.
        for (text, message) in [
            (
                format!("{script}shell_path = \"bash\"\n"),
                "is not an absolute path",
            ),
            (
                "command = [\"/bin/true\"]\nmanual = true\nshell_path = \"/bin/bash\"\n"
                    .to_string(),
                "the job has `command`, not `shell`",
            ),
        ] {
            let loaded = load(&text, Mode::System);
            assert!(loaded.job.is_none(), "{text}");
            let d = &loaded.diagnostics[0];
            assert_eq!(d.key.as_deref(), Some("shell_path"), "{d:?}");
            assert!(d.message.contains(message), "{d:?}");
        }
    }

    #[test]
    fn no_start_limit_unless_the_job_sets_one_or_restarts() {
        let base = "command = [\"/bin/true\"]\nevery = \"1s\"\n";
        let text = service(&job(base));
        let unit = text.split("[Service]").next().unwrap();
        assert!(unit.contains("\nStartLimitIntervalSec=0\n"), "{text}");
        for extra in [
            "[unit_extra]\nStartLimitBurst = \"3\"\n",
            "[unit_extra]\nStartLimitIntervalSec = \"1h\"\n",
            "[service_extra]\nStartLimitInterval = \"1h\"\n",
            "[service_extra]\nRestart = \"on-failure\"\n",
            "[service_extra]\nRestart = [\"no\", \"on-abnormal\"]\n",
        ] {
            let text = service(&job(&format!("{base}{extra}")));
            assert!(!text.contains("StartLimitIntervalSec=0"), "{extra}: {text}");
        }
        for extra in [
            "[service_extra]\nRestart = \"no\"\n",
            "[service_extra]\nRestart = [\"on-failure\", \"\"]\n",
        ] {
            let text = service(&job(&format!("{base}{extra}")));
            assert!(text.contains("StartLimitIntervalSec=0"), "{extra}: {text}");
        }
    }

    #[test]
    fn the_users_folder_is_what_the_service_says() {
        let base = "command = [\"/bin/true\"]\nmanual = true\n";
        let history = HistoryConfig::default();
        for (extra, mode, folder) in [
            ("", Mode::System, None),
            ("user = \"root\"\n", Mode::System, None),
            ("user = \"etl\"\n", Mode::System, Some("etl")),
            ("dynamic_user = true\n", Mode::System, Some("jobctl-t")),
            ("user = \"etl\"\n", Mode::User, None),
        ] {
            let rendered =
                render(&job(&format!("{base}{extra}")), &options(mode, &history)).unwrap();
            assert_eq!(rendered.users_folder.as_deref(), folder, "{extra}");
            assert_eq!(
                users_folder_of(&rendered.service.contents),
                rendered.users_folder,
                "{extra}"
            );
        }
        assert_eq!(users_folder_of("[Service]\nExecStart=/bin/true\n"), None);
    }

    /// A small job whose command or environment is then made large (the
    /// loader would refuse it).
    fn grown(argv: Vec<String>, environment: usize) -> Job {
        let mut j = job("command = [\"/bin/true\"]\nmanual = true\n");
        j.command = crate::job::Command::Argv { argv };
        j.environment = (0..environment)
            .map(|i| (format!("V{i}"), "y".repeat(30_000)))
            .collect();
        j
    }

    #[test]
    fn unit_lines_stop_just_below_systemds_limit() {
        let history = HistoryConfig::default();
        let opts = options(Mode::System, &history);
        let words = |last: usize| {
            let mut w = vec!["/bin/true".to_string()];
            w.extend(std::iter::repeat_n("x".repeat(32_000), 32));
            w.push("z".repeat(last));
            grown(w, 0)
        };
        let line = |job: &Job| {
            let service = render(job, &opts).unwrap().service.contents;
            service
                .lines()
                .find(|l| l.starts_with("ExecStart="))
                .unwrap()
                .len()
        };
        let longest = 1 + UNIT_LINE_MAX - line(&words(1));
        let at_limit = words(longest);
        assert_eq!(line(&at_limit), UNIT_LINE_MAX);
        assert_eq!(size_problems(&at_limit, &opts), Ok(vec![]));
        let over = words(longest + 1);
        let problems = size_problems(&over, &opts).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "command");
        assert!(matches!(
            render(&over, &opts),
            Err(RenderError::TooLarge(_))
        ));
    }

    #[test]
    fn arguments_and_environment_fit_what_linux_execs() {
        let history = HistoryConfig::default();
        let opts = options(Mode::System, &history);
        let argv = vec!["/bin/true".to_string()];
        // 2 MiB less the 64 KiB reserve: about 66 variables of 30 KB.
        assert_eq!(size_problems(&grown(argv.clone(), 60), &opts), Ok(vec![]));
        let problems = size_problems(&grown(argv, 100), &opts).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].key, "environment");
        assert!(problems[0].message.contains("2 MiB"), "{problems:?}");
        // The loader reports it with the position of the largest variable.
        let vars: String = (0..100)
            .map(|i| format!("V{i} = \"{}\"\n", "y".repeat(30_000 + i)))
            .collect();
        let text = format!("command = [\"/bin/true\"]\nmanual = true\n[environment]\n{vars}");
        let loaded = load(&text, Mode::System);
        assert!(loaded.job.is_none());
        assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);
        let d = &loaded.diagnostics[0];
        assert_eq!((d.key.as_deref(), d.line), (Some("environment"), 103));
        // Small jobs are not measured at all.
        assert!(surely_small(&job(
            "command = [\"/bin/true\"]\nmanual = true\n"
        )));
    }

    #[test]
    fn exec_words_read_back() {
        for value in hostile_values() {
            let word = exec_word(&value).unwrap();
            assert_eq!(read_exec_words(&word), Ok(vec![value.clone()]), "{word:?}");
        }
        assert_eq!(exec_word("--job").unwrap(), "--job");
        assert_eq!(exec_word("2h 30min").unwrap(), "\"2h 30min\"");
        assert_eq!(exec_word("").unwrap(), "\"\"");
        assert_eq!(exec_word(";").unwrap(), "\";\"");
    }
}
