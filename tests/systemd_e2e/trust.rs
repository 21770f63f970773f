//! Cases for "what jobctl says about systemd is always true" (issue 11):
//! a change to the service alone never restarts its timer, and no sandboxing
//! of a job costs its history (or, when it must, `health` says so).

use std::collections::BTreeMap;

use super::*;

/// Every job key that concerns only the service, with a changed value.
const SERVICE_ONLY: &[(&str, &str)] = &[
    ("timeout", "timeout = \"2h\"\n"),
    ("command", "command = [\"/bin/false\"]\n"),
    ("environment", "[environment]\nMODE = \"fast\"\n"),
    ("user", "user = \"nobody\"\n"),
    ("group", "group = \"nogroup\"\n"),
    ("dynamic-user", "dynamic_user = true\n"),
    ("nice", "nice = 5\n"),
    ("memory-max", "memory_max = \"1G\"\n"),
    ("cpu-quota", "cpu_quota = \"50%\"\n"),
    ("io-weight", "io_weight = 50\n"),
    ("private-tmp", "private_tmp = true\n"),
    ("protect-system", "protect_system = \"strict\"\n"),
    ("no-new-privileges", "no_new_privileges = true\n"),
    ("description", "description = \"Nightly copy\"\n"),
    ("working-directory", "working_directory = \"/srv\"\n"),
    ("retry", "[retry]\nattempts = 3\n"),
    ("output-limit", "output_limit = \"1M\"\n"),
    ("after", "after = [\"network-online.target\"]\n"),
    ("service-extra", "[service_extra]\nLimitNOFILE = \"4096\"\n"),
];

/// What shows that a timer was (re)started: when it became active and when
/// it fires next, for every timer of the given jobs, in one call.
fn timer_facts(env: &Env, jobs: &[String]) -> Result<BTreeMap<String, String>, Failed> {
    let units: Vec<String> = jobs.iter().map(|j| format!("jobctl-{j}.timer")).collect();
    let out = env.sh(&format!(
        "systemctl show -p Id,ActiveState,ActiveEnterTimestampMonotonic,NextElapseUSecMonotonic,\
         NextElapseUSecRealtime,LastTriggerUSecMonotonic {}",
        units.join(" ")
    ))?;
    let mut facts = BTreeMap::new();
    for block in out.split("\n\n") {
        let mut id = None;
        let mut rest = Vec::new();
        for line in block.lines() {
            match line.strip_prefix("Id=") {
                Some(name) => id = Some(name.to_string()),
                None => rest.push(line),
            }
        }
        if let Some(id) = id {
            rest.sort();
            facts.insert(id, rest.join(" "));
        }
    }
    check(facts.len() == jobs.len(), || {
        format!("facts of {} timers: {facts:#?}", jobs.len())
    })?;
    for (unit, f) in &facts {
        check(f.contains("ActiveState=active"), || {
            format!("{unit} is not active: {f}")
        })?;
    }
    Ok(facts)
}

/// `text` with its `X-Jobctl-Hash=` value replaced.
fn with_hash(text: &str, hash: &str) -> String {
    text.lines()
        .map(|l| match l.strip_prefix("X-Jobctl-Hash=") {
            Some(_) => format!("X-Jobctl-Hash={hash}\n"),
            None => format!("{l}\n"),
        })
        .collect()
}

/// SHA-256 in hex, by coreutils' `sha256sum` (not jobctl's code).
fn sha256_hex(bytes: &[u8]) -> Result<String, Failed> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or("no stdin")?.write_all(bytes)?;
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

