//! Found by using the dashboard as a newcomer would (trial3): from
//! docs/dashboard.md alone, on the shipped units. A broken configuration
//! fails the socket at its first connection (docs/dashboard.md said "after
//! five such starts", read as five clients), a `[web]` group that does not
//! exist (which `jobctl validate` now reports first, at its line and
//! column) is named with its key and file, wrong methods and forms get the
//! documented answers, and without `[web]` groups a user who is not root is
//! told only root may, and how to let others in.

use super::*;
use crate::web::{SOCKET, curl, install_units, json, stop_units};

pub fn a_broken_configuration_fails_the_socket_at_its_first_connection(env: &Env) -> R {
    let dir = env.jobs_dir("trial3-web");
    write_job(
        &dir,
        "trial3-hello",
        "command = [\"/bin/echo\", \"hello\"]\nmanual = true\n",
    );
    let config = env.scratch.join("trial3-config.toml");
    let good = format!("jobctl_path = \"{JOBCTL}\"\n[web]\nactions = true\n");
    fs::write(&config, &good).unwrap();
    ok(&env.jobctl_with(&config, &dir, &["apply", "--json"]))?;
    install_units(env, &dir, &config, None)?;
    let api = |args: &str, path: &str| {
        curl(
            env,
            "",
            &format!("{args} --unix-socket {SOCKET} 'http://localhost{path}'"),
        )
    };
    let (status, body) = api("", "/api/v1/jobs")?;
    check(status == 200, || {
        format!("a good configuration: {status} {body}")
    })?;

    // Neither read_group nor action_group written: a user who is not root
    // is told that only root may, and which keys of which file let others
    // in (it was told "only root and the members of read_group or
    // action_group … may", groups that did not exist).
    let nobody = "setpriv --reuid=nobody --regid=nogroup --clear-groups";
    for (method, path, want) in [
        (
            "",
            "/api/v1/jobs",
            format!(
                "may not read: only root may, as neither read_group nor action_group is \
                 written in [web] of {}; write read_group",
                config.display()
            ),
        ),
        (
            "-X POST",
            "/api/v1/jobs/trial3-hello/run",
            format!(
                "may not run: only root may, as action_group is not written in [web] of {}; \
                 write action_group there",
                config.display()
            ),
        ),
    ] {
        let (status, body) = curl(
            env,
            nobody,
            &format!("{method} --unix-socket {SOCKET} 'http://localhost{path}'"),
        )?;
        let error = json(&body)?["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        check(status == 403 && error.contains(&want), || {
            format!("nobody {method} {path}: {status} {body}; wanted `{want}`")
        })?;
    }

    // A method the route does not take: JSON that names the methods.
    let (status, body) = api("-X DELETE", "/api/v1/jobs/trial3-hello")?;
    check(
        status == 405
            && json(&body)?["error"]
                == "method DELETE is not allowed here; this route takes GET,HEAD",
        || format!("DELETE: {status} {body}"),
    )?;
    // The "Run now" form without its CSRF field: the documented 403, no run.
    let (status, body) = api("-d foo=bar", "/jobs/trial3-hello/run")?;
    check(
        status == 403 && body.contains("Missing or wrong CSRF token"),
        || format!("a form without csrf: {status} {body}"),
    )?;
    let runs = env.jobctl_with(&config, &dir, &["history", "--json", "trial3-hello"]);
    check(
        json(&String::from_utf8_lossy(&runs.stdout))?["runs"]
            .as_array()
            .is_some_and(|r| r.is_empty()),
        || "a refused form started a run".into(),
    )?;

    // The documented recovery, and a socket that gives up at the first
    // connection the server cannot answer.
    let recovery = "systemctl reset-failed jobctl-web.service jobctl-web.socket && systemctl restart jobctl-web.socket";
    let docs = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.md"))
        .unwrap();
    check(docs.contains(recovery), || {
        "docs/dashboard.md no longer gives the recovery this case checks".into()
    })?;
    let one_connection_fails_it = |what: &str| -> R {
        env.sh(&format!("systemctl stop jobctl-web.service; {recovery}"))?;
        // curl fails (reset or refused): only what follows counts.
        let _ = api("", "/api/v1/jobs");
        env.wait_for(
            &format!("{what}: the socket failed after one connection"),
            Duration::from_secs(10),
            || {
                Ok(env.prop("jobctl-web.socket", "ActiveState")? == "failed"
                    && env.prop("jobctl-web.socket", "Result")? == "service-start-limit-hit")
            },
        )
    };

    fs::write(&config, format!("{good}max_age = 5\n")).unwrap();
    // The restart of the service succeeds anyway (it starts, then exits).
    env.sh("systemctl restart jobctl-web.service")?;
    one_connection_fails_it("max_age = 5")?;
    let journal = env.sh("journalctl -u jobctl-web.service --no-pager -o cat | tail -n 40")?;
    check(
        journal.contains(&format!("{}:4:11", config.display())) && journal.contains("web.max_age"),
        || format!("the journal does not name file:line:col and key: {journal}"),
    )?;

    // A group that does not exist: `jobctl validate` says so first (exit 2,
    // the key's line and column, the fix), the server stops, and its error
    // names the key, the file and the same fix.
    fs::write(&config, format!("{good}read_group = \"trial3-nosuch\"\n")).unwrap();
    let out = env.jobctl_with(&config, &dir, &["validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "error: {}:4:14: `web.read_group`: group trial3-nosuch does not exist",
        config.display()
    );
    check(
        out.status.code() == Some(2)
            && err.contains(&want)
            && err.contains("create it (`groupadd trial3-nosuch`)"),
        || format!("`jobctl validate` must say `{want}` (exit 2): {out:?}"),
    )?;
    one_connection_fails_it("a missing group")?;
    let journal = env.sh("journalctl -u jobctl-web.service --no-pager -o cat | tail -n 40")?;
    let want = format!(
        "group trial3-nosuch (`web.read_group` in {}) does not exist: create it (`groupadd trial3-nosuch`)",
        config.display()
    );
    check(journal.contains(&want), || {
        format!("the journal does not say `{want}`: {journal}")
    })?;

    fs::write(&config, &good).unwrap();
    env.sh(recovery)?;
    let (status, body) = api("", "/api/v1/jobs")?;
    check(status == 200, || {
        format!("after the documented recovery: {status} {body}")
    })?;
    stop_units(env)?;
    Ok(())
}
