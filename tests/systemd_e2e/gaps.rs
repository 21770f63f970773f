//! Paths of resolved issues that no case went through end to end:
//! `jobctl.core.jobs` with a `src` item (issue 14), and an `overdue` event
//! delivered through a webhook channel (issue 13).

use std::collections::BTreeMap;

use serde_json::json;

use super::ansible::{FileState, changed_tasks, collection, files_of, playbook, prediction, task};
use super::watch::{NOTIFY, detail, with_watch};
use super::*;

/// The src item's job file, as written on the controller (`files/`).
const SRC_NAME: &str = "gaps-src.toml";

/// A `jobs` list with an item given by `src` (read on the controller by the
/// action plugin) next to one given by `definition`: the first run changes
/// and applies both (units installed, `jobctl list` shows them), the second
/// changes nothing, and check mode after the src file was edited predicts
/// `update` for that job alone and writes nothing; the real run then does
/// what check mode said.
pub fn a_jobs_list_with_a_src_item_converges_and_check_mode_predicts_its_edit(env: &Env) -> R {
    let Some(c) = collection()? else {
        return Ok(());
    };
    let dir = env.jobs_dir("gaps-ansible");
    let src = c.dir.join("files").join(SRC_NAME);
    let v1 = "# From the controller (src:).\ncommand = [\"/bin/true\", \"gaps-src\"]\ndaily = \"04:00\"\n";
    let v2 = v1.replace("04:00", "04:30");
    fs::write(&src, v1)?;
    let vars = json!({
        "jobctl_binary": JOBCTL,
        "jobctl_config": env.config,
        "jobs_dir": dir,
        "src_name": SRC_NAME,
    });

    let unit_dir = PathBuf::from(UNIT_DIR);
    let watched = [dir.as_path(), unit_dir.as_path()];
    let changed_files = |before: &BTreeMap<PathBuf, FileState>,
                         after: &BTreeMap<PathBuf, FileState>| {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        format!("check mode changed files: {changed:?}")
    };
    let of = |played: &Value, job: &str| -> Result<Value, Failed> {
        let result = &task(played, "mixed")?["result"];
        result["results"]
            .as_array()
            .and_then(|r| r.iter().find(|j| j["name"] == job))
            .cloned()
            .ok_or_else(|| format!("no {job} in {result:#}").into())
    };

    // Check mode on a host without the jobs: both created, nothing written.
    let before = files_of(env, &watched)?;
    let checked = playbook(env, c, "src_items.yml", &vars, &["--check"])?;
    let after = files_of(env, &watched)?;
    check(before == after, || changed_files(&before, &after))?;
    check(
        of(&checked, "gaps-src")?["change"] == "create"
            && of(&checked, "gaps-def")?["change"] == "create"
            && !dir.join("gaps-src.toml").exists()
            && !env.unit_path("jobctl-gaps-src.timer").exists(),
        || format!("check mode of a new src item: {checked:#}"),
    )?;

    // First run: changed, both jobs written and applied.
    let first = playbook(env, c, "src_items.yml", &vars, &[])?;
    check(changed_tasks(&first) == ["mixed"], || {
        format!("first run: {first:#}")
    })?;
    check(fs::read_to_string(dir.join("gaps-src.toml"))? == v1, || {
        "the src file was not installed as the job file, byte for byte".into()
    })?;
    for job in ["gaps-src", "gaps-def"] {
        for unit in [
            format!("jobctl-{job}.service"),
            format!("jobctl-{job}.timer"),
        ] {
            check(env.unit_path(&unit).exists(), || {
                format!("{unit} was not installed: {first:#}")
            })?;
        }
        env.expect_prop(&format!("jobctl-{job}.timer"), "ActiveState", "active", job)?;
    }
    check(
        env.prop("jobctl-gaps-src.timer", "TimersCalendar")?
            .contains("04:00:00"),
        || {
            env.prop("jobctl-gaps-src.timer", "TimersCalendar")
                .unwrap_or_default()
        },
    )?;
    let out = env.jobctl_in(&dir, &["list", "--json"]);
    ok(&out)?;
    let list: Value = serde_json::from_slice(&out.stdout)?;
    let mut listed: Vec<&str> = list["jobs"]
        .as_array()
        .map(|jobs| jobs.iter().filter_map(|j| j["job"].as_str()).collect())
        .unwrap_or_default();
    listed.sort_unstable();
    check(listed == ["gaps-def", "gaps-src"], || format!("{list:#}"))?;

    // Second run: nothing changes.
    let second = playbook(env, c, "src_items.yml", &vars, &[])?;
    check(
        changed_tasks(&second).is_empty() && second["stats"]["localhost"]["changed"] == 0,
        || format!("second run: {second:#}"),
    )?;

    // The src file is edited on the controller; check mode predicts the
    // update and writes nothing.
    fs::write(&src, &v2)?;
    let before = files_of(env, &watched)?;
    let checked = playbook(env, c, "src_items.yml", &vars, &["--check", "--diff"])?;
    let after = files_of(env, &watched)?;
    check(before == after, || changed_files(&before, &after))?;
    let mixed = &task(&checked, "mixed")?["result"];
    let src_plan = of(&checked, "gaps-src")?;
    let def_plan = of(&checked, "gaps-def")?;
    // Diff mode shows the src job's file and its timer, old and new.
    let job_file = dir.join("gaps-src.toml");
    let diffs = mixed["diff"].as_array().cloned().unwrap_or_default();
    let diff_of = |header: &str| diffs.iter().find(|d| d["before_header"] == header);
    check(
        mixed["changed"] == true
            && mixed["changed_jobs"] == json!(["gaps-src"])
            && src_plan["changed"] == true
            && src_plan["change"] == "update"
            && src_plan["units_written"] == json!(["jobctl-gaps-src.timer"])
            && def_plan["changed"] == false
            && def_plan["change"] == "unchanged"
            && diff_of(job_file.to_str().unwrap())
                .is_some_and(|d| d["before"] == v1 && d["after"] == v2.as_str())
            && diff_of("jobctl-gaps-src.timer").is_some_and(|d| {
                d["before"]
                    .as_str()
                    .is_some_and(|t| t.contains("OnCalendar=*-*-* 04:00:00"))
                    && d["after"]
                        .as_str()
                        .is_some_and(|t| t.contains("OnCalendar=*-*-* 04:30:00"))
            }),
        || format!("check mode: {mixed:#}"),
    )?;
    check(
        env.prop("jobctl-gaps-src.timer", "TimersCalendar")?
            .contains("04:00:00"),
        || "check mode changed the running timer".into(),
    )?;

    // The real run does what check mode said.
    let real = playbook(env, c, "src_items.yml", &vars, &[])?;
    let done = prediction(&task(&real, "mixed")?["result"]);
    let planned = prediction(mixed);
    check(
        done == planned && fs::read_to_string(&job_file)? == v2,
        || format!("real run: {done:#}\nplanned: {planned:#}"),
    )?;
    env.wait_for("the updated timer", Duration::from_secs(10), || {
        Ok(env
            .prop("jobctl-gaps-src.timer", "TimersCalendar")?
            .contains("04:30:00"))
    })
}

