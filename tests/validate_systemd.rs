//! `jobctl validate` checks the `*_extra` directives of every job against
//! the systemd the jobs are meant for (`--systemd-version`, else the running
//! manager over D-Bus, else the installed `systemctl --version`), with the
//! file, line and column, and says where the version came from. `render`
//! refuses the same directives the same way. (`apply` asks the running
//! systemd: tests/systemd_e2e.rs.)

use std::path::Path;

use crate::support::{Run, TestEnv, installed_systemd_or_skip};

const ON_SUCCESS: &str =
    "command = [\"/bin/true\"]\nmanual = true\n[unit_extra]\nOnSuccess = \"x.service\"\n";
const OFFSET: &str =
    "command = [\"/bin/true\"]\ndaily = \"03:00\"\n[timer_extra]\nRandomizedOffsetSec = \"1h\"\n";

fn job(env: &TestEnv, name: &str, text: &str) -> String {
    env.write_job(name, text).display().to_string()
}

fn validate(env: &TestEnv, args: &[&str]) -> Run {
    env.run(
        ["--config", "/nonexistent/config.toml", "validate"]
            .iter()
            .chain(args),
    )
}

#[test]
fn an_explicit_target_is_named_as_such() {
    let env = TestEnv::new();
    let file = job(&env, "succeed", ON_SUCCESS);
    let out = validate(&env, &["--systemd-version", "248", &file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(
        err.contains(&format!(
            "error: {file}:4:1: `unit_extra.OnSuccess`: OnSuccess= needs systemd 249; the target is systemd 248 (--systemd-version)"
        )),
        "{}",
        out.describe()
    );
    assert!(!err.contains("this host"), "{}", out.describe());
    // The version that added it is enough.
    let out = validate(&env, &["--systemd-version", "249", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", out.describe());
    // The JSON report says what was checked against.
    let out = validate(&env, &["--systemd-version", "249", "--json", &file]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["systemd"]["version"], 249, "{report:#}");
    assert_eq!(report["systemd"]["source"], "flag", "{report:#}");
    // `render` refuses it the same way.
    let out = env.run([
        "--config",
        "/nonexistent/config.toml",
        "render",
        "--systemd-version",
        "248",
        &file,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(
        err.contains(&format!("{file}:4:1: `unit_extra.OnSuccess`"))
            && err.contains("the target is systemd 248 (--systemd-version)")
            && !err.contains("this host"),
        "{}",
        out.describe()
    );
}

#[test]
fn without_a_flag_the_systemd_of_this_host_decides() {
    let Some(installed) = installed_systemd_or_skip() else {
        return;
    };
    let env = TestEnv::new();
    let file = job(&env, "offset", OFFSET);
    let out = validate(&env, &[&file]);
    let err = String::from_utf8_lossy(&out.stderr);
    if installed >= 258 {
        assert_eq!(out.status.code(), Some(0), "{}", out.describe());
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    // Where systemd runs, its manager is asked; elsewhere (CI, containers)
    // the installed systemctl.
    let target = if Path::new("/run/systemd/system").exists() {
        format!("this host runs systemd {installed}")
    } else {
        format!("the installed systemd is {installed} (systemctl --version)")
    };
    assert!(
        err.contains(&format!(
            "error: {file}:4:1: `timer_extra.RandomizedOffsetSec`: RandomizedOffsetSec= needs systemd 258; {target}"
        )),
        "{}",
        out.describe()
    );
}
