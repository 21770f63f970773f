//! Daylight saving time, case by case, in the four zones the calendar
//! engine must get right: America/New_York, Europe/London,
//! Australia/Lord_Howe (a 30-minute DST shift) and Asia/Hong_Kong (DST until
//! 1979). Each case states systemd 252's behaviour as `jobctl calendar`
//! prints it; the same cases are also run through `systemd-analyze` to
//! prove the expectations are systemd's.
//!
//! What they show (docs/schedules.md explains it):
//! - a time inside a spring-forward gap does not run that day;
//! - a time inside a fall-back overlap runs once, at its first occurrence;
//! - expressions that fire often (`minutely`, `*:0/20`, `hourly`) skip the
//!   whole repeated period after a fall-back;
//! - `daily` and other times outside the change are unaffected.

use crate::oracle::{jobctl, systemd};
use crate::support::tool_or_skip;

struct Case {
    zone: &'static str,
    /// RFC 3339.
    base: &'static str,
    expr: &'static str,
    /// The next elapses, as printed in the local zone.
    want: &'static [&'static str],
}

const CASES: &[Case] = &[
    // New York: spring forward 2025-03-09 02:00 EST → 03:00 EDT.
    Case {
        zone: "America/New_York",
        base: "2025-03-08T17:00:00Z",
        expr: "*-*-* 02:30",
        want: &[
            "Mon 2025-03-10 02:30:00 EDT",
            "Tue 2025-03-11 02:30:00 EDT",
            "Wed 2025-03-12 02:30:00 EDT",
        ],
    },
    Case {
        zone: "America/New_York",
        base: "2025-03-09T06:58:00Z",
        expr: "minutely",
        want: &[
            "Sun 2025-03-09 01:59:00 EST",
            "Sun 2025-03-09 03:00:00 EDT",
            "Sun 2025-03-09 03:01:00 EDT",
        ],
    },
    // New York: fall back 2025-11-02 02:00 EDT → 01:00 EST.
    Case {
        zone: "America/New_York",
        base: "2025-11-01T16:00:00Z",
        expr: "*-*-* 01:30",
        want: &[
            "Sun 2025-11-02 01:30:00 EDT",
            "Mon 2025-11-03 01:30:00 EST",
            "Tue 2025-11-04 01:30:00 EST",
        ],
    },
    Case {
        zone: "America/New_York",
        base: "2025-11-02T05:58:00Z",
        expr: "minutely",
        want: &[
            "Sun 2025-11-02 01:59:00 EDT",
            "Sun 2025-11-02 02:00:00 EST",
            "Sun 2025-11-02 02:01:00 EST",
        ],
    },
    Case {
        zone: "America/New_York",
        base: "2025-11-02T04:30:00Z",
        expr: "hourly",
        want: &[
            "Sun 2025-11-02 01:00:00 EDT",
            "Sun 2025-11-02 02:00:00 EST",
            "Sun 2025-11-02 03:00:00 EST",
        ],
    },
    Case {
        zone: "America/New_York",
        base: "2025-11-01T12:00:00Z",
        expr: "daily",
        want: &[
            "Sun 2025-11-02 00:00:00 EDT",
            "Mon 2025-11-03 00:00:00 EST",
            "Tue 2025-11-04 00:00:00 EST",
        ],
    },
    // A zone suffix: computed in New York whatever the local zone.
    Case {
        zone: "UTC",
        base: "2025-03-08T17:00:00Z",
        expr: "*-*-* 02:30 America/New_York",
        want: &[
            "Mon 2025-03-10 06:30:00 UTC",
            "Tue 2025-03-11 06:30:00 UTC",
            "Wed 2025-03-12 06:30:00 UTC",
        ],
    },
    // London: spring forward 2025-03-30 01:00 GMT → 02:00 BST.
    Case {
        zone: "Europe/London",
        base: "2025-03-29T12:00:00Z",
        expr: "*-*-* 01:30",
        want: &[
            "Mon 2025-03-31 01:30:00 BST",
            "Tue 2025-04-01 01:30:00 BST",
            "Wed 2025-04-02 01:30:00 BST",
        ],
    },
    Case {
        zone: "Europe/London",
        base: "2025-03-30T00:58:00Z",
        expr: "minutely",
        want: &[
            "Sun 2025-03-30 00:59:00 GMT",
            "Sun 2025-03-30 02:00:00 BST",
            "Sun 2025-03-30 02:01:00 BST",
        ],
    },
    // London: fall back 2025-10-26 02:00 BST → 01:00 GMT.
    Case {
        zone: "Europe/London",
        base: "2025-10-25T12:00:00Z",
        expr: "*-*-* 01:30",
        want: &[
            "Sun 2025-10-26 01:30:00 BST",
            "Mon 2025-10-27 01:30:00 GMT",
            "Tue 2025-10-28 01:30:00 GMT",
        ],
    },
    Case {
        zone: "Europe/London",
        base: "2025-10-26T00:30:00Z",
        expr: "*:0/20",
        want: &[
            "Sun 2025-10-26 01:40:00 BST",
            "Sun 2025-10-26 02:00:00 GMT",
            "Sun 2025-10-26 02:20:00 GMT",
        ],
    },
    // Lord Howe: fall back 2025-04-06 02:00 +11 → 01:30 +1030 (half an hour).
    Case {
        zone: "Australia/Lord_Howe",
        base: "2025-04-05T00:00:00Z",
        expr: "*-*-* 01:45",
        want: &[
            "Sun 2025-04-06 01:45:00 +11",
            "Mon 2025-04-07 01:45:00 +1030",
            "Tue 2025-04-08 01:45:00 +1030",
        ],
    },
    Case {
        zone: "Australia/Lord_Howe",
        base: "2025-04-05T14:50:00Z",
        expr: "*:0/15",
        want: &[
            "Sun 2025-04-06 02:00:00 +1030",
            "Sun 2025-04-06 02:15:00 +1030",
            "Sun 2025-04-06 02:30:00 +1030",
        ],
    },
    // Lord Howe: spring forward 2025-10-05 02:00 +1030 → 02:30 +11.
    Case {
        zone: "Australia/Lord_Howe",
        base: "2025-10-04T00:00:00Z",
        expr: "*-*-* 02:15",
        want: &[
            "Mon 2025-10-06 02:15:00 +11",
            "Tue 2025-10-07 02:15:00 +11",
            "Wed 2025-10-08 02:15:00 +11",
        ],
    },
    Case {
        zone: "Australia/Lord_Howe",
        base: "2025-10-04T15:20:00Z",
        expr: "*:0/15",
        want: &[
            "Sun 2025-10-05 02:30:00 +11",
            "Sun 2025-10-05 02:45:00 +11",
            "Sun 2025-10-05 03:00:00 +11",
        ],
    },
    Case {
        zone: "Australia/Lord_Howe",
        base: "2025-10-04T00:00:00Z",
        expr: "daily",
        want: &[
            "Sun 2025-10-05 00:00:00 +1030",
            "Mon 2025-10-06 00:00:00 +11",
            "Tue 2025-10-07 00:00:00 +11",
        ],
    },
    // Hong Kong: no DST today.
    Case {
        zone: "Asia/Hong_Kong",
        base: "2025-01-01T00:00:00Z",
        expr: "Mon..Fri 09:00",
        want: &[
            "Wed 2025-01-01 09:00:00 HKT",
            "Thu 2025-01-02 09:00:00 HKT",
            "Fri 2025-01-03 09:00:00 HKT",
            "Mon 2025-01-06 09:00:00 HKT",
        ],
    },
    // Hong Kong's last fall back, 1979-10-21 03:30 HKST → 02:30 HKT.
    Case {
        zone: "Asia/Hong_Kong",
        base: "1979-10-20T12:00:00Z",
        expr: "*-*-* 03:15",
        want: &[
            "Sun 1979-10-21 03:15:00 HKST",
            "Mon 1979-10-22 03:15:00 HKT",
            "Tue 1979-10-23 03:15:00 HKT",
        ],
    },
    // Leap days.
    Case {
        zone: "Europe/London",
        base: "2023-01-01T00:00:00Z",
        expr: "*-02-29 12:00",
        want: &[
            "Thu 2024-02-29 12:00:00 GMT",
            "Tue 2028-02-29 12:00:00 GMT",
            "Sun 2032-02-29 12:00:00 GMT",
        ],
    },
    Case {
        zone: "UTC",
        base: "2095-01-01T00:00:00Z",
        expr: "*-02-29",
        want: &[
            "Wed 2096-02-29 00:00:00 UTC",
            "Fri 2104-02-29 00:00:00 UTC",
            "Wed 2108-02-29 00:00:00 UTC",
        ],
    },
    Case {
        zone: "UTC",
        base: "2024-01-01T00:00:00Z",
        expr: "*-02~01 23:00",
        want: &[
            "Thu 2024-02-29 23:00:00 UTC",
            "Fri 2025-02-28 23:00:00 UTC",
            "Sat 2026-02-28 23:00:00 UTC",
        ],
    },
    // The end of systemd's range.
    Case {
        zone: "UTC",
        base: "2199-12-30T00:00:00Z",
        expr: "daily",
        want: &["Tue 2199-12-31 00:00:00 UTC"],
    },
];

