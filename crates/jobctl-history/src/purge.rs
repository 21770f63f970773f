//! Deleting one job's whole history (`jobctl remove JOB --purge`).

use rusqlite::TransactionBehavior;

use crate::Result;
use crate::store::Store;

impl Store {
    /// Deletes every run of `job` and their captured output, in one
    /// transaction. Returns how many runs were deleted.
    pub fn purge_job(&mut self, job: &str) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Outputs first, explicitly: the cascade from `runs` needs foreign
        // keys on, which is a build default of the bundled SQLite, not a
        // property of the file.
        tx.execute(
            "DELETE FROM outputs WHERE run_id IN (SELECT id FROM runs WHERE job = ?1)",
            [job],
        )?;
        let runs = tx.execute("DELETE FROM runs WHERE job = ?1", [job])?;
        // The job's counters go with it (its metrics' series end).
        tx.execute("DELETE FROM pruned_runs WHERE job = ?1", [job])?;
        tx.commit()?;
        Ok(runs as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::liveness::LivenessProbe;
    use crate::output::{Segment, Stream};
    use crate::{Retention, RunFilter, RunId, RunRecord, Status, Store, Trigger, testing};

    fn run(id: u64, job: &str) -> RunRecord {
        RunRecord {
            trigger: Trigger::Shell,
            output_bytes: 3,
            ..testing::run(RunId::from_random(id << 1), job, id as i64, Status::Success)
        }
    }

    #[test]
    fn purges_one_job_and_its_output() {
        let mut store = Store::open_in_memory().unwrap();
        let out = [Segment::Data(Stream::Stdout, b"hi\n")];
        for (id, job) in [(1, "a"), (2, "b"), (3, "a")] {
            store
                .finish_run(&run(id, job), Some(&out), &Retention::UNLIMITED, 10)
                .unwrap();
        }
        assert_eq!(store.purge_job("a").unwrap(), 2);
        assert_eq!(store.purge_job("a").unwrap(), 0);
        let probe = LivenessProbe::current(None);
        let left = store.runs(&RunFilter::default(), &probe, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].job, "b");
        assert!(store.output(left[0].id).unwrap().is_some());
        let outputs: i64 = store
            .conn
            .query_row("SELECT count(*) FROM outputs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(outputs, 1, "the purged runs' output is gone");
        let total: i64 = store
            .conn
            .query_row(
                "SELECT value FROM totals WHERE name = 'output_bytes'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            total,
            store
                .conn
                .query_row("SELECT sum(size) FROM outputs", [], |r| r.get::<_, i64>(0))
                .unwrap()
        );
    }
}
