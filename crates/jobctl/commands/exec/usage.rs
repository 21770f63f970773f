//! What a run's command cost: CPU time, peak memory, bytes read and written
//! (docs/design.md, "What a run cost").
//!
//! Under systemd, from the job's unit cgroup (cgroup v2 `cpu.stat`,
//! `memory.peak`, `io.stat`): every process of the run, including what the
//! command left running or did not wait for, minus the shim's own share.
//! Otherwise, and for each figure the cgroup does not offer (a hierarchy
//! without the memory or io controller), from `wait4`'s rusage of the
//! command, which costs nothing beyond the wait. The record says which
//! ([`jobctl_history::UsageSource`]).
//!
//! The cgroup's files are read only when the shim runs under systemd in
//! the job's own service (`$INVOCATION_ID` set, and its cgroup is
//! `…/<prefix><job>.service`): a few `open`s and reads before the command
//! starts and a few reads after it ends.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use jobctl_exec::ChildUsage;
use jobctl_history::{Source, Usage, UsageSource};

use crate::env;

/// The cgroup v2 mount points tried, in order: a pure v2 host, then a
/// hybrid one (v1 controllers, v2 for systemd's own tracking).
const CGROUP_ROOTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];

/// Counters read before the command starts, to be compared at its end.
pub struct Meter {
    cgroup: Option<CgroupFiles>,
    shim_before: ShimUsage,
}

/// The job's cgroup files and what they said before the command started.
struct CgroupFiles {
    cpu_stat: File,
    cpu_before: CpuStat,
    /// `memory.peak`, reset for this descriptor when the kernel allows it
    /// (≥ 6.12, and a writable file), and `memory.current` then.
    memory: Option<(File, u64)>,
    io: Option<(File, IoStat)>,
}

#[derive(Clone, Copy, Default)]
struct CpuStat {
    user_us: u64,
    system_us: u64,
}

#[derive(Clone, Copy, Default)]
struct IoStat {
    read_bytes: u64,
    written_bytes: u64,
}

/// The shim's own usage (`getrusage(RUSAGE_SELF)`), which the cgroup's
/// figures include and the command's must not.
#[derive(Clone, Copy, Default)]
struct ShimUsage {
    user_us: u64,
    system_us: u64,
    read_bytes: u64,
    written_bytes: u64,
}

impl Meter {
    /// Reads the counters, right before `job`'s command starts.
    pub fn start(job: &str) -> Meter {
        let cgroup = env::var_os(env::INVOCATION_ID)
            .is_some()
            .then(|| CgroupFiles::open(job))
            .flatten();
        Meter {
            shim_before: if cgroup.is_some() {
                ShimUsage::now()
            } else {
                ShimUsage::default()
            },
            cgroup,
        }
    }

    /// What the command cost, given wait4's rusage of it (`None` when no
    /// process was started: then nothing is recorded).
    pub fn finish(self, child: Option<ChildUsage>) -> Option<Usage> {
        let shim = if self.cgroup.is_some() {
            ShimUsage::now()
        } else {
            ShimUsage::default()
        };
        self.finish_with(child, shim)
    }

    /// [`Meter::finish`], given the shim's own usage now.
    fn finish_with(self, child: Option<ChildUsage>, shim: ShimUsage) -> Option<Usage> {
        let child = child?;
        let mut usage = Usage {
            cpu_user_us: child.user_us,
            cpu_system_us: child.system_us,
            memory_peak_bytes: child.max_rss_bytes,
            read_bytes: child.read_bytes,
            written_bytes: child.written_bytes,
            source: UsageSource::all(Source::Rusage),
        };
        let Some(cgroup) = self.cgroup else {
            return Some(usage);
        };
        let shim_user = shim.user_us.saturating_sub(self.shim_before.user_us);
        let shim_system = shim.system_us.saturating_sub(self.shim_before.system_us);
        if let Some(cpu) = read_cpu_stat(&cgroup.cpu_stat) {
            usage.cpu_user_us = cpu
                .user_us
                .saturating_sub(cgroup.cpu_before.user_us)
                .saturating_sub(shim_user);
            usage.cpu_system_us = cpu
                .system_us
                .saturating_sub(cgroup.cpu_before.system_us)
                .saturating_sub(shim_system);
            usage.source.cpu = Source::Cgroup;
        }
        if let Some((peak_file, current_before)) = &cgroup.memory
            && let Some(peak) = read_number(peak_file)
        {
            usage.memory_peak_bytes = peak.saturating_sub(*current_before);
            usage.source.memory = Source::Cgroup;
        }
        if let Some((io_file, before)) = &cgroup.io
            && let Some(io) = read_io_stat(io_file)
        {
            let shim_read = shim.read_bytes.saturating_sub(self.shim_before.read_bytes);
            let shim_written = shim
                .written_bytes
                .saturating_sub(self.shim_before.written_bytes);
            usage.read_bytes = io
                .read_bytes
                .saturating_sub(before.read_bytes)
                .saturating_sub(shim_read);
            usage.written_bytes = io
                .written_bytes
                .saturating_sub(before.written_bytes)
                .saturating_sub(shim_written);
            usage.source.io = Source::Cgroup;
        }
        Some(usage)
    }
}

