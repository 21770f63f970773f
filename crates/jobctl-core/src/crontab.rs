//! Crontab files, read as Vixie cron (Debian's cron 3.0pl1) reads them, and
//! turned into jobctl job files.
//!
//! [`parse`] reads a user crontab (`crontab -e`) or a system crontab
//! (`/etc/crontab`, `/etc/cron.d/*`, with a user column): comments, blank
//! lines, environment settings (cron's own `NAME = VALUE` grammar, quotes
//! included) and job lines, each with the environment in effect and the
//! comment block just above it. The command is split at its first unescaped
//! `%` as cron does: the rest is the command's standard input.
//!
//! [`import`] turns the parsed crontab into one job file per job line (TOML
//! text, with the keys documented in docs/job-file.md) and lists what it
//! could not translate and why. It does no I/O: the `jobctl import crontab`
//! command reads the file, validates every generated job with the job
//! loader and writes them.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::cron::{self, CronError};
use crate::duration::Timespan;
use crate::naming::MAX_JOB_NAME_LEN;

/// Which crontab format to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrontabFormat {
    /// A user's crontab: five schedule fields, then the command.
    User,
    /// `/etc/crontab` and `/etc/cron.d/*`: the schedule, a user name, then
    /// the command.
    System,
}

/// One job line of a crontab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrontabEntry {
    /// 1-based line number.
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// The schedule: five fields joined by single spaces, or an @-macro.
    pub schedule: String,
    /// The user column of a system crontab.
    pub user: Option<String>,
    /// The command as cron passes it to the shell (up to the first
    /// unescaped `%`, with `\%` unescaped).
    pub command: String,
    /// What cron writes to the command's standard input: the text after the
    /// first unescaped `%`, each further `%` a newline, with a final newline.
    pub stdin: Option<String>,
    /// The environment settings above this line, in order (later wins).
    pub environment: Vec<(String, String)>,
    /// The comment lines right above this line (no blank line between).
    pub comment: Vec<String>,
}

/// A line that is neither a comment, a setting nor a valid job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrontabProblem {
    pub line: usize,
    pub text: String,
    pub message: String,
    pub hint: Option<String>,
}

/// A parsed crontab.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Crontab {
    pub entries: Vec<CrontabEntry>,
    pub problems: Vec<CrontabProblem>,
}

/// Parses a crontab's text.
pub fn parse(text: &str, format: CrontabFormat) -> Crontab {
    let mut crontab = Crontab::default();
    let mut environment: Vec<(String, String)> = Vec::new();
    let mut comment: Vec<String> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        // A crontab saved with CRLF line ends.
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(c) = trimmed.strip_prefix('#') {
            comment.push(c.trim().to_string());
            continue;
        }
        if let Some((name, value)) = parse_env(line) {
            environment.push((name, value));
            comment.clear();
            continue;
        }
        match parse_entry(line, number, format) {
            Ok(mut entry) => {
                entry.environment = environment.clone();
                entry.comment = std::mem::take(&mut comment);
                crontab.entries.push(entry);
            }
            Err(problem) => {
                comment.clear();
                crontab.problems.push(problem);
            }
        }
    }
    crontab
}

