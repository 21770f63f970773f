//! Classic cron schedules (`*/15 9-17 * * 1-5`, `@daily`) and their
//! translation into systemd `OnCalendar=` lines with the same meaning.
//!
//! The accepted syntax is Vixie cron's as Debian ships it (cron 3.0pl1):
//! five fields (minute, hour, day of month, month, day of week); `*`, lists,
//! ranges `a-b`, steps `*/n` and `a-b/n`; three-letter month and weekday
//! names in any case; `0` and `7` both Sunday; and the macros `@reboot`,
//! `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//! `@hourly`. Where Vixie cron silently accepts nonsense (trailing garbage
//! after a field, backwards ranges that never match) jobctl rejects the line
//! and says why; Quartz extensions (`L`, `W`, `#`, `?`, a seconds or year
//! field) are rejected with the systemd equivalent where one exists.
//!
//! # The day-of-month / day-of-week rule
//!
//! When both day fields are restricted, cron runs when *either* matches;
//! otherwise both must. Vixie cron decides "restricted" by the field's first
//! character: a field starting with `*` (including `*/2`) counts as
//! unrestricted. systemd always requires weekday *and* date to match, so an
//! OR needs two `OnCalendar=` lines, one per day field:
//!
//! ```
//! let t = jobctl_core::cron::parse("0 12 1 * Mon")?.to_systemd();
//! assert_eq!(t.on_calendar, ["*-*-01 12:00:00", "Mon *-*-* 12:00:00"]);
//! let t = jobctl_core::cron::parse("0 12 */2 * Mon")?.to_systemd();
//! assert_eq!(t.on_calendar, ["Mon *-*-01..31/2 12:00:00"]);
//! # Ok::<(), jobctl_core::cron::CronError>(())
//! ```
//!
//! # Daylight saving time
//!
//! cron and systemd differ around DST changes, and the translation cannot
//! change that: Vixie cron runs jobs whose time was skipped by a
//! spring-forward jump right after the jump, and runs jobs with `*` in the
//! minute or hour field again in a repeated fall-back hour; systemd skips
//! times in the gap and fires only once in an overlap. docs/schedules.md
//! has the details.

use std::fmt;
use std::ops::Range;

use crate::calendar::CalendarSpec;

/// A cron line that jobctl does not accept, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError {
    message: String,
    span: Range<usize>,
    hint: Option<String>,
}

impl CronError {
    fn new(message: impl Into<String>, span: Range<usize>) -> Self {
        CronError {
            message: message.into(),
            span,
            hint: None,
        }
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Byte range of the offending part of the line.
    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// How to fix it, e.g. the systemd equivalent of a Quartz extension.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CronError {}

/// The five fields, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl CronField {
    const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        }
    }

    /// Vixie cron's bounds (day of week 0..7, both ends Sunday).
    fn bounds(self) -> (u32, u32) {
        match self {
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfMonth => (1, 31),
            CronField::Month => (1, 12),
            CronField::DayOfWeek => (0, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            CronField::Month => &[
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ],
            // Vixie's list has Sun at both ends; the first match wins.
            CronField::DayOfWeek => &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            _ => &[],
        }
    }
}

/// Which `@` macro a line used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronMacro {
    Reboot,
    Yearly,
    Annually,
    Monthly,
    Weekly,
    Daily,
    Midnight,
    Hourly,
}

impl CronMacro {
    const ALL: [(&'static str, CronMacro); 8] = [
        ("reboot", CronMacro::Reboot),
        ("yearly", CronMacro::Yearly),
        ("annually", CronMacro::Annually),
        ("monthly", CronMacro::Monthly),
        ("weekly", CronMacro::Weekly),
        ("daily", CronMacro::Daily),
        ("midnight", CronMacro::Midnight),
        ("hourly", CronMacro::Hourly),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(n, _)| n)
    }
}

