//! The engine's shared state: what every part of the engine reads and
//! changes — the store, the server clock, the loop's run state, wake-ups,
//! status and events — and the small operations on it they all use.
//!
//! The parts live in their own modules, as functions over [`Inner`]:
//! [`crate::account`] (the server setting and who is signed in),
//! [`crate::status`] (what the status says), [`crate::decisions`] (the
//! user's conflict decisions) and [`crate::sync`] (the cycle and its loop).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{broadcast, watch, Notify};

use crate::account::Links;
use crate::clock::ServerClock;
use crate::error::Result;
use crate::model::*;
use crate::store::{settings, Store};
use crate::EngineConfig;

/// What the loop knows that the database does not.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunState {
    pub syncing: bool,
    pub offline: bool,
    pub error: Option<String>,
    /// The kind of `error` (`None` for one kept by an older Ferry).
    pub problem: Option<Problem>,
    pub needs_sign_in: Option<String>,
    pub next_retry_at: Option<i64>,
    pub progress: Option<Progress>,
    /// Mutations in the request being sent right now.
    pub in_flight: u64,
    pub last_progress_at: i64,
    pub stall_reported: bool,
}

pub(crate) struct Inner {
    pub config: EngineConfig,
    pub store: Store,
    pub clock: ServerClock,
    pub status_tx: watch::Sender<Status>,
    pub events_tx: broadcast::Sender<EngineEvent>,
    /// Something to do: a local write, a timer change, a decision.
    pub wake: Notify,
    /// Skip the backoff wait on the next wake (sync now, connectivity).
    pub urgent: AtomicBool,
    pub run: Mutex<RunState>,
    /// The connection in use (see [`crate::account::link`]).
    pub links: Links,
    /// One cycle at a time in this process.
    pub cycle_lock: tokio::sync::Mutex<()>,
}

pub(crate) const SIGNAL_FILE: &str = "outbox.signal";

impl Inner {
    pub fn new(config: EngineConfig, store: Store) -> Result<Inner> {
        let clock = ServerClock::new(store.setting(settings::CLOCK_OFFSET_MS)?);
        let needs_sign_in = store.setting(settings::NEEDS_SIGN_IN)?;
        let (status_tx, _) = watch::channel(Status {
            state: SyncState::Idle,
            pending: 0,
            in_flight: 0,
            failed: 0,
            conflicts: 0,
            last_sync_at: None,
            last_error: None,
            problem: None,
            next_retry_at: None,
            progress: None,
            server: None,
            user: None,
            paused: false,
        });
        let (events_tx, _) = broadcast::channel(256);
        let inner = Inner {
            config,
            store,
            clock,
            status_tx,
            events_tx,
            wake: Notify::new(),
            urgent: AtomicBool::new(false),
            run: Mutex::new(RunState {
                // Unknown until persisted: the stall clock then starts at the
                // oldest waiting change.
                last_progress_at: 0,
                needs_sign_in,
                offline: false,
                ..Default::default()
            }),
            links: Links::default(),
            cycle_lock: Default::default(),
        };
        inner.restore_persisted_state()?;
        inner.publish();
        Ok(inner)
    }

    fn restore_persisted_state(&self) -> Result<()> {
        let mut run = self.run_state();
        run.offline = self.store.setting(settings::OFFLINE)?.unwrap_or(false);
        run.error = self.store.setting(settings::LAST_ERROR)?;
        run.problem = self.store.setting(settings::LAST_PROBLEM)?;
        run.next_retry_at = self.store.setting(settings::NEXT_RETRY_AT)?;
        if let Some(t) = self.store.setting(settings::LAST_PROGRESS_AT)? {
            run.last_progress_at = t;
        }
        Ok(())
    }

    pub fn run_state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn emit(&self, event: EngineEvent) {
        log_event(&event);
        // Fails only when nobody listens (no window, no notifier): fine.
        let _ = self.events_tx.send(event);
    }

