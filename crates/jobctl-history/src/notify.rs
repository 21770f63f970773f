//! The notification queue and the watch's incident state, in their own
//! database (`notify.db`, beside the history the watch owns: root's
//! `/var/lib/jobctl` in system mode, the user's state folder in per-user
//! mode), with their own migrations ([`crate::schema::NOTIFY_MIGRATIONS`]):
//! written by `jobctl watch`, read by `jobctl notifications`. Not in
//! `history.db`: the run shim opens that for every run, and SQLite parses
//! every table's schema at each open.
//!
//! - [`NotifyStore::watch_states`] / [`NotifyStore::commit_pass`]: each job's incident
//!   state (the engine's JSON, opaque here) and the events a pass found,
//!   stored in one transaction, so the state never says "sent" for an
//!   event that is not queued. An event whose id is already queued is
//!   left as it is (the id is the idempotency key).
//! - [`NotifyStore::due_deliveries`] / [`NotifyStore::record_attempt`]: what to send
//!   now, and the outcome of each attempt (one transaction per attempt).
//! - [`NotifyStore::deliveries`] / [`NotifyStore::attempts_of`]: what `notifications`
//!   shows.

use rusqlite::{OptionalExtension, params};

use crate::Result;
use crate::store::{Commit, Store};

/// A delivery's state, as stored.
pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const GIVEN_UP: &str = "given-up";

/// An event to queue, with the channels to send it to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The idempotency key.
    pub id: String,
    pub job: String,
    pub kind: String,
    pub created_us: i64,
    pub run_id: Option<String>,
    pub summary: String,
    /// The notification, as JSON.
    pub payload: String,
    pub channels: Vec<String>,
}

/// One event on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub channel: String,
    pub job: String,
    pub kind: String,
    pub created_us: i64,
    pub run_id: Option<String>,
    pub summary: String,
    pub payload: String,
    /// `pending`, `sent` or `given-up`.
    pub state: String,
    pub attempts: u32,
    /// The next attempt, while pending.
    pub next_us: Option<i64>,
    pub last_us: Option<i64>,
    pub http_status: Option<u16>,
    pub exit_status: Option<i32>,
    pub detail: Option<String>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub event_id: String,
    pub channel: String,
    pub at_us: i64,
    pub ok: bool,
    pub retryable: bool,
    pub http_status: Option<u16>,
    pub exit_status: Option<i32>,
    pub detail: String,
    pub duration_ms: u64,
}

/// What an attempt (or the lack of one) makes of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Retry { next_us: i64 },
    GivenUp,
}

const DELIVERY_COLUMNS: &str = "d.event_id, d.channel, e.job, e.kind, e.created_us, e.run_id, \
     e.summary, e.payload, d.state, d.attempts, d.next_us, d.last_us, d.http_status, \
     d.exit_status, d.detail";

fn delivery(row: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    Ok(Delivery {
        event_id: row.get(0)?,
        channel: row.get(1)?,
        job: row.get(2)?,
        kind: row.get(3)?,
        created_us: row.get(4)?,
        run_id: row.get(5)?,
        summary: row.get(6)?,
        payload: row.get(7)?,
        state: row.get(8)?,
        attempts: row.get(9)?,
        next_us: row.get(10)?,
        last_us: row.get(11)?,
        http_status: row.get(12)?,
        exit_status: row.get(13)?,
        detail: row.get(14)?,
    })
}

/// An open notification database ([`Store::open_notify`]).
#[derive(Debug)]
pub struct NotifyStore {
    pub(crate) store: Store,
}

impl NotifyStore {
    pub(crate) fn new(store: Store) -> NotifyStore {
        NotifyStore { store }
    }

    pub fn path(&self) -> &std::path::Path {
        self.store.path()
    }

    /// Runs `read` in one read transaction (one consistent view).
    pub fn snapshot<T>(&self, read: impl FnOnce(&NotifyStore) -> Result<T>) -> Result<T> {
        self.store.snapshot(|_| read(self))
    }

