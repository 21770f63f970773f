//! A job's schedules and the timer triggers they become.
//!
//! The simple forms (`every`, `hourly`, `daily`, `weekly`, `monthly`) are
//! parsed here and turned into `OnCalendar=` expressions (or, for intervals
//! that do not divide a minute, hour or day, monotonic triggers).
//! `on_calendar` expressions and `cron` lines are parsed by the calendar
//! engine and the cron translator.

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::calendar::CalendarSpec;
use crate::context::ZoneLookup;
use crate::duration::Timespan;

/// The shortest time any schedule may leave between two runs it starts. One
/// rule for every form: `every`, calendar expressions (their shortest gap
/// between consecutive elapses, [`CalendarSpec::shortest_gap`]) and cron
/// lines (through their translations).
pub const MIN_INTERVAL: Timespan = Timespan::from_secs(1);

/// Checks that `gap`, the shortest time between two runs `what` starts, is
/// at least [`MIN_INTERVAL`].
pub fn check_min_interval(what: &str, gap: Timespan) -> Result<(), String> {
    if gap.as_usec() >= MIN_INTERVAL.as_usec() {
        return Ok(());
    }
    let gap = if gap == Timespan::ZERO {
        "0s".to_string()
    } else {
        gap.to_string()
    };
    Err(format!(
        "{what} can start runs {gap} apart; a schedule may start a run at most once every {MIN_INTERVAL}"
    ))
}

/// One schedule as the job file wrote it, checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// A systemd calendar expression, as written (without the job's timezone).
    Calendar { expression: String },
    /// A cron line and the `OnCalendar=` lines it translates to.
    Cron {
        line: String,
        on_calendar: Vec<String>,
        on_boot: bool,
    },
    /// Every N: wall-clock aligned where N divides a minute, an hour or a day.
    Every { interval: Timespan },
    /// Every hour at this minute.
    Hourly { minute: u8 },
    /// Every day at this time.
    Daily { time: TimeOfDay },
    /// On these weekdays (systemd spelling, e.g. `Mon,Thu`) at this time.
    Weekly { days: String, time: TimeOfDay },
    /// On these days of the month at this time.
    Monthly {
        days: Vec<MonthDay>,
        time: TimeOfDay,
    },
}

/// A wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TimeOfDay {
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }
}

/// A day of the month: a number, or the last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MonthDay {
    Day(u8),
    Last,
}

/// What a schedule asks the timer to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `OnCalendar=` (the job's timezone is appended when rendering).
    Calendar(String),
    /// `OnBootSec=`.
    Boot(Timespan),
    /// `OnActiveSec=` + `OnUnitActiveSec=`: first run one interval after the
    /// timer starts, then one interval after each run started.
    Interval(Timespan),
}

impl Schedule {
    /// The timer triggers of this schedule.
    pub fn triggers(&self) -> Vec<Trigger> {
        match self {
            Schedule::Calendar { expression } => vec![Trigger::Calendar(expression.clone())],
            Schedule::Cron {
                on_calendar,
                on_boot,
                ..
            } => {
                let mut triggers: Vec<Trigger> = on_calendar
                    .iter()
                    .map(|c| Trigger::Calendar(c.clone()))
                    .collect();
                if *on_boot {
                    triggers.push(Trigger::Boot(Timespan::ZERO));
                }
                triggers
            }
            Schedule::Every { interval } => vec![
                aligned_interval(*interval).map_or(Trigger::Interval(*interval), Trigger::Calendar),
            ],
            Schedule::Hourly { minute } => {
                vec![Trigger::Calendar(format!("*-*-* *:{minute:02}:00"))]
            }
            Schedule::Daily { time } => vec![Trigger::Calendar(format!("*-*-* {time}"))],
            Schedule::Weekly { days, time } => {
                vec![Trigger::Calendar(format!("{days} *-*-* {time}"))]
            }
            Schedule::Monthly { days, time } => {
                let numbered: Vec<String> = days
                    .iter()
                    .filter_map(|d| match d {
                        MonthDay::Day(n) => Some(format!("{n:02}")),
                        MonthDay::Last => None,
                    })
                    .collect();
                let mut triggers = Vec::new();
                if !numbered.is_empty() {
                    triggers.push(Trigger::Calendar(format!(
                        "*-*-{} {time}",
                        numbered.join(",")
                    )));
                }
                if days.contains(&MonthDay::Last) {
                    triggers.push(Trigger::Calendar(format!("*-*~01 {time}")));
                }
                triggers
            }
        }
    }

