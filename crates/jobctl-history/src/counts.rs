//! Counters that survive retention: how many runs of each job ended with
//! each status, ever (`jobctl metrics`' `jobctl_job_runs_total`), and how
//! many delivery attempts each notification channel made, by outcome
//! (`jobctl_notifications_total`).
//!
//! A count is the rows still kept plus what deleting rows added to the
//! pruned tables (migration 3 of the history, 2 of notify.db: triggers add
//! every deleted row in the transaction that deletes it). A database from
//! before those migrations has no pruned table: its counts are the rows.
//!
//! What counts: finished runs only (a `running` row is counted once it
//! ends, or as `lost` once its shim is provably gone), statuses resolved by
//! the [`LivenessProbe`] as everywhere else. In a user's database read by
//! root, only the rows the user's shim could have written (the
//! [`crate::Recorder`]'s conditions, the same as every reader's).

use std::collections::{BTreeMap, HashMap};

use rusqlite::ToSql;

use crate::Result;
use crate::liveness::LivenessProbe;
use crate::query::Recorder;
use crate::record::Status;
use crate::store::Store;

/// Finished runs by status.
pub type StatusCounts = BTreeMap<Status, u64>;

impl Store {
    /// For each of `jobs` with any run kept or counted: its finished runs
    /// by effective status, kept rows plus pruned ones. One index-only count
    /// per job, one pass over the (few) unsuccessful runs through their
    /// partial index, one read of the pruned counts.
    pub fn run_counts(
        &self,
        jobs: &[String],
        probe: &LivenessProbe,
        now_us: i64,
    ) -> Result<HashMap<String, StatusCounts>> {
        let mut args: Vec<Box<dyn ToSql>> = vec![Box::new(String::new())];
        let trusted = trusted_condition(self.recorder.as_ref(), &mut args);
        let mut out: HashMap<String, StatusCounts> = HashMap::new();
        // Every kept row of each job (index only, without a recorder).
        let mut total_of: HashMap<&str, u64> = HashMap::new();
        {
            let mut count = self.conn.prepare(&format!(
                "SELECT count(*) FROM runs WHERE job = ?1{trusted}"
            ))?;
            for job in jobs {
                args[0] = Box::new(job.clone());
                let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
                let n: i64 = count.query_row(params.as_slice(), |r| r.get(0))?;
                if n > 0 {
                    total_of.insert(job, n as u64);
                }
            }
        }
        // The unsuccessful rows, by job and stored status, through the
        // partial index (the range on started_us makes SQLite take it).
        let wanted: std::collections::HashSet<&str> = jobs.iter().map(String::as_str).collect();
        let mut unsuccessful: HashMap<String, u64> = HashMap::new();
        {
            let mut args: Vec<Box<dyn ToSql>> = Vec::new();
            let trusted = trusted_condition(self.recorder.as_ref(), &mut args);
            let mut stmt = self.conn.prepare(&format!(
                "SELECT job, status, count(*) FROM runs WHERE status <> 'success' \
                 AND started_us >= -9223372036854775807{trusted} GROUP BY job, status"
            ))?;
            let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
            let mut rows = stmt.query(params.as_slice())?;
            while let Some(row) = rows.next()? {
                let (Ok(job), Ok(n)) = (row.get::<_, String>(0), row.get::<_, i64>(2)) else {
                    continue;
                };
                if !wanted.contains(job.as_str()) {
                    continue;
                }
                *unsuccessful.entry(job.clone()).or_default() += n.max(0) as u64;
                // `running` rows are resolved one by one below; a status
                // jobctl does not know is a bad row, counted nowhere.
                let status = row.get::<_, String>(1).ok().and_then(|s| s.parse().ok());
                if let Some(status) = status.filter(|s| *s != Status::Running) {
                    *out.entry(job).or_default().entry(status).or_default() += n.max(0) as u64;
                }
            }
        }
        // Rows stored as running: lost when their shim is provably gone.
        {
            let columns = self.columns();
            let mut args: Vec<Box<dyn ToSql>> = Vec::new();
            let trusted = trusted_condition(self.recorder.as_ref(), &mut args);
            let mut stmt = self.conn.prepare(&format!(
                "SELECT {columns} FROM runs WHERE status <> 'success' \
                 AND status = 'running' AND started_us >= -9223372036854775807{trusted}"
            ))?;
            let params: Vec<&dyn ToSql> = args.iter().map(|a| a.as_ref()).collect();
            let mut rows = stmt.query(params.as_slice())?;
            while let Some(row) = rows.next()? {
                let Some(run) = self.decoded(row) else {
                    continue;
                };
                if wanted.contains(run.job.as_str())
                    && run.effective_status(probe, now_us) == Status::Lost
                {
                    *out.entry(run.job)
                        .or_default()
                        .entry(Status::Lost)
                        .or_default() += 1;
                }
            }
        }
        for (job, total) in total_of {
            let success = total.saturating_sub(unsuccessful.get(job).copied().unwrap_or(0));
            let counts = out.entry(job.to_string()).or_default();
            if success > 0 {
                *counts.entry(Status::Success).or_default() += success;
            }
        }
        // What retention deleted (absent before migration 3).
        if let Ok(mut stmt) = self
            .conn
            .prepare("SELECT job, status, runs FROM pruned_runs")
        {
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let (Ok(job), Ok(status), Ok(n)) = (
                    row.get::<_, String>(0),
                    row.get::<_, String>(1),
                    row.get::<_, i64>(2),
                ) else {
                    continue;
                };
                let Ok(status) = status.parse::<Status>() else {
                    continue;
                };
                if n <= 0 || status == Status::Running || !wanted.contains(job.as_str()) {
                    continue;
                }
                let slot = out.entry(job).or_default().entry(status).or_default();
                *slot = slot.saturating_add(n as u64);
            }
        }
        out.retain(|_, counts| !counts.is_empty());
        Ok(out)
    }
}

