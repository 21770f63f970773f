//! The systemd directives a job can reach (`unit_extra`, `service_extra`,
//! `timer_extra` and what the first-class keys write), with the systemd
//! version that added each, so that `jobctl validate` and `jobctl apply`
//! refuse a directive the target systemd would ignore ("Unknown key name").
//!
//! The table (`directive_versions.rs`) is generated from systemd's own man
//! pages by `scripts/gen-directive-versions`, which says how; it is checked
//! against a real systemd by `tests/directive_versions.rs` (every directive
//! newer than the installed systemd is unknown to its `systemd-analyze
//! verify`, every older one is known).

use std::fmt;

use serde::Serialize;

use crate::directive_versions::DIRECTIVES;

/// A unit file section a job's directives go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Section {
    Unit,
    Service,
    Timer,
}

impl Section {
    /// The section's name as unit files write it, without brackets.
    pub fn name(self) -> &'static str {
        match self {
            Section::Unit => "Unit",
            Section::Service => "Service",
            Section::Timer => "Timer",
        }
    }

    /// The job key whose table goes to this section.
    pub fn extra_key(self) -> &'static str {
        match self {
            Section::Unit => "unit_extra",
            Section::Service => "service_extra",
            Section::Timer => "timer_extra",
        }
    }
}

/// The systemd version that added `name` (without `=`) to `section`:
/// `Some(0)` for directives older than systemd 183 (the first version the
/// documentation notes), `None` for a name systemd's documentation does not
/// list in that section.
pub fn added_in(section: Section, name: &str) -> Option<u32> {
    DIRECTIVES
        .binary_search_by(|(s, n, _)| (s.name(), *n).cmp(&(section.name(), name)))
        .ok()
        .map(|i| DIRECTIVES[i].2)
}

/// Every directive of the table: section, name, version that added it.
pub fn all() -> impl Iterator<Item = (Section, &'static str, u32)> {
    DIRECTIVES.iter().copied()
}

/// Where the target systemd's version came from; messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionSource {
    /// The running manager, asked over D-Bus (its `Version` property).
    Manager,
    /// `--systemd-version`.
    Flag,
    /// The installed `systemctl --version` (no manager to ask).
    Systemctl,
}

/// The systemd the jobs are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SystemdTarget {
    /// The major version (252).
    pub version: u32,
    pub source: VersionSource,
}

impl fmt::Display for SystemdTarget {
    /// The end of a "needs systemd N; …" message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.version;
        match self.source {
            VersionSource::Manager => write!(f, "this host runs systemd {v}"),
            VersionSource::Flag => write!(f, "the target is systemd {v} (--systemd-version)"),
            VersionSource::Systemctl => {
                write!(f, "the installed systemd is {v} (systemctl --version)")
            }
        }
    }
}

/// Why `name=` in `section` cannot be used with `target`; `None` when it
/// can (or when the documentation does not know it: its version is unknown).
pub fn too_new(section: Section, name: &str, target: &SystemdTarget) -> Option<String> {
    let needed = added_in(section, name)?;
    (needed > target.version).then(|| format!("{name}= needs systemd {needed}; {target}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in DIRECTIVES.windows(2) {
            fn key(entry: (Section, &'static str, u32)) -> (&'static str, &'static str) {
                (entry.0.name(), entry.1)
            }
            assert!(key(pair[0]) < key(pair[1]), "{:?} {:?}", pair[0], pair[1]);
        }
        assert!(DIRECTIVES.len() > 300, "{}", DIRECTIVES.len());
    }

    #[test]
    fn versions_from_the_documentation() {
        assert_eq!(added_in(Section::Unit, "OnSuccess"), Some(249));
        assert_eq!(added_in(Section::Timer, "RandomizedOffsetSec"), Some(258));
        assert_eq!(added_in(Section::Timer, "FixedRandomDelay"), Some(247));
        assert_eq!(added_in(Section::Service, "ExecSearchPath"), Some(250));
        assert_eq!(added_in(Section::Service, "LimitNOFILE"), Some(0));
        // Sections matter: OnSuccess= is a [Unit] directive.
        assert_eq!(added_in(Section::Service, "OnSuccess"), None);
        assert_eq!(added_in(Section::Service, "NoSuchThing"), None);
        // A shared entry's later members (NEWS 254), and an Assert no older
        // than its Condition.
        assert_eq!(added_in(Section::Service, "StartupMemoryMax"), Some(254));
        assert_eq!(
            added_in(Section::Unit, "AssertKernelModuleLoaded"),
            added_in(Section::Unit, "ConditionKernelModuleLoaded")
        );
    }

    #[test]
    fn messages_name_where_the_version_came_from() {
        let target = |source| SystemdTarget {
            version: 247,
            source,
        };
        assert_eq!(
            too_new(Section::Unit, "OnSuccess", &target(VersionSource::Flag)).as_deref(),
            Some("OnSuccess= needs systemd 249; the target is systemd 247 (--systemd-version)")
        );
        assert_eq!(
            too_new(Section::Unit, "OnSuccess", &target(VersionSource::Manager)).as_deref(),
            Some("OnSuccess= needs systemd 249; this host runs systemd 247")
        );
        assert!(
            too_new(
                Section::Unit,
                "OnSuccess",
                &target(VersionSource::Systemctl)
            )
            .unwrap()
            .ends_with("the installed systemd is 247 (systemctl --version)")
        );
        assert_eq!(
            too_new(
                Section::Timer,
                "FixedRandomDelay",
                &target(VersionSource::Flag)
            ),
            None
        );
        assert_eq!(
            too_new(Section::Service, "X-Custom", &target(VersionSource::Flag)),
            None
        );
    }
}
