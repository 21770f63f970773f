//! Keeping the history bounded.
//!
//! Three limits, each optional: the last `keep_runs` runs of each job, runs
//! younger than `keep_age`, and `max_output` bytes of captured output in total
//! (the oldest outputs go first; their runs' rows stay). A run is deleted when
//! it breaks either run limit.
//!
//! After every run the shim applies them cheaply, inside its completing
//! transaction, compiling a `DELETE` only when something is due: the age cut
//! (one index seek when nothing is due), the output cap (one O(1) read of the
//! running total), and the keep_runs cut for the job that just ran. That cut
//! has to walk the job's newest `keep_runs` index entries to find the oldest
//! run to keep, so for limits of [`EXACT_KEEP_RUNS`] and more the shim walks
//! on about one run in [`KEEP_RUNS_CHECK_EVERY`] (chosen by the run's random
//! id) and then trims the job back to exactly `keep_runs`: a busy job may
//! briefly hold a few runs more than its limit, and no run pays for a
//! thousand-entry walk and a delete every time. `jobctl history prune`
//! applies every limit exactly, to every job, and also marks provably lost
//! runs.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::Result;
use crate::liveness::LivenessProbe;
use crate::record::{RunRecord, Status};
use crate::store::{COLUMNS, Store, decode_row};

/// The limits. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub keep_runs: Option<u64>,
    /// Microseconds.
    pub keep_age_us: Option<i64>,
    /// Bytes of stored output, all jobs together.
    pub max_output: Option<u64>,
}

impl Retention {
    /// Built-in default: the last 1,000 runs of each job.
    pub const DEFAULT_KEEP_RUNS: u64 = 1_000;
    /// Built-in default: 180 days.
    pub const DEFAULT_KEEP_AGE_US: i64 = 180 * 86_400 * 1_000_000;
    /// Built-in default: 256 MiB of output in total.
    pub const DEFAULT_MAX_OUTPUT: u64 = 256 << 20;

    /// No limits at all.
    pub const UNLIMITED: Retention = Retention {
        keep_runs: None,
        keep_age_us: None,
        max_output: None,
    };

    /// The per-run step for `job`, whose run `run_id` just finished.
    pub(crate) fn after_run(
        &self,
        conn: &Connection,
        job: &str,
        run_id: i64,
        now_us: i64,
    ) -> Result<()> {
        if let Some(keep) = self.keep_runs
            && (keep < EXACT_KEEP_RUNS || run_id % KEEP_RUNS_CHECK_EVERY == 0)
        {
            let cut: Option<i64> = conn
                .prepare_cached(KEEP_RUNS_CUT_SQL)?
                .query_row(params![job, keep as i64], |r| r.get(0))
                .optional()?;
            if let Some(cut) = cut {
                conn.prepare_cached(COUNT_JOB_UP_TO_SQL)?
                    .execute(params![job, cut])?;
                conn.prepare_cached(DELETE_JOB_UP_TO_SQL)?
                    .execute(params![job, cut])?;
            }
        }
        if let Some(age) = self.keep_age_us {
            let cutoff = now_us.saturating_sub(age);
            let due: bool = conn
                .prepare_cached(ANY_OLDER_SQL)?
                .query_row([cutoff], |r| r.get(0))?;
            if due {
                conn.prepare_cached(COUNT_KEEP_AGE_SQL)?.execute([cutoff])?;
                conn.prepare_cached(KEEP_AGE_SQL)?.execute([cutoff])?;
            }
        }
        if let Some(max) = self.max_output {
            trim_output(conn, max)?;
        }
        Ok(())
    }
}

/// keep_runs limits below this are checked after every run (the walk is
/// short); larger ones on about one run in [`KEEP_RUNS_CHECK_EVERY`].
pub const EXACT_KEEP_RUNS: u64 = 64;
/// See [`EXACT_KEEP_RUNS`].
pub const KEEP_RUNS_CHECK_EVERY: i64 = 16;

