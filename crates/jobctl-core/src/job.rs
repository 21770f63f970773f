//! The job model: what one job file says, checked and resolved.
//!
//! [`load_job`] turns a job file's text into a [`Job`], or into the complete
//! list of what is wrong with it. A job file and the `[defaults]` table of
//! the global configuration share one decoder ([`JobSpec`]): defaults are a
//! partial job that each job file overrides key by key (the `environment`
//! table is merged variable by variable).
//!
//! The reference for every key is docs/job-file.md; keep the two in step.

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

/// The timeout of a job that sets none, anywhere. A oneshot service has no
/// start timeout of its own, so without one a hung run would block its timer
/// forever.
pub const DEFAULT_TIMEOUT: Timespan = Timespan::from_secs(3600);

/// Every key a job file may contain.
pub const JOB_KEYS: &[&str] = &[
    "description",
    "command",
    "shell",
    "working_directory",
    "user",
    "group",
    "dynamic_user",
    "environment",
    "environment_file",
    "timeout",
    "stdin",
    "on_calendar",
    "cron",
    "every",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "manual",
    "timezone",
    "persistent",
    "randomized_delay",
    "accuracy",
    "on_boot",
    "nice",
    "memory_max",
    "cpu_quota",
    "io_weight",
    "private_tmp",
    "protect_system",
    "no_new_privileges",
    "unit_extra",
    "service_extra",
    "timer_extra",
    "after",
    "wants",
    "on_failure",
    "owner",
    "team",
    "tags",
    "metadata",
    "enabled",
    "not_after",
    "retry",
    "output_limit",
    "merge_output",
    "notify",
    "notify_after",
    "grace",
    "warn_after",
];

/// The keys the global configuration's `[defaults]` table may set.
pub const DEFAULTABLE_KEYS: &[&str] = &[
    "working_directory",
    "user",
    "group",
    "environment",
    "environment_file",
    "timeout",
    "timezone",
    "persistent",
    "randomized_delay",
    "accuracy",
    "nice",
    "memory_max",
    "cpu_quota",
    "io_weight",
    "private_tmp",
    "protect_system",
    "no_new_privileges",
    "after",
    "wants",
    "on_failure",
    "retry",
    "output_limit",
    "merge_output",
    "notify",
    "notify_after",
    "grace",
    "warn_after",
];

/// Parses one of the simple schedule forms.
type SimpleParser = fn(&str) -> Result<Schedule, String>;

const SCHEDULE_KEYS: &str = "on_calendar, cron, every, hourly, daily, weekly or monthly";

/// Wrong names people reach for, and what to write instead.
pub const KEY_ALIASES: &[(&str, &str)] = &[
    ("env", "use `environment` (a table of variables)"),
    (
        "environment_files",
        "use `environment_file` (a path or a list of paths)",
    ),
    ("env_file", "use `environment_file`"),
    ("cwd", "use `working_directory`"),
    ("workdir", "use `working_directory`"),
    ("working_dir", "use `working_directory`"),
    ("directory", "use `working_directory`"),
    (
        "args",
        "use `command`, an array: command = [\"/usr/bin/prog\", \"arg\"]",
    ),
    (
        "argv",
        "use `command`, an array: command = [\"/usr/bin/prog\", \"arg\"]",
    ),
    (
        "cmd",
        "use `command`, an array: command = [\"/usr/bin/prog\", \"arg\"]",
    ),
    (
        "exec",
        "use `command`, an array: command = [\"/usr/bin/prog\", \"arg\"]",
    ),
    ("script", "use `shell` for a /bin/sh script"),
    (
        "schedule",
        "a schedule is one of the keys on_calendar, cron, every, hourly, daily, weekly, monthly, or manual = true",
    ),
    ("calendar", "use `on_calendar`"),
    ("oncalendar", "use `on_calendar`"),
    ("interval", "use `every`, e.g. every = \"15min\""),
    ("tz", "use `timezone`"),
    ("time_zone", "use `timezone`"),
    ("disabled", "use enabled = false"),
    ("expires", "use `not_after`, a date: not_after = 2027-03-31"),
    (
        "end_date",
        "use `not_after`, a date: not_after = 2027-03-31",
    ),
    ("until", "use `not_after`, a date: not_after = 2027-03-31"),
    (
        "retries",
        "use a `retry` table: retry = { attempts = 3, delay = \"30s\" }",
    ),
    ("memory_limit", "use `memory_max`"),
    ("cpu_limit", "use `cpu_quota`, e.g. cpu_quota = \"50%\""),
    (
        "requires",
        "use `wants` (jobctl does not emit Requires=; use unit_extra for it)",
    ),
    (
        "before",
        "use unit_extra: [unit_extra] Before = \"x.service\"",
    ),
];

/// How the job's command is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// `command = [...]`: run directly, no shell.
    Argv { argv: Vec<String> },
    /// `shell = "..."`: run by `/bin/sh -c`.
    Shell { script: String },
}

