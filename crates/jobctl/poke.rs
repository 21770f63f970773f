//! The watch's wake-up socket: the shim of a job with notification channels
//! (`jobctl exec --notify`) sends one datagram to it after recording the run,
//! so that `jobctl-watch.socket` starts a watch pass at once instead of at
//! the next minute. The content is ignored; nothing waits; every error is
//! ignored (the minutely timer catches up). docs/design.md, "Notifications".

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;

use crate::env;
use crate::paths::Mode;

/// Where the system manager's socket listens (`units/system/jobctl-watch.socket`).
pub const SYSTEM_SOCKET: &str = "/run/jobctl/watch.sock";

/// The socket for `mode`: `JOBCTL_WATCH_SOCKET` when set (tests, benchmarks),
/// else `/run/jobctl/watch.sock`, or `$XDG_RUNTIME_DIR/jobctl/watch.sock` in
/// per-user mode (the user unit's `%t/jobctl/watch.sock`).
pub fn socket_path(mode: Mode) -> Option<PathBuf> {
    if let Some(path) = env::var_os(env::WATCH_SOCKET) {
        return Some(PathBuf::from(path));
    }
    match mode {
        Mode::System => Some(PathBuf::from(SYSTEM_SOCKET)),
        Mode::User => env::var_os(env::XDG_RUNTIME_DIR)
            .map(|dir| PathBuf::from(dir).join("jobctl/watch.sock")),
    }
}

/// Sends the wake-up datagram: a socket, a non-blocking send, a close (four
/// system calls). A full socket buffer, a missing socket, a sandbox that
/// hides it: all ignored.
pub fn poke(mode: Mode) {
    let Some(path) = socket_path(mode) else {
        return;
    };
    if let Ok(socket) = UnixDatagram::unbound() {
        let _ = socket.set_nonblocking(true);
        let _ = socket.send_to(b"1", path);
    }
}

/// The socket systemd passed to this process (`LISTEN_FDS`, the first one,
/// fd 3), when it is a datagram socket: the watch drains it so that systemd
/// does not start the watch again for datagrams this pass already covers.
/// Returns how many datagrams were read.
pub fn drain_passed_socket() -> usize {
    use std::os::fd::{FromRawFd, OwnedFd};
    let ours = env::var_os("LISTEN_PID")
        .and_then(|p| p.to_str().and_then(|p| p.parse::<u32>().ok()))
        .is_some_and(|pid| pid == std::process::id());
    let count = env::var_os("LISTEN_FDS")
        .and_then(|n| n.to_str().and_then(|n| n.parse::<i32>().ok()))
        .unwrap_or(0);
    if !ours || count < 1 {
        return 0;
    }
    const FIRST: i32 = 3; // SD_LISTEN_FDS_START
    // Only a datagram socket is ours to read (getsockopt fails on anything
    // that is not a socket).
    if socket_type(FIRST) != Some(nix::libc::SOCK_DGRAM) {
        return 0;
    }
    // SAFETY: systemd passed fd 3 to this process (LISTEN_PID is ours) and
    // nothing else in jobctl uses it; it is owned from here on, and closed
    // when drained (so a command channel does not inherit it).
    let socket = UnixDatagram::from(unsafe { OwnedFd::from_raw_fd(FIRST) });
    let _ = socket.set_nonblocking(true);
    let mut buf = [0u8; 64];
    let mut read = 0;
    // Bounded: a flood of datagrams while draining cannot keep the pass
    // from starting (what is left starts the next pass).
    while read < 100_000 && socket.recv(&mut buf).is_ok() {
        read += 1;
    }
    read
}

fn socket_type(fd: i32) -> Option<i32> {
    let mut value: nix::libc::c_int = 0;
    let mut len = std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let r = unsafe {
        nix::libc::getsockopt(
            fd,
            nix::libc::SOL_SOCKET,
            nix::libc::SO_TYPE,
            (&mut value as *mut nix::libc::c_int).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(value)
}
