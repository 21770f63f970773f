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

/// A folder under /run, whose parents are root's and not writable by others
/// (unlike /tmp), for files that must pass the rule.
struct SafeDir(std::path::PathBuf);

impl SafeDir {
    fn new(label: &str) -> SafeDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = Path::new("/run").join(format!(
            "jobctl-test-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        SafeDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SafeDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn env_file(dir: &Path, name: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, "LD_PRELOAD=/nonexistent/evil.so\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// A root job whose `environment_file` is `file` (and `extra` lines).
fn job_with_env_file(dir: &Path, name: &str, file: &str, extra: &str) {
    fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "command = [\"/bin/true\"]\ndaily = \"02:00\"\n{extra}environment_file = \"{file}\"\n"
        ),
    )
    .unwrap();
}

/// A root job's environment file decides what root runs (`LD_PRELOAD`,
/// `PATH`): it is held to the job files' rule, and so is every folder and
/// link on the way to it.
#[test]
fn a_root_jobs_environment_file_must_be_roots_alone() {
    if !is_root() {
        return skip("needs root to check ownership rules");
    }
    let safe = SafeDir::new("envfile");
    let good = env_file(safe.path(), "good.env", 0o600);
    let world = env_file(safe.path(), "world.env", 0o666);
    let theirs = env_file(safe.path(), "theirs.env", 0o600);
    chown(&theirs, NOBODY);
    let group_dir = safe.path().join("group-writable");
    fs::create_dir(&group_dir).unwrap();
    fs::set_permissions(&group_dir, fs::Permissions::from_mode(0o775)).unwrap();
    let in_group_dir = env_file(&group_dir, "app.env", 0o600);
    let user_dir = safe.path().join("nobodys");
    fs::create_dir(&user_dir).unwrap();
    chown(&user_dir, NOBODY);
    let in_user_dir = env_file(&user_dir, "app.env", 0o600);
    let their_link = safe.path().join("their-link.env");
    symlink(&good, &their_link).unwrap();
    chown(&their_link, NOBODY);
    let root_link = safe.path().join("root-link.env");
    symlink(&world, &root_link).unwrap();

    let dir = jobs_dir();
    let d = dir.path();
    let p = |path: &Path| path.display().to_string();
    job_with_env_file(d, "good", &p(&good), "");
    job_with_env_file(
        d,
        "optional-missing",
        &format!("-{}/missing.env", p(safe.path())),
        "",
    );
    job_with_env_file(d, "as-nobody", &p(&world), "user = \"nobody\"\n");
    job_with_env_file(d, "dynamic", &p(&world), "dynamic_user = true\n");
    job_with_env_file(d, "world", &p(&world), "");
    job_with_env_file(d, "theirs", &p(&theirs), "");
    job_with_env_file(d, "group-dir", &p(&in_group_dir), "");
    job_with_env_file(d, "user-dir", &p(&in_user_dir), "");
    job_with_env_file(d, "their-link", &p(&their_link), "");
    job_with_env_file(d, "root-link", &p(&root_link), "");
    job_with_env_file(
        d,
        "under-tmp",
        "-/tmp/jobctl-test-absent.env",
        "user = \"root\"\n",
    );

    let output = validate(d, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let all = support::stderr_then_stdout(&output);
    let error = |job: &str| -> String {
        let prefix = format!("error: {}/{job}.toml:", d.display());
        all.lines()
            .position(|l| l.starts_with(&prefix))
            .map(|i| {
                format!(
                    "{}\n{}",
                    all.lines().nth(i).unwrap(),
                    all.lines().nth(i + 1).unwrap_or("")
                )
            })
            .unwrap_or_default()
    };
    for ok in ["good", "optional-missing", "as-nobody", "dynamic"] {
        assert_eq!(error(ok), "", "{ok} must pass:\n{all}");
    }
    assert_eq!(
        error("world"),
        format!(
            "error: {d}/world.toml:3:20: `environment_file`: refusing an unsafe environment file {w}: {w} has mode 0666, which lets its group and everyone change it; a user who can change it could set LD_PRELOAD and run commands as root\n  hint: the file, every folder above it and every link on the way must be root's and writable only by root: chmod go-w {w}",
            d = d.display(),
            w = world.display()
        ),
        "{all}"
    );
    for (job, says) in [
        ("theirs", format!("{} is owned by uid {NOBODY}, not root", theirs.display())),
        (
            "group-dir",
            format!(
                "the folder {} has mode 0775, which lets its group replace what it holds",
                group_dir.display()
            ),
        ),
        (
            "user-dir",
            format!("the folder {} is owned by uid {NOBODY}, not root", user_dir.display()),
        ),
        (
            "their-link",
            format!("the link {} is owned by uid {NOBODY}, not root", their_link.display()),
        ),
        (
            "root-link",
            format!("{} has mode 0666", world.display()),
        ),
        (
            "under-tmp",
            "the folder /tmp has mode 1777, which lets its group and everyone replace what it holds; a user who can change it could set LD_PRELOAD and run commands as root\n  hint: the file, every folder above it and every link on the way must be root's and writable only by root: move the file out of /tmp".to_string(),
        ),
    ] {
        let error = error(job);
        assert!(
            error.contains("`environment_file`: refusing an unsafe environment file")
                && error.contains(&says),
            "{job}: expected {says:?} in\n{all}"
        );
    }
    assert!(
        all.ends_with("checked 11 job files: 4 valid, 7 invalid (7 errors, 0 warnings)\n"),
        "{all}"
    );
    // Per-user jobs are the user's own business.
    let output = validate(d, &["--user"]);
    assert!(!support::stderr_then_stdout(&output).contains("unsafe environment file"));
}

/// An unsafe file named by the configuration's `[defaults]` is refused for
/// every root job that inherits it, and the message says where it came from.
#[test]
fn an_unsafe_environment_file_from_the_defaults_is_refused() {
    if !is_root() {
        return skip("needs root to check ownership rules");
    }
    let safe = SafeDir::new("envdefaults");
    let world = env_file(safe.path(), "world.env", 0o666);
    let config = safe.path().join("config.toml");
    fs::write(
        &config,
        format!("[defaults]\nenvironment_file = \"{}\"\n", world.display()),
    )
    .unwrap();
    let dir = jobs_dir();
    write_job(dir.path(), "inherits.toml", 0o644);
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
    let all = support::stderr_then_stdout(&output);
    assert!(
        all.contains(&format!(
            "error: {}/inherits.toml: `environment_file`: refusing an unsafe environment file {} (from the configuration's [defaults]): ",
            dir.path().display(),
            world.display()
        )),
        "{all}"
    );
}

/// The fix printed for an unsafe job file works pasted anywhere (an
/// absolute path, even when `--jobs-dir` was relative) and never acts on
/// what a link points to: a link into another user's files gets a root
/// copy in its place, not `chown` of their file.
#[test]
fn job_file_fixes_are_absolute_and_never_follow_a_link() {
    if !is_root() {
        return skip("needs root to check ownership rules");
    }
    let safe = SafeDir::new("fixes");
    let jobs = safe.path().join("jobs.d");
    fs::create_dir(&jobs).unwrap();
    fs::set_permissions(&jobs, fs::Permissions::from_mode(0o755)).unwrap();
    let world = write_job(&jobs, "world.toml", 0o666);
    let theirs_dir = safe.path().join("nobodys");
    fs::create_dir(&theirs_dir).unwrap();
    let theirs = write_job(&theirs_dir, "theirs.toml", 0o644);
    chown(&theirs_dir, NOBODY);
    chown(&theirs, NOBODY);
    let link = jobs.join("linked.toml");
    symlink(&theirs, &link).unwrap();
    let home = TempDir::new("perm-home");
    let output = jobctl(home.path())
        .current_dir(safe.path())
        .args([
            "--config",
            "/nonexistent/config.toml",
            "--jobs-dir",
            "jobs.d",
            "validate",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let all = support::stderr_then_stdout(&output);
    let w = world.display();
    assert!(
        all.contains(&format!(
            "error: jobs.d/world.toml: refusing an unsafe file: mode 0666 lets its group and everyone change it; a user who can change it could run commands as root\n  hint: run: chown root: {w} && chmod go-w {w}"
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "  hint: replace the link with a copy only root can write: `install -m 0644 -o root -g root {} {}`",
            theirs.display(),
            link.display()
        )),
        "{all}"
    );
    assert!(
        !all.contains(&format!("chown root: {}", link.display())),
        "{all}"
    );
}
