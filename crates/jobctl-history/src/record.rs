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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    /// Started by another job's end: systemd's `OnSuccess=`/`OnFailure=`
    /// (the job keys `on_success`/`on_failure`), which tells the started
    /// service who it was through `$MONITOR_*` ([`RunRecord::upstream`]).
    /// Older jobctl versions do not know this value and skip such rows (a
    /// bad row, named in a warning).
    Chain,
    /// "Run now" from the dashboard or HTTP API (jobctl-web). Never stored
    /// in `runs` (the shim cannot tell it from `manual`): readers give it
    /// to a `manual` run whose invocation has an origin in the database of
    /// the mode's owner ([`crate::Origin`]). A row of `runs` that says
    /// `web` is a bad row, like any value the shim does not write.
    Web,
}

impl Trigger {
    /// The triggers the shim records in `runs` (what a row may hold).
    pub const ALL: [Trigger; 4] = [
        Trigger::Timer,
        Trigger::Manual,
        Trigger::Shell,
        Trigger::Chain,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Timer => "timer",
            Trigger::Manual => "manual",
            Trigger::Shell => "shell",
            Trigger::Chain => "chain",
            Trigger::Web => "web",
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

/// Where a figure of a run's [`Usage`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The unit's cgroup (cgroup v2 `cpu.stat`, `memory.peak`, `io.stat`):
    /// every process of the run, daemons and strays included.
    Cgroup,
    /// `wait4(2)`'s rusage of the command: the command and the descendants
    /// it waited for.
    Rusage,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cgroup => "cgroup",
            Source::Rusage => "rusage",
        }
    }

    fn parse(text: &str) -> Option<Source> {
        match text {
            "cgroup" => Some(Source::Cgroup),
            "rusage" => Some(Source::Rusage),
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where each group of a run's [`Usage`] figures comes from: a host whose
/// unit cgroups lack the memory or io controller (a hybrid hierarchy, a
/// container) gives the CPU time from the cgroup and the rest from rusage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct UsageSource {
    pub cpu: Source,
    pub memory: Source,
    pub io: Source,
}

impl UsageSource {
    /// Every figure from `source`.
    pub const fn all(source: Source) -> UsageSource {
        UsageSource {
            cpu: source,
            memory: source,
            io: source,
        }
    }

    /// As stored (and in the journal's `JOBCTL_USAGE_SOURCE`): `cgroup` or
    /// `rusage` when every figure has that source, else
    /// `cpu:cgroup,memory:rusage,io:rusage`.
    pub fn to_text(self) -> String {
        if self.cpu == self.memory && self.memory == self.io {
            return self.cpu.as_str().to_string();
        }
        format!("cpu:{},memory:{},io:{}", self.cpu, self.memory, self.io)
    }

    /// Reads [`UsageSource::to_text`]'s forms back.
    pub fn parse(text: &str) -> Option<UsageSource> {
        if let Some(source) = Source::parse(text) {
            return Some(UsageSource::all(source));
        }
        let mut parts = text.split(',');
        let mut take = |name: &str| {
            parts
                .next()?
                .strip_prefix(name)?
                .strip_prefix(':')
                .and_then(Source::parse)
        };
        let parsed = UsageSource {
            cpu: take("cpu")?,
            memory: take("memory")?,
            io: take("io")?,
        };
        parts.next().is_none().then_some(parsed)
    }
}

impl fmt::Display for UsageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// What a run's command cost (not the shim's own share): CPU time, peak
/// memory and bytes read and written, and where each figure comes from
/// (docs/design.md, "What a run cost").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Usage {
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
    /// The cgroup's peak above what the shim held when the command started
    /// (page cache the run caused included), or rusage's largest resident
    /// set of one process (which the kernel never lets fall below the
    /// shim's own, see docs/design.md).
    pub memory_peak_bytes: u64,
    /// Bytes read from and written to block devices (the cgroup's `io.stat`,
    /// or rusage's blocks in and out × 512).
    pub read_bytes: u64,
    pub written_bytes: u64,
    pub source: UsageSource,
}

impl Default for UsageSource {
    fn default() -> Self {
        UsageSource::all(Source::Rusage)
    }
}

impl Usage {
    /// User plus system CPU time.
    pub fn cpu_us(&self) -> u64 {
        self.cpu_user_us.saturating_add(self.cpu_system_us)
    }
}

/// The run whose end started this one (trigger `chain`), as systemd told the
/// shim (`$MONITOR_INVOCATION_ID`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upstream {
    /// The upstream service's invocation id (systemd's form, 32 hex digits).
    pub invocation_id: String,
    /// The upstream's run id, when the shim found that invocation in the
    /// database it writes itself (not when the upstream job runs as another
    /// user, who records in another database).
    pub run_id: Option<RunId>,
}

/// One run, as the shim writes it and readers get it back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub id: RunId,
    pub job: String,
    /// systemd's `$INVOCATION_ID` (`journalctl _SYSTEMD_INVOCATION_ID=…`).
    pub invocation_id: Option<String>,
    pub trigger: Trigger,
    /// Who started the run, for trigger `web`: the origin's actor (`token
    /// ci`, `uid 1000 (alice)`), joined by readers; never stored in `runs`
    /// (the shim always writes `None`, and ignores it).
    pub actor: Option<String>,
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
    /// What the command cost, once it ended (`None` while running, for a
    /// run that never started a process, and in rows older jobctl versions
    /// wrote).
    pub usage: Option<Usage>,
    /// For trigger `chain`: the run whose end started this one.
    pub upstream: Option<Upstream>,
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
            exit_code: Some(3),
            output_bytes: 100,
            ..crate::testing::run(RunId::from_random(2), "j", 1, Status::Failed)
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

    #[test]
    fn usage_sources_round_trip() {
        use Source::*;
        for cpu in [Cgroup, Rusage] {
            for memory in [Cgroup, Rusage] {
                for io in [Cgroup, Rusage] {
                    let source = UsageSource { cpu, memory, io };
                    assert_eq!(UsageSource::parse(&source.to_text()), Some(source));
                }
            }
        }
        assert_eq!(UsageSource::all(Cgroup).to_text(), "cgroup");
        assert_eq!(
            UsageSource {
                cpu: Cgroup,
                memory: Rusage,
                io: Rusage
            }
            .to_text(),
            "cpu:cgroup,memory:rusage,io:rusage"
        );
        for bad in [
            "",
            "proc",
            "cpu:cgroup",
            "cpu:cgroup,memory:rusage,io:x",
            "cpu:cgroup,memory:rusage,io:rusage,x",
        ] {
            assert_eq!(UsageSource::parse(bad), None, "{bad}");
        }
    }
}
