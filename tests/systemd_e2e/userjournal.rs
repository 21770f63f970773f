//! A per-user job's journal lines, for every kind of user manager.
//!
//! journald keeps a user manager's entries in a file of that user's own
//! (`user-UID.journal`, which `journalctl --user` reads) only for uids of
//! 1000 and more: root's own manager (`systemctl --user` as root) and system
//! users (uid < 1000) have theirs in the system's file, where `--user` does
//! not look. `jobctl --user logs --journal JOB` and the `journalctl` hint
//! `run` and `status` print must show the run's lines for each (a system
//! user reads the system's file as a member of `systemd-journal`), and never
//! another user's: a second user runs a job of the same name (the same unit
//! name, `jobctl-ujhello.service`) whose lines claim the first user's
//! invocation (journald takes a user unit's invocation id from the user's
//! own `/run/user/UID/systemd/units/`, and `USER_INVOCATION_ID=` is any
//! sender's to write), and none of them may be shown.

use super::*;

const JOB: &str = "ujhello";
const UNIT: &str = "jobctl-ujhello.service";
/// The second user, who claims the viewer's run.
const FORGER: &str = "ujforger";

/// A user whose manager runs the job.
pub(super) struct User {
    pub(super) name: &'static str,
    pub(super) uid: u32,
    pub(super) home: String,
}

/// Root's own user manager (user@0): its entries are in the system's file.
pub fn root_user_manager(env: &Env) -> R {
    env.sb.start_user_manager().map_err(|e| e.to_string())?;
    let root = User {
        name: "root",
        uid: 0,
        home: "/root".into(),
    };
    let result = one_user(env, &root, true);
    let _ = env.sh("rm -rf /root/ujournal");
    result
}

/// A system user (uid < 1000) with lingering: its entries are in the
/// system's file too, which it reads as a member of `systemd-journal`.
pub fn a_system_user(env: &Env) -> R {
    let user = create_user(env, "ujsys", "--system --groups systemd-journal")?;
    let result = (|| {
        check(user.uid < 1000, || format!("ujsys has uid {}", user.uid))?;
        one_user(env, &user, true)
    })();
    remove_user(env, &user);
    result
}

/// A user with uid >= 1000: their own file, read with or without `--user`.
pub fn a_regular_user(env: &Env) -> R {
    let user = create_user(env, "ujreg", "")?;
    let result = (|| {
        check(user.uid >= 1000, || format!("ujreg has uid {}", user.uid))?;
        one_user(env, &user, false)
    })();
    remove_user(env, &user);
    result
}

/// Creates `name` (`useradd` with `flags`), lingering, and waits for their
/// manager's bus.
pub(super) fn create_user(env: &Env, name: &'static str, flags: &str) -> Result<User, Failed> {
    let uid: u32 = env
        .sh(&format!(
            "id -u {name} >/dev/null 2>&1 || useradd --create-home --shell /bin/sh {flags} {name}; \
             loginctl enable-linger {name}; id -u {name}"
        ))?
        .trim()
        .parse()?;
    let bus = format!("/run/user/{uid}/bus");
    env.wait_for(
        &format!("{name}'s manager"),
        Duration::from_secs(30),
        || Ok(env.sb_path(&bus).exists()),
    )?;
    Ok(User {
        name,
        uid,
        home: format!("/home/{name}"),
    })
}

/// Stops `user`'s manager and removes the user with their home.
pub(super) fn remove_user(env: &Env, user: &User) {
    let (name, uid) = (user.name, user.uid);
    let _ = env.sh(&format!(
        "loginctl disable-linger {name}; loginctl terminate-user {name} 2>/dev/null; \
         for i in $(seq 100); do [ -e /run/user/{uid}/bus ] || break; sleep 0.1; done; \
         userdel --remove {name} 2>/dev/null; true"
    ));
}

