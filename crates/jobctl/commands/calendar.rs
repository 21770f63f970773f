//! `jobctl calendar`: normalize calendar expressions (or cron lines) and show
//! their next elapses, like `systemd-analyze calendar`, without systemd.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use jobctl_core::calendar::{
    CalendarError, CalendarSpec, Elapses, LocalAbbreviations, MktimeMemory, ParseOptions,
    UnionElapses,
};
use jobctl_core::cron;
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::view::calendar as view;
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

    /// Show this many next elapses (at most 1000000).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_iterations)]
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

    #[command(flatten)]
    pub globals: crate::cli::UnusedGlobals,
}

/// The most elapses `--iterations` may ask for. The output is written as it
/// is computed, so memory does not grow with the count; the cap bounds the
/// time (each elapse is computed twice, see [`run`]).
pub const MAX_ITERATIONS: u32 = 1_000_000;

fn parse_iterations(text: &str) -> Result<u32, String> {
    let n: u64 = text.parse().map_err(|_| {
        format!("\"{text}\" is not a count: write a whole number from 0 to {MAX_ITERATIONS}")
    })?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_ITERATIONS)
        .ok_or_else(|| {
            format!(
                "{n} is more than {MAX_ITERATIONS}, the most elapses jobctl calendar computes at once; \
                 ask for fewer, or start later with --base-time"
            )
        })
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

#[derive(Serialize)]
struct ResultJson<'a> {
    input: &'a str,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalized: Option<&'a str>,
    /// `OnCalendar=` lines a cron line translates to.
    #[serde(skip_serializing_if = "Option::is_none")]
    on_calendar: Option<&'a [String]>,
    /// A cron `@reboot` line: runs at boot, not on a calendar.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    on_boot: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
    /// Computed while they are written.
    next_elapses: ElapseList<'a>,
    /// True when the expression is valid but never elapses (again).
    never: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a ErrorJson>,
    /// Parts systemd accepts but computes wrongly (see CalendarWarning).
    #[serde(skip_serializing_if = "<[ErrorJson]>::is_empty")]
    warnings: &'a [ErrorJson],
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

/// One argument after parsing.
struct Parsed {
    input: String,
    /// The expressions to compute (one; or a cron line's `OnCalendar=` lines).
    /// Empty when the argument is invalid.
    specs: Vec<CalendarSpec>,
    /// The table's rows above the elapses.
    rows: Vec<(String, String)>,
    normalized: Option<String>,
    on_calendar: Option<Vec<String>>,
    on_boot: bool,
    timezone: Option<String>,
    warnings: Vec<ErrorJson>,
    /// Why the argument is invalid, or why its elapses cannot be computed.
    error: Option<ErrorJson>,
    /// The same, for the error report.
    failure: Option<Failure>,
}

/// What computing an argument's elapses found, before anything is printed.
#[derive(Clone, Copy)]
struct Plan {
    /// The `mktime()` memory to start from (see [`MktimeMemory`]).
    memory: MktimeMemory,
    /// How many elapses there are to print (up to `--iterations`).
    count: usize,
    /// An elapse could not be computed: nothing is printed for it.
    failed: bool,
}

/// What every argument's elapses are computed with.
struct Context<'a> {
    base: Timestamp,
    now: Timestamp,
    local: &'a TimeZone,
    zones: &'a HostZones,
    cron: bool,
}

