//! One module per subcommand: `XxxArgs` (clap) and a `run` function.

pub mod apply;
pub mod calendar;
pub mod cat;
pub mod completions;
pub mod edit;
pub mod enable;
pub mod exec;
pub mod export;
pub mod generate;
pub mod health;
pub mod history;
pub mod import;
pub mod list;
pub mod logs;
pub mod man_pages;
pub mod metrics;
pub mod notifications;
pub mod notify;
pub mod remove;
pub mod render;
pub mod run;
pub mod status;
pub mod token;
pub mod validate;
pub mod watch;

use std::process::ExitCode;

use jobctl_core::diag::Diagnostic;
use jobctl_core::render::RenderError;

use crate::cli::{Cli, Command};
use crate::error::{CliError, CliResult};
use crate::output;
use crate::paths::Paths;

/// Runs the parsed command line. A command given `--json` prints one JSON
/// object on stdout whatever happens: its report, or, when it fails before
/// printing one, the error ([`CliError::json`]).
pub fn dispatch(cli: Cli) -> ExitCode {
    let json = cli.command.wants_json();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            if json && !crate::output::json_printed() {
                let _ = crate::output::print_json("error", &err.json());
            }
            err.report()
        }
    }
}

/// Runs a parsed command line with its `--json` document captured instead of
/// printed ([`crate::output::capture_json`]): jobctl-web's way to answer
/// with exactly what the CLI prints. On an error that came before any
/// document, the document is the error's JSON, as [`dispatch`] prints it.
/// Returns the exit status and the document.
pub fn run_captured(cli: Cli) -> (crate::exit::Exit, Vec<u8>) {
    let (result, mut json) = crate::output::capture_json(|| run(cli));
    let exit = match result {
        Ok(code) if code == ExitCode::SUCCESS => crate::exit::Exit::Success,
        Ok(code) if code == ExitCode::from(crate::exit::Exit::Partial) => {
            crate::exit::Exit::Partial
        }
        Ok(_) => crate::exit::Exit::Failure,
        Err(err) => {
            if json.is_empty() {
                json = serde_json::to_vec(&err.json()).unwrap_or_default();
            }
            err.exit()
        }
    };
    (exit, json)
}

/// The Prometheus exposition of `jobctl [GLOBAL…] metrics` (jobctl-web's
/// `/metrics`): the text, and the warnings the command would print (a
/// database that could not be read; its jobs' run metrics are left out).
pub fn metrics_text(global: &crate::cli::GlobalArgs) -> CliResult<metrics::Rendered> {
    let paths = Paths::resolve(global).map_err(CliError::usage)?.absolute();
    metrics::render(&paths)
}

impl Command {
    /// Whether `--json` was given.
    fn wants_json(&self) -> bool {
        match self {
            Command::Validate(a) => a.json,
            Command::Render(a) => a.json,
            Command::Generate(a) => a.json,
            Command::Exec(_) => false,
            Command::History(a) => a.wants_json(),
            Command::Logs(a) => a.json,
            Command::Apply(a) => a.json,
            Command::List(a) => a.json,
            Command::Status(a) => a.json,
            Command::Health(a) => a.json,
            Command::Run(a) => a.json,
            Command::Enable(a) | Command::Disable(a) => a.json,
            Command::Remove(a) => a.json,
            Command::Calendar(a) => a.json,
            Command::Import(a) => a.wants_json(),
            Command::Cat(a) => a.json,
            Command::Edit(_) => false,
            Command::Watch(a) => a.json,
            Command::Notifications(a) => a.json,
            Command::Notify(a) => match &a.action {
                notify::NotifyAction::Test(t) => t.json,
            },
            Command::Completions(_) | Command::GenerateManPages(_) => false,
            // Its output is a manifest; errors are text on stderr.
            Command::Export(_) => false,
            Command::Token(a) => match &a.action {
                token::TokenAction::List(l) => l.json,
                _ => false,
            },
            Command::Metrics(_) => false,
        }
    }
}

fn run(cli: Cli) -> CliResult<ExitCode> {
    let Cli { global, command } = cli;
    let paths = Paths::resolve(&global).map_err(CliError::usage)?;
    // Commands that install jobs or compare them with installed units.
    let live = paths.absolute();
    let paths = match command {
        Command::Apply(_)
        | Command::List(_)
        | Command::Status(_)
        | Command::Health(_)
        | Command::Metrics(_)
        | Command::Run(_)
        | Command::Enable(_)
        | Command::Disable(_)
        | Command::Remove(_) => live,
        _ => paths,
    };
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
        Command::Cat(args) => cat::run(&paths, args),
        Command::Edit(args) => edit::run(&paths, args),
        Command::Watch(args) => watch::run(&paths, args),
        Command::Notifications(args) => notifications::run(&paths, args),
        Command::Notify(args) => notify::run(&paths, args),
        Command::Completions(args) => completions::run(args),
        Command::GenerateManPages(args) => man_pages::run(args),
        Command::Export(args) => export::run(&paths, args),
        Command::Token(args) => token::run(&paths, args),
        Command::Metrics(args) => metrics::run(&paths, args),
    }
}

/// The error for commands that need valid jobs and found invalid ones: every
/// diagnostic, then the count.
pub fn invalid_jobs(diagnostics: &[Diagnostic]) -> CliError {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    CliError::usage(anyhow::anyhow!(
        "{} in the job files; nothing was changed",
        crate::view::format::count(errors, "error", "errors")
    ))
    .hint(format!(
        "fix the files, then check them with `{}`",
        crate::paths::jobctl("validate")
    ))
    .with_diagnostics(diagnostics.to_vec())
}

/// The error for jobs that are valid but cannot be rendered on this host.
pub fn render_failures(failures: Vec<(String, RenderError)>) -> CliError {
    let listing: Vec<String> = failures
        .iter()
        .map(|(job, e)| format!("{job}: {e}"))
        .collect();
    CliError::usage(anyhow::anyhow!(
        "cannot render {}; nothing was changed:\n{}",
        crate::view::format::count(failures.len(), "job", "jobs"),
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
            groups: false,
        },
    )?;
    if loaded.has_errors() {
        return Err(invalid_jobs(&loaded.diagnostics));
    }
    let exe = crate::rendering::jobctl_path(&loaded, flags.jobctl_path.as_ref())?;
    crate::rendering::render_all(&loaded, paths, &exe, flags.systemd_version)
        .map_err(render_failures)
}

/// For `history JOB` and `notifications JOB` that found nothing: when no job
/// file has that name either, a note on stderr says so, with the closest
/// name (a typo would otherwise look like a job without records). Not an
/// error: a removed job's records stay readable under its name.
pub(crate) fn note_if_no_such_job(paths: &Paths, name: &str) {
    let known = completions::names_in(&paths.jobs_dir);
    if known.iter().any(|k| k == name) {
        return;
    }
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    let hint = jobctl_core::walk::suggest(name, &refs)
        .map(|s| format!("; did you mean {s:?}?"))
        .unwrap_or_default();
    let text = format!("no job {name:?} in {}{hint}", paths.jobs_dir.display());
    output::note(&output::escape(&text, output::Lines::Escape));
}
