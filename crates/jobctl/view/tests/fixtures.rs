//! The fixed world the snapshots are made from: seven jobs loaded and
//! rendered by the core from job-file text, their state derived by the
//! core's rules, their last runs, what systemd says about them, and a plan.
//! Times are fixed (now is 2026-11-23 10:00:00 UTC) and shown in a fixed
//! zone (CET, UTC+1 in November), so nothing depends on the host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::tz::TimeZone;
use jobctl_core::config::Config;
use jobctl_core::context::{Mode, ZoneLookup};
use jobctl_core::job::{Job, JobSource, LoadContext, load_job};
use jobctl_core::plan::{self, Actual, DiskUnit, Override, Plan, UnitState};
use jobctl_core::render::{RenderOptions, RenderedJob, render};
use jobctl_core::state::{self, Derived};
use jobctl_history::liveness::ProcessStamp;
use jobctl_history::locate::Located;
use jobctl_history::{
    BadRow, JobSummary, PruneReport, RunId, RunRecord, Source, Status, Trigger, Upstream, Usage,
    UsageSource,
};
use jobctl_systemd::UnitProperties;

use crate::commands::health::{self as health_command, Checks, Zones};
use crate::overview::{JobHistory, JobView, Overview};
use crate::view::health::Report;
use crate::view::list::JobRow;
use crate::view::status::{StatusRow, UnitView};

/// µs since the epoch of an RFC 3339 time.
pub fn at(text: &str) -> i64 {
    text.parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .as_microsecond()
}

const NIGHTLY_INVOCATION: &str = "8f3c1e0b6d2a4f5e9a7b3c1d2e4f6a8b";
const DISK_INVOCATION: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Now: 2026-11-23 10:00:00 UTC, 11:00:00 in the fixture's zone.
pub const NOW_US: i64 = 1_795_428_000_000_000;

/// Zones the job files may name: UTC and Asia/Hong_Kong (UTC+8, no DST).
struct TestZones;

impl ZoneLookup for TestZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        match name {
            "UTC" => Some(TimeZone::UTC),
            "Asia/Hong_Kong" => Some(TimeZone::fixed(jiff::tz::offset(8))),
            _ => None,
        }
    }
}

/// The job files, as an operator would write them.
const JOBS: &[(&str, &str)] = &[
    (
        "nightly-refresh",
        r#"description = "Nightly refresh of the reporting warehouse"
command = ["/opt/warehouse/refresh", "--full"]
daily = "02:15"
timeout = "2h"
owner = "data-platform"
team = "analytics"
tags = ["etl", "nightly"]
"#,
    ),
    (
        "disk-report",
        r#"command = ["/bin/df", "--human-readable"]
hourly = ":00"
timeout = "1min"
"#,
    ),
    (
        "batch-worker",
        r#"command = ["/usr/local/bin/batch-worker", "--queue", "default"]
every = "15min"
timeout = "14min"
"#,
    ),
    (
        "reindex-search",
        r#"command = ["/usr/local/bin/search-admin", "reindex", "--all"]
manual = true
"#,
    ),
    (
        "monthly-report",
        r#"command = ["/usr/local/bin/finance-report"]
monthly = "1 09:00"
timezone = "Asia/Hong_Kong"
user = "finance"
"#,
    ),
];

/// A job file no longer in the jobs folder whose units are still installed.
const OLD_CAMPAIGN: &str = r#"command = ["/usr/local/bin/campaign-sync"]
daily = "06:00"
"#;

/// disk-report as it was before its timeout changed (the installed units).
const DISK_REPORT_BEFORE: &str = r#"command = ["/bin/df", "--human-readable"]
hourly = ":00"
timeout = "30s"
"#;

pub struct Fixture {
    pub zone: TimeZone,
    /// The valid jobs, in [`JOBS`] order.
    jobs: Vec<(Job, RenderedJob)>,
    old_campaign: RenderedJob,
    disk_report_before: RenderedJob,
}

impl Fixture {
    pub fn new() -> Fixture {
        let config = Config::default();
        let zone = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        let load = |name: &str, text: &str| load(&config, &zone, name, text);
        Fixture {
            jobs: JOBS.iter().map(|(name, text)| load(name, text)).collect(),
            old_campaign: load("old-campaign", OLD_CAMPAIGN).1,
            disk_report_before: load("disk-report", DISK_REPORT_BEFORE).1,
            zone,
        }
    }

