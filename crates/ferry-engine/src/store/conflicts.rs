//! Conflicts parked for the user, and the history of resolutions.

use ferry_protocol::{Op, RemoteRecord};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

use super::settings::{self, TitleFields};
use super::{from_json, stamps, to_json, Store};
use crate::clock::monotonic_now;
use crate::error::{EngineError, Result};
use crate::model::{ConflictPolicy, ConflictView, Fields, Problem, ResolutionEntry, SyncRun};

/// What to write when a conflict is settled (by policy or by the user).
pub struct Settle<'a> {
    pub entity: &'a str,
    pub record_id: &'a str,
    pub remote: &'a RemoteRecord,
    /// The record's value after resolution (`None`: deleted).
    pub result: Option<Fields>,
    /// Edit time to stamp on the mutation that uploads `result`.
    pub edited_at: i64,
    pub policy: ConflictPolicy,
    pub winner: &'a str,
    pub reason: String,
    pub local: Option<Fields>,
    /// The local side lost something the user may want back.
    pub restorable: bool,
    /// The record's last queued mutation when the local side was read
    /// ([`Store::queue_head`]): if another write came since, the decision
    /// was made without it and is not applied.
    pub judged_up_to: i64,
}

/// What [`Store::settle_conflict_at`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Settled; the id of the mutation that uploads the result, if any.
    Done(Option<Uuid>),
    /// A local write to the record came after its local side was read (by
    /// another process, say): nothing was changed; judge again.
    LocalChanged,
}

fn queue_head(conn: &rusqlite::Connection, entity: &str, record_id: &str) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM outbox WHERE entity = ?1 AND record_id = ?2")?
        .query_row(params![entity, record_id], |r| r.get(0))?)
}

