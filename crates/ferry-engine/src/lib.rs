//! Ferry's sync engine.
//!
//! Local writes go into a durable SQLite outbox (one transaction with the
//! record), a background loop pushes them to the server with retry and
//! backoff, pulls what others changed, and settles conflicts by policy or
//! parks them for the user. The engine knows nothing of any GUI: the desktop
//! app and the `ferry` CLI both drive this facade.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry_engine::EngineError> {
//! use ferry_engine::{Engine, EngineConfig};
//! let engine = Engine::open(EngineConfig::new("/tmp/ferry-data"))?;
//! engine.init("http://127.0.0.1:8080").await?;
//! engine.login("mentor", "secret").await?;
//! let mut data = serde_json::Map::new();
//! data.insert("title".into(), "Visit".into());
//! engine.put("activity", "a1", data)?;
//! engine.sync_once().await?;
//! # Ok(()) }
//! ```

mod account;
pub mod auth;
pub mod clock;
mod decisions;
mod diagnostics;
mod error;
mod filelock;
pub mod label;
pub mod logs;
pub mod model;
pub mod resolve;
pub mod server_url;
mod state;
mod status;
pub mod store;
mod sync;
pub mod transport;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::Op;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::store::settings;

pub use auth::TokenStoreChoice;
pub use diagnostics::{DiagnosticsOptions, DiagnosticsReport};
pub use error::{EngineError, Result};
pub use model::*;
pub use server_url::{read_ca_cert, ServerOptions};
use state::Inner;
use store::{Store, WriteOp};

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Holds `ferry.db` and small lock/signal files. Never tokens.
    pub data_dir: PathBuf,
    pub token_store: TokenStoreChoice,
    /// Pending items and no progress for this long = *stalled*.
    pub stall_after: Duration,
    /// How often to pull when nothing else happens (a stored setting, if
    /// any, overrides it).
    pub pull_interval: Duration,
    /// Most mutations per push request.
    pub batch_max_count: usize,
    /// Most payload bytes per push request (approximate).
    pub batch_max_bytes: usize,
    /// Most push requests out at once (1: each batch waits for the answer
    /// to the one before). See `sync/push.rs` for how per-record order holds.
    pub push_depth: usize,
}

impl EngineConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig { data_dir: data_dir.into(), ..Default::default() }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            data_dir: PathBuf::from("."),
            token_store: TokenStoreChoice::Keyring,
            stall_after: Duration::from_secs(15 * 60),
            pull_interval: Duration::from_secs(60),
            batch_max_count: 1000,
            batch_max_bytes: 4 * 1024 * 1024,
            push_depth: 3,
        }
    }
}

