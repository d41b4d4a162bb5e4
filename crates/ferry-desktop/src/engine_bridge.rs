//! The one place the desktop app talks to `ferry_engine`. Everything else
//! (tray, window commands, notifications, demo) goes through `Bridge`, so a
//! change in the engine's API is a change in this file only.
//!
//! Errors cross into the UI as strings: the engine's messages are written for
//! people and never contain tokens or passwords.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use ferry_engine::{
    ConflictPolicy, ConflictView, EngineEvent, Fields, LocalRecord, MutationState, Problem, QueueItem, Resolution,
    ResolutionEntry, Status, SyncRun, SyncState,
};
use ferry_engine::{DiagnosticsOptions, Engine, EngineConfig, TokenStoreChoice};
use tokio::sync::{broadcast, oneshot, watch};

pub type BridgeResult<T> = Result<T, String>;

fn msg<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// A writer to the engine's rolling log files in `data_dir` (and the guard
/// that flushes it), for this long-running process's second log layer.
pub fn log_file_writer(
    data_dir: &Path,
) -> std::io::Result<(tracing_appender::non_blocking::NonBlocking, tracing_appender::non_blocking::WorkerGuard)> {
    ferry_engine::logs::file_writer(data_dir)
}

/// Where the engine keeps its tokens.
pub enum Tokens {
    /// The OS keyring (the normal app).
    Keyring,
    /// Process memory only: the demo, so it never touches the user's keyring
    /// (its tokens are for a throwaway local server and die with the app).
    Memory,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// A handle on the engine plus its background run loop. Cheap to clone.
#[derive(Clone)]
pub struct Bridge {
    engine: Engine,
    running: Arc<Mutex<Option<Running>>>,
}

impl Bridge {
    pub fn open(data_dir: PathBuf, tokens: Tokens) -> anyhow::Result<Bridge> {
        let token_store = match tokens {
            Tokens::Keyring => TokenStoreChoice::Keyring,
            Tokens::Memory => TokenStoreChoice::Memory,
        };
        let engine = Engine::open(EngineConfig { data_dir, token_store, ..EngineConfig::default() })?;
        Ok(Bridge { engine, running: Arc::new(Mutex::new(None)) })
    }

