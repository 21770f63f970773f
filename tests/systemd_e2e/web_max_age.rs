//! How old an answer may be (docs/dashboard.md, "Under load"): a plain
//! request is answered from a reading that started at most `[web] max_age`
//! before it (1 s by default), shared with the other requests for the same
//! thing; `Cache-Control: no-cache` (or `max-age=0`, a browser's reload)
//! gets a reading of its own; an action through the server makes every
//! later answer show it; each answer says when its reading started
//! (`Jobctl-Read-At`, `Age`).
//!
//! The other web cases ask for exact answers (web::NO_CACHE); these ask
//! plainly, as a browser and `curl` do.

use super::web::{NO_CACHE, SOCKET, cli_json, install_units, json, stop_units};
use super::*;
use serde_json::json;

/// A request as a client makes it: the client's clock just before it
/// (ns), the reading's start from `Jobctl-Read-At` (ns), `Age`, status and
/// body. `extra` adds curl options (a header, `-X POST`).
struct Answer {
    sent_ns: i128,
    read_at_ns: Option<i128>,
    age: Option<u64>,
    status: u16,
    body: String,
}

fn ask(env: &Env, path: &str, extra: &str) -> Result<Answer, Failed> {
    let out = env.sh(&format!(
        "h=$(mktemp); b=$(mktemp); t0=$(date +%s%N); \
         code=$(curl -sS -D \"$h\" -o \"$b\" -w '%{{http_code}}' {extra} --unix-socket {SOCKET} 'http://l{path}'); \
         at=$(grep -i '^jobctl-read-at:' \"$h\" | cut -d' ' -f2 | tr -d '\\r'); \
         age=$(grep -i '^age:' \"$h\" | cut -d' ' -f2 | tr -d '\\r'); \
         ns=-; [ -n \"$at\" ] && ns=$(date -d \"$at\" +%s%N); \
         echo \"$t0 $ns ${{age:--}} $code\"; cat \"$b\"; rm -f \"$h\" \"$b\""
    ))?;
    let (head, body) = out.split_once('\n').unwrap_or((out.as_str(), ""));
    let f: Vec<&str> = head.split_whitespace().collect();
    check(f.len() == 4, || format!("{path}: {out}"))?;
    Ok(Answer {
        sent_ns: f[0].parse().map_err(|_| format!("t0: {head}"))?,
        read_at_ns: f[1].parse().ok(),
        age: f[2].parse().ok(),
        status: f[3].parse().map_err(|_| format!("status: {head}"))?,
        body: body.to_string(),
    })
}

fn listed(a: &Answer, job: &str) -> Result<bool, Failed> {
    let doc = json(&a.body)?;
    Ok(doc["jobs"]
        .as_array()
        .is_some_and(|rows| rows.iter().any(|r| r["job"] == job)))
}

fn state_of(a: &Answer, job: &str) -> Result<Value, Failed> {
    let doc = json(&a.body)?;
    Ok(doc["jobs"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["job"] == job))
        .map(|r| r["state"].clone())
        .unwrap_or(Value::Null))
}

pub fn a_plain_request_shares_a_young_reading_and_actions_end_it(env: &Env) -> R {
    let dir = env.jobs_dir("web-max-age");
    write_job(&dir, "age-daily", DAILY);
    write_job(
        &dir,
        "age-manual",
        "command = [\"/bin/true\"]\nmanual = true\n",
    );
    let config = env.scratch.join("web-max-age-config.toml");
    // An hour: whatever is shared below is shared by the rule, not by luck.
    fs::write(
        &config,
        format!("jobctl_path = \"{JOBCTL}\"\n[web]\nactions = true\nmax_age = \"1h\"\n"),
    )
    .unwrap();
    ok(&env.jobctl_with(&config, &dir, &["apply", "--json"]))?;
    install_units(env, &dir, &config, None)?;
    let result = (|| -> R {
        let first = ask(env, "/api/v1/jobs", "")?;
        check(first.status == 200, || {
            format!("{}: {}", first.status, first.body)
        })?;
        let read_at = first
            .read_at_ns
            .ok_or("no Jobctl-Read-At on /api/v1/jobs")?;
        check(first.age.is_some(), || "no Age on /api/v1/jobs".into())?;
        check(read_at <= first.sent_ns + 5_000_000_000, || {
            "Jobctl-Read-At in the future".into()
        })?;

        // A job file added: a plain request still gets the shared reading,
        // byte for byte; one that asks for no-cache gets the new state,
        // which is the CLI's.
        write_job(&dir, "age-new", DAILY);
        let shared = ask(env, "/api/v1/jobs", "")?;
        check(
            shared.read_at_ns == Some(read_at) && shared.body == first.body,
            || {
                format!(
                    "not the shared reading: {:?} vs {read_at}",
                    shared.read_at_ns
                )
            },
        )?;
        check(!listed(&shared, "age-new")?, || {
            "the shared reading changed".into()
        })?;
        let exact = ask(env, "/api/v1/jobs", NO_CACHE)?;
        check(listed(&exact, "age-new")?, || {
            format!("no-cache did not read again: {}", exact.body)
        })?;
        check(exact.read_at_ns > Some(read_at), || {
            "no-cache: same Jobctl-Read-At".into()
        })?;
        let want = cli_json(env, &dir, &config, &["list", "--json"])?;
        check(json(&exact.body)? == want, || {
            format!("{}\n{want:#}", exact.body)
        })?;
        // The newest reading is the one shared from now on.
        let after = ask(env, "/api/v1/jobs", "")?;
        check(after.read_at_ns == exact.read_at_ns, || {
            "a plain request after no-cache did not get its reading".into()
        })?;

        // The jobs page likewise; a browser's reload (max-age=0) reads.
        let page = ask(env, "/", "")?;
        check(page.status == 200 && page.body.contains("age-new"), || {
            format!("{}: {}", page.status, page.body)
        })?;
        write_job(&dir, "age-newer", DAILY);
        let page2 = ask(env, "/", "")?;
        check(
            page2.body == page.body && page2.read_at_ns == page.read_at_ns,
            || "the jobs page was not shared".into(),
        )?;
        let reload = ask(env, "/", "-H 'Cache-Control: max-age=0'")?;
        check(reload.body.contains("age-newer"), || {
            "a reload did not show the new job".into()
        })?;

        // An action through the server: every later answer shows it, even
        // a plain one with an hour to spare.
        let before = ask(env, "/api/v1/jobs", "")?;
        check(state_of(&before, "age-daily")? == json!("active"), || {
            format!("age-daily: {}", before.body)
        })?;
        let csrf = json(&ask(env, "/api/v1/csrf", "")?.body)?["csrf"]
            .as_str()
            .ok_or("no csrf token")?
            .to_string();
        let disabled = ask(
            env,
            "/api/v1/jobs/age-daily/disable",
            &format!("-X POST -H 'X-Jobctl-Csrf: {csrf}'"),
        )?;
        check(disabled.status == 200, || {
            format!("disable: {} {}", disabled.status, disabled.body)
        })?;
        let seen = ask(env, "/api/v1/jobs", "")?;
        check(
            state_of(&seen, "age-daily")? == json!("disabled by operator"),
            || format!("an answer after disable does not show it: {}", seen.body),
        )?;
        check(seen.read_at_ns > before.read_at_ns, || {
            "the answer after an action came from before it".into()
        })?;
        Ok(())
    })();
    stop_units(env)?;
    result
}

