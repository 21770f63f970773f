//! Finding and opening users' databases without acting on a file a user
//! chose: links, hard links, other owners, loose modes, and files swapped
//! between the check and the open (issue 10, item 1). The real-systemd
//! version, with real users, is in tests/systemd_e2e.rs.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jobctl_history::liveness::LivenessProbe;
use jobctl_history::locate::{self, Located};
use jobctl_history::testing::{run, spread_id};
use jobctl_history::{OpenMode, Retention, RunFilter, RunRecord, Status, Store};

const T0: i64 = 1_800_000_000_000_000;

fn record(n: u64, job: &str) -> RunRecord {
    RunRecord {
        user: "u".into(),
        uid: 1000,
        ..run(spread_id(n), job, T0 + n as i64, Status::Success)
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A state folder as systemd and the shim leave it: `users/` (0755), and
/// `users/<name>/history.db` in a 0700 folder, with one run.
struct State {
    _tmp: tempfile::TempDir,
    state: PathBuf,
}

impl State {
    fn new() -> State {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("jobctl");
        std::fs::create_dir_all(state.join("users")).unwrap();
        chmod(&state.join("users"), 0o755);
        State { _tmp: tmp, state }
    }

    fn folder(&self, name: &str) -> PathBuf {
        self.state.join("users").join(name)
    }

    /// A user's folder with a database holding one run of `job`.
    fn user(&self, name: &str, job: &str) -> PathBuf {
        let dir = self.folder(name);
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o700);
        write_run(&dir.join("history.db"), job);
        dir
    }

    fn scan(&self) -> locate::Scan {
        locate::databases(&self.state)
    }
}

fn write_run(db: &Path, job: &str) {
    let mut store = Store::open(db, OpenMode::Write, Duration::from_secs(5)).unwrap();
    store
        .finish_run(&record(1, job), None, &Retention::UNLIMITED, T0)
        .unwrap();
}

fn owners(found: &[Located]) -> Vec<Option<String>> {
    found.iter().map(|l| l.owner.clone()).collect()
}

/// The one refusal of a scan, for `name`'s database.
fn refusal(scan: &locate::Scan, name: &str) -> String {
    assert!(
        !scan.found.iter().any(|l| l.owner.as_deref() == Some(name)),
        "{name} was found: {scan:#?}"
    );
    let refused: Vec<_> = scan
        .refused
        .iter()
        .filter(|r| r.owner.as_deref() == Some(name))
        .collect();
    assert_eq!(refused.len(), 1, "{scan:#?}");
    refused[0].reason.clone()
}

fn open(located: &Located) -> jobctl_history::Result<Store> {
    Store::open_located(located, OpenMode::Read, Duration::from_secs(1))
}

#[test]
fn finds_each_database_once_by_what_it_is() {
    let s = State::new();
    write_run(&s.state.join("history.db"), "root-job");
    s.user("alice", "alice-job");
    s.user("bob", "bob-job");
    std::fs::create_dir(s.folder("empty")).unwrap();
    chmod(&s.folder("empty"), 0o700);
    // A dynamic user's folder under private/, and systemd's link to it.
    let private = s.state.parent().unwrap().join("private/jobctl/users");
    std::fs::create_dir_all(&private).unwrap();
    std::fs::create_dir(private.join("dyn")).unwrap();
    chmod(&private.join("dyn"), 0o700);
    write_run(&private.join("dyn/history.db"), "dyn-job");
    symlink("../../private/jobctl/users/dyn", s.folder("dyn")).unwrap();

    let scan = s.scan();
    assert!(scan.refused.is_empty(), "{scan:#?}");
    assert_eq!(
        owners(&scan.found),
        [
            None,
            Some("alice".into()),
            Some("bob".into()),
            Some("dyn".into())
        ]
    );
    // The dynamic user's database through its real folder, not the link.
    let dyn_db = &scan.found[3];
    assert_eq!(
        dyn_db.path,
        std::fs::canonicalize(&private)
            .unwrap()
            .join("dyn/history.db")
    );
    // Each is told apart by its inode, and each opens and reads.
    let ids: Vec<_> = scan.found[1..]
        .iter()
        .map(|l| l.folder.as_ref().unwrap().db_id)
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    for (located, job) in scan.found[1..]
        .iter()
        .zip(["alice-job", "bob-job", "dyn-job"])
    {
        let store = open(located).unwrap();
        let runs = store
            .runs(&RunFilter::default(), &LivenessProbe::current(None), T0)
            .unwrap();
        assert_eq!(runs[0].job, job);
    }
}

#[test]
fn a_linked_database_is_refused_and_its_target_untouched() {
    let s = State::new();
    s.user("alice", "alice-job");
    // root's empty file, and bob's "database": a link to it; mallory's, a
    // link to alice's database.
    let target = s.state.parent().unwrap().join("important.conf");
    std::fs::write(&target, b"").unwrap();
    let bob = s.folder("bob");
    std::fs::create_dir(&bob).unwrap();
    chmod(&bob, 0o700);
    symlink(&target, bob.join("history.db")).unwrap();
    let mallory = s.folder("mallory");
    std::fs::create_dir(&mallory).unwrap();
    chmod(&mallory, 0o700);
    symlink(
        s.folder("alice").join("history.db"),
        mallory.join("history.db"),
    )
    .unwrap();

    let scan = s.scan();
    assert_eq!(owners(&scan.found), [Some("alice".to_string())]);
    for name in ["bob", "mallory"] {
        let reason = refusal(&scan, name);
        assert_eq!(
            reason,
            "history.db is a symbolic link; a user's database files must be regular files"
        );
    }
    // Named on the command line, the same.
    let err = locate::explicit(&bob.join("history.db"), &s.state).unwrap_err();
    assert!(err.reason.contains("symbolic link"), "{err:?}");
    assert_eq!(std::fs::read(&target).unwrap(), b"");
    let siblings: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("important.conf"))
        .collect();
    assert_eq!(siblings, ["important.conf"]);
}