/// A parsed cron schedule: the set of minutes, hours, days, months and
/// weekdays it allows, and the flags that decide how the two day fields
/// combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    source: String,
    macro_: Option<CronMacro>,
    /// Bit n = minute n.
    minutes: u64,
    /// Bit n = hour n.
    hours: u32,
    /// Bit n = day n (1..=31).
    days: u32,
    /// Bit n = month n (1..=12).
    months: u16,
    /// Bit n = weekday n, 0 = Sunday .. 6 = Saturday (7 folded into 0).
    weekdays: u8,
    /// The day-of-month field started with `*`.
    dom_star: bool,
    /// The day-of-week field started with `*`.
    dow_star: bool,
    /// The minute or hour field started with `*` (Vixie cron treats such
    /// "wildcard" jobs differently across DST changes).
    wildcard_time: bool,
}

/// `OnCalendar=` lines (their union is the cron schedule) and whether the
/// line is `@reboot` (a boot-time trigger, `OnBootSec=`, not a calendar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronTranslation {
    pub on_calendar: Vec<String>,
    pub on_boot: bool,
}

/// Parses a cron schedule: five fields or an `@` macro (without the command).
pub fn parse(line: &str) -> Result<CronSchedule, CronError> {
    let trimmed_start = line.len() - line.trim_start_matches([' ', '\t']).len();
    let body = line.trim_matches([' ', '\t']);
    if body.is_empty() {
        return Err(CronError::new("empty cron line", 0..line.len())
            .with_hint("a cron line has five fields: minute hour day-of-month month day-of-week, e.g. `*/15 * * * *`"));
    }
    if let Some(name) = body.strip_prefix('@') {
        return parse_macro(line, name, trimmed_start);
    }

    // Fields and their byte offsets in `line`.
    let mut fields: Vec<(usize, &str)> = Vec::new();
    let mut i = 0;
    let bytes = line.as_bytes();
    while i < bytes.len() {
        if matches!(bytes[i], b' ' | b'\t') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        fields.push((start, &line[start..i]));
    }
    if fields.len() != 5 {
        return Err(field_count_error(line, &fields));
    }

    let mut schedule = CronSchedule {
        source: line.to_string(),
        macro_: None,
        minutes: 0,
        hours: 0,
        days: 0,
        months: 0,
        weekdays: 0,
        dom_star: false,
        dow_star: false,
        wildcard_time: false,
    };
    for (field, &(offset, text)) in CronField::ALL.into_iter().zip(&fields) {
        let bits = parse_field(field, text, offset)?;
        let star = text.starts_with('*');
        match field {
            CronField::Minute => {
                schedule.minutes = bits;
                schedule.wildcard_time |= star;
            }
            CronField::Hour => {
                schedule.hours = bits as u32;
                schedule.wildcard_time |= star;
            }
            CronField::DayOfMonth => {
                schedule.days = bits as u32;
                schedule.dom_star = star;
            }
            CronField::Month => schedule.months = bits as u16,
            CronField::DayOfWeek => {
                // Sunday is both 0 and 7.
                let folded = (bits & 0x7f) | ((bits >> 7) & 1);
                schedule.weekdays = folded as u8;
                schedule.dow_star = star;
            }
        }
    }
    Ok(schedule)
}

