//! What opening a history database costs a new process, by the length of its
//! write-ahead log: the first connection of a process rebuilds the WAL index
//! by reading every frame written since the log last started over, so this is
//! the figure behind `CHECKPOINT_PAGES` (docs/benchmarks.md, "Run shim and
//! history"). Run by `scripts/bench-shim`; not shipped.
//!
//! Usage: `cargo run --release -p jobctl-history --example wal-open [DIR]`
//! (DIR defaults to /dev/shm, so that the disk does not blur the CPU cost).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jobctl_history::{OpenMode, Store};
use rusqlite::Connection;
use rusqlite::config::DbConfig;

const OPENS: usize = 300;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/dev/shm".into()));
    println!("| frames in the log | open median µs | open p90 µs |");
    println!("|---:|---:|---:|");
    let mut base = None;
    for frames in [0usize, 8, 16, 32, 64, 128, 256, 1024] {
        let path = dir.join(format!(
            "jobctl-wal-open-{}-{frames}.db",
            std::process::id()
        ));
        remove(&path);
        let frames = fill(&path, frames);
        let mut times = Vec::with_capacity(OPENS);
        for _ in 0..OPENS {
            let start = Instant::now();
            // Every connection is closed before the next open, so each open
            // is a process's first and rebuilds the index, as in the shim.
            let store = Store::open(&path, OpenMode::Write, Duration::from_secs(1))
                .expect("open the database");
            times.push(start.elapsed());
            drop(store);
        }
        times.sort();
        let median = times[OPENS / 2].as_secs_f64() * 1e6;
        let p90 = times[OPENS * 9 / 10].as_secs_f64() * 1e6;
        let per_frame = match base {
            Some(b) if frames > 0 => format!(" ({:+.2} µs a frame)", (median - b) / frames as f64),
            _ => String::new(),
        };
        base.get_or_insert(median);
        println!("| {frames} | {median:.0}{per_frame} | {p90:.0} |");
        remove(&path);
    }
}

/// A history database whose log holds at least `frames` frames that every
/// opener must read (one-page commits, no checkpoint). Returns how many.
fn fill(path: &Path, frames: usize) -> usize {
    drop(Store::open(path, OpenMode::Write, Duration::from_secs(1)).expect("create"));
    let conn = Connection::open(path).expect("open");
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .expect("no checkpoint on close");
    conn.execute_batch(
        "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA wal_autocheckpoint = 0; \
         CREATE TABLE pad (x BLOB);",
    )
    .expect("prepare the log");
    let wal = wal_path(path);
    let frames_now = || {
        std::fs::metadata(&wal)
            .map(|m| (m.len().saturating_sub(32) / (4096 + 24)) as usize)
            .unwrap_or(0)
    };
    while frames_now() < frames {
        conn.execute("INSERT INTO pad VALUES (zeroblob(100))", [])
            .expect("insert");
    }
    frames_now()
}

fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
}
