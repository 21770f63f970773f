//! `jobctl-sandbox`: boot, use and stop a throwaway systemd by hand or from
//! scripts (scripts/demo, debugging a failing test). See docs/testing.md.
//!
//! ```text
//! jobctl-sandbox run [--share DIR]... -- COMMAND [ARGS...]   boot, run COMMAND inside, power off
//! jobctl-sandbox boot [--name NAME] [--share DIR]...          boot and leave it running; prints NAME
//! jobctl-sandbox exec [--name NAME] [--user] -- COMMAND...    run a command inside a running one
//! jobctl-sandbox shutdown [--name NAME]                       power it off and clean up
//! jobctl-sandbox list                                         names of sandboxes with state here
//! ```
//!
//! Kept free of argument-parsing crates: it is test infrastructure with five
//! subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use jobctl_sandbox::{Options, Sandbox};

const USAGE: &str = "\
Usage:
  jobctl-sandbox run [--share DIR]... [--user-manager] -- COMMAND [ARGS...]
  jobctl-sandbox boot [--name NAME] [--share DIR]... [--user-manager]
  jobctl-sandbox exec [--name NAME] [--user] -- COMMAND [ARGS...]
  jobctl-sandbox shutdown [--name NAME] [--kill]
  jobctl-sandbox list

Boots systemd as PID 1 of private namespaces over an overlay of the host's /
(writes never reach the host). NAME defaults to 'jobctl-manual'. Shared folders
are bind-mounted read-write at the same path; the current folder is not shared
unless named. `--user` runs the command against root's user manager
(user@0.service, started by --user-manager). Needs root.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("jobctl-sandbox: {msg}");
            ExitCode::from(125)
        }
    }
}

#[derive(Default)]
struct Parsed {
    name: Option<String>,
    share: Vec<PathBuf>,
    user: bool,
    user_manager: bool,
    kill: bool,
    command: Vec<String>,
}

fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--name" => p.name = Some(it.next().ok_or("--name needs a value")?.clone()),
            "--share" => p
                .share
                .push(it.next().ok_or("--share needs a folder")?.into()),
            "--user" => p.user = true,
            "--user-manager" => p.user_manager = true,
            "--kill" => p.kill = true,
            "--" => {
                p.command = it.cloned().collect();
                break;
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    Ok(p)
}

/// `--help` or `-h` anywhere before `--` (after it, they are the command's):
/// the usage alone, not "unexpected argument" first.
fn wants_help(rest: &[String]) -> bool {
    rest.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--help" || a == "-h")
}

fn real_main(args: &[String]) -> Result<ExitCode, String> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(USAGE.to_string());
    };
    if matches!(sub.as_str(), "-h" | "--help" | "help") {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    const SUBCOMMANDS: [&str; 5] = ["run", "boot", "exec", "shutdown", "list"];
    if !SUBCOMMANDS.contains(&sub.as_str()) {
        return Err(format!("unknown subcommand {sub:?}\n{USAGE}"));
    }
    if wants_help(rest) {
        println!("{USAGE}");
        return Ok(ExitCode::SUCCESS);
    }
    let p = parse(rest)?;
    let name = p
        .name
        .clone()
        .unwrap_or_else(|| "jobctl-manual".to_string());
    match sub.as_str() {
        "run" => {
            if p.command.is_empty() {
                return Err(format!("run needs a command after --\n{USAGE}"));
            }
            let options = Options {
                name: p.name.clone(),
                share: p.share.clone(),
                ..Options::default()
            };
            let sandbox = Sandbox::boot(options).map_err(|e| e.to_string())?;
            if p.user_manager {
                sandbox.start_user_manager().map_err(|e| e.to_string())?;
            }
            let status = run_inside(&sandbox, &p, true);
            sandbox.shutdown().map_err(|e| e.to_string())?;
            status
        }
        "boot" => {
            let options = Options {
                name: Some(name.clone()),
                share: p.share.clone(),
                die_with_parent: false,
                ..Options::default()
            };
            let sandbox = Sandbox::boot(options).map_err(|e| e.to_string())?;
            if p.user_manager {
                sandbox.start_user_manager().map_err(|e| e.to_string())?;
            }
            println!("{}", sandbox.name());
            eprintln!(
                "jobctl-sandbox: {} is running (init pid {}); `jobctl-sandbox exec --name {} -- CMD`, \
                 `jobctl-sandbox shutdown --name {}`",
                sandbox.name(),
                sandbox.init_pid(),
                sandbox.name(),
                sandbox.name()
            );
            sandbox.detach();
            Ok(ExitCode::SUCCESS)
        }
        "exec" => {
            if p.command.is_empty() {
                return Err(format!("exec needs a command after --\n{USAGE}"));
            }
            let sandbox = Sandbox::attach(&name).map_err(|e| e.to_string())?;
            if !sandbox.alive() {
                return Err(format!("sandbox {name} is not running"));
            }
            run_inside(&sandbox, &p, false)
        }
        "shutdown" => {
            let sandbox = Sandbox::attach(&name).map_err(|e| e.to_string())?;
            if p.kill {
                sandbox.kill()
            } else {
                sandbox.shutdown()
            }
            .map_err(|e| e.to_string())?;
            Ok(ExitCode::SUCCESS)
        }
        "list" => {
            for name in Sandbox::list() {
                println!("{name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown subcommand {other:?}\n{USAGE}")),
    }
}

/// Runs the command inside with the terminal's stdin/stdout/stderr and
/// returns its exit status.
fn run_inside(sandbox: &Sandbox, p: &Parsed, pass_term: bool) -> Result<ExitCode, String> {
    let (program, args) = p.command.split_first().ok_or("empty command")?;
    let mut cmd = if p.user {
        sandbox.user_command(program)
    } else {
        sandbox.command(program)
    };
    cmd.args(args).stdin(std::process::Stdio::inherit());
    if let Ok(term) = std::env::var("TERM") {
        cmd.env("TERM", term);
    }
    if (pass_term || std::env::var_os("NO_COLOR").is_some())
        && let Some(v) = std::env::var_os("NO_COLOR")
    {
        cmd.env("NO_COLOR", v);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("running {program}: {e}"))?;
    Ok(match status.code() {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => {
            eprintln!(
                "jobctl-sandbox: {program} {}",
                jobctl_sandbox::describe(status)
            );
            ExitCode::from(1)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_ours_before_dashdash_and_the_commands_after() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(wants_help(&v(&["--help"])));
        assert!(wants_help(&v(&["--name", "x", "-h"])));
        assert!(!wants_help(&v(&["--", "ls", "--help"])));
        assert!(!wants_help(&v(&["--name", "x"])));
    }
}
