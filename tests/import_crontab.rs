//! `jobctl import crontab`, run as a real process: the generated job files
//! are compared whole with the expected files in tests/fixtures/import/
//! (`JOBCTL_BLESS=1` rewrites them after a deliberate change), checked by
//! `jobctl validate`, and the folder is never left half-written: conflicts,
//! `--strict`, `--dry-run` and a failure in the middle of the move change
//! nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    Run, RunExt as _, TestEnv, assert_contains, blessing, is_root, root_or_skip, tool_or_skip,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// `jobctl import crontab ARGS --out OUT`, from tests/fixtures/import, with
/// `stdin` as its standard input when given.
fn import(env: &TestEnv, out: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = env.jobctl();
    cmd.args(["import", "crontab"])
        .args(args)
        .arg("--out")
        .arg(out)
        .current_dir(fixture(""));
    match stdin {
        Some(input) => cmd.run_with_input(input),
        None => cmd.run(),
    }
}

/// Imports (`ARGS`) into `jobs.d` of a fresh environment, which must
/// succeed: the environment, the folder and what the import printed.
fn imported(args: &[&str]) -> (TestEnv, PathBuf, String) {
    let env = TestEnv::new();
    let out = env.path().join("jobs.d");
    let output = import(&env, &out, args, None);
    assert!(output.status.success(), "{}", output.describe());
    (env, out, output.stdout())
}

/// Every file in a folder, by name.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(
                name,
                fs::read_to_string(entry.path()).unwrap_or_else(|_| "<dir>".into()),
            );
        }
    }
    files
}

fn assert_matches_expected(dir: &Path, expected: &Path) {
    let got = snapshot(dir);
    if blessing() {
        let _ = fs::remove_dir_all(expected);
        fs::create_dir_all(expected).expect("create expected folder");
        for (name, text) in &got {
            fs::write(expected.join(name), text).expect("bless");
        }
    }
    let want = snapshot(expected);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "file names (JOBCTL_BLESS=1 to accept)"
    );
    for (name, text) in &want {
        assert_eq!(
            &got[name], text,
            "{name} differs (JOBCTL_BLESS=1 to accept)"
        );
    }
}

/// `jobctl validate` of the imported folder, with `config` (the
/// configuration the import's mail channels were added to) when given.
fn validate_with(env: &TestEnv, dir: &Path, config: Option<&Path>) {
    let mut cmd = env.jobctl();
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    let output = cmd.args(["validate", "--jobs-dir"]).arg(dir).run();
    assert!(
        output.status.success(),
        "jobctl validate: {}",
        output.describe()
    );
}

fn validate(env: &TestEnv, dir: &Path) {
    validate_with(env, dir, None);
}