fn parse_macro(line: &str, name: &str, offset: usize) -> Result<CronSchedule, CronError> {
    let span = offset..offset + 1 + name.len();
    let Some(&(_, m)) = CronMacro::ALL.iter().find(|(n, _)| *n == name) else {
        let mut e = CronError::new(format!("unknown cron macro \"@{name}\""), span);
        let lower = name.to_ascii_lowercase();
        e = if CronMacro::ALL.iter().any(|(n, _)| *n == lower) {
            e.with_hint(format!("cron macros are lowercase: @{lower}"))
        } else if name.contains([' ', '\t']) {
            e.with_hint("give the macro alone, without the command")
        } else {
            e.with_hint("the macros are @reboot, @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly")
        };
        return Err(e);
    };
    let all_hours = (1u32 << 24) - 1;
    let all_days = ((1u32 << 31) - 1) << 1;
    let all_months = ((1u16 << 12) - 1) << 1;
    let all_weekdays = 0x7f;
    // Vixie cron's macro table (entry.c), flags included.
    let (minutes, hours, days, months, weekdays, dom_star, dow_star, wildcard_time) = match m {
        CronMacro::Reboot => (0, 0, 0, 0, 0, false, false, false),
        CronMacro::Yearly | CronMacro::Annually => {
            (1, 1, 1 << 1, 1 << 1, all_weekdays, false, true, false)
        }
        CronMacro::Monthly => (1, 1, 1 << 1, all_months, all_weekdays, false, true, false),
        CronMacro::Weekly => (1, 1, all_days, all_months, 1, true, false, false),
        CronMacro::Daily | CronMacro::Midnight => (
            1,
            1,
            all_days,
            all_months,
            all_weekdays,
            false,
            false,
            false,
        ),
        CronMacro::Hourly => (
            1,
            all_hours,
            all_days,
            all_months,
            all_weekdays,
            false,
            false,
            true,
        ),
    };
    Ok(CronSchedule {
        source: line.to_string(),
        macro_: Some(m),
        minutes,
        hours,
        days,
        months,
        weekdays,
        dom_star,
        dow_star,
        wildcard_time,
    })
}

fn field_count_error(line: &str, fields: &[(usize, &str)]) -> CronError {
    let span =
        fields.first().map_or(0, |f| f.0)..fields.last().map_or(line.len(), |f| f.0 + f.1.len());
    let n = fields.len();
    let e = CronError::new(
        format!(
            "found {n} field{}; a cron line has 5: minute hour day-of-month month day-of-week",
            if n == 1 { "" } else { "s" }
        ),
        span,
    );
    if n == 6 || n == 7 {
        let last = fields[n - 1].1;
        let year_like = last.len() == 4 && last.bytes().all(|b| b.is_ascii_digit() || b == b'*');
        let what = if n == 7 || !year_like {
            "a seconds field (and a year field) are Quartz/Spring extensions"
        } else {
            "a year field is a Quartz extension"
        };
        e.with_hint(format!(
            "{what}, not cron; drop them, or write a systemd calendar expression (`on_calendar`), \
             which has seconds and years: e.g. `*-*-* *:*:30`"
        ))
    } else if n > 7 {
        e.with_hint("only the schedule goes here; the command is a separate key")
    } else {
        e.with_hint("e.g. `30 2 * * *` for 02:30 every day")
    }
}

