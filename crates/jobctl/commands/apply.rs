//! `jobctl apply`: reconcile systemd with the jobs folder.
//!
//! Lock, load and validate every job (an invalid job is skipped, its units
//! left as they are; with `--strict` nothing changes if any is invalid),
//! render for this host's systemd version, read the units jobctl owns and ask
//! systemd about them, plan (`jobctl_core::plan`), then execute in an order
//! that is safe to interrupt: stop, write, disable, enable, delete, one
//! reload, start/restart, reset-failed. On a failure it stops and reports
//! what was done and what was not; the next apply converges.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use jobctl_core::diag::Diagnostic;
use jobctl_core::naming::JobName;
use jobctl_core::plan::{self, JobPlan, LeftAlone, Phase, Plan, Scope, Target, TimerState};
use jobctl_systemd::{JobOp, Property, Systemd, UnitDir};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::exit::Exit;
use crate::load::{GivenJob, JobSelection};
use crate::output;
use crate::paths::{Mode, Paths};
use crate::systemd;
use crate::view::apply::{self as view, UnitDiff};

/// How long one batch of start/stop jobs may take.
const JOB_DEADLINE: Duration = Duration::from_secs(120);

/// Install the jobs folder into systemd: write changed units, one reload,
/// start, restart, stop and remove timers as needed.
///
/// Only units carrying jobctl's mark (X-Jobctl-Job=) are ever touched, and of
/// those only the ones installed from this jobs folder (their X-Jobctl-Source=):
/// another folder's jobs are left alone. A second apply right after a first
/// changes nothing.
///
/// A job file that does not validate does not hold the others back: the valid
/// jobs are applied, the invalid job's installed units are left exactly as they
/// are (never removed because its file is broken), the report names it, and the
/// exit status is 6. --strict applies nothing unless every file is valid.
///
/// Plan against content that is not in the jobs folder yet (config management's
/// check mode): --check --job NAME=FILE reads NAME's job file from FILE (`-`:
/// standard input) as if it were NAME.toml in the jobs folder; --absent NAME as
/// if NAME's file were gone.
///
/// Exit status: 0 applied (or nothing to do), 1 failed part-way (the report
/// says what was done), 2 invalid input (nothing changed: bad flags, an
/// invalid configuration, two files for one job, a unit name taken by a unit
/// jobctl does not own, or with --strict any invalid job file), 6 applied but
/// invalid jobs were skipped; with --check, 3 when something would change.
///
/// Examples:
///   jobctl apply
///   jobctl apply --check --diff
///   jobctl apply backup                  # only this job; the others stay as they are
///   jobctl apply --check --json backup --job backup=/tmp/backup.toml
///   jobctl apply --strict                # all or nothing
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ApplyArgs {
    /// Only these jobs: plan and apply them and leave every other job as it is
    /// [default: every job].
    #[arg(value_name = "JOB")]
    pub jobs: Vec<String>,
    /// Change nothing: print the plan; exit 3 if anything would change.
    #[arg(long, visible_alias = "dry-run")]
    pub check: bool,
    /// Show unified diffs of the unit files that would change or did (with
    /// --json: each unit's text before and after).
    #[arg(long)]
    pub diff: bool,
    /// Remove the units of jobs whose files are gone [default].
    #[allow(rustdoc::broken_intra_doc_links)] // `--help` text: "[default]" is no link
    #[arg(long, overrides_with = "no_prune")]
    pub prune: bool,
    /// Keep the units of jobs whose files are gone.
    #[arg(long)]
    pub no_prune: bool,
    /// Also remove the units of jobs installed from other jobs folders (which
    /// are otherwise left alone).
    #[arg(long, conflicts_with = "no_prune")]
    pub prune_all: bool,
    /// Apply nothing unless every job file is valid (the default applies the
    /// valid jobs and skips invalid ones).
    #[arg(long)]
    pub strict: bool,
    /// With --check: take job NAME's file from FILE (`-`: standard input), as
    /// if it were NAME.toml in the jobs folder. Repeatable.
    #[arg(long = "job", value_name = "NAME=FILE", requires = "check")]
    pub given: Vec<String>,
    /// Take job NAME's file as gone: with --check, plan its removal; without,
    /// the file must be gone already (nothing installed is then no error).
    /// Repeatable.
    #[arg(long, value_name = "NAME")]
    pub absent: Vec<String>,
    /// Machine-readable report (on failure too: one JSON object).
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
    /// Jobs installed from other jobs folders, not touched.
    left_alone: &'a [LeftAlone],
    /// Every problem found in the files (errors of the jobs skipped as
    /// invalid, warnings), with file, line, column, key and hint.
    diagnostics: &'a [Diagnostic],
    /// With --diff: each unit file written or deleted, before and after.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    diffs: Vec<UnitDiff>,
    /// What the operator should know although nothing failed (e.g. per-user
    /// timers that stop at logout); also printed on stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
    elapsed_ms: u128,
}