/// cron's `load_env`: `NAME = VALUE`, either side optionally quoted.
/// Returns `None` for lines that are not settings (cron then reads them as
/// jobs). Note that `NAME=` with nothing after it is not a setting for
/// cron; `NAME=""` is.
pub fn parse_env(line: &str) -> Option<(String, String)> {
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum State {
        NameI,
        Name,
        Eq1,
        Eq2,
        ValueI,
        Value,
        Fini,
        Error,
    }
    let bytes = line.as_bytes();
    let mut state = State::NameI;
    let mut quote: Option<u8> = None;
    let mut name: Vec<u8> = Vec::new();
    let mut value: Vec<u8> = Vec::new();
    let mut in_value = false;
    let mut i = 0;
    let space = |b: u8| b.is_ascii_whitespace() || b == 0x0b;
    while state != State::Error && i < bytes.len() {
        match state {
            State::NameI | State::ValueI => {
                if bytes[i] == b'\'' || bytes[i] == b'"' {
                    quote = Some(bytes[i]);
                    i += 1;
                }
                state = if state == State::NameI {
                    State::Name
                } else {
                    State::Value
                };
                if i >= bytes.len() {
                    break;
                }
                // Falls through to Name/Value with the same character.
                continue;
            }
            State::Name | State::Value => {
                let c = bytes[i];
                if let Some(q) = quote {
                    if c == q {
                        state = if state == State::Name {
                            State::Eq1
                        } else {
                            State::Fini
                        };
                        i += 1;
                        continue;
                    }
                    if state == State::Name && c == b'=' {
                        state = State::Error;
                        continue;
                    }
                } else if state == State::Name {
                    if space(c) {
                        i += 1;
                        state = State::Eq1;
                        continue;
                    }
                    if c == b'=' {
                        state = State::Eq1;
                        continue;
                    }
                }
                if in_value {
                    value.push(c)
                } else {
                    name.push(c)
                }
                i += 1;
            }
            State::Eq1 => {
                if bytes[i] == b'=' {
                    state = State::Eq2;
                    in_value = true;
                    quote = None;
                } else if !space(bytes[i]) {
                    state = State::Error;
                }
                i += 1;
            }
            State::Eq2 | State::Fini => {
                if space(bytes[i]) {
                    i += 1;
                } else {
                    state = if state == State::Eq2 {
                        State::ValueI
                    } else {
                        State::Error
                    };
                }
            }
            State::Error => {}
        }
    }
    if state != State::Fini && !(state == State::Value && quote.is_none()) {
        return None;
    }
    let mut value = String::from_utf8_lossy(&value).into_owned();
    if state == State::Value {
        // An unquoted value ends at its last non-blank character.
        value.truncate(value.trim_end().len());
    }
    // cron strips one pair of matching quotes left in the value.
    let trimmed = value.trim_end().to_string();
    let b = trimmed.as_bytes();
    let value = if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        trimmed[1..trimmed.len() - 1].to_string()
    } else {
        trimmed
    };
    Some((String::from_utf8_lossy(&name).into_owned(), value))
}

/// The next blank-separated token of `line` from `*pos`.
fn token<'a>(line: &'a str, pos: &mut usize) -> Option<&'a str> {
    let bytes = line.as_bytes();
    while *pos < bytes.len() && matches!(bytes[*pos], b' ' | b'\t') {
        *pos += 1;
    }
    let start = *pos;
    while *pos < bytes.len() && !matches!(bytes[*pos], b' ' | b'\t') {
        *pos += 1;
    }
    (*pos > start).then(|| &line[start..*pos])
}

fn parse_entry(
    line: &str,
    number: usize,
    format: CrontabFormat,
) -> Result<CrontabEntry, CrontabProblem> {
    let problem = |message: String, hint: Option<String>| CrontabProblem {
        line: number,
        text: line.to_string(),
        message,
        hint,
    };
    let mut pos = 0;
    let first = token(line, &mut pos).unwrap_or_default();
    let schedule = if first.starts_with('@') {
        first.to_string()
    } else {
        let mut fields = vec![first];
        for _ in 0..4 {
            match token(line, &mut pos) {
                Some(f) => fields.push(f),
                None => {
                    return Err(problem(
                        "not a setting and not a job line: a job line has five schedule fields and a command"
                            .to_string(),
                        line.contains('=').then(|| {
                            "cron reads `NAME=` with nothing after it as a broken job line; write `NAME=\"\"`"
                                .to_string()
                        }),
                    ));
                }
            }
        }
        fields.join(" ")
    };
    if let Err(e) = cron::parse(&schedule) {
        return Err(schedule_problem(line, number, &schedule, &e));
    }
    let user = match format {
        CrontabFormat::User => None,
        CrontabFormat::System => match token(line, &mut pos) {
            Some(u) => Some(u.to_string()),
            None => {
                return Err(problem(
                    "missing the user column (system crontabs name the user before the command)".to_string(),
                    Some("write `SCHEDULE USER COMMAND`, e.g. `0 3 * * * root /usr/sbin/logrotate /etc/logrotate.conf`".to_string()),
                ));
            }
        },
    };
    let rest = line[pos..].trim_start_matches([' ', '\t']);
    if rest.is_empty() {
        return Err(problem("missing the command".to_string(), None));
    }
    let (command, stdin) = split_percent(rest);
    if command.trim().is_empty() {
        return Err(problem(
            "the command is empty (the line starts with `%`)".to_string(),
            Some(
                "`%` ends the command and starts its input; write `\\%` for a literal `%`"
                    .to_string(),
            ),
        ));
    }
    Ok(CrontabEntry {
        line: number,
        text: line.to_string(),
        schedule,
        user,
        command,
        stdin,
        environment: Vec::new(),
        comment: Vec::new(),
    })
}