/// Parses one field into a bit set (bit n = value n).
fn parse_field(field: CronField, text: &str, offset: usize) -> Result<u64, CronError> {
    let (low, high) = field.bounds();
    let span_of = |r: Range<usize>| offset + r.start..offset + r.end;
    quartz_check(field, text, offset)?;
    let mut bits: u64 = 0;
    let mut pos = 0;
    for element in text.split(',') {
        let el_span = pos..pos + element.len();
        pos += element.len() + 1;
        if element.is_empty() {
            // Point at the comma next to the empty element.
            let comma = if el_span.start < text.len() {
                el_span.start
            } else {
                el_span.start - 1
            };
            return Err(CronError::new(
                format!("empty element in the {} field \"{text}\"", field.name()),
                span_of(comma..comma + 1),
            )
            .with_hint("separate values with single commas, e.g. `1,15,30`"));
        }
        if range_text_has_extra_dash(element) {
            return Err(CronError::new(
                format!("\"{element}\" in the {} field is not a range", field.name()),
                span_of(el_span.clone()),
            )
            .with_hint("a range has one `-`, e.g. `1-5`; list ranges with commas"));
        }
        let (range_text, step_text) = match element.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (element, None),
        };
        if range_text.starts_with('*') && range_text != "*" {
            return Err(CronError::new(
                format!(
                    "`*` cannot be combined with a value: \"{range_text}\" in the {} field",
                    field.name()
                ),
                span_of(el_span.start..el_span.start + range_text.len()),
            )
            .with_hint("write `*` alone, `*/N` for a step, or a range such as `0-5`"));
        }
        let (first, last) = if range_text == "*" {
            (low, high)
        } else if let Some((a, b)) = range_text.split_once('-') {
            let a_span = el_span.start..el_span.start + a.len();
            let b_span = a_span.end + 1..a_span.end + 1 + b.len();
            let dash = span_of(a_span.end..a_span.end + 1);
            let a = number(
                field,
                a,
                if a.is_empty() {
                    dash.clone()
                } else {
                    span_of(a_span.clone())
                },
            )?;
            let b = number(field, b, if b.is_empty() { dash } else { span_of(b_span) })?;
            if a > b {
                let hint = if field == CronField::DayOfWeek || field == CronField::Hour {
                    format!(
                        "cron does not wrap around; split it: `{a}-{high},{low}-{b}`",
                        high = if field == CronField::DayOfWeek {
                            6
                        } else {
                            high
                        }
                    )
                } else {
                    "write ranges from the smaller to the larger value".to_string()
                };
                return Err(CronError::new(
                    format!(
                        "range {range_text} in the {} field runs backwards (cron ignores it)",
                        field.name()
                    ),
                    span_of(el_span.start..el_span.start + range_text.len()),
                )
                .with_hint(hint));
            }
            (a, b)
        } else {
            let v = number(
                field,
                range_text,
                span_of(el_span.start..el_span.start + range_text.len()),
            )?;
            if step_text.is_some() {
                return Err(CronError::new(
                    format!(
                        "a step needs a range: \"{element}\" in the {} field",
                        field.name()
                    ),
                    span_of(el_span.clone()),
                )
                .with_hint(format!(
                    "Debian's cron rejects `N/step`; write `{v}-{high}/{}` to start at {v}",
                    step_text.unwrap_or("N")
                )));
            }
            (v, v)
        };
        let step = match step_text {
            None => 1,
            Some(s) => {
                let s_span = el_span.start + range_text.len() + 1..el_span.end;
                if s.is_empty() {
                    return Err(CronError::new(
                        format!("missing step after `/` in the {} field", field.name()),
                        span_of(s_span.start - 1..s_span.start),
                    )
                    .with_hint("e.g. `*/15`"));
                }
                if !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CronError::new(
                        format!("step \"{s}\" in the {} field is not a number", field.name()),
                        span_of(s_span),
                    ));
                }
                let n: u32 = s.parse().unwrap_or(u32::MAX);
                if n == 0 {
                    return Err(CronError::new(
                        format!("step 0 in the {} field never advances", field.name()),
                        span_of(s_span),
                    )
                    .with_hint("use a step of at least 1"));
                }
                n
            }
        };
        let mut v = first;
        while v <= last {
            bits |= 1 << v;
            v = match v.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
    }
    Ok(bits)
}

/// Whether the range part of `element` (before any `/`) has two `-`.
fn range_text_has_extra_dash(element: &str) -> bool {
    let range = element.split('/').next().unwrap_or(element);
    range.matches('-').count() > 1
}