impl Command {
    /// The argv that runs the command.
    pub fn argv(&self) -> Vec<String> {
        match self {
            Command::Argv { argv } => argv.clone(),
            Command::Shell { script } => vec!["/bin/sh".into(), "-c".into(), script.clone()],
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
    pub on_failure: Vec<String>,
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

/// Refuses an `environment_file` of a root job that someone other than root
/// could change: its lines become the job's environment (`LD_PRELOAD`,
/// `PATH`), so whoever can write it runs commands as root.
fn check_root_file(
    inspector: &dyn PathInspector,
    file: &Sp<String>,
    from_defaults: bool,
    diags: &mut Diagnostics<'_>,
) {
    // A leading '-' only makes the file optional.
    let path = file.value.strip_prefix('-').unwrap_or(&file.value);
    let (span, origin) = if from_defaults {
        (None, " (from the configuration's [defaults])")
    } else {
        (Some(file.span.clone()), "")
    };
    let (message, hint) = match inspector.trace(path) {
        Ok(steps) => {
            let problems = crate::ownership::root_only_problems(&steps);
            if problems.is_empty() {
                return;
            }
            let fixes: Vec<&str> = problems.iter().map(|p| p.fix.as_str()).collect();
            (
                format!(
                    "refusing an unsafe environment file {path}{origin}: {}; a user who can change it could set LD_PRELOAD and run commands as root",
                    problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "the file, every folder above it and every link on the way must be root's and writable only by root: {}",
                    fixes.join("; ")
                ),
            )
        }
        Err(reason) => (
            format!("cannot check the environment file {path}{origin}: {reason}"),
            "a root job's environment file must be a path root can check".to_string(),
        ),
    };
    diags.push(
        crate::diag::Severity::Error,
        span,
        Some("environment_file"),
        message,
        Some(hint),
    );
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

/// From `now` to the job's end; `None` when the end has passed (an expired
/// job) or cannot be computed.
fn window<'a>(
    now: &Now<'a>,
    not_after: Option<jiff::civil::Date>,
    timezone: Option<&str>,
    zones: &dyn ZoneLookup,
) -> Option<schedule::Window<'a>> {
    let end = match not_after {
        Some(date) => {
            let zone = match timezone {
                Some(name) => zones.zone(name)?,
                None => now.local.clone(),
            };
            let end = schedule::end_of(date, &zone)?;
            if end <= now.instant {
                return None;
            }
            Some(end)
        }
        None => None,
    };
    Some(schedule::Window {
        now: now.instant,
        end,
        local: now.local,
    })
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

/// A job file or the `[defaults]` table, each key checked on its own.
#[derive(Debug, Clone, Default)]
pub struct JobSpec {
    description: Option<Sp<String>>,
    command: Option<Sp<Vec<String>>>,
    shell: Option<Sp<String>>,
    working_directory: Option<Sp<String>>,
    user: Option<Sp<String>>,
    group: Option<Sp<String>>,
    dynamic_user: Option<Sp<bool>>,
    environment: BTreeMap<String, Sp<String>>,
    environment_file: Option<Sp<Vec<Sp<String>>>>,
    timeout: Option<Sp<Timespan>>,
    stdin: Option<Sp<String>>,
    schedules: Vec<Sp<Schedule>>,
    /// Calendar expressions as written, for time-zone checks.
    calendars: Vec<Sp<String>>,
    manual: Option<Sp<bool>>,
    timezone: Option<Sp<String>>,
    persistent: Option<Sp<bool>>,
    randomized_delay: Option<Sp<Timespan>>,
    accuracy: Option<Sp<Timespan>>,
    on_boot: Option<Sp<Timespan>>,
    nice: Option<Sp<i32>>,
    memory_max: Option<Sp<String>>,
    cpu_quota: Option<Sp<String>>,
    io_weight: Option<Sp<u16>>,
    private_tmp: Option<Sp<bool>>,
    protect_system: Option<Sp<String>>,
    no_new_privileges: Option<Sp<bool>>,
    extra: ExtraDirectives,
    /// Where each `*_extra` directive's name is written.
    extra_names: Vec<(Section, String, Range<usize>)>,
    after: Option<Vec<String>>,
    wants: Option<Vec<String>>,
    on_failure: Option<Vec<String>>,
    owner: Option<String>,
    team: Option<String>,
    tags: Vec<String>,
    metadata: BTreeMap<String, String>,
    enabled: Option<Sp<bool>>,
    not_after: Option<Sp<jiff::civil::Date>>,
    retry: Option<Sp<Retry>>,
    output_limit: Option<Sp<ByteSize>>,
    merge_output: Option<Sp<bool>>,
    pub(crate) notify: crate::notify::NotifySpec,
}

impl JobSpec {
    /// Decodes every key present in `reader`'s table, reporting each problem.
    pub fn decode(
        reader: &TableReader<'_, '_>,
        mode: Mode,
        zones: &dyn ZoneLookup,
        diags: &mut Diagnostics<'_>,
    ) -> JobSpec {
        let mut spec = JobSpec {
            description: reader.string("description", "\"Refresh the warehouse\"", diags),
            ..JobSpec::default()
        };
        if let Some(d) = &spec.description {
            check_plain(
                reader,
                "description",
                d,
                "keep the description on one line, without control characters or a trailing backslash",
                diags,
            );
        }
        spec.decode_command(reader, diags);
        spec.decode_identity(reader, mode, diags);
        spec.decode_environment(reader, diags);
        spec.timeout = reader.duration("timeout", "\"30min\"", diags);
        if let Some(t) = &spec.timeout
            && t.value == Timespan::ZERO
        {
            diags.error(
                t.span.clone(),
                "timeout",
                "a timeout of 0 would mean \"no timeout\" to systemd",
                Some(
                    "write timeout = \"infinity\" if the job really must never time out"
                        .to_string(),
                ),
            );
        }
        spec.stdin = reader.string("stdin", "\"input text\\n\"", diags);
        if let Some(stdin) = spec.stdin.take() {
            if stdin.value.contains('\0') {
                diags.error(
                    stdin.span,
                    &reader.path("stdin"),
                    "the input text contains a NUL byte",
                    Some("stdin is text; NUL bytes cannot be given".into()),
                );
            } else if stdin.value.len() > escape::MAX_ARG_LEN {
                diags.error(
                    stdin.span,
                    &reader.path("stdin"),
                    format!(
                        "the input text is {} bytes; the limit is {}",
                        stdin.value.len(),
                        escape::MAX_ARG_LEN
                    ),
                    None,
                );
            } else {
                spec.stdin = Some(stdin);
            }
        }
        spec.decode_schedules(reader, zones, diags);
        spec.decode_timer(reader, diags);
        spec.decode_resources(reader, diags);
        for (section, reserved) in [
            (Section::Unit, UNIT_RESERVED),
            (Section::Service, SERVICE_RESERVED),
            (Section::Timer, TIMER_RESERVED),
        ] {
            let (directives, names) = decode_extra(reader, section.extra_key(), reserved, diags);
            match section {
                Section::Unit => spec.extra.unit = directives,
                Section::Service => spec.extra.service = directives,
                Section::Timer => spec.extra.timer = directives,
            }
            spec.extra_names
                .extend(names.into_iter().map(|(name, span)| (section, name, span)));
        }
        spec.after = decode_units(reader, "after", diags);
        spec.wants = decode_units(reader, "wants", diags);
        spec.on_failure = decode_units(reader, "on_failure", diags);
        spec.decode_metadata(reader, diags);
        spec.enabled = reader.bool("enabled", diags);
        spec.not_after = reader.date("not_after", diags);
        spec.retry = decode_retry(reader, diags);
        spec.output_limit = reader.size("output_limit", "\"4M\"", diags);
        spec.merge_output = reader.bool("merge_output", diags);
        spec.notify = crate::notify::NotifySpec::decode(reader, diags);
        spec
    }

    fn decode_command(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        if let Some(argv) =
            reader.string_array("command", "[\"/usr/bin/backup\", \"--full\"]", diags)
        {
            let mut ok = true;
            if argv.value.is_empty() {
                diags.error(argv.span.clone(), &reader.path("command"), "the command is empty", Some("name the program and its arguments: command = [\"/usr/bin/backup\", \"--full\"]".to_string()));
                ok = false;
            }
            for (index, arg) in argv.value.iter().enumerate() {
                if let Err(err) = escape::exec_arg(&arg.value) {
                    diags.error(
                        arg.span.clone(),
                        &reader.path(&format!("command[{index}]")),
                        format!("this argument {err}"),
                        None,
                    );
                    ok = false;
                }
            }
            if let Some(program) = argv.value.first() {
                let p = &program.value;
                if p.is_empty() {
                    diags.error(
                        program.span.clone(),
                        &reader.path("command[0]"),
                        "the program name is empty",
                        None,
                    );
                    ok = false;
                } else if !p.starts_with('/') && p.contains('/') {
                    diags.error(
                        program.span.clone(),
                        &reader.path("command[0]"),
                        format!("\"{p}\" is a relative path"),
                        Some("use an absolute path (e.g. \"/opt/app/bin/run\") or a bare program name looked up in PATH".to_string()),
                    );
                    ok = false;
                }
            }
            if ok {
                self.command = Some(Sp::new(
                    argv.value.into_iter().map(|a| a.value).collect(),
                    argv.span,
                ));
            }
        }
        if let Some(script) = reader.string(
            "shell",
            "\"pg_dump app | gzip > /backup/app.sql.gz\"",
            diags,
        ) {
            if script.value.trim().is_empty() {
                diags.error(
                    script.span.clone(),
                    &reader.path("shell"),
                    "the shell script is empty",
                    None,
                );
            } else if let Err(err) = escape::exec_arg(&script.value) {
                diags.error(
                    script.span.clone(),
                    &reader.path("shell"),
                    format!("the script {err}"),
                    None,
                );
            } else {
                self.shell = Some(script);
            }
        }
    }

    fn decode_identity(
        &mut self,
        reader: &TableReader<'_, '_>,
        mode: Mode,
        diags: &mut Diagnostics<'_>,
    ) {
        self.working_directory = reader.string("working_directory", "\"/srv/app\"", diags);
        if let Some(dir) = self.working_directory.take() {
            if check_absolute_path(reader, "working_directory", &dir, diags) {
                self.working_directory = Some(dir);
            }
        }
        for key in ["user", "group"] {
            let Some(name) = reader.string(key, "\"etl\"", diags) else {
                continue;
            };
            if mode == Mode::User {
                diags.error(
                    name.span.clone(),
                    &reader.path(key),
                    format!("`{key}` cannot be set for a per-user job"),
                    Some(format!(
                        "per-user jobs run as the user whose manager runs them; remove `{key}`"
                    )),
                );
                continue;
            }
            match naming::check_user_group_name(&name.value) {
                Ok(()) => {
                    if key == "user" {
                        self.user = Some(name);
                    } else {
                        self.group = Some(name);
                    }
                }
                Err(message) => diags.error(name.span, &reader.path(key), message, None),
            }
        }
        self.dynamic_user = reader.bool("dynamic_user", diags);
        if mode == Mode::User
            && let Some(d) = self.dynamic_user.take()
        {
            diags.error(
                d.span,
                &reader.path("dynamic_user"),
                "`dynamic_user` cannot be set for a per-user job",
                Some("remove it; per-user jobs run as their user".into()),
            );
        }
    }

    fn decode_environment(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        for (name, value) in reader.scalar_map("environment", "{ BATCH_SIZE = \"500\" }", diags) {
            let key = reader.path(&format!("environment.{name}"));
            if let Err(message) = naming::check_env_name(&name) {
                diags.error(value.span.clone(), &key, message, None);
            } else if let Err(err) = escape::environment_assignment(&name, &value.value) {
                diags.error(
                    value.span.clone(),
                    &key,
                    format!("the value {err}"),
                    Some(
                        "systemd allows tabs and newlines in values, no other control characters"
                            .into(),
                    ),
                );
            } else {
                self.environment.insert(name, value);
            }
        }
        let files = reader.string_list("environment_file", "[\"/etc/default/app\"]", diags);
        if let Some(span) = reader.raw("environment_file").map(|v| v.span()) {
            let mut paths = Vec::new();
            for file in files {
                // A leading '-' means "ignore the file if it is missing", as in systemd.
                let path = file.value.strip_prefix('-').unwrap_or(&file.value);
                let candidate = Sp::new(path.to_string(), file.span.clone());
                if check_absolute_path(reader, "environment_file", &candidate, diags) {
                    paths.push(file);
                }
            }
            self.environment_file = Some(Sp::new(paths, span));
        }
    }

    fn decode_schedules(
        &mut self,
        reader: &TableReader<'_, '_>,
        zones: &dyn ZoneLookup,
        diags: &mut Diagnostics<'_>,
    ) {
        for expr in reader.string_list("on_calendar", "\"Mon..Fri *-*-* 02:15:00\"", diags) {
            if let Some(schedule) =
                crate::calendar_bridge::calendar_schedule(&expr, reader, zones, diags)
            {
                self.calendars.push(expr.clone());
                self.schedules.push(Sp::new(schedule, expr.span));
            }
        }
        for line in reader.string_list("cron", "\"*/15 * * * 1-5\"", diags) {
            if let Some(schedule) = crate::calendar_bridge::cron_schedule(&line, reader, diags) {
                self.schedules.push(Sp::new(schedule, line.span));
            }
        }
        if let Some(interval) = reader.duration("every", "\"15min\"", diags) {
            let checked = if interval.value.is_infinite() {
                Err("the interval must be finite".to_string())
            } else {
                let what = format!(
                    "the interval {}",
                    if interval.value == Timespan::ZERO {
                        "0s".to_string()
                    } else {
                        interval.value.to_string()
                    }
                );
                schedule::check_min_interval(&what, interval.value)
            };
            if let Err(message) = checked {
                diags.error(
                    interval.span,
                    &reader.path("every"),
                    message,
                    Some("e.g. every = \"15min\"".into()),
                );
            } else {
                self.schedules
                    .push(interval.map(|interval| Schedule::Every { interval }));
            }
        }
        let simple: [(&str, &str, SimpleParser); 4] = [
            ("hourly", "\":05\"", |t| {
                schedule::parse_hourly(t).map(|minute| Schedule::Hourly { minute })
            }),
            ("daily", "\"02:15\"", |t| {
                schedule::parse_time_of_day(t).map(|time| Schedule::Daily { time })
            }),
            ("weekly", "\"Sun 23:59\"", |t| {
                schedule::parse_weekly(t).map(|(days, time)| Schedule::Weekly { days, time })
            }),
            ("monthly", "\"1 09:00\"", |t| {
                schedule::parse_monthly(t).map(|(days, time)| Schedule::Monthly { days, time })
            }),
        ];
        for (key, example, parse) in simple {
            for text in reader.string_list(key, example, diags) {
                match parse(&text.value) {
                    Ok(schedule) => self.schedules.push(Sp::new(schedule, text.span)),
                    Err(message) => diags.error(
                        text.span,
                        &reader.path(key),
                        message,
                        Some(format!("e.g. {key} = {example}")),
                    ),
                }
            }
        }
        self.manual = reader.bool("manual", diags);
        self.timezone = reader.string("timezone", "\"Europe/London\"", diags);
        if let Some(tz) = self.timezone.take() {
            match check_timezone(&tz.value, zones) {
                Ok(name) => self.timezone = Some(Sp::new(name, tz.span)),
                Err(message) => diags.error(tz.span, &reader.path("timezone"), message, Some("use an exact name from /usr/share/zoneinfo, e.g. \"Asia/Hong_Kong\", or \"UTC\"".into())),
            }
        }
    }

    fn decode_timer(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        self.persistent = reader.bool("persistent", diags);
        self.randomized_delay = reader.duration("randomized_delay", "\"5min\"", diags);
        self.accuracy = reader.duration("accuracy", "\"1s\"", diags);
        self.on_boot = reader.duration("on_boot", "\"5min\"", diags);
        for (key, value) in [
            ("randomized_delay", &self.randomized_delay),
            ("accuracy", &self.accuracy),
            ("on_boot", &self.on_boot),
        ] {
            if let Some(v) = value
                && v.value.is_infinite()
            {
                diags.error(
                    v.span.clone(),
                    &reader.path(key),
                    "must be a finite duration",
                    None,
                );
            }
        }
        if let Some(a) = &self.accuracy
            && a.value == Timespan::ZERO
        {
            diags.error(
                a.span.clone(),
                &reader.path("accuracy"),
                "systemd treats an accuracy of 0 as 1us, waking the system needlessly",
                Some("use accuracy = \"1s\" for to-the-second timers".into()),
            );
        }
    }

    fn decode_resources(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        if let Some(nice) = reader.integer("nice", "10", diags) {
            if (-20..=19).contains(&nice.value) {
                self.nice = Some(nice.map(|n| n as i32));
            } else {
                diags.error(
                    nice.span,
                    &reader.path("nice"),
                    format!("nice {} is out of range", nice.value),
                    Some("use -20 (highest priority) to 19 (lowest)".into()),
                );
            }
        }
        if let Some(mem) = reader.string("memory_max", "\"2G\"", diags) {
            match check_memory(&mem.value) {
                Ok(value) => self.memory_max = Some(Sp::new(value, mem.span)),
                Err(message) => diags.error(
                    mem.span,
                    &reader.path("memory_max"),
                    message,
                    Some("e.g. memory_max = \"2G\", \"512M\", \"80%\" or \"infinity\"".into()),
                ),
            }
        }
        if let Some(cpu) = reader.string("cpu_quota", "\"50%\"", diags) {
            match check_percentage(&cpu.value, 100_000) {
                Ok(value) if value > 0 => self.cpu_quota = Some(Sp::new(format!("{value}%"), cpu.span)),
                _ => diags.error(cpu.span, &reader.path("cpu_quota"), format!("\"{}\" is not a CPU quota", cpu.value), Some("write a percentage of one CPU, e.g. \"50%\" (half a CPU) or \"200%\" (two CPUs)".into())),
            }
        }
        if let Some(weight) = reader.integer("io_weight", "100", diags) {
            if (1..=10_000).contains(&weight.value) {
                self.io_weight = Some(weight.map(|w| w as u16));
            } else {
                diags.error(
                    weight.span,
                    &reader.path("io_weight"),
                    format!("io_weight {} is out of range", weight.value),
                    Some("use 1 to 10000 (100 is the default)".into()),
                );
            }
        }
        self.private_tmp = reader.bool("private_tmp", diags);
        self.no_new_privileges = reader.bool("no_new_privileges", diags);
        if let Some(raw) = reader.raw("protect_system") {
            let span = raw.span();
            match raw.get_ref() {
                DeValue::Boolean(b) => self.protect_system = Some(Sp::new(if *b { "yes" } else { "no" }.into(), span)),
                DeValue::String(s) if matches!(s.as_ref(), "full" | "strict") => self.protect_system = Some(Sp::new(s.to_string(), span)),
                _ => diags.error(span, &reader.path("protect_system"), "expected true, false, \"full\" or \"strict\"", Some("protect_system = \"strict\" makes the whole file system read-only except /dev, /proc, /sys; add writable paths with service_extra.ReadWritePaths".into())),
            }
        }
    }

    fn decode_metadata(&mut self, reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) {
        for key in ["owner", "team"] {
            if let Some(value) = reader.string(key, "\"data-platform\"", diags)
                && check_display(reader, key, &value, diags)
            {
                if key == "owner" {
                    self.owner = Some(value.value);
                } else {
                    self.team = Some(value.value);
                }
            }
        }
        for (index, tag) in reader
            .string_list("tags", "[\"etl\", \"nightly\"]", diags)
            .into_iter()
            .enumerate()
        {
            if tag.value.is_empty()
                || tag
                    .value
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ',')
            {
                diags.error(
                    tag.span,
                    &reader.path(&format!("tags[{index}]")),
                    format!("\"{}\" is not a tag", tag.value.escape_debug()),
                    Some(
                        "tags are single words: letters, digits and punctuation other than ','"
                            .into(),
                    ),
                );
            } else {
                self.tags.push(tag.value);
            }
        }
        for (name, value) in
            reader.scalar_map("metadata", "{ runbook = \"https://wiki/etl\" }", diags)
        {
            if check_display(reader, &format!("metadata.{name}"), &value, diags) {
                self.metadata.insert(name, value.value);
            }
        }
    }
}

/// Applies `defaults` under `spec` and checks the keys that depend on each other.
fn resolve(
    spec: JobSpec,
    defaults: &JobSpec,
    name: Option<JobName>,
    path: &str,
    ctx: &LoadContext<'_>,
    diags: &mut Diagnostics<'_>,
) -> Option<Job> {
    let command = match (&spec.command, &spec.shell) {
        (Some(argv), None) => Some(Command::Argv {
            argv: argv.value.clone(),
        }),
        (None, Some(script)) => Some(Command::Shell {
            script: script.value.clone(),
        }),
        (Some(_), Some(script)) => {
            diags.error(
                script.span.clone(),
                "shell",
                "both `command` and `shell` are set",
                Some(
                    "keep one: `command` runs a program directly, `shell` runs a /bin/sh script"
                        .into(),
                ),
            );
            None
        }
        (None, None) => {
            // Only a problem when the keys were absent, not merely invalid.
            let present = diags_mention(diags, &["command", "shell"])
                || typo_of(diags, &["command", "shell"]);
            if !present {
                diags.push(crate::diag::Severity::Error, None, None, "the job has no command", Some("add command = [\"/path/to/program\", \"arg\"] (or shell = \"...\" for a shell script)".into()));
            }
            None
        }
    };

    let manual = spec.manual.as_ref().is_some_and(|m| m.value);
    let has_schedule = !spec.schedules.is_empty() || spec.on_boot.is_some();
    let schedule_keys_invalid = diags_mention(
        diags,
        &[
            "on_calendar",
            "cron",
            "every",
            "hourly",
            "daily",
            "weekly",
            "monthly",
            "on_boot",
        ],
    );
    if manual && has_schedule {
        let span = spec
            .manual
            .as_ref()
            .map(|m| m.span.clone())
            .unwrap_or_default();
        diags.error(
            span,
            "manual",
            "manual = true, but the job also has a schedule",
            Some(format!(
                "remove manual = true, or remove the schedule ({SCHEDULE_KEYS}, on_boot)"
            )),
        );
    } else if !manual && !has_schedule && !schedule_keys_invalid {
        let hint = format!(
            "add a schedule ({SCHEDULE_KEYS}), or manual = true for a job that runs only when triggered"
        );
        match &spec.manual {
            Some(m) => diags.error(
                m.span.clone(),
                "manual",
                "manual = false, but the job has no schedule",
                Some(hint),
            ),
            None => diags.push(
                crate::diag::Severity::Error,
                None,
                None,
                "the job has no schedule",
                Some(hint),
            ),
        }
    }

    let timezone = spec.timezone.clone().or_else(|| defaults.timezone.clone());
    if let Some(tz) = &timezone {
        for calendar in &spec.calendars {
            if let Some(own) = crate::calendar_bridge::expression_zone(&calendar.value) {
                diags.error(calendar.span.clone(), "on_calendar", format!("this expression names its own time zone ({own}), and the job sets timezone = \"{}\"", tz.value), Some("remove the zone from the expression, or remove `timezone`".into()));
            }
        }
    }

    if let Some(now) = &ctx.now {
        check_firing(
            &spec,
            timezone.as_ref().map(|t| t.value.as_str()),
            now,
            ctx.zones,
            diags,
        );
    }

    let persistent = pick(&spec.persistent, &defaults.persistent).map(|p| p.value);
    let has_calendar = spec.schedules.iter().any(|s| {
        s.value
            .triggers()
            .iter()
            .any(|t| matches!(t, schedule::Trigger::Calendar(_)))
    });
    if let Some(p) = &spec.persistent
        && p.value
        && !has_calendar
    {
        diags.warning(
            p.span.clone(),
            "persistent",
            "persistent = true has no effect without a calendar schedule",
            Some("systemd catches up missed runs of calendar (OnCalendar=) schedules only".into()),
        );
    }

    let timeout = pick(&spec.timeout, &defaults.timeout).map_or(DEFAULT_TIMEOUT, |t| t.value);
    let retry = pick(&spec.retry, &defaults.retry).map(|r| r.value.clone());
    if let (Some(r), false) = (&retry, timeout.is_infinite()) {
        let waits = retry_waits(r).fold(0u64, |sum, w| sum.saturating_add(w.as_usec()));
        if waits >= timeout.as_usec() {
            let span = spec
                .retry
                .as_ref()
                .map(|r| r.span.clone())
                .unwrap_or_default();
            diags.warning(span, "retry", format!(
                    "the waits between {} attempts add up to {}, leaving no time for the runs within the job's timeout ({timeout})",
                    r.attempts,
                    Timespan::from_usec(waits)
                ), Some("retries never run past the timeout; shorten the delay or raise `timeout`".into()));
        }
    }

    let mut environment: BTreeMap<String, String> = defaults
        .environment
        .iter()
        .map(|(k, v)| (k.clone(), v.value.clone()))
        .collect();
    environment.extend(
        spec.environment
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone())),
    );

