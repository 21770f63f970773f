//! Names: job names, the unit names derived from them, and the shapes of the
//! other names that reach unit files (users, groups, units, environment
//! variables, directives).
//!
//! Every check here is strict on purpose: a name that passes can be written
//! into a unit file verbatim.

use std::fmt;

use serde::Serialize;

/// The longest job name accepted. systemd's unit names are capped at 255
/// bytes; this leaves room for any reasonable prefix and the suffix.
pub const MAX_JOB_NAME_LEN: usize = 100;

/// The default prefix of unit names (`jobctl-<job>.service`).
pub const DEFAULT_UNIT_PREFIX: &str = "jobctl-";

/// A valid job name: `[A-Za-z0-9_.-]`, not starting with `.` or `-`, at most
/// [`MAX_JOB_NAME_LEN`] characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct JobName(String);

impl JobName {
    /// Checks a job name; the error says what is wrong with it.
    pub fn new(name: &str) -> Result<JobName, String> {
        if name.is_empty() {
            return Err("the job name is empty".into());
        }
        if name.len() > MAX_JOB_NAME_LEN {
            return Err(format!(
                "the job name is {} characters long; the limit is {MAX_JOB_NAME_LEN}",
                name.chars().count()
            ));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        {
            return Err(format!(
                "the job name \"{}\" contains {}; only letters, digits, '_', '.' and '-' are allowed",
                name.escape_debug(),
                describe_char(bad)
            ));
        }
        if name.starts_with('.') || name.starts_with('-') {
            return Err(format!(
                "the job name \"{name}\" starts with '{}'; it must start with a letter, digit or '_'",
                &name[..1]
            ));
        }
        Ok(JobName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The names of a job's units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitNames {
    pub service: String,
    pub timer: String,
}

impl UnitNames {
    pub fn new(prefix: &str, job: &JobName) -> Self {
        UnitNames {
            service: format!("{prefix}{job}.service"),
            timer: format!("{prefix}{job}.timer"),
        }
    }
}

/// Checks a unit name prefix from the configuration.
pub fn check_unit_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > 50 {
        return Err("the unit prefix is longer than 50 characters".into());
    }
    if let Some(bad) = prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':')))
    {
        return Err(format!(
            "the unit prefix contains {}; use letters, digits, '_', '.', '-' or ':'",
            describe_char(bad)
        ));
    }
    if prefix.starts_with('.') || prefix.starts_with('-') {
        return Err("the unit prefix must not start with '.' or '-'".into());
    }
    Ok(())
}

const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "device",
    "mount",
    "automount",
    "swap",
    "target",
    "path",
    "timer",
    "slice",
    "scope",
];

/// Whether `name` ends in a unit type suffix (`.service`, `.target`, …):
/// how an `on_success`/`on_failure` entry is told to be a unit, not a job.
pub fn has_unit_type(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, kind)| UNIT_TYPES.contains(&kind))
}

/// Checks a unit name used in `after`, `wants` or `on_failure`. Specifiers
/// such as `%n` or `%i` are allowed (systemd expands them; `OnFailure=` users
/// rely on `%n`), nothing else outside systemd's unit-name alphabet.
pub fn check_unit_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the unit name is empty".into());
    }
    if name.len() > 255 {
        return Err("the unit name is longer than 255 characters".into());
    }
    let Some((stem, kind)) = name.rsplit_once('.') else {
        return Err(format!(
            "\"{}\" has no unit type suffix such as .service or .target",
            name.escape_debug()
        ));
    };
    if !UNIT_TYPES.contains(&kind) {
        return Err(format!(
            "\"{}\" ends in .{kind}, which is not a unit type (use one of: {})",
            name.escape_debug(),
            UNIT_TYPES.join(", ")
        ));
    }
    if stem.is_empty() {
        return Err(format!("\"{name}\" has an empty name before .{kind}"));
    }
    let mut chars = stem.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some(s) if s.is_ascii_alphabetic() || s == '%' => {}
                _ => {
                    return Err(format!(
                        "\"{}\" has a '%' that is not a specifier such as %n or %i",
                        name.escape_debug()
                    ));
                }
            },
            c if c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '.' | '-' | '@' | '\\') => {}
            other => {
                return Err(format!(
                    "\"{}\" contains {}, which is not allowed in unit names",
                    name.escape_debug(),
                    describe_char(other)
                ));
            }
        }
    }
    if stem.matches('@').count() > 1 {
        return Err(format!("\"{name}\" contains more than one '@'"));
    }
    Ok(())
}

