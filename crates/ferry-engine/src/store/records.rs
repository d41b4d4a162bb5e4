//! Records: the local write path (record + outbox entry in one transaction),
//! reads, bulk import, and applying remote state.

use ferry_protocol::{limits, validate_entity, validate_record_id, Op, RemoteRecord};
use rusqlite::{params, OptionalExtension, Transaction};
use uuid::Uuid;

use super::stamps::{self, Evidence};
use super::{apply_op, from_json, settings, to_json, Store};
use crate::clock::monotonic_now;
use crate::error::{EngineError, Result};
use crate::model::{Fields, LocalRecord};

/// A local write, before it is stored.
#[derive(Debug, Clone)]
pub struct WriteOp {
    pub entity: String,
    pub record_id: String,
    pub op: Op,
    pub payload: Option<Fields>,
}

impl WriteOp {
    /// Checks everything the server would reject for good, so bad input is
    /// refused at the door with a clear message instead of failing later.
    pub fn validate(&self) -> Result<()> {
        validate_entity(&self.entity).map_err(EngineError::Invalid)?;
        validate_record_id(&self.record_id).map_err(EngineError::Invalid)?;
        if let Some(p) = &self.payload {
            let size = serde_json::to_vec(p).map(|v| v.len()).unwrap_or(usize::MAX);
            if size > limits::MAX_PAYLOAD_BYTES {
                return Err(EngineError::Invalid(format!(
                    "record {}/{} is {size} bytes; the limit is {} bytes: split it or store large content elsewhere",
                    self.entity,
                    self.record_id,
                    limits::MAX_PAYLOAD_BYTES
                )));
            }
        }
        Ok(())
    }
}

impl Store {
    /// Applies one local write and appends its mutation, atomically.
    /// Returns the mutation id.
    pub fn write(&self, w: &WriteOp, edited_at: i64, now: i64) -> Result<Uuid> {
        w.validate()?;
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ev = stamps::evidence(&tx, now, &monotonic_now())?;
        let id = write_in(&tx, w, edited_at, &ev)?;
        tx.commit()?;
        Ok(id)
    }

