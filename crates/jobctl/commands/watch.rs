//! `jobctl watch --once`: one pass of the watch. It finds what happened to
//! every job since the last pass (failed and lost runs, recoveries, overdue
//! and overrunning runs: `jobctl_core::watch`), queues the events durably in
//! the history it owns (root's main database in system mode, the user's in
//! per-user mode), and sends what is due, each attempt recorded, with
//! retries and a per-channel rate limit. Run by `jobctl-watch.timer` every
//! minute and by `jobctl-watch.socket` when a job with channels ends
//! (docs/notifications.md).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
use jobctl_core::health::RunStatus;
use jobctl_core::notify::{AfterAttempt, NotifyConfig, after_attempt, expired};
use jobctl_core::watch::{self, ChannelRepeat, Ctx, Event, JobInput, RunInfo, Runs, WatchState};
use jobctl_history::notify::{AttemptRecord, NewEvent, NotifyStore, Outcome};
use jobctl_history::{OpenMode, RunRecord, Status, Store};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::history_db;
use crate::journal;
use crate::notify_send::{self, StoredNotification};
use crate::output;
use crate::overview::{self, JobHistory, JobView};
use crate::paths::{Mode, Paths};
use crate::view::format::json_time as format_utc;
use crate::zones::HostZones;

/// Watch the jobs once: queue notifications for what happened, send what is due.
///
/// Detects failed and lost runs (once per incident, after `notify_after`
/// failures in a row), recoveries, scheduled runs that did not start
/// (overdue) and runs past their warning time (overrun), for jobs with
/// notification channels; queues each event in the history; sends every
/// delivery that is due, retrying failures with backoff for `retry_for`,
/// at most `max_per_minute` attempts per channel. Prints nothing when
/// nothing happened (it runs every minute). Shipped units run it:
/// jobctl-watch.timer (every minute) and jobctl-watch.socket (when a job
/// with channels ends). See docs/notifications.md.
///
/// Examples:
///   jobctl watch --once
///   jobctl --user watch --once --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct WatchArgs {
    /// Make one pass and exit (the only mode: systemd's timer and socket
    /// decide when passes run).
    #[arg(long, required = true)]
    pub once: bool,

    /// Print the pass's report as JSON (also when nothing happened).
    #[arg(long)]
    pub json: bool,
}

/// Passes woken by the socket come at most this often: a flood of
/// datagrams (every job failing every second, or anyone writing to the
/// socket) cannot keep the watch busy.
const MIN_PASS_INTERVAL: Duration = Duration::from_secs(1);

/// How long a pass waits for the history's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What one pass did.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Jobs judged (with a schedule or with channels).
    pub jobs: usize,
    /// Events queued by this pass.
    pub events: Vec<EventReport>,
    /// Delivery attempts made by this pass.
    pub attempts: Vec<AttemptReport>,
    /// Deliveries still pending after the pass.
    pub pending: usize,
    /// Datagrams read from the wake-up socket.
    pub woken: usize,
}

#[derive(Debug, Serialize)]
pub struct EventReport {
    pub id: String,
    pub job: String,
    pub kind: String,
    pub channels: Vec<String>,
    pub summary: String,
}

#[derive(Debug, Serialize)]
pub struct AttemptReport {
    pub event_id: String,
    pub job: String,
    pub kind: String,
    pub channel: String,
    pub ok: bool,
    pub state: String,
    pub detail: String,
    pub next_attempt: Option<String>,
}

