//! What `jobctl import crontab` makes of a crontab, checked independently of
//! its own output (the golden files in tests/fixtures/import were blessed
//! from that output, so they prove only that it does not change):
//!
//! - each job's schedule against the independent cron reference
//!   (tests/oracle/vixie.rs): the `cron` value written means what the
//!   crontab line meant, and the timer's `OnCalendar=` lines, computed by
//!   `jobctl calendar`, fire at the minutes cron would run the line;
//! - its command, `%` input, environment, `SHELL` and time zone against
//!   expectations written by hand from crontab(5) (Debian's cron 3.0pl1):
//!   - "An active line in a crontab will be either an environment setting
//!     or a cron command. [...] name = value [...] The value string may be
//!     placed in quotes (single or double, but matching) to preserve leading
//!     or trailing blanks" — leading ones only, in fact: Debian's
//!     `load_env()` strips trailing blanks from every value (`strdtb`) after
//!     taking the quotes off; `NAME=` with nothing after it is not a setting;
//!   - "SHELL is set to /bin/sh [...] PATH is set to /usr/bin:/bin. HOME,
//!     SHELL, and PATH may be overridden by settings in the crontab": the
//!     command runs as `$SHELL -c COMMAND` and sees SHELL and PATH;
//!   - "Percent-signs (%) in the command, unless escaped with backslash (\),
//!     will be changed into newline characters, and all data after the
//!     first % will be sent to the command as standard input" (cron ends the
//!     input with a newline when it has none);
//!   - MAILTO is cron's own setting (jobctl keeps it as metadata), and the
//!     schedule's zone is `CRON_TZ` (cronie's crontab(5)), else `TZ`, which
//!     the command also sees (docs/schedules.md, "Importing a crontab").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::oracle::{jobctl, vixie};
use crate::support::{RunExt as _, TestEnv};

/// How a job runs its command.
#[derive(Debug)]
enum Run {
    /// `shell = "…"`: `/bin/sh -c`.
    Sh(&'static str),
    /// `command = [SHELL, "-c", "…"]`.
    Shell(&'static str, &'static str),
}

/// One job line of a crontab, read by hand.
#[derive(Debug)]
struct Expect {
    line: u64,
    /// The schedule as cron reads it: five fields or an @-macro.
    schedule: &'static str,
    user: &'static str,
    run: Run,
    stdin: Option<&'static str>,
    /// The zone of the schedule; `None`: the host's.
    timezone: Option<&'static str>,
    environment: &'static [(&'static str, &'static str)],
    mailto: Option<&'static str>,
}

const USER_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("BATCH_SIZE", "500"),
    ("SHELL", "/bin/sh"),
];
const HK: Option<&str> = Some("Asia/Hong_Kong");
const OPS: Option<&str> = Some("ops@example.com");

/// tests/fixtures/import/user.crontab, line by line. Lines 18 (`CRON_TZ=`)
/// and 24 (`MAILTO=`) are not settings, so the zone set on line 16 and the
/// MAILTO of line 4 hold to the end. Lines 21–23 are not imported (`L`,
/// `#`: not cron; `5;rm`: cron only tolerates it).
fn user_crontab() -> Vec<Expect> {
    let job = |line, schedule, run, timezone| Expect {
        line,
        schedule,
        user: "alice",
        run,
        stdin: None,
        timezone,
        environment: USER_ENV,
        mailto: OPS,
    };
    let monthly = "/usr/bin/python3 /opt/report/monthly.py send";
    vec![
        job(
            8,
            "15 2 * * *",
            Run::Sh("cd /opt/warehouse && ./refresh.sh --full >> /var/log/refresh.log 2>&1"),
            None,
        ),
        job(
            11,
            "*/15 9-17 * * mon-fri",
            Run::Sh("/usr/local/bin/batch-worker --queue default"),
            None,
        ),
        job(14, "0 12 1 * Mon", Run::Sh(monthly), None),
        job(15, "0 6 */2 * Mon", Run::Sh(monthly), None),
        job(17, "0 9 1 * *", Run::Sh(monthly), HK),
        job(19, "@reboot", Run::Sh("/usr/local/bin/warm-cache"), HK),
        Expect {
            stdin: Some("Digest attached.\n-- cron\n"),
            ..job(
                20,
                "30 3 * * 7",
                Run::Sh("/usr/bin/mail -s \"weekly digest\" team@example.com"),
                HK,
            )
        },
        job(25, "0 4 * * *", Run::Sh("date +%F > /tmp/stamp"), HK),
    ]
}

