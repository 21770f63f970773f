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

/// A journal entry's fields (`journalctl -o json`, the string-valued ones).
pub type Fields = std::collections::BTreeMap<String, String>;

/// `MESSAGE_ID=` of a manager's "Deactivated successfully." about a unit
/// (systemd's `SD_MESSAGE_UNIT_SUCCESS`).
pub const UNIT_SUCCESS_ID: &str = "7ad2d189f7e94e70a38c781354912448";

/// Which end entries of a job are its runs' (`logs --journal-dir`): the
/// entry's `JOBCTL_*` fields are any sender's to write (`logger
/// --journald`), so only journald's trusted fields say whether the job's
/// shim wrote it.
///
/// - System mode: `_SYSTEMD_UNIT=` is the job's service (journald reads it
///   from the sender's cgroup).
/// - Per user: `_UID=` is the reader's uid (the kernel's word) and
///   `_SYSTEMD_USER_UNIT=` the job's service.
/// - With no unit at all (the shim had exited before journald read its
///   cgroup; docs/design.md, "Every run in the journal"), the invocation the
///   entry names must be confirmed by the manager's own lines about the
///   service ([`EndEntryRule::manager_terms`], [`EndEntryRule::manager_confirms`]),
///   and the run by its start entry, which the service sent from the same
///   process (`_PID=`, `_BOOT_ID=`) with the same run id
///   ([`EndEntryRule::start_terms`]; the shim is running then, so journald
///   has its unit). Its status is then only the shim's word, checked
///   against the manager's result when the manager logged one
///   ([`ManagerResult`]).
/// - An entry of another unit (or, per user, of another uid) is not the
///   job's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndEntryRule {
    pub mode: Mode,
    /// The reader's uid (per-user mode only).
    pub uid: u32,
    /// The job's service (`jobctl-NAME.service`).
    pub service: String,
}

/// What journald's fields say about an end entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndEntry {
    /// The job's service sent it: the run of `invocation`.
    Confirmed { invocation: String },
    /// No unit was recorded: the run of `invocation` only if the manager's
    /// lines confirm it.
    NeedsManager { invocation: String },
    /// Not the job's run (the reason, for tests and debugging).
    Rejected(&'static str),
}

impl EndEntryRule {
    pub fn new(mode: Mode, uid: u32, service: &str) -> EndEntryRule {
        EndEntryRule {
            mode,
            uid,
            service: service.to_string(),
        }
    }

    /// Judges one end entry.
    pub fn judge(&self, entry: &Fields) -> EndEntry {
        let get = |name: &str| entry.get(name).map(String::as_str);
        let trusted_id = get("_SYSTEMD_INVOCATION_ID").filter(|id| is_invocation_id(id));
        let shim_id = get("JOBCTL_INVOCATION_ID").filter(|id| is_invocation_id(id));
        let unit_field = match self.mode {
            Mode::System => "_SYSTEMD_UNIT",
            Mode::User => {
                if get("_UID") != Some(self.uid.to_string().as_str()) {
                    return EndEntry::Rejected("another user's entry");
                }
                "_SYSTEMD_USER_UNIT"
            }
        };
        match get(unit_field) {
            Some(unit) if unit != self.service => EndEntry::Rejected("another unit's entry"),
            Some(_) => match trusted_id.or(shim_id) {
                Some(id) => EndEntry::Confirmed {
                    invocation: id.to_string(),
                },
                None => EndEntry::Rejected("no invocation id"),
            },
            // In system mode a user unit's process has `_SYSTEMD_UNIT=
            // user@UID.service`, caught above; per user, a process of the
            // user's manager outside any of its units is not the shim.
            None if self.mode == Mode::User
                && get("_SYSTEMD_UNIT").is_some_and(|u| !u.starts_with("user@")) =>
            {
                EndEntry::Rejected("another unit's entry")
            }
            None => match trusted_id.or(shim_id) {
                Some(id) => EndEntry::NeedsManager {
                    invocation: id.to_string(),
                },
                None => EndEntry::Rejected("no invocation id"),
            },
        }
    }

