//! The operator's CLI without a systemd: `validate --name` (a staged file
//! under its real name), one JSON object on stdout for every `--json`
//! failure, `cat`, `edit`, a missing jobs folder, and the hint a non-root
//! `apply` gets. (What needs systemd — per-job isolation, `apply --check
//! --job`, other folders' units — is in tests/systemd_e2e/cli_core.rs.)

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde_json::Value;

use crate::support::{RunExt as _, TestEnv, assert_contains, chmod, root_or_skip, write_script};

const VALID: &str = "command = [\"/bin/true\"]\ndaily = \"03:00\"\n";

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("{e}: not one JSON object: {}", String::from_utf8_lossy(out)))
}

/// Ansible's `template validate=` runs the validator on a temporary file
/// named `.source.toml`; `--name` checks it as the job it will be, and names
/// the file it will become in every diagnostic.
#[test]
fn validate_name_checks_a_staged_file_as_the_job_it_will_be() {
    let env = TestEnv::new();
    let staged = env.dir("tmp").join(".source.toml");
    std::fs::write(&staged, VALID).unwrap();
    let jobs = env.jobs_dir();
    let jobs = jobs.to_str().unwrap();

    // Without --name, the file's own name is not a job name.
    let out = env.run(["--jobs-dir", jobs, "validate", staged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());

    let out = env.run([
        "--jobs-dir",
        jobs,
        "validate",
        "--name",
        "backup",
        staged.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    let report = json(&out.stdout);
    assert_eq!(report["jobs"], serde_json::json!(["backup"]));

    // Errors name the file the content will become, with line and column.
    std::fs::write(&staged, "comand = [\"/bin/true\"]\ndaily = \"03:00\"\n").unwrap();
    let out = env.run([
        "--jobs-dir",
        jobs,
        "validate",
        "--name",
        "backup",
        staged.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert_contains(
        &out.stderr(),
        format!("{jobs}/backup.toml:1:1: `comand`: unknown key"),
    );
    assert!(!out.stderr().contains(".source.toml"), "{}", out.describe());

    // Standard input, as `-`.
    let out = env
        .jobctl()
        .args(["--jobs-dir", jobs, "validate", "--name", "nightly", "-"])
        .run_with_input(VALID.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());

    // A name that is not a job name, and more than one file.
    let out = env.run(["validate", "--name", "../x", staged.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert_contains(&out.stderr(), "is not a job name");
    let out = env.run(["validate", "--name", "x", "a.toml", "b.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
}

/// Every command given `--json` prints one JSON object on stdout when it
/// fails: the error, its hints and the diagnostics with file, line, column,
/// key, message and hint.
#[test]
fn validate_says_which_errors_are_the_configurations() {
    let env = TestEnv::new();
    let config = env.write_config("[notify.channels.m]\nmail = [\"not an address\"]\n");
    env.write_job(
        "a",
        "command = [\"/bin/true\"]\ndaily = \"03:00\"\nnotify = [\"m\"]\n",
    );
    let jobs = env.jobs_dir();
    let out = env.run([
        "--jobs-dir",
        jobs.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "validate",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    // Two errors: the channel's address in the configuration, and the job
    // naming that broken channel; the summary says the first is not the
    // job file's.
    assert_eq!(
        out.stdout(),
        "checked 1 job file: 0 valid, 1 invalid (2 errors, 0 warnings); \
         the configuration has 1 error\n",
        "{}",
        out.describe()
    );
    // The address's error says how to write one.
    let err = out.stderr();
    assert!(
        err.contains("`notify.channels.m.mail[0]`: \"not an address\" is not a plain mail address")
            && err.contains("hint: one plain address per item, without a name"),
        "{err}"
    );
}

/// jobctl-web refuses to start when `[web]` names a group the name service
/// does not know; `validate` says so first, as an error of the
/// configuration at the key (system mode and `--user` alike), and is quiet
/// about a group that exists.
#[test]
fn validate_checks_that_the_web_groups_exist() {
    let env = TestEnv::new();
    let missing = format!("no-such-group-{}", std::process::id());
    let text = format!("[web]\nread_group = \"{missing}\"\naction_group = \"root\"\n");
    let config = env.write_config(&text);
    let jobs = env.jobs_dir();
    let jobs = jobs.to_str().unwrap();
    env.write_job("a", VALID);
    let user_config = env.dir(".config/jobctl").join("config.toml");
    std::fs::write(&user_config, &text).unwrap();
    let config_arg = config.to_str().unwrap();
    for (args, file) in [
        (vec!["--config", config_arg], config_arg.to_string()),
        (vec!["--user"], user_config.display().to_string()),
    ] {
        let mut argv = args.clone();
        argv.extend(["--jobs-dir", jobs, "validate"]);
        let out = env.run(&argv);
        assert_eq!(out.status.code(), Some(2), "{}", out.describe());
        assert_eq!(
            out.stdout(),
            "checked 1 job file: 1 valid, 0 invalid (1 error, 0 warnings); \
             the configuration has 1 error\n",
            "{}",
            out.describe()
        );
        let err = out.stderr();
        assert_contains(
            &err,
            format!("error: {file}:2:14: `web.read_group`: group {missing} does not exist"),
        );
        assert_contains(
            &err,
            format!("hint: create it (`groupadd {missing}`) or name a group that exists"),
        );
        // root exists: one error, none for action_group.
        assert!(!err.contains("action_group"), "{}", out.describe());

        argv.push("--json");
        let out = env.run(&argv);
        assert_eq!(out.status.code(), Some(2), "{}", out.describe());
        let report = json(&out.stdout);
        assert_eq!(report["errors"], 1, "{report}");
        let d = &report["diagnostics"][0];
        assert_eq!(
            (&d["file"], &d["line"], &d["column"], &d["key"]),
            (
                &Value::from(file.as_str()),
                &Value::from(2),
                &Value::from(14),
                &Value::from("web.read_group")
            ),
            "{report}"
        );
    }

    // Groups that exist: valid.
    let text = "[web]\nread_group = \"root\"\naction_group = \"root\"\n";
    env.write_config(text);
    std::fs::write(&user_config, text).unwrap();
    for args in [vec!["--config", config_arg], vec!["--user"]] {
        let mut argv = args.clone();
        argv.extend(["--jobs-dir", jobs, "validate"]);
        let out = env.run(&argv);
        assert_eq!(out.status.code(), Some(0), "{}", out.describe());
        assert_eq!(out.stderr(), "", "{}", out.describe());
    }
}

#[test]
fn json_failures_are_one_object_with_the_diagnostics() {
    let env = TestEnv::new();
    let file = env.write_job(
        "bad",
        "command = [\"/bin/true\"]\ndaily = \"03:00\"\ncomand = 1\n",
    );
    let out = env.run(["render", "--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    let report = json(&out.stdout);
    assert_eq!(
        report["error"],
        "1 error in the job files; nothing was changed"
    );
    assert_eq!(report["exit_status"], 2);
    let d = &report["diagnostics"][0];
    assert_eq!(d["file"], file.to_str().unwrap());
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(d["key"], "comand");
    assert_eq!(d["message"], "unknown key");
    assert_eq!(d["hint"], "did you mean `command`?");
    // The text on stderr says each thing once: the diagnostic, then the error.
    let err = out.stderr();
    assert!(!err.contains("Error: error:"), "{err}");
    assert_contains(&err, "error: ");
    assert_contains(&err, "Error: 1 error in the job files; nothing was changed");

    // A command that needs systemd, on this host without one (or with a
    // jobs folder that does not exist): still one object.
    let missing = env.path().join("nowhere");
    for args in [
        vec!["list", "--json"],
        vec!["health", "--json"],
        vec!["apply", "--check", "--json"],
        vec!["status", "--json"],
        vec!["run", "x", "--json"],
    ] {
        let out = env
            .jobctl()
            .arg("--jobs-dir")
            .arg(&missing)
            .args(&args)
            .run();
        assert!(!out.status.success(), "{args:?}: {}", out.describe());
        let report = json(&out.stdout);
        assert!(report["error"].is_string(), "{args:?}: {report:#}");
        assert_eq!(
            report["exit_status"].as_i64(),
            out.status.code().map(i64::from),
            "{args:?}"
        );
    }
    // A command line clap refuses.
    let out = env.run(["apply", "--bogus", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert_eq!(
        json(&out.stdout)["error"],
        "unexpected argument '--bogus' found"
    );
    // Without --json, stdout stays empty.
    let out = env.run(["apply", "--bogus"]);
    assert!(out.stdout.is_empty(), "{}", out.describe());
}

/// `jobctl cat JOB`: the job file and its installed units, each under its
/// path; `--json` has the same.
#[test]
fn cat_shows_the_job_file_and_its_units() {
    let env = TestEnv::new();
    let file = env.write_job("nightly", VALID);
    env.write_job("other", VALID);
    let units = env.dir("units");
    let jobs = env.jobs_dir();
    let common = [
        "--jobs-dir",
        jobs.to_str().unwrap(),
        "--unit-dir",
        units.to_str().unwrap(),
    ];
    env.jobctl()
        .args(common)
        .args([
            "generate",
            "--out",
            units.to_str().unwrap(),
            "--jobctl-path",
            "/usr/bin/jobctl",
        ])
        .run()
        .success();

    let out = env.jobctl().args(common).args(["cat", "nightly"]).run();
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    let service = std::fs::read_to_string(units.join("jobctl-nightly.service")).unwrap();
    let timer = std::fs::read_to_string(units.join("jobctl-nightly.timer")).unwrap();
    assert_eq!(
        out.stdout(),
        format!(
            "# {}\n{VALID}\n# {}\n{service}\n# {}\n{timer}",
            file.display(),
            units.join("jobctl-nightly.service").display(),
            units.join("jobctl-nightly.timer").display()
        )
    );
    let out = env
        .jobctl()
        .args(common)
        .args(["cat", "nightly", "--json"])
        .run();
    let report = json(&out.stdout);
    assert_eq!(report["file"]["contents"], VALID);
    assert_eq!(report["units"].as_array().map(Vec::len), Some(2));

    // Not installed: the file, and a note saying so.
    env.write_job("fresh", VALID);
    let out = env.jobctl().args(common).args(["cat", "fresh"]).run();
    assert_eq!(
        out.stdout(),
        format!("# {}\n{VALID}", jobs.join("fresh.toml").display())
    );
    assert_contains(&out.stderr(), "is not installed");
    // Unknown: a suggestion.
    let out = env.jobctl().args(common).args(["cat", "nigthly"]).run();
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert_contains(&out.stderr(), "did you mean \"nightly\"?");
    // Control characters a job file holds are not printed raw.
    env.write_job(
        "ctl",
        "# \x1b[2J\ncommand = [\"/bin/true\"]\nmanual = true\n",
    );
    let out = env.jobctl().args(common).args(["cat", "ctl"]).run();
    assert_contains(&out.stdout(), "# \\x1b[2J");
}

/// A script to use as `$EDITOR`: each time it runs it replaces the file
/// with the next of `versions` (counting its runs in `count`).
fn editor(env: &TestEnv, versions: &[&str]) -> std::path::PathBuf {
    let dir = env.dir("editor");
    let mut script = String::from("#!/bin/sh\nn=$(cat \"$0.count\" 2>/dev/null || echo 0)\n");
    script.push_str("echo $((n + 1)) > \"$0.count\"\ncase $n in\n");
    for (i, v) in versions.iter().enumerate() {
        let path = dir.join(format!("v{i}"));
        std::fs::write(&path, v).unwrap();
        script.push_str(&format!("  {i}) cp '{}' \"$1\" ;;\n", path.display()));
    }
    script.push_str("esac\n");
    let path = dir.join("edit");
    write_script(&path, &script);
    path
}

fn runs_of(editor: &Path) -> String {
    std::fs::read_to_string(editor.with_extension("count")).unwrap_or_default()
}

/// `jobctl edit`: a valid edit replaces the file (its mode kept); an invalid
/// one is shown and re-opened, or discarded, leaving the file as it was.
#[test]
fn edit_validates_before_it_replaces_the_file() {
    let env = TestEnv::new();
    let file = env.write_job("nightly", VALID);
    chmod(&file, 0o640);
    let jobs = env.jobs_dir();
    let edited = "command = [\"/bin/true\"]\ndaily = \"04:00\"\n";
    let invalid = "command = [\"/bin/true\"]\ndaily = \"04:00\"\ncomand = 1\n";

    // Valid at once.
    let script = editor(&env, &[edited]);
    let out = env
        .jobctl()
        .env("EDITOR", &script)
        .arg("--jobs-dir")
        .arg(&jobs)
        .args(["edit", "nightly"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert_contains(&out.stderr(), "apply nightly");

    // Invalid, then (answer `e`) valid: re-opened once, then saved.
    std::fs::write(&file, VALID).unwrap();
    let script = editor(&env, &[invalid, edited]);
    let _ = std::fs::remove_file(script.with_extension("count"));
    let out = env
        .jobctl()
        .env("VISUAL", &script)
        .arg("--jobs-dir")
        .arg(&jobs)
        .args(["edit", "nightly"])
        .run_with_input(b"e\n");
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    assert_eq!(runs_of(&script).trim(), "2", "{}", out.describe());
    assert_contains(&out.stderr(), "nightly.toml:3:1: `comand`: unknown key");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);

    // Invalid, and no answer (standard input ends): discarded.
    std::fs::write(&file, VALID).unwrap();
    let script = editor(&env, &[invalid]);
    let _ = std::fs::remove_file(script.with_extension("count"));
    let out = env
        .jobctl()
        .env("EDITOR", &script)
        .arg("--jobs-dir")
        .arg(&jobs)
        .args(["edit", "nightly"])
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert_contains(&out.stderr(), "the changes were discarded");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), VALID);
    // No copy is left behind in the jobs folder.
    let left: Vec<_> = std::fs::read_dir(&jobs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["nightly.toml"], "{left:?}");

    // A new job with --create; unknown without it.
    let script = editor(&env, &[edited]);
    let _ = std::fs::remove_file(script.with_extension("count"));
    let out = env
        .jobctl()
        .env("EDITOR", &script)
        .arg("--jobs-dir")
        .arg(&jobs)
        .args(["edit", "fresh"])
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert_contains(&out.stderr(), "--create");
    let out = env
        .jobctl()
        .env("EDITOR", &script)
        .arg("--jobs-dir")
        .arg(&jobs)
        .args(["edit", "fresh", "--create"])
        .run();
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    assert_eq!(
        std::fs::read_to_string(jobs.join("fresh.toml")).unwrap(),
        edited
    );
}

/// A fresh host has no jobs folder: `validate` says how to start.
#[test]
fn a_missing_jobs_folder_says_how_to_start() {
    let env = TestEnv::new();
    let missing = env.path().join("jobs.d");
    let out = env
        .jobctl()
        .arg("--jobs-dir")
        .arg(&missing)
        .arg("validate")
        .run();
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    let err = out.stderr();
    assert_contains(
        &err,
        format!("the jobs folder {} does not exist", missing.display()),
    );
    assert_contains(&err, format!("mkdir -p {}", missing.display()));
    assert!(!err.contains("No such file or directory"), "{err}");
}

/// System mode without root: the lock cannot be taken, and the hint says
/// what to do.
#[test]
fn apply_without_root_says_run_as_root_or_use_user() {
    if !root_or_skip("runs jobctl as nobody") {
        return;
    }
    let env = TestEnv::new();
    env.write_job("nightly", VALID);
    let out = env
        .jobctl_as("nobody")
        .arg("--jobs-dir")
        .arg(env.jobs_dir())
        .arg("apply")
        .run();
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    assert_contains(&out.stderr(), "Hint: run as root, or use --user");
}
