//! Found by using the dashboard and API as a newcomer would (issue 16,
//! trial2): from docs/dashboard.md alone, the shipped units on a real
//! systemd, someone outside the configured groups, an id no run can have,
//! and a configuration with a typo followed by the recovery the docs give.

use super::*;
use crate::web::{SOCKET, curl, install_units, json, stop_units};

/// What a newcomer meets on the system socket: a refusal that says what the
/// caller lacks (which groups of which file), a run id refused for what is
/// wrong with it, and, after a typo in the configuration, the way back to
/// a listening socket that docs/dashboard.md gives.
pub fn refusals_say_why_and_a_broken_configuration_recovers_as_documented(env: &Env) -> R {
    let dir = env.jobs_dir("trial2-web");
    write_job(
        &dir,
        "trial2-hello",
        "command = [\"/bin/echo\", \"hello\"]\nmanual = true\n",
    );
    env.sh("getent group trial2-readers >/dev/null || groupadd trial2-readers")?;
    let config = env.scratch.join("trial2-config.toml");
    let good = format!(
        "jobctl_path = \"{JOBCTL}\"\n[web]\nread_group = \"trial2-readers\"\nactions = true\n"
    );
    fs::write(&config, &good).unwrap();
    let jobctl = |args: &[&str]| env.jobctl_with(&config, &dir, args);
    ok(&jobctl(&["apply", "--json"]))?;
    ok(&jobctl(&["run", "trial2-hello", "--wait"]))?;
    install_units(env, &dir, &config, None)?;
    let api = |prefix: &str, path: &str| {
        curl(
            env,
            prefix,
            &format!("--unix-socket {SOCKET} 'http://localhost{path}'"),
        )
    };

    // Someone outside read_group: 403, naming the groups and the file.
    let (status, body) = api(
        "setpriv --reuid=nobody --regid=nogroup --clear-groups",
        "/api/v1/jobs",
    )?;
    check(status == 403, || {
        format!("nobody on the socket: {status} {body}")
    })?;
    let error = json(&body)?["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check(
        error.contains("may not read")
            && error.contains("read_group")
            && error.contains(&config.display().to_string()),
        || format!("the refusal does not say what is missing: {body}"),
    )?;

    // A run id no run can have (the first digit of every id is 0-7): the
    // message gives the real rule, not "at least 4 digits", which ffff has.
    let (status, body) = api("", "/api/v1/runs/ffff")?;
    check(status == 400, || format!("runs/ffff: {status} {body}"))?;
    let error = json(&body)?["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check(
        error.contains("4 to 16 hexadecimal digits") && error.contains("0 to 7"),
        || format!("runs/ffff: {body}"),
    )?;
    let (status, body) = api("", "/api/v1/jobs/trial2-hello/runs/ffff/output")?;
    check(status == 400 && body.contains("0 to 7"), || {
        format!("…/runs/ffff/output: {status} {body}")
    })?;

    // A typo in the configuration: the server does not start, and after a
    // few connections systemd stops starting it and the socket stops
    // listening (start limit). Fixing the file alone does not bring it
    // back; the commands docs/dashboard.md gives do.
    fs::write(&config, good.replace("read_group", "read_grup")).unwrap();
    env.sh("systemctl restart jobctl-web.socket")?;
    for _ in 0..8 {
        let _ = api("", "/api/v1/jobs");
    }
    let state = env.sh("systemctl is-active jobctl-web.socket || true")?;
    check(state.trim() == "failed", || {
        format!("expected the socket to give up after repeated failed starts: {state}")
    })?;
    let journal = env.sh("journalctl -u jobctl-web.service --no-pager -o cat | tail -n 40")?;
    check(
        journal.contains("web.read_grup") && journal.contains("read_group"),
        || format!("the journal does not name the key: {journal}"),
    )?;
    fs::write(&config, &good).unwrap();
    // The recovery, exactly as docs/dashboard.md prints it.
    let docs = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.md"))
        .unwrap();
    let recovery = "systemctl reset-failed jobctl-web.service jobctl-web.socket && systemctl restart jobctl-web.socket";
    check(docs.contains(recovery), || {
        "docs/dashboard.md no longer gives the recovery this case checks".into()
    })?;
    env.sh(recovery)?;
    let (status, body) = api("", "/api/v1/jobs")?;
    check(status == 200, || {
        format!("after the documented recovery: {status} {body}")
    })?;
    stop_units(env)?;
    Ok(())
}
