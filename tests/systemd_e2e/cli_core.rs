//! The operator's CLI and config management against a real systemd (issue
//! 14): one invalid job file no longer blocks every other job's apply,
//! another jobs folder's jobs are never pruned, `apply --check --job`
//! predicts exactly what the apply of that content then does, named jobs
//! are applied alone, `edit --apply`, labels, a fresh host's missing folder.

use std::os::unix::fs::PermissionsExt as _;

use super::*;

/// `apply --json` in `dir` with `args`: its exit status and report.
fn apply_json(env: &Env, dir: &Path, args: &[&str]) -> Result<(Option<i32>, Value), Failed> {
    let mut all = vec!["apply", "--json"];
    all.extend_from_slice(args);
    let out = env.jobctl_in(dir, &all);
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("apply {args:?}: not one JSON object ({e}): {}", text(&out)))?;
    Ok((out.status.code(), report))
}

/// The installed units' text and the timer's activation, to compare.
fn snapshot_of(env: &Env, job: &str) -> Result<(String, String, String), Failed> {
    let read = |unit: &str| fs::read_to_string(env.unit_path(unit)).unwrap_or_default();
    Ok((
        read(&format!("jobctl-{job}.service")),
        read(&format!("jobctl-{job}.timer")),
        env.prop(
            &format!("jobctl-{job}.timer"),
            "ActiveEnterTimestampMonotonic",
        )?,
    ))
}

