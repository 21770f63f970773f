//! The binary's time-zone lookup: the host's `/usr/share/zoneinfo`, read the
//! way systemd reads it, so that a zone jobctl accepts is one systemd
//! accepts and computes with the same rules.
//!
//! systemd (`verify_timezone()`) takes a name as a path under
//! `/usr/share/zoneinfo`: case-sensitive, only `[A-Za-z0-9-_+/]`, no empty
//! path segments, and the file must be a regular file starting with the TZif
//! magic. jiff's own database lookup is case-insensitive and skips some
//! files, so this reads the file itself and hands the bytes to jiff.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;
use jobctl_core::calendar::ZoneLookup;

/// Where systemd and glibc find zones.
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// Zones from the host's zoneinfo folder, cached per name.
pub struct HostZones {
    root: PathBuf,
    cache: RefCell<HashMap<String, Option<TimeZone>>>,
}

impl HostZones {
    pub fn new() -> Self {
        HostZones {
            root: PathBuf::from(ZONEINFO),
            cache: RefCell::new(HashMap::new()),
        }
    }

    fn load(&self, name: &str) -> Option<TimeZone> {
        if !name_is_valid(name) {
            return None;
        }
        if name == "UTC" {
            // systemd accepts UTC even without zone files.
            return Some(load_file(&self.root.join(name), name).unwrap_or(TimeZone::UTC));
        }
        load_file(&self.root.join(name), name)
    }
}

impl Default for HostZones {
    fn default() -> Self {
        Self::new()
    }
}

impl ZoneLookup for HostZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        if let Some(hit) = self.cache.borrow().get(name) {
            return hit.clone();
        }
        let zone = self.load(name);
        self.cache
            .borrow_mut()
            .insert(name.to_string(), zone.clone());
        zone
    }
}

/// The syntax systemd's `verify_timezone()` accepts.
fn name_is_valid(name: &str) -> bool {
    if name.is_empty() || name.len() >= 4096 {
        return false;
    }
    if name == "UTC" {
        return true;
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return false;
    }
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/'))
}

fn load_file(path: &Path, name: &str) -> Option<TimeZone> {
    let mut file = std::fs::File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut data = Vec::new();
    file.read_to_end(&mut data).ok()?;
    if !data.starts_with(b"TZif") {
        return None;
    }
    TimeZone::tzif(name, &data).ok()
}

/// The host's local zone, as glibc finds it: `$TZ` (a zone name, with or
/// without a leading `:`, or a POSIX TZ string), else `/etc/localtime`.
pub fn local_zone() -> TimeZone {
    TimeZone::system()
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

    #[test]
    fn lookup_is_case_sensitive_like_systemd() {
        let zones = HostZones::new();
        if !Path::new(ZONEINFO).join("Europe/Berlin").exists() {
            return;
        }
        assert!(zones.zone("Europe/Berlin").is_some());
        assert!(zones.zone("europe/berlin").is_none());
        assert!(zones.zone("Europe/Atlantis").is_none());
        assert!(zones.zone("zone.tab").is_none());
    }
}
