//! `jobctl cat JOB`: the job file and the units installed for it, each
//! under a `# PATH` line, as `systemctl cat` shows a unit and its drop-ins.
//! Reads files only; needs no systemd.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::Args;
use jobctl_core::naming::JobName;
use jobctl_core::plan::ownership;
use jobctl_systemd::UnitDir;
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output::{self, Lines};
use crate::paths::Paths;
use crate::systemd;

/// Show a job's file and the units installed for it, each under a `# PATH`
/// line (as `systemctl cat` does).
///
/// The units are those in the unit folder that carry the job's mark
/// (X-Jobctl-Job=), as `jobctl apply` wrote them: compare them with
/// `jobctl apply --check --diff JOB`. Control characters are shown escaped.
///
/// Examples:
///   jobctl cat nightly-refresh
///   jobctl --user cat sync-notes --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CatArgs {
    /// The job.
    #[arg(value_name = "JOB")]
    pub job: String,
    /// Machine-readable output: the file and each unit, with path and text.
    #[arg(long)]
    pub json: bool,
}

/// A file and its text.
#[derive(Debug, Serialize)]
struct Shown {
    path: String,
    contents: String,
}

#[derive(Debug, Serialize)]
struct Report {
    job: String,
    /// The job file (`null` when it is gone: the units are orphaned).
    file: Option<Shown>,
    /// The installed units (none when the job was never applied).
    units: Vec<Shown>,
}

pub fn run(paths: &Paths, args: CatArgs) -> CliResult {
    JobName::new(&args.job)
        .map_err(|e| CliError::usage(anyhow!("{:?} is not a job name: {e}", args.job)))?;
    let path = paths.jobs_dir.join(format!("{}.toml", args.job));
    let file = match crate::files::read_limited(&path, crate::files::JOB_FILE_LIMIT) {
        Ok(bytes) => Some(Shown {
            path: path.display().to_string(),
            contents: String::from_utf8_lossy(&bytes).into_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(CliError::failure(
                anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
            ));
        }
    };
    let unit_dir = UnitDir::new(&paths.unit_dir);
    let installed = unit_dir
        .read_units()
        .map_err(|e| systemd::systemd_error(e, paths.mode))?;
    let mut units = Vec::new();
    let mut jobs = Vec::new();
    for unit in installed {
        let Some(contents) = unit.contents else {
            continue;
        };
        let Some(mark) = ownership(&contents) else {
            continue;
        };
        if mark.job == args.job {
            units.push(Shown {
                path: PathBuf::from(&paths.unit_dir)
                    .join(&unit.name)
                    .display()
                    .to_string(),
                contents,
            });
        } else {
            jobs.push(mark.job);
        }
    }
    // Service before timer, as apply names them.
    units.sort_by_key(|u| !u.path.ends_with(".service"));
    if file.is_none() && units.is_empty() {
        if let Ok(entries) = std::fs::read_dir(&paths.jobs_dir) {
            jobs.extend(entries.flatten().filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".toml")
                    .map(str::to_string)
            }));
        }
        jobs.sort();
        jobs.dedup();
        return Err(systemd::unknown_job(&args.job, &jobs));
    }
    let report = Report {
        job: args.job.clone(),
        file,
        units,
    };
    if args.json {
        output::print_json("cat", &report)?;
        return Ok(ExitCode::SUCCESS);
    }
    output::print_text(&text(&report))?;
    if report.file.is_none() {
        output::note(&format!(
            "job {}'s file is gone ({}); `{}` removes its units",
            args.job,
            path.display(),
            crate::paths::jobctl("apply")
        ));
    } else if report.units.is_empty() {
        output::note(&format!(
            "job {} is not installed; `{}` installs it",
            args.job,
            crate::paths::jobctl(&format!("apply {}", args.job))
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Each file under `# PATH`, a blank line between them, control characters
/// escaped (a job file is a user's to write in per-user mode).
fn text(report: &Report) -> String {
    let mut out = String::new();
    for shown in report.file.iter().chain(&report.units) {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("# {}\n", shown.path));
        out.push_str(&shown.contents);
        if !shown.contents.ends_with('\n') {
            out.push('\n');
        }
    }
    output::escape(&out, Lines::Keep).into_owned()
}
