//! The per-user dashboard (`jobctl-web --user`) on a real user manager: a
//! regular user (uid >= 1000) installs the shipped user units
//! (`units/web/user/`) in `~/.config/systemd/user` and enables the socket.
//! It is `$XDG_RUNTIME_DIR/jobctl/web.sock`, 0600 in a 0700 folder (one an
//! older jobctl left 0755 is made 0700 by `jobctl --user run`, a link there
//! not followed), and the first connection starts the service; the API
//! answers with the user's own `jobctl --user … --json` (root's system jobs
//! and another user's are not there); another user cannot reach the
//! socket, and the server refuses any other uid that does (root included:
//! `jobctl_core::web::allow` serves the server's own uid alone in per-user
//! mode); and the live tail of a running run shows its lines and none of
//! those a second user writes claiming the same invocation.
//!
//! The viewer is a member of `systemd-journal`, so that their `journalctl`
//! (the server's live tail) can read every journal file, the forger's
//! `user-UID.journal` too: without it the forged lines are out of the
//! viewer's reach whatever the match, and the case would not test the
//! match (`_UID=` in `jobctl_core::journal::RunMatch`).

use super::*;
use crate::userjournal::{Forgery, User, as_user, create_user, remove_user};
use crate::web::{json, shipped_units};
use crate::web_live::{
    curl, events, follow, journal_command_on, lines_in, talking_job, wait_for_end, wait_for_line,
};

/// The user whose dashboard it is.
const VIEWER: &str = "wuviewer";
/// A second regular user: jobs of their own, and a claim on the viewer's run.
const OTHER: &str = "wuother";
/// The viewer's talking job; the other user's job of the same name (the
/// same unit name) claims its run.
const JOB: &str = "wutalk";
const UNIT: &str = "jobctl-wutalk.service";
/// The viewer's job that has run once.
const MINE: &str = "wu-mine";
/// The other user's job.
const THEIRS: &str = "wu-theirs";
/// Root's system job.
const ROOTS: &str = "wu-root";

/// `setpriv` that runs a command as `user`, with their groups.
fn as_prefix(user: &User) -> String {
    format!("setpriv --reuid={0} --regid={0} --init-groups", user.name)
}

/// The user's dashboard socket.
fn socket_of(user: &User) -> String {
    format!("/run/user/{}/jobctl/web.sock", user.uid)
}

/// `GET path` on `user`'s socket, as `user`.
fn get_as(env: &Env, user: &User, path: &str) -> Result<(u16, String), Failed> {
    curl(
        env,
        &as_prefix(user),
        &format!("--unix-socket {} 'http://l{path}'", socket_of(user)),
    )
}

/// `jobctl --user ARGS --json` as `user`, its document.
fn cli_json(env: &Env, user: &User, args: &str) -> Result<Value, Failed> {
    let out = as_user(env, user, &format!("jobctl --user {args} --json"))?;
    ok(&out)?;
    json(&String::from_utf8_lossy(&out.stdout))
}

/// `user`'s configuration (`jobctl_path`, `[web]`) in its default place,
/// and the job files of `dir` in their jobs folder, applied.
fn give_jobs(env: &Env, user: &User, dir: &Path) -> R {
    ok(&as_user(
        env,
        user,
        &format!(
            "set -e; c=\"$HOME/.config/jobctl\"; mkdir -p \"$c/jobs.d\"; \
             printf 'jobctl_path = \"%s\"\\n[web]\\n' {JOBCTL} > \"$c/config.toml\"; \
             cp {}/*.toml \"$c/jobs.d/\"; jobctl --user apply",
            dir.display()
        ),
    )?)
}

