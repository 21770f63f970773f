//! Which journal entries are one run's: the one rule every reader of a
//! run's journal lines follows (`logs --journal`, `run --follow`, the
//! `journalctl` hints of `run` and `status`, a notification's
//! `journal_hint`, a lost run's output tail, jobctl-web's live tail and run
//! page).
//!
//! Only fields journald sets itself select them, never one the sender
//! writes. Any process can claim an invocation id: `INVOCATION_ID=` and
//! `USER_INVOCATION_ID=` are the sender's to write (`logger --journald`),
//! and journald reads a user unit's `_SYSTEMD_INVOCATION_ID=` from
//! `/run/user/UID/systemd/units/`, a folder that user owns. So:
//!
//! - the run's own lines are its service's: `_SYSTEMD_UNIT=` (system mode;
//!   journald takes it from the sender's cgroup, and a user unit's is
//!   `user@UID.service`) or this user's `_UID=` and `_SYSTEMD_USER_UNIT=`
//!   (per-user mode), with `_SYSTEMD_INVOCATION_ID=`;
//! - the manager's lines about the run are PID 1's (`_PID=1`, the kernel's
//!   word, with `INVOCATION_ID=`) or, per user, that user's manager's
//!   (`_UID=`, with `USER_INVOCATION_ID=`).
//!
//! Per user, `_UID=` rather than `journalctl --user`: that reads only
//! `user-UID.journal` files, and journald keeps the entries of root's own
//! manager, of system users (uid < 1000) and of every user under
//! `SplitMode=none` in the system's file.

use crate::context::Mode;

/// The `journalctl` matches for one run: its service's own lines, or the
/// manager's lines about it. Each is a list of `FIELD=value` terms that
/// must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMatch {
    /// The lines the run's processes wrote.
    pub own: Vec<(&'static str, String)>,
    /// The manager's lines about the run (a run that failed before its
    /// command started has only those).
    pub manager: Vec<(&'static str, String)>,
}

impl RunMatch {
    /// The run `invocation` of the unit `service`, in `mode`, read by the
    /// user `uid` (only per-user mode uses it).
    pub fn new(mode: Mode, uid: u32, service: &str, invocation: &str) -> RunMatch {
        let invocation = invocation.to_string();
        match mode {
            Mode::System => RunMatch {
                own: vec![
                    ("_SYSTEMD_UNIT", service.to_string()),
                    ("_SYSTEMD_INVOCATION_ID", invocation.clone()),
                ],
                manager: vec![("_PID", "1".into()), ("INVOCATION_ID", invocation)],
            },
            Mode::User => RunMatch {
                own: vec![
                    ("_UID", uid.to_string()),
                    ("_SYSTEMD_USER_UNIT", service.to_string()),
                    ("_SYSTEMD_INVOCATION_ID", invocation.clone()),
                ],
                manager: vec![
                    ("_UID", uid.to_string()),
                    ("USER_INVOCATION_ID", invocation),
                ],
            },
        }
    }

    /// Adds `field=value` to both halves (e.g. `_HOSTNAME=` in a folder of
    /// many hosts' journal files).
    pub fn with(mut self, field: &'static str, value: &str) -> RunMatch {
        self.own.push((field, value.to_string()));
        self.manager.push((field, value.to_string()));
        self
    }

    /// The `journalctl` arguments for the run's own lines alone.
    pub fn own_args(&self) -> Vec<String> {
        terms(&self.own).collect()
    }

    /// The `journalctl` arguments for both: the run's own lines, `+`, the
    /// manager's lines about it.
    pub fn args(&self) -> Vec<String> {
        terms(&self.own)
            .chain(std::iter::once("+".to_string()))
            .chain(terms(&self.manager))
            .collect()
    }
}

fn terms<'a>(terms: &'a [(&'static str, String)]) -> impl Iterator<Item = String> + 'a {
    terms
        .iter()
        .map(|(field, value)| format!("{field}={value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_system_run_is_its_services_lines_and_pid_1s() {
        let m = RunMatch::new(Mode::System, 1000, "jobctl-backup.service", ID);
        assert_eq!(
            m.args(),
            [
                "_SYSTEMD_UNIT=jobctl-backup.service",
                &format!("_SYSTEMD_INVOCATION_ID={ID}"),
                "+",
                "_PID=1",
                &format!("INVOCATION_ID={ID}"),
            ]
        );
        assert_eq!(
            m.own_args(),
            [
                "_SYSTEMD_UNIT=jobctl-backup.service".to_string(),
                format!("_SYSTEMD_INVOCATION_ID={ID}")
            ]
        );
    }

    #[test]
    fn a_users_run_is_their_units_lines_and_their_managers() {
        let m = RunMatch::new(Mode::User, 1000, "jobctl-backup.service", ID);
        assert_eq!(
            m.args(),
            [
                "_UID=1000",
                "_SYSTEMD_USER_UNIT=jobctl-backup.service",
                &format!("_SYSTEMD_INVOCATION_ID={ID}"),
                "+",
                "_UID=1000",
                &format!("USER_INVOCATION_ID={ID}"),
            ]
        );
    }

    /// No field a sender writes selects a run's lines on its own: each
    /// half holds one journald sets itself.
    #[test]
    fn every_half_holds_a_field_journald_sets() {
        for mode in [Mode::System, Mode::User] {
            let m = RunMatch::new(mode, 0, "jobctl-x.service", ID).with("_HOSTNAME", "db1");
            for half in [&m.own, &m.manager] {
                assert!(
                    half.iter()
                        .any(|(f, _)| matches!(*f, "_PID" | "_UID" | "_SYSTEMD_UNIT"))
                );
                assert!(half.contains(&("_HOSTNAME", "db1".to_string())));
            }
        }
    }
}
