//! `jobctl validate`: check job files and the configuration, reporting every
//! problem in every file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::Args;
use jobctl_core::directives::SystemdTarget;
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::exit::Exit;
use crate::load::{self, LoadedJobs};
use crate::output;
use crate::paths::Paths;
use crate::rendering;

/// Check job files for errors without changing anything.
///
/// Reports every problem in every file (and in the configuration), each with
/// its file, line, column, key and a hint. Exits 0 when all files are valid,
/// 2 when any has an error. Warnings do not fail validation.
///
/// Checks what `jobctl apply` checks: schedules that can never fire after
/// now, and *_extra directives newer than the target systemd: the one named
/// by --systemd-version, else the running manager (asked over D-Bus), else
/// the installed `systemctl --version`. Also checks that the groups the
/// configuration's `[web]` names exist (`getent group`): jobctl-web refuses to
/// start otherwise.
///
/// --name NAME checks one file as job NAME's, wherever it is: named, loaded
/// and rendered as NAME.toml in the jobs folder (a staged copy, an editor's
/// temp file, Ansible's `template validate=`; `-` reads standard input).
///
/// Examples:
///   jobctl validate                      # every job in the jobs folder
///   jobctl validate jobs.d/backup.toml   # just these files
///   jobctl validate --jobs-dir ./jobs.d --json
///   jobctl validate --systemd-version 247   # for hosts running systemd 247
///   jobctl validate --name backup /tmp/staged.toml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ValidateArgs {
    /// Job files to check [default: every *.toml in the jobs folder].
    pub files: Vec<PathBuf>,
    /// Check the one FILE given (`-`: standard input) as job NAME's file.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Check directives against this systemd version instead of this
    /// host's.
    #[arg(long, value_name = "VERSION")]
    pub systemd_version: Option<u32>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    valid: bool,
    files: usize,
    jobs: Vec<&'a str>,
    errors: usize,
    warnings: usize,
    /// The systemd the directives were checked against (`null`: none could
    /// be found, so they were not).
    systemd: Option<SystemdTarget>,
    diagnostics: &'a [jobctl_core::diag::Diagnostic],
}

pub fn run(paths: &Paths, args: ValidateArgs) -> CliResult {
    let systemd = rendering::target_systemd(paths, args.systemd_version);
    let checks = load::Checks {
        now: Some(jiff::Timestamp::now()),
        systemd,
        groups: true,
    };
    let selection = match &args.name {
        Some(name) => given_selection(paths, name, &args.files)?,
        None => load::selection(paths, &args.files),
    };
    let loaded = load::load_jobs_checked(paths, &selection, checks)?;
    if let Some(dir) = &loaded.missing_dir {
        return Err(crate::paths::missing_jobs_dir(dir));
    }
    let report = report(&loaded, systemd);
    if args.json {
        output::print_json("validate", &report)?;
    } else {
        // The diagnostics go to stderr like every error; the summary is the
        // command's output.
        let mut text = String::new();
        for diagnostic in &loaded.diagnostics {
            text.push_str(&diagnostic.to_string());
            text.push('\n');
        }
        output::print_error_text(&text)?;
        output::print_text(&summary(&report, loaded.config_errors()))?;
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        Exit::Usage.into()
    })
}

/// `--name NAME FILE`: the folder's view with only NAME, its file's text
/// taken from FILE.
fn given_selection(
    paths: &Paths,
    name: &str,
    files: &[PathBuf],
) -> Result<load::JobSelection, CliError> {
    let [file] = files else {
        return Err(CliError::usage(anyhow!(
            "--name checks exactly one file as job {name:?}'s ({} given)",
            files.len()
        ))
        .hint("give one file, or `-` for standard input"));
    };
    jobctl_core::naming::JobName::new(name)
        .map_err(|e| CliError::usage(anyhow!("--name: {name:?} is not a job name: {e}")))?;
    let text = read_given(&file.to_string_lossy())?;
    Ok(load::JobSelection::Given {
        dir: paths.jobs_dir.clone(),
        job: load::GivenJob {
            name: name.to_string(),
            text,
        },
    })
}

/// A job file's text given on the command line: FILE, or standard input
/// for `-`, at most [`crate::files::JOB_FILE_LIMIT`] bytes of UTF-8.
pub fn read_given(file: &str) -> Result<String, CliError> {
    let (bytes, what) = if file == "-" {
        (
            crate::files::read_limited_from(std::io::stdin().lock(), crate::files::JOB_FILE_LIMIT),
            "standard input".to_string(),
        )
    } else {
        (
            crate::files::read_limited(Path::new(file), crate::files::JOB_FILE_LIMIT),
            file.to_string(),
        )
    };
    let bytes = bytes
        .with_context(|| format!("cannot read the job file from {what}"))
        .map_err(CliError::usage)?;
    String::from_utf8(bytes)
        .map_err(|_| CliError::usage(anyhow!("{what} is not UTF-8 text")).hint("save it as UTF-8"))
}

fn report(loaded: &LoadedJobs, systemd: Option<SystemdTarget>) -> Report<'_> {
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    Report {
        valid: errors == 0,
        files: loaded.files,
        jobs: loaded.jobs.iter().map(|j| j.name.as_str()).collect(),
        errors,
        warnings: loaded.diagnostics.len() - errors,
        systemd,
        diagnostics: &loaded.diagnostics,
    }
}

/// The last line of `validate`: the job files, and the errors (those of
/// the configuration named apart: they are no job file's, though a job that
/// names a broken channel is invalid with them).
fn summary(report: &Report<'_>, config_errors: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let invalid = report.files.saturating_sub(report.jobs.len());
    let mut line = format!(
        "checked {}: {} valid, {} invalid",
        plural(report.files, "job file"),
        report.jobs.len(),
        invalid
    );
    if report.errors + report.warnings > 0 {
        line.push_str(&format!(
            " ({}, {})",
            plural(report.errors, "error"),
            plural(report.warnings, "warning")
        ));
    }
    if config_errors > 0 {
        line.push_str(&format!(
            "; the configuration has {}",
            plural(config_errors, "error")
        ));
    }
    line.push('\n');
    line
}