    let user = pick(&spec.user, &defaults.user).map(|u| u.value.clone());
    let dynamic_user = pick(&spec.dynamic_user, &defaults.dynamic_user).is_some_and(|d| d.value);
    if ctx.mode == Mode::User && (spec.user.is_none() && defaults.user.is_some()) {
        // A system-wide default user cannot apply to a per-user job.
        diags.push(
            crate::diag::Severity::Error,
            None,
            None,
            "the configuration's [defaults] sets `user`, which per-user jobs cannot use",
            Some("remove `user` from [defaults] in the per-user config.toml".into()),
        );
    }

    let environment_files = pick(&spec.environment_file, &defaults.environment_file);
    if let (Some(inspector), Some(files), Mode::System) =
        (ctx.root_files, environment_files, ctx.mode)
        && runs_as_root(user.as_deref(), dynamic_user)
    {
        let from_defaults = spec.environment_file.is_none();
        for file in &files.value {
            check_root_file(inspector, file, from_defaults, diags);
        }
    }

    spec.notify.check_channels(&ctx.config.notify, diags);
    spec.notify.check_warn_after(timeout, diags);

    let (command, name) = (command?, name?);
    if diags.has_errors() {
        return None;
    }
    let spans = SizeSpans {
        command: spec
            .command
            .as_ref()
            .map(|c| c.span.clone())
            .or_else(|| spec.shell.as_ref().map(|s| s.span.clone())),
        environment: spec
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.span.clone()))
            .collect(),
        description: spec.description.as_ref().map(|d| d.span.clone()),
        stdin: spec.stdin.as_ref().map(|d| d.span.clone()),
        environment_file: spec.environment_file.as_ref().map(|d| d.span.clone()),
    };
    let job = Job {
        name,
        source: path.to_string(),
        description: spec.description.map(|d| d.value),
        command,
        working_directory: pick(&spec.working_directory, &defaults.working_directory)
            .map(|w| w.value.clone()),
        user,
        group: pick(&spec.group, &defaults.group).map(|g| g.value.clone()),
        dynamic_user,
        environment,
        environment_files: environment_files
            .map(|f| f.value.iter().map(|p| p.value.clone()).collect())
            .unwrap_or_default(),
        timeout,
        stdin: spec.stdin.map(|s| s.value),
        schedules: spec.schedules.into_iter().map(|s| s.value).collect(),
        timezone: timezone.map(|t| t.value),
        timer: TimerOptions {
            persistent: persistent.unwrap_or(false),
            randomized_delay: pick(&spec.randomized_delay, &defaults.randomized_delay)
                .map(|v| v.value),
            accuracy: pick(&spec.accuracy, &defaults.accuracy).map(|v| v.value),
            on_boot: spec.on_boot.map(|v| v.value),
        },
        service: ServiceOptions {
            nice: pick(&spec.nice, &defaults.nice).map(|v| v.value),
            memory_max: pick(&spec.memory_max, &defaults.memory_max).map(|v| v.value.clone()),
            cpu_quota: pick(&spec.cpu_quota, &defaults.cpu_quota).map(|v| v.value.clone()),
            io_weight: pick(&spec.io_weight, &defaults.io_weight).map(|v| v.value),
            private_tmp: pick(&spec.private_tmp, &defaults.private_tmp).map(|v| v.value),
            protect_system: pick(&spec.protect_system, &defaults.protect_system)
                .map(|v| v.value.clone()),
            no_new_privileges: pick(&spec.no_new_privileges, &defaults.no_new_privileges)
                .map(|v| v.value),
        },
        after: spec
            .after
            .or_else(|| defaults.after.clone())
            .unwrap_or_default(),
        wants: spec
            .wants
            .or_else(|| defaults.wants.clone())
            .unwrap_or_default(),
        on_failure: spec
            .on_failure
            .or_else(|| defaults.on_failure.clone())
            .unwrap_or_default(),
        extra: spec.extra,
        owner: spec.owner,
        team: spec.team,
        tags: spec.tags,
        metadata: spec.metadata,
        enabled: spec.enabled.is_none_or(|e| e.value),
        not_after: spec.not_after.map(|d| d.value),
        retry,
        output_limit: pick(&spec.output_limit, &defaults.output_limit).map(|o| o.value),
        merge_output: pick(&spec.merge_output, &defaults.merge_output).is_some_and(|m| m.value),
        notify: spec.notify.resolve(&defaults.notify),
    };
    check_sizes(&job, &spans, ctx, diags);
    (!diags.has_errors()).then_some(job)
}

