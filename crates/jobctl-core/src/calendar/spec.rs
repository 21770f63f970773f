//! The parsed form of a calendar expression and the two things systemd does
//! to it right after parsing: normalization (sorting, deduplicating and
//! trimming each component list) and validation (ranges and repetitions that
//! fit their field). Also the normalized text form, byte for byte what
//! `systemd-analyze calendar` prints as "Normalized form".

use std::fmt::Write as _;
use std::ops::Range;

use super::error::{CalendarError, ErrorKind};

/// All seven weekdays set (bit 0 = Monday … bit 6 = Sunday).
pub(crate) const BITS_WEEKDAYS: i32 = 127;
pub(crate) const MIN_YEAR: i32 = 1970;
pub(crate) const MAX_YEAR: i32 = 2199;
pub(crate) const USEC_PER_SEC: i32 = 1_000_000;

/// One element of a component list: `start`, `start..stop`, `start/repeat`
/// or `start..stop/repeat`. `stop` is -1 when absent, `repeat` 0 when absent.
/// Seconds are stored in microseconds, as systemd does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Component {
    pub start: i32,
    pub stop: i32,
    pub repeat: i32,
    /// Where this element was written in the expression (empty for the
    /// elements shorthands like `daily` imply).
    pub span: Range<usize>,
}

impl Component {
    pub fn value(start: i32) -> Self {
        Component {
            start,
            stop: -1,
            repeat: 0,
            span: 0..0,
        }
    }

    fn key(&self) -> (i32, i32, i32) {
        (self.start, self.stop, self.repeat)
    }
}

/// A component list; empty means `*` (every value) for all fields but the
/// seconds, where `*` is written as `0/1` (every whole second).
pub(crate) type Chain = Vec<Component>;

/// What a trailing zone word resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Zone {
    /// No suffix: the host's local zone.
    Local,
    /// ` UTC` (any case).
    Utc,
    /// An IANA zone name, e.g. `Europe/Berlin`.
    Named(String),
    /// One of the local zone's own abbreviations (glibc's `tzname[]`), e.g.
    /// `EDT` on a host in America/New_York: local time with DST forced on
    /// (`dst` = 1) or off (0).
    LocalAbbreviation { name: String, dst: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Bit 0 = Monday … bit 6 = Sunday; -1 = any day.
    pub weekdays_bits: i32,
    /// `~` between month and day: days count from the end of the month.
    pub end_of_month: bool,
    /// Computed in UTC (` UTC` suffix or an `@EPOCH` expression).
    pub utc: bool,
    pub zone: Zone,
    /// Where the zone suffix was written.
    pub zone_span: Option<Range<usize>>,
    pub year: Chain,
    pub month: Chain,
    pub day: Chain,
    pub hour: Chain,
    pub minute: Chain,
    pub microsecond: Chain,
}

impl Spec {
    pub fn empty() -> Self {
        Spec {
            weekdays_bits: 0,
            end_of_month: false,
            utc: false,
            zone: Zone::Local,
            zone_span: None,
            year: Vec::new(),
            month: Vec::new(),
            day: Vec::new(),
            hour: Vec::new(),
            minute: Vec::new(),
            microsecond: Vec::new(),
        }
    }

    /// The `tm_isdst` systemd forces while computing (-1 = let mktime decide).
    pub fn dst(&self) -> i32 {
        match self.zone {
            Zone::LocalAbbreviation { dst, .. } => dst,
            _ => -1,
        }
    }

    /// systemd's `calendar_spec_normalize`.
    pub fn normalize(&mut self) {
        if self.weekdays_bits <= 0 || self.weekdays_bits >= BITS_WEEKDAYS {
            self.weekdays_bits = -1;
        }
        if self.end_of_month && self.day.is_empty() {
            self.end_of_month = false;
        }
        fix_year(&mut self.year);
        for chain in [
            &mut self.year,
            &mut self.month,
            &mut self.day,
            &mut self.hour,
            &mut self.minute,
            &mut self.microsecond,
        ] {
            normalize_chain(chain);
        }
    }

    /// systemd's `calendar_spec_valid`, reporting the first offending element.
    pub fn validate(&self) -> Result<(), CalendarError> {
        chain_valid(&self.year, Field::Year, false)?;
        chain_valid(&self.month, Field::Month, false)?;
        chain_valid(&self.day, Field::Day, self.end_of_month)?;
        chain_valid(&self.hour, Field::Hour, false)?;
        chain_valid(&self.minute, Field::Minute, false)?;
        chain_valid(&self.microsecond, Field::Second, false)?;
        Ok(())
    }

