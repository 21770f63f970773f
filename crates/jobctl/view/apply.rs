//! `jobctl apply`: the plan and what was done, for people; the diffs of
//! `--diff`; the summary counts `--json` shows too.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use jobctl_core::plan::{Change, Plan, TimerState};
use serde::Serialize;

pub use super::format::count;
use crate::output::{self, Lines};

/// How many jobs each change applies to, every kind present (0 when none).
pub fn summary(plan: &Plan) -> BTreeMap<&'static str, usize> {
    let mut s = BTreeMap::new();
    for key in [
        "create",
        "update",
        "remove",
        "unchanged",
        "orphaned",
        "invalid",
    ] {
        s.insert(key, 0);
    }
    for j in &plan.jobs {
        *s.entry(change_word(j.change)).or_default() += 1;
    }
    s
}

/// The change as `--json` spells it.
fn change_word(change: Change) -> &'static str {
    match change {
        Change::Create => "create",
        Change::Update => "update",
        Change::Remove => "remove",
        Change::Unchanged => "unchanged",
        Change::Orphaned => "orphaned",
        Change::Invalid => "invalid",
    }
}

/// One unit file's change, for `--json --diff` (Ansible's `before`/`after`):
/// `before` is `null` for a unit created, `after` for one deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitDiff {
    pub unit: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What an apply did with its plan, besides the plan itself.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// `--check`: nothing was done, the plan is what would be.
    pub check: bool,
    /// `--diff`: the units' changes ([`unit_diffs`]), shown as unified diffs.
    pub diffs: &'a [UnitDiff],
    /// The steps done, and (after a failure) those not done.
    pub done: &'a [String],
    pub not_done: &'a [String],
    /// How the caller runs jobctl (`jobctl --user --jobs-dir /j`): the plan's
    /// notes name `jobctl …` commands, which must reach these jobs as pasted.
    pub jobctl: &'a str,
}

/// The report `jobctl apply` prints: a summary line, one line per job that
/// changes or has a note, the diffs, then what was done and not done.
///
/// Job names, notes and unit text come from job files (and, for units left
/// alone, from the unit folder): control characters are escaped.
pub fn text(plan: &Plan, outcome: &Outcome<'_>) -> String {
    output::escape(&report(plan, outcome), Lines::Keep).into_owned()
}

fn report(plan: &Plan, outcome: &Outcome<'_>) -> String {
    let mut out = String::new();
    let s = summary(plan);
    let verb = if outcome.check { "would " } else { "" };
    let invalid = if s["invalid"] > 0 {
        format!(
            "; {} skipped (left as installed)",
            count(s["invalid"], "invalid job", "invalid jobs")
        )
    } else {
        String::new()
    };
    if !plan.changed() {
        let _ = writeln!(
            out,
            "apply{}: {}, nothing to change{invalid}",
            if outcome.check { " --check" } else { "" },
            count(plan.jobs.len(), "job", "jobs")
        );
    } else {
        let _ = writeln!(
            out,
            "apply{}: {} — {} {verb}create, {} {verb}update, {} {verb}remove, {} unchanged{}{invalid}",
            if outcome.check { " --check" } else { "" },
            count(plan.jobs.len(), "job", "jobs"),
            s["create"],
            s["update"],
            s["remove"],
            s["unchanged"],
            if s["orphaned"] > 0 {
                format!(", {} orphaned (--no-prune)", s["orphaned"])
            } else {
                String::new()
            }
        );
    }
    for j in &plan.jobs {
        if !j.changes_anything() && j.notes.is_empty() {
            continue;
        }
        let sign = match j.change {
            Change::Create => '+',
            Change::Update => '~',
            Change::Remove => '-',
            Change::Invalid => '!',
            Change::Unchanged | Change::Orphaned => ' ',
        };
        let mut what: Vec<String> = Vec::new();
        if !j.writes.is_empty() {
            what.push(format!(
                "write {}",
                j.writes
                    .iter()
                    .map(|w| w.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let t = &j.timer_steps;
        let steps: Vec<&str> = [
            (t.stop, "stop"),
            (t.disable, "disable"),
            (t.enable, "enable"),
            (t.start, "start"),
            (t.restart, "restart"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, s)| *s)
        .collect();
        if !steps.is_empty() {
            what.push(format!("timer: {}", steps.join(", ")));
        }
        if !j.deletes.is_empty() {
            what.push(format!("delete {}", j.deletes.join(", ")));
        }
        let state = match j.timer_state {
            TimerState::Active => "active",
            TimerState::Disabled => "disabled",
            TimerState::DisabledByOperator => "disabled by operator",
            TimerState::Expired => "expired",
            TimerState::Manual => "manual",
            TimerState::Removed => "removed",
            TimerState::Kept if j.service.is_empty() => "not installed",
            TimerState::Kept => "left as installed",
        };
        let change = change_word(j.change);
        let line = format!(
            "  {sign} {:<28} {:<10} [{state}] {}",
            j.job,
            change,
            what.join("; ")
        );
        let _ = writeln!(out, "{}", line.trim_end());
        for note in &j.notes {
            let note = note.replace("`jobctl ", &format!("`{} ", outcome.jobctl));
            let _ = writeln!(out, "      note: {note}");
        }
    }
    if !plan.left_alone.is_empty() {
        const SHOWN: usize = 5;
        let mut names: Vec<String> = plan
            .left_alone
            .iter()
            .take(SHOWN)
            .map(|l| format!("{} ({})", l.job, l.source))
            .collect();
        if plan.left_alone.len() > SHOWN {
            names.push(format!("and {} more", plan.left_alone.len() - SHOWN));
        }
        let _ = writeln!(
            out,
            "  left alone: {} installed from other jobs folders: {}",
            count(plan.left_alone.len(), "job", "jobs"),
            names.join(", ")
        );
    }
    for d in outcome.diffs {
        out.push_str(&unified(d));
    }
    if !outcome.check && plan.changed() {
        for d in outcome.done {
            let _ = writeln!(out, "  done: {d}");
        }
        for d in outcome.not_done {
            let _ = writeln!(out, "  NOT done: {d}");
        }
    }
    out
}

/// Every unit file the plan writes or deletes, with its text before and
/// after. `installed` gives the current text of a unit to delete.
pub fn unit_diffs(plan: &Plan, installed: &HashMap<String, String>) -> Vec<UnitDiff> {
    let mut out: Vec<UnitDiff> = plan
        .writes()
        .map(|w| UnitDiff {
            unit: w.name.clone(),
            before: w.old.clone(),
            after: Some(w.new.clone()),
        })
        .collect();
    out.extend(plan.deletes().map(|d| UnitDiff {
        unit: d.clone(),
        before: Some(installed.get(d).cloned().unwrap_or_default()),
        after: None,
    }));
    out
}

/// A unit's change as a unified diff (`/dev/null` for the side that does not
/// exist).
pub fn unified(d: &UnitDiff) -> String {
    let from = match d.before {
        Some(_) => format!("a/{}", d.unit),
        None => "/dev/null".to_string(),
    };
    let to = match d.after {
        Some(_) => format!("b/{}", d.unit),
        None => "/dev/null".to_string(),
    };
    let (before, after) = (
        d.before.as_deref().unwrap_or(""),
        d.after.as_deref().unwrap_or(""),
    );
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string()
}
