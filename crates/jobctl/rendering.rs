//! Rendering loaded jobs with the settings of this host: where the jobctl
//! binary is, the host's time zones, and the configuration.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use jobctl_core::directives::{SystemdTarget, VersionSource};
use jobctl_core::render::{self, RenderError, RenderOptions, RenderedJob};

use crate::load::LoadedJobs;
use crate::paths::Paths;
use crate::zones::HostZones;

/// Flags of the commands that render units offline (`render`, `generate`).
#[derive(Debug, Args)]
pub struct RenderFlags {
    /// The jobctl binary to write into ExecStart= [default: jobctl_path from
    /// the configuration, else this binary].
    #[arg(long, value_name = "PATH")]
    pub jobctl_path: Option<PathBuf>,
    /// Refuse directives newer than this systemd version.
    #[arg(long, value_name = "VERSION")]
    pub systemd_version: Option<u32>,
}

impl RenderFlags {
    /// The systemd named by `--systemd-version`, if any.
    pub fn target(&self) -> Option<SystemdTarget> {
        self.systemd_version.map(|version| SystemdTarget {
            version,
            source: VersionSource::Flag,
        })
    }
}

/// The running manager's version, as asked over D-Bus.
pub fn manager_target(version: u32) -> SystemdTarget {
    SystemdTarget {
        version,
        source: VersionSource::Manager,
    }
}

/// The systemd that `validate` checks directives against: `flag`
/// (`--systemd-version`) when given, else the running manager (its D-Bus
/// `Version`, as `apply` asks it), else the installed `systemctl
/// --version`; `None` when none of them can tell.
pub fn target_systemd(paths: &Paths, flag: Option<u32>) -> Option<SystemdTarget> {
    if let Some(version) = flag {
        return Some(SystemdTarget {
            version,
            source: VersionSource::Flag,
        });
    }
    if let Ok(sd) = crate::systemd::connect(paths)
        && let Ok(version) = sd.version()
    {
        return Some(manager_target(version.major));
    }
    installed_version().map(|version| SystemdTarget {
        version,
        source: VersionSource::Systemctl,
    })
}

/// The major version `systemctl --version` prints ("systemd 252 (252.38-1)").
fn installed_version() -> Option<u32> {
    let out = std::process::Command::new("systemctl")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    parse_systemctl_version(&String::from_utf8_lossy(&out.stdout))
}

fn parse_systemctl_version(text: &str) -> Option<u32> {
    let mut words = text.lines().next()?.split_whitespace();
    (words.next()? == "systemd").then_some(())?;
    words.next()?.parse().ok()
}

/// The jobctl binary of a program that runs jobctl's commands in its own
/// process under another name (`jobctl-web`): set by [`set_running_jobctl`].
static RUNNING_JOBCTL: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Tells this library that the running program is not `jobctl` itself and
/// which `jobctl` binary units run by default instead: `jobctl-web` names
/// the one beside it, so that its `list`, `status` and `health` compare the
/// installed units with what `jobctl apply` renders (and not with units
/// whose `ExecStart=` runs `jobctl-web`). Only the first call counts.
pub fn set_running_jobctl(path: PathBuf) {
    let _ = RUNNING_JOBCTL.set(path);
}

/// The jobctl binary every `ExecStart=` runs: the override, else the
/// configuration's `jobctl_path`, else this very binary (or the one
/// [`set_running_jobctl`] named).
pub fn jobctl_path(loaded: &LoadedJobs, override_path: Option<&PathBuf>) -> Result<String> {
    if let Some(path) = override_path {
        let text = path.to_string_lossy().into_owned();
        jobctl_core::config::check_jobctl_path(&text)
            .map_err(anyhow::Error::msg)
            .context("--jobctl-path")?;
        return Ok(text);
    }
    if let Some(path) = &loaded.config.jobctl_path {
        return Ok(path.clone());
    }
    let exe = match RUNNING_JOBCTL.get() {
        Some(exe) => {
            anyhow::ensure!(
                exe.exists(),
                "the jobctl binary the units would run, {}, does not exist: install it \
                 beside this program, or set jobctl_path in the configuration",
                exe.display()
            );
            exe.clone()
        }
        None => {
            std::env::current_exe().context("cannot find the path of the running jobctl binary")?
        }
    };
    let exe = exe.canonicalize().unwrap_or(exe);
    let text = exe.to_string_lossy().into_owned();
    jobctl_core::config::check_jobctl_path(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| {
            format!(
                "jobctl is running from {}, which cannot be written into a unit",
                exe.display()
            )
        })?;
    Ok(text)
}

