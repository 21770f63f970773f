//! Benchmark of the calendar engine: parse and next-elapse times of typical
//! expressions, with the cost of asking `systemd-analyze calendar` measured
//! in the same run as the baseline (one process per question, and per
//! expression within a batch of many). Run with `scripts/bench-calendar`.
//!
//! A plain harness (no criterion): each figure is the median of 31 samples,
//! each sample timing enough calls to last about 5 ms.

use std::collections::HashMap;
use std::hint::black_box;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use jobctl_core::calendar::{CalendarSpec, ZoneLookup, next_elapse_of_any};
use jobctl_core::cron;

/// Zones from the host's database, cached (as the binary's lookup is).
struct Zones(Mutex<HashMap<String, Option<TimeZone>>>);

impl ZoneLookup for Zones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        let mut cache = self.0.lock().expect("lock");
        cache
            .entry(name.to_string())
            .or_insert_with(|| jiff::tz::db().get(name).ok())
            .clone()
    }
}

const EXPRESSIONS: &[&str] = &[
    "minutely",
    "hourly",
    "daily",
    "Mon..Fri 09:00",
    "*:0/15",
    "*-*~01 23:00",
    "Sat *-*-01..07 02:00",
    "*-*-* 02:30 America/New_York",
    "daily Europe/Berlin",
    "*-02-29 12:00",
    "2199-12-31 23:59:59",
];

const SAMPLES: usize = 31;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median time of one call of `f`, in microseconds.
fn time_per_call(mut f: impl FnMut(usize)) -> f64 {
    // Calibrate: how many calls take about 5 ms.
    let mut n = 1;
    loop {
        let start = Instant::now();
        for i in 0..n {
            f(i);
        }
        if start.elapsed() > Duration::from_millis(5) || n > 1 << 24 {
            break;
        }
        n *= 2;
    }
    let samples = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for i in 0..n {
                f(i);
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .collect();
    median(samples)
}

/// Median wall time of one `systemd-analyze calendar` process answering
/// `exprs`, in microseconds, divided by the number of expressions.
fn systemd_analyze(exprs: &[&str], runs: usize) -> Option<f64> {
    let mut samples = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new("/usr/bin/systemd-analyze")
            .args(["calendar", "--base-time=@1767225600"])
            .args(exprs)
            .env("TZ", "UTC")
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        samples.push(start.elapsed().as_secs_f64() * 1e6 / exprs.len() as f64);
    }
    Some(median(samples))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let zones = Zones(Mutex::new(HashMap::new()));
    let local = TimeZone::UTC;
    // Base times spread over ten years, so caches of one instant do not help.
    let bases: Vec<Timestamp> = (0..64)
        .map(|i| Timestamp::from_second(1_767_225_600 + i * 4_937_083).expect("in range"))
        .collect();

    println!("calendar engine benchmark (release build; median of {SAMPLES} samples)");
    println!("load average before: {}", loadavg());
    println!(
        "{:<32} {:>10} {:>12} {:>16} {:>10} {:>18} {:>10}",
        "expression", "parse µs", "next µs", "sd-analyze µs", "ratio", "sd batched µs", "ratio"
    );
    let mut ratios = Vec::new();
    for expr in EXPRESSIONS {
        let parse = time_per_call(|_| {
            black_box(CalendarSpec::parse(black_box(expr)).ok());
        });
        let spec = CalendarSpec::parse(expr).expect("valid");
        let next = time_per_call(|i| {
            let r = spec.next_elapse(bases[i % bases.len()], &local, &zones);
            black_box(r.ok());
        });
        let process = systemd_analyze(&[expr], 21);
        let batch: Vec<&str> = std::iter::repeat_n(*expr, 100).collect();
        let batched = systemd_analyze(&batch, 5);
        let show = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1}"));
        let ratio = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.0}x", v / next));
        println!(
            "{:<32} {:>10.2} {:>12.2} {:>16} {:>10} {:>18} {:>10}",
            expr,
            parse,
            next,
            show(process),
            ratio(process),
            show(batched),
            ratio(batched)
        );
        if let Some(p) = process {
            ratios.push(p / next);
        }
    }

    // A cron line that needs two OnCalendar= lines: the union.
    let translation = cron::parse("0 12 1 * Mon").expect("valid").to_systemd();
    let specs: Vec<CalendarSpec> = translation
        .on_calendar
        .iter()
        .map(|l| CalendarSpec::parse(l).expect("valid"))
        .collect();
    let union = time_per_call(|i| {
        black_box(next_elapse_of_any(&specs, bases[i % bases.len()], &local, &zones).ok());
    });
    let translate = time_per_call(|_| {
        black_box(
            cron::parse(black_box("*/15 9-17 1 * Mon-Fri"))
                .map(|s| s.to_systemd())
                .ok(),
        );
    });
    println!(
        "{:<32} {:>10} {:>12.2}",
        "cron \"0 12 1 * Mon\" (2 lines)", "", union
    );
    println!("{:<32} {:>10.2}", "cron parse + translate", translate);
    if !ratios.is_empty() {
        println!(
            "median ratio, one systemd-analyze process per question vs. the engine: {:.0}x",
            median(ratios)
        );
    }
    println!("load average after:  {}", loadavg());
}