/// The blocks the import asks to add to the configuration, as `--json`
/// gives them (`channels[].toml`, null for a channel already there).
fn blocks_to_add(report: &serde_json::Value) -> String {
    report["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .filter_map(|c| c["toml"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn user_crontab() {
    let (env, out, stdout) = imported(&["user.crontab", "--job-user", "alice"]);
    assert_matches_expected(&out, &fixture("user.expected"));

    assert!(stdout.starts_with("Imported 8 jobs from "), "{stdout}");
    for line in [
        "monthly-send.toml",
        "*-*-01 12:00:00 + Mon *-*-* 12:00:00",
        "Not imported (5 lines):",
        "line 18: CRON_TZ=",
        "cron reads `NAME=` with nothing after it as a broken job line; write `NAME=\"\"`",
        "`L` (last day of the month) is a Quartz extension, not cron",
        "hint: systemd expresses it as `*-*~01`",
        "`#` (\"MON#2\": nth weekday of the month) is a Quartz extension, not cron",
        "line 23: 5;rm * * * * /bin/true",
        "MAILTO became mail channels",
        "cron mailed a job's output whenever it printed anything",
        "  mailto-ops-example-com: ops@example.com (MAILTO=ops@example.com)",
        "jobctl does not edit it; the jobs that name these channels do not validate until they exist",
        "[notify.channels.mailto-ops-example-com]\nmail = [\"ops@example.com\"]\n",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // No staging folder is left behind.
    assert_eq!(snapshot(env.path()).keys().collect::<Vec<_>>(), ["jobs.d"]);
    // The files validate once the printed channel is in the configuration.
    let config = env
        .write_config("[notify.channels.mailto-ops-example-com]\nmail = [\"ops@example.com\"]\n");
    validate_with(&env, &out, Some(&config));
}

/// MAILTO (issue 13, "mail"): each MAILTO line gives the job lines after it
/// a mail channel (`MAILTO=""`: `notify = []`), a channel the configuration
/// has for the same addresses is used as it is, the others are printed to
/// be added — the configuration itself is never written — and the files
/// validate once they are.
#[test]
fn mailto_becomes_a_mail_channel() {
    let env = TestEnv::new();
    let out = env.path().join("jobs.d");
    let existing = "# the operator's own\n[notify.channels.dba-team]\nmail = [\"ops@example.com\", \"dba@example.com\"]\n";
    let config = env.write_config(existing);
    // `--config` is a global option: before the subcommand.
    let run = |json: bool| {
        let mut cmd = env.jobctl();
        cmd.arg("--config")
            .arg(&config)
            .args(["import", "crontab", "mailto.crontab", "--job-user", "alice"])
            .arg("--out")
            .arg(&out)
            .current_dir(fixture(""));
        if json {
            cmd.arg("--json");
        }
        cmd.run()
    };
    let output = run(false);
    assert!(output.status.success(), "{}", output.describe());
    assert_matches_expected(&out, &fixture("mailto.expected"));
    let stdout = output.stdout();
    for line in [
        "  mailto-ops-example-com: ops@example.com (MAILTO=ops@example.com)",
        &format!(
            "  dba-team: dba@example.com, ops@example.com (MAILTO=dba@example.com, ops@example.com), already in {}",
            config.display()
        ),
        "  mailto-root-localhost: root@localhost (MAILTO=root)",
        "[notify.channels.mailto-ops-example-com]\nmail = [\"ops@example.com\"]\n\n[notify.channels.mailto-root-localhost]\nmail = [\"root@localhost\"]\n",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("[notify.channels.dba-team]"), "{stdout}");
    // Never edited.
    assert_eq!(fs::read_to_string(&config).expect("config"), existing);
    // The jobs name channels the configuration does not have yet.
    let output = env
        .jobctl()
        .arg("--config")
        .arg(&config)
        .args(["validate", "--jobs-dir"])
        .arg(&out)
        .run();
    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    assert_contains(
        &output.stderr(),
        "unknown notification channel \"mailto-ops-example-com\"",
    );

    // --json: the same channels, with the blocks to add.
    fs::remove_dir_all(&out).expect("clean");
    let output = run(true);
    assert!(output.status.success(), "{}", output.describe());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let channels: Vec<(&str, bool)> = report["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default(),
                c["in_config"] == true,
            )
        })
        .collect();
    assert_eq!(
        channels,
        [
            ("mailto-ops-example-com", false),
            ("dba-team", true),
            ("mailto-root-localhost", false)
        ]
    );
    assert_eq!(report["channels"][0]["lines"], serde_json::json!([4]));
    assert_eq!(report["config"], config.to_str().unwrap());
    // Pasted: every file validates.
    fs::write(&config, format!("{existing}\n{}", blocks_to_add(&report))).expect("paste");
    validate_with(&env, &out, Some(&config));
}

#[test]
fn system_crontab_from_stdin() {
    let env = TestEnv::new();
    let out = env.path().join("jobs.d");
    let text = fs::read(fixture("system.crontab")).expect("fixture");
    let output = import(&env, &out, &["-", "--format", "system"], Some(&text));
    assert!(output.status.success(), "{}", output.describe());
    assert_matches_expected(&out, &fixture("system.expected"));
    validate(&env, &out);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_contains(&stdout, "from stdin into");
    assert_contains(&stdout, "missing the user column");
}

