//! Root reading a user's database takes only what that user's shim could
//! have recorded ([`Recorder`]): rows recorded as another user or uid are
//! left out and counted with the runs of other jobs; a start far in the
//! future or a run id the shim never draws makes a bad row.

use std::time::Duration;

use jobctl_history::testing::{probe, run};
use jobctl_history::{
    OpenMode, Recorder, Retention, RunFilter, RunId, RunLookup, RunRecord, Status, Store,
};

const T0: i64 = 1_800_000_000_000_000;
const DAY: i64 = 86_400_000_000;
/// Ids as the shim draws them (63 random bits).
const REAL: i64 = 0x5a5a_0000_0000_0000;

fn record(id: i64, job: &str, user: &str, uid: u32, started: i64) -> RunRecord {
    RunRecord {
        user: user.into(),
        uid,
        ..run(RunId::from_i64(id), job, started, Status::Success)
    }
}

/// mallory's (uid 1001) runs of `m` and `other`, and the rows she forged.
fn seeded(rows: &[RunRecord]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, OpenMode::Write, Duration::from_secs(5)).unwrap();
    for run in rows {
        store
            .finish_run(run, None, &Retention::UNLIMITED, T0)
            .unwrap();
    }
    (dir, path)
}

fn reader(path: &std::path::Path, recorder: Option<Recorder>) -> Store {
    let mut store = Store::open(path, OpenMode::Read, Duration::from_secs(1)).unwrap();
    if let Some(r) = recorder {
        store.only_recorded_by(r);
    }
    store
}

fn mallory() -> Recorder {
    Recorder {
        users: vec!["mallory".into()],
        uid: 1001,
        dynamic_uids: None,
        latest_start_us: T0 + DAY,
    }
}

fn ids(runs: &[RunRecord]) -> Vec<i64> {
    runs.iter().map(|r| r.id.as_i64()).collect()
}

fn rows() -> Vec<RunRecord> {
    vec![
        record(REAL + 1, "m", "mallory", 1001, T0 - 20),
        record(REAL + 2, "other", "mallory", 1001, T0 - 15),
        // Forged: as root, as another uid, in 2191, with a small id.
        record(REAL + 3, "m", "root", 0, T0 - 10),
        record(REAL + 4, "m", "mallory", 0, T0 - 9),
        record(REAL + 5, "m", "mallory", 1001, 7_000_000_000_000_000),
        record(1, "m", "mallory", 1001, T0 - 5),
    ]
}

#[test]
fn only_what_the_user_could_have_recorded_is_taken() {
    let (_dir, path) = seeded(&rows());
    let store = reader(&path, Some(mallory()));
    let all = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(ids(&all), [REAL + 2, REAL + 1]);
    let bad: Vec<(Option<i64>, String)> = store
        .take_bad_rows()
        .into_iter()
        .map(|b| (b.row_id, b.reason))
        .collect();
    assert_eq!(
        bad,
        [
            (
                Some(1),
                "its run id 0000000000000001 is not one jobctl draws (63 random bits)".into()
            ),
            (
                Some(REAL + 5),
                "it claims to start in the year 2191 (started_us 7000000000000000), later than \
                 any run can have begun"
                    .into()
            ),
        ]
    );
    // Left out and counted: `other` (not one of the jobs taken) and the
    // two runs of `m` recorded as someone else.
    let only_m = RunFilter {
        jobs: Some(vec!["m".into()]),
        ..RunFilter::default()
    };
    assert_eq!(ids(&store.runs(&only_m, &probe(), T0).unwrap()), [REAL + 1]);
    assert_eq!(store.count_untrusted_runs(&only_m).unwrap(), 3);
    let m = RunFilter {
        job: Some("m".into()),
        jobs: Some(vec!["m".into()]),
        ..RunFilter::default()
    };
    assert_eq!(store.count_untrusted_runs(&m).unwrap(), 2);
    // With no job list, only the misrecorded runs.
    assert_eq!(
        store.count_untrusted_runs(&RunFilter::default()).unwrap(),
        2
    );
    // Summaries and lookups see the same.
    let summaries = store.job_summaries(None, &probe(), T0).unwrap();
    let last: Vec<(String, i64)> = summaries
        .iter()
        .map(|s| (s.job.clone(), s.last.id.as_i64()))
        .collect();
    assert_eq!(
        last,
        [("m".to_string(), REAL + 1), ("other".to_string(), REAL + 2)]
    );
    let newest = store
        .find_run(Some("m"), &RunLookup::Last, &probe(), T0)
        .unwrap()
        .unwrap();
    assert_eq!(newest.id.as_i64(), REAL + 1);
    let forged = RunId::from_i64(REAL + 3).to_string();
    assert_eq!(
        store
            .find_run(None, &RunLookup::Id(forged), &probe(), T0)
            .unwrap(),
        None
    );
    // Without a recorder (a database named with --db), every row.
    let whole = reader(&path, None);
    assert_eq!(
        whole
            .runs(&RunFilter::default(), &probe(), T0)
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        whole.count_untrusted_runs(&RunFilter::default()).unwrap(),
        0
    );
}

#[test]
fn a_dynamic_users_runs_keep_any_dynamic_uid() {
    let (_dir, path) = seeded(&[
        record(REAL + 1, "d", "jobctl-d", 61300, T0 - 20),
        record(REAL + 2, "d", "jobctl-d", 61250, T0 - 10),
        record(REAL + 3, "d", "jobctl-d", 1001, T0 - 5),
        // systemd's name for a unit name that is not a valid user name.
        record(REAL + 4, "d", "_du0123456789abcdef", 61250, T0 - 4),
        record(REAL + 5, "d", "_du0123456789abcde0", 61250, T0 - 3),
    ]);
    let store = reader(
        &path,
        Some(Recorder {
            users: vec!["jobctl-d".into(), "_du0123456789abcdef".into()],
            uid: 61250,
            dynamic_uids: Some(Recorder::DYNAMIC_UIDS),
            latest_start_us: T0 + DAY,
        }),
    );
    let runs = store.runs(&RunFilter::default(), &probe(), T0).unwrap();
    assert_eq!(ids(&runs), [REAL + 4, REAL + 2, REAL + 1]);
    assert_eq!(
        store.count_untrusted_runs(&RunFilter::default()).unwrap(),
        2
    );
}
