//! Bounded work and quiet exits for any input: a reader that goes away, huge
//! or endless files, `--iterations` that would not fit in memory, and a `TZ`
//! that names nothing.

use std::process::{Command, Output};

use crate::support::*;

/// Runs `cmd` with its stdout a pipe whose reading end is already closed,
/// as in `jobctl … | head -0`: the first write fails with EPIPE.
fn with_closed_stdout(mut cmd: Command) -> Run {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    cmd.stdout(std::process::Stdio::from(writer));
    cmd.run()
}

/// Every `--json` command a reader can pipe into `head` exits 0 and says
/// nothing when the pipe closes, as the text mode does.
#[test]
fn json_on_a_closed_pipe_exits_quietly() {
    let s = TestEnv::new();
    s.exec("alpha", &[], &["out", "hello"]).success();
    let job = s.write_job("nightly", "command = [\"/bin/true\"]\ndaily = \"02:15\"\n");
    let (db, jobs) = (s.db(), s.jobs_dir());
    let [db, job, jobs] = [&db, &job, &jobs].map(|p| p.to_str().unwrap());
    let cases: Vec<Vec<&str>> = vec![
        vec!["history", "--json", "--db", db],
        vec!["history", "--db", db],
        vec!["logs", "alpha", "--json", "--db", db],
        vec!["logs", "alpha", "--db", db],
        vec!["calendar", "--json", "daily"],
        vec!["calendar", "daily"],
        vec!["--user", "--jobs-dir", jobs, "validate", "--json"],
        vec!["--user", "--jobs-dir", jobs, "render", "--json", job],
    ];
    for args in cases {
        let mut cmd = s.jobctl();
        cmd.args(&args);
        let out = with_closed_stdout(cmd);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "jobctl {}: exit {:?}, stderr: {}",
            args.join(" "),
            out.status.code(),
            text(&out.stderr)
        );
    }
}

/// `jobctl calendar` under a 32 MiB data limit (heap and anonymous maps),
/// in UTC from a fixed base time.
fn calendar_in_32_mib(s: &TestEnv, args: &[&str]) -> Run {
    let mut cmd = jobctl_in_32_mib(s, "UTC", &["calendar", "--base-time=@1767225600"]);
    cmd.args(args).run()
}

/// 100,000 elapses used about 50 MB before anything was printed (1,000,000:
/// 484 MB); they are now written as they are computed.
#[test]
fn calendar_streams_its_elapses() {
    let s = TestEnv::new();
    let out = calendar_in_32_mib(&s, &["--iterations", "100000", "*:*:*"]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // Original and normalized form, then two lines per elapse (UTC: no
    // "(in UTC)" line).
    assert_eq!(lines.len(), 2 + 2 * 100_000);
    assert_eq!(lines[0], "  Original form: *:*:*");
    assert_eq!(lines[1], "Normalized form: *-*-* *:*:*");
    assert_eq!(lines[2], "    Next elapse: Thu 2026-01-01 00:00:01 UTC");
    assert_eq!(
        lines[lines.len() - 2],
        "  Iter. #100000: Fri 2026-01-02 03:46:40 UTC"
    );

    let out = calendar_in_32_mib(
        &s,
        &["--json", "--iterations", "100000", "*:*:*", "minutely"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let document: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &document["expressions"];
    let elapses = v[0]["next_elapses"].as_array().unwrap();
    assert_eq!(elapses.len(), 100_000);
    assert_eq!(elapses[99_999]["timestamp"], "2026-01-02T03:46:40Z");
    assert_eq!(v[1]["next_elapses"].as_array().unwrap().len(), 100_000);
    assert_eq!(
        v[1]["next_elapses"][99_999]["timestamp"],
        "2026-03-11T10:40:00Z"
    );
}

/// More than the cap is refused before any work, with a message that says
/// what the cap is and what to do.
#[test]
fn calendar_iterations_are_capped() {
    let s = TestEnv::new();
    for n in ["1000001", "4294967295", "18446744073709551616"] {
        let out = calendar_in_32_mib(&s, &["--iterations", n, "daily"]);
        assert_eq!(out.status.code(), Some(2), "{n}: {}", describe(&out));
        assert!(out.stdout.is_empty());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("the most elapses jobctl calendar computes at once")
                || stderr.contains("is not a count"),
            "{n}: {stderr}"
        );
    }
    let out = calendar_in_32_mib(&s, &["--iterations", "1000001", "daily"]);
    assert!(
        text(&out.stderr).contains("1000001 is more than 1000000"),
        "{}",
        describe(&out)
    );
    // The cap itself is allowed (the reader stops after the first lines).
    let mut cmd = s.jobctl();
    cmd.args(["calendar", "--iterations", "1000000", "hourly"]);
    let out = with_closed_stdout(cmd);
    assert!(out.status.success(), "{}", describe(&out));
}

fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout[..out.stdout.len().min(2000)]),
        text(&out.stderr)
    )
}

