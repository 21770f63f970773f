//! A throwaway systemd for tests: systemd 252 booted as PID 1 of private PID,
//! mount, UTS, IPC, network and cgroup namespaces, on an overlay whose lower
//! layer is the host's `/` and whose upper layer lives in a tmpfs that only the
//! sandbox's mount namespace can see.
//!
//! **Danger.** systemd booted on the host's real root empties the host's
//! `/tmp` and writes its `/etc` and `/var`. This crate is the only code in the
//! project allowed to boot systemd, and it only ever does so through
//! `boot.sh`, which refuses to exec systemd unless it is PID 1 of a new PID
//! namespace whose `/` is the private overlay (checked after `pivot_root`,
//! with a per-boot token). See docs/testing.md for the recipe and the reasons
//! behind each step.
//!
//! Typical use (one sandbox shared by a whole test binary):
//!
//! ```no_run
//! let Some(sandbox) = jobctl_sandbox::boot_for_tests(jobctl_sandbox::Options::default()) else {
//!     return; // printed why; a failure instead when JOBCTL_REQUIRE_ALL_TESTS=1 or CI=true
//! };
//! let out = sandbox.run(&["systemctl", "--version"]).unwrap();
//! assert!(out.status.success());
//! sandbox.shutdown().unwrap();
//! ```

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The init-side script, run as PID 1 of the new namespaces.
const BOOT_SCRIPT: &str = include_str!("boot.sh");

/// Where sandboxes keep their state on the host: a mount point for their
/// private tmpfs (empty from the host's side), the console log, pid files.
pub const STATE_ROOT: &str = "/run/jobctl-sandbox";

/// The environment variable that turns a skip into a failure (set in CI).
pub const REQUIRE_ALL_TESTS: &str = "JOBCTL_REQUIRE_ALL_TESTS";

/// systemd's binary. Booted only by boot.sh.
const SYSTEMD: &str = "/lib/systemd/systemd";

/// The `PATH` given to commands run inside the sandbox.
const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Units that only slow a test boot down or reach outside it; masked inside the
/// sandbox only (the mask lives in the overlay's upper layer).
pub const DEFAULT_MASK: &[&str] = &[
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
    "postgresql.service",
    // exim4-daemon-light (the mail channel's test) is a SysV service enabled
    // at install; its test delivers through sendmail(8) without the daemon.
    "exim4.service",
    "exim4-base.timer",
    "systemd-timesyncd.service",
    "getty@tty1.service",
    // prometheus and prometheus-node-exporter (the metrics tests) enable
    // their services at install; the real-Prometheus test starts its own.
    "prometheus.service",
    "prometheus-node-exporter.service",
];

