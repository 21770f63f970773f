//! Running sendmail or a notification command with a deadline.
//!
//! The child gets its input from an anonymous memory file (memfd), not a
//! pipe: the whole input is there before it starts, so no write of ours can
//! block on a child that does not read, and none can raise SIGPIPE in the
//! caller (the jobctl binary restores SIGPIPE's default action). Its stdout
//! and stderr share one pipe, read without blocking while it runs, keeping
//! the last 4 KiB for the attempt's detail: a grandchild that keeps the pipe
//! open past the child's exit or the deadline delays nothing.
//! The child leads a process group of its own; at the deadline the whole
//! group is killed with SIGKILL and the child reaped.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::os::fd::AsFd as _;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, pipe2};

use crate::format::payload;
use crate::text::one_line;
use crate::{Format, Notification, Outcome};

/// The command channel: `argv` with the generic payload on stdin and the
/// `JOBCTL_*` variables.
pub(crate) fn command(
    argv: &[String],
    timeout: Duration,
    n: &Notification,
    start: Instant,
) -> Outcome {
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Outcome::failed(false, "the command is empty");
    }
    let mut input = payload(Format::Generic, n).to_string().into_bytes();
    input.push(b'\n');
    let opt = |v: &Option<String>| v.as_deref().map(one_line).unwrap_or_default();
    let num = |v: Option<i32>| v.map(|c| c.to_string()).unwrap_or_default();
    let env = [
        ("JOBCTL_EVENT", one_line(&n.event)),
        ("JOBCTL_JOB", one_line(&n.job)),
        ("JOBCTL_HOST", one_line(&n.host)),
        ("JOBCTL_STATUS", opt(&n.status)),
        ("JOBCTL_EXIT_CODE", num(n.exit_code)),
        ("JOBCTL_SIGNAL", num(n.signal)),
        ("JOBCTL_RUN_ID", opt(&n.run_id)),
        ("JOBCTL_INVOCATION_ID", opt(&n.invocation_id)),
        ("JOBCTL_EVENT_ID", one_line(&n.event_id)),
        ("JOBCTL_SUMMARY", crate::text::summary(n)),
    ];
    let argv: Vec<OsString> = argv.iter().map(OsString::from).collect();
    run(&argv, &input, &env, timeout, start, "the command")
}

