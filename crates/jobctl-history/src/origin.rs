//! Who started a run, when systemd cannot tell the shim (migration 4).
//!
//! A "run now" from the dashboard or the HTTP API is a start of the job's
//! service like `jobctl run`'s: systemd passes no per-start data to the
//! service, so the shim records the run as `manual`. The starter learns the
//! invocation id its own start produced and records an [`Origin`] keyed by
//! it (the job, the trigger `web`, the actor). Readers then show a `manual`
//! run of that job with that invocation with the origin's trigger and actor
//! ([`Store::apply_origins`]).
//!
//! Which database's origins are believed is the caller's decision: jobctl
//! reads them only from the database of the mode's owner (root's main
//! database in system mode, the user's own in per-user mode), never from a
//! user's database that root reads (docs/design.md, "Trust boundaries").

use rusqlite::{OptionalExtension, params};

use crate::record::{RunRecord, Trigger, is_invocation_id};
use crate::store::{Commit, Store};
use crate::{Error, Result};

/// The schema version that added the `origins` table.
pub const ORIGINS_SINCE: i64 = 4;

/// The longest actor kept, in bytes (longer ones are cut at a character
/// boundary): the actor is a token's name (at most 64 bytes), a user name
/// and uid, or a proxy's user header, which is the caller's to choose.
pub const ACTOR_MAX_BYTES: usize = 128;

/// Where a run came from, beyond what the shim could see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The invocation the starter's own start produced (systemd's form).
    pub invocation_id: String,
    /// The job that was started: an origin applies only to a run of it.
    pub job: String,
    /// What started it: [`Trigger::Web`].
    pub trigger: Trigger,
    /// Who: `token ci`, `uid 1000 (alice)`; at most [`ACTOR_MAX_BYTES`].
    pub actor: String,
    /// When it was recorded, µs since the epoch.
    pub at_us: i64,
}

impl Origin {
    /// An origin of a start of `job` that produced `invocation_id`. Refused:
    /// an invocation id not in systemd's form, a trigger the shim records
    /// itself (only `web` needs an origin). The actor is cut to
    /// [`ACTOR_MAX_BYTES`].
    pub fn new(
        invocation_id: &str,
        job: &str,
        trigger: Trigger,
        actor: &str,
        at_us: i64,
    ) -> Result<Origin> {
        if !is_invocation_id(invocation_id) {
            return Err(Error::BadValue(format!(
                "invocation id \"{}\" is not systemd's (32 hex digits)",
                invocation_id.escape_default()
            )));
        }
        if trigger != Trigger::Web {
            return Err(Error::BadValue(format!(
                "trigger {trigger} is recorded by the shim, not as an origin"
            )));
        }
        Ok(Origin {
            invocation_id: invocation_id.to_string(),
            job: job.to_string(),
            trigger,
            actor: bounded(actor).to_string(),
            at_us,
        })
    }
}

/// `actor` cut to at most [`ACTOR_MAX_BYTES`] at a character boundary.
fn bounded(actor: &str) -> &str {
    if actor.len() <= ACTOR_MAX_BYTES {
        return actor;
    }
    let mut end = ACTOR_MAX_BYTES;
    while !actor.is_char_boundary(end) {
        end -= 1;
    }
    &actor[..end]
}

impl Store {
    /// Records `origin`, durably. The first origin of an invocation stays (an
    /// invocation is started once; a repeated write changes nothing).
    pub fn record_origin(&mut self, origin: &Origin) -> Result<()> {
        self.write(Commit::Durable, |tx| {
            tx.prepare_cached(
                "INSERT INTO origins (invocation_id, job, trigger, actor, at_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (invocation_id) DO NOTHING",
            )?
            .execute(params![
                origin.invocation_id,
                origin.job,
                origin.trigger.as_str(),
                origin.actor,
                origin.at_us
            ])?;
            Ok(())
        })
    }

    /// The origin recorded for `invocation_id`, if any. A database from
    /// before migration 4 has none; a row that is not one jobctl writes (an
    /// unknown trigger, an actor over the bound) is not an origin.
    pub fn origin(&self, invocation_id: &str) -> Result<Option<Origin>> {
        if self.no_origins || !is_invocation_id(invocation_id) {
            return Ok(None);
        }
        let row = self
            .conn
            .prepare_cached(
                "SELECT job, trigger, actor, at_us FROM origins WHERE invocation_id = ?1",
            )?
            .query_row([invocation_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .optional()?;
        Ok(row.and_then(|(job, trigger, actor, at_us)| {
            (trigger == Trigger::Web.as_str() && actor.len() <= ACTOR_MAX_BYTES).then(|| Origin {
                invocation_id: invocation_id.to_string(),
                job,
                trigger: Trigger::Web,
                actor,
                at_us,
            })
        }))
    }

    /// Gives each `manual` run of `runs` whose invocation has an origin in
    /// this database, recorded for the same job, the origin's trigger and
    /// actor. Runs with another trigger keep theirs: an origin only says
    /// who asked for a start systemd reported as this caller's own.
    pub fn apply_origins<'a>(
        &self,
        runs: impl IntoIterator<Item = &'a mut RunRecord>,
    ) -> Result<()> {
        if self.no_origins {
            return Ok(());
        }
        for run in runs {
            if run.trigger != Trigger::Manual {
                continue;
            }
            let Some(invocation) = run.invocation_id.as_deref() else {
                continue;
            };
            if let Some(origin) = self.origin(invocation)?
                && origin.job == run.job
            {
                run.trigger = origin.trigger;
                run.actor = Some(origin.actor);
            }
        }
        Ok(())
    }
}

/// Deletes the origins recorded before `cutoff_us` (keep_age, with the runs
/// of that age), inside the caller's transaction. Returns how many.
pub(crate) fn prune_older(conn: &rusqlite::Connection, cutoff_us: i64) -> Result<u64> {
    Ok(conn
        .prepare_cached("DELETE FROM origins WHERE at_us < ?1")?
        .execute([cutoff_us])? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn an_origin_needs_systemds_invocation_id_and_a_trigger_the_shim_cannot_see() {
        assert!(Origin::new("not-an-id", "j", Trigger::Web, "token ci", 1).is_err());
        assert!(Origin::new(&INV.to_uppercase(), "j", Trigger::Web, "token ci", 1).is_err());
        assert!(Origin::new(INV, "j", Trigger::Manual, "token ci", 1).is_err());
        let o = Origin::new(INV, "j", Trigger::Web, "token ci", 1).unwrap();
        assert_eq!((o.actor.as_str(), o.trigger), ("token ci", Trigger::Web));
    }

    #[test]
    fn a_long_actor_is_cut_at_a_character_boundary() {
        let long = "é".repeat(100); // 200 bytes
        let o = Origin::new(INV, "j", Trigger::Web, &long, 1).unwrap();
        assert!(o.actor.len() <= ACTOR_MAX_BYTES && o.actor.len() >= ACTOR_MAX_BYTES - 1);
        assert!(long.starts_with(&o.actor));
    }
}
