//! The parser: systemd's `calendar_spec_from_string`, in the same order and
//! with the same acceptance, but reporting where and why an expression is
//! rejected.
//!
//! The order matters because systemd's grammar is ambiguous in places and the
//! first interpretation wins:
//! 1. a trailing ` UTC` (any case);
//! 2. else a trailing abbreviation of the local zone (`EST`/`EDT` on a New
//!    York host: glibc's `tzname[]`), separated by exactly one space;
//! 3. else a trailing word that is an existing zone name (`Europe/Berlin`);
//! 4. then the shorthands (`daily`, `weekly`, …), compared case-insensitively;
//! 5. else weekdays, then a date (or `@EPOCH`), then a time.
//!
//! Values are stored as systemd stores them (seconds in microseconds, years
//! as written until normalization maps two-digit years).

use std::ops::Range;

use super::error::{CalendarError, ErrorKind};
use super::spec::{Chain, Component, Spec, USEC_PER_SEC, Zone};
use super::{LocalAbbreviations, ParseOptions};
use crate::context::ZoneLookup;

/// systemd's `CALENDARSPEC_COMPONENTS_MAX`: elements 0..=240 of a list.
const COMPONENTS_MAX: usize = 240;

/// Weekday names in systemd's lookup order (long names first).
/// The words a "did you mean" for a weekday picks from.
const WEEKDAY_WORDS: [&str; 14] = [
    "Mon",
    "Tue",
    "Wed",
    "Thu",
    "Fri",
    "Sat",
    "Sun",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The shorthands a "did you mean" picks from (systemd's, as documented).
const SHORTHAND_WORDS: [&str; 9] = [
    "minutely",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "semiannually",
    "yearly",
    "annually",
];

/// The word of `words` one typo away from `word` (a letter missing, extra,
/// wrong, or two swapped; two for words of eight letters or more), ignoring
/// case: `minutly` → `minutely`, `Fir` → `Fri`.
pub(crate) fn near_word<'w>(word: &str, words: &[&'w str]) -> Option<&'w str> {
    let word = word.to_ascii_lowercase();
    if word.len() < 2 {
        return None;
    }
    let limit = if word.len() >= 8 { 2 } else { 1 };
    words
        .iter()
        .map(|w| {
            (
                *w,
                strsim::damerau_levenshtein(&word, &w.to_ascii_lowercase()),
            )
        })
        .filter(|(_, d)| (1..=limit).contains(d))
        .min_by_key(|(_, d)| *d)
        .map(|(w, _)| w)
}

const DAY_NR: [(&str, i32); 14] = [
    ("Monday", 0),
    ("Mon", 0),
    ("Tuesday", 1),
    ("Tue", 1),
    ("Wednesday", 2),
    ("Wed", 2),
    ("Thursday", 3),
    ("Thu", 3),
    ("Friday", 4),
    ("Fri", 4),
    ("Saturday", 5),
    ("Sat", 5),
    ("Sunday", 6),
    ("Sun", 6),
];

/// A syntax error at `span` with `message`.
fn syntax(message: impl Into<String>, span: Range<usize>) -> CalendarError {
    CalendarError::new(ErrorKind::Syntax, message, span)
}

/// Whether `name` passes systemd's `verify_timezone()` checks that do not
/// touch the file system.
pub(crate) fn zone_name_syntax_ok(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    if name == "UTC" {
        return true;
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") || name.len() >= 4096 {
        return false;
    }
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/'))
}

fn ends_with_no_case(s: &str, suffix: &str) -> Option<usize> {
    let (sb, pb) = (s.as_bytes(), suffix.as_bytes());
    if pb.is_empty() || sb.len() < pb.len() {
        return None;
    }
    let at = sb.len() - pb.len();
    sb[at..].eq_ignore_ascii_case(pb).then_some(at)
}

