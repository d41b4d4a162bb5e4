//! Applying a push batch in PostgreSQL: lock the organisation, gather,
//! plan, write, commit — a handful of round trips whatever the batch size
//! (arrays in, `unnest` out).

use std::collections::HashMap;

use deadpool_postgres::{GenericClient, Object};
use ferry_protocol::Mutation;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::error::PgError;
use super::records::{from_row, RECORD_COLUMNS};
use crate::apply::{self, AppliedResult, BatchInputs, BatchOutcome, SeqStart};
use crate::error::Result;

pub async fn apply(
    mut c: Object,
    org: &str,
    user: &str,
    mutations: &[Mutation],
    rules: &apply::Rules,
    now: i64,
) -> Result<Result<BatchOutcome>, PgError> {
    let tx = c.transaction().await?;
    // The organisation's lock, held to the commit: its batches apply one at
    // a time on every node, so seqs are taken in commit order and a pull
    // never sees seq 42 while 41 is still to commit (docs/protocol.md).
    let lock = tx
        .prepare_cached(
            "INSERT INTO orgs (org) VALUES ($1) ON CONFLICT (org) DO UPDATE SET org = excluded.org RETURNING seq",
        )
        .await?;
    let seq: i64 = tx.query_one(&lock, &[&org]).await?.get(0);
    let start = SeqStart { counter: seq as u64, org_latest: seq as u64 };
    if let Some(delay) = test_commit_delay() {
        // Test only: a slow batch holding the lock (see the skipped-change
        // test in tests/tests/multinode.rs).
        tokio::time::sleep(delay).await;
    }

    let ids = apply::mutation_ids(mutations);
    let keys = apply::touched_keys(mutations);
    let (entities, record_ids): (Vec<&str>, Vec<&str>) = keys.iter().map(|(e, r)| (e.as_str(), r.as_str())).unzip();
    let find_applied = tx
        .prepare_cached(
            "SELECT mutation_id, version, seq, server_time FROM applied_mutations
             WHERE org = $1 AND mutation_id = ANY($2)",
        )
        .await?;
    let find_records = tx
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records
             WHERE org = $1 AND (entity, record_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))"
        ))
        .await?;
    // Both lookups in flight at once (tokio-postgres pipelines them).
    let applied_params: [&(dyn ToSql + Sync); 2] = [&org, &ids];
    let record_params: [&(dyn ToSql + Sync); 3] = [&org, &entities, &record_ids];
    let (applied_rows, record_rows) =
        futures::try_join!(tx.query(&find_applied, &applied_params), tx.query(&find_records, &record_params))?;
    let mut inputs = BatchInputs { applied: HashMap::with_capacity(applied_rows.len()), records: HashMap::new() };
    for r in applied_rows {
        let id: Uuid = r.get(0);
        inputs.applied.insert(
            id,
            AppliedResult { version: r.get::<_, i64>(1) as u64, seq: r.get::<_, i64>(2) as u64, server_time: r.get(3) },
        );
    }
    for r in record_rows {
        let record = from_row(&r, 0);
        inputs.records.insert(record.key(), record);
    }

    let plan = match apply::plan_batch(user, mutations, inputs, start, rules, now) {
        Ok(plan) => plan,
        Err(e) => return Ok(Err(e)),
    };

    let n = plan.records.len();
    let mut cols = RecordColumns::with_capacity(n);
    for r in &plan.records {
        cols.push(r);
    }
    let write_records = tx
        .prepare_cached(
            "INSERT INTO records (org, entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::bool[], $7::text[],
                                      $8::int8[], $9::text[], $10::int8[])
             ON CONFLICT (org, entity, record_id) DO UPDATE SET
                 version = excluded.version, seq = excluded.seq, deleted = excluded.deleted,
                 data = excluded.data, edited_at = excluded.edited_at,
                 edited_by = excluded.edited_by, server_time = excluded.server_time",
        )
        .await?;
    let remember = tx
        .prepare_cached(
            "INSERT INTO applied_mutations (org, mutation_id, entity, record_id, version, seq, server_time)
             SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int8[], $6::int8[], $7::int8[])",
        )
        .await?;
    let count = tx
        .prepare_cached(
            "UPDATE orgs SET seq = $2, mutations_applied = mutations_applied + $3,
                 mutations_duplicate = mutations_duplicate + $4, conflicts = conflicts + $5,
                 rejected = rejected + $6
             WHERE org = $1",
        )
        .await?;
    let a = &plan.applied;
    let applied_ids: Vec<Uuid> = a.iter().map(|a| a.mutation_id).collect();
    let applied_entities: Vec<&str> = a.iter().map(|a| a.entity.as_str()).collect();
    let applied_records: Vec<&str> = a.iter().map(|a| a.record_id.as_str()).collect();
    let applied_versions: Vec<i64> = a.iter().map(|a| a.result.version as i64).collect();
    let applied_seqs: Vec<i64> = a.iter().map(|a| a.result.seq as i64).collect();
    let applied_times: Vec<i64> = a.iter().map(|a| a.result.server_time).collect();
    let t = plan.outcome.tally;
    let (last_seq, applied_n, duplicate_n, conflict_n, rejected_n) =
        (plan.last_seq as i64, t.applied as i64, t.duplicate as i64, t.conflict as i64, t.rejected as i64);
    let count_params: [&(dyn ToSql + Sync); 6] = [&org, &last_seq, &applied_n, &duplicate_n, &conflict_n, &rejected_n];
    futures::try_join!(
        async {
            if n > 0 {
                tx.execute(
                    &write_records,
                    &[
                        &org,
                        &cols.entity,
                        &cols.record_id,
                        &cols.version,
                        &cols.seq,
                        &cols.deleted,
                        &cols.data,
                        &cols.edited_at,
                        &cols.edited_by,
                        &cols.server_time,
                    ],
                )
                .await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        },
        async {
            if !applied_ids.is_empty() {
                tx.execute(
                    &remember,
                    &[
                        &org,
                        &applied_ids,
                        &applied_entities,
                        &applied_records,
                        &applied_versions,
                        &applied_seqs,
                        &applied_times,
                    ],
                )
                .await?;
            }
            Ok(())
        },
        tx.execute(&count, &count_params),
        async {
            if n > 0 {
                // Delivered at commit to every node's listener
                // (listen.rs), which wakes its waiting pulls.
                tx.execute("SELECT pg_notify($1, $2)", &[&super::listen::CHANNEL, &org]).await?;
            }
            Ok(())
        },
    )?;
    tx.commit().await?;
    Ok(Ok(plan.outcome))
}