    /// The job key the schedule is written with.
    pub fn key(&self) -> &'static str {
        match self {
            Schedule::Calendar { .. } => "on_calendar",
            Schedule::Cron { .. } => "cron",
            Schedule::Every { .. } => "every",
            Schedule::Hourly { .. } => "hourly",
            Schedule::Daily { .. } => "daily",
            Schedule::Weekly { .. } => "weekly",
            Schedule::Monthly { .. } => "monthly",
        }
    }

    /// How messages name the schedule: `the calendar expression "…"`.
    pub fn subject(&self) -> String {
        match self {
            Schedule::Calendar { expression } => {
                format!("the calendar expression \"{expression}\"")
            }
            Schedule::Cron { line, .. } => format!("the cron line \"{line}\""),
            other => format!("the schedule \"{}\"", other.describe()),
        }
    }

    /// [`Schedule::describe`], naming the job's time zone when the schedule
    /// is on a calendar: its times are on that zone's clock, not the host's.
    pub fn describe_in(&self, timezone: Option<&str>) -> String {
        let on_calendar = self
            .triggers()
            .iter()
            .any(|t| matches!(t, Trigger::Calendar(_)));
        match timezone {
            Some(zone) if on_calendar => format!("{} {zone}", self.describe()),
            _ => self.describe(),
        }
    }

    /// A short human description, for `jobctl list`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Calendar { expression } => expression.clone(),
            Schedule::Cron { line, .. } => format!("cron {line}"),
            Schedule::Every { interval } => format!("every {interval}"),
            Schedule::Hourly { minute } => format!("hourly at :{minute:02}"),
            Schedule::Daily { time } => format!("daily at {}", short_time(time)),
            Schedule::Weekly { days, time } => format!("weekly {days} {}", short_time(time)),
            Schedule::Monthly { days, time } => {
                let days: Vec<String> = days
                    .iter()
                    .map(|d| match d {
                        MonthDay::Day(n) => n.to_string(),
                        MonthDay::Last => "last".into(),
                    })
                    .collect();
                format!("monthly on {} at {}", days.join(","), short_time(time))
            }
        }
    }
}

fn short_time(time: &TimeOfDay) -> String {
    if time.second == 0 {
        format!("{:02}:{:02}", time.hour, time.minute)
    } else {
        time.to_string()
    }
}

/// The calendar expression for an interval that divides a minute, an hour or
/// a day evenly, so that `every = "15min"` runs at :00, :15, :30 and :45.
fn aligned_interval(interval: Timespan) -> Option<String> {
    let secs = interval.whole_secs()?;
    match secs {
        1 => Some("*-*-* *:*:*".into()),
        60 => Some("*-*-* *:*:00".into()),
        3600 => Some("*-*-* *:00:00".into()),
        s if s > 0 && s < 60 && 60 % s == 0 => Some(format!("*-*-* *:*:00/{s}")),
        s if s % 60 == 0 && s < 3600 && 60 % (s / 60) == 0 => {
            Some(format!("*-*-* *:00/{}:00", s / 60))
        }
        s if s % 3600 == 0 && s < 86_400 && 24 % (s / 3600) == 0 => {
            Some(format!("*-*-* 00/{}:00:00", s / 3600))
        }
        86_400 => Some("*-*-* 00:00:00".into()),
        _ => None,
    }
}

/// The time in which a job's schedules must fire: from `now` to the job's
/// end (the first instant past `not_after`), if any.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    pub now: Timestamp,
    pub end: Option<Timestamp>,
    /// The host's zone, for expressions of jobs without a `timezone`.
    pub local: &'a TimeZone,
}

/// The first instant a job whose last day is `not_after` may no longer run:
/// the next midnight in `zone`.
pub fn end_of(not_after: jiff::civil::Date, zone: &TimeZone) -> Option<Timestamp> {
    let next_day = not_after.tomorrow().ok()?;
    next_day.to_zoned(zone.clone()).ok().map(|z| z.timestamp())
}

/// Why a schedule can never fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeverFires {
    /// It names no time that exists (`*-02-30`, cron `0 0 31 2 *`).
    NoSuchTime,
    /// All its times have passed (`2020-06-01`, `1970-01-01`).
    Past,
    /// Its next time is at or after the job's end.
    AfterEnd,
}

impl NeverFires {
    /// Why, for `… can never fire: {why}`.
    pub fn why(self, not_after: Option<jiff::civil::Date>) -> String {
        match self {
            NeverFires::NoSuchTime => "it matches no time that exists".into(),
            NeverFires::Past => "its times are all in the past".into(),
            NeverFires::AfterEnd => match not_after {
                Some(date) => {
                    format!("its next time is after the job's end (not_after = {date})")
                }
                None => "its next time is after the job's end".into(),
            },
        }
    }

