//! Every kind of calendar expression systemd rejects gets a clear message
//! that says what is wrong, points at the offending part and, where there is
//! something specific to say, how to fix it. Each case is also checked to be
//! rejected by the real `systemd-analyze calendar` (so the list holds only
//! real rejections), then run through `jobctl calendar`.

use crate::oracle::{jobctl, systemd};
use crate::support::{TestEnv, assert_contains, assert_ends_with, tool_or_skip};

/// (expression, message, underlined part, a phrase the hint contains or "").
const CASES: &[(&str, &str, &str, &str)] = &[
    // Empty and stray words.
    ("", "empty calendar expression", "", "e.g. `daily`"),
    (" UTC", "nothing before the time zone", "", "e.g. `daily`"),
    (
        "x",
        "unknown word \"x\"",
        "x",
        "[WEEKDAYS] [DATE] [TIME] [TIME ZONE]",
    ),
    (
        "fortnightly",
        "unknown word \"fortnightly\"",
        "fortnightly",
        "minutely, hourly",
    ),
    (
        "daily Mon",
        "\"daily\" stands alone (or with a time zone after it)",
        "daily",
        "spell the expression out",
    ),
    ("L", "unknown word \"L\"", "L", ""),
    // Weekdays.
    ("Mond", "\"Mond\" is not a weekday name", "Mond", "Mon, Tue"),
    (
        "Monx 12:00",
        "\"Monx\" is not a weekday name",
        "Monx",
        "Mon, Tue",
    ),
    (
        "Fri..Mon",
        "weekday range runs backwards",
        "Fri..Mon",
        "`Fri..Sun,Mon`",
    ),
    (
        "Mon..Wed..Fri",
        "a weekday range cannot continue with another range",
        ".",
        "separate ranges with a comma",
    ),
    (
        "Mon-Wed-Fri",
        "a weekday range cannot continue with another range",
        "-",
        "separate ranges with a comma",
    ),
    (
        "Mon.Tue",
        "a weekday range is written with two dots",
        ".",
        "`Mon..Fri`",
    ),
    ("Mon..", "weekday range has no end", "Mon..", "`Mon..Fri`"),
    (
        "Mon,,Tue",
        "expected a weekday name, found ','",
        ",",
        "`Sat,Sun`",
    ),
    // Dates.
    (
        "2016- 11- 24",
        "expected a number (month or day), found a space",
        " ",
        "",
    ),
    (
        "2016~11-22",
        "`~` must separate the month and the day",
        "-",
        "`*-02~01`",
    ),
    (
        "1-2-3-4",
        "unexpected '-' in the date",
        "-",
        "[YEAR-]MONTH-DAY",
    ),
    (
        "2025-01-01T10:00",
        "unexpected 'T' in the day",
        "T",
        "separate the date and the time with a space",
    ),
    (
        "12/25",
        "expected ':' and minutes after the hour",
        "",
        "MONTH-DAY with `-`",
    ),
    (
        "*-*-L",
        "expected a number (day), found 'L'",
        "L",
        "`*-*~01`",
    ),
    ("*-*-1L", "unexpected 'L' in the day", "L", "`*-*~01`"),
    // `*/N` and repetitions.
    (
        "*/2-*-*",
        "`*/N` is not systemd syntax",
        "*/2",
        "a repetition needs a start",
    ),
    (
        "*:*/15",
        "`*/N` is not systemd syntax",
        "*/15",
        "write `0/15`",
    ),
    (
        "*-*/2-01",
        "`*/N` is not systemd syntax",
        "*/2",
        "write `1/2`",
    ),
    ("*:0/0", "repetition /0 never advances", "0", "at least 1"),
    (
        "*:1/2/3",
        "unexpected '/' in the minute",
        "/",
        "one repetition per element",
    ),
    (
        "*-*-1/31",
        "repetition /31 is larger than the day range 1..31",
        "1/31",
        "",
    ),
    (
        "*:59/1",
        "minute 59/1 repeats past the end of the minute range 0..59: it would never repeat",
        "59/1",
        "write just `59`",
    ),
    (
        "*-*~5/5",
        "repetition ~5/5 counts past the last day of the month",
        "5/5",
        "",
    ),
    // Numbers.
    ("12:xx", "expected a number (minute), found 'x'", "x", ""),
    (
        "99999999999999999999:00",
        "number is too large",
        "99999999999999999999",
        "",
    ),
    ("2147483648:00", "number is too large", "2147483648", ""),
    (
        "12.5:00",
        "unexpected '.' in the date or hour",
        ".",
        "only seconds take decimals",
    ),
    // Seconds.
    (
        "00:00:00.0..00.9",
        "a range of seconds shorter than one second needs an explicit repetition",
        "00.0..00.9",
        "`00..00.5/0.1`",
    ),
    (
        "*:*:1.",
        "expected digits after the decimal point, found the end of the expression",
        "",
        "",
    ),
    ("*:*:.5", "expected a number (second), found '.'", ".", ""),
    ("00:00:2300", "number is too large", "2300", "59.999999"),
    // Times.
    ("12", "expected ':' and minutes after the hour", "", "HH:MM"),
    (
        "12:",
        "expected a number (minute), found the end of the expression",
        "",
        "",
    ),
    (
        "12:00:",
        "expected a number (second), found the end of the expression",
        "",
        "",
    ),
    ("12:00:00:00", "unexpected ':' after the seconds", ":", ""),
    (
        "12:00 ",
        "unexpected space after the minutes",
        " ",
        "a trailing word must be an existing time zone",
    ),
    (
        "Mon 12:00 25:00",
        "unexpected space after the minutes",
        " ",
        "",
    ),
    // Ranges of each field.
    (
        "1969-01-01",
        "year 1969 is out of range 1970..2199",
        "1969",
        "1970..2199",
    ),
    (
        "2200-01-01",
        "year 2200 is out of range 1970..2199",
        "2200",
        "",
    ),
    ("*-13-01", "month 13 is out of range 1..12", "13", ""),
    ("*-0-01", "month 0 is out of range 1..12", "0", ""),
    ("*-*-0", "day 0 is out of range 1..31", "0", ""),
    ("*-*-32", "day 32 is out of range 1..31", "32", ""),
    (
        "24:00",
        "hour 24 is out of range 0..23",
        "24",
        "midnight is 00:00 of the next day",
    ),
    ("00:60", "minute 60 is out of range 0..59", "60", ""),
    (
        "00:00:60",
        "second 60 is out of range 0..59.999999",
        "60",
        "",
    ),
    (
        "*-*-10..5",
        "range 10..5 of the day runs backwards",
        "10..5",
        "smaller to the larger",
    ),
    (
        "*-*~29",
        "day 29 is out of range 1..28 (counted from the end of the month)",
        "29",
        "`~01` is the last day",
    ),
    (
        "*-*~11,28",
        "day 28 is out of range 1..25 (counted from the end of the month)",
        "28",
        "3 less for each further element",
    ),
    (
        "*-*~3..1",
        "range 3..1 of the day runs backwards",
        "3..1",
        "`~01..03`",
    ),
    // Long lists.
    (
        "<242 fives>",
        "more than 241 values in one minute list",
        "5",
        "use ranges",
    ),
    // Time zones.
    (
        "daily Europe/Atlantis",
        "unknown time zone \"Europe/Atlantis\"",
        "Europe/Atlantis",
        "timedatectl list-timezones",
    ),
    (
        "daily europe/berlin",
        "unknown time zone \"europe/berlin\"",
        "europe/berlin",
        "case-sensitive",
    ),
    (
        "daily UTC0",
        "unknown time zone \"UTC0\"",
        "UTC0",
        "write UTC",
    ),
    ("daily Z", "unknown time zone \"Z\"", "Z", "write UTC"),
    (
        "daily +0100",
        "unknown time zone \"+0100\"",
        "+0100",
        "not offsets",
    ),
    (
        "daily Europe/Berlin/",
        "unknown time zone \"Europe/Berlin/\"",
        "Europe/Berlin/",
        "",
    ),
    (
        "daily  UTC",
        "more than one space before the time zone",
        " ",
        "exactly one space",
    ),
    (
        "*-*-* 00:00  Europe/Berlin",
        "more than one space before the time zone",
        " ",
        "exactly one space",
    ),
    // @EPOCH.
    (
        "@",
        "expected seconds since the epoch after '@'",
        "@",
        "`@1767225600`",
    ),
    ("@x", "expected seconds since the epoch after '@'", "@", ""),
    (
        "@18446744073709551616",
        "number is too large",
        "@18446744073709551616",
        "",
    ),
    (
        "@-1",
        "@-1 is 1969-12-31, outside systemd's range 1970..2199",
        "@-1",
        "",
    ),
    (
        "@7258118400",
        "@7258118400 is 2200-01-01, outside systemd's range 1970..2199",
        "@7258118400",
        "",
    ),
    // Cron lines given as calendar expressions.
    (
        "0 0 * * *",
        "unexpected space in the date",
        " ",
        "this looks like a cron line",
    ),
    (
        "*/15 * * * 1-5",
        "`*/N` is not systemd syntax",
        "*/15",
        "this looks like a cron line",
    ),
    (
        "@daily",
        "expected seconds since the epoch after '@'",
        "@",
        "this looks like a cron line",
    ),
];

