//! `jobctl logs`: the captured output of one run, the two streams marked, or
//! that run's journal lines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use jobctl_core::journal::{EndEntry, EndEntryRule, Fields, ManagerResult, RunMatch};
use jobctl_history::liveness::LivenessProbe;
use jobctl_history::output::{Segment, Stream, decode};
use jobctl_history::{RunLookup, RunRecord};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::exit::Exit;
use crate::history_db::{self, Readers};
use crate::host::{hostname, now_us};
use crate::output::{self, Lines};
use crate::paths::{Mode, Paths};
use crate::view::format as view;

/// Show the captured output of a job's run.
///
/// Each line is marked with the stream it came from (`out|` or `err|`).
/// Each stream's lines are in the order written; across the two streams,
/// lines are in the order jobctl read them from the two pipes, which can
/// group lines written close together (all of stdout's, then stderr's). A
/// job with `merge_output = true` has both streams on one pipe: its lines
/// are in exactly the order written, marked `o+e|`. Long outputs keep their
/// first and last parts; the gap says how much was left out.
///
/// Examples:
///   jobctl logs nightly-refresh              # the last run
///   jobctl logs nightly-refresh --failed     # the last failed run
///   jobctl logs nightly-refresh --run 5eadbeef
///   jobctl logs nightly-refresh --journal    # its journal lines instead
///   jobctl logs backup --journal-dir /var/log/journal/remote --host db1 --failed
///
/// --journal-dir reads a folder of journal files instead of this host's
/// history (a central systemd-journal-remote's, docs/operations.md, "Logs
/// of many hosts"): the run is the newest end entry of the job there
/// (`JOBCTL_JOB`, and `_HOSTNAME` with --host; --failed and --run as
/// above) that journald shows the job's service sent (`_SYSTEMD_UNIT`; with
/// --user your `_UID` and `_SYSTEMD_USER_UNIT`), described on stderr, and
/// its journal lines are printed as --journal prints them. Other entries
/// naming the job are left out, and counted.
///
/// Control characters in the output (and in job names) are shown escaped
/// (`\x1b`); --raw prints the bytes exactly as captured. Exit status 5: a
/// run was shown, but a database or a row could not be read (see the
/// warnings).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LogsArgs {
    /// The job.
    #[arg(value_name = "JOB")]
    pub job: String,

    /// The run with this id (or a unique prefix of at least 4 digits).
    #[arg(long, value_name = "ID", conflicts_with_all = ["last", "failed"])]
    pub run: Option<String>,

    /// The job's last run (the default).
    #[arg(long, conflicts_with = "failed")]
    pub last: bool,

    /// The job's last run that ended badly.
    #[arg(long)]
    pub failed: bool,

    /// Show the run's journal lines instead of the captured output: its
    /// service's and systemd's about it (the journalctl command `status`
    /// prints).
    #[arg(long, conflicts_with_all = ["raw", "json"])]
    pub journal: bool,

    /// Print the output exactly as written, unmarked, control characters
    /// included (for pipes).
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Machine-readable output (text decoded as UTF-8, invalid bytes replaced).
    #[arg(long)]
    pub json: bool,

    /// Read this database only.
    #[arg(long, value_name = "PATH", conflicts_with = "journal_dir")]
    pub db: Option<PathBuf>,

    /// Find the run in this folder of journal files (a central
    /// systemd-journal-remote's) instead of the history, and show its
    /// journal lines.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["raw", "json", "journal"])]
    pub journal_dir: Option<PathBuf>,

    /// With --journal-dir: only runs of this host (`_HOSTNAME`).
    #[arg(long, value_name = "HOST", requires = "journal_dir")]
    pub host: Option<String>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SegmentView {
    Data { stream: Stream, text: String },
    Omitted { omitted_bytes: u64 },
}