    fn job(&self, name: &str) -> &(Job, RenderedJob) {
        self.jobs
            .iter()
            .find(|(_, r)| r.job == name)
            .unwrap_or_else(|| panic!("no fixture job {name}"))
    }

    /// Every job as `list`, `status` and `health` see it.
    pub fn overview(&self) -> Overview {
        let mut jobs = Vec::new();
        for (job, rendered) in &self.jobs {
            let name = rendered.job.as_str();
            let timer_active = name != "batch-worker";
            let derived = derive(
                Some(rendered),
                false,
                Some(units_of(rendered)),
                timer_active,
            );
            let mut view = view_of(name, derived, Some(rendered));
            view.definition = Some(job.clone());
            view.labels = Some(jobctl_core::labels::Labels::of(job));
            view.source = Some(job.source.clone());
            view.timer_state = if timer_active && rendered.timer.is_some() {
                "active".into()
            } else {
                "inactive".into()
            };
            self.add_facts(&mut view);
            jobs.push(view);
        }
        // A job file that does not validate, whose earlier units are
        // installed.
        let mut broken = view_of(
            "broken",
            derive(None, true, Some(BTreeMap::new()), false),
            None,
        );
        broken.invalid_reason = Some(
            "/etc/jobctl/jobs.d/broken.toml:2:1: unknown key `comand` (did you mean `command`?)"
                .into(),
        );
        broken.source = Some("/etc/jobctl/jobs.d/broken.toml".into());
        // Its labels, read from a file that does not validate.
        broken.labels = jobctl_core::labels::Labels::read(
            "comand = [\"/usr/local/bin/etl\"]\nteam = \"analytics\"\ntags = [\"etl\"]\n",
        );
        jobs.push(broken);
        // Units whose job file is gone.
        let old = &self.old_campaign;
        let mut orphan = view_of(
            "old-campaign",
            derive(None, false, Some(units_of(old)), true),
            None,
        );
        orphan.service = old.service.name.clone();
        orphan.timer = old.timer.as_ref().map(|t| t.name.clone());
        orphan.timer_state = "active".into();
        orphan.service_state = "inactive".into();
        jobs.push(orphan);
        Overview {
            jobs,
            skipped: Vec::new(),
            bad_rows: Vec::new(),
            config_errors: Vec::new(),
            apply_blocked: false,
            missing_dir: None,
            now_us: NOW_US,
            paths: crate::paths::Paths {
                mode: crate::paths::Mode::System,
                jobs_dir: "/etc/jobctl/jobs.d".into(),
                unit_dir: "/etc/systemd/system".into(),
                config: "/etc/jobctl/config.toml".into(),
                state_dir: "/var/lib/jobctl".into(),
            },
        }
    }

    /// [`Fixture::overview`], plus a broken configuration, a user's database
    /// that was refused and a row that could not be decoded.
    pub fn overview_with_unreadable_history(&self) -> Overview {
        let mut overview = self.overview();
        overview.config_errors =
            vec!["/etc/jobctl/config.toml:3:1: unknown key `unit_prefx`".into()];
        let (_, user) = databases();
        overview.skipped = vec![(
            user.clone(),
            anyhow::anyhow!("the folder is not 0700 (it is 0755)")
                .context("refused to open /var/lib/jobctl/users/finance/history.db"),
        )];
        overview.bad_rows = vec![(
            databases().0,
            vec![BadRow {
                row_id: Some(4242),
                run: Some(RunId::from_i64(0x1092)),
                reason: "unknown trigger \"bogus\"".into(),
            }],
        )];
        overview
    }

