//! The Debian package: built by packaging/build-deb from the test binary,
//! with the expected files and modes, shipped units that pass
//! `systemd-analyze verify`, and a real install with dpkg inside the
//! throwaway systemd (which enables the history-pruning timer and gives a
//! working /usr/bin/jobctl). The install boots a sandbox of its own: dpkg
//! changes the sandbox's root for good (its database, and a purge removes
//! /var/lib/jobctl), which the shared one must not see.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use jobctl_sandbox::{Options, skip};

use super::{JOBCTL, R, Scratch, text as describe};

/// The link `systemctl --global enable` makes for the per-user pruning timer.
const USER_WANTS: &str = "/etc/systemd/user/timers.target.wants/jobctl-history-prune.timer";

fn build_deb(out: &std::path::Path) -> PathBuf {
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/build-deb"))
        .arg("--binary")
        .arg(JOBCTL)
        .arg("--web-binary")
        .arg(crate::web::web_binary().expect("jobctl-web"))
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn the_package_holds_the_binary_units_config_and_docs() -> R {
    if !have("dpkg-deb") {
        return Ok(skip("dpkg-deb is not installed")?);
    }
    let out = Scratch::new("deb");
    let deb = build_deb(&out);
    let listing = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&deb)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for (mode, path) in [
        ("drwxr-xr-x", "./"),
        ("-rwxr-xr-x", "./usr/bin/jobctl"),
        // The dashboard (crates/jobctl-web), its units and its page.
        ("-rwxr-xr-x", "./usr/bin/jobctl-web"),
        ("-rw-r--r--", "./lib/systemd/system/jobctl-web.socket"),
        ("-rw-r--r--", "./lib/systemd/system/jobctl-web.service"),
        ("-rw-r--r--", "./usr/lib/systemd/user/jobctl-web.socket"),
        ("-rw-r--r--", "./usr/lib/systemd/user/jobctl-web.service"),
        ("-rw-r--r--", "./usr/share/man/man1/jobctl-web.1.gz"),
        (
            "-rw-r--r--",
            "./lib/systemd/system/jobctl-history-prune.service",
        ),
        (
            "-rw-r--r--",
            "./lib/systemd/system/jobctl-history-prune.timer",
        ),
        (
            "-rw-r--r--",
            "./usr/lib/systemd/user/jobctl-history-prune.timer",
        ),
        ("-rw-r--r--", "./lib/systemd/system/jobctl-watch.service"),
        ("-rw-r--r--", "./lib/systemd/system/jobctl-watch.timer"),
        ("-rw-r--r--", "./lib/systemd/system/jobctl-watch.socket"),
        ("-rw-r--r--", "./usr/lib/systemd/user/jobctl-watch.service"),
        ("-rw-r--r--", "./usr/lib/systemd/user/jobctl-watch.timer"),
        ("-rw-r--r--", "./usr/lib/systemd/user/jobctl-watch.socket"),
        ("-rw-r--r--", "./usr/lib/tmpfiles.d/jobctl.conf"),
        ("-rw-r--r--", "./etc/jobctl/config.toml"),
        ("drwxr-xr-x", "./etc/jobctl/jobs.d/"),
        ("-rw-r--r--", "./usr/share/doc/jobctl/job-file.md"),
        (
            "-rw-r--r--",
            "./usr/share/doc/jobctl/examples/disk-report.toml",
        ),
        // Prometheus rules and the Grafana dashboard (docs/metrics.md).
        (
            "-rw-r--r--",
            "./usr/share/jobctl/prometheus/jobctl.rules.yml",
        ),
        (
            "-rw-r--r--",
            "./usr/share/jobctl/prometheus/jobctl.rules.test.yml",
        ),
        (
            "-rw-r--r--",
            "./usr/share/jobctl/prometheus/jobctl.grafana.json",
        ),
        // Debian policy 12.5 and 12.7.
        ("-rw-r--r--", "./usr/share/doc/jobctl/copyright"),
        ("-rw-r--r--", "./usr/share/doc/jobctl/changelog.gz"),
        // Man pages (crates/jobctl/manual), compressed.
        ("-rw-r--r--", "./usr/share/man/man1/jobctl.1.gz"),
        ("-rw-r--r--", "./usr/share/man/man1/jobctl-run.1.gz"),
        (
            "-rw-r--r--",
            "./usr/share/man/man1/jobctl-history-prune.1.gz",
        ),
        ("-rw-r--r--", "./usr/share/man/man5/jobctl.toml.5.gz"),
        ("-rw-r--r--", "./usr/share/man/man5/jobctl-config.toml.5.gz"),
        // Completion, where each shell looks for installed packages'.
        (
            "-rw-r--r--",
            "./usr/share/bash-completion/completions/jobctl",
        ),
        ("-rw-r--r--", "./usr/share/zsh/vendor-completions/_jobctl"),
        (
            "-rw-r--r--",
            "./usr/share/fish/vendor_completions.d/jobctl.fish",
        ),
    ] {
        assert!(
            listing.lines().any(|l| l.starts_with(mode)
                && l.contains(" root/root ")
                && l.ends_with(&format!(" {path}"))),
            "{mode} root/root {path} not in the package:\n{listing}"
        );
    }
    let control = Command::new("dpkg-deb")
        .arg("--field")
        .arg(&deb)
        .arg("Package")
        .arg("Depends")
        .output()
        .unwrap();
    let control = String::from_utf8_lossy(&control.stdout);
    assert!(
        control.contains("Package: jobctl")
            && control.contains("systemd (>= 247)")
            // deb-systemd-invoke --user (the maintainer scripts) came in 1.61.
            && control.contains("init-system-helpers (>= 1.61)"),
        "{control}"
    );
    Ok(())
}