pub fn run(paths: &Paths, args: WatchArgs) -> CliResult {
    debug_assert!(args.once);
    // First: what woke this pass is covered by it.
    let woken = crate::poke::drain_passed_socket();
    let db_path = notify_database(paths);
    let dir = db_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| history_db::state_dir(paths));
    history_db::create_state_dir(paths, &dir).map_err(|e| {
        failure_for(
            paths,
            anyhow!(e).context(format!("cannot create {}", dir.display())),
        )
    })?;
    let lock_path = dir.join("watch.lock");
    // The lock file's time is when the previous pass ended (none yet when
    // it is created now).
    let existed = lock_path.exists();
    let lock = lock(&lock_path).map_err(|e| failure_for(paths, e))?;
    if woken > 0 && existed {
        pace(lock.metadata().and_then(|m| m.modified()).ok());
    }
    let result = pass(paths, &db_path, woken);
    // When this pass ended, for the pacing of the next.
    let _ = lock.set_modified(std::time::SystemTime::now());
    let report = result?;
    if args.json {
        output::print_json_host("watch", &report)?;
    } else if !report.events.is_empty() || !report.attempts.is_empty() {
        let mut text = String::new();
        for e in &report.events {
            let _ = writeln!(
                text,
                "queued {} {} for {}: {}",
                e.kind,
                e.id,
                e.channels.join(", "),
                e.summary
            );
        }
        for a in &report.attempts {
            let _ = write!(
                text,
                "{} {} of {} over {}: {}",
                if a.ok { "sent" } else { "failed" },
                a.kind,
                a.job,
                a.channel,
                a.detail
            );
            match (&a.next_attempt, a.state.as_str()) {
                (Some(next), _) => {
                    let _ = writeln!(text, "; next attempt {next}");
                }
                (None, "given-up") => text.push_str("; given up\n"),
                _ => text.push('\n'),
            }
        }
        // Details and summaries quote what jobs and channels printed.
        output::print_text(&output::escape(&text, output::Lines::Keep))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The watch's database, `notify.db`, beside the history it owns: the
/// configuration's `[history] db`, else the state folder's `history.db`
/// (root's main database; the user's in per-user mode). A file of its own:
/// see `jobctl_history::notify`.
pub fn notify_database(paths: &Paths) -> PathBuf {
    history_db::history_config(paths)
        .db
        .map(PathBuf::from)
        .unwrap_or_else(|| history_db::state_dir(paths).join("history.db"))
        .with_file_name("notify.db")
}

fn failure_for(paths: &Paths, e: impl Into<anyhow::Error>) -> CliError {
    let err = CliError::failure(e);
    if paths.mode == Mode::System && !nix::unistd::geteuid().is_root() {
        err.hint("the system watch keeps its queue in root's history: run it as root, or use --user for your own jobs")
    } else {
        err
    }
}

/// One pass at a time (the timer, the socket and a hand-run pass may meet).
fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the lock {}", path.display()))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .with_context(|| format!("cannot lock {}", path.display()))?;
    Ok(file)
}

/// Waits until [`MIN_PASS_INTERVAL`] has passed since the previous pass
/// ended (the lock file's time, set at the end of every pass).
fn pace(previous: Option<std::time::SystemTime>) {
    let since = previous.and_then(|t| t.elapsed().ok());
    if let Some(since) = since
        && since < MIN_PASS_INTERVAL
    {
        std::thread::sleep(MIN_PASS_INTERVAL - since);
    }
}

