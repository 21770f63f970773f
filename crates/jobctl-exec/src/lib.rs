//! Process supervision for the run shim (`jobctl exec`).
//!
//! [`run`] starts a command in its own process group with stdout and stderr
//! on pipes, forwards every byte unchanged and at once to the shim's own
//! stdout and stderr (so journald sees the job's lines as they come, and a
//! prompt without a newline shows up), keeps a bounded [`Capture`] of both
//! streams interleaved, forwards stop signals to the whole process group, and
//! reports how the command ended. It knows nothing of databases: the binary
//! records the run around it.
//!
//! When the command ends, whatever is already in the pipes is drained and the
//! shim returns; descendants that outlive the command (and may hold the pipes
//! open) are left to systemd, which cleans up the unit's cgroup.

pub mod capture;
pub mod signals;

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{Pid, getpgrp, tcgetpgrp, tcsetpgrp};

pub use capture::{Capture, Piece, Stream};
pub use signals::{Received, STOP_SIGNALS, Signals, reraise};

/// Errors of the shim's own machinery (not of the command).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot set up signal handling")]
    Signals(#[source] Errno),
    #[error("cannot wait for the command")]
    Wait(#[source] Errno),
    #[error("cannot watch the command's output")]
    Poll(#[source] Errno),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Spec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// Run the command in this folder (checked first, so a bad folder is told
    /// apart from a missing program).
    pub working_directory: Option<PathBuf>,
    /// Bytes of output to keep (first and last halves); 0 keeps none.
    pub capture_limit: usize,
    /// Give the command one pipe for both stdout and stderr: the capture then
    /// has exactly the order the command wrote in (two pipes that are both
    /// readable cannot tell which was written first), as
    /// [`Stream::Merged`], and everything is forwarded to the shim's stdout.
    pub merge_output: bool,
}

/// Why a command could not be started. Exit codes follow `env(1)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFailure {
    /// 127: no such program (or not on `$PATH`).
    NotFound(String),
    /// 126: found but cannot be executed (permissions, format, a folder).
    NotExecutable(String),
    /// 125: the working directory is missing or unusable.
    BadWorkingDirectory(String),
    /// 125: anything else that kept the command from starting.
    Other(String),
}

impl StartFailure {
    pub fn exit_code(&self) -> i32 {
        match self {
            StartFailure::NotFound(_) => 127,
            StartFailure::NotExecutable(_) => 126,
            StartFailure::BadWorkingDirectory(_) | StartFailure::Other(_) => 125,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            StartFailure::NotFound(m)
            | StartFailure::NotExecutable(m)
            | StartFailure::BadWorkingDirectory(m)
            | StartFailure::Other(m) => m,
        }
    }
}

/// How the command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Exited(i32),
    Signaled(i32),
    NotStarted(StartFailure),
}

/// A stop signal the shim received (and forwarded to the command).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopRequest {
    pub signal: i32,
    pub at: SystemTime,
}

/// Called while the command runs.
pub trait Observer {
    /// The command started (its pid).
    fn started(&mut self, _pid: u32) {}
    /// The first stop signal arrived and was forwarded. The binary records
    /// the run's provisional end here, with the output captured so far, in
    /// case it is killed before the command exits.
    fn stop_requested(&mut self, _request: StopRequest, _capture: &Capture) {}
}

impl Observer for () {}

/// What the command and the descendants it waited for cost, from
/// `wait4(2)`'s rusage (nothing more than the wait itself).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildUsage {
    pub user_us: u64,
    pub system_us: u64,
    /// The largest resident set of one process (`ru_maxrss`). The kernel
    /// carries the spawning process's high-water mark across `exec`, so it
    /// is never below the shim's own peak.
    pub max_rss_bytes: u64,
    /// Blocks read from and written to storage (`ru_inblock`, `ru_oublock`),
    /// in bytes (512 per block).
    pub read_bytes: u64,
    pub written_bytes: u64,
}