/// A src file that is not UTF-8 text: the task fails with a message naming
/// the job, the file, the line and the byte, and nothing is written or
/// applied (the same as a src that cannot be read), in check mode and for
/// real.
pub fn a_src_item_that_is_not_utf8_fails_clearly_and_changes_nothing(env: &Env) -> R {
    let Some(c) = collection()? else {
        return Ok(());
    };
    let dir = env.jobs_dir("gaps-ansible-latin1");
    let name = "gaps-latin1.toml";
    // Latin-1 "café" on line 3.
    fs::write(
        c.dir.join("files").join(name),
        b"command = [\"/bin/true\"]\nmanual = true\n# caf\xe9\n",
    )?;
    let vars = json!({
        "jobctl_binary": JOBCTL,
        "jobctl_config": env.config,
        "jobs_dir": dir,
        "src_name": name,
    });
    let unit_dir = PathBuf::from(UNIT_DIR);
    let watched = [dir.as_path(), unit_dir.as_path()];
    for args in [&["--check"][..], &[][..]] {
        let before = files_of(env, &watched)?;
        let err = match playbook(env, c, "src_items.yml", &vars, args) {
            Ok(played) => {
                return Err(format!("{args:?}: a non-UTF-8 src passed: {played:#}").into());
            }
            Err(e) => e.message().unwrap_or_default().to_string(),
        };
        let after = files_of(env, &watched)?;
        check(before == after, || format!("{args:?} changed files"))?;
        // The record callback's JSON is in the error: the task's message.
        let json_start = err.find('{').unwrap_or(0);
        let played: Value = serde_json::Deserializer::from_str(&err[json_start..])
            .into_iter()
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| format!("no JSON in {err}"))?;
        let msg = task(&played, "mixed")?["result"]["msg"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        check(
            msg.starts_with("jobs[0] (gaps-src): src gaps-latin1.toml")
                && msg.contains(&format!("files/{name}"))
                && msg.contains("not UTF-8 text")
                && msg.contains("line 3")
                && msg.contains("0xe9")
                && msg.contains("save it as UTF-8"),
            || format!("{args:?}: {msg}"),
        )?;
    }
    check(!env.unit_path("jobctl-gaps-def.timer").exists(), || {
        "the other job was applied".into()
    })
}

