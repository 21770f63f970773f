//! Differential test of the cron translation: for a systematic list
//! (tests/fixtures/cron/systematic.txt) and a seeded random corpus of cron
//! lines, the next runs computed three ways must be identical:
//!
//! 1. the independent Vixie cron reference (tests/oracle/vixie.rs), which
//!    matches wall-clock minutes directly, with no translation;
//! 2. jobctl's engine on the translated `OnCalendar=` lines
//!    (`jobctl calendar --cron --json`);
//! 3. the real `systemd-analyze calendar` on those same translated lines.
//!
//! cron and systemd legitimately differ across DST changes (see
//! tests/cron_dst.rs and docs/schedules.md), so this compares in zones with
//! no clock changes, and in DST zones only inside one DST period (from the
//! base time to the next transition). Acceptance is compared too: jobctl
//! rejects what Vixie cron rejects, and additionally what cron accepts only
//! by ignoring part of it (trailing characters, backwards ranges).

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::oracle::rng::Rng;
use crate::oracle::{self, jobctl, systemd, vixie};
use crate::support::tool_or_skip;

/// Zones without clock changes in the compared years.
const STEADY_ZONES: &[&str] = &[
    "UTC",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Hong_Kong",
    "Africa/Nairobi",
];
/// Zones compared within one DST period.
const DST_ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Europe/Berlin",
];

const RUNS: usize = 6;

fn systematic() -> Vec<String> {
    oracle::corpus(include_str!("fixtures/cron/systematic.txt"))
}

// ---------------------------------------------------------------- generator

fn value(rng: &mut Rng, lo: i64, hi: i64, names: &[&str]) -> String {
    if !names.is_empty() && rng.chance(30) {
        let name = rng.pick(names).to_string();
        return match rng.range(0, 2) {
            0 => name.to_uppercase(),
            1 => name.to_lowercase(),
            _ => name,
        };
    }
    let v = if rng.chance(4) {
        rng.range(hi + 1, hi + 3)
    } else {
        rng.range(lo, hi)
    };
    if rng.chance(10) && v < 10 {
        format!("0{v}")
    } else {
        v.to_string()
    }
}

fn element(rng: &mut Rng, lo: i64, hi: i64, names: &[&str]) -> String {
    match rng.range(0, 9) {
        0..=3 => value(rng, lo, hi, names),
        4..=5 => {
            let (a, b) = (rng.range(lo, hi), rng.range(lo, hi));
            let (a, b) = if rng.chance(92) {
                (a.min(b), a.max(b))
            } else {
                (a.max(b), a.min(b))
            };
            format!("{a}-{b}")
        }
        6..=7 => format!(
            "*/{}",
            if rng.chance(3) {
                0
            } else {
                rng.range(1, (hi - lo).max(2))
            }
        ),
        _ => {
            let (a, b) = (rng.range(lo, hi), rng.range(lo, hi));
            format!(
                "{}-{}/{}",
                a.min(b),
                a.max(b),
                rng.range(1, (hi - lo).max(2))
            )
        }
    }
}

fn field(rng: &mut Rng, lo: i64, hi: i64, names: &[&str], star_percent: u64) -> String {
    rng.star_or_list(star_percent, 70, |rng| element(rng, lo, hi, names))
}

