//! The `jobctl` binary: parses arguments, calls into the library crates, prints.
//!
//! All logic lives in the `jobctl-*` crates; this crate owns the command line,
//! output formatting and the mapping of errors to exit codes (see [`error`]).

mod cli;
mod commands;
mod env;
mod error;
mod files;
mod history_db;
mod journal;
mod linger;
mod load;
mod notify_send;
mod output;
mod overview;
mod paths;
mod poke;
mod rendering;
mod systemd;
mod zones;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The run shim's hot path: its own small parser (commands/exec.rs).
    if let Some(code) = commands::exec::fast_path() {
        return code;
    }
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => err.report(),
    }
}
