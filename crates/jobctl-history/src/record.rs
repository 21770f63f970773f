//! One run of a job, as stored: ids, classifications and the record itself.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::liveness::{Liveness, LivenessProbe, ProcessStamp};

/// A run's id: 63 random bits, shown as 16 hexadecimal digits.
///
/// The shim draws it before it touches the database, so the same id names
/// the run in the journal warning when the database cannot be written, and
/// ids from different databases (root's and each user's) never collide when a
/// reader merges them. Random rather than sequential, so that a short prefix
/// (as `git` does with hashes) is enough to name a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(i64);

impl RunId {
    /// Digits shown in tables; 48 bits, so even a million runs practically
    /// never share a short id.
    pub const SHORT_LEN: usize = 12;

    /// Builds an id from random bits (the sign bit is dropped, and zero is
    /// avoided so that an id is never mistaken for "no id").
    pub fn from_random(bits: u64) -> RunId {
        let value = (bits >> 1) as i64;
        RunId(if value == 0 { 1 } else { value })
    }

    pub fn from_i64(value: i64) -> RunId {
        RunId(value)
    }

    pub fn as_i64(self) -> i64 {
        self.0
    }

    /// The first [`RunId::SHORT_LEN`] digits.
    pub fn short(self) -> String {
        self.to_string()[..Self::SHORT_LEN].to_string()
    }

    /// The range of ids whose hexadecimal form starts with `prefix`.
    pub fn prefix_range(prefix: &str) -> Result<(i64, i64), crate::Error> {
        let bad = || crate::Error::BadRunId(prefix.to_string());
        if prefix.len() < 4 || prefix.len() > 16 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let shift = 4 * (16 - prefix.len() as u32);
        let high = u64::from_str_radix(prefix, 16).map_err(|_| bad())?;
        let low = high.checked_shl(shift).unwrap_or(0);
        let top = low | (if shift == 0 { 0 } else { (1u64 << shift) - 1 });
        if low > i64::MAX as u64 {
            return Err(bad());
        }
        Ok((low as i64, top.min(i64::MAX as u64) as i64))
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How a run ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Started and not finished; its shim is alive (or cannot be proven gone).
    Running,
    /// Exit code 0.
    Success,
    /// A non-zero exit code.
    Failed,
    /// The command could not be started: not found, not executable, bad
    /// working directory (exit 127, 126, 125 as `env(1)`).
    Error,
    /// Stopped because the job's timeout expired.
    Timeout,
    /// Stopped by a signal that was not the timeout (`systemctl stop`, the
    /// OOM killer, kill -9 of the command).
    Killed,
    /// The shim itself died mid-run (SIGKILL, power loss): the row was left
    /// `running` and a reader proved its shim is gone.
    Lost,
    /// Not run: past the job's `not_after`.
    Expired,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Running,
        Status::Success,
        Status::Failed,
        Status::Error,
        Status::Timeout,
        Status::Killed,
        Status::Lost,
        Status::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Success => "success",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Timeout => "timeout",
            Status::Killed => "killed",
            Status::Lost => "lost",
            Status::Expired => "expired",
        }
    }

    /// A run that ended badly: what `health` and `--failed` look for.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::Error | Status::Timeout | Status::Killed | Status::Lost
        )
    }

    /// Whether the run has ended (everything but `running`).
    pub fn is_final(self) -> bool {
        self != Status::Running
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| crate::Error::BadValue(format!("unknown status \"{s}\"")))
    }
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// Its timer elapsed.
    Timer,
    /// Started on purpose through systemd (`jobctl run`, `systemctl start`).
    Manual,
    /// `jobctl exec` typed in a shell, outside systemd.
    Shell,
}

impl Trigger {
    pub const ALL: [Trigger; 3] = [Trigger::Timer, Trigger::Manual, Trigger::Shell];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Timer => "timer",
            Trigger::Manual => "manual",
            Trigger::Shell => "shell",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| crate::Error::BadValue(format!("unknown trigger \"{s}\"")))
    }
}

/// Whether `text` is a systemd invocation id as systemd writes it
/// (`$INVOCATION_ID`, `InvocationID`): 32 lowercase hex digits. Nothing else
/// is recorded or read back: readers build `journalctl` commands from it,
/// which people paste into a root shell.
pub fn is_invocation_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// One run, as the shim writes it and readers get it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub job: String,
    /// systemd's `$INVOCATION_ID` (`journalctl _SYSTEMD_INVOCATION_ID=…`).
    pub invocation_id: Option<String>,
    pub trigger: Trigger,
    /// 1 for the first attempt; retries of one invocation count up.
    pub attempt: u32,
    pub host: String,
    pub user: String,
    pub uid: u32,
    /// The command's pid, once it was started.
    pub pid: Option<u32>,
    /// The shim that owns the row, for lost-run detection.
    pub shim: ProcessStamp,
    /// Microseconds since the Unix epoch (UTC).
    pub started_us: i64,
    pub ended_us: Option<i64>,
    /// When the job's timeout expires (`started + --timeout`), if it has one.
    pub deadline_us: Option<i64>,
    pub status: Status,
    pub exit_code: Option<i32>,
    /// The signal that ended the command (or that the shim forwarded).
    pub signal: Option<i32>,
    /// Why the command could not be started, for `error` runs; or, for a
    /// run of any status, why its captured output is not stored
    /// ([`OUTPUT_NOT_STORED`] and the reason: the completing write did not
    /// fit, so the result was stored without it).
    pub error: Option<String>,
    /// Bytes the command wrote to stdout and stderr in total.
    pub output_bytes: u64,
    /// Whether the middle of the output was dropped (over the output limit).
    pub output_truncated: bool,
}