fn pass(paths: &Paths, db_path: &Path, woken: usize) -> CliResult<Report> {
    let zones = HostZones::new();
    let local = zones.local();
    let (config, diagnostics) = crate::load::load_config(paths, &zones)?;
    if diagnostics.iter().any(|d| d.is_error()) {
        output::warn(&format!(
            "{} has errors (see `{}`); its valid notification settings apply",
            paths.config.display(),
            crate::paths::jobctl("validate")
        ));
    }
    // With `[metrics] textfile`, the pass also writes the metrics: from
    // the same overview, with the timers' next elapses and the run counts.
    let textfile = config.metrics.textfile.clone();
    let options = overview::Options {
        only: None,
        history: true,
        unit_details: false,
        unrecorded: false,
        run_counts: textfile.is_some(),
    };
    let overview = if textfile.is_some() {
        overview::gather(paths, options)?
    } else {
        overview::gather_without_next_elapses(paths, options)?
    };
    let now_us = overview.now_us;
    let host = history_db::hostname().unwrap_or_default();
    let mut store = Store::open_notify(db_path, OpenMode::Write, BUSY_TIMEOUT)
        .with_context(|| format!("cannot open the watch's history {}", db_path.display()))
        .map_err(|e| failure_for(paths, e))?;
    let stored: HashMap<String, WatchState> = store
        .watch_states()
        .map_err(CliError::failure)?
        .into_iter()
        .map(|(job, json)| {
            let state = serde_json::from_str(&json).unwrap_or_else(|e| {
                output::warn(&format!(
                    "the watch state of job {job} cannot be read ({e}); starting it afresh"
                ));
                WatchState::default()
            });
            (job, state)
        })
        .collect();

    let mut report = Report {
        woken,
        ..Report::default()
    };
    let mut changes: Vec<(String, Option<String>)> = Vec::new();
    let mut events: Vec<(Event, &JobView)> = Vec::new();
    let ctx = Ctx {
        host: &host,
        now_us,
        local: &local,
        zones: &zones,
    };
    for view in &overview.jobs {
        let Some(job) = &view.definition else {
            // An invalid job file or orphaned units: its state stays.
            continue;
        };
        let schedule = judged_schedule(view);
        let old = stored.get(&view.job).cloned().unwrap_or_default();
        let installed_us = match (&schedule, &old.schedule) {
            (Some(key), Some(known)) if key == known && !old.paused => None,
            (Some(_), _) => installed_time(paths, view),
            (None, _) => None,
        };
        let runs = view.history.as_ref().map(runs_of);
        let channels: Vec<ChannelRepeat> = job
            .notify
            .channels
            .iter()
            .filter_map(|name| config.notify.channels.get(name))
            .map(|c| ChannelRepeat {
                name: c.name.clone(),
                repeat: c.repeat,
            })
            .collect();
        let input = JobInput {
            job,
            channels: &channels,
            runs: runs.as_ref(),
            judge_schedule: schedule.is_some(),
            schedule_key: schedule.as_deref(),
            installed_us,
        };
        let next = if channels.is_empty() {
            // No one to tell: only since when its schedule counts, for
            // `health` (no incidents are kept).
            let mut next = WatchState::default();
            watch::track_schedule(&input, &old, now_us, &mut next);
            next
        } else {
            let (found, next) = watch::evaluate(&input, &old, &ctx);
            events.extend(found.into_iter().map(|e| (e, view)));
            next
        };
        if schedule.is_some() || !channels.is_empty() {
            report.jobs += 1;
        }
        if next != old {
            let json = (!next.is_empty()).then(|| serde_json::to_string(&next).unwrap_or_default());
            changes.push((view.job.clone(), json));
        }
    }
    // Jobs that are gone altogether.
    for job in stored.keys() {
        if !overview.jobs.iter().any(|v| &v.job == job) {
            changes.push((job.clone(), None));
        }
    }

    let new_events = queue(paths, &events, &host, now_us);
    // Nothing changed (the usual pass): no write, no sync.
    let inserted = if changes.is_empty() && new_events.is_empty() {
        Vec::new()
    } else {
        store
            .commit_pass(&changes, &new_events)
            .map_err(CliError::failure)?
    };
    // An id already queued by an earlier pass is not news.
    for n in new_events.iter().filter(|n| inserted.contains(&n.id)) {
        report.events.push(EventReport {
            id: n.id.clone(),
            job: n.job.clone(),
            kind: n.kind.clone(),
            channels: n.channels.clone(),
            summary: n.summary.clone(),
        });
    }

    send_due(&mut store, &config.notify, paths.mode, &mut report)?;
    report.pending = store.due_deliveries(i64::MAX).map(|d| d.len()).unwrap_or(0);
    let keep_age = jobctl_history::Retention::from_given(
        None,
        config.history.keep_age.map(|age| age.as_usec()),
        None,
    )
    .keep_age_us;
    if let Some(age) = keep_age {
        let _ = store.prune_notifications(now_us.saturating_sub(age));
    }
    if let Some(path) = textfile {
        // The pass's work is done: a textfile that cannot be written is a
        // warning (in the journal), and node_exporter's
        // node_textfile_mtime_seconds shows it going stale.
        let notifications: Option<Vec<_>> = match store.attempt_counts() {
            Ok(counts) => Some(crate::commands::metrics::channel_attempts(counts)),
            Err(e) => {
                output::warn(&format!(
                    "cannot count the notifications in {} for the metrics: {e}",
                    db_path.display()
                ));
                None
            }
        };
        let text = crate::commands::metrics::exposition(&overview, notifications.as_deref());
        if let Err(e) = crate::commands::metrics::write_textfile(Path::new(&path), &text) {
            output::warn(&format!(
                "{e:#} (the [metrics] textfile of {})",
                paths.config.display()
            ));
        }
    }
    Ok(report)
}

/// The job's schedule, when its timer should run and is installed as its
/// file says: the `[Timer]` section (what identifies the schedule).
pub fn judged_schedule(view: &JobView) -> Option<String> {
    let job = view.definition.as_ref()?;
    if job.schedules.is_empty() || !view.derived.wish.is_some_and(|w| w.on) {
        return None;
    }
    let timer = view.rendered.as_ref()?.timer.as_ref()?;
    if !view.derived.timer_installed
        || view.derived.outdated_units.contains(&timer.name)
        || view.derived.missing_units.contains(&timer.name)
    {
        return None;
    }
    Some(jobctl_core::plan::timer_section(&timer.contents).join("\n"))
}

