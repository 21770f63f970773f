//! `jobctl list`: one line per job — schedule, next run, last run with result
//! and duration, state — from the job files, the unit folder and systemd's
//! unit properties (fetched in bulk: one `ListUnitsByNames` and pipelined
//! `GetAll`s, never one round trip per property).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;
use jobctl_core::plan::ownership;
use jobctl_systemd::{UnitDir, UnitProperties};
use serde::Serialize;

use crate::error::{CliError, CliResult};
use crate::load::{self, JobSelection};
use crate::output;
use crate::paths::Paths;
use crate::rendering;
use crate::systemd::{self, format_usec, rfc3339_usec};

/// List every job with its schedule, next and last run, and state.
///
/// States: active (timer waiting), running (a run in progress), disabled
/// (enabled = false), disabled by operator (`jobctl disable`), expired
/// (past not_after), manual (no timer), pending apply (the job file changed
/// since the last apply), not applied (no units yet), orphaned (units of a
/// job whose file is gone), missing unit (a unit file vanished).
///
/// Examples:
///   jobctl list
///   jobctl list --json | jq '.[] | select(.state != "active")'
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// One job as `list` and `status` show it.
#[derive(Debug, Clone, Serialize)]
pub struct JobRow {
    pub job: String,
    pub state: String,
    pub running: bool,
    pub schedule: String,
    pub service: String,
    pub timer: Option<String>,
    pub next_run: Option<String>,
    pub last_trigger: Option<String>,
    pub last_run: Option<String>,
    /// systemd's result of the last run: success, exit-code, signal, timeout, …
    pub last_result: Option<String>,
    pub last_exit_status: Option<i32>,
    pub last_duration_ms: Option<u64>,
    pub invocation_id: Option<String>,
    pub source: Option<String>,
    #[serde(skip)]
    pub next_usec: u64,
    #[serde(skip)]
    pub last_usec: u64,
}

