//! `jobctl enable JOB` / `jobctl disable JOB`: turn a job's timer on or off
//! now and persistently.
//!
//! The choice is recorded as an override with the job's current hash in
//! `<state dir>/overrides.json`. Every later `apply` keeps it as long as the
//! job file is unchanged; when the job file changes, the file says otherwise
//! and wins (the override is dropped). `enabled = false` in the job file plus
//! `jobctl enable` therefore runs the job until someone edits its file.

use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use jobctl_core::plan::Override;
use jobctl_systemd::JobOp;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::paths::Paths;
use crate::systemd;

/// Arguments of `enable` and `disable`.
#[derive(Debug, Args)]
pub struct EnableArgs {
    /// The job.
    pub job: String,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &Paths, args: EnableArgs, enable: bool) -> CliResult {
    let _lock = systemd::lock(paths)?;
    let sd = systemd::connect(paths)?;
    let mode = paths.mode;
    let version = sd.version().map_err(|e| systemd::systemd_error(e, mode))?;
    // Another job's broken file does not stand in the way; this job's does.
    let all = systemd::desired(
        paths,
        &crate::load::JobSelection::Dir(paths.jobs_dir.clone()),
        crate::load::Checks {
            now: None,
            systemd: Some(crate::rendering::manager_target(version.major)),
            groups: false,
        },
        false,
    )?;
    if all.invalid.contains_key(&args.job) {
        let own: Vec<_> = all
            .invalid_diagnostics()
            .into_iter()
            .filter(|d| crate::load::job_stem(std::path::Path::new(&d.file)) == args.job)
            .collect();
        return Err(crate::commands::invalid_jobs(&own));
    }
    let desired = all.rendered;
    let Some(job) = desired.iter().find(|j| j.job == args.job) else {
        let known: Vec<String> = desired.iter().map(|j| j.job.clone()).collect();
        return Err(systemd::unknown_job(&args.job, &known));
    };
    let Some(timer) = &job.timer else {
        return Err(CliError::usage(anyhow!(
            "job {} is manual-only: it has no timer to {}",
            args.job,
            if enable { "enable" } else { "disable" }
        ))
        .hint(format!(
            "start it with `{}`",
            crate::paths::jobctl(&format!("run {}", crate::paths::shell_quote(&args.job)))
        )));
    };
    if enable && job.not_after.is_some_and(|t| jiff::Timestamp::now() >= t) {
        return Err(CliError::usage(anyhow!(
            "job {} has expired (not_after); its timer stays off",
            args.job
        ))
        .hint(format!(
            "extend not_after in the job file, then `{}`",
            crate::paths::jobctl("apply")
        )));
    }
    // The units must be installed and current, or the override would
    // describe a job systemd does not have.
    let on_disk =
        crate::files::read_limited(&paths.unit_dir.join(&timer.name), crate::files::STATE_LIMIT)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
    if on_disk.as_deref() != Some(timer.contents.as_str()) {
        return Err(CliError::failure(anyhow!(
            "job {}'s units are not installed or not current",
            args.job
        ))
        .hint(format!("run `{}` first", crate::paths::jobctl("apply"))));
    }
    let names = vec![timer.name.clone()];
    let err = |e| systemd::systemd_error(e, mode);
    if enable {
        sd.enable_unit_files(&names).map_err(err)?;
        sd.reload().map_err(err)?;
        fail_unless_done(
            sd.run_jobs(JobOp::Start, &names, std::time::Duration::from_secs(60))
                .map_err(err)?,
        )?;
    } else {
        fail_unless_done(
            sd.run_jobs(JobOp::Stop, &names, std::time::Duration::from_secs(60))
                .map_err(err)?,
        )?;
        sd.disable_unit_files(&names).map_err(err)?;
        sd.reload().map_err(err)?;
    }
    let mut overrides = systemd::read_overrides(paths)?;
    if enable == job.timer_enabled {
        // Back to what the file says: no override needed.
        overrides.remove(&job.job);
    } else {
        overrides.insert(
            job.job.clone(),
            Override {
                enabled: enable,
                hash: job.hash.clone(),
            },
        );
    }
    systemd::write_overrides(paths, &overrides)?;
    let verb = if enable { "enabled" } else { "disabled" };
    if args.json {
        output::print_json(
            "enable",
            &serde_json::json!({"job": job.job, "timer": timer.name, "enabled": enable, "override": overrides.contains_key(&job.job)}),
        )?;
    } else {
        output::print_text(&format!(
            "{verb} {} ({}){}\n",
            job.job,
            timer.name,
            if overrides.contains_key(&job.job) {
                "; kept by later applies until the job file changes"
            } else {
                ""
            }
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fail_unless_done(outcomes: Vec<jobctl_systemd::JobOutcome>) -> Result<(), CliError> {
    for o in outcomes {
        match o.result {
            Ok(r) if r == "done" => {}
            Ok(r) => {
                return Err(CliError::failure(anyhow!(
                    "{} {}: job {r}",
                    o.op.method(),
                    o.unit
                )));
            }
            Err(e) => return Err(CliError::failure(anyhow::Error::new(e))),
        }
    }
    Ok(())
}
