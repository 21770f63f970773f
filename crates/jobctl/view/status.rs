//! `jobctl status`: a job's `list` row in detail, with what systemd says
//! about the service's last run and the problems `health` would report.

use std::fmt::Write as _;

use jiff::tz::TimeZone;
use jobctl_core::health::Problem;
use jobctl_history::Status;
use serde::Serialize;

use super::format::{self, local_time, signal_name};
use super::list::JobRow;
use crate::output::{self, Lines};
use crate::overview::{JobView, Overview};

/// What systemd keeps about the service's last run (it knows of runs the
/// shim could not record, e.g. when the shim itself could not start).
#[derive(Debug, Serialize)]
pub struct UnitView {
    pub active_state: String,
    /// systemd's result: success, exit-code, signal, timeout, …
    pub result: String,
    pub exit_status: Option<i32>,
    pub signal: Option<i32>,
    pub invocation_id: Option<String>,
}

impl UnitView {
    /// From the service's properties, when `status` read them.
    pub fn of(view: &JobView) -> Option<UnitView> {
        let p = view.unit.as_ref()?;
        // CLD_EXITED = 1; CLD_KILLED = 2, CLD_DUMPED = 3.
        let (exit_status, signal) = match p.exec_main_code {
            1 => (Some(p.exec_main_status), None),
            2 | 3 => (None, Some(p.exec_main_status)),
            _ => (None, None),
        };
        Some(UnitView {
            active_state: p.active_state.clone(),
            result: p.result.clone(),
            exit_status,
            signal,
            invocation_id: Some(p.invocation_id.clone()).filter(|s| !s.is_empty()),
        })
    }
}

/// One job as `status` shows it.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    #[serde(flatten)]
    pub row: JobRow,
    pub unit: Option<UnitView>,
    /// What `jobctl health` reports for this job.
    pub problems: Vec<Problem>,
    /// Where the job's runs were read from.
    pub database: Option<String>,
}

/// The text `jobctl status` prints: one block per job (`rows` in the order
/// of `overview.jobs`), times in `zone`. The last run's user, error and
/// invocation id are a user's to write: control characters are escaped.
pub fn text(overview: &Overview, rows: &[StatusRow], zone: &TimeZone) -> String {
    let mut out = String::new();
    for (view, status) in overview.jobs.iter().zip(rows) {
        if !out.is_empty() {
            out.push('\n');
        }
        describe(&mut out, view, status, overview.now_us, zone);
    }
    if rows.is_empty() {
        out.push_str("(no jobs)\n");
    }
    output::escape(&out, Lines::Keep).into_owned()
}

fn describe(out: &mut String, view: &JobView, status: &StatusRow, now_us: i64, zone: &TimeZone) {
    let r = &status.row;
    let _ = writeln!(
        out,
        "{}{}",
        r.job,
        if r.running { " (running)" } else { "" }
    );
    let _ = writeln!(out, "  state:      {}", r.state);
    if let Some(reason) = &view.invalid_reason {
        let _ = writeln!(out, "  invalid:    {reason}");
    }
    let _ = writeln!(out, "  schedule:   {}", r.schedule);
    if let Some(owner) = &r.owner {
        let _ = writeln!(out, "  owner:      {owner}");
    }
    if let Some(team) = &r.team {
        let _ = writeln!(out, "  team:       {team}");
    }
    if !r.tags.is_empty() {
        let _ = writeln!(out, "  tags:       {}", r.tags.join(", "));
    }
    let _ = writeln!(
        out,
        "  next run:   {}",
        format::next_elapse(view.next_elapse_usec, zone)
    );
    match view.history.as_ref().map(|h| &h.summary) {
        Some(h) => {
            let run = &h.last;
            let trigger = match &run.actor {
                Some(actor) => format!(
                    "{} by {}",
                    run.trigger,
                    crate::output::escape(actor, Lines::Escape)
                ),
                None => run.trigger.to_string(),
            };
            let _ = writeln!(
                out,
                "  last run:   {}, {}, {} ({trigger}, attempt {}, as {})",
                local_time(run.started_us, zone),
                format::result(run),
                format::run_duration(run, now_us),
                run.attempt,
                run.user
            );
            if let Some(error) = &run.error {
                let _ = writeln!(out, "  error:      {error}");
            }
            if let Some(up) = &run.upstream {
                let from = match up.run_id {
                    Some(id) => format!("run {id}, invocation {}", up.invocation_id),
                    None => format!("invocation {}", up.invocation_id),
                };
                let _ = writeln!(out, "  chained:    from {from}");
            }
            if let Some(u) = &run.usage {
                let _ = writeln!(out, "  cost:       {}", format::usage(u));
            }
            let _ = writeln!(out, "  run id:     {}", run.id);
            let mut failures = match h.failure_streak {
                0 => "none in a row".to_string(),
                1 => "1 (the last finished run)".to_string(),
                n => format!("{n} in a row"),
            };
            match h.last_success_us {
                Some(us) => {
                    let _ = write!(failures, "; last success {}", local_time(us, zone));
                }
                None => failures.push_str("; no successful run recorded"),
            }
            let _ = writeln!(out, "  failures:   {failures}");
            if let Some(id) = &run.invocation_id {
                let _ = writeln!(
                    out,
                    "  invocation: {id}  ({})",
                    crate::paths::journal(&r.service, id, false)
                );
            }
            // The history holds a run's output once it has ended; until
            // then the journal has it.
            let output = match (&run.status, &run.invocation_id) {
                (Status::Running, Some(id)) => crate::paths::journal(&r.service, id, true),
                _ => crate::paths::jobctl(&format!("logs {} --last", r.job)),
            };
            let _ = writeln!(out, "  output:     {output}");
        }
        None => {
            let _ = writeln!(out, "  last run:   - (none recorded)");
        }
    }
    if let Some(u) = &status.unit {
        let mut text = format!("{}: {}", r.service, u.active_state);
        if !u.result.is_empty() {
            let _ = write!(text, ", result {}", u.result);
        }
        if let Some(code) = u.exit_status {
            let _ = write!(text, ", exit status {code}");
        }
        if let Some(sig) = u.signal {
            let _ = write!(text, ", {}", signal_name(sig));
        }
        let _ = writeln!(out, "  systemd:    {text}");
    }
    let _ = writeln!(
        out,
        "  units:      {}{}",
        if r.service.is_empty() {
            "-"
        } else {
            &r.service
        },
        r.timer
            .as_ref()
            .map(|t| format!(", {t}"))
            .unwrap_or_default()
    );
    if let Some(src) = &r.source {
        let _ = writeln!(out, "  job file:   {src}");
    }
    if status.problems.is_empty() {
        let _ = writeln!(out, "  problems:   none");
    } else {
        for (i, p) in status.problems.iter().enumerate() {
            let _ = writeln!(
                out,
                "  {}{}: {}",
                if i == 0 {
                    "problems:   "
                } else {
                    "            "
                },
                p.kind,
                p.message
            );
        }
    }
}
