//! Reading the configuration and job files from disk and handing them to the
//! core, with the file-system checks the core cannot do: which files make up
//! the jobs folder, and whether they are safe to act on.
//!
//! In system mode, as root, job files, the jobs folder and the configuration
//! must be owned by root and writable by nobody else (sudo and cron check
//! their files the same way): a job file another user could edit would let
//! that user run commands as root. So must a root job's `environment_file`,
//! and every folder and link on the way to it: the core applies that rule
//! (`jobctl_core::ownership`) to what [`HostPaths`] reports.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use jobctl_core::config::{self, Config};
use jobctl_core::context::{Mode, PathInspector, PathStep, StepKind};
use jobctl_core::diag::{Diagnostic, Severity};
use jobctl_core::directives::SystemdTarget;
use jobctl_core::job::{self, Job, JobSource, LoadContext, Now};

use crate::paths::Paths;
use crate::zones::HostZones;

/// Every job file found, loaded, with all diagnostics.
#[derive(Debug)]
pub struct LoadedJobs {
    pub config: Config,
    pub jobs: Vec<Job>,
    /// Diagnostics of the configuration and of every job file, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Job files read (valid or not).
    pub files: usize,
}

impl LoadedJobs {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Which job files to load.
#[derive(Debug, Clone)]
pub enum JobSelection {
    /// Every `*.toml` in the folder.
    Dir(PathBuf),
    /// These files.
    Files(Vec<PathBuf>),
}

/// Whether files must pass the ownership and mode checks.
fn must_check_permissions(mode: Mode) -> bool {
    // Only root can install system units; for anyone else the check would
    // protect nothing (and would get in the way of validating a checkout).
    mode == Mode::System && nix::unistd::geteuid().is_root()
}

/// Loads the configuration (a missing file is an empty one).
pub fn load_config(paths: &Paths, zones: &HostZones) -> Result<(Config, Vec<Diagnostic>)> {
    let path = &paths.config;
    let text = match crate::files::read_text_limited(path, crate::files::TEXT_LIMIT) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Config::default(), Vec::new()));
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the configuration {}", path.display()));
        }
    };
    let display = path.display().to_string();
    let mut diagnostics = Vec::new();
    if must_check_permissions(paths.mode) {
        diagnostics.extend(permission_problem(path, &display));
    }
    let (config, found) = config::load_config(&display, &text, paths.mode, zones);
    diagnostics.extend(found);
    Ok((config, diagnostics))
}

/// The loader's checks that depend on the world outside the files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Report schedules that can never fire after this instant (`validate`,
    /// `apply`).
    pub now: Option<jiff::Timestamp>,
    /// Refuse `*_extra` directives this systemd does not know yet.
    pub systemd: Option<SystemdTarget>,
}

/// Loads the configuration and the selected job files.
pub fn load_jobs(paths: &Paths, selection: &JobSelection) -> Result<LoadedJobs> {
    load_jobs_checked(paths, selection, Checks::default())
}

