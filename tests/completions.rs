//! Shell completion as people get it: the script `jobctl completions SHELL`
//! prints (what packaging/build-deb installs), loaded the way each shell
//! loads an installed completion, completing `jobctl ru<TAB>` and a job name
//! in a real interactive shell on a terminal (bash with bash-completion,
//! zsh with compinit; fish through its own `complete -C`).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{JOBCTL, TestEnv, tool_or_skip, wait_for};

/// A folder with `jobctl` (the test binary) in it, for `PATH`: the scripts
/// call `jobctl` back on every TAB.
fn bin_dir(env: &TestEnv) -> PathBuf {
    let bin = env.dir("path");
    let link = bin.join("jobctl");
    if !link.exists() {
        std::os::unix::fs::symlink(JOBCTL, &link).unwrap();
    }
    bin
}

/// Writes `jobctl completions SHELL` to `path`.
fn install_script(env: &TestEnv, shell: &str, path: &Path) {
    let out = env.run(["completions", shell]);
    assert!(out.status.success(), "{}", out.describe());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &out.stdout).unwrap();
}

/// Two jobs to complete.
fn jobs(env: &TestEnv) {
    env.write_job(
        "nightly-refresh",
        "command = [\"/bin/true\"]\nmanual = true\n",
    );
    env.write_job("backup", "command = [\"/bin/true\"]\nmanual = true\n");
}

/// An interactive shell on a terminal: `script(1)` (util-linux) gives it
/// a pseudo-terminal; what it prints is collected as it comes.
struct Terminal {
    child: Child,
    input: Option<ChildStdin>,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn start(env: &TestEnv, shell_command: &str, vars: &[(&str, &Path)]) -> Terminal {
        let mut cmd = env.command("script");
        cmd.args(["-q", "-e", "-c", shell_command, "/dev/null"])
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir(env).display()))
            .env("TERM", "dumb")
            .env("JOBCTL_JOBS_DIR", env.jobs_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in vars {
            cmd.env(name, value);
        }
        let mut child = cmd.spawn().expect("run script(1)");
        let screen = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let screen = Arc::clone(&screen);
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    screen.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Terminal {
            input: child.stdin.take(),
            child,
            screen,
        }
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    fn type_keys(&mut self, keys: &str) {
        let input = self.input.as_mut().unwrap();
        input.write_all(keys.as_bytes()).unwrap();
        input.flush().unwrap();
    }

    #[track_caller]
    fn wait_for(&self, text: &str) {
        let mut seen = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(text, Duration::from_secs(30), || {
                seen = self.screen();
                seen.contains(text)
            })
        }));
        assert!(
            found.is_ok(),
            "{text:?} never appeared on the terminal:\n{seen}"
        );
    }

    /// Types `line`, then TAB, then prints the words the line became:
    /// Ctrl-A goes back to its start, where `printf '[%s]\n' ` is put in
    /// front of the words, and Enter runs it. Returns nothing; the caller
    /// waits for the words it expects (`[run]`).
    fn complete(&mut self, line: &str) {
        self.type_keys(&format!("{line}\t"));
        // The TAB has been handled when the line is redrawn; the keys
        // below wait in the terminal until the shell reads them anyway.
        self.type_keys("\x01printf '[%s]\\n' \r");
    }

    fn exit(mut self) {
        self.type_keys("exit\r");
        drop(self.input.take());
        let mut exited = false;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for("the shell to exit", Duration::from_secs(30), || {
                exited = self.child.try_wait().unwrap().is_some();
                exited
            })
        }));
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!("the shell did not exit:\n{}", self.screen());
        }
    }
}

impl Drop for Terminal {
    /// A shell left behind by a failed test is ended (only the one this
    /// test started, by its process).
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn bash_completes_a_subcommand_and_a_job_name() {
    if !tool_or_skip("/usr/bin/bash", "the completion is tried in a real bash")
        || !tool_or_skip(
            "/usr/share/bash-completion/bash_completion",
            "bash-completion loads jobctl's script",
        )
        || !tool_or_skip("/usr/bin/script", "script(1) gives the shell a terminal")
    {
        return;
    }
    let env = TestEnv::new();
    jobs(&env);
    // bash-completion loads a command's completion the first time it is
    // completed, from the folders it searches (the package's is
    // /usr/share/bash-completion/completions; here, the user's own).
    let user_dir = env.dir("bash-completion");
    install_script(&env, "bash", &user_dir.join("completions/jobctl"));
    let rc = env.path().join("bashrc");
    std::fs::write(
        &rc,
        "PS1='READY> '\n. /usr/share/bash-completion/bash_completion\n",
    )
    .unwrap();
    let mut term = Terminal::start(
        &env,
        &format!("bash --noprofile --rcfile {} -i", rc.display()),
        &[("BASH_COMPLETION_USER_DIR", &user_dir)],
    );
    term.wait_for("READY> ");
    term.complete("jobctl ru");
    term.wait_for("[run]");
    term.complete("jobctl run ni");
    term.wait_for("[nightly-refresh]");
    // The job names of the folder --jobs-dir names on the line.
    let other = env.dir("other-jobs");
    std::fs::write(other.join("weekly-report.toml"), "").unwrap();
    term.complete(&format!("jobctl --jobs-dir {} status we", other.display()));
    term.wait_for("[weekly-report]");
    term.exit();
}

#[test]
fn zsh_completes_a_subcommand_and_a_job_name_from_fpath() {
    if !tool_or_skip("/usr/bin/zsh", "the completion is tried in a real zsh")
        || !tool_or_skip("/usr/bin/script", "script(1) gives the shell a terminal")
    {
        return;
    }
    let env = TestEnv::new();
    jobs(&env);
    // As installed: `_jobctl` in a folder of $fpath, autoloaded at the
    // first TAB (which must complete too).
    let functions = env.dir("zsh-functions");
    install_script(&env, "zsh", &functions.join("_jobctl"));
    let zdotdir = env.dir("zdotdir");
    std::fs::write(
        zdotdir.join(".zshrc"),
        format!(
            "fpath=({} $fpath)\nautoload -Uz compinit && compinit -u -d {}/zcompdump\nPS1='READY> '\n",
            functions.display(),
            env.path().display()
        ),
    )
    .unwrap();
    let mut term = Terminal::start(&env, "zsh -i", &[("ZDOTDIR", &zdotdir)]);
    term.wait_for("READY> ");
    term.complete("jobctl ru");
    term.wait_for("[run]");
    term.complete("jobctl logs ba");
    term.wait_for("[backup]");
    term.exit();
}

#[test]
fn fish_completes_a_subcommand_and_a_job_name() {
    if !tool_or_skip("/usr/bin/fish", "the completion is tried in a real fish") {
        return;
    }
    let env = TestEnv::new();
    jobs(&env);
    let dir = env.dir("fish-completions");
    install_script(&env, "fish", &dir.join("jobctl.fish"));
    let out = env
        .command("fish")
        .args(["--no-config", "-c"])
        .arg(format!(
            "set fish_complete_path {} $fish_complete_path; \
             complete -C 'jobctl ru'; complete -C 'jobctl enable nig'",
            dir.display()
        ))
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir(&env).display()))
        .env("JOBCTL_JOBS_DIR", env.jobs_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("run\t")) && lines.contains(&"nightly-refresh"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
