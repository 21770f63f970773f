//! The dashboard and HTTP API (jobctl-web, issue 16) on a real systemd: the
//! shipped socket unit starts the service at the first connection; the API
//! answers with the very documents `jobctl … --json` prints for the same
//! state; and every refusal (another user on the socket, no token, a token
//! without the scope, an action without its CSRF token) has its status and
//! changes nothing, while an allowed "run now" records a run.

use super::*;

/// The server binary, built beside `jobctl` (crates/jobctl-web; `cargo test
/// --workspace` builds it for its own tests).
pub fn web_binary() -> Result<PathBuf, Failed> {
    let path = Path::new(JOBCTL).with_file_name("jobctl-web");
    check(path.exists(), || {
        format!(
            "{} is missing: build it with `cargo build -p jobctl-web` (scripts/test builds the workspace)",
            path.display()
        )
    })?;
    Ok(path)
}

pub const SOCKET: &str = "/run/jobctl/web.sock";
const FAKEJOB: &str = env!("CARGO_BIN_EXE_fakejob");

/// Installs the shipped system units, the service running this build's
/// jobctl-web on `dir` with `config`, the socket also on TCP `port` when
/// given, and starts the socket (not the service).
pub fn install_units(env: &Env, dir: &Path, config: &Path, tcp: Option<u16>) -> R {
    let (socket, service) = shipped_units(
        "system",
        &format!(
            " --config {} --jobs-dir {}",
            config.display(),
            dir.display()
        ),
    )?;
    let socket = match tcp {
        Some(port) => socket.replace(
            "ListenStream=/run/jobctl/web.sock",
            &format!("ListenStream=/run/jobctl/web.sock\nListenStream=127.0.0.1:{port}"),
        ),
        None => socket,
    };
    let staged = env.scratch.join("web-units");
    let _ = fs::remove_dir_all(&staged);
    fs::create_dir_all(&staged).unwrap();
    fs::write(staged.join("jobctl-web.socket"), socket).unwrap();
    fs::write(staged.join("jobctl-web.service"), service).unwrap();
    env.sh(&format!(
        "systemctl stop jobctl-web.socket jobctl-web.service 2>/dev/null; \
         cp {0}/jobctl-web.socket {0}/jobctl-web.service /etc/systemd/system/ && \
         systemctl daemon-reload && systemctl reset-failed jobctl-web.service 2>/dev/null; \
         systemctl start jobctl-web.socket",
        staged.display()
    ))?;
    Ok(())
}

/// The shipped socket and service units of `units/web/FOLDER` (`system` or
/// `user`), the service's `ExecStart=` running this build's jobctl-web with
/// `args` before the shipped unit's own arguments.
pub(super) fn shipped_units(folder: &str, args: &str) -> Result<(String, String), Failed> {
    let web = web_binary()?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("units/web")
        .join(folder);
    let socket = fs::read_to_string(root.join("jobctl-web.socket"))?;
    let service = fs::read_to_string(root.join("jobctl-web.service"))?;
    let shipped = "ExecStart=/usr/bin/jobctl-web";
    check(service.contains(shipped), || {
        format!("{folder}/jobctl-web.service has no `{shipped}`")
    })?;
    let service = service.replace(shipped, &format!("ExecStart={}{args}", web.display()));
    Ok((socket, service))
}

pub fn stop_units(env: &Env) -> R {
    env.sh("systemctl stop jobctl-web.socket jobctl-web.service; \
         rm -f /etc/systemd/system/jobctl-web.socket /etc/systemd/system/jobctl-web.service; \
         systemctl daemon-reload")?;
    Ok(())
}

/// The header that asks jobctl-web for a reading that started after the
/// request (docs/dashboard.md, "How old an answer may be").
pub const NO_CACHE: &str = "-H 'Cache-Control: no-cache'";

