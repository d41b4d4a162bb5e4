//! The SQLite backend: one file, one process (the embedded default).
//!
//! One connection behind a mutex serves everything. Writes are serialized by
//! SQLite anyway, and push batches are short transactions; a single
//! connection keeps the prepared-statement cache hot and the locking obvious
//! (every transaction is the only one, so the organisation write lock of
//! [`Storage`](super::Storage) holds trivially). A second connection, on a
//! thread of its own, only checkpoints the WAL.

mod accounts;
pub mod backup;
mod batch;
mod checkpoint;
mod identity;
pub mod migrations;
mod records;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use ferry_protocol::{DatabaseInfo, Mutation, RemoteRecord};
use rand::RngCore;
use rusqlite::{Connection, ErrorCode, OptionalExtension};

use super::{ChangesPage, Rotation, Storage};
use crate::apply::{BatchOutcome, Rules};
use crate::auth::refresh::NewToken;
use crate::auth::throttle::FailureCount;
use crate::error::{Error, Result};
use crate::stats::{DumpRecord, Stats};
use crate::users::User;

/// How long a statement waits for another process (e.g. `ferry-server user
/// add` while the server runs) to release the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Each backend turns its own errors into the library's: a lock held too
/// long by another process is "unavailable, retry", anything else a
/// database error.
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                Error::Unavailable(format!("the SQLite database is locked by another process: {e}"))
            }
            _ => Error::Database { backend: "sqlite", message: e.to_string() },
        }
    }
}

/// Handle to a server database file; cheap to clone.
#[derive(Clone)]
pub struct SqliteStorage {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage").field("path", &self.path).finish()
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let open_err =
            |source: rusqlite::Error| Error::Open { location: path.display().to_string(), message: source.to_string() };
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
        ensure_signing_secret(&conn)?;
        identity::ensure(&conn)?;
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

    /// Runs `f` on the connection, blocking the current thread (for code
    /// already on a blocking thread).
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        let mut guard = lock(&self.conn);
        f(&mut guard)
    }

    /// Runs `f` on the connection on tokio's blocking pool, so database work
    /// never stalls the async workers. The closure runs to completion even if
    /// the awaiting request is dropped, so a transaction is either committed
    /// or rolled back, never abandoned half-way.
    async fn call<T, F>(&self, f: F) -> Result<T>
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

/// Creates the signing secret on first open. Random per database, so two
/// servers never accept each other's tokens and restarts keep sessions valid.
fn ensure_signing_secret(conn: &Connection) -> Result<()> {
    let existing: Option<Vec<u8>> =
        conn.query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |r| r.get(0)).optional()?;
    if existing.is_none() {
        let mut secret = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('jwt_secret', ?1)", [secret])?;
    }
    Ok(())
}

fn read_signing_secret(conn: &Connection) -> Result<Vec<u8>> {
    Ok(conn.query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |r| r.get(0))?)
}

#[async_trait]
impl Storage for SqliteStorage {
    fn location(&self) -> String {
        format!("SQLite file {}", self.path.display())
    }

    async fn signing_secret(&self) -> Result<Vec<u8>> {
        self.call(|conn| read_signing_secret(conn)).await
    }

    async fn add_user(&self, user: &User) -> Result<()> {
        let user = user.clone();
        self.call(move |conn| accounts::add_user(conn, &user)).await
    }

    async fn find_user(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_owned();
        self.call(move |conn| accounts::find_user(conn, &name)).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.call(|conn| accounts::list_users(conn)).await
    }

    async fn set_user_disabled(&self, name: &str, disabled_at: Option<i64>) -> Result<bool> {
        let name = name.to_owned();
        self.call(move |conn| accounts::set_disabled(conn, &name, disabled_at)).await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.call(move |conn| accounts::set_password(conn, &name, &hash)).await
    }

    async fn remove_user(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.call(move |conn| accounts::remove_user(conn, &name)).await
    }

    async fn login_failures(&self, keys: &[String]) -> Result<Vec<FailureCount>> {
        let keys = keys.to_vec();
        self.call(move |conn| accounts::login_failures(conn, &keys)).await
    }

    async fn record_login_failure(&self, keys: &[String], now: i64, forget_before: i64) -> Result<()> {
        let keys = keys.to_vec();
        self.call(move |conn| accounts::record_login_failure(conn, &keys, now, forget_before)).await
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.call(move |conn| accounts::clear_login_failures(conn, &key)).await
    }

    async fn store_refresh_token(&self, family: &str, user: &str, token: &NewToken) -> Result<()> {
        let (family, user, token) = (family.to_owned(), user.to_owned(), token.clone());
        self.call(move |conn| accounts::store_token(conn, &family, &user, &token)).await
    }

    async fn rotate_refresh_token(&self, presented: &[u8], next: &NewToken, now: i64) -> Result<Rotation> {
        let (presented, next) = (presented.to_vec(), next.clone());
        self.call(move |conn| accounts::rotate(conn, &presented, &next, now)).await
    }

    async fn revoke_refresh_family(&self, presented: &[u8]) -> Result<bool> {
        let presented = presented.to_vec();
        self.call(move |conn| accounts::revoke_family_of(conn, &presented)).await
    }

    async fn purge_refresh_tokens(&self, before: i64) -> Result<()> {
        self.call(move |conn| accounts::purge_tokens(conn, before)).await
    }

    async fn push(
        &self,
        org: &str,
        user: &str,
        mutations: Vec<Mutation>,
        rules: &Rules,
        now: i64,
    ) -> Result<BatchOutcome> {
        let (org, user, rules) = (org.to_owned(), user.to_owned(), rules.clone());
        self.call(move |conn| batch::apply(conn, &org, &user, &mutations, &rules, now)).await
    }

    async fn pull(&self, org: &str, since: u64, limit: u32) -> Result<ChangesPage> {
        let org = org.to_owned();
        self.call(move |conn| records::pull(conn, &org, since, limit)).await
    }

    async fn record(&self, org: &str, entity: &str, record_id: &str) -> Result<Option<RemoteRecord>> {
        let (org, entity, record_id) = (org.to_owned(), entity.to_owned(), record_id.to_owned());
        self.call(move |conn| records::load(conn, &org, &entity, &record_id)?.map(|r| r.into_remote()).transpose())
            .await
    }

    /// One process serves the file, and its pushes notify the feed.
    fn forward_commits(&self, _feed: Arc<crate::changes::ChangeFeed>) -> Option<tokio::task::JoinHandle<()>> {
        None
    }

    async fn stats(&self) -> Result<Stats> {
        self.call(|conn| records::stats(conn)).await
    }

    async fn dump(&self, org: Option<&str>) -> Result<Vec<DumpRecord>> {
        let org = org.map(str::to_owned);
        self.call(move |conn| records::dump(conn, org.as_deref())).await
    }

    async fn database(&self, org: &str) -> Result<DatabaseInfo> {
        let org = org.to_owned();
        self.call(move |conn| Ok(identity::read(conn)?.info(&org, identity::head(conn, &org)?))).await
    }

    async fn mark_restored(&self, now: i64) -> Result<u64> {
        self.call(move |conn| Ok(identity::mark_restored(conn, now)?.generation)).await
    }
}

/// For the copy to PostgreSQL: a read transaction over everything.
impl SqliteStorage {
    pub(super) fn read_all<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        self.with_conn(|conn| {
            // DEFERRED + a first read: one consistent snapshot for the whole
            // copy, while the server (if it still runs) goes on writing.
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
    }
}
