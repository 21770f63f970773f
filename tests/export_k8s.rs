//! `jobctl export k8s`: every example job (jobs.d/ and the golden job sets)
//! is exported or refused with its reason; every manifest validates against
//! the Kubernetes API schema (kubernetes-validate, PyPI, installed by
//! scripts/setup), its YAML and JSON forms read back equal under PyYAML and
//! serde_json, and its cron line starts runs at exactly the job's times
//! over a year, DST changes included.
//!
//! "Exactly the job's times": the job's timer fires when jobctl's calendar
//! engine (the emulation of systemd that tests/calendar_oracle.rs holds to
//! `systemd-analyze`) says; the CronJob fires at every instant whose
//! wall-clock time in its `timeZone` the cron line matches, which is what
//! Kubernetes' cron library (robfig/cron v3: it walks the wall clock in
//! whole hours and minutes, so it skips times a spring-forward gap removes
//! and meets a repeated time twice) computes, judged here by the
//! independent Vixie cron matcher (tests/oracle/vixie.rs) on the line as
//! written. The two sets must be equal, except that in a fall-back change
//! Kubernetes starts a second run at the second occurrence of each repeated
//! time systemd fires at (its first occurrence): exactly those, nothing else
//! (docs/kubernetes.md, "Daylight saving time").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jobctl_core::calendar::{CalendarSpec, UnionElapses, ZoneLookup};
use jobctl_core::context::Mode;
use jobctl_core::schedule::{Schedule, Trigger};
use serde_json::Value;

use crate::oracle::vixie;
use crate::support::{RunExt as _, TestEnv, root, skip};

// ------------------------------------------------------------- the tools

/// The kubernetes-validate that scripts/setup installs (the same folder
/// rule), or `None` when it is missing.
fn kubernetes_validate() -> Option<PathBuf> {
    let tools = match std::env::var_os("JOBCTL_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None if crate::support::is_root() => PathBuf::from("/var/cache/jobctl-test/tools"),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?
            .join("jobctl-test/tools"),
    };
    let venv = tools.join("kubernetes-validate-1.37.0");
    venv.join(".complete")
        .exists()
        .then(|| venv.join("bin/kubernetes-validate"))
}

/// kubernetes-validate, or a skip (a failure in CI).
#[track_caller]
fn validator_or_skip() -> Option<PathBuf> {
    let found = kubernetes_validate();
    if found.is_none() {
        skip(
            "kubernetes-validate is not installed (the Kubernetes schema check); scripts/setup installs it",
        );
    }
    found
}

/// The Kubernetes versions validated against: the first with `timeZone`
/// generally available, and the newest the package bundles.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.27.0", "1.37.0"];

/// Validates every file against the schema of each version, strictly (no
/// field the schema does not know).
#[track_caller]
fn validate(validator: &Path, files: &[PathBuf]) {
    for version in KUBERNETES_VERSIONS {
        let out = std::process::Command::new(validator)
            .args(["--strict", "--kubernetes-version", version])
            .args(files)
            .run();
        assert!(
            out.status.success(),
            "kubernetes-validate {version}: {}",
            out.describe()
        );
        // It says what it checked: one line per document.
        assert_eq!(
            out.stdout().matches("INFO").count(),
            files.len(),
            "{}",
            out.describe()
        );
    }
}

/// Reads each YAML file with PyYAML (YAML 1.1, the stricter reader for
/// quoting) and each JSON file with Python's json, and says whether each
/// pair is the same document, and whether PyYAML reads the JSON file as
/// the same document too (JSON output is meant to be valid YAML).
#[track_caller]
fn same_documents(validator: &Path, pairs: &[(PathBuf, PathBuf)]) {
    let python = validator.with_file_name("python");
    let script = "import json, sys, yaml\n\
        bad = []\n\
        args = sys.argv[1:]\n\
        for y, j in zip(args[::2], args[1::2]):\n\
        \x20   a = yaml.safe_load(open(y, encoding='utf-8'))\n\
        \x20   b = json.load(open(j, encoding='utf-8'))\n\
        \x20   c = yaml.safe_load(open(j, encoding='utf-8'))\n\
        \x20   if a != b or c != b: bad.append(y)\n\
        print('different:', bad) if bad else print('same', len(args) // 2)\n\
        sys.exit(1 if bad else 0)\n";
    let mut cmd = std::process::Command::new(python);
    cmd.arg("-c").arg(script);
    for (yaml, json) in pairs {
        cmd.arg(yaml).arg(json);
    }
    let out = cmd.run();
    assert!(out.status.success(), "{}", out.describe());
    assert_eq!(out.stdout().trim(), format!("same {}", pairs.len()));
}

// ----------------------------------------------------------- the examples

/// The example job sets and the flags each is read with.
const SETS: &[(&str, &[&str])] = &[
    ("jobs.d", &["--config", "/nonexistent/config.toml"]),
    (
        "tests/golden/system/jobs",
        &["--config", "/nonexistent/config.toml"],
    ),
    (
        "tests/golden/user/jobs",
        &["--user", "--config", "/nonexistent/config.toml"],
    ),
    (
        "tests/golden/config/jobs",
        &["--config", "tests/golden/config/config.toml"],
    ),
];