/// A value: digits or (month, weekday) a three-letter name in any case.
fn number(field: CronField, text: &str, span: Range<usize>) -> Result<u32, CronError> {
    let (low, high) = field.bounds();
    if let Some(i) = field
        .names()
        .iter()
        .position(|n| n.eq_ignore_ascii_case(text))
    {
        return Ok(i as u32 + if field == CronField::Month { 1 } else { 0 });
    }
    if text.is_empty() {
        return Err(CronError::new(
            format!("missing value in the {} field", field.name()),
            span,
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        let mut e = CronError::new(
            format!("\"{text}\" is not a valid {} value", field.name()),
            span,
        );
        e = match field {
            CronField::Month => e.with_hint("months are 1-12 or Jan..Dec"),
            CronField::DayOfWeek => {
                e.with_hint("weekdays are 0-7 (0 and 7 are Sunday) or Sun..Sat")
            }
            _ => e.with_hint(format!("{} values are numbers {low}-{high}", field.name())),
        };
        return Err(e);
    }
    let v: u32 = text.parse().unwrap_or(u32::MAX);
    if v < low || v > high {
        let mut e = CronError::new(
            format!("{} {v} is out of range {low}-{high}", field.name()),
            span,
        );
        if field == CronField::Hour && v == 24 {
            e = e.with_hint("midnight is hour 0");
        } else if field == CronField::Month && v == 0 {
            e = e.with_hint("months count from 1 (January)");
        } else if field == CronField::DayOfMonth && v == 0 {
            e = e.with_hint("days of the month count from 1");
        }
        return Err(e);
    }
    Ok(v)
}

/// Rejects Quartz/Spring extensions with a message that names them and the
/// systemd equivalent where there is one.
fn quartz_check(field: CronField, text: &str, offset: usize) -> Result<(), CronError> {
    let span = offset..offset + text.len();
    let upper = text.to_ascii_uppercase();
    if text == "?" {
        return Err(CronError::new(
            format!(
                "`?` in the {} field is a Quartz extension, not cron",
                field.name()
            ),
            span,
        )
        .with_hint("write `*`"));
    }
    if let Some(hash) = text.find('#') {
        let (day, nth) = (&text[..hash], &text[hash + 1..]);
        let mut e = CronError::new(
            format!("`#` (\"{text}\": nth weekday of the month) is a Quartz extension, not cron"),
            span,
        );
        if field == CronField::DayOfWeek
            && let (Ok(d), Ok(n)) = (number(field, day, 0..0), nth.parse::<u32>())
            && (1..=5).contains(&n)
        {
            let first = (n - 1) * 7 + 1;
            let lastd = (n * 7).min(31);
            e = e.with_hint(format!(
                        "systemd expresses it as `{} *-*-{first:02}..{lastd:02}` (an `on_calendar` schedule)",
                        systemd_day_name(d % 7)
                    ));
        }
        return Err(e);
    }
    if field == CronField::DayOfMonth && (upper == "L" || upper.starts_with("L-")) {
        let back: u32 = upper
            .strip_prefix("L-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return Err(CronError::new(
            "`L` (last day of the month) is a Quartz extension, not cron",
            span,
        )
        .with_hint(format!(
            "systemd expresses it as `*-*~{:02}` (an `on_calendar` schedule, e.g. `*-*~{:02} 00:00`)",
            back + 1,
            back + 1
        )));
    }
    if field == CronField::DayOfMonth
        && upper.contains('W')
        && upper.bytes().any(|b| b.is_ascii_digit() || b == b'L')
    {
        return Err(CronError::new(
            format!("`W` (\"{text}\": nearest weekday) is a Quartz extension, not cron"),
            span,
        )
        .with_hint("systemd has no equivalent; combine a weekday range and days, e.g. `Mon..Fri *-*-01..03`"));
    }
    if field == CronField::DayOfWeek && upper.ends_with('L') && upper.len() > 1 {
        let day = &text[..text.len() - 1];
        let mut e = CronError::new(
            format!(
                "`L` (\"{text}\": last such weekday of the month) is a Quartz extension, not cron"
            ),
            span,
        );
        if let Ok(d) = number(field, day, 0..0) {
            e = e.with_hint(format!(
                "systemd expresses it as `{} *-*~01..07`: that weekday within the last seven days \
                 of the month (an `on_calendar` schedule)",
                systemd_day_name(d % 7)
            ));
        }
        return Err(e);
    }
    if upper == "L" {
        return Err(CronError::new(
            format!(
                "`L` in the {} field is a Quartz extension, not cron",
                field.name()
            ),
            span,
        ));
    }
    Ok(())
}

fn systemd_day_name(sunday_based: u32) -> &'static str {
    ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][sunday_based as usize % 7]
}

impl CronSchedule {
    /// The line as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The `@` macro used, if any.
    pub fn macro_name(&self) -> Option<CronMacro> {
        self.macro_
    }

    /// `@reboot`: runs at boot, not on a calendar.
    pub fn is_reboot(&self) -> bool {
        self.macro_ == Some(CronMacro::Reboot)
    }

    /// Whether Vixie cron treats this as a "wildcard" job (minute or hour
    /// field starting with `*`), which matters only across DST changes.
    pub fn is_wildcard_time(&self) -> bool {
        self.wildcard_time
    }