/// Where the keys [`check_sizes`] can name are in the job file.
struct SizeSpans {
    command: Option<Range<usize>>,
    environment: BTreeMap<String, Range<usize>>,
    description: Option<Range<usize>>,
    stdin: Option<Range<usize>>,
    environment_file: Option<Range<usize>>,
}

/// The longest path the running jobctl binary can have (`PATH_MAX` less its
/// NUL): the room kept for it in `ExecStart=` when the configuration does not
/// name the binary.
const LONGEST_PATH: usize = 4095;

/// Refuses what systemd would not load or Linux would not start: unit
/// lines of 1 MiB or more, arguments and environment over 2 MiB together
/// ([`render::size_problems`]). Measured
/// on the unit as it will be rendered, with room for the longest binary path
/// when the configuration does not name it.
fn check_sizes(job: &Job, spans: &SizeSpans, ctx: &LoadContext<'_>, diags: &mut Diagnostics<'_>) {
    if render::surely_small(job) {
        return;
    }
    let placeholder;
    let jobctl_path = match &ctx.config.jobctl_path {
        Some(path) => path.as_str(),
        None => {
            placeholder = format!("/{}", "x".repeat(LONGEST_PATH - 1));
            &placeholder
        }
    };
    let opts = render::RenderOptions {
        mode: ctx.mode,
        unit_prefix: &ctx.config.unit_prefix,
        jobctl_path,
        // Only the length of the `--not-after` instant matters here, and it
        // does not depend on the zone.
        local_zone: &jiff::tz::TimeZone::UTC,
        zones: ctx.zones,
        history: &ctx.config.history,
        systemd_version: None,
        user_state_dir: None,
    };
    // Other render errors are apply's to report (with this host's zones).
    let Ok(problems) = render::size_problems(job, &opts) else {
        return;
    };
    for problem in problems {
        let span = match problem.key.as_str() {
            "command" | "shell" => spans.command.clone(),
            "description" => spans.description.clone(),
            "stdin" => spans.stdin.clone(),
            "environment_file" => spans.environment_file.clone(),
            key => key
                .strip_prefix("environment.")
                .and_then(|name| spans.environment.get(name).cloned())
                .or_else(|| {
                    // The whole environment: the job's largest variable.
                    (key == "environment")
                        .then(|| {
                            spans
                                .environment
                                .iter()
                                .max_by_key(|(name, _)| {
                                    job.environment.get(*name).map_or(0, String::len)
                                })
                                .map(|(_, span)| span.clone())
                        })
                        .flatten()
                }),
        };
        diags.push(
            crate::diag::Severity::Error,
            span,
            Some(&problem.key),
            problem.message,
            Some(render::TooLarge::HINT.into()),
        );
    }
}

