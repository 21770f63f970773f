//! The back-translation case by case. That every line accepted here fires
//! at exactly the job's times is proven over a year, in DST zones too, by
//! tests/export_k8s.rs (the engine against the independent cron matcher).

use super::*;
use crate::duration::Timespan;
use crate::schedule::{parse_hourly, parse_monthly, parse_time_of_day, parse_weekly};

fn every(s: &str) -> Schedule {
    Schedule::Every {
        interval: Timespan::parse(s).unwrap(),
    }
}

fn cal(e: &str) -> Schedule {
    Schedule::Calendar {
        expression: e.into(),
    }
}

fn cron(line: &str) -> Schedule {
    let t = crate::cron::parse(line).unwrap().to_systemd();
    Schedule::Cron {
        line: line.into(),
        on_calendar: t.on_calendar,
        on_boot: t.on_boot,
    }
}

fn hourly(s: &str) -> Schedule {
    Schedule::Hourly {
        minute: parse_hourly(s).unwrap(),
    }
}

fn daily(s: &str) -> Schedule {
    Schedule::Daily {
        time: parse_time_of_day(s).unwrap(),
    }
}

fn weekly(s: &str) -> Schedule {
    let (days, time) = parse_weekly(s).unwrap();
    Schedule::Weekly { days, time }
}

fn monthly(s: &str) -> Schedule {
    let (days, time) = parse_monthly(s).unwrap();
    Schedule::Monthly { days, time }
}

/// The line for `schedules` (no job zone).
#[track_caller]
fn line(schedules: &[Schedule]) -> String {
    match cron_line(schedules, None) {
        Ok(line) => line.line,
        Err(refusals) => panic!("refused: {refusals:?}"),
    }
}

/// The refusals for `schedules`, as `subject: reason`.
#[track_caller]
fn refused(schedules: &[Schedule]) -> Vec<String> {
    match cron_line(schedules, None) {
        Ok(line) => panic!("accepted as {}", line.line),
        Err(refusals) => {
            for r in &refusals {
                assert!(!r.subject.is_empty() && !r.reason.is_empty(), "{r:?}");
            }
            refusals.iter().map(ToString::to_string).collect()
        }
    }
}

#[test]
fn intervals_that_divide_an_hour_or_a_day() {
    assert_eq!(line(&[every("1min")]), "* * * * *");
    assert_eq!(line(&[every("2min")]), "*/2 * * * *");
    assert_eq!(line(&[every("15min")]), "*/15 * * * *");
    assert_eq!(line(&[every("20min")]), "*/20 * * * *");
    assert_eq!(line(&[every("30min")]), "*/30 * * * *");
    assert_eq!(line(&[every("1h")]), "0 * * * *");
    assert_eq!(line(&[every("3h")]), "0 */3 * * *");
    assert_eq!(line(&[every("6h")]), "0 */6 * * *");
    assert_eq!(line(&[every("12h")]), "0 */12 * * *");
    assert_eq!(line(&[every("1d")]), "0 0 * * *");
}

#[test]
fn intervals_with_no_cron_line() {
    let r = refused(&[every("7min")]);
    assert_eq!(r.len(), 1);
    assert!(
        r[0].starts_with("the schedule \"every 7min\": it starts a run 7min after"),
        "{r:?}"
    );
    assert!(refused(&[every("90min")])[0].contains("monotonic"));
    // Aligned, but on seconds.
    let r = refused(&[every("30s")]);
    assert!(r[0].contains("seconds past the minute"), "{r:?}");
    assert!(refused(&[every("1s")])[0].contains("seconds past the minute"));
}

#[test]
fn simple_forms() {
    assert_eq!(line(&[hourly(":05")]), "5 * * * *");
    assert_eq!(line(&[daily("02:15")]), "15 2 * * *");
    assert_eq!(line(&[daily("00:00")]), "0 0 * * *");
    assert!(refused(&[daily("18:30:15")])[0].contains("seconds past the minute"));
    assert_eq!(line(&[weekly("Mon..Fri 08:00")]), "0 8 * * 1-5");
    assert_eq!(line(&[weekly("sun 23:59")]), "59 23 * * 0");
    assert_eq!(line(&[weekly("mon,thu 08:00")]), "0 8 * * 1,4");
    assert_eq!(line(&[weekly("Sat,Sun 10:00")]), "0 10 * * 0,6");
    assert_eq!(line(&[weekly("Mon..Sun 10:00")]), "0 10 * * *");
    assert_eq!(line(&[monthly("1 09:00")]), "0 9 1 * *");
    assert_eq!(line(&[monthly("1,15 09:00")]), "0 9 1,15 * *");
    let r = refused(&[monthly("1,last 09:00")]);
    assert_eq!(r.len(), 1, "one refusal per schedule: {r:?}");
    assert!(r[0].contains("from the end of the month"), "{r:?}");
}

