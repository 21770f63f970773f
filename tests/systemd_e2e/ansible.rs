//! The `jobctl.core` Ansible collection (issue 14) with a real ansible-core
//! from PyPI (scripts/setup installs it), run inside the throwaway systemd
//! with `connection: local`. The collection is built with `ansible-galaxy
//! collection build` and the tarball installed into a folder of the test's
//! own: that installed copy is what the playbooks use.
//!
//! The playbooks (tests/fixtures/ansible/) have no `changed_when`,
//! `failed_when` or `check_mode`; the test's stdout callback (`record`)
//! prints every task's status and full result as JSON.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt as _;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::json;

use super::*;

/// The ansible-core scripts/setup installs (keep the two in step).
const ANSIBLE_CORE: &str = "ansible-core-2.19.14";
pub(super) const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ansible");
const COLLECTION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/ansible/ansible_collections/jobctl/core"
);
const MODULES: [&str; 4] = ["job", "jobs", "run", "info"];

/// The venv's `bin` folder, by scripts/setup's folder rule, or `None`.
fn ansible_bin() -> Option<PathBuf> {
    let tools = match std::env::var_os("JOBCTL_TOOLS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None if nix::unistd::geteuid().is_root() => PathBuf::from("/var/cache/jobctl-test/tools"),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?
            .join("jobctl-test/tools"),
    };
    let venv = tools.join(ANSIBLE_CORE);
    venv.join(".complete").exists().then(|| venv.join("bin"))
}

/// The built and installed collection, shared by the cases of this process.
pub(super) struct Collection {
    bin: PathBuf,
    /// Ansible's home, temp folder, callback and playbooks live here.
    pub(super) dir: PathBuf,
    collections: PathBuf,
    tarball: PathBuf,
}

impl Collection {
    /// Ansible's environment: its state in `dir`, only the installed
    /// tarball as collections, the test's callback, pipelining (the
    /// modules run as another user with `become`).
    fn env(&self, cmd: &mut Command) {
        let home = self.dir.join("home");
        cmd.env("HOME", &home)
            .env("ANSIBLE_HOME", home.join(".ansible"))
            .env("ANSIBLE_LOCAL_TEMP", home.join("tmp"))
            .env("ANSIBLE_COLLECTIONS_PATH", &self.collections)
            .env("ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "false")
            .env(
                "ANSIBLE_CALLBACK_PLUGINS",
                self.dir.join("callback_plugins"),
            )
            .env("ANSIBLE_STDOUT_CALLBACK", "record")
            .env("ANSIBLE_PIPELINING", "true")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
            .env("LC_ALL", "C.UTF-8");
    }

    fn host_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.env_clear().env("PATH", "/usr/bin:/bin");
        self.env(&mut cmd);
        cmd
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> Result<Output, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{what}: {}", text(&out)));
    }
    Ok(out)
}

/// Builds the collection with `ansible-galaxy collection build` and installs
/// the tarball (once per process); `None` after a skip.
pub(super) fn collection() -> Result<Option<&'static Collection>, Failed> {
    static BUILT: OnceLock<Result<Option<Collection>, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let Some(bin) = ansible_bin() else {
            jobctl_sandbox::skip(&format!(
                "{ANSIBLE_CORE} is not installed (the Ansible collection's tests); scripts/setup installs it"
            ))?;
            return Ok(None);
        };
        // One fixed folder (emptied first), so runs leave one behind at most.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ansible-collection");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("home/tmp")).map_err(|e| e.to_string())?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        for sub in ["", "callback_plugins", "files"] {
            let from = Path::new(FIXTURES).join(sub);
            fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
            for entry in fs::read_dir(&from).map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| e.to_string())?;
                if entry.file_type().map_err(|e| e.to_string())?.is_file() {
                    fs::copy(entry.path(), dir.join(sub).join(entry.file_name()))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        let mut c = Collection {
            bin,
            collections: dir.join("collections"),
            tarball: PathBuf::new(),
            dir,
        };
        let dist = c.dir.join("dist");
        run_ok(
            c.host_command("ansible-galaxy")
                .args(["collection", "build", COLLECTION, "--output-path"])
                .arg(&dist),
            "ansible-galaxy collection build",
        )?;
        let tarballs: Vec<PathBuf> = fs::read_dir(&dist)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
            .collect();
        let [tarball] = tarballs.as_slice() else {
            return Err(format!("expected one tarball in {}: {tarballs:?}", dist.display()));
        };
        c.tarball = tarball.clone();
        run_ok(
            c.host_command("ansible-galaxy")
                .args(["collection", "install"])
                .arg(&c.tarball)
                .arg("-p")
                .arg(&c.collections),
            "ansible-galaxy collection install",
        )?;
        let manifest = c
            .collections
            .join("ansible_collections/jobctl/core/MANIFEST.json");
        if !manifest.exists() {
            return Err(format!("the install wrote no {}", manifest.display()));
        }
        Ok(Some(c))
    });
    match built {
        Ok(c) => Ok(c.as_ref()),
        Err(e) => Err(e.clone().into()),
    }
}

