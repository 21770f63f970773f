//! Where the server listens: the sockets systemd passes (socket activation,
//! `$LISTEN_FDS`), else the unix socket it binds itself, and a TCP address
//! when `--listen` is given.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// One listening socket, before it is handed to tokio.
pub enum Socket {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

/// The first file descriptor systemd passes (sd_listen_fds(3)).
const SD_LISTEN_FDS_START: i32 = 3;

/// The sockets systemd passed to this process, if any: `$LISTEN_PID` must be
/// this process and `$LISTEN_FDS` their count. The variables are removed,
/// so that nothing this process starts takes them for its own.
pub fn activated() -> Result<Vec<Socket>> {
    let (Some(pid), Some(fds)) = (
        std::env::var_os("LISTEN_PID"),
        std::env::var_os("LISTEN_FDS"),
    ) else {
        return Ok(Vec::new());
    };
    // SAFETY (of the environment writes below): called first thing in main,
    // before any other thread exists.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let pid: u32 = pid
        .to_str()
        .and_then(|p| p.parse().ok())
        .context("$LISTEN_PID is not a process id")?;
    if pid != std::process::id() {
        return Ok(Vec::new());
    }
    let count: i32 = fds
        .to_str()
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=16).contains(n))
        .context("$LISTEN_FDS is not a count of sockets between 1 and 16")?;
    let mut sockets = Vec::new();
    for fd in SD_LISTEN_FDS_START..SD_LISTEN_FDS_START + count {
        // SAFETY: systemd passed these descriptors to this process for it to
        // own (sd_listen_fds(3)); each is taken exactly once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        set_cloexec(&owned)?;
        sockets.push(classify(owned).with_context(|| format!("socket {fd} from systemd"))?);
    }
    Ok(sockets)
}

fn set_cloexec(fd: &OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor this process owns.
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    if rc == -1 {
        return Err(std::io::Error::last_os_error()).context("fcntl(FD_CLOEXEC)");
    }
    Ok(())
}

/// A passed socket as a unix or TCP listener, by its address family.
fn classify(fd: OwnedFd) -> Result<Socket> {
    use std::os::fd::AsRawFd;
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes into `storage`.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&raw mut storage).cast::<libc::sockaddr>(),
            &mut len,
        )
    };
    if rc == -1 {
        return Err(std::io::Error::last_os_error())
            .context("not a socket (the unit must pass a listening stream socket)");
    }
    match i32::from(storage.ss_family) {
        libc::AF_UNIX => Ok(Socket::Unix(std::os::unix::net::UnixListener::from(fd))),
        libc::AF_INET | libc::AF_INET6 => Ok(Socket::Tcp(std::net::TcpListener::from(fd))),
        other => bail!("a socket of address family {other}; only unix and TCP sockets are served"),
    }
}

/// Binds the unix socket at `path` (an old socket replaced). System mode:
/// its folder created 0755 and the socket open to everyone, since who may do
/// what is decided per request from the peer's credentials. Per user
/// (`owner_only`): folder 0700 and socket 0600, as the shipped
/// `jobctl-web.socket` makes them, so nobody else reaches it at all.
pub fn bind_unix(path: &Path, owner_only: bool) -> Result<Socket> {
    let (dir_mode, socket_mode) = if owner_only {
        (0o700, 0o600)
    } else {
        (0o755, 0o666)
    };
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(dir_mode)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
            std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a socket; not replacing it",
            path.display()
        ),
        Err(_) => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket_mode))
        .with_context(|| format!("chmod {}", path.display()))?;
    Ok(Socket::Unix(listener))
}

/// Binds a TCP address given with `--listen`.
pub fn bind_tcp(addr: &str) -> Result<Socket> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    Ok(Socket::Tcp(listener))
}