fn schedule_problem(line: &str, number: usize, schedule: &str, e: &CronError) -> CrontabProblem {
    CrontabProblem {
        line: number,
        text: line.to_string(),
        message: format!("schedule \"{schedule}\": {}", e.message()),
        hint: e.hint().map(str::to_string),
    }
}

/// Splits a command at its first unescaped `%` as cron does (do_command.c):
/// in the command `\%` becomes `%` and `\\` becomes `\`; the rest becomes
/// standard input, with `%` → newline, `\%` → `%`, other backslashes kept,
/// and a final newline added when missing.
pub fn split_percent(text: &str) -> (String, Option<String>) {
    let mut command = String::new();
    let mut chars = text.chars();
    let mut escaped = false;
    let mut rest: Option<&str> = None;
    let mut consumed = 0;
    for c in chars.by_ref() {
        consumed += c.len_utf8();
        if escaped {
            if c == '%' || c == '\\' {
                command.pop();
            }
            command.push(c);
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
            command.push(c);
            continue;
        }
        if c == '%' {
            rest = Some(&text[consumed..]);
            break;
        }
        command.push(c);
    }
    let stdin = rest.filter(|r| !r.is_empty()).map(|r| {
        let mut out = String::new();
        let mut escaped = false;
        let mut need_newline = false;
        for c in r.chars() {
            let mut ch = c;
            if escaped {
                if ch != '%' {
                    out.push('\\');
                }
            } else if ch == '%' {
                ch = '\n';
            }
            // Every backslash starts an escape, even one that ended another.
            escaped = ch == '\\';
            if !escaped {
                out.push(ch);
                need_newline = ch != '\n';
            }
        }
        if escaped {
            out.push('\\');
        }
        if need_newline {
            out.push('\n');
        }
        out
    });
    (command, stdin)
}

/// Where a crontab's text came from, as far as its owner goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrontabOrigin<'a> {
    /// Standard input, a pipe or anything else that is not a regular file
    /// (`crontab -l | jobctl import crontab -`): it has no owner.
    Stream,
    /// A regular file.
    File {
        /// Its path, absolute and with links resolved.
        path: &'a str,
        /// Its owner.
        uid: u32,
        /// The owner's user name, when the user database has one.
        owner: Option<&'a str>,
    },
}

/// The folders cron keeps users' crontabs in, one file per user named after
/// the user: Debian's cron, then cronie's.
pub const CRON_SPOOLS: &[&str] = &["/var/spool/cron/crontabs", "/var/spool/cron"];

/// Who the imported jobs run as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobUser {
    /// The `user` key of every job of a user crontab; `None` when each line
    /// names its own (system crontab) or in per-user mode (the jobs run as
    /// the user whose manager runs them).
    pub user: Option<String>,
    /// Where that comes from, for the report.
    pub source: String,
}

/// Why the user a crontab's jobs run as cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobUserError {
    pub message: String,
    pub hint: String,
}