/// Reports the schedules that can never fire between `now` and the job's
/// end: errors when none of the job's schedules can, warnings otherwise.
fn check_firing(
    spec: &JobSpec,
    timezone: Option<&str>,
    now: &Now<'_>,
    zones: &dyn ZoneLookup,
    diags: &mut Diagnostics<'_>,
) {
    if spec.schedules.is_empty() {
        return;
    }
    let not_after = spec.not_after.as_ref().map(|d| d.value);
    let Some(window) = window(now, not_after, timezone, zones) else {
        return;
    };
    let dead: Vec<(&Sp<Schedule>, schedule::NeverFires)> = spec
        .schedules
        .iter()
        .filter_map(|s| {
            schedule::never_fires(&s.value, timezone, &window, zones).map(|why| (s, why))
        })
        .collect();
    let none_fires = dead.len() == spec.schedules.len() && spec.on_boot.is_none();
    for (s, why) in dead {
        let key = s.value.key();
        let message = format!(
            "{} can never fire: {}",
            s.value.subject(),
            why.why(not_after)
        );
        if none_fires {
            diags.error(s.span.clone(), key, message, Some(why.hint().to_string()));
        } else {
            diags.warning(
                s.span.clone(),
                key,
                message,
                Some("the job's other schedules still fire; remove this one".to_string()),
            );
        }
    }
}

