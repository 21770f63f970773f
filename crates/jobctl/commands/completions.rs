//! `jobctl completions SHELL`, and the completion engine behind it.
//!
//! Completion is dynamic (clap_complete's `CompleteEnv`, as jj does): the
//! script a shell loads is a few lines that call `jobctl` again on every
//! TAB, with `JOBCTL_COMPLETE=<shell>` set and the words typed so far; jobctl
//! answers from the same clap definitions as `--help` (subcommands, options,
//! values, paths) plus the job names in the jobs folder. So a new subcommand
//! or option completes with no step of its own, and so does a new argument
//! that takes a job, as long as it is called `job` or shown as `JOB`
//! ([`with_job_names`]). The answer is computed before anything else runs
//! ([`complete_if_asked`]): no configuration is read, no systemd asked.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{self, CompleteEnv, EnvCompleter};

use crate::cli::{Cli, GlobalArgs};
use crate::env as vars;
use crate::error::{CliError, CliResult};
use crate::output;
use crate::paths::Paths;

/// The variable that turns a run of jobctl into a completion request. Not
/// clap's default `COMPLETE`: a variable that generic is too likely to be set
/// for something else, and any value but a shell's name would fail the
/// command.
pub const COMPLETE_VAR: &str = "JOBCTL_COMPLETE";

/// The program the scripts call back: the `jobctl` found in `PATH`, the one
/// whose command line is being completed.
const COMPLETER: &str = "jobctl";

/// Print the shell completion script for bash, zsh or fish.
///
/// The script asks jobctl itself on every TAB (with JOBCTL_COMPLETE set), so
/// it completes subcommands, options and their values, files, and the names
/// of the jobs in the jobs folder (--user and --jobs-dir on the line are
/// taken into account). The Debian package installs the three scripts where
/// the shells find them; to load one by hand:
///
///   bash: source <(jobctl completions bash)          (in ~/.bashrc)
///   zsh:  source <(jobctl completions zsh)           (in ~/.zshrc, after compinit)
///   fish: jobctl completions fish | source           (in ~/.config/fish/config.fish)
///
/// Examples:
///   jobctl completions bash > ~/.local/share/bash-completion/completions/jobctl
///   jobctl completions fish > ~/.config/fish/completions/jobctl.fish
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CompletionsArgs {
    /// The shell to print the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells jobctl has completion scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Zsh => "zsh",
            Shell::Fish => "fish",
        }
    }
}

pub fn run(args: CompletionsArgs) -> CliResult {
    let script = script(args.shell).map_err(CliError::failure)?;
    output::print_text(&script)?;
    Ok(ExitCode::SUCCESS)
}

/// The completion script for `shell`: clap_complete's registration, calling
/// back [`COMPLETER`] with [`COMPLETE_VAR`].
pub fn script(shell: Shell) -> std::io::Result<String> {
    let completer: &dyn EnvCompleter = match shell {
        Shell::Bash => &env::Bash,
        Shell::Zsh => &env::Zsh,
        Shell::Fish => &env::Fish,
    };
    let mut buf = Vec::new();
    completer.write_registration(COMPLETE_VAR, "jobctl", "jobctl", COMPLETER, &mut buf)?;
    let mut script = String::from_utf8(buf).map_err(std::io::Error::other)?;
    if shell == Shell::Zsh {
        script = zsh_autoload(&script)?;
    }
    // zsh's compinit reads `#compdef` from the first line: the note goes
    // after it there.
    let note = format!(
        "# jobctl's {} completion: it asks `jobctl` on every TAB ({COMPLETE_VAR}={}).\n",
        shell.name(),
        shell.name()
    );
    let mut out = String::new();
    let mut script = script.trim_start_matches('\n');
    if let Some(rest) = script.strip_prefix("#compdef jobctl\n") {
        out.push_str("#compdef jobctl\n");
        script = rest;
    }
    out.push_str(&note);
    out.push_str(script.trim_end());
    out.push('\n');
    Ok(out)
}

/// clap_complete's zsh script registers its function with `compdef` when it
/// is sourced. Installed as `_jobctl` in a folder of `$fpath` (where Debian's
/// zsh looks: /usr/share/zsh/vendor-completions), zsh autoloads the file as
/// the function `_jobctl` at the first TAB instead, and that first TAB must
/// complete too: then the function is called directly.
fn zsh_autoload(script: &str) -> std::io::Result<String> {
    let register = "compdef _clap_dynamic_completer_jobctl jobctl";
    let trimmed = script.trim_end();
    let Some(body) = trimmed.strip_suffix(register) else {
        return Err(std::io::Error::other(
            "clap_complete's zsh script no longer ends with its compdef line",
        ));
    };
    Ok(format!(
        "{body}if [ \"$funcstack[1]\" = \"_jobctl\" ]; then\n    \
         _clap_dynamic_completer_jobctl \"$@\"\nelse\n    {register}\nfi\n"
    ))
}

/// Answers a completion request and exits, when jobctl was started as one
/// (by a script of [`script`]); otherwise returns and nothing was done.
pub fn complete_if_asked() {
    if std::env::var_os(COMPLETE_VAR).is_none() {
        return;
    }
    CompleteEnv::with_factory(command)
        .var(COMPLETE_VAR)
        .completer(COMPLETER)
        .complete();
}

/// The command line as completion sees it: clap's, with job names offered
/// for every argument that takes a job.
pub fn command() -> clap::Command {
    with_job_names(Cli::command())
}

