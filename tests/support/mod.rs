//! The one harness of the integration tests (jj's `TestEnvironment` is the
//! model): [`TestEnv`], a hermetic folder per test with its home, jobs
//! folder, configuration, history database and state folder, and the one
//! `jobctl` command builder; [`Run`], a command's output, which must be used;
//! the one skip rule and root check; expected files that can be re-blessed.

use std::ffi::OsStr;
use std::fmt::Display;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The jobctl binary cargo built for these tests.
pub const JOBCTL: &str = env!("CARGO_BIN_EXE_jobctl");
/// The test helper job (crates/fakejob): prints, sleeps, exits, forks.
pub const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");

/// The repository root (the workspace and root package).
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A hermetic environment for one test: a fresh folder (mode 0755, removed
/// when dropped) that is the home of every `jobctl` it runs, and holds its
/// jobs folder (`jobs.d`), configuration (`config.toml`), history database
/// (`history.db`) and state folder (`state`, `JOBCTL_STATE_DIR`). Nothing
/// is created in it until a test asks: no configuration unless it writes one.
pub struct TestEnv {
    dir: tempfile::TempDir,
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("jobctl-test-")
            .tempdir()
            .expect("create a temporary folder");
        // Readable by the other users some tests run jobctl as; writable by
        // its owner alone, as root's jobctl wants a jobs folder to be.
        chmod(dir.path(), 0o755);
        TestEnv { dir }
    }

    /// The folder itself, also `$HOME`.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The history database the test's runs are recorded in (`--db`).
    pub fn db(&self) -> PathBuf {
        self.path().join("history.db")
    }

    /// Where the shims of this test send their journal entries
    /// (`JOBCTL_JOURNAL_SOCKET`): nothing listens there unless the test
    /// binds it.
    pub fn journal_socket(&self) -> PathBuf {
        self.path().join("journal.socket")
    }

    /// The state folder (`JOBCTL_STATE_DIR`).
    pub fn state_dir(&self) -> PathBuf {
        self.path().join("state")
    }

    /// Writes the configuration file (`config.toml`, for `--config`);
    /// returns its path.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path().join("config.toml");
        std::fs::write(&path, text).expect("write the configuration");
        path
    }

    /// The jobs folder (`--jobs-dir`), created on first use.
    pub fn jobs_dir(&self) -> PathBuf {
        self.dir("jobs.d")
    }

    /// Writes `jobs.d/NAME.toml`; returns its path.
    pub fn write_job(&self, name: &str, text: &str) -> PathBuf {
        let path = self.jobs_dir().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write a job file");
        path
    }

    /// A folder of this environment (mode 0755), created if missing.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir).expect("create a folder");
            chmod(&dir, 0o755);
        }
        dir
    }

    /// `jobctl`, run from the repository root with a cleared environment: a
    /// fixed zone (UTC) and locale, no colour, this folder as `$HOME`, its
    /// `state` as the state folder, the shim's warnings on stderr, and no
    /// configuration unless the test passes one.
    pub fn jobctl(&self) -> Command {
        self.command(JOBCTL)
    }

    /// `jobctl` as another user (`setpriv`), with the same environment: the
    /// binaries are copied into `bin/` here, which every user can read.
    pub fn jobctl_as(&self, user: &str) -> Command {
        let account = nix::unistd::User::from_name(user)
            .expect("read the user database")
            .unwrap_or_else(|| panic!("no user {user}"));
        let group = nix::unistd::Group::from_gid(account.gid)
            .expect("read the group database")
            .unwrap_or_else(|| panic!("no group {} for {user}", account.gid));
        let mut cmd = self.command("setpriv");
        cmd.arg(format!("--reuid={user}"))
            .arg(format!("--regid={}", group.name))
            .args(["--clear-groups", "--"])
            .arg(self.user_visible_bin("jobctl"));
        cmd
    }

    /// A copy of one of the test binaries (`jobctl`, `fakejob`) in `bin/`,
    /// readable and runnable by every user.
    pub fn user_visible_bin(&self, name: &str) -> PathBuf {
        let copy = self.dir("bin").join(name);
        if !copy.exists() {
            let source = match name {
                "jobctl" => JOBCTL,
                "fakejob" => FAKEJOB,
                _ => panic!("no test binary {name}"),
            };
            // Copied by `cp`, not by this process: a file this process has
            // open for writing is inherited by whatever another test's
            // thread forks meanwhile, and the copy then fails to run ("Text
            // file busy") until that child has exec'd.
            let copied = Command::new("cp")
                .arg(source)
                .arg(&copy)
                .status()
                .expect("run cp");
            assert!(copied.success(), "cp {source} {}", copy.display());
            chmod(&copy, 0o755);
        }
        copy
    }

    /// Any program in the environment [`TestEnv::jobctl`] runs in: for
    /// wrappers (`prlimit`, `unshare`) and scripts that run jobctl.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(root())
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.path())
            .env("TZ", "UTC")
            .env("LC_ALL", "C.UTF-8")
            .env("NO_COLOR", "1")
            .env("JOBCTL_WARNINGS", "stderr")
            // Every run's journal entries go to a socket nobody listens on
            // (a test that reads them binds it: `journal_socket`), never to
            // the journal of the machine the tests run on.
            .env("JOBCTL_JOURNAL_SOCKET", self.journal_socket())
            .env("JOBCTL_STATE_DIR", self.state_dir())
            .stdin(Stdio::null());
        cmd
    }

    /// `jobctl ARGS`, run to completion.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.jobctl().args(args).run()
    }

    /// `jobctl SUBCOMMAND ARGS... --db <db>`: a reader of this history.
    pub fn read(&self, subcommand: &str, args: &[&str]) -> Run {
        self.jobctl()
            .arg(subcommand)
            .args(args)
            .arg("--db")
            .arg(self.db())
            .run()
    }

    /// `jobctl exec --db <db> --job JOB [extra] -- fakejob STEPS...`
    pub fn exec(&self, job: &str, extra: &[&str], steps: &[&str]) -> Run {
        self.exec_command(job, extra, steps).run()
    }

    /// The command [`TestEnv::exec`] runs, to start it some other way.
    pub fn exec_command(&self, job: &str, extra: &[&str], steps: &[&str]) -> Command {
        let mut cmd = self.jobctl();
        cmd.arg("exec")
            .arg("--db")
            .arg(self.db())
            .args(["--job", job])
            .args(extra)
            .arg("--")
            .arg(FAKEJOB)
            .args(steps);
        cmd
    }

    /// Every run in this history, newest first, as `history --json` gives them.
    pub fn runs(&self) -> Vec<serde_json::Value> {
        self.runs_in(&self.db())
    }

    /// Every run in the database at `db`, newest first.
    pub fn runs_in(&self, db: &Path) -> Vec<serde_json::Value> {
        let out = self
            .jobctl()
            .args(["history", "--json", "--limit", "0", "--db"])
            .arg(db)
            .run();
        assert!(out.status.success(), "history failed: {}", out.describe());
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        value["runs"].as_array().unwrap().clone()
    }
}