#[test]
fn json_report() {
    let env = TestEnv::new();
    let out = env.path().join("jobs.d");
    let output = import(&env, &out, &["user.crontab", "--json", "-u", "alice"], None);
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["format"], "user");
    assert_eq!(report["jobs"].as_array().map(Vec::len), Some(8));
    assert_eq!(report["skipped"].as_array().map(Vec::len), Some(5));
    let first = &report["jobs"][0];
    assert_eq!(first["name"], "refresh");
    assert_eq!(first["line"], 8);
    assert_eq!(first["on_calendar"][0], "*-*-* 02:15:00");
    assert!(
        first["file"]
            .as_str()
            .unwrap_or_default()
            .ends_with("jobs.d/refresh.toml")
    );
    assert_eq!(report["skipped"][1]["line"], 21);
}

#[test]
fn existing_files_are_not_overwritten_without_force() {
    let env = TestEnv::new();
    let (dir, out) = (env.path(), env.path().join("jobs.d"));
    fs::create_dir_all(&out).expect("mkdir");
    fs::write(out.join("refresh.toml"), "# mine\n").expect("write");
    fs::write(out.join("other.toml"), "# other\n").expect("write");
    let before = snapshot(&out);
    let args = ["user.crontab", "--job-user", "alice"];

    let output = import(&env, &out, &args, None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(&stderr, "refresh.toml already exists in");
    assert_contains(&stderr, "Hint: review them, then add --force");
    assert_eq!(snapshot(&out), before, "nothing changed");
    assert_eq!(snapshot(dir).len(), 1, "no staging folder left");

    let output = import(&env, &out, &[&args[..], &["--force"]].concat(), None);
    assert!(output.status.success());
    let after = snapshot(&out);
    assert_eq!(after["other.toml"], "# other\n");
    assert!(after["refresh.toml"].starts_with("# Imported by jobctl"));
    assert_eq!(after.len(), 9);
}

#[test]
fn strict_and_dry_run_write_nothing() {
    let env = TestEnv::new();
    let (dir, out) = (env.path(), env.path().join("jobs.d"));
    let output = import(
        &env,
        &out,
        &["user.crontab", "--strict", "--job-user", "alice"],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("5 line(s) of"));
    assert!(!out.exists());

    let output = import(
        &env,
        &out,
        &["system.crontab", "--format=system", "--dry-run"],
        None,
    );
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("Would import 5 jobs"), "{stdout}");
    assert_contains(&stdout, "--- cron.toml\n# Imported by jobctl");
    assert!(!out.exists());
    assert_eq!(snapshot(dir).len(), 0);
}

#[test]
fn bad_input_is_reported() {
    let env = TestEnv::new();
    let (dir, out) = (env.path(), env.path().join("jobs.d"));
    let output = import(&env, &out, &["/nonexistent/crontab"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("cannot read the crontab /nonexistent/crontab")
    );
    let output = import(&env, &out, &["-"], Some(b"\xff\xfe 0 0 * * * x\n"));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("stdin is not UTF-8 text"));
    let file = dir.join("file");
    fs::write(&file, "").expect("write");
    let output = import(
        &env,
        &file,
        &["-", "-u", "alice"],
        Some(b"0 0 * * * /bin/true\n"),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("exists and is not a folder"));
}

/// A move that fails half-way is undone: an immutable job file (chattr +i,
/// which stops even root) cannot be moved aside, after other files were
/// already moved in; they must be taken back out.
#[test]
fn a_failure_in_the_middle_is_undone() {
    if !root_or_skip("to make a file immutable")
        || !tool_or_skip("/usr/bin/chattr", "to make a file immutable")
    {
        return;
    }
    let env = TestEnv::new();
    let (dir, out) = (env.path(), env.path().join("jobs.d"));
    fs::create_dir_all(&out).expect("mkdir");
    // `monthly-send.toml` comes after refresh and batch-worker.
    fs::write(out.join("monthly-send.toml"), "# locked\n").expect("write");
    let locked = out.join("monthly-send.toml");
    let status = Command::new("chattr")
        .arg("+i")
        .arg(&locked)
        .status()
        .expect("chattr");
    assert!(status.success());
    let before = snapshot(&out);
    let output = import(
        &env,
        &out,
        &["user.crontab", "--force", "--job-user", "alice"],
        None,
    );
    let _ = Command::new("chattr").arg("-i").arg(&locked).status();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_contains(&stderr, "failed and was undone");
    assert_eq!(snapshot(&out), before, "the folder is as it was");
    assert_eq!(
        snapshot(dir).keys().collect::<Vec<_>>(),
        ["jobs.d"],
        "no staging folder left"
    );
}

