//! Reading runs back: listings, one run by id prefix, per-job summaries, and
//! a run's captured output. Every reader resolves `running` rows through a
//! [`LivenessProbe`], so a run whose shim died shows as `lost`.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, ToSql};
use serde::Serialize;

use crate::liveness::LivenessProbe;
use crate::record::{RunId, RunRecord, Status};
use crate::store::{Store, decode_row};
use crate::{Error, Result};

/// Which runs a listing wants. Times are microseconds since the epoch.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub job: Option<String>,
    /// Effective statuses (empty: any). `lost` and `running` are told apart
    /// by the liveness probe, not by the stored value.
    pub statuses: Vec<Status>,
    /// Started at or after.
    pub since_us: Option<i64>,
    /// Started before.
    pub until_us: Option<i64>,
    /// At most this many runs (0: no limit).
    pub limit: usize,
    /// Only runs of these jobs (`None`: any job). Root's readers use it to
    /// take from a user's database only the runs of that user's jobs.
    pub jobs: Option<Vec<String>>,
}

/// Who may have written the rows of a user's database: root's readers set
/// it ([`Store::only_recorded_by`]) for `users/<user>/history.db`, whose
/// rows are that user's to write, so that they say only what that user's
/// shim could have recorded. Rows recorded as another user or uid are left
/// out like the runs of other jobs ([`Store::count_untrusted_runs`]); rows
/// no shim writes (a start after [`Recorder::latest_start_us`], a run id
/// below [`Recorder::MIN_RUN_ID`]) are skipped as bad rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorder {
    /// The names its runs may be recorded under: the user the folder is
    /// for (its name in `users/`), and for a dynamic user also the name
    /// systemd gives it when that one is not a valid user name.
    pub users: Vec<String>,
    /// The folder owner's uid.
    pub uid: u32,
    /// Also accepted: uids systemd allocates to dynamic users (the folder of
    /// a `DynamicUser=` job is given to the latest run's uid).
    pub dynamic_uids: Option<std::ops::RangeInclusive<u32>>,
    /// The latest start a run can have (the reader's now, plus slack for a
    /// clock that was stepped back).
    pub latest_start_us: i64,
}

impl Recorder {
    /// The shim draws run ids from 63 random bits: one below 2^32 (its top
    /// 31 bits all zero, a chance of 2^-31) is not one it drew. Such ids
    /// would also show as `000000000000` in tables.
    pub const MIN_RUN_ID: i64 = 1 << 32;

    /// systemd's range for dynamic users (`DYNAMIC_UID_MIN`..`MAX`).
    pub const DYNAMIC_UIDS: std::ops::RangeInclusive<u32> = 61184..=65519;

    /// The SQL condition for rows this recorder may have written, and its
    /// arguments.
    pub(crate) fn condition(&self, args: &mut Vec<Box<dyn ToSql>>) -> String {
        let (low, high) = self
            .dynamic_uids
            .as_ref()
            .map_or((1, 0), |r| (*r.start(), *r.end()));
        let mut users = Vec::new();
        for user in &self.users {
            args.push(Box::new(user.clone()));
            users.push(format!("?{}", args.len()));
        }
        if users.is_empty() {
            users.push("NULL".into());
        }
        args.push(Box::new(self.uid));
        let uid = args.len();
        args.push(Box::new(low));
        args.push(Box::new(high));
        format!(
            "(user IN ({}) AND (uid = ?{uid} OR uid BETWEEN ?{} AND ?{}))",
            users.join(", "),
            uid + 1,
            uid + 2
        )
    }

    /// Why a decoded row cannot be one the shim wrote, if so.
    fn implausible(&self, run: &RunRecord) -> Option<String> {
        if run.id.as_i64() < Recorder::MIN_RUN_ID {
            return Some(format!(
                "its run id {} is not one jobctl draws (63 random bits)",
                run.id
            ));
        }
        if run.started_us > self.latest_start_us {
            // The year, near enough for the message (the library formats no
            // dates).
            let year = 1970 + run.started_us / 31_556_952_000_000;
            return Some(format!(
                "it claims to start in the year {year} (started_us {}), later than any run can have begun",
                run.started_us
            ));
        }
        None
    }
}

/// A row a reader skipped because it cannot be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// Its rowid (the run id, for rows jobctl wrote), if readable.
    pub row_id: Option<i64>,
    /// Its run id, if readable.
    pub run: Option<RunId>,
    /// What is wrong with it.
    pub reason: String,
}

