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
fn translates_simple_lines() {
    assert_eq!(tr("*/15 * * * *"), ["*-*-* *:00/15:00"]);
    assert_eq!(tr("30 2 * * *"), ["*-*-* 02:30:00"]);
}
