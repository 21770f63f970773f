//! `jobctl calendar`: normalize calendar expressions (or cron lines) and show
//! their next elapses, like `systemd-analyze calendar`, without systemd.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use jobctl_core::calendar::{
    CalendarError, CalendarSpec, LocalAbbreviations, MktimeMemory, ParseOptions, ZoneLookup,
};
use jobctl_core::cron;
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::zones::HostZones;

/// Show how systemd reads calendar expressions and when they elapse next.
///
/// Prints the normalized form of each expression exactly as
/// `systemd-analyze calendar` does, and its next elapses in the local time
/// zone (`$TZ`, else /etc/localtime) and in UTC. With --cron, each argument
/// is a classic 5-field cron line (or an @-macro), shown with the
/// `OnCalendar=` lines that reproduce it.
///
/// Examples:
///
///   jobctl calendar 'Mon..Fri 09:00' 'daily Europe/Berlin'
///
///   jobctl calendar --iterations 5 --base-time 2025-03-30T00:00:00Z '*-*-* 02:30'
///
///   jobctl calendar --cron '0 12 1 * Mon'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CalendarArgs {
    /// Calendar expressions (or cron lines with --cron).
    #[arg(required = true, value_name = "EXPRESSION")]
    pub expressions: Vec<String>,

    /// Show this many next elapses.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub iterations: u32,

    /// Compute from this time instead of now: `@EPOCH[.FRACTION]`, RFC 3339
    /// (`2025-03-30T00:00:00Z`), or `YYYY-MM-DD HH:MM[:SS]` in the local zone.
    #[arg(long, value_name = "TIME")]
    pub base_time: Option<String>,

    /// Treat each argument as a cron line and show its translation.
    #[arg(long)]
    pub cron: bool,

    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

/// One elapse, for JSON output.
#[derive(Debug, Serialize)]
struct ElapseJson {
    /// RFC 3339 in UTC, with microseconds when there are any.
    timestamp: String,
    /// Microseconds since the epoch (systemd's resolution).
    usec: i64,
    /// As `systemd-analyze` prints it in the local zone.
    local: String,
}

#[derive(Debug, Serialize)]
struct ErrorJson {
    message: String,
    /// Byte range in the input.
    span: [usize; 2],
    hint: Option<String>,
}

#[derive(Debug, Serialize)]
struct ResultJson {
    input: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalized: Option<String>,
    /// `OnCalendar=` lines a cron line translates to.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_calendar: Option<Vec<String>>,
    /// A cron `@reboot` line: runs at boot, not on a calendar.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    on_boot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<String>,
    next_elapses: Vec<ElapseJson>,
    /// True when the expression is valid but never elapses (again).
    never: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJson>,
    /// Parts systemd accepts but computes wrongly (see CalendarWarning).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<ErrorJson>,
}

/// A failed input, kept for the error report.
struct Failure {
    input: String,
    /// "calendar expression" or "cron line".
    what: &'static str,
    /// Rejected input (exit status 2), or an accepted expression whose
    /// elapse systemd cannot compute either (exit status 1).
    invalid: bool,
    message: String,
    span: std::ops::Range<usize>,
    hint: Option<String>,
}

