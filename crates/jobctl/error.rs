//! Errors at the binary's edge: a kind that decides the exit status
//! ([`Exit`]), the error chain, and hints that tell the operator what to do
//! next.
//!
//! Printed as `Error: …` / `Caused by: …` / `Hint: …` on stderr.

use std::fmt::Display;
use std::process::ExitCode;

use jobctl_core::diag::Diagnostic;
use serde::Serialize;

use crate::exit::Exit;
use crate::output;

/// An error to report to the operator.
#[derive(Debug)]
pub struct CliError {
    /// The exit status: [`Exit::Failure`], [`Exit::Usage`] or
    /// [`Exit::NotStarted`].
    exit: Exit,
    error: anyhow::Error,
    hints: Vec<String>,
    /// The problems found in files (job files, the configuration), each
    /// with its file, line, column and key: printed before the error, and
    /// part of its `--json` form.
    diagnostics: Vec<Diagnostic>,
}

/// A failed command's one JSON object on stdout (with `--json`).
#[derive(Debug, Serialize)]
pub struct JsonError<'a> {
    pub error: String,
    /// The error's causes, outermost first.
    pub causes: Vec<String>,
    pub hints: &'a [String],
    pub diagnostics: &'a [Diagnostic],
    pub exit_status: u8,
}

impl CliError {
    pub fn failure(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit: Exit::Failure,
            error: error.into(),
            hints: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            exit: Exit::Usage,
            error: error.into(),
            hints: Vec::new(),
            diagnostics: Vec::new(),
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
            exit: Exit::NotStarted,
            error: error.into(),
            hints: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    /// Attaches the diagnostics that explain the error.
    pub fn with_diagnostics(mut self, diagnostics: Vec<Diagnostic>) -> Self {
        self.diagnostics = diagnostics;
        self
    }

    /// The error as the one JSON object a `--json` command prints.
    pub fn json(&self) -> JsonError<'_> {
        JsonError {
            error: self.error.to_string(),
            causes: self.error.chain().skip(1).map(|c| c.to_string()).collect(),
            hints: &self.hints,
            diagnostics: &self.diagnostics,
            exit_status: self.exit.code(),
        }
    }

    /// The exit status this error ends the command with.
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// Prints the error to stderr ([`output::error`]) and returns the exit
    /// code to use. Errors can quote what users wrote (a database's schema,
    /// a crontab line): they are escaped like any other such text.
    pub fn report(self) -> ExitCode {
        output::diagnostics(&self.diagnostics);
        output::error(&self.error.to_string());
        for cause in self.error.chain().skip(1) {
            output::caused_by(&cause.to_string());
        }
        for hint in &self.hints {
            output::hint(hint);
        }
        ExitCode::from(self.exit())
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
