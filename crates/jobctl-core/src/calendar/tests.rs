//! Unit tests of the calendar engine. The exhaustive comparison with
//! `systemd-analyze calendar` lives in tests/calendar_oracle.rs; the cases
//! here pin behaviour that must hold without systemd installed.

use super::*;

/// Zones from jiff's reading of the host's zoneinfo, exact names only.
struct SystemZones;

impl ZoneLookup for SystemZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        if name == "UTC" {
            return Some(TimeZone::UTC);
        }
        let tz = jiff::tz::db().get(name).ok()?;
        (tz.iana_name() == Some(name)).then_some(tz)
    }
}

fn tz(name: &str) -> TimeZone {
    SystemZones.zone(name).expect("zone")
}

fn norm(expr: &str) -> String {
    CalendarSpec::parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .normalized()
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn next_n(expr: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
    let spec = CalendarSpec::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    spec.elapses(ts(after), &tz(zone), &SystemZones)
        .expect("zone")
        .take(n)
        .map(|r| r.expect("computable").to_string())
        .collect()
}

#[test]
fn normalizes_like_systemd() {
    let cases = [
        ("daily", "*-*-* 00:00:00"),
        ("weekly", "Mon *-*-* 00:00:00"),
        ("quarterly", "*-01,04,07,10-01 00:00:00"),
        ("semi-annually", "*-01,07-01 00:00:00"),
        ("Mon..Fri 9:00", "Mon..Fri *-*-* 09:00:00"),
        ("Sat,Thu,Mon-Wed,Sat-Sun", "Mon..Thu,Sat,Sun *-*-* 00:00:00"),
        ("Wednesday,", "Wed *-*-* 00:00:00"),
        ("Mon,Sun 12-*-* 2,1:23", "Mon,Sun 2012-*-* 01,02:23:00"),
        ("12,14,13,12:20,10,30", "*-*-* 12,13,14:10,20,30:00"),
        ("*:2/3", "*-*-* *:02/3:00"),
        ("*:20..39/5", "*-*-* *:20..35/5:00"),
        ("*:05..10/6", "*-*-* *:05:00"),
        ("93..00-*-*", "1993..2000-*-* 00:00:00"),
        ("2016-03-27 03:17:00.4200005", "2016-03-27 03:17:00.420001"),
        ("00:00:1.125..2.125", "*-*-* 00:00:01.125000..02.125000"),
        ("*:4,30:0/1,3,5", "*-*-* *:04,30:*"),
        ("*-*~05,3 ", "*-*~03,05 00:00:00"),
        ("*-*~* 00:00:00", "*-*-* 00:00:00"),
        ("@0", "1970-01-01 00:00:00 UTC"),
        ("2015-10-25 01:00:00 uTc", "2015-10-25 01:00:00 UTC"),
        (
            "weekly Pacific/Auckland",
            "Mon *-*-* 00:00:00 Pacific/Auckland",
        ),
        ("Mon ", "Mon *-*-* 00:00:00"),
    ];
    for (expr, want) in cases {
        assert_eq!(norm(expr), want, "{expr:?}");
    }
}

#[test]
fn accessors() {
    let spec = CalendarSpec::parse("daily Asia/Tokyo").unwrap();
    assert_eq!(spec.timezone(), Some("Asia/Tokyo"));
    assert_eq!(spec.timezone_span(), Some(6..16));
    assert!(!spec.is_utc());
    assert_eq!(spec.source(), "daily Asia/Tokyo");
    let spec = CalendarSpec::parse("Mon 12:00 utc").unwrap();
    assert_eq!(spec.timezone(), Some("UTC"));
    assert!(spec.is_utc());
    let spec = CalendarSpec::parse("@1700000000").unwrap();
    assert_eq!(spec.timezone(), None);
    assert!(spec.is_utc());
    let spec: CalendarSpec = "hourly".parse().unwrap();
    assert_eq!(spec.to_string(), "*-*-* *:00:00");
}

#[test]
fn next_elapses_in_utc_and_new_york() {
    assert_eq!(
        next_n("Mon..Fri 09:00", "UTC", "2025-01-03T09:00:00Z", 3),
        [
            "2025-01-06T09:00:00Z",
            "2025-01-07T09:00:00Z",
            "2025-01-08T09:00:00Z"
        ]
    );
    // A spring-forward gap is skipped; an overlap fires once.
    assert_eq!(
        next_n("*-*-* 02:30", "America/New_York", "2025-03-08T17:00:00Z", 2),
        ["2025-03-10T06:30:00Z", "2025-03-11T06:30:00Z"]
    );
    assert_eq!(
        next_n("minutely", "America/New_York", "2025-11-02T05:58:00Z", 3),
        [
            "2025-11-02T05:59:00Z",
            "2025-11-02T07:00:00Z",
            "2025-11-02T07:01:00Z"
        ]
    );
    // The zone suffix wins over the local zone.
    assert_eq!(
        next_n(
            "*-*-* 12:00 Asia/Tokyo",
            "America/New_York",
            "2025-01-01T00:00:00Z",
            1
        ),
        ["2025-01-01T03:00:00Z"]
    );
    // Fractional seconds.
    assert_eq!(
        next_n("*:*:00/0.25", "UTC", "2025-01-01T00:00:00Z", 3),
        [
            "2025-01-01T00:00:00.25Z",
            "2025-01-01T00:00:00.5Z",
            "2025-01-01T00:00:00.75Z"
        ]
    );
    // Last day of the month, leap years included.
    assert_eq!(
        next_n("*-02~01", "UTC", "2023-03-01T00:00:00Z", 2),
        ["2024-02-29T00:00:00Z", "2025-02-28T00:00:00Z"]
    );
}

#[test]
fn never_and_end_of_range() {
    let utc = TimeZone::UTC;
    for expr in ["*-02-30", "2023-02-29", "1999-*-*"] {
        let spec = CalendarSpec::parse(expr).unwrap();
        assert_eq!(
            spec.next_elapse(ts("2020-01-01T00:00:00Z"), &utc, &SystemZones),
            Ok(None),
            "{expr}"
        );
    }
    let spec = CalendarSpec::parse("daily").unwrap();
    assert_eq!(
        spec.next_elapse(ts("2199-12-31T00:00:00Z"), &utc, &SystemZones),
        Ok(None)
    );
    let err = spec
        .next_elapse(ts("1969-12-31T00:00:00Z"), &utc, &SystemZones)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BaseTimeOutOfRange);
}