fn cron_line(rng: &mut Rng) -> String {
    const MONTHS: &[&str] = &[
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAYS: &[&str] = &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    if rng.chance(3) {
        return rng
            .pick(&[
                "@hourly",
                "@daily",
                "@weekly",
                "@monthly",
                "@yearly",
                "@annually",
                "@midnight",
                "@reboot",
                "@Daily",
                "@every",
            ])
            .to_string();
    }
    let mut fields = vec![
        field(rng, 0, 59, &[], 30),
        field(rng, 0, 23, &[], 35),
        field(rng, 1, 31, &[], 55),
        field(rng, 1, 12, MONTHS, 70),
        field(rng, 0, 7, DAYS, 55),
    ];
    // Occasionally something cron rejects or only tolerates.
    if rng.chance(10) {
        let i = rng.range(0, 4) as usize;
        let junk = *rng.pick(&[
            "x", ";", ",", "-", "/", "L", "W", "#2", "?", "5/10", "*5", "1,,2",
        ]);
        match rng.range(0, 2) {
            0 => fields[i].push_str(junk),
            1 => fields[i] = junk.to_string(),
            _ => {
                if rng.chance(50) {
                    fields.insert(0, "0".to_string());
                } else {
                    fields.pop();
                }
            }
        }
    }
    fields.join(if rng.chance(5) { "\t" } else { " " })
}

// --------------------------------------------------------------- comparison

/// A base time and the end of the window in which nothing changes the
/// clock in `zone`.
fn window(rng: &mut Rng, zone: &str) -> (Timestamp, Timestamp) {
    let tz = TimeZone::get(zone).expect("zone");
    if STEADY_ZONES.contains(&zone) {
        let base =
            Timestamp::from_second(rng.range(1_577_836_800, 2_050_000_000)).expect("in range");
        let end = base
            .checked_add(jiff::SignedDuration::from_hours(24 * 366 * 4))
            .expect("in range");
        return (base, end);
    }
    // A random time, moved to just after the next transition, so the window
    // is one whole DST (or standard) period.
    let t = Timestamp::from_second(rng.range(1_577_836_800, 2_050_000_000)).expect("in range");
    let start = tz.following(t).next().expect("a transition").timestamp();
    let base = start
        .checked_add(jiff::SignedDuration::from_secs(rng.range(60, 86_400 * 20)))
        .expect("in range");
    let end = tz.following(base).next().expect("a transition").timestamp();
    (base, end)
}

#[derive(Default)]
struct Report {
    lines: usize,
    compared: usize,
    runs: usize,
    mismatches: Vec<String>,
}

fn compare_batch(
    report: &mut Report,
    zone: &str,
    base: Timestamp,
    end: Timestamp,
    lines: &[String],
) {
    let tz = TimeZone::get(zone).expect("zone");
    let base_arg = format!("@{}", base.as_second());
    let results = jobctl::calendar(zone, &base_arg, RUNS as u32, lines, true);

    // All translated lines go to systemd-analyze in one call.
    let mut translated: Vec<String> = Vec::new();
    for r in &results {
        for line in r["on_calendar"].as_array().into_iter().flatten() {
            translated.push(line.as_str().unwrap_or_default().to_string());
        }
    }
    let oracle = if tool_or_skip(
        systemd::SYSTEMD_ANALYZE,
        "the oracle for translated cron lines",
    ) {
        Some(systemd::calendar(zone, &base_arg, RUNS as u32, &translated))
    } else {
        None
    };
    let mut next_translated = 0;

    for (line, r) in lines.iter().zip(&results) {
        report.lines += 1;
        let reference = vixie::parse(line);
        let accepted = r["valid"] == true;
        let on_calendar: Vec<String> = r["on_calendar"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let systemd_outcomes = oracle
            .as_ref()
            .map(|o| o[next_translated..next_translated + on_calendar.len()].to_vec());
        next_translated += on_calendar.len();

        let fail = |report: &mut Report, what: String| {
            report
                .mismatches
                .push(format!("TZ={zone} base={base} {line:?}: {what}"));
        };
        let expect_accept = reference.as_ref().is_some_and(|e| !e.lenient);
        if accepted != expect_accept {
            fail(
                report,
                format!(
                    "jobctl accepted={accepted}, Vixie cron {}",
                    match &reference {
                        None => "rejects it".to_string(),
                        Some(e) if e.lenient =>
                            "accepts it only by ignoring part of it".to_string(),
                        Some(_) => "accepts it".to_string(),
                    }
                ),
            );
            continue;
        }
        let Some(entry) = reference.filter(|_| accepted) else {
            continue;
        };
        if entry.reboot {
            if r["on_boot"] != true || !on_calendar.is_empty() {
                fail(report, format!("@reboot translated to {r}"));
            }
            continue;
        }
        report.compared += 1;

        let days = (end.as_second() - base.as_second()) / 86_400 + 2;
        let want: Vec<i64> = vixie::Entry::next_matches(&entry, &tz, base, RUNS, days)
            .into_iter()
            .map(|t| t.as_second())
            .filter(|&t| t < end.as_second())
            .collect();
        let engine: Vec<i64> = r["next_elapses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["usec"].as_i64().unwrap_or(0) / 1_000_000)
            .filter(|&t| t < end.as_second())
            .collect();
        report.runs += want.len();
        if engine != want {
            fail(
                report,
                format!(
                    "translated to {on_calendar:?}\n    cron:   {want:?}\n    jobctl: {engine:?}"
                ),
            );
            continue;
        }
        if let Some(outcomes) = systemd_outcomes {
            let mut union = BTreeSet::new();
            for o in &outcomes {
                match o {
                    systemd::Outcome::Accepted { elapses, .. } => {
                        union.extend(elapses.iter().copied())
                    }
                    other => fail(
                        report,
                        format!("systemd says {other:?} for a translated line of {on_calendar:?}"),
                    ),
                }
            }
            let sd: Vec<i64> = union
                .into_iter()
                .take(RUNS)
                .filter(|&t| t < end.as_second())
                .collect();
            if sd != want {
                fail(
                    report,
                    format!(
                        "translated to {on_calendar:?}\n    cron:    {want:?}\n    systemd: {sd:?}"
                    ),
                );
            }
        }
    }
}

fn finish(report: Report, what: &str) {
    eprintln!(
        "{what}: {} lines, {} schedules compared over {} runs, {} mismatches",
        report.lines,
        report.compared,
        report.runs,
        report.mismatches.len()
    );
    assert!(
        report.mismatches.is_empty(),
        "{} mismatches:\n{}",
        report.mismatches.len(),
        report
            .mismatches
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn systematic_cron_lines_match_cron_and_systemd() {
    let lines = systematic();
    assert!(lines.len() > 80);
    let mut rng = Rng::new(oracle::seed(0xc0_0c));
    let mut report = Report::default();
    for zone in STEADY_ZONES.iter().chain(DST_ZONES) {
        for _ in 0..2 {
            let (base, end) = window(&mut rng, zone);
            compare_batch(&mut report, zone, base, end, &lines);
        }
    }
    finish(report, "systematic cron");
}

#[test]
fn random_cron_lines_match_cron_and_systemd() {
    let mut rng = Rng::new(oracle::seed(0x7ab1e));
    let mut report = Report::default();
    for _ in 0..6 * oracle::scale() {
        for zone in STEADY_ZONES.iter().chain(DST_ZONES) {
            let (base, end) = window(&mut rng, zone);
            let lines: Vec<String> = (0..60).map(|_| cron_line(&mut rng)).collect();
            compare_batch(&mut report, zone, base, end, &lines);
        }
    }
    assert!(report.lines >= 3000);
    finish(report, "random cron");
}
