//! Bounded work and quiet exits for any input: a reader that goes away, huge
//! or endless files, `--iterations` that would not fit in memory, and a `TZ`
//! that names nothing.

mod exec_support;

use std::process::{Command, Output};

use exec_support::*;

/// Runs `cmd` with its stdout a pipe whose reading end is already closed,
/// as in `jobctl … | head -0`: the first write fails with EPIPE.
fn with_closed_stdout(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer);
    cmd.output().unwrap()
}

/// Every `--json` command a reader can pipe into `head` exits 0 and says
/// nothing when the pipe closes, as the text mode does.
#[test]
fn json_on_a_closed_pipe_exits_quietly() {
    let s = Scratch::new();
    s.exec("alpha", &[], &["out", "hello"]);
    let jobs = s.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    std::fs::write(
        jobs.join("nightly.toml"),
        "command = [\"/bin/true\"]\ndaily = \"02:15\"\n",
    )
    .unwrap();
    let db = s.db.to_str().unwrap();
    let job = jobs.join("nightly.toml");
    let job = job.to_str().unwrap();
    let jobs = jobs.to_str().unwrap();
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
        let mut cmd = s.cmd();
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