    /// Starts the background sync loop (once).
    pub fn start(&self) {
        let mut running = self.running.lock().unwrap();
        if running.is_some() {
            return;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let engine = self.engine.clone();
        let task = tokio::spawn(async move {
            let r = engine
                .run(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = r {
                tracing::error!("sync loop ended: {e}");
            }
        });
        *running = Some(Running { stop, task });
    }

    /// Stops the run loop and waits for it to finish its current step, so
    /// nothing is cut off mid-write (the outbox is transactional anyway; this
    /// just lets an in-flight push complete and be recorded).
    pub async fn stop(&self) {
        let running = self.running.lock().unwrap().take();
        if let Some(Running { stop, task }) = running {
            let _ = stop.send(());
            if tokio::time::timeout(Duration::from_secs(10), task).await.is_err() {
                tracing::warn!("engine did not stop within 10 s; quitting anyway");
            }
        }
    }

    pub fn status(&self) -> Status {
        self.engine.status()
    }
    pub fn subscribe(&self) -> watch::Receiver<Status> {
        self.engine.subscribe()
    }
    pub fn events(&self) -> broadcast::Receiver<EngineEvent> {
        self.engine.events()
    }

    pub fn sync_now(&self) {
        self.engine.sync_now()
    }
    /// The network came back: retry at once (what the engine's own network
    /// watcher does on a real machine).
    pub fn network_changed(&self) {
        self.engine.connectivity_changed()
    }
    pub fn set_paused(&self, paused: bool) {
        if let Err(e) = self.engine.set_paused(paused) {
            tracing::warn!("pause/resume: {e}");
        }
    }

    pub fn queue(
        &self,
        state: Option<MutationState>,
        after_seq: Option<i64>,
        limit: u32,
    ) -> BridgeResult<Vec<QueueItem>> {
        self.engine.queue(state, after_seq, limit).map_err(msg)
    }
    pub fn conflict_ids(&self) -> BridgeResult<Vec<String>> {
        self.engine.conflict_ids().map_err(msg)
    }
    pub fn first_conflicts(&self, limit: u32) -> BridgeResult<Vec<ConflictView>> {
        self.engine.conflicts(None, limit).map_err(msg)
    }
    pub fn resolve(&self, conflict_id: &str, resolution: Resolution) -> BridgeResult<()> {
        self.engine.resolve(conflict_id, resolution).map(|_| ()).map_err(msg)
    }
    pub fn history(&self, before: Option<i64>, limit: u32) -> BridgeResult<Vec<ResolutionEntry>> {
        self.engine.history_before(before, limit).map_err(msg)
    }
    pub fn sync_runs(&self, limit: u32) -> BridgeResult<Vec<SyncRun>> {
        self.engine.sync_runs(limit).map_err(msg)
    }
    pub fn restore(&self, history_id: i64) -> BridgeResult<()> {
        self.engine.restore(history_id).map(|_| ()).map_err(msg)
    }
    pub fn retry(&self, mutation_id: &str) -> BridgeResult<()> {
        self.engine.retry(mutation_id).map(|_| ()).map_err(msg)
    }
    pub fn correct(&self, mutation_id: &str, fields: Fields) -> BridgeResult<()> {
        self.engine.correct(mutation_id, fields).map(|_| ()).map_err(msg)
    }
    pub fn retry_all(&self) -> BridgeResult<()> {
        self.engine.retry_all().map(|_| ()).map_err(msg)
    }
    pub fn discard(&self, mutation_id: &str) -> BridgeResult<()> {
        self.engine.discard(mutation_id).map(|_| ()).map_err(msg)
    }
    pub fn set_policy(&self, entity: &str, policy: ConflictPolicy) -> BridgeResult<()> {
        self.engine.set_policy(entity, policy).map_err(msg)
    }
    pub fn policies(&self) -> BridgeResult<Vec<(String, ConflictPolicy)>> {
        self.engine.policies().map_err(msg)
    }
    /// `None`: back to the default rule (`title`, `name`, `description`).
    pub fn set_title_field(&self, entity: &str, field: Option<&str>) -> BridgeResult<()> {
        self.engine.set_title_field(entity, field).map_err(msg)
    }
    /// Entity → title field, the ones set.
    pub fn title_fields(&self) -> BridgeResult<Vec<(String, String)>> {
        self.engine.title_fields().map_err(msg)
    }
    /// Writes the diagnostics archive to `to`; answers where it went.
    pub fn save_diagnostics(&self, to: &Path, include_records: bool) -> BridgeResult<PathBuf> {
        self.engine.save_diagnostics(to, DiagnosticsOptions { include_records }).map(|r| r.path).map_err(msg)
    }
    /// Sets the server; `Ok(false)`: saved, but not reachable right now.
    pub async fn init(&self, server_url: &str) -> BridgeResult<bool> {
        self.engine.init(server_url).await.map_err(msg)
    }
    pub fn set_pull_interval(&self, every: Duration) -> BridgeResult<()> {
        self.engine.set_pull_interval(every).map_err(msg)
    }
    pub fn pull_interval(&self) -> Duration {
        self.engine.pull_interval()
    }
    pub async fn login(&self, user: &str, password: &str) -> BridgeResult<()> {
        self.engine.login(user, password).await.map_err(msg)
    }
    pub async fn logout(&self) -> BridgeResult<()> {
        self.engine.logout().await.map_err(msg)
    }

    // Local writes: used by the demo's sample data.
    pub fn put(&self, entity: &str, id: &str, fields: Fields) -> BridgeResult<()> {
        self.engine.put(entity, id, fields).map(|_| ()).map_err(msg)
    }
    pub fn patch(&self, entity: &str, id: &str, fields: Fields) -> BridgeResult<()> {
        self.engine.patch(entity, id, fields).map(|_| ()).map_err(msg)
    }
    pub fn get(&self, entity: &str, id: &str) -> BridgeResult<Option<LocalRecord>> {
        self.engine.get(entity, id).map_err(msg)
    }

    /// Waits until nothing is pending or in flight (or the timeout passes).
    pub async fn drained(&self, timeout: Duration) -> bool {
        let mut rx = self.subscribe();
        let wait = async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if s.pending == 0 && s.in_flight == 0 && s.last_sync_at.is_some() {
                        return;
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}
