//! What one attempt of a run comes to: its [`Status`], the exit code and
//! signal its record keeps, and whether it is worth another attempt. The
//! shim (`jobctl exec`) gathers the facts (how the command ended, the stop
//! signal it forwarded and when, the job's deadline) and records what
//! [`Verdict::of`] says; the rules live here, beside the record they fill,
//! so that they are tested as a table (docs/design.md, "Statuses and exit
//! codes").

use crate::record::Status;

/// A stop signal that comes within this much of the deadline counts as the
/// timeout: systemd starts the job's clock slightly before the shim starts.
pub const TIMEOUT_TOLERANCE_US: i64 = 1_000_000;

/// The signals that ask a run to stop: systemd's stop (SIGTERM), a
/// terminal's Ctrl-C (SIGINT), a hang-up, SIGQUIT. The shim forwards exactly
/// these to the command (jobctl-exec's `STOP_SIGNALS`; the shim's tests check
/// that the two lists agree). A run that one of them ended is never retried.
pub const STOP_SIGNALS: [i32; 4] = [
    nix::libc::SIGTERM,
    nix::libc::SIGINT,
    nix::libc::SIGHUP,
    nix::libc::SIGQUIT,
];

/// How an attempt's command ended, as the shim saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it (one the shim did not send, or one it forwarded).
    Signaled(i32),
    /// It could not be started; the shim exits with this code (127 not
    /// found, 126 not executable, 125 a bad working directory).
    NotStarted(i32),
}

/// A stop signal the shim received and forwarded to the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    pub signal: i32,
    /// When it arrived, µs since the epoch.
    pub at_us: i64,
}

/// The job's deadline (`start + --timeout`), µs since the epoch: `None` for
/// a job without a timeout (none given, zero or infinite).
pub fn deadline_us(start_us: i64, timeout_usec: Option<u64>) -> Option<i64> {
    timeout_usec
        .filter(|t| *t != 0 && *t != u64::MAX)
        .map(|t| start_us.saturating_add(i64::try_from(t).unwrap_or(i64::MAX)))
}

impl Status {
    /// The status of a run stopped by a signal: `timeout` at or after the
    /// deadline (less [`TIMEOUT_TOLERANCE_US`]), `killed` before it or
    /// without one. Also the provisional status the shim records at once
    /// when the stop arrives.
    pub fn of_stop(stop_at_us: i64, deadline_us: Option<i64>) -> Status {
        match deadline_us {
            Some(deadline) if stop_at_us >= deadline.saturating_sub(TIMEOUT_TOLERANCE_US) => {
                Status::Timeout
            }
            _ => Status::Killed,
        }
    }
}

/// What an attempt's record says, and whether to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// A failure worth another attempt, if attempts and time remain: a
    /// non-zero exit, or death by a signal that nobody sent to stop the run
    /// (the OOM killer's SIGKILL). Never a stop, whoever sent it (a
    /// terminal's Ctrl-C reaches the command, not the shim).
    pub retryable: bool,
}

impl Verdict {
    /// Classifies an attempt: how its command ended, the stop signal the
    /// shim forwarded (if any), and the job's deadline.
    ///
    /// - exit 0 is `success`, another code `failed`, a signal `killed`, a
    ///   command that could not start `error`;
    /// - a forwarded stop makes it `timeout` or `killed`
    ///   ([`Status::of_stop`]) whatever the command did with the signal (a
    ///   command that catches SIGTERM and exits 0 was still stopped), and a
    ///   command that exited keeps its code with the stop's signal noted.
    pub fn of(ending: Ending, stop: Option<Stop>, deadline_us: Option<i64>) -> Verdict {
        let (mut status, exit_code, mut signal) = match ending {
            Ending::Exited(0) => (Status::Success, Some(0), None),
            Ending::Exited(code) => (Status::Failed, Some(code), None),
            Ending::Signaled(sig) => (Status::Killed, None, Some(sig)),
            Ending::NotStarted(code) => (Status::Error, Some(code), None),
        };
        if let Some(stop) = stop {
            status = Status::of_stop(stop.at_us, deadline_us);
            if signal.is_none() && matches!(ending, Ending::Exited(_)) {
                signal = Some(stop.signal);
            }
        }
        let stopped_by_signal = signal.is_some_and(|sig| STOP_SIGNALS.contains(&sig));
        let retryable = stop.is_none()
            && !stopped_by_signal
            && matches!(status, Status::Failed | Status::Killed);
        Verdict {
            status,
            exit_code,
            signal,
            retryable,
        }
    }
}

