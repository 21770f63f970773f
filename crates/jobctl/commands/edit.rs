//! `jobctl edit JOB`: the editor on a temporary copy of the job file, which
//! replaces the file only once it validates under the job's real name (as
//! `visudo` and `systemctl edit` do); `--apply` applies the job after.

use std::fs;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::Args;
use jobctl_core::naming::JobName;

use crate::error::{CliError, CliResult};
use crate::load::{self, GivenJob, JobSelection};
use crate::output;
use crate::paths::{Mode, Paths};

/// Edit a job file safely: your editor on a copy, validated before it
/// replaces the file.
///
/// Opens $VISUAL, else $EDITOR, else editor, nano or vi, on a hidden copy in
/// the jobs folder (never loaded as a job). When the editor exits, the copy is
/// validated as the job's file (what `jobctl validate` checks); if it is valid
/// it replaces the job file atomically, keeping its owner and mode. If not,
/// the errors are shown and you choose: edit again, or discard the changes
/// (the job file stays as it was). An unchanged copy changes nothing.
///
/// Examples:
///   jobctl edit nightly-refresh
///   jobctl edit nightly-refresh --apply      # and install the change now
///   jobctl edit new-job --create
///   EDITOR=nano jobctl --user edit sync-notes
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EditArgs {
    /// The job.
    #[arg(value_name = "JOB")]
    pub job: String,
    /// Apply the job once the file is saved (`jobctl apply JOB`).
    #[arg(long)]
    pub apply: bool,
    /// Create the job file when it does not exist yet (from a template).
    #[arg(long)]
    pub create: bool,
}

/// The start of a new job file (`--create`).
const TEMPLATE: &str = "\
# A jobctl job: one TOML file per job; the file name is the job's name.
# Every key: jobctl.toml(5). Examples: /usr/share/doc/jobctl/examples.
description = \"\"
command = [\"/usr/bin/true\"]
on_calendar = \"daily\"
";

pub fn run(paths: &Paths, args: EditArgs) -> CliResult {
    JobName::new(&args.job)
        .map_err(|e| CliError::usage(anyhow!("{:?} is not a job name: {e}", args.job)))?;
    if !paths.jobs_dir.is_dir() {
        return Err(crate::paths::missing_jobs_dir(&paths.jobs_dir));
    }
    let file = paths.jobs_dir.join(format!("{}.toml", args.job));
    let (original, meta) = match fs::read(&file) {
        Ok(bytes) => (
            String::from_utf8(bytes)
                .map_err(|_| CliError::usage(anyhow!("{} is not UTF-8 text", file.display())))?,
            Some(fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.create => {
            (TEMPLATE.to_string(), None)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let known: Vec<String> = fs::read_dir(&paths.jobs_dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| {
                            e.file_name()
                                .to_str()?
                                .strip_suffix(".toml")
                                .filter(|s| !s.starts_with('.'))
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            return Err(crate::systemd::unknown_job(&args.job, &known).hint(format!(
                "`{}` starts a new job file",
                crate::paths::jobctl(&format!("edit {} --create", args.job))
            )));
        }
        Err(e) => {
            return Err(CliError::failure(
                anyhow::Error::new(e).context(format!("cannot read {}", file.display())),
            ));
        }
    };
    let copy = Copy::create(&paths.jobs_dir, &args.job, &original, paths.mode)?;
    let editor = editor();
    loop {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$@\""))
            .arg("sh")
            .arg(&copy.path)
            .status()
            .with_context(|| format!("cannot run the editor ({editor})"))?;
        if !status.success() {
            return Err(CliError::failure(anyhow!(
                "the editor ({editor}) exited with {status}; {} is unchanged",
                file.display()
            )));
        }
        let text =
            fs::read(&copy.path).with_context(|| format!("cannot read {}", copy.path.display()))?;
        let text = match String::from_utf8(text) {
            Ok(text) => text,
            Err(_) => {
                output::error("the file is not UTF-8 text");
                if ask_again()? {
                    continue;
                }
                return Err(discarded(&file));
            }
        };
        if text == original {
            output::note(&format!("no changes; {} is unchanged", file.display()));
            return Ok(ExitCode::SUCCESS);
        }
        let loaded = load::load_jobs_checked(
            paths,
            &JobSelection::Given {
                dir: paths.jobs_dir.clone(),
                job: GivenJob {
                    name: args.job.clone(),
                    text: text.clone(),
                },
            },
            load::Checks {
                now: Some(jiff::Timestamp::now()),
                systemd: crate::rendering::target_systemd(paths, None),
                groups: false,
            },
        )?;
        output::diagnostics(&loaded.diagnostics);
        if !loaded.has_errors() {
            break;
        }
        if !ask_again()? {
            return Err(discarded(&file));
        }
    }
    copy.replace(&file, meta.as_ref(), paths.mode)
        .with_context(|| format!("cannot save {}", file.display()))?;
    output::note(&format!("saved {}", file.display()));
    if args.apply {
        return super::apply::run(
            paths,
            super::apply::ApplyArgs {
                jobs: vec![args.job.clone()],
                check: false,
                diff: false,
                prune: false,
                no_prune: false,
                prune_all: false,
                strict: false,
                given: Vec::new(),
                absent: Vec::new(),
                json: false,
            },
        );
    }
    output::hint(&format!(
        "`{}` installs the change",
        crate::paths::jobctl(&format!("apply {}", args.job))
    ));
    Ok(ExitCode::SUCCESS)
}

/// The editor to run, as a shell command: $VISUAL, $EDITOR, else the first
/// of `editor` (Debian's alternative), `nano`, `vi` on the PATH.
fn editor() -> String {
    for var in [crate::env::VISUAL, crate::env::EDITOR] {
        if let Some(value) = crate::env::var_os(var) {
            return value.to_string_lossy().into_owned();
        }
    }
    let on_path = |name: &str| {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| {
                fs::metadata(dir.join(name)).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
            })
        })
    };
    ["editor", "nano"]
        .into_iter()
        .find(|e| on_path(e))
        .unwrap_or("vi")
        .to_string()
}

