//! Time zones from the host's zoneinfo, looked up the way systemd does.
//!
//! systemd accepts a zone in `OnCalendar=` only if a TZif file of exactly
//! that name exists under /usr/share/zoneinfo (`timezone_is_valid()`), case
//! included. jiff's own database lookup is case-insensitive, so this reads
//! the file by its exact name and hands the bytes to jiff.

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jobctl_core::context::ZoneLookup;

/// Where systemd and glibc read zones from.
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// The host's time zone database.
#[derive(Debug, Clone)]
pub struct HostZones {
    root: PathBuf,
}

impl HostZones {
    pub fn new() -> Self {
        HostZones {
            root: PathBuf::from(ZONEINFO_DIR),
        }
    }

    /// The zone for local times (`$TZ`, else /etc/localtime), as systemd uses it.
    pub fn local(&self) -> TimeZone {
        TimeZone::try_system().unwrap_or(TimeZone::UTC)
    }

    fn path_for(&self, name: &str) -> Option<PathBuf> {
        let valid = !name.is_empty()
            && !name.starts_with('/')
            && name
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
        valid.then(|| self.root.join(name))
    }
}

impl Default for HostZones {
    fn default() -> Self {
        Self::new()
    }
}

impl ZoneLookup for HostZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        if name.eq_ignore_ascii_case("UTC") {
            return Some(TimeZone::UTC);
        }
        let path = self.path_for(name)?;
        let bytes = read_tzif(&path)?;
        TimeZone::tzif(name, &bytes).ok()
    }
}

fn read_tzif(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    bytes.starts_with(b"TZif").then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_names_only() {
        let zones = HostZones::new();
        if !Path::new(ZONEINFO_DIR).join("Asia/Hong_Kong").exists() {
            eprintln!("skipping: no zoneinfo on this machine");
            return;
        }
        assert!(zones.zone("Asia/Hong_Kong").is_some());
        assert!(zones.zone("asia/hong_kong").is_none());
        assert!(zones.zone("utc").is_some());
        assert!(zones.zone("../etc/passwd").is_none());
        assert!(zones.zone("Asia").is_none());
        assert!(zones.zone("Nowhere/City").is_none());
    }
}
