//! In system mode, as root, jobctl refuses job files, jobs folders and
//! configuration files that anyone but root could change (sudo and cron
//! refuse their files the same way). These tests need root to create files
//! owned by other users; elsewhere they skip with a reason (and fail in CI).

mod support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use support::{TempDir, describe, is_root, jobctl, skip};

const JOB: &str = "command = [\"/bin/true\"]\ndaily = \"02:00\"\n";

fn jobs_dir() -> TempDir {
    let dir = TempDir::new("perm");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn write_job(dir: &Path, name: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, JOB).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
}

const NOBODY: u32 = 65534;

fn validate(dir: &Path, extra: &[&str]) -> std::process::Output {
    let home = TempDir::new("perm-home");
    jobctl(home.path())
        .args(["--config", "/nonexistent/config.toml"])
        .args(extra)
        .arg("--jobs-dir")
        .arg(dir)
        .arg("validate")
        .output()
        .unwrap()
}

#[test]
fn safe_files_pass() {
    if !is_root() {
        return skip("needs root to check ownership rules");
    }
    let dir = jobs_dir();
    write_job(dir.path(), "ok.toml", 0o644);
    let output = validate(dir.path(), &[]);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn world_and_group_writable_job_files_are_refused() {
    if !is_root() {
        return skip("needs root to check ownership rules");
    }
    let dir = jobs_dir();
    let world = write_job(dir.path(), "world.toml", 0o666);
    let group = write_job(dir.path(), "group.toml", 0o664);
    let output = validate(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = support::stderr_then_stdout(&output);
    assert!(
        stdout.contains(&format!(
            "error: {}: refusing an unsafe file: mode 0666 lets its group and everyone change it; a user who can change it could run commands as root\n  hint: run: chown root: {0} && chmod go-w {0}",
            world.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "error: {}: refusing an unsafe file: mode 0664 lets its group change it;",
            group.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("checked 2 job files: 0 valid, 2 invalid (2 errors, 0 warnings)\n"),
        "{stdout}"
    );
}

#[test]
fn files_owned_by_another_user_are_refused() {
    if !is_root() {
        return skip("needs root to create files owned by another user");
    }
    let dir = jobs_dir();
    let theirs = write_job(dir.path(), "theirs.toml", 0o644);
    chown(&theirs, NOBODY);
    let output = validate(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = support::stderr_then_stdout(&output);
    assert!(
        stdout.contains(&format!(
            "error: {}: refusing an unsafe file: owned by uid {NOBODY}, not root",
            theirs.display()
        )),
        "{stdout}"
    );
}

#[test]
fn a_link_to_a_user_writable_file_is_refused() {
    if !is_root() {
        return skip("needs root to create files owned by another user");
    }
    let dir = jobs_dir();
    let elsewhere = TempDir::new("perm-target");
    let target = write_job(elsewhere.path(), "target.toml", 0o644);
    chown(&target, NOBODY);
    symlink(&target, dir.path().join("linked.toml")).unwrap();
    let output = validate(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = support::stderr_then_stdout(&output);
    assert!(
        stdout.contains("(the target of the link), not root"),
        "{stdout}"
    );
}

#[test]
fn a_writable_jobs_folder_is_refused() {
    if !is_root() {
        return skip("needs root to check ownership rules");
    }
    let dir = jobs_dir();
    write_job(dir.path(), "ok.toml", 0o644);
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let output = validate(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stdout = support::stderr_then_stdout(&output);
    assert!(
        stdout.contains(&format!(
            "error: {}: refusing an unsafe file: mode 0777",
            dir.path().display()
        )),
        "{stdout}"
    );
}

#[test]
fn an_unsafe_configuration_is_refused() {
    if !is_root() {
        return skip("needs root to check ownership rules");
    }
    let dir = jobs_dir();
    write_job(dir.path(), "ok.toml", 0o644);
    let config = dir.path().join("config.conf");
    fs::write(&config, "").unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o646)).unwrap();
    let home = TempDir::new("perm-home");
    let output = jobctl(home.path())
        .arg("--config")
        .arg(&config)
        .arg("--jobs-dir")
        .arg(dir.path())
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(support::stderr_then_stdout(&output).contains("mode 0646 lets everyone change it"));
}

#[test]
fn per_user_mode_does_not_require_root_ownership() {
    if !is_root() {
        return skip("needs root to create files owned by another user");
    }
    let dir = jobs_dir();
    let theirs = write_job(dir.path(), "theirs.toml", 0o644);
    chown(&theirs, NOBODY);
    let output = validate(dir.path(), &["--user"]);
    assert!(output.status.success(), "{}", describe(&output));
}

#[test]
fn non_root_users_are_not_held_to_the_root_rules() {
    // Only root installs system units; for anyone else (a CI checkout, a
    // laptop) the check would protect nothing, so it does not apply.
    if !is_root() {
        return skip("needs root to run a command as another user");
    }
    let dir = jobs_dir();
    write_job(dir.path(), "world.toml", 0o666);
    let home = TempDir::new("perm-nobody");
    let bin = support::jobctl_bin();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(&bin)
        .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
        .arg(dir.path())
        .arg("validate")
        .env_clear()
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
}
