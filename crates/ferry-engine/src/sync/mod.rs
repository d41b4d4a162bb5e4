//! The sync cycle (push everything, then pull everything) and the loop that
//! decides when to run it.

mod backoff;
mod conflict;
mod pull;
mod push;
mod reconcile;
mod scheduler;
mod wait;

pub use backoff::Backoff;
pub(crate) use scheduler::run_loop;

use std::future::Future;
use std::sync::Arc;

use crate::account::Link;
use crate::auth::AuthError;
use crate::clock::local_now_ms;
use crate::error::{EngineError, Result};
use crate::model::{EngineEvent, Progress, SyncReport, SyncRun};
use crate::state::Inner;
use crate::store::settings;
use crate::transport::TransportError;

/// One full cycle. Errors: transient transport errors (the caller backs
/// off), needs-sign-in, not configured.
pub(crate) async fn cycle(inner: &Arc<Inner>) -> Result<SyncReport> {
    let _one = inner.cycle_lock.lock().await;
    let _one_process = sync_lock(inner).await;
    let link = crate::account::link(inner)?;
    // Another process may have signed in (or out) since we last looked.
    inner.reload_shared_state();
    if let Some(reason) = inner.run_state().needs_sign_in.clone() {
        return Err(EngineError::NeedsSignIn(reason));
    }
    let started_at = local_now_ms();
    let was_offline = inner.run_state().offline;
    begin(inner)?;
    let mut report = SyncReport::default();
    let result = exchange(inner, &link, &mut report).await;
    let finished_at = local_now_ms();
    end(inner);
    match &result {
        Ok(()) => succeeded(inner, &report, finished_at, was_offline)?,
        Err(e) => failed(inner, e),
    }
    record_run(inner, &report, &result, started_at, finished_at);
    inner.publish();
    result.map(|()| report)
}

/// The data dir's sync lock, across processes: a `ferry sync` and a
/// running daemon never push the same batch at once. Safe without it (ids
/// are idempotency keys), only wasteful and confusing in the queue view,
/// so a lock that cannot be taken is logged and done without.
async fn sync_lock(inner: &Inner) -> Option<crate::filelock::FileLock> {
    crate::filelock::FileLock::acquire(inner.config.data_dir.join(crate::store::SYNC_LOCK_FILE))
        .await
        .map_err(|e| tracing::warn!(error = %e, "cannot take the sync lock; syncing without it"))
        .ok()
}

/// The status says "syncing", with progress from zero.
fn begin(inner: &Inner) -> Result<()> {
    let counts = inner.store.counts()?;
    {
        let mut run = inner.run_state();
        run.syncing = true;
        run.progress = Some(Progress { uploaded: 0, to_upload: counts.pending, downloaded: 0 });
    }
    inner.publish();
    Ok(())
}

/// Push everything, re-read what the push made stale, pull everything;
/// and if the server turns out to have gone back in time, reconcile with
/// it and do it all again.
async fn exchange(inner: &Arc<Inner>, link: &Link, report: &mut SyncReport) -> Result<()> {
    // One that a crash or a lost connection left unfinished.
    reconcile::run(inner, link, report).await?;
    match push::push_all(inner, link, report).await {
        // The pull below finds out what changed, and starts reconciling.
        Err(EngineError::Transport(TransportError::DatabaseChanged { message })) => {
            tracing::warn!(%message, "the server refused the push");
        }
        other => {
            other?;
            // After the push: settled records may now need the server's
            // latest version (skipped by an earlier pull, discarded edits).
            pull::refetch(inner, link).await?;
        }
    }
    if pull::pull_all(inner, link, report).await? == pull::Pulled::Complete {
        return Ok(());
    }
    reconcile::run(inner, link, report).await?;
    push::push_all(inner, link, report).await?;
    pull::refetch(inner, link).await?;
    match pull::pull_all(inner, link, report).await? {
        pull::Pulled::Complete => Ok(()),
        // Left for the next cycle, which resumes it.
        pull::Pulled::ServerBehind => Err(TransportError::BadResponse(
            "the server went back in time again while this client reconciled with it".into(),
        )
        .into()),
    }
}

/// The exchange is over, however it went.
fn end(inner: &Inner) {
    if let Err(e) = inner.save_clock() {
        // Only the estimate is lost: the next answer from the server
        // measures the offset again.
        tracing::warn!(error = %e, "cannot save the server clock offset");
    }
    let mut run = inner.run_state();
    run.syncing = false;
    run.progress = None;
}