/// Decides who the jobs of a crontab run as.
///
/// cron runs the jobs of a user crontab as the user it belongs to, and those
/// of a system crontab as the user each line names. So:
///
/// - a system crontab: each line's user column (`--job-user` is refused:
///   it would be ignored);
/// - per-user mode: the caller's own manager runs the jobs, so no `user`
///   (and `--job-user` is refused: a user manager cannot switch users);
/// - a user crontab with `--job-user`: that user;
/// - a user crontab in cron's spool ([`CRON_SPOOLS`]): the user it is named
///   after, who must own it (cron ignores the file otherwise);
/// - another file owned by someone other than root: its owner;
/// - anything else, refused: a pipe has no owner, and a root-owned copy
///   outside the spool may be anyone's crontab (`crontab -l -u alice >
///   file` as root). Jobs of a user crontab never become root's by default.
pub fn job_user(
    format: CrontabFormat,
    mode: crate::context::Mode,
    explicit: Option<&str>,
    origin: CrontabOrigin<'_>,
) -> Result<JobUser, JobUserError> {
    use crate::context::Mode;
    let name_it =
        "name the user the jobs run as with --job-user USER (-u USER), as `crontab -u USER` does";
    match (format, mode, explicit) {
        (CrontabFormat::System, _, Some(_)) => {
            return Err(JobUserError {
                message: "--job-user applies to user crontabs; a system crontab names the user on each line".to_string(),
                hint: "drop --job-user, or import the file with --format user if it has no user column".to_string(),
            });
        }
        (CrontabFormat::System, Mode::User, None) => {
            return Err(JobUserError {
                message: "a system crontab runs its jobs as the users its lines name; per-user jobs (--user) can only run as you".to_string(),
                hint: "import it without --user, as root, or import your own crontab (`crontab -l`) with --format user".to_string(),
            });
        }
        (CrontabFormat::System, Mode::System, None) => {
            return Ok(JobUser {
                user: None,
                source: "the user column of each line".to_string(),
            });
        }
        (CrontabFormat::User, Mode::User, Some(_)) => {
            return Err(JobUserError {
                message: "--job-user cannot be used with --user: per-user jobs run as the user whose manager runs them".to_string(),
                hint: "drop --job-user (the jobs run as you), or import without --user, as root".to_string(),
            });
        }
        (CrontabFormat::User, Mode::User, None) => {
            return Ok(JobUser {
                user: None,
                source: "you: your own systemd user manager runs them (--user)".to_string(),
            });
        }
        (CrontabFormat::User, Mode::System, Some(user)) => {
            return Ok(JobUser {
                user: Some(user.to_string()),
                source: "--job-user".to_string(),
            });
        }
        (CrontabFormat::User, Mode::System, None) => {}
    }
    let CrontabOrigin::File { path, uid, owner } = origin else {
        return Err(JobUserError {
            message: "cannot tell whose crontab this is: it was read from standard input or a pipe, which has no owner, and cron runs a user crontab's jobs as that user".to_string(),
            hint: name_it.to_string(),
        });
    };
    let owner_text = || owner.map_or_else(|| format!("uid {uid}"), str::to_string);
    let spool_user = CRON_SPOOLS.iter().find_map(|spool| {
        path.strip_prefix(spool)?
            .strip_prefix('/')
            .filter(|name| !name.is_empty() && !name.contains('/'))
    });
    if let Some(name) = spool_user {
        if owner == Some(name) {
            return Ok(JobUser {
                user: Some(name.to_string()),
                source: format!("{path} is {name}'s crontab in cron's spool"),
            });
        }
        return Err(JobUserError {
            message: format!(
                "{path} is owned by {}, not by {name}: cron does not run a crontab its user does not own",
                owner_text()
            ),
            hint: name_it.to_string(),
        });
    }
    match owner {
        Some(owner) if uid != 0 => Ok(JobUser {
            user: Some(owner.to_string()),
            source: format!("{owner} owns {path}"),
        }),
        _ if uid != 0 => Err(JobUserError {
            message: format!("{path} is owned by uid {uid}, which has no user name"),
            hint: name_it.to_string(),
        }),
        _ => Err(JobUserError {
            message: format!(
                "cannot tell whose crontab {path} is: it is owned by root but is not root's crontab in cron's spool ({}/root), so it may be a copy of anyone's",
                CRON_SPOOLS[0]
            ),
            hint: format!("{name_it}; --job-user root if the jobs really are root's"),
        }),
    }
}

/// The timeout imported jobs get unless told otherwise: jobctl's default,
/// written into every file so that the file says what will happen.
pub const IMPORT_TIMEOUT: Timespan = Timespan::from_secs(3600);

/// How [`import`] writes jobs.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// How to name the crontab in `metadata.source` (e.g. `/etc/crontab`).
    pub source_name: String,
    /// The user to run jobs of a user crontab as (system crontabs name
    /// their own); see [`job_user`].
    pub user: Option<String>,
    /// The `timeout` written into every job (cron had none); `None` writes
    /// no key.
    pub timeout: Option<Timespan>,
    /// The mail channels the global configuration already has (name →
    /// addresses): a MAILTO with the same addresses uses that channel
    /// rather than a new one.
    pub mail_channels: BTreeMap<String, Vec<String>>,
}

