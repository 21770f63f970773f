//! The unit folder jobctl writes to (`/etc/systemd/system`, or
//! `~/.config/systemd/user`), passed in so tests use a temp folder.
//!
//! Writes are atomic and durable: every new file goes to a temp file in the
//! same folder, the temp files are flushed to disk, then renamed over their
//! targets, then the folder itself is flushed. A crash leaves each unit either
//! old or new, never half-written. For a big batch, one `syncfs` replaces a
//! thousand `fsync`s (the same guarantee: data on disk before any rename).

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Above this many files, one `syncfs` of the folder's filesystem is cheaper
/// than one `fsync` per file.
const SYNCFS_THRESHOLD: usize = 16;

/// A `.service` or `.timer` entry found in the unit folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFileOnDisk {
    pub name: String,
    /// The file's text; `None` for symlinks (masks, links: never jobctl's)
    /// and unreadable or non-UTF-8 files.
    pub contents: Option<String>,
}

/// A unit folder.
#[derive(Debug, Clone)]
pub struct UnitDir {
    dir: PathBuf,
}

/// Which files a partial write or removal got done before it failed.
#[derive(Debug, thiserror::Error)]
#[error("{error} ({} of the unit files were already changed)", done.len())]
pub struct Partial {
    pub done: Vec<String>,
    #[source]
    pub error: Error,
}

