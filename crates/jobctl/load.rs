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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use jobctl_core::config::{self, Config};
use jobctl_core::context::{GroupLookup, Mode, PathInspector, PathStep, StepKind};
use jobctl_core::diag::{Diagnostic, Severity};
use jobctl_core::directives::SystemdTarget;
use jobctl_core::job::{self, Job, JobSource, LoadContext, Now};

use crate::paths::Paths;
use crate::zones::HostZones;

/// Every job file found, loaded, with all diagnostics.
#[derive(Debug, Clone)]
pub struct LoadedJobs {
    pub config: Config,
    pub jobs: Vec<Job>,
    /// Diagnostics of the configuration and of every job file, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Job files read (valid or not).
    pub files: usize,
    /// The jobs folder asked for does not exist (it was read as empty).
    pub missing_dir: Option<PathBuf>,
    /// How the configuration file and the jobs folder are named in
    /// diagnostics, and the files that repeat a job name: problems that are
    /// not one job's ([`LoadedJobs::triage`]).
    config_file: String,
    folder: Option<String>,
    duplicates: BTreeSet<String>,
}

impl LoadedJobs {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The errors sorted by what they spoil: the whole apply (the
    /// configuration, the jobs folder itself, two files for one job name),
    /// or one job (every other error, by the job its file names).
    /// How many errors are the configuration file's (not a job file's).
    pub fn config_errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.is_error() && d.file == self.config_file)
            .count()
    }

    pub fn triage(&self) -> Triage {
        let mut triage = Triage::default();
        for d in self.diagnostics.iter().filter(|d| d.is_error()) {
            let whole = d.file == self.config_file
                || self.folder.as_deref() == Some(d.file.as_str())
                || self.duplicates.contains(&d.file);
            if whole {
                triage.fatal.push(d.clone());
            } else {
                triage
                    .invalid
                    .entry(job_stem(Path::new(&d.file)))
                    .or_default()
                    .push(d.clone());
            }
        }
        triage
    }
}

/// [`LoadedJobs::triage`]: errors that spoil everything, and invalid jobs.
#[derive(Debug, Default)]
pub struct Triage {
    pub fatal: Vec<Diagnostic>,
    /// Job name → its file's errors.
    pub invalid: BTreeMap<String, Vec<Diagnostic>>,
}

/// A diagnostic in one line without the file name: `line 3: `key`: message`
/// (the reason `list`, `status`, `health` and `apply` give for an invalid
/// job).
pub fn short_reason(d: &Diagnostic) -> String {
    match (d.line, &d.key) {
        (0, _) => d.message.clone(),
        (line, Some(key)) => format!("line {line}: `{key}`: {}", d.message),
        (line, None) => format!("line {line}: {}", d.message),
    }
}

/// A job file's content given on the command line under the job's real
/// name (`validate --name`, `apply --check --job NAME=FILE`): loaded and
/// rendered as the file `<jobs folder>/NAME.toml` it would be, wherever it
/// sits now.
#[derive(Debug, Clone)]
pub struct GivenJob {
    pub name: String,
    pub text: String,
}

/// Which job files to load.
#[derive(Debug, Clone)]
pub enum JobSelection {
    /// Every `*.toml` in the folder.
    Dir(PathBuf),
    /// The folder, with the content of some jobs' files given instead of
    /// read, and some files taken as gone (`apply --check --job/--absent`).
    Overlay {
        dir: PathBuf,
        given: Vec<GivenJob>,
        absent: Vec<String>,
    },
    /// These files.
    Files(Vec<PathBuf>),
    /// One job's file given under its real name, alone (`validate --name`).
    Given { dir: PathBuf, job: GivenJob },
}

/// One job file to load: a file to read, or text given.
enum Input {
    File(PathBuf),
    Given {
        path: PathBuf,
        stem: String,
        text: String,
    },
}

/// Whether files must pass the ownership and mode checks.
fn must_check_permissions(mode: Mode) -> bool {
    // Only root can install system units; for anyone else the check would
    // protect nothing (and would get in the way of validating a checkout).
    mode == Mode::System && nix::unistd::geteuid().is_root()
}

/// Loads the configuration (a missing file is an empty one).
pub fn load_config(paths: &Paths, zones: &HostZones) -> Result<(Config, Vec<Diagnostic>)> {
    load_config_checked(paths, zones, false)
}

/// [`load_config`]; with `groups`, also asks the name service whether the
/// groups `[web]` names exist ([`Checks::groups`]).
pub fn load_config_checked(
    paths: &Paths,
    zones: &HostZones,
    groups: bool,
) -> Result<(Config, Vec<Diagnostic>)> {
    let path = &paths.config;
    crate::cache::note_file(path);
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
    let root_files = must_check_permissions(paths.mode).then_some(&HostPaths as &dyn PathInspector);
    let lookup = groups.then_some(&crate::groups::HostGroups as &dyn GroupLookup);
    let (config, found) =
        config::load_config_with(&display, &text, paths.mode, zones, root_files, lookup);
    diagnostics.extend(found);
    Ok((config, diagnostics))
}

