//! `jobctl apply`: the plan and what was done, for people; the diffs of
//! `--diff`; the summary counts `--json` shows too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jobctl_core::plan::{Change, Plan, TimerState};

/// How many jobs each change applies to, every kind present (0 when none).
pub fn summary(plan: &Plan) -> BTreeMap<&'static str, usize> {
    let mut s = BTreeMap::new();
    for key in ["create", "update", "remove", "unchanged", "orphaned"] {
        s.insert(key, 0);
    }
    for j in &plan.jobs {
        let key = match j.change {
            Change::Create => "create",
            Change::Update => "update",
            Change::Remove => "remove",
            Change::Unchanged => "unchanged",
            Change::Orphaned => "orphaned",
        };
        *s.entry(key).or_default() += 1;
    }
    s
}

/// What an apply did with its plan, besides the plan itself.
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// `--check`: nothing was done, the plan is what would be.
    pub check: bool,
    /// `--diff`: the unified diffs ([`diffs`]).
    pub diffs: &'a [String],
    /// The steps done, and (after a failure) those not done.
    pub done: &'a [String],
    pub not_done: &'a [String],
    /// How the caller runs jobctl (`jobctl --user --jobs-dir /j`): the plan's
    /// notes name `jobctl …` commands, which must reach these jobs as pasted.
    pub jobctl: &'a str,
}

/// The report `jobctl apply` prints: a summary line, one line per job that
/// changes or has a note, the diffs, then what was done and not done.
pub fn text(plan: &Plan, outcome: &Outcome<'_>) -> String {
    let mut out = String::new();
    let s = summary(plan);
    let verb = if outcome.check { "would " } else { "" };
    if !plan.changed() {
        let _ = writeln!(out, "apply: {} jobs, nothing to change", plan.jobs.len());
    } else {
        let _ = writeln!(
            out,
            "apply{}: {} jobs — {} {verb}create, {} {verb}update, {} {verb}remove, {} unchanged{}",
            if outcome.check { " --check" } else { "" },
            plan.jobs.len(),
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
        };
        let change = serde_json::to_value(j.change)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {sign} {:<28} {:<10} [{state}] {}",
            j.job,
            change,
            what.join("; ")
        );
        for note in &j.notes {
            let note = note.replace("`jobctl ", &format!("`{} ", outcome.jobctl));
            let _ = writeln!(out, "      note: {note}");
        }
    }
    for d in outcome.diffs {
        out.push_str(d);
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

/// Unified diffs of every unit file the plan writes or deletes.
pub fn diffs(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for w in plan.writes() {
        let old = w.old.as_deref().unwrap_or("");
        let diff = similar::TextDiff::from_lines(old, w.new.as_str());
        let from = if w.old.is_some() {
            format!("a/{}", w.name)
        } else {
            "/dev/null".to_string()
        };
        out.push(
            diff.unified_diff()
                .context_radius(3)
                .header(&from, &format!("b/{}", w.name))
                .to_string(),
        );
    }
    for d in plan.deletes() {
        out.push(format!("--- a/{d}\n+++ /dev/null\n(deleted)\n"));
    }
    out
}
