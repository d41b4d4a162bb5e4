//! The outbox: which mutations go next, what happened to them, and the
//! user's retry/discard. Mutations of one record go in order; one that failed
//! or is in conflict holds back only the later mutations of its own record.

use ferry_protocol::{Mutation, Op};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::{apply_op, from_json, settings, to_json, Store};
use crate::error::{EngineError, Result};
use crate::model::{Fields, MutationState, QueueItem};

/// Counts of outbox entries by state (O(1): kept by triggers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting to be uploaded, including those in flight now.
    pub pending: u64,
    /// Of `pending`, those a push (of any process) has out right now.
    pub in_flight: u64,
    pub failed: u64,
    pub conflict: u64,
}

/// When queued local mutations of one record were made (server clock, ms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalEditTimes {
    /// The latest of them.
    pub latest: Option<i64>,
    /// The latest upsert or delete (they touch every field).
    pub whole_record: Option<i64>,
    /// Per field, the latest patch that named it.
    pub fields: std::collections::BTreeMap<String, i64>,
}

impl LocalEditTimes {
    /// When `field` was last touched locally, if it was.
    pub fn field(&self, field: &str) -> Option<i64> {
        match (self.whole_record, self.fields.get(field).copied()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The stretch of the server's change sequence that a push answer says is
/// exactly its batch's applied mutations: `(before, after]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnChanges {
    pub before: u64,
    pub after: u64,
}

impl OwnChanges {
    /// The answer's claim, if it is consistent with its results: every
    /// applied mutation's seq inside the stretch and the last one at its
    /// end. A server that says nothing, or something odd, gets its own
    /// changes pulled back as before (never a skipped change of others).
    pub fn from_answer(before: Option<u64>, after: Option<u64>, applied_seqs: &[u64]) -> Option<OwnChanges> {
        let (before, after) = (before?, after?);
        let (lo, hi) = (*applied_seqs.iter().min()?, *applied_seqs.iter().max()?);
        (before < lo && hi == after).then_some(OwnChanges { before, after })
    }
}

/// Our own stretches of the server's change sequence that the pull cursor
/// has not reached yet (see [`Store::settle_batch_and_skip`]).
#[derive(Debug, Default)]
pub struct OwnStretches(Vec<OwnChanges>);

impl OwnStretches {
    /// Enough for every batch of a push out of order; a push that leaves
    /// more gaps (lost answers) pulls the rest back.
    const MAX: usize = 64;

    pub fn add(&mut self, own: Option<OwnChanges>) {
        if let Some(own) = own {
            if self.0.len() == Self::MAX {
                self.0.remove(0);
            }
            self.0.push(own);
        }
    }

    /// Where the cursor may move from `cursor`, using up the stretches it
    /// passes or has passed.
    fn advance(&mut self, mut cursor: u64) -> u64 {
        while let Some(i) = self.0.iter().position(|s| s.before <= cursor && cursor < s.after) {
            cursor = self.0.swap_remove(i).after;
        }
        self.0.retain(|s| s.after > cursor);
        cursor
    }
}

/// A mutation ready to send, with the base version computed at send time.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub seq: i64,
    pub mutation: Mutation,
}

impl Store {
    pub fn counts(&self) -> Result<OutboxCounts> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT state, n FROM outbox_counts")?;
        let mut c = OutboxCounts::default();
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = n.max(0) as u64;
            match state.as_str() {
                "pending" => c.pending += n,
                "in-flight" => {
                    c.pending += n;
                    c.in_flight = n;
                }
                "failed" => c.failed = n,
                "conflict" => c.conflict = n,
                _ => {}
            }
        }
        Ok(c)
    }

    /// The next mutations to push, after outbox position `after_seq`, bounded
    /// by count and bytes. Only reads one page, so memory stays flat however
    /// long the queue is.
    ///
    /// A record's chained mutations may share a batch: each gets the base the
    /// previous one will produce (versions grow by one per applied mutation).
    /// Mutations behind a failed or conflicting one of their record wait for
    /// the user; those behind one in flight (another process's push) are
    /// left for a later push.
    pub fn next_batch(&self, after_seq: i64, max_count: usize, max_bytes: usize) -> Result<Vec<BatchItem>> {
        self.read_batch(after_seq, max_count, max_bytes, false)
    }

    /// [`Store::next_batch`] while this push has earlier batches out: it
    /// ends just before the first mutation whose record has one of them in
    /// flight, so that mutation goes only once the earlier one is settled
    /// and its base is known (per-record order), and no mutation is passed
    /// over.
    pub fn next_batch_beside_in_flight(
        &self,
        after_seq: i64,
        max_count: usize,
        max_bytes: usize,
    ) -> Result<Vec<BatchItem>> {
        self.read_batch(after_seq, max_count, max_bytes, true)
    }

    fn read_batch(
        &self,
        after_seq: i64,
        max_count: usize,
        max_bytes: usize,
        stop_behind_in_flight: bool,
    ) -> Result<Vec<BatchItem>> {
        let conn = self.conn();
        // Each check looks at the record's own earlier mutations. Left to
        // itself SQLite reads them by state instead, walking every row in
        // flight (thousands) for each row read.
        let mut stmt = conn.prepare_cached(
            "SELECT o.seq, o.id, o.entity, o.record_id, o.op, o.payload, o.edited_at,
                    coalesce(r.version, 0),
                    EXISTS (SELECT 1 FROM outbox p INDEXED BY outbox_by_record
                            WHERE p.entity = o.entity AND p.record_id = o.record_id
                              AND p.seq < o.seq AND p.state = 'in-flight')
             FROM outbox o LEFT JOIN records r ON r.entity = o.entity AND r.id = o.record_id
             WHERE o.state = 'pending' AND o.seq > ?1
               AND NOT EXISTS (SELECT 1 FROM outbox p INDEXED BY outbox_by_record
                               WHERE p.entity = o.entity AND p.record_id = o.record_id
                                 AND p.seq < o.seq AND p.state IN ('failed', 'conflict'))
               AND (?3 OR NOT EXISTS (SELECT 1 FROM outbox p INDEXED BY outbox_by_record
                                      WHERE p.entity = o.entity AND p.record_id = o.record_id
                                        AND p.seq < o.seq AND p.state = 'in-flight'))
             ORDER BY o.seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![after_seq, max_count as i64, stop_behind_in_flight])?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut chain: std::collections::HashMap<(String, String), u64> = Default::default();
        while let Some(r) = rows.next()? {
            if r.get::<_, bool>(8)? {
                break; // behind a mutation in flight: see next_batch_beside_in_flight
            }
            let payload_text: Option<String> = r.get(5)?;
            let size = payload_text.as_ref().map_or(0, |p| p.len()) + 200;
            if !out.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            let entity: String = r.get(2)?;
            let record_id: String = r.get(3)?;
            let known = r.get::<_, i64>(7)? as u64;
            let base = chain.entry((entity.clone(), record_id.clone())).and_modify(|b| *b += 1).or_insert(known);
            let id: String = r.get(1)?;
            let op: String = r.get(4)?;
            out.push(BatchItem {
                seq: r.get(0)?,
                mutation: Mutation {
                    id: Uuid::parse_str(&id).unwrap_or_default(),
                    entity,
                    record_id,
                    op: op.parse().unwrap_or(Op::Upsert),
                    payload: from_json(payload_text),
                    base_version: *base,
                    edited_at: r.get(6)?,
                },
            });
        }
        Ok(out)
    }

    /// A batch's outcome, all in one transaction.
    pub fn settle_batch(&self, settled: &[Settlement<'_>]) -> Result<()> {
        self.settle_batch_and_skip(settled, &mut OwnStretches::default())
    }

    /// [`Store::settle_batch`], and moves the pull cursor across our own
    /// changes: through each stretch of `own` (stretches of the server's
    /// change sequence that are exactly batches of ours that it applied)
    /// whose start the cursor has reached, so pulling them back is not
    /// needed; it would only confirm what settling just wrote. Stretches
    /// the cursor has not reached stay in `own` for a later batch that
    /// closes the gap (batches out at once may commit in either order); a
    /// gap nobody closes is pulled as usual.
    pub fn settle_batch_and_skip(&self, settled: &[Settlement<'_>], own: &mut OwnStretches) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if !own.0.is_empty() {
            let cursor = settings::get(&tx, settings::PULL_CURSOR)?.unwrap_or(0);
            let moved = own.advance(cursor);
            if moved != cursor {
                settings::put(&tx, settings::PULL_CURSOR, &moved)?;
            }
        }
        for s in settled {
            match *s {
                Settlement::Applied { item, version, duplicate } => {
                    let m = &item.mutation;
                    tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?.execute([item.seq])?;
                    if duplicate {
                        // Applied earlier, answer lost: others may have
                        // changed the record since, and the pull cursor may
                        // have moved past it while this was queued.
                        super::records::mark_refetch(&tx, &m.entity, &m.record_id)?;
                    }
                    if m.op != Op::Patch {
                        // The server applied exactly this op on exactly our
                        // base, so its new state is the payload (or nothing):
                        // no need to read the old shadow.
                        let shadow = if m.op == Op::Upsert { to_json(&m.payload) } else { None };
                        tx.prepare_cached(
                            "UPDATE records SET version = ?3, shadow = ?4, shadow_edited_at = ?5
                             WHERE entity = ?1 AND id = ?2 AND version < ?3",
                        )?
                        .execute(params![
                            m.entity,
                            m.record_id,
                            version as i64,
                            shadow,
                            m.edited_at
                        ])?;
                        continue;
                    }
                    let known: Option<(i64, Option<String>)> = tx
                        .prepare_cached("SELECT version, shadow FROM records WHERE entity = ?1 AND id = ?2")?
                        .query_row(params![m.entity, m.record_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    let Some((known_version, shadow)) = known else { continue };
                    if version as i64 <= known_version {
                        continue; // a duplicate answer for something already settled
                    }
                    // The server applied this patch on exactly our base, so its
                    // new state is our shadow with the patch applied.
                    let new_shadow = apply_op(from_json(shadow), m.op, m.payload.as_ref());
                    tx.prepare_cached(
                        "UPDATE records SET version = ?3, shadow = ?4, shadow_edited_at = ?5
                         WHERE entity = ?1 AND id = ?2",
                    )?
                    .execute(params![
                        m.entity,
                        m.record_id,
                        version as i64,
                        to_json(&new_shadow),
                        m.edited_at
                    ])?;
                }
                Settlement::Rejected { item, ref reason } => {
                    tx.prepare_cached(
                        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2,
                                next_attempt_at = NULL WHERE seq = ?1",
                    )?
                    .execute(params![item.seq, reason])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A whole request failed transiently: count the attempt and say why.
    /// When the next one is, the background loop decides and saves once for
    /// all (`next_retry_at`): every waiting mutation goes then, so the queue
    /// shows that time for each (see [`Store::queue`]) without rewriting
    /// a thousand rows per retry.
    pub fn note_attempt_failed(&self, seqs: &[i64], error: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = NULL, state = 'pending'
             WHERE seq IN (SELECT value FROM json_each(?1)) AND state IN ('pending', 'in-flight')",
        )?
        .execute(params![seq_list(seqs), error])?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a batch as sent and not yet answered.
    pub fn mark_in_flight(&self, seqs: &[i64]) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'in-flight'
                 WHERE seq IN (SELECT value FROM json_each(?1)) AND state = 'pending'",
            )?
            .execute([seq_list(seqs)])?;
        Ok(())
    }

    /// After a batch's answer was settled (or never came): what is still
    /// marked in flight (not applied, failed or in conflict) waits again.
    pub fn release_in_flight(&self, seqs: &[i64]) -> Result<()> {
        self.conn()
            .prepare_cached(
                "UPDATE outbox SET state = 'pending'
                 WHERE seq IN (SELECT value FROM json_each(?1)) AND state = 'in-flight'",
            )?
            .execute([seq_list(seqs)])?;
        Ok(())
    }

    /// Nothing is in flight before a push starts (the caller holds the sync
    /// lock): rows left marked by a push that died are pending again.
    pub fn reset_in_flight(&self) -> Result<u64> {
        Ok(self.conn().execute("UPDATE outbox SET state = 'pending' WHERE state = 'in-flight'", [])? as u64)
    }

    /// One page of the outbox, oldest first, after position `after_seq`.
    pub fn queue(&self, state: Option<MutationState>, after_seq: Option<i64>, limit: u32) -> Result<Vec<QueueItem>> {
        let conn = self.conn();
        // Two statements, so each uses an index: (state, seq) or the rowid.
        // An "?1 IS NULL OR" filter would scan the whole outbox.
        // A waiting mutation is tried next when the loop retries (if it is
        // backing off; no time while it is not, or without a loop), unless
        // sync is paused or it waits behind a failed or conflicting change
        // of its record (looked for only when there is one at all: a long
        // chain of edits to one record makes that search long).
        const COLUMNS: &str = "SELECT seq, id, entity, record_id, op, state, attempts,
                    CASE WHEN o.state = 'pending'
                          AND NOT EXISTS (SELECT 1 FROM settings WHERE key = 'paused' AND value = '1')
                          AND (coalesce((SELECT sum(n) FROM outbox_counts WHERE state IN ('failed', 'conflict')), 0) <= 0
                               OR NOT EXISTS (SELECT 1 FROM outbox p
                                              WHERE p.entity = o.entity AND p.record_id = o.record_id
                                                AND p.seq < o.seq AND p.state IN ('failed', 'conflict')))
                    THEN (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'next_retry_at') END,
                    last_error, edited_at, payload,
                    (SELECT r.data FROM records r WHERE r.entity = o.entity AND r.id = o.record_id)
                    FROM outbox o";
        let mut stmt = match state {
            Some(_) => {
                conn.prepare_cached(&format!("{COLUMNS} WHERE state = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"))?
            }
            None => conn.prepare_cached(&format!("{COLUMNS} WHERE ?1 IS NULL AND seq > ?2 ORDER BY seq LIMIT ?3"))?,
        };
        // The record's label is looked up by primary key for this page's
        // rows only (the subquery above), so a page costs the same at any
        // queue length.
        let titles = settings::title_fields(&conn)?;
        let rows = stmt
            .query_map(params![state.map(|s| s.as_str()), after_seq.unwrap_or(0), limit], |r| {
                let state: String = r.get(5)?;
                let entity: String = r.get(2)?;
                let record_id: String = r.get(3)?;
                let payload = from_json(r.get(10)?);
                // Deleted or gone here: what this change says of it.
                let current = from_json(r.get(11)?);
                let label = titles.label(&entity, &record_id, current.as_ref().or(payload.as_ref()));
                Ok(QueueItem {
                    seq: r.get(0)?,
                    mutation_id: r.get(1)?,
                    entity,
                    record_id,
                    label,
                    op: r.get(4)?,
                    state: MutationState::parse(&state).unwrap_or(MutationState::Pending),
                    attempts: r.get(6)?,
                    next_attempt_at: r.get(7)?,
                    last_error: r.get(8)?,
                    edited_at: r.get(9)?,
                    payload,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Moves a failed mutation back to pending. Returns its record.
    pub fn retry(&self, mutation_id: &str) -> Result<()> {
        let n = self.conn().execute(
            "UPDATE outbox SET state = 'pending', next_attempt_at = NULL WHERE id = ?1 AND state = 'failed'",
            [mutation_id],
        )?;
        if n == 0 {
            return Err(EngineError::NotFound(format!(
                "no failed mutation {mutation_id}: see `ferry queue --state failed` for the ids"
            )));
        }
        Ok(())
    }

    pub fn retry_all(&self) -> Result<u64> {
        Ok(self
            .conn()
            .execute("UPDATE outbox SET state = 'pending', next_attempt_at = NULL WHERE state = 'failed'", [])?
            as u64)
    }

    /// Drops a failed mutation. The local copy becomes the last server state
    /// with the record's other queued changes on top (none: the server
    /// state, re-read from the server on the next sync, as it may have
    /// changed meanwhile).
    pub fn discard(&self, mutation_id: &str) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row: Option<(String, String, String)> = tx
            .query_row("SELECT entity, record_id, state FROM outbox WHERE id = ?1", [mutation_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((entity, record_id, state)) = row else {
            return Err(EngineError::NotFound(format!(
                "no queued mutation {mutation_id}: see `ferry queue` for the ids"
            )));
        };
        if state != "failed" {
            return Err(EngineError::Invalid(format!(
                "mutation {mutation_id} is {state}, not failed: only failed mutations can be discarded \
                 (conflicts are settled with `ferry resolve`)"
            )));
        }
        tx.execute("DELETE FROM outbox WHERE id = ?1", [mutation_id])?;
        if !revert_if_unqueued(&tx, &entity, &record_id)? {
            replay_queue(&tx, &entity, &record_id)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Replaces a failed mutation with the user's corrected content, in one
    /// step: it keeps its place in the queue (so the record's later changes
    /// still follow it), gets a new mutation id (it is a new edit, which the
    /// server has never seen) and this moment's edit time, and is pending
    /// again. The local copy shows the correction with the record's other
    /// queued changes on top. Returns the new mutation id.
    pub fn correct(&self, mutation_id: &str, payload: Fields, edited_at: i64, now: i64) -> Result<Uuid> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row: Option<(i64, String, String, String, String)> = tx
            .query_row("SELECT seq, entity, record_id, op, state FROM outbox WHERE id = ?1", [mutation_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let Some((seq, entity, record_id, op, state)) = row else {
            return Err(EngineError::NotFound(format!(
                "no queued mutation {mutation_id}: see `ferry queue --state failed` for the ids"
            )));
        };
        if state != "failed" {
            return Err(EngineError::Invalid(format!(
                "mutation {mutation_id} is {state}, not failed: only a failed change can be corrected \
                 (to change a record, write it again with `ferry put` or `ferry patch`)"
            )));
        }
        let op = op.parse::<Op>().unwrap_or(Op::Upsert);
        if op == Op::Delete {
            return Err(EngineError::Invalid(format!(
                "mutation {mutation_id} deletes {entity}/{record_id}: a delete has no fields to correct; \
                 `ferry retry {mutation_id}` sends it again, `ferry discard {mutation_id}` drops it"
            )));
        }
        let write = super::WriteOp { entity: entity.clone(), record_id: record_id.clone(), op, payload: Some(payload) };
        write.validate()?;
        let ev = super::stamps::evidence(&tx, now, &crate::clock::monotonic_now())?;
        let id = Uuid::now_v7();
        tx.execute(
            "UPDATE outbox SET id = ?2, payload = ?3, edited_at = ?4, stamp_local_at = ?5, stamp_domain = ?6,
                 stamp_mono_ms = ?7, stamp_offset_known = ?8, attempts = 0, next_attempt_at = NULL,
                 last_error = NULL, state = 'pending'
             WHERE seq = ?1",
            params![
                seq,
                id.to_string(),
                to_json(&write.payload),
                edited_at,
                ev.local_at,
                ev.domain,
                ev.mono_ms,
                ev.offset_known
            ],
        )?;
        replay_queue(&tx, &entity, &record_id)?;
        tx.commit()?;
        Ok(id)
    }

    /// Edit time (server clock) of the oldest pending mutation.
    pub fn oldest_pending_edit(&self) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT edited_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?)
    }

    /// When the record's queued local mutations last touched each field: an
    /// upsert or delete touches every field, a patch the fields it names.
    pub fn local_edit_times(&self, entity: &str, record_id: &str) -> Result<LocalEditTimes> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT op, payload, edited_at FROM outbox WHERE entity = ?1 AND record_id = ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![entity, record_id])?;
        let mut times = LocalEditTimes::default();
        while let Some(r) = rows.next()? {
            let op: String = r.get(0)?;
            let at: i64 = r.get(2)?;
            times.latest = Some(times.latest.map_or(at, |t| t.max(at)));
            if op.parse::<Op>().unwrap_or(Op::Upsert) == Op::Patch {
                for field in from_json(r.get(1)?).unwrap_or_default().keys() {
                    let t = times.fields.entry(field.clone()).or_insert(at);
                    *t = (*t).max(at);
                }
            } else {
                times.whole_record = Some(times.whole_record.map_or(at, |t| t.max(at)));
            }
        }
        Ok(times)
    }

    /// Local value of a record: (data or None if deleted/absent, exists).
    pub fn local_value(&self, entity: &str, record_id: &str) -> Result<Option<Fields>> {
        Ok(self
            .conn()
            .query_row("SELECT data FROM records WHERE entity = ?1 AND id = ?2", params![entity, record_id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .and_then(from_json))
    }
}

/// `[1,2,3]`, for `seq IN (SELECT value FROM json_each(?))`: one statement
/// per batch instead of one per row.
fn seq_list(seqs: &[i64]) -> String {
    serde_json::to_string(seqs).unwrap_or_else(|_| "[]".into())
}

/// Returns whether it reverted (false: changes of the record are queued).
pub(super) fn revert_if_unqueued(tx: &rusqlite::Transaction, entity: &str, record_id: &str) -> Result<bool> {
    let still_queued: bool = tx.query_row(
        "SELECT EXISTS(SELECT 1 FROM outbox WHERE entity = ?1 AND record_id = ?2)",
        params![entity, record_id],
        |r| r.get(0),
    )?;
    if still_queued {
        return Ok(false);
    }
    let version: i64 = tx
        .query_row("SELECT version FROM records WHERE entity = ?1 AND id = ?2", params![entity, record_id], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0);
    if version == 0 {
        tx.execute("DELETE FROM records WHERE entity = ?1 AND id = ?2", params![entity, record_id])?;
    } else {
        tx.execute(
            "UPDATE records SET data = shadow, deleted = (shadow IS NULL) WHERE entity = ?1 AND id = ?2",
            params![entity, record_id],
        )?;
    }
    tx.execute("INSERT OR IGNORE INTO refetch(entity, id) VALUES (?1, ?2)", params![entity, record_id])?;
    Ok(true)
}

/// The local copy rebuilt as the last server state with the record's
/// queued changes applied in order: what it shows after one of them is
/// dropped. (A patch left without a record to patch shows its fields; the
/// server will refuse it, and it fails visibly.)
fn replay_queue(tx: &rusqlite::Transaction, entity: &str, record_id: &str) -> Result<()> {
    let (shadow, version): (Option<String>, i64) = tx
        .query_row(
            "SELECT shadow, version FROM records WHERE entity = ?1 AND id = ?2",
            params![entity, record_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .unwrap_or((None, 0));
    let mut value = if version == 0 { None } else { from_json(shadow) };
    let mut stmt = tx.prepare("SELECT op, payload FROM outbox WHERE entity = ?1 AND record_id = ?2 ORDER BY seq")?;
    let mut rows = stmt.query(params![entity, record_id])?;
    while let Some(r) = rows.next()? {
        let op: String = r.get(0)?;
        let payload = from_json(r.get(1)?);
        value = super::apply_op(value, op.parse::<Op>().unwrap_or(Op::Upsert), payload.as_ref());
    }
    tx.execute(
        "UPDATE records SET data = ?3, deleted = ?4 WHERE entity = ?1 AND id = ?2",
        params![entity, record_id, to_json(&value), value.is_none()],
    )?;
    Ok(())
}

/// What happened to one sent mutation that the store must record.
pub enum Settlement<'a> {
    Applied { item: &'a BatchItem, version: u64, duplicate: bool },
    Rejected { item: &'a BatchItem, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WriteOp;
    use serde_json::json;

    fn put(s: &Store, id: &str, v: serde_json::Value) {
        let w = WriteOp { entity: "a".into(), record_id: id.into(), op: Op::Upsert, payload: v.as_object().cloned() };
        s.write(&w, 1, 1).unwrap();
    }

    /// Dropping a failed change leaves the server's version with the
    /// record's other queued changes on top, not the dropped content.
    /// The label comes from the record as it is now, or when it is gone,
    /// from what the change itself says; the title field is per entity.
    #[test]
    fn queue_rows_carry_the_records_label() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "x", json!({"title": "First", "ref": 7}));
        put(&s, "x", json!({"title": "Second", "ref": 8}));
        put(&s, "y", json!({"title": "Gone soon"}));
        let del = WriteOp { entity: "a".into(), record_id: "y".into(), op: Op::Delete, payload: None };
        s.write(&del, 1, 1).unwrap();
        let labels = |s: &Store| s.queue(None, None, 10).unwrap().into_iter().map(|i| i.label).collect::<Vec<_>>();
        assert_eq!(labels(&s), ["Second", "Second", "Gone soon", "y"]);
        s.set_title_field("a", Some("ref")).unwrap();
        assert_eq!(labels(&s), ["8", "8", "Gone soon", "y"]);
        s.set_title_field("other", Some("title")).unwrap();
        s.set_title_field("a", None).unwrap();
        assert_eq!(labels(&s), ["Second", "Second", "Gone soon", "y"]);
    }

    #[test]
    fn discarding_replays_the_records_other_queued_changes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        let patch = |id: &str, v: serde_json::Value| {
            let w =
                WriteOp { entity: "a".into(), record_id: id.into(), op: Op::Patch, payload: v.as_object().cloned() };
            s.write(&w, 1, 1).unwrap();
        };
        let fail_first = |id: &str| -> String {
            let (seq, mid): (i64, String) = s
                .conn()
                .query_row("SELECT seq, id FROM outbox WHERE record_id = ?1 ORDER BY seq LIMIT 1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            s.conn().execute("UPDATE outbox SET state = 'failed' WHERE seq = ?1", [seq]).unwrap();
            mid
        };
        let value = |id: &str| s.local_value("a", id).unwrap();

        // On the server at version 3 as {"n": 0}; my put failed, my patch waits.
        put(&s, "r", json!({"n": 1, "x": true}));
        s.conn().execute("UPDATE records SET version = 3, shadow = '{\"n\":0}' WHERE id = 'r'", []).unwrap();
        patch("r", json!({"m": 2}));
        s.discard(&fail_first("r")).unwrap();
        assert_eq!(value("r"), json!({"n": 0, "m": 2}).as_object().cloned());
        assert_eq!(s.counts().unwrap().pending, 1, "the patch stays queued");

        // Never on the server: what is left is the patch alone.
        put(&s, "new", json!({"n": 1}));
        patch("new", json!({"m": 2}));
        s.discard(&fail_first("new")).unwrap();
        assert_eq!(value("new"), json!({"m": 2}).as_object().cloned());

        // The last queued change: back to the server's version.
        s.discard(&fail_first("r")).unwrap();
        assert_eq!(value("r"), json!({"n": 0}).as_object().cloned());
    }

    /// A corrected change takes the failed one's place: new id, new
    /// content, pending, and the local copy shows it under the record's
    /// later queued changes.
    #[test]
    fn correcting_a_failed_change_replaces_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "r", json!({"amount": -5, "note": "taxi"}));
        let w = WriteOp {
            entity: "a".into(),
            record_id: "r".into(),
            op: Op::Patch,
            payload: json!({"paid": true}).as_object().cloned(),
        };
        s.write(&w, 1, 1).unwrap();
        let (seq, failed): (i64, String) = s
            .conn()
            .query_row("SELECT seq, id FROM outbox WHERE record_id = 'r' ORDER BY seq LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let not_failed = s.correct(&failed, json!({"amount": 5}).as_object().cloned().unwrap(), 2, 2).unwrap_err();
        assert!(not_failed.to_string().contains("not failed"), "{not_failed}");
        s.conn()
            .execute(
                "UPDATE outbox SET state = 'failed', attempts = 3, last_error = 'amount: below 0' WHERE seq = ?1",
                [seq],
            )
            .unwrap();

        let new_id =
            s.correct(&failed, json!({"amount": 5, "note": "taxi"}).as_object().cloned().unwrap(), 7, 7).unwrap();
        assert_ne!(new_id.to_string(), failed);
        let row: (i64, String, String, i64, i64, Option<String>) = s
            .conn()
            .query_row(
                "SELECT seq, id, state, edited_at, attempts, last_error FROM outbox WHERE seq = ?1",
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
        assert_eq!(row, (seq, new_id.to_string(), "pending".into(), 7, 0, None), "same place, new id, pending");
        assert_eq!(
            s.local_value("a", "r").unwrap(),
            json!({"amount": 5, "note": "taxi", "paid": true}).as_object().cloned()
        );
        assert_eq!(s.counts().unwrap().failed, 0);
        assert_eq!(s.counts().unwrap().pending, 2);
        assert!(s.correct(&failed, Fields::new(), 8, 8).is_err(), "the old id is gone");
    }

    #[test]
    fn own_changes_are_believed_only_when_the_answer_is_consistent() {
        let own = |b, a, seqs: &[u64]| OwnChanges::from_answer(b, a, seqs);
        assert_eq!(own(Some(4), Some(9), &[7, 8, 9]), Some(OwnChanges { before: 4, after: 9 }));
        assert_eq!(own(None, Some(9), &[9]), None, "a server that does not say");
        assert_eq!(own(Some(4), Some(9), &[]), None, "nothing applied, nothing to skip");
        assert_eq!(own(Some(8), Some(9), &[7, 9]), None, "an applied seq before the stretch");
        assert_eq!(own(Some(4), Some(12), &[7, 9]), None, "the stretch runs past our last change");
    }

    #[test]
    fn the_cursor_skips_our_own_changes_only_if_it_had_reached_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        let cursor = |s: &Store| s.setting(settings::PULL_CURSOR).unwrap().unwrap_or(0);
        put(&s, "r", json!({"n": 1}));
        let b = s.next_batch(0, 10, 1 << 20).unwrap();
        let applied = [Settlement::Applied { item: &b[0], version: 1, duplicate: false }];
        // Someone else's change (seq 3) came before ours (seq 5) and was
        // never pulled: the cursor must stay to fetch it.
        s.set_setting(settings::PULL_CURSOR, &2).unwrap();
        let mut own = OwnStretches::default();
        own.add(Some(OwnChanges { before: 3, after: 5 }));
        s.settle_batch_and_skip(&applied, &mut own).unwrap();
        assert_eq!(cursor(&s), 2);
        // Caught up to the start of the stretch: skip it.
        put(&s, "q", json!({"n": 2}));
        let b = s.next_batch(0, 10, 1 << 20).unwrap();
        s.set_setting(settings::PULL_CURSOR, &5).unwrap();
        let mut own = OwnStretches::default();
        own.add(Some(OwnChanges { before: 5, after: 6 }));
        s.settle_batch_and_skip(&[Settlement::Applied { item: &b[0], version: 1, duplicate: false }], &mut own)
            .unwrap();
        assert_eq!(cursor(&s), 6);
        assert_eq!(s.counts().unwrap().pending, 0);
    }

    /// Batches out at once may commit in either order: a stretch the
    /// cursor has not reached waits for the one that closes the gap, and
    /// a gap left open (someone else's change) is never skipped.
    #[test]
    fn stretches_answered_out_of_order_join_up() {
        let mut own = OwnStretches::default();
        own.add(Some(OwnChanges { before: 15, after: 20 }));
        assert_eq!(own.advance(10), 10, "(10, 15] not ours yet");
        own.add(Some(OwnChanges { before: 10, after: 15 }));
        own.add(Some(OwnChanges { before: 21, after: 30 }));
        assert_eq!(own.advance(10), 20, "(10, 20] ours; 21 is someone else's");
        assert_eq!(own.0, vec![OwnChanges { before: 21, after: 30 }]);
        assert_eq!(own.advance(21), 30);
        assert!(own.0.is_empty());
        own.add(Some(OwnChanges { before: 3, after: 5 }));
        assert_eq!(own.advance(8), 8, "a stretch already passed is dropped");
        assert!(own.0.is_empty());
    }

    #[test]
    fn chained_mutations_get_consecutive_bases() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "r", json!({"n": 1}));
        put(&s, "r", json!({"n": 2}));
        put(&s, "q", json!({"n": 3}));
        let b = s.next_batch(0, 10, 1 << 20).unwrap();
        let bases: Vec<u64> = b.iter().map(|i| i.mutation.base_version).collect();
        assert_eq!(bases, vec![0, 1, 0]);
    }

    #[test]
    fn failed_mutation_holds_back_only_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "r", json!({"n": 1}));
        put(&s, "r", json!({"n": 2}));
        put(&s, "q", json!({"n": 3}));
        let b = s.next_batch(0, 1, 1 << 20).unwrap();
        s.settle_batch(&[Settlement::Rejected { item: &b[0], reason: "bad".into() }]).unwrap();
        let b = s.next_batch(0, 10, 1 << 20).unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].mutation.record_id, "q");
        assert_eq!(s.counts().unwrap(), OutboxCounts { pending: 2, in_flight: 0, failed: 1, conflict: 0 });
        let failed = s.queue(Some(MutationState::Failed), None, 10).unwrap();
        assert_eq!(failed[0].last_error.as_deref(), Some("bad"));
        s.retry(&failed[0].mutation_id).unwrap();
        assert_eq!(s.next_batch(0, 10, 1 << 20).unwrap().len(), 3);
    }

    #[test]
    fn local_edit_times_are_per_field() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        let w = |op, v: serde_json::Value, at| {
            let w = WriteOp { entity: "a".into(), record_id: "r".into(), op, payload: v.as_object().cloned() };
            s.write(&w, at, at).unwrap();
        };
        assert_eq!(s.local_edit_times("a", "r").unwrap(), LocalEditTimes::default());
        w(Op::Upsert, json!({"a": 1, "b": 1}), 10);
        w(Op::Patch, json!({"b": 2}), 30);
        w(Op::Patch, json!({"c": null}), 20);
        let t = s.local_edit_times("a", "r").unwrap();
        assert_eq!(t.latest, Some(30));
        assert_eq!((t.field("a"), t.field("b"), t.field("c"), t.field("z")), (Some(10), Some(30), Some(20), Some(10)));
        w(Op::Upsert, json!({"a": 3}), 25);
        let t = s.local_edit_times("a", "r").unwrap();
        assert_eq!((t.field("a"), t.field("b"), t.field("c")), (Some(25), Some(30), Some(25)));
    }

    fn states(s: &Store) -> Vec<(String, Option<i64>)> {
        s.queue(None, None, 100)
            .unwrap()
            .into_iter()
            .map(|q| (q.state.as_str().to_string(), q.next_attempt_at))
            .collect()
    }

    #[test]
    fn a_batch_is_in_flight_while_out_and_pending_again_unless_settled() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "r", json!({"n": 1}));
        put(&s, "q", json!({"n": 2}));
        put(&s, "z", json!({"n": 3}));
        let b = s.next_batch(0, 2, 1 << 20).unwrap();
        let seqs: Vec<i64> = b.iter().map(|i| i.seq).collect();
        s.mark_in_flight(&seqs).unwrap();
        assert_eq!(s.queue(Some(MutationState::InFlight), None, 10).unwrap().len(), 2);
        assert_eq!(s.counts().unwrap().pending, 3, "in flight still counts as waiting");
        assert_eq!(s.counts().unwrap().in_flight, 2, "and is told apart, for other processes' status");
        assert_eq!(s.next_batch(0, 10, 1 << 20).unwrap().len(), 1, "never sent twice at once");
        // One applied, one answered "blocked": released back to pending.
        s.settle_batch(&[Settlement::Applied { item: &b[0], version: 1, duplicate: false }]).unwrap();
        s.release_in_flight(&seqs).unwrap();
        assert_eq!(states(&s), vec![("pending".into(), None), ("pending".into(), None)]);
    }

    #[test]
    fn in_flight_marks_of_a_dead_process_are_reset_on_open_unless_a_sync_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.db");
        let s = Store::open(&path).unwrap();
        put(&s, "r", json!({"n": 1}));
        let seqs: Vec<i64> = s.next_batch(0, 10, 1 << 20).unwrap().iter().map(|i| i.seq).collect();
        s.mark_in_flight(&seqs).unwrap();
        drop(s);
        // Another process is syncing (holds the lock): its push is live.
        let lock = std::fs::File::create(dir.path().join("sync.lock")).unwrap();
        lock.lock().unwrap();
        let s = Store::open(&path).unwrap();
        assert_eq!(s.queue(Some(MutationState::InFlight), None, 10).unwrap().len(), 1);
        drop(s);
        lock.unlock().unwrap();
        // Nobody syncing: the marks are stale.
        let s = Store::open(&path).unwrap();
        assert_eq!(states(&s), vec![("pending".into(), None)]);
    }

    #[test]
    fn a_failed_attempt_waits_for_the_real_next_attempt_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "r", json!({"n": 1}));
        put(&s, "q", json!({"n": 2}));
        let b = s.next_batch(0, 1, 1 << 20).unwrap();
        let seqs = vec![b[0].seq];
        s.mark_in_flight(&seqs).unwrap();
        s.note_attempt_failed(&seqs, "cannot reach the server").unwrap();
        // Pending again, the attempt counted, and no made-up time.
        let q = s.queue(None, None, 10).unwrap();
        assert_eq!((q[0].state, q[0].attempts, q[0].next_attempt_at), (MutationState::Pending, 1, None));
        // The loop backs off until 123 456: every waiting mutation goes then.
        s.set_setting(settings::NEXT_RETRY_AT, &123456).unwrap();
        assert_eq!(states(&s), vec![("pending".into(), Some(123_456)), ("pending".into(), Some(123_456))]);
        assert_eq!(s.queue(Some(MutationState::Pending), None, 10).unwrap()[1].next_attempt_at, Some(123_456));
        // Synced: no retry is scheduled, and none is shown.
        s.remove_setting(settings::NEXT_RETRY_AT).unwrap();
        assert_eq!(states(&s), vec![("pending".into(), None), ("pending".into(), None)]);
    }

    /// The loop's next retry is shown only for what it will send then: not
    /// for an edit held back behind a failed change of its record, nor
    /// while sync is paused.
    #[test]
    fn no_next_attempt_time_for_what_the_retry_will_not_send() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "r", json!({"n": 1}));
        put(&s, "r", json!({"n": 2}));
        put(&s, "q", json!({"n": 3}));
        let head = s.next_batch(0, 1, 1 << 20).unwrap()[0].seq;
        s.conn().execute("UPDATE outbox SET state = 'failed' WHERE seq = ?1", [head]).unwrap();
        s.set_setting(settings::NEXT_RETRY_AT, &123456).unwrap();
        assert_eq!(
            states(&s),
            vec![("failed".into(), None), ("pending".into(), None), ("pending".into(), Some(123_456))],
            "r's second edit waits for the user, q goes at the retry"
        );
        s.set_setting(settings::PAUSED, &true).unwrap();
        assert!(states(&s).iter().all(|(_, at)| at.is_none()), "paused: nothing is tried");
    }

    #[test]
    fn batches_are_bounded_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        for i in 0..10 {
            put(&s, &i.to_string(), json!({"blob": "x".repeat(1000)}));
        }
        let b = s.next_batch(0, 100, 3500).unwrap();
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn applied_updates_shadow_and_discard_reverts() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, "r", json!({"n": 1}));
        let b = s.next_batch(0, 10, 1 << 20).unwrap();
        s.settle_batch(&[Settlement::Applied { item: &b[0], version: 1, duplicate: false }]).unwrap();
        assert_eq!(s.shadow("a", "r").unwrap().unwrap().0, 1);
        let w = WriteOp {
            entity: "a".into(),
            record_id: "r".into(),
            op: Op::Patch,
            payload: json!({"n": 2}).as_object().cloned(),
        };
        s.write(&w, 2, 2).unwrap();
        let b = s.next_batch(0, 10, 1 << 20).unwrap();
        assert_eq!(b[0].mutation.base_version, 1);
        s.settle_batch(&[Settlement::Rejected { item: &b[0], reason: "no".into() }]).unwrap();
        let id = b[0].mutation.id.to_string();
        s.discard(&id).unwrap();
        assert_eq!(s.local_value("a", "r").unwrap(), json!({"n": 1}).as_object().cloned());
        assert_eq!(s.refetch_list(10).unwrap().len(), 1);
    }
}
