//! `jobctl status [JOB]`: the `list` row of one job in detail (or of every
//! job): its last run from the history, the failure streak, what systemd
//! itself says about the service's last run, where to find the logs, and the
//! problems `jobctl health` would report.

use std::process::ExitCode;

use clap::Args;

use crate::commands::health::{Zones, problems_of};
use crate::commands::list;
use crate::error::CliResult;
use crate::output;
use crate::overview;
use crate::paths::Paths;
use crate::view::list::JobRow;
use crate::view::status::{self, StatusRow, UnitView};
use crate::zones::HostZones;

/// Show a job's state, schedule, labels, next and last run, and problems in
/// detail.
///
/// Examples:
///   jobctl status nightly-refresh
///   jobctl status --team analytics
///   jobctl status --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct StatusArgs {
    /// The job (all jobs when omitted).
    pub job: Option<String>,
    #[command(flatten)]
    pub labels: overview::LabelArgs,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(paths: &Paths, args: StatusArgs) -> CliResult {
    let only = args.job.clone().map(|j| vec![j]);
    let mut overview = overview::gather(
        paths,
        overview::Options {
            only: only.as_deref(),
            history: true,
            unit_details: true,
            unrecorded: true,
            run_counts: false,
        },
    )?;
    args.labels.retain(&mut overview);
    list::report_unread(&overview);
    let host = HostZones::new();
    let local = host.local();
    let zones = Zones {
        lookup: &host,
        local: &local,
    };
    let rows: Vec<StatusRow> = overview
        .jobs
        .iter()
        .map(|view| StatusRow {
            row: JobRow::of(view),
            unit: UnitView::of(view),
            problems: problems_of(view, &overview, 1, &zones),
            database: view
                .history
                .as_ref()
                .map(|h| h.database.display().to_string()),
        })
        .collect();
    if args.json {
        #[derive(serde::Serialize)]
        struct Document<'a> {
            jobs: &'a [StatusRow],
        }
        output::print_json_host("status", &Document { jobs: &rows })?;
        return Ok(ExitCode::SUCCESS);
    }
    output::print_text(&status::text(&overview, &rows, &local))?;
    Ok(ExitCode::SUCCESS)
}
