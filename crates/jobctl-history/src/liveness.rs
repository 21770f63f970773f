//! Lost-run detection: proving that the shim which wrote a `running` row is
//! gone.
//!
//! A shim killed with SIGKILL (or a host that lost power) leaves its row
//! `running`. The row carries a [`ProcessStamp`] of the shim: the kernel's boot
//! id, the shim's pid, the pid's start time in clock ticks since boot
//! (`/proc/<pid>/stat` field 22) and the PID namespace it was counted in. A
//! reader proves the shim gone when the boot id differs (the host rebooted), or
//! no process has that pid, or the process with that pid started at another
//! time (the pid was reused). A process whose start time cannot be read is
//! taken as alive: a wrong "lost" is worse than a late one.

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use serde::Serialize;

/// What identifies a running process across pid reuse and reboots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessStamp {
    /// `/proc/sys/kernel/random/boot_id`, without dashes' meaning: compared as text.
    pub boot_id: String,
    pub pid: u32,
    /// Start time of the process in clock ticks after boot.
    pub start_ticks: u64,
    /// Inode of the PID namespace the pid belongs to (0 when unknown).
    pub pid_ns: u64,
}

impl ProcessStamp {
    /// The stamp of the calling process.
    pub fn current() -> std::io::Result<ProcessStamp> {
        let proc = Path::new("/proc");
        let pid = std::process::id();
        Ok(ProcessStamp {
            boot_id: read_boot_id(proc)?,
            pid,
            start_ticks: read_start_ticks(&proc.join("self/stat"))?,
            pid_ns: read_pid_ns(proc).unwrap_or(0),
        })
    }
}

/// What a check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Liveness {
    /// The shim still runs.
    Alive,
    /// The shim is provably gone.
    Gone,
    /// Cannot tell from here (another PID namespace or host).
    Unknown,
}

/// The reader's side of a check: this host's boot id and PID namespace, read
/// once and reused for every row.
#[derive(Clone, Debug)]
pub struct LivenessProbe {
    proc_root: PathBuf,
    boot_id: Option<String>,
    pid_ns: Option<u64>,
    hostname: Option<String>,
}

impl LivenessProbe {
    /// A probe for this host, reading `/proc`. `hostname` is this host's name
    /// (rows written under another name cannot be checked by pid).
    pub fn current(hostname: Option<String>) -> LivenessProbe {
        let proc = PathBuf::from("/proc");
        LivenessProbe {
            boot_id: read_boot_id(&proc).ok(),
            pid_ns: read_pid_ns(&proc).ok(),
            proc_root: proc,
            hostname,
        }
    }

    /// Checks the shim of a row written on `host`.
    pub fn check(&self, host: &str, stamp: &ProcessStamp) -> Liveness {
        let Some(boot_id) = &self.boot_id else {
            return Liveness::Unknown;
        };
        // Another boot: whatever ran then is over.
        if *boot_id != stamp.boot_id {
            return Liveness::Gone;
        }
        if let Some(name) = &self.hostname
            && name != host
        {
            return Liveness::Unknown;
        }
        if stamp.pid_ns != 0 && self.pid_ns.is_some_and(|ns| ns != stamp.pid_ns) {
            return Liveness::Unknown;
        }
        let Ok(pid) = i32::try_from(stamp.pid) else {
            return Liveness::Gone;
        };
        if pid <= 0 {
            return Liveness::Gone;
        }
        // kill(pid, 0) sees processes that /proc may hide (hidepid=): ESRCH is
        // the only proof of absence; EPERM means someone else's live process.
        if let Err(Errno::ESRCH) = kill(Pid::from_raw(pid), None) {
            return Liveness::Gone;
        }
        match read_start_ticks(&self.proc_root.join(pid.to_string()).join("stat")) {
            Ok(ticks) if ticks != stamp.start_ticks => Liveness::Gone,
            Ok(_) => Liveness::Alive,
            // Vanished between the two checks.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match kill(Pid::from_raw(pid), None) {
                    Err(Errno::ESRCH) => Liveness::Gone,
                    _ => Liveness::Alive,
                }
            }
            Err(_) => Liveness::Alive,
        }
    }
}

fn read_boot_id(proc: &Path) -> std::io::Result<String> {
    Ok(fs::read_to_string(proc.join("sys/kernel/random/boot_id"))?
        .trim()
        .to_string())
}

fn read_pid_ns(proc: &Path) -> std::io::Result<u64> {
    let link = fs::read_link(proc.join("self/ns/pid"))?;
    parse_ns_link(&link.to_string_lossy()).ok_or_else(|| std::io::Error::other("odd ns link"))
}

/// `pid:[4026531836]` → 4026531836.
fn parse_ns_link(text: &str) -> Option<u64> {
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

fn read_start_ticks(stat_path: &Path) -> std::io::Result<u64> {
    let text = fs::read_to_string(stat_path)?;
    parse_start_ticks(&text)
        .ok_or_else(|| std::io::Error::other(format!("cannot parse {}", stat_path.display())))
}

/// Field 22 of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are
/// counted from the last `)`.
fn parse_start_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ")" come fields 3, 4, …; field 22 is the 20th of them.
    after.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let stat =
            "1234 (a) b) (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
        assert_eq!(parse_start_ticks(stat), Some(987_654));
        assert_eq!(parse_start_ticks("garbage"), None);
        assert_eq!(parse_ns_link("pid:[4026531836]"), Some(4_026_531_836));
        assert_eq!(parse_ns_link("net:[1]"), None);
    }

    #[test]
    fn own_process_is_alive_and_others_are_not() {
        let me = ProcessStamp::current().unwrap();
        let host = "h";
        let probe = LivenessProbe::current(Some(host.to_string()));
        assert_eq!(probe.check(host, &me), Liveness::Alive);

        let reused = ProcessStamp {
            start_ticks: me.start_ticks + 1,
            ..me.clone()
        };
        assert_eq!(probe.check(host, &reused), Liveness::Gone);

        let rebooted = ProcessStamp {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..me.clone()
        };
        assert_eq!(probe.check(host, &rebooted), Liveness::Gone);

        let other_ns = ProcessStamp {
            pid_ns: me.pid_ns.wrapping_add(1).max(1),
            ..me.clone()
        };
        assert_eq!(probe.check(host, &other_ns), Liveness::Unknown);
        assert_eq!(probe.check("elsewhere", &me), Liveness::Unknown);
    }

    #[test]
    fn exited_process_is_gone() {
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        let ticks = read_start_ticks(Path::new(&format!("/proc/{pid}/stat"))).unwrap();
        child.wait().unwrap();
        let me = ProcessStamp::current().unwrap();
        let stamp = ProcessStamp {
            pid,
            start_ticks: ticks,
            ..me
        };
        let probe = LivenessProbe::current(None);
        assert_eq!(probe.check("any", &stamp), Liveness::Gone);
    }
}
