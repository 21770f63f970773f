//! The `jobctl` binary: parses arguments, calls into the library crates, prints.
//!
//! All logic lives in the `jobctl-*` crates; this crate owns the command line
//! ([`cli`], [`commands`]), what people read ([`view`]), the one way to
//! stdout and stderr ([`output`]) and the exit statuses ([`exit`]).

mod cli;
mod commands;
mod env;
mod error;
mod exit;
mod files;
mod history_db;
mod host;
mod journal;
mod linger;
mod load;
mod manual;
mod notify_send;
mod output;
mod overview;
mod paths;
mod poke;
mod rendering;
mod systemd;
mod view;
mod zones;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The run shim's hot path: its own small parser (commands/exec.rs).
    if let Some(code) = commands::exec::fast_path() {
        return code;
    }
    // A TAB in a shell with jobctl's completion script (commands/completions.rs).
    commands::completions::complete_if_asked();
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(err) => return cli::parse_error(err),
    };
    commands::dispatch(cli)
}