/// The overdue run of a job, for `health` and `status`: the same rule and
/// the same "since" as the watch ([`watch::schedule_since`]: the watch's
/// stored state when it tracked this schedule, else when the timer was
/// installed).
pub fn overdue_of(
    view: &JobView,
    overview: &overview::Overview,
    local: &jiff::tz::TimeZone,
    zones: &dyn jobctl_core::context::ZoneLookup,
) -> Option<jobctl_core::overdue::Expected> {
    use jobctl_core::overdue::{LastRun, judge};
    let key = judged_schedule(view)?;
    let job = view.definition.as_ref()?;
    let last = view.history.as_ref().map(|h| LastRun {
        started_us: h.summary.last.started_us,
        ended_us: h.summary.last.ended_us,
        running: h.summary.last.status == Status::Running,
    });
    let now = overview.now_us;
    // A later "since" only moves the expected run later: when the runs
    // alone say it is not overdue, nothing more needs reading.
    if last.is_some() && judge(job, last, None, now, local, zones).is_none() {
        return None;
    }
    static STATES: std::sync::OnceLock<HashMap<String, WatchState>> = std::sync::OnceLock::new();
    let states = STATES.get_or_init(|| stored_states(&overview.paths));
    let since = watch::schedule_since(
        states.get(&view.job),
        Some(&key),
        installed_time(&overview.paths, view),
        now,
    );
    judge(job, last, since, now, local, zones)
}

/// The watch's stored states, read-only; none when the database cannot be
/// read (not there yet, not this user's, an older schema).
fn stored_states(paths: &Paths) -> HashMap<String, WatchState> {
    let path = notify_database(paths);
    let Ok(store) = Store::open_notify(&path, OpenMode::Read, history_db::READ_BUSY_TIMEOUT) else {
        return HashMap::new();
    };
    store
        .watch_states()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(job, json)| Some((job, serde_json::from_str(&json).ok()?)))
        .collect()
}

/// When the job's timer file was written (µs), if it can be read.
pub fn installed_time(paths: &Paths, view: &JobView) -> Option<i64> {
    let timer = view.timer.as_ref()?;
    let modified = std::fs::symlink_metadata(paths.unit_dir.join(timer))
        .and_then(|m| m.modified())
        .ok()?;
    Some(history_db::system_time_us(modified))
}

/// The engine's view of a job's newest runs.
pub fn runs_of(h: &JobHistory) -> Runs {
    Runs {
        last: run_info(&h.summary.last),
        last_failure: h.last_failed_run().map(run_info),
        failure_streak: h.summary.failure_streak,
        last_success_us: h.summary.last_success_us,
    }
}

fn run_info(r: &RunRecord) -> RunInfo {
    RunInfo {
        id: r.id.to_string(),
        status: run_status(r.status),
        started_us: r.started_us,
        ended_us: r.ended_us,
        deadline_us: r.deadline_us,
        attempt: r.attempt,
    }
}

pub fn run_status(status: Status) -> RunStatus {
    match status {
        Status::Running => RunStatus::Running,
        Status::Success => RunStatus::Success,
        Status::Failed => RunStatus::Failed,
        Status::Error => RunStatus::Error,
        Status::Timeout => RunStatus::Timeout,
        Status::Killed => RunStatus::Killed,
        Status::Lost => RunStatus::Lost,
        Status::Expired => RunStatus::Expired,
    }
}

/// The events as queued: each with its notification (the run's facts and
/// its output's tail, read from the job's own database).
fn queue(paths: &Paths, events: &[(Event, &JobView)], host: &str, now_us: i64) -> Vec<NewEvent> {
    // The outputs of failed runs, from their databases (opened only when
    // there is such an event).
    let mut readers = None;
    events
        .iter()
        .map(|(event, view)| {
            let history = view.history.as_ref();
            let run = event
                .run
                .as_ref()
                .and_then(|r| history.and_then(|h| find_run(h, &r.id)));
            let wants_output = matches!(
                event.kind,
                watch::EventKind::Failure | watch::EventKind::Lost
            );
            let output = match (run, history) {
                (Some(run), Some(h)) if wants_output && run.output_bytes > 0 => {
                    let readers = readers
                        .get_or_insert_with(|| history_db::Readers::open_unfiltered(paths).ok());
                    readers.as_ref().and_then(|r| {
                        r.stores
                            .iter()
                            .find(|(l, _)| l.path == h.database)
                            .and_then(|(_, store)| store.output(run.id).ok().flatten())
                    })
                }
                _ => None,
            };
            let mut n = notify_send::notification(
                event,
                host,
                run,
                output.as_deref(),
                paths.mode,
                &view.service,
            );
            // A lost run's shim died before storing its output: what the
            // command printed is in the journal, under the run's invocation.
            if event.kind == watch::EventKind::Lost && n.output_tail.is_none() {
                n.output_tail = run
                    .and_then(|r| r.invocation_id.as_deref())
                    .and_then(|id| {
                        journal::invocation_output(
                            paths.mode,
                            &view.service,
                            id,
                            notify_send::TAIL_LINES,
                        )
                    })
                    .and_then(|lines| notify_send::text_tail(&lines));
            }
            NewEvent {
                id: event.id.clone(),
                job: event.job.clone(),
                kind: event.kind.as_str().into(),
                created_us: now_us,
                run_id: event.run.as_ref().map(|r| r.id.clone()),
                summary: n.summary.clone(),
                payload: serde_json::to_string(&StoredNotification::from(&n)).unwrap_or_default(),
                channels: event.channels.clone(),
            }
        })
        .collect()
}