impl BadRow {
    /// `row id 42 (run 000000000000002a)`.
    pub fn name(&self) -> String {
        let mut name = match self.row_id {
            Some(id) => format!("row id {id}"),
            None => "a row".to_string(),
        };
        if let Some(run) = self.run {
            name.push_str(&format!(" (run {run})"));
        }
        name
    }
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name(), self.reason)
    }
}

impl RunFilter {
    /// Every failure status ([`Status::is_failure`]).
    pub fn failures() -> Vec<Status> {
        Status::ALL.into_iter().filter(|s| s.is_failure()).collect()
    }
}

/// How `logs` names a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunLookup {
    /// The newest run.
    Last,
    /// The newest failed run.
    LastFailure,
    /// A run id or a unique prefix of one (at least 4 digits).
    Id(String),
}

/// The latest state of one job, for `list` and `health`.
#[derive(Clone, Debug, Serialize)]
pub struct JobSummary {
    pub job: String,
    /// Its newest run, status resolved.
    pub last: RunRecord,
    /// Start of its newest successful run, if any is kept.
    pub last_success_us: Option<i64>,
    /// How many of its newest finished runs failed in a row (0 when the
    /// newest finished run succeeded).
    pub failure_streak: u32,
}

impl Store {
    /// Runs matching `filter`, newest first, with `lost` resolved. Rows that
    /// cannot be decoded are skipped ([`Store::take_bad_rows`]).
    pub fn runs(
        &self,
        filter: &RunFilter,
        probe: &LivenessProbe,
        now_us: i64,
    ) -> Result<Vec<RunRecord>> {
        let columns = self.columns();
        let (mut sql, args) = where_clause(
            &format!("SELECT {columns} FROM runs"),
            filter,
            true,
            self.recorder.as_ref(),
        );
        sql.push_str(" ORDER BY started_us DESC, id DESC");
        let mut stmt = self.conn.prepare(&sql)?;
        let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let mut rows = stmt.query(params.as_slice())?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let Some(mut run) = self.decoded(row) else {
                continue;
            };
            run.status = run.effective_status(probe, now_us);
            if !filter.statuses.is_empty() && !filter.statuses.contains(&run.status) {
                continue;
            }
            out.push(run);
            if filter.limit != 0 && out.len() >= filter.limit {
                break;
            }
        }
        Ok(out)
    }

    /// How many runs match `filter`'s job and times but are not taken as
    /// trustworthy (what [`Store::runs`] leaves out for that reason;
    /// statuses and the limit are not applied): runs of none of
    /// `filter.jobs`, and, with a [`Recorder`], runs of the others recorded
    /// as another user. Costs one index seek per distinct job, a count of
    /// the runs of other jobs, and with a recorder a pass over the runs of
    /// the jobs taken.
    pub fn count_untrusted_runs(&self, filter: &RunFilter) -> Result<u64> {
        let count = |filter: &RunFilter, negated: Option<&Recorder>| -> Result<u64> {
            let (mut sql, mut args) =
                where_clause("SELECT count(*) FROM runs", filter, false, None);
            if let Some(recorder) = negated {
                let condition = recorder.condition(&mut args);
                sql.push_str(&format!(" AND NOT coalesce({condition}, 0)"));
            }
            let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
            let count: i64 = self.conn.query_row(&sql, params.as_slice(), |r| r.get(0))?;
            Ok(count.max(0) as u64)
        };
        let mut untrusted = 0;
        if let Some(allowed) = &filter.jobs {
            let candidates = match &filter.job {
                Some(job) => vec![job.clone()],
                None => self.jobs()?,
            };
            let others: Vec<String> = candidates
                .into_iter()
                .filter(|job| !allowed.contains(job))
                .collect();
            if !others.is_empty() {
                let only_others = RunFilter {
                    job: None,
                    jobs: Some(others),
                    statuses: Vec::new(),
                    ..filter.clone()
                };
                untrusted += count(&only_others, None)?;
            }
        }
        if let Some(recorder) = &self.recorder
            && filter.jobs.as_ref().is_none_or(|jobs| !jobs.is_empty())
        {
            let taken = RunFilter {
                statuses: Vec::new(),
                ..filter.clone()
            };
            untrusted += count(&taken, Some(recorder))?;
        }
        Ok(untrusted)
    }

    /// Takes from this database only rows `recorder` may have written
    /// (root reading a user's database; see [`Recorder`]).
    pub fn only_recorded_by(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    /// Runs `read` in one read transaction: every query in it sees the same
    /// snapshot, and the database is locked and unlocked once rather than
    /// once per statement (a reader of hundreds of users' databases makes
    /// several statements in each).
    pub fn snapshot<T>(&self, read: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let result = read(self);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.conn.execute_batch(end);
        let value = result?;
        ended?;
        Ok(value)
    }

    /// The rows skipped so far because they could not be decoded, each once.
    pub fn take_bad_rows(&self) -> Vec<BadRow> {
        let mut rows = self.bad_rows.take();
        rows.sort_by_key(|r| r.row_id);
        rows.dedup();
        rows
    }

    /// Decodes a row, noting it when it cannot be (or when, in a user's
    /// database, it cannot be a row the shim wrote).
    pub(crate) fn decoded(&self, row: &rusqlite::Row<'_>) -> Option<RunRecord> {
        let bad = match decode_row(row) {
            Ok(run) => match self.recorder.as_ref().and_then(|r| r.implausible(&run)) {
                None => return Some(run),
                Some(reason) => BadRow {
                    row_id: row.get(0).ok(),
                    run: Some(run.id),
                    reason,
                },
            },
            Err(bad) => bad,
        };
        self.bad_rows.borrow_mut().push(bad);
        None
    }

    /// One run, by lookup, optionally only among one job's runs.
    pub fn find_run(
        &self,
        job: Option<&str>,
        lookup: &RunLookup,
        probe: &LivenessProbe,
        now_us: i64,
    ) -> Result<Option<RunRecord>> {
        let filter = |statuses| RunFilter {
            job: job.map(str::to_string),
            statuses,
            limit: 1,
            ..RunFilter::default()
        };
        match lookup {
            RunLookup::Last => Ok(self.runs(&filter(vec![]), probe, now_us)?.pop()),
            RunLookup::LastFailure => Ok(self
                .runs(&filter(RunFilter::failures()), probe, now_us)?
                .pop()),
            RunLookup::Id(prefix) => {
                let (low, high) = RunId::prefix_range(&prefix.to_ascii_lowercase())?;
                let columns = self.columns();
                let mut args: Vec<Box<dyn ToSql>> = vec![
                    Box::new(low),
                    Box::new(high),
                    Box::new(job.map(str::to_string)),
                ];
                let recorded = match &self.recorder {
                    Some(recorder) => format!(" AND {}", recorder.condition(&mut args)),
                    None => String::new(),
                };
                let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
                let matching =
                    format!("id BETWEEN ?1 AND ?2 AND (?3 IS NULL OR job = ?3){recorded}");
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT {columns} FROM runs WHERE {matching} LIMIT 2"
                ))?;
                let mut found: Vec<RunRecord> = Vec::new();
                let mut rows = stmt.query(params.as_slice())?;
                while let Some(row) = rows.next()? {
                    found.extend(self.decoded(row));
                }
                if found.len() > 1 {
                    let count: usize = self.conn.query_row(
                        &format!("SELECT count(*) FROM runs WHERE {matching}"),
                        params.as_slice(),
                        |r| r.get(0),
                    )?;
                    return Err(Error::AmbiguousRunId {
                        prefix: prefix.clone(),
                        count,
                    });
                }
                Ok(found.into_iter().next().map(|mut run| {
                    run.status = run.effective_status(probe, now_us);
                    run
                }))
            }
        }
    }

    /// The stored output of a run (see [`crate::output`]), if kept.
    pub fn output(&self, run: RunId) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT data FROM outputs WHERE run_id = ?1")?
            .query_row([run.as_i64()], |r| r.get(0))
            .optional()?)
    }

    /// Every job with at least one kept run, in name order.
    pub fn jobs(&self) -> Result<Vec<String>> {
        jobs_in(&self.conn)
    }

    /// The latest state of every job (or of the named ones), for `list` and
    /// `health`: a few index seeks per job, whatever the history's size.
    pub fn job_summaries(
        &self,
        only: Option<&[String]>,
        probe: &LivenessProbe,
        now_us: i64,
    ) -> Result<Vec<JobSummary>> {
        let jobs = match only {
            Some(names) => names.to_vec(),
            None => self.jobs()?,
        };
        let columns = self.columns();
        let mut args: Vec<Box<dyn ToSql>> = vec![Box::new(String::new())];
        let recorded = match &self.recorder {
            Some(recorder) => format!(" AND {}", recorder.condition(&mut args)),
            None => String::new(),
        };
        let mut newest = self.conn.prepare_cached(&format!(
            "SELECT {columns} FROM runs WHERE job = ?1{recorded} ORDER BY started_us DESC, id DESC"
        ))?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            args[0] = Box::new(job.clone());
            let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
            let mut rows = newest.query(params.as_slice())?;
            let mut last: Option<RunRecord> = None;
            let mut last_success_us = None;
            let mut failure_streak = 0u32;
            let mut streak_open = true;
            while let Some(row) = rows.next()? {
                let Some(mut run) = self.decoded(row) else {
                    continue;
                };
                run.status = run.effective_status(probe, now_us);
                if run.status == Status::Success {
                    last_success_us = Some(run.started_us);
                    streak_open = false;
                } else if streak_open && run.status.is_failure() {
                    failure_streak += 1;
                } else if run.status == Status::Expired {
                    streak_open = false;
                }
                if last.is_none() {
                    last = Some(run);
                }
                if last_success_us.is_some() {
                    break;
                }
            }
            if let Some(last) = last {
                out.push(JobSummary {
                    job,
                    last,
                    last_success_us,
                    failure_streak,
                });
            }
        }
        Ok(out)
    }
}

