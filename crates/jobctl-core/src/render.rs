//! Rendering a [`Job`] into its `.service`/`.timer` pair.
//!
//! The units are what a careful systemd administrator would write by hand:
//! `Type=oneshot`, a start timeout, `KillMode=mixed` so that the run shim
//! (`jobctl exec`) receives the stop signal first and can record the run, and
//! `WantedBy=timers.target` on the timer. Both units carry jobctl's ownership
//! mark (`X-Jobctl-Job=`) and a hash of their contents (`X-Jobctl-Hash=`);
//! systemd ignores `X-` keys. Every value is encoded by [`crate::escape`].

use std::fmt::Write;

use jiff::tz::TimeZone;
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::config::HistoryConfig;
use crate::context::{Mode, ZoneLookup};
use crate::duration::Timespan;
use crate::escape;
use crate::job::Job;
use crate::naming::UnitNames;
use crate::schedule::Trigger;

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
    /// The hash written into both units.
    pub hash: String,
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
}

/// Why a valid job could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RenderError {
    #[error("time zone \"{0}\" is not available on this host")]
    UnknownZone(String),
    #[error("not_after {date}: the day after it does not exist in {zone}")]
    BadDate { date: String, zone: String },
    #[error("{section}_extra.{directive} needs systemd {needed}; this host runs systemd {running}")]
    UnsupportedDirective {
        section: &'static str,
        directive: String,
        needed: u32,
        running: u32,
    },
    #[error("a value cannot be written into the unit: {0}")]
    Encoding(#[from] escape::EscapeError),
}

/// Directives newer than the oldest systemd jobctl supports, with the
/// version that introduced them (systemd's NEWS).
const DIRECTIVE_VERSIONS: &[(&str, u32)] = &[
    ("FixedRandomDelay", 247),
    ("ExecSearchPath", 250),
    ("ExitType", 250),
    ("OpenFile", 253),
    ("RestartSteps", 254),
    ("RestartMaxDelaySec", 254),
    ("RestartMode", 254),
    ("MemoryKSM", 254),
    ("SetLoginEnvironment", 255),
    ("DeferReactivation", 257),
    ("RandomizedOffsetSec", 258),
];

/// Renders a job's units.
pub fn render(job: &Job, opts: &RenderOptions<'_>) -> Result<RenderedJob, RenderError> {
    check_versions(job, opts.systemd_version)?;
    let names = UnitNames::new(opts.unit_prefix, &job.name);
    let not_after = not_after_instant(job, opts)?;
    let mut service = render_service(job, opts, not_after)?;
    let mut timer = if job.is_manual() {
        None
    } else {
        Some(render_timer(job, &names)?)
    };

    let mut hasher = Sha256::new();
    hasher.update(service.as_bytes());
    hasher.update([0u8]);
    if let Some(timer) = &timer {
        hasher.update(timer.as_bytes());
    }
    let digest = hasher.finalize();
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    service = service.replace(HASH_PLACEHOLDER, &hash);
    timer = timer.map(|t| t.replace(HASH_PLACEHOLDER, &hash));

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
    })
}

fn check_versions(job: &Job, version: Option<u32>) -> Result<(), RenderError> {
    let Some(running) = version else {
        return Ok(());
    };
    let sections: [(&'static str, &Vec<(String, String)>); 3] = [
        ("unit", &job.extra.unit),
        ("service", &job.extra.service),
        ("timer", &job.extra.timer),
    ];
    for (section, directives) in sections {
        for (name, _) in directives {
            if let Some((_, needed)) = DIRECTIVE_VERSIONS.iter().find(|(d, _)| d == name)
                && *needed > running
            {
                return Err(RenderError::UnsupportedDirective {
                    section,
                    directive: name.clone(),
                    needed: *needed,
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
    for unit in &job.on_failure {
        let _ = writeln!(out, "OnFailure={unit}");
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
    if opts.mode == Mode::System && !job.runs_as_root() {
        // Runs of non-root jobs are recorded in a folder of their own that
        // systemd creates for the job's user (docs/design.md, "Where runs are
        // recorded").
        let owner = job
            .user
            .clone()
            .unwrap_or_else(|| format!("{}{}", opts.unit_prefix, job.name));
        let _ = writeln!(out, "StateDirectory=jobctl/users/{owner}");
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
    for (name, value) in &job.extra.service {
        let _ = writeln!(out, "{name}={value}");
    }
    Ok(out)
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
    let mut words: Vec<String> = vec![opts.jobctl_path.to_string()];
    if opts.mode == Mode::User {
        words.push("--user".into());
    }
    words.extend(["exec".into(), "--job".into(), job.name.to_string()]);
    words.extend(["--timeout".into(), job.timeout.to_string()]);
    if let Some(instant) = not_after {
        words.extend(["--not-after".into(), instant.to_string()]);
    }
    if let Some(retry) = &job.retry {
        words.extend(["--retry-attempts".into(), retry.attempts.to_string()]);
        words.extend(["--retry-delay".into(), retry.delay.to_string()]);
        words.extend(["--retry-backoff".into(), retry.backoff.to_string()]);
        if let Some(max) = retry.max_delay {
            words.extend(["--retry-max-delay".into(), max.to_string()]);
        }
    }
    if let Some(limit) = job.output_limit {
        words.extend(["--output-limit".into(), limit.to_string()]);
    }
    if job.merge_output {
        words.push("--merge-output".into());
    }
    let history = opts.history;
    // A configured database applies to jobs that run as the configuring
    // user; other users' jobs record in their own state folder.
    if let Some(db) = &history.db
        && (opts.mode == Mode::User || job.runs_as_root())
    {
        words.extend(["--db".into(), db.clone()]);
    }
    if let Some(dir) = &job.working_directory {
        words.extend(["--working-directory".into(), dir.clone()]);
    }
    if let Some(n) = history.keep_runs {
        words.extend(["--keep-runs".into(), n.to_string()]);
    }
    if let Some(age) = history.keep_age {
        words.extend(["--keep-age".into(), age.to_string()]);
    }
    if let Some(max) = history.max_output {
        words.extend(["--max-output".into(), max.to_string()]);
    }
    words.push("--".into());
    words.extend(job.command.argv());

    let mut line = String::new();
    for (index, word) in words.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        line.push_str(&exec_word(word)?);
    }
    Ok(line)
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
mod tests {
    use super::*;
    use crate::escape::read_exec_words;
    use crate::escape::tests::hostile_values;

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
