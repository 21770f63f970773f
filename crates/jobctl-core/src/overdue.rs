//! When a scheduled run is overdue: the rule shared by `jobctl watch` (the
//! `overdue` event) and `jobctl health` (the `overdue` problem).
//!
//! From a *baseline* — the later of the last run's start and end, and the
//! moment the current schedule was first judged (the watch remembers it) —
//! the next run is expected at the schedule's next time after the baseline,
//! computed by the calendar engine exactly as systemd computes the timer's
//! elapse (`OnCalendar=` with the job's zone; `every` intervals that become
//! `OnUnitActiveSec=` one interval after the baseline). systemd may then
//! legitimately start it up to `AccuracySec=` plus `RandomizedDelaySec=`
//! later. A further *grace* (the job's `grace`, or a tenth of the schedule's
//! interval, at least 1 minute and at most 1 hour) absorbs a busy manager.
//! Past all that, with no run started, the run is overdue.
//!
//! Boot triggers (`on_boot`, cron's `@reboot`) say nothing about when a
//! run is due and are left out; a job with only those is never overdue.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::calendar::CalendarSpec;
use crate::context::ZoneLookup;
use crate::duration::Timespan;
use crate::job::Job;
use crate::render::DEFAULT_ACCURACY;
use crate::schedule::Trigger;

/// The shortest derived grace.
pub const MIN_GRACE: Timespan = Timespan::from_secs(60);
/// The longest derived grace.
pub const MAX_GRACE: Timespan = Timespan::from_secs(3600);

/// When the next run is expected, and from when it is overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Expected {
    /// The schedule's next time after the baseline (µs since the epoch).
    pub expected_us: i64,
    /// systemd's own leeway: `AccuracySec=` + `RandomizedDelaySec=`.
    pub leeway_us: i64,
    /// The job's `grace`, or the one derived from the schedule.
    pub grace_us: i64,
    /// Whether `grace_us` was derived (not set by the job).
    pub derived_grace: bool,
}

impl Expected {
    /// From this instant on, with no run started, the run is overdue.
    pub fn overdue_from_us(&self) -> i64 {
        self.expected_us
            .saturating_add(self.leeway_us)
            .saturating_add(self.grace_us)
    }
}

/// The grace derived from the interval between two runs of the schedule: a
/// tenth of it, within [`MIN_GRACE`]..=[`MAX_GRACE`] (`None`: a schedule that
/// fires once more at most, given the longest).
pub fn derived_grace(interval_us: Option<i64>) -> i64 {
    let (min, max) = (as_i64(MIN_GRACE), as_i64(MAX_GRACE));
    interval_us.map_or(max, |i| (i / 10).clamp(min, max))
}

fn as_i64(t: Timespan) -> i64 {
    i64::try_from(t.as_usec()).unwrap_or(i64::MAX)
}

/// When `job`'s next run is expected after `baseline_us`, or `None` when
/// none is (no calendar or interval trigger, a schedule that never fires
/// again, a zone this host does not have). `local` is the host's zone, for
/// expressions without one.
pub fn expected_after(
    job: &Job,
    baseline_us: i64,
    local: &TimeZone,
    zones: &dyn ZoneLookup,
) -> Option<Expected> {
    let baseline = Timestamp::from_microsecond(baseline_us).ok()?;
    // The earliest next time over every trigger, with that trigger's interval.
    let mut best: Option<(i64, Option<i64>)> = None;
    for schedule in &job.schedules {
        for trigger in schedule.triggers() {
            let next = match trigger {
                Trigger::Calendar(expr) => {
                    // The expression exactly as the timer unit has it.
                    let written = match &job.timezone {
                        Some(zone) => format!("{expr} {zone}"),
                        None => expr,
                    };
                    let Ok(spec) = CalendarSpec::parse(&written) else {
                        continue;
                    };
                    let Ok(mut elapses) = spec.elapses(baseline, local, zones) else {
                        continue;
                    };
                    let Some(Ok(first)) = elapses.next() else {
                        continue;
                    };
                    let interval = match elapses.next() {
                        Some(Ok(second)) => Some(second.as_microsecond() - first.as_microsecond()),
                        _ => None,
                    };
                    (first.as_microsecond(), interval)
                }
                Trigger::Interval(every) => {
                    let every = as_i64(every);
                    (baseline_us.saturating_add(every), Some(every))
                }
                Trigger::Boot(_) => continue,
            };
            if best.is_none_or(|(b, _)| next.0 < b) {
                best = Some(next);
            }
        }
    }
    let (expected_us, interval) = best?;
    let leeway = as_i64(job.timer.accuracy.unwrap_or(DEFAULT_ACCURACY))
        .saturating_add(job.timer.randomized_delay.map_or(0, as_i64));
    let (grace_us, derived) = match job.notify.grace {
        Some(g) => (as_i64(g), false),
        None => (derived_grace(interval), true),
    };
    Some(Expected {
        expected_us,
        leeway_us: leeway,
        grace_us,
        derived_grace: derived,
    })
}

