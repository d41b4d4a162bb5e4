//! The SQLite database: opening, tuning, migrations and access from async
//! code.
//!
//! One connection behind a mutex serves everything. Writes are serialized by
//! SQLite anyway, and push batches are short transactions; a single
//! connection keeps the prepared-statement cache hot and the locking obvious.
//! A second connection, on a thread of its own, only checkpoints the WAL.

mod checkpoint;
pub mod migrations;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

/// How long a statement waits for another process (e.g. `ferry-server user
/// add` while the server runs) to release the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle to the server database; cheap to clone.
#[derive(Clone)]
pub struct ServerDb {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for ServerDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerDb").field("path", &self.path).finish()
    }
}

impl ServerDb {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open_err = |source| Error::Open { path: path.clone(), source };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL: readers never block the writer. synchronous=FULL: an answered
        // push survives a power cut too — its client deletes the mutations
        // from its outbox on that answer, so a lost commit would be lost
        // data. One fsync per batch.
        // 16 KB pages for a new database: the records and applied-id trees
        // get shallower and a batch's commit writes fewer WAL frames
        // (server-push +8% measured). No effect on an existing database.
        conn.pragma_update(None, "page_size", 16384).map_err(open_err)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(open_err)?;
        let wal = mode.eq_ignore_ascii_case("wal");
        if !wal {
            // In-memory databases (tests) report "memory"; files should not.
            tracing::warn!(%mode, "database is not in WAL mode");
        }
        // 64 MB of page cache: the applied-mutation index grows with every
        // mutation ever applied and is probed on each one.
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(64);
        migrations::migrate(&mut conn)?;
        ensure_jwt_secret(&conn)?;
        if wal {
            // Copying the WAL back into the database file (and its fsync)
            // was a quarter of a push's time when the committing request
            // did it; a checkpointer thread (below) takes it off that path.
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
            conn.pragma_update(None, "journal_size_limit", checkpoint::WAL_KEEP as i64)?;
        }
        let conn = Arc::new(Mutex::new(conn));
        if wal {
            checkpoint::spawn(&path, Arc::downgrade(&conn));
        }
        Ok(Self { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection, blocking the current thread. For the CLI
    /// and for code already on a blocking thread.
    pub fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = lock(&self.conn);
        f(&mut guard)
    }

    /// Runs `f` on the connection on tokio's blocking pool, so database work
    /// never stalls the async workers. The closure runs to completion even if
    /// the awaiting request is dropped, so a transaction is either committed
    /// or rolled back, never abandoned half-way.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn);
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))?
    }

    /// The secret that signs access tokens.
    pub fn jwt_secret(&self) -> Result<Vec<u8>> {
        self.with_conn(|conn| {
            conn.query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |r| r.get(0)).map_err(Error::from)
        })
    }
}

/// Locks the connection, recovering from poisoning: a panic while holding the
/// lock unwinds through rusqlite's `Transaction` drop, which rolls back, so
/// the connection is still consistent.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| {
        tracing::warn!("database mutex was poisoned by a panic; continuing");
        poisoned.into_inner()
    })
}

/// Creates the JWT secret on first open. Random per database, so two servers
/// never accept each other's tokens and restarts keep sessions valid.
fn ensure_jwt_secret(conn: &Connection) -> Result<()> {
    let existing: Option<Vec<u8>> =
        conn.query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |r| r.get(0)).optional()?;
    if existing.is_none() {
        let mut secret = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('jwt_secret', ?1)", [secret])?;
    }
    Ok(())
}

/// Operator and embedding conveniences (CLI, demo mode, benchmarks).
impl ServerDb {
    /// Creates user `name` in organisation `org`.
    pub fn add_user(&self, name: &str, org: &str, password: &str) -> Result<()> {
        self.with_conn(|conn| crate::users::add_user(conn, name, org, password))
    }

    pub fn stats(&self) -> Result<crate::stats::Stats> {
        self.with_conn(|conn| crate::stats::stats(conn))
    }

    pub fn dump(&self, org: Option<&str>) -> Result<Vec<crate::stats::DumpRecord>> {
        self.with_conn(|conn| crate::stats::dump(conn, org))
    }
}
