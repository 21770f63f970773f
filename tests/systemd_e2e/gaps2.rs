//! A `lost` event delivered through a webhook channel end to end (issue 13's
//! events, until now seen lost only through a command channel).

use super::watch::{NOTIFY, detail, with_watch};
use super::*;

pub fn a_lost_run_gets_one_webhook_post_then_one_recovery(env: &Env) -> R {
    with_watch(env, lost_through_a_webhook)
}

/// The job's channel a webhook on loopback (fakehook, a service of its own).
/// A run started by systemd prints two lines and hangs; its whole cgroup is
/// then SIGKILLed (`systemctl kill --signal=SIGKILL`, what an operator or a
/// group OOM kill does: the shim dies with its command, no end is recorded).
/// The watch's passes (the shipped service, as its timer starts them) send
/// exactly one generic `lost` POST with every documented field, none on the
/// passes after it, and one `recovery` when the next run succeeds.
fn lost_through_a_webhook(env: &Env) -> R {
    const PORT: u16 = 18093;
    const UNIT: &str = "jobctl-g2-lost.service";
    let hook_dir =
        crate::watch::start_receiver(env, "jobctl-e2e-gaps2-hook", "gaps2-lost-receiver", PORT)?;
    let result = (|| {
        let case = env.watch_case(
            "gaps2-lost",
            NOTIFY,
            &format!("[notify.channels.hook]\nwebhook = \"http://127.0.0.1:{PORT}/lost?t=1\"\n"),
        )?;
        let hang = env.scratch.join("gaps2-lost-hang");
        std::fs::write(&hang, "")?;
        case.write_job(
            "g2-lost",
            &format!(
                "shell = \"echo preparing the dump; echo disk almost full >&2; \
                 if test -e {}; then exec /bin/sleep 300; fi\"\n\
                 manual = true\nnotify = [\"hook\"]\n",
                hang.display()
            ),
        );
        case.apply()?;
        let bodies = || crate::watch::posts(&hook_dir);
        let of = |event: &str| crate::watch::posts_of(&hook_dir, event);

        case.start_running("g2-lost")?;
        let invocation = kill_once_printed(
            env,
            "systemctl",
            UNIT,
            ["preparing the dump", "disk almost full"],
        )?;
        let runs = case.runs("g2-lost")?;
        check(runs.len() == 1 && runs[0]["status"] == "lost", || {
            format!("{runs:#?}")
        })?;
        let run = &runs[0];

        case.pass_until_post(&hook_dir, "lost")?;
        // Two more passes: still one POST in all.
        case.pass()?;
        case.pass()?;
        let all = bodies()?;
        check(all.len() == 1, || format!("{all:#?}"))?;
        // The envelope and every field of the generic payload.
        let host = crate::watch::check_generic_post(env, &all[0], "/lost?t=1", "lost", "g2-lost")?;
        let (post, body) = &all[0];
        let event_id = body["event_id"].as_str().unwrap_or_default();
        check(
            body["status"] == "lost"
                // No end was recorded: no exit status, signal, end or duration.
                && body["exit_code"].is_null()
                && body["signal"].is_null()
                && body["signal_name"].is_null()
                && body["ended"].is_null()
                && body["duration_ms"].is_null()
                && body["run_id"] == run["id"]
                && body["invocation_id"] == invocation.as_str()
                && body["started"] == run["started"]
                && body["failure_streak"] == 1
                && body["summary"].as_str().is_some_and(|s| {
                    s.starts_with(&format!("g2-lost LOST on {host} ")) && s.contains("shim died")
                })
                && body["journal_hint"].as_str()
                    == Some(
                        format!(
                            "journalctl _SYSTEMD_UNIT={UNIT} \
                             _SYSTEMD_INVOCATION_ID={invocation} + _PID=1 INVOCATION_ID={invocation}"
                        )
                        .as_str()
                    )
                && detail(&body["details"], "trigger") == "manual"
                && detail(&body["details"], "logs").as_str().is_some_and(|l| {
                    l == format!("jobctl logs g2-lost --run {}", run["id"].as_str().unwrap_or("?"))
                })
                && body["sent_at"].is_string(),
            || format!("{post:#?}\n{body:#}\nrun {run:#}\ninvocation {invocation:?} host {host:?}"),
        )?;
        // The output's tail, as documented for `failure` and `lost`: what the
        // run printed before its shim died, both streams.
        check(
            body["output_tail"].as_str().is_some_and(|t| {
                t.lines().collect::<Vec<_>>() == ["preparing the dump", "disk almost full"]
            }),
            || format!("output_tail: {}", body["output_tail"]),
        )?;
        // The queue agrees: one lost delivery, sent, by the same id.
        let out = case.jobctl(&["notifications", "g2-lost", "--json", "-n", "0"]);
        ok(&out)?;
        let queued: Value = serde_json::from_slice(&out.stdout)?;
        let queued = queued["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        check(
            queued.len() == 1
                && queued[0]["event"] == "lost"
                && queued[0]["state"] == "sent"
                && queued[0]["event_id"] == event_id,
            || format!("{queued:#?}"),
        )?;

        // The next run succeeds: one recovery (woken by its shim's poke or
        // a pass), and still one lost.
        std::fs::remove_file(&hang)?;
        let out = case.jobctl(&["run", "g2-lost", "--wait"]);
        check(out.status.code() == Some(0), || text(&out))?;
        case.pass_until_post(&hook_dir, "recovery")?;
        case.pass()?;
        let recovery = of("recovery")?;
        let lost = of("lost")?;
        check(
            recovery.len() == 1
                && lost.len() == 1
                && bodies()?.len() == 2
                && recovery[0].1["job"] == "g2-lost"
                && recovery[0].1["status"] == "success"
                && detail(&recovery[0].1["details"], "recovers") == "lost"
                && recovery[0].1["event_id"] != lost[0].1["event_id"]
                && recovery[0].0.header("idempotency-key") == recovery[0].1["event_id"].as_str(),
            || format!("{:#?}", bodies()),
        )
    })();
    let _ = env.sh("systemctl stop jobctl-g2-lost.service jobctl-e2e-gaps2-hook.service");
    result
}

