//! The background loop. It sleeps until something happens — a local write
//! (in this process, or another one touching the signal file), "sync now",
//! a change on the server heard by the waiting pull (`wait.rs`), a backoff
//! or pull timer, the stall deadline — then runs a cycle. No polling: an
//! idle engine holds one waiting pull (renewed every 25 s) and wakes once
//! per pull interval, the fallback for servers that cannot wait.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use tokio::time::Instant;

use super::wait::Heard;
use super::Backoff;
use crate::clock::local_now_ms;
use crate::error::{EngineError, Result};
use crate::filelock::FileLock;
use crate::model::EngineEvent;
use crate::state::{Inner, SIGNAL_FILE};
use crate::store::settings;

pub(crate) async fn run_loop(inner: Arc<Inner>, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
    let _single = daemon_lock(&inner)?;
    let _watcher = watch_signal_file(&inner);
    let _network = watch_network(&inner);
    tokio::pin!(shutdown);
    let mut backoff = Backoff::default();
    let mut retry_at: Option<Instant> = None;
    let mut next_pull = Instant::now();
    // The waiting pull, kept across wake-ups that do not sync; dropped
    // (the request with it) before every cycle and while offline or paused.
    let mut waiter: Option<Pin<Box<dyn Future<Output = Heard> + Send>>> = None;
    // When the next wait may start: after failed or refused waits.
    let mut next_wait: Option<Instant> = None;
    let mut wait_backoff = Backoff::default();
    let mut wait_started = Instant::now();
    // Run once at start: there may be a backlog from before.
    inner.wake.notify_one();
    loop {
        // Paused or waiting for a sign-in: only the user can change that.
        // Their action, in this process or another (`ferry resume`, `ferry
        // login`), wakes us through the signal file; the flags live in the
        // database, so they are read afresh on every wake. The pull timer
        // only re-reads them, in case the file watch is unavailable.
        inner.reload_shared_state();
        let online = !waiting_for_user(&inner) && retry_at.is_none() && !inner.run_state().offline;
        if !online {
            waiter = None;
        } else if waiter.is_none() && next_wait.is_none_or(|at| at <= Instant::now()) {
            next_wait = None;
            wait_started = Instant::now();
            waiter = Some(Box::pin(super::wait::wait_for_changes(inner.clone())));
        }
        let timer = if waiting_for_user(&inner) {
            Some(next_pull)
        } else {
            let wait_timer = next_wait.filter(|_| online);
            [retry_at.or(Some(next_pull)), stall_deadline(&inner), wait_timer].into_iter().flatten().min()
        };
        let timer_fired = tokio::select! {
            _ = &mut shutdown => break,
            _ = inner.wake.notified() => false,
            _ = sleep_until(timer) => true,
            heard = wait_on(&mut waiter) => {
                waiter = None;
                match heard {
                    Heard::Changes => wait_backoff.reset(),
                    Heard::Nothing => {
                        if wait_started.elapsed() < EARLY_EMPTY_ANSWER {
                            // Empty at once (a server shutting down, or one
                            // that does not really wait): never a busy loop.
                            next_wait = Some(Instant::now() + wait_backoff.next_delay(None));
                        } else {
                            wait_backoff.reset();
                        }
                        continue;
                    }
                    Heard::Unsupported { changes } => {
                        tracing::info!("the server cannot wait for changes; pulling every {:?}", inner.pull_interval());
                        next_wait = Some(Instant::now() + inner.pull_interval());
                        if !changes {
                            continue;
                        }
                    }
                    Heard::Failed(e) => {
                        let delay = wait_backoff.next_delay(retry_after_of(&e));
                        tracing::info!(error = %e, wait_again_in_ms = delay.as_millis() as u64, "waiting for changes failed; syncing to see why");
                        next_wait = Some(Instant::now() + delay);
                    }
                }
                false
            }
        };
        inner.reload_shared_state();
        inner.publish();
        check_stall(&inner);
        if waiting_for_user(&inner) {
            if timer_fired || Instant::now() >= next_pull {
                next_pull = Instant::now() + inner.pull_interval();
            }
            continue;
        }
        let urgent = inner.urgent.swap(false, Ordering::SeqCst);
        if let Some(at) = retry_at {
            if Instant::now() < at && !urgent {
                continue; // still backing off; the write waits for the timer
            }
        }
        if timer_fired && retry_at.is_none() && Instant::now() < next_pull {
            continue; // the stall timer, not a reason to sync
        }
        // A cycle pulls anyway; the next wait starts from its cursor.
        waiter = None;
        match super::cycle(&inner).await {
            Ok(_) => {
                backoff.reset();
                retry_at = None;
                clear_retry_at(&inner);
                next_pull = Instant::now() + inner.pull_interval();
            }
            Err(EngineError::Transport(t)) if t.is_transient() => {
                let delay = backoff.next_delay(t.retry_after());
                tracing::info!(error = %t, retry_in_ms = delay.as_millis() as u64, "sync failed; backing off");
                retry_at = Some(Instant::now() + delay);
                note_retry_at(&inner, delay);
            }
            Err(EngineError::NeedsSignIn(_)) | Err(EngineError::NotSignedIn) | Err(EngineError::NotConfigured) => {
                // Nothing to do until the user acts; a login wakes us. Look
                // again at the next pull time, never sooner.
                retry_at = None;
                clear_retry_at(&inner);
                next_pull = Instant::now() + inner.pull_interval();
            }
            Err(e) => {
                // Unexpected (local database trouble, token store): keep
                // retrying on the backoff schedule, loudly.
                let delay = backoff.next_delay(None);
                tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "sync failed");
                retry_at = Some(Instant::now() + delay);
                note_retry_at(&inner, delay);
            }
        }
        // The loop now sleeps, maybe for long: give back the page cache a
        // long queue filled (SQLite reads it again from the OS's cache).
        inner.store.release_memory();
    }
    // Without a loop nothing is retried: show no time for it.
    clear_retry_at(&inner);
    tracing::info!("sync loop stopped");
    Ok(())
}