/// [`load_jobs`], with the checks that need the present or the target
/// systemd.
pub fn load_jobs_checked(
    paths: &Paths,
    selection: &JobSelection,
    checks: Checks,
) -> Result<LoadedJobs> {
    let zones = HostZones::new();
    let local = zones.local();
    let (config, mut diagnostics) = load_config(paths, &zones)?;
    let check = must_check_permissions(paths.mode);
    let files = match selection {
        JobSelection::Dir(dir) => {
            let display = dir.display().to_string();
            if check {
                diagnostics.extend(permission_problem(dir, &display));
            }
            list_job_files(dir, &mut diagnostics)?
        }
        JobSelection::Files(files) => files.clone(),
    };
    let ctx = LoadContext {
        mode: paths.mode,
        config: &config,
        zones: &zones,
        now: checks.now.map(|instant| Now {
            instant,
            local: &local,
        }),
        systemd: checks.systemd,
        root_files: check.then_some(&HostPaths as &dyn PathInspector),
    };
    let mut jobs = Vec::new();
    let mut names = std::collections::BTreeMap::new();
    for file in &files {
        let display = file.display().to_string();
        let refused = if check {
            let problem = permission_problem(file, &display);
            let refused = problem.is_some();
            diagnostics.extend(problem);
            refused
        } else {
            false
        };
        let text = match crate::files::read_limited(file, crate::files::JOB_FILE_LIMIT) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    diagnostics.push(file_problem(
                        &display,
                        "the file is not UTF-8 text",
                        "save it as UTF-8",
                    ));
                    continue;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                diagnostics.push(file_problem(
                    &display,
                    &e.to_string(),
                    "check that this is the job file you meant",
                ));
                continue;
            }
            Err(e) => {
                diagnostics.push(file_problem(
                    &display,
                    &format!("cannot read the file: {e}"),
                    "check that it exists and is readable",
                ));
                continue;
            }
        };
        let stem = job_stem(file);
        let loaded = job::load_job(
            JobSource {
                path: &display,
                stem: &stem,
                text: &text,
            },
            &ctx,
        );
        diagnostics.extend(loaded.diagnostics);
        if let Some(job) = loaded.job.filter(|_| !refused) {
            if let Some(previous) = names.insert(job.name.clone(), display.clone()) {
                diagnostics.push(file_problem(
                    &display,
                    &format!(
                        "another file, {previous}, already defines job \"{}\"",
                        job.name
                    ),
                    "job names come from file names and must be unique: rename one of the files",
                ));
                continue;
            }
            jobs.push(job);
        }
    }
    // on_success/on_failure name jobs of the folder: what only the whole
    // folder can tell (a job that is not there, a loop).
    let (known, others) = match selection {
        JobSelection::Dir(_) => (files.iter().map(|f| job_stem(f)).collect(), Vec::new()),
        JobSelection::Files(given) => folder_context(paths, given, &ctx),
    };
    let chains = job::chain_problems(&jobs, &others, &known);
    diagnostics.extend(chains.diagnostics);
    jobs.retain(|job| !chains.invalid.contains(job.name.as_str()));
    Ok(LoadedJobs {
        config,
        jobs,
        diagnostics,
        files: files.len(),
    })
}

/// For files named one by one (`validate FILE…`): the jobs their
/// `on_success`/`on_failure` may name, which are the `*.toml` files beside
/// them and in the jobs folder (names, and the jobs loaded quietly, their
/// own problems not reported: only their links matter, to find loops). In
/// system mode as root, a file that fails the ownership rule is not read.
fn folder_context(
    paths: &Paths,
    given: &[PathBuf],
    ctx: &LoadContext<'_>,
) -> (std::collections::BTreeSet<String>, Vec<Job>) {
    let mut known: std::collections::BTreeSet<String> = given.iter().map(|f| job_stem(f)).collect();
    let mut folders: Vec<PathBuf> = given
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .map(|dir| {
            if dir.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                dir
            }
        })
        .collect();
    folders.push(paths.jobs_dir.clone());
    folders.sort();
    folders.dedup();
    let given_ids: Vec<Option<(u64, u64)>> = given.iter().map(|f| file_id(f)).collect();
    let check = must_check_permissions(paths.mode);
    let mut others = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for folder in folders {
        let mut ignored = Vec::new();
        let Ok(files) = list_job_files(&folder, &mut ignored) else {
            continue;
        };
        for file in files {
            let stem = job_stem(&file);
            let id = file_id(&file);
            if given_ids.contains(&id) || !seen.insert(id) {
                continue;
            }
            known.insert(stem.clone());
            let display = file.display().to_string();
            if check && permission_problem(&file, &display).is_some() {
                continue;
            }
            let Some(text) = crate::files::read_limited(&file, crate::files::JOB_FILE_LIMIT)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
            else {
                continue;
            };
            let source = JobSource {
                path: &display,
                stem: &stem,
                text: &text,
            };
            others.extend(job::load_job(source, ctx).job);
        }
    }
    (known, others)
}

/// A file's device and inode, to know the same file under two names.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The job name a file gives: its name without `.toml`.
pub fn job_stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".toml").unwrap_or(&name).to_string()
}

