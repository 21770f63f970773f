//! Unit tests of cron parsing and translation. The comparison with a cron
//! reference and with systemd-analyze lives in tests/cron_oracle.rs.

use super::*;

fn tr(line: &str) -> Vec<String> {
    parse(line)
        .unwrap_or_else(|e| panic!("{line}: {e}"))
        .to_systemd()
        .on_calendar
}

#[test]
fn translates_fields() {
    let cases: &[(&str, &[&str])] = &[
        ("* * * * *", &["*-*-* *:*:00"]),
        ("*/15 * * * *", &["*-*-* *:00..45/15:00"]),
        ("30 2 * * *", &["*-*-* 02:30:00"]),
        ("0 9-17 * * 1-5", &["Mon..Fri *-*-* 09..17:00:00"]),
        ("*/20 9-17/2 * * *", &["*-*-* 09..17/2:00..40/20:00"]),
        ("0 0 1 JAN *", &["*-01-01 00:00:00"]),
        ("0 0 * jan-Mar,oct *", &["*-01..03,10-* 00:00:00"]),
        ("0 0 * * 7", &["Sun *-*-* 00:00:00"]),
        ("0 0 * * 0,7", &["Sun *-*-* 00:00:00"]),
        ("0 0 * * 5-7", &["Fri..Sun *-*-* 00:00:00"]),
        ("0 0 * * sat,sun", &["Sat,Sun *-*-* 00:00:00"]),
        ("0 0 * * 0-7", &["*-*-* 00:00:00"]),
        ("5,10,11,12,40 * * * *", &["*-*-* *:05,10..12,40:00"]),
        ("0 0 31 2 *", &["*-02-31 00:00:00"]),
    ];
    for (line, want) in cases {
        assert_eq!(tr(line), *want, "{line}");
    }
}

#[test]
fn day_fields_or_when_both_are_restricted() {
    // Both restricted: either matches, so two lines.
    assert_eq!(
        tr("0 12 1 * Mon"),
        ["*-*-01 12:00:00", "Mon *-*-* 12:00:00"]
    );
    assert_eq!(
        tr("0 12 1,15 6 1-5"),
        ["*-06-01,15 12:00:00", "Mon..Fri *-06-* 12:00:00"]
    );
    // A field starting with `*` is unrestricted for this rule even when it
    // restricts (`*/2`): the fields combine with AND.
    assert_eq!(tr("0 12 */2 * Mon"), ["Mon *-*-01..31/2 12:00:00"]);
    assert_eq!(tr("0 12 1 * */2"), ["Tue,Thu,Sat,Sun *-*-01 12:00:00"]);
    // Either field covering every day means every day.
    assert_eq!(tr("0 12 1-31 * Mon"), ["*-*-* 12:00:00"]);
    assert_eq!(tr("0 12 1 * 0-6"), ["*-*-* 12:00:00"]);
    let s = parse("0 12 1 * Mon").unwrap();
    assert!(s.days_are_ored());
    assert!(!parse("0 12 */2 * Mon").unwrap().days_are_ored());
}

#[test]
fn macros() {
    assert_eq!(tr("@hourly"), ["*-*-* *:00:00"]);
    assert_eq!(tr("@daily"), ["*-*-* 00:00:00"]);
    assert_eq!(tr("@midnight"), ["*-*-* 00:00:00"]);
    assert_eq!(tr("@weekly"), ["Sun *-*-* 00:00:00"]);
    assert_eq!(tr("@monthly"), ["*-*-01 00:00:00"]);
    assert_eq!(tr("@yearly"), ["*-01-01 00:00:00"]);
    assert_eq!(tr("@annually"), ["*-01-01 00:00:00"]);
    let reboot = parse("@reboot").unwrap();
    assert!(reboot.is_reboot());
    assert_eq!(
        reboot.to_systemd(),
        CronTranslation {
            on_calendar: vec![],
            on_boot: true
        }
    );
    assert_eq!(
        parse("@hourly").unwrap().macro_name(),
        Some(CronMacro::Hourly)
    );
    assert_eq!(CronMacro::Midnight.name(), "midnight");
}

#[test]
fn wildcard_flag_follows_vixie() {
    assert!(parse("*/5 3 * * *").unwrap().is_wildcard_time());
    assert!(parse("0 * * * *").unwrap().is_wildcard_time());
    assert!(parse("@hourly").unwrap().is_wildcard_time());
    assert!(!parse("0 3 * * *").unwrap().is_wildcard_time());
    assert!(!parse("@daily").unwrap().is_wildcard_time());
}

#[test]
fn spacing_and_tabs() {
    assert_eq!(tr("  0\t0  * *\t*  "), ["*-*-* 00:00:00"]);
    assert_eq!(parse("0 0 * * *").unwrap().source(), "0 0 * * *");
}

#[test]
fn repetitions_are_bounded() {
    // Never `0/6`: systemd mishandles open-ended repetitions at New Year.
    assert_eq!(compress(1 | 1 << 6 | 1 << 12 | 1 << 18, 0, 23), "0..18/6");
    assert_eq!(
        compress(1 << 1 | 1 << 8 | 1 << 15 | 1 << 22 | 1 << 29, 1, 31),
        "1..29/7"
    );
    assert_eq!(compress(1 << 5 | 1 << 25 | 1 << 45, 0, 59), "5..45/20");
    assert_eq!(compress(1 << 3 | 1 << 4 | 1 << 5 | 1 << 9, 0, 59), "3..5,9");
    assert_eq!(compress(1 << 3 | 1 << 9, 0, 59), "3,9");
    for line in ["*/7 */5 */9 */5 *", "0 0 */10 * *"] {
        for expr in tr(line) {
            let spec = CalendarSpec::parse(&expr).unwrap();
            assert!(spec.warnings().is_empty(), "{line} → {expr}");
        }
    }
}

#[test]
fn errors_point_into_the_line() {
    let e = parse("0 0 L * *").unwrap_err();
    assert_eq!(e.span(), 4..5);
    assert!(e.hint().unwrap_or_default().contains("`*-*~01`"));
    let e = parse("  0 99 * * *").unwrap_err();
    assert_eq!(e.span(), 4..6);
    assert_eq!(e.message(), "hour 99 is out of range 0-23");
    assert_eq!(e.to_string(), e.message());
}

#[test]
fn no_panic_on_any_input() {
    let mut state: u64 = 0xdead_beef;
    let alphabet: Vec<char> = "0123456789*-/, \t@LW#?JanMonSUNé".chars().collect();
    for _ in 0..20_000 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        let len = (state >> 58) as usize;
        let s: String = (0..len)
            .map(|i| {
                alphabet[((state.rotate_left(i as u32 * 5) ^ i as u64) % alphabet.len() as u64)
                    as usize]
            })
            .collect();
        match parse(&s) {
            Ok(schedule) => {
                for line in schedule.to_systemd().on_calendar {
                    assert!(CalendarSpec::parse(&line).is_ok(), "{s:?} → {line:?}");
                }
            }
            Err(e) => {
                let span = e.span();
                assert!(
                    span.end <= s.len()
                        && s.is_char_boundary(span.start)
                        && s.is_char_boundary(span.end),
                    "{s:?}"
                );
            }
        }
    }
}
