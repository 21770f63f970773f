//! Shared helpers of the differential tests: a seeded random generator, a
//! runner for the real `systemd-analyze calendar` (the oracle), a runner for
//! `jobctl calendar --json`, and (in `vixie`) an independent cron matcher.
//!
//! Not every test binary uses every helper.
#![allow(dead_code)]

pub mod jobctl;
pub mod rng;
pub mod systemd;
pub mod vixie;

use std::path::Path;

/// Whether a missing tool may skip a test: never in CI
/// (`JOBCTL_REQUIRE_ALL_TESTS=1`), with a printed reason elsewhere.
pub fn tool_available(path: &str, why: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if jobctl_sandbox::skips_are_failures() {
        panic!("{path} is required ({why}) and JOBCTL_REQUIRE_ALL_TESTS=1 (or CI=true)");
    }
    eprintln!("SKIP: {path} not found ({why}); install it with scripts/setup");
    false
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
