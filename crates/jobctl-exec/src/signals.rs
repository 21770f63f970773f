//! The shim's signals: blocked and read from a signalfd, so the supervision
//! loop handles them in order with the pipes, with no async-signal-safety
//! concerns.
//!
//! Blocked: the stop signals systemd and terminals send (SIGTERM, SIGINT,
//! SIGHUP, SIGQUIT), which are forwarded to the command's process group;
//! SIGCHLD, which tells the loop the command ended; and SIGTTOU, so that the
//! shim may hand a terminal back to itself from the background. The command
//! starts with an empty signal mask (the standard library resets it).

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::Error;

/// The signals the shim forwards to the command.
pub const STOP_SIGNALS: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The blocked signal set and its signalfd. Create it before starting the
/// command, so a SIGCHLD or a stop signal that arrives early is queued, not
/// lost.
pub struct Signals {
    fd: SignalFd,
}

/// What came out of the signalfd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    Stop(Signal),
    Child,
    None,
}

impl Signals {
    pub fn install() -> Result<Signals, Error> {
        let mut set = SigSet::empty();
        for sig in STOP_SIGNALS {
            set.add(sig);
        }
        set.add(Signal::SIGCHLD);
        set.add(Signal::SIGTTOU);
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(Error::Signals)?;
        // SIGTTOU stays blocked but is not read: it only needs to not stop us.
        set.remove(Signal::SIGTTOU);
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(Error::Signals)?;
        Ok(Signals { fd })
    }

    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Reads one pending signal, if any.
    pub(crate) fn read(&mut self) -> Received {
        match self.fd.read_signal() {
            Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => Received::Child,
                Ok(sig) => Received::Stop(sig),
                Err(_) => Received::None,
            },
            _ => Received::None,
        }
    }

    /// Sleeps for `duration` (a retry delay), ending early with the stop
    /// signal that interrupted it, if one did.
    pub fn sleep(&mut self, duration: Duration) -> Option<Signal> {
        let deadline = Instant::now() + duration;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let ms = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            if poll(&mut fds, PollTimeout::from(ms)).is_err() {
                continue;
            }
            loop {
                match self.read() {
                    Received::Stop(sig) => return Some(sig),
                    Received::Child => continue,
                    Received::None => break,
                }
            }
        }
    }
}

/// Ends the shim the way the command ended: with the same signal. The signal's
/// default action is restored and it is unblocked and raised; core dumps are
/// turned off first, so a command that dumped core does not make the shim dump
/// its own. Falls back to exit status 128 + signal if the signal does not
/// end the process.
pub fn reraise(signal: i32) -> ! {
    use nix::sys::resource::{Resource, setrlimit};
    use nix::sys::signal::{SigHandler, raise, signal as set_handler};
    if let Ok(sig) = Signal::try_from(signal) {
        let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
        // SAFETY: SIG_DFL installs no Rust code as a handler.
        let _ = unsafe { set_handler(sig, SigHandler::SigDfl) };
        let mut set = SigSet::empty();
        set.add(sig);
        let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
        let _ = raise(sig);
    }
    std::process::exit(128 + (signal & 0x7f));
}
