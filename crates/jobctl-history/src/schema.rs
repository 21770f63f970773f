//! The database schema, as an append-only list of migrations.
//!
//! `PRAGMA user_version` holds the number of migrations applied. Opening an
//! older database applies the missing ones in one transaction; a newer one is
//! refused (an older jobctl must not write rows it does not understand).
//! Never edit or reorder a migration that has shipped: append a new one, with
//! a comment saying why.

/// One step of the schema's history.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The `user_version` after this migration.
    pub version: i64,
    /// Why the step exists (kept with the code, as a changelog of the schema).
    pub why: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. `MIGRATIONS[i].version == i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        why: "The first schema. `runs` has one row per run attempt, keyed by the \
          shim's random 63-bit run id (so ids from root's and users' databases \
          never collide when merged). The shim's process stamp (boot id, pid, \
          start ticks, PID namespace) lets readers prove a `running` row lost. \
          Captured output lives apart in `outputs` so that listing runs never \
          pages through output blobs; its rowid is insertion order, so the \
          oldest output is dropped first when the total exceeds max_output, and \
          `totals` keeps that total in O(1) through triggers. Indexes serve the \
          read paths: a job's runs newest first (and its keep_runs cut), all \
          runs by start (listing, keep_age), and the few unsuccessful runs \
          (failures across all jobs, running rows to check for lost).",
        sql: r#"
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    job              TEXT    NOT NULL,
    invocation_id    TEXT,
    trigger          TEXT    NOT NULL,
    attempt          INTEGER NOT NULL,
    host             TEXT    NOT NULL,
    user             TEXT    NOT NULL,
    uid              INTEGER NOT NULL,
    pid              INTEGER,
    shim_pid         INTEGER NOT NULL,
    shim_start_ticks INTEGER NOT NULL,
    boot_id          TEXT    NOT NULL,
    pid_ns           INTEGER NOT NULL,
    started_us       INTEGER NOT NULL,
    ended_us         INTEGER,
    deadline_us      INTEGER,
    status           TEXT    NOT NULL,
    exit_code        INTEGER,
    signal           INTEGER,
    error            TEXT,
    output_bytes     INTEGER NOT NULL DEFAULT 0,
    output_truncated INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX runs_by_job ON runs (job, started_us);
CREATE INDEX runs_by_start ON runs (started_us);
CREATE INDEX runs_unsuccessful ON runs (started_us) WHERE status <> 'success';

CREATE TABLE outputs (
    seq    INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL UNIQUE REFERENCES runs (id) ON DELETE CASCADE,
    size   INTEGER NOT NULL,
    data   BLOB    NOT NULL
) STRICT;

CREATE TABLE totals (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO totals (name, value) VALUES ('output_bytes', 0);

CREATE TRIGGER outputs_added AFTER INSERT ON outputs BEGIN
    UPDATE totals SET value = value + new.size WHERE name = 'output_bytes';
END;
CREATE TRIGGER outputs_removed AFTER DELETE ON outputs BEGIN
    UPDATE totals SET value = value - old.size WHERE name = 'output_bytes';
END;
"#,
    },
    Migration {
        version: 2,
        why: "What a run cost and what started it (issue 13). The command's CPU \
              time (user, system), peak memory and bytes read and written, \
              and `usage_source`, where each figure came from (`cgroup`, \
              `rusage`, or per figure); all NULL while a run is running, for \
              a run that never started a process, and in rows written before \
              this migration. For trigger `chain` (a run started by another \
              job's OnSuccess=/OnFailure=), the upstream's invocation id and, \
              when the shim found it in its own database, its run id. Columns \
              only, no index: nothing is looked up by them.",
        sql: r#"
ALTER TABLE runs ADD COLUMN cpu_user_us INTEGER;
ALTER TABLE runs ADD COLUMN cpu_system_us INTEGER;
ALTER TABLE runs ADD COLUMN memory_peak_bytes INTEGER;
ALTER TABLE runs ADD COLUMN read_bytes INTEGER;
ALTER TABLE runs ADD COLUMN written_bytes INTEGER;
ALTER TABLE runs ADD COLUMN usage_source TEXT;
ALTER TABLE runs ADD COLUMN upstream_invocation_id TEXT;
ALTER TABLE runs ADD COLUMN upstream_run_id INTEGER;
"#,
    },
    Migration {
        version: 3,
        why: "Run counters that survive retention (issue 15, `jobctl metrics`' \
              `jobctl_job_runs_total`). `pruned_runs` holds, per job and \
              status, how many runs were deleted: every statement that \
              deletes runs for retention (the shim's, `history prune`'s) first \
              adds what it is about to delete, with the same condition, in \
              the same transaction, so rows plus pruned counts never go down. \
              A row deleted while still stored as `running` (only keep_age can \
              reach one) counts as `lost`. `remove --purge` deletes the job's \
              counts too. Not a trigger: SQLite compiles every trigger of the \
              schema when a connection first reads it, which cost the shim \
              about 51,000 instructions a run (docs/benchmarks.md); the \
              counting statements are compiled only when something is due. \
              Counting the kept rows reads the unsuccessful ones by job and \
              status: the partial index of unsuccessful runs now also holds \
              `job` and `status` after `started_us, id` (the order listings \
              of failures want), so that pass reads the index alone instead \
              of one table row per unsuccessful run (same name, same rows, \
              same order: every other read uses it as before). No column of `runs`; the shim's statements \
              are unchanged.",
        sql: r#"
DROP INDEX runs_unsuccessful;
CREATE INDEX runs_unsuccessful ON runs (started_us, id, job, status) WHERE status <> 'success';

CREATE TABLE pruned_runs (
    job    TEXT    NOT NULL,
    status TEXT    NOT NULL,
    runs   INTEGER NOT NULL,
    PRIMARY KEY (job, status)
) STRICT, WITHOUT ROWID;
"#,
    },
    Migration {
        version: 4,
        why: "Who started a run from outside systemd's view (issue 16: \
              \"run now\" in the dashboard and HTTP API). systemd cannot pass \
              per-start data to a service, so the shim records such a run as \
              `manual`; the starter (jobctl-web) learns the invocation id its \
              own start produced and records an origin keyed by it: the job, \
              the trigger (`web`) and the actor (`token ci`, `uid 1000 \
              (alice)`), when. Readers give a `manual` run of that job with \
              that invocation the origin's trigger and actor. Origins are \
              read only from the database of the mode's owner (root's main \
              database in system mode, also for runs recorded in users' \
              databases; the user's own in per-user mode), so a user cannot \
              make root's readers believe one. A table apart, no column of \
              `runs`: the shim's statements are unchanged, and an origin may \
              name a run recorded in another database. No index beyond the \
              key: origins are few (one per \"run now\") and pruned by age \
              with a scan (`history prune`, keep_age).",
        sql: r#"
CREATE TABLE origins (
    invocation_id TEXT    PRIMARY KEY,
    job           TEXT    NOT NULL,
    trigger       TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    at_us         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#,
    },
];

/// The schema version this build writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// The notification queue's own database (`notify.db`, beside the history
/// the watch owns): every migration, in order, as for [`MIGRATIONS`]. Apart
/// from the runs so that the run shim, which opens the history for every
/// run, never parses these tables' schema (SQLite reads the whole schema at
/// each connection's first statement: +15 % instructions per run when they
/// were in `history.db`, docs/benchmarks.md), and so that no reader of an
/// existing history needs an upgrade for them.
pub const NOTIFY_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        why: "Notifications (`jobctl watch`). `notify_state` keeps each job's \
          incident state between watch passes (open failure and overdue \
          incidents, reminders sent, the run already reported as overrunning, \
          since when the schedule is judged), as the engine's JSON. \
          `notify_events` holds every event once, keyed by its idempotency key \
          (so a pass repeated after a crash queues nothing twice), with the \
          notification as sent (JSON) and the run it belongs to. \
          `notify_deliveries` is the durable queue: one row per event and \
          channel, pending until sent or given up, with the attempts made, \
          the next one due and the last result. `notify_attempts` records \
          every attempt (time, outcome, HTTP status or exit status, detail), \
          for `jobctl notifications` and the per-channel rate limit.",
        sql: r#"
CREATE TABLE notify_state (
    job   TEXT PRIMARY KEY,
    state TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE notify_events (
    id         TEXT    PRIMARY KEY,
    job        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    run_id     TEXT,
    summary    TEXT    NOT NULL,
    payload    TEXT    NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX notify_events_by_job ON notify_events (job, created_us);
CREATE INDEX notify_events_by_time ON notify_events (created_us);

CREATE TABLE notify_deliveries (
    event_id    TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'given-up')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_us     INTEGER,
    last_us     INTEGER,
    http_status INTEGER,
    exit_status INTEGER,
    detail      TEXT,
    PRIMARY KEY (event_id, channel)
) STRICT, WITHOUT ROWID;
CREATE INDEX notify_deliveries_due ON notify_deliveries (next_us) WHERE state = 'pending';

CREATE TABLE notify_attempts (
    id          INTEGER PRIMARY KEY,
    event_id    TEXT    NOT NULL,
    channel     TEXT    NOT NULL,
    at_us       INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    retryable   INTEGER NOT NULL,
    http_status INTEGER,
    exit_status INTEGER,
    detail      TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX notify_attempts_by_channel ON notify_attempts (channel, at_us);
CREATE INDEX notify_attempts_by_event ON notify_attempts (event_id, channel, at_us);
"#,
    },
    Migration {
        version: 2,
        why: "Delivery counters that survive pruning (issue 15, `jobctl metrics`' \
              `jobctl_notifications_total`). `notify_pruned_attempts` holds, per \
              channel and outcome, how many attempts the watch's pruning \
              deleted; the trigger `notify_attempts_deleted` adds each deleted \
              attempt in the transaction that deletes it.",
        sql: r#"
CREATE TABLE notify_pruned_attempts (
    channel  TEXT    NOT NULL,
    ok       INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (channel, ok)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER notify_attempts_deleted AFTER DELETE ON notify_attempts BEGIN
    INSERT INTO notify_pruned_attempts (channel, ok, attempts)
    VALUES (old.channel, old.ok <> 0, 1)
    ON CONFLICT (channel, ok) DO UPDATE SET attempts = attempts + 1;
END;
"#,
    },
];

/// The notification database's schema version this build writes.
pub const NOTIFY_LATEST_VERSION: i64 = NOTIFY_MIGRATIONS.len() as i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_explained() {
        for list in [MIGRATIONS, NOTIFY_MIGRATIONS] {
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1);
                assert!(m.why.len() > 40, "migration {} needs a why", m.version);
            }
        }
    }
}
