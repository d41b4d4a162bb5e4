//! The sync cycle (push everything, then pull everything) and the loop that
//! decides when to run it.

mod backoff;
mod conflict;
mod pull;
mod push;
mod scheduler;
mod wait;

pub use backoff::Backoff;
pub(crate) use scheduler::run_loop;

use std::future::Future;
use std::sync::Arc;

use crate::auth::AuthError;
use crate::clock::local_now_ms;
use crate::error::{EngineError, Result};
use crate::model::{EngineEvent, Progress, SyncReport, SyncRun};
use crate::state::{Inner, Link};
use crate::transport::TransportError;

impl Inner {
    /// One full cycle. Errors: transient transport errors (the caller backs
    /// off), needs-sign-in, not configured.
    pub async fn cycle(self: &Arc<Self>) -> Result<SyncReport> {
        let _one = self.cycle_lock.lock().await;
        // Across processes too: a `ferry sync` and a running daemon never
        // push the same batch at once (safe, ids are idempotency keys, but
        // wasteful and confusing in the queue view).
        // Only to avoid wasted work: without the lock, carry on.
        let _one_process = crate::filelock::FileLock::acquire(self.config.data_dir.join(crate::store::SYNC_LOCK_FILE))
            .await
            .map_err(|e| tracing::warn!(error = %e, "cannot take the sync lock; syncing without it"))
            .ok();
        let link = self.link()?;
        // Another process may have signed in (or out) since we last looked.
        self.reload_shared_state();
        if let Some(reason) = self.run_state().needs_sign_in.clone() {
            return Err(EngineError::NeedsSignIn(reason));
        }
        let started_at = local_now_ms();
        let was_offline = self.run_state().offline;
        {
            let counts = self.store.counts()?;
            let mut run = self.run_state();
            run.syncing = true;
            run.progress = Some(Progress { uploaded: 0, to_upload: counts.pending, downloaded: 0 });
        }
        self.publish();
        let mut report = SyncReport::default();
        let result = async {
            self.push_all(&link, &mut report).await?;
            // After the push: settled records may now need the server's
            // latest version (skipped by an earlier pull, discarded edits).
            self.refetch(&link).await?;
            self.pull_all(&link, &mut report).await?;
            Ok::<_, EngineError>(())
        }
        .await;
        let finished_at = local_now_ms();
        let _ = self.save_clock();
        {
            let mut run = self.run_state();
            run.syncing = false;
            run.progress = None;
        }
        match &result {
            Ok(()) => {
                self.store.set_setting("last_sync_at", &finished_at.to_string())?;
                self.store.set_setting("offline", "0")?;
                self.store.remove_setting("last_error")?;
                self.store.remove_setting("next_retry_at")?;
                {
                    let mut run = self.run_state();
                    run.offline = false;
                    run.error = None;
                    run.next_retry_at = None;
                }
                let counts = self.store.counts()?;
                if counts.pending == 0 && (report.uploaded > 0 || report.downloaded > 0 || was_offline) {
                    self.emit(EngineEvent::SyncCompleted {
                        uploaded: report.uploaded,
                        downloaded: report.downloaded,
                        after_offline: was_offline,
                    });
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let transient = matches!(e, EngineError::Transport(t) if t.is_transient());
                let mut run = self.run_state();
                if transient {
                    if !run.offline {
                        drop(run);
                        self.emit(EngineEvent::WentOffline { reason: msg.clone() });
                        run = self.run_state();
                    }
                    run.offline = true;
                    let _ = self.store.set_setting("offline", "1");
                } else {
                    run.error = Some(msg.clone());
                }
                let _ = self.store.set_setting("last_error", &msg);
            }
        }
        if report.uploaded + report.downloaded + report.failed + report.conflicts > 0 || result.is_err() {
            let _ = self.store.record_sync_run(&SyncRun {
                started_at,
                finished_at,
                uploaded: report.uploaded,
                downloaded: report.downloaded,
                failed: report.failed,
                conflicts: report.conflicts,
                error: result.as_ref().err().map(|e| e.to_string()),
            });
        }
        self.publish();
        result.map(|()| report)
    }

    /// Calls `f` with a valid access token; after a 401, refreshes once and
    /// calls again.
    async fn with_token<T, F, Fut>(&self, link: &Link, f: F) -> Result<T>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, TransportError>>,
    {
        let token =
            link.session.access_token(&link.transport, &self.clock).await.map_err(|e| self.auth_error(e, link))?;
        match f(token.clone()).await {
            Err(TransportError::Auth { .. }) => {
                tracing::info!("the server refused the access token; renewing the sign-in once");
                let fresh = link
                    .session
                    .refresh(&link.transport, &self.clock, &token)
                    .await
                    .map_err(|e| self.auth_error(e, link))?;
                match f(fresh).await {
                    Err(TransportError::Auth { message, .. }) => Err(self.auth_error(
                        AuthError::NeedsSignIn(format!("the server refused a freshly renewed sign-in: {message}")),
                        link,
                    )),
                    other => other.map_err(EngineError::Transport),
                }
            }
            other => other.map_err(EngineError::Transport),
        }
    }

    fn note_progress(&self, uploaded: u64, downloaded: u64) {
        let mut run = self.run_state();
        if uploaded > 0 {
            run.last_progress_at = local_now_ms();
            run.stall_reported = false;
            let _ = self.store.set_setting("last_progress_at", &run.last_progress_at.to_string());
        }
        if let Some(p) = run.progress.as_mut() {
            p.uploaded += uploaded;
            p.downloaded += downloaded;
            p.to_upload = p.to_upload.max(p.uploaded);
        }
    }
}
