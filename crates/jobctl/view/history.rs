//! `jobctl history`: the table of runs, a run as `--json` shows it, and the
//! report of `history prune`.

use std::path::Path;

use jiff::tz::TimeZone;
use jobctl_history::locate::Located;
use jobctl_history::{PruneReport, RunRecord, Status};
use serde::Serialize;

use super::format::{self, json_time, local_time};
use crate::output::{self, Lines};

/// A run as `--json` shows it: the record plus readable times and where it
/// was read from.
#[derive(Serialize)]
pub struct RunView<'a> {
    #[serde(flatten)]
    pub run: &'a RunRecord,
    pub started: String,
    pub ended: Option<String>,
    pub duration_us: Option<i64>,
    pub database: String,
    /// The user folder the run was read from (None: the main database).
    pub owner: Option<String>,
}

impl<'a> RunView<'a> {
    pub fn of(run: &'a RunRecord, db: &Path, owner: Option<String>) -> RunView<'a> {
        RunView {
            run,
            started: json_time(run.started_us),
            ended: run.ended_us.map(json_time),
            duration_us: run.duration_us(),
            database: db.display().to_string(),
            owner,
        }
    }
}

/// How the table is printed.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Recorded text (job names, the database column) exactly as stored
    /// (`--raw`), instead of escaped.
    pub raw: bool,
    /// Statuses in colour (a terminal without `NO_COLOR`).
    pub color: bool,
}

/// The table of `runs` (newest first, each with the database it was read
/// from), times in `zone`; a `DATABASE` column when any run comes from a
/// user's database.
pub fn table(runs: &[(RunRecord, &Located)], now_us: i64, zone: &TimeZone, style: Style) -> String {
    if runs.is_empty() {
        return "No runs recorded.\n".into();
    }
    let text_of = |value: &str| -> String {
        if style.raw {
            value.to_string()
        } else {
            output::escape(value, Lines::Escape).into_owned()
        }
    };
    // Which database a run came from, when any is not the main one.
    let mixed = runs.iter().any(|(_, located)| located.owner.is_some());
    let mut header = [
        "RUN", "JOB", "TRIGGER", "START", "DURATION", "STATUS", "EXIT", "CPU", "MEMORY",
    ]
    .map(String::from)
    .to_vec();
    if mixed {
        header.push("DATABASE".into());
    }
    let mut rows = vec![header];
    for (run, located) in runs {
        let mut row = vec![
            run.id.short(),
            text_of(&run.job),
            match &run.actor {
                // Who started it from the dashboard (docs/dashboard.md,
                // "Who started a run").
                Some(actor) => format!("{} by {}", run.trigger, text_of(actor)),
                None => run.trigger.to_string(),
            },
            local_time(run.started_us, zone),
            format::run_duration(run, now_us),
            run.status.to_string(),
            format::exit(run),
            run.usage
                .map_or("-".into(), |u| format::cpu_time(u.cpu_us())),
            run.usage
                .map_or("-".into(), |u| format::bytes(u.memory_peak_bytes)),
        ];
        if mixed {
            row.push(text_of(&database_label(located)));
        }
        rows.push(row);
    }
    super::table::painted_columns(&rows, |row, col, cell| {
        if style.color && col == 5 {
            paint(runs[row - 1].0.status, cell)
        } else {
            cell.to_string()
        }
    })
}

/// The label of a run's database in text output: `users/<user>` for a
/// user's, nothing for the main one.
pub fn database_label(located: &Located) -> String {
    located
        .owner
        .as_ref()
        .map(|owner| format!("users/{owner}"))
        .unwrap_or_default()
}

fn paint(status: Status, text: &str) -> String {
    let code = match status {
        Status::Success => "32",
        Status::Running => "33",
        Status::Expired => "2",
        Status::Lost => "35",
        _ => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// What `history prune` did, one line per database.
pub fn prune_report(reports: &[(String, PruneReport)]) -> String {
    let mut text = String::new();
    for (db, r) in reports {
        let count = super::format::count;
        text.push_str(&format!(
            "{db}: deleted {} over keep_runs and {} over keep_age, dropped {} ({} → {} bytes of output), marked {} lost\n",
            count(r.runs_over_count as usize, "run", "runs"),
            r.runs_over_age,
            count(r.outputs_dropped as usize, "output", "outputs"),
            r.output_bytes_before,
            r.output_bytes_after,
            r.marked_lost
        ));
    }
    text
}
