//! Durations in systemd's style: `90s`, `15min`, `2h 30min`, `1.5h`, `infinity`.
//!
//! The accepted units and their sizes are systemd's own (`parse_sec()` in
//! systemd's time-util.c), so a value that validates here means the same thing
//! when it lands in a unit file. [`Timespan`] keeps microseconds, like systemd.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

const USEC_PER_MSEC: u64 = 1_000;
const USEC_PER_SEC: u64 = 1_000_000;
const USEC_PER_MINUTE: u64 = 60 * USEC_PER_SEC;
const USEC_PER_HOUR: u64 = 60 * USEC_PER_MINUTE;
const USEC_PER_DAY: u64 = 24 * USEC_PER_HOUR;
const USEC_PER_WEEK: u64 = 7 * USEC_PER_DAY;
/// systemd's month: 30.44 days.
const USEC_PER_MONTH: u64 = 2_629_800 * USEC_PER_SEC;
/// systemd's year: 365.25 days.
const USEC_PER_YEAR: u64 = 31_557_600 * USEC_PER_SEC;

/// Unit suffixes, longest first where one is a prefix of another, as in systemd.
const UNITS: &[(&str, u64)] = &[
    ("seconds", USEC_PER_SEC),
    ("second", USEC_PER_SEC),
    ("sec", USEC_PER_SEC),
    ("s", USEC_PER_SEC),
    ("minutes", USEC_PER_MINUTE),
    ("minute", USEC_PER_MINUTE),
    ("min", USEC_PER_MINUTE),
    ("months", USEC_PER_MONTH),
    ("month", USEC_PER_MONTH),
    ("M", USEC_PER_MONTH),
    ("msec", USEC_PER_MSEC),
    ("ms", USEC_PER_MSEC),
    ("m", USEC_PER_MINUTE),
    ("hours", USEC_PER_HOUR),
    ("hour", USEC_PER_HOUR),
    ("hr", USEC_PER_HOUR),
    ("h", USEC_PER_HOUR),
    ("days", USEC_PER_DAY),
    ("day", USEC_PER_DAY),
    ("d", USEC_PER_DAY),
    ("weeks", USEC_PER_WEEK),
    ("week", USEC_PER_WEEK),
    ("w", USEC_PER_WEEK),
    ("years", USEC_PER_YEAR),
    ("year", USEC_PER_YEAR),
    ("y", USEC_PER_YEAR),
    ("usec", 1),
    ("us", 1),
    ("μs", 1),
];

/// Units used when formatting, largest first.
const FORMAT_UNITS: &[(&str, u64)] = &[
    ("d", USEC_PER_DAY),
    ("h", USEC_PER_HOUR),
    ("min", USEC_PER_MINUTE),
    ("s", USEC_PER_SEC),
    ("ms", USEC_PER_MSEC),
    ("us", 1),
];

/// A span of time in microseconds, or infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespan(u64);

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("\"{0}\" is not a number followed by a unit")]
    Malformed(String),
    #[error(
        "unknown time unit \"{unit}\" (use us, ms, s, min, h, d, w, M or y, e.g. \"90s\", \"15min\", \"2h 30min\")"
    )]
    UnknownUnit { unit: String },
    #[error("duration is too large")]
    Overflow,
}

impl Timespan {
    /// systemd's `infinity`.
    pub const INFINITY: Timespan = Timespan(u64::MAX);
    pub const ZERO: Timespan = Timespan(0);

    pub const fn from_usec(usec: u64) -> Self {
        Timespan(usec)
    }

    pub const fn from_secs(secs: u64) -> Self {
        Timespan(secs.saturating_mul(USEC_PER_SEC))
    }

    pub const fn as_usec(self) -> u64 {
        self.0
    }

    pub const fn is_infinite(self) -> bool {
        self.0 == u64::MAX
    }

    /// The span as a `std::time::Duration`, or `None` for infinity.
    pub fn to_std(self) -> Option<std::time::Duration> {
        (!self.is_infinite()).then(|| std::time::Duration::from_micros(self.0))
    }

    /// Whole seconds, when the span is a whole number of seconds.
    pub fn whole_secs(self) -> Option<u64> {
        (!self.is_infinite() && self.0.is_multiple_of(USEC_PER_SEC))
            .then_some(self.0 / USEC_PER_SEC)
    }

