//! Push: stream the outbox to the server in bounded batches, several out
//! at once.
//!
//! Pipelining: while batch *k* is out, batch *k+1* is read and sent (up to
//! `EngineConfig::push_depth` requests), and the answer to *k* is settled
//! while *k+1* is out, so the client's and the server's work overlap.
//! Answers are settled in the order the batches were sent; the server may
//! commit them in another, so the stretches of its change sequence that
//! are our own batches are joined up before the pull cursor moves across
//! them ([`OwnStretches`]).
//!
//! Per-record order, the invariant everything rests on, holds because a
//! batch is marked in flight before the next one is read, and a batch read
//! beside batches in flight ends just before the first mutation whose
//! record has a mutation in flight ([`Store::next_batch_beside_in_flight`]).
//! So a record's mutations are never in two requests at once, and each goes
//! with the base its predecessor's settled answer left. The scan position
//! never passes a mutation it did not send, so nothing is skipped that the
//! one-at-a-time loop would have sent; an answer that asks for the same
//! mutations again (413, a request refused whole) moves it back to that
//! batch's start.
//!
//! The first failure stops sending; the batches already out are still
//! answered and settled, then the push ends with that failure, leaving the
//! outbox as the one-at-a-time loop would after the same answers.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::{limits, DatabaseRef, Outcome, PushRequest, PushResponse};
use futures::stream::{FuturesOrdered, StreamExt};

use crate::account::Link;
use crate::clock::{local_now_ms, monotonic_now};
use crate::error::{EngineError, Result};
use crate::model::{EngineEvent, SyncReport};
use crate::state::Inner;
use crate::store::{BatchItem, OwnChanges, OwnStretches, RestampInput, Settlement, Store};
use crate::transport::TransportError;

/// A sample of the server's clock this recent (from this process, with no
/// wall-clock step since) dates edits well enough.
const FRESH_SAMPLE: Duration = Duration::from_secs(10 * 60);

/// More requests out at once only queue at the server (one organisation's
/// batches apply one at a time) and hold more mutations in flight.
const MAX_PUSH_DEPTH: usize = 8;

/// Called with the data dir's sync lock held, or where it cannot be
/// taken at all.
pub(super) async fn push_all(inner: &Arc<Inner>, link: &Link, report: &mut SyncReport) -> Result<()> {
    // In-flight marks found now were left by a push that died: we hold
    // the sync lock, so no other push is running. Where the lock cannot
    // be used at all, reset them too: a push still running elsewhere
    // then has rows sent twice (answered `duplicate`: ids are
    // idempotency keys), where keeping them would strand them for good.
    inner.store.reset_in_flight()?;
    if let Err(e) = restamp_queued(inner, link).await {
        // The server was asked for its time and did not answer: that is
        // this batch's attempt failing, as far as the user can tell.
        let limits = BatchLimits::of(inner);
        note_failed_attempt(inner, &inner.store.next_batch(0, limits.max_count, limits.max_bytes)?, &e)?;
        return Err(e);
    }
    push_queue(inner, &ServerUplink { inner, link }, report).await
}

/// Sends one push request and brings back its answer.
pub(super) trait Uplink {
    fn push(&self, req: PushRequest) -> impl Future<Output = Result<PushResponse>> + Send;
}

/// The real one: the transport, with a valid access token.
struct ServerUplink<'a> {
    inner: &'a Inner,
    link: &'a Link,
}