#[test]
fn calendar_expressions() {
    assert_eq!(line(&[cal("Mon..Fri 9:00")]), "0 9 * * 1-5");
    assert_eq!(line(&[cal("*-*-* 8..18:00/20")]), "*/20 8-18 * * *");
    assert_eq!(line(&[cal("quarterly")]), "0 0 1 */3 *");
    assert_eq!(line(&[cal("*-06,12-01..07 03:30")]), "30 3 1-7 6,12 *");
    assert_eq!(line(&[cal("*-*-01..31/2 00:00")]), "0 0 1-31/2 * *");
    assert_eq!(line(&[cal("minutely")]), "* * * * *");
    assert_eq!(line(&[cal("*-*-* *:05,35")]), "5,35 * * * *");
    assert_eq!(line(&[cal("*-*-* 1,2,3,10,11:00")]), "0 1-3,10,11 * * *");
    assert_eq!(line(&[cal("Sat *-*-* 04:00")]), "0 4 * * 6");
    // Every weekday named is no weekday restriction.
    assert_eq!(line(&[cal("Mon..Sun *-*-01 04:00")]), "0 4 1 * *");
    // `*:*:00.0` is a whole minute too.
    assert_eq!(line(&[cal("*-*-* *:*:00")]), "* * * * *");
}

#[test]
fn calendar_expressions_with_no_cron_line() {
    let r = refused(&[cal("Mon *-*-01..07 12:00")]);
    assert!(
        r[0].starts_with("the calendar expression \"Mon *-*-01..07 12:00\": \"Mon *-*-01..07 12:00:00\" runs only on days that are both"),
        "{r:?}"
    );
    assert!(refused(&[cal("2026-05-01 00:00")])[0].contains("names years"));
    assert!(refused(&[cal("*-*~03 00:00")])[0].contains("from the end of the month"));
    assert!(refused(&[cal("*:*:0/30")])[0].contains("seconds past the minute"));
    assert!(refused(&[cal("*:*:*")])[0].contains("seconds past the minute"));
    assert!(refused(&[cal("*-*-* 00:00:00.5")])[0].contains("seconds past the minute"));
    // systemd skips 00:00 on January 1 for this one.
    let r = cron_line(&[cal("*-*-* 00/5:00:00")], None).unwrap_err();
    assert!(r[0].reason.contains("wrongly after New Year"), "{r:?}");
    assert_eq!(
        r[0].hint.as_deref(),
        Some("write it with an end: `00..20/5`")
    );
    // An impossible date stays impossible: neither ever fires (the loader
    // refuses such a job before the export sees it).
    assert_eq!(line(&[cal("*-02-30 12:00")]), "0 12 30 2 *");
}

#[test]
fn cron_lines_round_trip() {
    for (given, written) in [
        ("*/10 9-17 * * 1-5", "*/10 9-17 * * 1-5"),
        ("0 12 1 * Mon", "0 12 1 * 1"),
        ("15 3 1,15 * mon", "15 3 1,15 * 1"),
        ("0 0 * * 7", "0 0 * * 0"),
        ("0 0 * * 0,7", "0 0 * * 0"),
        ("*/20 8-18 * jan-jun,dec 1-5", "*/20 8-18 * 1-6,12 1-5"),
        ("5 4 * * sun", "5 4 * * 0"),
        ("0 22 * * 1-5", "0 22 * * 1-5"),
        ("23 0-20/2 * * *", "23 0-20/2 * * *"),
        ("0 0,12 1 */2 *", "0 */12 1 */2 *"),
        // Both day fields restricted (OR), with a day list and ranges.
        ("30 6 1-3,20 * 2,4", "30 6 1-3,20 * 2,4"),
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
    ] {
        assert_eq!(line(&[cron(given)]), written, "{given}");
    }
}

#[test]
fn cron_lines_that_kubernetes_reads_differently() {
    // Vixie cron reads a day field starting with `*` as unrestricted, so
    // this is "odd days that are Mondays"; robfig/cron (Kubernetes) would
    // read `*/2` as restricted and run on odd days OR Mondays.
    let r = refused(&[cron("0 12 */2 * Mon")]);
    assert!(
        r[0].contains("both one of its weekdays and one of its days"),
        "{r:?}"
    );
    // The same line without a weekday is every odd day in both.
    assert_eq!(line(&[cron("0 12 */2 * *")]), "0 12 1-31/2 * *");
}