/// `ansible-playbook PLAYBOOK -e @vars` inside the sandbox; the record
/// callback's JSON.
pub(super) fn playbook(
    env: &Env,
    c: &Collection,
    name: &str,
    vars: &Value,
    args: &[&str],
) -> Result<Value, Failed> {
    let vars_file = c.dir.join(format!("vars-{name}-{}.json", args.join("")));
    fs::write(&vars_file, serde_json::to_vec_pretty(vars)?)?;
    let mut cmd = env.sb.command(c.bin.join("ansible-playbook"));
    c.env(&mut cmd);
    cmd.arg("-i")
        .arg("localhost,")
        .arg(c.dir.join(name))
        .arg("-e")
        .arg(format!("@{}", vars_file.display()))
        .args(args);
    let out = cmd.output()?;
    let played: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{name} {args:?}: no JSON from the record callback ({e}): {}",
            text(&out)
        )
    })?;
    // ansible-playbook exits 2 when a task failed without ignore_errors.
    check(out.status.success(), || {
        format!("{name} {args:?}: {}\n{played:#}", text(&out))
    })?;
    Ok(played)
}

/// The result of the task named `name` (there must be exactly one).
pub(super) fn task<'a>(played: &'a Value, name: &str) -> Result<&'a Value, Failed> {
    let found: Vec<&Value> = played["tasks"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["task"] == name).collect())
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one),
        _ => Err(format!("task {name:?}: {} results in {played:#}", found.len()).into()),
    }
}

