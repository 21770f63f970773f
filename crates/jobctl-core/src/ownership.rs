//! The ownership rule for files that decide what root runs: like sudo and
//! cron, a file root acts on must be root's and writable by nobody else, and
//! so must every folder above it and every link on the way (whoever can
//! change a folder can replace what it holds).

use crate::context::{PathStep, StepKind};

/// One reason a path is unsafe, and the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub fix: String,
}

/// What makes the path in `steps` (from [`crate::context::PathInspector`])
/// unsafe for root: steps owned by another user, or writable by their group
/// or by everyone. Empty when it is safe. A link's own mode means nothing;
/// its owner and its folder do.
///
/// A step another user owns is never "fixed" by handing it to root (that
/// would take a user's home, or their file, away from them): the fix is a
/// copy of the file in a folder only root can write ([`ROOT_COPY_DIR`]).
pub fn root_only_problems(steps: &[PathStep]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for step in steps {
        let what = match step.kind {
            StepKind::Folder => format!("the folder {}", step.path),
            StepKind::Link => format!("the link {}", step.path),
            StepKind::File => step.path.clone(),
        };
        if step.uid != 0 {
            problems.push(Problem {
                message: format!("{what} is owned by uid {}, not root", step.uid),
                fix: copy_for_root(steps),
            });
            // Its mode is its owner's business: the copy is the fix.
            continue;
        }
        let mode = step.mode & 0o7777;
        if step.kind != StepKind::Link && mode & 0o022 != 0 {
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "its group and everyone",
                (true, false) => "its group",
                _ => "everyone",
            };
            let change = if step.kind == StepKind::Folder {
                "replace what it holds"
            } else {
                "change it"
            };
            // A sticky folder open to all (/tmp) is meant to stay so.
            let fix = if step.kind == StepKind::Folder && mode & 0o1002 == 0o1002 {
                format!("move the file out of {}", step.path)
            } else {
                format!("chmod go-w {}", step.path)
            };
            problems.push(Problem {
                message: format!("{what} has mode {mode:04o}, which lets {who} {change}"),
                fix,
            });
        }
    }
    problems
}

/// Where the fix for a file on another user's path copies it to.
pub const ROOT_COPY_DIR: &str = "/etc/jobctl/env";

/// The fix for a file reached through a path another user controls: a
/// root-only copy (the command that makes it), to be named in the job file
/// instead.
fn copy_for_root(steps: &[PathStep]) -> String {
    let file = steps
        .last()
        .filter(|s| s.kind == StepKind::File)
        .map(|s| s.path.as_str());
    match file {
        Some(file) => {
            let name = file.rsplit('/').next().unwrap_or(file);
            let copy = format!("{ROOT_COPY_DIR}/{name}");
            format!(
                "copy it where only root can write, `install -D -m 0600 -o root -g root {} {}`, check what it sets, and name the copy in environment_file",
                shell_word(file),
                shell_word(&copy)
            )
        }
        None => format!(
            "put the file in a folder only root can write (such as {ROOT_COPY_DIR}) and name it in environment_file"
        ),
    }
}

