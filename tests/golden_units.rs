//! Golden tests of the unit generator: each folder under tests/golden holds
//! job files (`jobs/`) and the exact units they must render to (`units/`),
//! compared as whole files. Every generated unit, and the units of every
//! example in jobs.d/, must also pass `systemd-analyze verify` silently.
//!
//! After an intended change to rendering: `JOBCTL_BLESS=1 cargo test`, then
//! review the diff of tests/golden.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::oracle::systemd::SYSTEMD_ANALYZE;
use crate::support::{
    self, JOBCTL, RunExt as _, TestEnv, assert_contains, blessing, check_expected, count_job_files,
    root, tool_or_skip,
};

/// The golden sets and the global flags each is rendered with.
const SETS: &[(&str, &[&str])] = &[
    ("system", &["--config", "/nonexistent/config.toml"]),
    ("user", &["--user", "--config", "/nonexistent/config.toml"]),
    ("config", &["--config", "tests/golden/config/config.toml"]),
];

/// `jobctl generate`, with `--jobctl-path` when given (else the binary's
/// path comes from the configuration).
fn generate(env: &TestEnv, flags: &[&str], jobs_dir: &str, out: &Path, jobctl_path: Option<&Path>) {
    let mut cmd = env.jobctl();
    cmd.args(flags)
        .args(["--jobs-dir", jobs_dir, "generate", "--out"])
        .arg(out);
    if let Some(path) = jobctl_path {
        cmd.arg("--jobctl-path").arg(path);
    }
    let output = cmd.run();
    assert!(
        output.status.success(),
        "generate {jobs_dir}: {}",
        output.describe()
    );
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn units_match_the_golden_files() {
    let mut failures = Vec::new();
    for (set, flags) in SETS {
        let env = TestEnv::new();
        let out = env.dir("units");
        // The config set takes jobctl_path from its config.toml
        // (/opt/jobctl/bin/jobctl): no flag, or the flag would be tested.
        let jobctl_path = (*set != "config").then_some(Path::new("/usr/bin/jobctl"));
        generate(
            &env,
            flags,
            &format!("tests/golden/{set}/jobs"),
            &out,
            jobctl_path,
        );
        let expected_dir = root().join(format!("tests/golden/{set}/units"));
        if blessing() {
            let _ = fs::remove_dir_all(&expected_dir);
            fs::create_dir_all(&expected_dir).unwrap();
        }
        let actual = file_names(&out);
        if !blessing() && actual != file_names(&expected_dir) {
            failures.push(format!(
                "{set}: unit files differ: got {actual:?}, expected {:?}",
                file_names(&expected_dir)
            ));
            continue;
        }
        for name in &actual {
            let contents = fs::read_to_string(out.join(name)).unwrap();
            if let Err(message) = check_expected(&expected_dir.join(name), &contents) {
                failures.push(message);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Runs `systemd-analyze verify` on every unit in `dir` and requires silence.
fn verify(dir: &Path, user: bool) -> Result<(), String> {
    let units: Vec<_> = file_names(dir).into_iter().map(|n| dir.join(n)).collect();
    assert!(!units.is_empty(), "nothing to verify in {}", dir.display());
    let mut cmd = Command::new(SYSTEMD_ANALYZE);
    let env = TestEnv::new();
    if user {
        // The user manager's verify needs a runtime folder to exist.
        cmd.arg("--user").env("XDG_RUNTIME_DIR", env.path());
    }
    let output = cmd
        .args(["verify", "--man=no"])
        .args(&units)
        .env("SYSTEMD_LOG_COLOR", "0")
        .run();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && text.trim().is_empty() {
        Ok(())
    } else {
        Err(format!(
            "systemd-analyze verify {}:\n{}",
            dir.display(),
            output.describe()
        ))
    }
}

#[test]
fn every_golden_and_example_unit_passes_systemd_analyze_verify() {
    if !tool_or_skip(SYSTEMD_ANALYZE, "to verify units") {
        return;
    }
    // verify checks that ExecStart='s program exists: point it at the real binary.
    let bin = Path::new(JOBCTL);
    let mut failures = Vec::new();
    let mut sets: Vec<(String, Vec<&str>)> = SETS
        .iter()
        .map(|(s, f)| (format!("tests/golden/{s}/jobs"), f.to_vec()))
        .collect();
    sets.push((
        "jobs.d".to_string(),
        vec!["--config", "/nonexistent/config.toml"],
    ));
    for (jobs_dir, flags) in &sets {
        let env = TestEnv::new();
        let out = env.dir("units");
        generate(&env, flags, jobs_dir, &out, Some(bin));
        if let Err(message) = verify(&out, flags.contains(&"--user")) {
            failures.push(message);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn verify_catches_a_broken_unit() {
    // The check above is only worth something if verify complains about
    // a bad unit; make sure it does on this host.
    if !tool_or_skip(SYSTEMD_ANALYZE, "to verify units") {
        return;
    }
    let env = TestEnv::new();
    fs::write(
        env.path().join("bad.service"),
        "[Service]\nType=oneshot\nExecStart=/bin/true\nBogusKey=1\n",
    )
    .unwrap();
    assert!(verify(env.path(), false).is_err());
}

#[test]
fn every_example_job_validates() {
    let output = TestEnv::new().run([
        "--config",
        "/nonexistent/config.toml",
        "--jobs-dir",
        "jobs.d",
        "validate",
    ]);
    assert!(output.status.success(), "{}", output.describe());
    let stdout = output.stderr_then_stdout();
    assert!(
        !stdout.contains("warning"),
        "examples must be warning-free:\n{stdout}"
    );
    let count = count_job_files(&root().join("jobs.d"));
    assert!(
        count >= 7,
        "expected the seven example patterns, found {count}"
    );
    assert_contains(&stdout, format!("{count} valid, 0 invalid"));
}

/// `jobctl generate --json` of the user golden set into `out`: its report.
fn generate_user_set_json(env: &TestEnv, out: &Path) -> serde_json::Value {
    let output = env
        .jobctl()
        .args([
            "--config",
            "/nonexistent/config.toml",
            "--jobs-dir",
            "tests/golden/user/jobs",
        ])
        .args([
            "generate",
            "--jobctl-path",
            "/usr/bin/jobctl",
            "--json",
            "--out",
        ])
        .arg(out)
        .run();
    assert!(output.status.success(), "{}", output.describe());
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn generate_removes_only_its_own_stale_units() {
    let env = TestEnv::new();
    let out = env.dir("units");
    fs::write(
        out.join("jobctl-gone.service"),
        "[Unit]\nX-Jobctl-Job=gone\n",
    )
    .unwrap();
    fs::write(
        out.join("foreign.service"),
        "[Unit]\nDescription=not ours\n",
    )
    .unwrap();
    let generate_json = || generate_user_set_json(&env, &out);
    assert_eq!(
        generate_json()["removed"],
        serde_json::json!(["jobctl-gone.service"])
    );
    let names = file_names(&out);
    assert!(names.contains("foreign.service"));
    assert!(!names.contains("jobctl-gone.service"));
    // A second run changes nothing.
    assert_eq!(generate_json()["written"], serde_json::json!([]));
}

#[test]
fn generate_writes_nothing_when_a_job_is_invalid() {
    let env = TestEnv::new();
    let out = env.dir("units");
    fs::copy(
        root().join("jobs.d/disk-report.toml"),
        env.jobs_dir().join("good.toml"),
    )
    .unwrap();
    env.write_job("bad", "command = [\"/bin/true\"]\n");
    let output = env
        .jobctl()
        .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
        .arg(env.jobs_dir())
        .args(["generate", "--jobctl-path", "/usr/bin/jobctl", "--out"])
        .arg(&out)
        .run();
    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(&stderr, "bad.toml: the job has no schedule");
    assert_contains(&stderr, "nothing was changed");
    assert!(file_names(&out).is_empty());
}

/// Each golden unit's `X-Jobctl-Hash=` is the first 128 bits of SHA-256 over
/// that unit's own text (with the hash value left out), checked with
/// coreutils' `sha256sum` rather than jobctl's own code: a service-only change
/// leaves the timer's hash, and so its file, as it was.
#[test]
fn each_golden_unit_carries_the_hash_of_its_own_text() {
    let mut checked = 0;
    for (set, _) in SETS {
        let dir = root().join(format!("tests/golden/{set}/units"));
        for name in file_names(&dir) {
            let text = fs::read_to_string(dir.join(&name)).unwrap();
            let hash = text
                .lines()
                .find_map(|l| l.strip_prefix("X-Jobctl-Hash="))
                .unwrap_or_else(|| panic!("{set}/{name}: no hash line"));
            let unhashed = text.replace(
                &format!("X-Jobctl-Hash={hash}\n"),
                "X-Jobctl-Hash=@JOBCTL-HASH@\n",
            );
            let mut child = Command::new("sha256sum")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("sha256sum (coreutils)");
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(unhashed.as_bytes())
                .unwrap();
            let output = child.wait_with_output().unwrap();
            let digest = String::from_utf8(output.stdout).unwrap();
            assert_eq!(hash, &digest[..32], "{set}/{name}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} golden units");
}

/// Expected files are rewritten only for `JOBCTL_BLESS=1`: a stray
/// `JOBCTL_BLESS=0` (or `true`, or an empty value) in an environment must
/// not turn every golden comparison into a rewrite that passes.
#[test]
fn only_jobctl_bless_1_blesses() {
    use std::ffi::OsStr;
    assert!(support::bless_value_blesses(Some(OsStr::new("1"))));
    for value in ["0", "", "true", "yes", " 1", "1 ", "01"] {
        assert!(
            !support::bless_value_blesses(Some(OsStr::new(value))),
            "JOBCTL_BLESS={value:?} must not bless"
        );
    }
    assert!(!support::bless_value_blesses(None));
}

/// `--jobctl-path` wins over the configuration's `jobctl_path`, which the
/// config golden set renders.
#[test]
fn the_flag_wins_over_the_configurations_jobctl_path() {
    let env = TestEnv::new();
    let out = env.dir("units");
    let (_, flags) = SETS.iter().find(|(set, _)| *set == "config").unwrap();
    generate(
        &env,
        flags,
        "tests/golden/config/jobs",
        &out,
        Some(Path::new("/usr/local/bin/jobctl-from-flag")),
    );
    let names = file_names(&out);
    let service = names.iter().find(|n| n.ends_with(".service")).unwrap();
    let unit = fs::read_to_string(out.join(service)).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/jobctl-from-flag ")
            && !unit.contains("/opt/jobctl/bin/jobctl"),
        "{unit}"
    );
}

/// `generate` owns a unit by the rule `apply` uses (`plan::ownership`): a
/// non-empty `X-Jobctl-Job=` in the `[Unit]` section of a regular file.
/// Anything else in the output folder is left alone.
#[test]
fn generate_judges_ownership_as_apply_does() {
    let env = TestEnv::new();
    let out = env.dir("owner-out");
    let marked = out.join("jobctl-gone.service");
    fs::write(&marked, "[Unit]\nX-Jobctl-Job=gone\n").unwrap();
    let not_ours = [
        (
            "in-service.service",
            "[Unit]\nDescription=x\n[Service]\nX-Jobctl-Job=gone\n",
        ),
        ("empty-mark.service", "[Unit]\nX-Jobctl-Job=\n"),
        ("in-install.timer", "[Install]\nX-Jobctl-Job=gone\n"),
    ];
    for (name, text) in not_ours {
        fs::write(out.join(name), text).unwrap();
    }
    // A link to one of jobctl's units is a link, never jobctl's.
    std::os::unix::fs::symlink(&marked, out.join("link.service")).unwrap();
    let report = generate_user_set_json(&env, &out);
    assert_eq!(
        report["removed"],
        serde_json::json!(["jobctl-gone.service"])
    );
    let names = file_names(&out);
    for (name, _) in not_ours {
        assert!(names.contains(name), "{name} was removed");
    }
    assert!(names.contains("link.service"), "the link was removed");
}
