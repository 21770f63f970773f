//! Who started a run (issue 16): a "run now" through the API, with a token
//! on TCP or with peer credentials on the unix socket, is recorded with
//! trigger `web` and the actor, in `history --json`, `status --json` and the
//! API alike, also for a job that runs as another user (its run is in that
//! user's database, its origin in root's); a `jobctl run` typed in a shell
//! stays `manual`; and a user who writes an origin into their own database
//! makes root's readers believe nothing.

use super::*;
use crate::web::{SOCKET, curl, install_units, json, stop_units};

const MANUAL: &str = "command = [\"/bin/true\"]\nmanual = true\n";

/// The run of `job` with invocation `invocation`, once it has ended, from
/// root's `history --json`.
fn run_of(env: &Env, job: &str, invocation: &str) -> Result<Value, Failed> {
    let mut found = None;
    env.wait_for(
        &format!("the run of {job} with invocation {invocation} to end"),
        Duration::from_secs(20),
        || {
            found = env
                .runs(job)?
                .into_iter()
                .find(|r| r["invocation_id"] == invocation && r["status"] != "running");
            Ok(found.is_some())
        },
    )?;
    Ok(found.unwrap())
}

/// The invocation a `run --json` document (the CLI's or the API's) started.
fn started(body: &str) -> Result<String, Failed> {
    let doc = json(body)?;
    check(doc["started"] == true, || format!("no run began: {body}"))?;
    Ok(doc["invocation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

fn says(run: &Value, trigger: &str, actor: Option<&str>) -> bool {
    run["trigger"] == trigger
        && match actor {
            Some(a) => run["actor"] == a,
            None => run["actor"].is_null(),
        }
}

pub fn run_now_from_the_api_is_recorded_as_web_with_who_started_it(env: &Env) -> R {
    let users = AttackUsers::create(env, &["mallory"])?;
    env.sh(
        "getent group weboperators >/dev/null || groupadd weboperators; \
         getent passwd weboperator >/dev/null || useradd -M -G weboperators weboperator",
    )?;
    let operator_uid = env.sh("id -u weboperator")?.trim().to_string();
    let dir = env.jobs_dir("origin");
    write_job(&dir, "origin-manual", MANUAL);
    write_job(
        &dir,
        "origin-user",
        &format!("{MANUAL}user = \"mallory\"\n"),
    );
    let config = env.scratch.join("origin-config.toml");
    fs::write(
        &config,
        format!(
            "jobctl_path = \"{JOBCTL}\"\n[web]\nactions = true\naction_group = \"weboperators\"\n"
        ),
    )
    .unwrap();
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply"]))?;
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    let out = jobctl(&[
        "token",
        "create",
        "--scope",
        "read,run",
        "--name",
        "ci-runner",
    ]);
    ok(&out)?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = 40000 + (std::process::id() % 20000) as u16;
    install_units(env, &dir, &config, Some(port))?;
    let result = (|| {
        let tcp_run = |job: &str| {
            curl(
                env,
                "nsenter -t 1 -n",
                &format!(
                    "-X POST -D /run/origin-run-headers -H 'Authorization: Bearer {token}' 'http://127.0.0.1:{port}/api/v1/jobs/{job}/run'"
                ),
            )
        };

        // A `jobctl run` typed in a shell: manual, nobody named.
        let out = jobctl(&["run", "origin-manual", "--wait", "--json"]);
        ok(&out)?;
        let cli = started(&String::from_utf8_lossy(&out.stdout))?;
        let run = run_of(env, "origin-manual", &cli)?;
        check(says(&run, "manual", None), || {
            format!("a CLI run is manual, with no actor: {run:#}")
        })?;

        // Run now with a token on TCP: web, by the token.
        let (status, body) = tcp_run("origin-manual")?;
        check(status == 200, || {
            format!("run now with a token: {status} {body}")
        })?;
        let by_token = started(&body)?;
        let run = run_of(env, "origin-manual", &by_token)?;
        check(says(&run, "web", Some("token ci-runner")), || {
            format!("history --json of the token's run: {run:#}")
        })?;
        // The answer says where the run's record is (the body stays the
        // CLI's document, whose run_id is null).
        let headers = env.sh("cat /run/origin-run-headers")?.to_ascii_lowercase();
        let id = run["id"].as_str().unwrap_or_default();
        check(
            !id.is_empty()
                && headers.contains(&format!("jobctl-run-id: {id}\r\n"))
                && headers.contains(&format!(
                    "location: /api/v1/jobs/origin-manual/runs/{id}\r\n"
                ))
                && json(&body)?["run_id"].is_null(),
            || format!("run now's answer: {headers}\n{body}\nthe run: {run:#}"),
        )?;
        let status_doc = json(&String::from_utf8_lossy(
            &jobctl(&["status", "--json", "origin-manual"]).stdout,
        ))?;
        let last = &status_doc["jobs"][0]["last_run"];
        check(
            last["invocation_id"] == by_token.as_str()
                && says(last, "web", Some("token ci-runner")),
            || format!("status --json: {status_doc:#}"),
        )?;
        let out = jobctl(&["status", "origin-manual"]);
        check(
            String::from_utf8_lossy(&out.stdout).contains("(web by token ci-runner, attempt 1"),
            || format!("status in words: {}", text(&out)),
        )?;
        // The API says the same (its documents are the CLI's).
        let (_, body) = curl(
            env,
            "",
            &format!("--unix-socket {SOCKET} 'http://l/api/v1/jobs/origin-manual/runs'"),
        )?;
        let api_runs = json(&body)?;
        let api_run = api_runs["runs"]
            .as_array()
            .and_then(|runs| {
                runs.iter()
                    .find(|r| r["invocation_id"] == by_token.as_str())
            })
            .cloned()
            .unwrap_or_default();
        check(says(&api_run, "web", Some("token ci-runner")), || {
            format!("the API's runs: {api_runs:#}")
        })?;
        let (_, body) = curl(
            env,
            "",
            &format!("--unix-socket {SOCKET} 'http://l/api/v1/jobs/origin-manual'"),
        )?;
        let api_job = json(&body)?;
        check(
            says(
                &api_job["jobs"][0]["last_run"],
                "web",
                Some("token ci-runner"),
            ),
            || format!("the API's job: {api_job:#}"),
        )?;

        // Run now on the unix socket by a member of action_group, with its
        // CSRF token: web, by that uid and its name.
        let as_operator = "setpriv --reuid=weboperator --regid=$(id -g weboperator) --init-groups";
        let (_, body) = curl(
            env,
            as_operator,
            &format!("--unix-socket {SOCKET} http://l/api/v1/csrf"),
        )?;
        let csrf = json(&body)?["csrf"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, body) = curl(
            env,
            as_operator,
            &format!(
                "-X POST -H 'X-Jobctl-Csrf: {csrf}' --unix-socket {SOCKET} http://l/api/v1/jobs/origin-manual/run"
            ),
        )?;
        check(status == 200, || {
            format!("run now on the socket: {status} {body}")
        })?;
        let by_peer = started(&body)?;
        let actor = format!("uid {operator_uid} (weboperator)");
        let run = run_of(env, "origin-manual", &by_peer)?;
        check(says(&run, "web", Some(&actor)), || {
            format!("history --json of the socket's run: {run:#}")
        })?;
        // The earlier runs keep what they were.
        let runs = env.runs("origin-manual")?;
        let trigger_of = |inv: &str| {
            runs.iter()
                .find(|r| r["invocation_id"] == inv)
                .map(|r| (r["trigger"].clone(), r["actor"].clone()))
        };
        check(
            trigger_of(&cli) == Some(("manual".into(), Value::Null))
                && trigger_of(&by_token) == Some(("web".into(), "token ci-runner".into())),
            || format!("the runs, each with its own origin: {runs:#?}"),
        )?;

        // A job that runs as mallory: its run is in her database, its
        // origin in root's.
        let (status, body) = tcp_run("origin-user")?;
        check(status == 200, || {
            format!("run now of mallory's job: {status} {body}")
        })?;
        let user_web = started(&body)?;
        let run = run_of(env, "origin-user", &user_web)?;
        check(
            says(&run, "web", Some("token ci-runner")) && run["owner"] == "mallory",
            || format!("mallory's job run from the web: {run:#}"),
        )?;

        // mallory plants an origin in her own database for a run she
        // started from a shell: root's readers do not believe it.
        let out = jobctl(&["run", "origin-user", "--wait", "--json"]);
        ok(&out)?;
        let planted = started(&String::from_utf8_lossy(&out.stdout))?;
        let db = "/var/lib/jobctl/users/mallory/history.db";
        let out = users.sh(
            "mallory",
            &format!(
                "sqlite3 {db} \"INSERT INTO origins (invocation_id, job, trigger, actor, at_us) \
                 VALUES ('{planted}', 'origin-user', 'web', 'token admin', \
                 CAST(strftime('%s', 'now') AS INTEGER) * 1000000); \
                 SELECT count(*) FROM origins WHERE invocation_id = '{planted}';\""
            ),
        )?;
        check(
            out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1",
            || format!("mallory's write into her own database: {}", text(&out)),
        )?;
        let run = run_of(env, "origin-user", &planted)?;
        check(says(&run, "manual", None), || {
            format!("root believed mallory's origin: {run:#}")
        })?;
        let status_doc = json(&String::from_utf8_lossy(
            &jobctl(&["status", "--json", "origin-user"]).stdout,
        ))?;
        let last = &status_doc["jobs"][0]["last_run"];
        check(
            last["invocation_id"] == planted.as_str() && says(last, "manual", None),
            || format!("status --json believed mallory's origin: {status_doc:#}"),
        )?;
        let (_, body) = curl(
            env,
            "",
            &format!("--unix-socket {SOCKET} 'http://l/api/v1/jobs/origin-user/runs'"),
        )?;
        let api_runs = json(&body)?;
        let api_run = api_runs["runs"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["invocation_id"] == planted.as_str()))
            .cloned()
            .unwrap_or_default();
        check(says(&api_run, "manual", None), || {
            format!("the API believed mallory's origin: {api_runs:#}")
        })
    })();
    stop_units(env)?;
    drop(users);
    result
}