#[test]
fn zones_are_checked_when_asked() {
    // Without a lookup a zone-like word is taken as a zone...
    let spec = CalendarSpec::parse("daily Europe/Atlantis").unwrap();
    let err = spec.check_zone(&SystemZones).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownZone);
    assert_eq!(err.span(), 6..21);
    let err = spec
        .next_elapse(ts("2025-01-01T00:00:00Z"), &TimeZone::UTC, &SystemZones)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownZone);
    // ...with one, parsing checks it as systemd does.
    let options = ParseOptions {
        zones: Some(&SystemZones),
        local_abbreviations: None,
    };
    let err = CalendarSpec::parse_with("daily Europe/Atlantis", &options).unwrap_err();
    assert_eq!(err.message(), "unknown time zone \"Europe/Atlantis\"");
    assert!(CalendarSpec::parse_with("daily Europe/Berlin", &options).is_ok());
    let err = CalendarSpec::parse_with("daily europe/berlin", &options).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnknownZone);
    // A date-like last word is part of the expression, not a zone.
    assert_eq!(norm("Mon 2025-01-06"), "Mon 2025-01-06 00:00:00");
    let spec = CalendarSpec::parse("daily right/UTC").unwrap();
    assert_eq!(
        spec.check_zone(&SystemZones).unwrap_err().kind(),
        ErrorKind::UnsupportedZone
    );
}

#[test]
fn local_abbreviations_follow_glibc() {
    let ny = tz("America/New_York");
    let names = LocalAbbreviations::of(&ny, ts("2025-07-01T00:00:00Z"));
    assert_eq!(
        (names.standard.as_str(), names.daylight.as_str()),
        ("EST", "EDT")
    );
    let names = LocalAbbreviations::of(&ny, ts("2025-01-01T00:00:00Z"));
    assert_eq!(
        (names.standard.as_str(), names.daylight.as_str()),
        ("EST", "EDT")
    );
    let hk = LocalAbbreviations::of(&tz("Asia/Hong_Kong"), ts("2025-01-01T00:00:00Z"));
    assert_eq!((hk.standard.as_str(), hk.daylight.as_str()), ("HKT", "HKT"));

    let names = LocalAbbreviations::of(&ny, ts("2025-01-01T00:00:00Z"));
    let options = ParseOptions {
        zones: Some(&SystemZones),
        local_abbreviations: Some(&names),
    };
    let spec = CalendarSpec::parse_with("12:00 edt", &options).unwrap();
    assert_eq!(spec.normalized(), "*-*-* 12:00:00 EDT");
    assert_eq!(spec.local_abbreviation(), Some(("EDT", true)));
    assert_eq!(spec.timezone(), None);
    // DST forced on: in summer noon EDT; from winter systemd finds nothing,
    // ever (its search gives up at the first day the flag does not fit).
    let next = spec
        .next_elapse(ts("2025-07-10T00:00:00Z"), &ny, &SystemZones)
        .unwrap();
    assert_eq!(next, Some(ts("2025-07-10T16:00:00Z")));
    let next = spec
        .next_elapse(ts("2025-01-10T00:00:00Z"), &ny, &SystemZones)
        .unwrap();
    assert_eq!(next, None);
    // Without the local names, EDT must be a zone, and there is none.
    let options = ParseOptions {
        zones: Some(&SystemZones),
        local_abbreviations: None,
    };
    assert!(CalendarSpec::parse_with("12:00 EDT", &options).is_err());
}

