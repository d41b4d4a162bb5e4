//! Pull: the organisation's changes after a cursor.

use ferry_protocol::{PullResponse, RemoteRecord};
use rusqlite::Connection;

use crate::clock::now_ms;
use crate::error::Result;
use crate::records::{self, RECORD_COLUMNS};

/// Records of `org` changed after `since`, oldest change first, at most
/// `limit` of them. Each record appears once, at its latest version, because
/// its row carries the seq of its last change.
pub fn pull(conn: &Connection, org: &str, since: u64, limit: u32) -> Result<PullResponse> {
    // seq values are stored as SQLite integers (i64); a cursor beyond that
    // range simply has nothing after it.
    let since_sql = i64::try_from(since).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE org = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))?;
    // One row more than asked tells whether another page follows.
    let rows = stmt.query_map((org, since_sql, i64::from(limit) + 1), |r| records::from_row(r, 0))?;
    let mut changes: Vec<RemoteRecord> = Vec::new();
    let mut has_more = false;
    for row in rows {
        if changes.len() == limit as usize {
            has_more = true;
            break;
        }
        changes.push(row?.into_remote()?);
    }
    let cursor = changes.last().map_or(since, |c| c.seq);
    Ok(PullResponse { changes, cursor, has_more, server_time: now_ms() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_protocol::{Mutation, Op};
    use serde_json::json;
    use uuid::Uuid;

    fn upsert(id: &str, base: u64) -> Mutation {
        Mutation {
            id: Uuid::new_v4(),
            entity: "note".into(),
            record_id: id.into(),
            op: Op::Upsert,
            payload: json!({"id": id}).as_object().cloned(),
            base_version: base,
            edited_at: 0,
        }
    }

    #[test]
    fn pages_latest_versions_of_one_org() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::migrate(&mut conn).unwrap();
        let batch: Vec<_> = (0..5).map(|i| upsert(&format!("r{i}"), 0)).collect();
        crate::push::apply_batch(&mut conn, "o", "u", &batch).unwrap();
        crate::push::apply_batch(&mut conn, "x", "u", &[upsert("r9", 0)]).unwrap();
        // Update r0: it moves to the end of the sequence.
        crate::push::apply_batch(&mut conn, "o", "u", &[upsert("r0", 1)]).unwrap();

        let p1 = pull(&conn, "o", 0, 3).unwrap();
        let ids: Vec<_> = p1.changes.iter().map(|c| c.record_id.as_str()).collect();
        assert_eq!(ids, ["r1", "r2", "r3"]);
        assert!(p1.has_more);
        let p2 = pull(&conn, "o", p1.cursor, 3).unwrap();
        let ids: Vec<_> = p2.changes.iter().map(|c| c.record_id.as_str()).collect();
        assert_eq!(ids, ["r4", "r0"]);
        assert!(!p2.has_more);
        assert_eq!(p2.changes[1].version, 2);
        let p3 = pull(&conn, "o", p2.cursor, 3).unwrap();
        assert!(p3.changes.is_empty());
        assert_eq!(p3.cursor, p2.cursor);
        assert!(pull(&conn, "o", u64::MAX, 3).unwrap().changes.is_empty());
    }
}