/// `sh -c SCRIPT` as `user`, with their groups and the environment of a
/// login of theirs (`HOME`, `XDG_RUNTIME_DIR`, the session bus), `jobctl`
/// on the `PATH`.
pub(super) fn as_user(env: &Env, user: &User, script: &str) -> Result<Output, Failed> {
    let bin = env.scratch.join("userjournal-bin");
    if !bin.join("jobctl").exists() {
        fs::create_dir_all(&bin)?;
        std::os::unix::fs::symlink(JOBCTL, bin.join("jobctl"))?;
    }
    let mut cmd = env.sb.command("/usr/bin/setpriv");
    if user.uid != 0 {
        cmd.arg(format!("--reuid={}", user.name))
            .arg(format!("--regid={}", user.name))
            .arg("--init-groups");
    }
    Ok(cmd
        .arg("/usr/bin/env")
        .arg(format!("HOME={}", user.home))
        .arg(format!("USER={}", user.name))
        .arg(format!("LOGNAME={}", user.name))
        .arg(format!("XDG_RUNTIME_DIR=/run/user/{}", user.uid))
        .arg(format!(
            "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/{}/bus",
            user.uid
        ))
        .arg(format!(
            "PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
            bin.display()
        ))
        .args(["/bin/sh", "-c", script])
        .output()?)
}

/// `jobctl --user` with the case's configuration and jobs folder in the
/// user's home.
const JOBCTL_USER: &str =
    "jobctl --user --config \"$HOME/ujournal/config.toml\" --jobs-dir \"$HOME/ujournal/jobs.d\"";

/// Writes the configuration and `job`'s file (with `command`) into the
/// user's `~/ujournal` and applies it.
fn install(env: &Env, user: &User, command: &str) -> R {
    let out = as_user(
        env,
        user,
        &format!(
            "set -e; d=\"$HOME/ujournal\"; rm -rf \"$d\"; mkdir -p \"$d/jobs.d\"; \
             printf 'jobctl_path = \"%s\"\\n' {JOBCTL} > \"$d/config.toml\"; \
             printf '%s\\nmanual = true\\n' 'command = {command}' > \"$d/jobs.d/{JOB}.toml\"; \
             {JOBCTL_USER} apply"
        ),
    )?;
    ok(&out)
}

/// The newest recorded run of the job, as `user` reads it.
fn newest_run(env: &Env, user: &User) -> Result<Value, Failed> {
    let out = as_user(
        env,
        user,
        &format!("{JOBCTL_USER} history --job {JOB} --json --limit 1"),
    )?;
    ok(&out)?;
    let doc: Value = serde_json::from_slice(&out.stdout)?;
    Ok(doc["runs"][0].clone())
}

fn one_user(env: &Env, user: &User, in_system_file: bool) -> R {
    install(
        env,
        user,
        "[\"/bin/sh\", \"-c\", \"echo uj-line-one-$(id -un); echo uj-line-two-$(id -un)\"]",
    )?;
    let run = as_user(env, user, &format!("{JOBCTL_USER} run {JOB} --wait"))?;
    ok(&run)?;
    let invocation = newest_run(env, user)?["invocation_id"]
        .as_str()
        .ok_or("the run has no invocation id")?
        .to_string();
    let status = as_user(env, user, &format!("{JOBCTL_USER} status {JOB}"))?;
    ok(&status)?;
    // The premise: where journald keeps this user's entries.
    let user_file = env.sh(&format!(
        "ls /var/log/journal/*/user-{}.journal 2>/dev/null || true",
        user.uid
    ))?;
    check(user_file.trim().is_empty() == in_system_file, || {
        format!(
            "{} (uid {}): expected its entries {} the system's journal file; user file: {user_file:?}",
            user.name,
            user.uid,
            if in_system_file { "in" } else { "outside" }
        )
    })?;

    refused_unit(env, user)?;
    let forger = claim_as_forger(env, &invocation)?;
    let result = check_views(env, user, &invocation, &run, &status);
    remove_user(env, &forger);
    result
}