/// Runs `argv` with `input` on stdin and `env` added, until it exits or
/// `start + timeout` passes. `what` names it in the detail ("sendmail").
pub(crate) fn run(
    argv: &[OsString],
    input: &[u8],
    env: &[(&str, String)],
    timeout: Duration,
    start: Instant,
    what: &str,
) -> Outcome {
    let program = &argv[0];
    let shown = program.to_string_lossy();
    let stdin = match memory_file("jobctl-notify-in", input) {
        Ok(f) => f,
        Err(e) => return Outcome::failed(true, format!("cannot prepare the input of {what}: {e}")),
    };
    // stdout and stderr: one pipe, read without blocking; only its last
    // bytes are kept, so a chatty command costs no memory.
    let (read_end, write_end) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::failed(true, format!("cannot prepare the output of {what}: {e}"));
        }
    };
    let write_end_2 = match write_end.try_clone() {
        Ok(f) => f,
        Err(e) => {
            return Outcome::failed(true, format!("cannot prepare the output of {what}: {e}"));
        }
    };
    if let Err(e) = fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
        return Outcome::failed(true, format!("cannot prepare the output of {what}: {e}"));
    }
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(write_end_2))
        .process_group(0);
    let spawned = cmd.spawn();
    // Our copies of the write end must go, or the pipe never ends.
    drop(cmd);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            use std::io::ErrorKind::*;
            // A path that is wrong or not executable is the configuration's
            // to fix; anything else (no memory, too many processes) may pass.
            let permanent = matches!(e.kind(), NotFound | PermissionDenied | InvalidInput)
                || e.raw_os_error() == Some(nix::libc::ENOEXEC);
            return Outcome::failed(!permanent, format!("cannot run {what} {shown}: {e}"));
        }
    };
    let pgid = Pid::from_raw(child.id() as i32);
    let deadline = start + timeout;
    let mut output = Tail::default();
    let mut reader = Some(File::from(read_end));
    let mut pause = Duration::from_millis(1);
    let (status, timed_out) = loop {
        if let Some(r) = reader.as_mut()
            && output.drain(r)
        {
            reader = None; // every writer closed it
        }
        match child.try_wait() {
            Ok(Some(status)) => break (status, false),
            Ok(None) => {}
            Err(e) => {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return Outcome::failed(true, format!("cannot wait for {what} {shown}: {e}"));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            // The whole group: a shell's children die with it.
            let _ = killpg(pgid, Signal::SIGKILL);
            match child.wait() {
                Ok(status) => break (status, true),
                Err(e) => {
                    return Outcome::failed(true, format!("cannot reap {what} {shown}: {e}"));
                }
            }
        }
        let nap = pause.min(deadline - now);
        match reader.as_ref() {
            // Wakes early when output arrives.
            Some(r) => {
                let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(nap.as_millis().max(1)).unwrap_or(u16::MAX);
                let _ = poll(&mut fds, ms);
            }
            None => std::thread::sleep(nap),
        }
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    // What it wrote last, without waiting for a writer it left behind.
    if let Some(r) = reader.as_mut() {
        output.drain(r);
    }
    let last_words = output.last_line();
    let exit = status.code().or_else(|| status.signal().map(|s| 128 + s));
    let said = if last_words.is_empty() {
        String::new()
    } else {
        format!(": {last_words}")
    };
    if timed_out {
        return Outcome {
            retryable: true,
            exit_status: exit,
            detail: format!(
                "{what} {shown} timed out after {}; its process group was killed{said}",
                seconds(timeout)
            ),
            ..Outcome::default()
        };
    }
    match (status.code(), status.signal()) {
        (Some(0), _) => Outcome {
            ok: true,
            exit_status: Some(0),
            detail: format!("{what} {shown} exited 0{said}"),
            ..Outcome::default()
        },
        (Some(code), _) => Outcome {
            retryable: !permanent_exit(code),
            exit_status: Some(code),
            detail: format!("{what} {shown} exited {code}{said}"),
            ..Outcome::default()
        },
        (None, sig) => Outcome {
            retryable: true,
            exit_status: exit,
            detail: format!(
                "{what} {shown} was killed by {}{said}",
                sig.map(crate::text::signal_name)
                    .unwrap_or_else(|| "a signal".into())
            ),
            ..Outcome::default()
        },
    }
}

/// Exit statuses that say trying again cannot help (sysexits.h, which
/// sendmail implementations use, and the shell's 126/127): a usage or data
/// error, an unknown user or host, a protocol or permission error, a
/// configuration error, a program not found or not executable. Every other
/// failure (75 EX_TEMPFAIL, 69 EX_UNAVAILABLE, 1 …) is retried.
fn permanent_exit(code: i32) -> bool {
    matches!(code, 64..=68 | 76..=78 | 126 | 127)
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// An anonymous file holding `data`, positioned at its start.
fn memory_file(name: &str, data: &[u8]) -> std::io::Result<File> {
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC).map_err(std::io::Error::from)?;
    let mut file = File::from(fd);
    file.write_all(data)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// The last bytes a child wrote.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    const KEEP: usize = 4096;

    /// Reads what is there; true at end of file.
    fn drain(&mut self, r: &mut File) -> bool {
        let mut chunk = [0u8; 8192];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if self.buf.len() > 2 * Self::KEEP {
                        self.buf.drain(..self.buf.len() - Self::KEEP);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false, // WouldBlock: nothing more for now
            }
        }
    }

    /// The last non-blank line, at most 200 characters of it.
    fn last_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.buf);
        let line = text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default();
        crate::text::truncate_chars(&one_line(line), 200)
    }
}