pub fn run(paths: &Paths, args: LogsArgs) -> CliResult<ExitCode> {
    if let Some(dir) = &args.journal_dir {
        return from_journal_dir(paths, &args, dir);
    }
    let lookup = match (&args.run, args.failed) {
        (Some(id), _) => RunLookup::Id(id.clone()),
        (None, true) => RunLookup::LastFailure,
        (None, false) => RunLookup::Last,
    };
    let readers = Readers::open(paths, args.db.as_deref()).map_err(CliError::failure)?;
    let mut partial = readers.report_skipped();
    let probe = LivenessProbe::current(hostname());
    let now = now_us();
    let mut found: Vec<(RunRecord, usize)> = Vec::new();
    for (i, (located, store)) in readers.stores.iter().enumerate() {
        if !readers.accepts(located, &args.job) {
            // A user's database holding runs of a job that is not theirs.
            let filter = jobctl_history::RunFilter {
                job: Some(args.job.clone()),
                jobs: Some(Vec::new()),
                ..Default::default()
            };
            let untrusted = store.count_untrusted_runs(&filter).unwrap_or(0);
            history_db::report_left_out(located, untrusted, &[]);
            continue;
        }
        let run = store.find_run(Some(&args.job), &lookup, &probe, now);
        let bad = store.take_bad_rows();
        partial |= !bad.is_empty();
        // Runs of the job that its user's database claims were recorded
        // as someone else.
        let filter = jobctl_history::RunFilter {
            job: Some(args.job.clone()),
            jobs: readers.allowed_jobs(located),
            ..Default::default()
        };
        let untrusted = store.count_untrusted_runs(&filter).unwrap_or(0);
        history_db::report_left_out(located, untrusted, &bad);
        match run {
            Ok(Some(run)) => found.push((run, i)),
            Ok(None) => {}
            Err(
                e @ (jobctl_history::Error::BadRunId(_)
                | jobctl_history::Error::AmbiguousRunId { .. }),
            ) => {
                return Err(CliError::usage(e));
            }
            Err(e) => {
                return Err(CliError::failure(
                    anyhow::Error::new(e)
                        .context(format!("cannot read {}", located.path.display())),
                ));
            }
        }
    }
    if matches!(lookup, RunLookup::Id(_)) && found.len() > 1 {
        return Err(CliError::usage(anyhow::anyhow!(
            "run id \"{}\" matches runs in {} databases; give more digits",
            args.run.as_deref().unwrap_or_default(),
            found.len()
        )));
    }
    found.sort_by_key(|(run, _)| std::cmp::Reverse(run.started_us));
    let Some((mut run, store_index)) = found.into_iter().next() else {
        let what = match &lookup {
            RunLookup::Last => "no recorded run".to_string(),
            RunLookup::LastFailure => "no failed run".to_string(),
            RunLookup::Id(id) => format!("no run with id {id}"),
        };
        return Err(
            CliError::failure(anyhow::anyhow!("job {}: {what}", args.job)).hint(format!(
                "list the recorded runs with `{}`",
                crate::paths::jobctl(&format!(
                    "history --job {}",
                    crate::paths::shell_quote(&args.job)
                ))
            )),
        );
    };
    // "Run now" from the web: trigger `web` and who (crate::origin).
    readers.apply_origins(std::iter::once(&mut run));
    let (located, store) = &readers.stores[store_index];
    let done = if partial {
        Exit::Partial.into()
    } else {
        ExitCode::SUCCESS
    };

    if args.journal {
        let service = crate::load::service_of(paths, &run.job)
            .with_context(|| format!("cannot name job {}'s service", run.job))?;
        return journal(paths, &run, &service);
    }
    let data = store
        .output(run.id)
        .with_context(|| format!("cannot read {}", located.path.display()))?;
    let segments = match &data {
        Some(bytes) => decode(bytes).map_err(|reason| {
            CliError::failure(jobctl_history::Error::BadOutput {
                run: run.id,
                reason,
            })
        })?,
        None => Vec::new(),
    };
    let not_stored = run.output_not_stored().filter(|_| data.is_none());
    let removed = data.is_none() && run.output_bytes > 0 && not_stored.is_none();
    let note = match not_stored {
        Some(why) => Some(format!("its output was not stored: {why}")),
        None if removed => Some("its output was removed by retention (max_output)".to_string()),
        None => None,
    };

    if args.json {
        let views: Vec<SegmentView> = segments
            .iter()
            .map(|s| match s {
                Segment::Data(stream, bytes) => SegmentView::Data {
                    stream: *stream,
                    text: String::from_utf8_lossy(bytes).into_owned(),
                },
                Segment::Omitted(n) => SegmentView::Omitted { omitted_bytes: *n },
            })
            .collect();
        let view = crate::view::history::RunView::of(&run, &located.path, located.owner.clone());
        // The run's journal lines are its service's (jobctl-web's live tail
        // and run page read them so).
        let service = crate::load::service_of(paths, &run.job).ok();
        let journal_hint = service.as_deref().and_then(|service| {
            run.invocation_id
                .as_deref()
                .map(|id| crate::paths::journal(service, id, false))
        });
        output::print_json_host(
            "logs",
            &serde_json::json!({
                "run": view,
                "service": service,
                "journal_hint": journal_hint,
                "output": views,
                "output_removed": removed,
                "output_not_stored": not_stored,
            }),
        )?;
        return Ok(done);
    }
    if args.raw {
        let mut out = std::io::stdout().lock();
        for seg in &segments {
            if let Segment::Data(_, bytes) = seg {
                if let Err(e) = out.write_all(bytes) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(ExitCode::SUCCESS);
                    }
                    return Err(e.into());
                }
            } else if let Segment::Omitted(n) = seg {
                output::note(&format!("{n} bytes omitted from the middle of this output"));
            }
        }
        let _ = out.flush();
        return Ok(done);
    }

    let color = output::use_color();
    let mut text = String::new();
    let ended = match run.ended_us {
        Some(end) => format!(", took {}", view::duration(end - run.started_us)),
        None => String::new(),
    };
    let mut from = match located.owner {
        Some(_) => format!(", recorded in {}", located.path.display()),
        None => String::new(),
    };
    if let Some(actor) = &run.actor {
        from.push_str(&format!(", started from the web by {actor}"));
    }
    text.push_str(&format!(
        "-- run {} of {}: {} (exit {}), started {}{ended}, {} bytes of output{}{} --\n",
        run.id,
        output::escape(&run.job, Lines::Escape),
        run.status,
        view::exit(&run),
        view::local_time(run.started_us, &crate::zones::local_zone()),
        run.output_bytes,
        if run.output_truncated {
            ", truncated"
        } else {
            ""
        },
        output::escape(&from, Lines::Escape),
    ));
    if let Some(note) = note {
        text.push_str(&format!("-- {note} --\n"));
    }
    render_marked(&segments, color, &mut text);
    output::print_text(&text)?;
    Ok(done)
}

