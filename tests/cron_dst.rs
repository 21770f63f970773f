//! Where cron and systemd legitimately differ: daylight saving time. Vixie
//! cron (simulated by tests/oracle/vixie.rs from cron.c's main loop) and
//! systemd (jobctl's engine on the translated lines, which the calendar
//! oracle tests hold equal to systemd) handle clock changes differently,
//! and no translation can change that. These cases pin both behaviours so
//! docs/schedules.md states them correctly:
//!
//! - spring forward: cron runs fixed-time jobs whose time was skipped right
//!   after the jump; systemd does not run them that day;
//! - fall back: cron runs jobs with `*` in the minute or hour field again in
//!   the repeated hour; systemd fires once and skips the repeated hour;
//! - fixed-time jobs in a fall-back overlap run once in both.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::oracle::{jobctl, vixie};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339")
}

/// cron's runs between `from` and `to`, as local wall-clock strings.
fn cron_runs(zone: &str, line: &str, from: &str, to: &str) -> Vec<String> {
    let tz = TimeZone::get(zone).expect("zone");
    let entry = vixie::parse(line).expect("valid cron line");
    vixie::simulate(&entry, &tz, ts(from), ts(to))
        .into_iter()
        .map(|r| r.at.to_zoned(tz.clone()).strftime("%H:%M %Z").to_string())
        .collect()
}

