//! jobctl's own exit statuses: the one list. `--help` prints it
//! ([`help`]), docs/operations.md ("Exit statuses") quotes it (a test keeps
//! the two in step), and every command exits with one of these or passes a
//! job's own status through (`run --wait`, `exec`, `logs --journal`).

use std::fmt::Write as _;
use std::process::ExitCode;

/// An exit status of jobctl itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Success,
    /// The work failed: I/O, systemd, a database (or `health` found a
    /// problem, `apply` stopped part-way: the report says what was done).
    Failure,
    /// A usage error or invalid input (bad flags, job files that do not
    /// validate): nothing was changed.
    Usage,
    /// `apply --check`: applying would change something (so Ansible can tell
    /// "would change" from "failed").
    ChangesPending,
    /// `run`: systemd refused the start or began no new run (docs/operations.md,
    /// "`run`"); never the previous run's status.
    NotStarted,
    /// `history`, `logs`: what could be read was shown, but a database that
    /// could not be opened or failed its checks, or a row that could not be
    /// decoded, was left out (each said in a warning).
    Partial,
    /// `apply`: the valid jobs were applied (or, with `--check`, would be),
    /// but jobs whose files do not validate were skipped, their installed
    /// units left as they were (the report and `health` name them).
    InvalidSkipped,
    /// `exec`: the shim's own failure before the command ran (a bad argument,
    /// a missing `--working-directory`), as `env(1)`; otherwise `exec` exits
    /// with the command's own status (126 not executable, 127 not found).
    ShimError,
}

impl Exit {
    /// Every status, in the order `--help` lists them.
    pub const ALL: [Exit; 8] = [
        Exit::Success,
        Exit::Failure,
        Exit::Usage,
        Exit::ChangesPending,
        Exit::NotStarted,
        Exit::Partial,
        Exit::InvalidSkipped,
        Exit::ShimError,
    ];

    pub const fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::Usage => 2,
            Exit::ChangesPending => 3,
            Exit::NotStarted => 4,
            Exit::Partial => 5,
            Exit::InvalidSkipped => 6,
            Exit::ShimError => 125,
        }
    }

    /// One line for `--help` and docs/operations.md.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Failure => "failure (apply: stopped part-way; health: found a problem)",
            Exit::Usage => "usage error or invalid input; nothing was changed",
            Exit::ChangesPending => "apply --check: something would change",
            Exit::NotStarted => {
                "run: the job did not start (else, with --wait, the job's own status)"
            }
            Exit::Partial => {
                "history, logs, metrics: shown, but something could not be read (see the warnings)"
            }
            Exit::InvalidSkipped => {
                "apply: applied, but invalid jobs were skipped (their units left as they were)"
            }
            Exit::ShimError => {
                "exec: the shim's own error (else the command's own status, as env(1))"
            }
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// The text after `jobctl --help`: the exit statuses, then where the
/// documentation is.
pub fn help() -> String {
    let mut text = String::from("Exit status:\n");
    for exit in Exit::ALL {
        let _ = writeln!(text, "  {:>3}  {}", exit.code(), exit.meaning());
    }
    text.push_str(
        "Documentation: jobctl(1) and a page per command (jobctl-apply(1) …), jobctl.toml(5) (job\n\
         files), jobctl-config.toml(5) (the configuration); /usr/share/doc/jobctl (operating jobs,\n\
         schedules, notifications, the design).",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut codes: Vec<u8> = Exit::ALL.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Exit::ALL.len());
    }

    /// docs/operations.md lists the same statuses with the same meanings,
    /// as rows `| N | meaning |` of its "Exit statuses" table.
    #[test]
    fn operations_md_lists_every_status() {
        let doc = include_str!("../../docs/operations.md");
        let section = doc
            .split("\n## Exit statuses\n")
            .nth(1)
            .expect("docs/operations.md has a section \"## Exit statuses\"");
        let section = section.split("\n## ").next().unwrap_or(section);
        let rows: Vec<&str> = section
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| status") && !l.starts_with("|-"))
            .collect();
        let want: Vec<String> = Exit::ALL
            .iter()
            .map(|e| format!("| {} | {} |", e.code(), e.meaning()))
            .collect();
        assert_eq!(rows, want, "docs/operations.md, \"Exit statuses\"");
    }
}
