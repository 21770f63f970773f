//! `jobctl import crontab`: one job file per crontab line.
//!
//! The crontab is parsed and translated in the core (`jobctl_core::crontab`);
//! every generated file is checked with the job loader before anything is
//! written. Files are written to a staging folder beside the target, then
//! renamed into place; if anything fails, what was moved is put back, so
//! the target folder never holds half an import.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use jobctl_core::config::Config;
use jobctl_core::crontab::{
    self, CrontabFormat, CrontabOrigin, CrontabProblem, IMPORT_TIMEOUT, ImportOptions, ImportedJob,
    JobUser, MailChannel,
};
use jobctl_core::duration::Timespan;
use jobctl_core::job::{self, JobSource, LoadContext};
use jobctl_core::notify::{ChannelConfig, Target};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::output;
use crate::paths::Paths;
use crate::zones::HostZones;

/// Turn existing schedules into jobctl job files.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub source: ImportSource,
}

impl ImportArgs {
    /// Whether `--json` was given.
    pub fn wants_json(&self) -> bool {
        match &self.source {
            ImportSource::Crontab(c) => c.json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ImportSource {
    Crontab(CrontabArgs),
}

/// Write one job file per line of a crontab.
///
/// Reads a user crontab (`crontab -l`) or a system crontab (/etc/crontab,
/// /etc/cron.d/*, with a user column). Each job line becomes NAME.toml in
/// the output folder, with the schedule as `cron`, the command run the way
/// cron ran it (`shell`, or SHELL -c), the text after `%` as `stdin`,
/// CRON_TZ (or TZ) as `timezone`, the environment cron gave it, and the
/// comment above the line as its description. MAILTO becomes a mail
/// channel: the jobs after it get `notify = ["mailto-…"]` (`notify = []`
/// after `MAILTO=""`), and the channel's `[notify.channels.…]` block is
/// printed to add to the global configuration (jobctl never edits it; a
/// channel the configuration already has for the same addresses is used as
/// it is). cron mailed whatever a job printed; jobctl mails failures and
/// recoveries.
///
/// Every file is checked like `jobctl validate` before anything is written;
/// files are written to a staging folder and renamed into place, so the
/// output folder never holds half an import. Existing job files are not
/// overwritten without --force.
///
/// Examples:
///
///   crontab -l | jobctl import crontab - --out ./jobs.d --job-user alice
///
///   jobctl import crontab /etc/crontab --out /etc/jobctl/jobs.d --dry-run
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CrontabArgs {
    /// The crontab, or `-` for standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    pub file: String,

    /// Folder to write the job files to (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Crontab format: `system` has a user column (/etc/crontab,
    /// /etc/cron.d); `auto` picks it for files under /etc.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,

    /// Run the jobs of a user crontab as this user, as `crontab -u USER`.
    /// Without it they run as the crontab's owner: the user a crontab in
    /// cron's spool (/var/spool/cron/crontabs/USER) belongs to, or the
    /// non-root owner of another file. A crontab read from a pipe, or a
    /// root-owned copy outside the spool, is refused. System crontabs name
    /// their users on each line; per-user jobs (--user) run as you.
    #[arg(long, short = 'u', value_name = "USER")]
    pub job_user: Option<String>,

    /// The `timeout` written into every job [default: 1h]. cron never
    /// stopped a job; jobctl stops a run at its timeout and records it as
    /// `timeout`. `infinity` for none.
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    pub timeout: Option<Timespan>,

    /// Overwrite job files that already exist.
    #[arg(long)]
    pub force: bool,

    /// Import nothing unless every line can be imported.
    #[arg(long)]
    pub strict: bool,

    /// Show what would be written, and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_timeout(text: &str) -> Result<Timespan, String> {
    match Timespan::parse(text) {
        Ok(t) if t == Timespan::ZERO => {
            Err("0 would mean \"no timeout\" to systemd; write infinity".to_string())
        }
        Ok(t) => Ok(t),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Auto,
    User,
    System,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    source: String,
    out: String,
    format: CrontabFormat,
    dry_run: bool,
    /// Who the jobs run as, and why.
    user: &'a JobUser,
    /// The `timeout` every job was given.
    timeout: String,
    /// Jobs written (or, with --dry-run, that would be).
    jobs: Vec<JobReport<'a>>,
    /// Lines that were not imported, and why.
    skipped: Vec<CrontabProblem>,
    notes: Vec<String>,
    /// The configuration the channels belong in.
    config: String,
    /// The mail channels MAILTO became.
    channels: Vec<ChannelReport<'a>>,
}

#[derive(Debug, Serialize)]
struct ChannelReport<'a> {
    #[serde(flatten)]
    channel: &'a MailChannel,
    /// The block to add to the configuration (`null`: it is there).
    toml: Option<String>,
}

#[derive(Debug, Serialize)]
struct JobReport<'a> {
    #[serde(flatten)]
    job: &'a ImportedJob,
    file: String,
    /// Present with --dry-run: the file's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

pub fn run(paths: &Paths, args: ImportArgs) -> CliResult {
    match args.source {
        ImportSource::Crontab(args) => run_crontab(paths, args),
    }
}

fn run_crontab(paths: &Paths, args: CrontabArgs) -> CliResult {
    let input = read_input(&args.file)?;
    let (text, source_name) = (input.text, input.name);
    let format = match args.format {
        FormatArg::User => CrontabFormat::User,
        FormatArg::System => CrontabFormat::System,
        FormatArg::Auto => {
            if args.file == "/etc/crontab" || args.file.starts_with("/etc/cron.d/") {
                CrontabFormat::System
            } else {
                CrontabFormat::User
            }
        }
    };
    let origin = match &input.owner {
        Some(owner) => CrontabOrigin::File {
            path: &owner.path,
            uid: owner.uid,
            owner: owner.name.as_deref(),
        },
        None => CrontabOrigin::Stream,
    };
    let job_user = crontab::job_user(format, paths.mode, args.job_user.as_deref(), origin)
        .map_err(|e| CliError::usage(anyhow!("{}: {}", source_name, e.message)).hint(e.hint))?;
    let timeout = args.timeout.unwrap_or(IMPORT_TIMEOUT);
    let parsed = crontab::parse(&text, format);
    let zones = HostZones::new();
    // The mail channels the configuration has (read, never written): a
    // MAILTO with the same addresses uses one of them. A configuration
    // that cannot be read or does not validate lends none.
    let configured = crate::load::load_config(paths, &zones)
        .map(|(config, _)| config)
        .unwrap_or_default();
    let mail_channels = configured
        .notify
        .channels
        .iter()
        .filter_map(|(name, c)| match &c.target {
            Target::Mail(addresses) => Some((name.clone(), addresses.clone())),
            _ => None,
        })
        .collect();
    let mut plan = crontab::import(
        &parsed,
        &ImportOptions {
            source_name: source_name.clone(),
            user: job_user.user.clone(),
            timeout: Some(timeout),
            mail_channels,
        },
    );
    let stated = Stated {
        user: &job_user,
        timeout,
    };

    // Every generated file goes through the job loader, as `jobctl
    // validate` would check it; a file it refuses is not written.
    let local = zones.local();
    // The files name MAILTO's channels: checked as they will be once the
    // channels are in the configuration.
    let mut config = Config::default();
    for c in &plan.channels {
        config.notify.channels.insert(
            c.name.clone(),
            ChannelConfig {
                name: c.name.clone(),
                target: Target::Mail(c.mail.clone()),
                format: Default::default(),
                timeout: jobctl_core::notify::DEFAULT_CHANNEL_TIMEOUT,
                sendmail: jobctl_core::notify::DEFAULT_SENDMAIL.to_string(),
                from: None,
                repeat: None,
            },
        );
    }
    let ctx = LoadContext {
        mode: paths.mode,
        config: &config,
        zones: &zones,
        now: Some(jobctl_core::job::Now {
            instant: jiff::Timestamp::now(),
            local: &local,
        }),
        systemd: None,
        // Imported jobs carry their environment inline.
        root_files: None,
    };
    let mut kept = Vec::new();
    for mut job in std::mem::take(&mut plan.jobs) {
        let path = args
            .out
            .join(format!("{}.toml", job.name))
            .display()
            .to_string();
        let loaded = job::load_job(
            JobSource {
                path: &path,
                stem: &job.name,
                text: &job.toml,
            },
            &ctx,
        );
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.message.clone())
            .collect();
        if loaded.job.is_none() || !errors.is_empty() {
            let line = text
                .lines()
                .nth(job.line - 1)
                .unwrap_or_default()
                .to_string();
            plan.skipped.push(CrontabProblem {
                line: job.line,
                text: line,
                message: format!("the job file would be invalid: {}", errors.join("; ")),
                hint: loaded.diagnostics.iter().find_map(|d| d.hint.clone()),
            });
            continue;
        }
        job.notes.extend(
            loaded
                .diagnostics
                .iter()
                .filter(|d| !d.is_error())
                .map(|d| format!("warning: {}", d.message)),
        );
        kept.push(job);
    }
    plan.jobs = kept;
    plan.skipped.sort_by_key(|p| p.line);

    if args.strict && !plan.skipped.is_empty() {
        print_report(
            &args,
            &source_name,
            format,
            &stated,
            &plan.jobs,
            &plan.skipped,
            &plan.notes,
            &plan.channels,
            &paths.config,
            true,
        )?;
        return Err(CliError::usage(anyhow!(
            "{} line(s) of {source_name} cannot be imported; nothing was written (--strict)",
            plan.skipped.len()
        )));
    }

    if !args.dry_run && !plan.jobs.is_empty() {
        let files: Vec<(String, &str)> = plan
            .jobs
            .iter()
            .map(|j| (format!("{}.toml", j.name), j.toml.as_str()))
            .collect();
        write_all(&args.out, &files, args.force)?;
    }
    print_report(
        &args,
        &source_name,
        format,
        &stated,
        &plan.jobs,
        &plan.skipped,
        &plan.notes,
        &plan.channels,
        &paths.config,
        args.dry_run,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The crontab's text, how to name it, and who owns it.
struct Input {
    text: String,
    name: String,
    /// `None` for standard input and anything that is not a regular file.
    owner: Option<Owner>,
}

struct Owner {
    /// The opened file's path, absolute, links resolved.
    path: String,
    uid: u32,
    name: Option<String>,
}

fn read_input(file: &str) -> CliResult<Input> {
    let (bytes, name, owner) = if file == "-" {
        let bytes =
            crate::files::read_limited_from(std::io::stdin().lock(), crate::files::TEXT_LIMIT)
                .context("cannot read the crontab from standard input")?;
        (bytes, "stdin".to_string(), None)
    } else {
        let cannot = |e: std::io::Error| {
            CliError::failure(anyhow!(e).context(format!("cannot read the crontab {file}")))
        };
        let mut f = File::open(file).map_err(cannot)?;
        // The owner of the file that was opened (fstat), and its path as
        // the kernel knows it: a link or a rename in between changes nothing.
        let meta = f.metadata().map_err(cannot)?;
        let owner = if meta.is_file() {
            use std::os::fd::AsRawFd as _;
            use std::os::unix::fs::MetadataExt as _;
            fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))
                .ok()
                .and_then(|p| p.to_str().map(str::to_string))
                .map(|path| Owner {
                    path,
                    uid: meta.uid(),
                    name: crate::commands::exec::user_name_of(meta.uid()),
                })
        } else {
            None
        };
        let bytes =
            crate::files::read_limited_from(&mut f, crate::files::TEXT_LIMIT).map_err(cannot)?;
        (bytes, file.to_string(), owner)
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::usage(anyhow!("{name} is not UTF-8 text"))
            .hint("convert it, e.g. with iconv -t UTF-8")
    })?;
    Ok(Input { text, name, owner })
}

/// What the report states about every job.
struct Stated<'a> {
    user: &'a JobUser,
    timeout: Timespan,
}