/// Once the run of `unit` (managed by `systemctl`, the system's or a
/// user's) has printed `lines` and they are in the journal (the shim
/// forwards each piece at once: the run's only copy once the shim is gone),
/// SIGKILLs the unit's whole cgroup, as an operator or a group OOM kill
/// does, and waits for the unit to fail. Returns the run's invocation id.
fn kill_once_printed(
    env: &Env,
    systemctl: &str,
    unit: &str,
    lines: [&str; 2],
) -> Result<String, Failed> {
    let show = |prop: &str| -> Result<String, Failed> {
        Ok(env
            .sh(&format!("{systemctl} show -P {prop} {unit}"))?
            .trim()
            .to_string())
    };
    let invocation = show("InvocationID")?;
    env.wait_for(
        "the run's lines in the journal",
        Duration::from_secs(10),
        || {
            let printed = env.sh(&format!(
                "journalctl -o cat _SYSTEMD_INVOCATION_ID={invocation}"
            ))?;
            Ok(lines.iter().all(|l| printed.contains(l)))
        },
    )?;
    env.sh(&format!("{systemctl} kill --signal=SIGKILL {unit}"))?;
    env.wait_for("the service to fail", Duration::from_secs(10), || {
        Ok(show("ActiveState")? == "failed")
    })?;
    Ok(invocation)
}

pub fn a_users_lost_run_carries_its_output_from_the_journal(env: &Env) -> R {
    with_watch(env, users_lost_run)
}

/// The same in per-user mode (root's user manager, whose entries journald
/// keeps in the system's journal file, not a user file): the user's watch
/// finds the lost run's lines by its invocation, its user unit and its uid.
fn users_lost_run(env: &Env) -> R {
    const PORT: u16 = 18094;
    const USER: &str = "XDG_RUNTIME_DIR=/run/user/0 systemctl --user";
    const UNIT: &str = "jobctl-g2-mine.service";
    env.sb.start_user_manager().map_err(|e| e.to_string())?;
    let hook_dir =
        crate::watch::start_receiver(env, "jobctl-e2e-gaps2-uhook", "gaps2-user-receiver", PORT)?;
    let result = (|| {
        let case = env.watch_case_for(
            "gaps2-user-lost",
            NOTIFY,
            &format!("[notify.channels.hook]\nwebhook = \"http://127.0.0.1:{PORT}/mine\"\n"),
            true,
        )?;
        case.write_job(
            "g2-mine",
            "shell = \"echo my step one; echo my step two >&2; exec /bin/sleep 300\"\n\
             manual = true\nnotify = [\"hook\"]\n",
        );
        case.apply()?;
        case.start_running("g2-mine")?;
        let invocation = kill_once_printed(env, USER, UNIT, ["my step one", "my step two"])?;
        case.pass_until_post(&hook_dir, "lost")?;
        let lost = crate::watch::posts_of(&hook_dir, "lost")?;
        check(lost.len() == 1, || format!("{lost:#?}"))?;
        crate::watch::check_generic_post(env, &lost[0], "/mine", "lost", "g2-mine")?;
        let body = &lost[0].1;
        check(
            body["status"] == "lost"
                && body["invocation_id"] == invocation.as_str()
                && body["journal_hint"].as_str()
                    == Some(
                        format!(
                            "journalctl _UID=0 _SYSTEMD_USER_UNIT={UNIT} \
                             _SYSTEMD_INVOCATION_ID={invocation} + _UID=0 USER_INVOCATION_ID={invocation}"
                        )
                        .as_str(),
                    )
                && body["output_tail"].as_str().is_some_and(|t| {
                    t.lines().collect::<Vec<_>>() == ["my step one", "my step two"]
                }),
            || format!("{body:#}\ninvocation {invocation:?}"),
        )
    })();
    let _ = env.sh(&format!(
        "{USER} stop {UNIT}; systemctl stop jobctl-e2e-gaps2-uhook.service"
    ));
    result
}