    /// The last runs and systemd's view of each job.
    fn add_facts(&self, view: &mut JobView) {
        let job = view.job.as_str();
        let (next, last, streak, last_success, unit) = match job {
            "nightly-refresh" => (
                "2026-11-24T02:15:00Z",
                RunRecord {
                    ended_us: Some(at("2026-11-23T02:15:04Z") + 12_340_000),
                    exit_code: Some(3),
                    invocation_id: Some(NIGHTLY_INVOCATION.into()),
                    // Measured in a host whose unit cgroups have every
                    // controller.
                    usage: Some(Usage {
                        cpu_user_us: 9_870_000,
                        cpu_system_us: 1_205_000,
                        memory_peak_bytes: 1_610_612_736,
                        read_bytes: 52_428_800,
                        written_bytes: 4_096,
                        source: UsageSource::all(Source::Cgroup),
                    }),
                    ..run(
                        job,
                        0x1f0c_2a9e_4b7d_5501,
                        Status::Failed,
                        "2026-11-23T02:15:04Z",
                    )
                },
                2,
                Some("2026-11-21T02:15:02Z"),
                unit("inactive", "exit-code", 1, 3, NIGHTLY_INVOCATION),
            ),
            "disk-report" => (
                "2026-11-23T11:00:00Z",
                RunRecord {
                    invocation_id: Some(DISK_INVOCATION.into()),
                    ..run(
                        job,
                        0x5ead_beef_0000_0042,
                        Status::Running,
                        "2026-11-23T09:55:00Z",
                    )
                },
                0,
                Some("2026-11-23T09:00:00Z"),
                unit("active", "success", 0, 0, DISK_INVOCATION),
            ),
            // Its timer is not running: no next elapse.
            "batch-worker" => (
                "",
                RunRecord {
                    ended_us: Some(at("2026-11-23T09:59:00.2Z")),
                    signal: Some(15),
                    attempt: 2,
                    ..run(
                        job,
                        0x0bad_cafe_1234_5678,
                        Status::Timeout,
                        "2026-11-23T09:45:00Z",
                    )
                },
                1,
                Some("2026-11-23T09:30:00Z"),
                unit("inactive", "timeout", 2, 15, ""),
            ),
            "reindex-search" => (
                "",
                RunRecord {
                    // Started by another job's on_success.
                    trigger: Trigger::Chain,
                    actor: None,
                    upstream: Some(Upstream {
                        invocation_id: "5c1d0e2f3a4b59687a8b9c0d1e2f3a4b".into(),
                        run_id: Some(RunId::from_i64(0x3141_5926_5358_9793)),
                    }),
                    ended_us: Some(at("2026-11-20T14:03:10Z") + 245_000_000),
                    exit_code: Some(0),
                    // A hybrid host: CPU from the cgroup, the rest rusage.
                    usage: Some(Usage {
                        cpu_user_us: 230_400_000,
                        cpu_system_us: 850_000,
                        memory_peak_bytes: 209_715_200,
                        read_bytes: 0,
                        written_bytes: 512,
                        source: UsageSource {
                            cpu: Source::Cgroup,
                            memory: Source::Rusage,
                            io: Source::Rusage,
                        },
                    }),
                    ..run(
                        job,
                        0x7777_0000_1111_2222,
                        Status::Success,
                        "2026-11-20T14:03:10Z",
                    )
                },
                0,
                Some("2026-11-20T14:03:10Z"),
                unit("inactive", "success", 1, 0, ""),
            ),
            "monthly-report" => (
                "2026-12-01T01:00:00Z",
                RunRecord {
                    ended_us: Some(at("2026-11-01T01:00:00Z") + 850_000),
                    exit_code: Some(127),
                    user: "finance".into(),
                    // Recorded text is a user's to write: a terminal escape
                    // in it must be shown, not sent.
                    error: Some("/usr/local/bin/finance-report: not found\x1b[2J".into()),
                    ..run(
                        job,
                        0x0123_4567_89ab_cdef,
                        Status::Error,
                        "2026-11-01T01:00:00Z",
                    )
                },
                1,
                None,
                unit("failed", "exit-code", 1, 127, ""),
            ),
            _ => return,
        };
        if !next.is_empty() {
            view.next_elapse_usec = at(next) as u64;
        }
        match unit.active_state.as_str() {
            "active" => view.service_state = "active".into(),
            "failed" => {
                view.service_state = "failed".into();
                view.service_result = unit.result.clone();
            }
            _ => {}
        }
        view.history = Some(history(last, streak, last_success.map(at)));
        view.unit = Some(unit);
    }