    /// Every job's stored incident state: (job, JSON).
    pub fn watch_states(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .store
            .conn
            .prepare_cached("SELECT job, state FROM notify_state ORDER BY job")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One pass's result, in one durable transaction: the states that
    /// changed (`None` deletes a job's state), and the new events with a
    /// pending delivery per channel, due at `created_us`. Returns the ids
    /// of the events that were new (an id already queued is kept as it is).
    pub fn commit_pass(
        &mut self,
        states: &[(String, Option<String>)],
        events: &[NewEvent],
    ) -> Result<Vec<String>> {
        let mut inserted = Vec::new();
        self.store.write(Commit::Durable, |tx| {
            inserted.clear();
            let mut put = tx.prepare_cached(
                "INSERT INTO notify_state (job, state) VALUES (?1, ?2)
                 ON CONFLICT (job) DO UPDATE SET state = excluded.state",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM notify_state WHERE job = ?1")?;
            for (job, state) in states {
                match state {
                    Some(state) => put.execute(params![job, state])?,
                    None => delete.execute([job])?,
                };
            }
            let mut event = tx.prepare_cached(
                "INSERT INTO notify_events (id, job, kind, created_us, run_id, summary, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            )?;
            let mut delivery = tx.prepare_cached(
                "INSERT INTO notify_deliveries (event_id, channel, state, next_us)
                 VALUES (?1, ?2, 'pending', ?3) ON CONFLICT DO NOTHING",
            )?;
            for e in events {
                let new = event.execute(params![
                    e.id,
                    e.job,
                    e.kind,
                    e.created_us,
                    e.run_id,
                    e.summary,
                    e.payload
                ])?;
                if new == 0 {
                    continue;
                }
                inserted.push(e.id.clone());
                for channel in &e.channels {
                    delivery.execute(params![e.id, channel, e.created_us])?;
                }
            }
            Ok(())
        })?;
        Ok(inserted)
    }

    /// Pending deliveries due at `now_us`, oldest event first.
    pub fn due_deliveries(&self, now_us: i64) -> Result<Vec<Delivery>> {
        let mut stmt = self.store.conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notify_deliveries d
             JOIN notify_events e ON e.id = d.event_id
             WHERE d.state = 'pending' AND d.next_us <= ?1
             ORDER BY e.created_us, d.event_id, d.channel"
        ))?;
        let rows = stmt.query_map([now_us], delivery)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Attempts on `channel` at or after `since_us` (the rate limit).
    pub fn attempts_since(&self, channel: &str, since_us: i64) -> Result<u32> {
        Ok(self
            .store
            .conn
            .prepare_cached(
                "SELECT count(*) FROM notify_attempts WHERE channel = ?1 AND at_us >= ?2",
            )?
            .query_row(params![channel, since_us], |r| r.get(0))?)
    }

    /// Records one attempt and what it makes of its delivery, durably.
    pub fn record_attempt(&mut self, attempt: &AttemptRecord, outcome: Outcome) -> Result<()> {
        self.store.write(Commit::Durable, |tx| {
            tx.prepare_cached(
                "INSERT INTO notify_attempts (event_id, channel, at_us, ok, retryable,
                 http_status, exit_status, detail, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                attempt.event_id,
                attempt.channel,
                attempt.at_us,
                attempt.ok,
                attempt.retryable,
                attempt.http_status,
                attempt.exit_status,
                attempt.detail,
                i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX)
            ])?;
            let (state, next) = match outcome {
                Outcome::Sent => (SENT, None),
                Outcome::Retry { next_us } => (PENDING, Some(next_us)),
                Outcome::GivenUp => (GIVEN_UP, None),
            };
            tx.prepare_cached(
                "UPDATE notify_deliveries SET state = ?3, attempts = attempts + 1, next_us = ?4,
                 last_us = ?5, http_status = ?6, exit_status = ?7, detail = ?8
                 WHERE event_id = ?1 AND channel = ?2",
            )?
            .execute(params![
                attempt.event_id,
                attempt.channel,
                state,
                next,
                attempt.at_us,
                attempt.http_status,
                attempt.exit_status,
                attempt.detail
            ])?;
            Ok(())
        })
    }

    /// Gives a delivery up without an attempt (its channel is gone, or its
    /// time ran out while the rate limit held it back), saying why.
    pub fn give_up(&mut self, event_id: &str, channel: &str, detail: &str) -> Result<()> {
        self.store.write(Commit::Durable, |tx| {
            tx.prepare_cached(
                "UPDATE notify_deliveries SET state = 'given-up', next_us = NULL, detail = ?3
                 WHERE event_id = ?1 AND channel = ?2 AND state = 'pending'",
            )?
            .execute(params![event_id, channel, detail])?;
            Ok(())
        })
    }

    /// Deliveries, newest event first: of one job, or all; at most `limit`
    /// (0: no limit).
    pub fn deliveries(&self, job: Option<&str>, limit: usize) -> Result<Vec<Delivery>> {
        let limit = if limit == 0 { -1 } else { limit as i64 };
        let mut stmt = self.store.conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM notify_events e
             JOIN notify_deliveries d ON d.event_id = e.id
             WHERE ?1 IS NULL OR e.job = ?1
             ORDER BY e.created_us DESC, e.id, d.channel LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![job, limit], delivery)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every attempt of one delivery, oldest first.
    pub fn attempts_of(&self, event_id: &str, channel: &str) -> Result<Vec<AttemptRecord>> {
        let mut stmt = self.store.conn.prepare_cached(
            "SELECT event_id, channel, at_us, ok, retryable, http_status, exit_status, detail,
             duration_ms FROM notify_attempts WHERE event_id = ?1 AND channel = ?2
             ORDER BY at_us, id",
        )?;
        let rows = stmt.query_map(params![event_id, channel], |r| {
            Ok(AttemptRecord {
                event_id: r.get(0)?,
                channel: r.get(1)?,
                at_us: r.get(2)?,
                ok: r.get(3)?,
                retryable: r.get(4)?,
                http_status: r.get(5)?,
                exit_status: r.get(6)?,
                detail: r.get(7)?,
                duration_ms: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether an event is queued (its id known).
    pub fn event_exists(&self, id: &str) -> Result<bool> {
        Ok(self
            .store
            .conn
            .prepare_cached("SELECT 1 FROM notify_events WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Deletes events created before `before_us` that nothing waits for any
    /// more (no pending delivery), with their deliveries and attempts.
    /// Returns how many events went.
    pub fn prune_notifications(&mut self, before_us: i64) -> Result<usize> {
        // A read first: most passes have nothing to prune, and then write
        // (and sync) nothing.
        let due: bool = self
            .store
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM notify_events e WHERE e.created_us < ?1
                 AND NOT EXISTS (SELECT 1 FROM notify_deliveries d
                 WHERE d.event_id = e.id AND d.state = 'pending'))",
            )?
            .query_row([before_us], |r| r.get(0))?;
        if !due {
            return Ok(0);
        }
        let mut deleted = 0;
        self.store.write(Commit::Durable, |tx| {
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS old_events (id TEXT PRIMARY KEY) WITHOUT ROWID;
                 DELETE FROM temp.old_events;",
            )?;
            tx.execute(
                "INSERT INTO temp.old_events SELECT id FROM notify_events e
                 WHERE e.created_us < ?1 AND NOT EXISTS (SELECT 1 FROM notify_deliveries d
                 WHERE d.event_id = e.id AND d.state = 'pending')",
                [before_us],
            )?;
            tx.execute(
                "DELETE FROM notify_attempts WHERE event_id IN (SELECT id FROM temp.old_events)",
                [],
            )?;
            tx.execute(
                "DELETE FROM notify_deliveries WHERE event_id IN (SELECT id FROM temp.old_events)",
                [],
            )?;
            deleted = tx.execute(
                "DELETE FROM notify_events WHERE id IN (SELECT id FROM temp.old_events)",
                [],
            )?;
            Ok(())
        })?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, job: &str, created: i64, channels: &[&str]) -> NewEvent {
        NewEvent {
            id: id.into(),
            job: job.into(),
            kind: "failure".into(),
            created_us: created,
            run_id: Some("00ab".into()),
            summary: format!("{job} FAILED"),
            payload: "{}".into(),
            channels: channels.iter().map(|c| c.to_string()).collect(),
        }
    }

    fn attempt(id: &str, channel: &str, at: i64, ok: bool) -> AttemptRecord {
        AttemptRecord {
            event_id: id.into(),
            channel: channel.into(),
            at_us: at,
            ok,
            retryable: !ok,
            http_status: None,
            exit_status: Some(if ok { 0 } else { 1 }),
            detail: if ok { "exit status 0" } else { "exit status 1" }.into(),
            duration_ms: 3,
        }
    }

    #[test]
    fn a_pass_queues_each_event_once_with_its_state() {
        let mut store = Store::open_notify_in_memory().unwrap();
        let states = vec![("backup".to_string(), Some("{\"a\":1}".to_string()))];
        let events = vec![event("e1", "backup", 10, &["ops", "mail"])];
        assert_eq!(store.commit_pass(&states, &events).unwrap(), ["e1"]);
        // The same pass again (a crash before it knew it had committed).
        assert!(store.commit_pass(&states, &events).unwrap().is_empty());
        assert_eq!(
            store.watch_states().unwrap(),
            [("backup".to_string(), "{\"a\":1}".to_string())]
        );
        let due = store.due_deliveries(10).unwrap();
        assert_eq!(due.len(), 2);
        assert!(due.iter().all(|d| d.state == PENDING && d.attempts == 0));
        assert!(store.due_deliveries(9).unwrap().is_empty());
        assert!(store.event_exists("e1").unwrap() && !store.event_exists("e2").unwrap());
        store
            .commit_pass(&[("backup".to_string(), None)], &[])
            .unwrap();
        assert!(store.watch_states().unwrap().is_empty());
    }

    #[test]
    fn attempts_move_a_delivery_and_are_all_kept() {
        let mut store = Store::open_notify_in_memory().unwrap();
        store
            .commit_pass(&[], &[event("e1", "backup", 10, &["ops", "mail"])])
            .unwrap();
        store
            .record_attempt(
                &attempt("e1", "ops", 11, false),
                Outcome::Retry { next_us: 50 },
            )
            .unwrap();
        store
            .record_attempt(&attempt("e1", "mail", 11, true), Outcome::Sent)
            .unwrap();
        assert!(store.due_deliveries(49).unwrap().is_empty());
        let due = store.due_deliveries(50).unwrap();
        assert_eq!(
            (due.len(), due[0].channel.as_str(), due[0].attempts),
            (1, "ops", 1)
        );
        store
            .record_attempt(&attempt("e1", "ops", 50, false), Outcome::GivenUp)
            .unwrap();
        assert!(store.due_deliveries(i64::MAX).unwrap().is_empty());
        let all = store.deliveries(Some("backup"), 0).unwrap();
        let states: Vec<(&str, &str, u32)> = all
            .iter()
            .map(|d| (d.channel.as_str(), d.state.as_str(), d.attempts))
            .collect();
        assert_eq!(states, [("mail", SENT, 1), ("ops", GIVEN_UP, 2)]);
        assert_eq!(all[1].exit_status, Some(1));
        assert_eq!(store.attempts_of("e1", "ops").unwrap().len(), 2);
        assert_eq!(store.attempts_since("ops", 11).unwrap(), 2);
        assert_eq!(store.attempts_since("ops", 12).unwrap(), 1);
        assert!(store.deliveries(Some("other"), 0).unwrap().is_empty());
    }

    #[test]
    fn old_finished_events_are_pruned_and_pending_ones_kept() {
        let mut store = Store::open_notify_in_memory().unwrap();
        store
            .commit_pass(
                &[],
                &[
                    event("old-sent", "a", 10, &["ops"]),
                    event("old-pending", "a", 11, &["ops"]),
                    event("new", "a", 100, &["ops"]),
                ],
            )
            .unwrap();
        store
            .record_attempt(&attempt("old-sent", "ops", 12, true), Outcome::Sent)
            .unwrap();
        assert_eq!(store.prune_notifications(50).unwrap(), 1);
        let left: Vec<String> = store
            .deliveries(None, 0)
            .unwrap()
            .into_iter()
            .map(|d| d.event_id)
            .collect();
        assert_eq!(left, ["new", "old-pending"]);
        assert!(store.attempts_of("old-sent", "ops").unwrap().is_empty());
        store
            .give_up("old-pending", "ops", "channel removed")
            .unwrap();
        assert_eq!(store.prune_notifications(50).unwrap(), 1);
    }
}