/// What this apply is asked to plan: the named jobs, given content, jobs
/// taken as gone.
struct Request {
    only: Option<BTreeSet<String>>,
    given: Vec<GivenJob>,
    absent: Vec<String>,
}

impl Request {
    /// Checks every name and reads the given files.
    fn read(paths: &Paths, args: &ApplyArgs) -> Result<Request, CliError> {
        let name = |n: &str, flag: &str| -> Result<String, CliError> {
            JobName::new(n)
                .map(|_| n.to_string())
                .map_err(|e| CliError::usage(anyhow!("{flag}: {n:?} is not a job name: {e}")))
        };
        for job in &args.jobs {
            name(job, "JOB")?;
        }
        let mut given = Vec::new();
        let mut stdin_used = false;
        for g in &args.given {
            let Some((n, file)) = g.split_once('=') else {
                return Err(CliError::usage(anyhow!(
                    "--job {g:?}: expected NAME=FILE (FILE `-` for standard input)"
                )));
            };
            let n = name(n, "--job")?;
            if file == "-" {
                if stdin_used {
                    return Err(CliError::usage(anyhow!(
                        "--job: only one job file can come from standard input"
                    )));
                }
                stdin_used = true;
            }
            let text = super::validate::read_given(file)?;
            given.push(GivenJob { name: n, text });
        }
        let mut absent = Vec::new();
        for n in &args.absent {
            let n = name(n, "--absent")?;
            if given.iter().any(|g| g.name == n) {
                return Err(CliError::usage(anyhow!(
                    "job {n} is given both with --job and --absent"
                )));
            }
            let file = paths.jobs_dir.join(format!("{n}.toml"));
            if !args.check && file.exists() {
                return Err(CliError::usage(anyhow!(
                    "--absent {n}: its job file {} still exists",
                    file.display()
                ))
                .hint(format!(
                    "without --check, --absent applies a removal the file's deletion already made: delete the file first, or `{}`",
                    crate::paths::jobctl(&format!("remove {n}"))
                )));
            }
            absent.push(n);
        }
        Ok(Request {
            only: (!args.jobs.is_empty()).then(|| args.jobs.iter().cloned().collect()),
            given,
            absent,
        })
    }
}