    pub fn urgent(&self) {
        self.urgent.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// After any local change: tell the loop (here and in other processes)
    /// and refresh the status.
    pub fn local_write_done(&self) {
        self.signal_other_processes();
        self.wake.notify_one();
        self.publish();
    }

    /// Touches the signal file a running loop of this data dir (the daemon,
    /// the app) watches: something it must look at changed in the database
    /// (a write, a sign-in, pause or resume, the server).
    pub fn signal_other_processes(&self) {
        let signal = self.config.data_dir.join(SIGNAL_FILE);
        if let Err(e) = std::fs::write(&signal, b"1") {
            tracing::warn!(error = %e, "could not signal other Ferry processes of a change");
        }
    }

    /// Re-reads what other processes may have changed in the database:
    /// whether a sign-in is needed (`ferry login` clears it) and the last
    /// error with its kind. The pause flag is always read from the database.
    pub fn reload_shared_state(&self) {
        let (Ok(needs_sign_in), Ok(error), Ok(problem)) = (
            self.store.setting(settings::NEEDS_SIGN_IN),
            self.store.setting(settings::LAST_ERROR),
            self.store.setting(settings::LAST_PROBLEM),
        ) else {
            return; // keep what we know; the next wake reads again
        };
        let mut run = self.run_state();
        run.needs_sign_in = needs_sign_in;
        run.error = error;
        run.problem = problem;
    }

    /// A flag that cannot be read counts as not paused: syncing when asked
    /// not to costs nothing, never the other way round.
    pub fn paused(&self) -> bool {
        self.store.setting(settings::PAUSED).ok().flatten().unwrap_or(false)
    }

    pub fn set_paused(&self, paused: bool) -> Result<()> {
        self.store.set_setting(settings::PAUSED, &paused)?;
        self.signal_other_processes();
        if !paused {
            self.urgent();
        }
        self.publish();
        Ok(())
    }

    pub fn policy(&self, entity: &str) -> Result<ConflictPolicy> {
        Ok(self.store.policy(entity)?.unwrap_or_default())
    }

    /// The interval set with `Engine::set_pull_interval` (at least 1 s),
    /// else the configured one (also when the setting cannot be read).
    pub fn pull_interval(&self) -> Duration {
        self.store
            .setting(settings::PULL_INTERVAL_MS)
            .ok()
            .flatten()
            .filter(|ms| *ms >= 1000)
            .map(|ms| Duration::from_millis(ms as u64))
            .unwrap_or(self.config.pull_interval)
    }

    pub fn save_clock(&self) -> Result<()> {
        self.store.set_setting(settings::CLOCK_OFFSET_MS, &self.clock.offset_ms())
    }

    pub fn publish(&self) {
        let status = crate::status::compute(self);
        self.status_tx.send_if_modified(|s| {
            if *s != status {
                *s = status;
                true
            } else {
                false
            }
        });
    }
}

/// What the log keeps of an event: its kind, the entity and opaque ids, never
/// a record id or the server's words about a record (they can quote what the
/// user typed, and logs go into diagnostics archives, which leave records out
/// unless asked). Exhaustive, so a new event is a decision here too.
fn log_event(event: &EngineEvent) {
    match event {
        EngineEvent::SyncCompleted { .. }
        | EngineEvent::WentOffline { .. }
        | EngineEvent::Stalled { .. }
        | EngineEvent::NeedsSignIn { .. } => tracing::info!(?event, "engine event"),
        EngineEvent::ConflictNeedsUser { conflict_id, entity, record_id: _ } => {
            tracing::info!(conflict = %conflict_id, %entity, "engine event: a conflict waits for the user")
        }
        EngineEvent::ConflictAutoResolved { entity, winner, record_id: _ } => {
            tracing::info!(%entity, %winner, "engine event: a conflict settled by policy")
        }
        EngineEvent::MutationFailed { mutation_id, entity, record_id: _, reason: _ } => {
            tracing::info!(mutation = %mutation_id, %entity, "engine event: the server refused a change")
        }
    }
}