fn find_run<'a>(h: &'a JobHistory, id: &str) -> Option<&'a RunRecord> {
    std::iter::once(&h.summary.last)
        .chain(h.last_failed_run())
        .find(|r| r.id.to_string() == id)
}

/// Sends every delivery that is due, oldest first: at most
/// `max_per_minute` attempts per channel in any minute (counted from the
/// recorded attempts, so across passes), each attempt and its outcome
/// recorded before the next.
fn send_due(
    store: &mut NotifyStore,
    config: &NotifyConfig,
    mode: Mode,
    report: &mut Report,
) -> CliResult<()> {
    let start = history_db::now_us();
    let due = store.due_deliveries(start).map_err(CliError::failure)?;
    let mut used: BTreeMap<String, u32> = BTreeMap::new();
    let began = Instant::now();
    for d in due {
        let now = history_db::now_us();
        let Some(channel) = config.channels.get(&d.channel) else {
            store
                .give_up(
                    &d.event_id,
                    &d.channel,
                    "the channel is no longer configured",
                )
                .map_err(CliError::failure)?;
            continue;
        };
        let count = match used.get(&d.channel) {
            Some(n) => *n,
            None => store
                .attempts_since(&d.channel, now - 60_000_000)
                .map_err(CliError::failure)?,
        };
        if count >= config.max_per_minute {
            if expired(d.created_us, now, config.retry_for) {
                store
                    .give_up(&d.event_id, &d.channel, &format!("never attempted within retry_for: the channel's limit of {} attempts a minute held it back", config.max_per_minute))
                    .map_err(CliError::failure)?;
            }
            used.insert(d.channel.clone(), count);
            continue;
        }
        used.insert(d.channel.clone(), count + 1);
        let n = match serde_json::from_str::<StoredNotification>(&d.payload) {
            Ok(stored) => stored.into(),
            Err(e) => {
                store
                    .give_up(
                        &d.event_id,
                        &d.channel,
                        &format!("the queued notification cannot be read: {e}"),
                    )
                    .map_err(CliError::failure)?;
                continue;
            }
        };
        let attempt = notify_send::send(channel, &n, mode);
        let at_us = history_db::now_us();
        let outcome = match after_attempt(
            attempt.ok,
            attempt.retryable,
            d.attempts + 1,
            d.created_us,
            at_us,
            config.retry_for,
        ) {
            AfterAttempt::Sent => Outcome::Sent,
            AfterAttempt::Retry { next_us } => Outcome::Retry { next_us },
            AfterAttempt::GiveUp => Outcome::GivenUp,
        };
        let detail = one_line(&attempt.detail);
        store
            .record_attempt(
                &AttemptRecord {
                    event_id: d.event_id.clone(),
                    channel: d.channel.clone(),
                    at_us,
                    ok: attempt.ok,
                    retryable: attempt.retryable,
                    http_status: attempt.http_status,
                    exit_status: attempt.exit_status,
                    detail: detail.clone(),
                    duration_ms: attempt.duration_ms,
                },
                outcome,
            )
            .map_err(CliError::failure)?;
        report.attempts.push(AttemptReport {
            event_id: d.event_id.clone(),
            job: d.job.clone(),
            kind: d.kind.clone(),
            channel: d.channel.clone(),
            ok: attempt.ok,
            state: match outcome {
                Outcome::Sent => "sent",
                Outcome::Retry { .. } => "pending",
                Outcome::GivenUp => "given-up",
            }
            .into(),
            detail,
            next_attempt: match outcome {
                Outcome::Retry { next_us } => Some(format_utc(next_us)),
                _ => None,
            },
        });
        // A pass is bounded: what is left waits for the next one.
        if began.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    Ok(())
}

/// A detail as one line of at most 500 characters (what is stored and shown).
fn one_line(text: &str) -> String {
    let line: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .take(500)
        .collect();
    line.trim().to_string()
}
