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
    /// so systemd use it: see [`local_zone`].
    pub fn local(&self) -> TimeZone {
        local_zone()
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
        let file = self.root.join(name);
        crate::cache::note_file(&file);
        let bytes = read_tzif(&file).ok()?;
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

    /// Every zone name of the host: the files under the zoneinfo folder
    /// that start with the TZif magic (read only to suggest a name for one
    /// that does not exist), without `posix/` and `right/`, which repeat the
    /// others.
    fn names(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![(self.root.clone(), String::new(), 0)];
        while let Some((dir, prefix, depth)) = todo.pop() {
            crate::cache::note_file(&dir);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let full = format!("{prefix}{name}");
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() {
                    if depth < 3 && !matches!(full.as_str(), "posix" | "right") {
                        todo.push((entry.path(), format!("{full}/"), depth + 1));
                    }
                } else if name_is_valid(&full) && has_tzif_magic(&entry.path()) {
                    out.push(full);
                }
            }
        }
        out.sort();
        out
    }
}

/// Whether a file starts with `TZif`.
fn has_tzif_magic(path: &Path) -> bool {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"TZif")
}

/// The local zone as glibc's `tzset()` finds it, read once per process:
/// `$TZ` when set (a leading `:` dropped; empty means UTC; an absolute path
/// to a TZif file, else a file under /usr/share/zoneinfo, else a POSIX TZ
/// rule such as `CET-1CEST,M3.5.0,M10.5.0/3`), otherwise /etc/localtime.
/// A `$TZ` that is none of these means UTC, as in glibc, and jobctl says so
/// on stderr (once); a missing /etc/localtime means UTC silently, as for
/// every program.
pub fn local_zone() -> TimeZone {
    static LOCAL: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
    LOCAL
        .get_or_init(|| {
            let tz = std::env::var_os("TZ");
            let (zone, warning) =
                resolve_local(tz.as_deref(), Path::new(ZONEINFO_DIR), Path::new(LOCALTIME));
            if let Some(warning) = warning {
                let _ = crate::output::print_error_text(&warning);
            }
            zone
        })
        .clone()
}

/// The host's default zone when `$TZ` is not set.
const LOCALTIME: &str = "/etc/localtime";

/// [`local_zone`] from its inputs: the value of `$TZ`, the zoneinfo folder,
/// the default zone file. Returns the zone and, when `$TZ` names no zone,
/// the warning to print.
fn resolve_local(
    tz: Option<&std::ffi::OsStr>,
    zoneinfo: &Path,
    localtime: &Path,
) -> (TimeZone, Option<String>) {
    let Some(tz) = tz else {
        let name = std::fs::read_link(localtime)
            .ok()
            .and_then(|target| zone_name_in(&target.to_string_lossy()));
        let zone = read_tzif(localtime)
            .ok()
            .and_then(|bytes| TimeZone::tzif(name.as_deref().unwrap_or("Local"), &bytes).ok());
        return (zone.unwrap_or(TimeZone::UTC), None);
    };
    let value = tz.to_string_lossy();
    let spec = value.strip_prefix(':').unwrap_or(&value);
    if spec.is_empty() {
        return (TimeZone::UTC, None);
    }
    let path = if spec.starts_with('/') {
        PathBuf::from(spec)
    } else {
        zoneinfo.join(spec)
    };
    // glibc reads the file first, then tries the text as a rule.
    let file = read_tzif(&path).and_then(|bytes| {
        let name = zone_name_in(spec).unwrap_or_else(|| spec.to_string());
        TimeZone::tzif(&name, &bytes).map_err(|_| "not a valid TZif file".to_string())
    });
    let problem = match file {
        Ok(zone) => return (zone, None),
        Err(problem) => problem,
    };
    if let Ok(zone) = TimeZone::posix(spec) {
        return (zone, None);
    }
    let warning = format!(
        "Warning: TZ={value:?} is not a time zone ({}: {problem}; and not a POSIX TZ rule); \
         showing times in UTC, as glibc and systemd do\n\
         Hint: set TZ to a name from {} (e.g. Europe/Berlin), or unset it to use {}\n",
        path.display(),
        zoneinfo.display(),
        localtime.display(),
    );
    (TimeZone::UTC, Some(warning))
}