/// The sync engine. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Opens (creating if needed) the data dir and its database.
    pub fn open(config: EngineConfig) -> Result<Engine> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| EngineError::io(format!("cannot create data dir {}", config.data_dir.display()), e))?;
        let store = Store::open(&config.data_dir.join("ferry.db"))?;
        Ok(Engine { inner: Arc::new(Inner::new(config, store)?) })
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    // ------------------------------------------------------------ account

    /// Sets the backend. Checks it answers when it can, but an unreachable
    /// server is not an error (offline-first); the result says whether it was
    /// reached. A malformed URL, or one that answers but not as a Ferry
    /// server, is an error. Moving to another server is refused once
    /// anything was synced with (or signed in to) the current one.
    ///
    /// Plain `http://` to any host but this machine is refused before
    /// anything is sent, unless `options` allow it (see [`server_url`]).
    pub async fn init(&self, server_url: &str) -> Result<bool> {
        account::init(&self.inner, server_url, ServerOptions::default()).await
    }

    /// [`Engine::init`] with a private CA or the lab-network opt-in. Options
    /// not given again for the same server are kept.
    pub async fn init_with(&self, server_url: &str, options: ServerOptions) -> Result<bool> {
        account::init(&self.inner, server_url, options).await
    }

    pub async fn login(&self, user: &str, password: &str) -> Result<()> {
        account::login(&self.inner, user, password).await
    }

    /// Signs out here and revokes the sign-in on the server when reachable.
    /// Queued changes stay queued. A running loop of this data dir, in this
    /// process or another, follows sign-in and sign-out.
    pub async fn logout(&self) -> Result<()> {
        account::logout(&self.inner).await
    }

    pub fn server(&self) -> Result<Option<String>> {
        self.inner.store.setting(settings::SERVER)
    }

    pub fn user(&self) -> Result<Option<String>> {
        self.inner.store.setting(settings::USER)
    }

    // ------------------------------------------------------------ writes

    /// Creates or replaces a record. Returns the mutation id once the change
    /// is durable in the outbox.
    pub fn put(&self, entity: &str, id: &str, data: Fields) -> Result<Uuid> {
        self.write(entity, id, Op::Upsert, Some(data))
    }

    /// Merges fields into a record (`null` removes a field).
    pub fn patch(&self, entity: &str, id: &str, fields: Fields) -> Result<Uuid> {
        self.write(entity, id, Op::Patch, Some(fields))
    }

    pub fn delete(&self, entity: &str, id: &str) -> Result<Uuid> {
        self.write(entity, id, Op::Delete, None)
    }

    fn write(&self, entity: &str, id: &str, op: Op, payload: Option<Fields>) -> Result<Uuid> {
        let w = WriteOp { entity: entity.into(), record_id: id.into(), op, payload };
        let id = self.inner.store.write(&w, self.inner.clock.now_ms(), clock::local_now_ms())?;
        self.inner.local_write_done();
        Ok(id)
    }

    /// Many creates/replaces in one transaction: all or nothing.
    pub fn put_many(&self, items: Vec<(String, String, Fields)>) -> Result<usize> {
        let writes: Vec<WriteOp> = items
            .into_iter()
            .map(|(entity, record_id, data)| WriteOp { entity, record_id, op: Op::Upsert, payload: Some(data) })
            .collect();
        let n = self.inner.store.write_many(&writes, self.inner.clock.now_ms(), clock::local_now_ms())?;
        self.inner.local_write_done();
        Ok(n)
    }

    /// Creates/replaces records from a stream in one transaction, all or
    /// nothing; memory stays flat however many there are.
    pub fn put_stream<I>(&self, items: I) -> Result<usize>
    where
        I: IntoIterator<Item = Result<(String, String, Fields)>>,
    {
        let writes = items.into_iter().map(|r| {
            r.map(|(entity, record_id, data)| WriteOp { entity, record_id, op: Op::Upsert, payload: Some(data) })
        });
        let n = self.inner.store.write_stream(writes, self.inner.clock.now_ms(), clock::local_now_ms())?;
        self.inner.local_write_done();
        Ok(n)
    }

    // ------------------------------------------------------------ reads

    pub fn get(&self, entity: &str, id: &str) -> Result<Option<LocalRecord>> {
        self.inner.store.get(entity, id)
    }

    /// One page of `entity`'s live records, by id, after record id `after`
    /// (keyset paging: memory stays flat however many there are).
    pub fn list(&self, entity: &str, after: Option<&str>, limit: u32) -> Result<Vec<(String, Fields)>> {
        self.inner.store.list(entity, after, limit)
    }

    /// One page of the outbox after position `after_seq` (keyset paging).
    pub fn queue(&self, state: Option<MutationState>, after_seq: Option<i64>, limit: u32) -> Result<Vec<QueueItem>> {
        self.inner.store.queue(state, after_seq, limit)
    }

    /// One page of open conflicts, oldest first, after the one detected at
    /// `after = (detected_at, id)` (keyset paging; the status's `conflicts`
    /// count says how many there are).
    pub fn conflicts(&self, after: Option<(i64, String)>, limit: u32) -> Result<Vec<ConflictView>> {
        self.inner.store.open_conflicts(after, limit)
    }

    /// The ids of every open conflict, oldest first.
    pub fn conflict_ids(&self) -> Result<Vec<String>> {
        self.inner.store.open_conflict_ids()
    }

    /// Resolutions, newest first.
    pub fn history(&self, limit: u32) -> Result<Vec<ResolutionEntry>> {
        self.inner.store.history(limit)
    }

    /// Resolutions older than history entry `before`, newest first (paging).
    pub fn history_before(&self, before: Option<i64>, limit: u32) -> Result<Vec<ResolutionEntry>> {
        self.inner.store.history_before(before, limit)
    }

    /// Sync runs, newest first.
    pub fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>> {
        self.inner.store.sync_runs(limit)
    }

    // ------------------------------------------------------------ decisions

    /// Settles an open conflict as the user chose; the result is queued like
    /// any write.
    pub fn resolve(&self, conflict_id: &str, choice: Resolution) -> Result<Option<Uuid>> {
        let queued = decisions::resolve_manually(&self.inner, conflict_id, &choice)?;
        self.inner.local_write_done();
        Ok(queued)
    }

    pub fn retry(&self, mutation_id: &str) -> Result<()> {
        self.inner.store.retry(mutation_id)?;
        self.inner.local_write_done();
        self.inner.urgent();
        Ok(())
    }

    /// Replaces a failed change with corrected fields and queues it again,
    /// in one step (see [`store::Store::correct`]). Returns the new
    /// mutation id.
    pub fn correct(&self, mutation_id: &str, fields: Fields) -> Result<Uuid> {
        let id = self.inner.store.correct(mutation_id, fields, self.inner.clock.now_ms(), clock::local_now_ms())?;
        self.inner.local_write_done();
        self.inner.urgent();
        Ok(id)
    }

    pub fn retry_all(&self) -> Result<u64> {
        let n = self.inner.store.retry_all()?;
        self.inner.local_write_done();
        self.inner.urgent();
        Ok(n)
    }

    pub fn discard(&self, mutation_id: &str) -> Result<()> {
        self.inner.store.discard(mutation_id)?;
        self.inner.local_write_done();
        Ok(())
    }

    /// Queues a resolution's losing local value again, as a new edit.
    pub fn restore(&self, history_id: i64) -> Result<Uuid> {
        let id = self.inner.store.restore(history_id, self.inner.clock.now_ms(), clock::local_now_ms())?;
        self.inner.local_write_done();
        Ok(id)
    }

    pub fn set_policy(&self, entity: &str, policy: ConflictPolicy) -> Result<()> {
        ferry_protocol::validate_entity(entity).map_err(EngineError::Invalid)?;
        self.inner.store.set_policy(entity, policy)
    }

    pub fn policy(&self, entity: &str) -> Result<ConflictPolicy> {
        self.inner.policy(entity)
    }

    /// Entities with a policy other than the default.
    pub fn policies(&self) -> Result<Vec<(String, ConflictPolicy)>> {
        self.inner.store.policies()
    }

    /// Sets the field whose value labels the records of `entity` in the
    /// queue, the conflicts and the history (`None`: back to the default,
    /// see [`label`]). An entity with no records yet is fine.
    pub fn set_title_field(&self, entity: &str, field: Option<&str>) -> Result<()> {
        ferry_protocol::validate_entity(entity).map_err(EngineError::Invalid)?;
        if let Some(field) = field {
            label::validate_field(field).map_err(EngineError::Invalid)?;
        }
        self.inner.store.set_title_field(entity, field)?;
        // Another process's window shows labels too: let it look again.
        self.inner.signal_other_processes();
        Ok(())
    }

    /// The title fields set, `(entity, field)` by entity name.
    pub fn title_fields(&self) -> Result<Vec<(String, String)>> {
        self.inner.store.title_field_list()
    }

    pub fn set_pull_interval(&self, every: Duration) -> Result<()> {
        self.inner
            .store
            .set_setting(settings::PULL_INTERVAL_MS, &i64::try_from(every.as_millis()).unwrap_or(i64::MAX))?;
        self.inner.wake.notify_one();
        Ok(())
    }

    pub fn pull_interval(&self) -> Duration {
        self.inner.pull_interval()
    }

    // ------------------------------------------------------------ support

    /// Writes one `.tar.gz` at `to` describing this data dir for whoever
    /// helps the user: status, settings, queue, conflicts, history, sync
    /// runs and the newest logs — never a token, and record contents only
    /// with `options.include_records`. Refuses to replace an existing file.
    pub fn save_diagnostics(&self, to: &Path, options: DiagnosticsOptions) -> Result<DiagnosticsReport> {
        diagnostics::save(self, to, options)
    }

    // ------------------------------------------------------------ sync

    /// One full cycle now: push everything, then pull everything.
    pub async fn sync_once(&self) -> Result<SyncReport> {
        sync::cycle(&self.inner).await
    }

    /// The background loop: sleeps until a local write (from this or another
    /// process), a timer, a connectivity change or "sync now", and syncs.
    /// Returns when `shutdown` completes.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        sync::run_loop(self.inner.clone(), shutdown).await
    }

    /// Sync at once, skipping any backoff wait.
    pub fn sync_now(&self) {
        self.inner.urgent();
    }

    /// The network came back (or changed): retry at once.
    pub fn connectivity_changed(&self) {
        self.inner.urgent();
    }

    pub fn set_paused(&self, paused: bool) -> Result<()> {
        self.inner.set_paused(paused)
    }

    // ------------------------------------------------------------ status

    pub fn status(&self) -> Status {
        self.inner.status_tx.borrow().clone()
    }

    /// Recomputes status from the database (counts may have been changed by
    /// another process) and returns it.
    pub fn refresh_status(&self) -> Status {
        self.inner.publish();
        self.status()
    }

    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.inner.status_tx.subscribe()
    }

    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events_tx.subscribe()
    }

    /// Estimated server-minus-local clock offset, ms.
    pub fn clock_offset_ms(&self) -> i64 {
        self.inner.clock.offset_ms()
    }
}