/// The service unit of `job` as `apply` names it: the configuration's
/// `unit_prefix` ([`jobctl_core::naming::UnitNames`]). The journal's lines
/// of the job's runs are that unit's.
pub fn service_of(paths: &Paths, job: &str) -> Result<String> {
    let name = jobctl_core::naming::JobName::new(job).map_err(anyhow::Error::msg)?;
    let (config, _) = load_config(paths, &HostZones::new())?;
    Ok(jobctl_core::naming::UnitNames::new(&config.unit_prefix, &name).service)
}

/// The loader's checks that depend on the world outside the files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Report schedules that can never fire after this instant (`validate`,
    /// `apply`).
    pub now: Option<jiff::Timestamp>,
    /// Refuse `*_extra` directives this systemd does not know yet.
    pub systemd: Option<SystemdTarget>,
    /// Report groups `[web]` names that the name service does not know
    /// (`validate`: jobctl-web refuses to start with one). Off elsewhere: it
    /// costs a `getent` process per group.
    pub groups: bool,
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
    let (config, mut diagnostics) = load_config_checked(paths, &zones, checks.groups)?;
    let check = must_check_permissions(paths.mode);
    let mut missing_dir = None;
    let mut folder = None;
    let mut list = |dir: &Path, diagnostics: &mut Vec<Diagnostic>| -> Result<Vec<PathBuf>> {
        let display = dir.display().to_string();
        if check {
            diagnostics.extend(permission_problem(dir, &display));
        }
        folder = Some(display);
        match list_job_files(dir, diagnostics) {
            Err(e) if is_not_found(&e) => {
                missing_dir = Some(dir.to_path_buf());
                Ok(Vec::new())
            }
            other => other,
        }
    };
    let inputs: Vec<Input> = match selection {
        JobSelection::Dir(dir) => list(dir, &mut diagnostics)?
            .into_iter()
            .map(Input::File)
            .collect(),
        JobSelection::Overlay { dir, given, absent } => {
            let mut inputs: Vec<Input> = list(dir, &mut diagnostics)?
                .into_iter()
                .filter(|f| {
                    let stem = job_stem(f);
                    !absent.contains(&stem) && !given.iter().any(|g| g.name == stem)
                })
                .map(Input::File)
                .collect();
            inputs.extend(given.iter().map(|g| Input::Given {
                path: dir.join(format!("{}.toml", g.name)),
                stem: g.name.clone(),
                text: g.text.clone(),
            }));
            inputs.sort_by(|a, b| a.path().cmp(b.path()));
            inputs
        }
        JobSelection::Files(files) => files.iter().cloned().map(Input::File).collect(),
        JobSelection::Given { dir, job } => vec![Input::Given {
            path: dir.join(format!("{}.toml", job.name)),
            stem: job.name.clone(),
            text: job.text.clone(),
        }],
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
    let mut duplicates = BTreeSet::new();
    for input in &inputs {
        let file = input.path();
        let display = file.display().to_string();
        let (text, refused) = match input {
            Input::Given { text, .. } => (text.clone(), false),
            Input::File(file) => {
                let refused = if check {
                    let problem = permission_problem(file, &display);
                    let refused = problem.is_some();
                    diagnostics.extend(problem);
                    refused
                } else {
                    false
                };
                match read_job_file(file, &display) {
                    Ok(text) => (text, refused),
                    Err(problem) => {
                        diagnostics.push(problem);
                        continue;
                    }
                }
            }
        };
        let stem = match input {
            Input::Given { stem, .. } => stem.clone(),
            Input::File(file) => job_stem(file),
        };
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
                duplicates.insert(display.clone());
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
        // Every file of the folder was loaded (or given instead).
        JobSelection::Dir(_) | JobSelection::Overlay { .. } => (
            inputs
                .iter()
                .map(|input| match input {
                    Input::Given { stem, .. } => stem.clone(),
                    Input::File(file) => job_stem(file),
                })
                .collect(),
            Vec::new(),
        ),
        JobSelection::Files(given) => folder_context(paths, given, &ctx),
        JobSelection::Given { dir, job } => given_context(dir, &job.name, &ctx, paths.mode),
    };
    let chains = job::chain_problems(&jobs, &others, &known);
    diagnostics.extend(chains.diagnostics);
    jobs.retain(|job| !chains.invalid.contains(job.name.as_str()));
    Ok(LoadedJobs {
        config,
        jobs,
        diagnostics,
        files: inputs.len(),
        missing_dir,
        config_file: paths.config.display().to_string(),
        folder,
        duplicates,
    })
}