pub fn run(args: CalendarArgs) -> CliResult {
    let zones = HostZones::new();
    let local = zones.local();
    let now = Timestamp::now();
    let base = match &args.base_time {
        Some(text) => parse_base_time(text, &local)?,
        None => now,
    };
    let abbreviations = LocalAbbreviations::of(&local, base);
    let options = ParseOptions {
        zones: Some(&zones),
        local_abbreviations: Some(&abbreviations),
    };

    let mut text = String::new();
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut memory = MktimeMemory::fresh();
    let mut warnings: Vec<String> = Vec::new();

    for (i, input) in args.expressions.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        let mut result = ResultJson {
            input: input.clone(),
            valid: false,
            normalized: None,
            on_calendar: None,
            on_boot: false,
            timezone: None,
            next_elapses: Vec::new(),
            never: false,
            error: None,
            warnings: Vec::new(),
        };
        let mut rows: Vec<(String, String)> = Vec::new();

        let specs = if args.cron {
            match cron::parse(input) {
                Ok(schedule) => {
                    let translation = schedule.to_systemd();
                    rows.push(("Cron line".into(), input.clone()));
                    if translation.on_boot {
                        rows.push(("OnBootSec=".into(), "0 (at boot; no calendar)".into()));
                    }
                    for line in &translation.on_calendar {
                        rows.push(("OnCalendar=".into(), line.clone()));
                    }
                    result.on_calendar = Some(translation.on_calendar.clone());
                    result.on_boot = translation.on_boot;
                    let mut specs = Vec::new();
                    for line in &translation.on_calendar {
                        match CalendarSpec::parse_with(line, &options) {
                            Ok(spec) => specs.push(spec),
                            Err(e) => {
                                return Err(CliError::failure(anyhow!(
                                    "internal error: cron line \"{input}\" translated to \"{line}\", which does not parse: {e}"
                                )));
                            }
                        }
                    }
                    specs
                }
                Err(e) => {
                    failures.push(Failure {
                        input: input.clone(),
                        what: "cron line",
                        invalid: true,
                        message: e.message().to_string(),
                        span: e.span(),
                        hint: e.hint().map(str::to_string),
                    });
                    result.error = Some(error_json(e.message(), e.span(), e.hint()));
                    results.push(result);
                    continue;
                }
            }
        } else {
            match CalendarSpec::parse_with(input, &options) {
                Ok(spec) => {
                    let normalized = spec.normalized();
                    if normalized != *input {
                        rows.push(("Original form".into(), input.clone()));
                    }
                    rows.push(("Normalized form".into(), normalized.clone()));
                    result.normalized = Some(normalized);
                    result.timezone = spec.timezone().map(str::to_string);
                    for w in spec.warnings() {
                        if !args.json {
                            warnings.push(format!(
                                "Warning: \"{input}\": {}\nHint: {}",
                                w.message, w.hint
                            ));
                        }
                        result
                            .warnings
                            .push(error_json(&w.message, w.span.clone(), Some(&w.hint)));
                    }
                    vec![spec]
                }
                Err(e) => {
                    failures.push(calendar_failure(input, &e));
                    result.error = Some(error_json(e.message(), e.span(), e.hint()));
                    results.push(result);
                    continue;
                }
            }
        };
        result.valid = true;

        let (elapses, error) = if args.cron {
            union_elapses(&specs, base, &local, &zones, args.iterations)
        } else {
            // One mktime() memory across all expressions, as in one
            // systemd-analyze process (see MktimeMemory).
            match specs[0].elapses_with(base, &local, &zones, memory) {
                Ok(mut it) => {
                    let mut out = Vec::new();
                    let mut error = None;
                    for _ in 0..args.iterations {
                        match it.next() {
                            Some(Ok(ts)) => out.push(ts),
                            Some(Err(e)) => {
                                error = Some(e);
                                break;
                            }
                            None => break,
                        }
                    }
                    memory = it.memory();
                    (out, error)
                }
                Err(e) => (Vec::new(), Some(e)),
            }
        };
        if let Some(e) = error {
            // systemd-analyze prints no table for this expression.
            rows.clear();
            failures.push(Failure {
                input: input.clone(),
                what: if args.cron {
                    "cron line"
                } else {
                    "calendar expression"
                },
                invalid: false,
                message: e.message().to_string(),
                span: 0..0,
                hint: e.hint().map(str::to_string),
            });
            result.error = Some(error_json(e.message(), e.span(), e.hint()));
        } else {
            for (n, next) in elapses.iter().enumerate() {
                let label = if n == 0 {
                    "Next elapse".to_string()
                } else {
                    format!("Iter. #{}", n + 1)
                };
                rows.push((label, format_local(*next, &local)));
                if !in_utc_timezone(&local, *next) {
                    rows.push(("(in UTC)".into(), format_local(*next, &TimeZone::UTC)));
                }
                rows.push(("From now".into(), format_relative(*next, now)));
                result.next_elapses.push(ElapseJson {
                    timestamp: format_rfc3339(*next),
                    usec: next.as_microsecond(),
                    local: format_local(*next, &local),
                });
            }
            if elapses.is_empty() && args.iterations > 0 && !specs.is_empty() {
                rows.push(("Next elapse".into(), "never".into()));
                result.never = true;
            }
        }
        write_table(&mut text, &rows);
        results.push(result);
    }

    if args.json {
        output::print_json(&results)?;
    } else {
        output::print_text(&text)?;
        for w in &warnings {
            eprintln!("{w}");
        }
    }
    report_failures(failures, args.expressions.len())
}

fn calendar_failure(input: &str, e: &CalendarError) -> Failure {
    Failure {
        input: input.to_string(),
        what: "calendar expression",
        invalid: true,
        message: e.message().to_string(),
        span: e.span(),
        hint: e.hint().map(str::to_string),
    }
}

fn error_json(message: &str, span: std::ops::Range<usize>, hint: Option<&str>) -> ErrorJson {
    ErrorJson {
        message: message.to_string(),
        span: [span.start, span.end],
        hint: hint.map(str::to_string),
    }
}

