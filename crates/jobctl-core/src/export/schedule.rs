//! A job's schedules as one cron line that fires at exactly the same times:
//! the back-translation `jobctl export k8s` writes into a CronJob's
//! `schedule`.
//!
//! Every schedule of a job becomes systemd calendar expressions
//! ([`Schedule::triggers`]); each expression is read into the sets of
//! minutes, hours, months, days of the month and weekdays it names (the
//! engine's own parse, [`CalendarSpec`]), and the union of all of them must
//! be exactly one cron line's set, or the job is refused with the reason.
//! The union is checked point by point over (hour, month, day of month,
//! weekday) cells holding a minute mask, so schedules that overlap or that
//! only together form a cron line (`daily` plus `hourly`, a cron line's two
//! `OnCalendar=` halves) are recognised, and nothing that is not exact is
//! ever written.
//!
//! # The cron dialect written
//!
//! Kubernetes reads `schedule` with robfig/cron v3 (`ParseStandard`), which
//! differs from Vixie cron in two places that matter here: a day field
//! written `*/N` (N > 1) counts as *restricted* (Vixie: as `*`), which
//! decides whether the two day fields are ANDed or ORed, and the day of
//! week is 0..6 (Vixie also takes 7 for Sunday). The lines written here use
//! only the part both read the same way: numbers, never names; `*` alone in
//! a day field, never `*/N`; weekdays 0..6. So the day fields mean "both
//! must match" exactly when one of them is `*`, and "either" when both are
//! lists, in both crons.
//!
//! # What has no cron line
//!
//! Seconds other than `:00`, years, days counted from the end of the month
//! (`~`), days that must be both a given weekday and a given day of the
//! month (cron ORs them), monotonic intervals (`every` that does not divide
//! an hour or a day), open-ended repetitions systemd computes wrongly after
//! New Year, and unions of schedules that are not themselves one cron line.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::calendar::{CalendarSpec, Component};
use crate::schedule::{Schedule, Trigger};

/// Bits 1..=31.
const ALL_DAYS: u32 = !1;
/// Bits 0 (Sunday) ..= 6 (Saturday).
const ALL_WEEKDAYS: u8 = 0x7f;

/// A cron line's values, a bit per allowed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronFields {
    /// Bit n = minute n (0..=59).
    pub minutes: u64,
    /// Bit n = hour n (0..=23).
    pub hours: u32,
    /// Bit n = month n (1..=12).
    pub months: u16,
    pub days: Days,
}

/// Which days a cron line runs on, in the forms cron can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Days {
    /// Every day: both day fields `*`.
    Every,
    /// These days of the month (bit n = day n, 1..=31); weekday `*`.
    OfMonth(u32),
    /// These weekdays (bit 0 = Sunday … 6 = Saturday); day of month `*`.
    OfWeek(u8),
    /// Both fields restricted, which cron reads as OR: a day that is in
    /// either list.
    Either { of_month: u32, of_week: u8 },
}

impl CronFields {
    /// The five-field line, e.g. `*/15 9-17 * * 1-5`.
    pub fn line(&self) -> String {
        let (dom, dow) = match self.days {
            Days::Every => ("*".to_string(), "*".to_string()),
            Days::OfMonth(d) => (list(u64::from(d), 1, 31), "*".to_string()),
            Days::OfWeek(w) => ("*".to_string(), list(u64::from(w), 0, 6)),
            Days::Either { of_month, of_week } => (
                list(u64::from(of_month), 1, 31),
                list(u64::from(of_week), 0, 6),
            ),
        };
        format!(
            "{} {} {dom} {} {dow}",
            field(self.minutes, 0, 59),
            field(u64::from(self.hours), 0, 23),
            field(u64::from(self.months), 1, 12),
        )
    }

    /// Whether cron runs the line in the wall-clock minute `t` (seconds
    /// ignored).
    pub fn matches(&self, t: DateTime) -> bool {
        let day = 1u32 << t.day();
        let weekday = 1u8 << t.weekday().to_sunday_zero_offset();
        let days = match self.days {
            Days::Every => true,
            Days::OfMonth(d) => d & day != 0,
            Days::OfWeek(w) => w & weekday != 0,
            Days::Either { of_month, of_week } => of_month & day != 0 || of_week & weekday != 0,
        };
        self.minutes & (1 << t.minute()) != 0
            && self.hours & (1 << t.hour()) != 0
            && self.months & (1 << t.month()) != 0
            && days
    }
}

