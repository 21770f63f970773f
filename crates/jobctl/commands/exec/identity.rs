//! Who and what a run is: its trigger, a fresh run id, and the name of the
//! user it runs as (from systemd's `$USER`, `/etc/passwd`, or the name
//! service through `getent`, bounded by a deadline).

use std::time::Duration;

use jobctl_core::shim::ShimTrigger;
use jobctl_history::{RunId, Trigger};

use crate::env;
use crate::history_db;

/// What started the run: `--trigger`; else, under systemd
/// (`$INVOCATION_ID` set), chain when `$MONITOR_INVOCATION_ID` or
/// `$MONITOR_UNIT` is set (systemd ≥ 251 sets them for a service started by
/// another's `OnSuccess=`/`OnFailure=`), timer when `$TRIGGER_UNIT` is set
/// (systemd ≥ 250 sets it for timer-activated services), else manual
/// (`jobctl run`, `systemctl start`); outside systemd, shell.
pub fn trigger(flag: Option<ShimTrigger>) -> Trigger {
    match flag {
        Some(ShimTrigger::Timer) => Trigger::Timer,
        Some(ShimTrigger::Manual) => Trigger::Manual,
        Some(ShimTrigger::Shell) => Trigger::Shell,
        None if env::var_os(env::INVOCATION_ID).is_none() => Trigger::Shell,
        None if env::var_os(env::MONITOR_INVOCATION_ID).is_some()
            || env::var_os(env::MONITOR_UNIT).is_some() =>
        {
            Trigger::Chain
        }
        None if env::var_os(env::TRIGGER_UNIT).is_some() => Trigger::Timer,
        None => Trigger::Manual,
    }
}

/// The invocation id of the unit whose end started this run
/// (`$MONITOR_INVOCATION_ID`), for a run with trigger `chain`; only in
/// systemd's form (32 hex digits), like every invocation id jobctl keeps.
pub fn upstream_invocation(trigger: Trigger) -> Option<String> {
    if trigger != Trigger::Chain {
        return None;
    }
    let id = env::var_os(env::MONITOR_INVOCATION_ID)?;
    let id = id.to_str()?;
    jobctl_history::is_invocation_id(id).then(|| id.to_string())
}

/// A fresh random run id; falls back to time and pid bits if the kernel's
/// random source fails (it does not, in practice).
pub fn new_run_id() -> RunId {
    let bits = getrandom::u64().unwrap_or_else(|_| {
        (history_db::now_us() as u64).rotate_left(17) ^ u64::from(std::process::id())
    });
    RunId::from_random(bits)
}

/// The user's name, resolved now (a `DynamicUser=` name exists only while
/// its unit runs). systemd sets `$USER` for services with `User=` or
/// `DynamicUser=`, which saves a name-service lookup on the hot path; uid 0
/// is root. Otherwise `/etc/passwd`, then the name service through
/// `getent(1)`, else the uid as text. (The record also keeps the uid, which
/// is authoritative.)
pub fn user_name(uid: u32) -> String {
    if env::var_os(env::INVOCATION_ID).is_some()
        && let Some(name) = env::var_os(env::USER)
    {
        return name.to_string_lossy().into_owned();
    }
    user_name_of(uid).unwrap_or_else(|| uid.to_string())
}

/// The name of `uid`: root, else `/etc/passwd`, else the name service
/// (`getent`); `None` when it has no name.
pub(crate) fn user_name_of(uid: u32) -> Option<String> {
    if uid == 0 {
        return Some("root".to_string());
    }
    std::fs::read("/etc/passwd")
        .ok()
        .and_then(|passwd| passwd_name(&passwd, uid))
        .or_else(|| name_service_user(uid, NAME_SERVICE_DEADLINE))
}

/// The name of `uid` in the contents of a `passwd(5)` file.
fn passwd_name(passwd: &[u8], uid: u32) -> Option<String> {
    passwd.split(|b| *b == b'\n').find_map(|line| {
        // Comments and NIS compat entries (`+`, `-`) name nobody.
        if line
            .first()
            .is_some_and(|b| matches!(b, b'#' | b'+' | b'-'))
        {
            return None;
        }
        let mut fields = line.split(|b| *b == b':');
        let name = fields.next()?;
        let entry_uid = fields.nth(1)?;
        (!name.is_empty() && std::str::from_utf8(entry_uid).ok()?.parse::<u32>().ok()? == uid)
            .then(|| String::from_utf8_lossy(name).into_owned())
    })
}

/// How long the shim waits for the name service before it records the uid
/// as the name (an unreachable LDAP server must not hold the job back).
const NAME_SERVICE_DEADLINE: Duration = Duration::from_secs(2);

/// The name service (NSS: LDAP, sssd, nss-systemd, …), asked through
/// `getent passwd UID` rather than in-process: the shipped binary links glibc
/// statically, and a static glibc can load the host's NSS modules only if
/// they come from the very glibc it was built with (docs/design.md, "Static
/// linking"). A separate process also lets the shim give up after
/// `deadline`. Only users missing from /etc/passwd who run `jobctl exec`
/// outside systemd get here.
fn name_service_user(uid: u32, deadline: Duration) -> Option<String> {
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::process::{Command, Stdio};
    let mut child = Command::new("getent")
        .args(["passwd", &uid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let until = std::time::Instant::now() + deadline;
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    // One passwd line: read until end of file, each wait bounded by what is
    // left of the deadline.
    let complete = loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let timeout = nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::MAX);
        let mut fds = [nix::poll::PollFd::new(
            stdout.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) => break false,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break false,
        }
        match stdout.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) if out.len() < 64 << 10 => out.extend_from_slice(&chunk[..n]),
            Ok(_) => break false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };
    if !complete {
        let _ = child.kill();
    }
    let status = child.wait().ok()?;
    (complete && status.success())
        .then(|| passwd_name(&out, uid))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup_finds_the_uid_field() {
        let passwd = b"root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
# a comment:x:5\n\
www-data:x:33:1001:www-data:/var/www:/usr/sbin/nologin\n\
alice:x:1001:100:Alice:/home/alice:/bin/bash\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
broken-line\n\
:x:7:7::/:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(passwd_name(passwd, 1).as_deref(), Some("daemon"));
        assert_eq!(passwd_name(passwd, 5), None);
        // The uid field, not the gid: 1001 is www-data's group (listed
        // first) and alice's uid; 100 is only a group; 33 is www-data.
        assert_eq!(passwd_name(passwd, 1001).as_deref(), Some("alice"));
        assert_eq!(passwd_name(passwd, 33).as_deref(), Some("www-data"));
        assert_eq!(passwd_name(passwd, 100), None);
        // Empty names do not count.
        assert_eq!(passwd_name(passwd, 7), None);
        assert_eq!(passwd_name(passwd, 1000), None);
        assert_eq!(passwd_name(b"", 0), None);
    }

    #[test]
    fn name_service_lookup_goes_through_getent() {
        assert_eq!(
            name_service_user(0, Duration::from_secs(10)).as_deref(),
            Some("root")
        );
        // A uid nobody has: getent exits 2, and the caller records the uid.
        assert_eq!(
            name_service_user(4_000_000_123, Duration::from_secs(10)),
            None
        );
    }
}
