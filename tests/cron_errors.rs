//! Every cron line jobctl rejects gets a message that says what is wrong
//! and where, and how to fix it where there is something to say — the
//! Quartz extensions (`L`, `W`, `#`, `?`, seconds and year fields) with the
//! systemd equivalent when one exists. Each case is also checked against
//! the Vixie cron reference: cron rejects it too, or (marked `lenient`)
//! accepts it only by ignoring part of it, which jobctl refuses to guess.

use crate::oracle::{jobctl, vixie};
use crate::support::TestEnv;

/// (line, message, underlined part, a phrase the hint contains or "",
/// cron accepts it by ignoring part of it).
const CASES: &[(&str, &str, &str, &str, bool)] = &[
    ("", "empty cron line", "", "five fields", false),
    (
        "* * * *",
        "found 4 fields; a cron line has 5: minute hour day-of-month month day-of-week",
        "* * * *",
        "`30 2 * * *`",
        false,
    ),
    (
        "* * * * * *",
        "found 6 fields; a cron line has 5: minute hour day-of-month month day-of-week",
        "* * * * * *",
        "seconds field",
        false,
    ),
    (
        "0 0 * * * 2025",
        "found 6 fields; a cron line has 5: minute hour day-of-month month day-of-week",
        "0 0 * * * 2025",
        "a year field is a Quartz extension",
        false,
    ),
    (
        "0 0 0 * * * *",
        "found 7 fields; a cron line has 5: minute hour day-of-month month day-of-week",
        "0 0 0 * * * *",
        "Quartz/Spring",
        false,
    ),
    // Values.
    (
        "60 * * * *",
        "minute 60 is out of range 0-59",
        "60",
        "",
        false,
    ),
    (
        "* 24 * * *",
        "hour 24 is out of range 0-23",
        "24",
        "midnight is hour 0",
        false,
    ),
    (
        "* * 0 * *",
        "day-of-month 0 is out of range 1-31",
        "0",
        "count from 1",
        false,
    ),
    (
        "* * 32 * *",
        "day-of-month 32 is out of range 1-31",
        "32",
        "",
        false,
    ),
    (
        "* * * 0 *",
        "month 0 is out of range 1-12",
        "0",
        "months count from 1",
        false,
    ),
    (
        "* * * 13 *",
        "month 13 is out of range 1-12",
        "13",
        "",
        false,
    ),
    (
        "* * * * 8",
        "day-of-week 8 is out of range 0-7",
        "8",
        "",
        false,
    ),
    (
        "* * * jan-foo *",
        "\"foo\" is not a valid month value",
        "foo",
        "Jan..Dec",
        false,
    ),
    (
        "* * * * Monday",
        "\"Monday\" is not a valid day-of-week value",
        "Monday",
        "Sun..Sat",
        false,
    ),
    (
        "5x * * * *",
        "\"5x\" is not a valid minute value",
        "5x",
        "numbers 0-59",
        false,
    ),
    (
        "5;rm * * * *",
        "\"5;rm\" is not a valid minute value",
        "5;rm",
        "",
        true,
    ),
    // Ranges, steps, lists.
    (
        "5/10 * * * *",
        "a step needs a range: \"5/10\" in the minute field",
        "5/10",
        "`5-59/10`",
        false,
    ),
    (
        "*/0 * * * *",
        "step 0 in the minute field never advances",
        "0",
        "at least 1",
        false,
    ),
    (
        "*/ * * * *",
        "missing step after `/` in the minute field",
        "/",
        "`*/15`",
        false,
    ),
    (
        "*/x * * * *",
        "step \"x\" in the minute field is not a number",
        "x",
        "",
        false,
    ),
    (
        "1-2-3 * * * *",
        "\"1-2-3\" in the minute field is not a range",
        "1-2-3",
        "one `-`",
        true,
    ),
    (
        "5- * * * *",
        "missing value in the minute field",
        "-",
        "",
        false,
    ),
    (
        "*5 * * * *",
        "`*` cannot be combined with a value: \"*5\" in the minute field",
        "*5",
        "`*` alone",
        true,
    ),
    (
        "*-5 * * * *",
        "`*` cannot be combined with a value: \"*-5\" in the minute field",
        "*-5",
        "`*` alone",
        true,
    ),
    (
        "5-1 * * * *",
        "range 5-1 in the minute field runs backwards (cron ignores it)",
        "5-1",
        "smaller to the larger",
        true,
    ),
    (
        "0 0 * * 5-1",
        "range 5-1 in the day-of-week field runs backwards (cron ignores it)",
        "5-1",
        "`5-6,0-1`",
        true,
    ),
    (
        "0 22-2 * * *",
        "range 22-2 in the hour field runs backwards (cron ignores it)",
        "22-2",
        "`22-23,0-2`",
        true,
    ),
    (
        "1,,2 * * * *",
        "empty element in the minute field \"1,,2\"",
        ",",
        "single commas",
        false,
    ),
    (
        "*/5 * * * 1-5,",
        "empty element in the day-of-week field \"1-5,\"",
        ",",
        "single commas",
        false,
    ),
    // Macros.
    (
        "@Daily",
        "unknown cron macro \"@Daily\"",
        "@Daily",
        "lowercase: @daily",
        false,
    ),
    (
        "@every",
        "unknown cron macro \"@every\"",
        "@every",
        "@reboot, @yearly",
        false,
    ),
    ("@", "unknown cron macro \"@\"", "@", "", false),
    // Quartz extensions, with systemd equivalents.
    (
        "0 0 L * *",
        "`L` (last day of the month) is a Quartz extension, not cron",
        "L",
        "`*-*~01`",
        false,
    ),
    (
        "0 0 L-3 * *",
        "`L` (last day of the month) is a Quartz extension, not cron",
        "L-3",
        "`*-*~04`",
        false,
    ),
    (
        "0 0 15W * *",
        "`W` (\"15W\": nearest weekday) is a Quartz extension, not cron",
        "15W",
        "no equivalent",
        false,
    ),
    (
        "0 0 LW * *",
        "`W` (\"LW\": nearest weekday) is a Quartz extension, not cron",
        "LW",
        "no equivalent",
        false,
    ),
    (
        "0 0 ? * MON",
        "`?` in the day-of-month field is a Quartz extension, not cron",
        "?",
        "write `*`",
        false,
    ),
    (
        "0 0 * * ?",
        "`?` in the day-of-week field is a Quartz extension, not cron",
        "?",
        "write `*`",
        false,
    ),
    (
        "0 0 * * 5L",
        "`L` (\"5L\": last such weekday of the month) is a Quartz extension, not cron",
        "5L",
        "`Fri *-*~01..07`",
        false,
    ),
    (
        "0 0 * * MON#2",
        "`#` (\"MON#2\": nth weekday of the month) is a Quartz extension, not cron",
        "MON#2",
        "`Mon *-*-08..14`",
        true,
    ),
    (
        "0 0 * * 1#5",
        "`#` (\"1#5\": nth weekday of the month) is a Quartz extension, not cron",
        "1#5",
        "`Mon *-*-29..31`",
        true,
    ),
];

