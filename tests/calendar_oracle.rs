//! Differential test of the calendar engine against the real
//! `systemd-analyze calendar` (systemd 252): acceptance, the normalized form
//! and the next elapses of thousands of expressions — a systematic list
//! (tests/fixtures/calendar/systematic.txt) and a seeded random corpus over
//! the whole grammar — in zones with DST gaps and overlaps, from base times
//! spread over 1970..2199 and clustered around DST transitions, leap days
//! and the end of systemd's range.
//!
//! Both sides run as processes over the same expressions: the oracle with
//! `--base-time=@EPOCH` and `TZ=zone`, jobctl as `jobctl calendar --json`
//! with the same base time and `TZ`. Set `JOBCTL_ORACLE_SEED` for another
//! random corpus and `JOBCTL_ORACLE_SCALE=N` for an N times larger one.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::oracle::rng::Rng;
use crate::oracle::{self, jobctl, systemd};
use crate::support::tool_or_skip;

/// Local zones: the four the issue names, plus zones with unusual offsets
/// or DST rules (negative DST in Dublin, 2h DST in Troll, 45-minute offsets,
/// DST abolished in São Paulo, Morocco's Ramadan changes) and changes of
/// standard offset, where an overlap has no DST flag to tell its two sides
/// apart (Almaty 2024, Volgograd 2020, Caracas 2007 and 2016).
const LOCAL_ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Hong_Kong",
    "Europe/Berlin",
    "Europe/Dublin",
    "America/Sao_Paulo",
    "Pacific/Chatham",
    "Antarctica/Troll",
    "Africa/Casablanca",
    "America/St_Johns",
    "Asia/Almaty",
    "Europe/Volgograd",
    "America/Caracas",
];

/// Zones written as an expression's suffix.
const SUFFIX_ZONES: &[&str] = &[
    "UTC",
    "Etc/UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Hong_Kong",
    "Europe/Dublin",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Pacific/Kiritimati",
    "Etc/GMT+12",
    "EST",
    "GMT",
];

const ITERATIONS: u32 = 5;

fn systematic() -> Vec<String> {
    oracle::corpus(include_str!("fixtures/calendar/systematic.txt"))
}

// ---------------------------------------------------------------- generator

fn pad(rng: &mut Rng, v: i64) -> String {
    if rng.chance(50) && (0..10).contains(&v) {
        format!("0{v}")
    } else {
        v.to_string()
    }
}

/// One list element: value, range, repetition, or range with repetition.
fn component(rng: &mut Rng, lo: i64, hi: i64, seconds: bool) -> String {
    let (a, b) = {
        let slack = if rng.chance(8) { 3 } else { 0 };
        let a = rng.range(lo - slack.min(lo), hi + slack);
        let b = rng.range(lo, hi + slack);
        if rng.chance(85) {
            (a.min(b), a.max(b))
        } else {
            (a, b)
        }
    };
    let frac = |rng: &mut Rng| -> String {
        if seconds && rng.chance(25) {
            let digits = rng.range(1, 8) as usize;
            let mut s = String::from(".");
            for _ in 0..digits {
                s.push(char::from(b'0' + rng.range(0, 9) as u8));
            }
            s
        } else {
            String::new()
        }
    };
    let step_max = ((hi - lo) / 2).max(1);
    match rng.range(0, 9) {
        0..=3 => format!("{}{}", pad(rng, a), frac(rng)),
        4..=5 => format!("{}{}..{}{}", pad(rng, a), frac(rng), pad(rng, b), frac(rng)),
        6..=7 => format!(
            "{}{}/{}{}",
            pad(rng, a),
            frac(rng),
            rng.range(0, step_max),
            frac(rng)
        ),
        _ => format!(
            "{}{}..{}{}/{}{}",
            pad(rng, a),
            frac(rng),
            pad(rng, b),
            frac(rng),
            rng.range(1, step_max),
            frac(rng)
        ),
    }
}

