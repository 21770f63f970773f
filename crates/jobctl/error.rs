//! Errors at the binary's edge: a kind that decides the exit code, the error
//! chain, and hints that tell the operator what to do next.
//!
//! Printed as `Error: …` / `Caused by: …` / `Hint: …` on stderr.

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

/// Exit status for a failure while doing the work.
pub const EXIT_FAILURE: u8 = 1;
/// Exit status for a usage error or invalid input (bad job files, bad flags).
pub const EXIT_USAGE: u8 = 2;
/// Exit status of `jobctl run` when the job did not start: systemd refused
/// the start or it began no new run (docs/operations.md, "`run`").
pub const EXIT_NOT_STARTED: u8 = 4;
/// Exit status of `history` and `logs` when they printed what they could
/// read but left something out that they should have shown: a database that
/// could not be opened or failed its checks, a row that could not be decoded
/// (each said in a warning on stderr).
pub const EXIT_PARTIAL: u8 = 5;
// `jobctl apply --check` exits 3 when it would change something
// (commands/apply.rs, EXIT_CHANGES_PENDING), so Ansible can tell "would change"
// from "failed". `jobctl exec` exits with its command's status (125-127 for
// its own failures, as env(1)).

/// What went wrong, as far as the exit status is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The work failed (I/O, systemd, database).
    Failure,
    /// The input was wrong: bad arguments, invalid job files.
    Usage,
    /// `jobctl run`: the job did not start.
    NotStarted,
}

/// An error to report to the operator.
#[derive(Debug)]
pub struct CliError {
    kind: ErrorKind,
    error: anyhow::Error,
    hints: Vec<String>,
}

impl CliError {
    pub fn failure(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            kind: ErrorKind::Failure,
            error: error.into(),
            hints: Vec::new(),
        }
    }

    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            kind: ErrorKind::Usage,
            error: error.into(),
            hints: Vec::new(),
        }
    }

    /// Adds a hint printed after the error.
    pub fn hint(mut self, hint: impl Display) -> Self {
        self.hints.push(hint.to_string());
        self
    }

    /// The job did not start (`jobctl run`).
    pub fn not_started(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            kind: ErrorKind::NotStarted,
            error: error.into(),
            hints: Vec::new(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.kind {
            ErrorKind::Failure => EXIT_FAILURE,
            ErrorKind::Usage => EXIT_USAGE,
            ErrorKind::NotStarted => EXIT_NOT_STARTED,
        }
    }

    /// Prints the error to stderr and returns the exit code to use.
    /// Errors can quote what users wrote (a database's schema, a crontab
    /// line): they are escaped like any other such text.
    pub fn report(self) -> ExitCode {
        use crate::output::{Lines, escape};
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(
            stderr,
            "Error: {}",
            escape(&self.error.to_string(), Lines::Keep)
        );
        for cause in self.error.chain().skip(1) {
            let _ = writeln!(
                stderr,
                "Caused by: {}",
                escape(&cause.to_string(), Lines::Keep)
            );
        }
        for hint in &self.hints {
            let _ = writeln!(stderr, "Hint: {}", escape(hint, Lines::Keep));
        }
        ExitCode::from(self.exit_code())
    }
}

impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> Self {
        CliError::failure(error)
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError::failure(error)
    }
}

/// The result type of every command.
pub type CliResult<T = ExitCode> = Result<T, CliError>;