    /// The normalized form (systemd's `calendar_spec_to_string`).
    pub fn to_normalized_string(&self) -> String {
        let mut out = String::new();
        if self.weekdays_bits > 0 && self.weekdays_bits <= BITS_WEEKDAYS {
            format_weekdays(&mut out, self.weekdays_bits);
            out.push(' ');
        }
        format_chain(&mut out, 4, &self.year, false);
        out.push('-');
        format_chain(&mut out, 2, &self.month, false);
        out.push(if self.end_of_month { '~' } else { '-' });
        format_chain(&mut out, 2, &self.day, false);
        out.push(' ');
        format_chain(&mut out, 2, &self.hour, false);
        out.push(':');
        format_chain(&mut out, 2, &self.minute, false);
        out.push(':');
        format_chain(&mut out, 2, &self.microsecond, true);

        if self.utc {
            out.push_str(" UTC");
        } else {
            match &self.zone {
                Zone::Named(name) | Zone::LocalAbbreviation { name, .. } => {
                    out.push(' ');
                    out.push_str(name);
                }
                Zone::Local | Zone::Utc => {}
            }
        }
        out
    }
}

/// Two-digit years: 0..69 → 2000..2069, 70..99 → 1970..1999.
fn fix_year(chain: &mut Chain) {
    for c in chain {
        if (0..70).contains(&c.start) {
            c.start += 2000;
        }
        if (0..70).contains(&c.stop) {
            c.stop += 2000;
        }
        if (70..100).contains(&c.start) {
            c.start += 1900;
        }
        if (70..100).contains(&c.stop) {
            c.stop += 1900;
        }
    }
}

/// systemd's `normalize_chain`: trim each range to a whole number of
/// repetitions, drop repetitions that can never fire twice, then sort and
/// deduplicate.
fn normalize_chain(chain: &mut Chain) {
    for c in chain.iter_mut() {
        if c.stop > c.start && c.repeat > 0 {
            c.stop -= (c.stop - c.start) % c.repeat;
        }
        if (c.stop > c.start && c.repeat > 0 && c.start + c.repeat > c.stop) || c.start == c.stop {
            c.repeat = 0;
            c.stop = -1;
        }
    }
    if chain.len() <= 1 {
        return;
    }
    // Stable sort, then keep the last of equal elements as systemd does (it
    // frees the earlier duplicates); only the span can tell them apart.
    chain.sort_by_key(Component::key);
    let mut out: Chain = Vec::with_capacity(chain.len());
    for c in chain.drain(..).rev() {
        if out.last().is_some_and(|n| n.key() == c.key()) {
            continue;
        }
        out.push(c);
    }
    out.reverse();
    *chain = out;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Year => "year",
            Field::Month => "month",
            Field::Day => "day",
            Field::Hour => "hour",
            Field::Minute => "minute",
            Field::Second => "second",
        }
    }

    fn bounds(self) -> (i32, i32) {
        match self {
            Field::Year => (MIN_YEAR, MAX_YEAR),
            Field::Month => (1, 12),
            Field::Day => (1, 31),
            Field::Hour => (0, 23),
            Field::Minute => (0, 59),
            Field::Second => (0, 60 * USEC_PER_SEC - 1),
        }
    }
}