/// ` AND …` for the rows a recorder may have written and that its readers
/// would not skip as implausible (empty without a recorder).
fn trusted_condition(recorder: Option<&Recorder>, args: &mut Vec<Box<dyn ToSql>>) -> String {
    let Some(recorder) = recorder else {
        return String::new();
    };
    let condition = recorder.condition(args);
    args.push(Box::new(Recorder::MIN_RUN_ID));
    let min = args.len();
    args.push(Box::new(recorder.latest_start_us));
    let latest = args.len();
    format!(" AND {condition} AND id >= ?{min} AND started_us <= ?{latest}")
}

/// Delivery attempts of one channel with one outcome, ever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptCount {
    pub channel: String,
    pub ok: bool,
    pub attempts: u64,
}

impl crate::notify::NotifyStore {
    /// Every channel's delivery attempts by outcome: the attempts kept plus
    /// those the watch's pruning deleted.
    pub fn attempt_counts(&self) -> Result<Vec<AttemptCount>> {
        let mut by: BTreeMap<(String, bool), u64> = BTreeMap::new();
        let conn = &self.store.conn;
        let mut stmt =
            conn.prepare("SELECT channel, ok <> 0, count(*) FROM notify_attempts GROUP BY 1, 2")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let n: i64 = row.get(2)?;
            *by.entry((row.get(0)?, row.get(1)?)).or_default() += n.max(0) as u64;
        }
        if let Ok(mut stmt) =
            conn.prepare("SELECT channel, ok <> 0, attempts FROM notify_pruned_attempts")
        {
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let n: i64 = row.get(2)?;
                let slot = by.entry((row.get(0)?, row.get(1)?)).or_default();
                *slot = slot.saturating_add(n.max(0) as u64);
            }
        }
        Ok(by
            .into_iter()
            .map(|((channel, ok), attempts)| AttemptCount {
                channel,
                ok,
                attempts,
            })
            .collect())
    }
}
