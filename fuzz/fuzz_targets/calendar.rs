//! Fuzzes the calendar engine: parsing any string never panics; an accepted
//! expression's normalized form parses again to the same normalized form
//! (a fixed point, as in systemd); computing elapses never panics and
//! elapses strictly increase.
#![no_main]

use jobctl_core::calendar::CalendarSpec;
use jobctl_core::context::UtcOnly;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(spec) = CalendarSpec::parse(text) else { return };
    let normalized = spec.normalized();
    let again = CalendarSpec::parse(&normalized)
        .unwrap_or_else(|e| panic!("normalized form {normalized:?} of {text:?} does not parse: {e}"));
    assert_eq!(again.normalized(), normalized, "normalization is not a fixed point for {text:?}");
    let local = jiff::tz::TimeZone::UTC;
    let mut after = jiff::Timestamp::from_second(1_700_000_000).unwrap();
    for _ in 0..3 {
        match spec.next_elapse(after, &local, &UtcOnly) {
            Ok(Some(next)) => {
                assert!(next > after, "{text:?}: {next} is not after {after}");
                after = next;
            }
            Ok(None) | Err(_) => break,
        }
    }
});