impl CgroupFiles {
    /// The job's own cgroup, when the shim runs in it (its cgroup v2 path
    /// ends in `<job>.service`) and it has the CPU counters.
    fn open(job: &str) -> Option<CgroupFiles> {
        let pure = own_cgroup(job)?;
        // A pure cgroup v2 host first; then a hybrid one (the path is the
        // same below the unified mount). A v1 folder of that path would
        // have no `user_usec` in its cpu.stat, and is passed over.
        CgroupFiles::open_dir(&pure).or_else(|| {
            let relative = pure.strip_prefix(CGROUP_ROOTS[0]).ok()?;
            CgroupFiles::open_dir(&std::path::Path::new(CGROUP_ROOTS[1]).join(relative))
        })
    }

    /// The files of the cgroup at `dir`, read now.
    fn open_dir(dir: &std::path::Path) -> Option<CgroupFiles> {
        let cpu_stat = File::open(dir.join("cpu.stat")).ok()?;
        let cpu_before = read_cpu_stat(&cpu_stat)?;
        // Reading `memory.current` after the reset: the baseline the peak
        // is measured from is the shim's own, as the command starts.
        let memory = open_peak(dir).and_then(|peak| {
            let current = File::open(dir.join("memory.current")).ok()?;
            Some((peak, read_number(&current)?))
        });
        let io = File::open(dir.join("io.stat"))
            .ok()
            .and_then(|file| read_io_stat(&file).map(|stat| (file, stat)));
        Some(CgroupFiles {
            cpu_stat,
            cpu_before,
            memory,
            io,
        })
    }
}

/// The folder of the shim's cgroup v2, if it is `job`'s service.
fn own_cgroup(job: &str) -> Option<PathBuf> {
    // One read into a page: a short file, read without the probing reads
    // of read_to_string.
    let text = read_file(&File::open("/proc/self/cgroup").ok()?)?;
    let path = text.lines().find_map(|line| line.strip_prefix("0::"))?;
    let unit = path.rsplit('/').next()?;
    let stem = unit.strip_suffix(".service")?;
    if !stem.ends_with(job) || path.contains("/../") {
        return None;
    }
    Some(PathBuf::from(format!("{}{path}", CGROUP_ROOTS[0])))
}

/// `memory.peak`, reset to the current usage for this descriptor where the
/// kernel supports it (6.12 and later: a write to the file); where it does
/// not, the peak counts from the unit's start, which for the first attempt
/// is the same.
fn open_peak(dir: &std::path::Path) -> Option<File> {
    let path = dir.join("memory.peak");
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(mut file) => {
            let _ = file.write_all(b"reset\n");
            Some(file)
        }
        // No such file: no memory controller (no second try).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(_) => File::open(&path).ok(),
    }
}

/// Reads a whole cgroup file from its start (the kernel regenerates it).
fn read_file(file: &File) -> Option<String> {
    let mut buf = [0u8; 4096];
    let n = file.read_at(&mut buf, 0).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

fn read_number(file: &File) -> Option<u64> {
    read_file(file)?.trim().parse().ok()
}

fn read_cpu_stat(file: &File) -> Option<CpuStat> {
    parse_cpu_stat(&read_file(file)?)
}

fn read_io_stat(file: &File) -> Option<IoStat> {
    Some(parse_io_stat(&read_file(file)?))
}

/// `cpu.stat`'s `user_usec` and `system_usec` (always there in cgroup v2,
/// with or without the cpu controller).
fn parse_cpu_stat(text: &str) -> Option<CpuStat> {
    let mut user = None;
    let mut system = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("user_usec", v)) => user = v.trim().parse().ok(),
            Some(("system_usec", v)) => system = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some(CpuStat {
        user_us: user?,
        system_us: system?,
    })
}

/// `io.stat`'s `rbytes` and `wbytes`, summed over its devices.
fn parse_io_stat(text: &str) -> IoStat {
    let mut stat = IoStat::default();
    for word in text.split_whitespace() {
        if let Some(v) = word.strip_prefix("rbytes=") {
            stat.read_bytes = stat.read_bytes.saturating_add(v.parse().unwrap_or(0));
        } else if let Some(v) = word.strip_prefix("wbytes=") {
            stat.written_bytes = stat.written_bytes.saturating_add(v.parse().unwrap_or(0));
        }
    }
    stat
}