fn chain(rng: &mut Rng, lo: i64, hi: i64, seconds: bool, star_percent: u64) -> String {
    rng.star_or_list(star_percent, 75, |rng| component(rng, lo, hi, seconds))
}

fn year_chain(rng: &mut Rng) -> String {
    if rng.chance(55) {
        return "*".to_string();
    }
    match rng.range(0, 4) {
        0 => rng.range(0, 99).to_string(),
        1 => format!("{}..{}", rng.range(1969, 2100), rng.range(2000, 2201)),
        2 => format!("{}/{}", rng.range(1970, 2100), rng.range(1, 20)),
        _ => rng.range(1968, 2205).to_string(),
    }
}

fn weekday(rng: &mut Rng) -> String {
    const SHORT: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const LONG: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let i = rng.range(0, 6) as usize;
    let name = if rng.chance(20) { LONG[i] } else { SHORT[i] };
    match rng.range(0, 9) {
        0 => name.to_lowercase(),
        1 => name.to_uppercase(),
        _ => name.to_string(),
    }
}

fn weekdays(rng: &mut Rng) -> String {
    let n = rng.range(1, 3);
    let mut out = String::new();
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&weekday(rng));
        if rng.chance(35) {
            out.push_str(if rng.chance(80) { ".." } else { "-" });
            out.push_str(&weekday(rng));
        }
    }
    if rng.chance(4) {
        out.push(',');
    }
    out
}

/// A zone suffix. `base` is the batch's base time: glibc's `tzname[]`
/// (which systemd matches local abbreviations against) is whatever the
/// process last converted, so abbreviations are only generated where they
/// are the same for every time the batch touches (London and Dublin used
/// other names until 1971).
fn zone_suffix(rng: &mut Rng, local: &str, base: i64) -> String {
    match rng.range(0, 19) {
        0..=2 => " UTC".to_string(),
        3 => " utc".to_string(),
        4..=8 => format!(" {}", rng.pick(SUFFIX_ZONES)),
        9 => " Europe/Atlantis".to_string(),
        10 => " europe/berlin".to_string(),
        11 => {
            // The local zone's own abbreviations where glibc's tzname[] is
            // the same whatever was computed before (see docs/schedules.md).
            let stable_since_1972 = base >= 63_072_000;
            let names: &[&str] = match local {
                "America/New_York" => &["EST", "EDT", "est"],
                "Europe/Berlin" => &["CET", "CEST"],
                "Europe/London" if stable_since_1972 => &["GMT", "BST"],
                "Europe/Dublin" if stable_since_1972 => &["GMT", "IST"],
                _ => &["UTC"],
            };
            format!(" {}", rng.pick(names))
        }
        _ => String::new(),
    }
}

const SHORTHANDS: &[&str] = &[
    "minutely",
    "hourly",
    "daily",
    "monthly",
    "weekly",
    "yearly",
    "annually",
    "anually",
    "quarterly",
    "semiannually",
    "semi-annually",
    "biannually",
    "bi-annually",
    "DAILY",
    "Weekly",
    "fortnightly",
];