pub fn shipped_units_pass_verify() -> R {
    if !have("systemd-analyze") {
        return Ok(skip("systemd-analyze is not installed")?);
    }
    // verify needs ExecStart='s program to exist: point the units at the test binary.
    let web = crate::web::web_binary()?;
    for (mode, dirs) in [
        ("system", ["units/system", "units/web/system"]),
        ("user", ["units/user", "units/web/user"]),
    ] {
        let tmp = Scratch::new("units");
        let runtime = Scratch::new("units-runtime");
        let mut files = Vec::new();
        let entries = dirs
            .iter()
            .flat_map(|dir| fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)).unwrap());
        for entry in entries {
            let path = entry.unwrap().path();
            let text = fs::read_to_string(&path)
                .unwrap()
                .replace("/usr/bin/jobctl-web", web.to_str().unwrap())
                .replace("/usr/bin/jobctl ", &format!("{JOBCTL} "));
            let copy = tmp.join(path.file_name().unwrap());
            fs::write(&copy, text).unwrap();
            files.push(copy);
        }
        let mut cmd = Command::new("systemd-analyze");
        if mode == "user" {
            cmd.arg("--user").env("XDG_RUNTIME_DIR", &*runtime);
        }
        let output = cmd
            .args(["verify", "--man=no"])
            .args(&files)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && text.trim().is_empty(),
            "{mode}: {}",
            describe(&output)
        );
    }
    Ok(())
}