/// What each example must give: `None` exported, `Some(why)` refused with
/// a message containing `why`. A new example must be added here.
fn expected(set: &str, job: &str) -> Option<&'static str> {
    let refused = match (set, job) {
        ("jobs.d", "reindex-search") => "it has no schedule (manual = true)",
        ("tests/golden/system/jobs", "boot-only") => "it runs only at boot (on_boot = \"2min\")",
        ("tests/golden/system/jobs", "cron-lines") => "no single cron line",
        ("tests/golden/system/jobs", "dynamic-user") => {
            "the schedule \"every 7min\": it starts a run 7min after"
        }
        ("tests/golden/system/jobs", "every-key") => {
            "the schedule \"daily at 18:30:15\": \"*-*-* 18:30:15\" starts runs at seconds past the minute"
        }
        ("tests/golden/system/jobs", "manual-only") => "it has no schedule",
        ("tests/golden/user/jobs", "user-manual") => "it has no schedule",
        ("tests/golden/config/jobs", "sandboxed") => "it has no schedule",
        _ => return None,
    };
    Some(refused)
}

/// An example exported.
struct Exported {
    set: &'static str,
    flags: &'static [&'static str],
    job: String,
    /// The JSON manifest, parsed.
    manifest: Value,
}

/// `jobctl FLAGS --jobs-dir SET export k8s JOB --output FORMAT` with `TZ`.
fn export(set: &str, flags: &[&str], job: &str, format: &str, tz: &str) -> crate::support::Run {
    TestEnv::new()
        .jobctl()
        .env("TZ", tz)
        .args(flags)
        .args(["--jobs-dir", set, "export", "k8s", job, "--output", format])
        .arg("--image=registry.example.com/tools/job:1")
        .run()
}

fn job_names(set: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(set))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".toml").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// Exports every example (host zone `tz`), checking each outcome against
/// [`expected`]; returns the exported ones.
fn export_examples(tz: &str) -> Vec<Exported> {
    let mut exported = Vec::new();
    for &(set, flags) in SETS {
        for job in job_names(set) {
            let out = export(set, flags, &job, "json", tz);
            match expected(set, &job) {
                None => {
                    assert!(out.status.success(), "{set}/{job}: {}", out.describe());
                    let manifest: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                        panic!("{set}/{job}: not JSON ({e}): {}", out.describe())
                    });
                    exported.push(Exported {
                        set,
                        flags,
                        job,
                        manifest,
                    });
                }
                Some(why) => {
                    assert_eq!(
                        out.status.code(),
                        Some(2),
                        "{set}/{job}: {}",
                        out.describe()
                    );
                    assert!(out.stdout.is_empty(), "{set}/{job}: {}", out.describe());
                    let stderr = out.stderr();
                    assert!(
                        stderr.starts_with(&format!("Error: cannot export job {job} ")),
                        "{set}/{job}: {stderr}"
                    );
                    assert!(
                        stderr.contains(why),
                        "{set}/{job}: wanted {why:?} in:\n{stderr}"
                    );
                    assert!(stderr.contains("\nHint: "), "{set}/{job}: {stderr}");
                }
            }
        }
    }
    exported
}

#[test]
fn every_accepted_example_validates_against_the_kubernetes_schema() {
    let Some(validator) = validator_or_skip() else {
        return;
    };
    let exported = export_examples("UTC");
    assert!(exported.len() >= 14, "{} exported", exported.len());
    let env = TestEnv::new();
    let mut files = Vec::new();
    let mut pairs = Vec::new();
    for e in &exported {
        let yaml = export(e.set, e.flags, &e.job, "yaml", "UTC");
        assert!(yaml.status.success(), "{}", yaml.describe());
        let json_file = env.path().join(format!("{}.json", e.job));
        let yaml_file = env.path().join(format!("{}.yaml", e.job));
        std::fs::write(&json_file, serde_json::to_string(&e.manifest).unwrap()).unwrap();
        std::fs::write(&yaml_file, &yaml.stdout).unwrap();
        // The JSON as printed, too (it must be YAML as well).
        let printed = env.path().join(format!("{}.printed.json", e.job));
        let json = export(e.set, e.flags, &e.job, "json", "UTC");
        std::fs::write(&printed, &json.stdout).unwrap();
        files.extend([yaml_file.clone(), printed.clone()]);
        pairs.push((yaml_file, printed));
    }
    validate(&validator, &files);
    same_documents(&validator, &pairs);
}

