//! Every bad job file in tests/fixtures/invalid gives exactly its expected
//! diagnostics (tests/fixtures/invalid/<case>.expected) and exit status 2;
//! files in tests/fixtures/warnings validate with exactly their warnings.

mod support;

use support::{TempDir, check_expected, describe, jobctl, root};

/// Runs `jobctl validate` on each case of a fixture folder and compares.
fn check_folder(folder: &str, extra_args: &[&str], expected_exit: i32) {
    let dir = root().join(folder);
    let home = TempDir::new("fixtures");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {folder}");
    let mut failures = Vec::new();
    for case in &cases {
        let relative = case.strip_prefix(root()).unwrap();
        let output = jobctl(home.path())
            .args(["--config", "/nonexistent/config.toml"])
            .args(extra_args)
            .args(["validate", "--"])
            .arg(relative)
            .output()
            .unwrap();
        if output.status.code() != Some(expected_exit) {
            failures.push(format!(
                "{}: expected exit {expected_exit}\n{}",
                relative.display(),
                describe(&output)
            ));
            continue;
        }
        let expected = case.with_extension("expected");
        if let Err(message) = check_expected(&expected, &support::stderr_then_stdout(&output)) {
            failures.push(message);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn invalid_job_files_give_their_exact_errors() {
    check_folder("tests/fixtures/invalid", &[], 2);
}

#[test]
fn invalid_per_user_job_files_give_their_exact_errors() {
    check_folder("tests/fixtures/invalid-user", &["--user"], 2);
}

#[test]
fn warnings_do_not_fail_validation() {
    check_folder("tests/fixtures/warnings", &[], 0);
}

#[test]
fn validate_reports_every_file_of_a_folder() {
    let home = TempDir::new("folder");
    let output = jobctl(home.path())
        .args([
            "--config",
            "/nonexistent/config.toml",
            "--jobs-dir",
            "tests/fixtures/invalid",
            "validate",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = support::stderr_then_stdout(&output);
    let cases = support::count_job_files(&root().join("tests/fixtures/invalid"));
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with(&format!(
            "checked {cases} job files: 0 valid, {cases} invalid ("
        )),
        "{summary}"
    );
    // Every case's own diagnostics appear in the folder's report.
    for entry in std::fs::read_dir(root().join("tests/fixtures/invalid")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "expected") {
            let expected = std::fs::read_to_string(&path).unwrap();
            let first = expected.lines().next().unwrap();
            assert!(
                stdout.contains(first),
                "missing from the folder report: {first}"
            );
        }
    }
}

#[test]
fn json_report_lists_diagnostics() {
    let home = TempDir::new("json");
    let output = jobctl(home.path())
        .args([
            "--config",
            "/nonexistent/config.toml",
            "validate",
            "--json",
            "tests/fixtures/invalid/unknown-key.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], 1);
    let diagnostic = &report["diagnostics"][0];
    assert_eq!(
        diagnostic["file"],
        "tests/fixtures/invalid/unknown-key.toml"
    );
    assert_eq!(diagnostic["line"], 1);
    assert_eq!(diagnostic["column"], 1);
    assert_eq!(diagnostic["key"], "comand");
    assert_eq!(diagnostic["hint"], "did you mean `command`?");
}

#[test]
fn a_missing_file_is_reported_not_panicked_on() {
    let home = TempDir::new("missing");
    let output = jobctl(home.path())
        .args([
            "--config",
            "/nonexistent/config.toml",
            "validate",
            "/nonexistent/job.toml",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(
        support::stderr_then_stdout(&output)
            .contains("error: /nonexistent/job.toml: cannot read the file")
    );
}
