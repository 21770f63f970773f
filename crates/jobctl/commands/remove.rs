//! `jobctl remove JOB`: uninstall a job now — stop and disable its timer,
//! delete its units, reload, reset their failed state — and delete its job
//! file so the next `apply` does not install it again (`--keep-file` keeps
//! it). A run in progress is not killed: it finishes and is recorded. The
//! run history is kept, unless `--purge`: then every run of the job is
//! deleted from every history database this user can write (root: the main
//! one and every user's).

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use jobctl_core::plan::ownership;
use jobctl_systemd::{JobOp, UnitDir};

use jobctl_history::{OpenMode, Store};

use crate::error::{CliError, CliResult};
use crate::history_db::{self, Readers};
use crate::output;
use crate::paths::Paths;
use crate::systemd;

/// Uninstall a job: timer stopped, units deleted, job file deleted.
///
/// The run history is kept (`jobctl history JOB` still shows the runs)
/// unless --purge. --purge also works for a job that is already uninstalled
/// but still has runs in the history.
///
/// Examples:
///   jobctl remove old-report
///   jobctl remove old-report --keep-file
///   jobctl remove old-report --purge
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RemoveArgs {
    /// The job.
    pub job: String,
    /// Keep the job file (the next `jobctl apply` installs the job again).
    #[arg(long)]
    pub keep_file: bool,
    /// Also delete the job's runs and their output from the history (every
    /// database root can write: the main one and every user's). A run still
    /// in progress is recorded when it ends.
    #[arg(long)]
    pub purge: bool,
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
    if units.is_empty() && !job_file.exists() && args.purge && has_history(paths, &args.job) {
        // Uninstalled already; only its history is left to delete.
        return report(paths, &args, &[], false, false, &job_file);
    }
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
    report(paths, &args, &units, file_removed, running, &job_file)
}

/// Purges the history if asked, and reports.
fn report(
    paths: &Paths,
    args: &RemoveArgs,
    units: &[String],
    file_removed: bool,
    running: bool,
    job_file: &std::path::Path,
) -> CliResult {
    let purge = args.purge.then(|| purge(paths, &args.job));
    let (purged, purge_failures) = purge.unwrap_or_default();
    if args.json {
        output::print_json(
            "remove",
            &serde_json::json!({
                "job": args.job, "units_removed": units, "job_file_removed": file_removed,
                "was_running": running,
                "runs_purged": args.purge.then(|| purged.iter().map(|(_, n)| n).sum::<u64>()),
                "purged": purged.iter().map(|(db, n)| serde_json::json!({"database": db, "runs": n})).collect::<Vec<_>>(),
                "purge_failed": purge_failures.iter().map(|(db, e)| serde_json::json!({"database": db, "error": e})).collect::<Vec<_>>(),
            }),
        )?;
    } else {
        let mut text = if units.is_empty() && !file_removed {
            format!("{}: nothing installed", args.job)
        } else {
            format!(
                "removed {}: {} deleted",
                args.job,
                crate::view::format::count(units.len(), "unit file", "unit files")
            )
        };
        if file_removed {
            text.push_str(&format!(", {} deleted", job_file.display()));
        }
        text.push('\n');
        if args.purge {
            let total: u64 = purged.iter().map(|(_, n)| n).sum();
            text.push_str(&format!(
                "purged {total} run(s) of {} from the history ({} database(s))\n",
                args.job,
                purged.len()
            ));
        }
        if running {
            text.push_str("note: a run is in progress; it is not stopped and finishes under the removed definition\n");
            if args.purge {
                text.push_str("note: that run is recorded in the history when it ends\n");
            }
        }
        output::print_text(&text)?;
    }
    for (db, error) in &purge_failures {
        output::error(&format!("cannot purge the history in {db}: {error}"));
    }
    if purge_failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(crate::exit::Exit::Failure.into())
    }
}

/// Whether any readable database holds runs of `job` (in any database, as
/// it is: this only decides whether there is something to purge).
fn has_history(paths: &Paths, job: &str) -> bool {
    let Ok(readers) = Readers::open_unfiltered(paths) else {
        return false;
    };
    readers.stores.iter().any(|(_, store)| {
        let filter = jobctl_history::RunFilter {
            job: Some(job.to_string()),
            jobs: Some(Vec::new()),
            ..Default::default()
        };
        store.count_untrusted_runs(&filter).is_ok_and(|n| n > 0)
    })
}

/// Deletes the job's runs from every database: (database, runs deleted),
/// and the databases that failed, with why.
type Purged = (Vec<(String, u64)>, Vec<(String, String)>);

fn purge(paths: &Paths, job: &str) -> Purged {
    let mut done = Vec::new();
    let mut failed = Vec::new();
    let (found, refused) = history_db::reader_databases(paths, None);
    for r in refused {
        failed.push((
            r.path.display().to_string(),
            format!("refused to open it: {}", r.reason),
        ));
    }
    for located in found {
        let db = located.path.display().to_string();
        match Store::open_located(&located, OpenMode::Maintain, history_db::READ_BUSY_TIMEOUT)
            .and_then(|mut store| store.purge_job(job))
        {
            Ok(n) => done.push((db, n)),
            Err(e) => {
                let e = anyhow::Error::new(e);
                let causes: Vec<String> = e.chain().map(ToString::to_string).collect();
                failed.push((db, causes.join(": ")));
            }
        }
    }
    (done, failed)
}
