//! Snapshots of what people read: the text of `list`, `status`, `history`,
//! `history prune`, `health` (text, `--quiet`, `--prometheus`) and `apply`
//! (a plan, `--check`, a failure part-way), each made from fixed values
//! ([`fixtures`]) and compared with `snapshots/NAME.txt`.
//!
//! A change to what operators read shows up in review as a change of a
//! snapshot. After an intended change: `JOBCTL_BLESS=1 cargo test --lib
//! view::`, then read every changed snapshot before committing
//! (docs/testing.md, "Snapshots of what people read").

mod fixtures;

use std::path::PathBuf;

use jobctl_core::plan::Plan;

use super::{apply, health, history, list, metrics, status};
use fixtures::{Fixture, NOW_US};

/// Compares `actual` with the snapshot `name`, or rewrites it when
/// `JOBCTL_BLESS=1` (exactly that value).
fn snapshot(name: &str, actual: &str) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "crates/jobctl/view/tests/snapshots",
        &format!("{name}.txt"),
    ]
    .iter()
    .collect();
    if std::env::var_os("JOBCTL_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
            .unified_diff()
            .header(&path.display().to_string(), "actual")
            .to_string();
        panic!(
            "{} differs from what the code prints now:\n{diff}\n\
             (if the new text is right: JOBCTL_BLESS=1 cargo test --lib view::, \
             then read the snapshot)",
            path.display()
        );
    }
}

#[test]
fn list_table() {
    let f = Fixture::new();
    snapshot("list", &list::text(&f.overview(), &f.zone));
}

/// `list --team analytics --tag etl`: the team's jobs (one of them with a
/// file that does not validate), and the job whose labels cannot be known.
#[test]
fn list_filtered_by_labels() {
    let f = Fixture::new();
    let mut overview = f.overview();
    crate::overview::LabelArgs {
        owner: None,
        team: Some("analytics".into()),
        tags: vec!["etl".into()],
    }
    .retain(&mut overview);
    snapshot("list-filtered", &list::text(&overview, &f.zone));
}

#[test]
fn list_with_no_jobs() {
    let f = Fixture::new();
    let mut overview = f.overview();
    overview.jobs.clear();
    snapshot("list-empty", &list::text(&overview, &f.zone));
}

#[test]
fn status_of_every_job() {
    let f = Fixture::new();
    let overview = f.overview();
    let rows = f.status_rows(&overview);
    snapshot("status", &status::text(&overview, &rows, &f.zone));
}

#[test]
fn health_text_quiet_and_prometheus() {
    let f = Fixture::new();
    let overview = f.overview_with_unreadable_history();
    let report = f.health(&overview, &[]);
    snapshot("health", &health::text(&report, false));
    snapshot("health-quiet", &health::text(&report, true));
    snapshot("health-prometheus", &health::prometheus(&report, &overview));
}

#[test]
fn health_when_nothing_is_wrong() {
    let f = Fixture::new();
    let mut overview = f.overview();
    overview.jobs.retain(|j| j.job == "reindex-search");
    let report = f.health(&overview, &[]);
    snapshot("health-ok", &health::text(&report, false));
}

#[test]
fn history_table() {
    let f = Fixture::new();
    let (main, user) = fixtures::databases();
    let runs = f.history_runs(&main, &user);
    let plain = history::Style {
        raw: false,
        color: false,
    };
    snapshot("history", &history::table(&runs, NOW_US, &f.zone, plain));
    // Only the main database: no DATABASE column.
    let main_only: Vec<_> = runs
        .iter()
        .filter(|(_, located)| located.owner.is_none())
        .cloned()
        .collect();
    snapshot(
        "history-main-only",
        &history::table(&main_only, NOW_US, &f.zone, plain),
    );
    snapshot(
        "history-raw-color",
        &history::table(
            &runs,
            NOW_US,
            &f.zone,
            history::Style {
                raw: true,
                color: true,
            },
        ),
    );
    snapshot(
        "history-empty",
        &history::table(&[], NOW_US, &f.zone, plain),
    );
}

