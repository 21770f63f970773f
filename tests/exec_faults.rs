//! Bookkeeping never breaks the job: with the history database missing,
//! unwritable, locked, full, corrupt or too new, the command still runs, its
//! output still flows, its exit status still propagates, and the shim emits a
//! structured warning carrying the run's record (here through the stderr
//! fallback; journald does not run on the test machine).

mod exec_support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use exec_support::*;

/// The job ran normally: its output and exit code are untouched.
fn assert_job_unharmed(out: &Output) {
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to stdout\n");
    assert!(
        text(&out.stderr).starts_with("to stderr\n"),
        "{}",
        text(&out.stderr)
    );
}

/// The warning carries the run's record, in the structured fallback format.
fn assert_warning(out: &Output, job: &str, cause: &str) {
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("was not recorded in the history"))
        .unwrap_or_else(|| panic!("no warning in: {stderr}"));
    assert!(line.contains(&format!("JOBCTL_JOB={job}")), "{line}");
    let id = line
        .split(' ')
        .find_map(|w| w.strip_prefix("JOBCTL_RUN_ID="))
        .unwrap();
    assert_eq!(id.len(), 16, "{line}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(line.contains("JOBCTL_STATUS=failed"), "{line}");
    assert!(line.contains("JOBCTL_EXIT_CODE=3"), "{line}");
    assert!(line.contains("JOBCTL_STARTED="), "{line}");
    assert!(line.contains("JOBCTL_DURATION_US="), "{line}");
    assert!(line.contains("JOBCTL_OUTPUT_BYTES=20"), "{line}");
    assert!(
        line.to_lowercase().contains(&cause.to_lowercase()),
        "expected {cause:?} in {line}"
    );
}

const STEPS: [&str; 6] = ["out", "to stdout", "err", "to stderr", "exit", "3"];

fn exec_at(s: &Scratch, db: &Path, extra: &[&str]) -> Output {
    s.cmd()
        .args(["exec", "--job", "fragile", "--db"])
        .arg(db)
        .args(extra)
        .arg("--")
        .arg(FAKEJOB)
        .args(STEPS)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn missing_directory() {
    let s = Scratch::new();
    let db = s.path().join("no/such/folder/history.db");
    let out = exec_at(&s, &db, &[]);
    assert_job_unharmed(&out);
    assert_warning(&out, "fragile", "No such file or directory");
    assert!(!db.exists());
}

#[test]
fn corrupt_file() {
    let s = Scratch::new();
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&s.db, &garbage).unwrap();
    let out = exec_at(&s, &s.db, &[]);
    assert_job_unharmed(&out);
    assert_warning(&out, "fragile", "not a database");
    // Left as it was, for the operator to inspect.
    assert_eq!(std::fs::read(&s.db).unwrap(), garbage);
}