pub fn the_package_installs_on_a_real_systemd() -> R {
    if !have("dpkg-deb") {
        return Ok(skip("dpkg-deb is not installed")?);
    }
    let share = Scratch::new("deb-install");
    let deb = build_deb(&share);
    let Some(sandbox) = jobctl_sandbox::boot_for_tests(Options::default().share(&*share)) else {
        return Ok(());
    };
    // A user who is logged in while the package is installed (root's own
    // manager here) gets the per-user pruning timer at once.
    sandbox.start_user_manager().unwrap();
    // This host is a container image whose /usr/sbin/policy-rc.d forbids
    // starting services (exit 101); the maintainer scripts honour it, as
    // Debian policy asks (deb-systemd-invoke). A real host has none: drop it
    // from the sandbox's overlay.
    sandbox.sh("rm -f /usr/sbin/policy-rc.d").unwrap();
    let dpkg = |args: &[&str]| {
        let out = sandbox.run(&[&["dpkg"], args].concat()).unwrap();
        assert!(out.status.success(), "dpkg {args:?}: {}", describe(&out));
    };
    let deb = deb.to_str().unwrap();
    dpkg(&["-i", deb]);
    let enabled = sandbox.sh("systemctl is-enabled jobctl-history-prune.timer; systemctl is-active jobctl-history-prune.timer").unwrap();
    assert_eq!(enabled.trim(), "enabled\nactive", "{enabled}");
    // The notification watch: its timer and its wake-up socket, system and
    // per-user; the socket listens where the shim sends.
    let watch = sandbox
        .sh(
            "systemctl is-enabled jobctl-watch.timer jobctl-watch.socket; \
             systemctl is-active jobctl-watch.timer jobctl-watch.socket; \
             stat -c '%a %F' /run/jobctl/watch.sock; \
             systemctl --global is-enabled jobctl-watch.timer jobctl-watch.socket; \
             systemctl --user --machine 0@ is-active jobctl-watch.timer jobctl-watch.socket",
        )
        .unwrap();
    assert_eq!(
        watch.trim(),
        "enabled\nenabled\nactive\nactive\n666 socket\nenabled\nenabled\nactive\nactive",
        "{watch}"
    );
    // The dashboard is installed but nothing of it is enabled or listening.
    let web = sandbox
        .sh("systemctl is-enabled jobctl-web.socket || true; \
             systemctl is-active jobctl-web.socket || true; \
             test -e /run/jobctl/web.sock && echo listening || echo quiet; \
             /usr/bin/jobctl-web --version")
        .unwrap();
    assert_eq!(
        web.trim(),
        format!(
            "disabled\ninactive\nquiet\njobctl-web {}",
            env!("CARGO_PKG_VERSION")
        ),
        "{web}"
    );
    // The installed watch makes a pass (nothing to watch yet) in its sandbox.
    let pass = sandbox
        .sh("systemctl start jobctl-watch.service && systemctl show -P Result jobctl-watch.service")
        .unwrap();
    assert_eq!(pass.trim(), "success", "{pass}");
    // The per-user timer is enabled for every user (`systemctl --global`):
    // the link every user manager reads, and the manager already running.
    let user = sandbox
        .sh(&format!(
            "readlink {USER_WANTS}; systemctl --global is-enabled jobctl-history-prune.timer; \
             systemctl --user --machine 0@ is-active jobctl-history-prune.timer"
        ))
        .unwrap();
    assert_eq!(
        user.trim(),
        "/usr/lib/systemd/user/jobctl-history-prune.timer\nenabled\nactive",
        "{user}"
    );
    let modes = sandbox
        .sh("stat -c '%a %U %n' /etc/jobctl /etc/jobctl/jobs.d /var/lib/jobctl")
        .unwrap();
    assert_eq!(
        modes.trim(),
        "755 root /etc/jobctl\n755 root /etc/jobctl/jobs.d\n755 root /var/lib/jobctl",
        "{modes}"
    );
    // The installed man pages and completion are found where man and
    // bash-completion look.
    let man = sandbox
        .sh("MANWIDTH=80 man -P cat jobctl.toml 2>&1 | col -b | grep -m1 'jobctl.toml -'; man -w jobctl-run")
        .unwrap();
    assert_eq!(
        man.trim(),
        "jobctl.toml - job files of jobctl, one job per file\n/usr/share/man/man1/jobctl-run.1.gz",
        "{man}"
    );
    let completion = sandbox
        .sh("bash -c '. /usr/share/bash-completion/bash_completion; _completion_loader jobctl; complete -p jobctl'")
        .unwrap();
    assert!(
        completion.contains("-F _clap_complete_jobctl jobctl"),
        "{completion}"
    );
    // The installed binary works with the shipped configuration.
    let validate = sandbox.sh("cp /usr/share/doc/jobctl/examples/disk-report.toml /etc/jobctl/jobs.d/ && /usr/bin/jobctl validate").unwrap();
    assert!(validate.contains("1 valid, 0 invalid"), "{validate}");
    // An upgrade keeps an operator's choice: a timer turned off stays off.
    sandbox
        .sh("systemctl disable --now jobctl-history-prune.timer 2>/dev/null")
        .unwrap();
    dpkg(&["-i", deb]);
    let kept = sandbox
        .sh("systemctl is-enabled jobctl-history-prune.timer || true; systemctl --global is-enabled jobctl-history-prune.timer")
        .unwrap();
    assert_eq!(kept.trim(), "disabled\nenabled", "{kept}");
    // Removing (not purging) stops the user timer of the running manager.
    dpkg(&["--remove", "jobctl"]);
    let stopped = sandbox
        .sh("systemctl --user --machine 0@ is-active jobctl-history-prune.timer || true")
        .unwrap();
    assert_eq!(stopped.trim(), "inactive", "{stopped}");
    dpkg(&["--purge", "jobctl"]);
    let gone = sandbox.sh("systemctl is-enabled jobctl-history-prune.timer 2>&1; test -e /var/lib/jobctl && echo still-there || echo purged").unwrap();
    assert!(
        gone.contains("purged") && !gone.starts_with("enabled"),
        "{gone}"
    );
    // Purged cleanly: no link, no mask, no record of either left behind, and
    // the running user manager no longer runs the timer.
    let leftovers = sandbox
        .sh(&format!(
            "for f in {USER_WANTS} /etc/systemd/user/jobctl-history-prune.timer \
               /etc/systemd/system/timers.target.wants/jobctl-history-prune.timer \
               /etc/systemd/system/jobctl-history-prune.timer \
               /etc/systemd/user/timers.target.wants/jobctl-watch.timer \
               /etc/systemd/user/sockets.target.wants/jobctl-watch.socket \
               /etc/systemd/system/timers.target.wants/jobctl-watch.timer \
               /etc/systemd/system/sockets.target.wants/jobctl-watch.socket \
               /etc/systemd/system/jobctl-watch.timer /etc/systemd/system/jobctl-watch.socket; do \
               if test -e \"$f\" || test -L \"$f\"; then echo \"left: $f\"; fi; done; \
             find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-user-helper-enabled \
               /var/lib/systemd/deb-systemd-helper-masked /var/lib/systemd/deb-systemd-user-helper-masked \
               -name '*jobctl*' 2>/dev/null | sed 's/^/left: /'; \
             systemctl --user --machine 0@ is-active jobctl-history-prune.timer || true"
        ))
        .unwrap();
    assert_eq!(leftovers.trim(), "inactive", "{leftovers}");
    let _ = sandbox.shutdown();
    Ok(())
}

