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