#[test]
fn newer_schema_is_refused_and_left_alone() {
    let s = Scratch::new();
    assert!(s.exec("setup", &[], &[]).status.success());
    rusqlite::Connection::open(&s.db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let out = exec_at(&s, &s.db, &[]);
    assert_job_unharmed(&out);
    assert_warning(&out, "fragile", "newer than this jobctl understands");
    let version: i64 = rusqlite::Connection::open(&s.db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
    // Readers refuse it too, with the same clear message.
    let out = s
        .cmd()
        .args(["history", "--db"])
        .arg(&s.db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("upgrade jobctl"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn locked_by_another_writer() {
    let s = Scratch::new();
    assert!(s.exec("setup", &[], &[]).status.success());
    let holder = rusqlite::Connection::open(&s.db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let out = exec_at(&s, &s.db, &["--db-timeout", "200ms"]);
    assert_job_unharmed(&out);
    assert_warning(&out, "fragile", "locked");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    // Once the lock is gone, runs are recorded again.
    assert_eq!(exec_at(&s, &s.db, &[]).status.code(), Some(3));
    let jobs: Vec<String> = s
        .runs()
        .iter()
        .map(|r| r["job"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(jobs, ["fragile", "setup"]);
}

#[test]
fn lock_released_during_the_run_still_records_it() {
    // The start row cannot be written (locked), but the lock is gone when
    // the command ends: the completing write inserts the whole row.
    let s = Scratch::new();
    assert!(s.exec("setup", &[], &[]).status.success());
    let holder = rusqlite::Connection::open(&s.db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let release = s.path().join("release");
    let started = s.path().join("started");
    let child = s
        .cmd()
        .args(["exec", "--job", "late", "--db-timeout", "100ms", "--db"])
        .arg(&s.db)
        .arg("--")
        .arg(FAKEJOB)
        .arg("pidfile")
        .arg(&started)
        .arg("await-file")
        .arg(&release)
        .args(["go", "exit", "4"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command runs only after the shim gave up on the start row.
    wait_for(
        "the command to start",
        std::time::Duration::from_secs(20),
        || started.exists(),
    );
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    std::fs::write(&release, "go").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let runs = s.runs();
    assert_eq!(runs[0]["job"], "late");
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(runs[0]["exit_code"], 4);
}

#[test]
fn unwritable_database_as_another_user() {
    if !can_run_as_root("unwritable_database_as_another_user") {
        return;
    }
    let s = Scratch::new();
    let bins = user_visible_binaries(&s);
    let shared = s.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o755);
    chmod(s.path(), 0o755);
    let db = shared.join("history.db");
    let setup = s
        .cmd()
        .args(["exec", "--job", "setup", "--db"])
        .arg(&db)
        .args(["--", "/bin/true"])
        .status()
        .unwrap();
    assert!(setup.success());
    let out = as_nobody(&s, &bins)
        .args(["exec", "--job", "fragile", "--db"])
        .arg(&db)
        .arg("--")
        .arg(bins.join("fakejob"))
        .args(STEPS)
        .output()
        .unwrap();
    assert_job_unharmed(&out);
    assert_warning(&out, "fragile", "unable to open database file");
    assert_eq!(
        runs_in(s.path(), &db).len(),
        1,
        "root's database is untouched"
    );
}

#[test]
fn disk_full() {
    if !can_run_as_root("disk_full") {
        return;
    }
    let s = Scratch::new();
    let mnt = s.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let db = mnt.join("history.db");
    // A private mount namespace with a 512 KiB tmpfs (0700: root's shim
    // records only into a folder others cannot write): create the database,
    // fill the rest of the file system, then run a job with some output.
    let script = format!(
        "set -e; mount -t tmpfs -o size=512k,mode=0700 tmpfs '{mnt}'; \
         '{jobctl}' exec --job setup --db '{db}' -- /bin/true; \
         dd if=/dev/zero of='{mnt}/fill' bs=4096 2>/dev/null || true; \
         exec '{jobctl}' exec --job fragile --db '{db}' -- '{fakejob}' {steps}",
        mnt = mnt.display(),
        jobctl = JOBCTL,
        db = db.display(),
        fakejob = FAKEJOB,
        steps = "out 'to stdout' err 'to stderr' bytes 64K err exit 3"
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("JOBCTL_WARNINGS", "stderr")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to stdout\n");
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("was not recorded in the history"))
        .unwrap_or_else(|| panic!("no warning in: {stderr}"));
    assert!(line.contains("JOBCTL_JOB=fragile"), "{line}");
    assert!(line.contains("JOBCTL_EXIT_CODE=3"), "{line}");
    assert!(line.contains("full"), "{line}");
}

// --- helpers for running as another user -------------------------------

/// Copies the binaries into a folder every user can read.
pub fn user_visible_binaries(s: &Scratch) -> std::path::PathBuf {
    let bins = s.path().join("bin");
    std::fs::create_dir(&bins).unwrap();
    for (src, name) in [(JOBCTL, "jobctl"), (FAKEJOB, "fakejob")] {
        std::fs::copy(src, bins.join(name)).unwrap();
        chmod(&bins.join(name), 0o755);
    }
    chmod(&bins, 0o755);
    chmod(s.path(), 0o755);
    bins
}

pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The copied jobctl, run as `nobody` with a hermetic environment.
pub fn as_nobody(s: &Scratch, bins: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(bins.join("jobctl"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("TZ", "UTC")
        .env("JOBCTL_WARNINGS", "stderr")
        .env("JOBCTL_STATE_DIR", s.path().join("state"))
        .stdin(Stdio::null());
    cmd
}