pub fn run(paths: &Paths, args: ListArgs) -> CliResult {
    let rows = collect(paths, None)?;
    if args.json {
        output::print_json(&rows)?;
    } else {
        output::print_text(&table(&rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the rows of every job, or of one (`only`).
pub fn collect(paths: &Paths, only: Option<&str>) -> Result<Vec<JobRow>, CliError> {
    let sd = systemd::connect(paths)?;
    let version = sd
        .version()
        .map_err(|e| systemd::systemd_error(e, paths.mode))?;
    let loaded = load::load_jobs(paths, &JobSelection::Dir(paths.jobs_dir.clone()))?;
    if loaded.has_errors() {
        let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        eprintln!(
            "jobctl: warning: {errors} error(s) in the job files; those jobs are left out (run `jobctl validate`)"
        );
    }
    let exe = rendering::jobctl_path(&loaded, None)?;
    let rendered =
        rendering::render_all(&loaded, paths, &exe, Some(version.major)).unwrap_or_default();
    let overrides = systemd::read_overrides(paths)?;

    // Owned units on disk, by job.
    let unit_dir = UnitDir::new(&paths.unit_dir);
    let mut on_disk: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for u in unit_dir
        .read_units()
        .map_err(|e| systemd::systemd_error(e, paths.mode))?
    {
        if let Some(contents) = u.contents
            && let Some(o) = ownership(&contents)
        {
            on_disk.entry(o.job).or_default().insert(u.name, contents);
        }
    }

    let mut names: BTreeMap<String, ()> = BTreeMap::new();
    let mut jobs: BTreeMap<
        String,
        (
            Option<&jobctl_core::render::RenderedJob>,
            Option<&jobctl_core::job::Job>,
        ),
    > = BTreeMap::new();
    for r in &rendered {
        jobs.entry(r.job.clone()).or_default().0 = Some(r);
    }
    for j in &loaded.jobs {
        jobs.entry(j.name.to_string()).or_default().1 = Some(j);
    }
    for job in on_disk.keys() {
        jobs.entry(job.clone()).or_default();
    }
    if let Some(one) = only {
        jobs.retain(|k, _| k == one);
        if jobs.is_empty() {
            let known: Vec<String> = rendered
                .iter()
                .map(|r| r.job.clone())
                .chain(on_disk.keys().cloned())
                .collect();
            return Err(systemd::unknown_job(one, &known));
        }
    }
    let unit_names = |job: &str,
                      r: Option<&jobctl_core::render::RenderedJob>|
     -> (String, Option<String>) {
        match r {
            Some(r) => (
                r.service.name.clone(),
                r.timer.as_ref().map(|t| t.name.clone()),
            ),
            None => {
                let units = on_disk.get(job);
                let find =
                    |ext: &str| units.and_then(|u| u.keys().find(|n| n.ends_with(ext)).cloned());
                (find(".service").unwrap_or_default(), find(".timer"))
            }
        }
    };
    for (job, (r, _)) in &jobs {
        let (s, t) = unit_names(job, *r);
        if !s.is_empty() {
            names.insert(s, ());
        }
        if let Some(t) = t {
            names.insert(t, ());
        }
    }
    let names: Vec<String> = names.into_keys().collect();
    let props = properties(&sd, &names, only.is_some())
        .map_err(|e| systemd::systemd_error(e, paths.mode))?;

    let now = jiff::Timestamp::now();
    let mut rows = Vec::new();
    for (job, (r, def)) in &jobs {
        let (service, timer) = unit_names(job, *r);
        let sp = props.get(&service);
        let tp = timer.as_ref().and_then(|t| props.get(t));
        let disk = on_disk.get(job);
        let running = sp.is_some_and(|p| {
            matches!(
                p.active_state.as_str(),
                "activating" | "active" | "deactivating"
            )
        });
        let state = match (r, disk) {
            (None, Some(_)) => "orphaned".to_string(),
            (Some(_), None) => "not applied".to_string(),
            (None, None) => "unknown".to_string(),
            (Some(r), Some(d)) => {
                let wanted: Vec<&jobctl_core::render::UnitFile> = std::iter::once(&r.service)
                    .chain(r.timer.as_ref())
                    .collect();
                let missing = wanted.iter().any(|u| !d.contains_key(&u.name));
                let pending = wanted
                    .iter()
                    .any(|u| d.get(&u.name).is_some_and(|c| c != &u.contents));
                if pending {
                    "pending apply".to_string()
                } else if missing {
                    "missing unit".to_string()
                } else if r.timer.is_none() {
                    "manual".to_string()
                } else if r.not_after.is_some_and(|t| now >= t) {
                    "expired".to_string()
                } else if tp.is_some_and(|p| p.active_state == "active") {
                    "active".to_string()
                } else if overrides
                    .get(job)
                    .is_some_and(|o| !o.enabled && o.hash == r.hash)
                {
                    "disabled by operator".to_string()
                } else if !r.timer_enabled {
                    "disabled".to_string()
                } else {
                    "inactive".to_string()
                }
            }
        };
        let schedule = match def {
            Some(d) if d.is_manual() => "manual".to_string(),
            Some(d) => d
                .schedules
                .iter()
                .map(|s| s.describe())
                .collect::<Vec<_>>()
                .join("; "),
            None => "-".to_string(),
        };
        let (last_usec, last_result, last_exit, duration) = match sp {
            Some(p) if p.exec_main_start_usec > 0 => {
                let done = p.exec_main_exit_usec >= p.exec_main_start_usec && !running;
                (
                    p.exec_main_start_usec,
                    (!running).then(|| p.result.clone()),
                    (done && p.exec_main_code != 0).then_some(p.exec_main_status),
                    done.then(|| (p.exec_main_exit_usec - p.exec_main_start_usec) / 1000),
                )
            }
            _ => (0, None, None, None),
        };
        let next_usec = tp.map(|p| p.next_elapse_realtime_usec).unwrap_or(0);
        rows.push(JobRow {
            job: job.clone(),
            state,
            running,
            schedule,
            service,
            timer,
            next_run: rfc3339_usec(next_usec),
            last_trigger: tp.and_then(|p| rfc3339_usec(p.last_trigger_usec)),
            last_run: rfc3339_usec(last_usec),
            last_result,
            last_exit_status: last_exit,
            last_duration_ms: duration,
            invocation_id: sp
                .map(|p| p.invocation_id.clone())
                .filter(|s| !s.is_empty()),
            source: def.map(|d| d.source.clone()),
            next_usec,
            last_usec,
        });
    }
    Ok(rows)
}

/// Properties of every loaded unit among `names`: one ListUnitsByNames, then
/// pipelined GetAll calls.
fn properties(
    sd: &jobctl_systemd::Systemd,
    names: &[String],
    with_invocation: bool,
) -> jobctl_systemd::Result<HashMap<String, UnitProperties>> {
    let statuses = sd.list_units_by_names(names)?;
    let loaded: Vec<_> = statuses
        .iter()
        .filter(|s| s.load_state == "loaded")
        .map(|s| (s.name.clone(), s.path.clone()))
        .collect();
    let mut out = HashMap::new();
    for p in sd.bulk_properties(&loaded, with_invocation)? {
        let p = p?;
        out.insert(p.name.clone(), p);
    }
    // The states come from ListUnitsByNames, not from a per-unit read.
    for s in statuses {
        if let Some(p) = out.get_mut(&s.name) {
            p.load_state = s.load_state;
            p.active_state = s.active_state;
            p.sub_state = s.sub_state;
        }
    }
    Ok(out)
}

fn table(rows: &[JobRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<22} {:<24} {:<24} {:<16} SCHEDULE",
        "JOB", "STATE", "NEXT", "LAST", "RESULT"
    );
    for r in rows {
        let state = if r.running {
            format!("{} (running)", r.state)
        } else {
            r.state.clone()
        };
        let result = match (&r.last_result, r.last_duration_ms) {
            (Some(res), Some(ms)) => format!("{res} {}", human_ms(ms)),
            (Some(res), None) => res.clone(),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<28} {:<22} {:<24} {:<24} {:<16} {}",
            r.job,
            state,
            format_usec(r.next_usec),
            format_usec(r.last_usec),
            result,
            r.schedule
        );
    }
    if rows.is_empty() {
        out.push_str("(no jobs)\n");
    }
    out
}

pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}
