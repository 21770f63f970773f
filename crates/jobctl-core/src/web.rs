//! The web server's configuration (`[web]` in the global configuration) and
//! its access rules: who may read and who may act, decided from facts the
//! server gathers per request (docs/operations.md, "The dashboard and HTTP
//! API"). Pure: the server (crates/jobctl-web) finds the peer's credentials
//! and the token; this module decides.
//!
//! ```toml
//! [web]
//! read_group = "jobctl-readers"    # unix socket: these may read
//! action_group = "jobctl-operators" # unix socket: these may also act
//! actions = true                   # "run now", enable/disable (off by default)
//! anonymous_read = false           # TCP without a token may read (off by default)
//! max_age = "1s"                   # how old a shared reading may be (the default)
//!
//! [web.trusted_proxy]              # a reverse proxy's user header (proxy.rs)
//! header = "X-Remote-User"
//! from = ["127.0.0.1"]
//! users = { alice = ["read", "run"] }
//! ```
//!
//! A token may carry a job/tag filter ([`filter`]): it sees and acts on only
//! the jobs that pass it.

use serde::Serialize;

use crate::context::GroupLookup;
use crate::diag::Diagnostics;
use crate::walk::TableReader;

pub mod filter;
pub mod proxy;

pub use filter::JobFilter;

/// The keys of `[web]`.
pub const WEB_KEYS: &[&str] = &[
    "read_group",
    "action_group",
    "actions",
    "anonymous_read",
    "trusted_proxy",
    "max_age",
];

/// How old the state in an answer may be when `[web] max_age` is not
/// written (docs/dashboard.md, "Under load").
pub const DEFAULT_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// The largest `[web] max_age`: a dashboard an hour behind is a broken one.
pub const MAX_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(3600);

/// `[web]`: everything off unless written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WebConfig {
    /// Members of this group may read over the unix socket (root always may).
    pub read_group: Option<String>,
    /// Members of this group may read and act over the unix socket.
    pub action_group: Option<String>,
    /// Whether actions ("run now", enable, disable) are served at all.
    pub actions: bool,
    /// Whether a TCP request without a token may read.
    pub anonymous_read: bool,
    /// A reverse proxy whose user header is believed (`[web.trusted_proxy]`).
    pub trusted_proxy: Option<proxy::TrustedProxy>,
    /// How long a reading may be shared with later requests (`None`: the
    /// default, [`DEFAULT_MAX_AGE`]); zero makes every request wait for a
    /// reading of its own.
    pub max_age: Option<std::time::Duration>,
}

impl WebConfig {
    /// The longest time between the start of the reading an answer comes
    /// from and the answer.
    pub fn max_age(&self) -> std::time::Duration {
        self.max_age.unwrap_or(DEFAULT_MAX_AGE)
    }
}

/// Decodes `[web]`; with `groups`, a group the name service does not know
/// is an error (the server would refuse to start), and one it could not be
/// asked about a warning.
pub fn decode_config(
    table: &toml::de::DeTable<'_>,
    groups: Option<&dyn GroupLookup>,
    diags: &mut Diagnostics<'_>,
) -> WebConfig {
    let reader = TableReader::new("web", table, WEB_KEYS, &[], diags);
    let group = |key: &str, diags: &mut Diagnostics<'_>| {
        reader
            .string(key, "\"jobctl-readers\"", diags)
            .and_then(|g| match check_group_name(&g.value) {
                Ok(()) => {
                    let path = format!("web.{key}");
                    match groups.map(|lookup| lookup.gid(&g.value)) {
                        None | Some(Ok(Some(_))) => {}
                        Some(Ok(None)) => diags.error(
                            g.span.clone(),
                            &path,
                            format!(
                                "group {} does not exist, so jobctl-web would refuse to start",
                                g.value
                            ),
                            Some(missing_group_fix(&g.value)),
                        ),
                        Some(Err(why)) => diags.warning(
                            g.span.clone(),
                            &path,
                            format!("cannot check that group {} exists: {why}", g.value),
                            Some(format!("check it yourself: getent group {}", g.value)),
                        ),
                    }
                    Some(g.value)
                }
                Err(message) => {
                    diags.error(
                        g.span,
                        &format!("web.{key}"),
                        message,
                        Some("give the name of a group (getent group NAME)".into()),
                    );
                    None
                }
            })
    };
    let read_group = group("read_group", diags);
    let action_group = group("action_group", diags);
    WebConfig {
        read_group,
        action_group,
        actions: reader.bool("actions", diags).is_some_and(|b| b.value),
        anonymous_read: reader
            .bool("anonymous_read", diags)
            .is_some_and(|b| b.value),
        trusted_proxy: reader
            .table(
                "trusted_proxy",
                "{ header = \"X-Remote-User\", from = [\"127.0.0.1\"] }",
                diags,
            )
            .and_then(|t| proxy::decode(&t, diags)),
        max_age: reader
            .duration("max_age", "\"1s\"", diags)
            .and_then(
                |span| match span.value.to_std().filter(|d| *d <= MAX_MAX_AGE) {
                    Some(d) => Some(d),
                    None => {
                        diags.error(
                            span.span,
                            "web.max_age",
                            "max_age is longer than an hour",
                            Some(
                                "write how old an answer may be, e.g. max_age = \"1s\" \
                             (\"0s\": every request waits for a reading of its own)"
                                    .into(),
                            ),
                        );
                        None
                    }
                },
            ),
    }
}

