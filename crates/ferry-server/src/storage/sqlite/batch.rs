//! Applying a push batch in SQLite: gather, plan, write, in one IMMEDIATE
//! transaction (any error rolls all of it back).

use ferry_protocol::Mutation;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::records::{self, counters};
use crate::apply::{self, AppliedResult, BatchInputs, BatchOutcome, SeqStart};
use crate::error::Result;

pub fn apply(
    conn: &mut Connection,
    org: &str,
    user: &str,
    mutations: &[Mutation],
    rules: &apply::Rules,
    now: i64,
) -> Result<BatchOutcome> {
    // IMMEDIATE takes the write lock up front, so the batch never fails
    // half-way with SQLITE_BUSY on its first write.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let start = SeqStart { counter: counters::get(&tx, counters::SEQ)?, org_latest: org_latest_seq(&tx, org)? };
    let mut inputs = BatchInputs::default();
    {
        let mut find = tx.prepare_cached(
            "SELECT version, seq, server_time FROM applied_mutations WHERE org = ?1 AND mutation_id = ?2",
        )?;
        for id in apply::mutation_ids(mutations) {
            let found = find
                .query_row((org, id.hyphenated().to_string()), |r| {
                    Ok(AppliedResult { version: r.get(0)?, seq: r.get(1)?, server_time: r.get(2)? })
                })
                .optional()?;
            if let Some(result) = found {
                inputs.applied.insert(id, result);
            }
        }
    }
    for key in apply::touched_keys(mutations) {
        if let Some(record) = records::load(&tx, org, &key.0, &key.1)? {
            inputs.records.insert(key, record);
        }
    }

    let plan = apply::plan_batch(user, mutations, inputs, start, rules, now)?;

    {
        let mut write = tx.prepare_cached(
            "INSERT INTO records (org, entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (org, entity, record_id) DO UPDATE SET
                 version = excluded.version, seq = excluded.seq, deleted = excluded.deleted,
                 data = excluded.data, edited_at = excluded.edited_at,
                 edited_by = excluded.edited_by, server_time = excluded.server_time",
        )?;
        for r in &plan.records {
            write.execute(rusqlite::params![
                org,
                r.entity,
                r.record_id,
                r.version,
                r.seq,
                r.deleted,
                r.data,
                r.edited_at,
                r.edited_by,
                r.server_time,
            ])?;
        }
        let mut remember = tx.prepare_cached(
            "INSERT INTO applied_mutations (org, mutation_id, entity, record_id, version, seq, server_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for a in &plan.applied {
            remember.execute(rusqlite::params![
                org,
                a.mutation_id.hyphenated().to_string(),
                a.entity,
                a.record_id,
                a.result.version,
                a.result.seq,
                a.result.server_time
            ])?;
        }
    }
    let t = plan.outcome.tally;
    counters::set(&tx, counters::SEQ, plan.last_seq)?;
    counters::add(&tx, counters::APPLIED, t.applied)?;
    counters::add(&tx, counters::DUPLICATE, t.duplicate)?;
    counters::add(&tx, counters::CONFLICTS, t.conflict)?;
    counters::add(&tx, counters::REJECTED, t.rejected)?;
    tx.commit()?;
    Ok(plan.outcome)
}

/// The seq of the organisation's latest change (0 if none): one step down
/// the `(org, seq)` index.
fn org_latest_seq(conn: &Connection, org: &str) -> Result<u64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM records WHERE org = ?1")?
        .query_row([org], |r| r.get::<_, i64>(0))? as u64)
}