impl Input {
    fn path(&self) -> &Path {
        match self {
            Input::File(path) => path,
            Input::Given { path, .. } => path,
        }
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}

/// A job file's text, or the problem reading it.
fn read_job_file(file: &Path, display: &str) -> std::result::Result<String, Diagnostic> {
    crate::cache::note_file(file);
    match crate::files::read_limited(file, crate::files::JOB_FILE_LIMIT) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| file_problem(display, "the file is not UTF-8 text", "save it as UTF-8")),
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => Err(file_problem(
            display,
            &e.to_string(),
            "check that this is the job file you meant",
        )),
        Err(e) => Err(file_problem(
            display,
            &format!("cannot read the file: {e}"),
            "check that it exists and is readable",
        )),
    }
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
) -> (BTreeSet<String>, Vec<Job>) {
    let mut known: BTreeSet<String> = given.iter().map(|f| job_stem(f)).collect();
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
    let mut seen: BTreeSet<Option<(u64, u64)>> = given.iter().map(|f| file_id(f)).collect();
    let mut others = Vec::new();
    for folder in folders {
        quiet_folder(
            &folder,
            ctx,
            paths.mode,
            &mut seen,
            &mut known,
            &mut others,
            |_| false,
        );
    }
    (known, others)
}

/// For one job given under its real name (`validate --name`): the other
/// jobs of the folder it is meant for, as for [`folder_context`]; the
/// folder's own file of that name is the one being replaced.
fn given_context(
    dir: &Path,
    name: &str,
    ctx: &LoadContext<'_>,
    mode: Mode,
) -> (BTreeSet<String>, Vec<Job>) {
    let mut known = BTreeSet::from([name.to_string()]);
    let mut others = Vec::new();
    quiet_folder(
        dir,
        ctx,
        mode,
        &mut BTreeSet::new(),
        &mut known,
        &mut others,
        |stem| stem == name,
    );
    (known, others)
}

/// Adds a folder's job files to `known` and their valid jobs to `others`,
/// loaded quietly (their own problems are not reported: only their links
/// matter), skipping files already `seen` (by device and inode) and those
/// `skip` names. In system mode as root, a file that fails the ownership
/// rule is named but not read.
fn quiet_folder(
    folder: &Path,
    ctx: &LoadContext<'_>,
    mode: Mode,
    seen: &mut BTreeSet<Option<(u64, u64)>>,
    known: &mut BTreeSet<String>,
    others: &mut Vec<Job>,
    skip: impl Fn(&str) -> bool,
) {
    let check = must_check_permissions(mode);
    let mut ignored = Vec::new();
    let Ok(files) = list_job_files(folder, &mut ignored) else {
        return;
    };
    for file in files {
        let stem = job_stem(&file);
        if skip(&stem) || !seen.insert(file_id(&file)) {
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
    crate::cache::note_file(dir);
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
    crate::cache::note_file(path);
    let mut problems = Vec::new();
    let Ok(link) = fs::symlink_metadata(path) else {
        return None;
    };
    let is_link = link.file_type().is_symlink();
    let is_dir = link.is_dir();
    let mut theirs = link.uid() != 0;
    let own = if is_link {
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
            theirs = true;
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
    if problems.is_empty() {
        return None;
    }
    // Paths in the fix are absolute (it must work pasted anywhere); it never
    // changes what a link points to (a user's file) nor hands a user's
    // folder to root.
    let quoted = crate::paths::shell_quote(crate::paths::absolute(path));
    let fix = if is_link {
        match fs::canonicalize(path) {
            Ok(target) if !target.is_dir() => format!(
                "replace the link with a copy only root can write: `install -m 0644 -o root -g root {} {quoted}`",
                crate::paths::shell_quote(&target)
            ),
            _ => "replace the link with a folder or file only root can write".to_string(),
        }
    } else if theirs && is_dir {
        "copy the job files into a folder only root can write (such as /etc/jobctl/jobs.d) and use that one".to_string()
    } else {
        format!("run: chown root: {quoted} && chmod go-w {quoted}")
    };
    Some(file_problem(
        display,
        &format!(
            "refusing an unsafe file: {}; a user who can change it could run commands as root",
            problems.join(", ")
        ),
        &fix,
    ))
}

/// The host's file system, as the ownership rule needs to see it.
pub struct HostPaths;

/// Links followed before giving up, as the kernel's `ELOOP` limit.
const MAX_LINKS: usize = 40;

impl PathInspector for HostPaths {
    fn trace(&self, path: &str) -> std::result::Result<Vec<PathStep>, String> {
        let result = self.trace_uncached(path);
        crate::cache::note_trace(path, &result);
        result
    }
}

impl HostPaths {
    /// [`PathInspector::trace`], not noted for [`crate::cache`] (which
    /// calls it to see whether a trace is still the same).
    pub(crate) fn trace_uncached(&self, path: &str) -> std::result::Result<Vec<PathStep>, String> {
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
