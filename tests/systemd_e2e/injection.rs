//! Unit injection is impossible: job files full of hostile values are
//! rendered by the real `jobctl generate`, installed into a real systemd (the
//! throwaway sandbox), started, and what each command actually received —
//! argv (the working directory among the shim's flags), environment, stdin —
//! is compared with what the job file said. Values jobctl cannot carry safely must be rejected by
//! `jobctl validate` instead.
//!
//! A POSIX shell script stands in for `jobctl exec` (it is written into
//! `ExecStart=` through `--jobctl-path`): it writes its argv and environment
//! NUL-separated, and its stdin, to files named after its `--job` argument.
//! The working directory is the shim's to enter (`--working-directory`), so
//! for those cases the argument must arrive intact; tests/systemd_e2e.rs runs
//! the real shim in such a directory.
//!
//! A case of the real-systemd suite: it installs its units into the shared
//! sandbox beside the suite's own, and removes them when done.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use jobctl_sandbox::Sandbox;

use super::{Env, JOBCTL, R, Scratch, UNIT_DIR, text as describe};

const RECORDER: &str = r#"#!/bin/sh
# Stand-in for `jobctl exec`: record exactly what systemd gave us.
job=unknown
prev=
for arg in "$@"; do
  [ "$prev" = --job ] && job=$arg
  prev=$arg
done
dir=/run/recorded/$job
mkdir -p "$dir"
printf '%s\0' "$0" "$@" > "$dir/argv"
env -0 > "$dir/environ"
cat > "$dir/stdin"
"#;