/// A typo in one team's job file: the others' changes are applied, the
/// broken job's units stay exactly as installed (timer not restarted), the
/// report, the exit status (6) and `health` name it; `--strict` changes
/// nothing and says why in one JSON object.
pub fn invalid_jobs_are_skipped_and_their_units_left_alone(env: &Env) -> R {
    let dir = env.jobs_dir("isolation");
    write_job(&dir, "team-a", DAILY);
    write_job(&dir, "team-b", DAILY);
    env.apply(&dir)?;
    let before = snapshot_of(env, "team-b")?;
    check(!before.0.is_empty() && before.2 != "0", || {
        format!("{before:?}")
    })?;

    write_job(
        &dir,
        "team-a",
        "command = [\"/bin/true\"]\ndaily = \"04:00\"\n",
    );
    write_job(&dir, "team-b", &format!("{DAILY}comand = 1\n"));
    // --strict: all or nothing, as before.
    let (code, report) = apply_json(env, &dir, &["--strict"])?;
    check(
        code == Some(2)
            && report["error"] == "1 error in the job files; nothing was changed"
            && report["diagnostics"][0]["key"] == "comand"
            && report["diagnostics"][0]["line"] == 3,
        || format!("{code:?} {report:#}"),
    )?;
    check(
        fs::read_to_string(env.unit_path("jobctl-team-a.timer"))?.contains("03:00"),
        || "--strict changed team-a".into(),
    )?;

    // Default: team-a applied, team-b skipped and left alone.
    let (code, report) = apply_json(env, &dir, &[])?;
    check(code == Some(6), || format!("{code:?} {report:#}"))?;
    let b = job_plan(&report, "team-b")?;
    check(
        b["change"] == "invalid" && b["writes"] == serde_json::json!([]),
        || format!("{b:#}"),
    )?;
    check(report["summary"]["invalid"] == 1, || format!("{report:#}"))?;
    check(
        job_plan(&report, "team-a")?["change"] == "update"
            && fs::read_to_string(env.unit_path("jobctl-team-a.timer"))?.contains("04:00"),
        || format!("{report:#}"),
    )?;
    check(snapshot_of(env, "team-b")? == before, || {
        "team-b's units or timer changed".into()
    })?;
    env.expect_prop(
        "jobctl-team-b.timer",
        "ActiveState",
        "active",
        "team-b's timer",
    )?;
    let out = env.jobctl_in(&dir, &["apply"]);
    let all = both(&out);
    check(
        out.status.code() == Some(6)
            && all.contains("team-b.toml:3:1: `comand`: unknown key")
            && all.contains("skipped 1 invalid job (team-b)"),
        || text(&out),
    )?;
    // health names it.
    let out = env.jobctl_in(&dir, &["health", "--json"]);
    let health: Value = serde_json::from_slice(&out.stdout)?;
    let b = health["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["job"] == "team-b"))
        .ok_or("team-b not in health")?;
    check(
        out.status.code() == Some(1) && b["problems"][0]["kind"] == "invalid",
        || format!("{health:#}"),
    )?;

    // Its file gone while another is broken: removed as usual.
    fs::remove_file(dir.join("team-a.toml"))?;
    let (code, report) = apply_json(env, &dir, &[])?;
    check(
        code == Some(6) && job_plan(&report, "team-a")?["change"] == "remove",
        || format!("{code:?} {report:#}"),
    )?;
    // Fixed: applied, exit 0.
    write_job(&dir, "team-b", DAILY);
    let (code, report) = apply_json(env, &dir, &[])?;
    check(code == Some(0), || format!("{code:?} {report:#}"))
}

/// `jobctl --jobs-dir OTHER apply` used to delete the units of every job of
/// the default folder; now it prunes only its own folder's, says which it
/// left alone, and `--prune-all` removes them on purpose.
pub fn an_apply_of_another_folder_leaves_other_jobs_alone(env: &Env) -> R {
    let main = env.jobs_dir("main-folder");
    write_job(&main, "etl-load", DAILY);
    write_job(&main, "etl-extract", DAILY);
    env.apply(&main)?;
    let other = env.jobs_dir("other-folder");
    write_job(&other, "scratch", DAILY);
    let (code, report) = apply_json(env, &other, &[])?;
    check(code == Some(0), || format!("{code:?} {report:#}"))?;
    let left: Vec<&str> = report["left_alone"]
        .as_array()
        .map(|l| l.iter().filter_map(|j| j["job"].as_str()).collect())
        .unwrap_or_default();
    check(left == ["etl-extract", "etl-load"], || {
        format!("{report:#}")
    })?;
    check(
        report["summary"]["remove"] == 0
            && env.unit_path("jobctl-etl-load.service").exists()
            && env.unit_path("jobctl-etl-extract.timer").exists(),
        || format!("the other folder's units were touched: {report:#}"),
    )?;
    env.expect_prop(
        "jobctl-etl-load.timer",
        "ActiveState",
        "active",
        "etl-load's timer",
    )?;
    let out = env.jobctl_in(&other, &["apply"]);
    check(
        out.status.success()
            && both(&out).contains("left alone: 2 jobs installed from other jobs folders"),
        || text(&out),
    )?;
    // The main folder's own apply: nothing to change; the other folder's job
    // is left alone in turn.
    let (code, report) = apply_json(env, &main, &[])?;
    check(
        code == Some(0)
            && report["changed"] == false
            && report["left_alone"][0]["job"] == "scratch",
        || format!("{code:?} {report:#}"),
    )?;
    // --prune-all: every job not in this folder goes.
    let (code, report) = apply_json(env, &other, &["--prune-all"])?;
    check(
        code == Some(0)
            && report["summary"]["remove"] == 2
            && !env.unit_path("jobctl-etl-load.service").exists(),
        || format!("{code:?} {report:#}"),
    )
}

/// Config management's check mode: the content a play is about to write
/// (staged anywhere, under any name) planned as the job it will be, exactly
/// as the apply of that content then goes; a named job applied alone;
/// `--absent` for removals.
pub fn check_mode_plans_given_content_exactly(env: &Env) -> R {
    let dir = env.jobs_dir("given");
    write_job(&dir, "nightly", DAILY);
    write_job(&dir, "other", DAILY);
    env.apply(&dir)?;
    let stage = env.jobs_dir("given-stage");
    let staged = stage.join(".source.toml");
    let new = "command = [\"/bin/true\"]\ndaily = \"05:00\"\n";
    fs::write(&staged, new)?;
    let given = format!("nightly={}", staged.display());

    // `validate --name` as `template validate=` would call it.
    let out = env.jobctl_in(
        &dir,
        &["validate", "--name", "nightly", staged.to_str().unwrap()],
    );
    ok(&out)?;
    // The plan, with diffs of each unit before and after.
    let (code, predicted) = apply_json(
        env,
        &dir,
        &["--check", "--diff", "nightly", "--job", &given],
    )?;
    check(code == Some(3), || format!("{code:?} {predicted:#}"))?;
    let timer_diff = predicted["diffs"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["unit"] == "jobctl-nightly.timer"))
        .ok_or("no diff of the timer")?;
    check(
        timer_diff["before"]
            .as_str()
            .is_some_and(|t| t.contains("03:00"))
            && timer_diff["after"]
                .as_str()
                .is_some_and(|t| t.contains("05:00")),
        || format!("{timer_diff:#}"),
    )?;
    check(
        predicted["jobs"].as_array().map(Vec::len) == Some(1),
        || format!("only the named job is planned: {predicted:#}"),
    )?;
    // Nothing was written.
    check(
        fs::read_to_string(env.unit_path("jobctl-nightly.timer"))?.contains("03:00"),
        || "--check wrote".into(),
    )?;

    // The play writes the file; the apply does what was predicted.
    fs::copy(&staged, dir.join("nightly.toml"))?;
    write_job(
        &dir,
        "other",
        "command = [\"/bin/true\"]\ndaily = \"06:00\"\n",
    );
    let (code, done) = apply_json(env, &dir, &["nightly"])?;
    check(code == Some(0), || format!("{code:?} {done:#}"))?;
    check(done["jobs"] == predicted["jobs"], || {
        format!(
            "predicted:\n{:#}\napplied:\n{:#}",
            predicted["jobs"], done["jobs"]
        )
    })?;
    // `other` was not named: its change waits.
    check(
        fs::read_to_string(env.unit_path("jobctl-other.timer"))?.contains("03:00"),
        || "apply nightly applied other".into(),
    )?;
    // The staged copy, wherever it is, now plans as unchanged.
    let (code, again) = apply_json(env, &dir, &["--check", "nightly", "--job", &given])?;
    check(
        code == Some(0) && job_plan(&again, "nightly")?["change"] == "unchanged",
        || format!("{code:?} {again:#}"),
    )?;

    // Removal: predicted with --absent, then applied once the file is gone.
    let (code, predicted) = apply_json(env, &dir, &["--check", "nightly", "--absent", "nightly"])?;
    check(
        code == Some(3) && job_plan(&predicted, "nightly")?["change"] == "remove",
        || format!("{code:?} {predicted:#}"),
    )?;
    let out = env.jobctl_in(&dir, &["apply", "nightly", "--absent", "nightly"]);
    check(out.status.code() == Some(2), || {
        format!("the file still exists: {}", text(&out))
    })?;
    fs::remove_file(dir.join("nightly.toml"))?;
    let (code, done) = apply_json(env, &dir, &["nightly", "--absent", "nightly"])?;
    check(code == Some(0) && done["jobs"] == predicted["jobs"], || {
        format!("{code:?} {done:#}")
    })?;
    // Already gone: nothing to do, no error.
    let (code, done) = apply_json(env, &dir, &["nightly", "--absent", "nightly"])?;
    check(code == Some(0) && done["changed"] == false, || {
        format!("{code:?} {done:#}")
    })?;
    // An unknown name is an error with a suggestion.
    let out = env.jobctl_in(&dir, &["apply", "othre"]);
    check(
        out.status.code() == Some(2) && both(&out).contains("did you mean \"other\"?"),
        || text(&out),
    )
}