    /// `status`'s rows for `overview`, with the problems `health` finds.
    pub fn status_rows(&self, overview: &Overview) -> Vec<StatusRow> {
        let zones = Zones {
            lookup: &TestZones,
            local: &self.zone,
        };
        overview
            .jobs
            .iter()
            .map(|view| StatusRow {
                row: JobRow::of(view),
                unit: UnitView::of(view),
                problems: health_command::problems_of(view, overview, 1, &zones),
                database: view
                    .history
                    .as_ref()
                    .map(|h| h.database.display().to_string()),
            })
            .collect()
    }

    /// What `health` reports about `overview`, as root.
    pub fn health<'a>(
        &self,
        overview: &'a Overview,
        ignore: &[jobctl_core::health::ProblemKind],
    ) -> Report<'a> {
        health_command::assess(
            overview,
            &Checks {
                failures: 1,
                ignore,
                as_root: true,
                linger: None,
            },
            &Zones {
                lookup: &TestZones,
                local: &self.zone,
            },
        )
    }

    /// The runs `history` shows: newest first, one from a user's database.
    pub fn history_runs<'a>(
        &self,
        main: &'a Located,
        user: &'a Located,
    ) -> Vec<(RunRecord, &'a Located)> {
        let overview = self.overview();
        let mut runs: Vec<(RunRecord, &Located)> = overview
            .jobs
            .iter()
            .filter_map(|v| v.history.as_ref())
            .map(|h| {
                let located = if h.summary.last.user == "finance" {
                    user
                } else {
                    main
                };
                (h.summary.last.clone(), located)
            })
            .collect();
        // An earlier run of nightly-refresh, lost when the host rebooted.
        let lost = run(
            "nightly-refresh",
            0x2a2a_0000_0000_0001,
            Status::Lost,
            "2026-11-22T02:15:03Z",
        );
        runs.push((lost, main));
        // A run in user finance's database under a name that would retitle
        // the terminal (`history --db` shows every run of a database).
        let hostile = RunRecord {
            ended_us: Some(at("2026-11-10T12:00:00Z") + 1_000),
            exit_code: Some(0),
            usage: Some(Usage {
                cpu_user_us: 700,
                cpu_system_us: 300,
                memory_peak_bytes: 3_145_728,
                read_bytes: 0,
                written_bytes: 0,
                source: UsageSource::all(Source::Rusage),
            }),
            ..run(
                "x\x1b]0;pwned\x07",
                0x6666_0000_0000_0001,
                Status::Success,
                "2026-11-10T12:00:00Z",
            )
        };
        runs.push((hostile, user));
        // Started from the dashboard ("run now"): its actor is shown with
        // the trigger, escaped like every recorded text.
        let from_web = RunRecord {
            trigger: Trigger::Web,
            actor: Some("token ci\x1b[2J".into()),
            ended_us: Some(at("2026-11-21T08:00:00Z") + 2_000_000),
            exit_code: Some(0),
            ..run(
                "nightly-refresh",
                0x7e50_0000_0000_0001,
                Status::Success,
                "2026-11-21T08:00:00Z",
            )
        };
        runs.push((from_web, main));
        runs.sort_by_key(|(run, _)| std::cmp::Reverse(run.started_us));
        runs
    }

    /// An apply of the jobs folder over what is installed: batch-worker
    /// new, disk-report's service changed, nightly-refresh turned off by
    /// its operator, monthly-report's timer not running, old-campaign's
    /// file gone while a run of it is in progress.
    pub fn plan(&self) -> Plan {
        let desired: Vec<RenderedJob> = self.jobs.iter().map(|(_, r)| r.clone()).collect();
        let nightly = &self.job("nightly-refresh").1;
        let overrides = BTreeMap::from([(
            "nightly-refresh".to_string(),
            Override {
                enabled: false,
                hash: nightly.hash.clone(),
            },
        )]);
        plan::plan(&desired, &self.installed(), &overrides, now(), true).expect("a plan")
    }

    /// The text of each unit installed before [`Fixture::plan`]'s apply.
    pub fn installed_texts(&self) -> std::collections::HashMap<String, String> {
        self.installed()
            .units
            .into_iter()
            .filter_map(|u| Some((u.name, u.contents?)))
            .collect()
    }

    /// [`Fixture::plan`]'s apply when disk-report's file no longer
    /// validates (its units stay as installed), a job file with a typo was
    /// never applied, and two jobs were installed from another jobs folder.
    pub fn plan_with_invalid_and_elsewhere(&self) -> Plan {
        let desired: Vec<RenderedJob> = self
            .jobs
            .iter()
            .map(|(_, r)| r.clone())
            .filter(|r| r.job != "disk-report")
            .collect();
        let mut actual = self.installed();
        for name in ["etl-load", "etl-extract"] {
            let mut r = self.job("reindex-search").1.clone();
            for unit in std::iter::once(&mut r.service).chain(r.timer.as_mut()) {
                unit.name = unit.name.replace("reindex-search", name);
                unit.contents = unit.contents.replace("reindex-search", name);
            }
            r.job = name.to_string();
            install(&mut actual, &r, true);
        }
        let scope = plan::Scope {
            prune: true,
            only: None,
            invalid: BTreeMap::from([
                (
                    "disk-report".to_string(),
                    "line 4: `timeout`: invalid duration \"5 minuets\"".to_string(),
                ),
                (
                    "new-typo".to_string(),
                    "line 1: `comand`: unknown key".to_string(),
                ),
            ]),
            elsewhere: BTreeMap::from([
                (
                    "etl-extract".to_string(),
                    "/srv/analytics/jobs.d/etl-extract.toml".to_string(),
                ),
                (
                    "etl-load".to_string(),
                    "/srv/analytics/jobs.d/etl-load.toml".to_string(),
                ),
            ]),
        };
        plan::plan_scoped(&desired, &actual, &BTreeMap::new(), now(), &scope).expect("a plan")
    }

    /// The units installed before [`Fixture::plan`]'s apply.
    fn installed(&self) -> Actual {
        let mut actual = Actual::default();
        for name in ["nightly-refresh", "reindex-search", "monthly-report"] {
            install(&mut actual, &self.job(name).1, name != "monthly-report");
        }
        install(&mut actual, &self.disk_report_before, true);
        install(&mut actual, &self.old_campaign, true);
        actual
            .states
            .entry(self.old_campaign.service.name.clone())
            .or_default()
            .active = true;
        actual
    }

    /// The plan of an apply right after a complete one: nothing to do.
    pub fn plan_after_apply(&self) -> Plan {
        let desired: Vec<RenderedJob> = self.jobs.iter().map(|(_, r)| r.clone()).collect();
        let mut actual = Actual::default();
        for r in &desired {
            install(&mut actual, r, true);
        }
        plan::plan(&desired, &actual, &BTreeMap::new(), now(), true).expect("a plan")
    }
}

