//! Reading records and the persistent counters in SQLite.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row};

use crate::apply::StoredRecord;
use crate::error::Result;
use crate::stats::{DumpRecord, Stats};
use crate::storage::ChangesPage;

/// Columns [`from_row`] expects, in order.
pub const RECORD_COLUMNS: &str = "entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time";

/// Reads a record selected with [`RECORD_COLUMNS`] starting at column
/// `offset`.
pub fn from_row(row: &Row<'_>, offset: usize) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        entity: row.get(offset)?,
        record_id: row.get(offset + 1)?,
        version: row.get(offset + 2)?,
        seq: row.get(offset + 3)?,
        deleted: row.get(offset + 4)?,
        data: row.get(offset + 5)?,
        edited_at: row.get(offset + 6)?,
        edited_by: row.get(offset + 7)?,
        server_time: row.get(offset + 8)?,
    })
}

/// The record `(org, entity, record_id)`, tombstones included.
pub fn load(conn: &Connection, org: &str, entity: &str, record_id: &str) -> Result<Option<StoredRecord>> {
    // A literal (not format!) so the hot path does not allocate the SQL.
    const SQL: &str = "SELECT entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time \
                       FROM records WHERE org = ?1 AND entity = ?2 AND record_id = ?3";
    Ok(conn.prepare_cached(SQL)?.query_row((org, entity, record_id), |r| from_row(r, 0)).optional()?)
}

pub fn pull(conn: &Connection, org: &str, since: u64, limit: u32) -> Result<ChangesPage> {
    // seq values are stored as SQLite integers (i64); a cursor beyond that
    // range simply has nothing after it.
    let since_sql = i64::try_from(since).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE org = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))?;
    // One row more than asked tells whether another page follows.
    let rows = stmt.query_map((org, since_sql, i64::from(limit) + 1), |r| from_row(r, 0))?;
    let mut changes = Vec::new();
    let mut has_more = false;
    for row in rows {
        if changes.len() == limit as usize {
            has_more = true;
            break;
        }
        changes.push(row?.into_remote()?);
    }
    let cursor = changes.last().map_or(since, |c| c.seq);
    Ok(ChangesPage { changes, cursor, has_more })
}

pub fn stats(conn: &Connection) -> Result<Stats> {
    let mut records = BTreeMap::new();
    let mut stmt =
        conn.prepare("SELECT entity, COUNT(*) FROM records WHERE deleted = 0 GROUP BY entity ORDER BY entity")?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))? {
        let (entity, n) = row?;
        records.insert(entity, n);
    }
    let tombstones = conn.query_row("SELECT COUNT(*) FROM records WHERE deleted = 1", [], |r| r.get(0))?;
    let distinct_applied_ids =
        conn.query_row("SELECT COUNT(*) FROM (SELECT DISTINCT org, mutation_id FROM applied_mutations)", [], |r| {
            r.get(0)
        })?;
    Ok(Stats {
        records,
        tombstones,
        mutations_applied: counters::get(conn, counters::APPLIED)?,
        distinct_applied_ids,
        mutations_duplicate: counters::get(conn, counters::DUPLICATE)?,
        conflicts: counters::get(conn, counters::CONFLICTS)?,
        rejected: counters::get(conn, counters::REJECTED)?,
    })
}

pub fn dump(conn: &Connection, org: Option<&str>) -> Result<Vec<DumpRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT org, {RECORD_COLUMNS} FROM records WHERE ?1 IS NULL OR org = ?1 ORDER BY org, entity, record_id"
    ))?;
    let rows = stmt.query_map([org], |r| Ok((r.get::<_, String>(0)?, from_row(r, 1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (org, row) = row?;
        out.push(DumpRecord { org, record: row.into_remote()? });
    }
    Ok(out)
}

/// Persistent counters kept in the `counters` table.
pub mod counters {
    use super::*;

    pub const SEQ: &str = "seq";
    pub const APPLIED: &str = "mutations_applied";
    pub const DUPLICATE: &str = "mutations_duplicate";
    pub const CONFLICTS: &str = "conflicts";
    pub const REJECTED: &str = "rejected";

    pub fn get(conn: &Connection, name: &str) -> Result<u64> {
        let mut stmt = conn.prepare_cached("SELECT value FROM counters WHERE name = ?1")?;
        Ok(stmt.query_row([name], |r| r.get(0))?)
    }

    pub fn set(conn: &Connection, name: &str, value: u64) -> Result<()> {
        conn.prepare_cached("UPDATE counters SET value = ?2 WHERE name = ?1")?.execute((name, value))?;
        Ok(())
    }

    pub fn add(conn: &Connection, name: &str, delta: u64) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        conn.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?.execute((name, delta))?;
        Ok(())
    }
}
