//! `jobctl metrics`: every job's facts in Prometheus' text exposition, on
//! stdout or written atomically into node_exporter's textfile folder. What
//! each metric means is `jobctl_core::metrics`; the facts are the ones
//! `list` and `health` read ([`crate::overview`], the same reader path and
//! trust rules), plus every job's run counters (`jobctl_history`'s
//! `run_counts`) and the notification channels' delivery counters.
//!
//! [`render`] is what an HTTP `/metrics` endpoint serves.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use jobctl_core::metrics::{self, ChannelAttempts};
use jobctl_history::{OpenMode, Store};

use crate::error::{CliError, CliResult};
use crate::exit::Exit;
use crate::history_db;
use crate::output;
use crate::overview::{self, Overview};
use crate::paths::{Mode, Paths};
use crate::view::metrics as view;
use crate::zones::HostZones;

/// Debian's node_exporter textfile folder (prometheus-node-exporter's
/// `--collector.textfile.directory`).
pub const DEFAULT_TEXTFILE_DIR: &str = "/var/lib/prometheus/node-exporter";
/// The file jobctl writes there.
pub const DEFAULT_TEXTFILE_NAME: &str = "jobctl.prom";

/// Print Prometheus metrics for every job (system mode: every user's jobs).
///
/// Per job: the last run's start, end, duration, status (one series per
/// status, 0/1) and resources, the last success, runs by status
/// (jobctl_job_runs_total, a counter that survives the history's
/// retention), the failure streak, overdue, the next run, enabled; and
/// notification delivery attempts by channel and result. Labels: job,
/// user, and team and tags where the job file sets them (docs/metrics.md).
///
/// --textfile writes the same text for node_exporter's textfile collector,
/// atomically (a temporary file in the same folder, synced, then renamed).
/// Without a PATH: /var/lib/prometheus/node-exporter/jobctl.prom (system
/// mode only). `jobctl watch` writes it every pass when the configuration
/// says `[metrics] textfile = "PATH"`.
///
/// Exit status: 0, or 5 when a history database could not be read (the
/// metrics of what could be read are printed; see the warnings).
///
/// Examples:
///   jobctl metrics
///   jobctl metrics --textfile
///   jobctl --user metrics --textfile ~/.local/share/node-exporter/jobctl.prom
///   jobctl metrics | promtool check metrics
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MetricsArgs {
    /// Write into this file instead of stdout, atomically (default in system
    /// mode: /var/lib/prometheus/node-exporter/jobctl.prom).
    #[arg(long, value_name = "PATH")]
    #[allow(clippy::option_option)]
    pub textfile: Option<Option<PathBuf>>,
}

/// What [`render`] read besides the text.
pub struct Rendered {
    pub text: String,
    /// Databases that could not be read or held rows that could not be
    /// decoded, one line each (the metrics leave them out).
    pub warnings: Vec<String>,
}

pub fn run(paths: &Paths, args: MetricsArgs) -> CliResult {
    let target = match &args.textfile {
        None => None,
        Some(None) => match paths.mode {
            Mode::System => Some(Path::new(DEFAULT_TEXTFILE_DIR).join(DEFAULT_TEXTFILE_NAME)),
            Mode::User => {
                return Err(CliError::usage(anyhow::anyhow!(
                    "--textfile needs a PATH with --user (there is no default per-user textfile folder)"
                ))
                .hint("e.g. jobctl --user metrics --textfile ~/.local/share/node-exporter/jobctl.prom"));
            }
        },
        Some(Some(p)) => Some(p.clone()),
    };
    let rendered = render(paths)?;
    for w in &rendered.warnings {
        output::warn(w);
    }
    match target {
        Some(path) => write_textfile(&path, &rendered.text).map_err(CliError::failure)?,
        None => output::print_text(&rendered.text)?,
    }
    Ok(if rendered.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        Exit::Partial.into()
    })
}

/// The exposition of every job of `paths`' mode, and what could not be read.
pub fn render(paths: &Paths) -> Result<Rendered, CliError> {
    let overview = overview::gather(
        paths,
        overview::Options {
            only: None,
            history: true,
            unit_details: false,
            unrecorded: false,
            run_counts: true,
        },
    )?;
    let mut warnings = Vec::new();
    for (located, error) in &overview.skipped {
        let causes: Vec<String> = error.chain().map(ToString::to_string).collect();
        warnings.push(format!(
            "cannot read the history in {}: {} (its jobs' run metrics are left out)",
            located.path.display(),
            causes.join(": ")
        ));
    }
    for (located, bad) in &overview.bad_rows {
        warnings.push(format!(
            "{} row{} of the history in {} cannot be decoded and {} not counted",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" },
            located.path.display(),
            if bad.len() == 1 { "was" } else { "were" },
        ));
    }
    let notifications = match notification_counts(paths) {
        Ok(counts) => counts,
        Err(e) => {
            warnings.push(format!("{e:#} (jobctl_notifications_total is left out)"));
            None
        }
    };
    let text = exposition(&overview, notifications.as_deref());
    Ok(Rendered {
        text,
        warnings: warnings
            .iter()
            .map(|w| output::escape(w, output::Lines::Keep).into_owned())
            .collect(),
    })
}

/// The text of `overview`'s jobs (gathered with `run_counts`, and the
/// timers' next elapses), judged for overdue by the host's zones; also what
/// `jobctl watch` writes into the configured textfile.
pub fn exposition(overview: &Overview, notifications: Option<&[ChannelAttempts]>) -> String {
    let host = HostZones::new();
    let local = host.local();
    let default_user = match overview.paths.mode {
        Mode::System => "root".to_string(),
        Mode::User => nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| nix::unistd::geteuid().to_string()),
    };
    let overdue = |v: &overview::JobView| {
        crate::commands::watch::overdue_of(v, overview, &local, &host).is_some()
    };
    let facts = view::facts(overview, &default_user, &overdue);
    view::text(&metrics::families(&facts, notifications))
}

/// The delivery counters of the notification database, when there is one.
fn notification_counts(paths: &Paths) -> anyhow::Result<Option<Vec<ChannelAttempts>>> {
    let path = crate::commands::watch::notify_database(paths);
    if !path.exists() {
        return Ok(None);
    }
    let store = Store::open_notify(&path, OpenMode::Read, history_db::READ_BUSY_TIMEOUT)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let counts = store
        .attempt_counts()
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(channel_attempts(counts)))
}

/// The notification database's counts as the metrics take them.
pub fn channel_attempts(counts: Vec<jobctl_history::AttemptCount>) -> Vec<ChannelAttempts> {
    counts
        .into_iter()
        .map(|c| ChannelAttempts {
            channel: c.channel,
            ok: c.ok,
            attempts: c.attempts,
        })
        .collect()
}

/// Writes `text` to `path` so that a reader sees the old file or the new
/// one, never a part: a new file in the same folder (a name node_exporter
/// does not read: it takes `*.prom` only), written and synced, renamed over
/// `path`, and the folder synced. The temporary name is fresh and created
/// exclusively (never a file or link already there).
pub fn write_textfile(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).context("cannot draw a temporary file name")?;
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&tmp)?;
        // Readable by node_exporter's user whatever the umask (the watch
        // service's is 0077).
        file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    })
}