/// After errors: edit again (the default), or discard? Reads one line from
/// standard input; its end (not a terminal, nothing typed) discards.
fn ask_again() -> Result<bool, CliError> {
    let _ = output::print_error_text("What now? (e)dit again, (d)iscard the changes [e]: ");
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    if read == 0 {
        let _ = output::print_error_text("\n");
        return Ok(false);
    }
    let answer = line.trim().to_ascii_lowercase();
    Ok(!matches!(answer.as_str(), "d" | "discard" | "q" | "x"))
}

fn discarded(file: &Path) -> CliError {
    let err = CliError::usage(anyhow!(
        "the changes were discarded; {} is unchanged",
        file.display()
    ));
    if std::io::stdin().is_terminal() {
        err
    } else {
        err.hint("standard input is not a terminal: the answer to `What now?` was read from it")
    }
}

/// The temporary copy: a hidden file beside the job file (loaders skip
/// hidden files), removed when dropped unless it replaced the job file.
struct Copy {
    path: PathBuf,
    done: bool,
}

impl Copy {
    fn create(dir: &Path, job: &str, text: &str, mode: Mode) -> Result<Copy, CliError> {
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| anyhow!("no random name: {e}"))?;
        let tag: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = dir.join(format!(".{job}.{tag}.toml"));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                let denied = e.kind() == std::io::ErrorKind::PermissionDenied;
                let err = CliError::failure(anyhow::Error::new(e).context(format!(
                    "cannot create the copy to edit in {}",
                    dir.display()
                )));
                if denied && mode == Mode::System {
                    err.hint("run as root, or use --user to edit your own jobs")
                } else {
                    err
                }
            })?;
        let copy = Copy { path, done: false };
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("cannot write {}", copy.path.display()))?;
        Ok(copy)
    }

    /// Renames the copy over `file`, with the old file's owner and mode
    /// (0644 for a new one; in system mode never writable by group or
    /// others, which the loader would refuse), flushed to disk first.
    fn replace(
        mut self,
        file: &Path,
        old: Option<&fs::Metadata>,
        mode: Mode,
    ) -> anyhow::Result<()> {
        let mut bits = old.map_or(0o644, |m| m.mode() & 0o7777);
        if mode == Mode::System {
            bits &= !0o022;
        }
        if let Some(m) = old
            && nix::unistd::geteuid().is_root()
        {
            std::os::unix::fs::chown(&self.path, Some(m.uid()), Some(m.gid()))?;
        }
        fs::set_permissions(&self.path, fs::Permissions::from_mode(bits))?;
        fs::File::open(&self.path)?.sync_all()?;
        fs::rename(&self.path, file)?;
        self.done = true;
        if let Some(dir) = file.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}
