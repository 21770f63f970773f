//! The oracle: the real `systemd-analyze calendar` (systemd 252), run with a
//! fixed base time (`--base-time=@EPOCH`, supported since systemd 247) and
//! `TZ` set to the local zone under test, many expressions per call.

use std::collections::VecDeque;
use std::process::Command;

pub const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

/// What systemd made of one expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// "Failed to parse calendar specification".
    Rejected,
    /// Accepted; `elapses` in whole seconds since the epoch (systemd prints
    /// no fractions). `never` when the first elapse was "never"; fewer
    /// elapses than asked means it stopped elapsing.
    Accepted {
        normalized: String,
        elapses: Vec<i64>,
        never: bool,
    },
    /// Accepted, but "Failed to determine next elapse" (no table printed).
    ComputeError,
}

/// Runs `systemd-analyze calendar` on `exprs` with `TZ=tz`.
pub fn calendar(tz: &str, base: &str, iterations: u32, exprs: &[String]) -> Vec<Outcome> {
    let output = Command::new(SYSTEMD_ANALYZE)
        .arg("calendar")
        .arg(format!("--iterations={iterations}"))
        .arg(format!("--base-time={base}"))
        .arg("--")
        .args(exprs)
        .env_clear()
        .env("TZ", tz)
        .env("LC_ALL", "C")
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .env("COLUMNS", "100000")
        .output()
        .expect("run systemd-analyze");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    // Failures appear on stderr in expression order.
    let mut failures: VecDeque<Outcome> = stderr
        .lines()
        .filter_map(|l| {
            if l.starts_with("Failed to parse calendar specification") {
                Some(Outcome::Rejected)
            } else if l.starts_with("Failed to determine next elapse") {
                Some(Outcome::ComputeError)
            } else {
                None
            }
        })
        .collect();

    let mut lines = stdout.lines().peekable();
    let mut outcomes = Vec::with_capacity(exprs.len());
    for (i, expr) in exprs.iter().enumerate() {
        let has_table = lines.peek().is_some_and(|l| !l.is_empty());
        if !has_table {
            let outcome = failures
                .pop_front()
                .unwrap_or_else(|| panic!("no table and no error for {expr:?}:\n{stderr}"));
            outcomes.push(outcome);
        } else {
            let mut normalized = None;
            let mut elapses = Vec::new();
            let mut never = false;
            while let Some(line) = lines.peek() {
                if line.is_empty() {
                    break;
                }
                let line = lines.next().unwrap_or_default();
                let (label, value) = line
                    .trim_start()
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("unexpected line {line:?}"));
                match label {
                    "Original form" | "From now" => {}
                    "Normalized form" => normalized = Some(value.to_string()),
                    "Next elapse" if value == "never" => never = true,
                    "Next elapse" => elapses.push(parse_timestamp(value)),
                    // The UTC line replaces the local one just read.
                    "(in UTC)" => {
                        let last = elapses.last_mut().expect("(in UTC) after an elapse");
                        *last = parse_timestamp(value);
                    }
                    l if l.starts_with("Iter. #") => elapses.push(parse_timestamp(value)),
                    other => panic!("unexpected label {other:?} for {expr:?}"),
                }
            }
            outcomes.push(Outcome::Accepted {
                normalized: normalized.unwrap_or_else(|| panic!("no normalized form for {expr:?}")),
                elapses,
                never,
            });
        }
        // The blank line between expressions.
        if i + 1 < exprs.len() {
            let sep = lines.next();
            assert!(
                sep.is_none_or(str::is_empty),
                "expected a blank line after {expr:?}, got {sep:?}"
            );
        }
    }
    outcomes
}

/// `Sun 2024-03-10 05:00:00 UTC` → seconds since the epoch. The zone is UTC
/// (the "(in UTC)" line) or a zone whose offset is 0 (systemd prints no UTC
/// line then).
pub fn parse_timestamp(value: &str) -> i64 {
    let parts: Vec<&str> = value.split_whitespace().collect();
    assert!(parts.len() >= 3, "bad timestamp {value:?}");
    let civil: jiff::civil::DateTime = format!("{}T{}", parts[1], parts[2])
        .parse()
        .unwrap_or_else(|e| panic!("bad timestamp {value:?}: {e}"));
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .expect("in range")
        .timestamp()
        .as_second()
}