/// Writes `files` into `out` all together or not at all.
fn write_all(out: &Path, files: &[(String, &str)], force: bool) -> CliResult<()> {
    if out.exists() && !out.is_dir() {
        return Err(CliError::usage(anyhow!(
            "{} exists and is not a folder",
            out.display()
        )));
    }
    let existing: Vec<&str> = files
        .iter()
        .filter(|(name, _)| out.join(name).exists())
        .map(|(name, _)| name.as_str())
        .collect();
    if !existing.is_empty() && !force {
        return Err(CliError::failure(anyhow!(
            "{} already {} in {}; nothing was written",
            existing.join(", "),
            if existing.len() == 1 { "exists" } else { "exist" },
            out.display()
        ))
        .hint("review them, then add --force to overwrite them, or import into another folder with --out"));
    }

    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(CliError::failure(anyhow!(
            "the folder {} does not exist",
            parent.display()
        )));
    }
    let staging = Staging::create(&parent)?;
    for (name, text) in files {
        let path = staging.path.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }

    if !out.exists() {
        // A new folder: one rename makes all files appear at once.
        fs::rename(&staging.path, out)
            .with_context(|| format!("cannot move the new job files to {}", out.display()))?;
        staging.disarm();
        sync_dir(&parent);
        return Ok(());
    }

    // An existing folder: move the files one by one, undoing on failure.
    let backups = staging.path.join(".replaced");
    let mut placed: Vec<PathBuf> = Vec::new();
    let mut replaced: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for (name, _) in files {
            let target = out.join(name);
            if target.exists() {
                fs::create_dir_all(&backups)?;
                let backup = backups.join(name);
                fs::rename(&target, &backup)
                    .with_context(|| format!("cannot move {} aside", target.display()))?;
                replaced.push((backup, target.clone()));
            }
            fs::rename(staging.path.join(name), &target)
                .with_context(|| format!("cannot move {} into place", target.display()))?;
            placed.push(target);
        }
        Ok(())
    })();
    if let Err(e) = result {
        for target in placed.iter().rev() {
            let _ = fs::remove_file(target);
        }
        for (backup, target) in replaced.iter().rev() {
            let _ = fs::rename(backup, target);
        }
        return Err(CliError::failure(e.context(format!(
            "the import into {} failed and was undone",
            out.display()
        ))));
    }
    sync_dir(out);
    Ok(())
}