/// Parses `input` (already checked to be free of NUL bytes).
pub(crate) fn parse(input: &str, options: &ParseOptions<'_>) -> Result<Spec, CalendarError> {
    if let Some(at) = input.find('\0') {
        return Err(syntax("the expression contains a NUL byte", at..at + 1));
    }
    let mut spec = Spec::empty();
    let mut body = input;
    let mut unknown_zone: Option<CalendarError> = None;

    if let Some(at) = ends_with_no_case(input, " UTC") {
        spec.utc = true;
        spec.zone = Zone::Utc;
        spec.zone_span = Some(at + 1..input.len());
        body = &input[..at];
    } else if let Some((name, dst, at)) = local_abbreviation(input, options.local_abbreviations) {
        spec.zone = Zone::LocalAbbreviation { name, dst };
        spec.zone_span = Some(at..input.len());
        body = &input[..at - 1];
    } else if let Some(space) = input.rfind(' ') {
        let word = &input[space + 1..];
        if zone_name_syntax_ok(word) {
            let looks_like_zone = word.bytes().any(|b| b.is_ascii_alphabetic());
            let exists = match options.zones {
                Some(zones) => zones.zone(word).is_some(),
                // Without a lookup, take anything with a letter as a zone
                // (existence is checked when computing). A word without
                // letters can only be part of a date, and no zone file is
                // named like that.
                None => looks_like_zone,
            };
            if exists {
                spec.zone = Zone::Named(word.to_string());
                spec.zone_span = Some(space + 1..input.len());
                body = &input[..space];
            } else if looks_like_zone && !DAY_NR.iter().any(|(n, _)| n.eq_ignore_ascii_case(word)) {
                // systemd would now parse the whole string and fail at the
                // word; say what is really wrong.
                unknown_zone = Some(unknown_zone_error(
                    word,
                    space + 1..input.len(),
                    options.zones,
                ));
            }
        }
    }

    if let Err(e) = parse_body(body, &mut spec) {
        if spec.zone != Zone::Local && body.ends_with(' ') {
            let start = body.trim_end_matches(' ').len();
            return Err(syntax(
                "more than one space before the time zone",
                start..body.len(),
            )
            .with_hint("separate the time zone with exactly one space"));
        }
        return Err(better_error(input, e, unknown_zone, options.zones));
    }
    if let Some(e) = unknown_zone {
        // Only reachable if a word with letters parsed as part of a date.
        return Err(e);
    }

    spec.normalize();
    spec.validate()?;
    Ok(spec)
}

/// Replaces a parse error by a more useful one where the whole input shows
/// what was meant: a cron line, or a valid expression followed by a word
/// that is no time zone.
fn better_error(
    input: &str,
    e: CalendarError,
    unknown_zone: Option<CalendarError>,
    zones: Option<&dyn ZoneLookup>,
) -> CalendarError {
    if looks_like_cron(input) {
        return e.with_hint(
            "this looks like a cron line; use the job's `cron` key (or `jobctl calendar --cron`)",
        );
    }
    if let Some(zone_error) = unknown_zone {
        return zone_error;
    }
    if let Some(space) = input.rfind(' ') {
        let word = &input[space + 1..];
        let mut rest = Spec::empty();
        let is_weekday = DAY_NR.iter().any(|(n, _)| n.eq_ignore_ascii_case(word));
        let zone_like = zone_name_syntax_ok(word)
            || (!word.is_empty()
                && !word.contains(':')
                && word.bytes().any(|b| b.is_ascii_alphabetic() || b == b'/'));
        if zone_like
            && !is_weekday
            && !input[..space].is_empty()
            && parse_body(&input[..space], &mut rest).is_ok()
        {
            return unknown_zone_error(word, space + 1..input.len(), zones);
        }
    }
    e
}

/// Five fields of cron characters, or an `@` macro.
fn looks_like_cron(input: &str) -> bool {
    let t = input.trim();
    if [
        "@reboot",
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ]
    .contains(&t)
    {
        return true;
    }
    let fields: Vec<&str> = t.split([' ', '\t']).filter(|f| !f.is_empty()).collect();
    (5..=7).contains(&fields.len())
        && fields.iter().all(|f| {
            f.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'*' | b'/' | b',' | b'-' | b'?' | b'#')
            })
        })
        && fields.iter().any(|f| f.contains('*') || f.contains('?'))
}