    /// The `journalctl` matches for the manager's lines about the service's
    /// run `invocation`: PID 1's (`_PID=1`, `UNIT=`, `INVOCATION_ID=`) or,
    /// per user, the user's manager's (`_UID=`, `USER_UNIT=`,
    /// `USER_INVOCATION_ID=`).
    pub fn manager_terms(&self, invocation: &str) -> Vec<(&'static str, String)> {
        match self.mode {
            Mode::System => vec![
                ("_PID", "1".into()),
                ("UNIT", self.service.clone()),
                ("INVOCATION_ID", invocation.to_string()),
            ],
            Mode::User => vec![
                ("_UID", self.uid.to_string()),
                ("USER_UNIT", self.service.clone()),
                ("USER_INVOCATION_ID", invocation.to_string()),
            ],
        }
    }

    /// Whether `entry` is the manager's line about the service's run
    /// `invocation` (every term of [`EndEntryRule::manager_terms`] holds).
    pub fn manager_confirms(&self, entry: &Fields, invocation: &str) -> bool {
        self.manager_terms(invocation)
            .iter()
            .all(|(field, value)| entry.get(*field) == Some(value))
    }

    /// The `journalctl` matches for the start entry (`MESSAGE_ID=`
    /// `start_id`) of the run an end entry without a unit names: sent by the
    /// service under `invocation` (journald's fields: the shim is running
    /// then, so journald reads its cgroup), with the entry's run id, from
    /// the entry's process (`_PID=`, `_BOOT_ID=`).
    pub fn start_terms(
        &self,
        start_id: &str,
        end: &Fields,
        invocation: &str,
    ) -> Vec<(&'static str, String)> {
        let mut terms = vec![("MESSAGE_ID", start_id.to_string())];
        match self.mode {
            Mode::System => terms.push(("_SYSTEMD_UNIT", self.service.clone())),
            Mode::User => {
                terms.push(("_UID", self.uid.to_string()));
                terms.push(("_SYSTEMD_USER_UNIT", self.service.clone()));
            }
        }
        terms.push(("_SYSTEMD_INVOCATION_ID", invocation.to_string()));
        for field in ["JOBCTL_RUN_ID", "_PID", "_BOOT_ID", "_HOSTNAME"] {
            // A field the end entry lacks is matched empty: nothing has it.
            let value = end.get(field).cloned().unwrap_or_default();
            terms.push((field, value));
        }
        terms
    }

    /// Whether `start` is the start entry [`EndEntryRule::start_terms`]
    /// asks for (every term holds, none empty).
    pub fn start_confirms(
        &self,
        start: &Fields,
        start_id: &str,
        end: &Fields,
        invocation: &str,
    ) -> bool {
        self.start_terms(start_id, end, invocation)
            .iter()
            .all(|(field, value)| !value.is_empty() && start.get(*field) == Some(value))
    }
}

/// The manager's word on how a run's main process (the shim) ended, from
/// its lines about the invocation: "Main process exited, code=…, status=…"
/// (`EXIT_CODE=`, `EXIT_STATUS=`; logged for a failure) or "Deactivated
/// successfully." ([`UNIT_SUCCESS_ID`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagerResult {
    /// Not logged (yet).
    Unknown,
    Success,
    /// `EXIT_CODE=exited` with `EXIT_STATUS=`.
    Exited(i64),
    /// Another `EXIT_CODE=` (`killed`, `dumped`) with its `EXIT_STATUS=`.
    Other(String, String),
}