impl Uplink for ServerUplink<'_> {
    fn push(&self, req: PushRequest) -> impl Future<Output = Result<PushResponse>> + Send {
        let (inner, link) = (self.inner, self.link);
        async move {
            super::with_token(inner, link, |token| {
                let req = &req;
                async move { link.transport.push(&token, req, &inner.clock).await }
            })
            .await
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct BatchLimits {
    max_count: usize,
    max_bytes: usize,
}

impl BatchLimits {
    fn of(inner: &Inner) -> Self {
        BatchLimits {
            max_count: inner.config.batch_max_count.clamp(1, limits::MAX_BATCH_MUTATIONS),
            max_bytes: inner.config.batch_max_bytes.clamp(64 * 1024, limits::MAX_BODY_BYTES / 2),
        }
    }
}

/// A batch whose request is out.
struct Sent<'a> {
    batch: Vec<BatchItem>,
    /// The scan position it was read from: where to read again when the
    /// same mutations must go again (in smaller batches).
    read_after: i64,
    _marked: InFlight<'a>,
}

/// The push loop, with the requests going through `uplink`.
async fn push_queue(inner: &Arc<Inner>, uplink: &impl Uplink, report: &mut SyncReport) -> Result<()> {
    let depth = inner.config.push_depth.clamp(1, MAX_PUSH_DEPTH);
    let mut limits = BatchLimits::of(inner);
    // The server database the bases were seen on: another one refuses the
    // push (see reconcile.rs).
    let database: Option<DatabaseRef> = inner.store.setting(crate::store::settings::SERVER_DATABASE)?;
    // The scan position: the outbox seq of the last mutation read.
    let mut after = 0i64;
    let mut out: VecDeque<Sent> = VecDeque::new();
    let mut answers = FuturesOrdered::new();
    // The first failure: nothing more is sent, what is out is settled.
    let mut failure: Option<EngineError> = None;
    let mut own = OwnStretches::default();
    loop {
        while failure.is_none() && out.len() < depth {
            let batch = if out.is_empty() {
                inner.store.next_batch(after, limits.max_count, limits.max_bytes)?
            } else {
                inner.store.next_batch_beside_in_flight(after, limits.max_count, limits.max_bytes)?
            };
            let Some(last) = batch.last() else { break };
            let read_after = std::mem::replace(&mut after, last.seq);
            let req = PushRequest { mutations: batch.iter().map(|b| b.mutation.clone()).collect(), database };
            let marked = InFlight::mark(&inner.store, &batch)?;
            answers.push_back(uplink.push(req));
            out.push_back(Sent { batch, read_after, _marked: marked });
            note_in_flight(inner, &out);
        }
        let Some(answer) = answers.next().await else { break };
        let sent = out.pop_front().expect("one batch per answer");
        note_in_flight(inner, &out);
        match answer {
            Ok(resp) => {
                own.add(OwnChanges::from_answer(resp.seq_before, resp.seq_after, &resp.applied_seqs()));
                settle(inner, &sent.batch, resp.results, &mut own, report).await?;
            }
            // Not the mutations' fault: the caller reconciles, then pushes.
            Err(e @ EngineError::Transport(TransportError::DatabaseChanged { .. })) => {
                failure.get_or_insert(e);
            }
            // Too big for this server: halve and try the same items again.
            Err(EngineError::Transport(TransportError::Permanent { status: 413, .. })) if sent.batch.len() > 1 => {
                limits.max_count = limits.max_count.min((sent.batch.len() / 2).max(1));
                tracing::info!(
                    max_count = limits.max_count,
                    "server refused the batch as too large; sending smaller batches"
                );
                after = after.min(sent.read_after);
            }
            // The whole request was refused for good: isolate the culprit
            // by halving, then fail just that one mutation.
            Err(EngineError::Transport(TransportError::Permanent { .. })) if sent.batch.len() > 1 => {
                limits.max_count = limits.max_count.min((sent.batch.len() / 2).max(1));
                after = after.min(sent.read_after);
            }
            Err(EngineError::Transport(TransportError::Permanent { status, code, message })) => {
                let item = &sent.batch[0];
                let reason = format!("server refused it (HTTP {status}, {code:?}): {message}");
                inner.store.settle_batch(&[Settlement::Rejected { item, reason: reason.clone() }])?;
                report.failed += 1;
                super::note_progress(inner, 1, 0);
                emit_failed(inner, item, reason);
            }
            Err(e) => {
                note_failed_attempt(inner, &sent.batch, &e)?;
                failure.get_or_insert(e);
            }
        }
        // Unsettled mutations of this batch wait again before anything
        // more is read (so a scan moved back finds them).
        drop(sent);
        inner.publish();
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn note_in_flight(inner: &Inner, out: &VecDeque<Sent>) {
    inner.run_state().in_flight = out.iter().map(|s| s.batch.len() as u64).sum();
    inner.publish();
}

/// Counts a transient failure against the mutations that were (or were
/// about to be) sent.
fn note_failed_attempt(inner: &Inner, batch: &[BatchItem], e: &EngineError) -> Result<()> {
    if let EngineError::Transport(t) = e {
        let seqs: Vec<i64> = batch.iter().map(|b| b.seq).collect();
        inner.store.note_attempt_failed(&seqs, &t.to_string())?;
    }
    Ok(())
}

/// Before anything is sent: edits stamped without a trustworthy offset
/// get their time on the server's clock (see `store::stamps`), asking the
/// server for its time first when the evidence at hand is not enough.
async fn restamp_queued(inner: &Inner, link: &Link) -> Result<()> {
    let input = || RestampInput {
        mono: monotonic_now(),
        local_now: local_now_ms(),
        fresh_offset: inner.clock.fresh_offset(FRESH_SAMPLE),
    };
    if !inner.store.restamp(&input())?.needs_fresh_sample {
        return Ok(());
    }
    let sent = local_now_ms();
    let started = std::time::Instant::now();
    let health = link.transport.health(&inner.clock).await?;
    if inner.clock.fresh_offset(FRESH_SAMPLE).is_none() {
        // No time header (a server that only puts its time in the body):
        // the body's time is a coarser sample, but a sample.
        inner.clock.observe(sent, sent + started.elapsed().as_millis() as i64, health.server_time);
    }
    if inner.store.restamp(&input())?.needs_fresh_sample {
        // The answer carried no usable time: sending now would upload
        // edits dated by a raw local clock.
        return Err(TransportError::BadResponse(
            "the server's answer carried no usable time, needed to date queued edits".into(),
        )
        .into());
    }
    Ok(())
}

async fn settle(
    inner: &Arc<Inner>,
    batch: &[BatchItem],
    results: Vec<ferry_protocol::MutationResult>,
    own: &mut OwnStretches,
    report: &mut SyncReport,
) -> Result<()> {
    let mut settled = Vec::with_capacity(batch.len());
    let mut conflicts = Vec::new();
    let mut failed = Vec::new();
    for (item, result) in batch.iter().zip(results) {
        match result.outcome {
            Outcome::Applied { version, .. } => {
                settled.push(Settlement::Applied { item, version, duplicate: false });
            }
            Outcome::Duplicate { version, .. } => {
                settled.push(Settlement::Applied { item, version, duplicate: true });
            }
            Outcome::Rejected { code, message } => {
                let reason = format!("{}: {message}", code.as_str());
                failed.push((item, code.as_str(), reason.clone()));
                settled.push(Settlement::Rejected { item, reason });
            }
            Outcome::Conflict { current } => conflicts.push((item, current)),
            Outcome::Blocked => {}
        }
    }
    let applied = settled.iter().filter(|s| matches!(s, Settlement::Applied { .. })).count() as u64;
    // Settled in this batch: applied, failed for good, or in conflict.
    let progressed = applied + failed.len() as u64 + conflicts.len() as u64;
    inner.store.settle_batch_and_skip(&settled, own)?;
    report.uploaded += applied;
    report.failed += failed.len() as u64;
    for (item, code, reason) in failed {
        // The log names the mutation, not the record or the server's words:
        // both can quote what the user typed, and logs go into diagnostics
        // archives that leave record contents out unless asked.
        tracing::warn!(entity = %item.mutation.entity, mutation = %item.mutation.id, code, "mutation rejected");
        emit_failed(inner, item, reason);
    }
    for (item, current) in conflicts {
        report.conflicts += 1;
        if super::conflict::settle_conflict_by_policy(inner, item, current)? {
            report.auto_resolved += 1;
        }
    }
    super::note_progress(inner, progressed, 0);
    Ok(())
}

fn emit_failed(inner: &Inner, item: &BatchItem, reason: String) {
    inner.emit(EngineEvent::MutationFailed {
        mutation_id: item.mutation.id.to_string(),
        entity: item.mutation.entity.clone(),
        record_id: item.mutation.record_id.clone(),
        reason,
    });
}

/// A batch marked in flight in the database while its request is out, so
/// `ferry queue --state in-flight` (any process) shows it. Dropping it puts
/// back to pending whatever the answer did not settle (blocked mutations, a
/// failed request, an error on the way).
struct InFlight<'a> {
    store: &'a Store,
    seqs: Vec<i64>,
}

impl<'a> InFlight<'a> {
    fn mark(store: &'a Store, batch: &[BatchItem]) -> Result<Self> {
        let seqs: Vec<i64> = batch.iter().map(|b| b.seq).collect();
        store.mark_in_flight(&seqs)?;
        Ok(InFlight { store, seqs })
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.store.release_in_flight(&self.seqs) {
            // The next push (or the next start) resets them.
            tracing::warn!(error = %e, "could not put unanswered mutations back to pending");
        }
    }
}

#[cfg(test)]
mod model_tests;

#[cfg(test)]
mod tests {
    use ferry_protocol::{MutationResult, Op, Outcome, RejectCode};

    use super::*;
    use crate::model::Progress;
    use crate::store::WriteOp;
    use crate::EngineConfig;

    fn inner(dir: &std::path::Path) -> Arc<Inner> {
        let store = Store::open(&dir.join("ferry.db")).unwrap();
        Arc::new(Inner::new(EngineConfig::new(dir), store).unwrap())
    }

    fn put(inner: &Inner, id: &str) {
        let w = WriteOp { entity: "a".into(), record_id: id.into(), op: Op::Upsert, payload: Some(Default::default()) };
        inner.store.write(&w, 1, 1).unwrap();
    }

    fn applied(item: &BatchItem) -> MutationResult {
        MutationResult {
            mutation_id: item.mutation.id,
            outcome: Outcome::Applied { version: 1, seq: 1, server_time: 1 },
        }
    }

    /// Progress counts each settled mutation once: it used to add the
    /// run's running total of failures on every batch.
    #[tokio::test]
    async fn progress_counts_each_settled_mutation_once() {
        let dir = tempfile::tempdir().unwrap();
        let inner = inner(dir.path());
        for id in ["1", "2", "3", "4", "5"] {
            put(&inner, id);
        }
        inner.run_state().progress = Some(Progress { uploaded: 0, to_upload: 5, downloaded: 0 });
        let mut report = SyncReport::default();
        let first = inner.store.next_batch(0, 2, 1 << 20).unwrap();
        let rejected = MutationResult {
            mutation_id: first[1].mutation.id,
            outcome: Outcome::Rejected { code: RejectCode::Validation, message: "no".into() },
        };
        settle(&inner, &first, vec![applied(&first[0]), rejected], &mut OwnStretches::default(), &mut report)
            .await
            .unwrap();
        for _ in 0..2 {
            let batch = inner.store.next_batch(first[1].seq, 2, 1 << 20).unwrap();
            let results = batch.iter().map(applied).collect();
            settle(&inner, &batch, results, &mut OwnStretches::default(), &mut report).await.unwrap();
        }
        assert_eq!((report.uploaded, report.failed), (4, 1));
        assert_eq!(inner.run_state().progress.unwrap().uploaded, 5, "4 applied + 1 failed, each once");
    }
}
