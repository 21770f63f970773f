//! `jobctl generate-man-pages` (hidden): writes the man pages
//! ([`crate::manual`]) into `OUT/man1` and `OUT/man5`, for
//! packaging/build-deb. Not for operators: the pages are installed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;

use crate::error::{CliError, CliResult};
use crate::files;
use crate::manual::{self, Header};

#[derive(Debug, Args)]
pub struct ManPagesArgs {
    /// Folder to write man1/ and man5/ into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// docs/job-file.md, the source of jobctl.toml(5) and
    /// jobctl-config.toml(5).
    #[arg(long, value_name = "FILE")]
    pub job_file_doc: PathBuf,
    /// The date the pages carry (YYYY-MM-DD): the changelog's, so that
    /// a rebuild gives the same pages.
    #[arg(long, value_name = "DATE")]
    pub date: String,
}

pub fn run(args: ManPagesArgs) -> CliResult {
    // Written into every `.TH` line as it is: only a date.
    if args.date.parse::<jiff::civil::Date>().is_err() || args.date.len() != 10 {
        return Err(CliError::usage(anyhow!(
            "--date {:?} is not a date written YYYY-MM-DD",
            args.date
        )));
    }
    let doc = files::read_text_limited(&args.job_file_doc, files::TEXT_LIMIT)
        .with_context(|| format!("cannot read {}", args.job_file_doc.display()))
        .map_err(CliError::usage)?;
    let pages = manual::pages(&doc, &Header::new(&args.date))
        .map_err(|e| CliError::usage(anyhow!("{e}")))?;
    for page in pages {
        let dir = args.out.join(format!("man{}", page.section()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))
            .map_err(CliError::failure)?;
        let path = dir.join(&page.file_name);
        std::fs::write(&path, page.text)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(CliError::failure)?;
    }
    Ok(ExitCode::SUCCESS)
}
