//! `jobctl export k8s JOB`: print a job as a Kubernetes CronJob.
//!
//! Gathers the job (loaded and checked as `validate` does, schedules that
//! can never fire included), the host's zone and the present, hands them
//! to `jobctl_core::export::cron_job`, and prints the manifest on stdout
//! and what does not carry over as warnings on stderr. A job that has no
//! exact CronJob is refused with every reason (exit 2).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};
use jobctl_core::export::{self, K8sOptions};

use crate::error::{CliError, CliResult};
use crate::load::{self, JobSelection};
use crate::output;
use crate::paths::Paths;
use crate::zones::HostZones;

/// Write a job for another scheduler.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub target: Target,
}

#[derive(Debug, Subcommand)]
pub enum Target {
    K8s(K8sArgs),
}

/// Print a job as a Kubernetes CronJob (batch/v1), to run it on a cluster.
///
/// The schedule is one cron line that starts runs at exactly the job's
/// times, in the job's time zone (timeZone); a job whose schedules no cron
/// line matches exactly (seconds, years, the last day of the month, an
/// interval counted from the last run, schedules no single line covers) is
/// refused with the reason, exit status 2. In a fall-back DST change
/// Kubernetes starts a CronJob again at the repeated times, where systemd
/// starts the job once; that is warned about. What has no equivalent
/// (user, persistent, hardening, …) is listed as warnings on stderr.
///
/// The manifest goes to stdout as JSON (which is YAML too), or with
/// --output yaml as a YAML document; both validate against the Kubernetes
/// schema. See docs/kubernetes.md.
///
/// Examples:
///   jobctl export k8s nightly-refresh --image registry.example.com/warehouse:1.4
///   jobctl export k8s nightly-refresh --image IMAGE --output yaml | kubectl apply -f -
///   jobctl export k8s ./jobs.d/monthly-report.toml --namespace finance
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct K8sArgs {
    /// The job: its name in the jobs folder, or a job file (a path ending in .toml).
    pub job: String,
    /// The container image that has the job's command [default: a
    /// placeholder that no cluster pulls].
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The namespace to write into the manifest.
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// The CronJob's name [default: the job's name, made a Kubernetes name].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How to write the manifest.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Yaml,
}

pub fn run(paths: &Paths, args: ExportArgs) -> CliResult {
    match args.target {
        Target::K8s(args) => k8s(paths, args),
    }
}

fn k8s(paths: &Paths, args: K8sArgs) -> CliResult {
    let file = job_file(paths, &args.job)?;
    let now = jiff::Timestamp::now();
    let loaded = load::load_jobs_checked(
        paths,
        &JobSelection::Files(vec![file.clone()]),
        load::Checks {
            now: Some(now),
            systemd: None,
            groups: false,
        },
    )?;
    if loaded.has_errors() {
        return Err(super::invalid_jobs(&loaded.diagnostics));
    }
    let mut said = String::new();
    for diagnostic in &loaded.diagnostics {
        said.push_str(&output::escape(
            &diagnostic.to_string(),
            output::Lines::Keep,
        ));
        said.push('\n');
    }
    output::print_error_text(&said)?;
    let Some(job) = loaded.jobs.first() else {
        return Err(CliError::usage(anyhow!("{} holds no job", file.display())));
    };

    let zones = HostZones::new();
    let host_zone = zones.local();
    // The host's zone by name, when it has one that exists as a zone file.
    let host_zone_name = host_zone
        .iana_name()
        .filter(|name| jobctl_core::context::ZoneLookup::zone(&zones, name).is_some())
        .map(str::to_string);
    let options = K8sOptions {
        image: args.image.as_deref(),
        namespace: args.namespace.as_deref(),
        name: args.name.as_deref(),
        host_zone: &host_zone,
        host_zone_name: host_zone_name.as_deref(),
        zones: &zones,
        now,
    };
    let cron_job = export::cron_job(job, &options).map_err(|refusals| {
        let listing: Vec<String> = refusals.iter().map(|r| format!("  {r}")).collect();
        let mut error = CliError::usage(anyhow!(
            "cannot export job {} ({}) as a Kubernetes CronJob:\n{}",
            job.name,
            job.source,
            listing.join("\n")
        ));
        for refusal in &refusals {
            match &refusal.hint {
                Some(hint) if refusals.len() > 1 => {
                    error = error.hint(format!("{}: {hint}", refusal.subject));
                }
                Some(hint) => error = error.hint(hint),
                None => {}
            }
        }
        error
    })?;
    for warning in &cron_job.warnings {
        output::warn(warning);
    }
    let text = match args.output {
        Format::Json => cron_job.manifest.to_json(),
        Format::Yaml => cron_job.manifest.to_yaml(),
    };
    output::print_text(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// The job file `job` names: a path when it looks like one, else
/// `<jobs folder>/<job>.toml`.
fn job_file(paths: &Paths, job: &str) -> Result<PathBuf, CliError> {
    if job.contains('/') || job.ends_with(".toml") {
        return Ok(PathBuf::from(job));
    }
    if let Err(message) = jobctl_core::naming::JobName::new(job) {
        return Err(CliError::usage(anyhow!("{message}")));
    }
    let file = paths.jobs_dir.join(format!("{job}.toml"));
    if !file.exists() {
        return Err(
            CliError::usage(anyhow!("no job {job} in {}", paths.jobs_dir.display())).hint(format!(
                "`{}` lists the jobs; a job file can be given by its path",
                crate::paths::jobctl("list")
            )),
        );
    }
    Ok(file)
}