/// The job's value, else the default's.
fn pick<'a, T>(own: &'a Option<T>, default: &'a Option<T>) -> Option<&'a T> {
    own.as_ref().or(default.as_ref())
}

/// Whether any error already names one of these keys (so a missing-key error
/// would only repeat it).
fn diags_mention(diags: &Diagnostics<'_>, keys: &[&str]) -> bool {
    diags.has_error_for(|k| {
        keys.iter()
            .any(|key| k == *key || k.starts_with(&format!("{key}[")))
    })
}

/// Whether an unknown top-level key was reported that looks like a typo of
/// one of `keys` (then "missing key" errors would only repeat it).
fn typo_of(diags: &Diagnostics<'_>, keys: &[&str]) -> bool {
    diags.has_error_for(|k| {
        !k.contains('.') && !keys.contains(&k) && walk::suggest(k, keys).is_some()
    })
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

fn check_plain(
    reader: &TableReader<'_, '_>,
    key: &str,
    value: &Sp<String>,
    hint: &str,
    diags: &mut Diagnostics<'_>,
) -> bool {
    match escape::check_plain(&value.value) {
        Ok(()) => true,
        Err(err) => {
            diags.error(
                value.span.clone(),
                &reader.path(key),
                format!("the value {err}"),
                Some(hint.to_string()),
            );
            false
        }
    }
}

/// Text shown to people (`owner`, `tags`, metadata): no control characters,
/// so that `jobctl list` cannot be made to print terminal escapes.
fn check_display(
    reader: &TableReader<'_, '_>,
    key: &str,
    value: &Sp<String>,
    diags: &mut Diagnostics<'_>,
) -> bool {
    if let Some(c) = value.value.chars().find(|c| c.is_control()) {
        diags.error(
            value.span.clone(),
            &reader.path(key),
            format!("the value contains {}", naming::describe_char(c)),
            Some("keep it on one line, without control characters".into()),
        );
        return false;
    }
    true
}

fn check_absolute_path(
    reader: &TableReader<'_, '_>,
    key: &str,
    path: &Sp<String>,
    diags: &mut Diagnostics<'_>,
) -> bool {
    if !path.value.starts_with('/') {
        diags.error(
            path.span.clone(),
            &reader.path(key),
            format!("\"{}\" is not an absolute path", path.value.escape_debug()),
            Some("write the full path, starting with /".into()),
        );
        return false;
    }
    if path.value.split('/').any(|c| c == "." || c == "..") {
        diags.error(
            path.span.clone(),
            &reader.path(key),
            format!("\"{}\" contains . or .. components", path.value),
            Some("write the path without . and .., as systemd requires normalized paths".into()),
        );
        return false;
    }
    check_plain(
        reader,
        key,
        path,
        "paths must be single lines without control characters or surrounding spaces",
        diags,
    )
}

fn check_timezone(name: &str, zones: &dyn ZoneLookup) -> Result<String, String> {
    if name.eq_ignore_ascii_case("UTC") {
        return Ok("UTC".into());
    }
    if name.is_empty()
        || name.starts_with('/')
        || name.contains("..")
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(format!(
            "\"{}\" is not a time zone name",
            name.escape_debug()
        ));
    }
    match zones.zone(name) {
        Some(_) => Ok(name.to_string()),
        None => Err(format!(
            "unknown time zone \"{name}\" (names are case-sensitive)"
        )),
    }
}

