//! A system job's journal lines, as root reads them, are the job's alone.
//!
//! Any user can claim a system job's invocation id: journald takes a user
//! unit's `_SYSTEMD_INVOCATION_ID=` from `/run/user/UID/systemd/units/`, a
//! folder that user owns (a link to any id will do), and `INVOCATION_ID=`
//! (what the system manager's lines about a unit carry) is any sender's to
//! write. A regular user does both while the job runs; root's `jobctl logs
//! --journal`, `run --follow`, the `journalctl` hints `run` and `status`
//! print (pasted), jobctl-web's live tail of the running run and the
//! journal command on its run page must show the job's lines and none of
//! the user's. Only journald's trusted fields may select them: the job's
//! service (`_SYSTEMD_UNIT=`, from the cgroup) with the invocation, and the
//! manager's lines by `_PID=1` (the kernel's word).

use super::*;
use crate::userjournal::{Forgery, User, as_user, create_user, remove_user};
use crate::web::{SOCKET, get, install_units, stop_units};
use crate::web_live::{follow, journal_command_on, lines_in, wait_for_end, wait_for_line};

const JOB: &str = "sjtalk";
/// The user who claims the job's invocation.
const FORGER: &str = "sjforger";

pub fn a_users_forged_lines_never_show_as_a_system_jobs(env: &Env) -> R {
    let dir = env.jobs_dir("sysjournal");
    let gates = env.scratch.join("sysjournal-gates");
    let _ = fs::remove_dir_all(&gates);
    fs::create_dir_all(&gates)?;
    fs::set_permissions(&gates, fs::Permissions::from_mode(0o755))?;
    let script = gates.join("talk.sh");
    // Its first line, then (once the test creates `go`, at most 60 s) its
    // last one.
    fs::write(
        &script,
        format!(
            "echo sj-line-one\n\
             i=0; while [ ! -e {g}/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n\
             echo sj-line-two\n",
            g = gates.display()
        ),
    )?;
    write_job(
        &dir,
        JOB,
        &format!(
            "command = [\"/bin/sh\", {:?}]\nmanual = true\n",
            script.display().to_string()
        ),
    );
    let config = env.scratch.join("sysjournal-config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n[web]\n"))?;
    ok(&env.jobctl_with(&config, &dir, &["apply"]))?;
    install_units(env, &dir, &config, None)?;
    let mut forger = None;
    let result = (|| {
        let run_follow = env
            .sb
            .command(JOBCTL)
            .arg("--config")
            .arg(&config)
            .arg("--jobs-dir")
            .arg(&dir)
            .args(["run", JOB, "--follow"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let run = env.wait_for_run(JOB, Duration::from_secs(30), |r| r["status"] == "running")?;
        let id = run["id"].as_str().unwrap_or_default().to_string();
        let invocation = run["invocation_id"]
            .as_str()
            .ok_or("the run has no invocation id")?
            .to_string();
        forger = Some(claim_as_forger(env, &invocation)?);

        // jobctl-web's live tail, begun after the forged lines are there.
        let sse = env.scratch.join("sysjournal.sse");
        follow(
            env,
            "",
            &format!("--unix-socket {SOCKET} http://l/api/v1/jobs/{JOB}/runs/{id}/output/events"),
            &sse,
        )?;
        wait_for_line(
            env,
            &sse,
            "the job's first line on the live tail",
            "sj-line-one",
        )?;
        let running = env.jobctl_with(&config, &dir, &["status", JOB]);
        ok(&running)?;

        fs::write(gates.join("go"), "")?;
        wait_for_end(env, &sse)?;
        let tail: Vec<String> = lines_in(&sse)?
            .iter()
            .map(|l| l["text"].as_str().unwrap_or_default().to_string())
            .collect();
        // Every view is checked, and every failure reported.
        let mut failures: Vec<String> = Vec::new();
        let mut expect = |r: R| {
            if let Err(e) = r {
                failures.push(e.message().unwrap_or("failed").to_string());
            }
        };
        expect(check(tail == ["sj-line-one", "sj-line-two"], || {
            format!("the live tail must show the job's two lines alone: {tail:?}")
        }));

        let followed = run_follow.wait_with_output()?;
        let ended = env.jobctl_with(&config, &dir, &["status", JOB]);
        ok(&ended)?;
        let logs = env.jobctl_with(&config, &dir, &["logs", "--journal", JOB]);
        for (what, out) in [("run --follow", &followed), ("logs --journal", &logs)] {
            expect(check(out.status.success(), || {
                format!("{what}: {}", text(out))
            }));
            expect(shows_the_jobs_lines_alone(what, out));
        }

        // Each journalctl hint printed, pasted as root.
        let mut hints: Vec<String> = Vec::new();
        for out in [&followed, &running, &ended] {
            for hint in hints_in(&both(out)) {
                if hint.starts_with("journalctl ") && !hints.contains(&hint) {
                    hints.push(hint);
                }
            }
        }
        check(
            hints.iter().any(|h| h.contains(" -f ")) && hints.iter().any(|h| !h.contains(" -f ")),
            || {
                format!(
                    "run and status must print a journalctl hint, and one that follows: {hints:?}\n{}\n{}",
                    text(&followed),
                    text(&running)
                )
            },
        )?;
        // The run page's journal command is the CLI's.
        let (status, page) = get(env, &format!("/jobs/{JOB}/runs/{id}"))?;
        check(status == 200, || format!("run page: {status} {page}"))?;
        let on_page = journal_command_on(&page)?;
        expect(check(hints.contains(&on_page), || {
            format!("the run page's `{on_page}` is not the CLI's hint: {hints:?}")
        }));
        for hint in &hints {
            check(hint.contains(&invocation), || {
                format!("the hint `{hint}` does not name the run's invocation {invocation}")
            })?;
            // Following never ends: long enough to print what is there.
            let pasted = env
                .sb
                .command("/bin/sh")
                .arg("-c")
                .arg(format!("timeout 3 {hint} --no-pager"))
                .output()?;
            let code_ok = if hint.contains(" -f ") {
                pasted.status.code() == Some(124)
            } else {
                pasted.status.success()
            };
            expect(check(code_ok, || {
                format!("`{hint}` pasted: {}", text(&pasted))
            }));
            expect(shows_the_jobs_lines_alone(
                &format!("the hint `{hint}`, pasted"),
                &pasted,
            ));
        }
        check(failures.is_empty(), || failures.join("\n\n"))
    })();
    let _ = fs::write(gates.join("go"), "");
    if let Some(forger) = forger {
        let _ = env.sh(&format!("touch {}/stop", forger.home));
        remove_user(env, &forger);
    }
    stop_units(env)?;
    result
}

/// `out` shows the job's two lines, and no line the forger wrote.
fn shows_the_jobs_lines_alone(what: &str, out: &Output) -> R {
    let all = both(out);
    check(
        all.contains("sj-line-one") && all.contains("sj-line-two") && !all.contains("sj-forged"),
        || {
            format!(
                "{what} as root must show the job's lines and none of {FORGER}'s:\n{}",
                text(out)
            )
        },
    )
}

/// A regular user claims the running job's invocation from a unit of
/// their own manager named like the job's service: a link to the id in
/// their runtime folder (journald's `_SYSTEMD_INVOCATION_ID=` of their
/// unit's lines), and a line with `INVOCATION_ID=` and `UNIT=` (what the
/// system manager's lines about a unit carry) through `logger --journald`.
/// Waits (as root) until journald has both, so that their absence later
/// means something. Returns the user, to be removed when the case ends.
fn claim_as_forger(env: &Env, invocation: &str) -> Result<User, Failed> {
    let forger = create_user(env, FORGER, "")?;
    let unit = format!("jobctl-{JOB}.service");
    let stop = format!("{}/stop", forger.home);
    let forgery = Forgery::system("sj", &unit);
    let script = forgery.script(env, &stop)?;
    let result = (|| {
        let out = as_user(
            env,
            &forger,
            &format!(
                "systemd-run --user --quiet --unit={unit} /bin/sh {} {invocation}",
                script.display()
            ),
        )?;
        check(out.status.success(), || {
            format!("{FORGER}'s unit did not start: {}", text(&out))
        })?;
        forgery.claimed(env, forger.uid, invocation)
    })();
    match result {
        Ok(()) => Ok(forger),
        Err(e) => {
            remove_user(env, &forger);
            Err(e)
        }
    }
}