fn lines() -> Vec<String> {
    CASES.iter().map(|c| c.0.to_string()).collect()
}

#[test]
fn cron_rejects_or_only_tolerates_every_case() {
    for (line, _, _, _, lenient) in CASES {
        match vixie::parse(line) {
            None => assert!(!lenient, "cron rejects {line:?} outright"),
            Some(entry) => assert!(
                *lenient && entry.lenient,
                "cron accepts {line:?} as it is: jobctl must too"
            ),
        }
    }
}

#[test]
fn every_rejected_cron_line_has_its_message() {
    let results = jobctl::calendar("UTC", "@1700000000", 1, &lines(), true);
    let mut failures = Vec::new();
    for ((line, message, part, hint, _), r) in CASES.iter().zip(&results) {
        if r["valid"] == true {
            failures.push(format!("{line:?}: accepted"));
            continue;
        }
        let e = &r["error"];
        let got = e["message"].as_str().unwrap_or_default();
        let (a, b) = (
            e["span"][0].as_u64().unwrap_or(0) as usize,
            e["span"][1].as_u64().unwrap_or(0) as usize,
        );
        let got_part = line.get(a..b).unwrap_or("<bad span>");
        let got_hint = e["hint"].as_str().unwrap_or("");
        if got != *message || got_part != *part || !got_hint.contains(hint) {
            failures.push(format!(
                "{line:?}:\n   want {message:?} at {part:?}, hint containing {hint:?}\n   got  {got:?} at {got_part:?}, hint {got_hint:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn text_output_names_the_line_and_the_fix() {
    let output = TestEnv::new().run(["calendar", "--cron", "0 0 L * *"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Error: invalid cron line \"0 0 L * *\": `L` (last day of the month) is a Quartz extension, not cron\n\
         \x20 0 0 L * *\n\
         \x20     ^\n\
         Hint: systemd expresses it as `*-*~01` (an `on_calendar` schedule, e.g. `*-*~01 00:00`)\n"
    );
}

#[test]
fn translation_is_shown_with_both_lines() {
    let output = TestEnv::new().run([
        "calendar",
        "--cron",
        "--iterations=3",
        "--base-time=2026-01-01T00:00:00Z",
        "0 12 1 * Mon",
    ]);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.contains("From now")).collect();
    assert_eq!(
        lines,
        [
            "  Cron line: 0 12 1 * Mon",
            "OnCalendar=: *-*-01 12:00:00",
            "OnCalendar=: Mon *-*-* 12:00:00",
            "Next elapse: Thu 2026-01-01 12:00:00 UTC",
            "   Iter. #2: Mon 2026-01-05 12:00:00 UTC",
            "   Iter. #3: Mon 2026-01-12 12:00:00 UTC",
        ]
    );
}
