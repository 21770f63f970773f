//! `jobctl generate`: write the units of every job into a folder, offline,
//! for review or packaging.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use jobctl_core::plan::ownership;
use jobctl_systemd::UnitDir;
use serde::Serialize;

use crate::error::CliResult;
use crate::load::JobSelection;
use crate::output;
use crate::paths::Paths;
use crate::rendering;

/// Write the units of every job in the jobs folder into a folder, without
/// talking to systemd.
///
/// Nothing is written unless every job is valid. Units in the output folder
/// that jobctl generated earlier for jobs that no longer exist (files whose
/// Unit section names their job in X-Jobctl-Job=, as apply judges them) are
/// removed; other files are left alone.
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
    let rendered = super::render_offline(
        paths,
        &JobSelection::Dir(paths.jobs_dir.clone()),
        &args.render,
    )?;
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let dir = UnitDir::new(&args.out);
    let existing: BTreeMap<String, Option<String>> = dir
        .read_units()
        .with_context(|| format!("cannot read {}", args.out.display()))?
        .into_iter()
        .map(|u| (u.name, u.contents))
        .collect();

    let mut outcome = Outcome {
        out: args.out.display().to_string(),
        jobs: rendered.len(),
        ..Outcome::default()
    };
    let mut wanted = BTreeSet::new();
    let mut files = Vec::new();
    for unit in rendered
        .iter()
        .flat_map(|r| std::iter::once(&r.service).chain(r.timer.as_ref()))
    {
        wanted.insert(unit.name.as_str());
        if existing.get(&unit.name).and_then(Option::as_deref) == Some(unit.contents.as_str()) {
            outcome.unchanged.push(unit.name.clone());
        } else {
            files.push((unit.name.clone(), unit.contents.clone()));
        }
    }
    // Atomically, as apply writes units: the folder never holds half a file.
    dir.write_all(&files)
        .with_context(|| format!("cannot write the units into {}", args.out.display()))?;
    outcome.written = files.into_iter().map(|(name, _)| name).collect();
    // Units jobctl generated earlier for jobs that are gone: by the one
    // ownership rule apply uses too.
    let stale: Vec<String> = existing
        .iter()
        .filter(|(name, contents)| {
            !wanted.contains(name.as_str()) && contents.as_deref().and_then(ownership).is_some()
        })
        .map(|(name, _)| name.clone())
        .collect();
    dir.remove_all(&stale)
        .with_context(|| format!("cannot remove stale units from {}", args.out.display()))?;
    outcome.removed = stale;

    if args.json {
        output::print_json("generate", &outcome)?;
    } else {
        let count = crate::view::format::count;
        output::print_text(&format!(
            "generated {} for {} in {}: {} written, {} unchanged, {} removed\n",
            count(
                outcome.written.len() + outcome.unchanged.len(),
                "unit",
                "units"
            ),
            count(outcome.jobs, "job", "jobs"),
            outcome.out,
            outcome.written.len(),
            outcome.unchanged.len(),
            outcome.removed.len()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
