//! The values in tables and reports: times, durations, a run's result and
//! exit, signal names. Times are shown in the zone passed in (the host's,
//! [`crate::zones::local_zone`], when a command prints them).

use jiff::tz::TimeZone;
use jobctl_history::{RunRecord, Source, Status, Usage};

/// A time as the operator reads it: in `zone`, to the second, with the
/// zone's abbreviation as `health` and systemd show it
/// (`2026-11-23 02:15:04 CET`).
pub fn local_time(us: i64, zone: &TimeZone) -> String {
    let Ok(ts) = jiff::Timestamp::from_microsecond(us) else {
        return us.to_string();
    };
    ts.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// Whether systemd means "never" by a timestamp: 0, or `USEC_INFINITY`.
fn never(usec: u64) -> bool {
    usec == 0 || usec == u64::MAX
}

/// A timer's next elapse (µs since the epoch) as [`local_time`], or `-`
/// for none.
pub fn next_elapse(usec: u64, zone: &TimeZone) -> String {
    if never(usec) {
        "-".into()
    } else {
        local_time(usec as i64, zone)
    }
}

/// A systemd timestamp (µs since the epoch) in `zone`, with the zone's
/// abbreviation (`2026-11-23 02:15:04 CET`), or `-` for never.
pub fn systemd_time(usec: u64, zone: &TimeZone) -> String {
    if never(usec) {
        return "-".to_string();
    }
    let Ok(ts) = jiff::Timestamp::from_microsecond(usec as i64) else {
        return "-".to_string();
    };
    ts.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// RFC 3339 in UTC with microseconds, for JSON and the journal.
pub fn json_time(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| format!("{t:.6}"))
        .unwrap_or_else(|_| us.to_string())
}

/// A systemd timestamp as RFC 3339 for JSON (`None` for never).
pub fn json_elapse(usec: u64) -> Option<String> {
    (!never(usec))
        .then(|| jiff::Timestamp::from_microsecond(usec as i64).ok())
        .flatten()
        .map(|t| t.to_string())
}

/// A duration for tables: `850ms`, `12.3s`, `4min 05s`, `2h 10min`.
pub fn duration(us: i64) -> String {
    let us = us.max(0);
    if us < 1_000_000 {
        return format!("{}ms", us / 1_000);
    }
    let secs = us / 1_000_000;
    if secs < 60 {
        return format!("{:.1}s", us as f64 / 1e6);
    }
    if secs < 3_600 {
        return format!("{}min {:02}s", secs / 60, secs % 60);
    }
    format!("{}h {:02}min", secs / 3_600, (secs % 3_600) / 60)
}

/// `1 job`, `2 jobs`: a count with the word for one or for many.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// CPU time: `850ms`, `1.02s`, then as [`duration`] from 100 s on.
pub fn cpu_time(us: u64) -> String {
    let us = i64::try_from(us).unwrap_or(i64::MAX);
    if (1_000_000..100_000_000).contains(&us) {
        return format!("{:.2}s", us as f64 / 1e6);
    }
    duration(us)
}

/// A size in bytes as people read it: `512 B`, `4.0 KiB`, `200.0 MiB`,
/// `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A run's cost in one line: `CPU 1.02s (user 1.00s, system 20ms), peak
/// memory 200.0 MiB, read 0 B, written 20.0 MiB (cgroup)`, the source
/// per figure when they differ (`cgroup: CPU; rusage: memory, I/O`).
pub fn usage(u: &Usage) -> String {
    let source = u.source;
    let sources = if source.cpu == source.memory && source.memory == source.io {
        source.cpu.to_string()
    } else {
        let of = |wanted: Source| {
            [
                ("CPU", source.cpu),
                ("memory", source.memory),
                ("I/O", source.io),
            ]
            .iter()
            .filter(|(_, s)| *s == wanted)
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
        };
        format!(
            "cgroup: {}; rusage: {}",
            of(Source::Cgroup),
            of(Source::Rusage)
        )
    };
    format!(
        "CPU {} (user {}, system {}), peak memory {}, read {}, written {} ({sources})",
        cpu_time(u.cpu_us()),
        cpu_time(u.cpu_user_us),
        cpu_time(u.cpu_system_us),
        bytes(u.memory_peak_bytes),
        bytes(u.read_bytes),
        bytes(u.written_bytes),
    )
}

/// A signal's name (`SIGTERM`), or its number.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// A run's result: its status, with the exit status or signal that explains
/// it (`failed 3`, `timeout SIGTERM`).
pub fn result(run: &RunRecord) -> String {
    match (run.status, run.exit_code, run.signal) {
        (Status::Failed | Status::Error, Some(code), _) => format!("{} {code}", run.status),
        (Status::Killed | Status::Timeout, _, Some(sig)) => {
            format!("{} {}", run.status, signal_name(sig))
        }
        (status, _, _) => status.to_string(),
    }
}

/// How long a run took, or has run so far (`-` for a run that neither
/// ended nor runs: lost, expired).
pub fn run_duration(run: &RunRecord, now_us: i64) -> String {
    match run.ended_us {
        Some(end) => duration(end - run.started_us),
        None if run.status == Status::Running => {
            format!("{} so far", duration(now_us - run.started_us))
        }
        None => "-".into(),
    }
}

/// A run's exit: the exit code, the signal's name, or `-`.
pub fn exit(run: &RunRecord) -> String {
    match (run.exit_code, run.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(sig)) => signal_name(sig),
        (None, None) => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(850_000), "850ms");
        assert_eq!(duration(12_340_000), "12.3s");
        assert_eq!(duration(245_000_000), "4min 05s");
        assert_eq!(duration(7_800_000_000), "2h 10min");
        assert_eq!(cpu_time(850_000), "850ms");
        assert_eq!(cpu_time(1_020_000), "1.02s");
        assert_eq!(cpu_time(245_000_000), "4min 05s");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(4096), "4.0 KiB");
        assert_eq!(bytes(200 << 20), "200.0 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn never_is_not_a_time() {
        let utc = TimeZone::UTC;
        assert_eq!(systemd_time(0, &utc), "-");
        assert_eq!(systemd_time(u64::MAX, &utc), "-");
        assert_eq!(next_elapse(0, &utc), "-");
        assert_eq!(next_elapse(u64::MAX, &utc), "-");
        assert_eq!(json_elapse(u64::MAX), None);
        assert_eq!(
            json_elapse(1_000_000).as_deref(),
            Some("1970-01-01T00:00:01Z")
        );
    }
}