/// The plan's record rows as column arrays for `unnest`.
struct RecordColumns<'a> {
    entity: Vec<&'a str>,
    record_id: Vec<&'a str>,
    version: Vec<i64>,
    seq: Vec<i64>,
    deleted: Vec<bool>,
    data: Vec<Option<&'a str>>,
    edited_at: Vec<i64>,
    edited_by: Vec<&'a str>,
    server_time: Vec<i64>,
}

impl<'a> RecordColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            entity: Vec::with_capacity(n),
            record_id: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            deleted: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            edited_at: Vec::with_capacity(n),
            edited_by: Vec::with_capacity(n),
            server_time: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, r: &'a apply::StoredRecord) {
        self.entity.push(&r.entity);
        self.record_id.push(&r.record_id);
        self.version.push(r.version as i64);
        self.seq.push(r.seq as i64);
        self.deleted.push(r.deleted);
        self.data.push(r.data.as_deref());
        self.edited_at.push(r.edited_at);
        self.edited_by.push(&r.edited_by);
        self.server_time.push(r.server_time);
    }
}

/// `FERRY_SERVER_TEST_COMMIT_DELAY_MS`: test only. Each push sleeps this
/// long after taking its organisation's lock, so a test can make a batch
/// slow to commit while others arrive.
fn test_commit_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var("FERRY_SERVER_TEST_COMMIT_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(std::time::Duration::from_millis)
    })
}