#[test]
fn boot_triggers_are_left_out() {
    let got = cron_line(&[cron("@reboot"), daily("01:00")], None).unwrap();
    assert_eq!(got.line, "0 1 * * *");
    assert_eq!(got.at_boot, ["the cron line \"@reboot\""]);
    let r = refused(&[cron("@reboot")]);
    assert!(r[0].contains("runs only at boot"), "{r:?}");
    let r = refused(&[]);
    assert!(r[0].starts_with("the job: it has no schedule"), "{r:?}");
}

#[test]
fn unions_that_are_one_cron_line() {
    assert_eq!(line(&[daily("12:00"), daily("18:00")]), "0 12,18 * * *");
    // One contains the other.
    assert_eq!(line(&[hourly(":05"), daily("12:05")]), "5 * * * *");
    assert_eq!(line(&[every("15min"), every("30min")]), "*/15 * * * *");
    // A weekday and a day of the month: cron's OR.
    assert_eq!(
        line(&[weekly("Mon 08:00"), monthly("1 08:00")]),
        "0 8 1 * 1"
    );
    assert_eq!(
        line(&[
            cal("*-*-01 12:00"),
            cal("Mon,Tue 12:00"),
            cal("*-*-15 12:00")
        ]),
        "0 12 1,15 * 1,2"
    );
    // The same expression twice.
    assert_eq!(line(&[daily("07:00"), daily("07:00")]), "0 7 * * *");
    // Pieces that overlap: no pair of them merges, the whole is a line.
    assert_eq!(
        line(&[
            cal("*-*-* 00,01:00"),
            cal("*-*-* 00:00,30"),
            cal("*-*-* 01:30")
        ]),
        "*/30 0,1 * * *"
    );
    // Weekdays that together are every day.
    assert_eq!(
        line(&[weekly("Mon..Fri 06:00"), weekly("Sat,Sun 06:00")]),
        "0 6 * * *"
    );
}

#[test]
fn unions_that_are_not() {
    let r = refused(&[daily("12:00"), daily("18:30")]);
    assert_eq!(r.len(), 1);
    assert!(
        r[0].starts_with(
            "the job: its schedules (the schedule \"daily at 12:00\", the schedule \"daily at 18:30\") together"
        ),
        "{r:?}"
    );
    assert!(refused(&[weekly("Mon 08:00"), monthly("1 09:00")])[0].contains("no single cron"));
    // The golden job with several cron lines.
    let r = refused(&[
        cron("15 3 1,15 * mon"),
        cron("@hourly"),
        cron("@reboot"),
        cron("*/20 8-18 * jan-jun,dec 1-5"),
    ]);
    assert!(r[0].contains("no single cron"), "{r:?}");
    // A weekday-and-day term cannot be rescued by its neighbours here...
    let r = refused(&[cal("Mon *-*-01..07 12:00"), daily("13:00")]);
    assert!(r[0].contains("both one of its weekdays"), "{r:?}");
    // ...but is when the union covers it.
    assert_eq!(
        line(&[cal("Mon *-*-01..07 12:00"), cal("*-*-01..07 12:00")]),
        "0 12 1-7 * *"
    );
}

#[test]
fn every_refusal_is_reported() {
    let r = refused(&[every("7min"), monthly("last 09:00"), daily("10:00:30")]);
    assert_eq!(r.len(), 3, "{r:?}");
}

#[test]
fn zones() {
    let got = cron_line(&[daily("12:00")], Some("Europe/London")).unwrap();
    assert_eq!(got.zone.as_deref(), Some("Europe/London"));
    assert_eq!(cron_line(&[daily("12:00")], None).unwrap().zone, None);
    let got = cron_line(&[cal("*-*-* 12:00 UTC")], None).unwrap();
    assert_eq!(got.zone.as_deref(), Some("UTC"));
    let got = cron_line(&[cal("daily Europe/Paris")], None).unwrap();
    assert_eq!(got.zone.as_deref(), Some("Europe/Paris"));
    let r = refused(&[cal("daily Europe/Paris"), cal("*-*-* 12:00 Asia/Tokyo")]);
    assert!(r[0].contains("different time zones"), "{r:?}");
    let r = refused(&[cal("daily Europe/Paris"), daily("12:00")]);
    assert!(r[0].contains("in the host's zone"), "{r:?}");
}