fn expression(rng: &mut Rng, local: &str, base: i64) -> String {
    let mut e = match rng.range(0, 99) {
        0..=5 => rng.pick(SHORTHANDS).to_string(),
        6..=8 => {
            let t = match rng.range(0, 3) {
                0 => rng.range(0, 7_258_118_400),
                1 => rng.range(7_258_118_400, 7_300_000_000),
                2 => rng.range(0, 100),
                _ => rng.range(1_600_000_000, 1_900_000_000),
            };
            format!("@{t}")
        }
        _ => {
            let mut parts = Vec::new();
            if rng.chance(30) {
                parts.push(weekdays(rng));
            }
            match rng.range(0, 9) {
                0..=2 => {}
                3..=6 => {
                    let sep = if rng.chance(12) { "~" } else { "-" };
                    parts.push(format!(
                        "{}{sep}{}",
                        chain(rng, 1, 12, false, 45),
                        chain(rng, 1, 31, false, 35)
                    ));
                }
                _ => {
                    let sep = if rng.chance(12) { "~" } else { "-" };
                    parts.push(format!(
                        "{}-{}{sep}{}",
                        year_chain(rng),
                        chain(rng, 1, 12, false, 45),
                        chain(rng, 1, 31, false, 35)
                    ));
                }
            }
            match rng.range(0, 9) {
                0..=1 => {}
                2..=5 => parts.push(format!(
                    "{}:{}",
                    chain(rng, 0, 23, false, 25),
                    chain(rng, 0, 59, false, 25)
                )),
                _ => parts.push(format!(
                    "{}:{}:{}",
                    chain(rng, 0, 23, false, 25),
                    chain(rng, 0, 59, false, 25),
                    chain(rng, 0, 59, true, 30)
                )),
            }
            if parts.is_empty() {
                parts.push("*-*-*".to_string());
            }
            parts.join(" ")
        }
    };
    e.push_str(&zone_suffix(rng, local, base));
    // Occasionally damage it, to test rejection.
    if rng.chance(6) && !e.is_empty() {
        let alphabet = b"0123456789*-~:.,/ @TL#?xMon";
        let pos = rng.range(0, e.len() as i64 - 1) as usize;
        if e.is_char_boundary(pos) {
            let c = char::from(*rng.pick(alphabet));
            match rng.range(0, 2) {
                0 => e.insert(pos, c),
                1 => {
                    e.remove(pos);
                }
                _ => {
                    e.remove(pos);
                    e.insert(pos, c);
                }
            }
        }
    }
    e
}

/// Base times for a zone: spread over the range, next to DST transitions,
/// around leap days and near the end of systemd's range.
fn base_times(rng: &mut Rng, zone: &str, count: usize, min_base: i64) -> Vec<String> {
    let tz = TimeZone::get(zone).expect("zone in jiff's database");
    // Transitions between 1970 and 2040, and the next few after a random
    // recent time (rules from the TZif footer).
    let end = Timestamp::from_second(2_208_988_800).expect("in range");
    let mut transitions: Vec<i64> = tz
        .preceding(end)
        .map(|t| t.timestamp().as_second())
        .take_while(|&t| t >= 0)
        .collect();
    let start = Timestamp::from_second(rng.range(1_600_000_000, 1_800_000_000)).expect("in range");
    transitions.extend(
        tz.following(start)
            .take(4)
            .map(|t| t.timestamp().as_second()),
    );
    let mut bases = Vec::new();
    for i in 0..count {
        let base = match i % 6 {
            0 | 1 if !transitions.is_empty() => {
                // Just before a transition (the elapses cross it).
                let t = *rng.pick(&transitions);
                t - rng.range(0, 3 * 86_400)
            }
            2 if !transitions.is_empty() => {
                let t = *rng.pick(&transitions);
                t + rng.range(-7_200, 7_200)
            }
            3 => {
                // Around a leap day.
                let year = 4 * rng.range(493, 549);
                let feb28 = jiff::civil::date(year as i16, 2, 28)
                    .to_zoned(tz.clone())
                    .expect("date")
                    .timestamp();
                feb28.as_second() + rng.range(-86_400, 86_400 * 2)
            }
            4 if rng.chance(25) => rng.range(7_250_000_000, 7_258_118_399),
            _ => rng.range(0, 7_258_118_399),
        };
        let base = base.max(min_base);
        if rng.chance(15) {
            bases.push(format!("@{base}.{:06}", rng.range(0, 999_999)));
        } else {
            bases.push(format!("@{base}"));
        }
    }
    bases
}

// --------------------------------------------------------------- comparison

#[derive(Default)]
struct Report {
    compared: usize,
    accepted: usize,
    elapses: usize,
    mismatches: Vec<String>,
}