    /// Applies many writes in one transaction: all or nothing.
    pub fn write_many(&self, writes: &[WriteOp], edited_at: i64, now: i64) -> Result<usize> {
        for (i, w) in writes.iter().enumerate() {
            w.validate().map_err(|e| EngineError::Invalid(format!("item {}: {e}", i + 1)))?;
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ev = stamps::evidence(&tx, now, &monotonic_now())?;
        for (i, w) in writes.iter().enumerate() {
            write_in(&tx, w, edited_at, &ev).map_err(|e| match e {
                EngineError::Invalid(m) | EngineError::NotFound(m) => {
                    EngineError::Invalid(format!("item {}: {m}", i + 1))
                }
                other => other,
            })?;
        }
        tx.commit()?;
        Ok(writes.len())
    }

    /// Applies writes from an iterator in one transaction, all or nothing,
    /// without holding them all in memory. An `Err` item aborts the lot.
    pub fn write_stream<I>(&self, writes: I, edited_at: i64, now: i64) -> Result<usize>
    where
        I: IntoIterator<Item = Result<WriteOp>>,
    {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ev = stamps::evidence(&tx, now, &monotonic_now())?;
        let mut n = 0;
        for w in writes {
            let w = w?;
            n += 1;
            let label = |m: String| EngineError::Invalid(format!("item {n}: {m}"));
            w.validate().map_err(|e| label(e.to_string()))?;
            write_in(&tx, &w, edited_at, &ev).map_err(|e| match e {
                EngineError::Invalid(m) | EngineError::NotFound(m) => label(m),
                other => other,
            })?;
        }
        tx.commit()?;
        Ok(n)
    }

    pub fn get(&self, entity: &str, id: &str) -> Result<Option<LocalRecord>> {
        let conn = self.conn();
        let rec = conn
            .query_row(
                "SELECT data, deleted, version, updated_at,
                        (SELECT count(*) FROM outbox o WHERE o.entity = r.entity AND o.record_id = r.id),
                        EXISTS(SELECT 1 FROM conflicts c WHERE c.entity = r.entity AND c.record_id = r.id)
                 FROM records r WHERE entity = ?1 AND id = ?2",
                params![entity, id],
                |r| {
                    Ok(LocalRecord {
                        entity: entity.to_string(),
                        id: id.to_string(),
                        data: from_json(r.get(0)?),
                        deleted: r.get(1)?,
                        version: r.get::<_, i64>(2)? as u64,
                        updated_at: r.get(3)?,
                        pending: r.get::<_, i64>(4)? as u64,
                        in_conflict: r.get(5)?,
                    })
                },
            )
            .optional()?;
        Ok(rec)
    }

    /// Live (not deleted) records of one entity, ordered by id.
    /// Live records of `entity` with ids after `after`, by id.
    pub fn list(&self, entity: &str, after: Option<&str>, limit: u32) -> Result<Vec<(String, Fields)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, data FROM records WHERE entity = ?1 AND deleted = 0 AND id > ?2
             ORDER BY id LIMIT ?3",
        )?;
        // Record ids are never empty, so "" is before every one.
        let rows = stmt
            .query_map(params![entity, after.unwrap_or(""), limit], |r| {
                Ok((r.get::<_, String>(0)?, from_json(r.get(1)?).unwrap_or_default()))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Shadow (last known server state) of a record: (version, data, edited_at).
    pub fn shadow(&self, entity: &str, id: &str) -> Result<Option<(u64, Option<Fields>, i64)>> {
        let conn = self.conn();
        Ok(conn
            .query_row(
                "SELECT version, shadow, shadow_edited_at FROM records WHERE entity = ?1 AND id = ?2",
                params![entity, id],
                |r| Ok((r.get::<_, i64>(0)? as u64, from_json(r.get(1)?), r.get(2)?)),
            )
            .optional()?)
    }

    /// Applies a page of remote changes and advances the pull cursor, in one
    /// transaction. Records with local changes still queued keep them (their
    /// conflict, if any, is settled on push). Returns how many were applied.
    pub fn apply_remote_page(&self, changes: &[RemoteRecord], cursor: u64, now: i64) -> Result<u64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut applied = 0;
        for rec in changes {
            match apply_remote_in(&tx, rec, now)? {
                RemoteApplied::Applied => applied += 1,
                // The local copy stays as it is until its queued edits are
                // settled; then it must be re-read, because the cursor moves
                // past this version now.
                RemoteApplied::SkippedQueued => mark_refetch(&tx, &rec.entity, &rec.record_id)?,
                RemoteApplied::AlreadyHave => {}
            }
        }
        settings::put(&tx, settings::PULL_CURSOR, &cursor)?;
        tx.commit()?;
        Ok(applied)
    }

    /// Applies one record fetched from the server (see `refetch`).
    pub fn apply_remote(&self, rec: &RemoteRecord, now: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let outcome = apply_remote_in(&tx, rec, now)?;
        if outcome != RemoteApplied::SkippedQueued {
            tx.execute("DELETE FROM refetch WHERE entity = ?1 AND id = ?2", params![rec.entity, rec.record_id])?;
        }
        tx.commit()?;
        Ok(outcome == RemoteApplied::Applied)
    }

    pub fn refetch_list(&self, limit: u32) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        // Records with queued edits wait: their conflict is settled first.
        let mut stmt = conn.prepare(
            "SELECT f.entity, f.id FROM refetch f
             WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.entity = f.entity AND o.record_id = f.id)
             LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Whether this data dir holds any record or queued change.
    pub fn get_any_record(&self) -> Result<bool> {
        Ok(self
            .conn()
            .query_row("SELECT EXISTS(SELECT 1 FROM records) OR EXISTS(SELECT 1 FROM outbox)", [], |r| r.get(0))?)
    }

    pub fn refetch_done(&self, entity: &str, id: &str) -> Result<()> {
        self.conn().execute("DELETE FROM refetch WHERE entity = ?1 AND id = ?2", params![entity, id])?;
        Ok(())
    }
}

pub(super) fn write_in(tx: &Transaction, w: &WriteOp, edited_at: i64, ev: &Evidence) -> Result<Uuid> {
    let now = ev.local_at;
    let current: Option<(Option<String>, bool, i64)> = tx
        .prepare_cached("SELECT data, deleted, version FROM records WHERE entity = ?1 AND id = ?2")?
        .query_row(params![w.entity, w.record_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (current_data, exists_live, version) = match current {
        Some((data, deleted, version)) => (from_json(data), !deleted, version),
        None => (None, false, 0),
    };
    if matches!(w.op, Op::Patch | Op::Delete) && !exists_live {
        let (entity, id) = (&w.entity, &w.record_id);
        return Err(EngineError::NotFound(match w.op {
            Op::Delete => format!(
                "no record {entity}/{id} here to delete (already deleted, or not fetched yet): \
                 see `ferry list {entity}`, or `ferry sync` to fetch the latest"
            ),
            _ => format!("no record {entity}/{id} here to patch; use `put` to create it"),
        }));
    }
    let new_data = apply_op(current_data, w.op, w.payload.as_ref());
    tx.prepare_cached(
        "INSERT INTO records(entity, id, data, deleted, version, updated_at)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)
         ON CONFLICT(entity, id) DO UPDATE SET data = excluded.data, deleted = excluded.deleted,
             updated_at = excluded.updated_at",
    )?
    .execute(params![w.entity, w.record_id, to_json(&new_data), new_data.is_none(), now])?;
    // Time-ordered (v7): ids of one client grow, so the outbox's and the
    // server's id indexes append instead of inserting at random.
    let id = Uuid::now_v7();
    tx.prepare_cached(
        "INSERT INTO outbox(id, entity, record_id, op, payload, base_version, edited_at,
                            stamp_local_at, stamp_domain, stamp_mono_ms, stamp_offset_known)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id.to_string(),
        w.entity,
        w.record_id,
        w.op.as_str(),
        to_json(&w.payload),
        version,
        edited_at,
        ev.local_at,
        ev.domain,
        ev.mono_ms,
        ev.offset_known
    ])?;
    Ok(id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RemoteApplied {
    Applied,
    /// Local edits are queued for this record: left alone.
    SkippedQueued,
    /// The local copy is this version or newer.
    AlreadyHave,
}

pub(super) fn mark_refetch(tx: &Transaction, entity: &str, id: &str) -> Result<()> {
    tx.prepare_cached("INSERT OR IGNORE INTO refetch(entity, id) VALUES (?1, ?2)")?.execute(params![entity, id])?;
    Ok(())
}

pub(super) fn apply_remote_in(tx: &Transaction, rec: &RemoteRecord, now: i64) -> Result<RemoteApplied> {
    let queued: bool = tx
        .prepare_cached("SELECT EXISTS(SELECT 1 FROM outbox WHERE entity = ?1 AND record_id = ?2)")?
        .query_row(params![rec.entity, rec.record_id], |r| r.get(0))?;
    if queued {
        // Local edits win the right to be pushed; the server will tell us
        // about the conflict and the resolver decides. Never overwrite here.
        return Ok(RemoteApplied::SkippedQueued);
    }
    let known: Option<i64> = tx
        .prepare_cached("SELECT version FROM records WHERE entity = ?1 AND id = ?2")?
        .query_row(params![rec.entity, rec.record_id], |r| r.get(0))
        .optional()?;
    if known.is_some_and(|v| v as u64 >= rec.version) {
        return Ok(RemoteApplied::AlreadyHave); // usually our own push coming back
    }
    let data = if rec.deleted { None } else { rec.data.clone() };
    let json = to_json(&data);
    tx.prepare_cached(
        "INSERT INTO records(entity, id, data, deleted, version, shadow, shadow_edited_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?3, ?6, ?7)
         ON CONFLICT(entity, id) DO UPDATE SET data = excluded.data, deleted = excluded.deleted,
             version = excluded.version, shadow = excluded.shadow,
             shadow_edited_at = excluded.shadow_edited_at, updated_at = excluded.updated_at",
    )?
    .execute(params![rec.entity, rec.record_id, json, rec.deleted, rec.version as i64, rec.edited_at, now])?;
    Ok(RemoteApplied::Applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: serde_json::Value) -> Fields {
        v.as_object().unwrap().clone()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    #[test]
    fn write_creates_record_and_outbox_entry_together() {
        let (_d, s) = store();
        let w = WriteOp {
            entity: "activity".into(),
            record_id: "a1".into(),
            op: Op::Upsert,
            payload: Some(fields(json!({"x": 1}))),
        };
        s.write(&w, 10, 10).unwrap();
        let r = s.get("activity", "a1").unwrap().unwrap();
        assert_eq!(r.data, Some(fields(json!({"x": 1}))));
        assert_eq!(r.pending, 1);
        assert_eq!(s.counts().unwrap().pending, 1);
    }

    #[test]
    fn patch_of_missing_record_is_refused_and_nothing_queued() {
        let (_d, s) = store();
        let w = WriteOp {
            entity: "activity".into(),
            record_id: "nope".into(),
            op: Op::Patch,
            payload: Some(Fields::new()),
        };
        assert!(matches!(s.write(&w, 1, 1), Err(EngineError::NotFound(_))));
        assert_eq!(s.counts().unwrap().pending, 0);
    }

    #[test]
    fn bad_entity_is_refused() {
        let (_d, s) = store();
        let w =
            WriteOp { entity: "Bad Name".into(), record_id: "x".into(), op: Op::Upsert, payload: Some(Fields::new()) };
        assert!(matches!(s.write(&w, 1, 1), Err(EngineError::Invalid(_))));
    }

    #[test]
    fn write_many_is_all_or_nothing() {
        let (_d, s) = store();
        let good = WriteOp { entity: "a".into(), record_id: "1".into(), op: Op::Upsert, payload: Some(Fields::new()) };
        let bad = WriteOp { entity: "a".into(), record_id: "2".into(), op: Op::Patch, payload: Some(Fields::new()) };
        let err = s.write_many(&[good.clone(), bad], 1, 1).unwrap_err();
        assert!(err.to_string().contains("item 2"), "{err}");
        assert!(s.get("a", "1").unwrap().is_none());
    }

    #[test]
    fn remote_changes_skip_records_with_queued_edits() {
        let (_d, s) = store();
        let w = WriteOp {
            entity: "a".into(),
            record_id: "1".into(),
            op: Op::Upsert,
            payload: Some(fields(json!({"mine": true}))),
        };
        s.write(&w, 1, 1).unwrap();
        let remote = RemoteRecord {
            entity: "a".into(),
            record_id: "1".into(),
            version: 3,
            seq: 9,
            deleted: false,
            data: Some(fields(json!({"theirs": true}))),
            edited_at: 5,
            edited_by: "u".into(),
            server_time: 5,
        };
        assert_eq!(s.apply_remote_page(std::slice::from_ref(&remote), 9, 5).unwrap(), 0);
        assert_eq!(s.get("a", "1").unwrap().unwrap().data, Some(fields(json!({"mine": true}))));
        let other = RemoteRecord { record_id: "2".into(), ..remote };
        assert_eq!(s.apply_remote_page(&[other], 10, 5).unwrap(), 1);
        assert_eq!(s.get("a", "2").unwrap().unwrap().version, 3);
        assert_eq!(s.setting(settings::PULL_CURSOR).unwrap(), Some(10));
    }
}