impl ChildUsage {
    fn of(r: &nix::libc::rusage) -> ChildUsage {
        let us = |t: nix::libc::timeval| {
            (t.tv_sec.max(0) as u64)
                .saturating_mul(1_000_000)
                .saturating_add(t.tv_usec.max(0) as u64)
        };
        let positive = |v: nix::libc::c_long| v.max(0) as u64;
        ChildUsage {
            user_us: us(r.ru_utime),
            system_us: us(r.ru_stime),
            max_rss_bytes: positive(r.ru_maxrss).saturating_mul(1024),
            read_bytes: positive(r.ru_inblock).saturating_mul(512),
            written_bytes: positive(r.ru_oublock).saturating_mul(512),
        }
    }
}

/// The result of [`run`].
#[derive(Debug)]
pub struct Outcome {
    pub pid: Option<u32>,
    pub end: End,
    /// What the command cost, when it was started and reaped.
    pub usage: Option<ChildUsage>,
    pub stop: Option<StopRequest>,
    pub capture: Capture,
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// Largest read. Once the capture's head is full, reads land straight in its
/// tail ring, so a fast writer is drained in few, large system calls. The
/// buffer is allocated zeroed and above the C allocator's mmap threshold, so
/// its pages cost nothing until a read fills them (a command that prints
/// nothing never touches it).
const READ_CHUNK: usize = 256 << 10;
/// A pipe that a read finds full (its writer outpaces the shim) is enlarged
/// to this, best effort, so the writer blocks less often. Only then: the
/// capacity of every pipe counts against the user's pipe quota
/// (`/proc/sys/fs/pipe-user-pages-soft`), and hundreds of quiet shims must
/// not use it up.
const BIG_PIPE: usize = 1 << 20;
/// The alignment of the read buffer (see its allocation in `run`).
const PAGE: usize = 4096;
/// Reads per poll wake-up while a pipe keeps delivering.
const BURST_READS: usize = 16;
/// After the command exits, at most this much is drained from pipes that a
/// leftover descendant still writes to.
const DRAIN_LIMIT: u64 = 64 << 20;

/// Runs `spec` to completion, forwarding and capturing its output.
pub fn run(
    spec: &Spec,
    signals: &mut Signals,
    observer: &mut dyn Observer,
) -> Result<Outcome, Error> {
    let started = SystemTime::now();
    let mut capture = Capture::new(spec.capture_limit);
    let not_started = |failure, capture| Outcome {
        pid: None,
        end: End::NotStarted(failure),
        usage: None,
        stop: None,
        capture,
        started,
        ended: SystemTime::now(),
    };
    if let Some(dir) = &spec.working_directory {
        match std::fs::metadata(dir) {
            // A folder the job's user may not enter: its chdir would fail in
            // the child, where the error looks like the command's own.
            Ok(meta) if meta.is_dir() => {
                if let Err(e) = nix::unistd::access(dir.as_path(), nix::unistd::AccessFlags::X_OK) {
                    return Ok(not_started(
                        StartFailure::BadWorkingDirectory(format!(
                            "working directory {}: {}",
                            dir.display(),
                            std::io::Error::from(e)
                        )),
                        capture,
                    ));
                }
            }
            Ok(_) => {
                return Ok(not_started(
                    StartFailure::BadWorkingDirectory(format!(
                        "working directory {} is not a directory",
                        dir.display()
                    )),
                    capture,
                ));
            }
            Err(e) => {
                return Ok(not_started(
                    StartFailure::BadWorkingDirectory(format!(
                        "working directory {}: {e}",
                        dir.display()
                    )),
                    capture,
                ));
            }
        }
    }

    let terminal = foreground_terminal();
    // The common case (no working directory, no terminal to hand over) goes
    // through posix_spawn, which glibc implements with a vfork-style clone:
    // no copy of the shim's page tables, a fraction of fork's cost. The rest
    // uses the standard library's fork path with a pre-exec hook.
    let spawned = if spec.working_directory.is_none() && !terminal {
        spawn_fast(spec)
    } else {
        spawn_with_hook(spec, terminal)
    };
    let (pid, out, err) = match spawned {
        Ok(spawned) => spawned,
        Err(e) => {
            let program = spec.program.to_string_lossy();
            let failure = match e.kind() {
                io::ErrorKind::NotFound => {
                    StartFailure::NotFound(format!("{program}: command not found"))
                }
                io::ErrorKind::PermissionDenied => {
                    StartFailure::NotExecutable(format!("{program}: permission denied"))
                }
                _ if e.raw_os_error().is_some_and(is_exec_errno) => {
                    StartFailure::NotExecutable(format!("{program}: {e}"))
                }
                _ => StartFailure::Other(format!("{program}: {e}")),
            };
            return Ok(not_started(failure, capture));
        }
    };
    let pgid = Pid::from_raw(pid as i32);
    if terminal {
        let _ = tcsetpgrp(io::stdin(), pgid);
    }
    observer.started(pid);

    let mut pipes: Vec<Pipe> = match err {
        Some(err) => vec![
            Pipe::new(Stream::Stdout, out),
            Pipe::new(Stream::Stderr, err),
        ],
        None => vec![Pipe::new(Stream::Merged, out)],
    };
    let mut forward = Forwarder::default();
    // Zeroed by the kernel page by page as reads fill it (see READ_CHUNK).
    // Page-aligned: the kernel copies from page-aligned pipe buffers, and a
    // destination a few bytes off a page boundary (what the allocator gives
    // for a large block: its 16-byte header) halves the copy's speed here.
    let mut scratch = vec![0u8; READ_CHUNK + PAGE];
    let aligned = scratch.as_ptr().align_offset(PAGE).min(PAGE);
    let buf = &mut scratch[aligned..aligned + READ_CHUNK];
    let mut stop: Option<StopRequest> = None;
    let (status, usage) = loop {
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
        fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        for pipe in &pipes {
            if pipe.open {
                fds.push(PollFd::new(pipe.fd.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::Poll(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 1;
        for pipe in pipes.iter_mut() {
            if !pipe.open {
                continue;
            }
            if ready[idx] {
                // The pipes are non-blocking: keep reading while data keeps
                // coming (one poll per burst, not per read), a bounded number
                // of times so the other stream and signals are not starved.
                for _ in 0..BURST_READS {
                    let fd = pipe.fd.as_fd();
                    match capture.read_from(pipe.stream, buf, |into| read_fd(fd, into)) {
                        Ok([]) => {
                            pipe.open = false;
                            break;
                        }
                        Ok(data) => {
                            let full = data.len() >= pipe.capacity;
                            forward.write(pipe.stream, data);
                            if full {
                                pipe.grow();
                            }
                        }
                        Err(Errno::EAGAIN) => break,
                        Err(_) => {
                            pipe.open = false;
                            break;
                        }
                    }
                }
            }
            idx += 1;
        }
        if ready[0] {
            let mut child_changed = false;
            loop {
                match signals.read() {
                    Received::Stop(sig) => {
                        // Forward every stop signal to the whole group.
                        let _ = killpg(pgid, sig);
                        if stop.is_none() {
                            let request = StopRequest {
                                signal: sig as i32,
                                at: SystemTime::now(),
                            };
                            stop = Some(request);
                            observer.stop_requested(request, &capture);
                        }
                    }
                    Received::Child => child_changed = true,
                    Received::None => break,
                }
            }
            if child_changed && let Some(reaped) = reap(pgid)? {
                break reaped;
            }
        }
    };
    let ended = SystemTime::now();
    if terminal {
        let _ = tcsetpgrp(io::stdin(), getpgrp());
    }
    // What the command wrote before it ended is already in the pipes.
    let mut drained = 0u64;
    for pipe in pipes.iter_mut() {
        if !pipe.open {
            continue;
        }
        while drained < DRAIN_LIMIT {
            let fd = pipe.fd.as_fd();
            match capture.read_from(pipe.stream, buf, |into| read_fd(fd, into)) {
                Ok([]) | Err(_) => break,
                Ok(data) => {
                    drained += data.len() as u64;
                    forward.write(pipe.stream, data);
                }
            }
        }
        pipe.open = false;
    }
    let end = match status {
        WaitStatus::Exited(_, code) => End::Exited(code),
        WaitStatus::Signaled(_, sig, _) => End::Signaled(sig as i32),
        // reap() only returns terminal states.
        _ => End::Exited(125),
    };
    Ok(Outcome {
        pid: Some(pid),
        end,
        usage: Some(usage),
        stop,
        capture,
        started,
        ended,
    })
}

/// One of the command's output pipes, as the supervision loop sees it.
struct Pipe {
    stream: Stream,
    fd: OwnedFd,
    open: bool,
    /// Its capacity as far as the shim knows (the kernel's default until
    /// [`Pipe::grow`]).
    capacity: usize,
}

impl Pipe {
    fn new(stream: Stream, fd: OwnedFd) -> Pipe {
        // Non-blocking, so that a burst of reads ends with EAGAIN instead of
        // a wait (pipe2 set close-on-exec already).
        let _ = fcntl(&fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        Pipe {
            stream,
            fd,
            open: true,
            capacity: 64 << 10,
        }
    }

    /// Enlarges the pipe once its writer has filled it (best effort: an
    /// unprivileged user over the pipe quota keeps the default).
    fn grow(&mut self) {
        if self.capacity < BIG_PIPE {
            self.capacity = BIG_PIPE;
            let _ = fcntl(&self.fd, FcntlArg::F_SETPIPE_SZ(BIG_PIPE as i32));
        }
    }
}

/// The command's pid and the read ends of its output pipes: stdout's (or the
/// merged one) and stderr's (none when merged).
type Spawned = (u32, OwnedFd, Option<OwnedFd>);

/// posix_spawnp with stdout/stderr on new pipes (or both on one), a new
/// process group, an empty signal mask and SIGPIPE back to its default (Rust
/// ignores it).
fn spawn_fast(spec: &Spec) -> io::Result<Spawned> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawnp};
    use nix::sys::signal::SigSet;

    let cstring = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "argument contains a NUL byte")
        })
    };
    let program = cstring(spec.program.as_bytes())?;
    let mut argv = Vec::with_capacity(spec.args.len() + 1);
    argv.push(program.clone());
    for arg in &spec.args {
        argv.push(cstring(arg.as_bytes())?);
    }
    let mut envp = Vec::new();
    for (key, value) in std::env::vars_os() {
        let mut entry = key.as_bytes().to_vec();
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        envp.push(cstring(&entry)?);
    }
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let err = if spec.merge_output {
        None
    } else {
        Some(nix::unistd::pipe2(OFlag::O_CLOEXEC)?)
    };
    let mut actions = PosixSpawnFileActions::init()?;
    actions.add_dup2(out_w.as_raw_fd(), 1)?;
    let err_w = err.as_ref().map_or(&out_w, |(_, w)| w);
    actions.add_dup2(err_w.as_raw_fd(), 2)?;
    let mut attr = PosixSpawnAttr::init()?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )?;
    attr.set_pgroup(Pid::from_raw(0))?;
    attr.set_sigmask(&SigSet::empty())?;
    let mut defaults = SigSet::empty();
    defaults.add(Signal::SIGPIPE);
    attr.set_sigdefault(&defaults)?;
    let pid = posix_spawnp(&program, &actions, &attr, &argv, &envp)?;
    drop(out_w);
    Ok((pid.as_raw() as u32, out_r, err.map(|(r, _)| r)))
}

