//! A token's job/tag filter (`jobctl token create --jobs … --tag …`): which
//! jobs a caller may see and act on. Pure: the server finds the job's name
//! and tags (from `list`); this module decides.
//!
//! A job passes when its name matches any listed pattern or it carries any
//! listed tag. Patterns are job names with `*` (any run of characters,
//! also none) and `?` (one character); without either a pattern is the exact
//! name. An empty filter (no `--jobs`, no `--tag`) passes every job.

use serde::Serialize;

use super::{Caller, Groups, Refusal, Scope, WebConfig, allow};

/// At most this many patterns and tags in one filter (a token file line).
pub const MAX_ENTRIES: usize = 64;

/// The jobs a token may see: by name pattern or by tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobFilter {
    /// Job name patterns (`*`, `?`), e.g. `etl-*`.
    pub jobs: Vec<String>,
    /// Tags: a job carrying any of them passes.
    pub tags: Vec<String>,
}

impl JobFilter {
    /// No pattern and no tag: every job passes.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.tags.is_empty()
    }

    /// Whether a job with this name and these tags passes.
    pub fn admits(&self, job: &str, tags: &[String]) -> bool {
        self.is_empty()
            || self.jobs.iter().any(|p| glob_match(p, job))
            || self.tags.iter().any(|t| tags.contains(t))
    }

    /// Whether the name alone decides (no tag listed): then no reading of
    /// the job's tags is needed.
    pub fn by_name_only(&self) -> bool {
        self.tags.is_empty()
    }
}

/// `*` matches any run of characters (also none), `?` one character;
/// everything else itself. Iterative, linear in practice (one backtrack
/// point), so a pattern cannot make it slow.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A job name pattern: the characters of a job name (letters, digits, `_`,
/// `.`, `-`) and `*`, `?`; at most 128.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let ok = !pattern.is_empty()
        && pattern.len() <= 128
        && pattern
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*' | '?'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a job name or pattern; use a job's name, with * and ? as wildcards",
            pattern.escape_debug()
        ))
    }
}

/// A tag as a job file may write one (a single word: no space, no `,`, no
/// control character), at most 64 bytes.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 64
        && tag
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != ',' && c != '=');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{}\" is not a tag; tags are single words without ',' or '='",
            tag.escape_debug()
        ))
    }
}

/// `a,b,c` as a list, each checked by `check`, duplicates dropped.
pub fn parse_list(
    text: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for part in text.split(',').map(str::trim) {
        check(part)?;
        if !out.iter().any(|o| o == part) {
            out.push(part.to_string());
        }
    }
    if out.len() > MAX_ENTRIES {
        return Err(format!("more than {MAX_ENTRIES} entries"));
    }
    Ok(out)
}

/// What is known of the job a request names.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The job exists: its name and tags.
    Job { name: &'a str, tags: &'a [String] },
    /// No job of that name is known (the command would answer "unknown job").
    Unknown,
}

