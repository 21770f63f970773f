//! What a run cost and its journal entries, for the shim outside systemd
//! (issue 13): the figures come from wait4's rusage, every run sends a
//! start and an end entry to the journal socket, and a run started through
//! `OnSuccess=`/`OnFailure=` (systemd's `$MONITOR_*`) is recorded with
//! trigger `chain` and the upstream run. The same under a real systemd, with
//! the unit's cgroup: tests/systemd_e2e/knowing.rs.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::support::*;

const MIB: f64 = 1024.0 * 1024.0;

fn within(value: f64, expected: f64, tolerance: f64) -> bool {
    (value - expected).abs() <= expected * tolerance
}

#[test]
fn outside_systemd_the_cost_comes_from_rusage() {
    let s = TestEnv::new();
    let file = s.path().join("written");
    let out = s.exec(
        "cost",
        &[],
        &[
            "alloc",
            "200M",
            "write-file",
            file.to_str().unwrap(),
            "20M",
            "burn-cpu",
            "1000",
        ],
    );
    assert!(out.status.success(), "{}", out.describe());
    let runs = s.runs();
    let usage = &runs[0]["usage"];
    let figure = |name: &str| {
        usage[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {usage}")) as f64
    };
    let cpu = figure("cpu_user_us") + figure("cpu_system_us");
    // fakejob uses 1 s of CPU time in all (not of wall time: the machine's
    // load does not change it), its allocation and write included.
    assert!(within(cpu, 1e6, 0.2), "cpu {cpu} µs: {usage}");
    // 200 MiB touched, plus the program itself (a few MiB).
    let memory = figure("memory_peak_bytes");
    assert!(within(memory, 200.0 * MIB, 0.2), "memory {memory}: {usage}");
    // 20 MiB written and fsynced (block accounting: whole pages).
    let written = figure("written_bytes");
    assert!(
        within(written, 20.0 * MIB, 0.2),
        "written {written}: {usage}"
    );
    assert_eq!(
        usage["source"],
        serde_json::json!({"cpu": "rusage", "memory": "rusage", "io": "rusage"})
    );
    // history's table shows the CPU time and the peak.
    let table = s.read("history", &[]).stdout();
    assert_ends_with(
        &table,
        format!("  {:.2}s  {:.1} MiB\n", cpu / 1e6, memory / MIB),
    );
}

#[test]
fn a_run_that_starts_no_process_has_no_cost() {
    let s = TestEnv::new();
    let out = s
        .jobctl()
        .arg("exec")
        .arg("--db")
        .arg(s.db())
        .args(["--job", "missing", "--", "/nonexistent/program"])
        .run();
    assert_eq!(shell_status(out.status), 127, "{}", out.describe());
    let runs = s.runs();
    assert_eq!(runs[0]["status"], "error");
    assert!(runs[0]["usage"].is_null(), "{}", runs[0]);
    // A quick run has figures, small ones.
    s.exec("quick", &[], &["exit", "0"]).success();
    let runs = s.runs();
    assert!(runs[0]["usage"]["cpu_user_us"].as_u64().unwrap() < 500_000);
}

/// A journal stand-in: the socket the test's shims send to.
fn journal(s: &TestEnv) -> UnixDatagram {
    let socket = UnixDatagram::bind(s.journal_socket()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

/// The entries waiting on `socket`, each as its fields (the native
/// protocol: `NAME=value` lines, or a length-prefixed value).
fn entries(socket: &UnixDatagram) -> Vec<Vec<(String, String)>> {
    socket.set_nonblocking(true).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(n) = socket.recv(&mut buf) {
        let mut data = &buf[..n];
        let mut fields = Vec::new();
        while !data.is_empty() {
            let end = data.iter().position(|b| *b == b'\n').unwrap();
            let line = &data[..end];
            match line.iter().position(|b| *b == b'=') {
                Some(eq) => {
                    fields.push((text(&line[..eq]), text(&line[eq + 1..])));
                    data = &data[end + 1..];
                }
                None => {
                    let rest = &data[end + 1..];
                    let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                    fields.push((text(line), text(&rest[8..8 + len])));
                    data = &rest[9 + len..];
                }
            }
        }
        out.push(fields);
    }
    out
}

fn field<'a>(entry: &'a [(String, String)], name: &str) -> Option<&'a str> {
    entry
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_run_sends_a_start_and_an_end_entry_to_the_journal() {
    let s = TestEnv::new();
    let socket = journal(&s);
    let attempts = s.path().join("attempts");
    let out = s.exec(
        "flaky",
        &["--retry-attempts", "2"],
        &["fail-until", attempts.to_str().unwrap(), "3", "exit", "3"],
    );
    assert_eq!(shell_status(out.status), 1, "{}", out.describe());
    let got = entries(&socket);
    let runs = s.runs();
    assert_eq!(runs.len(), 2);
    // Two attempts, two runs: start, end, start, end, in that order.
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|e| {
            (
                field(e, "JOBCTL_STATUS").unwrap(),
                field(e, "JOBCTL_ATTEMPT").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("running", "1"),
            ("failed", "1"),
            ("running", "2"),
            ("failed", "2")
        ]
    );
    for (entry, run) in got.chunks(2).zip(runs.iter().rev()) {
        let (start, end) = (&entry[0], &entry[1]);
        let id = run["id"].as_str().unwrap();
        for e in [start, end] {
            assert_eq!(field(e, "JOBCTL_JOB"), Some("flaky"));
            assert_eq!(field(e, "JOBCTL_RUN_ID"), Some(id));
            assert_eq!(field(e, "JOBCTL_TRIGGER"), Some("shell"));
            assert_eq!(field(e, "SYSLOG_IDENTIFIER"), Some("jobctl"));
        }
        assert_eq!(
            field(start, "MESSAGE_ID"),
            Some("24aaa54b2b2f47e1950af29fb80e6056")
        );
        assert_eq!(
            field(end, "MESSAGE_ID"),
            Some("aec38bfebe5945bab10eb9ca7ea3c720")
        );
        assert_eq!(field(start, "PRIORITY"), Some("6"));
        assert_eq!(field(end, "PRIORITY"), Some("5"));
        assert_eq!(field(start, "JOBCTL_EXIT_CODE"), None);
        assert_eq!(field(end, "JOBCTL_EXIT_CODE"), Some("1"));
        assert_eq!(
            field(end, "JOBCTL_DURATION_US").map(str::to_string),
            run["duration_us"].as_i64().map(|d| d.to_string())
        );
        assert_eq!(field(end, "JOBCTL_USAGE_SOURCE"), Some("rusage"));
        assert_eq!(
            field(end, "JOBCTL_CPU_USER_US").map(str::to_string),
            run["usage"]["cpu_user_us"].as_u64().map(|v| v.to_string())
        );
        for name in [
            "JOBCTL_CPU_SYSTEM_US",
            "JOBCTL_MEMORY_PEAK_BYTES",
            "JOBCTL_READ_BYTES",
            "JOBCTL_WRITTEN_BYTES",
        ] {
            assert!(
                field(end, name).is_some_and(|v| v.parse::<u64>().is_ok()),
                "{name}"
            );
        }
        assert_contains(
            field(end, "MESSAGE").unwrap(),
            format!("run {id} of job flaky ended: failed (exit 1)"),
        );
    }

    // A success ends at priority 6; an expired job sends its end alone.
    s.exec("fine", &[], &["exit", "0"]).success();
    s.exec(
        "over",
        &["--not-after", "2000-01-01T00:00:00Z"],
        &["exit", "0"],
    )
    .success();
    let got = entries(&socket);
    let summary: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|e| {
            (
                field(e, "JOBCTL_JOB").unwrap(),
                field(e, "JOBCTL_STATUS").unwrap(),
                field(e, "PRIORITY").unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("fine", "running", "6"),
            ("fine", "success", "6"),
            ("over", "expired", "6")
        ]
    );
}

#[test]
fn no_journal_listening_changes_nothing_for_the_run() {
    // The default for every test: the socket does not exist.
    let s = TestEnv::new();
    let out = s.exec("alone", &[], &["out", "hello", "exit", "4"]);
    assert_eq!(shell_status(out.status), 4);
    assert_eq!(out.stdout(), "hello\n");
    assert_eq!(out.stderr(), "");
    assert_eq!(s.runs()[0]["status"], "failed");
}

const UP_INVOCATION: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn a_run_started_by_another_jobs_end_is_recorded_as_chain_with_its_upstream() {
    let s = TestEnv::new();
    // The upstream, as systemd runs it (an invocation id), failing.
    let out = s
        .exec_command("report", &[], &["exit", "3"])
        .env("INVOCATION_ID", UP_INVOCATION)
        .run();
    assert_eq!(shell_status(out.status), 3);
    let upstream_id = s.runs()[0]["id"].as_str().unwrap().to_string();
    // The downstream, started through the upstream's OnFailure=: systemd
    // tells it the upstream's invocation id and unit.
    let chained = |monitor: &str| {
        s.exec_command("cleanup", &[], &["exit", "0"])
            .env("INVOCATION_ID", "fedcba9876543210fedcba9876543210")
            .env("MONITOR_INVOCATION_ID", monitor)
            .env("MONITOR_UNIT", "jobctl-report.service")
            .env("MONITOR_SERVICE_RESULT", "exit-code")
            .run()
            .success();
        s.runs()[0].clone()
    };
    let run = chained(UP_INVOCATION);
    assert_eq!(run["trigger"], "chain");
    assert_eq!(
        run["upstream"],
        serde_json::json!({"invocation_id": UP_INVOCATION, "run_id": upstream_id})
    );
    // An upstream this database does not hold (another user's job): the
    // invocation id alone.
    let run = chained("99999999999999999999999999999999");
    assert_eq!(run["trigger"], "chain");
    assert_eq!(
        run["upstream"],
        serde_json::json!({"invocation_id": "99999999999999999999999999999999", "run_id": null})
    );
    // Anything but systemd's form is not kept (the run still counts as
    // chained: systemd started it through a dependency).
    let run = chained("$(reboot)");
    assert_eq!(
        (run["trigger"].as_str(), run["upstream"].is_null()),
        (Some("chain"), true)
    );
    // Outside systemd, $MONITOR_* mean nothing.
    let out = s
        .exec_command("cleanup", &[], &["exit", "0"])
        .env("MONITOR_INVOCATION_ID", UP_INVOCATION)
        .run();
    assert!(out.status.success());
    let run = &s.runs()[0];
    assert_eq!(
        (run["trigger"].as_str(), run["upstream"].is_null()),
        (Some("shell"), true)
    );
}