/// Adds the job-name completer to every argument, in every subcommand, that
/// takes a job: an argument with the id `job` or the value name `JOB`.
pub fn with_job_names(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|arg| {
        if takes_a_job(&arg) {
            arg.add(ArgValueCandidates::new(job_names))
        } else {
            arg
        }
    })
    .mut_subcommands(with_job_names)
}

/// Whether `arg` takes a job name (see [`with_job_names`]).
pub fn takes_a_job(arg: &clap::Arg) -> bool {
    arg.get_id() == "job"
        || arg
            .get_value_names()
            .is_some_and(|names| names.iter().any(|n| n == "JOB"))
}

/// The jobs of the jobs folder the line being completed names (`--user`,
/// `--jobs-dir`, else `$JOBCTL_JOBS_DIR` or the mode's folder): the names of
/// its job files, without reading them.
fn job_names() -> Vec<CompletionCandidate> {
    let words: Vec<OsString> = std::env::args_os()
        .skip_while(|a| a != "--")
        .skip(1)
        .collect();
    let Ok(paths) = Paths::resolve(&global_args(&words)) else {
        return Vec::new();
    };
    names_in(&paths.jobs_dir)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The global options among the words typed so far.
fn global_args(words: &[OsString]) -> GlobalArgs {
    let mut global = GlobalArgs {
        user: false,
        jobs_dir: vars::var_os(vars::JOBS_DIR).map(PathBuf::from),
        unit_dir: None,
        config: None,
    };
    let mut words = words.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        } else if word == "--user" {
            global.user = true;
        } else if word == "--jobs-dir" {
            if let Some(dir) = words.next() {
                global.jobs_dir = Some(PathBuf::from(dir));
            }
        } else if let Some(dir) = word.to_str().and_then(|w| w.strip_prefix("--jobs-dir=")) {
            global.jobs_dir = Some(PathBuf::from(dir));
        }
    }
    global
}

/// The job names of the `*.toml` files in `dir`, sorted; names that are no
/// valid job name (the loader refuses those files) are left out.
pub fn names_in(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".toml")?;
            jobctl_core::naming::JobName::new(stem).ok()?;
            Some(stem.to_string())
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_argument_completes_job_names() {
        let cmd = command();
        let mut found = Vec::new();
        fn walk(cmd: &clap::Command, path: String, found: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if takes_a_job(arg) {
                    assert!(
                        arg.get::<ArgValueCandidates>().is_some(),
                        "{path} {}: takes a job but completes no job names",
                        arg.get_id()
                    );
                    found.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, format!("{path} {}", sub.get_name()), found);
            }
        }
        walk(&cmd, "jobctl".into(), &mut found);
        // The commands that take a job today; a new one is found by the rule.
        for expected in [
            "jobctl run job",
            "jobctl status job",
            "jobctl logs job",
            "jobctl history job",
            "jobctl health jobs",
            "jobctl enable job",
            "jobctl disable job",
            "jobctl remove job",
        ] {
            assert!(
                found.iter().any(|f| f == expected),
                "{expected} not found in {found:?}"
            );
        }
    }

    /// A new subcommand completes with no step of its own: every command
    /// that has a man page is offered after its parent's name.
    #[test]
    fn every_subcommand_is_offered() {
        fn walk(cmd: &clap::Command, words: Vec<String>, checked: &mut usize) {
            let mut line: Vec<OsString> = words.iter().map(OsString::from).collect();
            line.push(OsString::new());
            let index = line.len() - 1;
            let offered: Vec<String> =
                clap_complete::engine::complete(&mut command(), line, index, None)
                    .unwrap()
                    .iter()
                    .map(|c| c.get_value().to_string_lossy().into_owned())
                    .collect();
            for sub in crate::manual::visible_subcommands(cmd) {
                assert!(
                    offered.iter().any(|o| o == sub.get_name()),
                    "`{} <TAB>` does not offer {}: {offered:?}",
                    words.join(" "),
                    sub.get_name()
                );
                *checked += 1;
                let mut deeper = words.clone();
                deeper.push(sub.get_name().to_string());
                walk(sub, deeper, checked);
            }
        }
        let mut cmd = command();
        cmd.build();
        let mut checked = 0;
        walk(&cmd, vec!["jobctl".into()], &mut checked);
        assert!(checked >= 19, "{checked}");
    }

    #[test]
    fn global_options_on_the_line_choose_the_jobs_folder() {
        let words = |w: &[&str]| w.iter().map(OsString::from).collect::<Vec<_>>();
        let g = global_args(&words(&["jobctl", "--user", "run", ""]));
        assert!(g.user);
        let g = global_args(&words(&["jobctl", "--jobs-dir", "/srv/jobs", "run", ""]));
        assert_eq!(g.jobs_dir, Some(PathBuf::from("/srv/jobs")));
        let g = global_args(&words(&["jobctl", "run", "--jobs-dir=/x", ""]));
        assert_eq!(g.jobs_dir, Some(PathBuf::from("/x")));
    }

    #[test]
    fn job_names_are_the_job_files() {
        let dir = std::env::temp_dir().join(format!("jobctl-complete-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in [
            "b.toml",
            "a.toml",
            ".hidden.toml",
            "notes.txt",
            "x.toml~",
            "-bad.toml",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let names = names_in(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn every_shell_has_a_script_calling_jobctl_back() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = script(shell).unwrap();
            assert!(script.contains(COMPLETE_VAR), "{script}");
            assert!(
                script.contains(&format!("{COMPLETE_VAR}=\"{}\"", shell.name()))
                    || script.contains(&format!("{COMPLETE_VAR}={}", shell.name())),
                "{script}"
            );
        }
        assert!(script(Shell::Zsh).unwrap().starts_with("#compdef jobctl\n"));
    }
}