/// Renders every loaded job. Returns the units, or every job that failed.
pub fn render_all(
    loaded: &LoadedJobs,
    paths: &Paths,
    jobctl_path: &str,
    systemd_version: Option<u32>,
) -> Result<Vec<RenderedJob>, Vec<(String, RenderError)>> {
    with_render_options(loaded, paths, jobctl_path, systemd_version, |opts| {
        let mut rendered = Vec::new();
        let mut failed = Vec::new();
        for job in &loaded.jobs {
            match render::render(job, opts) {
                Ok(r) => rendered.push(r),
                Err(e) => failed.push((format!("{} ({})", job.name, job.source), e)),
            }
        }
        if failed.is_empty() {
            Ok(rendered)
        } else {
            Err(failed)
        }
    })
}

/// Renders every loaded job, keeping going past failures: the rendered jobs
/// by name, and the jobs that failed with why (`list`, `status` and `health`
/// show those as invalid rather than refusing to show anything).
pub fn render_each(
    loaded: &LoadedJobs,
    paths: &Paths,
    jobctl_path: &str,
    systemd_version: Option<u32>,
) -> (
    std::collections::BTreeMap<String, RenderedJob>,
    Vec<(String, RenderError)>,
) {
    with_render_options(loaded, paths, jobctl_path, systemd_version, |opts| {
        let mut rendered = std::collections::BTreeMap::new();
        let mut failed = Vec::new();
        for job in &loaded.jobs {
            match render::render(job, opts) {
                Ok(r) => {
                    rendered.insert(r.job.clone(), r);
                }
                Err(e) => failed.push((job.name.to_string(), e)),
            }
        }
        (rendered, failed)
    })
}

/// Calls `f` with the render options of this host, mode and configuration
/// (the options borrow the host's zone database, hence the callback).
fn with_render_options<T>(
    loaded: &LoadedJobs,
    paths: &Paths,
    jobctl_path: &str,
    systemd_version: Option<u32>,
    f: impl FnOnce(&RenderOptions) -> T,
) -> T {
    let zones = HostZones::new();
    let local = zones.local();
    // Per-user mode: the shim records under $XDG_STATE_HOME when the user
    // manager passes it; the renderer names that folder for sandboxed jobs.
    let user_state_dir = (paths.mode == crate::paths::Mode::User
        && crate::env::var_os(crate::env::XDG_STATE_HOME)
            .is_some_and(|v| std::path::Path::new(&v).is_absolute()))
    .then(|| paths.state_dir.to_string_lossy().into_owned());
    f(&RenderOptions {
        mode: paths.mode,
        unit_prefix: &loaded.config.unit_prefix,
        jobctl_path,
        local_zone: &local,
        zones: &zones,
        history: &loaded.config.history,
        systemd_version,
        user_state_dir: user_state_dir.as_deref(),
    })
}

#[cfg(test)]
mod tests {
    use super::parse_systemctl_version;

    #[test]
    fn systemctl_versions() {
        assert_eq!(
            parse_systemctl_version("systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT\n"),
            Some(252)
        );
        assert_eq!(
            parse_systemctl_version("systemd 258 (258~rc3)\n"),
            Some(258)
        );
        assert_eq!(parse_systemctl_version(""), None);
        assert_eq!(parse_systemctl_version("elogind 252\n"), None);
    }
}
