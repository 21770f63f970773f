//! `jobctl apply`: reconcile systemd with the jobs folder.
//!
//! Lock, load and validate every job (nothing changes if any is invalid),
//! render for this host's systemd version, read the units jobctl owns and ask
//! systemd about them, plan (`jobctl_core::plan`), then execute in an order
//! that is safe to interrupt: stop, write, disable, enable, delete, one
//! reload, start/restart, reset-failed. On a failure it stops and reports
//! what was done and what was not; the next apply converges.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use jobctl_core::plan::{self, JobPlan, Phase, Plan, Target, TimerState};
use jobctl_systemd::{JobOp, Property, Systemd, UnitDir};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::exit::Exit;
use crate::output;
use crate::paths::{Mode, Paths};
use crate::systemd;
use crate::view::apply as view;

/// How long one batch of start/stop jobs may take.
const JOB_DEADLINE: Duration = Duration::from_secs(120);

/// Install the jobs folder into systemd: write changed units, one reload,
/// start, restart, stop and remove timers as needed.
///
/// Only units carrying jobctl's mark (X-Jobctl-Job=) are ever touched. A
/// second apply right after a first changes nothing.
///
/// Exit status: 0 applied (or nothing to do), 1 failed part-way (the report
/// says what was done), 2 invalid job files (nothing changed); with --check,
/// 0 when nothing would change and 3 when something would.
///
/// Examples:
///   jobctl apply
///   jobctl apply --check --diff
///   jobctl apply --json          # Ansible: changed_when: (out.stdout | from_json).changed
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ApplyArgs {
    /// Change nothing: print the plan; exit 3 if anything would change.
    #[arg(long, visible_alias = "dry-run")]
    pub check: bool,
    /// Show unified diffs of the unit files that would change or did.
    #[arg(long)]
    pub diff: bool,
    /// Remove the units of jobs whose files are gone [default].
    #[allow(rustdoc::broken_intra_doc_links)] // `--help` text: "[default]" is no link
    #[arg(long, overrides_with = "no_prune")]
    pub prune: bool,
    /// Keep the units of jobs whose files are gone.
    #[arg(long)]
    pub no_prune: bool,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    changed: bool,
    check: bool,
    systemd_version: u32,
    summary: BTreeMap<&'static str, usize>,
    jobs: &'a [JobPlan],
    reload: bool,
    done: Vec<String>,
    not_done: Vec<String>,
    error: Option<String>,
    /// Units of these jobs systemd could not load, with its reason.
    not_loaded: Vec<NotLoaded>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    diffs: Vec<String>,
    /// What the operator should know although nothing failed (e.g. per-user
    /// timers that stop at logout); also printed on stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    elapsed_ms: u128,
}