/// The case's base time as `@SECONDS`.
fn base(case: &Case) -> String {
    let base: jiff::Timestamp = case.base.parse().expect("RFC 3339");
    format!("@{}", base.as_second())
}

fn run(case: &Case) -> Vec<serde_json::Value> {
    let results = jobctl::calendar(
        case.zone,
        &base(case),
        case.want.len() as u32 + 1,
        &[case.expr.to_string()],
        false,
    );
    results[0]["next_elapses"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn dst_cases_print_systemds_elapses() {
    let mut failures = Vec::new();
    for case in CASES {
        let got: Vec<String> = run(case)
            .iter()
            .take(case.want.len())
            .map(|e| e["local"].as_str().unwrap_or_default().to_string())
            .collect();
        if got != case.want {
            failures.push(format!(
                "TZ={} {} {:?}:\n  want {:?}\n  got  {:?}",
                case.zone, case.base, case.expr, case.want, got
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The expectations above are systemd's own.
#[test]
fn dst_cases_agree_with_systemd() {
    if !tool_or_skip(systemd::SYSTEMD_ANALYZE, "the oracle for the DST cases") {
        return;
    }
    for case in CASES {
        let outcome = systemd::calendar(
            case.zone,
            &base(case),
            case.want.len() as u32,
            &[case.expr.to_string()],
        );
        let systemd::Outcome::Accepted { elapses, .. } = &outcome[0] else {
            panic!("systemd: {:?} for {:?}", outcome[0], case.expr);
        };
        let ours: Vec<i64> = run(case)
            .iter()
            .take(case.want.len())
            .map(|e| e["usec"].as_i64().unwrap_or(0) / 1_000_000)
            .collect();
        assert_eq!(
            elapses, &ours,
            "TZ={} {} {:?}",
            case.zone, case.base, case.expr
        );
    }
}

/// Next to Hong Kong's 1979 spring forward, systemd's computation of
/// `03:45` (inside the gap) gives up ("Infinite loop in calendar
/// calculation"); jobctl reports the same failure instead of a time.
#[test]
fn systemds_infinite_loop_is_reported() {
    let results = jobctl::calendar(
        "Asia/Hong_Kong",
        "@295358400",
        2,
        &["*-*-* 03:45".to_string()],
        false,
    );
    let error = results[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        error.contains("Infinite loop in calendar calculation"),
        "{}",
        results[0]
    );
    if tool_or_skip(systemd::SYSTEMD_ANALYZE, "the oracle") {
        let outcome = systemd::calendar(
            "Asia/Hong_Kong",
            "@295358400",
            2,
            &["*-*-* 03:45".to_string()],
        );
        assert_eq!(outcome[0], systemd::Outcome::ComputeError);
    }
}

/// Expressions that can never happen, and the end of the range.
#[test]
fn never_elapsing_expressions() {
    for expr in ["*-02-30", "*-04-31", "2023-02-29", "2199-12-31 23:59:59"] {
        let results = jobctl::calendar("UTC", "@7258118399", 1, &[expr.to_string()], false);
        assert_eq!(results[0]["never"], true, "{expr}: {}", results[0]);
        assert!(results[0]["error"].is_null());
    }
}