impl ShimUsage {
    fn now() -> ShimUsage {
        use nix::sys::resource::{UsageWho, getrusage};
        let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) else {
            return ShimUsage::default();
        };
        let us = |t: nix::sys::time::TimeVal| {
            (t.tv_sec().max(0) as u64)
                .saturating_mul(1_000_000)
                .saturating_add(t.tv_usec().max(0) as u64)
        };
        ShimUsage {
            user_us: us(u.user_time()),
            system_us: us(u.system_time()),
            read_bytes: (u.block_reads().max(0) as u64).saturating_mul(512),
            written_bytes: (u.block_writes().max(0) as u64).saturating_mul(512),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_stat_needs_both_times() {
        let stat = parse_cpu_stat(
            "usage_usec 1520\nuser_usec 1000\nsystem_usec 520\nnr_periods 0\n\
             core_sched.force_idle_usec 0\n",
        )
        .unwrap();
        assert_eq!((stat.user_us, stat.system_us), (1000, 520));
        // A cgroup v1 cpu controller's cpu.stat has neither.
        assert!(parse_cpu_stat("nr_periods 0\nnr_throttled 0\nthrottled_time 0\n").is_none());
    }

    #[test]
    fn io_stat_sums_devices() {
        let stat = parse_io_stat(
            "8:0 rbytes=4096 wbytes=1048576 rios=1 wios=2 dbytes=0 dios=0\n\
             253:1 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        );
        assert_eq!((stat.read_bytes, stat.written_bytes), (4608, 1_048_576));
        let empty = parse_io_stat("");
        assert_eq!((empty.read_bytes, empty.written_bytes), (0, 0));
    }

    /// The cgroup's figures, less the shim's own share, and rusage's for
    /// what the cgroup lacks; on files standing in for a cgroup's.
    #[test]
    fn cgroup_figures_are_the_change_less_the_shims_share() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "cpu.stat",
            "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\n",
        );
        write("memory.peak", "9000000\n");
        write("memory.current", "4000000\n");
        write(
            "io.stat",
            "8:0 rbytes=100 wbytes=1000 rios=1 wios=1 dbytes=0 dios=0\n",
        );
        let files = CgroupFiles::open_dir(dir.path()).unwrap();
        let meter = Meter {
            cgroup: Some(files),
            shim_before: ShimUsage {
                user_us: 500,
                system_us: 100,
                read_bytes: 0,
                written_bytes: 4096,
            },
        };
        // The command ran: the counters moved (the same descriptors read
        // them again from the start).
        write(
            "cpu.stat",
            "usage_usec 1103000\nuser_usec 1002000\nsystem_usec 101000\n",
        );
        write("memory.peak", "214000000\n");
        write(
            "io.stat",
            "8:0 rbytes=100 wbytes=20001000 rios=1 wios=9 dbytes=0 dios=0\n\
             8:16 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        );
        let child = ChildUsage {
            user_us: 990_000,
            system_us: 90_000,
            max_rss_bytes: 200 << 20,
            read_bytes: 0,
            written_bytes: 20 << 20,
        };
        let shim_after = ShimUsage {
            user_us: 2_500,
            system_us: 1_100,
            read_bytes: 0,
            written_bytes: 12_288,
        };
        let usage = meter.finish_with(Some(child), shim_after).unwrap();
        assert_eq!(
            (usage.cpu_user_us, usage.cpu_system_us),
            (1_000_000 - 2_000, 100_000 - 1_000)
        );
        // The peak above what was in use as the command started.
        assert_eq!(usage.memory_peak_bytes, 210_000_000);
        assert_eq!(
            (usage.read_bytes, usage.written_bytes),
            (4096, 20_000_000 - 8192)
        );
        assert_eq!(usage.source, UsageSource::all(Source::Cgroup));

        // A cgroup without the memory and io controllers: those from rusage.
        std::fs::remove_file(dir.path().join("memory.peak")).unwrap();
        std::fs::remove_file(dir.path().join("io.stat")).unwrap();
        let meter = Meter {
            cgroup: CgroupFiles::open_dir(dir.path()),
            shim_before: ShimUsage::default(),
        };
        let usage = meter
            .finish_with(Some(child), ShimUsage::default())
            .unwrap();
        assert_eq!(usage.memory_peak_bytes, 200 << 20);
        assert_eq!(usage.written_bytes, 20 << 20);
        assert_eq!(
            usage.source,
            UsageSource {
                cpu: Source::Cgroup,
                memory: Source::Rusage,
                io: Source::Rusage
            }
        );
        // No cpu.stat worth the name: no cgroup at all.
        write("cpu.stat", "nr_periods 0\n");
        assert!(CgroupFiles::open_dir(dir.path()).is_none());
    }

    #[test]
    fn without_a_cgroup_the_figures_are_rusage() {
        let meter = Meter {
            cgroup: None,
            shim_before: ShimUsage::default(),
        };
        let child = ChildUsage {
            user_us: 5,
            system_us: 6,
            max_rss_bytes: 7,
            read_bytes: 8,
            written_bytes: 9,
        };
        let usage = meter.finish(Some(child)).unwrap();
        assert_eq!(
            (
                usage.cpu_user_us,
                usage.cpu_system_us,
                usage.memory_peak_bytes,
                usage.read_bytes,
                usage.written_bytes
            ),
            (5, 6, 7, 8, 9)
        );
        assert_eq!(usage.source, UsageSource::all(Source::Rusage));
        let meter = Meter {
            cgroup: None,
            shim_before: ShimUsage::default(),
        };
        assert_eq!(meter.finish(None), None);
    }
}
