//! The shim's journal entries.
//!
//! Every run: one entry when it starts and one when it ends ([`run_started`],
//! [`run_ended`]), each one datagram of journald's native protocol, with
//! `JOBCTL_JOB`, `JOBCTL_RUN_ID`, `JOBCTL_STATUS`, `JOBCTL_TRIGGER`,
//! `JOBCTL_ATTEMPT` (and at the end `JOBCTL_EXIT_CODE`, `JOBCTL_SIGNAL`,
//! `JOBCTL_DURATION_US` and the usage figures), so `journalctl
//! JOBCTL_JOB=backup JOBCTL_STATUS=failed` finds every failed run even where
//! the history is gone (docs/operations.md, "Runs in the journal").
//!
//! The shim's warnings when bookkeeping fails: a structured journal entry
//! (tracing-journald) that carries the whole run record, so nothing is lost
//! when the history database cannot be written; a structured line on stderr
//! when no journal answers (a container, a bare machine, a test).
//!
//! Journal fields: `JOBCTL_JOB`, `JOBCTL_RUN_ID`, `JOBCTL_STATUS`,
//! `JOBCTL_EXIT_CODE`, `JOBCTL_SIGNAL`, `JOBCTL_TRIGGER`, `JOBCTL_ATTEMPT`,
//! `JOBCTL_INVOCATION_ID`, `JOBCTL_STARTED`, `JOBCTL_ENDED`,
//! `JOBCTL_DURATION_US`, `JOBCTL_OUTPUT_BYTES`, `JOBCTL_RUN_ERROR`,
//! `JOBCTL_DB`, `JOBCTL_DB_ERROR`, plus `MESSAGE`.
//!
//! `health` and `status` read these warnings back ([`unrecorded_runs`]): a
//! job whose newest warning is newer than its newest recorded run has a
//! history that is not being kept (`history-unwritable`).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use jobctl_core::context::Mode;
use jobctl_core::health::UnrecordedRun;

use jobctl_history::RunRecord;

use crate::env;
use crate::view::format::{json_time, signal_name};

/// Where warnings go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Journal,
    Stderr,
    Auto,
}

fn target() -> Target {
    match env::var_os(env::WARNINGS)
        .as_deref()
        .and_then(|v| v.to_str())
    {
        Some("journal") => Target::Journal,
        Some("stderr") => Target::Stderr,
        _ => Target::Auto,
    }
}

/// Warns that `record` could not be stored in the database at `db` because
/// of `db_error`.
pub fn run_not_recorded(record: &RunRecord, db: &Path, db_error: &str) {
    let message = format!(
        "jobctl exec: warning: run {} of job {} was not recorded in the history: {db_error}",
        record.id, record.job
    );
    warn(message, &fields(record, db, db_error));
}

/// Warns that `record` was stored in the database at `db` without its
/// captured output, because of `reason` (the run's result is in the history;
/// its output is only in the journal, as the command wrote it).
pub fn output_not_stored(record: &RunRecord, db: &Path, reason: &str) {
    let message = format!(
        "jobctl exec: warning: the output of run {} of job {} ({} bytes) was not stored in the history: {reason}",
        record.id, record.job, record.output_bytes
    );
    warn(message, &fields(record, db, reason));
}