/// A job file loaded and rendered by the core, as `apply` would.
fn load(config: &Config, zone: &TimeZone, name: &str, text: &str) -> (Job, RenderedJob) {
    let path = format!("/etc/jobctl/jobs.d/{name}.toml");
    let loaded = load_job(
        JobSource {
            path: &path,
            stem: name,
            text,
        },
        &LoadContext {
            mode: Mode::System,
            config,
            zones: &TestZones,
            root_files: None,
            now: None,
            systemd: None,
        },
    );
    let job = loaded
        .job
        .unwrap_or_else(|| panic!("{name}: {:?}", loaded.diagnostics));
    let rendered = render(
        &job,
        &RenderOptions {
            mode: Mode::System,
            unit_prefix: &config.unit_prefix,
            jobctl_path: "/usr/bin/jobctl",
            local_zone: zone,
            zones: &TestZones,
            history: &config.history,
            systemd_version: Some(252),
            user_state_dir: None,
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    (job, rendered)
}

fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(NOW_US).unwrap()
}

/// Puts a job's units in the unit folder, its timer enabled and (when
/// `running`) active.
fn install(actual: &mut Actual, job: &RenderedJob, timer_running: bool) {
    actual.units.push(DiskUnit {
        name: job.service.name.clone(),
        contents: Some(job.service.contents.clone()),
    });
    if let Some(timer) = &job.timer {
        actual.units.push(DiskUnit {
            name: timer.name.clone(),
            contents: Some(timer.contents.clone()),
        });
        actual.states.insert(
            timer.name.clone(),
            UnitState {
                enabled: true,
                active: timer_running,
                failed: false,
            },
        );
    }
}

fn units_of(job: &RenderedJob) -> BTreeMap<String, String> {
    let mut units = BTreeMap::from([(job.service.name.clone(), job.service.contents.clone())]);
    if let Some(t) = &job.timer {
        units.insert(t.name.clone(), t.contents.clone());
    }
    units
}

/// The job's state by the core's rules.
fn derive(
    rendered: Option<&RenderedJob>,
    invalid: bool,
    units: Option<BTreeMap<String, String>>,
    timer_active: bool,
) -> Derived {
    state::derive(&state::Inputs {
        rendered,
        invalid,
        units: units.as_ref(),
        timer_active,
        override_: None,
        now: now(),
    })
}

fn view_of(name: &str, derived: Derived, rendered: Option<&RenderedJob>) -> JobView {
    JobView {
        job: name.to_string(),
        derived,
        rendered: rendered.cloned(),
        definition: None,
        invalid_reason: None,
        source: None,
        labels: None,
        service: rendered.map_or_else(
            || format!("jobctl-{name}.service"),
            |r| r.service.name.clone(),
        ),
        timer: rendered.and_then(|r| r.timer.as_ref().map(|t| t.name.clone())),
        // Installed with apply: the timer's enablement link is there.
        timer_enabled: rendered.is_some_and(|r| r.timer.is_some()),
        service_state: "inactive".into(),
        timer_state: String::new(),
        next_elapse_usec: 0,
        history: None,
        unit: None,
        unrecorded: None,
        service_result: String::new(),
        not_loaded: Vec::new(),
    }
}

/// A run of `job` as root started at `started`, by its timer, first
/// attempt, not ended.
fn run(job: &str, id: i64, status: Status, started: &str) -> RunRecord {
    RunRecord {
        host: "db1".into(),
        pid: Some(4242),
        shim: ProcessStamp {
            boot_id: "b007".into(),
            pid: 4241,
            start_ticks: 1,
            pid_ns: 0,
        },
        ended_us: None,
        exit_code: None,
        ..jobctl_history::testing::run(RunId::from_i64(id), job, at(started), status)
    }
}

fn history(last: RunRecord, failure_streak: u32, last_success_us: Option<i64>) -> JobHistory {
    let database = if last.user == "finance" {
        databases().1.path
    } else {
        databases().0.path
    };
    JobHistory {
        summary: JobSummary {
            job: last.job.clone(),
            last,
            last_success_us,
            failure_streak,
        },
        last_failure: None,
        database,
        run_counts: None,
    }
}

fn unit(active: &str, result: &str, code: i32, status: i32, invocation: &str) -> UnitProperties {
    UnitProperties {
        active_state: active.into(),
        result: result.into(),
        exec_main_code: code,
        exec_main_status: status,
        invocation_id: invocation.into(),
        ..UnitProperties::default()
    }
}

/// The main database and user finance's.
pub fn databases() -> (Located, Located) {
    let located = |path: &str, owner: Option<&str>| Located {
        path: PathBuf::from(path),
        owner: owner.map(str::to_string),
        folder: None,
    };
    (
        located("/var/lib/jobctl/history.db", None),
        located("/var/lib/jobctl/users/finance/history.db", Some("finance")),
    )
}

/// What `history prune` reports for two databases.
pub fn prune_reports() -> Vec<(String, PruneReport)> {
    vec![
        (
            "/var/lib/jobctl/history.db".into(),
            PruneReport {
                runs_over_count: 12,
                runs_over_age: 3,
                outputs_dropped: 2,
                marked_lost: 1,
                output_bytes_before: 268_435_456,
                output_bytes_after: 201_326_592,
                origins_over_age: 1,
            },
        ),
        (
            "/var/lib/jobctl/users/finance/history.db".into(),
            PruneReport {
                runs_over_count: 1,
                runs_over_age: 0,
                outputs_dropped: 1,
                marked_lost: 0,
                output_bytes_before: 4096,
                output_bytes_after: 1024,
                origins_over_age: 0,
            },
        ),
    ]
}