    /// Whether the day fields combine with OR (both restricted).
    pub fn days_are_ored(&self) -> bool {
        !self.dom_star && !self.dow_star && !self.is_reboot()
    }

    /// The `OnCalendar=` lines that fire exactly when cron runs this line
    /// (in the same time zone, outside DST changes), in normalized form.
    pub fn to_systemd(&self) -> CronTranslation {
        if self.is_reboot() {
            return CronTranslation {
                on_calendar: Vec::new(),
                on_boot: true,
            };
        }
        let time = format!(
            "{}:{}:00",
            compress(u64::from(self.hours), 0, 23),
            compress(self.minutes, 0, 59)
        );
        let months = compress(u64::from(self.months), 1, 12);
        let days = compress(u64::from(self.days), 1, 31);
        let all_weekdays = self.weekdays & 0x7f == 0x7f;
        let all_days = self.days == ((1u32 << 31) - 1) << 1;

        let mut lines = Vec::new();
        if self.dom_star || self.dow_star {
            // Both day fields must match.
            lines.push(line(
                weekday_list(self.weekdays, all_weekdays),
                &months,
                &days,
                &time,
            ));
        } else if all_weekdays || all_days {
            // Either field matching any day means every day.
            lines.push(line(None, &months, "*", &time));
        } else {
            lines.push(line(None, &months, &days, &time));
            lines.push(line(
                weekday_list(self.weekdays, false),
                &months,
                "*",
                &time,
            ));
        }
        CronTranslation {
            on_calendar: lines,
            on_boot: false,
        }
    }
}

/// Builds one expression and returns systemd's normalized form of it.
fn line(weekdays: Option<String>, months: &str, days: &str, time: &str) -> String {
    let expr = match weekdays {
        Some(w) => format!("{w} *-{months}-{days} {time}"),
        None => format!("*-{months}-{days} {time}"),
    };
    match CalendarSpec::parse(&expr) {
        Ok(spec) => spec.normalized(),
        // Cannot happen: every part is built within systemd's ranges.
        Err(_) => expr,
    }
}

/// systemd weekday names for the set bits (Sunday = bit 0), or `None` when
/// all seven are set.
fn weekday_list(bits: u8, all: bool) -> Option<String> {
    if all || bits & 0x7f == 0x7f {
        return None;
    }
    // Monday first, as systemd writes weeks.
    let order = [1, 2, 3, 4, 5, 6, 0];
    let names: Vec<&str> = order
        .iter()
        .filter(|&&d| bits & (1 << d) != 0)
        .map(|&d| systemd_day_name(d))
        .collect();
    Some(names.join(","))
}

/// Writes a set of values within `low..=high` as a systemd component list:
/// `*`, `a..b/s` for arithmetic progressions, `a..b` for runs of three or
/// more, single values otherwise.
///
/// Repetitions are always bounded (`0..45/15`, never `0/15`): systemd 252
/// mishandles an open-ended repetition that overshoots into the next year —
/// `*-*-* 00/5:00:00` skips 00:00 on January 1, and in zones with DST
/// `*-01/5-11` can make it give up ("Infinite loop in calendar
/// calculation"). A bounded one never overshoots.
fn compress(bits: u64, low: u32, high: u32) -> String {
    let values: Vec<u32> = (low..=high).filter(|v| bits & (1 << v) != 0).collect();
    if values.len() == (high - low + 1) as usize {
        return "*".to_string();
    }
    if values.len() >= 3 {
        let step = values[1] - values[0];
        if values.windows(2).all(|w| w[1] - w[0] == step) {
            let (first, last) = (values[0], values[values.len() - 1]);
            return if step == 1 {
                format!("{first}..{last}")
            } else {
                format!("{first}..{last}/{step}")
            };
        }
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            parts.push(format!("{}..{}", values[i], values[j]));
        } else {
            for v in &values[i..=j] {
                parts.push(v.to_string());
            }
        }
        i = j + 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests;