    /// Parses a duration the way systemd's `parse_sec()` does, with the
    /// default unit being seconds.
    pub fn parse(input: &str) -> Result<Self, DurationError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(DurationError::Empty);
        }
        if text == "infinity" {
            return Ok(Timespan::INFINITY);
        }
        let mut total: u64 = 0;
        let mut rest = text;
        while !rest.is_empty() {
            rest = rest.trim_start();
            let (value, after_number) =
                split_number(rest).ok_or_else(|| DurationError::Malformed(text.to_string()))?;
            let after_number = after_number.trim_start();
            let unit_len = after_number
                .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
                .unwrap_or(after_number.len());
            let unit = &after_number[..unit_len];
            let multiplier = if unit.is_empty() {
                USEC_PER_SEC
            } else {
                UNITS
                    .iter()
                    .find(|(name, _)| *name == unit)
                    .map(|(_, m)| *m)
                    .ok_or_else(|| DurationError::UnknownUnit {
                        unit: unit.to_string(),
                    })?
            };
            let part = value.scale(multiplier).ok_or(DurationError::Overflow)?;
            total = total.checked_add(part).ok_or(DurationError::Overflow)?;
            if total == u64::MAX {
                return Err(DurationError::Overflow);
            }
            rest = &after_number[unit_len..];
        }
        Ok(Timespan(total))
    }
}

/// A decimal number as written: integer part and fractional digits.
struct Decimal<'a> {
    integer: &'a str,
    fraction: &'a str,
}

impl Decimal<'_> {
    fn scale(&self, multiplier: u64) -> Option<u64> {
        let integer: u64 = if self.integer.is_empty() {
            0
        } else {
            // All digits, so parsing fails only on overflow.
            self.integer.parse().ok()?
        };
        let mut value = integer.checked_mul(multiplier)?;
        let mut divisor = 1u64;
        for digit in self.fraction.bytes() {
            divisor = divisor.checked_mul(10)?;
            let contribution = u64::from(digit - b'0').checked_mul(multiplier)? / divisor;
            value = value.checked_add(contribution)?;
        }
        Some(value)
    }
}

fn split_number(s: &str) -> Option<(Decimal<'_>, &str)> {
    let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
    let (int_part, rest) = s.split_at(int_len);
    let (fraction, rest) = match rest.strip_prefix('.') {
        Some(after_dot) => {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            after_dot.split_at(frac_len)
        }
        None => ("", rest),
    };
    if int_part.is_empty() && fraction.is_empty() {
        return None;
    }
    Some((
        Decimal {
            integer: int_part,
            fraction,
        },
        rest,
    ))
}

/// Serialized in systemd's spelling (`"2h 30min"`, `"infinity"`).
impl serde::Serialize for Timespan {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for Timespan {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timespan::parse(s)
    }
}

/// Formats in systemd's spelling, largest units first (`2h 30min`, `90ms`,
/// `infinity`), so that the output parses back to the same value.
impl fmt::Display for Timespan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_infinite() {
            return f.write_str("infinity");
        }
        if self.0 == 0 {
            return f.write_str("0");
        }
        let mut rest = self.0;
        let mut first = true;
        for (name, size) in FORMAT_UNITS {
            let count = rest / size;
            if count > 0 {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{count}{name}")?;
                first = false;
                rest -= count * size;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        Timespan::parse(s).unwrap().as_usec() / USEC_PER_SEC
    }

    #[test]
    fn parses_systemd_forms() {
        assert_eq!(secs("90"), 90);
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("15min"), 900);
        assert_eq!(secs("2h 30min"), 9000);
        assert_eq!(secs("2h30min"), 9000);
        assert_eq!(secs("1.5h"), 5400);
        assert_eq!(secs("1d"), 86400);
        assert_eq!(secs("1w"), 604_800);
        assert_eq!(secs("1M"), 2_629_800);
        assert_eq!(secs("1y"), 31_557_600);
        assert_eq!(secs(" 5 min "), 300);
        assert_eq!(Timespan::parse("250ms").unwrap().as_usec(), 250_000);
        assert_eq!(Timespan::parse(".5s").unwrap().as_usec(), 500_000);
        assert!(Timespan::parse("infinity").unwrap().is_infinite());
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(Timespan::parse(""), Err(DurationError::Empty));
        assert!(matches!(
            Timespan::parse("5 parsecs"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            Timespan::parse("min"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            Timespan::parse("-5s"),
            Err(DurationError::Malformed(_))
        ));
        assert_eq!(
            Timespan::parse("99999999999999999999y"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn formats_round_trip() {
        for text in ["2h 30min", "90ms", "1d 1s", "15min", "1s 500ms", "7us"] {
            let span = Timespan::parse(text).unwrap();
            assert_eq!(span.to_string(), text);
            assert_eq!(Timespan::parse(&span.to_string()).unwrap(), span);
        }
        assert_eq!(Timespan::parse("90s").unwrap().to_string(), "1min 30s");
        assert_eq!(Timespan::INFINITY.to_string(), "infinity");
    }
}