fn check_memory(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value == "infinity" {
        return Ok(value.into());
    }
    if value.ends_with('%') {
        return match check_percentage(value, 100) {
            Ok(p) if p > 0 => Ok(format!("{p}%")),
            _ => Err(format!("\"{value}\" is not a percentage from 1% to 100%")),
        };
    }
    match ByteSize::parse(value) {
        Ok(size) if size.bytes() > 0 => Ok(size.to_string()),
        Ok(_) => Err("a memory limit of 0 would stop the job from running at all".into()),
        Err(err) => Err(err.to_string()),
    }
}

/// `N%` with N a whole number up to `max`.
fn check_percentage(value: &str, max: u64) -> Result<u64, ()> {
    let digits = value.trim().strip_suffix('%').ok_or(())?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let n: u64 = digits.parse().map_err(|_| ())?;
    if n > max {
        return Err(());
    }
    Ok(n)
}

/// Directives jobctl writes itself, per section, and what to do instead.
const UNIT_RESERVED: &[(&str, &str)] = &[
    ("Description", "use the job key `description`"),
    ("After", "use the job key `after`"),
    ("Wants", "use the job key `wants`"),
    ("OnFailure", "use the job key `on_failure`"),
];
const SERVICE_RESERVED: &[(&str, &str)] = &[
    ("Type", "remove it: jobs are always Type=oneshot"),
    ("ExecStart", "use the job key `command` (or `shell`)"),
    (
        "KillMode",
        "remove it: jobctl needs KillMode=mixed to record stopped runs",
    ),
    ("User", "use the job key `user`"),
    ("Group", "use the job key `group`"),
    ("DynamicUser", "use the job key `dynamic_user`"),
    ("WorkingDirectory", "use the job key `working_directory`"),
    ("Environment", "use the job table `environment`"),
    ("EnvironmentFile", "use the job key `environment_file`"),
    ("TimeoutStartSec", "use the job key `timeout`"),
    ("TimeoutSec", "use the job key `timeout`"),
    (
        "RuntimeMaxSec",
        "use the job key `timeout` (RuntimeMaxSec= does nothing for oneshot services)",
    ),
    ("StandardInput", "use the job key `stdin`"),
    ("StandardInputText", "use the job key `stdin`"),
    ("StandardInputData", "use the job key `stdin`"),
    (
        "SyslogIdentifier",
        "remove it: jobctl tags journal lines with the job's name",
    ),
    ("Nice", "use the job key `nice`"),
    ("MemoryMax", "use the job key `memory_max`"),
    ("CPUQuota", "use the job key `cpu_quota`"),
    ("IOWeight", "use the job key `io_weight`"),
    ("PrivateTmp", "use the job key `private_tmp`"),
    ("ProtectSystem", "use the job key `protect_system`"),
    ("NoNewPrivileges", "use the job key `no_new_privileges`"),
];
const TIMER_RESERVED: &[(&str, &str)] = &[
    (
        "OnCalendar",
        "use the job key `on_calendar` (or cron, every, hourly, daily, weekly, monthly)",
    ),
    ("OnBootSec", "use the job key `on_boot`"),
    ("OnActiveSec", "use the job key `every`"),
    ("OnUnitActiveSec", "use the job key `every`"),
    ("Persistent", "use the job key `persistent`"),
    ("RandomizedDelaySec", "use the job key `randomized_delay`"),
    ("AccuracySec", "use the job key `accuracy`"),
    (
        "Unit",
        "remove it: a job's timer always starts the job's service",
    ),
];