/// Marks each line with its stream. A line cut by a switch to the other
/// stream is ended there, so every line has exactly one mark. Control
/// characters and bytes that are not UTF-8 are escaped ([`output::escape`]);
/// line breaks and tabs are kept.
pub fn render_marked(segments: &[Segment<'_>], color: bool, out: &mut String) {
    let mut at_line_start = true;
    // Pieces of one stream in a row are escaped together, so that a
    // character split across two reads is shown whole.
    let mut pending: Option<(Stream, Vec<u8>)> = None;
    let flush =
        |pending: &mut Option<(Stream, Vec<u8>)>, out: &mut String, at_line_start: &mut bool| {
            let Some((stream, bytes)) = pending.take() else {
                return;
            };
            if !*at_line_start {
                // The previous stream's unfinished line.
                out.push('\n');
                *at_line_start = true;
            }
            let text = output::escape(&bytes, Lines::Keep);
            for piece in text.split_inclusive('\n') {
                if *at_line_start {
                    out.push_str(match (stream, color) {
                        (Stream::Stdout, _) => "out| ",
                        (Stream::Merged, _) => "o+e| ",
                        (Stream::Stderr, false) => "err| ",
                        (Stream::Stderr, true) => "\x1b[31merr|\x1b[0m ",
                    });
                }
                out.push_str(piece);
                *at_line_start = piece.ends_with('\n');
            }
        };
    for seg in segments {
        match seg {
            Segment::Omitted(n) => {
                flush(&mut pending, out, &mut at_line_start);
                if !at_line_start {
                    out.push('\n');
                }
                out.push_str(&format!("-- {n} bytes omitted --\n"));
                at_line_start = true;
            }
            Segment::Data(stream, bytes) => match &mut pending {
                Some((current, buffer)) if current == stream => buffer.extend_from_slice(bytes),
                _ => {
                    flush(&mut pending, out, &mut at_line_start);
                    pending = Some((*stream, bytes.to_vec()));
                }
            },
        }
    }
    flush(&mut pending, out, &mut at_line_start);
    if !at_line_start {
        out.push('\n');
    }
}

/// `--journal`: the journal lines of the run's invocation, through
/// journalctl: those `service` wrote and the manager's about the run, as
/// the hint of `run` and `status` shows them (journald's trusted fields
/// alone, [`jobctl_core::journal::RunMatch`]; per user matched on this
/// user's uid over every journal file they may read).
fn journal(paths: &Paths, run: &RunRecord, service: &str) -> CliResult<ExitCode> {
    let Some(invocation) = &run.invocation_id else {
        return Err(CliError::failure(anyhow::anyhow!(
            "run {} was started from a shell, not by systemd: it has no journal lines of its own",
            run.id
        ))
        .hint(format!(
            "its captured output is shown by `{}`",
            crate::paths::jobctl(&format!(
                "logs {} --run {}",
                crate::paths::shell_quote(&run.job),
                run.id.short()
            ))
        )));
    };
    let mut command = std::process::Command::new("journalctl");
    command
        .args(
            RunMatch::new(
                paths.mode,
                nix::unistd::geteuid().as_raw(),
                service,
                invocation,
            )
            .args(),
        )
        .args(["--no-pager", "--output=short-iso"]);
    let status = command
        .status()
        .context("cannot run journalctl")
        .map_err(|e| CliError::failure(e).hint("is systemd's journalctl installed?"))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

/// An entry of `journalctl -o json` as [`Fields`]: its string fields (a
/// field that is not UTF-8 is an array of bytes there, and left out).
fn fields_of(entry: &serde_json::Value) -> Fields {
    entry
        .as_object()
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `journalctl --directory=DIR -o json MATCHES…`'s entries, in the order
/// given.
fn journal_entries(dir: &std::path::Path, matches: &[String]) -> anyhow::Result<Vec<Fields>> {
    let output = std::process::Command::new("journalctl")
        .arg(format!("--directory={}", dir.display()))
        .args(["--no-pager", "--output=json"])
        .args(matches)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .context("cannot run journalctl")?;
    Ok(output
        .stdout
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .map(|entry| fields_of(&entry))
        .collect())
}

/// An end entry taken as the job's run, and what confirmed it.
struct FoundRun {
    entry: Fields,
    invocation: String,
    /// `None`: journald recorded the job's service as its sender. `Some`:
    /// it recorded no unit, and the manager's lines confirmed the
    /// invocation; what the manager said of the run's end.
    by_manager: Option<ManagerResult>,
}

/// `--journal-dir`: the run from its end entry in a folder of journal
/// files, and its journal lines from there.
///
/// The end entry's `JOBCTL_*` fields are any sender's to write: it is the
/// job's run only when journald's trusted fields say its service sent it
/// ([`EndEntryRule`]); an entry without a unit (the shim had exited before
/// journald read its cgroup) counts when the manager's own lines confirm
/// its invocation and do not contradict its exit, and the run's start
/// entry came from the service and the same process. The rest are left
/// out, and counted.
fn from_journal_dir(paths: &Paths, args: &LogsArgs, dir: &std::path::Path) -> CliResult<ExitCode> {
    use std::io::BufRead as _;
    if !dir.is_dir() {
        return Err(CliError::usage(anyhow::anyhow!(
            "--journal-dir {}: not a folder",
            dir.display()
        ))
        .hint("give the folder journal-remote writes to, e.g. /var/log/journal/remote"));
    }
    let service = crate::load::service_of(paths, &args.job)
        .with_context(|| format!("cannot name job {}'s service", args.job))?;
    // Per user: the caller's uid, as on the sending host (the central
    // host's user must have the same uid, as for the `--user` history).
    let uid = match paths.mode {
        Mode::System => 0,
        Mode::User => nix::unistd::geteuid().as_raw(),
    };
    let rule = EndEntryRule::new(paths.mode, uid, &service);
    let mut command = std::process::Command::new("journalctl");
    command
        .arg(format!("--directory={}", dir.display()))
        .args(["--no-pager", "--reverse", "--output=json"])
        .arg(format!("JOBCTL_JOB={}", args.job))
        .arg(format!("MESSAGE_ID={}", crate::journal::RUN_ENDED_ID));
    if let Some(host) = &args.host {
        command.arg(format!("_HOSTNAME={host}"));
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("cannot run journalctl")
        .map_err(|e| CliError::failure(e).hint("is systemd's journalctl installed?"))?;
    // Newest first: the first entry that fits and is the job's is the run.
    let mut found = None;
    let mut left_out = 0usize;
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let entry = fields_of(&entry);
            let field = |name: &str| entry.get(name).map(String::as_str).unwrap_or_default();
            let fits = match (&args.run, args.failed) {
                (Some(id), _) => field("JOBCTL_RUN_ID").starts_with(id.as_str()),
                (None, true) => field("JOBCTL_STATUS") != "success",
                (None, false) => true,
            };
            if !fits {
                continue;
            }
            let run = match rule.judge(&entry) {
                EndEntry::Rejected(_) => None,
                EndEntry::Confirmed { invocation } => Some(FoundRun {
                    entry,
                    invocation,
                    by_manager: None,
                }),
                EndEntry::NeedsManager { invocation } => {
                    let mut matches: Vec<String> = rule
                        .manager_terms(&invocation)
                        .iter()
                        .map(|(f, v)| format!("{f}={v}"))
                        .collect();
                    if let Some(host) = entry.get("_HOSTNAME") {
                        matches.push(format!("_HOSTNAME={host}"));
                    }
                    let manager: Vec<Fields> = journal_entries(dir, &matches)
                        .map_err(CliError::failure)?
                        .into_iter()
                        .filter(|m| rule.manager_confirms(m, &invocation))
                        .collect();
                    let result = ManagerResult::of(&manager);
                    // The run's start entry, from the service, by the
                    // process that sent this end entry (its run id too).
                    let start_id = crate::journal::RUN_STARTED_ID;
                    let starts: Vec<String> = rule
                        .start_terms(start_id, &entry, &invocation)
                        .iter()
                        .map(|(f, v)| format!("{f}={v}"))
                        .collect();
                    let started = !manager.is_empty()
                        && journal_entries(dir, &starts)
                            .map_err(CliError::failure)?
                            .iter()
                            .any(|s| rule.start_confirms(s, start_id, &entry, &invocation));
                    (started && !result.contradicts(&entry)).then_some(FoundRun {
                        entry,
                        invocation,
                        by_manager: Some(result),
                    })
                }
            };
            match run {
                Some(run) => {
                    found = Some(run);
                    break;
                }
                None => left_out += 1,
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    if left_out > 0 {
        output::note(&format!(
            "left out {left_out} end {} naming job {} that journald does not show came from its service {service}",
            if left_out == 1 { "entry" } else { "entries" },
            args.job
        ));
    }
    let Some(FoundRun {
        entry,
        invocation,
        by_manager,
    }) = found
    else {
        let what = match (&args.run, args.failed) {
            (Some(id), _) => format!("no run with id {id}"),
            (None, true) => "no failed run".to_string(),
            (None, false) => "no run".to_string(),
        };
        let host = args
            .host
            .as_deref()
            .map(|h| format!(" of host {h}"))
            .unwrap_or_default();
        return Err(CliError::failure(anyhow::anyhow!(
            "job {}: {what}{host} in the journal files of {}",
            args.job,
            dir.display()
        ))
        .hint(format!(
            "see which jobs and hosts are there with `journalctl --directory={} -F JOBCTL_JOB` (and `-F _HOSTNAME`)",
            crate::paths::shell_quote(dir.display().to_string())
        )));
    };
    let field = |name: &str| entry.get(name).cloned().unwrap_or_default();
    let host = field("_HOSTNAME");
    let how = match (entry.get("JOBCTL_EXIT_CODE"), entry.get("JOBCTL_SIGNAL")) {
        (_, Some(signal)) => format!(" (signal {signal})"),
        (Some(code), None) => format!(" (exit status {code})"),
        (None, None) => String::new(),
    };
    let confirmed = match &by_manager {
        None => String::new(),
        Some(result) => format!(
            " (journald did not record the sending unit; the invocation is confirmed by the manager, the status is the shim's word: {})",
            result.describe()
        ),
    };
    output::note(&format!(
        "{} on {host}: run {}, {}{how}; invocation {invocation}{confirmed}",
        args.job,
        field("JOBCTL_RUN_ID"),
        field("JOBCTL_STATUS"),
    ));
    // The run's lines as `--journal` selects them (journald's trusted
    // fields alone, on the host that sent them): its service's, and the
    // manager's about it; per user, the caller's uid.
    let mut command = std::process::Command::new("journalctl");
    command
        .arg(format!("--directory={}", dir.display()))
        .args(
            RunMatch::new(paths.mode, uid, &service, &invocation)
                .with("_HOSTNAME", &host)
                .args(),
        )
        .args(["--no-pager", "--output=short-iso"]);
    let status = command
        .status()
        .context("cannot run journalctl")
        .map_err(|e| CliError::failure(e).hint("is systemd's journalctl installed?"))?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_each_line_once() {
        let segs = vec![
            Segment::Data(Stream::Stdout, b"one\ntw"),
            Segment::Data(Stream::Stdout, b"o\n"),
            Segment::Data(Stream::Stderr, b"oops"),
            Segment::Data(Stream::Stdout, b"three\n"),
            Segment::Omitted(99),
            Segment::Data(Stream::Stderr, b"last"),
        ];
        let mut out = String::new();
        render_marked(&segs, false, &mut out);
        assert_eq!(
            out,
            "out| one\nout| two\nerr| oops\nout| three\n-- 99 bytes omitted --\nerr| last\n"
        );
    }
}