pub fn by_default_no_answer_is_older_than_a_second(env: &Env) -> R {
    let dir = env.jobs_dir("web-max-age-default");
    write_job(&dir, "age1-daily", DAILY);
    let config = env.scratch.join("web-max-age-default-config.toml");
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n[web]\n")).unwrap();
    ok(&env.jobctl_with(&config, &dir, &["apply", "--json"]))?;
    install_units(env, &dir, &config, None)?;
    let result = (|| -> R {
        // Requests for 3 s, a job file added after the first second. Each
        // answer's reading started at most 1 s before the request (with 50
        // ms for the two clocks read: the client's wall clock, the server's
        // monotonic one), and every reading that started after the file
        // was written lists it.
        let start = std::time::Instant::now();
        let mut written_ns: Option<i128> = None;
        let mut answers = 0;
        let mut shared = 0;
        let mut last_read_at = None;
        while start.elapsed() < Duration::from_secs(3) {
            if written_ns.is_none() && start.elapsed() > Duration::from_secs(1) {
                write_job(&dir, "age1-new", DAILY);
                written_ns = Some(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos() as i128,
                );
            }
            let a = ask(env, "/api/v1/jobs", "")?;
            check(a.status == 200, || format!("{}: {}", a.status, a.body))?;
            let read_at = a.read_at_ns.ok_or("no Jobctl-Read-At")?;
            check(read_at >= a.sent_ns - 1_050_000_000, || {
                format!(
                    "an answer {} ms older than its request",
                    (a.sent_ns - read_at) / 1_000_000
                )
            })?;
            check(a.age.is_some_and(|age| age <= 1), || {
                format!("Age {:?}", a.age)
            })?;
            if let Some(w) = written_ns
                && read_at > w + 50_000_000
            {
                check(listed(&a, "age1-new")?, || {
                    "a reading that started after the file was written does not list it".into()
                })?;
            }
            if last_read_at == Some(read_at) {
                shared += 1;
            }
            last_read_at = Some(read_at);
            answers += 1;
        }
        // After the file was written and a second has passed, a plain
        // request must show it (its reading started after the write).
        let a = ask(env, "/api/v1/jobs", "")?;
        check(listed(&a, "age1-new")?, || {
            "a second after the write, the job is not listed".into()
        })?;
        check(shared > 0, || {
            format!("{answers} requests in 3 s, none shared a reading")
        })?;
        // Nobody asks for 1.5 s (so nothing renews the reading in the
        // background): the next request must not get the old one.
        let before = a.read_at_ns.ok_or("no Jobctl-Read-At")?;
        std::thread::sleep(Duration::from_millis(1500));
        let idle = ask(env, "/api/v1/jobs", "")?;
        let read_at = idle.read_at_ns.ok_or("no Jobctl-Read-At")?;
        check(
            read_at > before && read_at >= idle.sent_ns - 1_050_000_000,
            || {
                format!(
                    "after an idle 1.5 s, an answer {} ms older than its request",
                    (idle.sent_ns - read_at) / 1_000_000
                )
            },
        )?;
        Ok(())
    })();
    stop_units(env)?;
    result
}
