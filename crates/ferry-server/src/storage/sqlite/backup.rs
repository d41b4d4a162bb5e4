//! `ferry-server backup`: a consistent copy of a SQLite server database
//! while it serves, through SQLite's online backup API; and `restore`,
//! which puts such a copy back in place of a stopped server's database.
//!
//! The copy is taken in one step, inside one read transaction of a
//! connection of its own. In WAL mode a reader never blocks writers, so
//! pushes carry on while it runs (only WAL checkpoints wait for it), and
//! the copy is the database exactly as of the moment the step began: every
//! push acknowledged before that is in it, none committed after. (Copying
//! in several small steps would restart from scratch whenever the server
//! commits in between, which under steady pushes may be forever.)
//!
//! The copy is written next to its destination, checked with
//! `PRAGMA integrity_check`, flushed to disk and only then renamed into
//! place, so a crash or a full disk never leaves a half copy under the
//! destination's name.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// How long a step waits for a lock another connection holds (a schema
/// migration of a server starting at that moment) before retrying.
const BUSY_PAUSE: Duration = Duration::from_millis(50);
const BUSY_GIVE_UP: Duration = Duration::from_secs(60);

/// What a backup wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
    /// How long the copy's read transaction was open.
    pub copy_ms: u64,
}

/// What a restore did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub db: PathBuf,
    /// Where the database that was there before is kept (nothing is
    /// deleted: it holds what the backup does not).
    pub replaced: Option<PathBuf>,
    /// The generation the restored database begins (clients reconcile).
    pub generation: u64,
}

/// Puts the backup `from` in place of the database at `db`, which no server
/// may have open, and starts a new generation in it.
pub fn restore(from: &Path, db: &Path, now: i64) -> Result<RestoreReport> {
    let copy_err = |what: &str, e: &dyn std::fmt::Display| Error::Copy(format!("{what}: {e}"));
    check_backup(from)?;
    let partial = partial_path(db);
    let _ = std::fs::remove_file(&partial);
    let result = (|| {
        std::fs::copy(from, &partial).map_err(|e| copy_err("cannot copy the backup", &e))?;
        let mut conn = Connection::open(&partial).map_err(|e| copy_err("cannot open the copy", &e))?;
        let generation = super::identity::mark_restored(&mut conn, now)?.generation;
        conn.execute_batch("PRAGMA journal_mode = DELETE;").map_err(|e| copy_err("cannot finish the copy", &e))?;
        drop(conn);
        std::fs::File::open(&partial)?.sync_all()?;
        Ok(generation)
    })();
    // The database goes aside only once its replacement is ready.
    let replaced = result.and_then(|g| Ok((g, if db.exists() { Some(set_aside(db, now)?) } else { None })));
    let (generation, replaced) = match replaced {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, db)?;
    sync_dir(db);
    Ok(RestoreReport { db: db.to_path_buf(), replaced, generation })
}

/// A backup must be a whole, sound server database before anything moves.
fn check_backup(from: &Path) -> Result<()> {
    if !from.is_file() {
        return Err(Error::Copy(format!(
            "no backup file at {}: pass --from the file `ferry-server backup --to` wrote",
            from.display()
        )));
    }
    let not_backup = |e: rusqlite::Error| {
        Error::Copy(format!("{} is not a ferry-server backup ({e}); nothing was changed", from.display()))
    };
    let conn = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(not_backup)?;
    conn.query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |_| Ok(())).map_err(not_backup)?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(not_backup)?;
    if check != "ok" {
        return Err(Error::Corrupt(format!("{} failed its integrity check: {check}", from.display())));
    }
    Ok(())
}

