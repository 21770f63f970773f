//! Logs at fleet scale (issue 15): every run's journal entries carry the
//! `JOBCTL_*` fields, so Debian's `systemd-journal-upload` on a "client"
//! and `systemd-journal-remote` on a "server" carry them to a central
//! journal where `journalctl --directory … JOBCTL_JOB=… JOBCTL_STATUS=failed`
//! finds a failed run. Both ends run in the sandbox with the package's own
//! units, configured as docs/operations.md ("Logs of many hosts") says, on
//! 127.0.0.1 over HTTP: the sandbox's journal is the client's, and
//! journal-remote writes to its usual folder.

use super::*;

const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");
const REMOTE: &str = "/lib/systemd/systemd-journal-remote";
/// Where the shipped `systemd-journal-remote.service` writes.
const SERVER_DIR: &str = "/var/log/journal/remote";
const PORT: u16 = 19532;

/// The package's units configured as docs/operations.md shows, HTTP on
/// loopback instead of HTTPS: a drop-in for the server (socket and service)
/// and the client's `journal-upload.conf`.
fn setup(env: &Env) -> R {
    env.sh(&format!(
        "set -e
         mkdir -p /etc/systemd/system/systemd-journal-remote.socket.d \
                  /etc/systemd/system/systemd-journal-remote.service.d
         printf '[Socket]\\nListenStream=\\nListenStream=127.0.0.1:{PORT}\\n' \
           > /etc/systemd/system/systemd-journal-remote.socket.d/jobctl-e2e.conf
         printf '[Service]\\nExecStart=\\nExecStart={REMOTE} --listen-http=-3 --output={SERVER_DIR}/\\n' \
           > /etc/systemd/system/systemd-journal-remote.service.d/jobctl-e2e.conf
         printf '[Upload]\\nURL=http://127.0.0.1:{PORT}\\n' > /etc/systemd/journal-upload.conf
         systemctl daemon-reload
         systemctl start systemd-journal-remote.socket
         systemctl start systemd-journal-upload.service"
    ))?;
    Ok(())
}

/// Stops both ends and removes their configuration (the sandbox is shared
/// with later cases).
fn teardown(env: &Env) {
    let _ = env.sh(
        "systemctl stop systemd-journal-upload.service systemd-journal-remote.service \
           systemd-journal-remote.socket
         rm -rf /etc/systemd/system/systemd-journal-remote.socket.d \
                /etc/systemd/system/systemd-journal-remote.service.d
         printf '[Upload]\\n' > /etc/systemd/journal-upload.conf
         systemctl daemon-reload",
    );
}

