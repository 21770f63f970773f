//! The `jobctl` binary: parses arguments, calls into the library, prints.
//!
//! Everything but `main` is the `jobctl` library (crates/jobctl/lib.rs), which
//! `jobctl-web` shares.

use std::process::ExitCode;

use jobctl::{cli, commands};

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