/// A unit the user's manager refuses to load (`Restart=always` on a
/// oneshot): `apply` quotes the manager's reason from the journal, and the
/// `journalctl` command its hint names shows it, pasted as the user.
fn refused_unit(env: &Env, user: &User) -> R {
    let file = "\"$HOME/ujournal/jobs.d/ujrestarts.toml\"";
    let out = as_user(
        env,
        user,
        &format!(
            "printf 'command = [\"/bin/true\"]\\nmanual = true\\n[service_extra]\\nRestart = \"always\"\\n' > {file}; \
             {JOBCTL_USER} apply"
        ),
    )?;
    let all = both(&out);
    // systemd 252: "Service has Restart= set to either always or
    // on-success, which isn't allowed for Type=oneshot services. Refusing."
    check(
        out.status.code() == Some(1)
            && all.contains("jobctl-ujrestarts.service")
            && all.contains("Refusing."),
        || {
            format!(
                "apply as {} must quote systemd's reason:\n{}",
                user.name,
                text(&out)
            )
        },
    )?;
    let hints: Vec<String> = hints_in(&all)
        .into_iter()
        .filter(|h| h.starts_with("journalctl "))
        .collect();
    check(hints.len() == 1, || {
        format!("one journalctl hint expected:\n{all}")
    })?;
    let pasted = as_user(env, user, &format!("{} --no-pager", hints[0]))?;
    check(
        pasted.status.success() && both(&pasted).contains("Refusing."),
        || format!("`{}` pasted as {}:\n{}", hints[0], user.name, text(&pasted)),
    )?;
    ok(&as_user(
        env,
        user,
        &format!("rm {file}; {JOBCTL_USER} apply"),
    )?)
}

/// What `user` sees of the run: `logs --journal` and each `journalctl` hint
/// `run` and `status` printed, pasted.
fn check_views(env: &Env, user: &User, invocation: &str, run: &Output, status: &Output) -> R {
    let name = user.name;
    let mine = [format!("uj-line-one-{name}"), format!("uj-line-two-{name}")];
    let shows = |what: &str, out: &Output| -> R {
        let all = both(out);
        check(
            out.status.success()
                && mine.iter().all(|l| all.contains(l.as_str()))
                && !all.contains("uj-forged"),
            || {
                format!(
                    "{what} as {name} (uid {}) must show {mine:?} and no line of {FORGER}:\n{}",
                    user.uid,
                    text(out)
                )
            },
        )
    };
    let logs = as_user(env, user, &format!("{JOBCTL_USER} logs --journal {JOB}"))?;
    shows("logs --journal", &logs)?;
    let mut hints: Vec<String> = Vec::new();
    for out in [run, status] {
        for hint in hints_in(&both(out)) {
            if hint.starts_with("journalctl ") && !hints.contains(&hint) {
                hints.push(hint);
            }
        }
    }
    check(!hints.is_empty(), || {
        format!(
            "no journalctl hint printed:\n{}\n{}",
            text(run),
            text(status)
        )
    })?;
    for hint in &hints {
        check(hint.contains(invocation), || {
            format!("the hint `{hint}` does not name the run's invocation {invocation}")
        })?;
        let pasted = as_user(env, user, &format!("{hint} --no-pager"))?;
        shows(&format!("the hint `{hint}`, pasted"), &pasted)?;
    }
    Ok(())
}

