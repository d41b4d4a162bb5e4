//! WAL checkpoints off the request path.
//!
//! With SQLite's automatic checkpoints, the commit that crosses 1000 WAL
//! pages copies them back into the database file and fsyncs it while its
//! client waits. Here the serving connection never checkpoints; this thread
//! does, with a connection of its own: PASSIVE (never blocks the writer)
//! whenever the WAL has grown, and RESTART (waits for the writer, so the WAL
//! starts over) if it still grows past a bound — so it stays bounded under
//! any load. It ends with the last handle on the database.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use rusqlite::Connection;

/// When the writer starts the WAL over, it truncates the file to this…
pub const WAL_KEEP: u64 = 1 << 20;
/// …so a file past this has news: checkpoint it…
const PASSIVE_AT: u64 = 4 << 20;
/// …and make the writer wait for a full one past this.
const RESTART_AT: u64 = 256 << 20;
const EVERY: Duration = Duration::from_millis(250);

pub fn spawn(db: &Path, alive: Weak<Mutex<Connection>>) {
    let db = db.to_path_buf();
    let spawned = std::thread::Builder::new().name("ferry-checkpoint".into()).spawn(move || run(db, alive));
    if let Err(e) = spawned {
        tracing::error!("cannot start the checkpoint thread ({e}); the WAL will grow until restart");
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push("-wal");
    PathBuf::from(p)
}

fn run(db: PathBuf, alive: Weak<Mutex<Connection>>) {
    let conn = match Connection::open(&db) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("checkpoint connection: {e}; the WAL will grow until restart");
            return;
        }
    };
    let _ = conn.busy_timeout(Duration::from_secs(30));
    let wal = wal_path(&db);
    while alive.strong_count() > 0 {
        std::thread::sleep(EVERY);
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size < PASSIVE_AT {
            continue;
        }
        let mode = if size >= RESTART_AT { "RESTART" } else { "PASSIVE" };
        // (busy, WAL frames, frames checkpointed)
        let r: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        match r {
            Ok((_, log, done)) => tracing::debug!(mode, wal_bytes = size, log, done, "checkpoint"),
            Err(e) => tracing::warn!(mode, "checkpoint failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wal_stays_bounded_and_the_thread_ends_with_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = super::super::SqliteStorage::open(&path).unwrap();
        db.with_conn(|c| {
            c.execute_batch("CREATE TABLE t (x BLOB)")?;
            // ~24 MB through the WAL in 1 MB transactions.
            for _ in 0..24 {
                let tx = c.transaction()?;
                for _ in 0..256 {
                    tx.execute("INSERT INTO t VALUES (zeroblob(4000))", [])?;
                }
                tx.commit()?;
            }
            Ok(())
        })
        .unwrap();
        // The serving connection never checkpoints, so only the thread can
        // have copied the rows into the database file…
        let main_file = || std::fs::metadata(&path).unwrap().len();
        for _ in 0..40 {
            if main_file() > 20 << 20 {
                break;
            }
            std::thread::sleep(EVERY);
        }
        assert!(main_file() > 20 << 20, "database file is {} bytes: nothing checkpointed", main_file());
        // …and once it has copied everything, the next write starts the WAL
        // over, truncated.
        let wal = || std::fs::metadata(wal_path(&path)).unwrap().len();
        for _ in 0..40 {
            db.with_conn(|c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?)).unwrap();
            if wal() <= WAL_KEEP + 64 * 1024 {
                break;
            }
            std::thread::sleep(EVERY);
        }
        assert!(wal() <= WAL_KEEP + 64 * 1024, "WAL is {} bytes: never started over", wal());
        drop(db);
    }
}