pub(crate) fn unknown_zone_error(
    word: &str,
    span: Range<usize>,
    zones: Option<&dyn ZoneLookup>,
) -> CalendarError {
    let mut hint = String::from(
        "a time zone must be an exact zoneinfo name (case-sensitive), e.g. Europe/Berlin, \
         America/New_York or UTC; see `timedatectl list-timezones`",
    );
    if word.to_ascii_uppercase().starts_with("UTC")
        || word.eq_ignore_ascii_case("z")
        || word.eq_ignore_ascii_case("gmt0")
    {
        hint = "write UTC".to_string();
    } else if word.starts_with(['+', '-']) {
        hint = "systemd takes zone names, not offsets: for a fixed offset use Etc/GMT-1 \
                (the sign is inverted: Etc/GMT-1 is UTC+01:00), or a city's zone"
            .to_string();
    } else if let Some(near) = zones.and_then(|z| crate::context::suggest_zone(z, word)) {
        hint = format!("did you mean \"{near}\"? (zone names are case-sensitive)");
    }
    CalendarError::new(
        ErrorKind::UnknownZone,
        format!("unknown time zone \"{word}\""),
        span,
    )
    .with_hint(hint)
}

/// Step 2: one of the local zone's abbreviations, preceded by one space and
/// not the whole string. Returns the abbreviation as glibc spells it.
fn local_abbreviation(
    input: &str,
    names: Option<&LocalAbbreviations>,
) -> Option<(String, i32, usize)> {
    let names = names?;
    for (dst, name) in [(0, &names.standard), (1, &names.daylight)] {
        if name.is_empty() {
            continue;
        }
        let Some(at) = ends_with_no_case(input, name) else {
            continue;
        };
        if at == 0 || input.as_bytes()[at - 1] != b' ' {
            continue;
        }
        return Some((name.clone(), dst, at));
    }
    None
}

fn parse_body(body: &str, spec: &mut Spec) -> Result<(), CalendarError> {
    if body.is_empty() {
        let message = if spec.zone == Zone::Local {
            "empty calendar expression"
        } else {
            "nothing before the time zone"
        };
        return Err(syntax(message, 0..0)
            .with_hint("e.g. `daily`, `Mon..Fri 09:00`, `*-*-01 02:15:00`, `*:0/15`"));
    }
    if let Some(shorthand) = shorthand(body) {
        shorthand(spec);
        return Ok(());
    }
    let mut p = Parser {
        s: body.as_bytes(),
        text: body,
        pos: 0,
    };
    p.weekdays(spec)?;
    let done = p.date(spec)?;
    if !done {
        p.time(spec)?;
    }
    if p.pos < p.s.len() {
        return Err(p.unexpected("after the expression"));
    }
    Ok(())
}

type Shorthand = fn(&mut Spec);

/// The named shorthands systemd accepts, compared case-insensitively.
fn shorthand(body: &str) -> Option<Shorthand> {
    fn midnight(spec: &mut Spec) {
        spec.hour = vec![Component::value(0)];
        spec.minute = vec![Component::value(0)];
        spec.microsecond = vec![Component::value(0)];
    }
    let table: [(&[&str], Shorthand); 8] = [
        (&["minutely"], |s| s.microsecond = vec![Component::value(0)]),
        (&["hourly"], |s| {
            s.minute = vec![Component::value(0)];
            s.microsecond = vec![Component::value(0)];
        }),
        (&["daily"], midnight),
        (&["monthly"], |s| {
            s.day = vec![Component::value(1)];
            midnight(s);
        }),
        (&["annually", "yearly", "anually"], |s| {
            s.month = vec![Component::value(1)];
            s.day = vec![Component::value(1)];
            midnight(s);
        }),
        (&["weekly"], |s| {
            s.weekdays_bits = 1;
            midnight(s);
        }),
        (&["quarterly"], |s| {
            s.month = [1, 4, 7, 10].into_iter().map(Component::value).collect();
            s.day = vec![Component::value(1)];
            midnight(s);
        }),
        (
            &["biannually", "bi-annually", "semiannually", "semi-annually"],
            |s| {
                s.month = [1, 7].into_iter().map(Component::value).collect();
                s.day = vec![Component::value(1)];
                midnight(s);
            },
        ),
    ];
    table
        .into_iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(body)))
        .map(|(_, f)| f)
}

/// What `strtoul()` made of the text at a position.
enum Strtoul {
    /// No digits: nothing consumed.
    Empty,
    /// Out of `unsigned long` range.
    Overflow(usize),
    Value(u64, usize),
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    /// The byte at `i`, or 0 past the end (C's terminating NUL).
    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn cur(&self) -> u8 {
        self.at(self.pos)
    }

