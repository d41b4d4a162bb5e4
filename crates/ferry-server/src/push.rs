//! Applying a push batch: the heart of the server.
//!
//! The whole batch runs in one SQLite transaction; any database error aborts
//! all of it, so a mutation is applied completely or not at all, and the
//! batch becomes visible (and is answered) only once it is committed. A crash
//! before the commit rolls everything back; the client's retry then applies
//! it afresh, and idempotency makes a retry after the commit harmless.

use std::collections::HashSet;

use ferry_protocol::{
    limits, validate_entity, validate_record_id, Mutation, MutationResult, Op, Outcome, RejectCode, RemoteRecord,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{Map, Value};

use crate::clock::now_ms;
use crate::error::Result;
use crate::records::{self, counters};

/// How many mutations of a batch ended each way (for logs and counters).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub applied: u64,
    pub duplicate: u64,
    pub conflict: u64,
    pub rejected: u64,
    pub blocked: u64,
}

impl Tally {
    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Applied { .. } => self.applied += 1,
            Outcome::Duplicate { .. } => self.duplicate += 1,
            Outcome::Conflict { .. } => self.conflict += 1,
            Outcome::Rejected { .. } => self.rejected += 1,
            Outcome::Blocked => self.blocked += 1,
        }
    }
}

/// Results of one committed batch, in request order.
#[derive(Debug)]
pub struct BatchOutcome {
    pub results: Vec<MutationResult>,
    pub tally: Tally,
    /// The organisation's latest change seq before and after the batch; the
    /// batch's applied mutations are all of its changes in between (the
    /// batch holds the write lock throughout).
    pub seq_before: u64,
    pub seq_after: u64,
}

/// Applies `mutations` for `user` of `org` and commits.
///
/// An `Err` means nothing of the batch was applied (the transaction rolled
/// back): the client may retry the whole batch.
pub fn apply_batch(conn: &mut Connection, org: &str, user: &str, mutations: &[Mutation]) -> Result<BatchOutcome> {
    apply_batch_limited(conn, org, user, mutations, limits::MAX_PAYLOAD_BYTES)
}

/// [`apply_batch`] with an operator-chosen record size limit (at most the
/// protocol's).
pub fn apply_batch_limited(
    conn: &mut Connection,
    org: &str,
    user: &str,
    mutations: &[Mutation],
    max_payload: usize,
) -> Result<BatchOutcome> {
    let max_payload = max_payload.min(limits::MAX_PAYLOAD_BYTES);
    // IMMEDIATE takes the write lock up front, so the batch never fails
    // half-way with SQLITE_BUSY on its first write.
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut seq = counters::get(&tx, counters::SEQ)?;
    let seq_before = org_latest_seq(&tx, org)?;
    // Records with a mutation in this batch that was not applied: later
    // mutations of the same record must wait (per-record order).
    let mut held: HashSet<(&str, &str)> = HashSet::new();
    let mut tally = Tally::default();
    let mut results = Vec::with_capacity(mutations.len());

    for m in mutations {
        let outcome = apply_one(&mut tx, org, user, m, &mut seq, &held, max_payload)?;
        if !matches!(outcome, Outcome::Applied { .. } | Outcome::Duplicate { .. }) {
            held.insert((m.entity.as_str(), m.record_id.as_str()));
        }
        tally.count(&outcome);
        results.push(MutationResult { mutation_id: m.id, outcome });
    }

    counters::set(&tx, counters::SEQ, seq)?;
    counters::add(&tx, counters::APPLIED, tally.applied)?;
    counters::add(&tx, counters::DUPLICATE, tally.duplicate)?;
    counters::add(&tx, counters::CONFLICTS, tally.conflict)?;
    counters::add(&tx, counters::REJECTED, tally.rejected)?;
    tx.commit()?;
    // Applied mutations took the global seqs after `seq_before`; the last
    // one is where the organisation's sequence now ends.
    let seq_after = if tally.applied > 0 { seq } else { seq_before };
    Ok(BatchOutcome { results, tally, seq_before, seq_after })
}

