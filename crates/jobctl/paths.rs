//! Where things live, in system mode and in per-user mode.
//!
//! | what         | system mode                 | per-user mode (`--user`)             |
//! |--------------|-----------------------------|--------------------------------------|
//! | job files    | /etc/jobctl/jobs.d          | $XDG_CONFIG_HOME/jobctl/jobs.d       |
//! | config       | /etc/jobctl/config.toml     | $XDG_CONFIG_HOME/jobctl/config.toml  |
//! | unit files   | /etc/systemd/system         | $XDG_CONFIG_HOME/systemd/user        |
//! | history      | /var/lib/jobctl/history.db  | $XDG_STATE_HOME/jobctl/history.db    |

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};

pub use jobctl_core::context::Mode;

use crate::cli::GlobalArgs;
use crate::env;

/// The resolved locations for one invocation.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Paths {
    pub mode: Mode,
    pub jobs_dir: PathBuf,
    pub unit_dir: PathBuf,
    pub config: PathBuf,
    pub state_dir: PathBuf,
}

impl Paths {
    pub fn resolve(global: &GlobalArgs) -> Result<Paths> {
        let mode = if global.user {
            Mode::User
        } else {
            Mode::System
        };
        let (config_base, unit_dir, state_dir) = match mode {
            Mode::System => (
                PathBuf::from("/etc/jobctl"),
                PathBuf::from("/etc/systemd/system"),
                PathBuf::from("/var/lib/jobctl"),
            ),
            Mode::User => {
                let config_home = xdg_dir(env::XDG_CONFIG_HOME, ".config")?;
                let state_home = xdg_dir(env::XDG_STATE_HOME, ".local/state")?;
                (
                    config_home.join("jobctl"),
                    config_home.join("systemd/user"),
                    state_home.join("jobctl"),
                )
            }
        };
        let default_jobs_dir = config_base.join("jobs.d");
        let default_config = config_base.join("config.toml");
        let paths = Paths {
            mode,
            jobs_dir: global
                .jobs_dir
                .clone()
                .unwrap_or_else(|| default_jobs_dir.clone()),
            unit_dir: global.unit_dir.clone().unwrap_or_else(|| unit_dir.clone()),
            config: global
                .config
                .clone()
                .unwrap_or_else(|| default_config.clone()),
            state_dir,
        };
        // What a command printed as a hint needs to reach the same jobs.
        let mut others = String::new();
        for (flag, value, default) in [
            ("--unit-dir", &paths.unit_dir, &unit_dir),
            ("--config", &paths.config, &default_config),
        ] {
            if value != default {
                others.push_str(&format!(" {flag} {}", shell_quote(absolute(value))));
            }
        }
        let hint = Hint {
            prefix: String::new(),
            mode,
            default_jobs_dir,
            others,
        };
        let prefix = hint.prefix_for(&paths.jobs_dir);
        let _ = HINT.set(Hint { prefix, ..hint });
        Ok(paths)
    }
}

impl Paths {
    /// These paths made absolute, for the commands that install jobs or
    /// compare them with what is installed: the job file's path is written
    /// into its units (`X-Jobctl-Source=`), so a relative `--jobs-dir`
    /// would make the same jobs look changed from another folder. (`validate`,
    /// `render` and `generate` keep paths as given: their output names files
    /// as the user did, and a package's units must not name the build tree.)
    pub fn absolute(&self) -> Paths {
        Paths {
            jobs_dir: absolute(&self.jobs_dir),
            unit_dir: absolute(&self.unit_dir),
            config: absolute(&self.config),
            ..self.clone()
        }
    }
}

/// How this invocation reached its jobs, for the commands its hints print.
struct Hint {
    /// `jobctl` with the options below and this invocation's jobs folder.
    prefix: String,
    mode: Mode,
    default_jobs_dir: PathBuf,
    /// `--unit-dir`, `--config` when not the defaults.
    others: String,
}