/// The job of each run, in order (runs as `history --json` lists them).
pub fn jobs_of(runs: &[serde_json::Value]) -> Vec<String> {
    runs.iter()
        .map(|r| r["job"].as_str().expect("a run's job").to_string())
        .collect()
}

/// What a command did: its exit status and what it printed. Reads as the
/// [`Output`] it wraps; must be used (a test that ignores what jobctl did
/// checks nothing).
#[derive(Debug)]
#[must_use = "a test must check what the command did"]
pub struct Run(pub Output);

impl std::ops::Deref for Run {
    type Target = Output;

    fn deref(&self) -> &Output {
        &self.0
    }
}

impl Run {
    pub fn stdout(&self) -> String {
        text(&self.0.stdout)
    }

    pub fn stderr(&self) -> String {
        text(&self.0.stderr)
    }

    /// What it printed, stderr first, then stdout: for commands such as
    /// `validate` that print diagnostics on stderr and a summary on stdout.
    pub fn stderr_then_stdout(&self) -> String {
        format!("{}{}", self.stderr(), self.stdout())
    }

    /// The exit status and both streams, for failure messages.
    pub fn describe(&self) -> String {
        describe(&self.0)
    }

    /// Checks that the command succeeded (for the runs a test only sets up).
    #[track_caller]
    pub fn success(self) {
        assert!(self.status.success(), "{}", self.describe());
    }
}

/// Running a [`Command`] to completion as a [`Run`].
pub trait RunExt {
    fn run(&mut self) -> Run;
    /// With `input` as its standard input.
    fn run_with_input(&mut self, input: &[u8]) -> Run;
}

