//! Every bad job file in tests/fixtures/invalid gives exactly its expected
//! diagnostics (tests/fixtures/invalid/<case>.expected) and exit status 2;
//! files in tests/fixtures/warnings validate with exactly their warnings.

use crate::support::{Run, RunExt as _, TestEnv, check_expected, count_job_files, root};

/// `jobctl --config /nonexistent/config.toml ARGS` in a fresh environment.
fn jobctl(args: &[&str]) -> Run {
    TestEnv::new()
        .jobctl()
        .args(["--config", "/nonexistent/config.toml"])
        .args(args)
        .run()
}

/// Runs `jobctl validate` on each case of a fixture folder and compares.
fn check_folder(folder: &str, extra_args: &[&str], expected_exit: i32) {
    let dir = root().join(folder);
    let env = TestEnv::new();
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
        let output = env
            .jobctl()
            .args(["--config", "/nonexistent/config.toml"])
            .args(extra_args)
            .args(["validate", "--"])
            .arg(relative)
            .run();
        if output.status.code() != Some(expected_exit) {
            failures.push(format!(
                "{}: expected exit {expected_exit}\n{}",
                relative.display(),
                output.describe()
            ));
            continue;
        }
        let expected = case.with_extension("expected");
        if let Err(message) = check_expected(&expected, &output.stderr_then_stdout()) {
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
    let output = jobctl(&["--jobs-dir", "tests/fixtures/invalid", "validate"]);
    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    let stdout = output.stderr_then_stdout();
    let cases = count_job_files(&root().join("tests/fixtures/invalid"));
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
    let output = jobctl(&[
        "validate",
        "--json",
        "tests/fixtures/invalid/unknown-key.toml",
    ]);
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
    let output = jobctl(&["validate", "/nonexistent/job.toml"]);
    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    assert!(
        output
            .stderr_then_stdout()
            .contains("error: /nonexistent/job.toml: cannot read the file")
    );
}