fn compare_batch(report: &mut Report, tz: &str, base: &str, exprs: &[String]) {
    let want = systemd::calendar(tz, base, ITERATIONS, exprs);
    let got = jobctl::outcomes(tz, base, ITERATIONS, exprs);
    for ((expr, w), g) in exprs.iter().zip(&want).zip(&got) {
        report.compared += 1;
        let mismatch = match (w, g) {
            (systemd::Outcome::Rejected, jobctl::Outcome::Rejected { message, span, .. }) => {
                // Every rejection says what and where.
                if message.is_empty() || span.1 > expr.len() || span.0 > span.1 {
                    Some(format!("bad error {message:?} {span:?}"))
                } else {
                    None
                }
            }
            (
                systemd::Outcome::Accepted {
                    normalized,
                    elapses,
                    never,
                },
                jobctl::Outcome::Accepted {
                    normalized: n2,
                    elapses_usec,
                    never: never2,
                    compute_error: false,
                },
            ) => {
                report.accepted += 1;
                report.elapses += elapses.len();
                let secs: Vec<i64> = elapses_usec
                    .iter()
                    .map(|u| u.div_euclid(1_000_000))
                    .collect();
                if normalized != n2 || elapses != &secs || never != never2 {
                    Some(format!(
                        "systemd: {normalized:?} {elapses:?} never={never}\n    jobctl:  {n2:?} {secs:?} never={never2}"
                    ))
                } else {
                    None
                }
            }
            (
                systemd::Outcome::ComputeError,
                jobctl::Outcome::Accepted {
                    compute_error: true,
                    ..
                },
            ) => None,
            (w, g) => Some(format!("systemd: {w:?}\n    jobctl:  {g:?}")),
        };
        if let Some(m) = mismatch {
            report
                .mismatches
                .push(format!("TZ={tz} --base-time={base} {expr:?}\n    {m}"));
        }
    }
}

fn finish(report: Report, what: &str) {
    eprintln!(
        "{what}: {} expressions compared ({} accepted, {} elapses), {} mismatches",
        report.compared,
        report.accepted,
        report.elapses,
        report.mismatches.len()
    );
    if !report.mismatches.is_empty() {
        let mut msg = String::new();
        for m in report.mismatches.iter().take(40) {
            let _ = writeln!(msg, "{m}");
        }
        panic!(
            "{} of {} differ from systemd-analyze:\n{msg}",
            report.mismatches.len(),
            report.compared
        );
    }
}

/// The hand-written list, under every local zone, from several base times.
#[test]
fn systematic_expressions_match_systemd() {
    if !tool_or_skip(
        systemd::SYSTEMD_ANALYZE,
        "the oracle for calendar expressions",
    ) {
        return;
    }
    let exprs = systematic();
    assert!(exprs.len() > 300, "the systematic list is there");
    let mut rng = Rng::new(oracle::seed(0x5157_3e3a));
    let mut report = Report::default();
    for zone in LOCAL_ZONES {
        // From 1972: the list has `daily GMT`, which London and Dublin
        // match as a local abbreviation only after 1971 (see zone_suffix).
        for base in base_times(&mut rng, zone, 2, 63_072_000) {
            compare_batch(&mut report, zone, &base, &exprs);
        }
    }
    finish(report, "systematic");
}

/// The random corpus.
#[test]
fn random_expressions_match_systemd() {
    if !tool_or_skip(
        systemd::SYSTEMD_ANALYZE,
        "the oracle for calendar expressions",
    ) {
        return;
    }
    let mut rng = Rng::new(oracle::seed(0xca1e_0da5));
    let mut report = Report::default();
    let bases_per_zone = 6 * oracle::scale();
    for zone in LOCAL_ZONES {
        for base in base_times(&mut rng, zone, bases_per_zone, 0) {
            let secs: i64 = base
                .trim_start_matches('@')
                .split('.')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("base time");
            let exprs: Vec<String> = (0..90).map(|_| expression(&mut rng, zone, secs)).collect();
            compare_batch(&mut report, zone, &base, &exprs);
        }
    }
    assert!(report.compared >= 6000);
    finish(report, "random");
}