impl ManagerResult {
    /// From the manager's lines about one invocation (confirmed ones).
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a Fields>) -> ManagerResult {
        let mut result = ManagerResult::Unknown;
        for entry in entries {
            let get = |name: &str| entry.get(name).map(String::as_str);
            match (get("EXIT_CODE"), get("EXIT_STATUS")) {
                (Some("exited"), Some(status)) => {
                    if let Ok(n) = status.parse() {
                        return ManagerResult::Exited(n);
                    }
                }
                (Some(code), Some(status)) => {
                    return ManagerResult::Other(code.to_string(), status.to_string());
                }
                _ => {}
            }
            if get("MESSAGE_ID") == Some(UNIT_SUCCESS_ID) {
                result = ManagerResult::Success;
            }
        }
        result
    }

    /// Whether the end entry `entry` says otherwise than the manager about
    /// the exit (a code only: the shim exits with its command's code).
    pub fn contradicts(&self, entry: &Fields) -> bool {
        let code = entry
            .get("JOBCTL_EXIT_CODE")
            .and_then(|c| c.parse::<i64>().ok());
        let signal = entry.contains_key("JOBCTL_SIGNAL");
        match self {
            ManagerResult::Unknown => false,
            ManagerResult::Success => signal || code.is_some_and(|c| c != 0),
            ManagerResult::Exited(n) => signal || code.unwrap_or(0) != *n,
            ManagerResult::Other(..) => code.is_some() && !signal,
        }
    }

    /// For a note: what the manager said, or that it said nothing.
    pub fn describe(&self) -> String {
        match self {
            ManagerResult::Unknown => "the manager's result is not there".into(),
            ManagerResult::Success => "the manager says it ended successfully".into(),
            ManagerResult::Exited(n) => format!("the manager says it exited with status {n}"),
            ManagerResult::Other(code, status) => {
                format!("the manager says code={code}, status={status}")
            }
        }
    }
}