/// What every manifest must say, whatever the job.
#[test]
fn manifests_carry_the_fixed_choices() {
    for e in export_examples("UTC") {
        let m = &e.manifest;
        let what = format!("{}/{}", e.set, e.job);
        assert_eq!(m["apiVersion"], "batch/v1", "{what}");
        assert_eq!(m["kind"], "CronJob", "{what}");
        assert_eq!(m["spec"]["concurrencyPolicy"], "Forbid", "{what}");
        let pod = &m["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never", "{what}");
        assert_eq!(pod["containers"].as_array().unwrap().len(), 1, "{what}");
        let name = m["metadata"]["name"].as_str().unwrap();
        assert!(name.len() <= 52, "{what}");
        // The cron line is in the dialect Vixie cron and Kubernetes read
        // alike: numbers only, weekdays 0-6, no `*/N` in a day field.
        let schedule = m["spec"]["schedule"].as_str().unwrap();
        let fields: Vec<&str> = schedule.split(' ').collect();
        assert_eq!(fields.len(), 5, "{what}: {schedule}");
        assert!(
            schedule
                .chars()
                .all(|c| c.is_ascii_digit() || ",-*/ ".contains(c)),
            "{what}: {schedule}"
        );
        assert!(
            !fields[2].starts_with("*/") && !fields[4].starts_with("*/"),
            "{what}: {schedule}"
        );
        assert!(!fields[4].contains('7'), "{what}: {schedule}");
        let entry =
            vixie::parse(schedule).unwrap_or_else(|| panic!("{what}: cron rejects {schedule}"));
        assert!(!entry.lenient, "{what}: {schedule}");
    }
}