/// Forgets the failure state, and says "synced" when there was news.
fn succeeded(inner: &Inner, report: &SyncReport, finished_at: i64, was_offline: bool) -> Result<()> {
    inner.store.set_setting(settings::LAST_SYNC_AT, &finished_at)?;
    inner.store.set_setting(settings::OFFLINE, &false)?;
    inner.store.remove_setting(settings::LAST_ERROR)?;
    inner.store.remove_setting(settings::LAST_PROBLEM)?;
    inner.store.remove_setting(settings::NEXT_RETRY_AT)?;
    {
        let mut run = inner.run_state();
        run.offline = false;
        run.error = None;
        run.problem = None;
        run.next_retry_at = None;
    }
    let counts = inner.store.counts()?;
    if counts.pending == 0 && (report.uploaded > 0 || report.downloaded > 0 || was_offline) {
        inner.emit(EngineEvent::SyncCompleted {
            uploaded: report.uploaded,
            downloaded: report.downloaded,
            after_offline: was_offline,
        });
    }
    Ok(())
}

/// Offline (a transient failure: the loop backs off) or an error, kept in
/// the settings so every process's status shows it.
fn failed(inner: &Inner, e: &EngineError) {
    let msg = e.to_string();
    let problem = e.problem();
    let transient = matches!(e, EngineError::Transport(t) if t.is_transient());
    let newly_offline = {
        let mut run = inner.run_state();
        let newly = transient && !run.offline;
        if transient {
            run.offline = true;
        }
        // Offline too: the status says why (unreachable, server error…),
        // as other processes see it through the settings below.
        run.error = Some(msg.clone());
        run.problem = Some(problem);
        newly
    };
    if newly_offline {
        inner.emit(EngineEvent::WentOffline { reason: msg.clone() });
    }
    // The run state above already holds this; the settings only tell
    // other processes. A store that cannot write now has the same trouble
    // on the next cycle, which reports it.
    if transient {
        if let Err(e) = inner.store.set_setting(settings::OFFLINE, &true) {
            tracing::warn!(error = %e, "cannot record being offline");
        }
    }
    if let Err(e) = inner.store.set_setting(settings::LAST_ERROR, &msg) {
        tracing::warn!(error = %e, "cannot record the sync error");
    }
    if let Err(e) = inner.store.set_setting(settings::LAST_PROBLEM, &problem) {
        tracing::warn!(error = %e, "cannot record the kind of the sync error");
    }
}

/// The history of sync runs keeps runs that did something or failed.
fn record_run(inner: &Inner, report: &SyncReport, result: &Result<()>, started_at: i64, finished_at: i64) {
    if report.uploaded + report.downloaded + report.failed + report.conflicts == 0 && result.is_ok() {
        return;
    }
    let run = SyncRun {
        started_at,
        finished_at,
        uploaded: report.uploaded,
        downloaded: report.downloaded,
        failed: report.failed,
        conflicts: report.conflicts,
        error: result.as_ref().err().map(|e| e.to_string()),
        problem: result.as_ref().err().map(EngineError::problem),
    };
    // A history entry is for people; the sync itself is done either way.
    if let Err(e) = inner.store.record_sync_run(&run) {
        tracing::warn!(error = %e, "cannot record the sync run in the history");
    }
}

/// Calls `f` with a valid access token; after a 401, refreshes once and
/// calls again.
async fn with_token<T, F, Fut>(inner: &Inner, link: &Link, f: F) -> Result<T>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, TransportError>>,
{
    let token = link
        .session
        .access_token(&link.transport, &inner.clock)
        .await
        .map_err(|e| crate::account::auth_error(inner, e, link))?;
    match f(token.clone()).await {
        Err(TransportError::Auth { .. }) => {
            tracing::info!("the server refused the access token; renewing the sign-in once");
            let fresh = link
                .session
                .refresh(&link.transport, &inner.clock, &token)
                .await
                .map_err(|e| crate::account::auth_error(inner, e, link))?;
            match f(fresh).await {
                Err(TransportError::Auth { message, .. }) => Err(crate::account::auth_error(
                    inner,
                    AuthError::NeedsSignIn(format!("the server refused a freshly renewed sign-in: {message}")),
                    link,
                )),
                other => other.map_err(EngineError::Transport),
            }
        }
        other => other.map_err(EngineError::Transport),
    }
}

fn note_progress(inner: &Inner, uploaded: u64, downloaded: u64) {
    let mut run = inner.run_state();
    if uploaded > 0 {
        run.last_progress_at = local_now_ms();
        run.stall_reported = false;
        // Only the stall clock of a restarted process would start later.
        if let Err(e) = inner.store.set_setting(settings::LAST_PROGRESS_AT, &run.last_progress_at) {
            tracing::debug!(error = %e, "cannot save the upload progress time");
        }
    }
    if let Some(p) = run.progress.as_mut() {
        p.uploaded += uploaded;
        p.downloaded += downloaded;
        p.to_upload = p.to_upload.max(p.uploaded);
    }
}
