//! Where the history databases are, for readers, and the checks that keep
//! root from acting on a file a user chose.
//!
//! In system mode the shim of a root job writes `<state>/history.db`
//! (`/var/lib/jobctl/history.db`); the shim of a job that runs as another
//! user writes `<state>/users/<user>/history.db`, a folder systemd creates for
//! that user alone (`StateDirectory=jobctl/users/<user>`,
//! `StateDirectoryMode=0700`). For `DynamicUser=` jobs systemd puts that
//! folder under `/var/lib/private/jobctl/users/<user>` and links it from the
//! usual place. Root's readers merge all of them.
//!
//! A user's folder is that user's to fill: any entry in it may be a link to
//! a file of root's, a hard link, a FIFO. So a user's database is found and
//! opened only through checks ([`UserFolder`]):
//!
//! - the `users` folders are opened without following links and must be
//!   root's and writable by root alone (so nobody else can rename or replace
//!   a user's folder in them); a link in `users/` (systemd's, for a dynamic
//!   user) is not followed: the folder it points to is found under `private/`;
//! - a user's folder is a real folder, mode 0700 as systemd creates it, and
//!   its owner is the user whose files it may hold;
//! - `history.db` and, where they exist, `-wal`, `-shm` and `-journal` are
//!   regular files (not links), owned by the folder's owner, with one link
//!   each and writable by that owner alone;
//! - SQLite then gets a path without any link in it and
//!   `SQLITE_OPEN_NOFOLLOW` (it opens every file of the database with
//!   `O_NOFOLLOW`), and the checks run again once it has the files open
//!   ([`crate::Store::open_located`]);
//! - as root, only when the kernel refuses hard links to other users' files
//!   (`fs.protected_hardlinks = 1`, systemd's default): otherwise a user could
//!   put a hard link to a root file in place between the check and the open.
//!
//! Databases are told apart by what they are (device and inode of the file),
//! never by a path.

use std::fs::Metadata;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::sys::stat::Mode;

/// The files of one database: the database itself first.
pub const DATABASE_FILES: [&str; 4] = [
    "history.db",
    "history.db-wal",
    "history.db-shm",
    "history.db-journal",
];

/// One database a reader should open.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Located {
    pub path: PathBuf,
    /// `None` for the main database, else the `<user>` folder name it was
    /// found under (who wrote it, whatever its rows claim).
    pub owner: Option<String>,
    /// For a database in a folder a user owns: what was checked, and is
    /// checked again when it is opened.
    #[serde(skip)]
    pub folder: Option<UserFolder>,
}

/// A user's folder as it was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFolder {
    /// The folder, with no link in its path.
    pub dir: PathBuf,
    /// The folder's device and inode.
    pub dir_id: FileId,
    /// Its owner, who must own every file of the database.
    pub uid: u32,
    /// The database file's device and inode when it was found.
    pub db_id: FileId,
    /// A dynamic user's folder (under `private/`): its owner's uid is the
    /// one systemd allocated for the latest run.
    pub dynamic: bool,
}

/// A file's identity: device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// A database that was found and is not opened, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub path: PathBuf,
    pub owner: Option<String>,
    pub reason: String,
}

/// What a scan of the state folder found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The main database first (if it exists), then users' by folder name.
    pub found: Vec<Located>,
    /// Users' databases that failed a check.
    pub refused: Vec<Refused>,
}

/// The main database and every user's under `state_dir`, existing ones only.
pub fn databases(state_dir: &Path) -> Scan {
    let mut scan = Scan::default();
    let main = state_dir.join("history.db");
    if main.is_file() {
        scan.found.push(Located {
            path: main,
            owner: None,
            folder: None,
        });
    }
    let users = users_databases(state_dir);
    scan.found.extend(users.found);
    scan.refused = users.refused;
    scan
}

/// Every user's database under `state_dir` (`users/*/history.db`, and
/// `../private/<name>/users/*/history.db` for dynamic users), checked; each
/// database once, by folder name.
pub fn users_databases(state_dir: &Path) -> Scan {
    let mut scan = Scan::default();
    let Ok(state) = std::fs::canonicalize(state_dir) else {
        return scan;
    };
    let mut roots = vec![state.join("users")];
    if let (Some(parent), Some(name)) = (state.parent(), state.file_name()) {
        roots.push(parent.join("private").join(name).join("users"));
    }
    let as_root = nix::unistd::geteuid().is_root();
    let hardlinks_ok = !as_root || hardlinks_protected();
    let mut seen: Vec<FileId> = Vec::new();
    let mut found: Vec<Located> = Vec::new();
    for (i, root) in roots.into_iter().enumerate() {
        // The second root holds dynamic users' folders.
        let dynamic = i == 1;
        let root_fd = match open_trusted_dir(&root) {
            Ok(Some(fd)) => fd,
            Ok(None) => continue,
            Err(reason) => {
                scan.refused.push(Refused {
                    path: root.clone(),
                    owner: None,
                    reason,
                });
                continue;
            }
        };
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        for name in names {
            let dir = root.join(&name);
            let path = dir.join("history.db");
            let refuse = |reason: String| Refused {
                path: path.clone(),
                owner: Some(name.clone()),
                reason,
            };
            match check_user_folder(root_fd.as_fd(), &name, &dir) {
                Ok(None) => {}
                Ok(Some(folder)) => {
                    if seen.contains(&folder.db_id) {
                        continue;
                    }
                    seen.push(folder.db_id);
                    if !hardlinks_ok {
                        scan.refused.push(refuse(HARDLINKS_UNPROTECTED.to_string()));
                        continue;
                    }
                    found.push(Located {
                        path,
                        owner: Some(name.clone()),
                        folder: Some(UserFolder { dynamic, ..folder }),
                    });
                }
                Err(reason) => scan.refused.push(refuse(reason)),
            }
        }
    }
    found.sort_by(|a, b| a.owner.cmp(&b.owner));
    scan.found = found;
    scan
}

