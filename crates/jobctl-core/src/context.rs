//! What the pure core needs to know about the world, passed in by the caller:
//! system or per-user mode, and how to look up a time zone by name.

use serde::Serialize;

/// System-wide jobs (the system manager, /etc) or per-user jobs
/// (`systemctl --user`, ~/.config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    System,
    User,
}

/// Looks up a time zone by its exact zoneinfo name (`Asia/Hong_Kong`).
///
/// systemd accepts a zone in `OnCalendar=` only when a file of exactly that
/// name exists in the host's zoneinfo, case included (and `UTC` in any case),
/// so an implementation must not match names case-insensitively.
pub trait ZoneLookup {
    fn zone(&self, name: &str) -> Option<jiff::tz::TimeZone>;

    /// Every zone name the lookup knows, for "did you mean" suggestions
    /// ([`suggest_zone`]); none by default.
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// The known zone closest to an unknown `name`: the same name in another
/// case (`europe/london`), else a close spelling (`Europe/Londn`).
pub fn suggest_zone(zones: &dyn ZoneLookup, name: &str) -> Option<String> {
    let names = zones.names();
    if let Some(same) = names.iter().find(|n| n.eq_ignore_ascii_case(name)) {
        return Some(same.clone());
    }
    // A typo or two: a letter missing, extra, wrong, or two swapped.
    let wanted = name.to_ascii_lowercase();
    let limit = if wanted.len() >= 8 { 2 } else { 1 };
    names
        .iter()
        .map(|n| {
            (
                n,
                strsim::damerau_levenshtein(&wanted, &n.to_ascii_lowercase()),
            )
        })
        .filter(|(_, distance)| *distance <= limit)
        .min_by_key(|(_, distance)| *distance)
        .map(|(n, _)| n.clone())
}

/// A lookup that knows only UTC: for tests and for checking files with no
/// time zone database at hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct UtcOnly;

impl ZoneLookup for UtcOnly {
    fn zone(&self, name: &str) -> Option<jiff::tz::TimeZone> {
        name.eq_ignore_ascii_case("UTC")
            .then_some(jiff::tz::TimeZone::UTC)
    }
}

/// One object met on the way to a file: a folder, a link, or the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStep {
    pub path: String,
    pub kind: StepKind,
    pub uid: u32,
    /// The permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

/// What a [`PathStep`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Folder,
    Link,
    /// The object the path names, when it is not a folder.
    File,
}

/// Finds groups by name in the host's name service, for the check that the
/// groups `[web]` names exist (`jobctl validate`; the server resolves them
/// when it starts). The binary asks `getent group` (`jobctl::groups`).
pub trait GroupLookup {
    /// The gid of group `name`: `Ok(None)` when the name service does not
    /// know it, `Err` when it could not be asked.
    fn gid(&self, name: &str) -> Result<Option<u32>, String>;
}

/// Reports who owns the path to a file, for the rule that files which decide
/// what root runs are root's alone (see [`crate::ownership`]).
pub trait PathInspector {
    /// Every folder, link and file met while resolving the absolute `path`
    /// from `/`, following links, in order. Stops at the first component
    /// that does not exist (those before it are still reported). `Err`
    /// when the path cannot be followed (a loop of links, no permission).
    fn trace(&self, path: &str) -> Result<Vec<PathStep>, String>;
}