/// `systemctl --user show -P ActiveState jobctl-web.service` as `user`.
fn web_state(env: &Env, user: &User) -> Result<String, Failed> {
    let out = as_user(
        env,
        user,
        "systemctl --user show -P ActiveState jobctl-web.service",
    )?;
    ok(&out)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn a_users_own_dashboard_on_their_own_manager(env: &Env) -> R {
    // Root's system job, which the user's dashboard must not show.
    let roots = env.jobs_dir("web-user-root");
    write_job(&roots, ROOTS, DAILY);
    env.apply(&roots)?;
    let viewer = create_user(env, VIEWER, "--groups systemd-journal")?;
    let mut other = None;
    let mut gates = None;
    let result = (|| {
        check(viewer.uid >= 1000, || {
            format!("{VIEWER} has uid {}", viewer.uid)
        })?;
        let theirs = env.jobs_dir("web-user-theirs");
        write_job(
            &theirs,
            THEIRS,
            "command = [\"/bin/true\"]\nmanual = true\n",
        );
        let o = other.insert(create_user(env, OTHER, "")?);
        check(o.uid >= 1000, || format!("{OTHER} has uid {}", o.uid))?;
        give_jobs(env, o, &theirs)?;

        let mine = env.jobs_dir("web-user-mine");
        gates = Some(talking_job(env, &mine, JOB, "web-user-gates"));
        write_job(
            &mine,
            MINE,
            "command = [\"/bin/echo\", \"mine\"]\nmanual = true\n",
        );
        give_jobs(env, &viewer, &mine)?;
        a_folder_left_open_is_made_private(env, &viewer, o)?;

        install_user_units(env, &viewer)?;
        the_socket_and_its_activation(env, &viewer)?;
        the_users_own_jobs(env, &viewer)?;
        nobody_else(env, &viewer, o)?;
        live_tail(env, &viewer, o, theirs.as_path(), gates.as_ref().unwrap())
    })();
    if let Some(gates) = &gates {
        let _ = fs::write(gates.join("one"), "");
        let _ = fs::write(gates.join("two"), "");
    }
    let _ = as_user(
        env,
        &viewer,
        "systemctl --user disable --now jobctl-web.socket; systemctl --user stop jobctl-web.service",
    );
    if let Some(other) = &other {
        let _ = env.sh(&format!("touch {}/stop", other.home));
        remove_user(env, other);
    }
    remove_user(env, &viewer);
    result
}

/// `jobctl --user run` makes `$XDG_RUNTIME_DIR/jobctl` 0700 when an older
/// jobctl left it 0755 (here the viewer's one run of [`MINE`]), before the
/// socket is put in it; a link there is not followed (the other user's run
/// of [`THEIRS`]: the folder the link points to keeps its mode).
fn a_folder_left_open_is_made_private(env: &Env, user: &User, other: &User) -> R {
    let linked = format!("/run/user/{}/jobctl", other.uid);
    let elsewhere = format!("{}/elsewhere", other.home);
    ok(&as_user(
        env,
        other,
        &format!(
            "set -e; rm -rf {linked}; mkdir -m 0755 {elsewhere}; ln -s {elsewhere} {linked}; \
             jobctl --user run {THEIRS} --wait; rm {linked}"
        ),
    )?)?;
    let mode = env.sh(&format!("stat -c '%a' {elsewhere}"))?;
    check(mode == "755\n", || {
        format!("{linked} was a link to {elsewhere}, whose mode must stay 755: {mode:?}")
    })?;
    let folder = format!("/run/user/{}/jobctl", user.uid);
    let run = format!("jobctl --user run {MINE} --wait");
    ok(&as_user(
        env,
        user,
        &format!(
            "set -e; rm -rf {folder}; mkdir -m 0755 {folder}; \
             test \"$(stat -c %a {folder})\" = 755; {run}"
        ),
    )?)?;
    let modes = env.sh(&format!("stat -c '%a %U %F' {folder}"))?;
    let want = format!("700 {} directory\n", user.name);
    check(modes == want, || {
        format!("`{run}` must make a 0755 {folder} 0700: {modes:?}, expected {want:?}")
    })
}

/// The shipped user units, `ExecStart=` pointed at this build's
/// jobctl-web, in `user`'s `~/.config/systemd/user`; `systemctl --user
/// enable --now jobctl-web.socket`.
fn install_user_units(env: &Env, user: &User) -> R {
    let (socket, service) = shipped_units("user", "")?;
    check(service.contains("jobctl-web --user\n"), || {
        format!("the user service does not run `jobctl-web --user`:\n{service}")
    })?;
    let staged = env.scratch.join("web-user-units");
    let _ = fs::remove_dir_all(&staged);
    fs::create_dir_all(&staged)?;
    fs::write(staged.join("jobctl-web.socket"), socket)?;
    fs::write(staged.join("jobctl-web.service"), service)?;
    let out = as_user(
        env,
        user,
        &format!(
            "set -e; u=\"$HOME/.config/systemd/user\"; mkdir -p \"$u\"; \
             cp {0}/jobctl-web.socket {0}/jobctl-web.service \"$u/\"; \
             systemctl --user daemon-reload; systemctl --user enable --now jobctl-web.socket",
            staged.display()
        ),
    )?;
    ok(&out)
}

/// The socket is `$XDG_RUNTIME_DIR/jobctl/web.sock`, the user's, 0600 in a
/// 0700 folder; the first connection starts the service.
fn the_socket_and_its_activation(env: &Env, user: &User) -> R {
    let socket = socket_of(user);
    let folder = format!("/run/user/{}/jobctl", user.uid);
    let modes = env.sh(&format!("stat -c '%a %U %F' {folder} {socket}"))?;
    let want = format!("700 {0} directory\n600 {0} socket\n", user.name);
    check(modes == want, || {
        format!("{folder} and {socket}: {modes:?}, expected {want:?}")
    })?;
    let state = web_state(env, user)?;
    check(state == "inactive", || {
        format!("the socket, not the service, is started first: jobctl-web.service is {state}")
    })?;
    let (status, body) = get_as(env, user, "/api/v1/jobs")?;
    check(status == 200, || format!("/api/v1/jobs: {status} {body}"))?;
    let state = web_state(env, user)?;
    check(state == "active", || {
        format!("the first connection must start jobctl-web.service: it is {state}")
    })
}

/// The API's jobs and runs are the user's own `jobctl --user … --json`:
/// their two jobs, not root's system job nor the other user's.
fn the_users_own_jobs(env: &Env, user: &User) -> R {
    for (path, args) in [
        ("/api/v1/jobs".to_string(), "list".to_string()),
        (
            format!("/api/v1/jobs/{MINE}/runs"),
            format!("history --job {MINE}"),
        ),
    ] {
        let (status, body) = get_as(env, user, &path)?;
        check(status == 200, || format!("{path}: {status} {body}"))?;
        let want = cli_json(env, user, &args)?;
        check(json(&body)? == want, || {
            format!("{path} differs from `jobctl --user {args} --json`:\n{body}\n{want:#}")
        })?;
    }
    let (_, body) = get_as(env, user, "/api/v1/jobs")?;
    let mut names: Vec<String> = json(&body)?["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|j| j["job"].as_str().map(str::to_string))
        .collect();
    names.sort();
    check(names == [MINE, JOB], || {
        format!("the user's dashboard must list their own jobs alone ({MINE}, {JOB}): {names:?}")
    })?;
    let (_, body) = get_as(env, user, &format!("/api/v1/jobs/{MINE}/runs"))?;
    let runs = json(&body)?["runs"].as_array().cloned().unwrap_or_default();
    check(runs.len() == 1 && runs[0]["status"] == "success", || {
        format!("{MINE}'s one run: {runs:?}")
    })?;
    for job in [ROOTS, THEIRS] {
        let (status, body) = get_as(env, user, &format!("/api/v1/jobs/{job}"))?;
        check(status == 404, || {
            format!("another's job {job} on the user's dashboard: {status} {body}")
        })?;
    }
    Ok(())
}

/// Another user cannot reach the socket (its folder is the user's, 0700);
/// root, who can, is refused by the server (403), and so is the other user
/// once the folders let them through: per-user mode serves its own uid
/// alone (`jobctl_core::web::allow`).
fn nobody_else(env: &Env, user: &User, other: &User) -> R {
    let socket = socket_of(user);
    let url = format!("--unix-socket {socket} 'http://l/api/v1/jobs' 2>&1");
    let (status, body) = curl(env, &as_prefix(other), &url)?;
    check(status == 0 && body.contains("curl: (7)"), || {
        format!(
            "{} reached {}'s socket: {status} {body}",
            other.name, user.name
        )
    })?;
    let (status, body) = curl(env, "", &url)?;
    check(status == 403, || {
        format!(
            "root on {}'s socket must be refused: {status} {body}",
            user.name
        )
    })?;
    // The server's own rule, with the folders opened for a moment.
    let run = format!("/run/user/{}", user.uid);
    env.sh(&format!(
        "chmod 0711 {run} {run}/jobctl && chmod 0666 {socket}"
    ))?;
    let opened = curl(env, &as_prefix(other), &url);
    env.sh(&format!(
        "chmod 0700 {run} {run}/jobctl && chmod 0600 {socket}"
    ))?;
    let (status, body) = opened?;
    check(status == 403, || {
        format!(
            "{} on {}'s socket (folders opened) must be refused: {status} {body}",
            other.name, user.name
        )
    })
}

/// The live tail of a running run on the user's socket: the line written
/// before the connection and the one after arrive, none of the other
/// user's lines claiming the run, then the end with its status; the run
/// page's journal command is the CLI's per-user one (`_UID=`).
fn live_tail(env: &Env, user: &User, other: &User, theirs: &Path, gates: &Path) -> R {
    let started = as_user(env, user, &format!("jobctl --user run {JOB}"))?;
    ok(&started)?;
    let mut run = Value::Null;
    env.wait_for("the run to start", Duration::from_secs(30), || {
        run = cli_json(env, user, &format!("history --job {JOB} --limit 1"))?["runs"][0].take();
        Ok(run["status"] == "running")
    })?;
    let id = run["id"].as_str().unwrap_or_default().to_string();
    let invocation = run["invocation_id"]
        .as_str()
        .ok_or("the run has no invocation id")?
        .to_string();
    // Its first line is in the journal before anyone follows.
    env.wait_for(
        "the first line in the journal",
        Duration::from_secs(30),
        || {
            let lines = env.sh(&format!(
                "journalctl --no-pager -o cat _UID={} _SYSTEMD_INVOCATION_ID={invocation}",
                user.uid
            ))?;
            Ok(lines.contains("live-first"))
        },
    )?;
    claim(env, other, theirs, &invocation)?;

    // Followed by the user on their socket, after the forged lines are there.
    let folder = env.scratch.join("web-user-sse");
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder)?;
    env.sh(&format!("chown {} {}", user.name, folder.display()))?;
    let sse = folder.join("tail.sse");
    follow(
        env,
        &as_prefix(user),
        &format!(
            "--unix-socket {} http://l/api/v1/jobs/{JOB}/runs/{id}/output/events",
            socket_of(user)
        ),
        &sse,
    )?;
    wait_for_line(
        env,
        &sse,
        "the line written before the connection",
        "live-first",
    )?;
    fs::write(gates.join("one"), "")?;
    let second = "<script>alert(1)</script> \u{1b}[31mred";
    wait_for_line(env, &sse, "the line written after the connection", second)?;
    fs::write(gates.join("two"), "")?;
    wait_for_end(env, &sse)?;
    let _ = env.sh(&format!("touch {}/stop", other.home));
    let tail: Vec<String> = lines_in(&sse)?
        .iter()
        .map(|l| l["text"].as_str().unwrap_or_default().to_string())
        .collect();
    check(tail == ["live-first", second, "live-last"], || {
        format!(
            "the live tail must show the run's three lines and none of {}'s: {tail:?}",
            other.name
        )
    })?;
    let stream = fs::read_to_string(&sse).unwrap_or_default();
    let end = events(&stream)
        .into_iter()
        .find(|(name, _, _)| name == "end")
        .map(|(_, _, data)| data)
        .unwrap_or_default();
    let end = json(&end)?;
    check(
        end["status"] == "success" && end["run"]["id"] == id.as_str(),
        || format!("the end event: {end}"),
    )?;

    // The run page's journal command is what `jobctl --user` prints: the
    // user's own lines by `_UID=`; pasted, it shows the run's lines alone.
    let status = as_user(env, user, &format!("jobctl --user status {JOB}"))?;
    ok(&status)?;
    let hints: Vec<String> = hints_in(&both(&status))
        .into_iter()
        .chain(hints_in(&both(&started)))
        .filter(|h| h.starts_with("journalctl "))
        .collect();
    let (code, page) = get_as(env, user, &format!("/jobs/{JOB}/runs/{id}"))?;
    check(code == 200, || format!("the run page: {code} {page}"))?;
    let on_page = journal_command_on(&page)?;
    check(
        hints.contains(&on_page)
            && on_page.contains(&format!("_UID={} ", user.uid))
            && on_page.contains(&invocation),
        || {
            format!(
                "the run page's `{on_page}` must be the CLI's per-user hint (_UID={}): {hints:?}",
                user.uid
            )
        },
    )?;
    let pasted = as_user(env, user, &format!("{on_page} --no-pager"))?;
    let all = both(&pasted);
    check(
        pasted.status.success()
            && all.contains("live-first")
            && all.contains("live-last")
            && !all.contains("wu-forged"),
        || format!("`{on_page}` pasted as {}:\n{}", user.name, text(&pasted)),
    )
}

/// `other` runs a job of the viewer's job's name whose lines claim
/// `invocation` (Forgery::user, as in userjournal.rs), and keeps writing
/// until `~/stop` exists; waits (as root) until journald has them as the
/// invocation's.
fn claim(env: &Env, other: &User, theirs: &Path, invocation: &str) -> R {
    let forgery = Forgery::user("wu", UNIT);
    let script = forgery.script(env, &format!("{}/stop", other.home))?;
    write_job(
        theirs,
        JOB,
        &format!(
            "command = [\"/bin/sh\", {:?}, \"{invocation}\"]\nmanual = true\n",
            script.display().to_string()
        ),
    );
    give_jobs(env, other, theirs)?;
    ok(&as_user(env, other, &format!("jobctl --user run {JOB}"))?)?;
    forgery.claimed(env, other.uid, invocation)
}
