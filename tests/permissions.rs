//! In system mode, as root, jobctl refuses job files, jobs folders and
//! configuration files that anyone but root could change (sudo and cron
//! refuse their files the same way). These tests need root to create files
//! owned by other users; elsewhere they skip with a reason (and fail in CI).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use crate::support::{Run, RunExt as _, TestEnv, assert_ends_with, root_or_skip};

const JOB: &str = "command = [\"/bin/true\"]\ndaily = \"02:00\"\n";

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

/// A fresh environment and its jobs folder, when the test runs as root
/// (else it is skipped, saying `why` it needs root).
fn as_root(why: &str) -> Option<(TestEnv, PathBuf)> {
    root_or_skip(why).then(|| {
        let env = TestEnv::new();
        let dir = env.jobs_dir();
        (env, dir)
    })
}

/// `jobctl validate` of the environment's jobs folder, as root.
fn validate(env: &TestEnv, extra: &[&str]) -> Run {
    validate_with(env, Path::new(NO_CONFIG), extra)
}

fn validate_with(env: &TestEnv, config: &Path, extra: &[&str]) -> Run {
    env.jobctl()
        .arg("--config")
        .arg(config)
        .args(extra)
        .arg("--jobs-dir")
        .arg(env.jobs_dir())
        .arg("validate")
        .run()
}

/// What `validate` with the configuration `config` said, which must have
/// refused something (exit status 2).
fn refusal(env: &TestEnv, config: &Path) -> String {
    let output = validate_with(env, config, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    output.stderr_then_stdout()
}

/// Checks that `validate` refused `file` ("error: FILE: refusing an unsafe
/// file: WHY…"); returns everything it said.
fn assert_refused(env: &TestEnv, file: &Path, why: &str) -> String {
    let said = refusal(env, Path::new(NO_CONFIG));
    let expected = format!("error: {}: refusing an unsafe file: {why}", file.display());
    assert!(said.contains(&expected), "{expected:?} not in:\n{said}");
    said
}

const NO_CONFIG: &str = "/nonexistent/config.toml";

#[test]
fn safe_files_pass() {
    let Some((env, dir)) = as_root("to check ownership rules") else {
        return;
    };
    write_job(&dir, "ok.toml", 0o644);
    let output = validate(&env, &[]);
    assert!(output.status.success(), "{}", output.describe());
}

#[test]
fn world_and_group_writable_job_files_are_refused() {
    let Some((env, dir)) = as_root("to check ownership rules") else {
        return;
    };
    let world = write_job(&dir, "world.toml", 0o666);
    let group = write_job(&dir, "group.toml", 0o664);
    assert_refused(
        &env,
        &world,
        &format!(
            "mode 0666 lets its group and everyone change it; a user who can change it could run commands as root\n  hint: run: chown root: {0} && chmod go-w {0}",
            world.display()
        ),
    );
    let stdout = assert_refused(&env, &group, "mode 0664 lets its group change it;");
    assert_ends_with(
        &stdout,
        "checked 2 job files: 0 valid, 2 invalid (2 errors, 0 warnings)\n",
    );
}

/// An environment whose jobs folder holds `theirs.toml`, owned by nobody.
fn with_nobodys_job_file() -> Option<(TestEnv, PathBuf)> {
    let (env, dir) = as_root("to create files owned by another user")?;
    let theirs = write_job(&dir, "theirs.toml", 0o644);
    chown(&theirs, NOBODY);
    Some((env, theirs))
}

#[test]
fn files_owned_by_another_user_are_refused() {
    let Some((env, theirs)) = with_nobodys_job_file() else {
        return;
    };
    assert_refused(&env, &theirs, &format!("owned by uid {NOBODY}, not root"));
}

#[test]
fn a_link_to_a_user_writable_file_is_refused() {
    let Some((env, dir)) = as_root("to create files owned by another user") else {
        return;
    };
    let target = write_job(&env.dir("elsewhere"), "target.toml", 0o644);
    chown(&target, NOBODY);
    let link = dir.join("linked.toml");
    symlink(&target, &link).unwrap();
    assert_refused(
        &env,
        &link,
        &format!("owned by uid {NOBODY} (the target of the link), not root"),
    );
}

#[test]
fn a_writable_jobs_folder_is_refused() {
    let Some((env, dir)) = as_root("to check ownership rules") else {
        return;
    };
    write_job(&dir, "ok.toml", 0o644);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert_refused(&env, &dir, "mode 0777");
}

#[test]
fn an_unsafe_configuration_is_refused() {
    let Some((env, dir)) = as_root("to check ownership rules") else {
        return;
    };
    write_job(&dir, "ok.toml", 0o644);
    let config = dir.join("config.conf");
    fs::write(&config, "").unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o646)).unwrap();
    assert!(refusal(&env, &config).contains("mode 0646 lets everyone change it"));
}