/// The seq of the organisation's latest change (0 if none): one step down
/// the `(org, seq)` index.
fn org_latest_seq(conn: &Connection, org: &str) -> Result<u64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM records WHERE org = ?1")?
        .query_row([org], |r| r.get::<_, i64>(0))? as u64)
}

fn apply_one(
    tx: &mut Transaction<'_>,
    org: &str,
    user: &str,
    m: &Mutation,
    seq: &mut u64,
    held: &HashSet<(&str, &str)>,
    max_payload: usize,
) -> Result<Outcome> {
    let mutation_id = m.id.hyphenated().to_string();

    // 1. Idempotency: an applied mutation id answers with its first result.
    if let Some(outcome) = find_applied(tx, org, &mutation_id)? {
        return Ok(outcome);
    }
    // 2. Per-record order within the batch.
    if held.contains(&(m.entity.as_str(), m.record_id.as_str())) {
        return Ok(Outcome::Blocked);
    }
    // 3. Shape of the mutation itself.
    if let Err((code, message)) = validate(m, max_payload) {
        return Ok(Outcome::Rejected { code, message });
    }
    // 4./5. Versions and the op against the current record.
    let current = records::load(tx, org, &m.entity, &m.record_id)?;
    let write = match decide(m, current.as_ref()) {
        Decision::Write(w) => w,
        Decision::Conflict => {
            // `decide` only answers Conflict when there is a current record.
            return Ok(match current {
                Some(current) => Outcome::Conflict { current },
                None => Outcome::Rejected { code: RejectCode::NotFound, message: not_found_message(m) },
            });
        }
        Decision::Reject(code, message) => return Ok(Outcome::Rejected { code, message }),
    };

    // 6. Apply.
    let data = match &write.data {
        Some(map) => Some(
            serde_json::to_string(map)
                .map_err(|e| crate::error::Error::Corrupt(format!("cannot serialize record data: {e}")))?,
        ),
        None => None,
    };
    if let Some(text) = &data {
        if text.len() > max_payload {
            return Ok(Outcome::Rejected {
                code: RejectCode::PayloadTooLarge,
                message: format!(
                    "the patched record would be {} bytes; records are limited to {} bytes",
                    text.len(),
                    max_payload
                ),
            });
        }
    }
    let new_seq = *seq + 1;
    let server_time = now_ms();
    // No savepoint: any error below aborts the whole batch transaction, so
    // a mutation is never half-applied, and a savepoint per mutation would
    // only cost a journal entry each.
    tx.prepare_cached(
        "INSERT INTO records (org, entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (org, entity, record_id) DO UPDATE SET
             version = excluded.version, seq = excluded.seq, deleted = excluded.deleted,
             data = excluded.data, edited_at = excluded.edited_at,
             edited_by = excluded.edited_by, server_time = excluded.server_time",
    )?
    .execute(rusqlite::params![
        org,
        m.entity,
        m.record_id,
        write.version,
        new_seq,
        write.deleted,
        data,
        m.edited_at,
        user,
        server_time,
    ])?;
    tx.prepare_cached(
        "INSERT INTO applied_mutations (org, mutation_id, entity, record_id, version, seq, server_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(rusqlite::params![org, mutation_id, m.entity, m.record_id, write.version, new_seq, server_time])?;
    *seq = new_seq;
    Ok(Outcome::Applied { version: write.version, seq: new_seq, server_time })
}

fn find_applied(conn: &Connection, org: &str, mutation_id: &str) -> Result<Option<Outcome>> {
    let mut stmt = conn.prepare_cached(
        "SELECT version, seq, server_time FROM applied_mutations WHERE org = ?1 AND mutation_id = ?2",
    )?;
    Ok(stmt
        .query_row((org, mutation_id), |r| {
            Ok(Outcome::Duplicate { version: r.get(0)?, seq: r.get(1)?, server_time: r.get(2)? })
        })
        .optional()?)
}

/// Checks what can be checked without the database.
fn validate(m: &Mutation, max_payload: usize) -> Result<(), (RejectCode, String)> {
    validate_entity(&m.entity).map_err(|e| (RejectCode::InvalidEntity, e))?;
    validate_record_id(&m.record_id).map_err(|e| (RejectCode::InvalidRecordId, e))?;
    if m.op == Op::Delete {
        // A delete's payload is ignored, whatever it is.
        return Ok(());
    }
    let Some(payload) = &m.payload else {
        return Err((RejectCode::InvalidPayload, format!("{} needs a JSON object payload", m.op.as_str())));
    };
    // Serializing a map of JSON values cannot fail; treat a failure as
    // oversized rather than panicking.
    let size = serde_json::to_vec(payload).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > max_payload {
        return Err((
            RejectCode::PayloadTooLarge,
            format!("payload is {size} bytes; this server's limit is {max_payload} bytes"),
        ));
    }
    Ok(())
}

/// The new state of a record.
#[derive(Debug, PartialEq)]
struct Write {
    version: u64,
    deleted: bool,
    data: Option<Map<String, Value>>,
}

#[derive(Debug, PartialEq)]
enum Decision {
    Write(Write),
    Conflict,
    Reject(RejectCode, String),
}

/// What a (validated) mutation does to the record as it is now. Pure, so the
/// versioning rules are unit-tested without a database.
fn decide(m: &Mutation, current: Option<&RemoteRecord>) -> Decision {
    let Some(cur) = current else {
        // Never existed in this organisation.
        if m.base_version != 0 || m.op != Op::Upsert {
            return Decision::Reject(RejectCode::NotFound, not_found_message(m));
        }
        return Decision::Write(Write { version: 1, deleted: false, data: m.payload.clone() });
    };
    if m.base_version != cur.version {
        return Decision::Conflict;
    }
    let version = cur.version + 1;
    match m.op {
        // Also resurrects a tombstone: the client saw the delete (its base is
        // the tombstone's version) and chose to write anyway.
        Op::Upsert => Decision::Write(Write { version, deleted: false, data: m.payload.clone() }),
        Op::Patch | Op::Delete if cur.deleted => Decision::Reject(
            RejectCode::NotFound,
            format!("cannot {} {}/{}: it was deleted (version {})", m.op.as_str(), m.entity, m.record_id, cur.version),
        ),
        Op::Patch => {
            let mut data = cur.data.clone().unwrap_or_default();
            for (key, value) in m.payload.iter().flatten() {
                if value.is_null() {
                    data.remove(key);
                } else {
                    data.insert(key.clone(), value.clone());
                }
            }
            Decision::Write(Write { version, deleted: false, data: Some(data) })
        }
        Op::Delete => Decision::Write(Write { version, deleted: true, data: None }),
    }
}

fn not_found_message(m: &Mutation) -> String {
    if m.base_version != 0 {
        format!("{}/{} does not exist on the server, but base_version is {}", m.entity, m.record_id, m.base_version)
    } else {
        format!("cannot {} {}/{}: it does not exist", m.op.as_str(), m.entity, m.record_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::migrate(&mut conn).unwrap();
        conn
    }

    fn obj(v: Value) -> Option<Map<String, Value>> {
        match v {
            Value::Object(m) => Some(m),
            _ => panic!("not an object"),
        }
    }

    fn mutation(op: Op, id: &str, base: u64, payload: Value) -> Mutation {
        Mutation {
            id: Uuid::new_v4(),
            entity: "activity".into(),
            record_id: id.into(),
            op,
            payload: if payload.is_null() { None } else { obj(payload) },
            base_version: base,
            edited_at: 1000,
        }
    }

    fn push(conn: &mut Connection, org: &str, ms: &[Mutation]) -> Vec<Outcome> {
        apply_batch(conn, org, "alice", ms).unwrap().results.into_iter().map(|r| r.outcome).collect()
    }

    fn counter(conn: &Connection, name: &str) -> u64 {
        counters::get(conn, name).unwrap()
    }

    #[test]
    fn a_batch_says_which_stretch_of_the_sequence_is_its_own() {
        let mut conn = db();
        let first = apply_batch(&mut conn, "o", "alice", &[mutation(Op::Upsert, "r1", 0, json!({"a": 1}))]).unwrap();
        assert_eq!((first.seq_before, first.seq_after), (0, 1));
        // Another organisation's change takes a seq too, but not o's.
        apply_batch(&mut conn, "x", "bob", &[mutation(Op::Upsert, "r1", 0, json!({"b": 1}))]).unwrap();
        let b = apply_batch(
            &mut conn,
            "o",
            "alice",
            &[
                mutation(Op::Upsert, "r2", 0, json!({"a": 2})),
                mutation(Op::Upsert, "r1", 7, json!({"stale": true})), // conflict: no seq
                mutation(Op::Patch, "r2", 1, json!({"c": 3})),
            ],
        )
        .unwrap();
        assert_eq!(b.seq_before, 1, "o's latest change before the batch");
        assert_eq!(b.seq_after, 4, "o's latest change after it");
        // Everything o changed in (before, after] is this batch's applied work.
        let applied: Vec<u64> = b
            .results
            .iter()
            .filter_map(|r| match r.outcome {
                Outcome::Applied { seq, .. } => Some(seq),
                _ => None,
            })
            .collect();
        assert_eq!(applied, [3, 4]);
        // A batch that applies nothing leaves the sequence where it was.
        let none = apply_batch(&mut conn, "o", "alice", &[mutation(Op::Upsert, "r1", 9, json!({}))]).unwrap();
        assert_eq!((none.seq_before, none.seq_after), (4, 4));
    }

    #[test]
    fn create_patch_delete_resurrect_chain() {
        let mut conn = db();
        let out = push(
            &mut conn,
            "o",
            &[
                mutation(Op::Upsert, "r1", 0, json!({"a": 1, "b": 2})),
                mutation(Op::Patch, "r1", 1, json!({"b": null, "c": 3})),
                mutation(Op::Delete, "r1", 2, Value::Null),
                mutation(Op::Upsert, "r1", 3, json!({"z": true})),
            ],
        );
        let versions: Vec<u64> = out
            .iter()
            .map(|o| match o {
                Outcome::Applied { version, .. } => *version,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(versions, [1, 2, 3, 4]);
        let rec = records::load(&conn, "o", "activity", "r1").unwrap().unwrap();
        assert_eq!(rec.version, 4);
        assert_eq!(rec.seq, 4);
        assert!(!rec.deleted);
        assert_eq!(rec.data, obj(json!({"z": true})));
        assert_eq!(rec.edited_by, "alice");
        assert_eq!(counter(&conn, counters::APPLIED), 4);
    }

    #[test]
    fn patch_merges_top_level_and_null_removes() {
        let cur = RemoteRecord {
            entity: "activity".into(),
            record_id: "r".into(),
            version: 3,
            seq: 1,
            deleted: false,
            data: obj(json!({"a": 1, "b": {"x": 1}, "c": 3})),
            edited_at: 0,
            edited_by: "u".into(),
            server_time: 0,
        };
        let m = mutation(Op::Patch, "r", 3, json!({"a": null, "b": {"y": 2}, "d": 4}));
        assert_eq!(
            decide(&m, Some(&cur)),
            Decision::Write(Write { version: 4, deleted: false, data: obj(json!({"b": {"y": 2}, "c": 3, "d": 4})) })
        );
    }

    #[test]
    fn duplicate_returns_original_result_and_counts() {
        let mut conn = db();
        let m = mutation(Op::Upsert, "r1", 0, json!({"a": 1}));
        let first = push(&mut conn, "o", std::slice::from_ref(&m));
        let again = push(&mut conn, "o", &[m.clone(), m.clone()]);
        let Outcome::Applied { version, seq, server_time } = first[0] else { panic!() };
        assert_eq!(again, vec![Outcome::Duplicate { version, seq, server_time }; 2]);
        assert_eq!(counter(&conn, counters::DUPLICATE), 2);
        assert_eq!(counter(&conn, counters::APPLIED), 1);
        // Another organisation has its own idempotency space.
        assert!(matches!(push(&mut conn, "other", &[m])[0], Outcome::Applied { .. }));
    }

    #[test]
    fn conflict_blocks_later_mutations_of_that_record_only() {
        let mut conn = db();
        push(&mut conn, "o", &[mutation(Op::Upsert, "r1", 0, json!({"a": 1}))]);
        let out = push(
            &mut conn,
            "o",
            &[
                mutation(Op::Patch, "r1", 7, json!({"a": 2})),
                mutation(Op::Patch, "r1", 8, json!({"a": 3})),
                mutation(Op::Upsert, "r2", 0, json!({"b": 1})),
            ],
        );
        match &out[0] {
            Outcome::Conflict { current } => {
                assert_eq!(current.version, 1);
                assert_eq!(current.data, obj(json!({"a": 1})));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(out[1], Outcome::Blocked);
        assert!(matches!(out[2], Outcome::Applied { version: 1, .. }));
        assert_eq!(counter(&conn, counters::CONFLICTS), 1);
    }

    #[test]
    fn rejections() {
        let mut conn = db();
        let mut bad_entity = mutation(Op::Upsert, "r", 0, json!({}));
        bad_entity.entity = "a;drop table records".into();
        let bad_id = mutation(Op::Upsert, "a\u{0}b", 0, json!({}));
        let no_payload = mutation(Op::Upsert, "r3", 0, Value::Null);
        let huge = mutation(Op::Upsert, "r4", 0, json!({"x": "y".repeat(limits::MAX_PAYLOAD_BYTES)}));
        let patch_missing = mutation(Op::Patch, "r5", 0, json!({"a": 1}));
        let delete_missing = mutation(Op::Delete, "r6", 0, Value::Null);
        let stale_missing = mutation(Op::Upsert, "r7", 3, json!({}));
        let out =
            push(&mut conn, "o", &[bad_entity, bad_id, no_payload, huge, patch_missing, delete_missing, stale_missing]);
        let codes: Vec<RejectCode> = out
            .iter()
            .map(|o| match o {
                Outcome::Rejected { code, .. } => *code,
                other => panic!("{other:?}"),
            })
            .collect();
        use RejectCode::*;
        assert_eq!(
            codes,
            [InvalidEntity, InvalidRecordId, InvalidPayload, PayloadTooLarge, NotFound, NotFound, NotFound]
        );
        assert_eq!(counter(&conn, counters::REJECTED), 7);
        assert_eq!(counter(&conn, counters::SEQ), 0);
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn tombstone_rules() {
        let mut conn = db();
        push(
            &mut conn,
            "o",
            &[mutation(Op::Upsert, "r", 0, json!({"a": 1})), mutation(Op::Delete, "r", 1, Value::Null)],
        );
        let out = push(
            &mut conn,
            "o",
            &[
                // Stale base against a tombstone: conflict showing the tombstone.
                mutation(Op::Upsert, "r", 1, json!({"a": 2})),
            ],
        );
        match &out[0] {
            Outcome::Conflict { current } => {
                assert!(current.deleted);
                assert_eq!(current.data, None);
                assert_eq!(current.version, 2);
            }
            other => panic!("{other:?}"),
        }
        let out = push(&mut conn, "o", &[mutation(Op::Patch, "r", 2, json!({"a": 2}))]);
        assert!(matches!(out[0], Outcome::Rejected { code: RejectCode::NotFound, .. }));
        let out = push(&mut conn, "o", &[mutation(Op::Delete, "r", 2, Value::Null)]);
        assert!(matches!(out[0], Outcome::Rejected { code: RejectCode::NotFound, .. }));
    }

    #[test]
    fn records_are_per_org() {
        let mut conn = db();
        push(&mut conn, "a", &[mutation(Op::Upsert, "r", 0, json!({"secret": 1}))]);
        // Org b's write to the same key creates its own record, no conflict.
        let out = push(&mut conn, "b", &[mutation(Op::Upsert, "r", 0, json!({"mine": 1}))]);
        assert!(matches!(out[0], Outcome::Applied { version: 1, .. }));
        let a = records::load(&conn, "a", "activity", "r").unwrap().unwrap();
        assert_eq!(a.data, obj(json!({"secret": 1})));
    }
}
