//! Bookkeeping never breaks the job: with the history database missing,
//! unwritable, read-only, locked, full, damaged, truncated, too new, deleted
//! or replaced mid-run, or the shim killed inside its own transaction, the
//! command still runs, its output still flows, its exit status still
//! propagates, and each test states what the history then holds (the table
//! in docs/design.md, "Bookkeeping never breaks the job"). What cannot be
//! written goes to a structured warning carrying the run's record (here
//! through the stderr fallback; journald does not run on the test machine).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::support::*;

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

/// The job ran normally and its run was recorded: no warning.
fn assert_recorded(out: &Output) {
    assert_job_unharmed(out);
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
}

/// SQLite finds nothing wrong in the database.
fn assert_intact(db: &Path) {
    let check: String = rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// The shim's warning that a run was not recorded (one line on stderr).
fn warning(out: &Output) -> String {
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("was not recorded in the history"))
        .unwrap_or_else(|| panic!("no warning in: {stderr}"));
    line.to_string()
}

/// The job ran normally, and the warning that its run was not recorded
/// carries the run's record, in the structured fallback format.
fn assert_unrecorded(out: &Output, job: &str, cause: &str) {
    assert_job_unharmed(out);
    let line = warning(out);
    assert_contains(&line, format!("JOBCTL_JOB={job}"));
    let id = line
        .split(' ')
        .find_map(|w| w.strip_prefix("JOBCTL_RUN_ID="))
        .unwrap();
    assert_eq!(id.len(), 16, "{line}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_contains(&line, "JOBCTL_STATUS=failed");
    assert_contains(&line, "JOBCTL_EXIT_CODE=3");
    assert_contains(&line, "JOBCTL_STARTED=");
    assert_contains(&line, "JOBCTL_DURATION_US=");
    assert_contains(&line, "JOBCTL_OUTPUT_BYTES=20");
    assert!(
        line.to_lowercase().contains(&cause.to_lowercase()),
        "expected {cause:?} in {line}"
    );
}

const STEPS: [&str; 6] = ["out", "to stdout", "err", "to stderr", "exit", "3"];

/// `jobctl exec --job fragile` of [`STEPS`], recording into the environment's
/// database.
fn exec_fragile(s: &TestEnv) -> Run {
    exec_at(s, &s.db(), &[])
}

fn exec_at(s: &TestEnv, db: &Path, extra: &[&str]) -> Run {
    s.jobctl()
        .args(["exec", "--job", "fragile", "--db"])
        .arg(db)
        .args(extra)
        .arg("--")
        .arg(FAKEJOB)
        .args(STEPS)
        .stdin(Stdio::null())
        .run()
}

#[test]
fn missing_directory() {
    let s = TestEnv::new();
    let db = s.path().join("no/such/folder/history.db");
    let out = exec_at(&s, &db, &[]);
    assert_unrecorded(&out, "fragile", "No such file or directory");
    assert!(!db.exists());
}

#[test]
fn corrupt_file() {
    let s = TestEnv::new();
    let garbage: Vec<u8> = (0..16_384u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(s.db(), &garbage).unwrap();
    let out = exec_fragile(&s);
    assert_unrecorded(&out, "fragile", "not a database");
    // Left as it was, for the operator to inspect.
    assert_eq!(std::fs::read(s.db()).unwrap(), garbage);
}

#[test]
fn newer_schema_is_refused_and_left_alone() {
    let s = TestEnv::new();
    assert!(s.exec("setup", &[], &[]).status.success());
    rusqlite::Connection::open(s.db())
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let out = exec_fragile(&s);
    assert_unrecorded(&out, "fragile", "newer than this jobctl understands");
    let version: i64 = rusqlite::Connection::open(s.db())
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 99);
    // Readers refuse it too, with the same clear message.
    let out = s.read("history", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_contains(&text(&out.stderr), "upgrade jobctl");
}

/// A database with one run, which another connection (returned) holds
/// locked, for reading and writing.
fn locked_database(s: &TestEnv) -> rusqlite::Connection {
    assert!(s.exec("setup", &[], &[]).status.success());
    let holder = rusqlite::Connection::open(s.db()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    holder
}

#[test]
fn locked_by_another_writer() {
    let s = TestEnv::new();
    let holder = locked_database(&s);
    let out = exec_at(&s, &s.db(), &["--db-timeout", "200ms"]);
    assert_unrecorded(&out, "fragile", "locked");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    // Once the lock is gone, runs are recorded again.
    assert_eq!(exec_fragile(&s).status.code(), Some(3));
    assert_eq!(jobs_of(&s.runs()), ["fragile", "setup"]);
}

#[test]
fn lock_released_during_the_run_still_records_it() {
    // The start row cannot be written (locked), but the lock is gone when
    // the command ends: the completing write inserts the whole row.
    let s = TestEnv::new();
    let holder = locked_database(&s);
    // The command runs only after the shim gave up on the start row.
    let (child, release) = start_paused(
        &s,
        "late",
        &["--db-timeout", "100ms"],
        [&[], &["exit", "4"]],
        true,
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
    if !root_or_skip("to run the shim as another user") {
        return;
    }
    let s = TestEnv::new();
    let db = s.dir("shared").join("history.db");
    let setup = s
        .jobctl()
        .args(["exec", "--job", "setup", "--db"])
        .arg(&db)
        .args(["--", "/bin/true"])
        .status()
        .unwrap();
    assert!(setup.success());
    let out = exec_as_nobody(&s, &db, "fragile");
    assert_unrecorded(&out, "fragile", "unable to open database file");
    assert_eq!(s.runs_in(&db).len(), 1, "root's database is untouched");
}

#[test]
fn disk_full() {
    if !root_or_skip("to mount a small file system") {
        return;
    }
    let s = TestEnv::new();
    // A 512 KiB tmpfs: create the database, fill the rest of the file
    // system, then run a job with some output.
    let out = in_small_tmpfs(
        &s,
        "512k",
        "\"$J\" exec --job setup --db \"$DB\" -- /bin/true; \
         dd if=/dev/zero of=\"$MNT/fill\" bs=4096 2>/dev/null || true; \
         exec \"$J\" exec --job fragile --db \"$DB\" -- \"$F\" \
           out 'to stdout' err 'to stderr' bytes 64K err exit 3",
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to stdout\n");
    let line = warning(&out);
    assert_contains(&line, "JOBCTL_JOB=fragile");
    assert_contains(&line, "JOBCTL_EXIT_CODE=3");
    assert_contains(&line, "full");
}

/// `jobctl exec --db DB --job JOB -- fakejob STEPS` as `nobody`.
fn exec_as_nobody(s: &TestEnv, db: &Path, job: &str) -> Run {
    s.jobctl_as("nobody")
        .args(["exec", "--job", job, "--db"])
        .arg(db)
        .arg("--")
        .arg(s.user_visible_bin("fakejob"))
        .args(STEPS)
        .run()
}

/// Runs `script` (sh) as root in a private mount namespace, with `$MNT` a
/// tmpfs of `size` (mode 0700: root's shim records only into a folder others
/// cannot write; mounted there only, gone with the namespace), `$J` jobctl,
/// `$F` fakejob, `$DB` a database on the tmpfs and `$OUT` a folder outside
/// it for what the script wants to hand back (readers' output: the tmpfs
/// cannot be read after the namespace ends).
fn in_small_tmpfs(s: &TestEnv, size: &str, script: &str) -> Run {
    let mnt = s.dir("small");
    let script =
        format!("set -e; mount -t tmpfs -o size={size},mode=0700 tmpfs \"$MNT\"; {script}");
    s.command("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("MNT", &mnt)
        .env("DB", mnt.join("history.db"))
        .env("OUT", s.dir("out"))
        .env("J", JOBCTL)
        .env("F", FAKEJOB)
        .run()
}

/// Fills the tmpfs at `$MNT` until about `$1` KiB are left (shell function).
const FILL_TO: &str = "fill_to() { avail=$(df -k --output=avail \"$MNT\" | tail -n 1); \
    dd if=/dev/zero of=\"$MNT/fill\" bs=1024 count=$((avail - $1)) 2>/dev/null; }";

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn full_disk_at_completion_keeps_the_result_without_the_output() {
    // The start row fits; the completion with 800 KB of output does not
    // (200 KB left). The run's result is known: it is stored without the
    // output, with a marker saying why, instead of staying `running` (and
    // then `lost`).
    if !root_or_skip("to mount a small file system") {
        return;
    }
    let s = TestEnv::new();
    let script = format!(
        "{FILL_TO}; \"$J\" exec --job setup --db \"$DB\" -- /bin/true; fill_to 200; \
         code=0; \"$J\" exec --job fragile --output-limit 1M --db \"$DB\" -- \"$F\" \
           err 'to stderr' out 'to stdout' bytes 800K exit 3 >/dev/null || code=$?; \
         \"$J\" history --json --limit 0 --db \"$DB\" > \"$OUT/history.json\"; \
         \"$J\" logs fragile --json --db \"$DB\" > \"$OUT/logs.json\"; \
         \"$J\" logs fragile --db \"$DB\" > \"$OUT/logs.txt\"; \
         exit $code"
    );
    let out = in_small_tmpfs(&s, "1m", &script);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.starts_with("to stderr\n"), "{stderr}");
    assert!(!stderr.contains("was not recorded"), "{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("output") && l.contains("not stored"))
        .unwrap_or_else(|| panic!("no warning about the output in: {stderr}"));
    assert_contains(warning, "JOBCTL_JOB=fragile");
    assert_contains(warning, "full");

    // The history holds the result: status, exit code, times, byte count.
    let history = read_json(&s.path().join("out/history.json"));
    let runs = history["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let run = &runs[0];
    assert_eq!(run["job"], "fragile");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert!(run["ended_us"].as_i64().unwrap() >= run["started_us"].as_i64().unwrap());
    assert_eq!(run["output_bytes"], 10 + 800 * 1024 + 10);
    let marker = run["error"].as_str().unwrap();
    assert!(
        marker.starts_with("output not stored: ") && marker.contains("full"),
        "{marker}"
    );
    // `logs` says why there is no output (not "removed by retention").
    let logs = read_json(&s.path().join("out/logs.json"));
    assert_eq!(logs["output"].as_array().unwrap().len(), 0);
    let logs_text = std::fs::read_to_string(s.path().join("out/logs.txt")).unwrap();
    assert!(
        logs_text.contains("its output was not stored: ") && !logs_text.contains("retention"),
        "{logs_text}"
    );
}

// --- damaged files --------------------------------------------------------

/// A database with `runs` runs of job `setup`, each with output, whose log
/// has been copied into the file and emptied: everything is in the main
/// file, as after a quiet night.
fn settled_database(s: &TestEnv, runs: usize) {
    for _ in 0..runs {
        assert!(
            s.exec("setup", &[], &["out", "setting up"])
                .status
                .success()
        );
    }
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// The first page of table or index `name`.
fn root_page(s: &TestEnv, name: &str) -> u64 {
    let conn = rusqlite::Connection::open(s.db()).unwrap();
    conn.query_row(
        "SELECT rootpage FROM sqlite_master WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

/// Overwrites page `page` (1-based, 4 KiB pages) with a fixed garbage pattern.
fn damage_page(db: &Path, page: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    file.seek(SeekFrom::Start((page - 1) * 4096)).unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 7) as u8).collect();
    file.write_all(&garbage).unwrap();
}

/// `history --json` of `db`, which must fail: its exit status and stderr.
/// A malformed database: the run goes unrecorded, the file is left as it
/// was for the operator, and a reader fails, saying why.
fn assert_malformed_and_left_alone(s: &TestEnv) {
    let before = std::fs::read(s.db()).unwrap();
    assert_unrecorded(&exec_fragile(s), "fragile", "malformed");
    assert!(std::fs::read(s.db()).unwrap() == before, "left as it was");
    let out = s.read("history", &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert!(out.stderr().contains("malformed"), "{}", out.describe());
}

#[test]
fn damaged_page_of_the_runs_table() {
    // Nothing can be written to `runs`: the job is unharmed, its record goes
    // to the journal, and the file is left as it was for the operator.
    let s = TestEnv::new();
    settled_database(&s, 3);
    damage_page(&s.db(), root_page(&s, "runs"));
    // What the history then holds: nothing a reader can list; it says why.
    assert_malformed_and_left_alone(&s);
}

#[test]
fn damaged_page_of_the_outputs_table() {
    // The run's row can be written but its output cannot: the result is
    // stored without the output, marked with why, and every earlier run
    // stays listed.
    let s = TestEnv::new();
    settled_database(&s, 3);
    damage_page(&s.db(), root_page(&s, "outputs"));
    let out = exec_fragile(&s);
    assert_job_unharmed(&out);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("was not recorded"), "{stderr}");
    assert_contains(&stderr, "was not stored");
    let runs = s.runs();
    assert_eq!(runs.len(), 4, "{runs:#?}");
    let run = &runs[0];
    assert_eq!(
        (
            &run["job"],
            &run["status"],
            &run["exit_code"],
            &run["output_bytes"]
        ),
        (&"fragile".into(), &"failed".into(), &3.into(), &20.into())
    );
    let marker = run["error"].as_str().unwrap();
    assert!(marker.starts_with("output not stored: ") && marker.contains("malformed"));
    assert!(
        runs[1..]
            .iter()
            .all(|r| r["job"] == "setup" && r["status"] == "success")
    );
}

#[test]
fn truncated_file() {
    // The file ends after its second page; the header says eight.
    let s = TestEnv::new();
    settled_database(&s, 3);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(s.db())
        .unwrap();
    file.set_len(2 * 4096).unwrap();
    drop(file);
    assert_malformed_and_left_alone(&s);
}

#[test]
fn garbage_in_the_log() {
    let s = TestEnv::new();
    settled_database(&s, 2);
    // One more run, only in the log (the shim never checkpoints on exit).
    assert!(s.exec("in-log", &[], &["out", "logged"]).status.success());
    let log = s.path().join("history.db-wal");
    let valid = std::fs::read(&log).unwrap();
    assert!(valid.len() > 32, "the run is in the log");
    // Garbage after the last valid frame (a torn write, a stray writer) is
    // not a frame: every run stays, and the next run is recorded.
    let mut torn = valid.clone();
    torn.extend((0..10_000u32).map(|i| (i * 31 + 5) as u8));
    std::fs::write(&log, &torn).unwrap();
    assert_recorded(&exec_fragile(&s));
    assert_eq!(jobs_of(&s.runs()), ["fragile", "in-log", "setup", "setup"]);
    // A log that is garbage from its first byte has no frames: the runs
    // that were only in it are gone, the file's stay, and the next run is
    // recorded (the log starts over).
    let garbage: Vec<u8> = (0..std::fs::metadata(&log).unwrap().len() as u32)
        .map(|i| (i * 17 + 3) as u8)
        .collect();
    std::fs::write(&log, &garbage).unwrap();
    assert_recorded(&exec_fragile(&s));
    assert_eq!(jobs_of(&s.runs()), ["fragile", "setup", "setup"]);
    assert_intact(&s.db());
}

// --- files that cannot be written -----------------------------------------

#[test]
fn read_only_file_system() {
    if !root_or_skip("to mount a read-only file system") {
        return;
    }
    let s = TestEnv::new();
    let script = "\"$J\" exec --job setup --db \"$DB\" -- /bin/true; \
         mount -o remount,ro \"$MNT\"; \
         code=0; \"$J\" exec --job fragile --db \"$DB\" -- \"$F\" \
           out 'to stdout' err 'to stderr' exit 3 || code=$?; \
         \"$J\" history --json --limit 0 --db \"$DB\" > \"$OUT/history.json\" \
           2> \"$OUT/history.err\" || true; \
         exit $code";
    let out = in_small_tmpfs(&s, "1m", script);
    assert_unrecorded(&out, "fragile", "readonly");
    // What the history then holds: the run before, readable as usual.
    let history = std::fs::read(s.path().join("out/history.json")).unwrap();
    let err = std::fs::read_to_string(s.path().join("out/history.err")).unwrap();
    let history: serde_json::Value =
        serde_json::from_slice(&history).unwrap_or_else(|e| panic!("{e}: {err}"));
    let jobs = jobs_of(history["runs"].as_array().unwrap());
    assert_eq!(jobs, ["setup"]);
}

#[test]
fn database_without_write_permission() {
    // A 0444 database its user cannot write (root could: the test runs the
    // shim as `nobody`, the file's owner).
    if !root_or_skip("to run the shim as another user") {
        return;
    }
    let s = TestEnv::new();
    let own = s.path().join("nobody");
    std::fs::create_dir(&own).unwrap();
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    nix::unistd::chown(&own, Some(nobody.uid), None).unwrap();
    // The folder as systemd's StateDirectory= makes it: root reads a user's
    // database only from a folder only that user can write.
    chmod(&own, 0o700);
    let db = own.join("history.db");
    let run_as_nobody = |job: &str| exec_as_nobody(&s, &db, job);
    assert_eq!(run_as_nobody("setup").status.code(), Some(3));
    chmod(&db, 0o444);
    let out = run_as_nobody("fragile");
    assert_unrecorded(&out, "fragile", "readonly database");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&db).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o444, "left as it was");
    assert_eq!(jobs_of(&s.runs_in(&db)), ["setup"]);
}

// --- faults that hit only the completion ----------------------------------

/// Starts `jobctl exec --job JOB FLAGS --db <db>` of a command that writes a
/// pid file (`started`), runs the fakejob steps `before`, waits for the file
/// `release`, then runs `after`; returns once the command runs, with the
/// path of `release`. `capture`: pipe the shim's output (else discard it).
fn start_paused(
    s: &TestEnv,
    job: &str,
    flags: &[&str],
    [before, after]: [&[&str]; 2],
    capture: bool,
) -> (std::process::Child, PathBuf) {
    let started = s.path().join("started");
    let release = s.path().join("release");
    let output = || {
        if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    let child = s
        .jobctl()
        .args(["exec", "--job", job])
        .args(flags)
        .arg("--db")
        .arg(s.db())
        .arg("--")
        .arg(FAKEJOB)
        .arg("pidfile")
        .arg(&started)
        .args(before)
        .arg("await-file")
        .arg(&release)
        .arg("go")
        .args(after)
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap();
    wait_for(
        "the command to start",
        std::time::Duration::from_secs(20),
        || started.exists(),
    );
    (child, release)
}

/// [`start_paused`] of job `held`: a line on each stream, then exit 3.
fn start_held(s: &TestEnv, flags: &[&str]) -> (std::process::Child, PathBuf) {
    start_paused(
        s,
        "held",
        flags,
        [&["out", "to stdout", "err", "to stderr"], &["exit", "3"]],
        true,
    )
}

#[test]
fn lock_held_through_the_completion() {
    // The start row is written; then another writer holds the lock past
    // --db-timeout. The completion gives up; the run goes to the journal,
    // and the history holds its start row, shown `lost` once the shim is
    // gone (not a result: the shim could write nothing).
    let s = TestEnv::new();
    assert!(s.exec("setup", &[], &[]).status.success());
    let (child, release) = start_held(&s, &["--db-timeout", "300ms"]);
    assert_eq!(s.runs()[0]["status"], "running");
    let holder = rusqlite::Connection::open(s.db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::fs::write(&release, "go").unwrap();
    let out = child.wait_with_output().unwrap();
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stdout), "to stdout\n");
    let line = warning(&out);
    assert!(
        line.contains("JOBCTL_JOB=held") && line.contains("JOBCTL_EXIT_CODE=3"),
        "{line}"
    );
    assert_contains(&line, "locked");
    let runs = s.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (&runs[0]["job"], &runs[0]["status"]),
        (&"held".into(), &"lost".into())
    );
    assert!(runs[0]["exit_code"].is_null());
}

#[test]
fn lock_released_within_the_completion_timeout() {
    // The same lock, released before --db-timeout runs out: the completion
    // waits for it and records the run whole.
    let s = TestEnv::new();
    assert!(s.exec("setup", &[], &[]).status.success());
    let (child, release) = start_held(&s, &["--db-timeout", "60s"]);
    let holder = rusqlite::Connection::open(s.db()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    std::fs::write(&release, "go").unwrap();
    // The command has ended once its pid is gone; the shim then waits.
    let pid: i32 = std::fs::read_to_string(s.path().join("started"))
        .unwrap()
        .parse()
        .unwrap();
    wait_for(
        "the command to end",
        std::time::Duration::from_secs(20),
        || {
            !std::path::Path::new(&format!("/proc/{pid}/status")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/status"))
                    .is_ok_and(|st| st.contains("State:\tZ"))
        },
    );
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_recorded(&child.wait_with_output().unwrap());
    let run = &s.runs()[0];
    assert_eq!(
        (
            &run["job"],
            &run["status"],
            &run["exit_code"],
            &run["output_bytes"]
        ),
        (&"held".into(), &"failed".into(), &3.into(), &20.into())
    );
}

#[test]
fn shim_killed_inside_its_completing_transaction() {
    // The completion of a run with 48 MB of output is one long transaction.
    // SIGKILL the shim while it holds the write lock: what it had not
    // committed is not there, nothing is half written, earlier runs stay,
    // and the next run is recorded.
    let s = TestEnv::new();
    settled_database(&s, 1);
    let (mut child, release) = start_paused(
        &s,
        "big",
        &["--output-limit", "64M"],
        [&[], &["bytes", "48M", "exit", "3"]],
        false,
    );
    // From here on, only the completion takes the write lock.
    let probe = rusqlite::Connection::open(s.db()).unwrap();
    probe.busy_timeout(std::time::Duration::ZERO).unwrap();
    std::fs::write(&release, "go").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match probe.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => probe.execute_batch("ROLLBACK").unwrap(),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(
            std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "never saw the shim's transaction"
        );
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    drop(probe);
    assert_intact(&s.db());
    let runs = s.runs();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert_eq!(
        (&runs[1]["job"], &runs[1]["status"]),
        (&"setup".into(), &"success".into())
    );
    // The history holds the start row, shown `lost` (the kill came before
    // the commit record reached the log, as it all but always does with a
    // transaction this long), or, if the commit record was already written,
    // the whole run: never anything in between.
    let run = &runs[0];
    let logs = s.read("logs", &["big", "--json"]);
    let logs: serde_json::Value = serde_json::from_slice(&logs.stdout).unwrap();
    let kept: usize = logs["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|seg| seg["text"].as_str())
        .map(str::len)
        .sum();
    match run["status"].as_str().unwrap() {
        "lost" => {
            assert!(
                run["exit_code"].is_null() && run["ended_us"].is_null(),
                "{run:#}"
            );
            assert_eq!((run["output_bytes"].as_u64(), kept), (Some(0), 0));
        }
        "failed" => {
            assert_eq!(run["exit_code"], 3, "{run:#}");
            assert_eq!(run["output_bytes"], 48 << 20);
            assert_eq!(kept, 48 << 20);
        }
        other => panic!("{other}: {run:#}"),
    }
    assert_recorded(&exec_fragile(&s));
    assert_eq!(s.runs()[0]["job"], "fragile");
}

// --- the database file deleted or replaced during a run --------------------

#[test]
fn database_deleted_during_a_run() {
    // An operator removes the history while a run is under way: the main
    // file alone (its log and index left behind), or all three. The run
    // must not vanish into the deleted file: the completion finds another
    // file (or none) at the path and records the whole run there.
    for remove in [
        &["history.db"][..],
        &["history.db", "history.db-wal", "history.db-shm"],
    ] {
        let s = TestEnv::new();
        assert!(s.exec("setup", &[], &[]).status.success());
        let (child, release) = start_held(&s, &[]);
        for name in remove {
            std::fs::remove_file(s.path().join(name)).unwrap();
        }
        std::fs::write(&release, "go").unwrap();
        assert_recorded(&child.wait_with_output().unwrap());
        // What the history then holds: a new database with this run only.
        let runs = s.runs();
        assert_eq!(runs.len(), 1, "{remove:?}: {runs:#?}");
        assert_eq!(
            (
                &runs[0]["job"],
                &runs[0]["status"],
                &runs[0]["exit_code"],
                &runs[0]["output_bytes"]
            ),
            (&"held".into(), &"failed".into(), &3.into(), &20.into()),
            "{remove:?}"
        );
        assert_intact(&s.db());
    }
}

#[test]
fn database_replaced_during_a_run() {
    // An operator puts another history in place (a restored copy) while a
    // run is under way: the run is recorded in the file now at the path,
    // next to that file's runs; the replaced file's runs went with it.
    let s = TestEnv::new();
    assert!(s.exec("setup", &[], &[]).status.success());
    let other = s.path().join("other.db");
    let out = s
        .jobctl()
        .args(["exec", "--job", "restored", "--db"])
        .arg(&other)
        .args(["--", "/bin/true"])
        .run();
    assert!(out.status.success());
    // A self-contained copy: its log folded in and removed.
    rusqlite::Connection::open(&other)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let (child, release) = start_held(&s, &[]);
    std::fs::rename(&other, s.db()).unwrap();
    std::fs::write(&release, "go").unwrap();
    assert_recorded(&child.wait_with_output().unwrap());
    let jobs: Vec<(String, String)> = s
        .runs()
        .iter()
        .map(|r| {
            (
                r["job"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("held".to_string(), "failed".to_string()),
            ("restored".to_string(), "success".to_string())
        ]
    );
    assert_intact(&s.db());
}