impl Retention {
    /// The limits as given (flags of `jobctl exec` and `history prune`, the
    /// configuration's `[history]`), over the built-in defaults: a limit
    /// not given (`None`) takes its default, `0` means no limit, and so does
    /// `u64::MAX` for the age (systemd's `infinity`).
    pub fn from_given(
        keep_runs: Option<u64>,
        keep_age_usec: Option<u64>,
        max_output: Option<u64>,
    ) -> Retention {
        let defaults = Retention::default();
        Retention {
            keep_runs: match keep_runs {
                Some(0) => None,
                Some(n) => Some(n),
                None => defaults.keep_runs,
            },
            keep_age_us: match keep_age_usec {
                Some(0 | u64::MAX) => None,
                Some(age) => Some(i64::try_from(age).unwrap_or(i64::MAX)),
                None => defaults.keep_age_us,
            },
            max_output: match max_output {
                Some(0) => None,
                Some(size) => Some(size),
                None => defaults.max_output,
            },
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_runs: Some(Self::DEFAULT_KEEP_RUNS),
            keep_age_us: Some(Self::DEFAULT_KEEP_AGE_US),
            max_output: Some(Self::DEFAULT_MAX_OUTPUT),
        }
    }
}

/// Deletes the job's runs from its (keep_runs + 1)-th newest on.
const KEEP_RUNS_SQL: &str = "DELETE FROM runs WHERE job = ?1 AND started_us <= \
     (SELECT started_us FROM runs WHERE job = ?1 ORDER BY started_us DESC LIMIT 1 OFFSET ?2)";
/// The start of the job's (keep_runs + 1)-th newest run, if it has that many.
const KEEP_RUNS_CUT_SQL: &str =
    "SELECT started_us FROM runs WHERE job = ?1 ORDER BY started_us DESC LIMIT 1 OFFSET ?2";
const DELETE_JOB_UP_TO_SQL: &str = "DELETE FROM runs WHERE job = ?1 AND started_us <= ?2";
const ANY_OLDER_SQL: &str = "SELECT EXISTS (SELECT 1 FROM runs WHERE started_us < ?1)";
const KEEP_AGE_SQL: &str = "DELETE FROM runs WHERE started_us < ?1";

/// Adds the runs matching `condition` to `pruned_runs` (migration 3), by
/// job and status, a still-`running` row as `lost`: run just before the
/// `DELETE` with the same condition, in its transaction, so that
/// `jobctl metrics`' run counters never go down. Rows whose job or status
/// is not text (a table a user rebuilt) are not counted.
macro_rules! count_deleted {
    ($condition:expr) => {
        concat!(
            "INSERT INTO pruned_runs (job, status, runs) \
             SELECT job, CASE status WHEN 'running' THEN 'lost' ELSE status END, count(*) \
             FROM runs WHERE ",
            $condition,
            " AND typeof(job) = 'text' AND typeof(status) = 'text' GROUP BY 1, 2 \
             ON CONFLICT (job, status) DO UPDATE SET runs = runs + excluded.runs"
        )
    };
}
const COUNT_KEEP_RUNS_SQL: &str = count_deleted!(
    "job = ?1 AND started_us <= \
     (SELECT started_us FROM runs WHERE job = ?1 ORDER BY started_us DESC LIMIT 1 OFFSET ?2)"
);
const COUNT_JOB_UP_TO_SQL: &str = count_deleted!("job = ?1 AND started_us <= ?2");
const COUNT_KEEP_AGE_SQL: &str = count_deleted!("started_us < ?1");
const TOTAL_SQL: &str = "SELECT value FROM totals WHERE name = 'output_bytes'";

/// Compiles the statements of the per-run step that run every time (the
/// shim does it while the command runs); the deletes are compiled only when
/// something is due.
pub(crate) fn prepare(conn: &Connection) -> Result<()> {
    conn.prepare_cached(KEEP_RUNS_CUT_SQL)?;
    conn.prepare_cached(ANY_OLDER_SQL)?;
    conn.prepare_cached(TOTAL_SQL)?;
    Ok(())
}

/// Drops the oldest outputs until the total is at most `max` bytes.
fn trim_output(conn: &Connection, max: u64) -> Result<u64> {
    let total: i64 = conn
        .prepare_cached(TOTAL_SQL)?
        .query_row([], |r| r.get(0))?;
    let excess = total - max as i64;
    if excess <= 0 {
        return Ok(0);
    }
    let mut freed = 0i64;
    let mut last_seq = None;
    {
        let mut stmt = conn.prepare_cached("SELECT seq, size FROM outputs ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let size: i64 = row.get(1)?;
            freed += size;
            last_seq = Some(seq);
            if freed >= excess {
                break;
            }
        }
    }
    match last_seq {
        Some(seq) => Ok(conn.execute("DELETE FROM outputs WHERE seq <= ?1", [seq])? as u64),
        None => Ok(0),
    }
}

