//! The job page's definition and next runs: the job file and its installed
//! units as `jobctl cat --json` reads them, and the next elapses of the
//! installed timer's `OnCalendar=` lines as `jobctl calendar --json`
//! computes them (the core's calendar engine, the zone each line names).

use jobctl::output::{Lines, escape};
use maud::{Markup, html};
use serde_json::Value;

use crate::api::{Shared, capture};
use crate::when::{in_zone, when};

/// How many next runs the job page shows.
pub const NEXT_RUNS: usize = 5;

/// What the job page shows besides its status and runs.
pub struct Definition {
    /// `jobctl cat --json JOB`, or null when it could not be read.
    pub cat: Value,
    /// The next runs (RFC 3339), earliest first.
    pub next: Vec<String>,
    /// The zone the schedule is in, when it names one (the job's `timezone`).
    pub zone: Option<String>,
}

/// The `OnCalendar=` values of the installed timer units in `cat`'s report
/// (an empty value resets the list, as systemd reads it).
pub fn on_calendar(cat: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    for unit in cat["units"].as_array().into_iter().flatten() {
        let path = unit["path"].as_str().unwrap_or_default();
        if !path.ends_with(".timer") {
            continue;
        }
        for line in unit["contents"].as_str().unwrap_or_default().lines() {
            if let Some(value) = line.trim().strip_prefix("OnCalendar=") {
                let value = value.trim();
                if value.is_empty() {
                    lines.clear();
                } else {
                    lines.push(value.to_string());
                }
            }
        }
    }
    lines
}

/// The next runs of `calendar --json`'s report, merged across expressions,
/// earliest first, at most `n`; and the first zone an expression names.
pub fn next_runs(calendar: &Value, n: usize) -> (Vec<String>, Option<String>) {
    let mut all: Vec<(i64, String)> = Vec::new();
    let mut zone = None;
    for e in calendar["expressions"].as_array().into_iter().flatten() {
        if zone.is_none() {
            zone = e["timezone"].as_str().map(str::to_string);
        }
        for elapse in e["next_elapses"].as_array().into_iter().flatten() {
            if let (Some(us), Some(ts)) = (elapse["usec"].as_i64(), elapse["timestamp"].as_str()) {
                all.push((us, ts.to_string()));
            }
        }
    }
    all.sort();
    all.dedup();
    all.truncate(n);
    (all.into_iter().map(|(_, ts)| ts).collect(), zone)
}

pub async fn read(s: &Shared, job: &str) -> Definition {
    let (_, body) = capture(
        s,
        vec!["cat".into(), "--json".into(), "--".into(), job.to_string()],
    )
    .await;
    let cat: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let expressions = on_calendar(&cat);
    let (next, zone) = if expressions.is_empty() {
        (Vec::new(), None)
    } else {
        let mut args = vec![
            "calendar".into(),
            "--json".into(),
            format!("--iterations={NEXT_RUNS}"),
            "--".into(),
        ];
        args.extend(expressions);
        let (_, body) = capture(s, args).await;
        let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        next_runs(&doc, NEXT_RUNS)
    };
    Definition { cat, next, zone }
}

/// A file's text on the page: control characters visible, lines kept.
fn file_text(text: &str) -> String {
    escape(text, Lines::Keep).into_owned()
}

/// The "Next runs" section.
pub fn render_next(d: &Definition) -> Markup {
    html! {
        h2 #next-runs { "Next runs" }
        @if d.next.is_empty() {
            p.none { "None scheduled: a manual job, or no calendar timer is installed." }
        } @else {
            @if let Some(zone) = &d.zone {
                p { "The schedule is in the job's time zone, " code { (file_text(zone)) } " (its " code { "timezone" } " key)." }
            }
            div.scroll { table.next {
                thead { tr { th { "When (your time zone)" } @if let Some(zone) = &d.zone { th { "In " (file_text(zone)) } } } }
                tbody {
                    @for ts in &d.next {
                        tr {
                            td { (when(ts)) }
                            @if let Some(zone) = &d.zone { td { (in_zone(ts, zone).unwrap_or_default()) } }
                        }
                    }
                }
            } }
        }
    }
}

/// The "Definition" section.
pub fn render_definition(d: &Definition) -> Markup {
    html! {
        h2 #definition { "Definition" }
        @if d.cat.is_null() {
            p.bad { "The job file and units could not be read." }
        }
        @if let Some(file) = d.cat.get("file").filter(|f| !f.is_null()) {
            p.path { code { "# " (file_text(file["path"].as_str().unwrap_or_default())) } }
            pre.definition { (file_text(file["contents"].as_str().unwrap_or_default())) }
        } @else if !d.cat.is_null() {
            p.bad { "The job file is gone." }
        }
        @for unit in d.cat["units"].as_array().into_iter().flatten() {
            p.path { code { "# " (file_text(unit["path"].as_str().unwrap_or_default())) } }
            pre.definition { (file_text(unit["contents"].as_str().unwrap_or_default())) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_installed_timers_calendar_lines_are_read_as_systemd_does() {
        let cat = json!({ "units": [
            { "path": "/etc/systemd/system/jobctl-x.service", "contents": "[Service]\nOnCalendar=not-a-timer\n" },
            { "path": "/etc/systemd/system/jobctl-x.timer",
              "contents": "[Timer]\nOnCalendar=*-*-* 01:00\nOnCalendar=\nOnCalendar=*-*-* 03:00:00 Europe/Berlin\n OnCalendar=Mon 04:00 \nOnBootSec=5min\n" },
        ]});
        assert_eq!(
            on_calendar(&cat),
            ["*-*-* 03:00:00 Europe/Berlin", "Mon 04:00"]
        );
        assert!(on_calendar(&Value::Null).is_empty());
    }

    #[test]
    fn next_runs_merge_every_expression_earliest_first() {
        let doc = json!({ "expressions": [
            { "timezone": "Europe/Berlin", "next_elapses": [
                { "usec": 30, "timestamp": "c" }, { "usec": 10, "timestamp": "a" } ] },
            { "next_elapses": [ { "usec": 20, "timestamp": "b" }, { "usec": 10, "timestamp": "a" }, { "usec": 40, "timestamp": "d" } ] },
            { "valid": false },
        ]});
        let (next, zone) = next_runs(&doc, 3);
        assert_eq!(next, ["a", "b", "c"]);
        assert_eq!(zone.as_deref(), Some("Europe/Berlin"));
    }

    #[test]
    fn the_definition_is_text() {
        let d = Definition {
            cat: json!({ "file": { "path": "/j/<x>.toml", "contents": "command = [\"<script>\"]\n# \u{1b}[2J\n" }, "units": [] }),
            next: vec![],
            zone: None,
        };
        let html = render_definition(&d).into_string();
        assert!(
            html.contains("&lt;script&gt;") && !html.contains("<script"),
            "{html}"
        );
        assert!(
            html.contains("\\x1b[2J") && !html.contains('\u{1b}'),
            "{html}"
        );
        assert!(html.contains("# /j/&lt;x&gt;.toml"), "{html}");
    }
}
