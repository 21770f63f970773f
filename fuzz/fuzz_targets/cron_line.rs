//! Fuzzes the cron translator: parsing any line never panics, and every
//! translation of an accepted line is a set of calendar expressions the
//! calendar engine accepts.
#![no_main]

use jobctl_core::calendar::CalendarSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(schedule) = jobctl_core::cron::parse(text) else { return };
    let translation = schedule.to_systemd();
    assert!(
        !translation.on_calendar.is_empty() || translation.on_boot,
        "{text:?} translated to nothing"
    );
    for line in &translation.on_calendar {
        CalendarSpec::parse(line).unwrap_or_else(|e| panic!("{text:?} → {line:?} does not parse: {e}"));
    }
});
