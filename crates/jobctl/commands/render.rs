//! `jobctl render`: print the units a job file becomes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliResult;
use crate::load::{self, JobSelection};
use crate::output;
use crate::paths::Paths;
use crate::rendering;

/// Print the .service/.timer pair a job file renders to, without installing it.
///
/// Examples:
///   jobctl render jobs.d/nightly-refresh.toml
///   jobctl render --json jobs.d/*.toml
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RenderArgs {
    /// Job files to render.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub render: rendering::RenderFlags,
    /// Print the units as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &Paths, args: RenderArgs) -> CliResult {
    let loaded = load::load_jobs_checked(
        paths,
        &JobSelection::Files(args.files.clone()),
        load::Checks {
            now: None,
            systemd: args.render.target(),
        },
    )?;
    if loaded.has_errors() {
        return Err(super::invalid_jobs(&loaded.diagnostics));
    }
    let exe = rendering::jobctl_path(&loaded, args.render.jobctl_path.as_ref())?;
    let rendered = rendering::render_all(&loaded, paths, &exe, args.render.systemd_version)
        .map_err(super::render_failures)?;
    if args.json {
        output::print_json(&rendered)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut text = String::new();
    for (index, job) in rendered.iter().enumerate() {
        if index > 0 {
            text.push('\n');
        }
        for unit in std::iter::once(&job.service).chain(job.timer.as_ref()) {
            if !text.is_empty() && !text.ends_with("\n\n") {
                text.push('\n');
            }
            text.push_str(&format!(
                "# {}\n",
                paths.unit_dir.join(&unit.name).display()
            ));
            text.push_str(&unit.contents);
        }
        if !job.timer_enabled && job.timer.is_some() {
            text.push_str("# (enabled = false: the timer is installed but not enabled)\n");
        }
    }
    output::print_text(&text)?;
    Ok(ExitCode::SUCCESS)
}