/// `jobctl ARGS` under a 32 MiB data limit, in the environment's folder,
/// with `TZ` as given.
fn jobctl_in_32_mib(s: &TestEnv, tz: &str, args: &[&str]) -> Command {
    let mut cmd = s.command("prlimit");
    cmd.env("TZ", tz)
        .arg(format!("--data={}", 32 << 20))
        .arg(JOBCTL)
        .args(args)
        .current_dir(s.path());
    cmd
}

/// A `TZ` that names no zone was silently UTC; it is still UTC (as in glibc
/// and systemd) but jobctl says so. `TZ=/dev/zero` and a huge TZif file
/// were read whole (about 1 GB before failing); now a zone file is read
/// only when it is a regular file, and never more than 1 MiB of it.
#[test]
fn an_unknown_tz_is_utc_with_a_warning_and_is_read_bounded() {
    let s = TestEnv::new();
    let huge = s.path().join("huge-zone");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len(4 << 30).unwrap(); // sparse: 4 GiB of zeros
    for (tz, why) in [
        (
            "Mars/Olympus",
            "/usr/share/zoneinfo/Mars/Olympus: no such file",
        ),
        ("/dev/zero", "/dev/zero: not a regular file"),
        (huge.to_str().unwrap(), "larger than 1 MiB"),
    ] {
        let out = jobctl_in_32_mib(&s, tz, &["calendar", "--base-time=@1767225600", "daily"]).run();
        assert!(out.status.success(), "TZ={tz}: {}", describe(&out));
        assert!(
            text(&out.stdout).contains("Next elapse: Fri 2026-01-02 00:00:00 UTC"),
            "TZ={tz}: {}",
            describe(&out)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("Warning: TZ=\"{tz}\" is not a time zone"))
                && stderr.contains(why)
                && stderr.contains("Hint: "),
            "TZ={tz}: {stderr}"
        );
    }
    // A zone that exists: no warning.
    let out = jobctl_in_32_mib(&s, "Asia/Tokyo", &["calendar", "daily"]).run();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        describe(&out)
    );
}

/// `--config /dev/zero`, a huge job file and an endless crontab on standard
/// input fail at once with an error naming the file, instead of reading
/// until memory runs out.
#[test]
fn files_jobctl_parses_are_read_bounded() {
    let s = TestEnv::new();
    // Refused at once (exit 1): `what` cannot be read, being too large.
    let too_large = |out: Run, what: &str| {
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(what) && stderr.contains("larger than 1 MiB"),
            "{stderr}"
        );
    };
    too_large(
        jobctl_in_32_mib(&s, "UTC", &["--config", "/dev/zero", "validate"]).run(),
        "cannot read the configuration /dev/zero",
    );

    let jobs = s.jobs_dir();
    let big = jobs.join("big.toml");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    s.write_job("fine", "command = [\"/bin/true\"]\ndaily = \"02:00\"\n");
    let out = jobctl_in_32_mib(
        &s,
        "UTC",
        &["--user", "--jobs-dir", jobs.to_str().unwrap(), "validate"],
    )
    .run();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: {}: the file is larger than 4 MiB",
            big.display()
        )),
        "{stderr}"
    );
    let out = jobctl_in_32_mib(&s, "UTC", &["validate", big.to_str().unwrap()]).run();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    let mut cmd = jobctl_in_32_mib(
        &s,
        "UTC",
        &["import", "crontab", "-", "--out", "imported", "--dry-run"],
    );
    cmd.stdin(std::fs::File::open("/dev/zero").unwrap());
    too_large(cmd.run(), "cannot read the crontab from standard input");
    let out = jobctl_in_32_mib(
        &s,
        "UTC",
        &[
            "import",
            "crontab",
            "/dev/zero",
            "--out",
            "imported",
            "--dry-run",
        ],
    )
    .run();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("cannot read the crontab /dev/zero"));
}