impl UnitDir {
    pub fn new(dir: impl Into<PathBuf>) -> UnitDir {
        UnitDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Every `.service`/`.timer` entry of the folder (not its subfolders),
    /// sorted by name. A missing folder has none.
    pub fn read_units(&self) -> Result<Vec<UnitFileOnDisk>> {
        let entries = self.unit_entries()?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // Files are opened relative to the folder: one path component to
        // resolve instead of the whole path (list and apply read thousands).
        let dir_fd = rustix::fs::open(
            &self.dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok();
        let mut out = Vec::new();
        for (name, entry) in entries {
            let file_type = entry
                .file_type()
                .map_err(|e| Error::io(format!("reading {}", entry.path().display()), e))?;
            let contents = if file_type.is_file() {
                dir_fd
                    .as_ref()
                    .and_then(|dir| read_small(dir, &name).ok())
                    .and_then(|b| String::from_utf8(b).ok())
            } else {
                None
            };
            out.push(UnitFileOnDisk { name, contents });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The folder's `.service`/`.timer` entries, sorted by name, each with
    /// whether it is a regular file (by the folder's listing, not a stat):
    /// what [`UnitDir::read_units`] reads, for a reader that keeps the files'
    /// texts between readings (jobctl-web) and reads them with
    /// [`UnitDir::read_file_at`].
    pub fn entries(&self) -> Result<Vec<(String, bool)>> {
        let mut out = Vec::new();
        for (name, entry) in self.unit_entries()? {
            let file_type = entry
                .file_type()
                .map_err(|e| Error::io(format!("reading {}", entry.path().display()), e))?;
            out.push((name, file_type.is_file()));
        }
        out.sort();
        Ok(out)
    }

    /// The folder, opened for `*at` calls (`None` when it cannot be).
    pub fn open(&self) -> Option<rustix::fd::OwnedFd> {
        rustix::fs::open(
            &self.dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
    }

    /// One unit file's text, as [`UnitDir::read_units`] reads it (not
    /// through a link; `None` when unreadable or not UTF-8).
    pub fn read_file_at(dir: &rustix::fd::OwnedFd, name: &str) -> Option<String> {
        read_small(dir, name)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    }

    /// The names of the folder's regular `.service`/`.timer` files, without
    /// reading them (a directory listing: what `list` asks systemd about
    /// while the files themselves are being read).
    pub fn unit_names(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .unit_entries()?
            .into_iter()
            .filter(|(_, entry)| entry.file_type().is_ok_and(|t| t.is_file()))
            .map(|(name, _)| name)
            .collect();
        out.sort();
        Ok(out)
    }

    /// The folder's `.service`/`.timer` entries with their names, unsorted;
    /// hidden names (temporary files of an interrupted write) are skipped. A
    /// missing folder has none.
    fn unit_entries(&self) -> Result<Vec<(String, fs::DirEntry)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", self.dir.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| Error::io(format!("reading {}", self.dir.display()), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if (name.ends_with(".service") || name.ends_with(".timer")) && !name.starts_with('.') {
                out.push((name, entry));
            }
        }
        Ok(out)
    }

    /// Writes every `(name, contents)` atomically. Either fails before any
    /// target changed (`Partial::done` empty) or reports which were renamed.
    pub fn write_all(&self, files: &[(String, String)]) -> std::result::Result<(), Partial> {
        if files.is_empty() {
            return Ok(());
        }
        let fail = |done: Vec<String>, error| Partial { done, error };
        for (name, _) in files {
            check_name(name).map_err(|e| fail(Vec::new(), e))?;
        }
        fs::create_dir_all(&self.dir).map_err(|e| {
            fail(
                Vec::new(),
                Error::io(format!("creating {}", self.dir.display()), e),
            )
        })?;
        // Phase 1: temp files, flushed to disk. Nothing visible has changed.
        let mut temps: Vec<(PathBuf, PathBuf, &str)> = Vec::with_capacity(files.len());
        let per_file_fsync = files.len() <= SYNCFS_THRESHOLD;
        for (name, contents) in files {
            let target = self.dir.join(name);
            let temp = self
                .dir
                .join(format!(".{name}.jobctl-{}.tmp", std::process::id()));
            let written = write_temp(&temp, contents.as_bytes(), per_file_fsync);
            if let Err(e) = written {
                let _ = fs::remove_file(&temp);
                for (t, _, _) in &temps {
                    let _ = fs::remove_file(t);
                }
                return Err(fail(
                    Vec::new(),
                    Error::io(format!("writing {}", temp.display()), e),
                ));
            }
            temps.push((temp, target, name));
        }
        if !per_file_fsync {
            let synced = fs::File::open(&self.dir)
                .and_then(|d| rustix::fs::syncfs(&d).map_err(io::Error::from));
            if let Err(e) = synced {
                for (t, _, _) in &temps {
                    let _ = fs::remove_file(t);
                }
                return Err(fail(
                    Vec::new(),
                    Error::io(format!("syncing {}", self.dir.display()), e),
                ));
            }
        }
        // Phase 2: rename over the targets, then make the renames durable.
        let mut done = Vec::with_capacity(temps.len());
        let mut iter = temps.iter();
        for (temp, target, name) in iter.by_ref() {
            if let Err(e) = fs::rename(temp, target) {
                let _ = fs::remove_file(temp);
                for (t, _, _) in iter {
                    let _ = fs::remove_file(t);
                }
                let _ = self.sync_dir();
                return Err(fail(
                    done,
                    Error::io(format!("renaming into {}", target.display()), e),
                ));
            }
            done.push(name.to_string());
        }
        self.sync_dir().map_err(|e| fail(done.clone(), e))?;
        Ok(())
    }

    /// Removes the named files (a missing one is fine) and flushes the folder.
    pub fn remove_all(&self, names: &[String]) -> std::result::Result<(), Partial> {
        let mut done = Vec::new();
        for name in names {
            check_name(name).map_err(|error| Partial {
                done: done.clone(),
                error,
            })?;
            match fs::remove_file(self.dir.join(name)) {
                Ok(()) => done.push(name.clone()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Partial {
                        done,
                        error: Error::io(format!("removing {}", self.dir.join(name).display()), e),
                    });
                }
            }
        }
        if !names.is_empty() {
            self.sync_dir().map_err(|error| Partial {
                done: done.clone(),
                error,
            })?;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<()> {
        fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(format!("syncing {}", self.dir.display()), e))
    }
}

fn write_temp(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)?;
    // The umask may have narrowed the mode; systemd needs units world-readable.
    f.set_permissions(fs::Permissions::from_mode(0o644))?;
    f.write_all(bytes)?;
    if fsync {
        f.sync_all()?;
    }
    Ok(())
}

/// The most read from one unit file: far more than any rendered unit (whose
/// lines systemd limits to 1 MiB), and a bound on a file that is not one.
const UNIT_FILE_LIMIT: usize = 16 << 20;

/// Reads a unit file of the folder `dir` whole: openat, reads until end of
/// file, close (no stat for a size hint, no seek: a unit file is small). A
/// file larger than [`UNIT_FILE_LIMIT`] is an error (it is not one of ours).
fn read_small(dir: &rustix::fd::OwnedFd, name: &str) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let fd = rustix::fs::openat(
        dir,
        name,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )?;
    let mut file = fs::File::from(fd);
    let mut buf = Vec::with_capacity(4096);
    loop {
        if buf.len() > UNIT_FILE_LIMIT {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "larger than any unit file jobctl writes",
            ));
        }
        if buf.len() == buf.capacity() {
            buf.reserve(buf.capacity());
        }
        let start = buf.len();
        buf.resize(buf.capacity(), 0);
        match file.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                return Ok(buf);
            }
            Ok(n) => buf.truncate(start + n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => return Err(e),
        }
    }
}