    /// What to do about it, when no other schedule of the job fires.
    pub fn hint(self) -> &'static str {
        match self {
            NeverFires::NoSuchTime => {
                "a day that no month has (such as February 30) never comes; `jobctl calendar` shows when an expression fires"
            }
            NeverFires::Past => {
                "a date that has passed never comes back: change the date, or delete the job file"
            }
            NeverFires::AfterEnd => {
                "the job ends before this schedule's next time: move not_after later, or change the schedule"
            }
        }
    }
}

/// Whether `schedule` can fire in `window`, computed by the calendar
/// engine as systemd would; `Some(why)` when it never can. `timezone` is the
/// job's. A schedule whose next time cannot be computed here (an unknown
/// zone, systemd's own iteration limit) is not judged.
pub fn never_fires(
    schedule: &Schedule,
    timezone: Option<&str>,
    window: &Window<'_>,
    zones: &dyn ZoneLookup,
) -> Option<NeverFires> {
    let zone = match timezone {
        Some(name) => zones.zone(name)?,
        None => window.local.clone(),
    };
    let mut verdict = None;
    for trigger in schedule.triggers() {
        let Trigger::Calendar(expr) = trigger else {
            // Boot and interval timers fire whenever the timer runs.
            return None;
        };
        let spec = CalendarSpec::parse(&expr).ok()?;
        let why = match spec.next_elapse(window.now, &zone, zones).ok()? {
            Some(next) if window.end.is_none_or(|end| next < end) => return None,
            Some(_) => NeverFires::AfterEnd,
            None => {
                let any_year = spec.any_year();
                match any_year.next_elapse(Timestamp::UNIX_EPOCH, &zone, zones) {
                    Ok(Some(_)) => NeverFires::Past,
                    Ok(None) => NeverFires::NoSuchTime,
                    Err(_) => return None,
                }
            }
        };
        verdict.get_or_insert(why);
    }
    verdict
}

/// Parses `HH:MM` or `HH:MM:SS`.
pub fn parse_time_of_day(text: &str) -> Result<TimeOfDay, String> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    let field = |s: &str, max: u8, what: &str| -> Result<u8, String> {
        if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("\"{text}\" is not a time; write HH:MM, e.g. 02:15"));
        }
        let n: u8 = s.parse().map_err(|_| format!("bad {what} in \"{text}\""))?;
        if n > max {
            return Err(format!(
                "the {what} in \"{text}\" is {n}; it must be 0 to {max}"
            ));
        }
        Ok(n)
    };
    match parts.as_slice() {
        [h, m] => Ok(TimeOfDay {
            hour: field(h, 23, "hour")?,
            minute: field(m, 59, "minute")?,
            second: 0,
        }),
        [h, m, s] => Ok(TimeOfDay {
            hour: field(h, 23, "hour")?,
            minute: field(m, 59, "minute")?,
            second: field(s, 59, "second")?,
        }),
        _ => Err(format!("\"{text}\" is not a time; write HH:MM, e.g. 02:15")),
    }
}

/// Parses `hourly`: a minute, `MM` or `:MM`.
pub fn parse_hourly(text: &str) -> Result<u8, String> {
    let digits = text.trim().trim_start_matches(':');
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{text}\" is not a minute; write the minute past the hour, e.g. \":05\""
        ));
    }
    let minute: u8 = digits.parse().unwrap_or(u8::MAX);
    if minute > 59 {
        return Err(format!("minute {minute} is out of range 0 to 59"));
    }
    Ok(minute)
}

const WEEKDAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];
const WEEKDAY_SPELLING: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn weekday_index(word: &str) -> Option<usize> {
    let lower = word.to_ascii_lowercase();
    WEEKDAYS
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
}

/// Parses `weekly`: `DAYS HH:MM`, where DAYS is a comma list of weekdays or
/// ranges (`Mon`, `mon,thu`, `Mon..Fri`, full names too).
pub fn parse_weekly(text: &str) -> Result<(String, TimeOfDay), String> {
    let (days_text, time_text) = text.trim().split_once(char::is_whitespace).ok_or_else(|| {
        format!("\"{text}\" needs weekdays and a time, e.g. \"Sun 23:59\" or \"Mon..Fri 08:00\"")
    })?;
    let mut parts = Vec::new();
    for item in days_text.split(',') {
        let spelled = match item.split_once("..") {
            Some((from, to)) => {
                let (a, b) = (weekday_index(from), weekday_index(to));
                match (a, b) {
                    (Some(a), Some(b)) if a < b => {
                        format!("{}..{}", WEEKDAY_SPELLING[a], WEEKDAY_SPELLING[b])
                    }
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "the range \"{item}\" runs backwards; write it from Monday's side, e.g. Mon..Fri"
                        ));
                    }
                    _ => return Err(unknown_weekday(item)),
                }
            }
            None => WEEKDAY_SPELLING[weekday_index(item).ok_or_else(|| unknown_weekday(item))?]
                .to_string(),
        };
        parts.push(spelled);
    }
    let time = parse_time_of_day(time_text)?;
    Ok((parts.join(","), time))
}

