//! One module per subcommand: `XxxArgs` (clap) and a `run` function.

pub mod calendar;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliResult;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> CliResult<ExitCode> {
    let Cli { global, command } = cli;
    let _ = &global;
    match command {
        Command::Calendar(args) => calendar::run(args),
        Command::Version => {
            crate::output::print_text(concat!("jobctl ", env!("CARGO_PKG_VERSION"), "\n"))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
