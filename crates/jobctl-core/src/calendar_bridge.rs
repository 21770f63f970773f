//! Connects the job model to the calendar engine ([`crate::calendar`]) and
//! the cron translator ([`crate::cron`]): checks `on_calendar` expressions
//! and `cron` lines exactly as systemd and cron read them, and points errors
//! at the offending part inside the TOML string.

use std::ops::Range;

use crate::calendar::{CalendarSpec, ParseOptions};
use crate::context::ZoneLookup;
use crate::diag::Diagnostics;
use crate::duration::Timespan;
use crate::escape;
use crate::schedule::{self, Schedule};
use crate::walk::{Sp, TableReader};

/// Checks one `on_calendar` expression.
///
/// Zones are checked with `zones`, as systemd does while parsing. The local
/// zone's abbreviations (`EDT` on a New York host), which systemd also
/// accepts as a suffix, are not: a job file should mean the same on every
/// host, so such a suffix must be a real zone name.
pub(crate) fn calendar_schedule(
    expr: &Sp<String>,
    reader: &TableReader<'_, '_>,
    zones: &dyn ZoneLookup,
    diags: &mut Diagnostics<'_>,
) -> Option<Schedule> {
    if let Err(err) = escape::check_plain(&expr.value) {
        diags.error(
            expr.span.clone(),
            &reader.path("on_calendar"),
            format!("the expression {err}"),
            None,
        );
        return None;
    }
    let options = ParseOptions {
        zones: Some(zones),
        local_abbreviations: None,
    };
    match CalendarSpec::parse_with(&expr.value, &options) {
        Ok(spec) => {
            if let Some(gap) = spec.shortest_gap() {
                let what = format!("the calendar expression \"{}\"", expr.value);
                if let Err(message) =
                    schedule::check_min_interval(&what, Timespan::from_usec(gap.usec))
                {
                    let span = if gap.span.is_empty() {
                        expr.span.clone()
                    } else {
                        inner_span(diags.source().text(), &expr.span, gap.span)
                    };
                    diags.error(
                        span,
                        &reader.path("on_calendar"),
                        message,
                        Some(
                            "use whole seconds, e.g. *:*:00/5 (every 5 seconds), or every = \"5s\""
                                .to_string(),
                        ),
                    );
                    return None;
                }
            }
            // Valid, but systemd 252 computes it wrongly around New Year.
            for w in spec.warnings() {
                let span = inner_span(diags.source().text(), &expr.span, w.span.clone());
                diags.warning(span, &reader.path("on_calendar"), w.message, Some(w.hint));
            }
            Some(Schedule::Calendar {
                expression: expr.value.clone(),
            })
        }
        Err(e) => {
            let span = inner_span(diags.source().text(), &expr.span, e.span());
            diags.error(
                span,
                &reader.path("on_calendar"),
                format!(
                    "invalid calendar expression \"{}\": {}",
                    expr.value,
                    e.message()
                ),
                e.hint().map(str::to_string),
            );
            None
        }
    }
}

/// Checks and translates one `cron` line.
pub(crate) fn cron_schedule(
    line: &Sp<String>,
    reader: &TableReader<'_, '_>,
    diags: &mut Diagnostics<'_>,
) -> Option<Schedule> {
    match crate::cron::parse(&line.value) {
        Ok(schedule) => {
            let translation = schedule.to_systemd();
            // Cron's smallest step is a minute, but the rule is the same for
            // every form: checked on what systemd will be given.
            for expr in &translation.on_calendar {
                let gap = CalendarSpec::parse(expr)
                    .ok()
                    .and_then(|s| s.shortest_gap());
                if let Some(gap) = gap {
                    let what = format!("the cron line \"{}\"", line.value);
                    if let Err(message) =
                        schedule::check_min_interval(&what, Timespan::from_usec(gap.usec))
                    {
                        diags.error(line.span.clone(), &reader.path("cron"), message, None);
                        return None;
                    }
                }
            }
            Some(Schedule::Cron {
                line: line.value.clone(),
                on_calendar: translation.on_calendar,
                on_boot: translation.on_boot,
            })
        }
        Err(e) => {
            let span = inner_span(diags.source().text(), &line.span, e.span());
            diags.error(
                span,
                &reader.path("cron"),
                format!("invalid cron line \"{}\": {}", line.value, e.message()),
                e.hint().map(str::to_string),
            );
            None
        }
    }
}

/// The time zone an expression names itself (`UTC` or a zone name), if any.
pub(crate) fn expression_zone(expr: &str) -> Option<String> {
    let spec = CalendarSpec::parse(expr).ok()?;
    spec.timezone().map(str::to_string)
}

/// Maps `inner` (a byte range in a string's value) into the file, when the
/// TOML string at `outer` holds its value verbatim (a literal string, or a
/// basic string without escapes); otherwise the whole string.
fn inner_span(text: &str, outer: &Range<usize>, inner: Range<usize>) -> Range<usize> {
    let Some(raw) = text.get(outer.clone()) else {
        return outer.clone();
    };
    let verbatim = (raw.starts_with('\'') && !raw.starts_with("'''"))
        || (raw.starts_with('"') && !raw.starts_with("\"\"\"") && !raw.contains('\\'));
    if !verbatim || inner.end + 2 > raw.len() {
        return outer.clone();
    }
    let last = outer.end.saturating_sub(1);
    let start = (outer.start + 1 + inner.start).min(last);
    let end = (outer.start + 1 + inner.end).clamp(start, last);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inner_spans_point_into_plain_strings() {
        let text = r#"on_calendar = "Mon 25:00""#;
        let outer = 14..text.len();
        assert_eq!(&text[inner_span(text, &outer, 4..6)], "25");
        let literal = r"cron = '0 0 L * *'";
        let outer = 7..literal.len();
        assert_eq!(&literal[inner_span(literal, &outer, 4..5)], "L");
        // Escapes shift positions: point at the whole string instead.
        let escaped = r#"x = "a\tb 25:00""#;
        let outer = 4..escaped.len();
        assert_eq!(inner_span(escaped, &outer, 4..6), outer);
    }

    #[test]
    fn expression_zones() {
        assert_eq!(expression_zone("daily UTC").as_deref(), Some("UTC"));
        assert_eq!(
            expression_zone("daily Asia/Tokyo").as_deref(),
            Some("Asia/Tokyo")
        );
        assert_eq!(expression_zone("Mon 2025-01-01"), None);
        assert_eq!(expression_zone("daily"), None);
    }
}