/// A mail channel that MAILTO became (`[notify.channels.NAME] mail = …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailChannel {
    pub name: String,
    /// The addresses, as the channel's `mail` key.
    pub mail: Vec<String>,
    /// The MAILTO value, as the crontab wrote it.
    pub mailto: String,
    /// The configuration defines it already (same addresses).
    pub in_config: bool,
    /// The crontab lines of the jobs that notify it.
    pub lines: Vec<usize>,
}

impl MailChannel {
    /// The channel's definition for the global configuration, ready to
    /// paste.
    pub fn toml(&self) -> String {
        let mail: Vec<String> = self.mail.iter().map(|a| toml_string(a)).collect();
        let bare = self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        let key = if bare {
            self.name.clone()
        } else {
            toml_string(&self.name)
        };
        format!("[notify.channels.{key}]\nmail = [{}]\n", mail.join(", "))
    }
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// What a MAILTO value means for the jobs after it (cron's rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailto {
    /// `MAILTO=""`: cron sends no mail; the jobs get `notify = []`.
    Off,
    /// These addresses: a mail channel.
    To(Vec<String>),
    /// Not addresses jobctl can send to, and why.
    Unusable(String),
}

/// Reads a MAILTO value: addresses separated by commas (cronie and
/// Debian's cron hand the value to sendmail, which takes a list); a bare
/// local user name (`root`: cron mails that user) becomes
/// `NAME@localhost`, which the local mail system delivers to that user.
pub fn parse_mailto(value: &str) -> Mailto {
    let value = value.trim();
    if value.is_empty() {
        return Mailto::Off;
    }
    let mut addresses: Vec<String> = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let address = if !part.contains('@')
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            format!("{part}@localhost")
        } else {
            part.to_string()
        };
        if let Err(e) = crate::notify::check_address(&address) {
            return Mailto::Unusable(e);
        }
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        return Mailto::Off;
    }
    Mailto::To(addresses)
}

/// The name of a new channel for `addresses`: `mailto-` and the addresses
/// in the characters channel names allow, unique among `taken`.
fn mail_channel_name(addresses: &[String], taken: &dyn Fn(&str) -> bool) -> String {
    let mut base = String::from("mailto-");
    let mut dash = false;
    for c in addresses.join("-").chars() {
        // No '.': a name with one would have to be quoted in the
        // `[notify.channels.NAME]` header.
        if c.is_ascii_alphanumeric() || c == '_' {
            base.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash {
            base.push('-');
            dash = true;
        }
    }
    let base = base.trim_end_matches('-').to_string();
    let limit = crate::notify::MAX_CHANNEL_NAME_LEN - 4;
    let base = if base.len() > limit {
        base[..limit].trim_end_matches('-').to_string()
    } else {
        base
    };
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken(name))
        .unwrap_or(base)
}

/// One job file to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedJob {
    /// The job's name (the file is `NAME.toml`).
    pub name: String,
    /// The crontab line it came from.
    pub line: usize,
    pub cron: String,
    /// The `OnCalendar=` lines the schedule becomes.
    pub on_calendar: Vec<String>,
    /// The job file's text.
    #[serde(skip)]
    pub toml: String,
    /// What the operator should know about this job.
    pub notes: Vec<String>,
}

/// What an import would write, and what it could not translate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportPlan {
    pub jobs: Vec<ImportedJob>,
    pub skipped: Vec<CrontabProblem>,
    /// Notes about the whole crontab (e.g. MAILTO).
    pub notes: Vec<String>,
    /// The mail channels MAILTO lines became, in the order they appear.
    pub channels: Vec<MailChannel>,
}

/// The job-file keys an imported job uses (see docs/job-file.md).
#[derive(Debug, Serialize)]
struct JobFile {
    description: String,
    cron: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<String>,
    /// MAILTO's channel (`[]`: `MAILTO=""`).
    #[serde(skip_serializing_if = "Option::is_none")]
    notify: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shell: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdin: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
}

/// cron's PATH when the crontab sets none (`_PATH_DEFPATH`).
pub const CRON_DEFAULT_PATH: &str = "/usr/bin:/bin";

