//! Where the history databases are, for readers.
//!
//! In system mode the shim of a root job writes `<state>/history.db`
//! (`/var/lib/jobctl/history.db`); the shim of a job that runs as another
//! user writes `<state>/users/<user>/history.db`, a folder systemd creates for
//! that user alone (`StateDirectory=jobctl/users/<user>`,
//! `StateDirectoryMode=0700`). For `DynamicUser=` jobs systemd puts that
//! folder under `/var/lib/private/jobctl/users/<user>` and links it from the
//! usual place; both places are scanned and duplicates dropped. Root's
//! readers merge all of them.

use std::path::{Path, PathBuf};

/// One database a reader should open.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Located {
    pub path: PathBuf,
    /// `None` for the main database, else the `<user>` folder name it was
    /// found under (who wrote it, whatever its rows claim).
    pub owner: Option<String>,
}

/// The main database and every user's under `state_dir`, existing ones only,
/// the main one first, users by name.
pub fn databases(state_dir: &Path) -> Vec<Located> {
    let mut found = Vec::new();
    let main = state_dir.join("history.db");
    if main.is_file() {
        found.push(Located {
            path: main,
            owner: None,
        });
    }
    let mut user_roots = vec![state_dir.join("users")];
    if let (Some(parent), Some(name)) = (state_dir.parent(), state_dir.file_name()) {
        user_roots.push(parent.join("private").join(name).join("users"));
    }
    let mut users: Vec<(String, PathBuf, PathBuf)> = Vec::new();
    for root in user_roots {
        let Ok(entries) = std::fs::read_dir(&root) else {
            continue;
        };
        for entry in entries.flatten() {
            let db = entry.path().join("history.db");
            // Root can read this even when the folder is 0700.
            if !db.is_file() {
                continue;
            }
            let canonical = db.canonicalize().unwrap_or_else(|_| db.clone());
            if users.iter().any(|(_, _, c)| *c == canonical) {
                continue;
            }
            users.push((
                entry.file_name().to_string_lossy().into_owned(),
                db,
                canonical,
            ));
        }
    }
    users.sort();
    found.extend(users.into_iter().map(|(owner, path, _)| Located {
        path,
        owner: Some(owner),
    }));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_main_user_and_private_databases_once() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("jobctl");
        std::fs::create_dir_all(state.join("users/alice")).unwrap();
        std::fs::create_dir_all(state.join("users/empty")).unwrap();
        std::fs::create_dir_all(tmp.path().join("private/jobctl/users/dyn")).unwrap();
        std::fs::write(state.join("history.db"), b"").unwrap();
        std::fs::write(state.join("users/alice/history.db"), b"").unwrap();
        std::fs::write(tmp.path().join("private/jobctl/users/dyn/history.db"), b"").unwrap();
        // systemd's link for the dynamic user's folder.
        std::os::unix::fs::symlink("../../private/jobctl/users/dyn", state.join("users/dyn"))
            .unwrap();
        let found = databases(&state);
        let owners: Vec<_> = found.iter().map(|l| l.owner.clone()).collect();
        assert_eq!(
            owners,
            vec![None, Some("alice".to_string()), Some("dyn".to_string())]
        );
    }
}