/// A second user runs a job of the same name whose lines claim the
/// viewer's invocation: through the invocation id journald reads from the
/// user's own runtime folder, and through `USER_INVOCATION_ID=` (what a
/// manager's lines about a unit carry). Waits (as root) until journald has
/// the forged lines, so that their absence later means something. Returns
/// the second user, to be removed when the case ends.
fn claim_as_forger(env: &Env, invocation: &str) -> Result<User, Failed> {
    let forger = create_user(env, FORGER, "")?;
    let stop = format!("{}/stop", forger.home);
    let forgery = Forgery::user("uj", UNIT);
    let script = forgery.script(env, &stop)?;
    let result = (|| {
        install(
            env,
            &forger,
            &format!("[\"/bin/sh\", \"{}\", \"{invocation}\"]", script.display()),
        )?;
        ok(&as_user(env, &forger, &format!("{JOBCTL_USER} run {JOB}"))?)?;
        forgery.claimed(env, forger.uid, invocation)?;
        env.sh(&format!("touch {stop}"))?;
        env.wait_for("the forger's run to end", Duration::from_secs(30), || {
            Ok(newest_run(env, &forger)?["status"] != "running")
        })
    })();
    match result {
        Ok(()) => Ok(forger),
        Err(e) => {
            remove_user(env, &forger);
            Err(e)
        }
    }
}

/// A user's claim on another's invocation (this case's and sysjournal's):
/// from a unit of the user's own manager named `unit`, a link to the id in
/// the user's runtime folder (where journald reads a user unit's
/// `_SYSTEMD_INVOCATION_ID=`) and a line with the field a manager's lines
/// about a unit carry, through `logger --journald`. Every line it writes
/// starts with `{tag}-forged`.
pub(super) struct Forgery {
    tag: &'static str,
    unit: String,
    /// `INVOCATION_ID`/`UNIT` (the system manager's) or `USER_INVOCATION_ID`/`USER_UNIT`.
    fields: (&'static str, &'static str),
}

impl Forgery {
    pub(super) fn system(tag: &'static str, unit: &str) -> Forgery {
        Forgery {
            tag,
            unit: unit.to_string(),
            fields: ("INVOCATION_ID", "UNIT"),
        }
    }

    pub(super) fn user(tag: &'static str, unit: &str) -> Forgery {
        Forgery {
            tag,
            unit: unit.to_string(),
            fields: ("USER_INVOCATION_ID", "USER_UNIT"),
        }
    }

    /// The script, run as `/bin/sh SCRIPT INVOCATION` in the forger's
    /// unit: it claims the invocation, then prints a line every 0.1 s
    /// until `stop` exists (at most a minute).
    pub(super) fn script(&self, env: &Env, stop: &str) -> Result<PathBuf, Failed> {
        let (tag, unit, (id_field, unit_field)) = (self.tag, &self.unit, self.fields);
        let script = env.scratch.join(format!("{tag}-forge.sh"));
        fs::write(
            &script,
            format!(
                "ln -sfn \"$1\" \"/run/user/$(id -u)/systemd/units/invocation:{unit}\"\n\
                 printf 'MESSAGE={tag}-forged-manager-line\\n{id_field}=%s\\n{unit_field}={unit}\\n' \"$1\" \
                 | logger --journald\n\
                 i=0\n\
                 while [ ! -e {stop} ] && [ $i -lt 600 ]; do echo {tag}-forged-line; sleep 0.1; i=$((i+1)); done\n"
            ),
        )?;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
        Ok(script)
    }

    /// Waits (as root) until journald has both forged lines of user `uid`
    /// as `invocation`'s, so that their absence later means something.
    pub(super) fn claimed(&self, env: &Env, uid: u32, invocation: &str) -> R {
        let (tag, id_field) = (self.tag, self.fields.0);
        env.wait_for(
            "journald to take the forged lines as the claimed invocation's",
            Duration::from_secs(30),
            || {
                let claimed = env.sh(&format!(
                    "journalctl --no-pager -o cat _UID={uid} _SYSTEMD_INVOCATION_ID={invocation}; \
                     journalctl --no-pager -o cat _UID={uid} {id_field}={invocation}"
                ))?;
                Ok(claimed.contains(&format!("{tag}-forged-line"))
                    && claimed.contains(&format!("{tag}-forged-manager-line")))
            },
        )
    }
}