/// What to do about a group `[web]` names that does not exist: the same
/// words from `jobctl validate` and from the server that refuses to start.
pub fn missing_group_fix(name: &str) -> String {
    format!("create it (`groupadd {name}`) or name a group that exists (`getent group` lists them)")
}

/// A group name as useradd(8) accepts one.
fn check_group_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!("\"{}\" is not a group name", name.escape_debug()))
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// See jobs, runs, output, health.
    Read,
    /// "Run now".
    Run,
    /// Enable and disable (the operator overrides).
    Manage,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Run, Scope::Manage];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Run => "run",
            Scope::Manage => "manage",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Who is asking, as the server found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A peer on the unix socket: its uid and every group it is in (primary
    /// and supplementary, from `SO_PEERCRED`/`SO_PEERGROUPS`), and the gids
    /// of the configured groups as the server resolved them.
    Unix { uid: u32, gids: Vec<u32> },
    /// A TCP request with a valid bearer token: its name, scopes and job
    /// filter (empty: every job).
    Token {
        name: String,
        scopes: Vec<Scope>,
        filter: JobFilter,
    },
    /// A user a trusted reverse proxy named in its header
    /// (`[web.trusted_proxy]`), with the scopes the configuration gives it.
    Proxy { user: String, scopes: Vec<Scope> },
    /// A TCP request without a token.
    Anonymous,
}

impl Caller {
    /// Who this is, for the server's log of actions: `uid 1000`, `token ci`,
    /// `anonymous`.
    pub fn describe(&self) -> String {
        match self {
            Caller::Unix { uid, .. } => format!("uid {uid}"),
            Caller::Token { name, .. } => format!("token {name}"),
            Caller::Proxy { user, .. } => format!("proxy user {user}"),
            Caller::Anonymous => "anonymous".into(),
        }
    }

    /// The job filter this caller is held to, if any (a token made with
    /// `--jobs`/`--tag`); `None`: every job.
    pub fn filter(&self) -> Option<&JobFilter> {
        match self {
            Caller::Token { filter, .. } if !filter.is_empty() => Some(filter),
            _ => None,
        }
    }
}

/// The gids of the configured groups, resolved by the server at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Groups {
    pub read: Option<u32>,
    pub action: Option<u32>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No credentials at all (HTTP 401).
    Unauthenticated,
    /// Known, but not allowed this (HTTP 403).
    Forbidden,
    /// Actions are not enabled in `[web]` (HTTP 403).
    ActionsOff,
    /// The job is not one the caller's filter lets it see, or does not exist
    /// (HTTP 404 for both: a filtered caller learns nothing of other jobs).
    Hidden,
    /// A trusted-proxy header from a peer not listed in `from` (HTTP 403).
    UntrustedProxy,
    /// A trusted-proxy header sent twice or not holding a user name (HTTP 400).
    BadProxyHeader,
}

