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
    }

    #[test]
    fn underline_counts_characters() {
        assert_eq!(underline("*-*-* 25:00", 6..8), "      ^^");
        assert_eq!(underline("é 1", 3..4), "  ^");
        assert_eq!(underline("abc", 3..3), "   ^");
    }
}
