//! This host's name and clock, as run records and liveness checks use them.

/// This host's name, for run records and liveness checks.
pub fn hostname() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
}

/// Microseconds since the Unix epoch (the history's unit of time).
pub fn now_us() -> i64 {
    system_time_us(std::time::SystemTime::now())
}

/// A [`std::time::SystemTime`] in microseconds since the Unix epoch.
pub fn system_time_us(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    }
}