impl Store {
    /// Parks a conflict: the record's head mutation moves to `conflict` and
    /// its later mutations wait behind it.
    pub fn park_conflict(&self, head_seq: i64, view: &ConflictView) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("UPDATE outbox SET state = 'conflict', attempts = attempts + 1, last_error = 'conflict: the server has a newer version' WHERE seq = ?1", [head_seq])?;
        tx.execute(
            "INSERT INTO conflicts(id, entity, record_id, base, local, remote, remote_version,
                 remote_edited_at, remote_edited_by, local_edited_at, detected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT(entity, record_id) DO UPDATE SET base = excluded.base, local = excluded.local,
                 remote = excluded.remote, remote_version = excluded.remote_version,
                 remote_edited_at = excluded.remote_edited_at, remote_edited_by = excluded.remote_edited_by,
                 local_edited_at = excluded.local_edited_at, detected_at = excluded.detected_at",
            params![
                view.id,
                view.entity,
                view.record_id,
                to_json(&view.base),
                to_json(&view.local),
                to_json(&view.remote),
                view.remote_version as i64,
                view.remote_edited_at,
                view.remote_edited_by,
                view.local_edited_at,
                view.detected_at
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// [`Store::settle_conflict_at`] with the decision time taken from `s`:
    /// a user's decision is stamped as an edit made the moment it was taken
    /// (`edited_at`, server clock); for an automatic one `now` is used.
    pub fn settle_conflict(&self, s: &Settle<'_>, now: i64) -> Result<Settled> {
        let decided_at = if s.policy == ConflictPolicy::Manual { s.edited_at } else { now };
        self.settle_conflict_at(s, now, decided_at)
    }

    /// Settles a record's conflict in one transaction: every queued mutation
    /// of the record is superseded, the record takes `result` on top of the
    /// server's version, a new mutation uploads `result` if it differs from
    /// the server's, and the decision goes into the history with the open
    /// conflict it closed (if any) and the id of the mutation it queued.
    /// `now` is the local clock (the record's update time); `decided_at` is
    /// when the decision was taken, on the server clock (the history's time).
    /// Returns the new mutation's id, if one was queued — or, if the record
    /// got another local write after `s.judged_up_to`, changes nothing.
    pub fn settle_conflict_at(&self, s: &Settle<'_>, now: i64, decided_at: i64) -> Result<Settled> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if queue_head(&tx, s.entity, s.record_id)? != s.judged_up_to {
            return Ok(Settled::LocalChanged);
        }
        let conflict_id: Option<String> = tx
            .query_row(
                "SELECT id FROM conflicts WHERE entity = ?1 AND record_id = ?2",
                params![s.entity, s.record_id],
                |r| r.get(0),
            )
            .optional()?;
        let superseded: Vec<String> = {
            let mut stmt = tx.prepare("SELECT id FROM outbox WHERE entity = ?1 AND record_id = ?2 ORDER BY seq")?;
            let ids = stmt
                .query_map(params![s.entity, s.record_id], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            ids
        };
        tx.execute("DELETE FROM outbox WHERE entity = ?1 AND record_id = ?2", params![s.entity, s.record_id])?;
        tx.execute("DELETE FROM conflicts WHERE entity = ?1 AND record_id = ?2", params![s.entity, s.record_id])?;
        let remote_data = if s.remote.deleted { None } else { s.remote.data.clone() };
        tx.execute(
            "INSERT INTO records(entity, id, data, deleted, version, shadow, shadow_edited_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(entity, id) DO UPDATE SET data = excluded.data, deleted = excluded.deleted,
                 version = excluded.version, shadow = excluded.shadow,
                 shadow_edited_at = excluded.shadow_edited_at, updated_at = excluded.updated_at",
            params![
                s.entity,
                s.record_id,
                to_json(&s.result),
                s.result.is_none(),
                s.remote.version as i64,
                to_json(&remote_data),
                s.remote.edited_at,
                now
            ],
        )?;
        let new_id = if s.result != remote_data {
            // Time-ordered (v7): ids of one client grow, so the outbox's and the
            // server's id indexes append instead of inserting at random.
            let id = Uuid::now_v7();
            let (op, payload) = match &s.result {
                Some(f) => ("upsert", Some(f.clone())),
                None => ("delete", None),
            };
            // A user's decision is an edit made now, stamped like any write
            // (and re-stamped like one); an automatic result carries an edit
            // time already judged, which must not move.
            let ev = match s.policy {
                ConflictPolicy::Manual => Some(stamps::evidence(&tx, now, &monotonic_now())?),
                _ => None,
            };
            tx.execute(
                "INSERT INTO outbox(id, entity, record_id, op, payload, base_version, edited_at,
                                    stamp_local_at, stamp_domain, stamp_mono_ms, stamp_offset_known)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id.to_string(),
                    s.entity,
                    s.record_id,
                    op,
                    to_json(&payload),
                    s.remote.version as i64,
                    s.edited_at,
                    ev.map(|e| e.local_at),
                    ev.map(|e| e.domain),
                    ev.map(|e| e.mono_ms),
                    ev.is_none_or(|e| e.offset_known)
                ],
            )?;
            Some(id)
        } else {
            None
        };
        tx.execute(
            "INSERT INTO history(entity, record_id, policy, winner, reason, local, remote, result,
                                 superseded, at, restorable, conflict_id, upload_mutation_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                s.entity,
                s.record_id,
                s.policy.as_str(),
                s.winner,
                s.reason,
                to_json(&s.local),
                to_json(&remote_data),
                to_json(&s.result),
                serde_json::to_string(&superseded).unwrap_or_else(|_| "[]".into()),
                decided_at,
                s.restorable,
                conflict_id,
                new_id.map(|id| id.to_string())
            ],
        )?;
        tx.commit()?;
        Ok(Settled::Done(new_id))
    }

    /// The record's last queued mutation (0: none): read it before reading
    /// the local side of a conflict, pass it as [`Settle::judged_up_to`].
    pub fn queue_head(&self, entity: &str, record_id: &str) -> Result<i64> {
        queue_head(&self.conn(), entity, record_id)
    }

    /// Open conflicts, oldest first; the first `limit` of them when given.
    /// Open conflicts oldest first, after `(detected_at, id)` when given.
    pub fn open_conflicts(&self, after: Option<(i64, String)>, limit: u32) -> Result<Vec<ConflictView>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.entity, c.record_id, c.base,
                    (SELECT r.data FROM records r WHERE r.entity = c.entity AND r.id = c.record_id),
                    c.remote, c.remote_version, c.remote_edited_at, c.remote_edited_by,
                    coalesce((SELECT max(o.edited_at) FROM outbox o WHERE o.entity = c.entity AND o.record_id = c.record_id), c.local_edited_at),
                    c.detected_at FROM conflicts c
             WHERE ?1 IS NULL OR c.detected_at > ?1 OR (c.detected_at = ?1 AND c.id > ?2)
             ORDER BY c.detected_at, c.id LIMIT ?3",
        )?;
        let (at, id) = after.map_or((None, String::new()), |(at, id)| (Some(at), id));
        let titles = settings::title_fields(&conn)?;
        let rows = stmt
            .query_map(rusqlite::params![at, id, limit], |r| conflict_from_row(r, &titles))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The ids of every open conflict, oldest first (without their records).
    pub fn open_conflict_ids(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM conflicts ORDER BY detected_at, id")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(ids)
    }

    pub fn conflict(&self, id: &str) -> Result<ConflictView> {
        let conn = self.conn();
        let titles = settings::title_fields(&conn)?;
        conn.query_row(
            "SELECT c.id, c.entity, c.record_id, c.base,
                    (SELECT r.data FROM records r WHERE r.entity = c.entity AND r.id = c.record_id),
                    c.remote, c.remote_version, c.remote_edited_at, c.remote_edited_by,
                    coalesce((SELECT max(o.edited_at) FROM outbox o WHERE o.entity = c.entity AND o.record_id = c.record_id), c.local_edited_at),
                    c.detected_at FROM conflicts c WHERE c.id = ?1",
            [id],
            |r| conflict_from_row(r, &titles),
        )
        .optional()?
        .ok_or_else(|| EngineError::NotFound(format!("no open conflict {id}: see `ferry conflicts` for the ids")))
    }

    pub fn history(&self, limit: u32) -> Result<Vec<ResolutionEntry>> {
        self.history_before(None, limit)
    }

    /// Resolutions older than entry `before` (all if `None`), newest first:
    /// keyset paging on the id, so a page deep in a long history costs
    /// what the first does.
    pub fn history_before(&self, before: Option<i64>, limit: u32) -> Result<Vec<ResolutionEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT h.id, h.entity, h.record_id, h.policy, h.winner, h.reason, h.local, h.remote, h.result,
                    h.superseded, h.at, h.restorable AND NOT h.restored, h.conflict_id, h.upload_mutation_id,
                    (SELECT r.data FROM records r WHERE r.entity = h.entity AND r.id = h.record_id)
             FROM history h WHERE h.id < ?1 ORDER BY h.id DESC LIMIT ?2",
        )?;
        let titles = settings::title_fields(&conn)?;
        let rows = stmt
            .query_map(params![before.unwrap_or(i64::MAX), limit], |r| {
                let superseded: String = r.get(9)?;
                let policy: String = r.get(3)?;
                let entity: String = r.get(1)?;
                let record_id: String = r.get(2)?;
                let (local, remote, result) = (from_json(r.get(6)?), from_json(r.get(7)?), from_json(r.get(8)?));
                // The record as it is now; gone here, what the resolution saw.
                let current = from_json(r.get(14)?);
                let label = titles.label(
                    &entity,
                    &record_id,
                    current.as_ref().or(result.as_ref()).or(local.as_ref()).or(remote.as_ref()),
                );
                Ok(ResolutionEntry {
                    id: r.get(0)?,
                    entity,
                    record_id,
                    label,
                    policy: ConflictPolicy::parse(&policy).unwrap_or_default(),
                    winner: r.get(4)?,
                    reason: r.get(5)?,
                    local,
                    remote,
                    result,
                    superseded: serde_json::from_str(&superseded).unwrap_or_default(),
                    at: r.get(10)?,
                    restorable: r.get(11)?,
                    conflict_id: r.get(12)?,
                    upload_mutation_id: r.get(13)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Queues a resolution's losing local value again as a new edit, and
    /// marks the entry restored — both or neither, so a failed write (a full
    /// disk) leaves the edit restorable.
    pub fn restore(&self, history_id: i64, edited_at: i64, now: i64) -> Result<Uuid> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row: Option<(String, String, Option<String>, bool)> = tx
            .query_row(
                "SELECT entity, record_id, local, restorable AND NOT restored FROM history WHERE id = ?1",
                [history_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((entity, record_id, local, restorable)) = row else {
            return Err(EngineError::NotFound(format!(
                "no resolution {history_id}: see `ferry conflicts --history` for the ids"
            )));
        };
        if !restorable {
            return Err(EngineError::Invalid(format!(
                "resolution {history_id} kept the local version (or was restored already); nothing to restore"
            )));
        }
        let local = from_json(local);
        let op = if local.is_some() { Op::Upsert } else { Op::Delete };
        let w = super::WriteOp { entity, record_id, op, payload: local };
        w.validate()?;
        let ev = stamps::evidence(&tx, now, &monotonic_now())?;
        let id = super::records::write_in(&tx, &w, edited_at, &ev)?;
        tx.execute("UPDATE history SET restored = 1 WHERE id = ?1", [history_id])?;
        tx.commit()?;
        Ok(id)
    }

    pub fn record_sync_run(&self, run: &SyncRun) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO sync_runs(started_at, finished_at, uploaded, downloaded, failed, conflicts, error, problem)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                run.started_at,
                run.finished_at,
                run.uploaded as i64,
                run.downloaded as i64,
                run.failed as i64,
                run.conflicts as i64,
                run.error,
                run.problem.map(Problem::as_str)
            ],
        )?;
        // Keep the history bounded.
        conn.execute("DELETE FROM sync_runs WHERE id <= (SELECT max(id) FROM sync_runs) - 1000", [])?;
        Ok(())
    }

    pub fn sync_runs(&self, limit: u32) -> Result<Vec<SyncRun>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT started_at, finished_at, uploaded, downloaded, failed, conflicts, error, problem
             FROM sync_runs ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(SyncRun {
                    started_at: r.get(0)?,
                    finished_at: r.get(1)?,
                    uploaded: r.get::<_, i64>(2)? as u64,
                    downloaded: r.get::<_, i64>(3)? as u64,
                    failed: r.get::<_, i64>(4)? as u64,
                    conflicts: r.get::<_, i64>(5)? as u64,
                    error: r.get(6)?,
                    problem: r.get::<_, Option<String>>(7)?.as_deref().and_then(Problem::parse),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

fn conflict_from_row(r: &rusqlite::Row<'_>, titles: &TitleFields) -> rusqlite::Result<ConflictView> {
    let local = from_json(r.get(4)?);
    let remote = from_json(r.get(5)?);
    let base = from_json(r.get(3)?);
    let entity: String = r.get(1)?;
    let record_id: String = r.get(2)?;
    // Deleted here: the server's side names it, else where both started.
    let label = titles.label(&entity, &record_id, local.as_ref().or(remote.as_ref()).or(base.as_ref()));
    Ok(ConflictView {
        id: r.get(0)?,
        entity,
        record_id,
        label,
        base,
        differing_fields: crate::resolve::differing_fields(local.as_ref(), remote.as_ref()),
        local,
        remote,
        remote_version: r.get::<_, i64>(6)? as u64,
        remote_edited_at: r.get(7)?,
        remote_edited_by: r.get(8)?,
        local_edited_at: r.get(9)?,
        detected_at: r.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use ferry_protocol::Op;
    use serde_json::json;

    use super::*;
    use crate::store::WriteOp;

    fn put(s: &Store, v: serde_json::Value) {
        let w = WriteOp { entity: "a".into(), record_id: "x".into(), op: Op::Upsert, payload: v.as_object().cloned() };
        s.write(&w, 1, 1).unwrap();
    }

    /// The server's side of the conflict: version 3 of a/x.
    fn server_version() -> RemoteRecord {
        RemoteRecord {
            entity: "a".into(),
            record_id: "x".into(),
            version: 3,
            seq: 9,
            deleted: false,
            data: json!({"n": 0}).as_object().cloned(),
            edited_at: 4,
            edited_by: "b".into(),
            server_time: 4,
        }
    }

    fn settle(s: &Store, remote: &RemoteRecord, judged_up_to: i64) -> Settled {
        let settle = Settle {
            entity: "a",
            record_id: "x",
            remote,
            result: remote.data.clone(),
            edited_at: 5,
            policy: ConflictPolicy::ServerWins,
            winner: "remote",
            reason: "test".into(),
            local: json!({"n": 1}).as_object().cloned(),
            restorable: true,
            judged_up_to,
        };
        s.settle_conflict_at(&settle, 10, 10).unwrap()
    }

    /// Another process writes the record between the judgement and the
    /// settlement: the settlement changes nothing, so that write is never
    /// superseded without being judged.
    #[test]
    fn a_write_after_the_judgement_stops_the_settlement() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, json!({"n": 1}));
        let judged = s.queue_head("a", "x").unwrap();
        put(&s, json!({"n": 2})); // lands after the judgement
        let remote = server_version();
        assert_eq!(settle(&s, &remote, judged), Settled::LocalChanged);
        assert_eq!(s.counts().unwrap().pending, 2, "both local writes still queued");
        assert!(s.history(10).unwrap().is_empty());
        assert_eq!(s.local_value("a", "x").unwrap(), json!({"n": 2}).as_object().cloned());

        let judged = s.queue_head("a", "x").unwrap();
        assert_eq!(settle(&s, &remote, judged), Settled::Done(None));
        assert_eq!(s.counts().unwrap().pending, 0);
        assert_eq!(s.history(10).unwrap()[0].superseded.len(), 2);
    }

    /// A window asks for the oldest few; the CLI and "keep mine for all"
    /// for every one.
    #[test]
    fn open_conflicts_oldest_first_up_to_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        for i in 0..5i64 {
            let record_id = format!("r{i}");
            let w = WriteOp {
                entity: "a".into(),
                record_id: record_id.clone(),
                op: Op::Upsert,
                payload: json!({"n": i}).as_object().cloned(),
            };
            s.write(&w, 1, 1).unwrap();
            let head = s.queue_head("a", &record_id).unwrap();
            let view = ConflictView {
                id: format!("c{i}"),
                entity: "a".into(),
                label: record_id.clone(),
                record_id,
                base: None,
                local: json!({"n": i}).as_object().cloned(),
                remote: json!({"n": -1}).as_object().cloned(),
                remote_version: 2,
                local_edited_at: 1,
                remote_edited_at: 2,
                remote_edited_by: "b".into(),
                differing_fields: vec!["n".into()],
                // Detected newest first, so order is by detection, not by id.
                detected_at: 100 - i,
            };
            s.park_conflict(head, &view).unwrap();
        }
        let ids = |v: Vec<ConflictView>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
        let first = s.open_conflicts(None, 2).unwrap();
        let next = first.last().map(|c| (c.detected_at, c.id.clone()));
        assert_eq!(ids(first), ["c4", "c3"]);
        assert_eq!(ids(s.open_conflicts(next, 2).unwrap()), ["c2", "c1"]);
        assert_eq!(ids(s.open_conflicts(Some((97, "c3".into())), 50).unwrap()), ["c2", "c1", "c0"]);
        assert_eq!(ids(s.open_conflicts(None, 50).unwrap()), ["c4", "c3", "c2", "c1", "c0"]);
        assert_eq!(s.open_conflict_ids().unwrap(), ["c4", "c3", "c2", "c1", "c0"]);
    }

    /// Conflicts and resolutions are labelled from the record as it is
    /// here, or once it is gone, from what they kept of it.
    #[test]
    fn conflicts_and_resolutions_carry_the_records_label() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        s.set_title_field("a", Some("n")).unwrap();
        put(&s, json!({"n": 1}));
        let remote = server_version(); // {"n": 0}
        assert_eq!(settle(&s, &remote, s.queue_head("a", "x").unwrap()), Settled::Done(None));
        assert_eq!(s.history(1).unwrap()[0].label, "0", "the record now: the server's version");
        let del = WriteOp { entity: "a".into(), record_id: "x".into(), op: Op::Delete, payload: None };
        s.write(&del, 6, 6).unwrap();
        s.conn().execute("UPDATE history SET result = NULL", []).unwrap();
        assert_eq!(s.history(1).unwrap()[0].label, "1", "deleted here: the losing local side");

        put(&s, json!({"n": 5}));
        let view = ConflictView {
            id: "c".into(),
            entity: "a".into(),
            record_id: "x".into(),
            label: String::new(),
            base: None,
            local: None,
            remote: json!({"n": 9}).as_object().cloned(),
            remote_version: 4,
            local_edited_at: 1,
            remote_edited_at: 2,
            remote_edited_by: "b".into(),
            differing_fields: vec![],
            detected_at: 1,
        };
        s.park_conflict(s.queue_head("a", "x").unwrap(), &view).unwrap();
        assert_eq!(s.conflict("c").unwrap().label, "5", "the local record");
        s.write(&del, 7, 7).unwrap();
        assert_eq!(s.open_conflicts(None, 5).unwrap()[0].label, "9", "deleted here: the server's side");
        s.set_title_field("a", None).unwrap();
        assert_eq!(s.conflict("c").unwrap().label, "x", "no title field: the record id");
    }

    #[test]
    fn history_pages_by_id_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        let remote = server_version();
        for n in 0..5 {
            put(&s, json!({ "n": n }));
            assert_eq!(settle(&s, &remote, s.queue_head("a", "x").unwrap()), Settled::Done(None));
        }
        let ids = |v: Vec<ResolutionEntry>| v.into_iter().map(|h| h.id).collect::<Vec<_>>();
        let all = ids(s.history_before(None, 100).unwrap());
        assert_eq!(all.len(), 5);
        assert!(all.windows(2).all(|w| w[0] > w[1]), "newest first: {all:?}");
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = ids(s.history_before(before, 2).unwrap());
            let Some(&last) = page.last() else { break };
            before = Some(last);
            paged.extend(page);
        }
        assert_eq!(paged, all);
    }

    /// A restore that cannot be written leaves the losing edit restorable.
    #[test]
    fn a_failed_restore_can_be_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        put(&s, json!({"n": 1}));
        let remote = server_version();
        assert_eq!(settle(&s, &remote, s.queue_head("a", "x").unwrap()), Settled::Done(None));
        let h = s.history(10).unwrap()[0].id;
        // Make the restore's write fail: the losing side becomes a delete
        // and the user has deleted the record since, so there is nothing to
        // delete.
        let del = WriteOp { entity: "a".into(), record_id: "x".into(), op: Op::Delete, payload: None };
        s.write(&del, 6, 6).unwrap();
        s.conn().execute("UPDATE history SET local = NULL WHERE id = ?1", [h]).unwrap();
        assert!(s.restore(h, 7, 7).is_err(), "deleting a deleted record fails");
        assert!(s.history(10).unwrap()[0].restorable, "still restorable after the failed write");
        // Once it can be written, it is, once.
        s.conn().execute("UPDATE history SET local = '{\"n\":1}' WHERE id = ?1", [h]).unwrap();
        s.restore(h, 8, 8).unwrap();
        assert_eq!(s.local_value("a", "x").unwrap(), json!({"n": 1}).as_object().cloned());
        assert!(!s.history(10).unwrap()[0].restorable);
        assert!(s.restore(h, 9, 9).is_err(), "not twice");
    }
}
