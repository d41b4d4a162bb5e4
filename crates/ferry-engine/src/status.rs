//! What the status says: one [`Status`] computed from the store's counts,
//! the loop's run state and the stall clock, for the tray, the window and
//! `ferry status`.

use crate::clock::local_now_ms;
use crate::model::{Problem, Status, SyncState};
use crate::state::{Inner, RunState};
use crate::store::settings;

/// The status as it is now: counts from the store, the loop's run state,
/// and the stall clock.
pub(crate) fn compute(inner: &Inner) -> Status {
    // A status is always shown: a read failing now shows zeros or "unknown"
    // until the next publish reads again (the failure itself surfaces
    // through the operation that hit it).
    let counts = inner.store.counts().unwrap_or_default();
    let now = local_now_ms();
    let paused = inner.paused();
    let mut run = inner.run_state();
    if counts.pending == 0 {
        run.last_progress_at = now;
        run.stall_reported = false;
    }
    // The stall clock starts at the last progress or when the oldest
    // waiting change was made, whichever is later.
    let oldest = inner.store.oldest_pending_edit().ok().flatten().map(|t| t - inner.clock.offset_ms());
    let stall_start = run.last_progress_at.max(oldest.unwrap_or(i64::MIN));
    let stalled = counts.pending > 0 && now - stall_start >= inner.config.stall_after.as_millis() as i64;
    let state = if run.needs_sign_in.is_some() {
        SyncState::NeedsSignIn
    } else if paused {
        SyncState::Paused
    } else if stalled {
        SyncState::Stalled
    } else if run.syncing {
        SyncState::Syncing
    } else if run.offline {
        SyncState::Offline
    } else if run.error.is_some() {
        SyncState::Error
    } else {
        SyncState::Idle
    };
    // In flight by this process, or — seen from another one (`ferry
    // status` while the daemon pushes) — by whoever marked the rows.
    let in_flight = run.in_flight.max(counts.in_flight).min(counts.pending);
    Status {
        state,
        pending: counts.pending - in_flight,
        in_flight,
        failed: counts.failed,
        conflicts: counts.conflict,
        last_sync_at: inner.store.setting(settings::LAST_SYNC_AT).ok().flatten(),
        last_error: run.needs_sign_in.clone().or_else(|| run.error.clone()),
        problem: problem_of(&run),
        next_retry_at: run.next_retry_at,
        progress: run.progress,
        server: inner.store.setting(settings::SERVER).ok().flatten(),
        user: inner.store.setting(settings::USER).ok().flatten(),
        paused,
    }
}

/// The kind of the status's `last_error`: there is one exactly when there
/// is an error (an error kept by an older Ferry, without its kind, is
/// `other`).
fn problem_of(run: &RunState) -> Option<Problem> {
    if run.needs_sign_in.is_some() {
        Some(Problem::SignInNeeded)
    } else {
        run.error.as_ref().map(|_| run.problem.unwrap_or(Problem::Other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_exactly_when_an_error() {
        let mut run = RunState::default();
        assert_eq!(problem_of(&run), None);
        run.problem = Some(Problem::Unreachable); // stale kind, no error
        assert_eq!(problem_of(&run), None);
        run.error = Some("cannot reach the server (timed out)".into());
        assert_eq!(problem_of(&run), Some(Problem::Unreachable));
        run.problem = None;
        assert_eq!(problem_of(&run), Some(Problem::Other));
        run.needs_sign_in = Some("refused".into());
        assert_eq!(problem_of(&run), Some(Problem::SignInNeeded));
    }
}