/// Settings that configure cron itself rather than the command.
const CRON_SETTINGS: &[&str] = &[
    "MAILTO",
    "MAILFROM",
    "CRON_TZ",
    "CONTENT_TYPE",
    "CONTENT_TRANSFER_ENCODING",
];

/// The most `stdin` a job file may hold (docs/job-file.md).
const STDIN_MAX: usize = 32 * 1024;

/// Turns a parsed crontab into job files.
pub fn import(crontab: &Crontab, options: &ImportOptions) -> ImportPlan {
    let mut plan = ImportPlan {
        jobs: Vec::new(),
        skipped: crontab.problems.clone(),
        notes: Vec::new(),
        channels: Vec::new(),
    };
    if let Some(timeout) = options.timeout {
        plan.notes.push(if timeout.is_infinite() {
            "timeout = \"infinity\" in every job, as cron never stopped a job; but where cron started another copy next time, systemd starts none while a run hangs: the job's later runs wait for it".to_string()
        } else {
            format!(
                "timeout = \"{timeout}\" in every job: cron never stopped a job, jobctl stops a run after {timeout} and records it as `timeout`; raise it in the files where a run may take longer (--timeout DUR chooses another, \"infinity\" none)"
            )
        });
    }
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut unusable_noted: Vec<String> = Vec::new();
    for entry in &crontab.entries {
        let env: BTreeMap<String, String> = entry.environment.iter().cloned().collect();
        let mut notes = Vec::new();
        let skip = |message: String, hint: Option<String>| CrontabProblem {
            line: entry.line,
            text: entry.text.clone(),
            message,
            hint,
        };

        let schedule = match cron::parse(&entry.schedule) {
            Ok(s) => s,
            Err(e) => {
                plan.skipped.push(schedule_problem(
                    &entry.text,
                    entry.line,
                    &entry.schedule,
                    &e,
                ));
                continue;
            }
        };
        let translation = schedule.to_systemd();

        // The schedule's zone: CRON_TZ (cronie), else TZ.
        let zone_setting = env
            .get("CRON_TZ")
            .map(|z| ("CRON_TZ", z))
            .or_else(|| env.get("TZ").map(|z| ("TZ", z)));
        let timezone = match zone_setting {
            Some((_, z)) if z.trim_start_matches(':').is_empty() => None,
            Some((key, z)) => {
                let zone = z.trim_start_matches(':').to_string();
                if key == "TZ" {
                    notes.push(format!(
                        "TZ={z} became the job's timezone (cronie schedules by it; Debian's cron schedules in the system zone and only passes TZ to the command)"
                    ));
                }
                Some(zone)
            }
            None => None,
        };

        // The shell cron would run the command with.
        let shell_path = env.get("SHELL").map_or("/bin/sh", String::as_str);
        let (shell, command) = if shell_path == "/bin/sh" {
            (Some(entry.command.clone()), None)
        } else {
            if !shell_path.starts_with('/') {
                plan.skipped.push(skip(
                    format!("SHELL={shell_path} is not an absolute path"),
                    Some("set SHELL to an absolute path such as /bin/bash".to_string()),
                ));
                continue;
            }
            let note = format!(
                "SHELL={shell_path}: commands run as `{shell_path} -c COMMAND`, as cron ran them"
            );
            if !plan.notes.contains(&note) {
                plan.notes.push(note);
            }
            (
                None,
                Some(vec![
                    shell_path.to_string(),
                    "-c".to_string(),
                    entry.command.clone(),
                ]),
            )
        };

        if let Some(stdin) = &entry.stdin
            && stdin.len() > STDIN_MAX
        {
            plan.skipped.push(skip(
                format!(
                    "the text after `%` is {} bytes; a job's stdin holds at most 32 KiB",
                    stdin.len()
                ),
                Some("move the input into a file and redirect it in the command".to_string()),
            ));
            continue;
        }

        let mut environment = BTreeMap::new();
        for (k, v) in &env {
            if CRON_SETTINGS.contains(&k.as_str()) {
                continue;
            }
            environment.insert(k.clone(), v.clone());
        }
        // cron gives every command SHELL and PATH, its defaults unless the
        // crontab sets them (systemd would give SHELL the user's login shell).
        environment
            .entry("SHELL".to_string())
            .or_insert_with(|| shell_path.to_string());
        if !environment.contains_key("PATH") {
            environment.insert("PATH".to_string(), CRON_DEFAULT_PATH.to_string());
        }

        let mut metadata = BTreeMap::new();
        let source = if options.source_name.is_empty() {
            "crontab"
        } else {
            &options.source_name
        };
        metadata.insert(
            "source".to_string(),
            format!("{source} line {}", entry.line),
        );
        let mut notify = None;
        if let Some(mailto) = env.get("MAILTO") {
            metadata.insert("mailto".to_string(), mailto.clone());
            match parse_mailto(mailto) {
                Mailto::Off => notify = Some(Vec::new()),
                Mailto::To(addresses) => {
                    notify = Some(vec![mail_channel(
                        &mut plan.channels,
                        &options.mail_channels,
                        mailto,
                        addresses,
                        entry.line,
                    )]);
                }
                Mailto::Unusable(why) => {
                    if !unusable_noted.contains(mailto) {
                        plan.notes.push(format!(
                            "MAILTO={mailto} is not a list of mail addresses jobctl can send to ({why}): the jobs after it have no mail channel; add `notify` to them by hand"
                        ));
                        unusable_noted.push(mailto.clone());
                    }
                }
            }
        }
        if translation.on_calendar.len() > 1 {
            notes.push(
                "both day fields are restricted, so cron runs on either: two OnCalendar= lines"
                    .to_string(),
            );
        }
        if translation.on_boot {
            notes.push("@reboot: runs once at boot (OnBootSec=0)".to_string());
        }

        let user = entry.user.clone().or_else(|| options.user.clone());
        let description = if entry.comment.is_empty() {
            let text = format!("{} {}", entry.schedule, entry.command);
            format!("From crontab: {}", shorten(&text, 120))
        } else {
            shorten(&entry.comment.join(" "), 200)
        };
        let name = unique_name(&derive_name(&entry.command), &mut used);

        let file = JobFile {
            description: one_line(&description),
            cron: entry.schedule.clone(),
            // A boot-time job has no calendar to put in a zone.
            timezone: timezone.filter(|_| !translation.on_boot),
            user,
            timeout: options.timeout.map(|t| t.to_string()),
            notify,
            shell,
            command,
            stdin: entry.stdin.clone(),
            environment,
            metadata,
        };
        let body = toml::to_string(&file).unwrap_or_default();
        let toml = format!(
            "# Imported by jobctl from {source} line {}:\n# {}\n\n{body}",
            entry.line,
            comment_safe(&entry.text)
        );
        plan.jobs.push(ImportedJob {
            name,
            line: entry.line,
            cron: entry.schedule.clone(),
            on_calendar: translation.on_calendar,
            toml,
            notes,
        });
    }
    plan.skipped.sort_by_key(|p| p.line);
    if plan.channels.iter().any(|c| !c.mailto.is_empty()) {
        plan.notes.push(
            "MAILTO became mail channels (`notify` in the jobs, listed below): cron mailed a job's output whenever it printed anything; jobctl mails when a run fails and when the job recovers (and for lost, overdue and overrunning runs), never for output alone; read output with `jobctl logs`".to_string(),
        );
    }
    plan
}