/// `base` with the WHERE clause for `recorder`, `filter`'s job, jobs, times
/// and (when `statuses`) stored statuses, and its arguments.
fn where_clause(
    base: &str,
    filter: &RunFilter,
    statuses: bool,
    recorder: Option<&Recorder>,
) -> (String, Vec<Box<dyn ToSql>>) {
    let mut sql = format!("{base} WHERE 1");
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(recorder) = recorder {
        let condition = recorder.condition(&mut args);
        sql.push_str(&format!(" AND {condition}"));
    }
    if let Some(job) = &filter.job {
        args.push(Box::new(job.clone()));
        sql.push_str(&format!(" AND job = ?{}", args.len()));
    }
    if let Some(jobs) = &filter.jobs {
        let mut marks = Vec::new();
        for job in jobs {
            args.push(Box::new(job.clone()));
            marks.push(format!("?{}", args.len()));
        }
        sql.push_str(&format!(" AND job IN ({})", marks.join(", ")));
    }
    if let Some(since) = filter.since_us {
        args.push(Box::new(since));
        sql.push_str(&format!(" AND started_us >= ?{}", args.len()));
    }
    if let Some(until) = filter.until_us {
        args.push(Box::new(until));
        sql.push_str(&format!(" AND started_us < ?{}", args.len()));
    }
    if statuses && !filter.statuses.is_empty() {
        let mut stored: Vec<&str> = filter
            .statuses
            .iter()
            .map(|s| match s {
                Status::Lost | Status::Running => "running",
                other => other.as_str(),
            })
            .collect();
        // `lost` may also be stored, by `history prune`.
        if filter.statuses.contains(&Status::Lost) {
            stored.push("lost");
        }
        stored.sort_unstable();
        stored.dedup();
        if !stored.contains(&"success") {
            // Lets SQLite use the small partial index of unsuccessful runs.
            sql.push_str(" AND status <> 'success'");
        }
        let list: Vec<String> = stored.iter().map(|s| format!("'{s}'")).collect();
        sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
    }
    (sql, args)
}