impl RunExt for Command {
    #[track_caller]
    fn run(&mut self) -> Run {
        Run(self
            .output()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.get_program())))
    }

    #[track_caller]
    fn run_with_input(&mut self, input: &[u8]) -> Run {
        use std::io::Write as _;
        let mut child = self
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.get_program()));
        let mut stdin = child.stdin.take().expect("a piped stdin");
        // Written beside the reading of its output: a command that answers
        // before it has read everything cannot block on a full pipe.
        let output = std::thread::scope(|scope| {
            scope.spawn(move || {
                // A command that exits without reading it all closes the pipe.
                let _ = stdin.write_all(input);
            });
            child.wait_with_output()
        });
        Run(output.expect("wait for the command"))
    }
}

/// The exit status and both streams of a command, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "exit: {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr)
    )
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `text` contains `part`, showing all of `text` when not.
#[track_caller]
pub fn assert_contains(text: &str, part: impl AsRef<str>) {
    let part = part.as_ref();
    assert!(text.contains(part), "{part:?} not in:\n{text}");
}

/// Asserts that `text` ends with `end`, showing all of `text` when not.
#[track_caller]
pub fn assert_ends_with(text: &str, end: impl AsRef<str>) {
    let end = end.as_ref();
    assert!(text.ends_with(end), "does not end with {end:?}:\n{text}");
}

/// The exit status as a shell reports it: the code, or 128 + signal.
pub fn shell_status(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Writes an executable script (mode 0755) through a child process. Written
/// by this process, the file would be open for writing here while another
/// test's thread forks to run a command, and that child would hold the
/// descriptor until its exec: running the script then fails with ETXTBSY
/// ("Text file busy"), which CI hit once.
pub fn write_script(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut child = Command::new("/bin/sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "write_script"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "cannot write {path:?}");
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

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

/// Waits until `cond` holds, failing the test after `limit`.
#[track_caller]
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the file at `path` holds a process id (fakejob's `pidfile`,
/// `spawn-orphan`); returns it.
#[track_caller]
pub fn wait_for_pid_file(path: &Path) -> i32 {
    let mut pid = 0;
    wait_for(
        &format!("a process id in {}", path.display()),
        Duration::from_secs(20),
        || {
            pid = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            pid > 0
        },
    );
    pid
}

// ------------------------------------------------------------------ skips

/// Skips the calling test with a printed reason (the caller returns), or
/// fails it when skips are failures (`JOBCTL_REQUIRE_ALL_TESTS=1`, `CI=true`):
/// the suite's one rule, `jobctl_sandbox::skip`.
#[track_caller]
pub fn skip(reason: impl Display) {
    if let Err(failure) = jobctl_sandbox::skip(&reason.to_string()) {
        panic!("{failure}");
    }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether a test that needs root can run; when it cannot, it is skipped
/// ([`skip`]: "needs root WHY") and the caller returns.
#[must_use]
#[track_caller]
pub fn root_or_skip(why: &str) -> bool {
    is_root() || {
        skip(format!("needs root {why}"));
        false
    }
}

/// Whether the tool at `path` is installed; when it is not, the test is
/// skipped ([`skip`]) and the caller returns.
#[must_use]
#[track_caller]
pub fn tool_or_skip(path: &str, why: &str) -> bool {
    Path::new(path).exists() || {
        skip(format!(
            "{path} is not installed ({why}); scripts/setup installs it"
        ));
        false
    }
}

/// The major version of the installed systemd (`systemctl --version`:
/// "systemd 252 (…)"); when systemd is not installed, the test is skipped
/// ([`skip`]) and the caller returns.
#[must_use]
#[track_caller]
pub fn installed_systemd_or_skip() -> Option<u32> {
    let version = Command::new("systemctl")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| text(&out.stdout).split_whitespace().nth(1)?.parse().ok());
    if version.is_none() {
        skip("systemd is not installed (systemctl --version)");
    }
    version
}

// --------------------------------------------------------- expected files

/// Whether expected files should be rewritten from the actual output
/// (`JOBCTL_BLESS=1 cargo test`), after reviewing the change. Only the exact
/// value `1` blesses: `JOBCTL_BLESS=0` or an empty value must not rewrite
/// anything (.ci/run refuses to run with the variable set at all).
pub fn blessing() -> bool {
    bless_value_blesses(std::env::var_os("JOBCTL_BLESS").as_deref())
}

/// [`blessing`] for a given value of `JOBCTL_BLESS`.
pub fn bless_value_blesses(value: Option<&OsStr>) -> bool {
    value == Some(OsStr::new("1"))
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
