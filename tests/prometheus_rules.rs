//! What ships in packaging/prometheus/, checked by Prometheus' own promtool
//! (Debian's `prometheus`, installed by scripts/setup): the alerting rules
//! load (`promtool check rules`) and do what their unit tests on synthetic
//! series say (`promtool test rules`); the Grafana dashboard is JSON whose
//! every PromQL expression parses (each becomes a recording rule that
//! `promtool check rules` reads); and every jobctl metric the rules and the
//! dashboard name is one `jobctl metrics` prints (the families of its
//! snapshot, crates/jobctl/view/tests/snapshots/metrics.txt).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{RunExt as _, root, skip};

/// promtool, or a skip (a failure in CI).
#[track_caller]
fn promtool_or_skip() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/bin/promtool");
    if path.exists() {
        Some(path)
    } else {
        skip("promtool is not installed (Debian's prometheus package); scripts/setup installs it");
        None
    }
}

fn folder() -> PathBuf {
    root().join("packaging/prometheus")
}

/// The jobctl metric names in `text` (words starting `jobctl_`).
fn jobctl_metrics(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("jobctl_") {
        let word: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + word.len()..];
        names.insert(word);
    }
    names
}

/// The families `jobctl metrics` prints, from its snapshot's TYPE lines.
fn exported() -> BTreeSet<String> {
    let snapshot =
        std::fs::read_to_string(root().join("crates/jobctl/view/tests/snapshots/metrics.txt"))
            .unwrap();
    snapshot
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_alerting_rules_load_and_pass_their_unit_tests() {
    let Some(promtool) = promtool_or_skip() else {
        return;
    };
    let out = Command::new(&promtool)
        .args(["check", "rules", "jobctl.rules.yml"])
        .current_dir(folder())
        .run();
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.stdout().contains("SUCCESS: 5 rules found"),
        "{}",
        out.describe()
    );
    let out = Command::new(&promtool)
        .args(["test", "rules", "jobctl.rules.test.yml"])
        .current_dir(folder())
        .run();
    assert!(out.status.success(), "{}", out.describe());

    let rules = std::fs::read_to_string(folder().join("jobctl.rules.yml")).unwrap();
    let alerts: BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(
        alerts,
        BTreeSet::from([
            "JobctlJobFailed",
            "JobctlJobOverdue",
            "JobctlJobNotSucceededSince",
            "JobctlNotificationsFailing",
            "JobctlMetricsStale",
        ])
    );
    // Every alert has a unit test.
    let tests = std::fs::read_to_string(folder().join("jobctl.rules.test.yml")).unwrap();
    for alert in &alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no test"
        );
    }
    let unknown: Vec<String> = jobctl_metrics(&rules)
        .difference(&exported())
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "the rules name metrics jobctl does not export: {unknown:?}"
    );
}

/// Every `expr` in a dashboard (panels, rows, anywhere).
fn expressions(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => expressions(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| expressions(v, out)),
        _ => {}
    }
}

#[test]
fn every_dashboard_expression_parses_and_names_exported_metrics() {
    let text = std::fs::read_to_string(folder().join("jobctl.grafana.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let titles: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["title"].as_str())
        .collect();
    for wanted in [
        "Jobs",
        "Failures over time",
        "Run durations",
        "Overdue jobs",
    ] {
        assert!(titles.contains(&wanted), "no panel {wanted}: {titles:?}");
    }
    let mut exprs = Vec::new();
    expressions(&dashboard, &mut exprs);
    assert!(exprs.len() >= 8, "{exprs:?}");
    let unknown: Vec<String> = jobctl_metrics(&exprs.join("\n"))
        .difference(&exported())
        .cloned()
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard names metrics jobctl does not export: {unknown:?}"
    );
    let Some(promtool) = promtool_or_skip() else {
        return;
    };
    // Grafana's variables, as Grafana fills them in.
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$instance", ".*");
            assert!(
                !expr.contains('$'),
                "a variable this test does not fill: {expr}"
            );
            // A JSON string is a YAML double-quoted scalar.
            format!(
                "      - record: jobctl:dashboard_{i}\n        expr: {}\n",
                serde_json::to_string(&expr).unwrap()
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file: &Path = &dir.path().join("dashboard.rules.yml");
    std::fs::write(
        file,
        format!("groups:\n  - name: dashboard\n    rules:\n{rules}"),
    )
    .unwrap();
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .arg(file)
        .run();
    assert!(
        out.status.success()
            && out
                .stdout()
                .contains(&format!("{} rules found", exprs.len())),
        "{}",
        out.describe()
    );
}