/// lintian, Debian's package checker, finds nothing to say about the
/// package: no error, no warning, no note (`--info`), nothing pedantic.
///
/// Two notes (info level) are suppressed, each for a reason of its own:
/// `hardening-no-fortify-functions`, because the tests package the debug
/// build, whose bundled SQLite is compiled without optimisation, and
/// `_FORTIFY_SOURCE` needs optimisation (the release package does not get
/// it); `spelling-error-in-binary`, because lintian reads words across
/// string constants the compiler stores back to back and byte tables
/// (`thIk`, `ment`, `usera` from `--user` + `a Display …`), so which
/// "misspellings" it finds changes with every build.
pub fn lintian_accepts_the_package() -> R {
    if !have("lintian") {
        return Ok(skip("lintian is not installed")?);
    }
    let out = Scratch::new("deb-lintian");
    let deb = build_deb(&out);
    let output = Command::new("lintian")
        .args([
            "--info",
            "--display-info",
            "--pedantic",
            "--suppress-tags",
            "hardening-no-fortify-functions,spelling-error-in-binary",
        ])
        .arg(&deb)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let tags: Vec<&str> = said
        .lines()
        .filter(|l| {
            ["E: ", "W: ", "I: ", "P: ", "X: "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert!(
        output.status.success() && tags.is_empty(),
        "lintian (exit {:?}):\n{said}",
        output.status.code()
    );
    Ok(())
}
