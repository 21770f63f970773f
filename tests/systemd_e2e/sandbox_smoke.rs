//! The throwaway-systemd harness itself: it boots, runs commands, a transient
//! unit and root's user manager, shuts down, cleans up after a panic, and
//! leaves nothing on the host (the host's /tmp and /etc are untouched).
//! These cases boot sandboxes of their own: booting is what they test.
//!
//! Skips with a printed reason where a sandbox cannot run (not root, no
//! unshare); fails instead when JOBCTL_REQUIRE_ALL_TESTS=1 or CI=true.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jobctl_sandbox::{Options, Sandbox};

use super::{R, Scratch};

/// (size, mtime, mode) of every entry under `dir`, without following links.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, i64, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            out.insert(path.clone(), (meta.len(), meta.mtime(), meta.mode()));
            if meta.is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

pub fn sandbox_boots_runs_units_and_leaves_the_host_alone() -> R {
    if let Some(reason) = jobctl_sandbox::unsupported_reason() {
        return Ok(jobctl_sandbox::skip(&reason)?);
    }

    // Canaries on the host: a boot on the real root would empty /tmp.
    let canary_dir = PathBuf::from(format!("/tmp/jobctl-sandbox-canary-{}", std::process::id()));
    fs::create_dir_all(&canary_dir).unwrap();
    fs::write(canary_dir.join("canary"), "still here").unwrap();
    let etc_before = snapshot(Path::new("/etc"));
    let share = Scratch::new("sandbox-smoke-share");

    let sandbox = Sandbox::boot(Options::default().share(&*share)).expect("boot");
    let name = sandbox.name().to_string();
    let init_pid = sandbox.init_pid();
    let state_dir = sandbox.state_dir().to_path_buf();

    // systemd is PID 1 inside, and answers.
    assert_eq!(sandbox.sh("cat /proc/1/comm").unwrap().trim(), "systemd");
    let version = sandbox.run(&["systemctl", "--version"]).unwrap();
    assert!(version.status.success());
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("systemd 2"),
        "{version:?}"
    );
    let state = sandbox.sh("systemctl is-system-running || true").unwrap();
    assert!(matches!(state.trim(), "running" | "degraded"), "{state}");

    // A transient unit runs and writes through the shared folder.
    let out = share.join("from-unit");
    sandbox
        .sh(&format!(
            "systemd-run --wait --quiet --collect -p Type=oneshot \
             /bin/sh -c 'echo \"$INVOCATION_ID\" > {}'",
            out.display()
        ))
        .unwrap();
    let invocation = fs::read_to_string(&out).expect("the unit wrote through the share");
    assert_eq!(invocation.trim().len(), 32, "{invocation:?}");

    // Writes to / inside stay inside.
    sandbox
        .sh(
            "echo x > /tmp/jobctl-sandbox-probe && echo x > /etc/jobctl-sandbox-probe && \
             mkdir -p /etc/systemd/system/jobctl-probe.d",
        )
        .unwrap();
    assert!(!Path::new("/tmp/jobctl-sandbox-probe").exists());
    assert!(!Path::new("/etc/jobctl-sandbox-probe").exists());
    assert!(!Path::new("/etc/systemd/system/jobctl-probe.d").exists());
    // The sandbox's own /tmp was cleaned by its boot; the host's was not.
    assert!(
        sandbox
            .sh(&format!("test ! -e {}", canary_dir.display()))
            .is_ok()
    );
    assert!(canary_dir.join("canary").exists());

    // Root's per-user manager.
    sandbox.start_user_manager().unwrap();
    let user = sandbox
        .user_command("systemctl")
        .args(["--user", "is-system-running"])
        .output()
        .unwrap();
    let user_state = String::from_utf8_lossy(&user.stdout);
    assert!(
        matches!(user_state.trim(), "running" | "degraded"),
        "{user_state} {user:?}"
    );
    let run = sandbox
        .user_command("systemd-run")
        .args(["--user", "--wait", "--quiet", "/bin/true"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");

    sandbox.shutdown().expect("clean shutdown");

    // Gone, and nothing left behind.
    assert!(
        !Path::new(&format!("/proc/{init_pid}")).exists(),
        "init survived"
    );
    assert!(!state_dir.exists(), "state folder left behind");
    assert!(!Path::new("/.jobctl-sandbox").exists());
    assert_eq!(
        fs::read_to_string(canary_dir.join("canary")).unwrap(),
        "still here"
    );
    let etc_after = snapshot(Path::new("/etc"));
    let changed: Vec<_> = etc_before
        .iter()
        .filter(|(p, v)| etc_after.get(*p) != Some(*v))
        .map(|(p, _)| p)
        .chain(etc_after.keys().filter(|p| !etc_before.contains_key(*p)))
        .collect();
    assert!(changed.is_empty(), "the host's /etc changed: {changed:?}");
    let leftovers: Vec<_> = fs::read_dir("/sys/fs/cgroup/unified")
        .into_iter()
        .chain(fs::read_dir("/sys/fs/cgroup"))
        .flatten()
        .flatten()
        // Its own cgroup only: the suite's shared sandbox runs beside it.
        .filter(|e| {
            let entry = e.file_name().to_string_lossy().into_owned();
            entry == name || entry.ends_with(&format!(".{name}"))
        })
        .collect();
    assert!(leftovers.is_empty(), "cgroups left behind: {leftovers:?}");
    fs::remove_dir_all(&canary_dir).unwrap();
    Ok(())
}

pub fn a_panicking_owner_still_tears_the_sandbox_down() -> R {
    if let Some(reason) = jobctl_sandbox::unsupported_reason() {
        return Ok(jobctl_sandbox::skip(&reason)?);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    // The harness captures no output: keep the intended panic's message out
    // of the log (a failed boot is still reported, below).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(move || {
        let sandbox = Sandbox::boot(Options::default()).expect("boot");
        tx.send((sandbox.init_pid(), sandbox.state_dir().to_path_buf()))
            .unwrap();
        panic!("test body failed while holding the sandbox");
    });
    std::panic::set_hook(hook);
    let payload = result.expect_err("the owner panicked");
    let (pid, state_dir) = rx.recv_timeout(Duration::from_secs(1)).unwrap_or_else(|_| {
        let why = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or(payload.downcast_ref::<&str>().copied());
        panic!("the sandbox did not boot: {why:?}")
    });
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "init {pid} survived the panic"
    );
    assert!(!state_dir.exists());
    Ok(())
}