/// The baseline: the later of the last run's start and end (a run that
/// outlasts an elapse makes systemd skip it) and `since_us`, the moment the
/// current schedule was first judged. `None` when there is neither a run
/// nor a `since`.
pub fn baseline(
    last_start_us: Option<i64>,
    last_end_us: Option<i64>,
    since_us: Option<i64>,
) -> Option<i64> {
    [last_start_us, last_end_us, since_us]
        .into_iter()
        .flatten()
        .max()
}

/// Whether `job` is overdue at `now_us`: `Some(expected)` when the next run
/// after the baseline should have started by now and no run has. A run in
/// progress is never overdue (a long run is `overrun`'s concern).
pub fn judge(
    job: &Job,
    last: Option<LastRun>,
    since_us: Option<i64>,
    now_us: i64,
    local: &TimeZone,
    zones: &dyn ZoneLookup,
) -> Option<Expected> {
    if last.is_some_and(|l| l.running) {
        return None;
    }
    let base = baseline(
        last.map(|l| l.started_us),
        last.and_then(|l| l.ended_us),
        since_us,
    )?;
    let expected = expected_after(job, base, local, zones)?;
    (now_us >= expected.overdue_from_us()).then_some(expected)
}

/// What the overdue rule needs of a job's newest run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRun {
    pub started_us: i64,
    pub ended_us: Option<i64>,
    /// Still in progress (not lost).
    pub running: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::context::{Mode, UtcOnly};
    use crate::job::{JobSource, LoadContext, load_job};

    /// A zone lookup with UTC and New York (for DST) from the host's
    /// zoneinfo, when it has it.
    struct Zones;
    impl ZoneLookup for Zones {
        fn zone(&self, name: &str) -> Option<TimeZone> {
            if name.eq_ignore_ascii_case("UTC") {
                return Some(TimeZone::UTC);
            }
            let bytes = std::fs::read(format!("/usr/share/zoneinfo/{name}")).ok()?;
            TimeZone::tzif(name, &bytes).ok()
        }
    }

    fn job(body: &str) -> Job {
        let config = Config::default();
        let loaded = load_job(
            JobSource {
                path: "j.toml",
                stem: "j",
                text: &format!("command = [\"/bin/true\"]\n{body}"),
            },
            &LoadContext {
                mode: Mode::System,
                config: &config,
                zones: &Zones,
                root_files: None,
                now: None,
                systemd: None,
            },
        );
        loaded
            .job
            .unwrap_or_else(|| panic!("{body}: {:?}", loaded.diagnostics))
    }

    fn us(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_microsecond()
    }

    const MIN: i64 = 60_000_000;

    fn finished(start: &str) -> Option<LastRun> {
        Some(LastRun {
            started_us: us(start),
            ended_us: Some(us(start) + 1_000_000),
            running: false,
        })
    }

    /// (schedule, last run start, now, overdue?) — the documented examples.
    #[test]
    fn the_overdue_rule_table() {
        let cases: &[(&str, &str, &str, bool)] = &[
            // Hourly at :00; derived grace = 6 min; accuracy 1 s.
            (
                "hourly = \":00\"",
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:05:00Z",
                false,
            ),
            (
                "hourly = \":00\"",
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:06:00Z",
                false,
            ),
            (
                "hourly = \":00\"",
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:06:01Z",
                true,
            ),
            // An explicit grace.
            (
                "hourly = \":00\"\ngrace = \"30min\"",
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:20:00Z",
                false,
            ),
            (
                "hourly = \":00\"\ngrace = \"30min\"",
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:30:02Z",
                true,
            ),
            // Daily: a tenth of a day is capped at 1 hour.
            (
                "daily = \"03:00\"",
                "2026-03-02T03:00:00Z",
                "2026-03-03T03:59:00Z",
                false,
            ),
            (
                "daily = \"03:00\"",
                "2026-03-02T03:00:00Z",
                "2026-03-03T04:00:02Z",
                true,
            ),
            // Every minute: at least 1 minute of grace.
            (
                "every = \"1min\"",
                "2026-03-02T09:00:00Z",
                "2026-03-02T09:01:59Z",
                false,
            ),
            (
                "every = \"1min\"",
                "2026-03-02T09:00:00Z",
                "2026-03-02T09:02:02Z",
                true,
            ),
            // Every 7 minutes (not aligned: OnUnitActiveSec=), from the last start.
            (
                "every = \"7min\"",
                "2026-03-02T09:03:00Z",
                "2026-03-02T09:11:01Z",
                false,
            ),
            (
                "every = \"7min\"",
                "2026-03-02T09:03:00Z",
                "2026-03-02T09:11:02Z",
                true,
            ),
            // Randomized delay widens the window.
            (
                "daily = \"03:00\"\nrandomized_delay = \"2h\"",
                "2026-03-02T03:00:00Z",
                "2026-03-03T05:59:00Z",
                false,
            ),
            (
                "daily = \"03:00\"\nrandomized_delay = \"2h\"",
                "2026-03-02T03:00:00Z",
                "2026-03-03T06:00:02Z",
                true,
            ),
            // A weekday schedule: Friday's run, then Monday's.
            (
                "on_calendar = \"Mon..Fri 09:00\"",
                "2026-03-06T09:00:00Z",
                "2026-03-08T12:00:00Z",
                false,
            ),
            (
                "on_calendar = \"Mon..Fri 09:00\"",
                "2026-03-06T09:00:00Z",
                "2026-03-09T10:00:02Z",
                true,
            ),
            // A cron line.
            // A cron line every 15 minutes: 90 s of grace.
            (
                "cron = \"*/15 * * * *\"",
                "2026-03-02T09:15:00Z",
                "2026-03-02T09:31:30Z",
                false,
            ),
            (
                "cron = \"*/15 * * * *\"",
                "2026-03-02T09:15:00Z",
                "2026-03-02T09:31:32Z",
                true,
            ),
        ];
        for (schedule, last, now, overdue) in cases {
            let j = job(schedule);
            let got = judge(&j, finished(last), None, us(now), &TimeZone::UTC, &Zones);
            assert_eq!(
                got.is_some(),
                *overdue,
                "{schedule} last {last} now {now}: {got:?}"
            );
        }
    }

    #[test]
    fn a_job_zone_is_the_timers_zone() {
        // 09:00 in New York is 14:00 UTC in winter.
        let j = job("daily = \"09:00\"\ntimezone = \"America/New_York\"");
        let e = expected_after(&j, us("2026-01-05T15:00:00Z"), &TimeZone::UTC, &Zones).unwrap();
        assert_eq!(e.expected_us, us("2026-01-06T14:00:00Z"));
        // Across the spring change: 13:00 UTC.
        let e = expected_after(&j, us("2026-03-07T15:00:00Z"), &TimeZone::UTC, &Zones).unwrap();
        assert_eq!(e.expected_us, us("2026-03-08T13:00:00Z"));
    }

    #[test]
    fn the_baseline_is_the_latest_of_start_end_and_since() {
        assert_eq!(baseline(None, None, None), None);
        assert_eq!(baseline(Some(5), Some(9), Some(7)), Some(9));
        assert_eq!(baseline(Some(5), None, Some(7)), Some(7));
        // A run that lasted past the next elapse: the next one counts.
        let j = job("hourly = \":00\"");
        let long = Some(LastRun {
            started_us: us("2026-03-02T09:00:00Z"),
            ended_us: Some(us("2026-03-02T10:30:00Z")),
            running: false,
        });
        assert!(
            judge(
                &j,
                long,
                None,
                us("2026-03-02T10:50:00Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_none()
        );
        assert!(
            judge(
                &j,
                long,
                None,
                us("2026-03-02T11:06:02Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_some()
        );
        // Since the schedule was judged (a new schedule, a job re-enabled).
        let since = us("2026-03-02T12:30:00Z");
        assert!(
            judge(
                &j,
                finished("2026-03-01T09:00:00Z"),
                Some(since),
                us("2026-03-02T12:40:00Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_none()
        );
        assert!(
            judge(
                &j,
                finished("2026-03-01T09:00:00Z"),
                Some(since),
                us("2026-03-02T13:06:02Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_some()
        );
        // No run, and the time the schedule was first seen.
        assert!(
            judge(
                &j,
                None,
                Some(since),
                us("2026-03-02T13:06:02Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_some()
        );
        assert!(
            judge(
                &j,
                None,
                None,
                us("2026-03-02T13:06:02Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_none()
        );
    }

    #[test]
    fn a_run_in_progress_and_boot_only_jobs_are_never_overdue() {
        let j = job("hourly = \":00\"");
        let running = Some(LastRun {
            started_us: us("2026-03-02T09:00:00Z"),
            ended_us: None,
            running: true,
        });
        assert!(
            judge(
                &j,
                running,
                None,
                us("2026-03-05T00:00:00Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_none()
        );
        let boot = job("on_boot = \"5min\"");
        assert!(
            judge(
                &boot,
                finished("2026-03-01T09:00:00Z"),
                None,
                us("2026-03-05T00:00:00Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_none()
        );
        // A lost run (not running) counts by its start.
        let lost = Some(LastRun {
            started_us: us("2026-03-02T09:00:00Z"),
            ended_us: None,
            running: false,
        });
        assert!(
            judge(
                &j,
                lost,
                None,
                us("2026-03-02T10:06:02Z"),
                &TimeZone::UTC,
                &Zones
            )
            .is_some()
        );
    }

    #[test]
    fn a_one_off_date_that_passed_with_its_run_expects_nothing_more() {
        let j = job("on_calendar = \"2026-03-02 09:00\"");
        assert!(
            judge(
                &j,
                finished("2026-03-02T09:00:00Z"),
                None,
                us("2027-01-01T00:00:00Z"),
                &TimeZone::UTC,
                &UtcOnly
            )
            .is_none()
        );
        // Not run at its time: overdue an hour (the longest grace) later.
        let e = judge(
            &j,
            None,
            Some(us("2026-03-01T00:00:00Z")),
            us("2026-03-02T10:00:02Z"),
            &TimeZone::UTC,
            &UtcOnly,
        )
        .unwrap();
        assert_eq!(
            (e.expected_us, e.grace_us),
            (us("2026-03-02T09:00:00Z"), 3_600_000_000)
        );
        assert!(e.derived_grace);
    }

    #[test]
    fn derived_grace_bounds() {
        assert_eq!(derived_grace(Some(MIN)), MIN);
        assert_eq!(derived_grace(Some(60 * MIN)), 6 * MIN);
        assert_eq!(derived_grace(Some(24 * 60 * MIN)), 60 * MIN);
        assert_eq!(derived_grace(None), 60 * MIN);
    }
}