#[test]
fn a_linked_log_shared_memory_or_journal_is_refused() {
    for file in ["history.db-wal", "history.db-shm", "history.db-journal"] {
        let s = State::new();
        let dir = s.user("alice", "alice-job");
        let target = s.state.parent().unwrap().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let _ = std::fs::remove_file(dir.join(file));
        symlink(&target, dir.join(file)).unwrap();
        let reason = refusal(&s.scan(), "alice");
        assert_eq!(
            reason,
            format!("{file} is a symbolic link; a user's database files must be regular files")
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}

#[test]
fn hard_links_loose_modes_and_a_linked_folder_are_refused() {
    // A second hard link to the database (a hard link to a file of someone
    // else's would have one too).
    let s = State::new();
    let dir = s.user("alice", "alice-job");
    std::fs::hard_link(dir.join("history.db"), s.state.join("elsewhere")).unwrap();
    assert_eq!(
        refusal(&s.scan(), "alice"),
        "history.db has 2 hard links; a user's database files must have exactly one"
    );

    // The folder must be 0700, as systemd makes it.
    let s = State::new();
    let dir = s.user("alice", "alice-job");
    chmod(&dir, 0o755);
    assert!(
        refusal(&s.scan(), "alice").contains("has mode 0755, not 0700"),
        "{:?}",
        s.scan()
    );

    // Files others may write.
    let s = State::new();
    let dir = s.user("alice", "alice-job");
    chmod(&dir.join("history.db"), 0o666);
    assert_eq!(
        refusal(&s.scan(), "alice"),
        "history.db has mode 0666: others may write it"
    );

    // A `users` folder others may write: nothing in it is read.
    let s = State::new();
    s.user("alice", "alice-job");
    chmod(&s.state.join("users"), 0o777);
    let scan = s.scan();
    assert!(scan.found.is_empty(), "{scan:#?}");
    assert!(
        scan.refused[0].reason.contains("writable by root alone"),
        "{scan:#?}"
    );

    // A `users` folder that is a link: not followed.
    let s = State::new();
    let real = s.state.parent().unwrap().join("real-users");
    std::fs::rename(s.state.join("users"), &real).unwrap();
    symlink(&real, s.state.join("users")).unwrap();
    let scan = s.scan();
    assert!(scan.found.is_empty(), "{scan:#?}");
    assert!(
        scan.refused[0].reason.contains("symbolic link"),
        "{scan:#?}"
    );
}

/// Checks that need another user's uid: root only (as CI runs them).
fn needs_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("JOBCTL_REQUIRE_ALL_TESTS").as_deref() != Ok("1"),
        "{test}: needs root, and JOBCTL_REQUIRE_ALL_TESTS=1 forbids skipping"
    );
    eprintln!("{test}: skipped, needs root");
    false
}

const NOBODY: u32 = 65534;

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

