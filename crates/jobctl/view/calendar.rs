//! `jobctl calendar`: values as `systemd-analyze calendar` prints them, and
//! the caret line under the part of an argument that is wrong.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `Sun 2024-03-10 00:00:00 EST`, systemd's timestamp format.
pub fn timestamp(ts: Timestamp, zone: &TimeZone) -> String {
    ts.to_zoned(zone.clone())
        .strftime("%a %Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// RFC 3339 in UTC, with microseconds when there are any.
pub fn rfc3339(ts: Timestamp) -> String {
    if ts.subsec_microsecond() == 0 {
        ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// systemd's `format_timestamp_relative()`.
pub fn relative(t: Timestamp, now: Timestamp) -> String {
    const SEC: i64 = 1_000_000;
    let (min, hour, day) = (60 * SEC, 3_600 * SEC, 86_400 * SEC);
    // systemd's month and year: 30.44 and 365.25 days.
    let (week, month, year) = (7 * day, 2_629_800 * SEC, 31_557_600 * SEC);
    let (t, n) = (t.as_microsecond(), now.as_microsecond());
    let (d, s) = if n > t {
        (n - t, "ago")
    } else {
        (t - n, "left")
    };
    // A count of a unit: `1 year`, `2 years`.
    let count = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    for (unit, name, next, next_name) in [
        (year, "year", month, "month"),
        (month, "month", day, "day"),
        (week, "week", day, "day"),
    ] {
        if d >= unit {
            return format!(
                "{} {} {s}",
                count(d / unit, name),
                count((d % unit) / next, next_name)
            );
        }
    }
    if d >= 2 * day {
        format!("{} days {s}", d / day)
    } else if d >= 25 * hour {
        format!("1 day {}h {s}", (d - day) / hour)
    } else if d >= 6 * hour {
        format!("{}h {s}", d / hour)
    } else if d >= hour {
        format!("{}h {}min {s}", d / hour, (d % hour) / min)
    } else if d >= 5 * min {
        format!("{}min {s}", d / min)
    } else if d >= min {
        format!("{}min {}s {s}", d / min, (d % min) / SEC)
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

/// `^^^` under the byte range `span` of `input` (at least one caret).
pub fn underline(input: &str, span: std::ops::Range<usize>) -> String {
    let start = input
        .get(..span.start)
        .map_or(span.start, |s| s.chars().count());
    let width = input
        .get(span.clone())
        .map_or(1, |s| s.chars().count())
        .max(1);
    format!("{}{}", " ".repeat(start), "^".repeat(width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_like_systemd() {
        let now = Timestamp::from_second(1_000_000_000).unwrap();
        let at = |s: i64| Timestamp::from_second(1_000_000_000 + s).unwrap();
        assert_eq!(relative(at(0), now), "now");
        assert_eq!(relative(at(90), now), "1min 30s left");
        assert_eq!(relative(at(-3 * 3600 - 120), now), "3h 2min ago");
        assert_eq!(relative(at(26 * 3600), now), "1 day 2h left");
        assert_eq!(relative(at(9 * 86_400), now), "1 week 2 days left");
        assert_eq!(relative(at(14 * 86_400), now), "2 weeks 0 days left");
        assert_eq!(relative(at(400 * 86_400), now), "1 year 1 month left");
        assert_eq!(
            relative(at(2 * 31_557_600 + 10), now),
            "2 years 0 months left"
        );
        assert_eq!(relative(at(-45 * 86_400), now), "1 month 14 days ago");
        assert_eq!(relative(at(3 * 86_400), now), "3 days left");
        assert_eq!(relative(at(7 * 3600), now), "7h left");
        assert_eq!(relative(at(6 * 60), now), "6min left");
        assert_eq!(relative(at(5), now), "5s left");
        let us = |u: i64| Timestamp::from_microsecond(now.as_microsecond() + u).unwrap();
        assert_eq!(relative(us(2_500), now), "2ms left");
        assert_eq!(relative(us(-500), now), "500us ago");
    }

    #[test]
    fn underline_counts_characters() {
        assert_eq!(underline("*-*-* 25:00", 6..8), "      ^^");
        assert_eq!(underline("é 1", 3..4), "  ^");
        assert_eq!(underline("abc", 3..3), "   ^");
    }
}
