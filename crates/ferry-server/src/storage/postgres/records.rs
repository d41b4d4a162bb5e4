//! Reading records and counters in PostgreSQL.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::error::PgError;
use crate::apply::StoredRecord;
use crate::error::Result;
use crate::stats::{DumpRecord, Stats};
use crate::storage::ChangesPage;

/// Columns [`from_row`] expects, in order.
pub const RECORD_COLUMNS: &str = "entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time";

pub fn from_row(row: &Row, offset: usize) -> StoredRecord {
    StoredRecord {
        entity: row.get(offset),
        record_id: row.get(offset + 1),
        version: row.get::<_, i64>(offset + 2) as u64,
        seq: row.get::<_, i64>(offset + 3) as u64,
        deleted: row.get(offset + 4),
        data: row.get(offset + 5),
        edited_at: row.get(offset + 6),
        edited_by: row.get(offset + 7),
        server_time: row.get(offset + 8),
    }
}

pub async fn load(
    c: &impl GenericClient,
    org: &str,
    entity: &str,
    record_id: &str,
) -> Result<Option<StoredRecord>, PgError> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE org = $1 AND entity = $2 AND record_id = $3"
        ))
        .await?;
    Ok(c.query_opt(&stmt, &[&org, &entity, &record_id]).await?.map(|r| from_row(&r, 0)))
}

/// One statement, one snapshot. The organisation lock of pushes makes the
/// changes any snapshot shows a prefix of the sequence (docs/protocol.md).
pub async fn pull(c: &impl GenericClient, org: &str, since: u64, limit: u32) -> Result<Result<ChangesPage>, PgError> {
    let since_sql = i64::try_from(since).unwrap_or(i64::MAX);
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE org = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .await?;
    // One row more than asked tells whether another page follows.
    let rows = c.query(&stmt, &[&org, &since_sql, &(i64::from(limit) + 1)]).await?;
    let has_more = rows.len() > limit as usize;
    let mut changes = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.iter().take(limit as usize) {
        match from_row(row, 0).into_remote() {
            Ok(r) => changes.push(r),
            Err(e) => return Ok(Err(e)),
        }
    }
    let cursor = changes.last().map_or(since, |c| c.seq);
    Ok(Ok(ChangesPage { changes, cursor, has_more }))
}

pub async fn stats(c: &impl GenericClient) -> Result<Stats, PgError> {
    let mut stats = Stats::default();
    for row in c.query("SELECT entity, count(*) FROM records WHERE NOT deleted GROUP BY entity", &[]).await? {
        let n: i64 = row.get(1);
        stats.records.insert(row.get(0), n as u64);
    }
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM records WHERE deleted),
                    (SELECT count(*) FROM applied_mutations),
                    coalesce(sum(mutations_applied), 0)::int8, coalesce(sum(mutations_duplicate), 0)::int8,
                    coalesce(sum(conflicts), 0)::int8, coalesce(sum(rejected), 0)::int8
             FROM orgs",
            &[],
        )
        .await?;
    let base: BTreeMap<String, i64> =
        c.query("SELECT name, value FROM counter_base", &[]).await?.iter().map(|r| (r.get(0), r.get(1))).collect();
    let total = |i: usize, name: &str| (row.get::<_, i64>(i) + base.get(name).copied().unwrap_or(0)) as u64;
    stats.tombstones = row.get::<_, i64>(0) as u64;
    stats.distinct_applied_ids = row.get::<_, i64>(1) as u64;
    stats.mutations_applied = total(2, "mutations_applied");
    stats.mutations_duplicate = total(3, "mutations_duplicate");
    stats.conflicts = total(4, "conflicts");
    stats.rejected = total(5, "rejected");
    Ok(stats)
}

pub async fn dump(c: &impl GenericClient, org: Option<&str>) -> Result<Result<Vec<DumpRecord>>, PgError> {
    let rows = c
        .query(
            &format!(
                "SELECT org, {RECORD_COLUMNS} FROM records WHERE $1::text IS NULL OR org = $1
                 ORDER BY org COLLATE \"C\", entity COLLATE \"C\", record_id COLLATE \"C\""
            ),
            &[&org],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        match from_row(&row, 1).into_remote() {
            Ok(record) => out.push(DumpRecord { org: row.get(0), record }),
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(out))
}