/// The server's entries matching `matches`, as JSON objects.
fn remote_entries(env: &Env, matches: &str) -> Result<Vec<Value>, Failed> {
    Ok(env
        .sh(&format!(
            "journalctl --directory={SERVER_DIR} -o json {matches} 2>/dev/null || true"
        ))?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

pub fn a_failed_run_reaches_journal_remote_with_its_fields(env: &Env) -> R {
    if !env.sb_path(REMOTE).exists() {
        return Ok(jobctl_sandbox::skip(
            "systemd-journal-remote is not installed (scripts/setup installs it)",
        )?);
    }
    let result = (|| {
        setup(env)?;
        run_and_find(env)
    })();
    teardown(env);
    result
}

fn run_and_find(env: &Env) -> R {
    let dir = env.jobs_dir("journal-remote");
    let command = [FAKEJOB, "out", "shipping", "exit", "3"].map(|w| format!("{w:?}"));
    write_job(
        &dir,
        "shipped",
        &format!("command = [{}]\nmanual = true\n", command.join(", ")),
    );
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["run", "shipped", "--wait"]);
    check(out.status.code() == Some(3), || text(&out))?;
    let run = env
        .runs("shipped")?
        .into_iter()
        .next()
        .ok_or("no run recorded")?;
    let id = run["id"].as_str().unwrap_or_default().to_string();
    let invocation = run["invocation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // journal-upload follows the journal and sends new entries as they come:
    // wait for the failed run's end entry to be on the server.
    let mut failed = Value::Null;
    env.wait_for(
        "the failed run's entry on the journal-remote server",
        Duration::from_secs(30),
        || {
            failed = remote_entries(env, "JOBCTL_JOB=shipped JOBCTL_STATUS=failed")?
                .into_iter()
                .find(|e| e["JOBCTL_RUN_ID"] == id.as_str())
                .unwrap_or(Value::Null);
            Ok(!failed.is_null())
        },
    )
    .map_err(|e| {
        let status = env
            .sh(
                "systemctl status --no-pager systemd-journal-upload systemd-journal-remote 2>&1; \
                 ls -la /var/log/journal/remote 2>&1",
            )
            .unwrap_or_default();
        format!("{}\n{status}", e.message().unwrap_or_default())
    })?;
    let hostname = env.sh("hostname")?.trim().to_string();
    check(
        failed["JOBCTL_EXIT_CODE"] == "3"
            && failed["JOBCTL_TRIGGER"] == "manual"
            && failed["JOBCTL_DURATION_US"] == run["duration_us"].to_string().as_str()
            && failed["JOBCTL_USAGE_SOURCE"].is_string()
            && failed["PRIORITY"] == "5"
            && failed["SYSLOG_IDENTIFIER"] == "jobctl"
            && failed["JOBCTL_INVOCATION_ID"] == invocation.as_str()
            // journald's trusted fields travel too: which host, and which
            // unit and run when journald could still read the shim's cgroup
            // (the end entry is the shim's last act; docs/design.md, "Every
            // run in the journal"), never another unit's.
            && (failed["_SYSTEMD_UNIT"].is_null()
                || failed["_SYSTEMD_UNIT"] == "jobctl-shipped.service")
            && (failed["_SYSTEMD_INVOCATION_ID"].is_null()
                || failed["_SYSTEMD_INVOCATION_ID"] == invocation.as_str())
            && failed["_HOSTNAME"] == hostname.as_str(),
        || format!("{failed:#}\nrun: {run:#}"),
    )?;
    // The start entry, and nothing twice.
    let mut all = Vec::new();
    env.wait_for(
        "the run's start entry on the server",
        Duration::from_secs(30),
        || {
            all = remote_entries(env, &format!("JOBCTL_RUN_ID={id}"))?;
            Ok(all.iter().any(|e| e["JOBCTL_STATUS"] == "running"))
        },
    )?;
    check(all.len() == 2, || format!("{all:#?}"))?;
    // And the run's own output, by its invocation, as on the host itself.
    // journald takes the output (the service's stdout stream) and the end
    // entry (the shim's native message) on different sockets, so the line
    // may reach the server after the end entry: wait for it.
    let mut output = String::new();
    env.wait_for(
        "the run's output line on the server",
        Duration::from_secs(30),
        || {
            output = env.sh(&format!(
                "journalctl --directory={SERVER_DIR} -o cat _SYSTEMD_INVOCATION_ID={invocation}"
            ))?;
            Ok(output.lines().any(|l| l == "shipping"))
        },
    )
    .map_err(|e| format!("{}\n{output}", e.message().unwrap_or_default()))?;

    // `jobctl logs --journal-dir` on the central host: the run from its
    // end entry there, and its lines, with --failed, --run and --host.
    let short = &id[..8];
    for extra in [
        vec![],
        vec!["--failed"],
        vec!["--run", short],
        vec!["--host", hostname.as_str()],
    ] {
        let (out, stdout, stderr) = logs_in_server_dir(env, &dir, &extra);
        check(
            out.status.success()
                && stdout.lines().any(|l| l.ends_with(": shipping"))
                && stderr.contains(&format!(
                    "shipped on {hostname}: run {id}, failed (exit status 3); invocation {invocation}"
                )),
            || format!("{extra:?}: {}", text(&out)),
        )?;
    }
    // Another host's, or a run that is not there: said so, exit 1.
    for extra in [vec!["--host", "elsewhere"], vec!["--run", "00000000"]] {
        let mut args = vec!["logs", "shipped", "--journal-dir", SERVER_DIR];
        args.extend(extra.iter().copied());
        let out = env.jobctl_in(&dir, &args);
        check(
            out.status.code() == Some(1)
                && String::from_utf8_lossy(&out.stderr).contains("in the journal files of"),
            || format!("{extra:?}: {}", text(&out)),
        )?;
    }
    let out = env.jobctl_in(&dir, &["logs", "shipped", "--journal-dir", "/nonexistent"]);
    check(
        out.status.code() == Some(2)
            && String::from_utf8_lossy(&out.stderr)
                .contains("--journal-dir /nonexistent: not a folder"),
        || text(&out),
    )?;
    forged_end_entries(env, &dir, &failed, &hostname)
}

/// The user who forges end entries of `shipped` on the sending host.
const FORGER: &str = "jrforger";
/// `MESSAGE_ID=` of a run's end entry (crates/jobctl/journal.rs).
const RUN_ENDED_ID: &str = "aec38bfebe5945bab10eb9ca7ea3c720";
/// `MESSAGE_ID=` of a run's start entry.
const RUN_STARTED_ID: &str = "24aaa54b2b2f47e1950af29fb80e6056";

/// A regular user of the sending host writes end entries of `shipped`
/// with `logger --journald`, newer than its real run: outside any unit
/// (where a command the sandbox runs is, so journald records no unit, as
/// when the shim exits before journald reads its cgroup), one naming the
/// real run's invocation with a successful status, one naming it with the
/// real run's very result, and one naming an invocation of their own; and
/// one from a unit of their own manager. `logs --journal-dir` on the
/// central host must still report the real run (`id`, failed, exit status
/// 3) and never a forged one, and say it left entries out.
fn forged_end_entries(env: &Env, dir: &Path, real: &Value, hostname: &str) -> R {
    let id = real["JOBCTL_RUN_ID"].as_str().unwrap_or_default();
    let invocation = real["JOBCTL_INVOCATION_ID"].as_str().unwrap_or_default();
    let forger = super::userjournal::create_user(env, FORGER, "")?;
    let result = (|| {
        // sh SCRIPT RUN STATUS CODE INVOCATION
        let script = env.scratch.join("jr-forge.sh");
        fs::write(
            &script,
            format!(
                "printf 'MESSAGE=jobctl: run %s of job shipped ended: %s\\nMESSAGE_ID={RUN_ENDED_ID}\\n\
                 SYSLOG_IDENTIFIER=jobctl\\nPRIORITY=5\\nJOBCTL_JOB=shipped\\nJOBCTL_RUN_ID=%s\\n\
                 JOBCTL_STATUS=%s\\nJOBCTL_EXIT_CODE=%s\\nJOBCTL_TRIGGER=manual\\nJOBCTL_ATTEMPT=1\\n\
                 JOBCTL_INVOCATION_ID=%s\\n' \"$1\" \"$2\" \"$1\" \"$2\" \"$3\" \"$4\" | logger --journald\n"
            ),
        )?;
        let script = script.display();
        let claims_success = "f0f0f0f0f0f0f0f1";
        let claims_result = "f0f0f0f0f0f0f0f2";
        let own = "f0f0f0f0f0f0f0f3";
        let from_unit = "f0f0f0f0f0f0f0f4";
        let forgeries = [claims_success, claims_result, own, from_unit];
        let out = super::userjournal::as_user(
            env,
            &forger,
            &format!(
                "set -e
                 sh {script} {claims_success} success 0 {invocation}
                 sh {script} {claims_result} failed 3 {invocation}
                 sh {script} {own} failed 9 0123456789abcdef0123456789abcdef
                 systemd-run --user --quiet --wait /bin/sh {script} {from_unit} success 0 {invocation}"
            ),
        )?;
        check(out.status.success(), || text(&out))?;
        // All on the server, newer than the real run's end entry.
        let mut forged = Vec::new();
        env.wait_for(
            "the forged end entries on the journal-remote server",
            Duration::from_secs(30),
            || {
                forged = remote_entries(
                    env,
                    &format!("JOBCTL_JOB=shipped MESSAGE_ID={RUN_ENDED_ID}"),
                )?
                .into_iter()
                .filter(|e| forgeries.iter().any(|f| e["JOBCTL_RUN_ID"] == *f))
                .collect();
                Ok(forged.len() == forgeries.len())
            },
        )?;
        check(
            forged
                .iter()
                .all(|e| e["_UID"] == forger.uid.to_string().as_str()),
            || format!("{forged:#?}"),
        )?;
        // The manager's own result of the real run, which a forged entry
        // without a unit is checked against.
        env.wait_for(
            "PID 1's result of the real run on the server",
            Duration::from_secs(30),
            || {
                Ok(!remote_entries(
                    env,
                    &format!("_PID=1 INVOCATION_ID={invocation} EXIT_STATUS=3"),
                )?
                .is_empty())
            },
        )?;
        // What would confirm the real run's end entry had journald recorded
        // no unit for it (the matches `logs` asks for then): PID 1's lines
        // about the invocation, and the run's start entry, from the service
        // and the same process.
        let manager = remote_entries(
            env,
            &format!(
                "_PID=1 UNIT=jobctl-shipped.service INVOCATION_ID={invocation} _HOSTNAME={hostname}"
            ),
        )?;
        let start = remote_entries(
            env,
            &format!(
                "MESSAGE_ID={RUN_STARTED_ID} _SYSTEMD_UNIT=jobctl-shipped.service \
                 _SYSTEMD_INVOCATION_ID={invocation} JOBCTL_RUN_ID={id} _PID={} _BOOT_ID={} \
                 _HOSTNAME={hostname}",
                real["_PID"].as_str().unwrap_or_default(),
                real["_BOOT_ID"].as_str().unwrap_or_default(),
            ),
        )?;
        check(!manager.is_empty() && start.len() == 1, || {
            format!("manager: {manager:#?}\nstart: {start:#?}\nend: {real:#}")
        })?;
        let units: Vec<String> = forged
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e["JOBCTL_RUN_ID"].as_str().unwrap_or_default(),
                    e["_SYSTEMD_UNIT"].as_str().unwrap_or("(none)")
                )
            })
            .collect();
        for extra in [vec![], vec!["--failed"], vec!["--host", hostname]] {
            let (out, stdout, stderr) = logs_in_server_dir(env, dir, &extra);
            check(
                out.status.success()
                    && stdout.lines().any(|l| l.ends_with(": shipping"))
                    && stderr.contains(&format!(
                        "shipped on {hostname}: run {id}, failed (exit status 3); invocation {invocation}"
                    ))
                    && stderr.contains("left out")
                    && !forgeries.iter().any(|f| stderr.contains(f)),
                || {
                    format!(
                        "{extra:?} must report the real run {id}, not the forged ones \
                         (their _SYSTEMD_UNIT: {units:?}): {}",
                        text(&out)
                    )
                },
            )?;
        }
        // Asked for by its id, a forged run is not there.
        for forged in forgeries {
            let out = env.jobctl_in(
                dir,
                &[
                    "logs",
                    "shipped",
                    "--journal-dir",
                    SERVER_DIR,
                    "--run",
                    forged,
                ],
            );
            check(
                out.status.code() == Some(1)
                    && String::from_utf8_lossy(&out.stderr)
                        .contains(&format!("no run with id {forged}")),
                || format!("--run {forged} (units: {units:?}): {}", text(&out)),
            )?;
        }
        Ok(())
    })();
    super::userjournal::remove_user(env, &forger);
    result
}

/// `jobctl logs shipped --journal-dir SERVER_DIR EXTRA…` with the jobs of
/// `dir`: the output, its stdout and its stderr.
fn logs_in_server_dir(env: &Env, dir: &Path, extra: &[&str]) -> (Output, String, String) {
    let mut args = vec!["logs", "shipped", "--journal-dir", SERVER_DIR];
    args.extend(extra.iter().copied());
    let out = env.jobctl_in(dir, &args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}