pub fn run(args: CalendarArgs) -> CliResult {
    let zones = HostZones::new();
    let local = zones.local();
    let now = Timestamp::now();
    let base = match &args.base_time {
        Some(text) => parse_base_time(text, &local)?,
        None => now,
    };
    let ctx = Context {
        base,
        now,
        local: &local,
        zones: &zones,
        cron: args.cron,
    };
    let iterations = args.iterations as usize;

    let mut warnings: Vec<(String, String)> = Vec::new();
    let mut parsed = Vec::new();
    for input in &args.expressions {
        parsed.push(parse_one(
            input,
            &ctx,
            (!args.json).then_some(&mut warnings),
        )?);
    }

    // Every argument's elapses are computed once before anything is printed,
    // keeping only their count: systemd-analyze prints no table for an
    // expression whose elapses cannot all be computed, and the table's
    // labels are as wide as the widest one ("Iter. #1000"). They are then
    // computed again while they are written, so memory stays small for any
    // --iterations.
    let mut memory = MktimeMemory::fresh();
    let mut plans = Vec::new();
    for p in &mut parsed {
        if p.error.is_some() {
            plans.push(None);
            continue;
        }
        let start = memory;
        let (count, error) = match Stream::new(&p.specs, &ctx, start) {
            Ok(mut stream) => {
                let mut count = 0;
                let mut error = None;
                while count < iterations {
                    match stream.next() {
                        Some(Ok(_)) => count += 1,
                        Some(Err(e)) => {
                            error = Some(e);
                            break;
                        }
                        None => break,
                    }
                }
                // One mktime() memory across all expressions, as in one
                // systemd-analyze process (see MktimeMemory).
                if let Some(after) = stream.memory() {
                    memory = after;
                }
                (count, error)
            }
            Err(e) => (0, Some(e)),
        };
        if let Some(e) = error {
            p.failure = Some(Failure {
                input: p.input.clone(),
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
            p.error = Some(error_json(e.message(), e.span(), e.hint()));
            // systemd-analyze prints no table for this expression.
            p.rows.clear();
        }
        plans.push(Some(Plan {
            memory: start,
            count,
            failed: p.error.is_some(),
        }));
    }

    let failures: Vec<Failure> = parsed.iter_mut().filter_map(|p| p.failure.take()).collect();
    if args.json {
        let results: Vec<ResultJson<'_>> = parsed
            .iter()
            .zip(&plans)
            .map(|(p, plan)| ResultJson {
                input: &p.input,
                valid: plan.is_some(),
                normalized: p.normalized.as_deref(),
                on_calendar: p.on_calendar.as_deref(),
                on_boot: p.on_boot,
                timezone: p.timezone.as_deref(),
                next_elapses: ElapseList {
                    specs: &p.specs,
                    plan: plan.filter(|plan| !plan.failed),
                    ctx: &ctx,
                },
                never: plan.is_some_and(|plan| {
                    !plan.failed && plan.count == 0 && iterations > 0 && !p.specs.is_empty()
                }),
                error: p.error.as_ref(),
                warnings: &p.warnings,
            })
            .collect();
        // Serialized as written (not built as a `Value` first): the elapses
        // are computed while they are written.
        #[derive(Serialize)]
        struct Document<'a> {
            expressions: Vec<ResultJson<'a>>,
        }
        output::print_json(
            "calendar",
            &Document {
                expressions: results,
            },
        )?;
    } else {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        let written = parsed
            .iter()
            .zip(&plans)
            .enumerate()
            .try_for_each(|(i, (p, plan))| {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                write_table(&mut out, p, *plan, iterations, &ctx)
            })
            .and_then(|()| out.flush());
        match written {
            // The reader went away: not an error (output::print_text).
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                let _ = out.into_parts();
            }
            other => other?,
        }
        for (warning, hint) in &warnings {
            output::warn(warning);
            output::hint(hint);
        }
    }
    report_failures(failures, args.expressions.len())
}

/// Parses one argument (a calendar expression, or a cron line with
/// `--cron`).
fn parse_one(
    input: &str,
    ctx: &Context<'_>,
    warnings: Option<&mut Vec<(String, String)>>,
) -> CliResult<Parsed> {
    let abbreviations = LocalAbbreviations::of(ctx.local, ctx.base);
    let options = ParseOptions {
        zones: Some(ctx.zones),
        local_abbreviations: Some(&abbreviations),
    };
    let mut parsed = Parsed {
        input: input.to_string(),
        specs: Vec::new(),
        rows: Vec::new(),
        normalized: None,
        on_calendar: None,
        on_boot: false,
        timezone: None,
        warnings: Vec::new(),
        error: None,
        failure: None,
    };
    if ctx.cron {
        match cron::parse(input) {
            Ok(schedule) => {
                let translation = schedule.to_systemd();
                parsed.rows.push(("Cron line".into(), input.to_string()));
                if translation.on_boot {
                    parsed
                        .rows
                        .push(("OnBootSec=".into(), "0 (at boot; no calendar)".into()));
                }
                for line in &translation.on_calendar {
                    parsed.rows.push(("OnCalendar=".into(), line.clone()));
                    match CalendarSpec::parse_with(line, &options) {
                        Ok(spec) => parsed.specs.push(spec),
                        Err(e) => {
                            return Err(CliError::failure(anyhow!(
                                "internal error: cron line \"{input}\" translated to \"{line}\", which does not parse: {e}"
                            )));
                        }
                    }
                }
                parsed.on_boot = translation.on_boot;
                parsed.on_calendar = Some(translation.on_calendar);
            }
            Err(e) => {
                parsed.failure = Some(Failure {
                    input: input.to_string(),
                    what: "cron line",
                    invalid: true,
                    message: e.message().to_string(),
                    span: e.span(),
                    hint: e.hint().map(str::to_string),
                });
                parsed.error = Some(error_json(e.message(), e.span(), e.hint()));
            }
        }
    } else {
        match CalendarSpec::parse_with(input, &options) {
            Ok(spec) => {
                let normalized = spec.normalized();
                if normalized != *input {
                    parsed
                        .rows
                        .push(("Original form".into(), input.to_string()));
                }
                parsed
                    .rows
                    .push(("Normalized form".into(), normalized.clone()));
                parsed.normalized = Some(normalized);
                parsed.timezone = spec.timezone().map(str::to_string);
                let mut warnings = warnings;
                for w in spec.warnings() {
                    if let Some(warnings) = warnings.as_deref_mut() {
                        warnings.push((format!("\"{input}\": {}", w.message), w.hint.clone()));
                    }
                    parsed
                        .warnings
                        .push(error_json(&w.message, w.span.clone(), Some(&w.hint)));
                }
                parsed.specs.push(spec);
            }
            Err(e) => {
                parsed.failure = Some(calendar_failure(input, &e));
                parsed.error = Some(error_json(e.message(), e.span(), e.hint()));
            }
        }
    }
    Ok(parsed)
}