/// The standard library's fork path, for a working directory or a terminal
/// to hand over: the hook empties the signal mask (the standard library does
/// not) and, in an interactive run, makes the command's group the terminal's
/// foreground (in the child too, so it holds the terminal before it execs and
/// can read its prompts' answers; Ctrl-C then reaches it directly).
fn spawn_with_hook(spec: &Spec, terminal: bool) -> io::Result<Spawned> {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .stdin(Stdio::inherit())
        .process_group(0);
    // The merged pipe's read end, kept here; the write end goes to the
    // command as both stdout and stderr (and is closed here once spawned).
    let merged = if spec.merge_output {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        command
            .stdout(Stdio::from(write.try_clone()?))
            .stderr(Stdio::from(write));
        Some(read)
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        None
    };
    if let Some(dir) = &spec.working_directory {
        command.current_dir(dir);
    }
    // SAFETY: only async-signal-safe system calls run in the child.
    unsafe {
        command.pre_exec(move || {
            use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
            if terminal {
                let mut ttou = SigSet::empty();
                ttou.add(Signal::SIGTTOU);
                let _ = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&ttou), None);
                let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
                let _ = tcsetpgrp(io::stdin(), nix::unistd::getpgrp());
            }
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // Dropping `command` closes the shim's copies of the merged write end.
    drop(command);
    // The handle does not reap on drop; the supervision loop waits itself.
    if let Some(read) = merged {
        return Ok((child.id(), read, None));
    }
    let out = OwnedFd::from(child.stdout.take().expect("piped stdout"));
    let err = OwnedFd::from(child.stderr.take().expect("piped stderr"));
    Ok((child.id(), out, Some(err)))
}

fn is_exec_errno(errno: i32) -> bool {
    [
        Errno::ENOEXEC,
        Errno::EISDIR,
        Errno::ENOTDIR,
        Errno::ELOOP,
        Errno::ETXTBSY,
    ]
    .iter()
    .any(|e| *e as i32 == errno)
}

/// Whether stdin is a terminal whose foreground group is ours (an interactive
/// shell run in the foreground).
fn foreground_terminal() -> bool {
    let stdin = io::stdin();
    nix::unistd::isatty(stdin.as_fd()).unwrap_or(false)
        && tcgetpgrp(stdin.as_fd()).is_ok_and(|pg| pg == getpgrp())
}

/// Reaps the command if it ended, with what it cost: `wait4(2)` is
/// `waitpid` with the rusage the kernel has anyway. A stopped or continued
/// command is not an end (a terminal's Ctrl-Z is the command's business).
fn reap(pid: Pid) -> Result<Option<(WaitStatus, ChildUsage)>, Error> {
    loop {
        let mut raw_status: nix::libc::c_int = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
        let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
        let flags = WaitPidFlag::WNOHANG;
        // SAFETY: both pointers are to live locals of the right types.
        let rc =
            unsafe { nix::libc::wait4(pid.as_raw(), &mut raw_status, flags.bits(), &mut usage) };
        if rc < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(Error::Wait(e)),
            }
        }
        if rc == 0 {
            return Ok(None);
        }
        match WaitStatus::from_raw(pid, raw_status).map_err(Error::Wait)? {
            status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                return Ok(Some((status, ChildUsage::of(&usage))));
            }
            _ => continue,
        }
    }
}

fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match nix::unistd::read(fd, buf) {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// Writes output through to the shim's stdout/stderr unchanged. A closed
/// reader (EPIPE) stops forwarding that stream but not the capture; a
/// non-blocking descriptor inherited from the caller is waited on, not
/// dropped.
#[derive(Default)]
struct Forwarder {
    stdout_closed: bool,
    stderr_closed: bool,
}

impl Forwarder {
    fn write(&mut self, stream: Stream, mut data: &[u8]) {
        let (closed, fd): (&mut bool, BorrowedFd<'_>) = match stream {
            // SAFETY: fds 1 and 2 stay open for the life of the process.
            Stream::Stdout | Stream::Merged => (&mut self.stdout_closed, unsafe {
                BorrowedFd::borrow_raw(1)
            }),
            Stream::Stderr => (&mut self.stderr_closed, unsafe {
                BorrowedFd::borrow_raw(2)
            }),
        };
        while !*closed && !data.is_empty() {
            match nix::unistd::write(fd, data) {
                Ok(n) => data = &data[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    let mut fds = [PollFd::new(fd, PollFlags::POLLOUT)];
                    let _ = poll(&mut fds, PollTimeout::NONE);
                }
                Err(_) => *closed = true,
            }
        }
    }
}