/// The channel of `addresses` for the job on `line`: one the configuration
/// has, one this import proposed already, or a new one.
fn mail_channel(
    channels: &mut Vec<MailChannel>,
    configured: &BTreeMap<String, Vec<String>>,
    mailto: &str,
    addresses: Vec<String>,
    line: usize,
) -> String {
    let same = |a: &[String]| {
        let mut a = a.to_vec();
        let mut b = addresses.clone();
        a.sort();
        b.sort();
        a == b
    };
    if let Some(c) = channels.iter_mut().find(|c| same(&c.mail)) {
        c.lines.push(line);
        return c.name.clone();
    }
    let (name, in_config) = match configured.iter().find(|(_, a)| same(a)) {
        Some((name, _)) => (name.clone(), true),
        None => {
            let taken =
                |n: &str| configured.contains_key(n) || channels.iter().any(|c| c.name == n);
            (mail_channel_name(&addresses, &taken), false)
        }
    };
    channels.push(MailChannel {
        name: name.clone(),
        mail: addresses,
        mailto: mailto.to_string(),
        in_config,
        lines: vec![line],
    });
    name
}

/// Programs that run another command: the name comes from what they run.
const WRAPPERS: &[&str] = &[
    "sudo", "nice", "ionice", "nohup", "timeout", "env", "exec", "chronic", "cronic", "flock",
    "run-one", "setlock", "chpst", "time", "command", "builtin", "test", "[", "cd", "true",
];
/// Interpreters: the name comes from the script they run.
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "python", "python2", "python3", "perl", "ruby", "php", "node",
    "lua",
];