/// Checks a user or group name (systemd's strict rules: what `useradd`
/// accepts by default) or a numeric id.
pub fn check_user_group_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return match name.parse::<u32>() {
            // 65535 and 4294967295 are reserved as "no id" by the kernel.
            Ok(id) if id != 65_535 && id != u32::MAX => Ok(()),
            _ => Err(format!("{name} is not a usable numeric id")),
        };
    }
    if name.len() > 31 {
        return Err(format!("\"{name}\" is longer than 31 characters"));
    }
    let first = name.chars().next().unwrap_or('_');
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!(
            "\"{}\" must start with a letter or '_'",
            name.escape_debug()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Err(format!(
            "\"{}\" contains {}; user and group names use letters, digits, '_' and '-'",
            name.escape_debug(),
            describe_char(bad)
        ));
    }
    Ok(())
}

/// Checks an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a valid variable name; use letters, digits and '_', not starting with a digit",
            name.escape_debug()
        ))
    }
}

/// Checks a directive name for the `*_extra` tables: `CamelCase` or `X-Custom-Name`.
pub fn check_directive_name(name: &str) -> Result<(), String> {
    let valid = if let Some(rest) = name.strip_prefix("X-") {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    } else {
        name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && name.chars().all(|c| c.is_ascii_alphanumeric())
    };
    if valid {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a directive name; directives look like `LimitNOFILE` or `X-My-Key`",
            name.escape_debug()
        ))
    }
}

/// A readable name for a character in a message.
pub fn describe_char(c: char) -> String {
    match c {
        '\n' => "a newline".into(),
        '\r' => "a carriage return".into(),
        '\t' => "a tab".into(),
        '\0' => "a NUL byte".into(),
        ' ' => "a space".into(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names() {
        for ok in ["nightly-refresh", "a", "A_b.c-1", "_x", &"x".repeat(100)] {
            assert!(JobName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "-flag",
            "a b",
            "a/b",
            "a@b",
            "é",
            &"x".repeat(101),
            "a\nb",
        ] {
            assert!(JobName::new(bad).is_err(), "{bad:?}");
        }
        let names = UnitNames::new("jobctl-", &JobName::new("x").unwrap());
        assert_eq!(names.service, "jobctl-x.service");
        assert_eq!(names.timer, "jobctl-x.timer");
    }

    #[test]
    fn unit_names() {
        for ok in [
            "network-online.target",
            "postgresql@15-main.service",
            "notify-failure@%n.service",
            "dev-disk-by\\x2dlabel-data.device",
        ] {
            assert!(check_unit_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "network-online",
            "x.bogus",
            ".service",
            "a b.service",
            "a%.service",
            "a@b@c.service",
            "a\n.service",
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn users_groups_env_directives() {
        assert!(check_user_group_name("etl").is_ok());
        assert!(check_user_group_name("_apt").is_ok());
        assert!(check_user_group_name("1000").is_ok());
        assert!(check_user_group_name("65535").is_err());
        assert!(check_user_group_name("root;rm").is_err());
        assert!(check_user_group_name("9lives").is_err());
        assert!(check_env_name("BATCH_SIZE").is_ok());
        assert!(check_env_name("1X").is_err());
        assert!(check_env_name("A=B").is_err());
        assert!(check_directive_name("LimitNOFILE").is_ok());
        assert!(check_directive_name("X-Owner-Team").is_ok());
        assert!(check_directive_name("limitnofile").is_err());
        assert!(check_directive_name("Exec Start").is_err());
        assert!(check_directive_name("X-").is_err());
    }
}
