//! Unit tests of the calendar engine. The exhaustive comparison with
//! `systemd-analyze calendar` lives in tests/calendar_oracle.rs.

use super::*;

struct SystemZones;
impl ZoneLookup for SystemZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        let tz = jiff::tz::db().get(name).ok()?;
        (tz.iana_name() == Some(name)).then_some(tz)
    }
}

fn norm(expr: &str) -> String {
    CalendarSpec::parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .normalized()
}

#[test]
fn normalizes_like_systemd() {
    assert_eq!(norm("daily"), "*-*-* 00:00:00");
    assert_eq!(norm("Mon..Fri 9:00"), "Mon..Fri *-*-* 09:00:00");
}