/// The directives of one `*_extra` table, and where each name is written.
type ExtraTable = (Vec<(String, String)>, Vec<(String, Range<usize>)>);

fn decode_extra(
    reader: &TableReader<'_, '_>,
    key: &str,
    reserved: &[(&str, &str)],
    diags: &mut Diagnostics<'_>,
) -> ExtraTable {
    let mut out = Vec::new();
    let mut names = Vec::new();
    let Some(table) = reader.table(key, "{ LimitNOFILE = \"65536\" }", diags) else {
        return (out, names);
    };
    // Keep the file's order: toml's map is sorted, spans are not.
    let mut entries: Vec<_> = table.value.iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    for (name, value) in entries {
        let name_str: &str = name.get_ref();
        let path = reader.path(&format!("{key}.{name_str}"));
        if let Err(message) = naming::check_directive_name(name_str) {
            diags.error(name.span(), &path, message, None);
            continue;
        }
        if name_str.starts_with("X-Jobctl") {
            diags.error(
                name.span(),
                &path,
                "X-Jobctl-* keys are jobctl's ownership marks",
                Some("use another name, e.g. X-Team-Owner".into()),
            );
            continue;
        }
        if let Some((_, hint)) = reserved.iter().find(|(d, _)| *d == name_str) {
            let hint = hint.to_string();
            diags.error(
                name.span(),
                &path,
                format!("{name_str}= is set by jobctl"),
                Some(hint),
            );
            continue;
        }
        let values: Vec<(String, Range<usize>)> = match value.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| scalar_text(item.get_ref()).map(|t| (t, item.span())))
                .collect(),
            other => match scalar_text(other) {
                Some(t) => vec![(t, value.span())],
                None => Vec::new(),
            },
        };
        if values.is_empty() && !matches!(value.get_ref(), DeValue::Array(a) if a.is_empty()) {
            diags.error(
                value.span(),
                &path,
                format!(
                    "expected a string or an array of strings, found {}",
                    walk::type_name(value.get_ref())
                ),
                Some(format!("e.g. {name_str} = \"value\"")),
            );
            continue;
        }
        names.push((name_str.to_string(), name.span()));
        for (text, span) in values {
            match escape::check_raw_directive_value(&text) {
                Ok(()) => out.push((name_str.to_string(), text)),
                Err(err) => diags.error(span, &path, format!("the value {err}"), Some("a directive is one line; use an array for several lines of the same directive".into())),
            }
        }
    }
    (out, names)
}

fn scalar_text(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => Some(i.as_str().replace('_', "")),
        DeValue::Float(f) => Some(f.as_str().to_string()),
        DeValue::Boolean(b) => Some(if *b { "yes" } else { "no" }.to_string()),
        _ => None,
    }
}

fn decode_units(
    reader: &TableReader<'_, '_>,
    key: &str,
    diags: &mut Diagnostics<'_>,
) -> Option<Vec<String>> {
    reader.raw(key)?;
    let mut out = Vec::new();
    for (index, unit) in reader
        .string_list(key, "[\"network-online.target\"]", diags)
        .into_iter()
        .enumerate()
    {
        match naming::check_unit_name(&unit.value) {
            Ok(()) => out.push(unit.value),
            Err(message) => diags.error(
                unit.span,
                &reader.path(&format!("{key}[{index}]")),
                message,
                Some("name a unit with its type, e.g. \"network-online.target\"".into()),
            ),
        }
    }
    Some(out)
}

fn decode_retry(reader: &TableReader<'_, '_>, diags: &mut Diagnostics<'_>) -> Option<Sp<Retry>> {
    let table = reader.table("retry", "{ attempts = 3, delay = \"30s\" }", diags)?;
    let inner = TableReader::new(
        &reader.path("retry"),
        table.value,
        &["attempts", "delay", "backoff", "max_delay"],
        &[
            (
                "max_attempts",
                "use `attempts` (attempts in all, the first run included)",
            ),
            ("interval", "use `delay`"),
        ],
        diags,
    );
    let attempts = match inner.integer("attempts", "3", diags) {
        Some(a) if (1..=i64::from(MAX_RETRY_ATTEMPTS)).contains(&a.value) => a.value as u32,
        Some(a) => {
            diags.error(
                a.span,
                &inner.path("attempts"),
                format!("attempts = {} is out of range", a.value),
                Some(format!(
                    "attempts counts every run, the first included: use 1 to {MAX_RETRY_ATTEMPTS}"
                )),
            );
            return None;
        }
        None => {
            if inner.raw("attempts").is_none() {
                diags.error(
                    table.span.clone(),
                    &reader.path("retry"),
                    "`retry` needs `attempts`",
                    Some("e.g. retry = { attempts = 3, delay = \"30s\" }".into()),
                );
            }
            return None;
        }
    };
    let delay = inner
        .duration("delay", "\"30s\"", diags)
        .map_or(Timespan::from_secs(30), |d| d.value);
    let backoff = match inner.float("backoff", "2.0", diags) {
        Some(b) if (1.0..=10.0).contains(&b.value) => b.value,
        Some(b) => {
            diags.error(
                b.span,
                &inner.path("backoff"),
                format!("backoff = {} is out of range", b.value),
                Some(
                    "use 1.0 (a constant delay) to 10.0; 2.0 doubles the delay after each attempt"
                        .into(),
                ),
            );
            return None;
        }
        None => 1.0,
    };
    let max_delay = inner
        .duration("max_delay", "\"10m\"", diags)
        .map(|d| d.value);
    if delay.is_infinite() || max_delay.is_some_and(|m| m.is_infinite()) {
        diags.error(
            table.span.clone(),
            &reader.path("retry"),
            "retry delays must be finite",
            None,
        );
        return None;
    }
    Some(Sp::new(
        Retry {
            attempts,
            delay,
            backoff,
            max_delay,
        },
        table.span,
    ))
}

/// Decodes the `[defaults]` table of the global configuration.
pub(crate) fn decode_defaults(
    table: &DeTable<'_>,
    mode: Mode,
    zones: &dyn ZoneLookup,
    diags: &mut Diagnostics<'_>,
) -> JobSpec {
    let reader = TableReader::new("defaults", table, DEFAULTABLE_KEYS, KEY_ALIASES, diags);
    JobSpec::decode(&reader, mode, zones, diags)
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
