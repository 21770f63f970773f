//! Time zones from the host's zoneinfo, looked up the way systemd does, so a
//! zone jobctl accepts is one systemd accepts and computes with the same
//! rules.
//!
//! systemd (`verify_timezone()`) takes a name as a path under
//! /usr/share/zoneinfo: case-sensitive, only `[A-Za-z0-9-_+/]`, no leading
//! `/`, no empty path segment, and the file must be a regular file starting
//! with the TZif magic. jiff's own database lookup is case-insensitive and
//! skips some files, so this reads the file by its exact name and hands the
//! bytes to jiff. Zones are cached per name for the life of the process.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::tz::TimeZone;
use jobctl_core::context::ZoneLookup;

/// Where systemd and glibc read zones from.
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// The host's time zone database.
#[derive(Debug)]
pub struct HostZones {
    root: PathBuf,
    cache: Mutex<HashMap<String, Option<TimeZone>>>,
}

impl Clone for HostZones {
    fn clone(&self) -> Self {
        HostZones {
            root: self.root.clone(),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl HostZones {
    pub fn new() -> Self {
        HostZones {
            root: PathBuf::from(ZONEINFO_DIR),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The zone for local times (`$TZ`, else /etc/localtime), as glibc and
    /// so systemd use it.
    pub fn local(&self) -> TimeZone {
        TimeZone::try_system().unwrap_or(TimeZone::UTC)
    }

    fn load(&self, name: &str) -> Option<TimeZone> {
        if name.eq_ignore_ascii_case("UTC") {
            // systemd accepts UTC even with no zone files installed (and
            // ` UTC` in any case as an expression's suffix).
            return Some(TimeZone::UTC);
        }
        if !name_is_valid(name) {
            return None;
        }
        let bytes = read_tzif(&self.root.join(name))?;
        TimeZone::tzif(name, &bytes).ok()
    }
}

impl Default for HostZones {
    fn default() -> Self {
        Self::new()
    }
}

impl ZoneLookup for HostZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        let mut cache = match self.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(hit) = cache.get(name) {
            return hit.clone();
        }
        let zone = self.load(name);
        cache.insert(name.to_string(), zone.clone());
        zone
    }
}

/// The name syntax systemd's `verify_timezone()` accepts.
fn name_is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 4096
        && !name.starts_with('/')
        && name.split('/').all(|part| !part.is_empty())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'))
}

/// The file's bytes if it is a regular file starting with `TZif`.
fn read_tzif(path: &Path) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    bytes.starts_with(b"TZif").then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_systemd_rules() {
        for ok in [
            "UTC",
            "Europe/Berlin",
            "Etc/GMT+5",
            "America/Argentina/Buenos_Aires",
        ] {
            assert!(name_is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "Europe/",
            "Europe//Berlin",
            "../etc",
            "Europe/Berlin.x",
            "a b",
        ] {
            assert!(!name_is_valid(bad), "{bad}");
        }
    }

    /// Needs tzdata (installed by scripts/setup); fails rather than skips.
    #[test]
    fn exact_names_only() {
        let zones = HostZones::new();
        assert!(
            Path::new(ZONEINFO_DIR).join("Asia/Hong_Kong").is_file(),
            "tzdata is not installed (scripts/setup installs it)"
        );
        assert!(zones.zone("Asia/Hong_Kong").is_some());
        assert!(zones.zone("asia/hong_kong").is_none());
        assert!(zones.zone("utc").is_some());
        assert!(zones.zone("../etc/passwd").is_none());
        assert!(zones.zone("Asia").is_none(), "a folder is not a zone");
        assert!(zones.zone("zone.tab").is_none(), "not a zone name");
        assert!(zones.zone("iso3166.tab").is_none());
        assert!(zones.zone("Nowhere/City").is_none());
        // Cached answers are the same.
        assert!(zones.zone("Asia/Hong_Kong").is_some());
        assert!(zones.zone("Nowhere/City").is_none());
    }
}