    /// The span of the character at `i` (whole UTF-8 sequence).
    fn char_span(&self, i: usize) -> Range<usize> {
        if i >= self.s.len() {
            return i..i;
        }
        let len = self.text[i..].chars().next().map_or(1, char::len_utf8);
        i..i + len
    }

    fn describe(&self, i: usize) -> String {
        match self.text.get(i..).and_then(|t| t.chars().next()) {
            None => "the end of the expression".to_string(),
            Some(' ') => "a space".to_string(),
            Some(c) => format!("'{}'", c.escape_debug()),
        }
    }

    fn unexpected(&self, context: &str) -> CalendarError {
        let what = match self.text.get(self.pos..).and_then(|t| t.chars().next()) {
            None => "end of the expression".to_string(),
            Some(' ') => "space".to_string(),
            Some(c) => format!("'{}'", c.escape_debug()),
        };
        let mut e = syntax(
            format!("unexpected {what} {context}"),
            self.char_span(self.pos),
        );
        if self.cur() == b' ' {
            e = e.with_hint(
                "an expression is `[WEEKDAYS] [DATE] [TIME] [TIME ZONE]`, parts separated by \
                 one space; a trailing word must be an existing time zone",
            );
        }
        e
    }

    fn skip_spaces(&mut self) {
        while self.cur() == b' ' {
            self.pos += 1;
        }
    }

    /// systemd's `parse_weekdays`.
    fn weekdays(&mut self, spec: &mut Spec) -> Result<(), CalendarError> {
        let mut l: i32 = -1;
        let mut range_start_pos = 0;
        let mut first = true;
        loop {
            let rest = &self.s[self.pos..];
            let found = DAY_NR.iter().find(|(name, _)| {
                rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name.as_bytes())
            });
            let Some(&(name, nr)) = found else {
                if first {
                    return Ok(());
                }
                let word_end = self.s[self.pos..]
                    .iter()
                    .position(|b| matches!(b, b' ' | b',' | b'.' | b'-'))
                    .map_or(self.s.len(), |n| self.pos + n);
                let span = if word_end > self.pos {
                    self.pos..word_end
                } else {
                    self.char_span(self.pos)
                };
                let word = &self.text[span.clone()];
                let found = if word_end > self.pos {
                    format!("\"{word}\"")
                } else {
                    self.describe(self.pos)
                };
                let hint = match near_word(word, &WEEKDAY_WORDS) {
                    Some(near) => format!("did you mean \"{near}\"?"),
                    None => "weekdays are Mon, Tue, Wed, Thu, Fri, Sat, Sun (or full names), e.g. `Mon..Fri` or `Sat,Sun`".to_string(),
                };
                return Err(
                    syntax(format!("expected a weekday name, found {found}"), span).with_hint(hint),
                );
            };
            let name_span = self.pos..self.pos + name.len();
            let after = self.at(self.pos + name.len());
            if !matches!(after, 0 | b'-' | b'.' | b',' | b' ') {
                let word_end = self.s[self.pos..]
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric())
                    .map_or(self.s.len(), |n| self.pos + n);
                return Err(syntax(
                    format!(
                        "\"{}\" is not a weekday name",
                        &self.text[self.pos..word_end.max(self.pos + name.len())]
                    ),
                    self.pos..word_end.max(self.pos + name.len()),
                )
                .with_hint("weekdays are Mon, Tue, Wed, Thu, Fri, Sat, Sun or their full names"));
            }
            spec.weekdays_bits |= 1 << nr;
            if l >= 0 {
                if l > nr {
                    return Err(syntax(
                        "weekday range runs backwards",
                        range_start_pos..name_span.end,
                    )
                    .with_hint("weeks start on Monday: write e.g. `Mon..Fri`, or `Fri..Sun,Mon` for a range across Sunday"));
                }
                for j in l + 1..nr {
                    spec.weekdays_bits |= 1 << j;
                }
            }
            self.pos += name.len();

