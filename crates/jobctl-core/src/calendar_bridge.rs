//! Connects the job model to the calendar engine and the cron translator.
//!
//! Interim: until the calendar engine lands (issue 3), calendar expressions
//! are passed through with only the line-safety checks, and cron lines are
//! refused with a message that says so.

use crate::context::ZoneLookup;
use crate::diag::Diagnostics;
use crate::escape;
use crate::schedule::Schedule;
use crate::walk::{Sp, TableReader};

/// Checks one `on_calendar` expression.
pub(crate) fn calendar_schedule(
    expr: &Sp<String>,
    reader: &TableReader<'_, '_>,
    _zones: &dyn ZoneLookup,
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
    Some(Schedule::Calendar {
        expression: expr.value.clone(),
    })
}

/// Checks and translates one `cron` line.
pub(crate) fn cron_schedule(
    line: &Sp<String>,
    reader: &TableReader<'_, '_>,
    diags: &mut Diagnostics<'_>,
) -> Option<Schedule> {
    diags.error(
        line.span.clone(),
        &reader.path("cron"),
        "cron lines are not supported yet",
        Some("use on_calendar for now".to_string()),
    );
    None
}

/// The time zone an expression names itself, if any.
pub(crate) fn expression_zone(expr: &str) -> Option<String> {
    let last = expr.split_whitespace().last()?;
    (last.contains('/') || last.eq_ignore_ascii_case("UTC")).then(|| last.to_string())
}