#[test]
fn mktime_memory_decides_standard_offset_overlaps() {
    // Casablanca moved from +01 to +00 at 1985-12-31 23:00 UTC: 23:00..23:59
    // local happened twice, both as standard time.
    let zone = tz("Africa/Casablanca");
    let spec = CalendarSpec::parse("*:22:*").unwrap();
    let after = ts("1985-12-31T22:22:00Z");
    // A process that last computed before the change picks the first one.
    let memory = MktimeMemory::at(&zone, ts("1985-12-31T12:00:00Z"));
    let mut it = spec
        .elapses_with(after, &zone, &SystemZones, memory)
        .unwrap();
    assert_eq!(it.next(), Some(Ok(ts("1985-12-31T22:22:01Z"))));
    // A fresh process (guess 0 = +00) picks the second one.
    let mut it = spec
        .elapses_with(after, &zone, &SystemZones, MktimeMemory::fresh())
        .unwrap();
    assert_eq!(it.next(), Some(Ok(ts("1985-12-31T23:22:01Z"))));
}

#[test]
fn union_of_expressions() {
    let specs = [
        CalendarSpec::parse("*-*-01 12:00").unwrap(),
        CalendarSpec::parse("Mon 12:00").unwrap(),
        CalendarSpec::parse("*-02-30").unwrap(),
    ];
    let next = next_elapse_of_any(
        &specs,
        ts("2026-01-01T12:00:00Z"),
        &TimeZone::UTC,
        &SystemZones,
    );
    assert_eq!(next, Ok(Some(ts("2026-01-05T12:00:00Z"))));
    assert_eq!(
        next_elapse_of_any(
            &[],
            ts("2026-01-01T12:00:00Z"),
            &TimeZone::UTC,
            &SystemZones
        ),
        Ok(None)
    );
}

#[test]
fn union_elapses_in_order_and_once_per_time() {
    let specs = [
        CalendarSpec::parse("*-*-* 00/6:00").unwrap(),
        CalendarSpec::parse("*-*-* 00/4:00").unwrap(),
        // Never again after 2020: drops out.
        CalendarSpec::parse("2020-01-01").unwrap(),
    ];
    let got: Vec<Timestamp> = UnionElapses::new(
        &specs,
        ts("2026-01-01T00:00:00Z"),
        &TimeZone::UTC,
        &SystemZones,
    )
    .unwrap()
    .take(8)
    .map(Result::unwrap)
    .collect();
    let want: Vec<Timestamp> = [
        "2026-01-01T04:00:00Z",
        "2026-01-01T06:00:00Z",
        "2026-01-01T08:00:00Z",
        "2026-01-01T12:00:00Z",
        "2026-01-01T16:00:00Z",
        "2026-01-01T18:00:00Z",
        "2026-01-01T20:00:00Z",
        "2026-01-02T00:00:00Z",
    ]
    .into_iter()
    .map(ts)
    .collect();
    assert_eq!(got, want);
    // An error comes as an element: systemd computes no elapse from a time
    // before 1970.
    let mut early = UnionElapses::new(
        &specs,
        ts("1969-12-31T00:00:00Z"),
        &TimeZone::UTC,
        &SystemZones,
    )
    .unwrap();
    assert!(matches!(early.next(), Some(Err(_))));
}