pub(super) fn service_only_changes_never_restart_timers(env: &Env) -> R {
    let dir = env.jobs_dir("service-only");
    // Calendar timers: neither a reload nor a restart moves their next
    // elapse, a restart shows in their activation time.
    let command = "command = [\"/bin/true\"]\n";
    let daily = "daily = \"03:00\"\n";
    let mut jobs: Vec<String> = Vec::new();
    for (key, _) in SERVICE_ONLY {
        let job = format!("so-{key}");
        write_job(&dir, &job, &format!("{command}{daily}"));
        jobs.push(job);
    }
    // And a monotonic one (`every = "7min"`: OnActiveSec=/OnUnitActiveSec=).
    // Until it first fires, systemd 252 re-bases its OnActiveSec= on every
    // daemon-reload (anyone's), so its next elapse moves with any reload;
    // its activation time still shows a restart.
    let every = "every = \"7min\"\n";
    write_job(&dir, "so-every", &format!("{command}{every}"));
    env.apply(&dir)?;
    let before = timer_facts(env, &jobs)?;
    let every_since = env.prop("jobctl-so-every.timer", "ActiveEnterTimestampMonotonic")?;

    for (key, change) in SERVICE_ONLY {
        let command = if *key == "command" { "" } else { command };
        write_job(
            &dir,
            &format!("so-{key}"),
            &format!("{command}{daily}{change}"),
        );
    }
    write_job(
        &dir,
        "so-every",
        &format!("{command}{every}timeout = \"5min\"\n"),
    );
    let report = env.apply(&dir)?;
    for job in jobs.iter().map(String::as_str).chain(["so-every"]) {
        let plan = job_plan(&report, job)?;
        let service = format!("jobctl-{job}.service");
        check(
            plan["change"] == "update"
                && plan["writes"]
                    .as_array()
                    .is_some_and(|w| w.iter().any(|u| u["name"] == service.as_str()))
                && plan["timer_steps"]
                    .as_object()
                    .is_some_and(|steps| steps.values().all(|v| v == false)),
            || format!("{job}: {plan:#}"),
        )?;
    }
    // The changes reached systemd…
    env.expect_prop(
        "jobctl-so-timeout.service",
        "TimeoutStartUSec",
        "2h",
        "the new timeout is not loaded",
    )?;
    env.expect_prop(
        "jobctl-so-description.service",
        "Description",
        "Nightly copy",
        "the new description is not loaded",
    )?;
    // …and no timer was restarted: same activation, same next elapse.
    let after = timer_facts(env, &jobs)?;
    for (unit, facts) in &before {
        check(after.get(unit) == Some(facts), || {
            format!(
                "{unit} was restarted:\nbefore: {facts}\nafter:  {}",
                after.get(unit).map(String::as_str).unwrap_or("-")
            )
        })?;
    }
    env.expect_prop(
        "jobctl-so-every.timer",
        "ActiveEnterTimestampMonotonic",
        &every_since,
        "jobctl-so-every.timer was restarted",
    )?;

    // Units as the jobctl before per-unit hashes wrote them: one hash, over
    // both units' texts, in both files. The first apply rewrites both files
    // and restarts no timer.
    let all: Vec<String> = jobs
        .iter()
        .cloned()
        .chain(["so-every".to_string()])
        .collect();
    let mut shared_of = BTreeMap::new();
    for job in &all {
        let paths = [
            env.unit_path(&format!("jobctl-{job}.service")),
            env.unit_path(&format!("jobctl-{job}.timer")),
        ];
        let mut unhashed = Vec::new();
        for path in &paths {
            unhashed.push(with_hash(&fs::read_to_string(path)?, "@JOBCTL-HASH@"));
        }
        let shared = sha256_hex(format!("{}\0{}", unhashed[0], unhashed[1]).as_bytes())?;
        for (path, text) in paths.iter().zip(&unhashed) {
            fs::write(path, with_hash(text, &shared[..32]))?;
        }
        shared_of.insert(job.clone(), shared[..32].to_string());
    }
    env.sh("systemctl daemon-reload")?;
    let report = env.apply(&dir)?;
    for job in &all {
        let plan = job_plan(&report, job)?;
        check(
            plan["writes"].as_array().is_some_and(|w| w.len() == 2)
                && plan["timer_steps"]["restart"] == false,
            || format!("{job} after an upgrade: {plan:#}"),
        )?;
    }
    let upgraded = timer_facts(env, &jobs)?;
    check(upgraded == after, || {
        format!("a timer was restarted by the upgrade:\n{after:#?}\n{upgraded:#?}")
    })?;
    env.expect_prop(
        "jobctl-so-every.timer",
        "ActiveEnterTimestampMonotonic",
        &every_since,
        "jobctl-so-every.timer was restarted by the upgrade",
    )?;

    // The job's hash, which operator overrides are recorded against, is
    // still that one shared hash: overrides made before an upgrade hold.
    ok(&env.jobctl_in(&dir, &["disable", "so-nice"]))?;
    let overrides: Value = serde_json::from_str(&fs::read_to_string(
        env.sb_path("/var/lib/jobctl/overrides.json"),
    )?)?;
    check(
        overrides.to_string().contains(&shared_of["so-nice"]),
        || format!("{overrides:#} lacks {}", shared_of["so-nice"]),
    )?;
    ok(&env.jobctl_in(&dir, &["enable", "so-nice"]))?;

    // A schedule change still restarts its timer (and only its).
    write_job(&dir, "so-timeout", &format!("{command}daily = \"04:00\"\n"));
    let report = env.apply(&dir)?;
    check(
        job_plan(&report, "so-timeout")?["timer_steps"]["restart"] == true
            && report["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|j| j["timer_steps"]["restart"] == true)
                .count()
                == 1,
        || format!("{report:#}"),
    )
}

// ------------------------------------------------------------- hardening

/// Who a sandboxed job runs as (system mode).
const USERS: &[(&str, &str)] = &[
    ("root", ""),
    ("nobody", "user = \"nobody\"\n"),
    ("dyn", "dynamic_user = true\n"),
];
/// `protect_system`, `private_tmp`: every combination.
const PROTECT_SYSTEM: &[(&str, &str)] = &[
    ("ps0", ""),
    ("psyes", "protect_system = true\n"),
    ("psfull", "protect_system = \"full\"\n"),
    ("psstrict", "protect_system = \"strict\"\n"),
];
const PRIVATE_TMP: &[(&str, &str)] = &[("pt0", ""), ("pt", "private_tmp = true\n")];

/// `service_extra` sandboxing people use, alone and together. `@` is
/// replaced by the job's name (a `StateDirectory=` of its own).
const SYSTEM_EXTRAS: &[(&str, &str)] = &[
    ("none", ""),
    ("ro", "ReadOnlyPaths = \"/\"\n"),
    ("home", "ProtectHome = \"yes\"\n"),
    ("hometmpfs", "ProtectHome = \"tmpfs\"\n"),
    (
        "inacc",
        "InaccessiblePaths = [\"-/home\", \"-/srv\", \"-/mnt\"]\n",
    ),
    ("state", "StateDirectory = \"e2e-@\"\n"),
    (
        "all",
        "ReadOnlyPaths = \"/\"\nProtectHome = \"yes\"\nInaccessiblePaths = [\"-/home\", \"-/srv\"]\n\
         StateDirectory = \"e2e-@\"\nProtectKernelTunables = \"yes\"\nPrivateDevices = \"yes\"\n",
    ),
];
/// Per-user mode: the history is under the home folder.
const USER_EXTRAS: &[(&str, &str)] = &[
    ("none", ""),
    ("ro", "ReadOnlyPaths = \"/\"\n"),
    ("homero", "ProtectHome = \"read-only\"\n"),
    ("hometmpfs", "ProtectHome = \"tmpfs\"\n"),
    ("inacc", "InaccessiblePaths = [\"-/srv\", \"-/mnt\"]\n"),
    (
        "all",
        "ReadOnlyPaths = \"/\"\nProtectHome = \"tmpfs\"\nInaccessiblePaths = [\"-/srv\"]\n",
    ),
];

/// The job files of the matrix: name → text.
fn hardening_matrix(users: &[(&str, &str)], extras: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut jobs = Vec::new();
    for (user, user_keys) in users {
        for (ps, ps_keys) in PROTECT_SYSTEM {
            for (pt, pt_keys) in PRIVATE_TMP {
                for (extra, extra_keys) in extras {
                    let name = format!("h-{user}-{ps}-{pt}-{extra}");
                    let mut text = format!(
                        "command = [\"/bin/true\"]\nmanual = true\n{user_keys}{ps_keys}{pt_keys}"
                    );
                    if *extra == "all" {
                        text.push_str("no_new_privileges = true\n");
                    }
                    if !extra_keys.is_empty() {
                        text.push_str("[service_extra]\n");
                        text.push_str(&extra_keys.replace('@', &name));
                    }
                    jobs.push((name, text));
                }
            }
        }
    }
    jobs
}

/// Starts every job's service at once and waits until each has a recorded
/// run; fails naming the jobs that have none.
fn run_all_and_wait(
    env: &Env,
    jobs: &[(String, String)],
    user: bool,
    history: impl Fn() -> Result<Value, Failed>,
) -> R {
    let services: Vec<String> = jobs
        .iter()
        .map(|(name, _)| format!("jobctl-{name}.service"))
        .collect();
    let systemctl = if user {
        "XDG_RUNTIME_DIR=/run/user/0 systemctl --user"
    } else {
        "systemctl"
    };
    env.sh(&format!(
        "{systemctl} start --no-block {}",
        services.join(" ")
    ))?;
    let mut missing: Vec<String> = Vec::new();
    let waited = env.wait_for(
        "a recorded run of every job",
        Duration::from_secs(60),
        || {
            // Every unit has finished (none is still queued or running)…
            let states = env.sh(&format!(
                "{systemctl} show -p ActiveState --value {}",
                services.join(" ")
            ))?;
            if states
                .lines()
                .any(|s| matches!(s, "activating" | "active" | "deactivating"))
            {
                return Ok(false);
            }
            // …and recorded its run.
            let report = history()?;
            let recorded: std::collections::BTreeSet<&str> = report["runs"]
                .as_array()
                .map(|runs| {
                    runs.iter()
                        .filter(|r| r["status"] == "success")
                        .filter_map(|r| r["job"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            missing = jobs
                .iter()
                .map(|(name, _)| name.clone())
                .filter(|name| !recorded.contains(name.as_str()))
                .collect();
            Ok(missing.is_empty())
        },
    );
    waited.map_err(|e| {
        let first = missing.first().cloned().unwrap_or_default();
        let unit = env
            .sh(&format!(
                "{systemctl} cat jobctl-{first}.service; journalctl -b -o cat --no-pager \
                 JOBCTL_JOB={first} | tail -3"
            ))
            .unwrap_or_default();
        format!(
            "{}; {} of {} jobs have no recorded run: {missing:?}\nfirst of them:\n{unit}",
            e.message().unwrap_or(""),
            missing.len(),
            jobs.len()
        )
        .into()
    })
}

pub(super) fn hardening_never_costs_the_history(env: &Env) -> R {
    // System mode: root's jobs (the main database), a user's (its
    // StateDirectory=), a dynamic user's.
    let dir = env.jobs_dir("hardening");
    let jobs = hardening_matrix(USERS, SYSTEM_EXTRAS);
    for (name, text) in &jobs {
        write_job(&dir, name, text);
    }
    env.apply(&dir)?;
    let unit = fs::read_to_string(env.unit_path("jobctl-h-root-psstrict-pt0-none.service"))?;
    check(unit.contains("\nBindPaths=-/var/lib/jobctl\n"), || {
        unit.clone()
    })?;
    let unit = fs::read_to_string(env.unit_path("jobctl-h-root-ps0-pt0-none.service"))?;
    check(!unit.contains("BindPaths="), || {
        format!("an unsandboxed job got a mount namespace: {unit}")
    })?;
    run_all_and_wait(env, &jobs, false, || {
        let out = env.jobctl(&["history", "--json", "--limit", "0"]);
        ok(&out)?;
        Ok(serde_json::from_slice(&out.stdout)?)
    })?;
    // Root's runs are in the main database, whatever StateDirectory= the
    // job has for itself.
    let run = &env.runs("h-root-psstrict-pt0-state")?[0];
    check(run["database"] == "/var/lib/jobctl/history.db", || {
        format!("{run:#}")
    })?;
    no_history_problem(&env.jobctl_in(&dir, &["health", "--json"]))?;

    // Per-user mode, through root's user manager.
    env.sb.start_user_manager().map_err(|e| e.to_string())?;
    let dir = env.jobs_dir("hardening-user");
    let jobs = hardening_matrix(&[("user", "")], USER_EXTRAS);
    for (name, text) in &jobs {
        write_job(&dir, name, text);
    }
    let user_jobctl = |args: &[&str]| env.user_jobctl(&dir, args);
    ok(&user_jobctl(&["apply"]))?;
    run_all_and_wait(env, &jobs, true, || {
        let out = user_jobctl(&["history", "--json", "--limit", "0"]);
        ok(&out)?;
        Ok(serde_json::from_slice(&out.stdout)?)
    })?;
    no_history_problem(&user_jobctl(&["health", "--json"]))?;
    // Leave root's user manager without these units.
    let empty = env.jobs_dir("hardening-user-empty");
    ok(&env.user_jobctl(&empty, &["apply", "--prune-all"]))
}

/// `health --json` reports no problem with any job's history or runs.
fn no_history_problem(out: &Output) -> R {
    let report: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(out)))?;
    let bad: Vec<String> = report["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|j| {
            j["problems"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |p| {
                    let kind = p["kind"].as_str().unwrap_or("");
                    matches!(
                        kind,
                        "history-unwritable" | "unit-failed" | "failed" | "error"
                    )
                    .then(|| format!("{}: {kind}: {}", j["job"], p["message"]))
                })
        })
        .collect();
    check(bad.is_empty(), || bad.join("\n"))
}

pub(super) fn an_unwritable_history_is_a_health_problem(env: &Env) -> R {
    let dir = env.jobs_dir("unwritable");
    // The job hides the history folder itself: no mount brings it back.
    let hidden = "command = [\"/bin/true\"]\nmanual = true\n";
    write_job(
        &dir,
        "hidden",
        &format!("{hidden}[service_extra]\nInaccessiblePaths = \"/var/lib/jobctl\"\n"),
    );
    write_job(
        &dir,
        "visible",
        "command = [\"/bin/true\"]\nmanual = true\n",
    );
    env.apply_and_run(&dir, &["hidden", "visible"])?;
    check(env.runs("hidden")?.is_empty(), || {
        "a run was recorded".into()
    })?;
    let says = |args: &[&str], code: i32, texts: &[&str]| -> R {
        let out = env.jobctl_in(&dir, args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        check(
            out.status.code() == Some(code) && texts.iter().all(|t| stdout.contains(t)),
            || format!("want exit {code} and {texts:?}: {}", text(&out)),
        )
    };
    // The shim's warning reaches journald as a datagram: wait until the
    // journal has it (health reads it from there), then check the report.
    env.wait_for(
        "the unrecorded run's warning in the journal",
        Duration::from_secs(20),
        || {
            Ok(env
                .sh("journalctl -o cat JOBCTL_JOB=hidden")?
                .contains("was not recorded"))
        },
    )?;
    says(
        &["health", "hidden"],
        1,
        &[
            "PROBLEMS - 1 in 1 of 1 job: history-unwritable 1",
            "hidden: history-unwritable: run ",
            "was not recorded in /var/lib/jobctl/history.db",
        ],
    )?;
    says(&["health", "visible"], 0, &["OK - 1 job, no problems"])?;
    // `status` shows it too.
    says(&["status", "hidden"], 0, &["history-unwritable"])?;
    let out = env.jobctl_in(
        &dir,
        &["health", "hidden", "--ignore", "history-unwritable"],
    );
    check(out.status.success(), || text(&out))?;

    // Fixed: the next recorded run clears the problem.
    write_job(&dir, "hidden", hidden);
    env.apply(&dir)?;
    ok(&env.jobctl_in(&dir, &["run", "hidden", "--wait"]))?;
    says(&["health", "hidden"], 0, &["OK - 1 job, no problems"])?;

    // Per-user mode: ProtectHome=yes hides the home folder, history and all
    // (systemd drops every mount below a hidden path).
    env.sb.start_user_manager().map_err(|e| e.to_string())?;
    let dir = env.jobs_dir("unwritable-user");
    write_job(
        &dir,
        "homeless",
        &format!("{hidden}[service_extra]\nProtectHome = \"yes\"\n"),
    );
    ok(&env.user_jobctl(&dir, &["apply"]))?;
    ok(&env.user_jobctl(&dir, &["run", "homeless", "--wait"]))?;
    let health_reports_it = || {
        let out = env.user_jobctl(&dir, &["health", "homeless"]);
        check(
            out.status.code() == Some(1)
                && String::from_utf8_lossy(&out.stdout)
                    .contains("homeless: history-unwritable: run "),
            || text(&out),
        )
    };
    env.wait_for(
        "the unrecorded run's warning in the journal",
        Duration::from_secs(20),
        || {
            Ok(env
                .sh("journalctl -o cat JOBCTL_JOB=homeless")?
                .contains("was not recorded"))
        },
    )?;
    health_reports_it()?;
    let empty = env.jobs_dir("unwritable-user-empty");
    ok(&env.user_jobctl(&empty, &["apply", "--prune-all"]))
}