/// An HTTP exchange with curl inside the sandbox: (status, body). `prefix`
/// runs curl as someone else (`setpriv …`). It asks for the exact state
/// ([`NO_CACHE`]): the cases compare answers with the CLI right after a
/// change (web_max_age.rs tests the shared readings a plain request gets).
pub fn curl(env: &Env, prefix: &str, args: &str) -> Result<(u16, String), Failed> {
    let out = env.sh(&format!(
        "{prefix} curl -sS {NO_CACHE} -w '\\n%{{http_code}}' {args}"
    ))?;
    let (body, code) = out.trim_end().rsplit_once('\n').unwrap_or(("", out.trim()));
    let code = code
        .trim()
        .parse()
        .map_err(|_| format!("curl printed no status: {out}"))?;
    Ok((code, body.to_string()))
}

pub(super) fn get(env: &Env, path: &str) -> Result<(u16, String), Failed> {
    curl(
        env,
        "",
        &format!("--unix-socket {SOCKET} 'http://localhost{path}'"),
    )
}

pub fn json(body: &str) -> Result<Value, Failed> {
    serde_json::from_str(body).map_err(|e| format!("{e}: {body}").into())
}

pub(super) fn cli_json(
    env: &Env,
    dir: &Path,
    config: &Path,
    args: &[&str],
) -> Result<Value, Failed> {
    let mut all = vec![
        "--config",
        config.to_str().unwrap(),
        "--jobs-dir",
        dir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = env.sb.command(JOBCTL).args(&all).output().unwrap();
    json(&String::from_utf8_lossy(&out.stdout))
}

/// A jobs folder of two jobs, one of which has run, and a configuration
/// with [web]; returns (folder, configuration).
fn setup(env: &Env, name: &str, web: &str) -> Result<(PathBuf, PathBuf), Failed> {
    let dir = env.jobs_dir(name);
    write_job(&dir, "web-daily", DAILY);
    write_job(
        &dir,
        "web-manual",
        &format!(
            "command = [{FAKEJOB:?}, \"out\", \"hello <script>alert(1)</script>\", \"err\", \"oops\"]\nmanual = true\ndescription = \"<b>not bold</b>\"\n"
        ),
    );
    let config = env.scratch.join(format!("{name}-config.toml"));
    fs::write(&config, format!("jobctl_path = \"{JOBCTL}\"\n{web}")).unwrap();
    let out = env.jobctl_with(&config, &dir, &["apply", "--json"]);
    ok(&out)?;
    let out = env.jobctl_with(&config, &dir, &["run", "web-manual", "--wait"]);
    ok(&out)?;
    Ok((dir, config))
}

pub fn socket_activation_serves_the_clis_json(env: &Env) -> R {
    let (dir, config) = setup(env, "web-parity", "[web]\n")?;
    install_units(env, &dir, &config, None)?;
    let result = (|| {
        env.expect_prop(
            "jobctl-web.service",
            "ActiveState",
            "inactive",
            "the socket, not the service, is started first",
        )?;
        let (status, body) = get(env, "/api/v1/jobs")?;
        check(status == 200, || format!("/api/v1/jobs: {status} {body}"))?;
        env.expect_prop(
            "jobctl-web.service",
            "ActiveState",
            "active",
            "the first connection starts the service",
        )?;
        let want = cli_json(env, &dir, &config, &["list", "--json"])?;
        check(json(&body)? == want, || {
            format!("/api/v1/jobs differs from list --json:\n{body}\n{want:#}")
        })?;

        let pairs: Vec<(String, Vec<String>)> = {
            let runs = cli_json(
                env,
                &dir,
                &config,
                &["history", "--job", "web-manual", "--json"],
            )?;
            let id = runs["runs"][0]["id"]
                .as_str()
                .ok_or_else(|| format!("no run: {runs:#}"))?
                .to_string();
            vec![
                (
                    "/api/v1/jobs/web-manual".into(),
                    vec!["status".into(), "--json".into(), "web-manual".into()],
                ),
                (
                    "/api/v1/jobs/web-manual/runs".into(),
                    vec![
                        "history".into(),
                        "--json".into(),
                        "--job".into(),
                        "web-manual".into(),
                    ],
                ),
                (
                    "/api/v1/runs?status=success".into(),
                    vec![
                        "history".into(),
                        "--json".into(),
                        "--status".into(),
                        "success".into(),
                    ],
                ),
                (
                    format!("/api/v1/jobs/web-manual/runs/{id}/output"),
                    vec![
                        "logs".into(),
                        "--json".into(),
                        "--run".into(),
                        id.clone(),
                        "web-manual".into(),
                    ],
                ),
                (
                    "/api/v1/health".into(),
                    vec!["health".into(), "--json".into()],
                ),
            ]
        };
        for (path, args) in &pairs {
            let (status, body) = get(env, path)?;
            check(status == 200, || format!("{path}: {status} {body}"))?;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let want = cli_json(env, &dir, &config, &args)?;
            check(json(&body)? == want, || {
                format!(
                    "{path} differs from jobctl {}:\n{body}\n{want:#}",
                    args.join(" ")
                )
            })?;
        }
        // The output keeps its stream marks, and what looks like HTML is data.
        let (_, body) = get(env, &pairs[3].0)?;
        let doc = json(&body)?;
        let streams: Vec<&str> = doc["output"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["stream"].as_str())
            .collect();
        check(
            streams.contains(&"stdout") && streams.contains(&"stderr"),
            || format!("stream marks missing: {body}"),
        )?;
        // Cursor pagination: a full page names the next one, which holds the
        // runs started before the page's last.
        ok(&env.jobctl_with(&config, &dir, &["run", "web-manual", "--wait"]))?;
        let all = cli_json(
            env,
            &dir,
            &config,
            &["history", "--json", "--job", "web-manual"],
        )?;
        let all = all["runs"].as_array().cloned().unwrap_or_default();
        check(all.len() == 2, || format!("two runs expected: {all:?}"))?;
        let head = env.sh(&format!(
            "curl -sS -D - -o /dev/null --unix-socket {SOCKET} 'http://l/api/v1/runs?job=web-manual&limit=1'"
        ))?;
        let cursor = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("jobctl-next-cursor:")
                    .map(|v| v.trim().to_string())
            })
            .ok_or_else(|| format!("a full page has no next cursor: {head}"))?;
        let (status, body) = get(
            env,
            &format!("/api/v1/runs?job=web-manual&limit=1&cursor={cursor}"),
        )?;
        check(status == 200, || format!("the next page: {status} {body}"))?;
        let page = json(&body)?;
        check(
            page["runs"].as_array().map(Vec::len) == Some(1) && page["runs"][0] == all[1],
            || {
                format!(
                    "the next page is not the older run:\n{page:#}\n{:#}",
                    all[1]
                )
            },
        )?;
        // /metrics is `jobctl metrics`, byte for byte, as Prometheus text.
        let (status, body) = get(env, "/metrics")?;
        let mut all = vec![
            "--config",
            config.to_str().unwrap(),
            "--jobs-dir",
            dir.to_str().unwrap(),
        ];
        all.push("metrics");
        let out = env.sb.command(JOBCTL).args(&all).output().unwrap();
        let want = String::from_utf8_lossy(&out.stdout);
        check(
            status == 200
                && body.trim_end() == want.trim_end()
                && body.contains("jobctl_job_runs_total{job=\"web-manual\""),
            || format!("/metrics: {status}\n{body}\nwanted:\n{want}"),
        )?;
        let (status, _b) = get(env, "/api/v1/jobs/no-such-job")?;
        check(status == 404, || {
            format!("an unknown job is 404, got {status}: {_b}")
        })
    })();
    stop_units(env)?;
    result
}