/// Checks a database named on the command line (`--db`). In one of the
/// state folder's users' folders, or in any folder that is not root's alone,
/// it gets every check a user's database gets (and, in a users' folder, that
/// folder's name as its owner); in a folder only root can write it is opened
/// as given.
pub fn explicit(path: &Path, state_dir: &Path) -> Result<Located, Refused> {
    let plain = Located {
        path: path.to_path_buf(),
        owner: None,
        folder: None,
    };
    let refuse = |reason: String| Refused {
        path: path.to_path_buf(),
        owner: None,
        reason,
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (Ok(dir), Ok(dir_meta)) = (std::fs::canonicalize(parent), std::fs::metadata(parent)) else {
        return Ok(plain); // opening it reports what is wrong
    };
    let Ok(entry) = std::fs::symlink_metadata(dir.join(name)) else {
        return Ok(plain);
    };
    let (Some(folder_name), Some(root)) = (dir.file_name().and_then(|n| n.to_str()), dir.parent())
    else {
        return Ok(plain);
    };
    let in_users_folder = std::fs::canonicalize(state_dir).is_ok_and(|state| {
        let mut roots = vec![state.join("users")];
        if let (Some(parent), Some(name)) = (state.parent(), state.file_name()) {
            roots.push(parent.join("private").join(name).join("users"));
        }
        roots.iter().any(|r| r == root)
    });
    let root_only = |m: &Metadata| m.uid() == 0 && m.mode() & 0o022 == 0;
    if !in_users_folder
        && root_only(&dir_meta)
        && root_only(&entry)
        && !entry.file_type().is_symlink()
    {
        return Ok(plain);
    }
    if !in_users_folder && dir_meta.uid() == 0 {
        // Root's, but others may write it (/tmp): anyone could put a file of
        // theirs, or a link, where root's database or its log will be.
        return Err(refuse(format!(
            "the folder {} (mode {:04o}) is writable by others, who could put their own \
             file or a link where the database or its log is created; use a folder only root \
             can write",
            dir.display(),
            dir_meta.mode() & 0o7777
        )));
    }
    if name != DATABASE_FILES[0] {
        return Err(refuse(format!(
            "it is in a folder that is not root's alone ({}), where only a file named history.db \
             is read, with the checks a user's database gets",
            dir.display()
        )));
    }
    let root_fd = match open_trusted_dir(root) {
        Ok(Some(fd)) => fd,
        Ok(None) => return Err(refuse(format!("{} cannot be opened", root.display()))),
        Err(reason) => return Err(refuse(reason)),
    };
    let folder = match check_user_folder(root_fd.as_fd(), folder_name, &dir) {
        Ok(Some(folder)) => folder,
        Ok(None) => {
            return Err(refuse(
                "it does not exist (or cannot be opened), and root never creates a database \
                 in a folder that is not root's alone"
                    .into(),
            ));
        }
        Err(reason) => return Err(refuse(reason)),
    };
    if nix::unistd::geteuid().is_root() && !hardlinks_protected() {
        return Err(refuse(HARDLINKS_UNPROTECTED.into()));
    }
    Ok(Located {
        path: dir.join(DATABASE_FILES[0]),
        owner: in_users_folder.then(|| folder_name.to_string()),
        folder: Some(folder),
    })
}

const HARDLINKS_UNPROTECTED: &str = "the kernel lets users hard-link files they do not own \
     (fs.protected_hardlinks = 0), so a user could swap in a link to a root file between \
     the check and the open; set fs.protected_hardlinks = 1 (systemd's default)";

/// Whether the kernel refuses hard links to files the linking user does not
/// own and cannot write (`/proc/sys/fs/protected_hardlinks`).
pub fn hardlinks_protected() -> bool {
    std::fs::read_to_string("/proc/sys/fs/protected_hardlinks")
        .is_ok_and(|v| matches!(v.trim(), "1" | "2"))
}

/// Opens a `users` folder, which must be root's and writable by root alone
/// (else a user could rename folders in it). `None` when it does not exist.
fn open_trusted_dir(dir: &Path) -> Result<Option<OwnedFd>, String> {
    let fd = match nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::EACCES) => return Ok(None),
        // (With O_DIRECTORY, Linux reports a link as "not a folder".)
        Err(Errno::ELOOP | Errno::ENOTDIR) => {
            if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(format!(
                    "{} is a symbolic link; users' folders are read only from a real folder",
                    dir.display()
                ));
            }
            return Ok(None);
        }
        Err(e) => return Err(format!("cannot open {}: {e}", dir.display())),
    };
    let meta = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?)
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let euid = nix::unistd::geteuid().as_raw();
    if (meta.uid() != 0 && meta.uid() != euid) || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is owned by uid {} with mode {:04o}; it must be root's and writable by root alone",
            dir.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ));
    }
    Ok(Some(fd))
}

