//! `jobctl calendar` prints what `systemd-analyze calendar` prints: the
//! same table (original form, normalized form, next elapse, iterations, the
//! UTC line when the local zone is not UTC), byte for byte except the
//! "From now" lines, which depend on the moment each program ran.

use std::process::Command;

use crate::oracle::{jobctl, systemd};
use crate::support::{RunExt as _, TestEnv, assert_contains, tool_or_skip};

/// Runs `cmd ARGS` (systemd-analyze or jobctl) in the same environment.
fn run(mut cmd: Command, args: &[&str], tz: &str) -> (String, Option<i32>) {
    let output = cmd
        .args(args)
        .env("TZ", tz)
        .env("LC_ALL", "C")
        .env("SYSTEMD_COLORS", "0")
        .env("COLUMNS", "1000")
        .run();
    let stdout = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim_start().starts_with("From now:"))
        .collect::<Vec<_>>()
        .join("\n");
    (stdout, output.status.code())
}

#[test]
fn text_output_matches_systemd_analyze() {
    if !tool_or_skip(systemd::SYSTEMD_ANALYZE, "the text output to compare with") {
        return;
    }
    let exprs = [
        "daily",
        "Mon..Fri 9:00",
        "*-*-* 02:30:00",
        "*-02~01 12:00 Europe/London",
        "@1767225600",
        "2023-02-29",
        "minutely",
    ];
    for tz in [
        "UTC",
        "America/New_York",
        "Australia/Lord_Howe",
        "Africa/Abidjan",
    ] {
        let mut args = vec!["calendar", "--iterations=3", "--base-time=@1741400000"];
        args.extend(exprs);
        let mut analyze = Command::new(systemd::SYSTEMD_ANALYZE);
        analyze.env_clear();
        let (want, want_code) = run(analyze, &args, tz);
        let (got, got_code) = run(TestEnv::new().jobctl(), &args, tz);
        assert_eq!(got, want, "TZ={tz}");
        assert_eq!(got_code, Some(0));
        assert_eq!(want_code, Some(0));
    }
}

#[test]
fn json_output_shape() {
    let results = jobctl::calendar(
        "Europe/Berlin",
        "@1767225600",
        2,
        &["Mon 09:00".to_string(), "daily UTC".to_string()],
        false,
    );
    let first = &results[0];
    assert_eq!(first["input"], "Mon 09:00");
    assert_eq!(first["valid"], true);
    assert_eq!(first["normalized"], "Mon *-*-* 09:00:00");
    assert!(first["timezone"].is_null());
    assert_eq!(first["never"], false);
    let e = &first["next_elapses"][0];
    assert_eq!(e["timestamp"], "2026-01-05T08:00:00Z");
    assert_eq!(e["usec"], 1_767_600_000_000_000_i64);
    assert_eq!(e["local"], "Mon 2026-01-05 09:00:00 CET");
    assert_eq!(results[1]["timezone"], "UTC");
}

#[test]
fn base_time_forms_agree() {
    let at = |base: &str| {
        let r = jobctl::calendar("Europe/Berlin", base, 1, &["hourly".to_string()], false);
        r[0]["next_elapses"][0]["timestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let want = "2026-01-01T00:00:00Z";
    assert_eq!(at("@1767225599"), want);
    assert_eq!(at("2025-12-31T23:59:59Z"), want);
    assert_eq!(at("2025-12-31T23:59:59+00:00"), want);
    assert_eq!(
        at("2026-01-01 00:59:59"),
        want,
        "civil time in the local zone (CET)"
    );
    assert_eq!(at("@1767225599.5"), want);
    assert_eq!(
        at("2025-12-31 23:59:59 UTC"),
        want,
        "civil time with a zone suffix"
    );
    assert_eq!(at("2026-01-01 07:59:59 Asia/Hong_Kong"), want);
}

/// `jobctl validate` passes on systemd's warning about open-ended
/// repetitions, pointing at the repetition inside the job file.
#[test]
fn validate_warns_about_open_ended_repetitions() {
    let env = TestEnv::new();
    let file = env.write_job(
        "every-five-hours",
        "shell = \"true\"\non_calendar = \"*-*-* 00/5:00:00\"\n",
    );
    let output = env.jobctl().arg("validate").arg(&file).run();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{all}");
    assert_contains(
        &all,
        "every-five-hours.toml:2:22: `on_calendar`: the open-ended repetition in the hour can make systemd skip times after New Year",
    );
    assert_contains(&all, "write it with an end: `00..20/5`");
}