#[test]
fn history_prune_report() {
    snapshot(
        "history-prune",
        &history::prune_report(&fixtures::prune_reports()),
    );
}

fn apply_text(plan: &Plan, check: bool, done: &[String], not_done: &[String]) -> String {
    apply::text(
        plan,
        &apply::Outcome {
            jobctl: "jobctl",
            check,
            diffs: &[],
            done,
            not_done,
        },
    )
}

#[test]
fn apply_reports() {
    let f = Fixture::new();
    let plan = f.plan();
    snapshot("apply-check", &apply_text(&plan, true, &[], &[]));
    // As execute() words them, for a start that failed for one timer.
    let done = [
        "stopped timers: 2 of 2",
        "wrote 3 unit files",
        "disabled 2 timers",
        "enabled 1 timers",
        "deleted 2 unit files",
        "reloaded systemd",
        "started timers: 1 of 2",
    ]
    .map(String::from);
    let not_done = ["start timers (2)", "reset failed units (2)"].map(String::from);
    snapshot("apply-failed", &apply_text(&plan, false, &done, &not_done));
    let diffs = apply::unit_diffs(&plan, &f.installed_texts());
    snapshot(
        "apply-diff",
        &apply::text(
            &plan,
            &apply::Outcome {
                jobctl: "jobctl",
                check: true,
                diffs: &diffs,
                done: &[],
                not_done: &[],
            },
        ),
    );
    snapshot(
        "apply-nothing",
        &apply_text(&f.plan_after_apply(), false, &[], &[]),
    );
    snapshot(
        "apply-invalid-and-elsewhere",
        &apply_text(&f.plan_with_invalid_and_elsewhere(), true, &[], &[]),
    );
}

/// `--json --diff`: each unit before and after; `null` for the side that
/// does not exist.
#[test]
fn apply_json_diffs_are_before_and_after() {
    let f = Fixture::new();
    let plan = f.plan();
    let diffs = apply::unit_diffs(&plan, &f.installed_texts());
    let created = diffs
        .iter()
        .find(|d| d.unit == "jobctl-batch-worker.timer")
        .expect("the new timer");
    assert!(created.before.is_none() && created.after.as_deref().unwrap().contains("[Timer]"));
    let deleted = diffs
        .iter()
        .find(|d| d.unit == "jobctl-old-campaign.service")
        .expect("the deleted service");
    assert!(deleted.after.is_none());
    assert!(
        deleted
            .before
            .as_deref()
            .unwrap()
            .contains("X-Jobctl-Job=old-campaign")
    );
    let updated = diffs
        .iter()
        .find(|d| d.unit == "jobctl-disk-report.service")
        .expect("the changed service");
    assert_ne!(updated.before, updated.after);
    assert!(updated.before.is_some() && updated.after.is_some());
}

/// `jobctl metrics`: every job of the fixture (a failing one, one running,
/// one that never ran, one overdue, one as another user), with run counters
/// for two of them and a notification channel.
#[test]
fn metrics_exposition() {
    use jobctl_core::metrics::{ChannelAttempts, families};
    use jobctl_history::Status;
    let f = Fixture::new();
    let mut overview = f.overview();
    for view in &mut overview.jobs {
        if view.job == "nightly-refresh"
            && let Some(job) = view.definition.as_mut()
        {
            job.notify.succeed_within = Some(jobctl_core::duration::Timespan::from_secs(26 * 3600));
        }
        if let Some(h) = view.history.as_mut() {
            h.run_counts = Some(match view.job.as_str() {
                "nightly-refresh" => [(Status::Success, 41), (Status::Failed, 2)].into(),
                _ => [(Status::Success, 7), (Status::Lost, 1)].into(),
            });
        }
    }
    let facts = metrics::facts(&overview, "root", &|v| v.job == "reindex-search");
    let channels = [
        ChannelAttempts {
            channel: "ops".into(),
            ok: true,
            attempts: 12,
        },
        ChannelAttempts {
            channel: "ops".into(),
            ok: false,
            attempts: 3,
        },
    ];
    snapshot(
        "metrics",
        &metrics::text(&families(&facts, Some(&channels))),
    );
}