/// The first `n` elapses of the union of `specs` (a cron line that needed
/// two `OnCalendar=` lines), each expression computed on its own as systemd
/// does for the lines of one timer.
fn union_elapses(
    specs: &[CalendarSpec],
    base: Timestamp,
    local: &TimeZone,
    zones: &dyn ZoneLookup,
    n: u32,
) -> (Vec<Timestamp>, Option<CalendarError>) {
    let mut iters = Vec::new();
    for spec in specs {
        match spec.elapses(base, local, zones) {
            Ok(it) => iters.push(it.peekable()),
            Err(e) => return (Vec::new(), Some(e)),
        }
    }
    let mut out = Vec::new();
    while out.len() < n as usize {
        let mut best: Option<(usize, Timestamp)> = None;
        for (i, it) in iters.iter_mut().enumerate() {
            match it.peek() {
                Some(Ok(ts)) if best.is_none_or(|(_, b)| *ts < b) => best = Some((i, *ts)),
                Some(Err(_)) => {
                    if let Some(Err(e)) = it.next() {
                        return (out, Some(e));
                    }
                }
                _ => {}
            }
        }
        let Some((i, ts)) = best else { break };
        iters[i].next();
        // Both lines may fire at the same time; systemd fires once.
        for it in &mut iters {
            while it
                .peek()
                .is_some_and(|r| r.as_ref().is_ok_and(|t| *t == ts))
            {
                it.next();
            }
        }
        out.push(ts);
    }
    (out, None)
}

/// Prints every failure but the last on stderr and returns the last as the
/// command's error. The exit status is 2 when an argument was invalid, 1
/// when all were valid but an elapse could not be computed.
fn report_failures(mut failures: Vec<Failure>, total: usize) -> CliResult {
    let Some(last) = failures.pop() else {
        return Ok(ExitCode::SUCCESS);
    };
    let any_invalid = last.invalid || failures.iter().any(|f| f.invalid);
    let count = failures.len() + 1;
    for f in &failures {
        // Printed the same way as the final error.
        let _ = failure_error(f, f.invalid).report();
    }
    let mut err = failure_error(&last, any_invalid);
    if count > 1 {
        err = err.hint(format!("{count} of {total} arguments failed"));
    }
    Err(err)
}

fn failure_error(f: &Failure, usage: bool) -> CliError {
    let mut message = if f.invalid {
        format!("invalid {} \"{}\": {}", f.what, f.input, f.message)
    } else {
        format!(
            "cannot compute the next elapse of \"{}\": {}",
            f.input, f.message
        )
    };
    if f.invalid {
        let _ = write!(
            message,
            "\n  {}\n  {}",
            f.input,
            underline(&f.input, f.span.clone())
        );
    }
    let err = if usage {
        CliError::usage(anyhow!(message))
    } else {
        CliError::failure(anyhow!(message))
    };
    match &f.hint {
        Some(h) => err.hint(h),
        None => err,
    }
}

/// `^^^` under the byte range `span` of `input` (at least one caret).
fn underline(input: &str, span: std::ops::Range<usize>) -> String {
    let start = input
        .get(..span.start)
        .map_or(span.start, |s| s.chars().count());
    let width = input
        .get(span.clone())
        .map_or(1, |s| s.chars().count())
        .max(1);
    format!("{}{}", " ".repeat(start), "^".repeat(width))
}

/// Right-aligns the labels like systemd-analyze's table.
fn write_table(out: &mut String, rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count() + 1)
        .max()
        .unwrap_or(0);
    for (label, value) in rows {
        let label = format!("{label}:");
        let _ = writeln!(out, "{label:>width$} {value}");
    }
}

/// `@EPOCH[.FRACTION]`, RFC 3339, or a civil time in the local zone.
fn parse_base_time(text: &str, local: &TimeZone) -> CliResult<Timestamp> {
    let bad = || {
        CliError::usage(anyhow!("invalid --base-time \"{text}\""))
            .hint("use @EPOCH (e.g. @1767225600), RFC 3339 (2026-01-01T00:00:00Z), \"2026-01-01 00:00:00\" (local time) or \"2026-01-01 00:00:00 Europe/London\"")
    };
    if let Some(epoch) = text.strip_prefix('@') {
        let (secs, frac) = epoch.split_once('.').unwrap_or((epoch, ""));
        if secs.is_empty()
            || !secs.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        let mut micros: i64 = 0;
        for (i, b) in frac.bytes().take(6).enumerate() {
            micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
        }
        return secs
            .checked_mul(1_000_000)
            .and_then(|s| s.checked_add(micros))
            .and_then(|us| Timestamp::from_microsecond(us).ok())
            .ok_or_else(bad);
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(local.clone())
            .map(|z| z.timestamp())
            .map_err(|_| bad());
    }
    // "2026-12-31 23:50:00 UTC" or "... Europe/London", as systemd-analyze takes it.
    if let Some((datetime, zone_name)) = text.trim().rsplit_once(' ')
        && let Ok(dt) = datetime.trim().parse::<jiff::civil::DateTime>()
    {
        use jobctl_core::context::ZoneLookup;
        let zone = crate::zones::HostZones::new()
            .zone(zone_name)
            .ok_or_else(bad)?;
        return dt.to_zoned(zone).map(|z| z.timestamp()).map_err(|_| bad());
    }
    Err(bad())
}

