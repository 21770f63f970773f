//! Shared helpers for the integration tests: a hermetic `jobctl` command,
//! expected-output files that can be re-blessed, and skip rules.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (the workspace and root package).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The jobctl binary cargo built for these tests.
pub fn jobctl_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jobctl"))
}

/// `jobctl` run from the repository root with a cleared environment: fixed
/// time zone, no colour, a throwaway HOME, and no configuration unless the
/// test passes one.
pub fn jobctl(home: &Path) -> Command {
    let mut cmd = Command::new(jobctl_bin());
    cmd.current_dir(root())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("TZ", "UTC")
        .env("NO_COLOR", "1")
        .env("LC_ALL", "C.UTF-8");
    cmd
}

/// A fresh temporary folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let base = std::env::temp_dir().join(format!(
            "jobctl-test-{label}-{}-{}",
            std::process::id(),
            unique()
        ));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).expect("create temp dir");
        TempDir(base)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Whether expected files should be rewritten from the actual output
/// (`JOBCTL_BLESS=1 cargo test`), after reviewing the change. Only the exact
/// value `1` blesses: `JOBCTL_BLESS=0` or an empty value must not rewrite
/// anything (.ci/run refuses to run with the variable set at all).
pub fn blessing() -> bool {
    bless_value_blesses(std::env::var_os("JOBCTL_BLESS").as_deref())
}

/// [`blessing`] for a given value of `JOBCTL_BLESS`.
pub fn bless_value_blesses(value: Option<&std::ffi::OsStr>) -> bool {
    value == Some(std::ffi::OsStr::new("1"))
}

/// Compares `actual` with the contents of `expected_path`, or rewrites the
/// file when blessing. Returns a description of the mismatch.
pub fn check_expected(expected_path: &Path, actual: &str) -> Result<(), String> {
    if blessing() {
        std::fs::write(expected_path, actual).expect("write expected file");
        return Ok(());
    }
    let expected = std::fs::read_to_string(expected_path).unwrap_or_else(|_| {
        format!(
            "<missing: run JOBCTL_BLESS=1 cargo test to create {}>",
            expected_path.display()
        )
    });
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "{} differs from the actual output.\n--- expected\n{expected}\n--- actual\n{actual}\n(if the new output is right: JOBCTL_BLESS=1 cargo test)",
        expected_path.display()
    ))
}

/// What a command printed, stderr first, then stdout: for commands such as
/// `validate` that print diagnostics on stderr and a summary on stdout.
/// How many job files (`*.toml`) a folder holds.
pub fn count_job_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count()
}

pub fn stderr_then_stdout(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}

/// Output as text for messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Whether tests that need something missing here must fail instead of
/// skipping (`JOBCTL_REQUIRE_ALL_TESTS=1` or `CI=true`).
pub fn must_not_skip() -> bool {
    jobctl_sandbox::skips_are_failures()
}

/// Skips the calling test with a printed reason, or fails it in CI.
pub fn skip(reason: &str) {
    if must_not_skip() {
        panic!("cannot skip in CI (JOBCTL_REQUIRE_ALL_TESTS=1 or CI=true): {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}