/// Values that try to escape their place in a unit file.
fn hostile_values() -> Vec<String> {
    let mut values: Vec<String> = [
        "plain",
        "",
        " leading and trailing ",
        "new\nline",
        "x\nEVIL=1",
        "carriage\rreturn",
        "semi;colon",
        ";",
        "\\;",
        "double\"quote",
        "\"",
        "single'quote",
        "back\\slash",
        "trailing\\",
        "trailing\\ ",
        "%n %i %% % %%%",
        "$HOME ${HOME} $$ $",
        "$USER",
        "-leading-dash",
        "@at",
        "+plus",
        "!bang",
        "!!double",
        ":colon",
        "tab\there",
        "bell\u{7}",
        "escape\u{1b}[31m",
        "del\u{7f}",
        "c1\u{85}control",
        "unicode é 🚀",
        "line\u{2028}separator",
        "[Service]\nExecStart=/bin/sh -c evil",
        "a\\\nb",
        "\\x41\\n\\u00e9",
        "nul\0byte",
        "=",
        "#not a comment",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    values.push("long-".repeat(6000));
    values
}

/// What a case expects.
enum Expect {
    Rejected,
    Runs(Observed),
}

/// What the command or the unit must show.
#[derive(Default)]
struct Observed {
    argv_tail: Option<Vec<String>>,
    env: Option<(String, String)>,
    description: Option<String>,
    cwd: Option<String>,
    stdin: Option<String>,
}

struct Case {
    name: String,
    toml: String,
    expect: Expect,
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn has_control(s: &str, allowed: &[char]) -> bool {
    s.chars().any(|c| c.is_control() && !allowed.contains(&c))
}

/// A plain value (description, path) is representable when it is one line
/// without control characters, without a trailing backslash and without
/// surrounding whitespace (systemd would strip it).
fn plain_ok(s: &str) -> bool {
    !has_control(s, &[]) && !s.trim_end().ends_with('\\') && s.trim() == s
}

fn corpus() -> Vec<Case> {
    const SCHEDULE: &str = "daily = \"03:00\"\n";
    // A job that runs /usr/bin/prog with `line` added to its file.
    let prog = |line: String| format!("command = [\"/usr/bin/prog\"]\n{SCHEDULE}{line}");
    let mut cases = Vec::new();
    for (i, v) in hostile_values().iter().enumerate() {
        let value = toml_string(v);
        // A case named `KIND-i`: validation accepts `toml` when `ok`, and
        // the command then shows `observed`; else validation rejects it.
        let mut case = |kind: &str, toml: String, ok: bool, observed: Observed| {
            cases.push(Case {
                name: format!("{kind}-{i}"),
                toml,
                expect: if ok {
                    Expect::Runs(observed)
                } else {
                    Expect::Rejected
                },
            });
        };
        let argv = |argv: &[&str]| Observed {
            argv_tail: Some(argv.iter().map(|a| a.to_string()).collect()),
            ..Observed::default()
        };
        // As a command argument: only NUL cannot be carried.
        case(
            "arg",
            format!("command = [\"/usr/bin/prog\", {value}, \"end\"]\n{SCHEDULE}"),
            !v.contains('\0'),
            argv(&["/usr/bin/prog", v, "end"]),
        );
        // As a shell script.
        case(
            "shell",
            format!("shell = {value}\n{SCHEDULE}"),
            !v.contains('\0') && !v.trim().is_empty(),
            argv(&["/bin/sh", "-c", v]),
        );
        // As an environment value: systemd allows tabs and newlines only.
        case(
            "env",
            prog(format!("environment = {{ VALUE = {value} }}\n")),
            !has_control(v, &['\t', '\n']) && v.len() <= 32 * 1024 - 6,
            Observed {
                env: Some(("VALUE".into(), v.clone())),
                ..Observed::default()
            },
        );
        // As the description.
        case(
            "desc",
            prog(format!("description = {value}\n")),
            plain_ok(v) && v.len() <= 4096,
            Observed {
                description: Some(v.clone()),
                ..Observed::default()
            },
        );
        // As stdin: any text but NUL arrives byte for byte.
        case(
            "stdin",
            prog(format!("stdin = {value}\n")),
            !v.contains('\0'),
            Observed {
                stdin: Some(v.clone()),
                ..Observed::default()
            },
        );
        // As part of the working directory.
        if !v.is_empty() && !v.contains('/') && v.len() < 200 {
            let path = format!("/srv/injection/{v}");
            case(
                "cwd",
                prog(format!("working_directory = {}\n", toml_string(&path))),
                plain_ok(&path) && !matches!(v.as_str(), "." | ".."),
                Observed {
                    cwd: Some(path),
                    ..Observed::default()
                },
            );
        }
        // As a raw directive in the escape hatch: may not break the line.
        case(
            "extra",
            prog(format!("[unit_extra]\nX-Probe = {value}\n")),
            !has_control(v, &[]) && !v.trim_end().ends_with('\\') && v.len() <= 32 * 1024,
            Observed::default(),
        );
    }
    cases
}

fn read_nul_separated(bytes: &[u8]) -> Vec<String> {
    let mut items: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    if items.last().is_some_and(String::is_empty) {
        items.pop();
    }
    items
}

fn cat(sandbox: &Sandbox, path: &str) -> Vec<u8> {
    let output = sandbox.run(&["cat", path]).expect("cat in the sandbox");
    assert!(output.status.success(), "cat {path}: {}", describe(&output));
    output.stdout
}

pub fn hostile_values_reach_the_command_exactly_or_are_rejected(env: &Env) -> R {
    let sandbox = &env.sb;
    // Under the target folder, which the sandbox shares.
    let share = Scratch::new("injection");
    fs::create_dir_all(share.join("units")).unwrap();
    let recorder = share.join("recorder.sh");
    fs::write(&recorder, RECORDER).unwrap();
    fs::set_permissions(&recorder, fs::Permissions::from_mode(0o755)).unwrap();

    // Write the corpus and let `jobctl validate` judge every file.
    let jobs = share.join("jobs");
    fs::create_dir(&jobs).unwrap();
    let cases = corpus();
    for case in &cases {
        fs::write(jobs.join(format!("{}.toml", case.name)), &case.toml).unwrap();
    }
    let output = sandbox
        .command(JOBCTL)
        .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
        .arg(&jobs)
        .args(["validate", "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("{}", describe(&output)));
    let rejected: BTreeSet<String> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            Path::new(d["file"].as_str().unwrap())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let expected_rejected: BTreeSet<String> = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Rejected))
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(
        rejected, expected_rejected,
        "validation must reject exactly the unrepresentable values"
    );
    for name in &rejected {
        fs::remove_file(jobs.join(format!("{name}.toml"))).unwrap();
    }

    let output = sandbox
        .command(JOBCTL)
        .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
        .arg(&jobs)
        .args(["generate", "--out"])
        .arg(share.join("units"))
        .arg("--jobctl-path")
        .arg(&recorder)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));

    let running: Vec<&Case> = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Runs(_)))
        .collect();
    let units: Vec<String> = fs::read_dir(share.join("units"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let install = format!(
        "cp {}/units/* {UNIT_DIR}/ && systemctl daemon-reload",
        share.display()
    );
    sandbox.sh(&install).expect("install the units");
    let result = check_runs(sandbox, &running, &units);
    // Leave the shared sandbox as it was.
    let uninstall = format!(
        "cd {UNIT_DIR} && rm -f -- {} && systemctl daemon-reload",
        units.join(" ")
    );
    sandbox.sh(&uninstall).expect("remove the units");
    result?;
    eprintln!(
        "{} cases ran on systemd, {} were rejected by validation",
        running.len(),
        rejected.len()
    );
    Ok(())
}

/// Starts the services of the cases that run, and compares what each
/// command received with what its job file said.
fn check_runs(sandbox: &Sandbox, running: &[&Case], units: &[String]) -> R {
    // Nothing in the corpus may have produced a unit systemd objects to.
    let bad = sandbox
        .sh(&format!(
            "systemctl list-units --all --state=bad-setting,error,not-found --no-legend {} || true",
            units.join(" ")
        ))
        .unwrap();
    assert!(bad.trim().is_empty(), "units that failed to load:\n{bad}");

    let services: Vec<String> = running
        .iter()
        .map(|c| format!("jobctl-{}.service", c.name))
        .collect();
    for chunk in services.chunks(64) {
        let mut argv = vec!["systemctl", "start"];
        argv.extend(chunk.iter().map(String::as_str));
        let started = sandbox.run(&argv).unwrap();
        assert!(started.status.success(), "{}", describe(&started));
    }

    let mut failures = Vec::new();
    for case in running {
        let Expect::Runs(observed) = &case.expect else {
            unreachable!()
        };
        let dir = format!("/run/recorded/{}", case.name);
        let argv = read_nul_separated(&cat(sandbox, &format!("{dir}/argv")));
        let separator = argv.iter().position(|a| a == "--");
        // The shim's own flags arrive as single words too.
        if argv.get(1..4) != Some(&["exec".to_string(), "--job".to_string(), case.name.clone()][..])
        {
            failures.push(format!("{}: flags before the command: {argv:?}", case.name));
        }
        if let Some(tail) = &observed.argv_tail {
            let actual = separator.map(|s| argv[s + 1..].to_vec());
            if actual.as_ref() != Some(tail) {
                failures.push(format!("{}: argv {actual:?}, expected {tail:?}", case.name));
            }
        }
        let environ: BTreeMap<String, String> =
            read_nul_separated(&cat(sandbox, &format!("{dir}/environ")))
                .into_iter()
                .filter_map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
        if environ.contains_key("EVIL") {
            failures.push(format!(
                "{}: a variable was injected: {environ:?}",
                case.name
            ));
        }
        if let Some((key, value)) = &observed.env
            && environ.get(key) != Some(value)
        {
            failures.push(format!(
                "{}: {key}={:?}, expected {value:?}",
                case.name,
                environ.get(key)
            ));
        }
        if let Some(path) = &observed.cwd {
            // The shim enters the working directory itself: the path must
            // arrive intact as the word after `--working-directory`, before
            // the command's own words.
            let flags = &argv[..separator.unwrap_or(argv.len())];
            let given = flags
                .iter()
                .position(|a| a == "--working-directory")
                .and_then(|i| flags.get(i + 1));
            if given != Some(path) {
                failures.push(format!(
                    "{}: --working-directory {given:?}, expected {path:?}",
                    case.name
                ));
            }
        }
        if let Some(text) = &observed.stdin {
            let stdin =
                String::from_utf8_lossy(&cat(sandbox, &format!("{dir}/stdin"))).into_owned();
            if &stdin != text {
                failures.push(format!("{}: stdin {stdin:?}, expected {text:?}", case.name));
            }
        }
        if let Some(description) = &observed.description {
            let unit = format!("jobctl-{}.service", case.name);
            let shown = sandbox
                .run(&[
                    "systemctl",
                    "show",
                    "--property=Description",
                    "--value",
                    &unit,
                ])
                .unwrap();
            let shown = String::from_utf8_lossy(&shown.stdout)
                .trim_end_matches('\n')
                .to_string();
            // An empty Description= makes systemd fall back to the unit name.
            let expected = if description.is_empty() {
                unit.clone()
            } else {
                description.clone()
            };
            if shown != expected {
                failures.push(format!(
                    "{}: Description {shown:?}, expected {expected:?}",
                    case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        running.len(),
        failures.join("\n")
    );
    Ok(())
}