/// A name for the job, from its command: the program (or the script an
/// interpreter runs) and its first plain argument, skipping `cd DIR &&`,
/// variable assignments and wrappers such as `sudo -u USER` or `nice -n 10`.
pub fn derive_name(command: &str) -> String {
    // Simple commands, split at shell operators.
    let commands = command.split([';', '|', '&', '(', ')', '`']);
    for simple in commands {
        let words: Vec<&str> = simple
            .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>'))
            .map(|w| w.trim_matches(['"', '\'']))
            .filter(|w| !w.is_empty())
            .collect();
        let mut parts: Vec<String> = Vec::new();
        let mut in_wrapper = false;
        let mut positional_to_skip = 0;
        let mut i = 0;
        while i < words.len() && parts.len() < 2 {
            let word = words[i];
            i += 1;
            if parts.is_empty() {
                if word.contains('=') && !word.starts_with('/') {
                    continue;
                }
                if word.starts_with('-') {
                    // A wrapper's short option may take a value (`-u app`,
                    // `-n 10`); a path or another option is not one.
                    if in_wrapper
                        && word.len() == 2
                        && words
                            .get(i)
                            .is_some_and(|n| !n.starts_with(['-', '/', '.']))
                    {
                        i += 1;
                    }
                    continue;
                }
                if positional_to_skip > 0 {
                    positional_to_skip -= 1;
                    continue;
                }
                let base = word.rsplit('/').next().unwrap_or(word);
                if WRAPPERS.contains(&base) {
                    in_wrapper = true;
                    positional_to_skip =
                        usize::from(matches!(base, "cd" | "flock" | "setlock" | "timeout"));
                    continue;
                }
                if word.parse::<f64>().is_ok() {
                    continue;
                }
                if INTERPRETERS
                    .contains(&base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.'))
                {
                    // Its options take no separate value we could name.
                    in_wrapper = false;
                    continue;
                }
                parts.push(strip_extension(base).to_string());
            } else {
                if word.starts_with('-') {
                    continue;
                }
                if word.contains(['/', '$', '*', '~']) {
                    break;
                }
                parts.push(strip_extension(word).to_string());
            }
        }
        let name = sanitize(&parts.join("-"));
        if !name.is_empty() {
            return name;
        }
    }
    "cron-job".to_string()
}

fn strip_extension(word: &str) -> &str {
    for ext in [".sh", ".py", ".pl", ".rb", ".php", ".js", ".bash"] {
        if let Some(stem) = word.strip_suffix(ext)
            && !stem.is_empty()
        {
            return stem;
        }
    }
    word
}

/// Keeps `[A-Za-z0-9_.-]`, turns other runs into `-`, no leading dot or
/// dash, at most 48 characters.
fn sanitize(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out
        .trim_start_matches(['.', '-'])
        .trim_end_matches(['-', '.']);
    let mut out: String = out.chars().take(48).collect();
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    out
}

/// `name`, or `name-2`, `name-3`… when taken (in line order, so stable).
fn unique_name(base: &str, used: &mut HashMap<String, usize>) -> String {
    let count = used.entry(base.to_string()).or_insert(0);
    *count += 1;
    let mut name = if *count == 1 {
        base.to_string()
    } else {
        format!("{base}-{count}")
    };
    while name.len() > MAX_JOB_NAME_LEN {
        name.remove(0);
    }
    name
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}

/// A description fit for one line of a unit file.
fn one_line(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cleaned.trim().trim_end_matches('\\').trim().to_string()
}

/// Text fit for a TOML comment (no control characters but tab).
fn comment_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests;
