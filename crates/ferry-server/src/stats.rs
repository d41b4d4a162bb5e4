//! Operator views of the database: counters and a full dump.

use std::collections::BTreeMap;

use ferry_protocol::RemoteRecord;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::records::{self, counters, RECORD_COLUMNS};

/// `ferry-server stats --json`. Counters are totals over all organisations
/// since the database was created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// Live (not deleted) records per entity.
    pub records: BTreeMap<String, u64>,
    pub tombstones: u64,
    pub mutations_applied: u64,
    /// Distinct (org, mutation id) pairs in the idempotency table. Equal to
    /// `mutations_applied` unless a mutation was counted (applied) twice or
    /// applied without being remembered, so an operator or a test can check
    /// "nothing applied twice" through the CLI.
    pub distinct_applied_ids: u64,
    pub mutations_duplicate: u64,
    pub conflicts: u64,
    pub rejected: u64,
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
    // DISTINCT states the intent; the primary key makes it a plain count
    // today, and it stays right if the table ever gains a history column.
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

/// One line of `ferry-server dump`: a record and its organisation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DumpRecord {
    pub org: String,
    #[serde(flatten)]
    pub record: RemoteRecord,
}

/// Every record (tombstones included), sorted by org, entity, record id;
/// only `org`'s when given.
pub fn dump(conn: &Connection, org: Option<&str>) -> Result<Vec<DumpRecord>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT org, {RECORD_COLUMNS} FROM records WHERE ?1 IS NULL OR org = ?1
         ORDER BY org, entity, record_id"
    ))?;
    let rows = stmt.query_map([org], |r| Ok((r.get::<_, String>(0)?, records::from_row(r, 1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (org, row) = row?;
        out.push(DumpRecord { org, record: row.into_remote()? });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ferry_protocol::{Mutation, Op};
    use serde_json::json;

    use crate::ServerDb;

    fn upsert(record_id: &str) -> Mutation {
        Mutation {
            id: uuid::Uuid::new_v4(),
            entity: "activity".into(),
            record_id: record_id.into(),
            op: Op::Upsert,
            payload: json!({"title": record_id}).as_object().cloned(),
            base_version: 0,
            edited_at: 1,
        }
    }

    #[test]
    fn distinct_applied_ids_counts_what_the_server_remembers() {
        let dir = tempfile::tempdir().unwrap();
        let db = ServerDb::open(dir.path().join("s.db")).unwrap();
        let batch = vec![upsert("a"), upsert("b"), upsert("c")];
        db.with_conn(|c| crate::push::apply_batch(c, "org1", "ann", &batch)).unwrap();
        // The same ids again (a retry), and one in another organisation.
        db.with_conn(|c| crate::push::apply_batch(c, "org1", "ann", &batch)).unwrap();
        db.with_conn(|c| crate::push::apply_batch(c, "org2", "bob", &batch[..1])).unwrap();
        let s = db.stats().unwrap();
        assert_eq!((s.mutations_applied, s.distinct_applied_ids, s.mutations_duplicate), (4, 4, 3));

        // A mutation counted as applied but not remembered shows as a gap.
        db.with_conn(|c| {
            c.execute("DELETE FROM applied_mutations WHERE org = 'org2'", [])?;
            Ok(())
        })
        .unwrap();
        let s = db.stats().unwrap();
        assert_eq!((s.mutations_applied, s.distinct_applied_ids), (4, 3));
    }
}