/// `Europe/Berlin` from `/usr/share/zoneinfo/Europe/Berlin` or
/// `../usr/share/zoneinfo/Europe/Berlin`; a bare name as it is.
fn zone_name_in(path: &str) -> Option<String> {
    match path.rfind("zoneinfo/") {
        Some(at) => Some(path[at + "zoneinfo/".len()..].to_string()),
        None => (!path.starts_with('/')).then(|| path.to_string()),
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

/// The most read from a zone file (tzdata's largest is a few KiB).
const TZIF_LIMIT: u64 = 1 << 20;

/// The file's bytes if it is a regular file of at most [`TZIF_LIMIT`] bytes
/// starting with `TZif`, else why not. Opened without blocking, so a FIFO
/// is refused rather than waited on.
fn read_tzif(path: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            _ => e.to_string(),
        })?;
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".into());
    }
    let bytes = crate::files::read_limited_from(file, TZIF_LIMIT).map_err(|e| e.to_string())?;
    if !bytes.starts_with(b"TZif") {
        return Err("not a TZif file".into());
    }
    Ok(bytes)
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

    /// `$TZ` as glibc reads it; a `$TZ` that names nothing is UTC, with a
    /// warning that says which file was tried.
    #[test]
    fn local_zone_follows_tz_like_glibc() {
        use std::ffi::OsStr;
        let tmp = tempfile::tempdir().unwrap();
        let zoneinfo = Path::new(ZONEINFO_DIR);
        let localtime = tmp.path().join("localtime");
        let resolve = |tz: Option<&str>| resolve_local(tz.map(OsStr::new), zoneinfo, &localtime);
        let at = jiff::Timestamp::from_second(1_751_328_000).unwrap(); // 2025-07-01
        let offset = |zone: &TimeZone| zone.to_offset(at).seconds();
        for (tz, seconds) in [
            ("Asia/Tokyo", 9 * 3600),
            (":Asia/Tokyo", 9 * 3600),
            ("/usr/share/zoneinfo/America/New_York", -4 * 3600),
            ("EST5EDT,M3.2.0,M11.1.0", -4 * 3600),
            ("JST-9", 9 * 3600),
            ("", 0),
            (":", 0),
        ] {
            let (zone, warning) = resolve(Some(tz));
            assert_eq!(offset(&zone), seconds, "TZ={tz}");
            assert_eq!(warning, None, "TZ={tz}");
        }
        for (tz, why) in [
            (
                "Mars/Olympus",
                "/usr/share/zoneinfo/Mars/Olympus: no such file",
            ),
            ("asia/tokyo", "no such file"),
            ("/dev/zero", "/dev/zero: not a regular file"),
            ("/etc/hostname", "not a TZif file"),
        ] {
            let (zone, warning) = resolve(Some(tz));
            assert_eq!(offset(&zone), 0, "TZ={tz}");
            let warning = warning.unwrap_or_else(|| panic!("TZ={tz}: no warning"));
            assert!(
                warning.starts_with(&format!("Warning: TZ=\"{tz}\" is not a time zone"))
                    && warning.contains(why)
                    && warning.contains("UTC"),
                "{warning}"
            );
        }
        // A huge file is refused after reading its first MiB.
        let huge = tmp.path().join("huge");
        let mut file = std::fs::File::create(&huge).unwrap();
        std::io::Write::write_all(&mut file, b"TZif").unwrap();
        file.set_len(1 << 40).unwrap();
        let (_, warning) = resolve(Some(huge.to_str().unwrap()));
        assert!(warning.unwrap().contains("larger than 1 MiB"));
        // Control characters in the value are escaped in the warning.
        let (_, warning) = resolve(Some("x\u{1b}[2J"));
        assert!(warning.unwrap().contains("TZ=\"x\\u{1b}[2J\""));

        // No $TZ: the default file, or UTC without a warning when it is missing.
        assert_eq!(resolve(None), (TimeZone::UTC, None));
        std::os::unix::fs::symlink("/usr/share/zoneinfo/Asia/Tokyo", &localtime).unwrap();
        let (zone, warning) = resolve(None);
        assert_eq!((offset(&zone), warning), (9 * 3600, None));
        assert_eq!(zone.iana_name(), Some("Asia/Tokyo"));
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