/// A staging folder beside the target, removed unless disarmed.
struct Staging {
    path: PathBuf,
    armed: std::cell::Cell<bool>,
}

impl Staging {
    fn create(parent: &Path) -> CliResult<Staging> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!(".jobctl-import-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Staging {
            path,
            armed: std::cell::Cell::new(true),
        })
    }

    fn disarm(&self) {
        self.armed.set(false);
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed.get() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

#[allow(clippy::too_many_arguments)]
fn print_report(
    args: &CrontabArgs,
    source: &str,
    format: CrontabFormat,
    stated: &Stated<'_>,
    jobs: &[ImportedJob],
    skipped: &[CrontabProblem],
    notes: &[String],
    channels: &[MailChannel],
    config: &Path,
    nothing_written: bool,
) -> CliResult<()> {
    let out = args.out.display().to_string();
    // Only the channels of jobs that are imported.
    let channels: Vec<&MailChannel> = channels
        .iter()
        .filter(|c| jobs.iter().any(|j| c.lines.contains(&j.line)))
        .collect();
    if args.json {
        let report = Report {
            source: source.to_string(),
            out: out.clone(),
            format,
            dry_run: args.dry_run,
            user: stated.user,
            timeout: stated.timeout.to_string(),
            jobs: jobs
                .iter()
                .map(|j| JobReport {
                    job: j,
                    file: args
                        .out
                        .join(format!("{}.toml", j.name))
                        .display()
                        .to_string(),
                    content: args.dry_run.then_some(j.toml.as_str()),
                })
                .collect(),
            skipped: skipped.to_vec(),
            notes: notes.to_vec(),
            config: config.display().to_string(),
            channels: channels
                .iter()
                .map(|c| ChannelReport {
                    channel: c,
                    toml: (!c.in_config).then(|| c.toml()),
                })
                .collect(),
        };
        output::print_json("import", &report)?;
        return Ok(());
    }
    let mut text = String::new();
    use std::fmt::Write as _;
    let verb = if nothing_written {
        "Would import"
    } else {
        "Imported"
    };
    let _ = writeln!(
        text,
        "{verb} {} job{} from {source} into {out}{}",
        jobs.len(),
        if jobs.len() == 1 { "" } else { "s" },
        if jobs.is_empty() { "." } else { ":" }
    );
    if !jobs.is_empty() {
        let user = match &stated.user.user {
            Some(user) => format!("{user} ({})", stated.user.source),
            None => stated.user.source.clone(),
        };
        let _ = writeln!(text, "  user:     {user}");
        let _ = writeln!(
            text,
            "  timeout:  {} in every job (cron never stopped a job; see the notes)",
            stated.timeout
        );
    }
    let width = jobs.iter().map(|j| j.name.len() + 5).max().unwrap_or(0);
    let cron_width = jobs
        .iter()
        .map(|j| j.cron.chars().count())
        .max()
        .unwrap_or(0);
    for j in jobs {
        let file = format!("{}.toml", j.name);
        let _ = writeln!(
            text,
            "  {file:<width$}  line {:<4} {:<cron_width$}  ->  {}",
            j.line,
            j.cron,
            if j.on_calendar.is_empty() {
                "at boot".to_string()
            } else {
                j.on_calendar.join(" + ")
            }
        );
        for note in &j.notes {
            let _ = writeln!(text, "      note: {note}");
        }
    }
    if args.dry_run {
        for j in jobs {
            let _ = writeln!(text, "\n--- {}.toml\n{}", j.name, j.toml.trim_end());
        }
    }
    if !skipped.is_empty() {
        let _ = writeln!(
            text,
            "\nNot imported ({} line{}):",
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" }
        );
        for p in skipped {
            let _ = writeln!(text, "  line {}: {}", p.line, p.text);
            let _ = writeln!(text, "      {}", p.message);
            if let Some(h) = &p.hint {
                let _ = writeln!(text, "      hint: {h}");
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(text, "\nNotes:");
        for n in notes {
            let _ = writeln!(text, "  - {n}");
        }
    }
    if !channels.is_empty() {
        let _ = writeln!(text, "\nMail channels (MAILTO):");
        for c in &channels {
            let _ = writeln!(
                text,
                "  {}: {} (MAILTO={}){}",
                c.name,
                c.mail.join(", "),
                c.mailto,
                if c.in_config {
                    format!(", already in {}", config.display())
                } else {
                    String::new()
                }
            );
        }
        let missing: Vec<&&MailChannel> = channels.iter().filter(|c| !c.in_config).collect();
        if !missing.is_empty() {
            let _ = writeln!(
                text,
                "\nAdd to {} (jobctl does not edit it; the jobs that name these channels do not validate until they exist):\n",
                config.display()
            );
            let blocks: Vec<String> = missing.iter().map(|c| c.toml()).collect();
            text.push_str(&blocks.join("\n"));
        }
    }
    if !jobs.is_empty() && !nothing_written {
        let _ = writeln!(
            text,
            "\nNext: review the files, then `{}` and `{}`.",
            crate::paths::jobctl_in(&args.out, "validate"),
            crate::paths::jobctl_in(&args.out, "apply")
        );
    }
    // The report quotes the crontab's lines: whoever wrote the crontab
    // chose their bytes (--json has them exactly, JSON-escaped).
    output::print_text(&output::escape(&text, output::Lines::Keep))?;
    Ok(())
}