/// `edit --apply`: the editor's change, validated, saved and applied.
pub fn edit_apply_installs_the_change(env: &Env) -> R {
    let dir = env.jobs_dir("edit");
    write_job(&dir, "nightly", DAILY);
    env.apply(&dir)?;
    let editor = env.scratch.join("edit-to-0500");
    fs::write(&editor, "#!/bin/sh\nsed -i 's/03:00/05:00/' \"$1\"\n")?;
    fs::set_permissions(&editor, fs::Permissions::from_mode(0o755))?;
    let out = env
        .sb
        .command("env")
        .arg(format!("EDITOR={}", editor.display()))
        .arg(JOBCTL)
        .arg("--config")
        .arg(&env.config)
        .arg("--jobs-dir")
        .arg(&dir)
        .args(["edit", "nightly", "--apply"])
        .output()?;
    check(out.status.success(), || text(&out))?;
    check(
        fs::read_to_string(env.unit_path("jobctl-nightly.timer"))?.contains("05:00"),
        || text(&out),
    )?;
    let out = env.jobctl_in(&dir, &["cat", "nightly"]);
    check(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout)
                .matches("05:00")
                .count()
                >= 2,
        || text(&out),
    )
}

/// `owner`, `team`, `tags`: shown by `status` and `--json`, filtered by
/// `list` and `health`. And a fresh host: no jobs folder is no jobs, with
/// a hint, not "No such file or directory".
pub fn labels_are_shown_and_filtered_and_a_missing_folder_is_empty(env: &Env) -> R {
    let dir = env.jobs_dir("labels");
    write_job(
        &dir,
        "etl",
        &format!(
            "{DAILY}owner = \"data-platform\"\nteam = \"analytics\"\ntags = [\"etl\", \"nightly\"]\n"
        ),
    );
    write_job(&dir, "web", &format!("{DAILY}team = \"web\"\n"));
    env.apply(&dir)?;
    let out = env.jobctl_in(&dir, &["status", "etl"]);
    let status = String::from_utf8_lossy(&out.stdout).to_string();
    check(
        status.contains("owner:      data-platform")
            && status.contains("team:       analytics")
            && status.contains("tags:       etl, nightly"),
        || text(&out),
    )?;
    let out = env.jobctl_in(
        &dir,
        &["list", "--json", "--team", "analytics", "--tag", "etl"],
    );
    let rows: Value = serde_json::from_slice::<Value>(&out.stdout)?["jobs"].take();
    check(
        rows.as_array().map(Vec::len) == Some(1)
            && rows[0]["job"] == "etl"
            && rows[0]["tags"] == serde_json::json!(["etl", "nightly"]),
        || format!("{rows:#}"),
    )?;
    env.sh("systemctl stop jobctl-web.timer")?;
    // web's problem is not analytics'.
    let out = env.jobctl_in(&dir, &["health", "--team", "analytics"]);
    check(out.status.success(), || text(&out))?;
    let out = env.jobctl_in(&dir, &["health", "--tag", "nightly,etl"]);
    check(out.status.success(), || text(&out))?;
    let out = env.jobctl_in(&dir, &["health"]);
    check(out.status.code() == Some(1), || text(&out))?;

    let missing = env.scratch.join("no-such-folder");
    for args in [&["list"][..], &["health"][..]] {
        let out = env.jobctl_in(&missing, args);
        let all = both(&out);
        check(
            all.contains("does not exist yet")
                && all.contains("mkdir -p")
                && !all.contains("No such file"),
            || format!("{args:?}: {}", text(&out)),
        )?;
    }
    let out = env.jobctl_in(&missing, &["apply"]);
    check(
        out.status.code() == Some(2) && both(&out).contains("does not exist"),
        || text(&out),
    )
}