/// A unit name is a single path component: no separators, no dot files.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') || name.contains('\0') {
        return Err(Error::new(
            format!("writing unit {name:?}"),
            crate::ErrorKind::Io,
            "not a valid unit file name",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A huge file in the unit folder is not read whole: it is not ours.
    #[test]
    fn a_huge_unit_file_is_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = UnitDir::new(tmp.path());
        let huge = fs::File::create(tmp.path().join("huge.service")).unwrap();
        huge.set_len(1 << 40).unwrap(); // sparse
        fs::write(tmp.path().join("small.service"), "[Unit]\n").unwrap();
        let units = dir.read_units().unwrap();
        assert_eq!(units[0].name, "huge.service");
        assert_eq!(units[0].contents, None);
        assert_eq!(units[1].contents.as_deref(), Some("[Unit]\n"));
    }

    #[test]
    fn writes_reads_and_removes_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = UnitDir::new(tmp.path().join("units"));
        assert!(
            dir.read_units().unwrap().is_empty(),
            "a missing folder has no units"
        );

        let files = vec![
            (
                "jobctl-a.service".to_string(),
                "[Unit]\nX-Jobctl-Job=a\n".to_string(),
            ),
            ("jobctl-a.timer".to_string(), "[Timer]\n".to_string()),
        ];
        dir.write_all(&files).unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("masked.service")).unwrap();
        fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let units = dir.read_units().unwrap();
        let names: Vec<_> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            ["jobctl-a.service", "jobctl-a.timer", "masked.service"]
        );
        assert_eq!(
            units[0].contents.as_deref(),
            Some("[Unit]\nX-Jobctl-Job=a\n")
        );
        assert_eq!(units[2].contents, None, "symlinks are never read as ours");
        assert_eq!(
            dir.unit_names().unwrap(),
            ["jobctl-a.service", "jobctl-a.timer"],
            "names of regular unit files only"
        );
        let mode = fs::metadata(dir.path().join("jobctl-a.timer"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        // No temp files are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());

        // A batch big enough for the syncfs path.
        let many: Vec<_> = (0..40)
            .map(|i| (format!("jobctl-m{i}.service"), format!("n={i}\n")))
            .collect();
        dir.write_all(&many).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("jobctl-m39.service")).unwrap(),
            "n=39\n"
        );

        dir.remove_all(&["jobctl-a.timer".to_string(), "gone.timer".to_string()])
            .unwrap();
        assert!(!dir.path().join("jobctl-a.timer").exists());
    }

    #[test]
    fn bad_names_change_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = UnitDir::new(tmp.path());
        let err = dir
            .write_all(&[
                ("ok.service".to_string(), "x".to_string()),
                ("../escape.service".to_string(), "x".to_string()),
            ])
            .unwrap_err();
        assert!(err.done.is_empty());
        assert_eq!(
            fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "temp files were cleaned"
        );
    }

    #[test]
    fn a_failed_rename_reports_what_was_done() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = UnitDir::new(tmp.path());
        // A folder where a file should go makes that rename fail.
        fs::create_dir(tmp.path().join("b.service")).unwrap();
        fs::write(tmp.path().join("b.service/keep"), "x").unwrap();
        let err = dir
            .write_all(&[
                ("a.service".to_string(), "a".to_string()),
                ("b.service".to_string(), "b".to_string()),
                ("c.service".to_string(), "c".to_string()),
            ])
            .unwrap_err();
        assert_eq!(err.done, ["a.service"]);
        assert!(!tmp.path().join("c.service").exists());
        let temps = fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(temps, 0);
    }
}