#[test]
fn per_user_mode_does_not_require_root_ownership() {
    let Some((env, _)) = with_nobodys_job_file() else {
        return;
    };
    let output = validate(&env, &["--user"]);
    assert!(output.status.success(), "{}", output.describe());
}

#[test]
fn non_root_users_are_not_held_to_the_root_rules() {
    // Only root installs system units; for anyone else (a CI checkout, a
    // laptop) the check would protect nothing, so it does not apply.
    let Some((env, dir)) = as_root("to run a command as another user") else {
        return;
    };
    write_job(&dir, "world.toml", 0o666);
    let output = env
        .jobctl_as("nobody")
        .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
        .arg(&dir)
        .arg("validate")
        .run();
    assert!(output.status.success(), "{}", output.describe());
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

/// [`as_root`], with a [`SafeDir`] for environment files.
fn with_safe_dir(label: &str) -> Option<(TestEnv, PathBuf, SafeDir)> {
    let (env, dir) = as_root("to check ownership rules")?;
    Some((env, dir, SafeDir::new(label)))
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
    let Some((env, dir, safe)) = with_safe_dir("envfile") else {
        return;
    };
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

    let d = &dir;
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

    let all = refusal(&env, Path::new(NO_CONFIG));
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
    assert_ends_with(
        &all,
        "checked 11 job files: 4 valid, 7 invalid (7 errors, 0 warnings)\n",
    );
    // Per-user jobs are the user's own business.
    let output = validate(&env, &["--user"]);
    assert!(
        !output
            .stderr_then_stdout()
            .contains("unsafe environment file")
    );
}

/// An unsafe file named by the configuration's `[defaults]` is refused for
/// every root job that inherits it, and the message says where it came from.
#[test]
fn an_unsafe_environment_file_from_the_defaults_is_refused() {
    let Some((env, dir, safe)) = with_safe_dir("envdefaults") else {
        return;
    };
    let world = env_file(safe.path(), "world.env", 0o666);
    let config = safe.path().join("config.toml");
    fs::write(
        &config,
        format!("[defaults]\nenvironment_file = \"{}\"\n", world.display()),
    )
    .unwrap();
    write_job(&dir, "inherits.toml", 0o644);
    let all = refusal(&env, &config);
    assert!(
        all.contains(&format!(
            "error: {}/inherits.toml: `environment_file`: refusing an unsafe environment file {} (from the configuration's [defaults]): ",
            dir.display(),
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
    if !root_or_skip("needs root to check ownership rules") {
        return;
    }
    let env = TestEnv::new();
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
    let output = env
        .jobctl()
        .current_dir(safe.path())
        .args([
            "--config",
            "/nonexistent/config.toml",
            "--jobs-dir",
            "jobs.d",
            "validate",
        ])
        .run();
    assert_eq!(output.status.code(), Some(2), "{}", output.describe());
    let all = output.stderr_then_stdout();
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
