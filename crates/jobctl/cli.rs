//! The command line: global options and the list of subcommands.
//!
//! Each subcommand's arguments live beside its implementation in
//! `commands/<name>.rs`; this file only lists them.

use std::path::PathBuf;

use std::process::ExitCode;

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

/// The heading the global options are listed under, apart from each
/// command's own.
const GLOBAL: &str = "Global options";

/// The global options for commands none of them applies to (`calendar`):
/// accepted as everywhere (a script may pass them to every command), but not
/// listed in the command's help. Declaring them here keeps clap from
/// propagating the global ones into the command.
#[derive(Debug, Args, Clone, Default)]
pub struct UnusedGlobals {
    #[arg(id = "user", long = "user", hide = true)]
    user: bool,
    #[arg(id = "jobs_dir", long = "jobs-dir", hide = true, value_name = "DIR")]
    jobs_dir: Option<PathBuf>,
    #[arg(id = "unit_dir", long = "unit-dir", hide = true, value_name = "DIR")]
    unit_dir: Option<PathBuf>,
    #[arg(id = "config", long = "config", hide = true, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Parses the process's arguments (clap's own errors, `--help` and
/// `--version` are returned as errors, for [`parse_error`]).
pub fn parse() -> Result<Cli, clap::Error> {
    Cli::try_parse()
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
        let (error, hints) = refusal_parts(&err);
        let _ = crate::output::print_json(
            "error",
            &crate::error::JsonError {
                error,
                causes: Vec::new(),
                hints: &hints,
                diagnostics: &[],
                exit_status: crate::exit::Exit::Usage.code(),
            },
        );
    }
    let _ = err.print();
    if shown {
        ExitCode::SUCCESS
    } else {
        crate::exit::Exit::Usage.into()
    }
}

/// A refusal of clap's as an error document's `error` and `hints`: its
/// first line (without `error: `), then each `tip: …` and the accepted
/// values (`possible values: running, success, …`).
pub fn refusal_parts(err: &clap::Error) -> (String, Vec<String>) {
    let rendered = err.render().to_string();
    let mut lines = rendered.lines().filter(|l| !l.trim().is_empty());
    let error = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let hints = lines
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("tip: ").map(str::to_string).or_else(|| {
                l.strip_prefix('[')
                    .and_then(|l| l.strip_suffix(']'))
                    .filter(|l| l.starts_with("possible values: "))
                    .map(str::to_string)
            })
        })
        .collect();
    (error, hints)
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
    Metrics(commands::metrics::MetricsArgs),
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
    Watch(commands::watch::WatchArgs),
    Notifications(commands::notifications::NotificationsArgs),
    Notify(commands::notify::NotifyArgs),
    Completions(commands::completions::CompletionsArgs),
    /// Write jobctl's man pages into a folder (used by packaging/build-deb).
    #[command(hide = true, name = "generate-man-pages")]
    GenerateManPages(commands::man_pages::ManPagesArgs),
    Export(commands::export::ExportArgs),
    Token(commands::token::TokenArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// Every command's examples are shown as written, one per line (clap
    /// would reflow a doc comment into one paragraph without
    /// `verbatim_doc_comment`).
    #[test]
    fn examples_are_kept_verbatim() {
        let mut cmd = super::Cli::command();
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        let mut seen = 0;
        for name in names {
            let sub = cmd.find_subcommand_mut(&name).unwrap();
            let help = sub.render_long_help().to_string();
            let Some((_, examples)) = help.split_once("Examples:") else {
                continue;
            };
            assert!(
                examples.starts_with('\n'),
                "{name}: the examples are reflowed into a paragraph: {examples:?}"
            );
            seen += 1;
            let first = examples
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            assert!(
                first.starts_with("  jobctl ")
                    || first.starts_with("  EDITOR=")
                    || first.starts_with("  crontab "),
                "{name}: the first example is not a line of its own: {first:?}"
            );
        }
        assert!(seen >= 15, "only {seen} commands have examples");
    }

    /// The global options are listed under a heading of their own, and not
    /// at all where none applies (`calendar`).
    #[test]
    fn global_options_have_their_own_heading() {
        let mut cmd = super::Cli::command();
        cmd.build();
        let apply = cmd
            .find_subcommand_mut("apply")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(apply.contains("Global options:\n"), "{apply}");
        let calendar = cmd
            .find_subcommand_mut("calendar")
            .unwrap()
            .render_long_help()
            .to_string();
        for flag in ["--jobs-dir", "--unit-dir", "--config", "--user"] {
            assert!(!calendar.contains(flag), "calendar --help lists {flag}");
        }
    }
}
