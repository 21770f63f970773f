//! Shared helpers for the run-shim, history and logs tests: a hermetic
//! `jobctl` command, the fakejob helper, a scratch folder with a database,
//! and reading runs back as JSON.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const JOBCTL: &str = env!("CARGO_BIN_EXE_jobctl");
pub const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");

/// `jobctl` with a hermetic environment: no systemd variables, warnings on
/// stderr, UTC, the state folder inside the scratch folder.
pub fn jobctl(scratch: &Path) -> Command {
    let mut cmd = Command::new(JOBCTL);
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env("JOBCTL_WARNINGS", "stderr")
        .env("JOBCTL_STATE_DIR", scratch.join("state"))
        .env("HOME", scratch);
    cmd
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("jobctl-test-")
            .tempdir()
            .unwrap();
        let db = dir.path().join("history.db");
        Scratch { dir, db }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        jobctl(self.dir.path())
    }

    /// `jobctl SUBCOMMAND ARGS... --db <db>`: a reader of this history.
    pub fn read(&self, subcommand: &str, args: &[&str]) -> Output {
        self.cmd()
            .arg(subcommand)
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .output()
            .unwrap()
    }

    /// `jobctl exec --db <db> --job JOB [extra] -- fakejob STEPS...`
    pub fn exec(&self, job: &str, extra: &[&str], steps: &[&str]) -> Output {
        let mut cmd = self.cmd();
        cmd.arg("exec")
            .arg("--db")
            .arg(&self.db)
            .args(["--job", job]);
        cmd.args(extra).arg("--").arg(FAKEJOB).args(steps);
        cmd.stdin(Stdio::null());
        cmd.output().unwrap()
    }

    /// All runs in the database (newest first), as `history --json` gives them.
    pub fn runs(&self) -> Vec<serde_json::Value> {
        runs_in(self.path(), &self.db)
    }
}

/// All runs in the database at `db`, newest first.
pub fn runs_in(scratch: &Path, db: &Path) -> Vec<serde_json::Value> {
    let out = jobctl(scratch)
        .args(["history", "--json", "--limit", "0", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "history failed: {}",
        text(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    value["runs"].as_array().unwrap().clone()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The exit status as a shell reports it: the code, or 128 + signal.
pub fn shell_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Waits until `cond` holds, failing the test after `limit`.
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a test that needs root can run; when it cannot, it prints why and
/// the caller returns — unless JOBCTL_REQUIRE_ALL_TESTS=1, where a skip fails.
pub fn can_run_as_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    let reason = format!("{test}: skipped, needs root");
    assert!(
        !jobctl_sandbox::skips_are_failures(),
        "{reason}, and JOBCTL_REQUIRE_ALL_TESTS=1 (or CI=true) forbids skipping"
    );
    eprintln!("{reason}");
    false
}