/// Sends one warning to the journal, or as a logfmt line to stderr.
fn warn(message: String, fields: &[(&'static str, String)]) {
    if target() != Target::Stderr && to_journal(&message, fields) {
        return;
    }
    let mut line = message;
    for (key, value) in fields {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        line.push_str(&logfmt_value(value));
    }
    line.push('\n');
    let _ = std::io::stderr().write_all(line.as_bytes());
}

fn fields(r: &RunRecord, db: &Path, db_error: &str) -> Vec<(&'static str, String)> {
    let mut f = vec![
        ("JOBCTL_JOB", r.job.clone()),
        ("JOBCTL_RUN_ID", r.id.to_string()),
        ("JOBCTL_STATUS", r.status.to_string()),
        ("JOBCTL_TRIGGER", r.trigger.to_string()),
        ("JOBCTL_ATTEMPT", r.attempt.to_string()),
        ("JOBCTL_STARTED", json_time(r.started_us)),
    ];
    if let Some(end) = r.ended_us {
        f.push(("JOBCTL_ENDED", json_time(end)));
        f.push(("JOBCTL_DURATION_US", (end - r.started_us).to_string()));
    }
    if let Some(code) = r.exit_code {
        f.push(("JOBCTL_EXIT_CODE", code.to_string()));
    }
    if let Some(sig) = r.signal {
        f.push(("JOBCTL_SIGNAL", signal_name(sig)));
    }
    if let Some(id) = &r.invocation_id {
        f.push(("JOBCTL_INVOCATION_ID", id.clone()));
    }
    if let Some(pid) = r.pid {
        f.push(("JOBCTL_PID", pid.to_string()));
    }
    f.push(("JOBCTL_HOST", r.host.clone()));
    f.push(("JOBCTL_USER", r.user.clone()));
    f.push(("JOBCTL_OUTPUT_BYTES", r.output_bytes.to_string()));
    if let Some(error) = &r.error {
        f.push(("JOBCTL_RUN_ERROR", error.clone()));
    }
    f.push(("JOBCTL_DB", db.display().to_string()));
    f.push(("JOBCTL_DB_ERROR", db_error.to_string()));
    f
}

/// `MESSAGE_ID=` of a run's start entry (`journalctl MESSAGE_ID=…`).
pub const RUN_STARTED_ID: &str = "24aaa54b2b2f47e1950af29fb80e6056";
/// `MESSAGE_ID=` of a run's end entry.
pub const RUN_ENDED_ID: &str = "aec38bfebe5945bab10eb9ca7ea3c720";

/// journald's socket for the native protocol.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Longest a run entry may wait for journald's socket (its queue full):
/// the entry is dropped after that rather than hold the job up.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

thread_local! {
    /// The shim's socket to journald, opened at the first entry: `None`
    /// inside when it could not be.
    static RUN_SOCKET: std::cell::OnceCell<Option<std::os::unix::net::UnixDatagram>> =
        const { std::cell::OnceCell::new() };
}

/// The journal entry of a run's start (status `running`).
pub fn run_started(r: &RunRecord) {
    let mut message = format!(
        "jobctl: run {} of job {} started ({}",
        r.id, r.job, r.trigger
    );
    if r.attempt > 1 {
        message.push_str(&format!(", attempt {}", r.attempt));
    }
    if let Some(up) = &r.upstream {
        match up.run_id {
            Some(id) => message.push_str(&format!(" from run {id}")),
            None => message.push_str(&format!(" from invocation {}", up.invocation_id)),
        }
    }
    message.push(')');
    send_run_entry(&run_entry(r, &message, RUN_STARTED_ID, b'6'));
}

/// The journal entry of a run's end: its status, exit, duration and what it
/// cost.
pub fn run_ended(r: &RunRecord) {
    let mut message = format!("jobctl: run {} of job {} ended: {}", r.id, r.job, r.status);
    if let Some(code) = r.exit_code.filter(|c| *c != 0) {
        message.push_str(&format!(" (exit {code})"));
    } else if let Some(sig) = r.signal {
        message.push_str(&format!(" ({})", signal_name(sig)));
    }
    if let Some(us) = r.duration_us() {
        message.push_str(&format!(" after {}", crate::view::format::duration(us)));
    }
    if let Some(u) = &r.usage {
        message.push_str(&format!(
            "; CPU {}, peak memory {}",
            crate::view::format::cpu_time(u.cpu_us()),
            crate::view::format::bytes(u.memory_peak_bytes)
        ));
    }
    // Failures a notch above the rest (systemd logs a failed service's
    // "Main process exited" at notice too); never warning (4), the priority
    // `unrecorded_runs` reads.
    let priority = if r.status.is_failure() { b'5' } else { b'6' };
    send_run_entry(&run_entry(r, &message, RUN_ENDED_ID, priority));
}

/// The datagram of a run entry: `MESSAGE`, `MESSAGE_ID`, `PRIORITY`,
/// `SYSLOG_IDENTIFIER=jobctl` and the run's `JOBCTL_*` fields.
fn run_entry(r: &RunRecord, message: &str, message_id: &str, priority: u8) -> Vec<u8> {
    let mut buf = Vec::with_capacity(512 + message.len());
    put_field(&mut buf, "MESSAGE", message.as_bytes());
    put_field(&mut buf, "MESSAGE_ID", message_id.as_bytes());
    put_field(&mut buf, "PRIORITY", &[priority]);
    put_field(&mut buf, "SYSLOG_IDENTIFIER", b"jobctl");
    put_field(&mut buf, "JOBCTL_JOB", r.job.as_bytes());
    put_field(&mut buf, "JOBCTL_RUN_ID", r.id.to_string().as_bytes());
    put_field(&mut buf, "JOBCTL_STATUS", r.status.as_str().as_bytes());
    put_field(&mut buf, "JOBCTL_TRIGGER", r.trigger.as_str().as_bytes());
    put_field(&mut buf, "JOBCTL_ATTEMPT", r.attempt.to_string().as_bytes());
    // The invocation in the entry's own words too: journald's trusted
    // `_SYSTEMD_INVOCATION_ID` is missing when the shim has exited before
    // journald reads its cgroup (docs/design.md, "Every run in the journal").
    if let Some(id) = &r.invocation_id {
        put_field(&mut buf, "JOBCTL_INVOCATION_ID", id.as_bytes());
    }
    if let Some(up) = &r.upstream {
        put_field(
            &mut buf,
            "JOBCTL_UPSTREAM_INVOCATION_ID",
            up.invocation_id.as_bytes(),
        );
        if let Some(id) = up.run_id {
            put_field(
                &mut buf,
                "JOBCTL_UPSTREAM_RUN_ID",
                id.to_string().as_bytes(),
            );
        }
    }
    if r.status.is_final() {
        if let Some(code) = r.exit_code {
            put_field(&mut buf, "JOBCTL_EXIT_CODE", code.to_string().as_bytes());
        }
        if let Some(sig) = r.signal {
            put_field(&mut buf, "JOBCTL_SIGNAL", signal_name(sig).as_bytes());
        }
        if let Some(us) = r.duration_us() {
            put_field(&mut buf, "JOBCTL_DURATION_US", us.to_string().as_bytes());
        }
        if let Some(error) = &r.error {
            put_field(&mut buf, "JOBCTL_RUN_ERROR", error.as_bytes());
        }
        if let Some(u) = &r.usage {
            for (key, value) in [
                ("JOBCTL_CPU_USER_US", u.cpu_user_us),
                ("JOBCTL_CPU_SYSTEM_US", u.cpu_system_us),
                ("JOBCTL_MEMORY_PEAK_BYTES", u.memory_peak_bytes),
                ("JOBCTL_READ_BYTES", u.read_bytes),
                ("JOBCTL_WRITTEN_BYTES", u.written_bytes),
            ] {
                put_field(&mut buf, key, value.to_string().as_bytes());
            }
            put_field(
                &mut buf,
                "JOBCTL_USAGE_SOURCE",
                u.source.to_text().as_bytes(),
            );
        }
    }
    buf
}

/// One field of the native protocol: `NAME=value\n`, or, for a value with
/// a line break, `NAME\n`, its length as 64-bit little endian, the value
/// and `\n` (<https://systemd.io/JOURNAL_NATIVE_PROTOCOL/>).
fn put_field(buf: &mut Vec<u8>, name: &str, value: &[u8]) {
    buf.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// Sends a run entry as one datagram, best effort: no journal (a container,
/// a bare host), a full queue past [`SEND_TIMEOUT`] or an entry too big for
/// one datagram (never, at these sizes) loses the entry, never the run.
fn send_run_entry(datagram: &[u8]) {
    RUN_SOCKET.with(|cell| {
        let socket = cell.get_or_init(|| {
            let socket = std::os::unix::net::UnixDatagram::unbound().ok()?;
            let _ = socket.set_write_timeout(Some(SEND_TIMEOUT));
            Some(socket)
        });
        if let Some(socket) = socket {
            let path = env::var_os(env::JOURNAL_SOCKET);
            let path = path
                .as_deref()
                .unwrap_or_else(|| std::ffi::OsStr::new(JOURNAL_SOCKET));
            let _ = socket.send_to(datagram, path);
        }
    });
}

/// Sends one entry through the native journal protocol; false when no
/// journal answers.
fn to_journal(message: &str, fields: &[(&'static str, String)]) -> bool {
    use tracing_subscriber::layer::SubscriberExt;
    let Ok(layer) = tracing_journald::layer() else {
        return false;
    };
    let layer = layer
        .with_field_prefix(None)
        .with_syslog_identifier("jobctl".to_string());
    let subscriber = tracing_subscriber::registry().with(layer);
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    tracing::subscriber::with_default(subscriber, || {
        tracing::warn!(
            jobctl_job = get("JOBCTL_JOB"),
            jobctl_run_id = get("JOBCTL_RUN_ID"),
            jobctl_status = get("JOBCTL_STATUS"),
            jobctl_trigger = get("JOBCTL_TRIGGER"),
            jobctl_attempt = get("JOBCTL_ATTEMPT"),
            jobctl_started = get("JOBCTL_STARTED"),
            jobctl_ended = get("JOBCTL_ENDED"),
            jobctl_duration_us = get("JOBCTL_DURATION_US"),
            jobctl_exit_code = get("JOBCTL_EXIT_CODE"),
            jobctl_signal = get("JOBCTL_SIGNAL"),
            jobctl_invocation_id = get("JOBCTL_INVOCATION_ID"),
            jobctl_pid = get("JOBCTL_PID"),
            jobctl_host = get("JOBCTL_HOST"),
            jobctl_user = get("JOBCTL_USER"),
            jobctl_output_bytes = get("JOBCTL_OUTPUT_BYTES"),
            jobctl_run_error = get("JOBCTL_RUN_ERROR"),
            jobctl_db = get("JOBCTL_DB"),
            jobctl_db_error = get("JOBCTL_DB_ERROR"),
            "{message}"
        );
    });
    true
}

/// How many of jobctl's newest journal warnings [`unrecorded_runs`] reads.
const UNRECORDED_WINDOW: usize = 1000;

/// The newest warning of each job's shim that it could not record a run,
/// from the journal (the window is the newest [`UNRECORDED_WINDOW`] of
/// jobctl's entries). Who may speak for a job is decided on what the kernel
/// and journald vouch for, never on what the entry says of itself:
/// - `by_unit`: unit name → (the job the warning names, the run), from
///   journald's trusted `_SYSTEMD_UNIT=` (`_SYSTEMD_USER_UNIT=` in per-user
///   mode): a job can only speak for its own unit.
/// - `by_uid`: (the sender's `_UID=`, the job it names) → the run, for
///   entries journald could not place in a unit: it reads the sender's
///   cgroup when it processes the message, and a shim that has exited by
///   then leaves no unit. `_UID=` comes from the socket's credentials, so a
///   user can speak only for jobs that run as that user.
///
/// Per-user mode reads only this user's entries. Empty when the journal
/// cannot be read (no `journalctl`, or no permission to read other users'
/// entries).
#[derive(Debug, Default)]
pub struct Unrecorded {
    pub by_unit: HashMap<String, (String, UnrecordedRun)>,
    pub by_uid: HashMap<(u32, String), UnrecordedRun>,
}

impl Unrecorded {
    /// The newest unrecorded run of `job`, whose service is `service` and
    /// whose runs have the uid `uid` (`None` where it cannot be known, e.g.
    /// a dynamic user that is not running): the unit's entry when journald
    /// placed one, else the newest entry by that uid naming the job.
    pub fn take(&mut self, job: &str, service: &str, uid: Option<u32>) -> Option<UnrecordedRun> {
        let by_unit = self
            .by_unit
            .remove(service)
            .filter(|(named, _)| named == job)
            .map(|(_, run)| run);
        let by_uid = uid.and_then(|uid| self.by_uid.remove(&(uid, job.to_string())));
        match (by_unit, by_uid) {
            (Some(a), Some(b)) => Some(if b.at_us > a.at_us { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

pub fn unrecorded_runs(mode: Mode) -> Unrecorded {
    let mut cmd = Command::new("journalctl");
    cmd.args([
        "--no-pager",
        "--quiet",
        "--output=json",
        "--reverse",
        "--output-fields=JOBCTL_JOB,JOBCTL_RUN_ID,JOBCTL_STATUS,JOBCTL_DB,JOBCTL_DB_ERROR,\
         _SYSTEMD_UNIT,_SYSTEMD_USER_UNIT,_UID",
    ])
    .arg(format!("--lines={UNRECORDED_WINDOW}"))
    // The warnings only (tracing's WARN is priority 4): every run's start
    // and end entries carry the same identifier at 5 and 6.
    .arg("SYSLOG_IDENTIFIER=jobctl")
    .arg("PRIORITY=4");
    if mode == Mode::User {
        cmd.arg(format!("_UID={}", nix::unistd::geteuid()));
    }
    let Ok(output) = cmd.stdin(Stdio::null()).stderr(Stdio::null()).output() else {
        return Unrecorded::default();
    };
    parse_unrecorded(&output.stdout, mode)
}

/// See [`unrecorded_runs`]: `journalctl -o json` lines, newest first.
fn parse_unrecorded(json_lines: &[u8], mode: Mode) -> Unrecorded {
    let unit_field = match mode {
        Mode::System => "_SYSTEMD_UNIT",
        Mode::User => "_SYSTEMD_USER_UNIT",
    };
    let mut out = Unrecorded::default();
    for line in json_lines.split(|b| *b == b'\n') {
        let Ok(entry) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let field = |name: &str| entry[name].as_str().map(str::to_string);
        let (Some(job), Some(id), Some(at_us)) = (
            field("JOBCTL_JOB"),
            field("JOBCTL_RUN_ID"),
            field("__REALTIME_TIMESTAMP").and_then(|t| t.parse::<i64>().ok()),
        ) else {
            continue;
        };
        let run = || UnrecordedRun {
            id: id.clone(),
            at_us,
            status: field("JOBCTL_STATUS").unwrap_or_else(|| "unknown".into()),
            db: field("JOBCTL_DB").unwrap_or_default(),
            error: field("JOBCTL_DB_ERROR").unwrap_or_default(),
        };
        // Newest first: the first entry of a key is its newest.
        match field(unit_field) {
            Some(unit) => {
                out.by_unit.entry(unit).or_insert_with(|| (job, run()));
            }
            // In system mode, an entry placed in a user's manager's unit is
            // not one of the system's services: only entries with no unit
            // at all are judged by their uid.
            None if mode == Mode::User || field("_SYSTEMD_USER_UNIT").is_none() => {
                if let Some(uid) = field("_UID").and_then(|u| u.parse::<u32>().ok()) {
                    out.by_uid.entry((uid, job)).or_insert_with(run);
                }
            }
            None => {}
        }
    }
    out
}

/// The last `lines` lines a run's command printed, as the journal has them
/// (its standard output and error reach the journal through the service's
/// stream, `_TRANSPORT=stdout`): the only copy of a lost run's output, whose
/// shim died before storing it. Matched on journald's trusted fields alone,
/// the run's invocation id and the job's service
/// ([`jobctl_core::journal::RunMatch`], its own lines): a process outside
/// the service, whatever its cgroup's extended attributes say, cannot add
/// lines. Lines joined with `\n`; `None` when the id is not one
/// systemd made, or nothing can be read.
pub fn invocation_output(
    mode: Mode,
    service: &str,
    invocation: &str,
    lines: usize,
) -> Option<Vec<u8>> {
    if invocation.len() != 32 || !invocation.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let run = jobctl_core::journal::RunMatch::new(
        mode,
        nix::unistd::geteuid().as_raw(),
        service,
        invocation,
    );
    let mut cmd = Command::new("journalctl");
    cmd.args([
        "--no-pager",
        "--quiet",
        "--all",
        "--output=json",
        "--output-fields=MESSAGE",
    ])
    .arg(format!("--lines={lines}"))
    .args(run.own_args())
    .arg("_TRANSPORT=stdout");
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    parse_messages(&output.stdout)
}

/// See [`invocation_output`]: the `MESSAGE` of each `journalctl -o json`
/// line (a string, or an array of bytes when it is not UTF-8), oldest
/// first, joined with `\n`; `None` when there is none.
fn parse_messages(json_lines: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for line in json_lines.split(|b| *b == b'\n') {
        let Ok(entry) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let message: Vec<u8> = match &entry["MESSAGE"] {
            serde_json::Value::String(text) => text.as_bytes().to_vec(),
            serde_json::Value::Array(bytes) => bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect(),
            _ => continue,
        };
        let out = out.get_or_insert_with(Vec::new);
        out.extend_from_slice(&message);
        out.push(b'\n');
    }
    out
}

/// A logfmt value: bare when it has no spaces, quotes or `=`, else quoted
/// with `"` and `\` escaped and control characters written as escapes.
fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=' && c != '\\');
    if bare {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a native-protocol datagram back into (name, value) pairs.
    fn fields_of(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let line_end = data.iter().position(|b| *b == b'\n').unwrap();
            let line = &data[..line_end];
            if let Some(eq) = line.iter().position(|b| *b == b'=') {
                out.push((
                    String::from_utf8(line[..eq].to_vec()).unwrap(),
                    line[eq + 1..].to_vec(),
                ));
                data = &data[line_end + 1..];
            } else {
                let name = String::from_utf8(line.to_vec()).unwrap();
                let rest = &data[line_end + 1..];
                let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                out.push((name, rest[8..8 + len].to_vec()));
                assert_eq!(rest[8 + len], b'\n');
                data = &rest[9 + len..];
            }
        }
        out
    }

    #[test]
    fn run_entries_are_native_protocol_fields() {
        use jobctl_history::testing::run;
        use jobctl_history::{RunId, Source, Status, Trigger, Upstream, Usage, UsageSource};
        let mut r = RunRecord {
            trigger: Trigger::Chain,
            attempt: 2,
            upstream: Some(Upstream {
                invocation_id: "00112233445566778899aabbccddeeff".into(),
                run_id: Some(RunId::from_i64(0x99)),
            }),
            ..run(
                RunId::from_i64(0x1234),
                "backup",
                1_000_000,
                Status::Running,
            )
        };
        let start = fields_of(&run_entry(&r, "started", RUN_STARTED_ID, b'6'));
        let names: Vec<&str> = start.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "MESSAGE",
                "MESSAGE_ID",
                "PRIORITY",
                "SYSLOG_IDENTIFIER",
                "JOBCTL_JOB",
                "JOBCTL_RUN_ID",
                "JOBCTL_STATUS",
                "JOBCTL_TRIGGER",
                "JOBCTL_ATTEMPT",
                "JOBCTL_UPSTREAM_INVOCATION_ID",
                "JOBCTL_UPSTREAM_RUN_ID"
            ]
        );
        r.status = Status::Failed;
        r.ended_us = Some(3_500_000);
        r.exit_code = Some(3);
        r.error = Some("two\nlines".into());
        r.usage = Some(Usage {
            cpu_user_us: 1_000_000,
            cpu_system_us: 5,
            memory_peak_bytes: 200 << 20,
            read_bytes: 0,
            written_bytes: 4096,
            source: UsageSource {
                cpu: Source::Cgroup,
                memory: Source::Rusage,
                io: Source::Rusage,
            },
        });
        let end = fields_of(&run_entry(&r, "ended", RUN_ENDED_ID, b'5'));
        let get = |name: &str| {
            end.iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
                .unwrap_or_else(|| panic!("no {name}"))
        };
        assert_eq!(get("JOBCTL_STATUS"), "failed");
        assert_eq!(get("JOBCTL_EXIT_CODE"), "3");
        assert_eq!(get("JOBCTL_DURATION_US"), "2500000");
        assert_eq!(get("JOBCTL_RUN_ID"), "0000000000001234");
        assert_eq!(get("JOBCTL_TRIGGER"), "chain");
        assert_eq!(get("JOBCTL_CPU_USER_US"), "1000000");
        assert_eq!(get("JOBCTL_MEMORY_PEAK_BYTES"), "209715200");
        assert_eq!(get("JOBCTL_WRITTEN_BYTES"), "4096");
        assert_eq!(
            get("JOBCTL_USAGE_SOURCE"),
            "cpu:cgroup,memory:rusage,io:rusage"
        );
        // A value with a line break goes length-prefixed, whole.
        assert_eq!(get("JOBCTL_RUN_ERROR"), "two\nlines");
        assert_eq!(get("PRIORITY"), "5");
    }

    #[test]
    fn unrecorded_runs_are_read_per_unit_newest_first() {
        let lines = br#"{"__REALTIME_TIMESTAMP":"300","_SYSTEMD_UNIT":"jobctl-a.service","JOBCTL_JOB":"a","JOBCTL_RUN_ID":"0000000000000003","JOBCTL_STATUS":"success","JOBCTL_DB":"/var/lib/jobctl/history.db","JOBCTL_DB_ERROR":"readonly"}
{"__REALTIME_TIMESTAMP":"200","_SYSTEMD_UNIT":"jobctl-a.service","JOBCTL_JOB":"a","JOBCTL_RUN_ID":"0000000000000002"}
{"__REALTIME_TIMESTAMP":"100","_SYSTEMD_USER_UNIT":"jobctl-b.service","JOBCTL_JOB":"b","JOBCTL_RUN_ID":"0000000000000001"}
{"__REALTIME_TIMESTAMP":"100","JOBCTL_JOB":"c","JOBCTL_RUN_ID":"0000000000000004"}
not json
"#;
        let system = parse_unrecorded(lines, Mode::System).by_unit;
        assert_eq!(system.len(), 1, "{system:?}");
        let (job, run) = &system["jobctl-a.service"];
        assert_eq!(job, "a");
        assert_eq!(
            (
                run.id.as_str(),
                run.at_us,
                run.status.as_str(),
                run.error.as_str()
            ),
            ("0000000000000003", 300, "success", "readonly")
        );
        let user = parse_unrecorded(lines, Mode::User).by_unit;
        assert_eq!(user.keys().collect::<Vec<_>>(), ["jobctl-b.service"]);
    }

    #[test]
    fn a_runs_journal_lines_are_its_messages_in_order_bytes_included() {
        let lines = br#"{"MESSAGE":"preparing the dump","__CURSOR":"a"}
{"MESSAGE":[100,105,115,107,32,255]}
{"MESSAGE":null}
not json
{"MESSAGE":""}
"#;
        assert_eq!(
            parse_messages(lines).as_deref(),
            Some(&b"preparing the dump\ndisk \xff\n\n"[..])
        );
        assert_eq!(parse_messages(b""), None);
        assert_eq!(parse_messages(b"{\"MESSAGE\":null}\n"), None);
        // Not an id systemd made: nothing is asked of the journal.
        assert_eq!(
            invocation_output(Mode::System, "jobctl-a.service", "+", 20),
            None
        );
    }

    /// journald leaves out the unit of an entry whose sender exited before
    /// it was processed: the kernel's uid still says who sent it, and a job
    /// is matched only with entries of the uid it runs as.
    #[test]
    fn entries_without_a_unit_are_judged_by_their_uid() {
        let lines = br#"{"__REALTIME_TIMESTAMP":"500","_UID":"0","JOBCTL_JOB":"root-job","JOBCTL_RUN_ID":"0000000000000005"}
{"__REALTIME_TIMESTAMP":"400","_UID":"1000","JOBCTL_JOB":"root-job","JOBCTL_RUN_ID":"0000000000000006"}
{"__REALTIME_TIMESTAMP":"300","_UID":"1000","JOBCTL_JOB":"alice-job","JOBCTL_RUN_ID":"0000000000000007"}
{"__REALTIME_TIMESTAMP":"200","_UID":"0","_SYSTEMD_UNIT":"jobctl-root-job.service","JOBCTL_JOB":"root-job","JOBCTL_RUN_ID":"0000000000000008"}
{"__REALTIME_TIMESTAMP":"100","_UID":"0","_SYSTEMD_USER_UNIT":"jobctl-root-job.service","JOBCTL_JOB":"root-job","JOBCTL_RUN_ID":"0000000000000009"}
"#;
        let mut system = parse_unrecorded(lines, Mode::System);
        // The unit's own entry (200) is older than the unit-less one by
        // root (500): the newer wins.
        let run = system.take("root-job", "jobctl-root-job.service", Some(0));
        assert_eq!(run.map(|r| r.id), Some("0000000000000005".into()));
        // uid 1000 cannot speak for a job that runs as root …
        assert!(
            system
                .take("root-job", "jobctl-root-job.service", Some(0))
                .is_none()
        );
        // … only for its own.
        let run = system.take("alice-job", "jobctl-alice-job.service", Some(1000));
        assert_eq!(run.map(|r| r.id), Some("0000000000000007".into()));
        // Without a known uid, only the unit counts.
        let mut system = parse_unrecorded(lines, Mode::System);
        let run = system.take("alice-job", "jobctl-alice-job.service", None);
        assert!(run.is_none());
    }

    #[test]
    fn logfmt_quotes_only_when_needed() {
        assert_eq!(logfmt_value("nightly"), "nightly");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("disk full"), "\"disk full\"");
        assert_eq!(logfmt_value("a\"b\nc"), "\"a\\\"b\\nc\"");
    }
}