pub(super) fn changed_tasks(played: &Value) -> Vec<String> {
    played["tasks"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter(|t| t["result"]["changed"] == true)
                .map(|t| t["task"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What a task said it does (or would do), to compare a check run's
/// prediction with the real run.
pub(super) fn prediction(result: &Value) -> Value {
    let keys = [
        "changed",
        "change",
        "file_changed",
        "units_written",
        "units_deleted",
        "timer_steps",
        "reload",
        "changed_jobs",
        "invalid_jobs",
    ];
    let mut out = serde_json::Map::new();
    for key in keys {
        if let Some(v) = result.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(jobs) = result["results"].as_array() {
        let jobs: Vec<Value> = jobs.iter().map(prediction_of_job).collect();
        out.insert("results".into(), Value::Array(jobs));
    }
    Value::Object(out)
}

fn prediction_of_job(job: &Value) -> Value {
    json!({
        "name": job["name"], "changed": job["changed"], "change": job["change"],
        "file_changed": job["file_changed"], "units_written": job["units_written"],
        "units_deleted": job["units_deleted"], "timer_steps": job["timer_steps"],
        "pruned": job["pruned"],
    })
}

/// A file's content (or link target), mode and modification time.
pub(super) type FileState = (Vec<u8>, u32, i64, i64);

/// Every file under `dirs` (as the sandbox sees them): content, mode and
/// modification time — what check mode must leave exactly as it was.
pub(super) fn files_of(env: &Env, dirs: &[&Path]) -> Result<BTreeMap<PathBuf, FileState>, Failed> {
    let mut files = BTreeMap::new();
    let mut todo: Vec<PathBuf> = dirs
        .iter()
        .map(|d| env.sb_path(d.to_str().unwrap()))
        .collect();
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            let meta = fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                todo.push(path);
            } else {
                let content = if meta.is_file() {
                    fs::read(&path)?
                } else {
                    fs::read_link(&path)?.into_os_string().into_encoded_bytes()
                };
                files.insert(
                    path,
                    (content, meta.mode(), meta.mtime(), meta.mtime_nsec()),
                );
            }
        }
    }
    Ok(files)
}

fn unit_text(env: &Env, unit: &str) -> String {
    fs::read_to_string(env.unit_path(unit)).unwrap_or_default()
}

fn fleet_job(name: &str, daily: &str) -> Value {
    json!({"name": name, "definition": {"command": ["/bin/true", name], "daily": daily}})
}

/// First run changed, second run changed=0; check mode after an edit
/// predicts job for job and unit for unit what the real run then does and
/// changes no file; diff mode shows the job file and unit diffs; a broken
/// definition fails that job (FILE:LINE:COL: key: message (hint)) while the
/// others are applied; `state: absent` removes the units.
pub fn playbooks_converge_with_exact_check_and_diff_modes(env: &Env) -> R {
    let Some(c) = collection()? else {
        return Ok(());
    };
    let dir_a = env.jobs_dir("ansible-a");
    let dir_b = env.jobs_dir("ansible-b");
    let a = dir_a.to_str().unwrap();
    let b = dir_b.to_str().unwrap();
    let base = json!({
        "jobctl_binary": JOBCTL,
        "jobctl_config": env.config,
        "dir_a": a,
        "dir_b": b,
    });
    let with = |extra: Value| {
        let mut vars = base.clone();
        vars.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        vars
    };
    let v1 = with(json!({
        "nightly_time": "03:00",
        "report_content": "command = [\"/bin/true\", \"report\"]\nmanual = true\n",
        "fleet": [fleet_job("etl-a", "01:00"), fleet_job("etl-b", "01:30")],
    }));
    let v2 = with(json!({
        "nightly_time": "04:00",
        "report_content": "command = [\"/bin/true\", \"report\", \"v2\"]\nmanual = true\n",
        "fleet": [fleet_job("etl-a", "01:00"), fleet_job("etl-c", "02:30")],
    }));

    // First run: every job task changed, everything installed and started.
    let first = playbook(env, c, "converge.yml", &v1, &[])?;
    check(
        changed_tasks(&first) == ["nightly", "report", "fleet"],
        || format!("first run: {first:#}"),
    )?;
    for job in ["nightly", "etl-a", "etl-b"] {
        env.expect_prop(&format!("jobctl-{job}.timer"), "ActiveState", "active", job)?;
    }
    for (dir, job) in [(&dir_a, "nightly"), (&dir_a, "report"), (&dir_b, "etl-a")] {
        let meta = fs::metadata(dir.join(format!("{job}.toml")))?;
        check(
            meta.mode() & 0o7777 == 0o644 && meta.uid() == 0 && meta.gid() == 0,
            || {
                format!(
                    "{job}.toml: mode {:o}, owner {}:{}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid()
                )
            },
        )?;
    }
    let nightly = fs::read_to_string(dir_a.join("nightly.toml"))?;
    check(
        nightly.contains("daily = \"03:00\"")
            && nightly.contains("TARGET = \"warehouse \\\"main\\\"\"")
            && nightly.contains("tags = [\"etl\", \"nightly\"]"),
        || nightly.clone(),
    )?;
    // run: on_change ran the new job once.
    check(env.runs("report")?.len() == 1, || {
        "report did not run once".into()
    })?;
    // info: the facts.
    let facts = &task(&first, "facts")?["result"]["ansible_facts"]["jobctl"];
    let row = facts["list"]["jobs"]
        .as_array()
        .and_then(|l| l.iter().find(|j| j["job"] == "nightly"))
        .ok_or_else(|| format!("no nightly in the facts: {facts:#}"))?;
    check(
        row["team"] == "analytics"
            && row["tags"] == json!(["etl", "nightly"])
            && facts["health"]["jobs_checked"].is_number()
            && facts["list"]["schema"] == "jobctl.list/v1"
            && facts["status"]["jobs"].is_array()
            && facts["version"]
                .as_str()
                .is_some_and(|v| v.starts_with("jobctl ")),
        || format!("{facts:#}"),
    )?;

    // Second run: nothing changes, nothing runs.
    let second = playbook(env, c, "converge.yml", &v1, &[])?;
    check(
        changed_tasks(&second).is_empty() && second["stats"]["localhost"]["changed"] == 0,
        || format!("second run: {second:#}"),
    )?;
    check(env.runs("report")?.len() == 1, || "report ran again".into())?;

    // Files of the exclusive folder that are not job files (jobctl's rule:
    // `*.toml` not starting with `.`) are never removed.
    fs::write(dir_b.join("README"), "not a job\n")?;
    fs::write(dir_b.join(".draft.toml"), "not a job either\n")?;

    // Check mode after an edit: predicted, nothing written, nothing run.
    let unit_dir = PathBuf::from(UNIT_DIR);
    let watched = [dir_a.as_path(), dir_b.as_path(), unit_dir.as_path()];
    let before = files_of(env, &watched)?;
    let checked = playbook(env, c, "converge.yml", &v2, &["--check", "--diff"])?;
    let after = files_of(env, &watched)?;
    check(before == after, || {
        let changed: Vec<_> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        format!("check mode changed files: {changed:?}")
    })?;
    check(env.runs("report")?.len() == 1, || {
        "check mode ran report".into()
    })?;
    let predicted =
        |name: &str| -> Result<Value, Failed> { Ok(prediction(&task(&checked, name)?["result"])) };
    let p = predicted("nightly")?;
    check(
        p["changed"] == true
            && p["change"] == "update"
            && p["units_written"] == json!(["jobctl-nightly.timer"])
            && p["units_deleted"] == json!([])
            && p["timer_steps"]["restart"] == true
            && p["reload"] == true,
        || format!("nightly: {p:#}"),
    )?;
    let p = predicted("report")?;
    check(
        p["change"] == "update" && p["units_written"] == json!(["jobctl-report.service"]),
        || format!("report: {p:#}"),
    )?;
    let p = predicted("fleet")?;
    check(
        p["changed_jobs"] == json!(["etl-c", "etl-b"])
            && p["results"].as_array().map(Vec::len) == Some(3)
            && p["results"][0]["name"] == "etl-a"
            && p["results"][0]["changed"] == false
            && p["results"][1]["change"] == "create"
            && p["results"][2]["change"] == "remove"
            && p["results"][2]["pruned"] == true
            && p["results"][2]["units_deleted"]
                == json!(["jobctl-etl-b.service", "jobctl-etl-b.timer"])
            && p["results"][2]["timer_steps"]["stop"] == true,
        || format!("fleet: {p:#}"),
    )?;
    // Diff mode: the job file, then each unit, before and after.
    let diff = &task(&checked, "nightly")?["result"]["diff"];
    let headers: Vec<&str> = diff
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|d| d["before_header"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let nightly_path = dir_a.join("nightly.toml");
    check(
        headers == [nightly_path.to_str().unwrap(), "jobctl-nightly.timer"]
            && diff[0]["before"]
                .as_str()
                .is_some_and(|t| t.contains("daily = \"03:00\""))
            && diff[0]["after"]
                .as_str()
                .is_some_and(|t| t.contains("daily = \"04:00\""))
            && diff[1]["before"]
                .as_str()
                .is_some_and(|t| t.contains("OnCalendar=*-*-* 03:00:00"))
            && diff[1]["after"]
                .as_str()
                .is_some_and(|t| t.contains("OnCalendar=*-*-* 04:00:00")),
        || format!("nightly's diff: {diff:#}"),
    )?;
    let fleet_diff = &task(&checked, "fleet")?["result"]["diff"];
    check(
        fleet_diff.as_array().is_some_and(|d| {
            d.iter().any(|d| {
                d["before_header"] == "jobctl-etl-b.service"
                    && d["after"] == ""
                    && d["before"]
                        .as_str()
                        .is_some_and(|t| t.contains("X-Jobctl-Job=etl-b"))
            })
        }),
        || format!("fleet's diff: {fleet_diff:#}"),
    )?;

    // The real run does exactly what was predicted.
    let nightly_timer = env.prop("jobctl-nightly.timer", "ActiveEnterTimestampMonotonic")?;
    let etl_a_timer = env.prop("jobctl-etl-a.timer", "ActiveEnterTimestampMonotonic")?;
    let real = playbook(env, c, "converge.yml", &v2, &["--diff"])?;
    for name in ["nightly", "report", "fleet", "facts"] {
        let (want, got) = (
            prediction(&task(&checked, name)?["result"]),
            prediction(&task(&real, name)?["result"]),
        );
        check(want == got, || {
            format!("{name}: predicted {want:#}, did {got:#}")
        })?;
    }
    check(
        unit_text(env, "jobctl-nightly.timer").contains("OnCalendar=*-*-* 04:00:00")
            && unit_text(env, "jobctl-report.service").contains("report v2")
            && !env.unit_path("jobctl-etl-b.service").exists()
            && !env.unit_path("jobctl-etl-b.timer").exists()
            && !dir_b.join("etl-b.toml").exists()
            && dir_b.join("README").exists()
            && dir_b.join(".draft.toml").exists()
            && env.unit_path("jobctl-etl-c.timer").exists(),
        || "the real run did not do what it said".into(),
    )?;
    // Timer steps as predicted: nightly's restarted, etl-a's untouched.
    check(
        env.prop("jobctl-nightly.timer", "ActiveEnterTimestampMonotonic")? != nightly_timer
            && env.prop("jobctl-etl-a.timer", "ActiveEnterTimestampMonotonic")? == etl_a_timer,
        || "timer steps differ from the prediction".into(),
    )?;
    env.expect_prop(
        "jobctl-etl-b.timer",
        "LoadState",
        "not-found",
        "etl-b's timer",
    )?;
    env.expect_prop(
        "jobctl-etl-c.timer",
        "ActiveState",
        "active",
        "etl-c's timer",
    )?;
    check(env.runs("report")?.len() == 2, || {
        "report did not run on its change".into()
    })?;
    let again = playbook(env, c, "converge.yml", &v2, &[])?;
    check(changed_tasks(&again).is_empty(), || {
        format!("re-run: {again:#}")
    })?;

    // A job file jobctl's ownership rule refuses (group-writable) is a
    // change the module corrects; its units are as they were.
    fs::set_permissions(dir_a.join("report.toml"), fs::Permissions::from_mode(0o664))?;
    let fixed = playbook(env, c, "converge.yml", &v2, &[])?;
    let t = &task(&fixed, "report")?["result"];
    check(
        changed_tasks(&fixed) == ["report"]
            && t["change"] == "unchanged"
            && t["file_changed"] == true
            && t["attributes_fixed"] == json!(["mode 0664 (wanted 0644)"])
            && fs::metadata(dir_a.join("report.toml"))?.mode() & 0o7777 == 0o644,
        || format!("{t:#}"),
    )?;
    check(env.runs("report")?.len() == 2, || {
        "a corrected mode made run: on_change run the job".into()
    })?;

    // A broken definition fails that job only.
    let broken_c =
        json!({"name": "etl-c", "definition": {"daily": "01:00", "comand": ["/bin/true"]}});
    let vars = with(json!({
        "fleet_broken": [fleet_job("etl-a", "01:15"), broken_c],
        "fleet_broken_all": [fleet_job("etl-a", "01:45"), broken_c],
    }));
    let etl_c = (
        fs::read(dir_b.join("etl-c.toml"))?,
        unit_text(env, "jobctl-etl-c.service"),
        unit_text(env, "jobctl-etl-c.timer"),
        env.prop("jobctl-etl-c.timer", "ActiveEnterTimestampMonotonic")?,
    );
    let nightly_before = (
        fs::read(dir_a.join("nightly.toml"))?,
        unit_text(env, "jobctl-nightly.service"),
        unit_text(env, "jobctl-nightly.timer"),
    );
    // Check mode first: it says what a real run would do, and does nothing.
    let etl_a_timer = unit_text(env, "jobctl-etl-a.timer");
    let checked = playbook(env, c, "broken.yml", &vars, &["--check"])?;
    let t = task(&checked, "fleet with one broken job")?;
    check(
        t["status"] == "failed"
            && t["result"]["msg"].as_str().is_some_and(|m| {
                m.contains("would be left as they are; the other jobs would go ahead")
            })
            && unit_text(env, "jobctl-etl-a.timer") == etl_a_timer,
        || format!("check mode: {t:#}"),
    )?;
    let broken = playbook(env, c, "broken.yml", &vars, &[])?;
    let t = task(&broken, "fleet with one broken job")?;
    // Line 2: the module's header comment, then the keys in the order
    // given (serde_json's objects sort them: `comand` before `daily`).
    let want = format!("{b}/etl-c.toml:2:1: comand: unknown key (did you mean `command`?)");
    check(
        t["status"] == "failed"
            && t["result"]["msg"]
                .as_str()
                .is_some_and(|m| m.contains(&want))
            && t["result"]["invalid_jobs"] == json!(["etl-c"])
            && t["result"]["changed_jobs"] == json!(["etl-a"])
            && t["result"]["results"][0]["change"] == "update",
        || format!("want {want:?} in {t:#}"),
    )?;
    let t = task(&broken, "fleet with one broken job, all or nothing")?;
    check(
        t["status"] == "failed"
            && t["result"]["msg"]
                .as_str()
                .is_some_and(|m| m.contains("nothing was changed") && m.contains(&want))
            && t["result"]["changed"] == false,
        || format!("{t:#}"),
    )?;
    // etl-a got the first task's 01:15, not fail_all's 01:45.
    check(
        unit_text(env, "jobctl-etl-a.timer").contains("OnCalendar=*-*-* 01:15:00"),
        || unit_text(env, "jobctl-etl-a.timer"),
    )?;
    let etl_c_after = (
        fs::read(dir_b.join("etl-c.toml"))?,
        unit_text(env, "jobctl-etl-c.service"),
        unit_text(env, "jobctl-etl-c.timer"),
        env.prop("jobctl-etl-c.timer", "ActiveEnterTimestampMonotonic")?,
    );
    check(etl_c_after == etl_c, || {
        "the broken job's file or units changed".into()
    })?;
    let t = task(&broken, "nightly broken")?;
    check(
        t["status"] == "failed"
            && t["result"]["msg"].as_str().is_some_and(|m| {
                m.starts_with(&format!("{a}/nightly.toml:")) && m.contains(": daily: ")
            })
            && t["result"]["changed"] == false,
        || format!("{t:#}"),
    )?;
    let nightly_after = (
        fs::read(dir_a.join("nightly.toml"))?,
        unit_text(env, "jobctl-nightly.service"),
        unit_text(env, "jobctl-nightly.timer"),
    );
    check(nightly_after == nightly_before, || {
        "the broken nightly was written".into()
    })?;

    // state: absent removes the file and the units; then nothing to do.
    let gone = playbook(env, c, "absent.yml", &base, &[])?;
    let t = &task(&gone, "nightly absent")?["result"];
    check(
        t["changed"] == true
            && t["change"] == "remove"
            && t["units_deleted"] == json!(["jobctl-nightly.service", "jobctl-nightly.timer"])
            && !dir_a.join("nightly.toml").exists()
            && !env.unit_path("jobctl-nightly.service").exists()
            && !env.unit_path("jobctl-nightly.timer").exists(),
        || format!("{t:#}"),
    )?;
    env.expect_prop(
        "jobctl-nightly.timer",
        "LoadState",
        "not-found",
        "nightly's timer",
    )?;
    let again = playbook(env, c, "absent.yml", &base, &[])?;
    check(changed_tasks(&again).is_empty(), || format!("{again:#}"))
}

/// `jobctl.core.run` returns the job's real exit status, run id and
/// invocation id; a failing run fails the task unless told; check mode
/// skips it.
pub fn the_run_module_returns_the_real_exit_status(env: &Env) -> R {
    let Some(c) = collection()? else {
        return Ok(());
    };
    // A jobs folder that does not exist yet (a fresh host): check mode
    // plans from nothing and creates nothing; the real run creates it.
    let dir = env.jobs_dir("ansible-run").join("jobs.d");
    let vars = json!({
        "jobctl_binary": JOBCTL,
        "jobctl_config": env.config,
        "dir_a": dir,
    });
    let checked = playbook(env, c, "run.yml", &vars, &["--check"])?;
    check(
        task(&checked, "install fails")?["result"]["change"] == "create"
            && task(&checked, "run fails")?["status"] == "skipped"
            && task(&checked, "run succeeds")?["status"] == "skipped"
            && !env.unit_path("jobctl-fails.service").exists()
            && !dir.exists(),
        || format!("{checked:#}"),
    )?;
    let played = playbook(env, c, "run.yml", &vars, &[])?;
    let meta = fs::metadata(&dir)?;
    check(meta.mode() & 0o7777 == 0o755 && meta.uid() == 0, || {
        format!("jobs folder: mode {:o}, owner {}", meta.mode(), meta.uid())
    })?;
    let looked = &task(&played, "run fails, looking at how it ended")?;
    let runs = env.runs("fails")?;
    check(runs.len() == 2, || format!("{runs:#?}"))?;
    let first = runs
        .iter()
        .find(|r| r["id"] == looked["result"]["run_id"])
        .ok_or_else(|| format!("no recorded run {}: {runs:#?}", looked["result"]["run_id"]))?;
    check(
        looked["status"] == "ok"
            && looked["result"]["changed"] == true
            && looked["result"]["exit_status"] == 3
            && looked["result"]["result"] == "failed"
            && first["exit_code"] == 3
            && first["invocation_id"] == looked["result"]["invocation_id"],
        || format!("{looked:#}\n{first:#}"),
    )?;
    let failed = &task(&played, "run fails")?;
    check(
        failed["status"] == "failed"
            && failed["result"]["exit_status"] == 3
            && failed["result"]["msg"]
                .as_str()
                .is_some_and(|m| m.contains("exit status 3"))
            && failed["result"]["invocation_id"].as_str()
                == Some(env.prop("jobctl-fails.service", "InvocationID")?.as_str()),
        || format!("{failed:#}"),
    )?;
    // `src` is a file on the controller, read by the action plugin.
    let src = fs::read_to_string(Path::new(FIXTURES).join("files/succeeds.toml"))?;
    check(
        task(&played, "install succeeds")?["result"]["change"] == "create"
            && fs::read_to_string(dir.join("succeeds.toml"))? == src,
        || "src was not installed as the job file".into(),
    )?;
    let ok_run = &task(&played, "run succeeds")?;
    check(
        ok_run["status"] == "ok"
            && ok_run["result"]["exit_status"] == 0
            && ok_run["result"]["result"] == "success",
        || format!("{ok_run:#}"),
    )?;

    // apply: false writes the file only and says what an apply would do;
    // the next task applies it.
    let t = &task(&played, "write only")?["result"];
    check(
        t["changed"] == true
            && t["file_changed"] == true
            && t["pending"] == true
            && t["change"] == "create"
            && t["reload"] == false
            && t["units_written"] == json!(["jobctl-staged.service"])
            && t["state"] == "present"
            && t["job_file"] == json!(dir.join("staged.toml")),
        || format!("{t:#}"),
    )?;
    let t = &task(&played, "then apply")?["result"];
    check(
        t["changed"] == true
            && t["file_changed"] == false
            && t["change"] == "create"
            && env.unit_path("jobctl-staged.service").exists(),
        || format!("{t:#}"),
    )?;

    // docs/ansible.md's fleet report from the info facts, here of one host.
    let report_path = c.dir.join("fleet-report.md");
    let mut vars = vars.clone();
    vars["report_path"] = json!(report_path);
    // The inventory's hosts are reached over ssh in the docs; here the
    // one host is this sandbox.
    vars["ansible_connection"] = json!("local");
    playbook(env, c, "report.yml", &vars, &[])?;
    let report = fs::read_to_string(&report_path)?;
    check(
        report.contains("| localhost | 3 | False | PROBLEMS - 1 in 1 of 3 jobs: failed 1 |")
            && report.contains("- localhost: fails: the last run failed with exit status 3"),
        || report.clone(),
    )
}

/// `user: true` for a real user (created inside the sandbox, lingering so
/// that their manager runs), through `become_user`: the job file is the
/// user's, the units go to the user's manager, the re-run changes nothing.
pub fn per_user_mode_as_a_real_user(env: &Env) -> R {
    let Some(c) = collection()? else {
        return Ok(());
    };
    let user = "ansuser";
    let uid: u32 = env
        .sh(&format!(
            "id -u {user} >/dev/null 2>&1 || useradd --create-home --shell /bin/bash {user}; \
             loginctl enable-linger {user}; id -u {user}"
        ))?
        .trim()
        .parse()?;
    let bus = format!("/run/user/{uid}/bus");
    env.wait_for("the user's manager", Duration::from_secs(30), || {
        Ok(env.sb_path(&bus).exists())
    })?;
    let vars = |state: &str| {
        json!({
            "jobctl_binary": JOBCTL,
            "jobctl_config": env.config,
            "job_user": user,
            "user_job_state": state,
        })
    };
    let home = format!("/home/{user}");
    let file = env.sb_path(&format!("{home}/.config/jobctl/jobs.d/notes-sync.toml"));
    let timer = env.sb_path(&format!(
        "{home}/.config/systemd/user/jobctl-notes-sync.timer"
    ));
    let user_systemctl = |args: &str| {
        env.sh(&format!(
            "runuser -u {user} -- env XDG_RUNTIME_DIR=/run/user/{uid} systemctl --user {args}"
        ))
    };
    let result = (|| -> R {
        let first = playbook(env, c, "user.yml", &vars("present"), &[])?;
        let t = &task(&first, "user job")?["result"];
        let meta = fs::metadata(&file)?;
        check(
            t["changed"] == true
                && t["change"] == "create"
                && meta.uid() == uid
                && meta.mode() & 0o7777 == 0o644
                && fs::read_to_string(&timer)?.contains("OnCalendar=*-*-* 06:30:00"),
            || format!("{t:#}"),
        )?;
        let active = user_systemctl("is-active jobctl-notes-sync.timer")?;
        check(active.trim() == "active", || active.clone())?;
        let facts = &task(&first, "user facts")?["result"]["ansible_facts"]["jobctl"]["list"];
        check(facts["jobs"][0]["job"] == "notes-sync", || {
            format!("{facts:#}")
        })?;
        let second = playbook(env, c, "user.yml", &vars("present"), &[])?;
        check(changed_tasks(&second).is_empty(), || format!("{second:#}"))?;
        let gone = playbook(env, c, "user.yml", &vars("absent"), &[])?;
        check(
            task(&gone, "user job")?["result"]["change"] == "remove"
                && !file.exists()
                && !timer.exists(),
            || format!("{gone:#}"),
        )
    })();
    let cleanup = env.sh(&format!(
        "loginctl disable-linger {user}; loginctl terminate-user {user} 2>/dev/null; \
         for i in $(seq 100); do [ -e /run/user/{uid}/bus ] || break; sleep 0.1; done; \
         userdel --remove {user} 2>/dev/null; true"
    ));
    result?;
    cleanup.map(drop)
}

/// Every module compiles with the managed host's Python and
/// `ansible-doc -t module jobctl.core.NAME` renders its documentation from
/// the installed tarball. (`ansible-test sanity` cannot run here: it
/// bootstraps pip from ci-files.testing.ansible.com; docs/testing.md.)
pub fn the_collection_builds_and_every_module_is_documented() -> R {
    let Some(c) = collection()? else {
        return Ok(());
    };
    let installed = c
        .collections
        .join("ansible_collections/jobctl/core/plugins");
    for module in MODULES {
        let file = installed.join(format!("modules/{module}.py"));
        run_ok(
            Command::new("/usr/bin/python3")
                .args([
                    "-B",
                    "-c",
                    "import ast, sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')",
                ])
                .arg(&file),
            &format!("compiling {}", file.display()),
        )?;
        let out = run_ok(
            c.host_command("ansible-doc")
                .args(["-t", "module", &format!("jobctl.core.{module}")]),
            &format!("ansible-doc jobctl.core.{module}"),
        )?;
        let doc = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        check(
            doc.contains(&format!("jobctl.core.{module}"))
                && doc.contains("OPTIONS")
                && doc.contains("EXAMPLES")
                && doc.contains("RETURN VALUES")
                && !stderr.contains("WARNING")
                && !stderr.contains("ERROR"),
            || format!("ansible-doc jobctl.core.{module}:\n{doc}\n{stderr}"),
        )?;
    }
    // The `definition` writer reads back with Python's TOML reader.
    let out = run_ok(
        c.host_command("python3")
            .arg("-B")
            .arg(Path::new(FIXTURES).join("toml_roundtrip.py"))
            .arg(&c.collections),
        "the TOML writer's round trip",
    )?;
    check(
        String::from_utf8_lossy(&out.stdout).starts_with("ok: "),
        || text(&out),
    )?;
    for util in ["module_utils/jobctl.py", "action/job.py", "action/jobs.py"] {
        let file = installed.join(util);
        run_ok(
            Command::new("/usr/bin/python3")
                .args([
                    "-B",
                    "-c",
                    "import ast, sys; compile(open(sys.argv[1]).read(), sys.argv[1], 'exec')",
                ])
                .arg(&file),
            &format!("compiling {}", file.display()),
        )?;
    }
    Ok(())
}