/// Whether `caller` may do what `scope` covers. `own_uid` is the server's own
/// uid: in per-user mode (`own_uid` ≠ 0) only that user is served.
pub fn allow(
    caller: &Caller,
    scope: Scope,
    config: &WebConfig,
    groups: &Groups,
    own_uid: u32,
) -> Result<(), Refusal> {
    if scope != Scope::Read && !config.actions {
        return Err(Refusal::ActionsOff);
    }
    match caller {
        Caller::Unix { uid, gids } => {
            if *uid == own_uid || *uid == 0 && own_uid == 0 {
                return Ok(());
            }
            if own_uid != 0 {
                // Per-user mode: nobody else, whatever their groups.
                return Err(Refusal::Forbidden);
            }
            let in_group = |g: Option<u32>| g.is_some_and(|g| gids.contains(&g));
            let allowed = match scope {
                Scope::Read => in_group(groups.read) || in_group(groups.action),
                Scope::Run | Scope::Manage => in_group(groups.action),
            };
            if allowed {
                Ok(())
            } else {
                Err(Refusal::Forbidden)
            }
        }
        Caller::Token { scopes, .. } | Caller::Proxy { scopes, .. } => {
            if scopes.contains(&scope) {
                Ok(())
            } else {
                Err(Refusal::Forbidden)
            }
        }
        Caller::Anonymous => {
            if scope == Scope::Read && config.anonymous_read {
                Ok(())
            } else {
                Err(Refusal::Unauthenticated)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_age_of(text: &str) -> (std::time::Duration, Vec<String>) {
        let (config, diags) = crate::config::load_config(
            "c.toml",
            text,
            crate::context::Mode::System,
            &crate::context::UtcOnly,
        );
        (
            config.web.max_age(),
            diags.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn max_age_defaults_to_a_second_and_takes_systemd_durations() {
        use std::time::Duration;
        assert_eq!(max_age_of(""), (DEFAULT_MAX_AGE, vec![]));
        assert_eq!(DEFAULT_MAX_AGE, Duration::from_secs(1));
        assert_eq!(
            max_age_of("[web]\nmax_age = \"250ms\"\n"),
            (Duration::from_millis(250), vec![])
        );
        assert_eq!(
            max_age_of("[web]\nmax_age = \"0s\"\n"),
            (Duration::ZERO, vec![])
        );
        assert_eq!(
            max_age_of("[web]\nmax_age = \"1h\"\n"),
            (MAX_MAX_AGE, vec![])
        );
        for (text, want) in [
            ("[web]\nmax_age = 1\n", "c.toml:2:11: `web.max_age`"),
            ("[web]\nmax_age = \"soon\"\n", "c.toml:2:11: `web.max_age`"),
            ("[web]\nmax_age = \"2h\"\n", "c.toml:2:11: `web.max_age`"),
            (
                "[web]\nmax_age = \"infinity\"\n",
                "c.toml:2:11: `web.max_age`",
            ),
        ] {
            let (age, shown) = max_age_of(text);
            assert_eq!(age, DEFAULT_MAX_AGE, "{text}: the default stays");
            assert!(
                shown
                    .iter()
                    .any(|s| s.starts_with(&format!("error: {want}"))),
                "{text}: wanted {want}, got {shown:#?}"
            );
        }
    }

    fn config(actions: bool) -> WebConfig {
        WebConfig {
            actions,
            ..WebConfig::default()
        }
    }

    const GROUPS: Groups = Groups {
        read: Some(900),
        action: Some(901),
    };

    #[test]
    fn root_and_groups_on_the_system_socket() {
        let c = config(true);
        let root = Caller::Unix {
            uid: 0,
            gids: vec![0],
        };
        let reader = Caller::Unix {
            uid: 1000,
            gids: vec![1000, 900],
        };
        let operator = Caller::Unix {
            uid: 1001,
            gids: vec![1001, 901],
        };
        let stranger = Caller::Unix {
            uid: 1002,
            gids: vec![1002],
        };
        for scope in Scope::ALL {
            assert_eq!(allow(&root, scope, &c, &GROUPS, 0), Ok(()));
            assert_eq!(allow(&operator, scope, &c, &GROUPS, 0), Ok(()));
            assert_eq!(
                allow(&stranger, scope, &c, &GROUPS, 0),
                Err(Refusal::Forbidden)
            );
        }
        assert_eq!(allow(&reader, Scope::Read, &c, &GROUPS, 0), Ok(()));
        assert_eq!(
            allow(&reader, Scope::Run, &c, &GROUPS, 0),
            Err(Refusal::Forbidden)
        );
    }

    #[test]
    fn actions_are_off_unless_configured() {
        let root = Caller::Unix {
            uid: 0,
            gids: vec![0],
        };
        let token = Caller::Token {
            name: "all".into(),
            scopes: Scope::ALL.to_vec(),
            filter: JobFilter::default(),
        };
        for caller in [&root, &token] {
            assert_eq!(
                allow(caller, Scope::Read, &config(false), &GROUPS, 0),
                Ok(())
            );
            assert_eq!(
                allow(caller, Scope::Run, &config(false), &GROUPS, 0),
                Err(Refusal::ActionsOff)
            );
        }
    }

    #[test]
    fn per_user_mode_serves_that_user_only() {
        let c = config(true);
        let me = Caller::Unix {
            uid: 1000,
            gids: vec![1000],
        };
        let root = Caller::Unix {
            uid: 0,
            gids: vec![0, 901],
        };
        let other = Caller::Unix {
            uid: 1001,
            gids: vec![900, 901],
        };
        assert_eq!(allow(&me, Scope::Run, &c, &GROUPS, 1000), Ok(()));
        assert_eq!(
            allow(&root, Scope::Read, &c, &GROUPS, 1000),
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            allow(&other, Scope::Read, &c, &GROUPS, 1000),
            Err(Refusal::Forbidden)
        );
    }

    #[test]
    fn tokens_by_scope_and_anonymous_only_when_configured() {
        let c = config(true);
        let read = Caller::Token {
            name: "reader".into(),
            scopes: vec![Scope::Read],
            filter: JobFilter::default(),
        };
        assert_eq!(allow(&read, Scope::Read, &c, &GROUPS, 0), Ok(()));
        assert_eq!(
            allow(&read, Scope::Run, &c, &GROUPS, 0),
            Err(Refusal::Forbidden)
        );
        assert_eq!(
            allow(&Caller::Anonymous, Scope::Read, &c, &GROUPS, 0),
            Err(Refusal::Unauthenticated)
        );
        let open = WebConfig {
            anonymous_read: true,
            actions: true,
            ..WebConfig::default()
        };
        assert_eq!(
            allow(&Caller::Anonymous, Scope::Read, &open, &GROUPS, 0),
            Ok(())
        );
        assert_eq!(
            allow(&Caller::Anonymous, Scope::Run, &open, &GROUPS, 0),
            Err(Refusal::Unauthenticated)
        );
    }

    #[test]
    fn config_is_checked_with_key_and_suggestion() {
        let text = "[web]\nread_grup = \"x\"\naction_group = \"-bad\"\nactions = \"yes\"\n";
        let (_, diags) = crate::config::load_config(
            "c.toml",
            text,
            crate::context::Mode::System,
            &crate::context::UtcOnly,
        );
        let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert_eq!(diags.len(), 3, "{shown:#?}");
        assert!(
            shown[0].contains("c.toml:2:1") && shown[0].contains("read_group"),
            "{shown:#?}"
        );
        assert!(
            shown[1].contains("c.toml:3:16") && shown[1].contains("web.action_group"),
            "{shown:#?}"
        );
        assert!(shown[2].contains("web.actions"), "{shown:#?}");
    }

    /// With a lookup, a group the name service does not know is an error
    /// at its value with the fix, one it could not be asked about a
    /// warning, one it knows nothing; without one (every command but
    /// `validate`), none is asked about.
    #[test]
    fn groups_are_looked_up_when_asked() {
        struct Known;
        impl GroupLookup for Known {
            fn gid(&self, name: &str) -> Result<Option<u32>, String> {
                match name {
                    "readers" => Ok(Some(100)),
                    "ldap" => Err("the directory is down".into()),
                    _ => Ok(None),
                }
            }
        }
        let load = |text: &str, groups: Option<&dyn GroupLookup>| {
            crate::config::load_config_with(
                "c.toml",
                text,
                crate::context::Mode::System,
                &crate::context::UtcOnly,
                None,
                groups,
            )
        };
        let text = "[web]\nread_group = \"readers\"\naction_group = \"gone\"\n";
        let (config, diags) = load(text, Some(&Known));
        assert_eq!(config.web.action_group.as_deref(), Some("gone"));
        let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "error: c.toml:3:16: `web.action_group`: group gone does not exist, \
              so jobctl-web would refuse to start\n  \
              hint: create it (`groupadd gone`) or name a group that exists \
              (`getent group` lists them)"
            ]
        );
        let (_, diags) = load(text, None);
        assert!(diags.is_empty(), "{diags:?}");
        let (_, diags) = load("[web]\nread_group = \"ldap\"\n", Some(&Known));
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            !diags[0].is_error() && diags[0].message.contains("the directory is down"),
            "{diags:?}"
        );
    }

    #[test]
    fn reads_every_key() {
        let text = "[web]\nread_group = \"readers\"\naction_group = \"ops\"\nactions = true\nanonymous_read = true\n";
        let (config, diags) = crate::config::load_config(
            "c.toml",
            text,
            crate::context::Mode::System,
            &crate::context::UtcOnly,
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(
            config.web,
            WebConfig {
                read_group: Some("readers".into()),
                action_group: Some("ops".into()),
                actions: true,
                anonymous_read: true,
                trusted_proxy: None,
                max_age: None,
            }
        );
    }
}

/// Bearer tokens for TCP: the token file (one line per token, `NAME SCOPES
/// SHA256 [jobs=PATTERNS] [tags=TAGS]`, e.g. `ci read,run 9f86… jobs=etl-*`),
/// kept by `jobctl token` in a file only root (or, in per-user mode, the
/// user) can read. Only the hash of a token is stored: a token is 256 random
/// bits, so a plain SHA-256 is enough (no password hashing: there is nothing
/// to guess). Lines without a filter are the file's first format, so files
/// written before filters load unchanged; a jobctl older than filters refuses
/// a line with one (it fails closed, never widening a filtered token).
pub mod tokens {
    use sha2::{Digest, Sha256};

    use super::Scope;
    use super::filter::{self, JobFilter};

    /// One stored token.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
    pub struct StoredToken {
        pub name: String,
        pub scopes: Vec<Scope>,
        /// The jobs it may see (`jobs`, `tags`; both empty: every job).
        #[serde(flatten)]
        pub filter: JobFilter,
        /// SHA-256 of the token, 64 lowercase hex digits.
        #[serde(skip)]
        pub hash: String,
    }

    /// The prefix of every token (so that a leaked one is recognisable).
    pub const PREFIX: &str = "jobctl_";

    /// A token made from 32 random bytes.
    pub fn token_from(random: &[u8; 32]) -> String {
        format!("{PREFIX}{}", hex(random))
    }

    /// The stored form of a token.
    pub fn hash(token: &str) -> String {
        hex(&Sha256::digest(token.as_bytes()))
    }

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write;
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// A token name: letters, digits, `-`, `_`, `.`, at most 64.
    pub fn check_name(name: &str) -> Result<(), String> {
        if !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            Ok(())
        } else {
            Err(format!(
                "\"{}\" is not a token name; use letters, digits and - _ . (at most 64)",
                name.escape_debug()
            ))
        }
    }

    /// Scopes from `read,run`.
    pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for part in text.split(',') {
            let scope = Scope::parse(part.trim()).ok_or_else(|| {
                format!(
                    "unknown scope \"{}\"; the scopes are read, run, manage",
                    part.escape_debug()
                )
            })?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(scopes)
    }

    /// The tokens of a token file; a line that does not parse is an error
    /// naming its line number.
    pub fn parse_file(text: &str) -> Result<Vec<StoredToken>, String> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (&[name, scopes, hash], extra) = fields.split_at(fields.len().min(3)) else {
                return Err(format!("line {}: expected NAME SCOPES SHA256", n + 1));
            };
            check_name(name).map_err(|e| format!("line {}: {e}", n + 1))?;
            let scopes = parse_scopes(scopes).map_err(|e| format!("line {}: {e}", n + 1))?;
            if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(format!("line {}: the hash is not 64 hex digits", n + 1));
            }
            let mut job_filter = JobFilter::default();
            for field in extra {
                let bad = |e: String| format!("line {}: {e}", n + 1);
                match field.split_once('=') {
                    Some(("jobs", list)) if job_filter.jobs.is_empty() => {
                        job_filter.jobs = filter::parse_list(list, filter::check_pattern)
                            .map_err(|e| bad(format!("jobs: {e}")))?;
                    }
                    Some(("tags", list)) if job_filter.tags.is_empty() => {
                        job_filter.tags = filter::parse_list(list, filter::check_tag)
                            .map_err(|e| bad(format!("tags: {e}")))?;
                    }
                    _ => {
                        return Err(bad(format!(
                            "unexpected \"{}\"; after the hash only jobs=PATTERNS and tags=TAGS, once each",
                            field.escape_debug()
                        )));
                    }
                }
            }
            out.push(StoredToken {
                name: name.to_string(),
                scopes,
                filter: job_filter,
                hash: hash.to_string(),
            });
        }
        Ok(out)
    }

    /// The file's text for these tokens.
    pub fn format_file(tokens: &[StoredToken]) -> String {
        let mut text = String::from(
            "# jobctl-web bearer tokens (jobctl token create/list/revoke): NAME SCOPES SHA256 [jobs=PATTERNS] [tags=TAGS]\n",
        );
        for t in tokens {
            let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
            text.push_str(&format!("{} {} {}", t.name, scopes.join(","), t.hash));
            if !t.filter.jobs.is_empty() {
                text.push_str(&format!(" jobs={}", t.filter.jobs.join(",")));
            }
            if !t.filter.tags.is_empty() {
                text.push_str(&format!(" tags={}", t.filter.tags.join(",")));
            }
            text.push('\n');
        }
        text
    }

    /// The stored token a presented one matches. Every stored hash is
    /// compared in full, in constant time, whatever matches.
    pub fn find<'a>(stored: &'a [StoredToken], presented: &str) -> Option<&'a StoredToken> {
        let presented = hash(presented);
        let mut found = None;
        for t in stored {
            if constant_time_eq(t.hash.as_bytes(), presented.as_bytes()) {
                found = Some(t);
            }
        }
        found
    }

    fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trip_and_lookup() {
            let token = token_from(&[7; 32]);
            assert!(token.starts_with("jobctl_") && token.len() == 7 + 64);
            let stored = vec![
                StoredToken {
                    name: "ci".into(),
                    scopes: vec![Scope::Read, Scope::Run],
                    filter: JobFilter::default(),
                    hash: hash(&token),
                },
                StoredToken {
                    name: "etl".into(),
                    scopes: vec![Scope::Read],
                    filter: JobFilter {
                        jobs: vec!["etl-*".into(), "backup".into()],
                        tags: vec!["nightly".into()],
                    },
                    hash: hash(&token_from(&[9; 32])),
                },
            ];
            let text = format_file(&stored);
            assert!(!text.contains(&token), "the token itself is never stored");
            let back = parse_file(&text).unwrap();
            assert_eq!(back, stored);
            assert_eq!(find(&back, &token).map(|t| t.name.as_str()), Some("ci"));
            assert_eq!(find(&back, &token_from(&[8; 32])), None);
            assert_eq!(find(&back, ""), None);
        }

        #[test]
        fn bad_lines_are_named() {
            assert_eq!(
                parse_file("# c\nci read\n").unwrap_err(),
                "line 2: expected NAME SCOPES SHA256"
            );
            assert!(
                parse_file("ci read,admin 00\n")
                    .unwrap_err()
                    .contains("unknown scope")
            );
            assert!(parse_file(&format!("ci read {}\n", "A".repeat(64))).is_err());
            let h = "0".repeat(64);
            for bad in [
                format!("ci read {h} jobs=\n"),
                format!("ci read {h} jobs=a/b\n"),
                format!("ci read {h} jobs=a jobs=b\n"),
                format!("ci read {h} tags=x,y z\n"),
                format!("ci read {h} owner=x\n"),
            ] {
                let e = parse_file(&bad).unwrap_err();
                assert!(e.starts_with("line 1: "), "{bad}: {e}");
            }
        }

        /// A file written before filters (three fields a line) loads as it
        /// did: every job.
        #[test]
        fn files_before_filters_load() {
            let h = "ab".repeat(32);
            let old = format!(
                "# jobctl-web bearer tokens (jobctl token create/list/revoke): NAME SCOPES SHA256\nci read,run {h}\n"
            );
            let back = parse_file(&old).unwrap();
            assert_eq!(back.len(), 1);
            assert_eq!(back[0].scopes, [Scope::Read, Scope::Run]);
            assert!(back[0].filter.is_empty());
            assert_eq!(
                parse_file(&format_file(&back)).unwrap(),
                back,
                "rewritten in the same form"
            );
            assert!(format_file(&back).ends_with(&format!("ci read,run {h}\n")));
        }
    }
}
