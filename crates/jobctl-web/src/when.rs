//! Times on the pages: each a `<time datetime=RFC 3339>` written in UTC, which
//! the pages' script (`/page.js`) rewrites in the viewer's own zone, naming
//! it; without the script the page still says UTC. A job's own zone (its
//! `timezone` key) is shown beside the times it applies to. The API keeps
//! RFC 3339.

use maud::{Markup, html};

/// A time of the CLI's JSON (RFC 3339), as a `<time>` in UTC; anything else
/// (none, `null`) as it is.
pub fn when(rfc3339: &str) -> Markup {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(t) => html! {
            time datetime=(t.to_string()) title=(format!("{t} (UTC)")) {
                (t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
            }
        },
        Err(_) => html! { (rfc3339) },
    }
}

/// `rfc3339` in the zone `zone` (a job's `timezone`), named: `2026-03-29
/// 03:30:00 CEST (Europe/Berlin)`; `None` when either is not understood.
pub fn in_zone(rfc3339: &str, zone: &str) -> Option<String> {
    let t = rfc3339.parse::<jiff::Timestamp>().ok()?;
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    let zoned = t.to_zoned(tz);
    Some(format!(
        "{} ({zone})",
        zoned.strftime("%Y-%m-%d %H:%M:%S %Z")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_in_a_time_element() {
        let m = when("2026-12-05T12:30:31.074852Z").into_string();
        assert_eq!(
            m,
            "<time datetime=\"2026-12-05T12:30:31.074852Z\" \
             title=\"2026-12-05T12:30:31.074852Z (UTC)\">2026-12-05 12:30:31 UTC</time>"
        );
        // Not a time: shown as is (escaped), no element.
        assert_eq!(when("").into_string(), "");
        assert_eq!(when("<b>").into_string(), "&lt;b&gt;");
    }

    #[test]
    fn a_jobs_zone_is_named() {
        // The host's zoneinfo (tzdata), as systemd reads it.
        assert_eq!(
            in_zone("2026-07-01T01:30:00Z", "Europe/Berlin").as_deref(),
            Some("2026-07-01 03:30:00 CEST (Europe/Berlin)")
        );
        assert_eq!(in_zone("2026-07-01T01:30:00Z", "Nowhere/Else"), None);
        assert_eq!(in_zone("soon", "UTC"), None);
    }
}