/// Checks the folder `name` in `root` and the database in it: `Ok(None)`
/// when there is no database to read (no such folder, a link in `users/`, a
/// folder this process may not enter, no `history.db`).
fn check_user_folder(
    root: std::os::fd::BorrowedFd<'_>,
    name: &str,
    dir: &Path,
) -> Result<Option<UserFolder>, String> {
    let fd = match openat(
        root,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // A link (systemd's, to a dynamic user's folder, found under
        // `private/`), a file, a folder this user may not read.
        Err(Errno::ELOOP | Errno::ENOTDIR | Errno::ENOENT | Errno::EACCES) => return Ok(None),
        Err(e) => return Err(format!("cannot open {}: {e}", dir.display())),
    };
    let meta = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?)
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let folder = UserFolder {
        dir: dir.to_path_buf(),
        dir_id: FileId::of(&meta),
        uid: meta.uid(),
        db_id: FileId { dev: 0, ino: 0 },
        dynamic: false,
    };
    match check_files(fd.as_fd(), &folder, &meta)? {
        Some(db_id) => Ok(Some(UserFolder { db_id, ..folder })),
        None => Ok(None),
    }
}

/// Checks a user's folder (already open as `dir`, with metadata `meta`) and
/// the database files in it; the database's identity, or `None` when there
/// is no `history.db`.
pub(crate) fn check_files(
    dir: std::os::fd::BorrowedFd<'_>,
    folder: &UserFolder,
    meta: &Metadata,
) -> Result<Option<FileId>, String> {
    let path = folder.dir.display();
    if FileId::of(meta) != folder.dir_id {
        return Err(format!("the folder {path} was replaced"));
    }
    if meta.mode() & 0o7777 != 0o700 {
        return Err(format!(
            "the folder {path} has mode {:04o}, not 0700 as systemd creates it \
             (StateDirectoryMode=0700; systemd sets it again when the job next starts)",
            meta.mode() & 0o7777
        ));
    }
    let mut db_id = None;
    for (i, name) in DATABASE_FILES.iter().enumerate() {
        let stat =
            match nix::sys::stat::fstatat(dir, *name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(Errno::ENOENT) => {
                    if i == 0 {
                        return Ok(None);
                    }
                    continue;
                }
                Err(e) => return Err(format!("cannot read {name}: {e}")),
            };
        let kind = stat.st_mode & S_IFMT;
        let what = match kind {
            k if k == S_IFREG => None,
            k if k == S_IFLNK => Some("a symbolic link"),
            k if k == S_IFDIR => Some("a folder"),
            _ => Some("not a regular file"),
        };
        if let Some(what) = what {
            return Err(format!(
                "{name} is {what}; a user's database files must be regular files"
            ));
        }
        if stat.st_uid != folder.uid {
            return Err(format!(
                "{name} is owned by uid {}, not by the folder's owner (uid {})",
                stat.st_uid, folder.uid
            ));
        }
        if stat.st_nlink != 1 {
            return Err(format!(
                "{name} has {} hard links; a user's database files must have exactly one",
                stat.st_nlink
            ));
        }
        if stat.st_mode & 0o022 != 0 {
            return Err(format!(
                "{name} has mode {:04o}: others may write it",
                stat.st_mode & 0o7777
            ));
        }
        if i == 0 {
            db_id = Some(FileId {
                dev: stat.st_dev,
                ino: stat.st_ino,
            });
        }
    }
    Ok(db_id)
}

const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFDIR: u32 = 0o040000;

/// Checks a user's database again, right before or after SQLite opens it:
/// the same folder, the same database file, and its other files as
/// [`users_databases`] requires them.
pub(crate) fn recheck(folder: &UserFolder) -> Result<(), String> {
    let fd = nix::fcntl::open(
        &folder.dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open {}: {e}", folder.dir.display()))?;
    let meta = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?)
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", folder.dir.display()))?;
    if meta.uid() != folder.uid {
        return Err(format!("the folder {} changed owner", folder.dir.display()));
    }
    match check_files(fd.as_fd(), folder, &meta)? {
        Some(id) if id == folder.db_id => Ok(()),
        Some(_) => Err("history.db was replaced since it was checked".into()),
        None => Err("history.db no longer exists".into()),
    }
}