const SYSTEM_ENV: &[(&str, &str)] = &[
    ("SHELL", "/bin/sh"),
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin",
    ),
];

/// tests/fixtures/import/system.crontab: a user column; line 13 has none.
fn system_crontab() -> Vec<Expect> {
    let job = |line, schedule, user, run| Expect {
        line,
        schedule,
        user,
        run: Run::Sh(run),
        stdin: None,
        timezone: None,
        environment: SYSTEM_ENV,
        mailto: None,
    };
    vec![
        job(
            8,
            "17 * * * *",
            "root",
            "cd / && run-parts --report /etc/cron.hourly",
        ),
        job(
            9,
            "25 6 * * *",
            "root",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }",
        ),
        job(
            10,
            "47 6 * * 7",
            "root",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.weekly; }",
        ),
        job(
            11,
            "52 6 1 * *",
            "root",
            "test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.monthly; }",
        ),
        job(
            12,
            "*/5 * * * *",
            "www-data",
            "/usr/bin/php /var/www/cron.php",
        ),
    ]
}

/// A crontab for what the fixtures do not cover: another SHELL, quoted
/// values, TZ without CRON_TZ, no PATH, `%` input ending in `%`, `\%`.
const SETTINGS_CRONTAB: &str = "\
SHELL=/bin/bash
GREETING = \"  hello world  \"
QUOTED='single'
TZ=Europe/Berlin
0 7 * * 1-5 echo \"$GREETING\" | tee -a /tmp/greet%line one%line two%
CRON_TZ=America/New_York
30 23 28-31 * * [ \"$(date +\\%d -d tomorrow)\" = 01 ] && /usr/local/bin/month-end
SHELL=/bin/sh
*/10 * * * * /usr/bin/true 50\\% done
";

const SETTINGS_ENV_BASH: &[(&str, &str)] = &[
    ("SHELL", "/bin/bash"),
    // Leading blanks kept by the quotes, trailing ones stripped by cron.
    ("GREETING", "  hello world"),
    ("QUOTED", "single"),
    ("TZ", "Europe/Berlin"),
    ("PATH", "/usr/bin:/bin"),
];
const SETTINGS_ENV_SH: &[(&str, &str)] = &[
    ("SHELL", "/bin/sh"),
    ("GREETING", "  hello world"),
    ("QUOTED", "single"),
    ("TZ", "Europe/Berlin"),
    ("PATH", "/usr/bin:/bin"),
];

fn settings_crontab() -> Vec<Expect> {
    vec![
        Expect {
            line: 5,
            schedule: "0 7 * * 1-5",
            user: "bob",
            run: Run::Shell("/bin/bash", "echo \"$GREETING\" | tee -a /tmp/greet"),
            stdin: Some("line one\nline two\n"),
            timezone: Some("Europe/Berlin"),
            environment: SETTINGS_ENV_BASH,
            mailto: None,
        },
        Expect {
            line: 7,
            schedule: "30 23 28-31 * *",
            user: "bob",
            run: Run::Shell(
                "/bin/bash",
                "[ \"$(date +%d -d tomorrow)\" = 01 ] && /usr/local/bin/month-end",
            ),
            stdin: None,
            timezone: Some("America/New_York"),
            environment: SETTINGS_ENV_BASH,
            mailto: None,
        },
        Expect {
            line: 9,
            schedule: "*/10 * * * *",
            user: "bob",
            run: Run::Sh("/usr/bin/true 50% done"),
            stdin: None,
            timezone: Some("America/New_York"),
            environment: SETTINGS_ENV_SH,
            mailto: None,
        },
    ]
}

/// Imports (`jobctl import crontab ARGS --out OUT --json`, with `stdin`),
/// returns the report.
fn import(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Value {
    let output = env
        .jobctl()
        .args(["import", "crontab"])
        .args(args)
        .arg("--out")
        .arg(env.path().join("jobs"))
        .arg("--json")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import"))
        .run_with_input(stdin);
    assert!(output.status.success(), "import: {}", output.stderr());
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The `OnCalendar=` lines of the job's timer as jobctl renders it.
/// The mail channel the import makes of `MAILTO=ops@example.com`.
const OPS_CHANNEL: &str = "mailto-ops-example-com";

fn rendered_calendars(env: &TestEnv, file: &Path) -> Vec<String> {
    // The configuration with the channel the import asked to add.
    let config = env.write_config(&format!(
        "[notify.channels.{OPS_CHANNEL}]\nmail = [\"ops@example.com\"]\n"
    ));
    let output = env
        .jobctl()
        .arg("--config")
        .arg(config)
        .args(["render", "--json"])
        .arg(file)
        .run();
    assert!(
        output.status.success(),
        "render {}: {}",
        file.display(),
        output.stderr()
    );
    let rendered: Value = serde_json::from_slice(&output.stdout).unwrap();
    rendered["jobs"][0]["timer"]["contents"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("OnCalendar="))
        .map(str::to_string)
        .collect()
}

/// Compared from here, for a quarter without clock changes in any zone
/// used (cron and systemd legitimately differ across them: tests/cron_dst.rs).
const FROM: &str = "2026-06-01T00:00:00Z";
const TO: &str = "2026-09-01T00:00:00Z";
/// At most this many runs compared per job.
const RUNS: usize = 500;

/// The schedule `cron` (the job file's value) and its timer's `OnCalendar=`
/// lines against cron's own reading of the crontab line `schedule`.
fn check_schedule(what: &str, schedule: &str, cron: &str, calendars: &[String], zone: &str) {
    let want =
        vixie::parse(schedule).unwrap_or_else(|| panic!("{what}: cron refuses {schedule:?}"));
    let got = vixie::parse(cron).unwrap_or_else(|| panic!("{what}: cron refuses {cron:?}"));
    assert_eq!(got, want, "{what}: cron = {cron:?} is not {schedule:?}");
    if want.reboot {
        assert!(calendars.is_empty(), "{what}: @reboot has {calendars:?}");
        return;
    }
    let tz = TimeZone::get(zone).unwrap();
    let (from, to): (Timestamp, Timestamp) = (FROM.parse().unwrap(), TO.parse().unwrap());
    let cron_runs: Vec<i64> = vixie::simulate(&want, &tz, from, to)
        .into_iter()
        .take(RUNS)
        .map(|r| r.at.as_microsecond())
        .collect();
    assert!(!cron_runs.is_empty(), "{what}: cron never runs it");
    // Each OnCalendar= line on its own, then their union (one timer).
    let base = format!("@{}", from.as_second());
    let results = jobctl::calendar(zone, &base, cron_runs.len() as u32, calendars, false);
    let mut timer_runs: Vec<i64> = results
        .iter()
        .flat_map(|r| r["next_elapses"].as_array().cloned().unwrap_or_default())
        .map(|e| e["usec"].as_i64().unwrap())
        .collect();
    timer_runs.sort_unstable();
    timer_runs.dedup();
    timer_runs.truncate(cron_runs.len());
    assert_eq!(
        timer_runs, cron_runs,
        "{what}: the timer ({calendars:?} in {zone}) and cron ({schedule:?}) run at different times"
    );
}

/// Checks every imported job of `report` against `expected`, and that no
/// other line was imported.
fn check_import(env: &TestEnv, report: &Value, expected: &[Expect]) {
    let jobs = report["jobs"].as_array().unwrap();
    let lines: Vec<u64> = jobs.iter().map(|j| j["line"].as_u64().unwrap()).collect();
    let want_lines: Vec<u64> = expected.iter().map(|e| e.line).collect();
    assert_eq!(lines, want_lines, "the lines imported");
    for (job, want) in jobs.iter().zip(expected) {
        let what = format!("line {} ({})", want.line, job["name"]);
        let file = PathBuf::from(job["file"].as_str().unwrap());
        let text = std::fs::read_to_string(&file).unwrap();
        let toml: toml::Table = text.parse().unwrap();
        let string = |key: &str| toml.get(key).and_then(|v| v.as_str());

        check_schedule(
            &what,
            want.schedule,
            string("cron").unwrap_or_default(),
            &rendered_calendars(env, &file),
            want.timezone.unwrap_or("UTC"),
        );
        if !want.schedule.starts_with('@') {
            assert_eq!(string("timezone"), want.timezone, "{what}: timezone");
        }
        assert_eq!(string("user"), Some(want.user), "{what}: user");
        match want.run {
            Run::Sh(script) => {
                assert_eq!(string("shell"), Some(script), "{what}: shell");
                assert!(toml.get("command").is_none(), "{what}: command");
            }
            Run::Shell(shell, script) => {
                let argv: Vec<&str> = toml
                    .get("command")
                    .and_then(|c| c.as_array())
                    .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                assert_eq!(argv, [shell, "-c", script], "{what}: command");
                assert!(toml.get("shell").is_none(), "{what}: shell");
            }
        }
        assert_eq!(string("stdin"), want.stdin, "{what}: stdin");
        let environment: BTreeMap<&str, &str> = toml
            .get("environment")
            .and_then(|e| e.as_table())
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        let want_environment: BTreeMap<&str, &str> = want.environment.iter().copied().collect();
        assert_eq!(environment, want_environment, "{what}: environment");
        let mailto = toml
            .get("metadata")
            .and_then(|m| m.get("mailto"))
            .and_then(|m| m.as_str());
        assert_eq!(mailto, want.mailto, "{what}: MAILTO");
        // cron mailed MAILTO (issue 13): the job notifies its mail channel.
        let notify: Option<Vec<&str>> = toml
            .get("notify")
            .and_then(|n| n.as_array())
            .map(|n| n.iter().filter_map(|c| c.as_str()).collect());
        let want_notify = want.mailto.map(|m| {
            assert_eq!(m, "ops@example.com", "the oracle knows this one address");
            vec![OPS_CHANNEL]
        });
        assert_eq!(notify, want_notify, "{what}: notify");
    }
}

#[test]
fn a_user_crontab_means_what_it_meant_to_cron() {
    let env = TestEnv::new();
    let report = import(&env, &["user.crontab", "--job-user", "alice"], b"");
    check_import(&env, &report, &user_crontab());
    let skipped: Vec<u64> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_u64().unwrap())
        .collect();
    assert_eq!(skipped, [18, 21, 22, 23, 24]);
}

#[test]
fn a_system_crontab_means_what_it_meant_to_cron() {
    let env = TestEnv::new();
    let text = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/system.crontab"),
    )
    .unwrap();
    let report = import(&env, &["-", "--format", "system"], &text);
    check_import(&env, &report, &system_crontab());
}

#[test]
fn settings_shell_and_zones_mean_what_they_meant_to_cron() {
    let env = TestEnv::new();
    let report = import(
        &env,
        &["-", "--job-user", "bob"],
        SETTINGS_CRONTAB.as_bytes(),
    );
    check_import(&env, &report, &settings_crontab());
}