            match self.cur() {
                0 => return Ok(()),
                b' ' => {
                    self.skip_spaces();
                    return Ok(());
                }
                b'.' => {
                    if l >= 0 {
                        return Err(syntax(
                            "a weekday range cannot continue with another range",
                            self.char_span(self.pos),
                        )
                        .with_hint("separate ranges with a comma, e.g. `Mon..Wed,Fri..Sun`"));
                    }
                    if self.at(self.pos + 1) != b'.' {
                        return Err(syntax(
                            "a weekday range is written with two dots",
                            self.char_span(self.pos),
                        )
                        .with_hint("e.g. `Mon..Fri`"));
                    }
                    l = nr;
                    range_start_pos = name_span.start;
                    self.pos += 2;
                }
                b'-' => {
                    if l >= 0 {
                        return Err(syntax(
                            "a weekday range cannot continue with another range",
                            self.char_span(self.pos),
                        )
                        .with_hint("separate ranges with a comma, e.g. `Mon..Wed,Fri..Sun`"));
                    }
                    l = nr;
                    range_start_pos = name_span.start;
                    self.pos += 1;
                }
                b',' => {
                    l = -1;
                    self.pos += 1;
                }
                _ => {}
            }

            // A trailing comma is allowed, an open range is not.
            if matches!(self.cur(), 0 | b' ') {
                let end = self.pos;
                self.skip_spaces();
                if l < 0 {
                    return Ok(());
                }
                return Err(syntax("weekday range has no end", range_start_pos..end)
                    .with_hint("e.g. `Mon..Fri`"));
            }
            first = false;
        }
    }

    /// C's `strtoul(s, &end, 10)` at `i`: leading white space, an optional
    /// sign, digits; a minus sign negates modulo 2^64.
    fn strtoul(&self, i: usize) -> Strtoul {
        let mut j = i;
        while matches!(self.at(j), b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            j += 1;
        }
        let negative = match self.at(j) {
            b'-' => {
                j += 1;
                true
            }
            b'+' => {
                j += 1;
                false
            }
            _ => false,
        };
        let digits_start = j;
        let mut value: u64 = 0;
        let mut overflow = false;
        while self.at(j).is_ascii_digit() {
            let d = u64::from(self.at(j) - b'0');
            match value.checked_mul(10).and_then(|v| v.checked_add(d)) {
                Some(v) => value = v,
                None => overflow = true,
            }
            j += 1;
        }
        if j == digits_start {
            return Strtoul::Empty;
        }
        if overflow {
            return Strtoul::Overflow(j);
        }
        Strtoul::Value(
            if negative {
                value.wrapping_neg()
            } else {
                value
            },
            j,
        )
    }

    /// systemd's `parse_component_decimal`: a number (seconds may carry up
    /// to six fractional digits, rounded on the seventh).
    fn decimal(&mut self, usec: bool, what: &str) -> Result<i32, CalendarError> {
        let start = self.pos;
        if !self.cur().is_ascii_digit() {
            let mut e = syntax(
                format!(
                    "expected a number ({what}), found {}",
                    self.describe(self.pos)
                ),
                self.char_span(self.pos),
            );
            e = match self.cur() {
                b'L' | b'l' => e.with_hint("the last day of the month is written `*-*~01` (`~` counts days from the end of the month)"),
                b'W' | b'#' | b'?' => e.with_hint("cron/Quartz extensions (L, W, #, ?) are not part of systemd's calendar syntax"),
                b'*' => e.with_hint("`*` stands alone: write `0/15` for \"every 15 starting at 0\""),
                _ => e,
            };
            return Err(e);
        }
        let (value, mut end) = match self.strtoul(self.pos) {
            Strtoul::Value(v, end) => (v, end),
            Strtoul::Overflow(end) => {
                return Err(CalendarError::new(
                    ErrorKind::Overflow,
                    "number is too large",
                    start..end,
                ));
            }
            // Unreachable: the text starts with a digit.
            Strtoul::Empty => return Err(syntax("expected a number", self.char_span(start))),
        };
        let mut value = value;
        if usec {
            value = match value.checked_mul(USEC_PER_SEC as u64) {
                Some(v) => v,
                None => {
                    return Err(CalendarError::new(
                        ErrorKind::Overflow,
                        "number is too large",
                        start..end,
                    ));
                }
            };
            // One "." is a decimal point, ".." a range.
            if self.at(end) == b'.' && self.at(end + 1) != b'.' {
                end += 1;
                let (add, frac_end) = self.fraction(end)?;
                end = frac_end;
                value = match value.checked_add(u64::from(add)) {
                    Some(v) => v,
                    None => {
                        return Err(CalendarError::new(
                            ErrorKind::Overflow,
                            "number is too large",
                            start..end,
                        ));
                    }
                };
            }
        }
        if value > i32::MAX as u64 {
            let mut e = CalendarError::new(ErrorKind::Overflow, "number is too large", start..end);
            if usec {
                e = e.with_hint("seconds go up to 59.999999");
            }
            return Err(e);
        }
        self.pos = end;
        Ok(value as i32)
    }

    /// systemd's `parse_fractional_part_u(…, 6, …)`.
    fn fraction(&self, mut i: usize) -> Result<(u32, usize), CalendarError> {
        let mut val: u32 = 0;
        for n in 0..6 {
            if !self.at(i).is_ascii_digit() {
                if n == 0 {
                    return Err(syntax(
                        format!(
                            "expected digits after the decimal point, found {}",
                            self.describe(i)
                        ),
                        self.char_span(i),
                    ));
                }
                for _ in n..6 {
                    val *= 10;
                }
                break;
            }
            val = val * 10 + u32::from(self.at(i) - b'0');
            i += 1;
        }
        if (b'5'..=b'9').contains(&self.at(i)) {
            val += 1;
        }
        while self.at(i).is_ascii_digit() {
            i += 1;
        }
        Ok((val, i))
    }

    /// systemd's `parse_chain`: `*` or a comma-separated list.
    fn chain(&mut self, usec: bool, what: &str) -> Result<Chain, CalendarError> {
        if self.cur() == b'*' {
            let span = self.pos..self.pos + 1;
            self.pos += 1;
            if self.cur() == b'/' {
                let end = self.s[self.pos..]
                    .iter()
                    .position(|b| !(b.is_ascii_digit() || *b == b'/' || *b == b'.'))
                    .map_or(self.s.len(), |n| self.pos + n);
                let step = &self.text[self.pos + 1..end];
                let step = if step.is_empty() { "N" } else { step };
                let start = match what {
                    "day" | "month" | "month or day" => "1",
                    "date or hour" => "0` (hours, minutes) or `1",
                    _ => "0",
                };
                return Err(syntax("`*/N` is not systemd syntax", span.start..end).with_hint(format!(
                    "a repetition needs a start: write `{start}/{step}` (`*` alone means every value)"
                )));
            }
            return Ok(if usec {
                vec![Component {
                    start: 0,
                    stop: -1,
                    repeat: USEC_PER_SEC,
                    span,
                }]
            } else {
                Vec::new()
            });
        }
        let mut chain = Vec::new();
        let mut nesting = 0;
        loop {
            if nesting > COMPONENTS_MAX {
                return Err(CalendarError::new(
                    ErrorKind::TooManyComponents,
                    format!("more than {} values in one {what} list", COMPONENTS_MAX + 1),
                    self.char_span(self.pos),
                )
                .with_hint("use ranges (`1..5`) or repetitions (`0/5`) instead of long lists"));
            }
            let item_start = self.pos;
            let start = self.decimal(usec, what)?;
            let mut stop = -1;
            let mut repeat = 0;
            if self.cur() == b'.' && self.at(self.pos + 1) == b'.' {
                self.pos += 2;
                stop = self.decimal(usec, what)?;
                repeat = if usec { USEC_PER_SEC } else { 1 };
            }
            if self.cur() == b'/' {
                self.pos += 1;
                let repeat_start = self.pos;
                repeat = self.decimal(usec, "repetition")?;
                if repeat == 0 {
                    return Err(CalendarError::new(
                        ErrorKind::OutOfRange,
                        "repetition /0 never advances",
                        repeat_start..self.pos,
                    )
                    .with_hint("use a repetition of at least 1"));
                }
            } else {
                if start > i32::MAX - repeat {
                    return Err(CalendarError::new(
                        ErrorKind::Overflow,
                        "number is too large",
                        item_start..self.pos,
                    ));
                }
                if usec && stop >= 0 && start + repeat > stop {
                    return Err(syntax(
                        "a range of seconds shorter than one second needs an explicit repetition",
                        item_start..self.pos,
                    )
                    .with_hint("e.g. `00..00.5/0.1`"));
                }
            }
            if !matches!(self.cur(), 0 | b' ' | b',' | b'-' | b'~' | b':') {
                let context = format!("in the {what}");
                let mut e = self.unexpected(&context);
                if matches!(self.cur(), b'L' | b'l') {
                    e = e.with_hint("the last day of the month is written `*-*~01` (`~` counts days from the end of the month)");
                } else if self.cur() == b'.' {
                    e = e.with_hint(
                        "ranges are written with two dots (`1..5`); only seconds take decimals",
                    );
                } else if self.cur() == b'/' {
                    e = e.with_hint("one repetition per element, e.g. `0/15` or `8..18/2`");
                } else if matches!(self.cur(), b'T' | b't') {
                    e = e.with_hint(
                        "separate the date and the time with a space, e.g. `2025-01-01 10:00`",
                    );
                } else if self.cur().is_ascii_alphabetic() {
                    e = e.with_hint(
                        "only weekday names (at the start) and a time zone (at the end) are words",
                    );
                }
                return Err(e);
            }
            chain.push(Component {
                start,
                stop,
                repeat,
                span: item_start..self.pos,
            });
            if self.cur() == b',' {
                self.pos += 1;
                nesting += 1;
                continue;
            }
            return Ok(chain);
        }
    }

    /// systemd's `parse_date`. Returns true when the expression is complete
    /// (`@EPOCH`), false when a time may follow.
    fn date(&mut self, spec: &mut Spec) -> Result<bool, CalendarError> {
        if self.cur() == 0 {
            return Ok(false);
        }
        if self.cur() == b'@' {
            return self.epoch(spec).map(|()| true);
        }
        let start = self.pos;
        if self.cur().is_ascii_alphabetic() {
            return Err(self.unknown_word());
        }
        let first = self.chain(false, "date or hour")?;
        // A ':' (or the end) means this was a time, not a date.
        if matches!(self.cur(), 0 | b':') {
            self.pos = start;
            return Ok(false);
        }
        match self.cur() {
            b'~' => spec.end_of_month = true,
            b'-' => {}
            _ => return Err(self.unexpected_in_date()),
        }
        self.pos += 1;
        let second = self.chain(
            false,
            if spec.end_of_month {
                "day"
            } else {
                "month or day"
            },
        )?;
        if matches!(self.cur(), 0 | b' ') {
            self.skip_spaces();
            spec.month = first;
            spec.day = second;
            return Ok(false);
        } else if spec.end_of_month {
            return Err(syntax(
                "`~` must separate the month and the day",
                self.char_span(self.pos),
            )
            .with_hint("e.g. `*-02~01` (last day of February) or `2025-*~07`"));
        }
        match self.cur() {
            b'~' => spec.end_of_month = true,
            b'-' => {}
            _ => return Err(self.unexpected_in_date()),
        }
        self.pos += 1;
        let third = self.chain(false, "day")?;
        if !matches!(self.cur(), 0 | b' ') {
            return Err(self.unexpected_in_date());
        }
        self.skip_spaces();
        spec.year = first;
        spec.month = second;
        spec.day = third;
        Ok(false)
    }

    /// A word where a date or time should start (`fortnightly`, `x`).
    fn unknown_word(&self) -> CalendarError {
        let end = self.s[self.pos..]
            .iter()
            .position(|b| *b == b' ')
            .map_or(self.s.len(), |n| self.pos + n);
        let word = &self.text[self.pos..end];
        if shorthand(word).is_some() {
            return syntax(
                format!("\"{word}\" stands alone (or with a time zone after it)"),
                self.pos..end,
            )
            .with_hint("spell the expression out to combine it, e.g. `Mon *-*-* 00:00:00`");
        }
        let words: Vec<&str> = SHORTHAND_WORDS
            .iter()
            .chain(WEEKDAY_WORDS.iter())
            .copied()
            .collect();
        if let Some(near) = near_word(word, &words) {
            return syntax(format!("unknown word \"{word}\""), self.pos..end)
                .with_hint(format!("did you mean \"{near}\"?"));
        }
        syntax(format!("unknown word \"{word}\""), self.pos..end).with_hint(
            "an expression is `[WEEKDAYS] [DATE] [TIME] [TIME ZONE]` or one of minutely, hourly, \
             daily, weekly, monthly, quarterly, semiannually, yearly",
        )
    }

    fn unexpected_in_date(&self) -> CalendarError {
        let mut e = self.unexpected("in the date");
        match self.cur() {
            b'T' | b't' => {
                e = e.with_hint(
                    "separate the date and the time with a space, e.g. `2025-01-01 10:00`",
                );
            }
            b'/' => {
                e = e.with_hint("dates are written YEAR-MONTH-DAY with `-`, e.g. `*-12-25`");
            }
            b' ' => {}
            _ => {
                e = e.with_hint(
                    "dates are written `[YEAR-]MONTH-DAY` or `[YEAR-]MONTH~DAY`, e.g. `*-*-01`",
                );
            }
        }
        e
    }

    /// `@EPOCH`: a single UTC instant.
    fn epoch(&mut self, spec: &mut Spec) -> Result<(), CalendarError> {
        let start = self.pos;
        let (value, end) = match self.strtoul(self.pos + 1) {
            Strtoul::Value(v, end) => (v, end),
            Strtoul::Empty => {
                return Err(syntax(
                    "expected seconds since the epoch after '@'",
                    start..start + 1,
                )
                .with_hint("e.g. `@1767225600`"));
            }
            Strtoul::Overflow(end) => {
                return Err(CalendarError::new(
                    ErrorKind::Overflow,
                    "number is too large",
                    start..end,
                ));
            }
        };
        let span = start..end;
        // `time_t time = value`: reinterpret as signed.
        let time = value as i64;
        let clock = super::libc_time::Clock::new(None);
        let Some(tm) = clock
            .localtime(time)
            .filter(|tm| tm.year <= i32::MAX - 1900)
        else {
            return Err(CalendarError::new(
                ErrorKind::Overflow,
                "timestamp is out of range",
                span,
            ));
        };
        if !(super::spec::MIN_YEAR..=super::spec::MAX_YEAR).contains(&(tm.year + 1900)) {
            return Err(CalendarError::new(
                ErrorKind::OutOfRange,
                format!(
                    "{} is {}-{:02}-{:02}, outside systemd's range 1970..2199",
                    &self.text[span.clone()],
                    tm.year + 1900,
                    tm.mon + 1,
                    tm.mday
                ),
                span,
            ));
        }
        let comp = |v: i32| Component {
            start: v,
            stop: -1,
            repeat: 0,
            span: span.clone(),
        };
        spec.utc = true;
        spec.year = vec![comp(tm.year + 1900)];
        spec.month = vec![comp(tm.mon + 1)];
        spec.day = vec![comp(tm.mday)];
        spec.hour = vec![comp(tm.hour)];
        spec.minute = vec![comp(tm.min)];
        spec.microsecond = vec![comp(tm.sec * USEC_PER_SEC)];
        self.pos = end;
        Ok(())
    }

    /// systemd's `parse_calendar_time`: `HH:MM[:SS]`; absent means 00:00:00.
    fn time(&mut self, spec: &mut Spec) -> Result<(), CalendarError> {
        if self.cur() == 0 {
            spec.hour = vec![Component::value(0)];
            spec.minute = vec![Component::value(0)];
            spec.microsecond = vec![Component::value(0)];
            return Ok(());
        }
        let hour = self.chain(false, "hour")?;
        if self.cur() != b':' {
            let mut e = if self.cur() == 0 {
                syntax(
                    "expected ':' and minutes after the hour",
                    self.pos..self.pos,
                )
            } else {
                self.unexpected("after the hour")
            };
            if self.cur() == 0 {
                e = if self.text.contains('/') {
                    e.with_hint(
                        "dates are written MONTH-DAY with `-` (e.g. `12-25`); `/` is a repetition",
                    )
                } else {
                    e.with_hint("a time is HH:MM or HH:MM:SS, e.g. `02:15`")
                };
            }
            return Err(e);
        }
        self.pos += 1;
        let minute = self.chain(false, "minute")?;
        let second = if self.cur() == 0 {
            vec![Component::value(0)]
        } else {
            if self.cur() != b':' {
                return Err(self.unexpected("after the minutes"));
            }
            self.pos += 1;
            let s = self.chain(true, "second")?;
            if self.cur() != 0 {
                return Err(self.unexpected("after the seconds"));
            }
            s
        };
        spec.hour = hour;
        spec.minute = minute;
        spec.microsecond = second;
        Ok(())
    }
}