/// Distinct job names by skip-scanning the (job, started_us) index: one seek
/// per job instead of a pass over every run.
pub(crate) fn jobs_in(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT job FROM runs WHERE job > ?1 ORDER BY job LIMIT 1")?;
    let mut jobs = Vec::new();
    // The empty string sorts before every name; a job named "" cannot exist
    // (the shim requires a name), but is included if present.
    if conn
        .query_row("SELECT 1 FROM runs WHERE job = '' LIMIT 1", [], |_| Ok(()))
        .optional()?
        .is_some()
    {
        jobs.push(String::new());
    }
    // A user's database may hold names that are not UTF-8, or not text: the
    // scan steps over them (their rows cannot be decoded anyway). Blobs sort
    // after all text, so the first one ends the scan.
    let mut after: Vec<u8> = Vec::new();
    loop {
        let arg = rusqlite::types::ToSqlOutput::Borrowed(ValueRef::Text(&after));
        let next = stmt
            .query_row([&arg], |r| {
                Ok(match r.get_ref(0)? {
                    ValueRef::Text(name) => Some(name.to_vec()),
                    _ => None,
                })
            })
            .optional()?;
        let Some(Some(next)) = next else {
            break;
        };
        if let Ok(name) = std::str::from_utf8(&next) {
            jobs.push(name.to_string());
        }
        after = next;
    }
    Ok(jobs)
}

/// Merges per-database listings (each newest first) into one, newest first,
/// cut to `limit` (0: no limit).
pub fn merge_newest_first(lists: Vec<Vec<RunRecord>>, limit: usize) -> Vec<RunRecord> {
    let mut all: Vec<RunRecord> = lists.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        b.started_us
            .cmp(&a.started_us)
            .then_with(|| b.id.cmp(&a.id))
    });
    if limit != 0 {
        all.truncate(limit);
    }
    all
}