/// Moves the database at `db` aside as one self-contained file, refusing
/// if a server has it open.
fn set_aside(db: &Path, now: i64) -> Result<PathBuf> {
    let in_use = |e: rusqlite::Error| {
        Error::Unavailable(format!(
            "{} is in use ({e}): stop the ferry-server that serves it, then restore",
            db.display()
        ))
    };
    let conn =
        Connection::open(db).map_err(|e| Error::Open { location: db.display().to_string(), message: e.to_string() })?;
    // Exclusive locking fails at once while any other connection (a
    // serving server's, even idle) has the database open.
    conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;").map_err(in_use)?;
    // Fold the log in, so the file set aside holds every commit.
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;").map_err(in_use)?;
    drop(conn);
    let aside = PathBuf::from(format!("{}.replaced-{now}", db.display()));
    std::fs::rename(db, &aside)?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    Ok(aside)
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself must survive a power cut too.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// Copies the server database at `source` to `dest` (which must not exist).
pub fn backup(source: &Path, dest: &Path) -> Result<BackupReport> {
    let copy_err = |what: &str, e: &dyn std::fmt::Display| Error::Copy(format!("{what}: {e}"));
    if dest.exists() {
        return Err(Error::Copy(format!(
            "{} already exists; back up to a new file (e.g. with the date in its name)",
            dest.display()
        )));
    }
    let src = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| Error::Open { location: source.display().to_string(), message: e.to_string() })?;
    // A file that is not a server database is refused before anything is
    // written.
    src.query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |_| Ok(())).map_err(|e| Error::Open {
        location: source.display().to_string(),
        message: format!("not a ferry-server database ({e})"),
    })?;
    let partial = partial_path(dest);
    let _ = std::fs::remove_file(&partial);
    let result = (|| {
        let mut dst = Connection::open(&partial).map_err(|e| copy_err("cannot create the copy", &e))?;
        let started = Instant::now();
        {
            let backup = Backup::new(&src, &mut dst).map_err(|e| copy_err("cannot start the backup", &e))?;
            loop {
                match backup.step(-1).map_err(|e| copy_err("backup failed", &e))? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked if started.elapsed() < BUSY_GIVE_UP => {
                        std::thread::sleep(BUSY_PAUSE)
                    }
                    StepResult::Busy | StepResult::Locked => {
                        return Err(Error::Unavailable(format!(
                            "the database stayed locked for {} s; try again",
                            BUSY_GIVE_UP.as_secs()
                        )))
                    }
                    // A result newer rusqlite versions may add: try again.
                    _ => std::thread::sleep(BUSY_PAUSE),
                }
            }
        }
        let copy_ms = started.elapsed().as_millis() as u64;
        let check: String = dst
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| copy_err("cannot check the copy", &e))?;
        if check != "ok" {
            return Err(Error::Corrupt(format!("the copy failed its integrity check: {check}")));
        }
        // The copy keeps the source's WAL mode; fold its log into the file
        // so the one file is the whole backup.
        dst.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
            .map_err(|e| copy_err("cannot finish the copy", &e))?;
        drop(dst);
        std::fs::File::open(&partial)?.sync_all()?;
        Ok(copy_ms)
    })();
    let copy_ms = match result {
        Ok(ms) => ms,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, dest)?;
    sync_dir(dest);
    Ok(BackupReport { path: dest.to_path_buf(), bytes: std::fs::metadata(dest)?.len(), copy_ms })
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sqlite::SqliteStorage;

    #[test]
    fn copies_a_server_database_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("server.db");
        let storage = SqliteStorage::open(&db).unwrap();
        storage
            .with_conn(|c| {
                c.execute_batch("INSERT INTO meta (key, value) VALUES ('marker', x'01')")?;
                Ok(())
            })
            .unwrap();
        let dest = dir.path().join("copy.db");
        let report = backup(&db, &dest).unwrap();
        assert!(report.bytes > 0);
        assert!(!partial_path(&dest).exists());
        let copy = Connection::open(&dest).unwrap();
        let marker: Vec<u8> = copy.query_row("SELECT value FROM meta WHERE key = 'marker'", [], |r| r.get(0)).unwrap();
        assert_eq!(marker, [1]);
        let mode: String = copy.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "delete", "one self-contained file");
        assert!(matches!(backup(&db, &dest), Err(Error::Copy(m)) if m.contains("already exists")));
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, b"").unwrap();
        assert!(matches!(backup(&junk, &dir.path().join("x.db")), Err(Error::Open { .. })));
    }
}