/// systemd's `in_utc_timezone()`: no offset and no DST in the zone's rules.
fn in_utc_timezone(local: &TimeZone, at: Timestamp) -> bool {
    let info = local.to_offset_info(at);
    info.offset().seconds() == 0
        && !info.dst().is_dst()
        && LocalAbbreviations::of(local, at).daylight == info.abbreviation()
}

/// `Sun 2024-03-10 00:00:00 EST`, systemd's timestamp format.
fn format_local(ts: Timestamp, zone: &TimeZone) -> String {
    ts.to_zoned(zone.clone())
        .strftime("%a %Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn format_rfc3339(ts: Timestamp) -> String {
    if ts.subsec_microsecond() == 0 {
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// systemd's `format_timestamp_relative()`.
fn format_relative(t: Timestamp, now: Timestamp) -> String {
    const SEC: i64 = 1_000_000;
    const MIN: i64 = 60 * SEC;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    const WEEK: i64 = 7 * DAY;
    const MONTH: i64 = 2_629_800 * SEC;
    const YEAR: i64 = 31_557_600 * SEC;
    let (t, n) = (t.as_microsecond(), now.as_microsecond());
    let (d, s) = if n > t {
        (n - t, "ago")
    } else {
        (t - n, "left")
    };
    let plural = |n: i64, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    if d >= YEAR {
        let (y, m) = (d / YEAR, (d % YEAR) / MONTH);
        format!(
            "{y} {} {m} {} {s}",
            plural(y, "year", "years"),
            plural(m, "month", "months")
        )
    } else if d >= MONTH {
        let (m, days) = (d / MONTH, (d % MONTH) / DAY);
        format!(
            "{m} {} {days} {} {s}",
            plural(m, "month", "months"),
            plural(days, "day", "days")
        )
    } else if d >= WEEK {
        let (w, days) = (d / WEEK, (d % WEEK) / DAY);
        format!(
            "{w} {} {days} {} {s}",
            plural(w, "week", "weeks"),
            plural(days, "day", "days")
        )
    } else if d >= 2 * DAY {
        format!("{} days {s}", d / DAY)
    } else if d >= 25 * HOUR {
        format!("1 day {}h {s}", (d - DAY) / HOUR)
    } else if d >= 6 * HOUR {
        format!("{}h {s}", d / HOUR)
    } else if d >= HOUR {
        format!("{}h {}min {s}", d / HOUR, (d % HOUR) / MIN)
    } else if d >= 5 * MIN {
        format!("{}min {s}", d / MIN)
    } else if d >= MIN {
        format!("{}min {}s {s}", d / MIN, (d % MIN) / SEC)
    } else if d >= SEC {
        format!("{}s {s}", d / SEC)
    } else if d >= 1000 {
        format!("{}ms {s}", d / 1000)
    } else if d > 0 {
        format!("{d}us {s}")
    } else {
        "now".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_time_forms() {
        let utc = TimeZone::UTC;
        assert_eq!(parse_base_time("@0", &utc).unwrap(), Timestamp::UNIX_EPOCH);
        assert_eq!(
            parse_base_time("@1.5", &utc).unwrap().as_microsecond(),
            1_500_000
        );
        assert_eq!(
            parse_base_time("2026-01-01T00:00:00Z", &utc)
                .unwrap()
                .as_second(),
            1_767_225_600
        );
        assert_eq!(
            parse_base_time("2026-01-01 00:00:00", &utc)
                .unwrap()
                .as_second(),
            1_767_225_600
        );
        assert!(parse_base_time("@-5", &utc).is_err());
        assert!(parse_base_time("yesterday", &utc).is_err());
    }

    #[test]
    fn relative_times_read_like_systemd() {
        let now = Timestamp::from_second(1_000_000_000).unwrap();
        let at = |s: i64| Timestamp::from_second(1_000_000_000 + s).unwrap();
        assert_eq!(format_relative(at(0), now), "now");
        assert_eq!(format_relative(at(90), now), "1min 30s left");
        assert_eq!(format_relative(at(-3 * 3600 - 120), now), "3h 2min ago");
        assert_eq!(format_relative(at(26 * 3600), now), "1 day 2h left");
        assert_eq!(format_relative(at(9 * 86_400), now), "1 week 2 days left");
    }

    #[test]
    fn underline_counts_characters() {
        assert_eq!(underline("*-*-* 25:00", 6..8), "      ^^");
        assert_eq!(underline("é 1", 3..4), "  ^");
        assert_eq!(underline("abc", 3..3), "   ^");
    }
}