impl Hint {
    fn prefix_for(&self, jobs_dir: &Path) -> String {
        let mut prefix = String::from("jobctl");
        if self.mode == Mode::User {
            prefix.push_str(" --user");
        }
        if jobs_dir != self.default_jobs_dir {
            prefix.push_str(&format!(" --jobs-dir {}", shell_quote(absolute(jobs_dir))));
        }
        prefix.push_str(&self.others);
        prefix
    }
}

/// Like [`jobctl`], for the jobs in `jobs_dir` (e.g. files just imported).
pub fn jobctl_in(jobs_dir: &Path, args: &str) -> String {
    let prefix = HINT
        .get()
        .map_or_else(|| "jobctl".to_string(), |h| h.prefix_for(jobs_dir));
    format!("{prefix} {args}")
}

static HINT: OnceLock<Hint> = OnceLock::new();

/// `jobctl ARGS` as the user must type it to reach the jobs this command
/// reached: with `--user`, and with `--jobs-dir`, `--unit-dir` and
/// `--config` when they differ from the mode's defaults (a hint pasted into
/// a shell must work). `args` must already be shell-safe.
pub fn jobctl(args: &str) -> String {
    let prefix = HINT.get().map_or("jobctl", |h| h.prefix.as_str());
    if args.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {args}")
    }
}

/// `systemctl ARGS` for this invocation's manager (`--user` in per-user
/// mode).
pub fn systemctl(args: &str) -> String {
    let prefix = match HINT.get().map(|h| h.mode) {
        Some(Mode::User) => "systemctl --user",
        _ => "systemctl",
    };
    if args.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix} {args}")
    }
}

/// The `journalctl` command that shows one run (invocation `id` of the
/// unit `service`): the job's own lines and the manager's lines about it (a
/// run that failed before its command started has only those), selected by
/// journald's trusted fields alone ([`jobctl_core::journal::RunMatch`]:
/// any user can claim an invocation id, through `INVOCATION_ID=` or
/// `USER_INVOCATION_ID=`, which the sender writes, or through a link in
/// their own runtime folder, where journald reads a user unit's
/// `_SYSTEMD_INVOCATION_ID=`). `follow` adds `-f`.
pub fn journal(service: &str, id: &str, follow: bool) -> String {
    let mode = HINT.get().map_or(Mode::System, |h| h.mode);
    journal_in(mode, nix::unistd::geteuid().as_raw(), service, id, follow)
}

/// [`journal`] for `mode`, as the user `uid`.
pub fn journal_in(mode: Mode, uid: u32, service: &str, id: &str, follow: bool) -> String {
    let run = jobctl_core::journal::RunMatch::new(mode, uid, service, id);
    let mut hint = String::from("journalctl");
    if follow {
        hint.push_str(" -f");
    }
    // Readers never return another form of id, and unit names are safe;
    // should anything else slip through, pasting the hint must still run
    // nothing but journalctl.
    let half = |terms: &[(&str, String)]| -> String {
        terms
            .iter()
            .map(|(field, value)| format!(" {field}={}", shell_quote(value)))
            .collect()
    };
    hint.push_str(&half(&run.own));
    hint.push_str(" +");
    hint.push_str(&half(&run.manager));
    hint
}

/// The `journalctl` command that shows the manager's own log of this boot
/// (why a unit did not load or start).
pub fn manager_log() -> &'static str {
    match HINT.get().map(|h| h.mode) {
        Some(Mode::User) => "journalctl -b --user-unit=init.scope",
        _ => "journalctl -b -u init.scope",
    }
}

/// `path` made absolute against the current folder (without resolving
/// links), for hints that must work when pasted anywhere; as given when the
/// current folder cannot be read.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The error for a jobs folder that does not exist, saying how to start.
pub fn missing_jobs_dir(dir: &Path) -> crate::error::CliError {
    crate::error::CliError::usage(anyhow::anyhow!(
        "the jobs folder {} does not exist",
        dir.display()
    ))
    .hint(missing_jobs_dir_hint(dir))
}

