//! `jobctl render`: print the units a job file becomes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::CliResult;
use crate::load::JobSelection;
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
    let rendered = super::render_offline(
        paths,
        &JobSelection::Files(args.files.clone()),
        &args.render,
    )?;
    if args.json {
        output::print_json("render", &serde_json::json!({ "jobs": rendered }))?;
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
