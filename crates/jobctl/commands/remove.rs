//! `jobctl remove JOB`: uninstall a job now — stop and disable its timer,
//! delete its units, reload, reset their failed state — and delete its job
//! file so the next `apply` does not install it again (`--keep-file` keeps
//! it). A run in progress is not killed: it finishes and is recorded. The
//! run history is kept.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use jobctl_core::plan::ownership;
use jobctl_systemd::{JobOp, UnitDir};

use crate::error::{CliError, CliResult};
use crate::output;
use crate::paths::Paths;
use crate::systemd;

/// Uninstall a job: timer stopped, units deleted, job file deleted.
///
/// Examples:
///   jobctl remove old-report
///   jobctl remove old-report --keep-file
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RemoveArgs {
    /// The job.
    pub job: String,
    /// Keep the job file (the next `jobctl apply` installs the job again).
    #[arg(long)]
    pub keep_file: bool,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &Paths, args: RemoveArgs) -> CliResult {
    let _lock = systemd::lock(paths)?;
    let sd = systemd::connect(paths)?;
    let mode = paths.mode;
    let err = |e| systemd::systemd_error(e, mode);
    let unit_dir = UnitDir::new(&paths.unit_dir);
    let units: Vec<String> = unit_dir
        .read_units()
        .map_err(err)?
        .into_iter()
        .filter(|u| {
            u.contents
                .as_deref()
                .and_then(ownership)
                .is_some_and(|o| o.job == args.job)
        })
        .map(|u| u.name)
        .collect();
    let job_file = paths.jobs_dir.join(format!("{}.toml", args.job));
    if units.is_empty() && !job_file.exists() {
        let known: Vec<String> = unit_dir
            .read_units()
            .map_err(err)?
            .into_iter()
            .filter_map(|u| u.contents.as_deref().and_then(ownership).map(|o| o.job))
            .collect();
        return Err(systemd::unknown_job(&args.job, &known));
    }
    let timers: Vec<String> = units
        .iter()
        .filter(|u| u.ends_with(".timer"))
        .cloned()
        .collect();
    let service = units.iter().find(|u| u.ends_with(".service")).cloned();
    let running = match &service {
        Some(s) => sd
            .list_units_by_names(std::slice::from_ref(s))
            .map_err(err)?
            .first()
            .is_some_and(|u| {
                matches!(
                    u.active_state.as_str(),
                    "activating" | "active" | "deactivating"
                )
            }),
        None => false,
    };
    for o in sd
        .run_jobs(JobOp::Stop, &timers, std::time::Duration::from_secs(60))
        .map_err(err)?
    {
        if let Err(e) = o.result {
            return Err(CliError::failure(anyhow::Error::new(e)));
        }
    }
    sd.disable_unit_files(&timers).map_err(err)?;
    unit_dir
        .remove_all(&units)
        .map_err(|p| CliError::failure(anyhow!("{p}")))?;
    if !units.is_empty() {
        sd.reload().map_err(err)?;
    }
    for u in &units {
        sd.reset_failed(u).map_err(err)?;
    }
    let mut overrides = systemd::read_overrides(paths)?;
    if overrides.remove(&args.job).is_some() {
        systemd::write_overrides(paths, &overrides)?;
    }
    let file_removed = !args.keep_file && job_file.exists();
    if file_removed {
        std::fs::remove_file(&job_file)
            .with_context(|| format!("cannot delete {}", job_file.display()))?;
    }
    if args.json {
        output::print_json(&serde_json::json!({
            "job": args.job, "units_removed": units, "job_file_removed": file_removed, "was_running": running,
        }))?;
    } else {
        let mut text = format!("removed {}: {} unit file(s) deleted", args.job, units.len());
        if file_removed {
            text.push_str(&format!(", {} deleted", job_file.display()));
        }
        text.push('\n');
        if running {
            text.push_str("note: a run is in progress; it is not stopped and finishes under the removed definition\n");
        }
        output::print_text(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}