/// systemd's form of an invocation id: 32 lowercase hex digits (the value
/// goes into a `journalctl` match).
pub fn is_invocation_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
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

    fn entry(fields: &[(&str, &str)]) -> Fields {
        fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const OTHER: &str = "fedcba9876543210fedcba9876543210";
    const SERVICE: &str = "jobctl-backup.service";

    /// The shim's end entry as a forger can write it: every `JOBCTL_*`
    /// field, none of journald's.
    fn forged(extra: &[(&str, &str)]) -> Fields {
        let mut e = entry(&[
            ("JOBCTL_JOB", "backup"),
            ("MESSAGE_ID", "aec38bfebe5945bab10eb9ca7ea3c720"),
            ("JOBCTL_STATUS", "failed"),
            ("JOBCTL_EXIT_CODE", "3"),
            ("JOBCTL_INVOCATION_ID", ID),
        ]);
        e.extend(entry(extra));
        e
    }

    #[test]
    fn a_system_end_entry_counts_only_from_the_jobs_service() {
        let rule = EndEntryRule::new(Mode::System, 0, SERVICE);
        let own = forged(&[
            ("_SYSTEMD_UNIT", SERVICE),
            ("_SYSTEMD_INVOCATION_ID", ID),
            ("_UID", "0"),
        ]);
        assert_eq!(
            rule.judge(&own),
            EndEntry::Confirmed {
                invocation: ID.into()
            }
        );
        // journald's invocation wins over the shim's word.
        let mut both = own.clone();
        both.insert("JOBCTL_INVOCATION_ID".into(), OTHER.into());
        assert_eq!(
            rule.judge(&both),
            EndEntry::Confirmed {
                invocation: ID.into()
            }
        );
        // A user's session, a user's manager, another job: not the job's.
        for unit in [
            "session-3.scope",
            "user@1000.service",
            "jobctl-other.service",
        ] {
            let e = forged(&[("_SYSTEMD_UNIT", unit), ("_UID", "1000")]);
            assert!(matches!(rule.judge(&e), EndEntry::Rejected(_)), "{unit}");
        }
        // A per-user unit of the same name is not the system's service.
        let user_unit = forged(&[
            ("_SYSTEMD_UNIT", "user@1000.service"),
            ("_SYSTEMD_USER_UNIT", SERVICE),
            ("_UID", "1000"),
        ]);
        assert!(matches!(rule.judge(&user_unit), EndEntry::Rejected(_)));
        // No unit recorded: the manager must confirm the invocation.
        let bare = forged(&[("_UID", "1000")]);
        assert_eq!(
            rule.judge(&bare),
            EndEntry::NeedsManager {
                invocation: ID.into()
            }
        );
        // No invocation in systemd's form: nothing to confirm.
        let bad = entry(&[
            ("_SYSTEMD_UNIT", SERVICE),
            ("JOBCTL_INVOCATION_ID", "x _UID=0"),
        ]);
        assert!(matches!(rule.judge(&bad), EndEntry::Rejected(_)));
    }

    #[test]
    fn a_users_end_entry_counts_only_from_their_uid_and_unit() {
        let rule = EndEntryRule::new(Mode::User, 1000, SERVICE);
        let own = forged(&[
            ("_UID", "1000"),
            ("_SYSTEMD_UNIT", "user@1000.service"),
            ("_SYSTEMD_USER_UNIT", SERVICE),
            ("_SYSTEMD_INVOCATION_ID", ID),
        ]);
        assert_eq!(
            rule.judge(&own),
            EndEntry::Confirmed {
                invocation: ID.into()
            }
        );
        // Another user's genuine end entry of a job of the same name.
        let mut theirs = own.clone();
        theirs.insert("_UID".into(), "1001".into());
        assert!(matches!(rule.judge(&theirs), EndEntry::Rejected(_)));
        let no_uid = forged(&[("_SYSTEMD_USER_UNIT", SERVICE)]);
        assert!(matches!(rule.judge(&no_uid), EndEntry::Rejected(_)));
        // Another of their units, or a session outside their manager.
        let other_unit = forged(&[("_UID", "1000"), ("_SYSTEMD_USER_UNIT", "x.service")]);
        assert!(matches!(rule.judge(&other_unit), EndEntry::Rejected(_)));
        let session = forged(&[("_UID", "1000"), ("_SYSTEMD_UNIT", "session-2.scope")]);
        assert!(matches!(rule.judge(&session), EndEntry::Rejected(_)));
        // No unit recorded: their manager must confirm.
        let bare = forged(&[("_UID", "1000")]);
        assert_eq!(
            rule.judge(&bare),
            EndEntry::NeedsManager {
                invocation: ID.into()
            }
        );
    }

    #[test]
    fn the_manager_confirms_by_its_own_fields() {
        let system = EndEntryRule::new(Mode::System, 1000, SERVICE);
        let pid1 = entry(&[
            ("_PID", "1"),
            ("UNIT", SERVICE),
            ("INVOCATION_ID", ID),
            (
                "MESSAGE",
                "jobctl-backup.service: Failed with result 'exit-code'.",
            ),
        ]);
        assert!(system.manager_confirms(&pid1, ID));
        assert!(!system.manager_confirms(&pid1, OTHER));
        // A sender other than PID 1 writing the same fields.
        let mut logger = pid1.clone();
        logger.insert("_PID".into(), "4242".into());
        assert!(!system.manager_confirms(&logger, ID));
        // Another unit's run.
        let mut other = pid1.clone();
        other.insert("UNIT".into(), "jobctl-other.service".into());
        assert!(!system.manager_confirms(&other, ID));
        assert_eq!(
            system.manager_terms(ID),
            [
                ("_PID", "1".to_string()),
                ("UNIT", SERVICE.to_string()),
                ("INVOCATION_ID", ID.to_string())
            ]
        );

        let user = EndEntryRule::new(Mode::User, 1000, SERVICE);
        let manager = entry(&[
            ("_UID", "1000"),
            ("_PID", "812"),
            ("USER_UNIT", SERVICE),
            ("USER_INVOCATION_ID", ID),
        ]);
        assert!(user.manager_confirms(&manager, ID));
        let mut another = manager.clone();
        another.insert("_UID".into(), "1001".into());
        assert!(!user.manager_confirms(&another, ID));
        // The system manager's fields do not confirm a user's run.
        assert!(!user.manager_confirms(&pid1, ID));
    }

    #[test]
    fn a_start_entry_of_the_service_confirms_the_run_and_its_process() {
        const START: &str = "24aaa54b2b2f47e1950af29fb80e6056";
        let rule = EndEntryRule::new(Mode::System, 0, SERVICE);
        let end = forged(&[
            ("JOBCTL_RUN_ID", "5eadbeef01234567"),
            ("_PID", "4242"),
            ("_BOOT_ID", "b00t"),
            ("_HOSTNAME", "db1"),
        ]);
        let start = entry(&[
            ("MESSAGE_ID", START),
            ("_SYSTEMD_UNIT", SERVICE),
            ("_SYSTEMD_INVOCATION_ID", ID),
            ("JOBCTL_RUN_ID", "5eadbeef01234567"),
            ("_PID", "4242"),
            ("_BOOT_ID", "b00t"),
            ("_HOSTNAME", "db1"),
        ]);
        assert!(rule.start_confirms(&start, START, &end, ID));
        assert!(!rule.start_confirms(&start, START, &end, OTHER));
        // Another process, run, unit or host.
        for (field, value) in [
            ("_PID", "4243"),
            ("JOBCTL_RUN_ID", "f0f0f0f0f0f0f0f0"),
            ("_SYSTEMD_UNIT", "session-1.scope"),
            ("_HOSTNAME", "db2"),
            ("MESSAGE_ID", "aec38bfebe5945bab10eb9ca7ea3c720"),
        ] {
            let mut other = start.clone();
            other.insert(field.into(), value.into());
            assert!(!rule.start_confirms(&other, START, &end, ID), "{field}");
        }
        // An end entry without a process (nothing journald set) matches none.
        let mut no_pid = end.clone();
        no_pid.remove("_PID");
        let mut start_no_pid = start.clone();
        start_no_pid.remove("_PID");
        assert!(!rule.start_confirms(&start_no_pid, START, &no_pid, ID));
        // Per user: their uid and user unit.
        let user = EndEntryRule::new(Mode::User, 1000, SERVICE);
        let mut theirs = start.clone();
        theirs.remove("_SYSTEMD_UNIT");
        theirs.insert("_SYSTEMD_USER_UNIT".into(), SERVICE.into());
        theirs.insert("_UID".into(), "1000".into());
        assert!(user.start_confirms(&theirs, START, &end, ID));
        theirs.insert("_UID".into(), "1001".into());
        assert!(!user.start_confirms(&theirs, START, &end, ID));
    }

    #[test]
    fn the_managers_result_checks_the_shims_word() {
        let exited = entry(&[("EXIT_CODE", "exited"), ("EXIT_STATUS", "3")]);
        let success = entry(&[("MESSAGE_ID", UNIT_SUCCESS_ID)]);
        let killed = entry(&[("EXIT_CODE", "killed"), ("EXIT_STATUS", "15")]);
        let other = entry(&[("MESSAGE", "Starting")]);
        assert_eq!(ManagerResult::of([&other]), ManagerResult::Unknown);
        assert_eq!(
            ManagerResult::of([&other, &exited]),
            ManagerResult::Exited(3)
        );
        assert_eq!(ManagerResult::of([&success]), ManagerResult::Success);
        assert_eq!(
            ManagerResult::of([&killed]),
            ManagerResult::Other("killed".into(), "15".into())
        );

        let failed3 = forged(&[]);
        let mut ok = forged(&[]);
        ok.insert("JOBCTL_STATUS".into(), "success".into());
        ok.insert("JOBCTL_EXIT_CODE".into(), "0".into());
        let mut by_signal = forged(&[("JOBCTL_SIGNAL", "SIGTERM")]);
        by_signal.remove("JOBCTL_EXIT_CODE");
        assert!(!ManagerResult::Unknown.contradicts(&failed3));
        assert!(!ManagerResult::Exited(3).contradicts(&failed3));
        assert!(ManagerResult::Exited(4).contradicts(&failed3));
        assert!(ManagerResult::Exited(3).contradicts(&ok));
        assert!(ManagerResult::Success.contradicts(&failed3));
        assert!(!ManagerResult::Success.contradicts(&ok));
        assert!(ManagerResult::Success.contradicts(&by_signal));
        assert!(ManagerResult::Other("killed".into(), "15".into()).contradicts(&failed3));
        assert!(!ManagerResult::Other("killed".into(), "15".into()).contradicts(&by_signal));
    }
}