fn unknown_weekday(item: &str) -> String {
    format!(
        "\"{item}\" is not a weekday; use Mon, Tue, Wed, Thu, Fri, Sat, Sun (or full names), lists and ranges like Mon..Fri"
    )
}

/// Parses `monthly`: `DAYS HH:MM`, DAYS a comma list of 1 to 31 or `last`.
pub fn parse_monthly(text: &str) -> Result<(Vec<MonthDay>, TimeOfDay), String> {
    let (days_text, time_text) = text.trim().split_once(char::is_whitespace).ok_or_else(|| {
        format!("\"{text}\" needs days of the month and a time, e.g. \"1 09:00\" or \"last 18:00\"")
    })?;
    let mut days = Vec::new();
    for item in days_text.split(',') {
        let day = if item.eq_ignore_ascii_case("last") {
            MonthDay::Last
        } else {
            match item.parse::<u8>() {
                Ok(n @ 1..=31) => MonthDay::Day(n),
                _ => {
                    return Err(format!(
                        "\"{item}\" is not a day of the month; use 1 to 31 or \"last\""
                    ));
                }
            }
        };
        if !days.contains(&day) {
            days.push(day);
        }
    }
    days.sort_by_key(|d| match d {
        MonthDay::Day(n) => *n,
        MonthDay::Last => 32,
    });
    Ok((days, parse_time_of_day(time_text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calendars(schedule: &Schedule) -> Vec<String> {
        schedule
            .triggers()
            .into_iter()
            .map(|t| match t {
                Trigger::Calendar(c) => c,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn intervals_align_when_they_divide() {
        let every = |s: &str| Schedule::Every {
            interval: Timespan::parse(s).unwrap(),
        };
        assert_eq!(calendars(&every("15s")), ["*-*-* *:*:00/15"]);
        assert_eq!(calendars(&every("15min")), ["*-*-* *:00/15:00"]);
        assert_eq!(calendars(&every("1h")), ["*-*-* *:00:00"]);
        assert_eq!(calendars(&every("1min")), ["*-*-* *:*:00"]);
        assert_eq!(calendars(&every("1s")), ["*-*-* *:*:*"]);
        assert_eq!(calendars(&every("6h")), ["*-*-* 00/6:00:00"]);
        assert_eq!(calendars(&every("1d")), ["*-*-* 00:00:00"]);
        assert_eq!(
            every("7min").triggers(),
            [Trigger::Interval(Timespan::from_secs(420))]
        );
        assert_eq!(
            every("90min").triggers(),
            [Trigger::Interval(Timespan::from_secs(5400))]
        );
        assert_eq!(
            every("1500ms").triggers(),
            [Trigger::Interval(Timespan::from_usec(1_500_000))]
        );
    }

    #[test]
    fn simple_forms() {
        assert_eq!(parse_hourly(":05"), Ok(5));
        assert_eq!(parse_hourly("45"), Ok(45));
        assert!(parse_hourly("60").is_err());
        assert!(parse_hourly("5m").is_err());
        let t = parse_time_of_day("02:15").unwrap();
        assert_eq!(calendars(&Schedule::Daily { time: t }), ["*-*-* 02:15:00"]);
        assert!(parse_time_of_day("24:00").is_err());
        assert!(parse_time_of_day("2:60").is_err());
        assert!(parse_time_of_day("0215").is_err());
        let (days, time) = parse_weekly("sunday 23:59").unwrap();
        assert_eq!(
            calendars(&Schedule::Weekly { days, time }),
            ["Sun *-*-* 23:59:00"]
        );
        assert_eq!(
            parse_weekly("Mon..Fri,sun 08:00").unwrap().0,
            "Mon..Fri,Sun"
        );
        assert!(parse_weekly("Fri..Mon 08:00").is_err());
        assert!(parse_weekly("Someday 08:00").is_err());
        assert!(parse_weekly("Mon").is_err());
        let (days, time) = parse_monthly("15,1,last 09:00").unwrap();
        assert_eq!(
            calendars(&Schedule::Monthly { days, time }),
            ["*-*-01,15 09:00:00", "*-*~01 09:00:00"]
        );
        assert!(parse_monthly("0 09:00").is_err());
        assert!(parse_monthly("32 09:00").is_err());
    }

    #[test]
    fn one_minimum_interval_for_every_form() {
        assert!(check_min_interval("x", Timespan::from_secs(1)).is_ok());
        assert_eq!(
            check_min_interval("the interval 500ms", Timespan::from_usec(500_000)).unwrap_err(),
            "the interval 500ms can start runs 500ms apart; a schedule may start a run at most once every 1s"
        );
        assert!(
            check_min_interval("x", Timespan::ZERO)
                .unwrap_err()
                .contains("0s apart")
        );
    }

    #[test]
    fn schedules_that_never_fire() {
        use crate::context::UtcOnly;
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        let utc = TimeZone::UTC;
        let window = |end: Option<&str>| Window {
            now,
            end: end.map(|e| e.parse().unwrap()),
            local: &utc,
        };
        let calendar = |e: &str| Schedule::Calendar {
            expression: e.into(),
        };
        let never = |s: &Schedule, end: Option<&str>| never_fires(s, None, &window(end), &UtcOnly);
        assert_eq!(
            never(&calendar("*-02-30"), None),
            Some(NeverFires::NoSuchTime)
        );
        assert_eq!(
            never(&calendar("2024-02-30"), None),
            Some(NeverFires::NoSuchTime)
        );
        assert_eq!(never(&calendar("2020-06-01"), None), Some(NeverFires::Past));
        assert_eq!(never(&calendar("1970-01-01"), None), Some(NeverFires::Past));
        assert_eq!(
            never(&calendar("2026-03-10 11:59:59"), None),
            Some(NeverFires::Past)
        );
        assert_eq!(never(&calendar("2026-03-10 12:00:01"), None), None);
        assert_eq!(never(&calendar("daily"), None), None);
        // Before the end, or not.
        let end = Some("2026-04-01T00:00:00Z");
        assert_eq!(
            never(&calendar("2026-05-01"), end),
            Some(NeverFires::AfterEnd)
        );
        assert_eq!(never(&calendar("2026-03-31 23:59"), end), None);
        let monthly = Schedule::Monthly {
            days: vec![MonthDay::Day(15)],
            time: parse_time_of_day("09:00").unwrap(),
        };
        assert_eq!(
            never(&monthly, Some("2026-03-15T00:00:00Z")),
            Some(NeverFires::AfterEnd)
        );
        // A cron line fires when either translation does (Vixie's OR rule).
        let cron = |line: &str| {
            let t = crate::cron::parse(line).unwrap().to_systemd();
            Schedule::Cron {
                line: line.into(),
                on_calendar: t.on_calendar,
                on_boot: t.on_boot,
            }
        };
        assert_eq!(
            never(&cron("0 0 31 2 *"), None),
            Some(NeverFires::NoSuchTime)
        );
        assert_eq!(never(&cron("0 0 31 2 1"), None), None);
        assert_eq!(never(&cron("@reboot"), None), None);
        // Intervals run whenever the timer does.
        let every = Schedule::Every {
            interval: Timespan::from_secs(420),
        };
        assert_eq!(never(&every, Some("2026-03-10T12:00:01Z")), None);
        // Computed in the job's zone; a zone that cannot be found here is
        // not judged.
        assert_eq!(
            never_fires(
                &calendar("2026-03-10 11:30"),
                Some("UTC"),
                &window(None),
                &UtcOnly
            ),
            Some(NeverFires::Past)
        );
        assert_eq!(
            never_fires(
                &calendar("2020-01-01"),
                Some("Europe/Paris"),
                &window(None),
                &UtcOnly
            ),
            None
        );
    }

    #[test]
    fn descriptions() {
        let time = parse_time_of_day("09:00").unwrap();
        assert_eq!(
            Schedule::Monthly {
                days: vec![MonthDay::Day(1)],
                time
            }
            .describe(),
            "monthly on 1 at 09:00"
        );
        assert_eq!(Schedule::Hourly { minute: 5 }.describe(), "hourly at :05");
        let daily = Schedule::Daily { time };
        assert_eq!(
            daily.describe_in(Some("Asia/Hong_Kong")),
            "daily at 09:00 Asia/Hong_Kong"
        );
        assert_eq!(daily.describe_in(None), "daily at 09:00");
        // An interval that does not divide a day runs on the monotonic clock:
        // no zone to name.
        let every = Schedule::Every {
            interval: Timespan::from_secs(7 * 60),
        };
        assert_eq!(every.describe_in(Some("Asia/Hong_Kong")), "every 7min");
    }
}
