//! Where things live, in system mode and in per-user mode.
//!
//! | what         | system mode                 | per-user mode (`--user`)             |
//! |--------------|-----------------------------|--------------------------------------|
//! | job files    | /etc/jobctl/jobs.d          | $XDG_CONFIG_HOME/jobctl/jobs.d       |
//! | config       | /etc/jobctl/config.toml     | $XDG_CONFIG_HOME/jobctl/config.toml  |
//! | unit files   | /etc/systemd/system         | $XDG_CONFIG_HOME/systemd/user        |
//! | history      | /var/lib/jobctl/history.db  | $XDG_STATE_HOME/jobctl/history.db    |

use std::path::PathBuf;

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
        Ok(Paths {
            mode,
            jobs_dir: global
                .jobs_dir
                .clone()
                .unwrap_or_else(|| config_base.join("jobs.d")),
            unit_dir: global.unit_dir.clone().unwrap_or(unit_dir),
            config: global
                .config
                .clone()
                .unwrap_or_else(|| config_base.join("config.toml")),
            state_dir,
        })
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
