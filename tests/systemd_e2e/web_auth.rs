//! jobctl-web's finer access (issue 16): a token made for some jobs
//! (`jobctl token create --jobs … --tag …`) sees and acts on only those, in
//! every answer; and a reverse proxy's user header is believed only from the
//! peers `[web.trusted_proxy]` lists, with the scopes written for its users.
//! The server runs as a transient unit of the sandbox's systemd, on a socket
//! of its own and TCP in the sandbox's network.

use super::*;
use crate::web::NO_CACHE;

const SOCK: &str = "/run/jobctl/auth-web.sock";
const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");

/// Two manual jobs of two teams (tags), each run once; a configuration with
/// `web` appended; a jobctl-web on [`SOCK`] and TCP `port`; then `f` with
/// the jobctl of that folder. Stops the server and removes the jobs after.
fn with_server(
    env: &Env,
    name: &str,
    web: &str,
    port: u16,
    f: impl FnOnce(&dyn Fn(&[&str]) -> Output, &Path) -> R,
) -> R {
    let server = web::web_binary()?;
    let dir = env.jobs_dir(name);
    // auth-b fails: health has a problem to hide from team-a's token.
    for (job, tag, exit) in [("auth-a", "team-a", 0), ("auth-b", "team-b", 3)] {
        write_job(
            &dir,
            job,
            &format!(
                "command = [{FAKEJOB:?}, \"out\", \"{job} says hello\", \"exit\", \"{exit}\"]\nmanual = true\ntags = [\"{tag}\"]\n"
            ),
        );
    }
    let config = env.scratch.join(format!("{name}-config.toml"));
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n{web}")).unwrap();
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply"]))?;
    ok(&jobctl(&["run", "auth-a", "--wait"]))?;
    let failed = jobctl(&["run", "auth-b", "--wait"]);
    check(failed.status.code() == Some(3), || {
        format!("auth-b is made to fail: {}", text(&failed))
    })?;
    env.sh(&format!(
        "systemctl stop auth-web.service 2>/dev/null; systemctl reset-failed auth-web.service 2>/dev/null; \
         rm -f {SOCK}; systemd-run --quiet --unit=auth-web {} --config {} --jobs-dir {} --socket {SOCK} --listen 127.0.0.1:{port}",
        server.display(),
        config.display(),
        dir.display()
    ))?;
    let result = env
        .wait_for("jobctl-web's sockets", Duration::from_secs(20), || {
            Ok(env.sh(&format!("test -S {SOCK}")).is_ok()
                && env
                    .sh(&format!(
                        "nsenter -t 1 -n curl -s -o /dev/null http://127.0.0.1:{port}/"
                    ))
                    .is_ok())
        })
        .and_then(|()| f(&jobctl, &config));
    let _ = env.sh(
        "systemctl stop auth-web.service; systemctl reset-failed auth-web.service 2>/dev/null; true",
    );
    for job in ["auth-a", "auth-b"] {
        let _ = jobctl(&["remove", job]);
    }
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    result
}

/// One exchange by curl inside the sandbox (`prefix` runs it as someone or
/// somewhere else): status, lower-case headers, body.
fn curl(env: &Env, prefix: &str, args: &str) -> Result<(u16, String, String), Failed> {
    let out = env.sh(&format!(
        "{prefix} curl -sS -i {NO_CACHE} -w '\\n%{{http_code}}' {args}"
    ))?;
    let (rest, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("curl {args} printed no status: {out}"))?;
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    Ok((code, head.to_ascii_lowercase(), body.to_string()))
}

/// A request on TCP from the sandbox's network (PID 1's), from `source`.
fn tcp(
    env: &Env,
    port: u16,
    source: &str,
    headers: &[String],
    method: &str,
    path: &str,
) -> Result<(u16, String, String), Failed> {
    let headers: Vec<String> = headers.iter().map(|h| format!("-H '{h}'")).collect();
    curl(
        env,
        "nsenter -t 1 -n",
        &format!(
            "--interface {source} -X {method} {} 'http://127.0.0.1:{port}{path}'",
            headers.join(" ")
        ),
    )
}

fn json(body: &str) -> Result<Value, Failed> {
    serde_json::from_str(body).map_err(|e| format!("{e}: {body}").into())
}