fn waiting_for_user(inner: &Inner) -> bool {
    inner.paused() || inner.run_state().needs_sign_in.is_some()
}

/// Shown in the status (here and, through the database, in `ferry status`).
fn note_retry_at(inner: &Inner, delay: Duration) {
    let at = local_now_ms() + delay.as_millis() as i64;
    inner.run_state().next_retry_at = Some(at);
    // Also each waiting mutation's next attempt time (`ferry queue`).
    // The run state has it; the setting is only for other processes' view.
    let _ = inner.store.set_setting(settings::NEXT_RETRY_AT, &at);
    inner.publish();
}

fn clear_retry_at(inner: &Inner) {
    if inner.run_state().next_retry_at.take().is_some() {
        inner.publish();
    }
    // As above: only other processes' view of the next attempt.
    let _ = inner.store.remove_setting(settings::NEXT_RETRY_AT);
}

/// A waiting pull answered empty sooner than this did not wait.
const EARLY_EMPTY_ANSWER: Duration = Duration::from_secs(1);

/// The waiting pull's answer; never, when none is held.
async fn wait_on(waiter: &mut Option<Pin<Box<dyn Future<Output = Heard> + Send>>>) -> Heard {
    match waiter {
        Some(w) => w.as_mut().await,
        None => std::future::pending().await,
    }
}

fn retry_after_of(e: &EngineError) -> Option<Duration> {
    match e {
        EngineError::Transport(t) => t.retry_after(),
        _ => None,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn stall_deadline(inner: &Inner) -> Option<Instant> {
    if inner.store.counts().map(|c| c.pending == 0).unwrap_or(true) {
        return None; // nothing waiting, nothing can stall
    }
    let run = inner.run_state();
    if run.stall_reported {
        return None;
    }
    let oldest = inner.store.oldest_pending_edit().ok().flatten().map(|t| t - inner.clock.offset_ms());
    let due = run.last_progress_at.max(oldest.unwrap_or(i64::MIN)) + inner.config.stall_after.as_millis() as i64;
    let wait = (due - local_now_ms()).max(0) as u64;
    Some(Instant::now() + Duration::from_millis(wait) + Duration::from_millis(10))
}

fn check_stall(inner: &Inner) {
    let status = inner.status_tx.borrow().clone();
    let due = stall_deadline(inner).is_some_and(|at| at <= Instant::now());
    if status.state == crate::model::SyncState::Stalled || due {
        // Once per stall episode (progress resets it), so the deadline
        // timer is disarmed even when another state is shown instead.
        let first = {
            let mut run = inner.run_state();
            !std::mem::replace(&mut run.stall_reported, true)
        };
        if first && status.state == crate::model::SyncState::Stalled {
            inner.emit(EngineEvent::Stalled { pending: status.pending + status.in_flight });
        }
    }
}

/// Watches the machine's network addresses (netlink on Linux, the system's
/// notifications on macOS and Windows): a new or lost address means the
/// network changed, so a transfer stuck in backoff is retried at once.
fn watch_network(inner: &Arc<Inner>) -> Option<AbortOnDrop> {
    use futures::StreamExt;
    let mut watcher = if_watch::tokio::IfWatcher::new()
        .map_err(|e| tracing::warn!(error = %e, "cannot watch the network; retries follow the backoff timer"))
        .ok()?;
    let weak = Arc::downgrade(inner);
    let task = tokio::spawn(async move {
        while let Some(event) = watcher.next().await {
            let Some(inner) = weak.upgrade() else { break };
            match event {
                Ok(change) => {
                    tracing::debug!(?change, "network changed");
                    inner.urgent();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "network watch failed; retries follow the backoff timer");
                    break;
                }
            }
        }
    });
    Some(AbortOnDrop(task))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Watches the signal file other processes touch after a local write.
fn watch_signal_file(inner: &Arc<Inner>) -> Option<notify::RecommendedWatcher> {
    let path = inner.config.data_dir.join(SIGNAL_FILE);
    if !path.exists() {
        // Watching a missing file fails below, which is logged there.
        let _ = std::fs::write(&path, b"0");
    }
    let weak = Arc::downgrade(inner);
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let (Ok(ev), Some(inner)) = (res, weak.upgrade()) {
            if matches!(
                ev.kind,
                notify::EventKind::Modify(_)
                    | notify::EventKind::Create(_)
                    | notify::EventKind::Access(notify::event::AccessKind::Close(_))
            ) {
                inner.wake.notify_one();
            }
        }
    })
    .map_err(|e| tracing::warn!(error = %e, "cannot watch for writes by other processes; they sync on the next timer"))
    .ok()?;
    watcher
        .watch(&path, notify::RecursiveMode::NonRecursive)
        .map_err(
            |e| tracing::warn!(error = %e, "cannot watch for writes by other processes; they sync on the next timer"),
        )
        .ok()?;
    Some(watcher)
}

/// One background loop per data dir (the app or `ferry daemon`, not both).
fn daemon_lock(inner: &Inner) -> Result<FileLock> {
    let path = inner.config.data_dir.join("daemon.lock");
    FileLock::try_acquire(&path).map_err(|e| EngineError::io(format!("cannot open {}", path.display()), e))?.ok_or_else(
        || {
            EngineError::Invalid(format!(
                "another Ferry (daemon or app) is already syncing {}; stop it first or use another --data-dir",
                inner.config.data_dir.display()
            ))
        },
    )
}