/// What went wrong with a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This host cannot run a sandbox at all (not root, a tool missing): tests
    /// skip on this, or fail when [`REQUIRE_ALL_TESTS`] is set.
    #[error("cannot run a systemd sandbox here: {0}")]
    Unsupported(String),
    /// An option is unsafe or malformed.
    #[error("invalid sandbox option: {0}")]
    InvalidOption(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// systemd did not come up; `log` is the tail of its console output.
    #[error("the sandbox did not boot: {message}\n--- console ({path}) ---\n{log}")]
    Boot {
        message: String,
        path: String,
        log: String,
    },
    /// No sandbox of that name is running (for `attach`).
    #[error("no running sandbox named {0:?} (see {STATE_ROOT})")]
    NotFound(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// How to boot a sandbox.
#[derive(Debug, Clone)]
pub struct Options {
    /// A name (hostname inside, state folder outside); unique per boot.
    pub name: Option<String>,
    /// Host folders visible inside at the same path, read-write (the build
    /// output, scratch folders). Must be absolute and outside `/tmp`, `/var/tmp`,
    /// `/run`, `/dev`, `/proc`, `/sys` (boot services clean or replace those).
    pub share: Vec<PathBuf>,
    /// How long systemd may take to reach `running` or `degraded`.
    pub boot_timeout: Duration,
    /// Kill the sandbox if the thread that booted it dies (tests). Off for a
    /// detached sandbox that outlives the `jobctl-sandbox boot` command.
    pub die_with_parent: bool,
    /// Units masked inside the sandbox only.
    pub mask: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            name: None,
            share: Vec::new(),
            boot_timeout: Duration::from_secs(90),
            die_with_parent: true,
            mask: DEFAULT_MASK.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Options {
    /// Adds a shared folder.
    pub fn share(mut self, dir: impl Into<PathBuf>) -> Self {
        self.share.push(dir.into());
        self
    }
}

/// Why this host cannot run a sandbox, or `None` when it can.
pub fn unsupported_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("needs root (unshare, mount, pivot_root)".into());
    }
    for tool in [
        "/usr/bin/unshare",
        "/usr/bin/nsenter",
        "/usr/bin/setpriv",
        SYSTEMD,
    ] {
        if !Path::new(tool).exists() {
            return Some(format!(
                "{tool} is not installed (scripts/setup installs it)"
            ));
        }
    }
    if which("pivot_root").is_none() {
        return Some("pivot_root(8) is not installed (util-linux)".into());
    }
    match fs::read_to_string("/proc/filesystems") {
        Ok(fs) if fs.lines().any(|l| l.trim_end().ends_with("\toverlay")) => {}
        Ok(_) => return Some("the kernel has no overlay filesystem".into()),
        Err(e) => return Some(format!("cannot read /proc/filesystems: {e}")),
    }
    if cgroup2_mount().is_none() {
        return Some("no cgroup2 hierarchy is mounted on the host".into());
    }
    // Probe the namespaces themselves: containers often forbid them.
    let probe = Command::new("/usr/bin/unshare")
        .args([
            "--pid", "--fork", "--mount", "--cgroup", "--net", "--", "true",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("unshare cannot create namespaces here ({s})")),
        Err(e) => Some(format!("cannot run unshare: {e}")),
    }
}

/// Whether skips must be failures: [`REQUIRE_ALL_TESTS`]`=1`, or `CI=true`
/// (which scripts/test also turns into the former), so that a CI running
/// `cargo test` itself cannot go green by skipping either. Every skip of the
/// test suite asks this.
pub fn skips_are_failures() -> bool {
    skips_are_failures_with(
        std::env::var(REQUIRE_ALL_TESTS).ok().as_deref(),
        std::env::var("CI").ok().as_deref(),
    )
}

/// [`skips_are_failures`] for given values of the two variables.
pub fn skips_are_failures_with(require_all: Option<&str>, ci: Option<&str>) -> bool {
    require_all == Some("1") || ci.is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The one skip rule of the test suite, for a test that cannot run on this
/// host (not root, a tool missing, no sandbox): prints `SKIPPED: <reason>` and
/// returns `Ok` (the caller returns, and the test passes), or, when
/// [`skips_are_failures`], returns the reason as the test's failure.
pub fn skip(reason: &str) -> std::result::Result<(), String> {
    skip_with(skips_are_failures(), reason)
}

/// [`skip`] with the answer of [`skips_are_failures`] given.
fn skip_with(failures: bool, reason: &str) -> std::result::Result<(), String> {
    if failures {
        return Err(format!(
            "cannot skip ({REQUIRE_ALL_TESTS}=1 or CI=true): {reason}"
        ));
    }
    eprintln!("SKIPPED: {reason}");
    Ok(())
}

/// Boots a sandbox for a test binary, or explains why not.
///
/// Returns `None` after printing the reason when this host cannot run a
/// sandbox; panics instead when skips are failures ([`skip`]). A host that
/// can run one but fails to boot it always panics: that is a real failure.
pub fn boot_for_tests(options: Options) -> Option<Sandbox> {
    if let Some(reason) = unsupported_reason() {
        if let Err(failure) = skip(&format!("the systemd sandbox cannot run: {reason}")) {
            panic!("{failure}");
        }
        return None;
    }
    match Sandbox::boot(options) {
        Ok(sandbox) => Some(sandbox),
        Err(e) => panic!("{e}"),
    }
}

/// A running throwaway systemd. Shut down on drop (also while unwinding from a
/// panic), by `systemctl poweroff` and, failing that, SIGKILL to its init.
#[derive(Debug)]
pub struct Sandbox {
    name: String,
    state_dir: PathBuf,
    init_pid: i32,
    /// The `unshare` process when this handle booted the sandbox.
    unshare: Option<Child>,
    cgroup: Option<PathBuf>,
    /// Shut down on drop (false for attached and detached handles).
    owned: bool,
    down: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Sandbox {
    /// Boots a sandbox and waits until systemd reports `running` or `degraded`.
    pub fn boot(options: Options) -> Result<Sandbox> {
        if let Some(reason) = unsupported_reason() {
            return Err(Error::Unsupported(reason));
        }
        let name = match &options.name {
            Some(n) => n.clone(),
            None => format!(
                "jobctl-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        };
        validate_name(&name)?;
        let share = validate_shares(&options.share)?;
        for unit in &options.mask {
            validate_unit_name(unit)?;
        }

        let state_dir = Path::new(STATE_ROOT).join(&name);
        if state_dir.exists() {
            return Err(Error::InvalidOption(format!(
                "{} exists: a sandbox named {name:?} is running or was not cleaned up \
                 (`jobctl-sandbox shutdown --name {name}`)",
                state_dir.display()
            )));
        }
        fs::create_dir_all(state_dir.join("mnt"))
            .map_err(io_err(format!("creating {}", state_dir.display())))?;

        let mut sandbox = Sandbox {
            name: name.clone(),
            state_dir: state_dir.clone(),
            init_pid: 0,
            unshare: None,
            cgroup: None,
            owned: true,
            down: false,
        };
        // From here on, Drop cleans up whatever exists.
        sandbox.start(&options, &share)?;
        sandbox.wait_until_running(options.boot_timeout)?;
        sandbox.verify_isolated()?;
        Ok(sandbox)
    }

    fn start(&mut self, options: &Options, share: &[PathBuf]) -> Result<()> {
        let cgroup_root = cgroup2_mount().ok_or_else(|| Error::Unsupported("no cgroup2".into()))?;
        let cgroup = cgroup_root.join(format!("jobctl-sandbox.{}", self.name));
        fs::create_dir(&cgroup).map_err(io_err(format!("creating cgroup {}", cgroup.display())))?;
        self.cgroup = Some(cgroup.clone());
        fs::write(
            self.state_dir.join("cgroup"),
            cgroup.as_os_str().as_encoded_bytes(),
        )
        .map_err(io_err("writing the cgroup path"))?;

        let token = format!(
            "{:x}-{:x}-{}",
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
            std::process::id(),
            self.name
        );
        let host_mnt_ns = fs::read_link("/proc/self/ns/mnt")
            .map_err(io_err("reading this process's mount namespace"))?;
        let console =
            fs::File::create(self.console_log()).map_err(io_err("creating the console log"))?;
        let console2 = console.try_clone().map_err(io_err("cloning a file"))?;

        // sh moves itself into the sandbox's cgroup (so the cgroup namespace
        // is rooted there), then becomes `setpriv` (parent-death signal), then
        // `unshare`, whose forked child runs boot.sh as PID 1.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#"echo $$ >"$1/cgroup.procs" && shift && exec "$@""#)
            .arg("jobctl-sandbox-enter")
            .arg(&cgroup);
        if options.die_with_parent {
            cmd.args(["/usr/bin/setpriv", "--pdeathsig", "KILL"]);
        }
        cmd.args([
            "/usr/bin/unshare",
            "--pid",
            "--fork",
            "--kill-child=SIGKILL",
            "--mount",
            "--propagation",
            "private",
            "--uts",
            "--ipc",
            "--net",
            "--cgroup",
            "--",
            "/bin/sh",
            "-c",
            BOOT_SCRIPT,
            "jobctl-sandbox-boot",
        ])
        .arg(&self.state_dir)
        .arg(&token)
        .arg(&host_mnt_ns)
        .arg(&self.name)
        .args(share)
        .env_clear()
        .env("PATH", SANDBOX_PATH)
        .env("JOBCTL_SANDBOX_MASK", options.mask.join(" "))
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(console2);
        if !options.die_with_parent {
            // A detached sandbox must not get the terminal's SIGINT/SIGHUP.
            cmd.process_group(0);
        }
        let child = cmd.spawn().map_err(io_err("starting unshare"))?;
        let unshare_pid = child.id() as i32;
        self.unshare = Some(child);
        fs::write(self.state_dir.join("unshare.pid"), unshare_pid.to_string())
            .map_err(io_err("writing unshare.pid"))?;
        fs::write(self.state_dir.join("token"), &token).map_err(io_err("writing token"))?;

        // The namespace's init is unshare's only child.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(pid) = only_child(unshare_pid) {
                self.init_pid = pid;
                break;
            }
            if self.exited()? || Instant::now() > deadline {
                return Err(self.boot_error("unshare did not fork the namespace's init"));
            }
            thread::sleep(Duration::from_millis(5));
        }
        fs::write(self.state_dir.join("init.pid"), self.init_pid.to_string())
            .map_err(io_err("writing init.pid"))?;
        Ok(())
    }

    /// Finds a sandbox booted by another process (`jobctl-sandbox boot`).
    pub fn attach(name: &str) -> Result<Sandbox> {
        validate_name(name)?;
        let state_dir = Path::new(STATE_ROOT).join(name);
        let pid = fs::read_to_string(state_dir.join("init.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let cgroup = fs::read(state_dir.join("cgroup"))
            .ok()
            .map(|b| PathBuf::from(String::from_utf8_lossy(&b).into_owned()));
        let sandbox = Sandbox {
            name: name.to_string(),
            state_dir,
            init_pid: pid,
            unshare: None,
            cgroup,
            owned: false,
            down: false,
        };
        if sandbox.alive() {
            sandbox.verify_isolated()?;
        }
        // A dead one is still returned: `shutdown` cleans its leftovers.
        Ok(sandbox)
    }

    /// Names of the sandboxes that have state on this host.
    pub fn list() -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(STATE_ROOT)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Lets the sandbox outlive this handle (and this process): for
    /// `jobctl-sandbox boot`. Stop it later with `attach` + `shutdown`.
    pub fn detach(mut self) {
        self.owned = false;
        // Dropping a Child neither kills nor waits for it.
        self.unshare = None;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host PID of the sandbox's systemd (PID 1 inside).
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// The host folder with the console log and pid files.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// systemd's console output (boot messages), on the host.
    pub fn console_log(&self) -> PathBuf {
        self.state_dir.join("console.log")
    }

    /// A command that runs `program` inside the sandbox (`nsenter -t PID -m -p`),
    /// as root, in `/`, with a clean environment (`PATH`, `HOME=/root`,
    /// `LANG=C.UTF-8`); add arguments and `env`s to it as usual.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("/usr/bin/nsenter");
        cmd.arg("-t")
            .arg(self.init_pid.to_string())
            .args(["-m", "-p", "-r", "-w", "--"])
            .arg(program)
            .env_clear()
            .env("PATH", SANDBOX_PATH)
            .env("HOME", "/root")
            .env("USER", "root")
            .env("LOGNAME", "root")
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null());
        cmd
    }

    /// Like [`Sandbox::command`], for root's per-user manager (`user@0.service`,
    /// started by [`Sandbox::start_user_manager`]).
    pub fn user_command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = self.command(program);
        cmd.env("XDG_RUNTIME_DIR", "/run/user/0")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/0/bus");
        cmd
    }

    /// Runs `argv` inside and collects its output.
    pub fn run(&self, argv: &[&str]) -> Result<Output> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::InvalidOption("empty command".into()))?;
        self.command(program)
            .args(args)
            .output()
            .map_err(io_err(format!("running {argv:?} in the sandbox")))
    }

    /// Runs a shell script inside (`/bin/sh -c`); fails unless it exits 0.
    pub fn sh(&self, script: &str) -> Result<String> {
        let out = self
            .command("/bin/sh")
            .args(["-c", script])
            .output()
            .map_err(io_err("running sh in the sandbox"))?;
        if !out.status.success() {
            return Err(Error::Io {
                context: format!(
                    "sandbox: `{script}` failed ({}): {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
                source: io::Error::other("command failed"),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts root's per-user manager and waits until its bus is there.
    pub fn start_user_manager(&self) -> Result<()> {
        self.sh("systemctl start user@0.service")?;
        self.wait_for(Duration::from_secs(30), "user@0's bus", || {
            Ok(self.sh("test -S /run/user/0/bus").is_ok())
        })
    }

    /// Polls `ready` every 20 ms until it returns true or `timeout` passes.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready()? {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Io {
                    context: format!("sandbox: timed out after {timeout:?} waiting for {what}"),
                    source: io::ErrorKind::TimedOut.into(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `systemctl is-system-running` says running or degraded.
    fn wait_until_running(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            if self.exited()? {
                return Err(self.boot_error("systemd exited during boot"));
            }
            let out = self.run(&["systemctl", "is-system-running"])?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            match state.as_str() {
                "running" | "degraded" => return Ok(()),
                // "offline" only means systemctl cannot reach systemd yet.
                "stopping" => {
                    return Err(self.boot_error(&format!("systemd is {state}")));
                }
                _ => last = state,
            }
            if Instant::now() > deadline {
                return Err(self.boot_error(&format!(
                    "not running after {timeout:?} (last state: {last:?})"
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Checks from the outside that the sandbox's init has its own PID and
    /// mount namespaces and that its `/` is the overlay carrying this boot's token.
    fn verify_isolated(&self) -> Result<()> {
        let pid = self.init_pid;
        for ns in ["pid", "mnt"] {
            let ours = fs::read_link(format!("/proc/self/ns/{ns}")).ok();
            let theirs = fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok();
            if theirs.is_none() || ours == theirs {
                return Err(
                    self.boot_error(&format!("init {pid} is not in a private {ns} namespace"))
                );
            }
        }
        let token = fs::read_to_string(self.state_dir.join("token")).unwrap_or_default();
        let marker =
            fs::read_to_string(format!("/proc/{pid}/root/.jobctl-sandbox")).unwrap_or_default();
        if token.is_empty() || marker.trim() != token.trim() {
            return Err(self.boot_error("the sandbox's root does not carry this boot's token"));
        }
        if Path::new("/.jobctl-sandbox").exists() {
            return Err(self.boot_error("the host's / has a sandbox marker: something leaked"));
        }
        Ok(())
    }

    /// Whether the sandbox's init still runs.
    pub fn alive(&self) -> bool {
        if self.init_pid <= 0 {
            return false;
        }
        // A zombie still has a /proc entry: check its state.
        match fs::read_to_string(format!("/proc/{}/stat", self.init_pid)) {
            Ok(stat) => !stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => false,
        }
    }

    /// Whether the unshare process (our child) has exited.
    fn exited(&mut self) -> Result<bool> {
        match &mut self.unshare {
            Some(child) => Ok(child
                .try_wait()
                .map_err(io_err("waiting for unshare"))?
                .is_some()),
            None => Ok(!self.alive()),
        }
    }

    fn boot_error(&self, message: &str) -> Error {
        let log = fs::read_to_string(self.console_log()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let mut text = String::new();
        for line in tail.iter().rev() {
            let _ = writeln!(text, "{line}");
        }
        Error::Boot {
            message: message.to_string(),
            path: self.console_log().display().to_string(),
            log: text,
        }
    }

    /// Powers the sandbox off: `systemctl poweroff` inside, then (after 30 s)
    /// SIGKILL to its init, which takes every process of the namespace with
    /// it. Removes the sandbox's cgroup and state folder.
    pub fn shutdown(mut self) -> Result<()> {
        self.shutdown_inner(Duration::from_secs(30))
    }

    /// Kills the sandbox at once (SIGKILL to its init), no clean shutdown.
    pub fn kill(mut self) -> Result<()> {
        self.shutdown_inner(Duration::ZERO)
    }

    fn shutdown_inner(&mut self, grace: Duration) -> Result<()> {
        if self.down {
            return Ok(());
        }
        self.down = true;
        if self.alive() && !grace.is_zero() {
            // Errors are expected here: the bus goes away under systemctl.
            let _ = self
                .command("systemctl")
                .args(["--no-block", "poweroff"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + grace;
            while self.alive() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
        }
        if self.alive() {
            // The hard way: killing a PID namespace's init kills the namespace.
            let _ = kill(self.init_pid);
        }
        if let Some(cgroup) = &self.cgroup
            && cgroup.exists()
        {
            // Anything left in the sandbox's cgroup (nothing should be).
            let _ = fs::write(cgroup.join("cgroup.kill"), "1");
        }
        if let Some(mut child) = self.unshare.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.alive() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        if let Some(cgroup) = self.cgroup.take() {
            remove_cgroup_tree(&cgroup, Instant::now() + Duration::from_secs(10))
                .map_err(io_err(format!("removing cgroup {}", cgroup.display())))?;
        }
        if self.alive() {
            return Err(Error::Io {
                context: format!("sandbox init {} survived SIGKILL", self.init_pid),
                source: io::ErrorKind::Other.into(),
            });
        }
        fs::remove_dir_all(&self.state_dir)
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(io_err(format!("removing {}", self.state_dir.display())))?;
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.owned
            && !self.down
            && let Err(e) = self.shutdown_inner(Duration::from_secs(15))
        {
            eprintln!("jobctl-sandbox: cleaning up {}: {e}", self.name);
        }
    }
}

/// A sandbox's exit status as a short string, for messages.
pub fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit {code}"),
        None => format!("{status}"),
    }
}

fn kill(pid: i32) -> io::Result<()> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(io::ErrorKind::InvalidInput)?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
    Ok(())
}

/// Removes a cgroup folder and its children, deepest first, retrying while
/// their processes finish exiting.
fn remove_cgroup_tree(dir: &Path, deadline: Instant) -> io::Result<()> {
    loop {
        match remove_cgroup_once(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn remove_cgroup_once(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_once(&entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

/// The host's cgroup2 mount point (`/sys/fs/cgroup`, or
/// `/sys/fs/cgroup/unified` on a hybrid host).
fn cgroup2_mount() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields.iter().position(|f| *f == "-")?;
        (fields.get(dash + 1) == Some(&"cgroup2")).then(|| PathBuf::from(fields[4]))
    })
}

/// The single child of `pid`, if it has exactly one.
fn only_child(pid: i32) -> Option<i32> {
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    let mut it = children.split_whitespace();
    let first = it.next()?.parse().ok()?;
    it.next().is_none().then_some(first)
}

fn which(tool: &str) -> Option<PathBuf> {
    SANDBOX_PATH
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.exists())
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 60
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "sandbox name {name:?}: use 1-60 of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )))
    }
}

fn validate_unit_name(unit: &str) -> Result<()> {
    let ok = !unit.is_empty()
        && unit.contains('.')
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!("unit name to mask {unit:?}")))
    }
}

/// Shared folders must exist, be absolute and canonical, and stay out of the
/// places boot services clean or mount over.
fn validate_shares(share: &[PathBuf]) -> Result<Vec<PathBuf>> {
    const FORBIDDEN: &[&str] = &["/tmp", "/var/tmp", "/run", "/dev", "/proc", "/sys"];
    let mut out = Vec::new();
    for dir in share {
        let canonical = dir
            .canonicalize()
            .map_err(|e| Error::InvalidOption(format!("shared folder {}: {e}", dir.display())))?;
        if !canonical.is_dir() {
            return Err(Error::InvalidOption(format!(
                "shared folder {} is not a folder",
                dir.display()
            )));
        }
        if canonical == Path::new("/") || canonical.to_str().is_none_or(|s| s.contains('\n')) {
            return Err(Error::InvalidOption(format!(
                "shared folder {} cannot be shared",
                dir.display()
            )));
        }
        if let Some(bad) = FORBIDDEN.iter().find(|f| canonical.starts_with(f)) {
            return Err(Error::InvalidOption(format!(
                "shared folder {} is under {bad}, which the sandbox's boot cleans or replaces; \
                 use a folder elsewhere (e.g. the cargo target dir)",
                dir.display()
            )));
        }
        out.push(canonical);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_passes_unless_skips_are_failures() {
        assert_eq!(skip_with(false, "no root"), Ok(()));
        let failure = skip_with(true, "no root").unwrap_err();
        assert!(
            failure.contains("no root") && failure.contains(REQUIRE_ALL_TESTS),
            "{failure}"
        );
    }

    #[test]
    fn ci_or_the_variable_makes_skips_failures() {
        for (require, ci, fails) in [
            (None, None, false),
            (Some("1"), None, true),
            (Some("0"), None, false),
            (None, Some("true"), true),
            (None, Some("TRUE"), true),
            (None, Some("1"), true),
            (None, Some("false"), false),
            (None, Some(""), false),
            (Some("0"), Some("true"), true),
        ] {
            assert_eq!(
                skips_are_failures_with(require, ci),
                fails,
                "JOBCTL_REQUIRE_ALL_TESTS={require:?} CI={ci:?}"
            );
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("jobctl-1-0").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(61)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn shares_under_cleaned_places_are_refused() {
        for bad in ["/tmp", "/run", "/"] {
            let err = validate_shares(&[PathBuf::from(bad)]).unwrap_err();
            assert!(matches!(err, Error::InvalidOption(_)), "{bad}: {err}");
        }
        assert!(validate_shares(&[PathBuf::from("/does/not/exist")]).is_err());
        let here = std::env::current_dir().unwrap();
        if !here.starts_with("/tmp") {
            assert_eq!(
                validate_shares(std::slice::from_ref(&here)).unwrap(),
                vec![here.canonicalize().unwrap()]
            );
        }
    }

    #[test]
    fn mask_entries_are_unit_names() {
        assert!(validate_unit_name("getty@tty1.service").is_ok());
        assert!(validate_unit_name("x; rm -rf /").is_err());
        assert!(validate_unit_name("nodot").is_err());
    }

    #[test]
    fn boot_script_checks_before_exec() {
        // The exec of systemd is the script's last command, after every check.
        let exec_at = BOOT_SCRIPT.find("/lib/systemd/systemd --system").unwrap();
        for check in [
            "pivot_root . .oldroot",
            "marker token mismatch",
            "not the overlay",
            "not PID 1",
        ] {
            let at = BOOT_SCRIPT
                .find(check)
                .unwrap_or_else(|| panic!("{check} missing"));
            assert!(at < exec_at, "{check} comes after the exec");
        }
        assert!(BOOT_SCRIPT.starts_with("# jobctl-sandbox") && BOOT_SCRIPT.contains("set -eu"));
        assert_eq!(BOOT_SCRIPT.matches("/lib/systemd/systemd").count(), 1);
    }

    /// Runs boot.sh in namespaces that fail one of its preconditions; it must
    /// refuse (exit 90) before mounting anything. Each case runs in a private
    /// mount namespace anyway, so a broken check could not touch the host, and
    /// the state folder does not exist, so the first mount would fail.
    fn refusal(unshare: &[&str], pass_own_ns: bool) -> (Option<i32>, String) {
        let script = format!(
            "ns=$(readlink /proc/self/ns/mnt); {} exec /bin/sh -c \"$0\" boot /nonexistent/jobctl-sandbox tok \"$ns\" t",
            if pass_own_ns { "" } else { "ns=not-this-one;" }
        );
        let out = Command::new("/usr/bin/unshare")
            .args(unshare)
            .args(["--", "/bin/sh", "-c", &script, BOOT_SCRIPT])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn boot_script_refuses_outside_its_namespaces() {
        if let Some(reason) = unsupported_reason() {
            return skip(&reason).unwrap_or_else(|failure| panic!("{failure}"));
        }
        // Not PID 1 of a PID namespace.
        let (code, err) = refusal(&["--mount"], false);
        assert_eq!(code, Some(90), "{err}");
        assert!(err.contains("not PID 1 of a new PID namespace"), "{err}");
        // PID 1, but the mount namespace is the one it was told is the host's.
        let (code, err) = refusal(&["--mount", "--pid", "--fork"], true);
        assert_eq!(code, Some(90), "{err}");
        assert!(err.contains("still in the host's mount namespace"), "{err}");
    }
}