#[test]
fn the_examples_carry_their_keys() {
    let exported = export_examples("UTC");
    let get = |job: &str| -> &Value {
        &exported
            .iter()
            .find(|e| e.job == job)
            .unwrap_or_else(|| panic!("{job} was not exported"))
            .manifest
    };
    // batch-worker: every 15min, 14min timeout, 3 attempts, limits, env.
    let m = get("batch-worker");
    assert_eq!(m["spec"]["schedule"], "*/15 * * * *");
    assert_eq!(m["spec"]["timeZone"], "UTC");
    assert_eq!(m["spec"]["suspend"], false);
    let job = &m["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["activeDeadlineSeconds"], 840);
    assert_eq!(job["backoffLimit"], 2);
    let c = &job["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "registry.example.com/tools/job:1");
    assert_eq!(
        c["command"],
        serde_json::json!(["/usr/local/bin/batch-worker", "--queue", "default"])
    );
    assert_eq!(c["resources"]["limits"]["cpu"], "2");
    assert_eq!(c["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(
        c["env"],
        serde_json::json!([{"name": "BATCH_SIZE", "value": "500"}, {"name": "CONCURRENCY", "value": "4"}])
    );
    // monthly-report: its zone, owner and team labels, the runbook.
    let m = get("monthly-report");
    assert_eq!(m["spec"]["schedule"], "0 9 1 * *");
    assert_eq!(m["spec"]["timeZone"], "Asia/Hong_Kong");
    assert_eq!(m["metadata"]["labels"]["jobctl/owner"], "finance-eng");
    assert_eq!(m["metadata"]["labels"]["jobctl/team"], "finance");
    assert_eq!(
        m["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]["jobctl/team"],
        "finance"
    );
    assert_eq!(
        m["metadata"]["annotations"]["jobctl/metadata.runbook"],
        "https://wiki.example.com/finance/monthly-report"
    );
    // nightly-refresh: tags as labels, the working directory.
    let m = get("nightly-refresh");
    assert_eq!(m["metadata"]["labels"]["tag.jobctl/etl"], "true");
    assert_eq!(m["metadata"]["annotations"]["jobctl/tags"], "etl,nightly");
    let c = &m["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["workingDir"], "/opt/warehouse");
    // weekly-archive: a shell script through /bin/sh -c, `$` kept literal.
    let m = get("weekly-archive");
    assert_eq!(m["spec"]["schedule"], "59 23 * * 0");
    let c = &m["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["command"],
        serde_json::json!([
            "/bin/sh",
            "-c",
            "tar -czf /var/tmp/etc-$$(date +%Y-%V).tar.gz -C / etc"
        ])
    );
    // disabled: suspended.
    assert_eq!(get("disabled")["spec"]["suspend"], true);
    // queue-report-cron: the cron line back, in London.
    let m = get("queue-report-cron");
    assert_eq!(m["spec"]["schedule"], "*/10 9-17 * * 1-5");
    assert_eq!(m["spec"]["timeZone"], "Europe/London");
    // A job that sets no timeout gets the default hour.
    assert_eq!(
        get("disk-report")["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"],
        60
    );
    assert_eq!(
        get("shell-script")["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"],
        3600
    );
    // The config set: defaults apply (retry 2 attempts, 20min timeout).
    let m = get("inherits");
    let job = &m["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 1);
    assert_eq!(job["activeDeadlineSeconds"], 1200);
}

// ------------------------------------------------- the same times, a year

/// Zones for the year-long comparison: one without clock changes, and
/// three with (whole-hour changes on both hemispheres' dates, a half-hour
/// change).
const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
];

/// The compared year, with a day on each side (two New Years).
fn window() -> (Timestamp, Timestamp) {
    (
        "2025-12-30T00:00:00Z".parse().unwrap(),
        "2027-01-02T00:00:00Z".parse().unwrap(),
    )
}

struct SystemZones;

impl ZoneLookup for SystemZones {
    fn zone(&self, name: &str) -> Option<TimeZone> {
        TimeZone::get(name).ok()
    }
}

/// When the job's timer fires from `from` to `to`: the engine on its
/// calendar triggers (the job's zone is the zone expressions without one
/// are computed in, as the rendered `OnCalendar=` lines say).
fn systemd_times(
    schedules: &[Schedule],
    zone: &TimeZone,
    (from, to): (Timestamp, Timestamp),
) -> Vec<Timestamp> {
    let specs: Vec<CalendarSpec> = schedules
        .iter()
        .flat_map(Schedule::triggers)
        .filter_map(|t| match t {
            Trigger::Calendar(expr) => {
                Some(CalendarSpec::parse(&expr).expect("the job's expression"))
            }
            Trigger::Boot(_) => None,
            Trigger::Interval(_) => panic!("an interval trigger was exported"),
        })
        .collect();
    UnionElapses::new(&specs, from, zone, &SystemZones)
        .expect("zones resolve")
        .map(|r| r.expect("the engine computes"))
        .take_while(|t| *t < to)
        .collect()
}

/// When Kubernetes starts the CronJob from `from` to `to`: every instant
/// whose wall-clock minute in `zone` the cron line matches (both instants
/// of a repeated time, none of a skipped one).
fn kubernetes_times(
    line: &str,
    zone: &TimeZone,
    (from, to): (Timestamp, Timestamp),
) -> Vec<Timestamp> {
    let entry = vixie::parse(line).unwrap_or_else(|| panic!("cron rejects {line:?}"));
    let mut out = Vec::new();
    let first: Date = from.to_zoned(zone.clone()).date().yesterday().unwrap();
    let last: Date = to.to_zoned(zone.clone()).date().tomorrow().unwrap();
    let mut date = first;
    while date <= last {
        for hour in (0..24i8).filter(|h| entry.hour[*h as usize]) {
            for minute in (0..60i8).filter(|m| entry.minute[*m as usize]) {
                let wall = date.at(hour, minute, 0, 0);
                if !entry.matches(wall) {
                    continue;
                }
                let instants = match zone.to_ambiguous_timestamp(wall).offset() {
                    AmbiguousOffset::Unambiguous { offset } => vec![offset],
                    AmbiguousOffset::Gap { .. } => vec![],
                    AmbiguousOffset::Fold { before, after } => vec![before, after],
                };
                for offset in instants {
                    let t = offset.to_timestamp(wall).unwrap();
                    if from < t && t < to {
                        out.push(t);
                    }
                }
            }
        }
        date = date.tomorrow().unwrap();
    }
    out.sort();
    out
}

/// The second instant of a wall-clock time the zone shows twice, for the
/// first instant of one; `None` for any other instant.
fn second_occurrence(t: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
    let wall = t.to_zoned(zone.clone()).datetime();
    match zone.to_ambiguous_timestamp(wall).offset() {
        AmbiguousOffset::Fold { before, after } if before.to_timestamp(wall).ok()? == t => {
            after.to_timestamp(wall).ok()
        }
        _ => None,
    }
}

/// The windows compared for `line` in `zone`: the whole year, unless the
/// line starts more than 48 runs a day (every 30 minutes); then (the engine computes some
/// 100,000 elapses a second in a debug build) three days around each
/// moment where an error could hide: the two New Years, the end of
/// February, and each change of the zone's clock in the year.
fn windows(line: &str, zone: &TimeZone) -> Vec<(Timestamp, Timestamp)> {
    let entry = vixie::parse(line).unwrap_or_else(|| panic!("cron rejects {line:?}"));
    let per_day =
        entry.minute.iter().filter(|m| **m).count() * entry.hour.iter().filter(|h| **h).count();
    let (from, to) = window();
    if per_day <= 48 {
        return vec![(from, to)];
    }
    let local = |date: &str| -> Timestamp {
        date.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(zone.clone())
            .unwrap()
            .timestamp()
    };
    let mut moments = vec![
        local("2026-01-01T00:00"),
        local("2026-03-01T00:00"),
        local("2027-01-01T00:00"),
    ];
    moments.extend(
        zone.following(from)
            .map(|t| t.timestamp())
            .take_while(|t| *t < to),
    );
    let day = jiff::SignedDuration::from_hours(36);
    moments
        .into_iter()
        .map(|m| (m.checked_sub(day).unwrap(), m.checked_add(day).unwrap()))
        .collect()
}

/// Checks the contract: Kubernetes' times are systemd's, plus the second
/// occurrence of each repeated time systemd fires at; returns how many
/// times fired and how many were such second runs.
#[track_caller]
fn assert_same_times(
    what: &str,
    schedules: &[Schedule],
    line: &str,
    zone_name: &str,
) -> (usize, usize) {
    let zone = TimeZone::get(zone_name).unwrap();
    let mut totals = (0, 0);
    for window in windows(line, &zone) {
        let (fired, again) = assert_same_times_in(what, schedules, line, zone_name, &zone, window);
        totals = (totals.0 + fired, totals.1 + again);
    }
    totals
}

#[track_caller]
fn assert_same_times_in(
    what: &str,
    schedules: &[Schedule],
    line: &str,
    zone_name: &str,
    zone: &TimeZone,
    window: (Timestamp, Timestamp),
) -> (usize, usize) {
    let zone = zone.clone();
    let systemd = systemd_times(schedules, &zone, window);
    let kubernetes = kubernetes_times(line, &zone, window);
    let mut expected: BTreeSet<Timestamp> = systemd.iter().copied().collect();
    let again: Vec<Timestamp> = systemd
        .iter()
        .filter_map(|t| second_occurrence(*t, &zone))
        .collect();
    expected.extend(again.iter().copied());
    let got: BTreeSet<Timestamp> = kubernetes.iter().copied().collect();
    assert_eq!(got.len(), kubernetes.len(), "{what}: duplicates");
    if got != expected {
        let show = |ts: Vec<&Timestamp>| -> Vec<String> {
            ts.into_iter()
                .take(5)
                .map(|t| t.to_zoned(zone.clone()).strftime("%F %T %Z").to_string())
                .collect()
        };
        panic!(
            "{what}: `{line}` in {zone_name}: Kubernetes also at {:?}; Kubernetes not at {:?}",
            show(got.difference(&expected).collect()),
            show(expected.difference(&got).collect()),
        );
    }
    (kubernetes.len(), again.len())
}

/// The job's schedules, read by the core as the loader reads them.
fn schedules_of(set: &str, flags: &[&str], job: &str) -> (Vec<Schedule>, Option<String>) {
    let path = root().join(set).join(format!("{job}.toml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let config = jobctl_core::config::Config::default();
    let mode = if flags.contains(&"--user") {
        Mode::User
    } else {
        Mode::System
    };
    let ctx = jobctl_core::job::LoadContext {
        mode,
        config: &config,
        zones: &SystemZones,
        root_files: None,
        now: None,
        systemd: None,
    };
    let loaded = jobctl_core::job::load_job(
        jobctl_core::job::JobSource {
            path: &path.display().to_string(),
            stem: job,
            text: &text,
        },
        &ctx,
    );
    let job = loaded
        .job
        .unwrap_or_else(|| panic!("{job}: {:?}", loaded.diagnostics));
    (job.schedules, job.timezone)
}

#[test]
fn every_accepted_example_fires_at_the_same_times_for_a_year() {
    let mut second_runs = 0;
    for host_zone in ZONES {
        for e in export_examples(host_zone) {
            let what = format!("{}/{} (host zone {host_zone})", e.set, e.job);
            let (schedules, timezone) = schedules_of(e.set, e.flags, &e.job);
            let zone = e.manifest["spec"]["timeZone"].as_str().unwrap();
            // The job's own zone, else the host's.
            assert_eq!(zone, timezone.as_deref().unwrap_or(host_zone), "{what}");
            let line = e.manifest["spec"]["schedule"].as_str().unwrap();
            second_runs += assert_same_times(&what, &schedules, line, zone).1;
        }
    }
    // The DST zones did make Kubernetes run twice somewhere (hourly jobs).
    assert!(second_runs > 0);
}

// ------------------------------------------------------------ the corpus

fn every(s: &str) -> Schedule {
    Schedule::Every {
        interval: s.parse().unwrap(),
    }
}

fn cal(e: &str) -> Schedule {
    Schedule::Calendar {
        expression: e.into(),
    }
}

fn cron(line: &str) -> Option<Schedule> {
    let t = jobctl_core::cron::parse(line).ok()?.to_systemd();
    Some(Schedule::Cron {
        line: line.into(),
        on_calendar: t.on_calendar,
        on_boot: t.on_boot,
    })
}

fn daily(s: &str) -> Schedule {
    Schedule::Daily {
        time: jobctl_core::schedule::parse_time_of_day(s).unwrap(),
    }
}

fn weekly(s: &str) -> Schedule {
    let (days, time) = jobctl_core::schedule::parse_weekly(s).unwrap();
    Schedule::Weekly { days, time }
}

fn monthly(s: &str) -> Schedule {
    let (days, time) = jobctl_core::schedule::parse_monthly(s).unwrap();
    Schedule::Monthly { days, time }
}

/// Job schedules (alone and together) whose cron lines are compared.
fn corpus() -> Vec<Vec<Schedule>> {
    let mut out: Vec<Vec<Schedule>> = Vec::new();
    for interval in [
        "2min", "5min", "10min", "15min", "20min", "30min", "1h", "2h", "3h", "4h", "6h", "8h",
        "12h", "1d",
    ] {
        out.push(vec![every(interval)]);
    }
    for minute in [0, 7, 30, 59] {
        out.push(vec![Schedule::Hourly { minute }]);
    }
    // Times in and around the DST changes of the zones compared.
    for time in [
        "00:00", "00:30", "01:00", "01:30", "01:45", "02:00", "02:15", "02:30", "03:00", "12:00",
        "23:59",
    ] {
        out.push(vec![daily(time)]);
    }
    for w in ["Mon..Fri 08:00", "Sun 01:30", "Sat,Sun 02:30", "Sun 02:00"] {
        out.push(vec![weekly(w)]);
    }
    for m in ["1 09:00", "1,15 01:30", "31 12:00", "29 00:00", "5 01:15"] {
        out.push(vec![monthly(m)]);
    }
    for e in [
        "Mon..Fri *-*-* 8..18:00/20",
        "quarterly",
        "*-02-29 12:00",
        "*-*-01..31/2 00:00",
        "*-03,10,11-* 01:30",
        "Sun *-*-* 00/2:15",
        "*-*-* 01,02:00,30",
        "*-*-* 12:00 UTC",
    ] {
        out.push(vec![cal(e)]);
    }
    // Unions that are one line.
    out.push(vec![daily("12:00"), daily("18:00")]);
    out.push(vec![weekly("Mon 08:00"), monthly("1 08:00")]);
    out.push(vec![Schedule::Hourly { minute: 5 }, daily("12:05")]);
    out.push(vec![every("15min"), every("30min")]);
    out.push(vec![
        cal("*-*-01 01:30"),
        cal("Sun 01:30"),
        cal("*-*-15 01:30"),
    ]);
    out
}

#[test]
fn the_corpus_fires_at_the_same_times_for_a_year() {
    let mut compared = 0;
    for schedules in corpus() {
        let what: Vec<String> = schedules.iter().map(Schedule::subject).collect();
        let line = jobctl_core::export::cron_line(&schedules, None)
            .unwrap_or_else(|r| panic!("{what:?} refused: {r:?}"));
        for zone in ZONES {
            // An expression with its own zone is computed there.
            let zone = line.zone.as_deref().unwrap_or(zone);
            assert_same_times(&what.join(", "), &schedules, &line.line, zone);
            compared += 1;
        }
    }
    assert!(compared > 200, "{compared}");
}

/// Every cron line of the systematic corpus (tests/fixtures/cron) that the
/// translator accepts comes back as a line firing at the same times, or is
/// refused for the one reason a cron line can have: a day field starting
/// with `*` next to a restricted one, which Vixie cron ANDs and Kubernetes
/// ORs.
#[test]
fn cron_lines_come_back() {
    let mut back = 0;
    for line in crate::oracle::corpus(include_str!("fixtures/cron/systematic.txt")) {
        let Some(schedule) = cron(&line) else {
            continue;
        };
        match jobctl_core::export::cron_line(std::slice::from_ref(&schedule), None) {
            Ok(got) => {
                for zone in ["UTC", "America/New_York"] {
                    assert_same_times(&line, std::slice::from_ref(&schedule), &got.line, zone);
                }
                back += 1;
            }
            Err(refusals) => {
                let entry = vixie::parse(&line).unwrap();
                let anded = (entry.dom_star || entry.dow_star)
                    && !entry.dom.iter().all(|d| *d)
                    && !entry.dow.iter().all(|d| *d);
                let reboot = line.trim() == "@reboot";
                assert!(anded || reboot, "{line}: {refusals:?}");
                if anded {
                    assert!(
                        refusals[0].reason.contains("both one of its weekdays"),
                        "{line}: {refusals:?}"
                    );
                }
            }
        }
    }
    assert!(back > 80, "{back}");
}

// ------------------------------------------------- hostile values, names

/// Kubernetes' expansion of `$(NAME)` in a container's command and
/// environment values (k8s.io/kubernetes third_party/forked/golang/expansion):
/// `$$` is `$`, `$(NAME)` is the variable's value when it is defined and
/// left as written when not, any other `$` stays.
fn kubernetes_expand(input: &str, env: &[(String, String)]) -> String {
    let bytes = input.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                }
                b'(' => match input[i + 2..].find(')') {
                    Some(end) => {
                        let name = &input[i + 2..i + 2 + end];
                        match env.iter().find(|(k, _)| k == name) {
                            Some((_, v)) => out.push_str(v),
                            None => out.push_str(&input[i..i + 3 + end]),
                        }
                        i += 3 + end;
                    }
                    None => {
                        out.push_str("$(");
                        i += 2;
                    }
                },
                _ => {
                    out.push('$');
                    i += 1;
                }
            }
        } else {
            let c = input[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[test]
fn kubernetes_expansion_reference() {
    let env = [("A".to_string(), "x".to_string())];
    assert_eq!(
        kubernetes_expand("$(A) $(B) $$ $ $x $(A", &env),
        "x $(B) $ $ $x $(A"
    );
    assert_eq!(kubernetes_expand("$$(A)", &env), "$(A)");
    assert_eq!(kubernetes_expand("a$", &env), "a$");
}

/// A job whose values hold everything that could break a document or be
/// expanded on the way.
const HOSTILE: &str = r##"
description = "quote \" backslash \\ colon: hash # dash - star * amp & bang ! pct % brace { bracket [ 'single' \u2028 sep é 🚀"
command = ["/bin/printf", "%s|", "$(HOME)", "$$", "$", "${USER}", "a: b", "- x", "# y", "no", "on", "~", "1e3", "0o17", "", " spaced ", "line\nbreak", "tab\there", "\u2029", "\u00a0", "\u0085", "esc\u001b[31m"]
daily = "01:30"
timezone = "America/New_York"
owner = "ops@example.com"
team = "core-infra"
tags = ["etl", "ünïcode", "x:y", "ok_tag"]
environment = { A = "$(B)", B = "two words", C = "$$", D = "yes", E = "null" }

[metadata]
"key with spaces" = "v"
runbook = "https://wiki.example.com/a?b=c&d=e#f"
"##;

#[test]
fn hostile_values_reach_the_container_exactly() {
    let env = TestEnv::new();
    env.write_job("hostile", HOSTILE);
    let jobs = env.jobs_dir();
    let run = |format: &str| {
        env.jobctl()
            .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
            .arg(&jobs)
            .args(["export", "k8s", "hostile", "--output", format])
            .run()
    };
    let json = run("json");
    assert!(json.status.success(), "{}", json.describe());
    let m: Value = serde_json::from_slice(&json.stdout).unwrap();
    let c = &m["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let container_env: Vec<(String, String)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Environment values: expanded in order, each sees only earlier ones;
    // none may change.
    let mut seen = Vec::new();
    for (name, value) in &container_env {
        let got = kubernetes_expand(value, &seen);
        seen.push((name.clone(), got));
    }
    let job: toml::Table = HOSTILE.parse().unwrap();
    let want_env: Vec<(String, String)> = job["environment"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(seen, want_env);
    let argv: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| kubernetes_expand(a.as_str().unwrap(), &seen))
        .collect();
    let want_argv: Vec<String> = job["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(argv, want_argv);
    assert_eq!(
        m["metadata"]["annotations"]["jobctl/description"],
        job["description"].as_str().unwrap()
    );
    // Labels only where Kubernetes takes them; the rest as annotations, with
    // warnings.
    assert_eq!(m["metadata"]["labels"]["jobctl/team"], "core-infra");
    assert!(m["metadata"]["labels"].get("jobctl/owner").is_none());
    assert_eq!(
        m["metadata"]["annotations"]["jobctl/owner"],
        "ops@example.com"
    );
    assert_eq!(m["metadata"]["labels"]["tag.jobctl/ok_tag"], "true");
    assert_eq!(
        m["metadata"]["annotations"]["jobctl/tags"],
        "etl,ünïcode,x:y,ok_tag"
    );
    assert_eq!(
        m["metadata"]["annotations"]["jobctl/metadata.runbook"],
        "https://wiki.example.com/a?b=c&d=e#f"
    );
    let stderr = json.stderr();
    for warning in [
        "owner \"ops@example.com\" is not a label value",
        "the tag \"ünïcode\" is not a label name",
        "the tag \"x:y\" is not a label name",
        "metadata.key with spaces: not carried over",
        // 01:30 in New York comes twice at the next fall-back change.
        "goes back and shows 01:30 twice",
    ] {
        assert!(stderr.contains(warning), "{warning:?} in:\n{stderr}");
    }
    // Nothing unprintable reaches the terminal: the document escapes it.
    let stdout = json.stdout();
    assert!(
        !stdout.contains('\u{2028}') && !stdout.contains('\u{85}'),
        "{stdout}"
    );

    let yaml = run("yaml");
    assert!(yaml.status.success(), "{}", yaml.describe());
    let Some(validator) = validator_or_skip() else {
        return;
    };
    let (y, j) = (env.path().join("m.yaml"), env.path().join("m.json"));
    std::fs::write(&y, &yaml.stdout).unwrap();
    std::fs::write(&j, &json.stdout).unwrap();
    validate(&validator, &[y.clone(), j.clone()]);
    same_documents(&validator, &[(y, j)]);
}

#[test]
fn names_are_made_kubernetes_names_or_refused() {
    let env = TestEnv::new();
    let body = "command = [\"/bin/true\"]\ndaily = \"03:00\"\n";
    env.write_job("Nightly_Refresh", body);
    let long = format!("a{}", "b".repeat(60));
    env.write_job(&long, body);
    let jobs = env.jobs_dir();
    let export = |args: &[&str]| {
        env.jobctl()
            .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
            .arg(&jobs)
            .args(["export", "k8s"])
            .args(args)
            .run()
    };
    let out = export(&["Nightly_Refresh"]);
    assert!(out.status.success(), "{}", out.describe());
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["metadata"]["name"], "nightly-refresh");
    assert!(out.stderr().contains("the job name \"Nightly_Refresh\" is not a Kubernetes name; the CronJob is named \"nightly-refresh\""), "{}", out.describe());

    let out = export(&[&long]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr().contains("a CronJob name has at most 52"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr()
            .contains("Hint: choose the CronJob's name with --name"),
        "{}",
        out.describe()
    );
    let out = export(&[&long, "--name", "short", "--namespace", "batch"]);
    assert!(out.status.success(), "{}", out.describe());
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["metadata"]["name"], "short");
    assert_eq!(m["metadata"]["namespace"], "batch");

    // Every bad option at once, nothing on stdout.
    let out = export(&[
        "Nightly_Refresh",
        "--name",
        "Bad_Name",
        "--namespace",
        "a.b",
        "--image",
        "a b",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(out.stdout.is_empty());
    for part in [
        "--name: \"Bad_Name\"",
        "--namespace: \"a.b\"",
        "--image: \"a b\"",
    ] {
        assert!(out.stderr().contains(part), "{part}: {}", out.describe());
    }
    // A job that is not there, and one that is invalid.
    let out = export(&["missing"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr().starts_with("Error: no job missing in "),
        "{}",
        out.describe()
    );
    env.write_job("broken", "command = [\"/bin/true\"]\ndaily = \"25:00\"\n");
    let out = export(&["broken"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(out.stderr().contains("broken.toml:2"), "{}", out.describe());
}

#[test]
fn without_an_image_a_placeholder_and_a_warning() {
    let env = TestEnv::new();
    env.write_job("x", "command = [\"/usr/bin/x\"]\nhourly = \":00\"\n");
    let out = env
        .jobctl()
        .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
        .arg(env.jobs_dir())
        .args(["export", "k8s", "x"])
        .run();
    assert!(out.status.success(), "{}", out.describe());
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
        jobctl_core::export::k8s::PLACEHOLDER_IMAGE
    );
    assert!(
        out.stderr().contains("Warning: no --image"),
        "{}",
        out.describe()
    );
    // The host's zone (TZ=UTC in the tests) is the job's clock.
    assert_eq!(m["spec"]["timeZone"], "UTC");
    assert!(
        out.stderr().contains("timeZone is this host's zone, UTC"),
        "{}",
        out.describe()
    );
}

/// As `jobctl export k8s … | head -0`: a reader that goes away is not an
/// error, and nothing is said about it.
#[test]
fn a_closed_pipe_is_not_an_error() {
    let env = TestEnv::new();
    env.write_job(
        "x",
        "command = [\"/usr/bin/x\"]\nhourly = \":00\"\ntimezone = \"UTC\"\n",
    );
    for format in ["json", "yaml"] {
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let out = env
            .jobctl()
            .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
            .arg(env.jobs_dir())
            .args([
                "export",
                "k8s",
                "x",
                "--image",
                "example/x:1",
                "--output",
                format,
            ])
            .stdout(std::process::Stdio::from(writer))
            .run();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{format}: {}",
            out.describe()
        );
    }
}

/// A job that sets every key the CronJob cannot keep: one warning each,
/// naming the key, and the keys that do map (no_new_privileges, enabled).
#[test]
fn keys_without_an_equivalent_are_warned_about() {
    let env = TestEnv::new();
    env.write_job(
        "everything",
        r#"
command = ["/usr/local/bin/etl"]
daily = "04:00"
timezone = "UTC"
user = "etl"
group = "etl"
environment_file = "/etc/default/etl"
stdin = "input"
persistent = true
randomized_delay = "5min"
accuracy = "30s"
on_boot = "10min"
nice = 5
io_weight = 200
private_tmp = true
protect_system = "strict"
no_new_privileges = true
memory_max = "80%"
cpu_quota = "50%"
after = ["network-online.target"]
wants = ["network-online.target"]
on_success = ["publish-report.service"]
on_failure = ["notify@%n.service"]
not_after = 2099-12-31
retry = { attempts = 4, delay = "30s", backoff = 2.0 }
output_limit = "8M"
merge_output = true
enabled = false

[service_extra]
LimitNOFILE = 65536

[timer_extra]
OnClockChange = true
"#,
    );
    let out = env
        .jobctl()
        .args(["--config", "/nonexistent/config.toml", "--jobs-dir"])
        .arg(env.jobs_dir())
        .args(["export", "k8s", "everything", "--image", "example/etl:1"])
        .run();
    assert!(out.status.success(), "{}", out.describe());
    let stderr = out.stderr();
    for key in [
        "user = \"etl\": not carried over",
        "group = \"etl\": not carried over",
        "environment_file (/etc/default/etl): not carried over",
        "stdin: not carried over",
        "persistent = true: not carried over",
        "randomized_delay = \"5min\": not carried over",
        "accuracy = \"30s\": not carried over",
        "on_boot = \"10min\": not carried over",
        "nice = 5: not carried over",
        "io_weight = 200: not carried over",
        "private_tmp = true: not carried over",
        "protect_system = \"strict\": not carried over",
        "memory_max = \"80%\": not carried over",
        "after/wants (network-online.target): not carried over",
        "on_success (publish-report.service): not carried over",
        "on_failure (notify@%n.service): not carried over",
        "service_extra.LimitNOFILE, timer_extra.OnClockChange: not carried over",
        "not_after = 2099-12-31: not carried over",
        "retry's waits (delay = \"30s\", backoff = 2): not carried over",
        "output_limit = \"8M\": not carried over",
        "merge_output = true: not carried over",
    ] {
        assert!(
            stderr.contains(&format!("Warning: {key}")),
            "{key:?} in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("no_new_privileges"), "{stderr}");
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["spec"]["suspend"], true);
    let job = &m["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 3);
    let c = &job["template"]["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(
        c["resources"],
        serde_json::json!({"limits": {"cpu": "500m"}})
    );
    let Some(validator) = validator_or_skip() else {
        return;
    };
    let file = env.path().join("everything.json");
    std::fs::write(&file, &out.stdout).unwrap();
    validate(&validator, &[file]);
}