/// What a prune did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Runs deleted for being beyond keep_runs of their job.
    pub runs_over_count: u64,
    /// Runs deleted for being older than keep_age.
    pub runs_over_age: u64,
    /// Outputs dropped to fit max_output.
    pub outputs_dropped: u64,
    /// `running` rows whose shim is provably gone, now stored as `lost`.
    pub marked_lost: u64,
    /// Bytes of stored output before and after.
    pub output_bytes_before: u64,
    pub output_bytes_after: u64,
    /// Origins ("run now" from the web) older than keep_age, deleted.
    pub origins_over_age: u64,
}

impl Store {
    /// Applies `retention` to every job, marks lost runs, and (when anything
    /// was deleted) lets SQLite reuse the freed pages. One transaction.
    pub fn prune(
        &mut self,
        retention: &Retention,
        probe: &LivenessProbe,
        now_us: i64,
    ) -> Result<PruneReport> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut report = PruneReport {
            output_bytes_before: tx.query_row(TOTAL_SQL, [], |r| r.get::<_, i64>(0))?.max(0) as u64,
            ..PruneReport::default()
        };
        // Lost runs first, so that what readers show is stored.
        // A row that cannot be decoded stays as it is (and is reported).
        let running: Vec<RunRecord> = {
            let mut stmt = tx.prepare(&format!(
                "SELECT {COLUMNS} FROM runs WHERE status <> 'success' AND status = 'running'"
            ))?;
            let mut rows = stmt.query([])?;
            let mut running = Vec::new();
            while let Some(row) = rows.next()? {
                match decode_row(row) {
                    Ok(run) => running.push(run),
                    Err(bad) => self.bad_rows.borrow_mut().push(bad),
                }
            }
            running
        };
        for run in running {
            if run.effective_status(probe, now_us) == Status::Lost {
                report.marked_lost += tx.execute(
                    "UPDATE runs SET status = 'lost' WHERE id = ?1 AND status = 'running'",
                    [run.id.as_i64()],
                )? as u64;
            }
        }
        if let Some(keep) = retention.keep_runs {
            for job in crate::query::jobs_in(&tx)? {
                tx.prepare_cached(COUNT_KEEP_RUNS_SQL)?
                    .execute(params![job, keep as i64])?;
                report.runs_over_count +=
                    tx.prepare_cached(KEEP_RUNS_SQL)?
                        .execute(params![job, keep as i64])? as u64;
            }
        }
        if let Some(age) = retention.keep_age_us {
            tx.prepare_cached(COUNT_KEEP_AGE_SQL)?
                .execute([now_us.saturating_sub(age)])?;
            report.runs_over_age += tx
                .prepare_cached(KEEP_AGE_SQL)?
                .execute([now_us.saturating_sub(age)])? as u64;
            report.origins_over_age += crate::origin::prune_older(&tx, now_us.saturating_sub(age))?;
        }
        if let Some(max) = retention.max_output {
            report.outputs_dropped = trim_output(&tx, max)?;
        }
        report.output_bytes_after =
            tx.query_row(TOTAL_SQL, [], |r| r.get::<_, i64>(0))?.max(0) as u64;
        tx.commit()?;
        self.after_commit();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_given_over_the_defaults() {
        let d = Retention::default();
        let day = 86_400_000_000u64;
        // (keep_runs, keep_age µs, max_output) given → the limits.
        type Given = (Option<u64>, Option<u64>, Option<u64>);
        let table: &[(Given, Retention)] = &[
            ((None, None, None), d),
            ((Some(0), Some(0), Some(0)), Retention::UNLIMITED),
            (
                (Some(5), Some(day), Some(1 << 20)),
                Retention {
                    keep_runs: Some(5),
                    keep_age_us: Some(day as i64),
                    max_output: Some(1 << 20),
                },
            ),
            // `infinity` for the age is no limit; an age beyond i64 is capped.
            (
                (None, Some(u64::MAX), None),
                Retention {
                    keep_age_us: None,
                    ..d
                },
            ),
            (
                (None, Some(u64::MAX - 1), None),
                Retention {
                    keep_age_us: Some(i64::MAX),
                    ..d
                },
            ),
            (
                (Some(1), None, Some(0)),
                Retention {
                    keep_runs: Some(1),
                    max_output: None,
                    ..d
                },
            ),
        ];
        for ((runs, age, output), want) in table {
            assert_eq!(
                Retention::from_given(*runs, *age, *output),
                *want,
                "{runs:?} {age:?} {output:?}"
            );
        }
    }
}
