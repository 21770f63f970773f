//! Experiment: cost of opening a history database (WAL index recovery) as a
//! function of the frames in its log. Not shipped.
use std::time::{Duration, Instant};

use jobctl_history::{OpenMode, Store};
use rusqlite::Connection;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/dev/shm".into());
    for frames in [0usize, 4, 8, 16, 32, 64, 128, 256, 1024] {
        let path = std::path::PathBuf::from(format!("{dir}/walcost-{frames}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(&p);
        }
        drop(Store::open(&path, OpenMode::Write, Duration::from_secs(1)).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA wal_autocheckpoint=0;")
                .unwrap();
            c.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .unwrap();
            c.execute_batch("CREATE TABLE IF NOT EXISTS pad (x BLOB)")
                .unwrap();
            // Commits of one or two pages each, into the log.
            let wal = format!("{}-wal", path.display());
            let frames_now = || {
                std::fs::metadata(&wal)
                    .map(|m| (m.len().saturating_sub(32) / 4120) as usize)
                    .unwrap_or(0)
            };
            while frames_now() < frames {
                c.execute("INSERT INTO pad VALUES (zeroblob(100))", [])
                    .unwrap();
            }
        }
        let wal_len = std::fs::metadata(format!("{}-wal", path.display()))
            .map(|m| m.len())
            .unwrap_or(0);
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let s = Store::open(&path, OpenMode::Write, Duration::from_secs(1)).unwrap();
            times.push(t.elapsed());
            drop(s);
        }
        times.sort();
        println!(
            "frames {frames:5} wal {wal_len:8} bytes: open median {:?} p90 {:?}",
            times[100], times[180]
        );
    }
}
