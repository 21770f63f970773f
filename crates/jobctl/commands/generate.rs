//! `jobctl generate`: write the units of every job into a folder, offline,
//! for review or packaging.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use crate::error::CliResult;
use crate::load::{self, JobSelection};
use crate::output;
use crate::paths::Paths;
use crate::rendering;

/// Write the units of every job in the jobs folder into a folder, without
/// talking to systemd.
///
/// Nothing is written unless every job is valid. Files in the output folder
/// that jobctl generated earlier for jobs that no longer exist are removed;
/// other files are left alone.
///
/// Examples:
///   jobctl generate --jobs-dir ./jobs.d --out ./build/units
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct GenerateArgs {
    /// Folder to write the unit files to (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub render: rendering::RenderFlags,
    /// Print what was done as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize, Default)]
struct Outcome {
    out: String,
    jobs: usize,
    written: Vec<String>,
    unchanged: Vec<String>,
    removed: Vec<String>,
}

pub fn run(paths: &Paths, args: GenerateArgs) -> CliResult {
    let loaded = load::load_jobs_checked(
        paths,
        &JobSelection::Dir(paths.jobs_dir.clone()),
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
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let mut outcome = Outcome {
        out: args.out.display().to_string(),
        jobs: rendered.len(),
        ..Outcome::default()
    };
    let mut wanted = BTreeSet::new();
    for unit in rendered
        .iter()
        .flat_map(|r| std::iter::once(&r.service).chain(r.timer.as_ref()))
    {
        wanted.insert(unit.name.clone());
        let path = args.out.join(&unit.name);
        if crate::files::read_limited(&path, crate::files::STATE_LIMIT)
            .is_ok_and(|old| old == unit.contents.as_bytes())
        {
            outcome.unchanged.push(unit.name.clone());
            continue;
        }
        write_atomically(&path, unit.contents.as_bytes())?;
        outcome.written.push(unit.name.clone());
    }
    for entry in
        fs::read_dir(&args.out).with_context(|| format!("cannot read {}", args.out.display()))?
    {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if wanted.contains(&name) || !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        let contents = crate::files::read_text_limited(&entry.path(), crate::files::STATE_LIMIT)
            .unwrap_or_default();
        if is_owned(&contents) {
            fs::remove_file(entry.path())
                .with_context(|| format!("cannot remove {}", entry.path().display()))?;
            outcome.removed.push(name);
        }
    }

    if args.json {
        output::print_json(&outcome)?;
    } else {
        output::print_text(&format!(
            "generated {} units for {} jobs in {}: {} written, {} unchanged, {} removed\n",
            outcome.written.len() + outcome.unchanged.len(),
            outcome.jobs,
            outcome.out,
            outcome.written.len(),
            outcome.unchanged.len(),
            outcome.removed.len()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a unit file carries jobctl's ownership mark.
fn is_owned(contents: &str) -> bool {
    let mark = format!("{}=", jobctl_core::render::OWNER_KEY);
    contents.lines().any(|line| line.starts_with(&mark))
}

/// Writes a file by writing a temporary file in the same folder, syncing it
/// and renaming it over the target, so readers never see half a file.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
