//! `jobctl validate` checks the `*_extra` directives of every job against
//! the systemd the jobs are meant for (`--systemd-version`, else the running
//! manager over D-Bus, else the installed `systemctl --version`), with the
//! file, line and column, and says where the version came from. `render`
//! refuses the same directives the same way. (`apply` asks the running
//! systemd: tests/systemd_e2e.rs.)

mod support;

use std::path::Path;
use std::process::Command;

use support::{TempDir, describe, jobctl, skip};

const ON_SUCCESS: &str =
    "command = [\"/bin/true\"]\nmanual = true\n[unit_extra]\nOnSuccess = \"x.service\"\n";
const OFFSET: &str =
    "command = [\"/bin/true\"]\ndaily = \"03:00\"\n[timer_extra]\nRandomizedOffsetSec = \"1h\"\n";

fn job(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn validate(home: &Path, args: &[&str]) -> std::process::Output {
    jobctl(home)
        .args(["--config", "/nonexistent/config.toml", "validate"])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn an_explicit_target_is_named_as_such() {
    let home = TempDir::new("versions-flag");
    let file = job(home.path(), "succeed", ON_SUCCESS);
    let out = validate(home.path(), &["--systemd-version", "248", &file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        err.contains(&format!(
            "error: {file}:4:1: `unit_extra.OnSuccess`: OnSuccess= needs systemd 249; the target is systemd 248 (--systemd-version)"
        )),
        "{}",
        describe(&out)
    );
    assert!(!err.contains("this host"), "{}", describe(&out));
    // The version that added it is enough.
    let out = validate(home.path(), &["--systemd-version", "249", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // The JSON report says what was checked against.
    let out = validate(home.path(), &["--systemd-version", "249", "--json", &file]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["systemd"]["version"], 249, "{report:#}");
    assert_eq!(report["systemd"]["source"], "flag", "{report:#}");
    // `render` refuses it the same way.
    let out = jobctl(home.path())
        .args(["--config", "/nonexistent/config.toml", "render"])
        .args(["--systemd-version", "248", &file])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        err.contains(&format!("{file}:4:1: `unit_extra.OnSuccess`"))
            && err.contains("the target is systemd 248 (--systemd-version)")
            && !err.contains("this host"),
        "{}",
        describe(&out)
    );
}

/// The major version `systemctl --version` prints first ("systemd 252 (…)").
fn installed_version() -> Option<u32> {
    let out = Command::new("systemctl").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn without_a_flag_the_systemd_of_this_host_decides() {
    let Some(installed) = installed_version() else {
        skip("systemctl is not installed");
        return;
    };
    let home = TempDir::new("versions-host");
    let file = job(home.path(), "offset", OFFSET);
    let out = validate(home.path(), &[&file]);
    let err = String::from_utf8_lossy(&out.stderr);
    if installed >= 258 {
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
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
        describe(&out)
    );
}