/// Formats a stored value of `field` for an error message.
fn show(field: Field, v: i32) -> String {
    if field == Field::Second {
        let mut s = (v / USEC_PER_SEC).to_string();
        if v % USEC_PER_SEC > 0 {
            let frac = format!("{:06}", v % USEC_PER_SEC);
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        s
    } else {
        v.to_string()
    }
}

/// systemd's `chain_valid`.
fn chain_valid(chain: &Chain, field: Field, end_of_month: bool) -> Result<(), CalendarError> {
    let (from, mut to) = field.bounds();
    for c in chain {
        // Days counted from the end of the month must be at most 28 from the
        // end. systemd checks the list recursively and subtracts 3 again for
        // every element, so the n-th element (sorted, from 1) may count back
        // at most 31 - 3n days: `*~11,28` is rejected while `*~28` is not.
        if end_of_month {
            to -= 3;
        }
        let err = |message: String, hint: Option<String>| {
            let mut e = CalendarError::new(ErrorKind::OutOfRange, message, c.span.clone());
            if let Some(h) = hint {
                e = e.with_hint(h);
            }
            Err(e)
        };
        let name = field.name();
        let range_text = if field == Field::Second {
            "0..59.999999".to_string()
        } else {
            format!("{from}..{to}")
        };
        if c.start < from || c.start > to {
            let hint = if end_of_month {
                Some(format!(
                    "after `~` the day counts back from the last day of the month (`~01` is the \
                     last day); systemd allows at most ~{to:02} for this element of the list \
                     (~28 for the first, 3 less for each further element)"
                ))
            } else if field == Field::Year {
                Some(
                    "systemd computes years 1970..2199 (two-digit years mean 1970..2069)"
                        .to_string(),
                )
            } else if field == Field::Hour && c.start == 24 {
                Some("midnight is 00:00 of the next day".to_string())
            } else {
                None
            };
            return err(
                format!(
                    "{name} {} is out of range {range_text}{}",
                    show(field, c.start),
                    if end_of_month {
                        " (counted from the end of the month)"
                    } else {
                        ""
                    }
                ),
                hint,
            );
        }
        if c.repeat > to - from {
            return err(
                format!(
                    "repetition /{} is larger than the {name} range {range_text}",
                    show(field, c.repeat)
                ),
                None,
            );
        }
        if c.stop >= 0 {
            if c.stop < from || c.stop > to {
                return err(
                    format!(
                        "{name} {} at the end of the range is out of range {range_text}",
                        show(field, c.stop)
                    ),
                    None,
                );
            }
            if c.start + c.repeat > c.stop {
                let hint = if end_of_month {
                    Some(format!(
                        "after `~` write the range from the end of the month forwards, \
                         e.g. `~01..{:02}`",
                        c.start
                    ))
                } else {
                    Some("write ranges from the smaller to the larger value".to_string())
                };
                return err(
                    format!(
                        "range {}..{} of the {name} runs backwards",
                        show(field, c.start),
                        show(field, c.stop)
                    ),
                    hint,
                );
            }
        } else if end_of_month && c.start - c.repeat < from {
            return err(
                format!(
                    "repetition ~{}/{} counts past the last day of the month",
                    c.start, c.repeat
                ),
                None,
            );
        } else if !end_of_month && c.start + c.repeat > to {
            return err(
                format!(
                    "{name} {}/{} repeats past the end of the {name} range {range_text}: \
                     it would never repeat",
                    show(field, c.start),
                    show(field, c.repeat)
                ),
                Some(format!(
                    "write just `{}` for a single value",
                    show(field, c.start)
                )),
            );
        }
    }
    Ok(())
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// systemd's `format_weekdays`: runs of three or more as `Mon..Wed`, shorter
/// runs as a list.
fn format_weekdays(out: &mut String, bits: i32) {
    let mut need_comma = false;
    let mut run_start: Option<usize> = None;
    for x in 0..=DAY_NAMES.len() {
        let set = x < DAY_NAMES.len() && bits & (1 << x) != 0;
        if set {
            if run_start.is_none() {
                if need_comma {
                    out.push(',');
                } else {
                    need_comma = true;
                }
                out.push_str(DAY_NAMES[x]);
                run_start = Some(x);
            }
        } else if let Some(l) = run_start.take()
            && x > l + 1
        {
            out.push_str(if x > l + 2 { ".." } else { "," });
            out.push_str(DAY_NAMES[x - 1]);
        }
    }
}

/// Whether the whole list prints as `*`.
fn chain_is_star(chain: &Chain, usec: bool) -> bool {
    if chain.is_empty() {
        return true;
    }
    usec && chain
        .iter()
        .any(|c| c.start == 0 && c.stop < 0 && c.repeat == USEC_PER_SEC)
}

/// systemd's `format_chain`, with C's `%0*i` and `%06i`.
fn format_chain(out: &mut String, width: usize, chain: &Chain, usec: bool) {
    if chain_is_star(chain, usec) {
        out.push('*');
        return;
    }
    let d = if usec { USEC_PER_SEC } else { 1 };
    for (i, c) in chain.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{:0width$}", c.start / d);
        if c.start % d > 0 {
            let _ = write!(out, ".{:06}", c.start % d);
        }
        if c.stop > 0 {
            let _ = write!(out, "..{:0width$}", c.stop / d);
        }
        if c.stop % d > 0 {
            let _ = write!(out, ".{:06}", c.stop % d);
        }
        if c.repeat > 0 && !(c.stop > 0 && c.repeat == d) {
            let _ = write!(out, "/{}", c.repeat / d);
        }
        if c.repeat % d > 0 {
            let _ = write!(out, ".{:06}", c.repeat % d);
        }
    }
}

/// Something systemd accepts but computes wrongly: an open-ended repetition
/// (`00/5`, without an end) whose last value overshoots the end of its
/// field. When that overshoot crosses New Year, systemd 252 resets only the
/// month, so the first times of January are skipped (`*-*-* 00/5:00:00`
/// goes from Dec 31 20:00 to Jan 1 05:00); in the month field, in zones
/// with DST, it can even give up ("Infinite loop in calendar calculation")
/// and the timer fails. The same repetition written with an end never
/// overshoots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarWarning {
    pub message: String,
    /// The element in the expression.
    pub span: Range<usize>,
    /// The same values written safely.
    pub hint: String,
}