pub fn run(paths: &Paths, args: ApplyArgs) -> CliResult {
    let started = Instant::now();
    let _lock = if args.check {
        None
    } else {
        Some(systemd::lock(paths)?)
    };
    let sd = systemd::connect(paths)?;
    let version = sd
        .version()
        .map_err(|e| systemd::systemd_error(e, paths.mode))?;
    let now = jiff::Timestamp::now();
    let (_loaded, desired) = systemd::desired(
        paths,
        crate::load::Checks {
            now: Some(now),
            systemd: Some(crate::rendering::manager_target(version.major)),
        },
    )?;
    let unit_dir = UnitDir::new(&paths.unit_dir);
    let (actual, mut load_states) = systemd::actual(&sd, &unit_dir, &desired, paths.mode)?;
    let overrides = systemd::read_overrides(paths)?;
    let prune = !args.no_prune;
    let plan = plan::plan(&desired, &actual, &overrides, now, prune).map_err(|errs| {
        let listing: Vec<String> = errs.iter().map(ToString::to_string).collect();
        CliError::usage(anyhow!(
            "{}\n{} conflict{} with units jobctl does not own; nothing was changed",
            listing.join("\n"),
            errs.len(),
            if errs.len() == 1 { "" } else { "s" }
        ))
    })?;

    let diffs = if args.diff {
        view::diffs(&plan)
    } else {
        Vec::new()
    };
    let mut exec = Execution::default();
    let mut error = None;
    if !args.check && plan.changed() {
        if let Err(e) = execute(
            &sd,
            &unit_dir,
            &plan,
            paths.mode,
            &mut load_states,
            &mut exec,
        ) {
            error = Some(e);
        }
    } else if !args.check {
        // Nothing to write, but a unit systemd could not load is still
        // reported (from the load states read above).
        match not_loaded(&sd, &plan.kept_units(), &load_states) {
            Ok(units) => exec.not_loaded = units,
            Err(e) => error = Some(systemd_failure(e, paths.mode)),
        }
    }
    if error.is_none() && !exec.not_loaded.is_empty() {
        let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(5) - started.elapsed();
        for n in exec.not_loaded.iter_mut() {
            n.detail = journal_detail(paths.mode, &n.unit, since);
        }
        let lines: Vec<String> = exec
            .not_loaded
            .iter()
            .map(|n| match &n.detail {
                Some(d) => format!("job {}: {}: {} ({d})", n.job, n.unit, n.error),
                None => format!("job {}: {}: {}", n.job, n.unit, n.error),
            })
            .collect();
        let message = format!(
            "systemd could not load {} unit(s); these jobs cannot run (their timers are not started):\n  {}",
            exec.not_loaded.len(),
            lines.join("\n  ")
        );
        let journal = match paths.mode {
            crate::paths::Mode::System => format!("journalctl -b -u {}", exec.not_loaded[0].unit),
            crate::paths::Mode::User => {
                format!(
                    "journalctl --user -b --user-unit={}",
                    exec.not_loaded[0].unit
                )
            }
        };
        let err = CliError::failure(anyhow!(message.clone())).hint(format!(
            "`{journal}` shows systemd's detail; fix the job file, then run `{}` again",
            crate::paths::jobctl("apply")
        ));
        error = Some((message, err));
    }
    if !args.check && error.is_none() && !plan.stale_overrides.is_empty() {
        let mut kept = overrides.clone();
        for job in &plan.stale_overrides {
            kept.remove(job);
        }
        systemd::write_overrides(paths, &kept)?;
    }

    let warnings = warnings(paths, &plan);
    let report = Report {
        changed: plan.changed() && (args.check || !exec.done.is_empty()),
        check: args.check,
        systemd_version: version.major,
        summary: view::summary(&plan),
        jobs: &plan.jobs,
        reload: plan.needs_reload(),
        done: exec.done.clone(),
        not_done: if error.is_some() {
            exec.remaining(&plan)
        } else {
            Vec::new()
        },
        error: error.as_ref().map(|(message, _)| message.clone()),
        not_loaded: exec.not_loaded.clone(),
        diffs,
        warnings,
        elapsed_ms: started.elapsed().as_millis(),
    };
    if args.json {
        output::print_json(&report)?;
    } else {
        output::print_text(&view::text(
            &plan,
            &view::Outcome {
                jobctl: &crate::paths::jobctl(""),
                check: report.check,
                diffs: &report.diffs,
                done: &report.done,
                not_done: &report.not_done,
            },
        ))?;
    }
    for w in &report.warnings {
        output::warn(w);
    }
    if let Some((_, e)) = error {
        return Err(e);
    }
    if args.check && plan.changed() {
        return Ok(Exit::ChangesPending.into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Per-user mode: the timers this apply leaves running stop when the user
/// logs out, unless lingering is on.
fn warnings(paths: &Paths, plan: &Plan) -> Vec<String> {
    if paths.mode != Mode::User {
        return Vec::new();
    }
    let timers = plan
        .jobs
        .iter()
        .filter(|j| j.timer_state == TimerState::Active)
        .count();
    match crate::linger::caller() {
        Some((user, false)) if timers > 0 => {
            vec![jobctl_core::health::linger_problem(&user, timers).message]
        }
        _ => Vec::new(),
    }
}

/// What has been done so far, step by step, for the partial-failure report.
#[derive(Default)]
struct Execution {
    done: Vec<String>,
    /// How many of the plan's phases were carried out.
    phases_done: usize,
    /// Units systemd could not load after the reload.
    not_loaded: Vec<NotLoaded>,
}

/// A unit of an applied job that systemd could not load.
#[derive(Debug, Clone, Serialize)]
struct NotLoaded {
    job: String,
    unit: String,
    /// systemd's `LoadState`: "error" or "bad-setting".
    load_state: String,
    /// systemd's reason (`LoadError`).
    error: String,
    /// systemd's last journal line about the unit since the apply began
    /// (what exactly it refused), when there is one.
    detail: Option<String>,
}

/// The last line systemd logged about `unit` since `since` (e.g. "Service
/// has Restart= set to either always or on-success, which isn't allowed for
/// Type=oneshot services. Refusing."), control characters replaced. Best
/// effort: `None` when journalctl is missing or has nothing.
fn journal_detail(mode: crate::paths::Mode, unit: &str, since: jiff::Timestamp) -> Option<String> {
    let mut cmd = std::process::Command::new("journalctl");
    match mode {
        crate::paths::Mode::System => cmd.arg(format!("--unit={unit}")),
        crate::paths::Mode::User => cmd.arg("--user").arg(format!("--user-unit={unit}")),
    };
    let out = cmd
        .args([
            "--boot",
            "--output=cat",
            "--lines=1",
            "--no-pager",
            "--quiet",
        ])
        .arg(format!("--since=@{}", since.as_second()))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last()?.trim();
    let line = line
        .strip_prefix(&format!("{unit}: "))
        .unwrap_or(line)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect::<String>();
    (!line.is_empty()).then_some(line)
}

/// The kept units whose load state says systemd refused the file, with
/// systemd's reason (`LoadError`, read for those few only).
fn not_loaded(
    sd: &Systemd,
    kept: &[Target<'_>],
    load_states: &systemd::LoadStates,
) -> Result<Vec<NotLoaded>, jobctl_systemd::Error> {
    let bad: Vec<&Target<'_>> = kept
        .iter()
        .filter(|t| {
            load_states
                .get(t.unit)
                .is_some_and(|s| matches!(s.as_str(), "error" | "bad-setting"))
        })
        .collect();
    if bad.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = bad.iter().map(|t| t.unit.to_string()).collect();
    let paths: Vec<_> = sd
        .list_units_by_names(&names)?
        .into_iter()
        .map(|s| (s.name, s.path))
        .collect();
    let props = sd.selected_properties(&paths, &[Property::LoadError])?;
    let mut out = Vec::new();
    for ((unit, _), p) in paths.iter().zip(props) {
        let job = bad
            .iter()
            .find(|t| t.unit == unit)
            .map(|t| t.job.to_string())
            .unwrap_or_default();
        let load_state = load_states.get(unit).cloned().unwrap_or_default();
        let error = match p {
            Ok(p) if !p.load_error.is_empty() => p.load_error,
            _ => format!("LoadState={load_state}"),
        };
        out.push(NotLoaded {
            job,
            unit: unit.clone(),
            load_state,
            error,
            detail: None,
        });
    }
    Ok(out)
}

fn systemd_failure(e: jobctl_systemd::Error, mode: crate::paths::Mode) -> (String, CliError) {
    (e.to_string(), systemd::systemd_error(e, mode))
}

impl Execution {
    /// The phases not carried out, with how many units each would have
    /// acted on.
    fn remaining(&self, plan: &Plan) -> Vec<String> {
        plan.phases()
            .iter()
            .skip(self.phases_done)
            .filter(|phase| phase.changes_something())
            .map(|phase| format!("{} ({})", phase.label(), phase.units().len()))
            .collect()
    }
}

fn names(targets: &[Target<'_>]) -> Vec<String> {
    targets.iter().map(|t| t.unit.to_string()).collect()
}

/// Notes what a write or deletion of `total` unit files did (all of them,
/// or those done before it failed).
fn file_step(
    exec: &mut Execution,
    result: Result<(), jobctl_systemd::Partial>,
    verb: &str,
    total: usize,
) -> Result<(), jobctl_systemd::Error> {
    match result {
        Ok(()) => {
            exec.done.push(format!("{verb} {total} unit files"));
            Ok(())
        }
        Err(p) => {
            if !p.done.is_empty() {
                exec.done
                    .push(format!("{verb} {} of {total} unit files", p.done.len()));
            }
            Err(p.error)
        }
    }
}

/// Carries out the plan's phases in order ([`Plan::phases`]); stops at the
/// first that fails.
fn execute(
    sd: &Systemd,
    unit_dir: &UnitDir,
    plan: &Plan,
    mode: crate::paths::Mode,
    load_states: &mut systemd::LoadStates,
    exec: &mut Execution,
) -> Result<(), (String, CliError)> {
    let mode_err = |e: jobctl_systemd::Error| {
        let message = e.to_string();
        (message, systemd::systemd_error(e, mode))
    };
    let jobs = |op: JobOp,
                units: Vec<String>,
                label: &str,
                exec: &mut Execution|
     -> Result<(), (String, CliError)> {
        if units.is_empty() {
            return Ok(());
        }
        let outcomes = sd.run_jobs(op, &units, JOB_DEADLINE).map_err(mode_err)?;
        let mut failures = Vec::new();
        let mut failed_units = Vec::new();
        let mut ok = 0;
        for o in outcomes {
            match o.result {
                Ok(r) if r == "done" => {
                    ok += 1;
                    continue;
                }
                Ok(r) => failures.push(format!("{}: job {r}", o.unit)),
                Err(e) => failures.push(e.to_string()),
            }
            failed_units.push(o.unit);
        }
        exec.done.push(format!("{label}: {ok} of {}", units.len()));
        if failures.is_empty() && ok == units.len() {
            Ok(())
        } else {
            let message = format!(
                "{label} failed for {} unit(s):\n  {}",
                units.len() - ok,
                failures.join("\n  ")
            );
            Err((
                message.clone(),
                CliError::failure(anyhow!(message)).hint(format!(
                    "see `{}` and `{}`; run `{}` again once fixed",
                    crate::paths::systemctl(&format!("status {}", failed_units.join(" "))),
                    crate::paths::manager_log(),
                    crate::paths::jobctl("apply")
                )),
            ))
        }
    };
    for phase in plan.phases() {
        // A timer whose job's units did not load is not started (systemd
        // would refuse: its unit to trigger is not loaded).
        let broken: Vec<&str> = exec.not_loaded.iter().map(|n| n.job.as_str()).collect();
        match phase.without_jobs(&broken) {
            Phase::StopTimers(timers) => jobs(JobOp::Stop, names(&timers), "stopped timers", exec)?,
            Phase::WriteUnits(writes) => {
                let files: Vec<(String, String)> = writes
                    .iter()
                    .map(|w| (w.name.clone(), w.new.clone()))
                    .collect();
                let written = unit_dir.write_all(&files);
                file_step(exec, written, "wrote", files.len()).map_err(mode_err)?;
            }
            Phase::DisableTimers(timers) => {
                sd.disable_unit_files(&names(&timers)).map_err(mode_err)?;
                exec.done.push(format!("disabled {} timers", timers.len()));
            }
            Phase::EnableTimers(timers) => {
                sd.enable_unit_files(&names(&timers)).map_err(mode_err)?;
                exec.done.push(format!("enabled {} timers", timers.len()));
            }
            Phase::DeleteUnits(units) => {
                let units = names(&units);
                let deleted = unit_dir.remove_all(&units);
                file_step(exec, deleted, "deleted", units.len()).map_err(mode_err)?;
            }
            Phase::Reload => {
                sd.reload().map_err(mode_err)?;
                exec.done.push("reloaded systemd".to_string());
            }
            Phase::CheckLoaded(kept) => {
                // What systemd made of the files just written.
                let written: Vec<String> = plan.writes().map(|w| w.name.clone()).collect();
                if plan.needs_reload() && !written.is_empty() {
                    for status in sd.list_units_by_names(&written).map_err(mode_err)? {
                        load_states.insert(status.name, status.load_state);
                    }
                }
                exec.not_loaded = not_loaded(sd, &kept, load_states).map_err(mode_err)?;
            }
            Phase::StartTimers(timers) => {
                jobs(JobOp::Start, names(&timers), "started timers", exec)?
            }
            Phase::RestartTimers(timers) => {
                jobs(JobOp::Restart, names(&timers), "restarted timers", exec)?
            }
            Phase::ResetFailed(units) => {
                for unit in &units {
                    sd.reset_failed(unit.unit).map_err(mode_err)?;
                }
                exec.done.push(format!("reset {} units", units.len()));
            }
        }
        exec.phases_done += 1;
    }
    Ok(())
}