/// How to start when the jobs folder does not exist.
pub fn missing_jobs_dir_hint(dir: &Path) -> String {
    format!(
        "create it and add a job file: `mkdir -p {}`, then one TOML file per job (jobctl.toml(5); \
         examples in /usr/share/doc/jobctl/examples); `{}` checks them",
        shell_quote(dir),
        jobctl_in(dir, "validate")
    )
}

/// `text` as one shell word: bare when it holds only characters no shell
/// treats specially, else in single quotes.
pub fn shell_quote(text: impl AsRef<Path>) -> String {
    let text = text.as_ref().to_string_lossy();
    let safe = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./+-:@%,=".contains(&b));
    if safe {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `$VAR` when set to an absolute path (as the XDG spec requires), else
/// `$HOME/<fallback>`.
fn xdg_dir(var: &str, fallback: &str) -> Result<PathBuf> {
    if let Some(value) = env::var_os(var).map(PathBuf::from)
        && value.is_absolute()
    {
        return Ok(value);
    }
    let home = env::var_os(env::HOME)
        .map(PathBuf::from)
        .context("per-user mode needs $HOME to find ~/.config and ~/.local/state")?;
    Ok(home.join(fallback))
}

#[cfg(test)]
mod tests {
    use super::{Mode, journal_in, shell_quote};

    /// System mode: the job's service's lines and PID 1's about the run,
    /// never a line that merely claims the invocation.
    #[test]
    fn a_journal_hint_runs_nothing_but_journalctl() {
        let id = "0123456789abcdef0123456789abcdef";
        let unit = "jobctl-backup.service";
        assert_eq!(
            journal_in(Mode::System, 0, unit, id, false),
            format!(
                "journalctl _SYSTEMD_UNIT={unit} _SYSTEMD_INVOCATION_ID={id} + _PID=1 INVOCATION_ID={id}"
            )
        );
        let hostile = "$(touch /tmp/pwned) ; touch /tmp/pwned2 #";
        let hint = journal_in(Mode::System, 0, "a b.service", hostile, true);
        assert_eq!(
            hint,
            "journalctl -f _SYSTEMD_UNIT='a b.service' \
             _SYSTEMD_INVOCATION_ID='$(touch /tmp/pwned) ; touch /tmp/pwned2 #' \
             + _PID=1 INVOCATION_ID='$(touch /tmp/pwned) ; touch /tmp/pwned2 #'"
        );
    }

    /// Per-user: this user's entries alone in each half (`_UID=`), from
    /// every file the user may read (no `--user`).
    #[test]
    fn a_users_journal_hint_matches_their_uid_in_every_file() {
        let id = "0123456789abcdef0123456789abcdef";
        let unit = "jobctl-backup.service";
        assert_eq!(
            journal_in(Mode::User, 999, unit, id, false),
            format!(
                "journalctl _UID=999 _SYSTEMD_USER_UNIT={unit} _SYSTEMD_INVOCATION_ID={id} \
                 + _UID=999 USER_INVOCATION_ID={id}"
            )
        );
        assert_eq!(
            journal_in(Mode::User, 0, unit, id, true),
            format!(
                "journalctl -f _UID=0 _SYSTEMD_USER_UNIT={unit} _SYSTEMD_INVOCATION_ID={id} \
                 + _UID=0 USER_INVOCATION_ID={id}"
            )
        );
    }

    #[test]
    fn paths_in_hints_are_absolute() {
        use std::path::Path;
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(super::absolute(Path::new("alt.d")), cwd.join("alt.d"));
        assert_eq!(super::absolute(Path::new("./alt.d")), cwd.join("alt.d"));
        assert_eq!(
            super::absolute(Path::new("/etc/jobctl/jobs.d")),
            Path::new("/etc/jobctl/jobs.d")
        );
    }

    #[test]
    fn shell_quote_makes_one_word() {
        assert_eq!(shell_quote("/etc/jobctl/jobs.d"), "/etc/jobctl/jobs.d");
        assert_eq!(shell_quote("my jobs"), "'my jobs'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
    }
}