fn cli_json(jobctl: &dyn Fn(&[&str]) -> Output, args: &[&str]) -> Result<Value, Failed> {
    let out = jobctl(args);
    json(&String::from_utf8_lossy(&out.stdout))
}

fn port() -> u16 {
    21000 + (std::process::id() % 20000) as u16
}

pub fn a_filtered_token_sees_and_runs_only_its_jobs(env: &Env) -> R {
    let port = port();
    with_server(
        env,
        "web-auth-filter",
        "[web]\nactions = true\n",
        port,
        |jobctl, _| {
            let created = jobctl(&[
                "token", "create", "--scope", "read,run", "--tag", "team-a", "--name", "team-a",
            ]);
            ok(&created)?;
            let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
            // token list shows the filter (text and jobctl.tokens/v1).
            let listed = cli_json(jobctl, &["token", "list", "--json"])?;
            check(
                listed["tokens"][0]["tags"] == serde_json::json!(["team-a"])
                    && listed["tokens"][0]["jobs"] == serde_json::json!([]),
                || format!("token list --json: {listed:#}"),
            )?;
            let text = String::from_utf8_lossy(&jobctl(&["token", "list"]).stdout).to_string();
            check(text.contains("team-a\tread,run\ttags=team-a"), || {
                format!("token list: {text}")
            })?;
            let bearer = [format!("Authorization: Bearer {token}")];
            let get = |path: &str| tcp(env, port, "127.0.0.1", &bearer, "GET", path);

            // The list: exactly `list --tag team-a`, and it says it is narrowed.
            let (status, head, body) = get("/api/v1/jobs")?;
            check(status == 200, || format!("/api/v1/jobs: {status} {body}"))?;
            let want = cli_json(jobctl, &["list", "--json", "--tag", "team-a"])?;
            check(json(&body)? == want, || {
                format!("the filtered list is not list --tag team-a:\n{body}\n{want:#}")
            })?;
            check(head.contains("jobctl-filtered: jobs"), || {
                format!("no Jobctl-Filtered header: {head}")
            })?;
            // The page lists only auth-a.
            let (status, _, body) = get("/")?;
            check(
                status == 200
                    && body.contains("href=\"/jobs/auth-a\"")
                    && !body.contains("auth-b")
                    && body.contains("only the jobs this token may see"),
                || format!("the jobs page: {status} {body}"),
            )?;
            // One job, its runs, a run and its output: its own, and 404 for the
            // other, the same answer as for a job that does not exist.
            let (status, _, body) = get("/api/v1/jobs/auth-a")?;
            check(status == 200, || format!("its own job: {status} {body}"))?;
            let (_, _, unknown) = get("/api/v1/jobs/no-such-job")?;
            let b_run = env.runs("auth-b")?[0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            for path in [
                "/api/v1/jobs/auth-b".to_string(),
                "/api/v1/jobs/auth-b/runs".to_string(),
                "/api/v1/runs?job=auth-b".to_string(),
                format!("/api/v1/jobs/auth-b/runs/{b_run}"),
                format!("/api/v1/jobs/auth-b/runs/{b_run}/output"),
                format!("/api/v1/jobs/auth-b/runs/{b_run}/output/text"),
                format!("/api/v1/jobs/auth-b/runs/{b_run}/output/events"),
                "/api/v1/notifications?job=auth-b".to_string(),
            ] {
                let (status, _, body) = get(&path)?;
                check(status == 404 && body == unknown, || {
                    format!("{path}: {status} {body} (an unknown job: {unknown})")
                })?;
            }
            // A run by its id alone: the same answer as a run that does
            // not exist.
            let (_, _, no_run) = get("/api/v1/runs/00000000")?;
            let (status, _, body) = get(&format!("/api/v1/runs/{b_run}"))?;
            check(
                status == 404 && body.replace(&b_run, "00000000") == no_run,
                || format!("/api/v1/runs/{b_run}: {status} {body} (no such run: {no_run})"),
            )?;
            for page in [
                "/jobs/auth-b".to_string(),
                format!("/jobs/auth-b/runs/{b_run}"),
            ] {
                let (status, _, body) = get(&page)?;
                check(status == 404 && !body.contains("says hello"), || {
                    format!("{page}: {status} {body}")
                })?;
            }
            // Runs across jobs: auth-a's, as `history --job auth-a` lists them.
            let (status, _, body) = get("/api/v1/runs")?;
            let want = cli_json(jobctl, &["history", "--json", "--job", "auth-a"])?;
            check(status == 200 && json(&body)? == want, || {
                format!("/api/v1/runs: {status}\n{body}\nwanted {want:#}")
            })?;
            let a_run = want["runs"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (status, _, body) = get(&format!("/api/v1/jobs/auth-a/runs/{a_run}/output"))?;
            check(status == 200 && body.contains("auth-a says hello"), || {
                format!("its own output: {status} {body}")
            })?;
            // Health: as `health auth-a` counts it (auth-b's failure is not
            // there), and its exit status is that report's.
            let (status, head, body) = get("/api/v1/health")?;
            let want = cli_json(jobctl, &["health", "--json", "auth-a"])?;
            check(
                status == 200 && json(&body)? == want && want["healthy"] == true,
                || format!("/api/v1/health: {status}\n{body}\nwanted {want:#}"),
            )?;
            check(head.contains("jobctl-exit-status: 0"), || {
                format!("the narrowed health's exit status: {head}")
            })?;
            let (_, _, page) = get("/health")?;
            check(
                !page.contains("auth-b") && page.contains("OK - 1 job, no problems"),
                || format!("the health page: {page}"),
            )?;
            // Metrics: auth-a's series only.
            let (status, _, body) = get("/metrics")?;
            check(
                status == 200
                    && body.contains("jobctl_job_runs_total{job=\"auth-a\"")
                    && !body.contains("job=\"auth-b\""),
                || format!("/metrics: {status}\n{body}"),
            )?;
            // Actions: the other job cannot be run (404) and does not run; its
            // own can.
            let before_b = env.runs("auth-b")?.len();
            let before_a = env.runs("auth-a")?.len();
            let (status, _, body) = tcp(
                env,
                port,
                "127.0.0.1",
                &bearer,
                "POST",
                "/api/v1/jobs/auth-b/run",
            )?;
            check(status == 404, || format!("run auth-b: {status} {body}"))?;
            let (status, _, body) = tcp(
                env,
                port,
                "127.0.0.1",
                &bearer,
                "POST",
                "/api/v1/jobs/auth-a/run",
            )?;
            check(status == 200, || format!("run auth-a: {status} {body}"))?;
            env.wait_for(
                "auth-a's run from the API to be recorded",
                Duration::from_secs(20),
                || Ok(env.runs("auth-a")?.len() == before_a + 1),
            )?;
            let after_b = env.runs("auth-b")?.len();
            check(after_b == before_b, || {
                format!("a refused run started auth-b: {before_b} runs before, {after_b} after")
            })
        },
    )
}

pub fn a_proxy_user_header_counts_only_from_trusted_peers(env: &Env) -> R {
    env.sh("getent passwd webproxy >/dev/null || useradd -M webproxy")?;
    let port = port() + 1;
    let web = "[web]\nactions = true\n[web.trusted_proxy]\nheader = \"X-Remote-User\"\n\
               from = [\"127.0.0.1\", \"unix:webproxy\"]\nusers = { alice = [\"read\", \"run\"], carol = [\"read\"] }\n";
    with_server(env, "web-auth-proxy", web, port, |_, _| {
        let alice = ["X-Remote-User: alice".to_string()];
        let before = env.runs("auth-a")?.len();
        // From an untrusted peer (127.0.0.2 is not in `from`): refused, and a
        // "run now" with the header runs nothing.
        let (status, _, body) = tcp(env, port, "127.0.0.2", &alice, "GET", "/api/v1/jobs")?;
        check(status == 403, || {
            format!("untrusted TCP peer: {status} {body}")
        })?;
        let (status, _, body) = tcp(
            env,
            port,
            "127.0.0.2",
            &alice,
            "POST",
            "/api/v1/jobs/auth-a/run",
        )?;
        check(status == 403, || format!("untrusted run: {status} {body}"))?;
        // Root on the socket may otherwise do anything: with the header it
        // is refused too (root's uid is not a `unix:` peer).
        let (_, _, csrf) = curl(
            env,
            "",
            &format!("--unix-socket {SOCK} http://l/api/v1/csrf"),
        )?;
        let csrf = json(&csrf)?["csrf"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, _, body) = curl(
            env,
            "",
            &format!(
                "-X POST -H 'X-Remote-User: alice' -H 'X-Jobctl-Csrf: {csrf}' --unix-socket {SOCK} http://l/api/v1/jobs/auth-a/run"
            ),
        )?;
        check(status == 403 && body.contains("trusted proxy"), || {
            format!("the header from root on the socket: {status} {body}")
        })?;
        let after = env.runs("auth-a")?.len();
        check(after == before, || {
            format!("a refused header started a run: {before} runs before, {after} after")
        })?;
        let journal = env.sh(
            "journalctl -u auth-web.service --no-pager -o cat | grep -c 'refused a request from' || true",
        )?;
        check(journal.trim().parse::<u32>().unwrap_or(0) >= 3, || {
            format!("refusals not logged: {journal}")
        })?;

        // From the trusted peers: the configured scopes.
        let (status, _, body) = tcp(env, port, "127.0.0.1", &alice, "GET", "/api/v1/jobs")?;
        check(status == 200, || format!("alice reads: {status} {body}"))?;
        let carol = ["X-Remote-User: carol".to_string()];
        let (_, _, body) = tcp(env, port, "127.0.0.1", &carol, "GET", "/api/v1/csrf")?;
        let carol_csrf = json(&body)?["csrf"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let carol = [carol[0].clone(), format!("X-Jobctl-Csrf: {carol_csrf}")];
        let (status, _, body) = tcp(
            env,
            port,
            "127.0.0.1",
            &carol,
            "POST",
            "/api/v1/jobs/auth-a/run",
        )?;
        check(status == 403, || {
            format!("carol may only read: {status} {body}")
        })?;
        let dave = ["X-Remote-User: dave".to_string()];
        let (status, _, body) = tcp(env, port, "127.0.0.1", &dave, "GET", "/api/v1/jobs")?;
        check(status == 403, || {
            format!("no scope unless written: {status} {body}")
        })?;
        // A unix: peer (the proxy's own user on the socket) is trusted too;
        // alice runs auth-a with her CSRF token.
        let as_proxy = "setpriv --reuid=webproxy --regid=$(id -g webproxy) --init-groups";
        let (status, _, body) = curl(
            env,
            as_proxy,
            &format!("-H 'X-Remote-User: alice' --unix-socket {SOCK} http://l/api/v1/csrf"),
        )?;
        check(status == 200, || {
            format!("alice via the unix proxy: {status} {body}")
        })?;
        let alice_csrf = json(&body)?["csrf"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, _, body) = curl(
            env,
            as_proxy,
            &format!("-H 'X-Remote-User: dave' --unix-socket {SOCK} http://l/api/v1/jobs"),
        )?;
        check(status == 403, || {
            format!("dave via the unix proxy: {status} {body}")
        })?;
        let (status, _, body) = curl(
            env,
            as_proxy,
            &format!("--unix-socket {SOCK} http://l/api/v1/jobs"),
        )?;
        check(status == 403, || {
            format!("the proxy's user without the header is a stranger: {status} {body}")
        })?;
        let with_csrf = [alice[0].clone(), format!("X-Jobctl-Csrf: {alice_csrf}")];
        let (status, _, body) = tcp(
            env,
            port,
            "127.0.0.1",
            &with_csrf,
            "POST",
            "/api/v1/jobs/auth-a/run",
        )?;
        check(status == 200, || {
            format!("alice runs auth-a: {status} {body}")
        })?;
        env.wait_for(
            "alice's run to be recorded",
            Duration::from_secs(20),
            || Ok(env.runs("auth-a")?.len() == before + 1),
        )?;
        // The run's record names her as who started it.
        let newest = env.runs("auth-a")?[0].clone();
        check(
            newest["trigger"] == "web" && newest["actor"] == "proxy user alice",
            || format!("alice's run: {newest:#}"),
        )?;
        let journal = env.sh("journalctl -u auth-web.service --no-pager -o cat")?;
        check(
            journal.contains("proxy user alice: jobctl run --json -- auth-a"),
            || format!("the action's log does not name alice:\n{journal}"),
        )
    })
}