/// Whether a retry that waits `wait_us` from `now_us` still starts before
/// the deadline: a retry never starts a wait that would end past it.
pub fn retry_in_time(now_us: i64, wait_us: i64, deadline_us: Option<i64>) -> bool {
    deadline_us.is_none_or(|deadline| now_us.saturating_add(wait_us) < deadline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc::{SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGSEGV, SIGTERM, SIGUSR1};

    const START: i64 = 1_000_000_000;
    const DEADLINE: i64 = START + 60_000_000;

    /// Every ending, every stop, with and without a deadline: the expected
    /// verdict written out row by row.
    #[test]
    fn verdicts_as_a_table() {
        use Status::*;
        let early = Some(Stop {
            signal: SIGTERM,
            at_us: START + 5_000_000,
        });
        // Within the tolerance before the deadline, and after it.
        let near = Some(Stop {
            signal: SIGTERM,
            at_us: DEADLINE - TIMEOUT_TOLERANCE_US,
        });
        let just_before_near = Some(Stop {
            signal: SIGTERM,
            at_us: DEADLINE - TIMEOUT_TOLERANCE_US - 1,
        });
        let late = Some(Stop {
            signal: SIGINT,
            at_us: DEADLINE + 1,
        });
        let d = Some(DEADLINE);
        type Row = (
            Ending,
            Option<Stop>,
            Option<i64>,
            Status,
            Option<i32>,
            Option<i32>,
            bool,
        );
        let table: &[Row] = &[
            // No stop: the command's own ending decides.
            (Ending::Exited(0), None, d, Success, Some(0), None, false),
            (Ending::Exited(0), None, None, Success, Some(0), None, false),
            (Ending::Exited(3), None, d, Failed, Some(3), None, true),
            (Ending::Exited(3), None, None, Failed, Some(3), None, true),
            (Ending::Exited(143), None, d, Failed, Some(143), None, true),
            // Killed by a signal nobody sent as a stop: worth another try.
            (
                Ending::Signaled(SIGKILL),
                None,
                d,
                Killed,
                None,
                Some(SIGKILL),
                true,
            ),
            (
                Ending::Signaled(SIGSEGV),
                None,
                None,
                Killed,
                None,
                Some(SIGSEGV),
                true,
            ),
            (
                Ending::Signaled(SIGUSR1),
                None,
                d,
                Killed,
                None,
                Some(SIGUSR1),
                true,
            ),
            // Killed by a stop signal the shim did not forward (Ctrl-C
            // straight to the command's group): a stop, not retried.
            (
                Ending::Signaled(SIGINT),
                None,
                d,
                Killed,
                None,
                Some(SIGINT),
                false,
            ),
            (
                Ending::Signaled(SIGTERM),
                None,
                None,
                Killed,
                None,
                Some(SIGTERM),
                false,
            ),
            (
                Ending::Signaled(SIGHUP),
                None,
                d,
                Killed,
                None,
                Some(SIGHUP),
                false,
            ),
            (
                Ending::Signaled(SIGQUIT),
                None,
                d,
                Killed,
                None,
                Some(SIGQUIT),
                false,
            ),
            // Not started: an error, never retried.
            (
                Ending::NotStarted(127),
                None,
                d,
                Error,
                Some(127),
                None,
                false,
            ),
            (
                Ending::NotStarted(126),
                None,
                None,
                Error,
                Some(126),
                None,
                false,
            ),
            (
                Ending::NotStarted(125),
                None,
                d,
                Error,
                Some(125),
                None,
                false,
            ),
            // A forwarded stop before the deadline: killed, whatever the
            // command did with it; an exit keeps its code, noting the signal.
            (
                Ending::Exited(0),
                early,
                d,
                Killed,
                Some(0),
                Some(SIGTERM),
                false,
            ),
            (
                Ending::Exited(1),
                early,
                d,
                Killed,
                Some(1),
                Some(SIGTERM),
                false,
            ),
            (
                Ending::Signaled(SIGTERM),
                early,
                d,
                Killed,
                None,
                Some(SIGTERM),
                false,
            ),
            (
                Ending::Signaled(SIGKILL),
                early,
                d,
                Killed,
                None,
                Some(SIGKILL),
                false,
            ),
            (
                Ending::NotStarted(127),
                early,
                d,
                Killed,
                Some(127),
                None,
                false,
            ),
            (
                Ending::Exited(0),
                early,
                None,
                Killed,
                Some(0),
                Some(SIGTERM),
                false,
            ),
            // At the deadline (within the tolerance) and after it: timeout.
            (
                Ending::Exited(0),
                near,
                d,
                Timeout,
                Some(0),
                Some(SIGTERM),
                false,
            ),
            (
                Ending::Exited(0),
                just_before_near,
                d,
                Killed,
                Some(0),
                Some(SIGTERM),
                false,
            ),
            (
                Ending::Signaled(SIGTERM),
                near,
                d,
                Timeout,
                None,
                Some(SIGTERM),
                false,
            ),
            (
                Ending::Exited(2),
                late,
                d,
                Timeout,
                Some(2),
                Some(SIGINT),
                false,
            ),
            (
                Ending::Signaled(SIGKILL),
                late,
                d,
                Timeout,
                None,
                Some(SIGKILL),
                false,
            ),
            (
                Ending::NotStarted(126),
                late,
                d,
                Timeout,
                Some(126),
                None,
                false,
            ),
            // Without a deadline a stop is never a timeout.
            (
                Ending::Signaled(SIGTERM),
                late,
                None,
                Killed,
                None,
                Some(SIGTERM),
                false,
            ),
        ];
        for (i, &(ending, stop, deadline, status, exit_code, signal, retryable)) in
            table.iter().enumerate()
        {
            assert_eq!(
                Verdict::of(ending, stop, deadline),
                Verdict {
                    status,
                    exit_code,
                    signal,
                    retryable
                },
                "row {i}: {ending:?}, {stop:?}, deadline {deadline:?}"
            );
        }
    }

    #[test]
    fn every_ending_and_stop_is_covered_and_only_failures_are_retried() {
        // Over a grid of endings, stops and deadlines: a retry only ever
        // follows `failed` or `killed` without a stop, and a stop always
        // gives `timeout` or `killed`.
        let signals = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGKILL, SIGSEGV, SIGUSR1];
        let mut endings = vec![Ending::Exited(0), Ending::Exited(1), Ending::Exited(255)];
        endings.extend(signals.iter().map(|s| Ending::Signaled(*s)));
        endings.extend([125, 126, 127].map(Ending::NotStarted));
        let mut stops = vec![None];
        for signal in signals {
            for at_us in [
                START,
                DEADLINE - TIMEOUT_TOLERANCE_US - 1,
                DEADLINE,
                i64::MAX,
            ] {
                stops.push(Some(Stop { signal, at_us }));
            }
        }
        for ending in endings {
            for stop in &stops {
                for deadline in [None, Some(DEADLINE), Some(i64::MIN)] {
                    let v = Verdict::of(ending, *stop, deadline);
                    if v.retryable {
                        assert!(stop.is_none(), "{ending:?} {stop:?}");
                        assert!(matches!(v.status, Status::Failed | Status::Killed));
                    }
                    if stop.is_some() {
                        assert!(matches!(v.status, Status::Timeout | Status::Killed));
                    }
                    if deadline.is_none() {
                        assert_ne!(v.status, Status::Timeout);
                    }
                }
            }
        }
    }

    #[test]
    fn deadlines_and_retry_windows() {
        assert_eq!(deadline_us(START, None), None);
        assert_eq!(deadline_us(START, Some(0)), None);
        assert_eq!(deadline_us(START, Some(u64::MAX)), None);
        assert_eq!(deadline_us(START, Some(60_000_000)), Some(DEADLINE));
        assert_eq!(deadline_us(START, Some(u64::MAX - 1)), Some(i64::MAX));
        assert!(retry_in_time(START, 1_000_000, None));
        assert!(retry_in_time(START, 1_000_000, Some(DEADLINE)));
        assert!(!retry_in_time(START, 60_000_000, Some(DEADLINE)));
        assert!(!retry_in_time(DEADLINE, 0, Some(DEADLINE)));
        assert!(!retry_in_time(START, i64::MAX, Some(DEADLINE)));
    }
}