/// `jobctl render --json` of every job file in `dir`: the units as systemd
/// will read them (an independent reading of the imported files).
fn rendered_services(env: &TestEnv, dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read jobs")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    // With the mail channel user.crontab's MAILTO became, as the import
    // asked to add it.
    let config = env
        .write_config("[notify.channels.mailto-ops-example-com]\nmail = [\"ops@example.com\"]\n");
    let output = env
        .jobctl()
        .arg("--config")
        .arg(config)
        .arg("render")
        .arg("--json")
        .args(&files)
        .run();
    assert!(output.status.success(), "{output:?}");
    let units: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    units["jobs"]
        .as_array()
        .expect("array")
        .iter()
        .map(|u| u["service"]["contents"].as_str().expect("text").to_string())
        .collect()
}

/// A user crontab's jobs run as that user: never as root because nobody
/// said otherwise. Where the user cannot be known, nothing is written.
#[test]
fn a_user_crontab_whose_user_cannot_be_known_is_refused() {
    let env = TestEnv::new();
    let (dir, out) = (env.path(), env.path().join("jobs.d"));
    // `crontab -l | jobctl import crontab -`: a pipe has no owner.
    let output = import(&env, &out, &["-"], Some(b"0 0 * * * /bin/true\n"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_contains(&stderr, "cannot tell whose crontab this is");
    assert_contains(
        &stderr,
        "Hint: name the user the jobs run as with --job-user USER (-u USER)",
    );
    assert!(!out.exists(), "nothing written");

    // A copy of a crontab outside cron's spool: as root, the copy is root's
    // and may be anyone's crontab; otherwise it is the caller's own.
    let copy = dir.join("copy.crontab");
    fs::copy(fixture("user.crontab"), &copy).expect("copy");
    let output = import(&env, &out, &[copy.to_str().expect("utf-8")], None);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if is_root() {
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_contains(&stderr, "it is owned by root but is not root's crontab");
        assert_contains(&stderr, "--job-user root if the jobs really are root's");
        assert!(!out.exists(), "nothing written");
    } else {
        assert!(output.status.success(), "{stderr}");
        let me =
            String::from_utf8_lossy(&Command::new("id").arg("-un").output().expect("id").stdout)
                .trim()
                .to_string();
        for unit in rendered_services(&env, &out) {
            assert_contains(&unit, format!("\nUser={me}\n"));
        }
    }
}

/// The user and the timeout the jobs get are in every file and stated in
/// the report; systemd reads them back from the rendered units.
#[test]
fn the_user_and_the_timeout_are_stated() {
    let (env, out, stdout) = imported(&["user.crontab", "-u", "alice"]);
    for line in [
        "\n  user:     alice (--job-user)\n",
        "\n  timeout:  1h in every job (cron never stopped a job; see the notes)\n",
        "timeout = \"1h\" in every job: cron never stopped a job, jobctl stops a run after 1h and records it as `timeout`",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    let services = rendered_services(&env, &out);
    assert_eq!(services.len(), 8);
    for unit in &services {
        assert_contains(unit, "\nUser=alice\n");
        assert_contains(unit, "\nTimeoutStartSec=1h\n");
    }

    // --timeout chooses another one, "infinity" none; --json says so too.
    let out = env.path().join("forever");
    let output = import(
        &env,
        &out,
        &[
            "user.crontab",
            "--job-user",
            "alice",
            "--timeout",
            "infinity",
            "--json",
        ],
        None,
    );
    assert!(output.status.success(), "{}", output.describe());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["timeout"], "infinity");
    assert_eq!(report["user"]["user"], "alice");
    assert_eq!(report["user"]["source"], "--job-user");
    for unit in rendered_services(&env, &out) {
        assert_contains(&unit, "\nTimeoutStartSec=infinity\n");
    }
    let output = import(
        &env,
        &out,
        &["user.crontab", "-u", "alice", "--timeout", "0"],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--timeout"));
}

/// A system crontab keeps the user of each line (root only where a line
/// says root); --job-user would be ignored there, so it is refused.
#[test]
fn a_system_crontab_keeps_the_user_of_each_line() {
    let env = TestEnv::new();
    let (dir, out) = (env.path(), env.path().join("jobs.d"));
    let output = import(&env, &out, &["system.crontab", "--format", "system"], None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_contains(&stdout, "\n  user:     the user column of each line\n");
    let users: Vec<String> = rendered_services(&env, &out)
        .iter()
        .map(|u| {
            u.lines()
                .find(|l| l.starts_with("User="))
                .unwrap_or("none")
                .to_string()
        })
        .collect();
    assert_eq!(
        users,
        [
            "User=root",
            "User=root",
            "User=root",
            "User=www-data",
            "User=root"
        ]
    );

    let output = import(
        &env,
        &dir.join("x"),
        &["system.crontab", "--format", "system", "-u", "alice"],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains(
        "--job-user applies to user crontabs; a system crontab names the user on each line"
    ));
}

/// In per-user mode the jobs run as the caller, whose manager runs them.
#[test]
fn per_user_mode_imports_jobs_that_run_as_the_caller() {
    let env = TestEnv::new();
    let out = env.path().join("jobs.d");
    let run = |extra: &[&str]| {
        env.jobctl()
            .args(["--user", "import", "crontab", "-", "--out"])
            .arg(&out)
            .args(extra)
            .run_with_input(b"0 0 * * * /usr/local/bin/backup\n")
    };
    let output = run(&[]);
    assert!(output.status.success(), "{}", output.describe());
    let stdout = output.stdout();
    assert_contains(
        &stdout,
        "user:     you: your own systemd user manager runs them (--user)",
    );
    let file = fs::read_to_string(out.join("backup.toml")).expect("job file");
    assert!(!file.contains("user ="), "{file}");
    let output = run(&["-u", "alice", "--force"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--job-user cannot be used with --user")
    );
}

/// Issue 10, item 4: the report quoted a crontab's lines raw, so a line with
/// terminal escape sequences reached the terminal of whoever imported it.
/// Expected text written by hand.
#[test]
fn rejected_lines_are_shown_escaped() {
    let env = TestEnv::new();
    let out = env.path().join("jobs.d");
    let out_text = out.to_str().expect("utf-8");
    let output = import(
        &env,
        &out,
        &["-", "-u", "nobody"],
        Some(b"61 * * * * echo \x1b[2Jhi\x07\n0 3 * * * /bin/true\n"),
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "Imported 1 job from stdin into {out_text}:\n\
             \x20 user:     nobody (--job-user)\n\
             \x20 timeout:  1h in every job (cron never stopped a job; see the notes)\n\
             \x20 cron-job.toml  line 2    0 3 * * *  ->  *-*-* 03:00:00\n\
             \n\
             Not imported (1 line):\n\
             \x20 line 1: 61 * * * * echo \\x1b[2Jhi\\x07\n\
             \x20     schedule \"61 * * * *\": minute 61 is out of range 0-59\n\
             \n\
             Notes:\n\
             \x20 - timeout = \"1h\" in every job: cron never stopped a job, jobctl stops a run \
             after 1h and records it as `timeout`; raise it in the files where a run may take \
             longer (--timeout DUR chooses another, \"infinity\" none)\n\
             \n\
             Next: review the files, then `jobctl --jobs-dir {out_text} validate` and \
             `jobctl --jobs-dir {out_text} apply`.\n"
        )
    );
    // --json has the line exactly, in JSON's escapes.
    let output = import(
        &env,
        &out,
        &["-", "--dry-run", "--json", "-u", "nobody"],
        Some(b"61 * * * * echo \x1b[2Jhi\x07\n"),
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(
        report["skipped"][0]["text"],
        "61 * * * * echo \x1b[2Jhi\x07"
    );
}
