//! Shared helpers of the differential tests: a seeded random generator, a
//! runner for the real `systemd-analyze calendar` (the oracle), a runner for
//! `jobctl calendar --json`, and (in `vixie`) an independent cron matcher.

pub mod jobctl;
pub mod rng;
pub mod systemd;
pub mod vixie;

/// The lines of a hand-written corpus file, without comments and blank lines.
pub fn corpus(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The corpus seed: fixed, or `JOBCTL_ORACLE_SEED` to explore.
pub fn seed(default: u64) -> u64 {
    std::env::var("JOBCTL_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Corpus size multiplier: 1 in CI, `JOBCTL_ORACLE_SCALE=N` for deep runs.
pub fn scale() -> usize {
    std::env::var("JOBCTL_ORACLE_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(1)
}