/// Whether `caller` may do what `scope` covers to one job: [`allow`] first
/// (401/403 say nothing about the job), then the caller's job filter. A job
/// the filter hides, and for a filtered caller a job that does not exist, is
/// [`Refusal::Hidden`] (HTTP 404, the same answer for both): a filtered
/// token cannot learn which names exist beyond its own jobs.
pub fn allow_job(
    caller: &Caller,
    scope: Scope,
    target: Target<'_>,
    config: &WebConfig,
    groups: &Groups,
    own_uid: u32,
) -> Result<(), Refusal> {
    allow(caller, scope, config, groups, own_uid)?;
    let Some(filter) = caller.filter() else {
        return Ok(());
    };
    match target {
        Target::Job { name, tags } if filter.admits(name, tags) => Ok(()),
        _ => Err(Refusal::Hidden),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let table: &[(&str, &str, bool)] = &[
            ("backup", "backup", true),
            ("backup", "backups", false),
            ("backup", "backu", false),
            ("etl-*", "etl-daily", true),
            ("etl-*", "etl-", true),
            ("etl-*", "etl", false),
            ("*-daily", "etl-daily", true),
            ("*-daily", "etl-daily-2", false),
            ("*", "anything", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("**", "", true),
            ("*a*a*a*a*b", &"a".repeat(200), false),
        ];
        for (pattern, text, want) in table {
            assert_eq!(glob_match(pattern, text), *want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn lists_are_checked() {
        assert_eq!(
            parse_list("etl-*, backup,backup", check_pattern).unwrap(),
            ["etl-*", "backup"]
        );
        for bad in ["", "a,,b", "a b", "../x", "a/b", "x\u{1b}"] {
            assert!(parse_list(bad, check_pattern).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_list("nightly,etl", check_tag).unwrap(),
            ["nightly", "etl"]
        );
        for bad in ["", "a b", "a=b", "x\u{7}"] {
            assert!(parse_list(bad, check_tag).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..=MAX_ENTRIES).map(|n| format!("j{n}")).collect();
        assert!(parse_list(&many.join(","), check_pattern).is_err());
    }

    /// Every caller × job × scope: the table of what a filtered caller may
    /// see and do.
    #[test]
    fn the_filter_decides_after_the_scope() {
        let config = WebConfig {
            actions: true,
            ..WebConfig::default()
        };
        let groups = Groups::default();
        let token = |scopes: &[Scope], jobs: &[&str], tags: &[&str]| Caller::Token {
            name: "t".into(),
            scopes: scopes.to_vec(),
            filter: JobFilter {
                jobs: jobs.iter().map(ToString::to_string).collect(),
                tags: tags.iter().map(ToString::to_string).collect(),
            },
        };
        let all = token(&[Scope::Read, Scope::Run], &[], &[]);
        let etl = token(&[Scope::Read, Scope::Run], &["etl-*"], &[]);
        let nightly = token(&[Scope::Read], &[], &["nightly"]);
        let either = token(&[Scope::Read, Scope::Run], &["backup"], &["nightly"]);
        let root = Caller::Unix {
            uid: 0,
            gids: vec![0],
        };
        let proxy = Caller::Proxy {
            user: "alice".into(),
            scopes: vec![Scope::Read],
        };
        let tagged = ["nightly".to_string()];
        let tagged: &[String] = &tagged;
        fn job<'a>(name: &'a str, tags: &'a [String]) -> Target<'a> {
            Target::Job { name, tags }
        }
        use Refusal::{Forbidden, Hidden};
        let rows: Vec<(&Caller, Scope, Target<'_>, Result<(), Refusal>)> = vec![
            (&all, Scope::Read, job("backup", &[]), Ok(())),
            (&all, Scope::Read, Target::Unknown, Ok(())),
            (&all, Scope::Run, job("backup", &[]), Ok(())),
            (&etl, Scope::Read, job("etl-daily", &[]), Ok(())),
            (&etl, Scope::Run, job("etl-daily", &[]), Ok(())),
            (&etl, Scope::Read, job("backup", &[]), Err(Hidden)),
            (&etl, Scope::Run, job("backup", &[]), Err(Hidden)),
            (&etl, Scope::Read, Target::Unknown, Err(Hidden)),
            (&etl, Scope::Manage, job("etl-daily", &[]), Err(Forbidden)),
            (&etl, Scope::Manage, job("backup", &[]), Err(Forbidden)),
            (&nightly, Scope::Read, job("report", tagged), Ok(())),
            (&nightly, Scope::Read, job("report", &[]), Err(Hidden)),
            (&nightly, Scope::Run, job("report", tagged), Err(Forbidden)),
            (&either, Scope::Read, job("backup", &[]), Ok(())),
            (&either, Scope::Run, job("report", tagged), Ok(())),
            (&either, Scope::Read, job("report", &[]), Err(Hidden)),
            (&either, Scope::Read, Target::Unknown, Err(Hidden)),
            (&root, Scope::Manage, job("backup", &[]), Ok(())),
            (&root, Scope::Read, Target::Unknown, Ok(())),
            (&proxy, Scope::Read, job("backup", &[]), Ok(())),
            (&proxy, Scope::Run, job("backup", &[]), Err(Forbidden)),
        ];
        for (caller, scope, target, want) in rows {
            assert_eq!(
                allow_job(caller, scope, target, &config, &groups, 0),
                want,
                "{} {scope:?} {target:?}",
                caller.describe()
            );
        }
        let off = WebConfig::default();
        assert_eq!(
            allow_job(&etl, Scope::Run, job("backup", &[]), &off, &groups, 0),
            Err(Refusal::ActionsOff),
            "actions off is said before the filter"
        );
    }
}
