//! Reading record rows and the persistent counters.

use ferry_protocol::RemoteRecord;
use rusqlite::{Connection, OptionalExtension, Row};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Columns [`from_row`] expects, in order (also spelled out in [`load`]).
pub const RECORD_COLUMNS: &str = "entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time";

/// Reads a record selected with [`RECORD_COLUMNS`] starting at column
/// `offset`.
pub fn from_row(row: &Row<'_>, offset: usize) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
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

/// A record row as stored, with `data` still as JSON text.
pub struct StoredRow {
    pub entity: String,
    pub record_id: String,
    pub version: u64,
    pub seq: u64,
    pub deleted: bool,
    pub data: Option<String>,
    pub edited_at: i64,
    pub edited_by: String,
    pub server_time: i64,
}

impl StoredRow {
    pub fn into_remote(self) -> Result<RemoteRecord> {
        let data = match (self.deleted, self.data) {
            (true, _) | (false, None) => None,
            (false, Some(text)) => Some(parse_object(&text)?),
        };
        Ok(RemoteRecord {
            entity: self.entity,
            record_id: self.record_id,
            version: self.version,
            seq: self.seq,
            deleted: self.deleted,
            data,
            edited_at: self.edited_at,
            edited_by: self.edited_by,
            server_time: self.server_time,
        })
    }
}

fn parse_object(text: &str) -> Result<Map<String, Value>> {
    serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("record data is not a JSON object: {e}")))
}

/// The record `(org, entity, record_id)`, tombstones included.
pub fn load(conn: &Connection, org: &str, entity: &str, record_id: &str) -> Result<Option<RemoteRecord>> {
    // A literal (not format!) so the hot path does not allocate the SQL.
    const SQL: &str = "SELECT entity, record_id, version, seq, deleted, data, edited_at, edited_by, \
                       server_time FROM records WHERE org = ?1 AND entity = ?2 AND record_id = ?3";
    let mut stmt = conn.prepare_cached(SQL)?;
    let row = stmt.query_row((org, entity, record_id), |r| from_row(r, 0)).optional()?;
    row.map(StoredRow::into_remote).transpose()
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
        let mut stmt = conn.prepare_cached("UPDATE counters SET value = ?2 WHERE name = ?1")?;
        stmt.execute((name, value))?;
        Ok(())
    }

    pub fn add(conn: &Connection, name: &str, delta: u64) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        let mut stmt = conn.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?;
        stmt.execute((name, delta))?;
        Ok(())
    }
}