/// `text` as one shell word.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./+-:@%,=".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(path: &str, kind: StepKind, uid: u32, mode: u32) -> PathStep {
        PathStep {
            path: path.into(),
            kind,
            uid,
            mode,
        }
    }

    fn safe_prefix() -> Vec<PathStep> {
        vec![
            step("/", StepKind::Folder, 0, 0o755),
            step("/etc", StepKind::Folder, 0, 0o755),
        ]
    }

    #[test]
    fn root_owned_and_not_writable_by_others_is_safe() {
        let mut steps = safe_prefix();
        steps.push(step("/etc/app.env", StepKind::File, 0, 0o600));
        assert_eq!(root_only_problems(&steps), []);
        // Read access for others is not the rule's business.
        steps[2].mode = 0o644;
        assert_eq!(root_only_problems(&steps), []);
        // A link owned by root, whatever its mode bits say.
        let mut steps = safe_prefix();
        steps.push(step("/etc/app.env", StepKind::Link, 0, 0o777));
        steps.push(step("/srv", StepKind::Folder, 0, 0o755));
        steps.push(step("/srv/app.env", StepKind::File, 0, 0o600));
        assert_eq!(root_only_problems(&steps), []);
    }

    #[test]
    fn every_step_is_judged() {
        let mut steps = safe_prefix();
        steps.push(step("/etc/app.env", StepKind::File, 0, 0o666));
        assert_eq!(
            root_only_problems(&steps),
            [Problem {
                message: "/etc/app.env has mode 0666, which lets its group and everyone change it"
                    .into(),
                fix: "chmod go-w /etc/app.env".into(),
            }]
        );
        let mut steps = safe_prefix();
        steps.push(step("/etc/app.env", StepKind::File, 1000, 0o600));
        assert_eq!(
            root_only_problems(&steps)[0].message,
            "/etc/app.env is owned by uid 1000, not root"
        );
        let mut steps = safe_prefix();
        steps.push(step("/etc/app", StepKind::Folder, 0, 0o775));
        steps.push(step("/etc/app/env", StepKind::File, 0, 0o600));
        assert_eq!(
            root_only_problems(&steps)[0].message,
            "the folder /etc/app has mode 0775, which lets its group replace what it holds"
        );
        // A sticky world-writable folder (/tmp) still lets anyone create a
        // file that is missing, or one an optional path names later.
        let steps = vec![
            step("/", StepKind::Folder, 0, 0o755),
            step("/tmp", StepKind::Folder, 0, 0o1777),
        ];
        assert_eq!(
            root_only_problems(&steps),
            [Problem {
                message: "the folder /tmp has mode 1777, which lets its group and everyone replace what it holds".into(),
                fix: "move the file out of /tmp".into(),
            }]
        );
        let mut steps = safe_prefix();
        steps.push(step("/etc/app.env", StepKind::Link, 1000, 0o777));
        let problems = root_only_problems(&steps);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].message,
            "the link /etc/app.env is owned by uid 1000, not root"
        );
        let mut steps = safe_prefix();
        steps.push(step("/etc/alice", StepKind::Folder, 1000, 0o700));
        steps.push(step("/etc/alice/env", StepKind::File, 1000, 0o600));
        assert_eq!(root_only_problems(&steps).len(), 2);
    }

    #[test]
    fn a_users_file_or_folder_is_never_handed_to_root() {
        // A link in root's folder into mallory's home.
        let mut steps = safe_prefix();
        steps.push(step("/etc/app.env", StepKind::Link, 0, 0o777));
        steps.push(step("/home", StepKind::Folder, 0, 0o755));
        steps.push(step("/home/mallory", StepKind::Folder, 1001, 0o777));
        steps.push(step(
            "/home/mallory/my app.env",
            StepKind::File,
            1001,
            0o666,
        ));
        let problems = root_only_problems(&steps);
        let copy = "copy it where only root can write, `install -D -m 0600 -o root -g root \
                    '/home/mallory/my app.env' '/etc/jobctl/env/my app.env'`, check what it sets, \
                    and name the copy in environment_file";
        assert_eq!(
            problems,
            [
                Problem {
                    message: "the folder /home/mallory is owned by uid 1001, not root".into(),
                    fix: copy.into(),
                },
                Problem {
                    message: "/home/mallory/my app.env is owned by uid 1001, not root".into(),
                    fix: copy.into(),
                },
            ]
        );
        for p in &problems {
            assert!(
                !p.fix.contains("chown") && !p.fix.contains("chmod"),
                "{p:?}"
            );
        }
        // A link another user owns: the copy too, never `chown -h`.
        let mut steps = safe_prefix();
        steps.push(step("/etc/app.env", StepKind::Link, 1000, 0o777));
        steps.push(step("/etc/real.env", StepKind::File, 0, 0o600));
        assert_eq!(
            root_only_problems(&steps)[0].fix,
            "copy it where only root can write, `install -D -m 0600 -o root -g root \
             /etc/real.env /etc/jobctl/env/real.env`, check what it sets, and name the copy \
             in environment_file"
        );
        // An optional file that does not exist (yet) in a user's folder.
        let mut steps = safe_prefix();
        steps.push(step("/etc/alice", StepKind::Folder, 1000, 0o700));
        assert_eq!(
            root_only_problems(&steps)[0].fix,
            "put the file in a folder only root can write (such as /etc/jobctl/env) and name it in environment_file"
        );
    }
}