/// How [`RunRecord::error`] starts when the run's output could not be stored
/// with its result.
pub const OUTPUT_NOT_STORED: &str = "output not stored: ";

impl RunRecord {
    /// This record without its output, marked with why (`reason`): what the
    /// shim stores when the write with the output fails (a full disk, an
    /// output too big for the database), so that the result is kept.
    pub fn without_output(&self, reason: &str) -> RunRecord {
        let marker = format!("{OUTPUT_NOT_STORED}{reason}");
        RunRecord {
            error: Some(match &self.error {
                Some(error) => format!("{error}; {marker}"),
                None => marker,
            }),
            ..self.clone()
        }
    }

    /// Why the run's output is not stored, if [`RunRecord::without_output`]
    /// marked it so.
    pub fn output_not_stored(&self) -> Option<&str> {
        let error = self.error.as_deref()?;
        let at = error.find(OUTPUT_NOT_STORED)?;
        Some(&error[at + OUTPUT_NOT_STORED.len()..])
    }

    /// Duration in microseconds, once ended.
    pub fn duration_us(&self) -> Option<i64> {
        self.ended_us.map(|end| (end - self.started_us).max(0))
    }

    /// The status a reader should show: a `running` row whose shim is provably
    /// gone is [`Status::Lost`]. A shim that cannot be checked (another PID
    /// namespace, another host) counts as alive until an hour past the job's
    /// deadline, when systemd would long have stopped it.
    pub fn effective_status(&self, probe: &LivenessProbe, now_us: i64) -> Status {
        if self.status != Status::Running {
            return self.status;
        }
        match probe.check(&self.host, &self.shim) {
            Liveness::Gone => Status::Lost,
            Liveness::Alive => Status::Running,
            Liveness::Unknown => match self.deadline_us {
                Some(deadline) if now_us > deadline.saturating_add(UNKNOWN_GRACE_US) => {
                    Status::Lost
                }
                _ => Status::Running,
            },
        }
    }
}

/// See [`RunRecord::effective_status`].
const UNKNOWN_GRACE_US: i64 = 3_600 * 1_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_display_and_prefix() {
        let id = RunId::from_random(0x5ead_beef_0123_4567u64 << 1);
        assert_eq!(id.to_string(), "5eadbeef01234567");
        assert_eq!(id.short(), "5eadbeef0123");
        let text = id.to_string();
        assert_eq!(text.len(), 16);
        let (lo, hi) = RunId::prefix_range(&text[..6]).unwrap();
        assert!(lo <= id.as_i64() && id.as_i64() <= hi);
        let (lo, hi) = RunId::prefix_range(&text).unwrap();
        assert_eq!((lo, hi), (id.as_i64(), id.as_i64()));
        assert!(RunId::prefix_range("abc").is_err());
        assert!(RunId::prefix_range("xyzw").is_err());
        assert!(RunId::prefix_range("8000").is_err(), "ids are 63-bit");
        assert_eq!(RunId::from_random(0).as_i64(), 1);
        assert_eq!(RunId::from_random(u64::MAX).as_i64(), i64::MAX);
    }

    #[test]
    fn a_record_without_its_output_says_why() {
        let mut record = RunRecord {
            id: RunId::from_random(2),
            job: "j".into(),
            invocation_id: None,
            trigger: Trigger::Shell,
            attempt: 1,
            host: "h".into(),
            user: "u".into(),
            uid: 0,
            pid: Some(7),
            shim: ProcessStamp {
                boot_id: String::new(),
                pid: 1,
                start_ticks: 0,
                pid_ns: 0,
            },
            started_us: 1,
            ended_us: Some(2),
            deadline_us: None,
            status: Status::Failed,
            exit_code: Some(3),
            signal: None,
            error: None,
            output_bytes: 100,
            output_truncated: false,
        };
        assert_eq!(record.output_not_stored(), None);
        let slim = record.without_output("database or disk is full");
        assert_eq!(slim.output_not_stored(), Some("database or disk is full"));
        assert_eq!(
            (slim.status, slim.exit_code, slim.output_bytes),
            (Status::Failed, Some(3), 100)
        );
        record.error = Some("earlier".into());
        let slim = record.without_output("too big");
        assert_eq!(
            slim.error.as_deref(),
            Some("earlier; output not stored: too big")
        );
        assert_eq!(slim.output_not_stored(), Some("too big"));
    }

    #[test]
    fn statuses_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
        }
        for trigger in Trigger::ALL {
            assert_eq!(trigger.as_str().parse::<Trigger>().unwrap(), trigger);
        }
        assert!("bogus".parse::<Status>().is_err());
    }
}
