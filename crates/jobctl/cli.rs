//! The command line: global options and the list of subcommands.
//!
//! Each subcommand's arguments live beside its implementation in
//! `commands/<name>.rs`; this file only lists them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::env;

/// Declarative systemd-native jobs.
///
/// jobctl reads one TOML file per job from a jobs.d folder, renders each job as
/// a systemd .service/.timer pair, installs them through systemd's D-Bus API,
/// and records every run in a local SQLite history.
#[derive(Debug, Parser)]
#[command(
    name = "jobctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = crate::exit::help())]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Per-user mode: the user's own systemd manager (`systemctl --user`) and
    /// paths under ~/.config and ~/.local/state instead of /etc and /var/lib.
    #[arg(long, global = true)]
    pub user: bool,

    /// Folder of job files [default: /etc/jobctl/jobs.d, or
    /// ~/.config/jobctl/jobs.d with --user].
    #[arg(long, global = true, value_name = "DIR", env = env::JOBS_DIR)]
    pub jobs_dir: Option<PathBuf>,

    /// Folder jobctl writes unit files to [default: /etc/systemd/system, or
    /// ~/.config/systemd/user with --user].
    #[arg(long, global = true, value_name = "DIR", env = env::UNIT_DIR)]
    pub unit_dir: Option<PathBuf>,

    /// Global configuration file [default: /etc/jobctl/config.toml, or
    /// ~/.config/jobctl/config.toml with --user].
    #[arg(long, global = true, value_name = "FILE", env = env::CONFIG)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Validate(commands::validate::ValidateArgs),
    Render(commands::render::RenderArgs),
    Generate(commands::generate::GenerateArgs),
    Exec(commands::exec::ExecArgs),
    History(commands::history::HistoryArgs),
    Logs(commands::logs::LogsArgs),
    Apply(commands::apply::ApplyArgs),
    List(commands::list::ListArgs),
    Status(commands::status::StatusArgs),
    Health(commands::health::HealthArgs),
    Run(commands::run::RunArgs),
    /// Turn a job's timer on, persistently (until its job file changes).
    ///
    /// The operator's choice is kept by later `jobctl apply` runs until the
    /// job file itself changes; then the file's `enabled` key wins again
    /// (docs/operations.md).
    ///
    /// Examples:
    ///   jobctl enable nightly-refresh
    ///   jobctl --user enable sync-notes --json
    #[command(verbatim_doc_comment)]
    Enable(commands::enable::EnableArgs),
    /// Turn a job's timer off, persistently (until its job file changes).
    ///
    /// The job stays installed and can still be started with `jobctl run`.
    /// Later `jobctl apply` runs keep it off until the job file itself
    /// changes (docs/operations.md).
    ///
    /// Examples:
    ///   jobctl disable nightly-refresh
    ///   jobctl --user disable sync-notes --json
    #[command(verbatim_doc_comment)]
    Disable(commands::enable::EnableArgs),
    Remove(commands::remove::RemoveArgs),
    Calendar(commands::calendar::CalendarArgs),
    Import(commands::import::ImportArgs),
    Export(commands::export::ExportArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