/// A job's schedules as one cron line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronLine {
    pub fields: CronFields,
    /// [`CronFields::line`].
    pub line: String,
    /// The zone the line's times are in: the job's `timezone`, or the zone
    /// its expressions name (`UTC` for a ` UTC` suffix); `None` for the
    /// host's zone.
    pub zone: Option<String>,
    /// Schedules that are not on a calendar and were left out: triggers at
    /// boot (`@reboot`), each named as [`Schedule::subject`] does.
    pub at_boot: Vec<String>,
}

/// Why a job (or one of its schedules) cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What is refused: `the schedule "every 7min"`, `the calendar
    /// expression "…"`, `--name`, `the job`.
    pub subject: String,
    pub reason: String,
    pub hint: Option<String>,
}

impl Refusal {
    pub(crate) fn new(subject: impl Into<String>, reason: impl Into<String>) -> Self {
        Refusal {
            subject: subject.into(),
            reason: reason.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.reason)
    }
}

/// One calendar expression's values (systemd ANDs them all).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    minutes: u64,
    hours: u32,
    months: u16,
    days_of_month: u32,
    weekdays: u8,
    /// The expression, for messages.
    normalized: String,
}

/// The cron line that fires exactly when `schedules` do, computed in
/// `timezone` (the job's) unless an expression names its own zone. Every
/// schedule that cannot be written as cron is reported, not only the first.
pub fn cron_line(schedules: &[Schedule], timezone: Option<&str>) -> Result<CronLine, Vec<Refusal>> {
    let mut refusals = Vec::new();
    let mut terms: Vec<(Term, String)> = Vec::new();
    let mut zones: Vec<(Option<String>, String)> = Vec::new();
    let mut at_boot = Vec::new();
    for schedule in schedules {
        let subject = schedule.subject();
        let mut refused = false;
        for trigger in schedule.triggers() {
            match trigger {
                Trigger::Calendar(expr) => match term(&expr) {
                    Ok((term, zone)) => {
                        let zone = zone.or_else(|| timezone.map(str::to_string));
                        if !zones.iter().any(|(z, _)| *z == zone) {
                            zones.push((zone, subject.clone()));
                        }
                        terms.push((term, subject.clone()));
                    }
                    Err(refusal) if !refused => {
                        refused = true;
                        refusals.push(Refusal {
                            subject: subject.clone(),
                            ..refusal
                        });
                    }
                    Err(_) => {}
                },
                Trigger::Boot(_) => at_boot.push(subject.clone()),
                Trigger::Interval(span) => {
                    refused = true;
                    refusals.push(
                        Refusal::new(
                            subject.clone(),
                            format!(
                                "it starts a run {span} after the previous one started (a \
                                 monotonic timer), not at set times of the day, and a cron \
                                 line can only name times of the day"
                            ),
                        )
                        .hint(
                            "use an interval that divides an hour or a day (5min, 15min, \
                             20min, 2h, 6h, 1d …), or a cron line",
                        ),
                    );
                }
            }
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    if terms.is_empty() {
        let refusal = if at_boot.is_empty() {
            Refusal::new(
                "the job",
                "it has no schedule (manual = true), and a CronJob needs one",
            )
            .hint("a job that is only started by hand is a Kubernetes Job, not a CronJob")
        } else {
            Refusal::new(
                "the job",
                format!(
                    "it runs only at boot ({}), and a cluster has no boot to run at",
                    at_boot.join(", ")
                ),
            )
            .hint("give it a calendar schedule, or keep it on the host")
        };
        return Err(vec![refusal]);
    }
    if zones.len() > 1 {
        let listed: Vec<String> = zones
            .iter()
            .map(|(zone, subject)| {
                format!(
                    "{subject} in {}",
                    zone.as_deref().unwrap_or("the host's zone")
                )
            })
            .collect();
        return Err(vec![
            Refusal::new(
                "the job",
                format!(
                    "its schedules are in different time zones ({}), and a CronJob has one \
                     timeZone",
                    listed.join(", ")
                ),
            )
            .hint("write every schedule in one zone (the job's `timezone`)"),
        ]);
    }
    let zone = zones.pop().and_then(|(zone, _)| zone);
    match union(terms.iter().map(|(t, _)| t)) {
        Union::One(fields) => Ok(CronLine {
            line: fields.line(),
            fields,
            zone,
            at_boot,
        }),
        Union::Never => Err(vec![Refusal::new(
            "the job",
            "its schedules match no time that exists, so there is nothing to run",
        )]),
        Union::Many => {
            let both: Vec<Refusal> = terms
                .iter()
                .filter_map(|(t, subject)| {
                    t.both_day_fields().map(|r| Refusal {
                        subject: subject.clone(),
                        ..r
                    })
                })
                .collect();
            if !both.is_empty() {
                return Err(both);
            }
            let mut subjects: Vec<&str> = Vec::new();
            for (_, subject) in &terms {
                if !subjects.contains(&subject.as_str()) {
                    subjects.push(subject);
                }
            }
            Err(vec![
                Refusal::new(
                    "the job",
                    format!(
                        "its schedules ({}) together start runs at times that no single cron \
                         line names: cron allows one list of minutes, hours, days and months, \
                         and runs at every combination of them",
                        subjects.join(", ")
                    ),
                )
                .hint(
                    "split the job into one job per schedule and export each, or change the \
                     schedules so that one cron line covers them",
                ),
            ])
        }
    }
}

/// The values of one calendar expression, and the zone it names; or why
/// no cron line fires at its times.
fn term(expr: &str) -> Result<(Term, Option<String>), Refusal> {
    let refuse = |reason: String| Refusal::new(String::new(), reason);
    let spec = CalendarSpec::parse(expr).map_err(|e| {
        refuse(format!(
            "the calendar expression \"{expr}\" is invalid: {e}"
        ))
    })?;
    if let Some(warning) = spec.warnings().into_iter().next() {
        return Err(refuse(format!(
            "systemd computes \"{expr}\" wrongly after New Year ({}), so no cron line fires \
             at the same times",
            warning.message
        ))
        .hint(warning.hint));
    }
    if spec.local_abbreviation().is_some() {
        return Err(refuse(format!(
            "\"{expr}\" names the host's zone by an abbreviation, which no CronJob can name"
        ))
        .hint("use the job's `timezone` instead"));
    }
    let zone = if spec.is_utc() {
        Some("UTC".to_string())
    } else {
        spec.timezone().map(str::to_string)
    };
    let s = spec.spec();
    if !s.year.is_empty() {
        return Err(refuse(format!(
            "\"{}\" names years, and cron has no year field",
            spec.normalized()
        ))
        .hint("a CronJob repeats every year; delete it after its last run"));
    }
    if s.end_of_month {
        return Err(refuse(format!(
            "\"{}\" counts days from the end of the month (`~`), which cron cannot",
            spec.normalized()
        ))
        .hint("keep this job on systemd, or run it on days 28-31 and let the command check for the last day"));
    }
    if !whole_minutes(&s.microsecond) {
        return Err(refuse(format!(
            "\"{}\" starts runs at seconds past the minute, and cron starts them only on \
             whole minutes",
            spec.normalized()
        ))
        .hint("use :00 seconds, or an interval of whole minutes"));
    }
    let minutes = values(&s.minute, 0, 59);
    let hours = values(&s.hour, 0, 23) as u32;
    let months = values(&s.month, 1, 12) as u16;
    let days_of_month = values(&s.day, 1, 31) as u32;
    // systemd: bit 0 = Monday … 6 = Sunday; cron: 0 = Sunday.
    let weekdays = if s.weekdays_bits < 0 {
        ALL_WEEKDAYS
    } else {
        let monday_first = s.weekdays_bits as u8 & ALL_WEEKDAYS;
        ((monday_first << 1) | (monday_first >> 6)) & ALL_WEEKDAYS
    };
    Ok((
        Term {
            minutes,
            hours,
            months,
            days_of_month,
            weekdays,
            normalized: spec.normalized(),
        },
        zone,
    ))
}

impl Term {
    /// Why the term alone has no cron line: it names days that must be
    /// both a weekday and a day of the month.
    fn both_day_fields(&self) -> Option<Refusal> {
        (self.days_of_month & ALL_DAYS != ALL_DAYS && self.weekdays != ALL_WEEKDAYS).then(|| {
            Refusal::new(
                String::new(),
                format!(
                    "\"{}\" runs only on days that are both one of its weekdays and one of \
                     its days of the month, and cron runs when either matches (when both day \
                     fields are restricted)",
                    self.normalized
                ),
            )
            .hint(
                "keep this job on systemd, or schedule it on the days of the month and let \
                 the command check the weekday",
            )
        })
    }
}

/// Whether a seconds chain (in microseconds) names only `:00`.
fn whole_minutes(chain: &[Component]) -> bool {
    // An empty chain is every microsecond.
    const LAST_USEC: i32 = 60 * 1_000_000 - 1;
    !chain.is_empty()
        && chain.iter().all(|c| {
            let end = if c.stop < 0 { LAST_USEC } else { c.stop };
            c.start == 0 && (c.repeat == 0 || c.repeat > end)
        })
}

/// The values a component chain allows within `low..=high`, as bits; an
/// empty chain allows every value.
fn values(chain: &[Component], low: i32, high: i32) -> u64 {
    let all = (low..=high).fold(0u64, |bits, v| bits | 1 << v);
    if chain.is_empty() {
        return all;
    }
    let mut bits = 0u64;
    for c in chain {
        if c.repeat == 0 {
            if (low..=high).contains(&c.start) {
                bits |= 1 << c.start;
            }
            continue;
        }
        let end = if c.stop < 0 { high } else { c.stop.min(high) };
        let mut v = c.start;
        while v <= end {
            if v >= low {
                bits |= 1 << v;
            }
            v += c.repeat;
        }
    }
    bits & all
}

/// What the union of several terms is.
#[derive(Debug, PartialEq, Eq)]
enum Union {
    One(CronFields),
    /// No time at all.
    Never,
    /// Not one cron line.
    Many,
}

/// Cells: hour × month × day of month × weekday, each holding the minutes.
const CELLS: usize = 24 * 12 * 31 * 7;

fn cell(hour: u32, month: u32, day: u32, weekday: u32) -> usize {
    (((hour * 12 + (month - 1)) * 31 + (day - 1)) * 7 + weekday) as usize
}

/// The union of `terms` as one cron line, if it is one. Exact: every
/// (hour, month, day of month, weekday) cell of the union must hold the
/// same minutes, the cells that hold any must be every combination of their
/// hours, months and days, and those days must be a form cron can write.
fn union<'a>(terms: impl Iterator<Item = &'a Term>) -> Union {
    let mut cells = vec![0u64; CELLS];
    for t in terms {
        for hour in bits(u64::from(t.hours), 0, 23) {
            for month in bits(u64::from(t.months), 1, 12) {
                for day in bits(u64::from(t.days_of_month), 1, 31) {
                    for weekday in bits(u64::from(t.weekdays), 0, 6) {
                        cells[cell(hour, month, day, weekday)] |= t.minutes;
                    }
                }
            }
        }
    }
    let minutes = cells.iter().fold(0, |all, c| all | c);
    if minutes == 0 {
        return Union::Never;
    }
    let (mut hours, mut months) = (0u32, 0u16);
    // Bit w of pairs[d] = the pair (day d, weekday w) is in the union.
    let mut pairs = [0u8; 32];
    let mut filled = 0usize;
    for hour in 0..24 {
        for month in 1..=12 {
            for day in 1..=31 {
                for weekday in 0..7 {
                    let c = cells[cell(hour, month, day, weekday)];
                    if c == 0 {
                        continue;
                    }
                    if c != minutes {
                        return Union::Many;
                    }
                    filled += 1;
                    hours |= 1 << hour;
                    months |= 1 << month;
                    pairs[day as usize] |= 1 << weekday;
                }
            }
        }
    }
    let pair_count: usize = pairs.iter().map(|p| p.count_ones() as usize).sum();
    if filled != hours.count_ones() as usize * months.count_ones() as usize * pair_count {
        return Union::Many;
    }
    // The days whose every weekday is in, the weekdays whose every day is.
    let mut of_month = 0u32;
    for (day, weekdays) in pairs.iter().enumerate().skip(1) {
        if *weekdays == ALL_WEEKDAYS {
            of_month |= 1 << day;
        }
    }
    let mut of_week = 0u8;
    for weekday in 0..7 {
        if (1..=31).all(|day| pairs[day] & (1 << weekday) != 0) {
            of_week |= 1 << weekday;
        }
    }
    // The union's days must be exactly "in of_month, or in of_week".
    for (day, weekdays) in pairs.iter().enumerate().skip(1) {
        let expected = if of_month & (1 << day) != 0 {
            ALL_WEEKDAYS
        } else {
            of_week
        };
        if *weekdays != expected {
            return Union::Many;
        }
    }
    let days = if of_month == ALL_DAYS || of_week == ALL_WEEKDAYS {
        Days::Every
    } else if of_week == 0 {
        Days::OfMonth(of_month)
    } else if of_month == 0 {
        Days::OfWeek(of_week)
    } else {
        Days::Either { of_month, of_week }
    };
    Union::One(CronFields {
        minutes,
        hours,
        months,
        days,
    })
}

/// The set bits of `bits` within `low..=high`.
fn bits(bits: u64, low: u32, high: u32) -> impl Iterator<Item = u32> {
    (low..=high).filter(move |v| bits & (1 << v) != 0)
}

/// A field that may use `*` and `*/N`: minutes, hours, months. (In a day
/// field `*/N` means different things to Vixie cron and Kubernetes, see the
/// module documentation, so days are always written as lists.)
fn field(bits: u64, low: u32, high: u32) -> String {
    let values: Vec<u32> = self::bits(bits, low, high).collect();
    if values.len() == (high - low + 1) as usize {
        return "*".into();
    }
    if values.len() >= 2 && values[0] == low {
        let step = values[1] - values[0];
        let full = (low..=high).step_by(step as usize).collect::<Vec<_>>();
        if step > 1 && full == values {
            return format!("*/{step}");
        }
    }
    list(bits, low, high)
}

/// A list of values: `a-b/s` for one arithmetic progression of three or
/// more, else `a-b` for runs of three or more and single values.
fn list(bits: u64, low: u32, high: u32) -> String {
    let values: Vec<u32> = self::bits(bits, low, high).collect();
    if values.len() >= 3 {
        let step = values[1] - values[0];
        if step > 1 && values.windows(2).all(|w| w[1] - w[0] == step) {
            return format!("{}-{}/{step}", values[0], values[values.len() - 1]);
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j - i >= 2 {
            let _ = write!(out, "{}-{}", values[i], values[j]);
        } else {
            let singles: Vec<String> = values[i..=j].iter().map(u32::to_string).collect();
            out.push_str(&singles.join(","));
        }
        i = j + 1;
    }
    out
}

/// A fall-back change of the clock in which Kubernetes starts the CronJob
/// a second time: robfig/cron follows the wall clock, so a time in the
/// repeated hour that the line matches comes round twice (systemd's timer
/// fires once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatedRuns {
    /// The first instant of the repeated wall-clock time, on the new offset.
    pub change: jiff::Zoned,
    /// The second starts: each a time the clock shows twice, at its second
    /// occurrence.
    pub again: Vec<jiff::Zoned>,
}

/// The fall-back changes of `zone` from `from` until `until` in which a
/// CronJob with `fields` would start twice at the same wall-clock time.
pub fn repeated_runs(
    fields: &CronFields,
    zone: &TimeZone,
    from: Timestamp,
    until: Timestamp,
) -> Vec<RepeatedRuns> {
    let mut out = Vec::new();
    for transition in zone.following(from) {
        let at = transition.timestamp();
        if at >= until {
            break;
        }
        let after = transition.offset();
        let Ok(just_before) = at.checked_sub(jiff::SignedDuration::from_secs(1)) else {
            continue;
        };
        let before = zone.to_offset(just_before);
        if after.seconds() >= before.seconds() {
            continue;
        }
        // Wall-clock times from `at` on the new offset up to `at` on the
        // old one are shown twice; the second time on the new offset.
        let first = after.to_datetime(at);
        let last = before.to_datetime(at);
        let mut minute = match first.round(jiff::Unit::Minute) {
            Ok(m) if m < first => m.checked_add(jiff::SignedDuration::from_mins(1)).ok(),
            Ok(m) => Some(m),
            Err(_) => None,
        };
        let mut again = Vec::new();
        while let Some(m) = minute.filter(|m| *m < last) {
            if fields.matches(m)
                && let Ok(instant) = after.to_timestamp(m)
            {
                again.push(instant.to_zoned(zone.clone()));
            }
            minute = m.checked_add(jiff::SignedDuration::from_mins(1)).ok();
        }
        if !again.is_empty() {
            out.push(RepeatedRuns {
                change: at.to_zoned(zone.clone()),
                again,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