/// The expression of a case (long ones are spelled out here).
fn expand(expr: &str) -> String {
    if expr == "<242 fives>" {
        format!("*:{}", vec!["5"; 242].join(","))
    } else {
        expr.to_string()
    }
}

fn exprs() -> Vec<String> {
    CASES.iter().map(|c| expand(c.0)).collect()
}

#[test]
fn systemd_rejects_every_case() {
    if !tool_or_skip(
        systemd::SYSTEMD_ANALYZE,
        "to confirm the cases are real rejections",
    ) {
        return;
    }
    let outcomes = systemd::calendar("UTC", "@1700000000", 1, &exprs());
    for (case, outcome) in CASES.iter().zip(outcomes) {
        assert_eq!(
            outcome,
            systemd::Outcome::Rejected,
            "systemd accepts {:?}",
            case.0
        );
    }
}

#[test]
fn every_rejection_has_its_message() {
    let outcomes = jobctl::outcomes("UTC", "@1700000000", 1, &exprs());
    let mut failures = Vec::new();
    for ((expr, message, part, hint), outcome) in CASES.iter().zip(outcomes) {
        let jobctl::Outcome::Rejected {
            message: got,
            span,
            hint: got_hint,
        } = outcome
        else {
            failures.push(format!("{expr:?}: accepted"));
            continue;
        };
        let full = expand(expr);
        let got_part = full.get(span.0..span.1).unwrap_or("<bad span>");
        if got != *message || got_part != *part || !got_hint.as_deref().unwrap_or("").contains(hint)
        {
            failures.push(format!(
                "{expr:?}:\n   want {message:?} at {part:?}, hint containing {hint:?}\n   got  {got:?} at {got_part:?}, hint {got_hint:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The text form: the error, the expression with the offending part
/// underlined, the hint; exit status 2; nothing on stdout.
#[test]
fn rejection_is_printed_with_a_caret() {
    let output = TestEnv::new().run(["calendar", "Mon..Fri 25:00"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Error: invalid calendar expression \"Mon..Fri 25:00\": hour 25 is out of range 0..23\n\
         \x20 Mon..Fri 25:00\n\
         \x20          ^^\n"
    );

    // Several failures: each reported, counted in the last hint.
    let output = TestEnv::new().run(["calendar", "x", "daily", "*:*/15"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(
        &stderr,
        "Error: invalid calendar expression \"x\": unknown word \"x\"\n  x\n  ^\n",
    );
    assert_ends_with(&stderr, "Hint: 2 of 3 arguments failed\n");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Normalized form: *-*-* 00:00:00"));
}

/// A zone systemd accepts but jobctl cannot compute in: a clear error.
#[test]
fn leap_second_zones_are_refused_with_a_reason() {
    let output = TestEnv::new().run(["calendar", "--base-time=@1700000000", "daily right/UTC"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("counts leap seconds, which jobctl does not compute")
            && stderr.contains("use the zone without the right/ prefix: \"UTC\""),
        "{stderr}"
    );
}

/// systemd accepts `00/5` in the hour but skips 00:00 on January 1 (its
/// computation resets only the month when a repetition overshoots into the
/// next year); jobctl computes the same and warns, with the safe spelling.
#[test]
fn open_ended_repetition_warning() {
    let base = "@1956508800"; // 2031-12-31 18:40 UTC
    let results = jobctl::calendar("UTC", base, 2, &["*-*-* 00/5:00:00".to_string()], false);
    let w = &results[0]["warnings"][0];
    assert_eq!(
        w["message"],
        "the open-ended repetition in the hour can make systemd skip times after New Year"
    );
    assert_eq!(w["hint"], "write it with an end: `00..20/5`");
    let got: Vec<i64> = results[0]["next_elapses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["usec"].as_i64().unwrap_or(0) / 1_000_000)
        .collect();
    // 2031-12-31 20:00, then 2032-01-01 05:00: 00:00 is skipped.
    assert_eq!(got, [1_956_513_600, 1_956_546_000]);
    if tool_or_skip(systemd::SYSTEMD_ANALYZE, "the oracle") {
        let outcome = systemd::calendar("UTC", base, 2, &["*-*-* 00/5:00:00".to_string()]);
        assert_eq!(
            outcome[0],
            systemd::Outcome::Accepted {
                normalized: "*-*-* 00/5:00:00".to_string(),
                elapses: got.clone(),
                never: false
            }
        );
        // The bounded spelling does not skip it.
        let outcome = systemd::calendar("UTC", base, 2, &["*-*-* 00..20/5:00:00".to_string()]);
        let systemd::Outcome::Accepted { elapses, .. } = &outcome[0] else {
            panic!("{outcome:?}")
        };
        assert_eq!(elapses, &[1_956_513_600, 1_956_528_000]);
    }
}