/// Finds open-ended repetitions that can overshoot (see [`CalendarWarning`]).
pub(crate) fn open_ended_repetition_warnings(spec: &Spec) -> Vec<CalendarWarning> {
    let mut out = Vec::new();
    let fields = [
        (&spec.month, Field::Month, 1, 12, 2),
        (&spec.day, Field::Day, 1, 31, 2),
        (&spec.hour, Field::Hour, 0, 23, 2),
        (&spec.minute, Field::Minute, 0, 59, 2),
        (
            &spec.microsecond,
            Field::Second,
            0,
            60 * USEC_PER_SEC - 1,
            2,
        ),
    ];
    for (chain, field, lo, hi, width) in fields {
        if field == Field::Day && spec.end_of_month {
            continue;
        }
        for c in chain {
            if c.repeat <= 0 || c.stop >= 0 || c.span.is_empty() {
                continue;
            }
            // `*` for seconds is 0/1s, which never overshoots.
            let unit = if field == Field::Second {
                USEC_PER_SEC
            } else {
                1
            };
            let period = hi + 1 - lo;
            let overshoot_lands_on_start = field != Field::Day && {
                let gap = hi + 1 - c.start;
                let steps = (gap + c.repeat - 1) / c.repeat;
                c.repeat * steps == period
            };
            if overshoot_lands_on_start {
                continue;
            }
            let last = c.start + c.repeat * ((hi - c.start) / c.repeat);
            let show = |v: i32, width: usize| {
                let mut s = format!("{:0width$}", v / unit);
                if v % unit > 0 {
                    let _ = write!(s, ".{:06}", v % unit);
                }
                s
            };
            let safe = format!(
                "{}..{}/{}",
                show(c.start, width),
                show(last, width),
                show(c.repeat, 0)
            );
            out.push(CalendarWarning {
                message: format!(
                    "the open-ended repetition in the {} can make systemd skip times after New Year{}",
                    field.name(),
                    if field == Field::Month {
                        " or give up computing (\"Infinite loop in calendar calculation\")"
                    } else {
                        ""
                    }
                ),
                span: c.span.clone(),
                hint: format!("write it with an end: `{safe}`"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekday_runs_format_like_systemd() {
        let cases = [
            (0b0000001, "Mon"),
            (0b0000011, "Mon,Tue"),
            (0b0000111, "Mon..Wed"),
            (0b0011111, "Mon..Fri"),
            (0b1100000, "Sat,Sun"),
            (0b1010101, "Mon,Wed,Fri,Sun"),
            (0b1110111, "Mon..Wed,Fri..Sun"),
            (0b1101101, "Mon,Wed,Thu,Sat,Sun"),
        ];
        for (bits, want) in cases {
            let mut s = String::new();
            format_weekdays(&mut s, bits);
            assert_eq!(s, want, "bits {bits:07b}");
        }
    }

    #[test]
    fn chains_normalize_and_format() {
        let mut chain = vec![
            Component {
                start: 10,
                stop: 20,
                repeat: 3,
                span: 0..0,
            },
            Component::value(5),
            Component::value(5),
            Component {
                start: 7,
                stop: 8,
                repeat: 5,
                span: 0..0,
            },
        ];
        normalize_chain(&mut chain);
        let mut s = String::new();
        format_chain(&mut s, 2, &chain, false);
        // 10..20/3 trims to 10..19/3; 7..8/5 can never repeat → 07.
        assert_eq!(s, "05,07,10..19/3");
    }
}