#[test]
fn warnings_for_open_ended_repetitions() {
    let warnings = |e: &str| -> Vec<(String, String)> {
        CalendarSpec::parse(e)
            .unwrap()
            .warnings()
            .into_iter()
            .map(|w| (e[w.span.clone()].to_string(), w.hint))
            .collect()
    };
    assert_eq!(
        warnings("*-*-* 00/5:00:00"),
        [(
            "00/5".to_string(),
            "write it with an end: `00..20/5`".to_string()
        )]
    );
    assert_eq!(
        warnings("*-01/5-11"),
        [(
            "01/5".to_string(),
            "write it with an end: `01..11/5`".to_string()
        )]
    );
    assert_eq!(
        warnings("*-*-01/9 12:00")[0].1,
        "write it with an end: `01..28/9`"
    );
    assert_eq!(
        warnings("*:*:00/7")[0].1,
        "write it with an end: `00..56/7`"
    );
    assert_eq!(
        warnings("*:*:00.5/7")[0].1,
        "write it with an end: `00.500000..56.500000/7`"
    );
    // These land exactly on the next period's first value: no warning.
    assert!(warnings("*:00/15").is_empty());
    assert!(warnings("*:05/20").is_empty());
    assert!(warnings("*-01/3-01").is_empty());
    assert!(warnings("*:*:*").is_empty());
    assert!(warnings("*-*-* 00..20/5:00").is_empty());
    assert!(warnings("daily").is_empty());
}

/// Whatever the input, parsing returns and spans lie on character
/// boundaries inside the input.
#[test]
fn no_panic_on_any_input() {
    let mut state: u64 = 0x1234_5678;
    let alphabet: Vec<char> = "0123456789*-~:.,/ @MonTueWedSatSunUTCEurope/Berlin~éLW#?\t+_"
        .chars()
        .collect();
    for _ in 0..20_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let len = (state >> 58) as usize;
        let mut s = String::new();
        for i in 0..len {
            let x = state.rotate_left(i as u32 * 7) ^ (i as u64).wrapping_mul(0x9E37_79B9);
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        match CalendarSpec::parse(&s) {
            Ok(spec) => {
                let _ = spec.normalized();
                let _ = spec.next_elapse(ts("2025-06-01T00:00:00Z"), &TimeZone::UTC, &SystemZones);
            }
            Err(e) => {
                let span = e.span();
                assert!(
                    span.start <= span.end && span.end <= s.len(),
                    "{s:?}: {span:?}"
                );
                assert!(
                    s.is_char_boundary(span.start) && s.is_char_boundary(span.end),
                    "{s:?}: {span:?}"
                );
                assert!(!e.message().is_empty());
            }
        }
    }
}

/// A lookup that knows a few zones and can list them.
struct ListedZones;

impl ZoneLookup for ListedZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        ["Europe/London", "Europe/Berlin", "UTC"]
            .contains(&name)
            .then(|| tz(name))
    }

    fn names(&self) -> Vec<String> {
        ["Europe/Berlin", "Europe/London", "UTC"]
            .map(String::from)
            .to_vec()
    }
}

#[test]
fn typos_get_a_did_you_mean() {
    let err = CalendarSpec::parse("minutly").unwrap_err();
    assert_eq!(err.message(), "unknown word \"minutly\"");
    assert_eq!(err.hint(), Some("did you mean \"minutely\"?"));
    let err = CalendarSpec::parse("Fir 10:00").unwrap_err();
    assert_eq!(err.hint(), Some("did you mean \"Fri\"?"));
    // The whole word is named, not its first letter.
    let err = CalendarSpec::parse("Mon,Fir 10:00").unwrap_err();
    assert_eq!(err.message(), "expected a weekday name, found \"Fir\"");
    assert_eq!(err.span(), 4..7);
    assert_eq!(err.hint(), Some("did you mean \"Fri\"?"));
    // Nothing close: the general hint.
    let err = CalendarSpec::parse("fortnightly").unwrap_err();
    assert!(
        err.hint().unwrap().starts_with("an expression is"),
        "{err:?}"
    );

    for (typo, near) in [
        ("Europe/Londn", "Europe/London"),
        ("europe/london", "Europe/London"),
    ] {
        let expr = format!("daily {typo}");
        let options = ParseOptions {
            zones: Some(&ListedZones),
            ..ParseOptions::default()
        };
        let err = CalendarSpec::parse_with(&expr, &options).unwrap_err();
        assert_eq!(
            err.hint(),
            Some(format!("did you mean \"{near}\"? (zone names are case-sensitive)").as_str()),
            "{expr}"
        );
        // The same when the zone is checked after parsing.
        let spec = CalendarSpec::parse(&expr).unwrap();
        let err = spec.check_zone(&ListedZones).unwrap_err();
        assert!(err.hint().unwrap().contains(near), "{err:?}");
    }
}