#[test]
fn fields_and_lists() {
    let f = |bits: u64, low, high| field(bits, low, high);
    let of = |values: &[u32]| values.iter().fold(0u64, |b, v| b | 1 << v);
    assert_eq!(f(of(&[0, 30]), 0, 59), "*/30");
    assert_eq!(f(of(&[5, 35]), 0, 59), "5,35");
    assert_eq!(f(of(&[0, 1, 2, 3]), 0, 59), "0-3");
    assert_eq!(f(of(&[1, 2, 3, 10, 11]), 0, 23), "1-3,10,11");
    assert_eq!(f(of(&[0, 20, 40]), 0, 59), "*/20");
    assert_eq!(f(of(&[10, 20, 30]), 0, 59), "10-30/10");
    assert_eq!(f(of(&[0, 7, 14, 21, 28, 35, 42, 49, 56]), 0, 59), "*/7");
    // Not the whole progression from the start: a range.
    assert_eq!(f(of(&[0, 7, 14]), 0, 59), "0-14/7");
    assert_eq!(f(of(&[4]), 0, 59), "4");
    assert_eq!(f(of(&[1, 4, 7, 10]), 1, 12), "*/3");
    // Days never use `*/N`.
    let odd: Vec<u32> = (1..=31).step_by(2).collect();
    assert_eq!(list(of(&odd), 1, 31), "1-31/2");
}

#[test]
fn matching() {
    let fields = |l: &str| cron_line(&[cron(l)], None).unwrap().fields;
    let t = |s: &str| -> DateTime { s.parse().unwrap() };
    let either = fields("0 12 1 * Mon");
    assert!(either.matches(t("2026-06-01T12:00"))); // the 1st, a Monday
    assert!(either.matches(t("2026-06-08T12:00"))); // a Monday
    assert!(either.matches(t("2026-07-01T12:00"))); // the 1st, a Wednesday
    assert!(!either.matches(t("2026-07-02T12:00")));
    assert!(!either.matches(t("2026-06-08T12:01")));
    let weekdays = fields("*/10 9-17 * * 1-5");
    assert!(weekdays.matches(t("2026-06-05T17:50")));
    assert!(!weekdays.matches(t("2026-06-06T10:00"))); // Saturday
    assert!(!weekdays.matches(t("2026-06-05T18:00")));
    let months = fields("0 0 1 */3 *");
    assert!(months.matches(t("2026-10-01T00:00")));
    assert!(!months.matches(t("2026-11-01T00:00")));
}

#[test]
fn repeated_hours_in_a_fall_back() {
    let ny = TimeZone::get("America/New_York").unwrap();
    let from: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let until: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
    let runs = |l: &str, zone: &TimeZone| -> Vec<String> {
        let fields = cron_line(&[cron(l)], None).unwrap().fields;
        repeated_runs(&fields, zone, from, until)
            .iter()
            .flat_map(|r| {
                r.again
                    .iter()
                    .map(|z| z.strftime("%F %H:%M %Z").to_string())
            })
            .collect()
    };
    // 2026-11-01 02:00 EDT → 01:00 EST.
    assert_eq!(runs("30 1 * * *", &ny), ["2026-11-01 01:30 EST"]);
    assert_eq!(
        runs("*/30 * * * *", &ny),
        ["2026-11-01 01:00 EST", "2026-11-01 01:30 EST"]
    );
    // 02:00 comes once; the spring gap is skipped by both schedulers.
    assert!(runs("0 2 * * *", &ny).is_empty());
    assert!(runs("30 2 * * *", &ny).is_empty());
    // Only on matching days.
    assert!(runs("30 1 * * 1", &ny).is_empty()); // 2026-11-01 is a Sunday
    assert_eq!(runs("30 1 * * 0", &ny), ["2026-11-01 01:30 EST"]);
    assert!(runs("30 1 * * *", &TimeZone::UTC).is_empty());
    // A half-hour change: 2026-04-05 02:00 +11 → 01:30 +1030.
    let lord_howe = TimeZone::get("Australia/Lord_Howe").unwrap();
    assert_eq!(runs("45 1 * * *", &lord_howe), ["2026-04-05 01:45 +1030"]);
    assert!(runs("15 1 * * *", &lord_howe).is_empty());
    let got = repeated_runs(
        &cron_line(&[cron("30 1 * * *")], None).unwrap().fields,
        &ny,
        from,
        until,
    );
    assert_eq!(
        got[0].change.strftime("%F %H:%M %Z").to_string(),
        "2026-11-01 01:00 EST"
    );
}