/// The elapses of one argument, computed one at a time: one expression, or
/// the union of a cron line's `OnCalendar=` lines.
enum Stream<'a> {
    One(Elapses<'a>),
    /// Each expression computed on its own, as systemd does for the lines
    /// of one timer.
    Union(UnionElapses<'a>),
}

impl<'a> Stream<'a> {
    fn new(
        specs: &'a [CalendarSpec],
        ctx: &Context<'_>,
        memory: MktimeMemory,
    ) -> Result<Self, CalendarError> {
        match specs {
            [spec] if !ctx.cron => Ok(Stream::One(
                spec.elapses_with(ctx.base, ctx.local, ctx.zones, memory)?,
            )),
            _ => Ok(Stream::Union(UnionElapses::new(
                specs, ctx.base, ctx.local, ctx.zones,
            )?)),
        }
    }

    /// The `mktime()` memory after the elapses computed so far; `None` when
    /// computing left the process's memory alone (cron lines).
    fn memory(&self) -> Option<MktimeMemory> {
        match self {
            Stream::One(it) => Some(it.memory()),
            Stream::Union(_) => None,
        }
    }
}

impl Iterator for Stream<'_> {
    type Item = Result<Timestamp, CalendarError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Stream::One(it) => it.next(),
            Stream::Union(it) => it.next(),
        }
    }
}

/// An argument's elapses for JSON, computed while they are serialized.
struct ElapseList<'a> {
    specs: &'a [CalendarSpec],
    /// `None`: no elapses (invalid, or failed).
    plan: Option<Plan>,
    ctx: &'a Context<'a>,
}

impl Serialize for ElapseList<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(plan) = self.plan else {
            return serializer.collect_seq(std::iter::empty::<ElapseJson>());
        };
        let stream =
            Stream::new(self.specs, self.ctx, plan.memory).map_err(serde::ser::Error::custom)?;
        serializer.collect_seq(stream.take(plan.count).map_while(Result::ok).map(|next| {
            ElapseJson {
                timestamp: view::rfc3339(next),
                usec: next.as_microsecond(),
                local: view::timestamp(next, self.ctx.local),
            }
        }))
    }
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
            view::underline(&f.input, f.span.clone())
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

/// Writes one argument's table, its elapses computed as they are written,
/// with the labels right-aligned like systemd-analyze's table.
fn write_table(
    out: &mut impl std::io::Write,
    parsed: &Parsed,
    plan: Option<Plan>,
    iterations: usize,
    ctx: &Context<'_>,
) -> std::io::Result<()> {
    let Some(plan) = plan.filter(|plan| !plan.failed) else {
        // systemd-analyze prints no table for this argument.
        return Ok(());
    };
    let never = plan.count == 0 && iterations > 0 && !parsed.specs.is_empty();
    // The widest label: the rows above, "Next elapse", the last "Iter. #N"
    // ("(in UTC)" and "From now" are shorter).
    let last_iteration = (plan.count > 1).then(|| format!("Iter. #{}", plan.count));
    let width = parsed
        .rows
        .iter()
        .map(|(label, _)| label.as_str())
        .chain((plan.count > 0 || never).then_some("Next elapse"))
        .chain(last_iteration.as_deref())
        .map(|label| label.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let mut row = |label: &str, value: &str| -> std::io::Result<()> {
        let label = format!("{label}:");
        writeln!(out, "{label:>width$} {value}")
    };
    for (label, value) in &parsed.rows {
        row(label, value)?;
    }
    if never {
        return row("Next elapse", "never");
    }
    let stream = Stream::new(&parsed.specs, ctx, plan.memory).map_err(std::io::Error::other)?;
    for (n, next) in stream.take(plan.count).enumerate() {
        let next = next.map_err(std::io::Error::other)?;
        if n == 0 {
            row("Next elapse", &view::timestamp(next, ctx.local))?;
        } else {
            row(
                &format!("Iter. #{}", n + 1),
                &view::timestamp(next, ctx.local),
            )?;
        }
        if !in_utc_timezone(ctx.local, next) {
            row("(in UTC)", &view::timestamp(next, &TimeZone::UTC))?;
        }
        row("From now", &view::relative(next, ctx.now))?;
    }
    Ok(())
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
}
