//! The command line: global options and the list of subcommands.
//!
//! Each subcommand's arguments live beside its implementation in
//! `commands/<name>.rs`; this file only lists them.

use std::path::PathBuf;

use std::process::ExitCode;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

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

/// The heading the global options are listed under, apart from each
/// command's own.
const GLOBAL: &str = "Global options";

/// The global options, by id: which jobs, units and configuration a
/// command reaches.
const GLOBAL_IDS: [&str; 4] = ["user", "jobs_dir", "unit_dir", "config"];

/// Commands none of the global options applies to: they are accepted there
/// (as everywhere) but not listed in their help.
const WITHOUT_GLOBALS: [&str; 1] = ["calendar"];

/// The command line as clap knows it, with the global options hidden from
/// the help of the commands they do not apply to.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    // Global options reach the subcommands when the command is built.
    cmd.build();
    for name in WITHOUT_GLOBALS {
        let mut sub = cmd
            .find_subcommand(name)
            .cloned()
            .expect("a subcommand named in WITHOUT_GLOBALS");
        for id in GLOBAL_IDS {
            sub = sub.mut_arg(id, |a| a.hide(true));
        }
        cmd = cmd.mut_subcommand(name, |_| sub);
    }
    cmd
}

/// Parses the process's arguments (clap's own errors, `--help` and
/// `--version` are returned as errors, for [`parse_error`]).
pub fn parse() -> Result<Cli, clap::Error> {
    let mut cmd = command();
    let matches = cmd.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

/// A command line clap refused (or `--help`, `--version`): printed as clap
/// prints it, and with `--json` also as the one JSON object on stdout.
pub fn parse_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let shown = matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if json && !shown {
        let rendered = err.render().to_string();
        let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
        let error = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        let hints: Vec<String> = lines
            .filter_map(|l| l.trim().strip_prefix("tip: ").map(str::to_string))
            .collect();
        let _ = crate::output::print_json(&crate::error::JsonError {
            error,
            causes: Vec::new(),
            hints: &hints,
            diagnostics: &[],
            exit_status: crate::exit::Exit::Usage.code(),
        });
    }
    let _ = err.print();
    if shown {
        ExitCode::SUCCESS
    } else {
        crate::exit::Exit::Usage.into()
    }
}

/// Options every command accepts.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Per-user mode: the user's own systemd manager (`systemctl --user`) and
    /// paths under ~/.config and ~/.local/state instead of /etc and /var/lib.
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub user: bool,

    /// Folder of job files [default: /etc/jobctl/jobs.d, or
    /// ~/.config/jobctl/jobs.d with --user].
    #[arg(long, global = true, value_name = "DIR", env = env::JOBS_DIR, help_heading = GLOBAL)]
    pub jobs_dir: Option<PathBuf>,

    /// Folder jobctl writes unit files to [default: /etc/systemd/system, or
    /// ~/.config/systemd/user with --user].
    #[arg(long, global = true, value_name = "DIR", env = env::UNIT_DIR, help_heading = GLOBAL)]
    pub unit_dir: Option<PathBuf>,

    /// Global configuration file [default: /etc/jobctl/config.toml, or
    /// ~/.config/jobctl/config.toml with --user].
    #[arg(long, global = true, value_name = "FILE", env = env::CONFIG, help_heading = GLOBAL)]
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
    Cat(commands::cat::CatArgs),
    Edit(commands::edit::EditArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
        super::command().debug_assert();
    }
}