/// systemd's runs (jobctl's engine on the translation) between `from` and `to`.
fn systemd_runs(zone: &str, line: &str, from: &str, to: &str) -> Vec<String> {
    let tz = TimeZone::get(zone).expect("zone");
    let base = format!("@{}", ts(from).as_second());
    let results = jobctl::calendar(zone, &base, 200, &[line.to_string()], true);
    results[0]["next_elapses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| Timestamp::from_microsecond(e["usec"].as_i64().unwrap_or(0)).expect("in range"))
        .filter(|t| *t < ts(to))
        .map(|t| t.to_zoned(tz.clone()).strftime("%H:%M %Z").to_string())
        .collect()
}

/// Checks cron's and systemd's runs of `line` in `zone` between `from` and
/// `to` (local wall-clock times).
#[track_caller]
fn assert_runs(zone: &str, line: &str, (from, to): (&str, &str), cron: &[&str], systemd: &[&str]) {
    assert_eq!(cron_runs(zone, line, from, to), cron, "cron: {line:?}");
    assert_eq!(
        systemd_runs(zone, line, from, to),
        systemd,
        "systemd: {line:?}"
    );
}

const NEW_YORK: &str = "America/New_York";
const LORD_HOWE: &str = "Australia/Lord_Howe";

#[test]
fn spring_forward_fixed_time_job() {
    // New York, 2025-03-09: 02:00 EST → 03:00 EDT. 02:30 does not exist:
    // cron runs it right after the jump, systemd skips it.
    let window = ("2025-03-09T06:00:00Z", "2025-03-09T09:00:00Z");
    assert_runs(NEW_YORK, "30 2 * * *", window, &["03:00 EDT"], &[]);
}

#[test]
fn spring_forward_wildcard_job() {
    // Wildcard jobs are not caught up by cron either: both skip the gap.
    let window = ("2025-03-09T06:40:00Z", "2025-03-09T07:20:00Z");
    let want = ["01:45 EST", "03:00 EDT", "03:15 EDT"];
    assert_runs(NEW_YORK, "*/15 * * * *", window, &want, &want);
}

#[test]
fn fall_back_fixed_time_job_runs_once_in_both() {
    // New York, 2025-11-02: 02:00 EDT → 01:00 EST; 01:30 happens twice.
    let window = ("2025-11-02T04:00:00Z", "2025-11-02T08:00:00Z");
    assert_runs(
        NEW_YORK,
        "30 1 * * *",
        window,
        &["01:30 EDT"],
        &["01:30 EDT"],
    );
}

#[test]
fn fall_back_wildcard_job() {
    // cron runs wildcard jobs again in the repeated hour; systemd skips it.
    let window = ("2025-11-02T04:50:00Z", "2025-11-02T07:20:00Z");
    assert_runs(
        NEW_YORK,
        "*/30 * * * *",
        window,
        &[
            "01:00 EDT",
            "01:30 EDT",
            "01:00 EST",
            "01:30 EST",
            "02:00 EST",
        ],
        &["01:00 EDT", "01:30 EDT", "02:00 EST"],
    );
    // `0 * * * *` is a wildcard job too (its hour field starts with `*`).
    assert_runs(
        NEW_YORK,
        "0 * * * *",
        window,
        &["01:00 EDT", "01:00 EST", "02:00 EST"],
        &["01:00 EDT", "02:00 EST"],
    );
}

#[test]
fn lord_howe_half_hour_shift() {
    // 2025-10-05 02:00 +1030 → 02:30 +11: 02:15 does not exist.
    let spring = ("2025-10-04T15:00:00Z", "2025-10-04T17:00:00Z");
    assert_runs(LORD_HOWE, "15 2 * * *", spring, &["02:30 +11"], &[]);
    // 2025-04-06 02:00 +11 → 01:30 +1030: 01:45 happens twice.
    let fall = ("2025-04-05T14:00:00Z", "2025-04-05T15:31:00Z");
    assert_runs(
        LORD_HOWE,
        "45 1 * * *",
        fall,
        &["01:45 +11"],
        &["01:45 +11"],
    );
    assert_runs(
        LORD_HOWE,
        "*/15 * * * *",
        fall,
        &[
            "01:15 +11",
            "01:30 +11",
            "01:45 +11",
            "01:30 +1030",
            "01:45 +1030",
            "02:00 +1030",
        ],
        &["01:15 +11", "01:30 +11", "01:45 +11", "02:00 +1030"],
    );
}

#[test]
fn europe_london_both_changes() {
    // 2025-03-30 01:00 GMT → 02:00 BST; 2025-10-26 02:00 BST → 01:00 GMT.
    let spring = ("2025-03-30T00:00:00Z", "2025-03-30T02:00:00Z");
    assert_runs("Europe/London", "30 1 * * *", spring, &["02:00 BST"], &[]);
    let fall = ("2025-10-25T23:50:00Z", "2025-10-26T02:10:00Z");
    assert_runs(
        "Europe/London",
        "0 * * * *",
        fall,
        &["01:00 BST", "01:00 GMT", "02:00 GMT"],
        &["01:00 BST", "02:00 GMT"],
    );
}

/// Away from clock changes the simulation of cron's main loop and the
/// direct minute matcher agree (so the oracle test's matcher is cron).
#[test]
fn simulation_matches_direct_matching_without_clock_changes() {
    let tz = TimeZone::get("Asia/Tokyo").expect("zone");
    for line in ["*/7 * * * *", "0 12 1 * Mon", "15 3 */2 * *", "0 0 * * 0"] {
        let entry = vixie::parse(line).expect("valid");
        let from = ts("2026-01-01T00:00:00Z");
        let to = ts("2026-01-20T00:00:00Z");
        let simulated: Vec<Timestamp> = vixie::simulate(&entry, &tz, from, to)
            .into_iter()
            .map(|r| r.at)
            .collect();
        let direct = entry.next_matches(&tz, from, 100_000, 20);
        let direct: Vec<Timestamp> = direct.into_iter().filter(|t| *t < to).collect();
        let first_difference = simulated.iter().zip(&direct).position(|(a, b)| a != b);
        assert!(
            simulated.len() == direct.len() && first_difference.is_none(),
            "{line}: {} simulated runs, {} matched minutes, first difference at {first_difference:?}: {:?} vs {:?}",
            simulated.len(),
            direct.len(),
            first_difference.map(|i| simulated[i]),
            first_difference.map(|i| direct[i]),
        );
        assert!(!direct.is_empty(), "{line}");
    }
}
