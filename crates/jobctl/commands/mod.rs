//! One module per subcommand: `XxxArgs` (clap) and a `run` function.

pub mod apply;
pub mod calendar;
pub mod enable;
pub mod exec;
pub mod export;
pub mod generate;
pub mod health;
pub mod history;
pub mod import;
pub mod list;
pub mod logs;
pub mod remove;
pub mod render;
pub mod run;
pub mod status;
pub mod validate;

use std::process::ExitCode;

use jobctl_core::diag::Diagnostic;
use jobctl_core::render::RenderError;

use crate::cli::{Cli, Command};
use crate::error::{CliError, CliResult};
use crate::paths::Paths;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> CliResult<ExitCode> {
    let Cli { global, command } = cli;
    let paths = Paths::resolve(&global).map_err(CliError::usage)?;
    match command {
        Command::Calendar(args) => calendar::run(args),
        Command::Import(args) => import::run(&paths, args),
        Command::Validate(args) => validate::run(&paths, args),
        Command::Render(args) => render::run(&paths, args),
        Command::Generate(args) => generate::run(&paths, args),
        Command::Exec(args) => exec::run(&paths, args.into()),
        Command::History(args) => history::run(&paths, args),
        Command::Logs(args) => logs::run(&paths, args),
        Command::Apply(args) => apply::run(&paths, args),
        Command::List(args) => list::run(&paths, args),
        Command::Status(args) => status::run(&paths, args),
        Command::Health(args) => health::run(&paths, args),
        Command::Run(args) => run::run(&paths, args),
        Command::Enable(args) => enable::run(&paths, args, true),
        Command::Disable(args) => enable::run(&paths, args, false),
        Command::Remove(args) => remove::run(&paths, args),
        Command::Export(args) => export::run(&paths, args),
    }
}

/// The error for commands that need valid jobs and found invalid ones: every
/// diagnostic, then the count.
pub fn invalid_jobs(diagnostics: &[Diagnostic]) -> CliError {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let listing: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    CliError::usage(anyhow::anyhow!(
        "{}\n{errors} error{} in the job files; nothing was changed",
        listing.join("\n"),
        if errors == 1 { "" } else { "s" }
    ))
    .hint(format!(
        "fix the files, then check them with `{}`",
        crate::paths::jobctl("validate")
    ))
}

/// The error for jobs that are valid but cannot be rendered on this host.
pub fn render_failures(failures: Vec<(String, RenderError)>) -> CliError {
    let listing: Vec<String> = failures
        .iter()
        .map(|(job, e)| format!("{job}: {e}"))
        .collect();
    CliError::usage(anyhow::anyhow!(
        "cannot render {} job(s); nothing was changed:\n{}",
        failures.len(),
        listing.join("\n")
    ))
}

/// The jobs of `selection`, every one valid, rendered as `flags` say (the
/// offline commands `render` and `generate`); an invalid or unrenderable job
/// is an error and nothing is returned.
pub fn render_offline(
    paths: &crate::paths::Paths,
    selection: &crate::load::JobSelection,
    flags: &crate::rendering::RenderFlags,
) -> Result<Vec<jobctl_core::render::RenderedJob>, CliError> {
    let loaded = crate::load::load_jobs_checked(
        paths,
        selection,
        crate::load::Checks {
            now: None,
            systemd: flags.target(),
        },
    )?;
    if loaded.has_errors() {
        return Err(invalid_jobs(&loaded.diagnostics));
    }
    let exe = crate::rendering::jobctl_path(&loaded, flags.jobctl_path.as_ref())?;
    crate::rendering::render_all(&loaded, paths, &exe, flags.systemd_version)
        .map_err(render_failures)
}