/// The `*.toml` files of a jobs folder, sorted. Hidden files and editor or
/// package-manager leftovers (`x.toml~`, `x.toml.dpkg-old`) are not job files.
fn list_job_files(dir: &Path, diagnostics: &mut Vec<Diagnostic>) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("cannot read the jobs folder {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.with_context(|| format!("cannot read the jobs folder {}", dir.display()))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            diagnostics.push(file_problem(
                &path.display().to_string(),
                "the file name is not UTF-8",
                "rename the file",
            ));
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".toml") {
            continue;
        }
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push(path),
            Ok(_) => diagnostics.push(file_problem(
                &path.display().to_string(),
                "not a regular file",
                "job files must be regular files (or links to them)",
            )),
            Err(e) => diagnostics.push(file_problem(
                &path.display().to_string(),
                &format!("cannot read the file: {e}"),
                "remove the broken link or fix it",
            )),
        }
    }
    files.sort();
    Ok(files)
}

/// A reason to refuse a file or folder: not owned by root, or writable by
/// group or others. Links are judged by what they point to, and the link
/// itself must be root's too.
fn permission_problem(path: &Path, display: &str) -> Option<Diagnostic> {
    let mut problems = Vec::new();
    let Ok(link) = fs::symlink_metadata(path) else {
        return None;
    };
    let own = if link.file_type().is_symlink() {
        if link.uid() != 0 {
            problems.push(format!("the link is owned by uid {}, not root", link.uid()));
        }
        fs::metadata(path)
            .ok()
            .map(|target| (target, " (the target of the link)"))
    } else {
        Some((link, ""))
    };
    if let Some((meta, what)) = own {
        let mode = meta.mode() & 0o7777;
        if meta.uid() != 0 {
            problems.push(format!("owned by uid {}{what}, not root", meta.uid()));
        }
        if mode & 0o022 != 0 {
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "its group and everyone",
                (true, false) => "its group",
                _ => "everyone",
            };
            problems.push(format!("mode {mode:04o}{what} lets {who} change it"));
        }
    }
    (!problems.is_empty()).then(|| {
        file_problem(
            display,
            &format!(
                "refusing an unsafe file: {}; a user who can change it could run commands as root",
                problems.join(", ")
            ),
            &format!("run: chown root: {display} && chmod go-w {display}"),
        )
    })
}

/// The host's file system, as the ownership rule needs to see it.
pub struct HostPaths;

/// Links followed before giving up, as the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

impl PathInspector for HostPaths {
    fn trace(&self, path: &str) -> std::result::Result<Vec<PathStep>, String> {
        use std::path::Component;
        let step = |path: &Path, kind: StepKind, meta: &fs::Metadata| PathStep {
            path: path.display().to_string(),
            kind,
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
        };
        let root = Path::new("/");
        let meta = fs::symlink_metadata(root).map_err(|e| format!("/: {e}"))?;
        let mut steps = vec![step(root, StepKind::Folder, &meta)];
        // Components still to walk, front first; a link's target is put
        // in front of what followed the link.
        let mut pending: std::collections::VecDeque<std::ffi::OsString> = Path::new(path)
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        let mut current = PathBuf::from("/");
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                // `current` holds no links, so its parent is the real one.
                current.pop();
                continue;
            }
            let next = current.join(&name);
            let meta = match fs::symlink_metadata(&next) {
                Ok(meta) => meta,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(format!("{}: {e}", next.display())),
            };
            if meta.file_type().is_symlink() {
                steps.push(step(&next, StepKind::Link, &meta));
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!("{path}: too many levels of links"));
                }
                let target =
                    fs::read_link(&next).map_err(|e| format!("{}: {e}", next.display()))?;
                if target.is_absolute() {
                    current = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push_front(n.to_os_string()),
                        Component::ParentDir => pending.push_front("..".into()),
                        _ => {}
                    }
                }
                continue;
            }
            if meta.is_dir() {
                steps.push(step(&next, StepKind::Folder, &meta));
                current = next;
            } else {
                steps.push(step(&next, StepKind::File, &meta));
                if !pending.is_empty() {
                    return Err(format!("{}: not a folder", next.display()));
                }
                break;
            }
        }
        Ok(steps)
    }
}

fn file_problem(display: &str, message: &str, hint: &str) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: display.to_string(),
        line: 0,
        column: 0,
        key: None,
        message: message.to_string(),
        hint: Some(hint.to_string()),
    }
}

/// The selection for commands that take optional files or the jobs folder.
pub fn selection(paths: &Paths, files: &[PathBuf]) -> JobSelection {
    if files.is_empty() {
        JobSelection::Dir(paths.jobs_dir.clone())
    } else {
        JobSelection::Files(files.to_vec())
    }
}
