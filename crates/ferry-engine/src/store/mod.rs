//! The local SQLite store: records, their shadow copies, the outbox,
//! conflicts, resolution history and sync state.
//!
//! One file (`ferry.db` in the data dir), WAL mode, one connection per
//! process behind a mutex. Every local write changes the record and appends
//! its mutation in one transaction, so a crash at any instant loses nothing
//! that a write call reported as done.

mod conflicts;
mod migrations;
mod outbox;
mod reconcile;
mod records;
mod server_state;
pub mod settings;
mod stamps;

pub use conflicts::{Settle, Settled};
pub use outbox::{BatchItem, LocalEditTimes, OutboxCounts, OwnChanges, OwnStretches, Settlement};
pub use reconcile::{ReconcileTally, Times};
pub use records::WriteOp;
pub use stamps::{RestampInput, RestampOutcome};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::model::Fields;

pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        let db_err = |source| EngineError::Database { path: path.display().to_string(), source };
        let mut conn = Connection::open(path).map_err(db_err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db_err)?;
        // WAL: readers never block the writer. synchronous=FULL: a write
        // reported done survives a power cut or OS crash too, not only a
        // process crash (a laptop's battery dies on a train); it costs one
        // fsync per transaction, ~0.3 ms here.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(db_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "could not switch the local database to WAL mode");
        }
        // 16 MB of page cache keeps the outbox indexes hot on long queues.
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-16000;")
            .map_err(db_err)?;
        // Every transaction here writes. Taking the write lock up front makes
        // a second process (daemon + CLI) wait for the busy timeout instead
        // of failing at once with "database is locked" on lock upgrade.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        // Fail early and clearly on a file that is not a database.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)).map_err(db_err)?;
        migrations::migrate(&mut conn).map_err(db_err)?;
        let store = Store { conn: Mutex::new(conn), path: path.to_path_buf() };
        store.recover_after_crash()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frees the page cache (idle processes stay small at any queue length).
    pub fn release_memory(&self) {
        if let Err(e) = self.conn().execute_batch("PRAGMA shrink_memory") {
            tracing::debug!(error = %e, "shrink_memory");
        }
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done transaction
        // behind (rusqlite rolls back on drop), so a poisoned lock is safe to use.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For tests elsewhere in the engine that look at the rows themselves.
    #[cfg(test)]
    pub(crate) fn test_conn(&self) -> MutexGuard<'_, Connection> {
        self.conn()
    }

    /// Rows marked in flight by a process that died mid-push are pending
    /// again: an answer that never came means "unknown", and re-sending is
    /// safe because mutation ids are idempotency keys. Only when no process
    /// is syncing this data dir: a live push's rows are really in flight.
    fn recover_after_crash(&self) -> Result<()> {
        // The lock a sync cycle holds (sync/mod.rs); released when dropped.
        let lock_path = self.path.with_file_name(SYNC_LOCK_FILE);
        // Held (when taken) until the marks are reset, so a push starting
        // meanwhile cannot have its fresh marks cleared.
        // Cannot tell (read-only dir, ...): leave the marks; the next push
        // resets them under its lock anyway.
        let held = crate::filelock::FileLock::try_acquire(&lock_path).unwrap_or_default();
        if held.is_some() {
            self.reset_in_flight()?;
        }
        Ok(())
    }
}

/// The file a sync cycle locks in the data dir, next to the database.
pub(crate) const SYNC_LOCK_FILE: &str = "sync.lock";

pub(crate) fn to_json(fields: &Option<Fields>) -> Option<String> {
    fields.as_ref().map(|f| Value::Object(f.clone()).to_string())
}

pub(crate) fn from_json(text: Option<String>) -> Option<Fields> {
    match text.and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
        Some(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// Applies `op` with `payload` to `current` the way the server does.
pub(crate) fn apply_op(current: Option<Fields>, op: ferry_protocol::Op, payload: Option<&Fields>) -> Option<Fields> {
    use ferry_protocol::Op;
    match op {
        Op::Upsert => Some(payload.cloned().unwrap_or_default()),
        Op::Patch => {
            let mut base = current.unwrap_or_default();
            if let Some(p) = payload {
                merge_patch(&mut base, p);
            }
            Some(base)
        }
        Op::Delete => None,
    }
}

/// Top-level merge: fields of `patch` replace those of `target`; `null` removes.
pub(crate) fn merge_patch(target: &mut Fields, patch: &Fields) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}