pub fn refusals_change_nothing_and_allowed_actions_record_a_run(env: &Env) -> R {
    env.sh(
        "getent group webreaders >/dev/null || groupadd webreaders; \
         getent passwd webreader >/dev/null || useradd -M -G webreaders webreader",
    )?;
    let (dir, config) = setup(
        env,
        "web-refusals",
        "[web]\nactions = true\nread_group = \"webreaders\"\n",
    )?;
    let port = 20000 + (std::process::id() % 20000) as u16;
    let token = |scope: &str, name: &str| -> Result<String, Failed> {
        let out = env
            .sb
            .command(JOBCTL)
            .arg("--config")
            .arg(&config)
            .args(["token", "create", "--scope", scope, "--name", name])
            .output()
            .unwrap();
        ok(&out)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let _ = fs::remove_file(env.scratch.join("web-tokens"));
    let reader = token("read", "reader")?;
    let runner = token("read,run", "runner")?;
    install_units(env, &dir, &config, Some(port))?;
    let result = (|| {
        let runs_before = env.runs("web-manual")?.len();
        let tcp = |auth: &str, method: &str, path: &str| {
            let header = if auth.is_empty() {
                String::new()
            } else {
                format!("-H 'Authorization: Bearer {auth}'")
            };
            // The sandbox's own network namespace: PID 1's.
            curl(
                env,
                "nsenter -t 1 -n",
                &format!("-X {method} {header} 'http://127.0.0.1:{port}{path}'"),
            )
        };
        // TCP: no token, a wrong one, a token without the scope.
        let (status, body) = tcp("", "GET", "/api/v1/jobs")?;
        check(status == 401, || format!("no token: {status} {body}"))?;
        let (status, body) = tcp("jobctl_0000", "GET", "/api/v1/jobs")?;
        check(status == 401, || format!("a wrong token: {status} {body}"))?;
        let (status, body) = tcp(&reader, "GET", "/api/v1/jobs")?;
        check(status == 200, || {
            format!("a read token reads: {status} {body}")
        })?;
        let (status, body) = tcp(&reader, "POST", "/api/v1/jobs/web-manual/run")?;
        check(status == 403, || {
            format!("a read token may not run: {status} {body}")
        })?;
        // The unix socket: another user, a member of the read group.
        let as_user =
            |user: &str| format!("setpriv --reuid={user} --regid=$(id -g {user}) --init-groups");
        let (status, body) = curl(
            env,
            &as_user("nobody"),
            &format!("--unix-socket {SOCKET} http://l/api/v1/jobs"),
        )?;
        check(status == 403, || {
            format!("another user on the socket: {status} {body}")
        })?;
        let (status, body) = curl(
            env,
            &as_user("webreader"),
            &format!("--unix-socket {SOCKET} http://l/api/v1/jobs"),
        )?;
        check(status == 200, || {
            format!("a member of read_group reads: {status} {body}")
        })?;
        let (status, body) = curl(
            env,
            &as_user("webreader"),
            &format!("-X POST --unix-socket {SOCKET} http://l/api/v1/jobs/web-manual/run"),
        )?;
        check(status == 403, || {
            format!("a reader may not run: {status} {body}")
        })?;
        // Root on the socket, without the CSRF token.
        let (status, body) = curl(
            env,
            "",
            &format!("-X POST --unix-socket {SOCKET} http://l/api/v1/jobs/web-manual/run"),
        )?;
        check(status == 403 && body.contains("CSRF"), || {
            format!("an action without its CSRF token: {status} {body}")
        })?;
        // Nothing ran.
        let after = env.runs("web-manual")?.len();
        check(after == runs_before, || {
            format!("refused requests started a run: {runs_before} runs before, {after} after")
        })?;
        // Allowed: a token with `run`, then root with the CSRF token.
        let (status, body) = tcp(&runner, "POST", "/api/v1/jobs/web-manual/run")?;
        check(status == 200, || {
            format!("run now with a run token: {status} {body}")
        })?;
        env.wait_for(
            "the API's run to be recorded",
            Duration::from_secs(20),
            || Ok(env.runs("web-manual")?.len() == runs_before + 1),
        )?;
        let (_, body) = get(env, "/api/v1/csrf")?;
        let csrf = json(&body)?["csrf"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (status, body) = curl(
            env,
            "",
            &format!(
                "-X POST -H 'X-Jobctl-Csrf: {csrf}' --unix-socket {SOCKET} http://l/api/v1/jobs/web-manual/run"
            ),
        )?;
        check(status == 200, || {
            format!("run now as root with CSRF: {status} {body}")
        })?;
        env.wait_for(
            "the second run to be recorded",
            Duration::from_secs(20),
            || Ok(env.runs("web-manual")?.len() == runs_before + 2),
        )?;
        // Enable and disable (scope manage), inside the shipped sandbox.
        let (status, body) = tcp(&runner, "POST", "/api/v1/jobs/web-daily/disable")?;
        check(status == 403, || {
            format!("disable needs manage: {status} {body}")
        })?;
        env.expect_prop(
            "jobctl-web-daily.timer",
            "ActiveState",
            "active",
            "a refused disable changes nothing",
        )?;
        let (status, body) = curl(
            env,
            "",
            &format!(
                "-X POST -H 'X-Jobctl-Csrf: {csrf}' --unix-socket {SOCKET} http://l/api/v1/jobs/web-daily/disable"
            ),
        )?;
        check(status == 200, || {
            format!("disable as root: {status} {body}")
        })?;
        env.expect_prop(
            "jobctl-web-daily.timer",
            "ActiveState",
            "inactive",
            "disabled from the API",
        )?;
        let (status, body) = curl(
            env,
            "",
            &format!(
                "-X POST -H 'X-Jobctl-Csrf: {csrf}' --unix-socket {SOCKET} http://l/api/v1/jobs/web-daily/enable"
            ),
        )?;
        check(status == 200, || format!("enable as root: {status} {body}"))?;
        env.expect_prop(
            "jobctl-web-daily.timer",
            "ActiveState",
            "active",
            "enabled from the API",
        )
    })();
    stop_units(env)?;
    result
}

pub fn pages_show_jobs_runs_and_output_as_text(env: &Env) -> R {
    let (dir, config) = setup(env, "web-pages", "[web]\nactions = true\n")?;
    install_units(env, &dir, &config, None)?;
    let result = (|| {
        let (status, body) = get(env, "/")?;
        check(status == 200, || format!("/: {status} {body}"))?;
        check(
            body.contains("href=\"/jobs/web-manual\"") && body.contains("href=\"/jobs/web-daily\""),
            || format!("the jobs page lists both jobs: {body}"),
        )?;
        check(!body.contains("<script>"), || {
            format!("a script on the jobs page: {body}")
        })?;
        let (status, body) = get(env, "/jobs/web-manual")?;
        check(status == 200, || format!("job page: {status} {body}"))?;
        let run_link = body
            .split("href=\"/jobs/web-manual/runs/")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| format!("no run linked from the job page: {body}"))?
            .to_string();
        check(body.contains("name=\"csrf\""), || {
            format!("the run-now form has no CSRF field: {body}")
        })?;
        let (status, body) = get(env, &format!("/jobs/web-manual/runs/{run_link}"))?;
        check(status == 200, || format!("run page: {status} {body}"))?;
        // The job printed "hello <script>alert(1)</script>" on stdout and
        // "oops" on stderr: shown as text, each line marked with its stream.
        check(
            body.contains("hello &lt;script&gt;alert(1)&lt;/script&gt;")
                && !body.contains("<script>"),
            || format!("the output is not escaped: {body}"),
        )?;
        check(
            body.contains("<span class=\"stdout\"><span class=\"mark\">out|</span>")
                && body.contains("<span class=\"stderr\"><span class=\"mark\">err|</span>oops"),
            || format!("stream marks missing: {body}"),
        )?;
        check(
            body.contains(
                "journalctl _SYSTEMD_UNIT=jobctl-web-manual.service _SYSTEMD_INVOCATION_ID=",
            ),
            || format!("no journalctl command on the run page: {body}"),
        )?;
        let headers = env.sh(&format!(
            "curl -sS -D - -o /dev/null --unix-socket {SOCKET} http://l/health"
        ))?;
        check(
            headers
                .to_ascii_lowercase()
                .contains("content-security-policy: default-src 'none'; style-src 'self';"),
            || format!("no strict CSP on the health page: {headers}"),
        )?;
        // A form post without the CSRF field is refused, and nothing runs.
        let before = env.runs("web-manual")?.len();
        let (status, _) = curl(
            env,
            "",
            &format!("-X POST -d csrf=forged --unix-socket {SOCKET} http://l/jobs/web-manual/run"),
        )?;
        check(status == 403, || format!("a forged form: {status}"))?;
        check(env.runs("web-manual")?.len() == before, || {
            "a forged form started a run".into()
        })
    })();
    stop_units(env)?;
    result
}