#[test]
fn files_of_another_owner_are_refused() {
    if !needs_root("files_of_another_owner_are_refused") {
        return;
    }
    // The folder is nobody's; a root file in it (as a hard link to one of
    // root's files would be) is not nobody's to offer.
    let s = State::new();
    let dir = s.user("nobody", "nobody-job");
    chown(&dir, NOBODY);
    for file in ["history.db-wal", "history.db-shm"] {
        if dir.join(file).exists() {
            chown(&dir.join(file), NOBODY);
        }
    }
    assert_eq!(
        refusal(&s.scan(), "nobody"),
        format!("history.db is owned by uid 0, not by the folder's owner (uid {NOBODY})")
    );
    chown(&dir.join("history.db"), NOBODY);
    assert_eq!(owners(&s.scan().found), [Some("nobody".to_string())]);
}

#[test]
fn root_reads_a_users_database_and_leaves_every_file_theirs() {
    if !needs_root("root_reads_a_users_database_and_leaves_every_file_theirs") {
        return;
    }
    let s = State::new();
    let dir = s.user("nobody", "nobody-job");
    // As the shim leaves it after its last run: no shared-memory file.
    let _ = std::fs::remove_file(dir.join("history.db-shm"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        chown(&entry.unwrap().path(), NOBODY);
    }
    chown(&dir, NOBODY);
    let scan = s.scan();
    let store = open(&scan.found[0]).unwrap();
    let runs = store
        .runs(&RunFilter::default(), &LivenessProbe::current(None), T0)
        .unwrap();
    assert_eq!(runs[0].job, "nobody-job");
    let mut store =
        Store::open_located(&scan.found[0], OpenMode::Maintain, Duration::from_secs(1)).unwrap();
    store
        .prune(&Retention::default(), &LivenessProbe::current(None), T0)
        .unwrap();
    drop(store);
    // SQLite created the shared memory as root and gave it to the owner.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        files.push(entry.file_name().into_string().unwrap());
        assert_eq!(
            entry.metadata().unwrap().uid(),
            NOBODY,
            "{:?}",
            entry.path()
        );
    }
    files.sort();
    assert!(files.contains(&"history.db-shm".to_string()), "{files:?}");
}

#[test]
fn a_database_swapped_after_the_scan_is_refused_at_open() {
    let s = State::new();
    let dir = s.user("alice", "alice-job");
    let scan = s.scan();
    let located = scan.found[0].clone();
    assert!(open(&located).is_ok());

    // Now a link to another file.
    let target = s.state.parent().unwrap().join("target.db");
    std::fs::rename(dir.join("history.db"), &target).unwrap();
    symlink(&target, dir.join("history.db")).unwrap();
    let err = open(&located).unwrap_err();
    assert!(
        err.to_string().contains("history.db is a symbolic link"),
        "{err}"
    );

    // Now a different regular file: not the database that was checked.
    std::fs::remove_file(dir.join("history.db")).unwrap();
    write_run(&dir.join("history.db"), "other-job");
    let err = open(&located).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("history.db was replaced since it was checked"),
        "{err}"
    );
    assert!(matches!(err, jobctl_history::Error::Refused { .. }));

    // Folder mode changed after the scan.
    let s = State::new();
    let dir = s.user("alice", "alice-job");
    let located = s.scan().found[0].clone();
    chmod(&dir, 0o750);
    let err = open(&located).unwrap_err();
    assert!(err.to_string().contains("has mode 0750"), "{err}");
}

#[test]
fn a_database_named_on_the_command_line() {
    let s = State::new();
    let dir = s.user("alice", "alice-job");
    // In one of the state folder's users' folders: its owner's, checked.
    let located = locate::explicit(&dir.join("history.db"), &s.state).unwrap();
    assert_eq!(located.owner.as_deref(), Some("alice"));
    assert!(located.folder.is_some());
    assert!(open(&located).is_ok());
    if nix::unistd::geteuid().is_root() {
        // In a folder of root's that others may write (as /tmp): refused,
        // whoever owns the file.
        let sticky = s.state.join("tmp");
        std::fs::create_dir(&sticky).unwrap();
        chmod(&sticky, 0o1777);
        write_run(&sticky.join("history.db"), "root-job");
        let err = locate::explicit(&sticky.join("history.db"), &s.state).unwrap_err();
        assert!(
            err.reason.contains("(mode 1777) is writable by others"),
            "{err:?}"
        );
        // In a folder only root can write: opened as given.
        write_run(&s.state.join("history.db"), "root-job");
        let located = locate::explicit(&s.state.join("history.db"), &s.state).unwrap();
        assert_eq!(located.owner, None);
        assert_eq!(located.folder, None);
    }
}