pub fn an_overdue_job_gets_one_webhook_post(env: &Env) -> R {
    with_watch(env, overdue_through_a_webhook)
}

/// A timer stopped behind jobctl's back, the job's channel a webhook on
/// loopback (fakehook, a service of its own): the watch's passes (`jobctl
/// watch --once` through the shipped service) send exactly one `overdue`
/// POST with the generic payload's fields, none on the passes after it, and
/// one `recovery` when the timer runs again.
fn overdue_through_a_webhook(env: &Env) -> R {
    const PORT: u16 = 18082;
    let hook_dir =
        crate::watch::start_receiver(env, "jobctl-e2e-gaps-hook", "gaps-overdue-receiver", PORT)?;
    let result = (|| {
        let case = env.watch_case(
            "gaps-overdue",
            NOTIFY,
            &format!("[notify.channels.hook]\nwebhook = \"http://127.0.0.1:{PORT}/overdue\"\n"),
        )?;
        case.write_job(
            "g-late",
            "command = [\"/bin/true\"]\nevery = \"2s\"\ngrace = \"2s\"\nnotify = [\"hook\"]\n",
        );
        case.apply()?;
        let bodies = || crate::watch::posts(&hook_dir);
        let of = |event: &str| crate::watch::posts_of(&hook_dir, event);
        env.wait_for("a run of g-late", Duration::from_secs(20), || {
            Ok(!case.runs("g-late")?.is_empty())
        })?;
        // The watch has seen the schedule.
        case.pass()?;
        env.sh("systemctl stop jobctl-g-late.timer")?;
        // Passes, as the watch's timer would start them, until the POST.
        case.pass_until_post(&hook_dir, "overdue")?;
        // Two more passes: still one.
        case.pass()?;
        case.pass()?;
        let overdue = of("overdue")?;
        check(overdue.len() == 1, || format!("{overdue:#?}"))?;
        // Every field of the generic payload (docs/notifications.md).
        let host =
            crate::watch::check_generic_post(env, &overdue[0], "/overdue", "overdue", "g-late")?;
        let (post, body) = &overdue[0];
        check(
            body["status"].is_null()
                && body["run_id"].is_null()
                && body["exit_code"].is_null()
                && body["invocation_id"].is_null()
                && body["sent_at"].is_string()
                && body["summary"].as_str().is_some_and(|s| {
                    s.starts_with(&format!("g-late OVERDUE on {host}"))
                        && s.contains("no run started")
                })
                && detail(&body["details"], "expected start").is_string()
                && detail(&body["details"], "grace") == "2s",
            || format!("{post:#?}\n{body:#}\nhost {host:?}"),
        )?;
        // Sent once the expected start, the leeway (1 s) and the grace had
        // passed (`sent_at` is to the second).
        let time = |v: &Value| -> Result<jiff::Timestamp, Failed> {
            let s = v.as_str().ok_or_else(|| format!("not a time: {v}"))?;
            Ok(s.parse().map_err(|e| format!("{s}: {e}"))?)
        };
        let expected = time(detail(&body["details"], "expected start"))?;
        let sent = time(&body["sent_at"])?;
        check(
            sent + jiff::SignedDuration::from_secs(1)
                >= expected + jiff::SignedDuration::from_secs(3),
            || format!("sent before it was due: {body:#}"),
        )?;
        // The queue agrees: one overdue delivery, sent.
        let out = case.jobctl(&["notifications", "g-late", "--json", "-n", "0"]);
        ok(&out)?;
        let queued: Value = serde_json::from_slice(&out.stdout)?;
        let queued: Vec<&Value> = queued["notifications"]
            .as_array()
            .map(|n| n.iter().filter(|n| n["event"] == "overdue").collect())
            .unwrap_or_default();
        check(queued.len() == 1 && queued[0]["state"] == "sent", || {
            format!("{queued:#?}")
        })?;
        // The timer runs again: one recovery, and still one overdue.
        env.sh("systemctl start jobctl-g-late.timer")?;
        case.pass_until_post(&hook_dir, "recovery")?;
        env.sh("systemctl stop jobctl-g-late.timer")?;
        let recovery = of("recovery")?;
        check(
            recovery.len() == 1
                && detail(&recovery[0].1["details"], "recovers") == "overdue"
                && of("overdue")?.len() == 1,
            || format!("{:#?}", bodies()),
        )
    })();
    let _ = env.sh("systemctl stop jobctl-g-late.timer jobctl-e2e-gaps-hook.service");
    result
}