pub fn run(paths: &Paths, args: ApplyArgs) -> CliResult {
    let started = Instant::now();
    let request = Request::read(paths, &args)?;
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
    let selection = JobSelection::Overlay {
        dir: paths.jobs_dir.clone(),
        given: request.given.clone(),
        absent: request.absent.clone(),
    };
    let desired = systemd::desired(
        paths,
        &selection,
        crate::load::Checks {
            now: Some(now),
            systemd: Some(crate::rendering::manager_target(version.major)),
            groups: false,
        },
        args.strict,
    )?;
    if let Some(dir) = &desired.loaded.missing_dir
        && !args.check
    {
        return Err(crate::paths::missing_jobs_dir(dir));
    }
    let unit_dir = UnitDir::new(&paths.unit_dir);
    let (actual, mut load_states) = systemd::actual(&sd, &unit_dir, &desired.rendered, paths.mode)?;
    let overrides = systemd::read_overrides(paths)?;
    let scope = Scope {
        prune: !args.no_prune,
        only: request.only.clone(),
        invalid: desired.invalid.clone(),
        elsewhere: if args.prune_all {
            BTreeMap::new()
        } else {
            systemd::installed_elsewhere(&actual, &paths.jobs_dir)
        },
    };
    if let Some(only) = &scope.only {
        let installed = plan::installed_sources(&actual);
        let known: BTreeSet<&str> = desired
            .rendered
            .iter()
            .map(|r| r.job.as_str())
            .chain(desired.invalid.keys().map(String::as_str))
            .chain(installed.keys().map(String::as_str))
            .chain(request.absent.iter().map(String::as_str))
            .collect();
        if let Some(unknown) = only.iter().find(|j| !known.contains(j.as_str())) {
            let known: Vec<String> = known.iter().map(|s| s.to_string()).collect();
            return Err(systemd::unknown_job(unknown, &known));
        }
    }
    let plan =
        plan::plan_scoped(&desired.rendered, &actual, &overrides, now, &scope).map_err(|errs| {
            let listing: Vec<String> = errs.iter().map(ToString::to_string).collect();
            CliError::usage(anyhow!(
                "{}\n{} with units jobctl does not own; nothing was changed",
                listing.join("\n"),
                view::count(errs.len(), "conflict", "conflicts")
            ))
        })?;

    let diffs = if args.diff {
        let installed: HashMap<String, String> = actual
            .units
            .iter()
            .filter_map(|u| Some((u.name.clone(), u.contents.clone()?)))
            .collect();
        view::unit_diffs(&plan, &installed)
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
            "systemd could not load {}; these jobs cannot run (their timers are not started):\n  {}",
            view::count(exec.not_loaded.len(), "unit", "units"),
            lines.join("\n  ")
        );
        let journal = match paths.mode {
            crate::paths::Mode::System => format!("journalctl -b -u {}", exec.not_loaded[0].unit),
            // `--user-unit` matches this user's uid itself; `--user` would
            // read only user-UID.journal files (see `journal_detail`).
            crate::paths::Mode::User => {
                format!("journalctl -b --user-unit={}", exec.not_loaded[0].unit)
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

    let mut warnings = warnings(paths, &plan);
    if let Some(dir) = &desired.loaded.missing_dir {
        warnings.push(format!(
            "the jobs folder {} does not exist (planned as empty)",
            dir.display()
        ));
    }
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
        left_alone: &plan.left_alone,
        diagnostics: &desired.loaded.diagnostics,
        diffs,
        warnings,
        elapsed_ms: started.elapsed().as_millis(),
    };
    if args.json {
        output::print_json("apply", &report)?;
    } else {
        let skipped: Vec<Diagnostic> = desired.invalid_diagnostics();
        output::diagnostics(&skipped);
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
    let invalid: Vec<&str> = plan.invalid().map(|j| j.job.as_str()).collect();
    if !invalid.is_empty() {
        output::warn(&format!(
            "skipped {} ({}): {} installed units are left as they are",
            view::count(invalid.len(), "invalid job", "invalid jobs"),
            invalid.join(", "),
            if invalid.len() == 1 { "its" } else { "their" }
        ));
        output::hint(&format!(
            "fix the files (`{}` shows every error); `--strict` applies nothing while any file is invalid",
            crate::paths::jobctl("validate")
        ));
        return Ok(Exit::InvalidSkipped.into());
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
///
/// In per-user mode `--user-unit=` matches this user's uid (`_UID=`, the
/// kernel's word) over every journal file the user may read: not `--user`,
/// which reads only `user-UID.journal` files, and journald keeps the entries
/// of root's own manager, of system users (uid < 1000) and of every user
/// under `SplitMode=none` in the system's file.
fn journal_detail(mode: crate::paths::Mode, unit: &str, since: jiff::Timestamp) -> Option<String> {
    let mut cmd = std::process::Command::new("journalctl");
    match mode {
        crate::paths::Mode::System => cmd.arg(format!("--unit={unit}")),
        crate::paths::Mode::User => cmd.arg(format!("--user-unit={unit}")),
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
            exec.done.push(format!(
                "{verb} {}",
                view::count(total, "unit file", "unit files")
            ));
            Ok(())
        }
        Err(p) => {
            if !p.done.is_empty() {
                exec.done.push(format!(
                    "{verb} {} of {}",
                    p.done.len(),
                    view::count(total, "unit file", "unit files")
                ));
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
                "{label} failed for {}:\n  {}",
                view::count(units.len() - ok, "unit", "units"),
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
                exec.done.push(format!(
                    "disabled {}",
                    view::count(timers.len(), "timer", "timers")
                ));
            }
            Phase::EnableTimers(timers) => {
                sd.enable_unit_files(&names(&timers)).map_err(mode_err)?;
                exec.done.push(format!(
                    "enabled {}",
                    view::count(timers.len(), "timer", "timers")
                ));
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
                exec.done.push(format!(
                    "reset {}",
                    view::count(units.len(), "unit", "units")
                ));
            }
        }
        exec.phases_done += 1;
    }
    Ok(())
}
