//! Reconciling with a server that went back in time: restored from a
//! backup, or replaced by another database.
//!
//! Everything this client saw of the server after the *fork* (the newest
//! change the restored copy kept) is gone there, and version numbers after
//! the fork mean different states on the two sides. So the engine pulls the
//! whole organisation again from zero, and each server record is matched
//! with the copy here (`reconcile_page`); records the server no longer has
//! at all are handled at the end (`finish_reconcile`). For each record:
//!
//! - same content on both sides: only the version number is taken;
//! - the server's copy is from before the fork and newer than ours, or
//!   ours is what it has: the server's is taken, as any pull would;
//! - the server's copy is from before the fork and ours is newer (a version
//!   it lost): ours is queued again as an ordinary mutation with a fresh id
//!   on top of the server's version, and the history says so;
//! - queued edits whose base the server lost: they now apply to the
//!   server's version, the first one carrying the lost content (a patch
//!   becomes an upsert of base + patch);
//! - the server's copy changed *after* the fork and differs from ours: two
//!   edits of one record that never saw each other. Ours goes up with base
//!   version 0, which the server answers with a conflict, and the entity's
//!   conflict policy decides, as for any conflict.
//!
//! Nothing is sent twice: a record the server has with our content is
//! matched, not uploaded. The state lives in the data dir (`reconcile_*`
//! settings, the `reconcile_unmatched` table, the pull cursor), so a crash
//! or a lost connection resumes where the last page left off.

use ferry_protocol::{DatabaseRef, Op, RemoteRecord};
use rusqlite::{params, OptionalExtension, Transaction};
use uuid::Uuid;

use super::records::{apply_remote_in, mark_refetch};
use super::{apply_op, from_json, settings, to_json, Store};
use crate::error::Result;
use crate::model::Fields;

/// What a reconciliation did, by record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileTally {
    /// The server has our content: only the version number changed here.
    pub matched: u64,
    /// The server's copy taken: new here, or newer there.
    pub taken: u64,
    /// Versions the server lost, queued to upload again.
    pub resent: u64,
    /// Records whose queued edits now apply to the server's version.
    pub rebased: u64,
    /// Lost versions the server has edited otherwise since: uploaded
    /// through the conflict rules.
    pub contested: u64,
}

impl std::ops::AddAssign for ReconcileTally {
    fn add_assign(&mut self, o: Self) {
        self.matched += o.matched;
        self.taken += o.taken;
        self.resent += o.resent;
        self.rebased += o.rebased;
        self.contested += o.contested;
    }
}

/// The two clocks a reconciliation stamps with.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    /// This machine's (records' update times).
    pub local: i64,
    /// The server's, as estimated (the history's times).
    pub server: i64,
}

const RESENT: &str = "the server was restored from a backup that lacks this version; it is uploaded again";
const REBASED: &str = "the server was restored from a backup that lacks the version these queued edits were made on; \
                       they now apply to the server's version and carry the lost content with them";
const DROPPED: &str = "the server was restored from a backup that lacks this record; deleting it there is not needed";

impl Store {
    /// The fork of the reconciliation under way, if one is.
    pub fn reconciling(&self) -> Result<Option<u64>> {
        self.setting(settings::RECONCILE_FORK)
    }

    /// Starts a reconciliation with `database` (if the server names one),
    /// which kept what this client saw up to change `fork`: the pull starts
    /// over from zero, and every local record waits to be matched.
    pub fn begin_reconcile(&self, fork: u64, database: Option<DatabaseRef>) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        settings::put(&tx, settings::RECONCILE_FORK, &fork)?;
        match database {
            Some(d) => settings::put(&tx, settings::RECONCILE_DATABASE, &d)?,
            None => {
                tx.execute("DELETE FROM settings WHERE key = ?1", [settings::RECONCILE_DATABASE.key()])?;
            }
        }
        settings::put(&tx, settings::PULL_CURSOR, &0)?;
        tx.execute_batch(
            "DELETE FROM reconcile_unmatched;
             INSERT INTO reconcile_unmatched (entity, id) SELECT entity, id FROM records;
             -- Every record is read again below; these were old-timeline errands.
             DELETE FROM refetch;",
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Matches one page of the full pull with the records here and moves
    /// the pull cursor to `cursor`, in one transaction.
    pub fn reconcile_page(&self, changes: &[RemoteRecord], cursor: u64, now: Times) -> Result<ReconcileTally> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let fork = settings::get(&tx, settings::RECONCILE_FORK)?.unwrap_or(0);
        let mut tally = ReconcileTally::default();
        for remote in changes {
            match_remote(&tx, remote, fork, now, &mut tally)?;
        }
        settings::put(&tx, settings::PULL_CURSOR, &cursor)?;
        tx.commit()?;
        Ok(tally)
    }

    /// After the last page: the records the server has no trace of are
    /// queued to upload (or their queued edits made to fit), and the server
    /// database becomes the one the records here belong to.
    pub fn finish_reconcile(&self, now: Times) -> Result<ReconcileTally> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut tally = ReconcileTally::default();
        loop {
            // A page at a time, so memory stays flat however many there are.
            let page: Vec<(String, String)> = tx
                .prepare_cached("SELECT entity, id FROM reconcile_unmatched LIMIT 500")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            if page.is_empty() {
                break;
            }
            for (entity, id) in page {
                tx.prepare_cached("DELETE FROM reconcile_unmatched WHERE entity = ?1 AND id = ?2")?
                    .execute(params![entity, id])?;
                unmatched_local(&tx, &entity, &id, now, &mut tally)?;
            }
        }
        if let Some(database) = settings::get(&tx, settings::RECONCILE_DATABASE)? {
            settings::put(&tx, settings::SERVER_DATABASE, &database)?;
        }
        for setting in [settings::RECONCILE_DATABASE.key(), settings::RECONCILE_FORK.key()] {
            tx.execute("DELETE FROM settings WHERE key = ?1", [setting])?;
        }
        tx.commit()?;
        Ok(tally)
    }
}

/// A local record as reconciling needs it.
struct Local {
    /// The value here (`None`: deleted here).
    value: Option<Fields>,
    version: u64,
    /// The last server state it is based on, and when that was edited.
    shadow: Option<Fields>,
    shadow_edited_at: i64,
}

fn load_local(tx: &Transaction, entity: &str, id: &str) -> Result<Option<Local>> {
    Ok(tx
        .prepare_cached(
            "SELECT data, deleted, version, shadow, shadow_edited_at FROM records WHERE entity = ?1 AND id = ?2",
        )?
        .query_row(params![entity, id], |r| {
            let deleted: bool = r.get(1)?;
            Ok(Local {
                value: if deleted { None } else { from_json(r.get(0)?) },
                version: r.get::<_, i64>(2)? as u64,
                shadow: from_json(r.get(3)?),
                shadow_edited_at: r.get(4)?,
            })
        })
        .optional()?)
}

/// The record's first queued mutation, if it has one.
struct FirstQueued {
    seq: i64,
    id: String,
    op: Op,
    payload: Option<Fields>,
    /// Parked for the user: left as it is (settling it re-reads the server).
    parked: bool,
}

fn first_queued(tx: &Transaction, entity: &str, id: &str) -> Result<Option<FirstQueued>> {
    Ok(tx
        .prepare_cached(
            "SELECT seq, id, op, payload, state FROM outbox WHERE entity = ?1 AND record_id = ?2 ORDER BY seq LIMIT 1",
        )?
        .query_row(params![entity, id], |r| {
            let op: String = r.get(2)?;
            let state: String = r.get(4)?;
            Ok(FirstQueued {
                seq: r.get(0)?,
                id: r.get(1)?,
                op: op.parse().unwrap_or(Op::Upsert),
                payload: from_json(r.get(3)?),
                parked: state == "conflict",
            })
        })
        .optional()?)
}

fn match_remote(
    tx: &Transaction,
    remote: &RemoteRecord,
    fork: u64,
    now: Times,
    tally: &mut ReconcileTally,
) -> Result<()> {
    let (entity, id) = (remote.entity.as_str(), remote.record_id.as_str());
    tx.prepare_cached("DELETE FROM reconcile_unmatched WHERE entity = ?1 AND id = ?2")?.execute(params![entity, id])?;
    let Some(local) = load_local(tx, entity, id)? else {
        apply_remote_in(tx, remote, now.local)?;
        tally.taken += 1;
        return Ok(());
    };
    let theirs = if remote.deleted { None } else { remote.data.clone() };
    // Before the fork, both sides share one history: version numbers
    // compare. After it they do not.
    let from_before_fork = remote.seq <= fork;
    match first_queued(tx, entity, id)? {
        Some(first) => {
            if local.shadow == theirs {
                set_base(tx, remote, &theirs)?;
                tally.matched += 1;
            } else if from_before_fork && local.version > remote.version {
                // The queued edits were made on a version the server lost.
                if !first.parked {
                    carry_lost_base(tx, &first, &local, entity, id, &theirs, now)?;
                }
                set_base(tx, remote, &theirs)?;
                tally.rebased += 1;
            } else if from_before_fork {
                // Newer there: pushing the edits meets it as any conflict,
                // and the record is read again afterwards, as after a pull.
                mark_refetch(tx, entity, id)?;
            } else {
                contest(tx, entity, id)?;
                tally.contested += 1;
            }
        }
        None if local.value == theirs || (from_before_fork && local.version <= remote.version) => {
            take(tx, remote, &theirs, now.local)?;
            if local.value == theirs {
                tally.matched += 1;
            } else {
                tally.taken += 1;
            }
        }
        None => {
            let mutation = enqueue(tx, entity, id, &local.value, local.shadow_edited_at)?;
            if from_before_fork {
                set_base(tx, remote, &theirs)?;
                record_history(tx, entity, id, &local.value, &theirs, RESENT, &[], &mutation, now)?;
                tally.resent += 1;
            } else {
                contest(tx, entity, id)?;
                tally.contested += 1;
            }
        }
    }
    Ok(())
}

/// A local record the server has no trace of.
fn unmatched_local(tx: &Transaction, entity: &str, id: &str, now: Times, tally: &mut ReconcileTally) -> Result<()> {
    let Some(local) = load_local(tx, entity, id)? else { return Ok(()) };
    // Whatever is sent now creates the record there.
    tx.prepare_cached(
        "UPDATE records SET version = 0, shadow = NULL, shadow_edited_at = 0 WHERE entity = ?1 AND id = ?2",
    )?
    .execute(params![entity, id])?;
    match first_queued(tx, entity, id)? {
        Some(first) if first.parked => {}
        Some(first) if first.op == Op::Delete => {
            tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?.execute([first.seq])?;
            record_history(tx, entity, id, &local.value, &None, DROPPED, &[first.id], "", now)?;
            tally.rebased += 1;
        }
        Some(first) => {
            carry_lost_base(tx, &first, &local, entity, id, &None, now)?;
            tally.rebased += 1;
        }
        None if local.value.is_some() => {
            let mutation = enqueue(tx, entity, id, &local.value, local.shadow_edited_at)?;
            record_history(tx, entity, id, &local.value, &None, RESENT, &[], &mutation, now)?;
            tally.resent += 1;
        }
        // Deleted here and unknown there: they agree.
        None => tally.matched += 1,
    }
    Ok(())
}

/// The record now rests on the server's `remote`: the base of whatever is
/// queued for it.
fn set_base(tx: &Transaction, remote: &RemoteRecord, theirs: &Option<Fields>) -> Result<()> {
    tx.prepare_cached(
        "UPDATE records SET version = ?3, shadow = ?4, shadow_edited_at = ?5 WHERE entity = ?1 AND id = ?2",
    )?
    .execute(params![
        remote.entity,
        remote.record_id,
        remote.version as i64,
        to_json(theirs),
        remote.edited_at
    ])?;
    Ok(())
}

/// The server's copy replaces ours (nothing of ours is lost by it).
fn take(tx: &Transaction, remote: &RemoteRecord, theirs: &Option<Fields>, now: i64) -> Result<()> {
    tx.prepare_cached(
        "UPDATE records SET data = ?3, deleted = ?4, version = ?5, shadow = ?3, shadow_edited_at = ?6, updated_at = ?7
         WHERE entity = ?1 AND id = ?2",
    )?
    .execute(params![
        remote.entity,
        remote.record_id,
        to_json(theirs),
        theirs.is_none(),
        remote.version as i64,
        remote.edited_at,
        now
    ])?;
    Ok(())
}

/// Base version 0 on a record the server has is always answered with a
/// conflict: the two edits meet in the entity's conflict policy. No
/// common base is known any more, so none is offered to a merge.
fn contest(tx: &Transaction, entity: &str, id: &str) -> Result<()> {
    tx.prepare_cached("UPDATE records SET version = 0, shadow = NULL WHERE entity = ?1 AND id = ?2")?
        .execute(params![entity, id])?;
    Ok(())
}

/// The first queued edit takes the lost base's content with it: a patch
/// becomes an upsert of base + patch, under a fresh id (its content is not
/// what was queued under the old one).
fn carry_lost_base(
    tx: &Transaction,
    first: &FirstQueued,
    local: &Local,
    entity: &str,
    id: &str,
    theirs: &Option<Fields>,
    now: Times,
) -> Result<()> {
    if first.op != Op::Patch {
        return Ok(()); // an upsert or delete does not depend on its base's content
    }
    let whole = apply_op(local.shadow.clone(), Op::Patch, first.payload.as_ref());
    let fresh = Uuid::now_v7().to_string();
    tx.prepare_cached("UPDATE outbox SET id = ?2, op = 'upsert', payload = ?3 WHERE seq = ?1")?.execute(params![
        first.seq,
        fresh,
        to_json(&whole)
    ])?;
    record_history(tx, entity, id, &local.value, theirs, REBASED, std::slice::from_ref(&first.id), &fresh, now)
}

/// Queues `value` (or its deletion) as an ordinary mutation with a fresh
/// id, at the edit time of the version it restores (so last-write-wins
/// judges the edit, not the reconciliation). Returns its id.
fn enqueue(tx: &Transaction, entity: &str, id: &str, value: &Option<Fields>, edited_at: i64) -> Result<String> {
    let mutation = Uuid::now_v7().to_string();
    let op = if value.is_some() { Op::Upsert } else { Op::Delete };
    // No stamp evidence: the edit time came from the server, it is not
    // re-stamped.
    tx.prepare_cached(
        "INSERT INTO outbox(id, entity, record_id, op, payload, base_version, edited_at, stamp_offset_known)
         SELECT ?1, ?2, ?3, ?4, ?5, version, ?6, 1 FROM records WHERE entity = ?2 AND id = ?3",
    )?
    .execute(params![mutation, entity, id, op.as_str(), to_json(value), edited_at])?;
    Ok(mutation)
}

#[allow(clippy::too_many_arguments)]
fn record_history(
    tx: &Transaction,
    entity: &str,
    id: &str,
    local: &Option<Fields>,
    remote: &Option<Fields>,
    reason: &str,
    superseded: &[String],
    upload: &str,
    now: Times,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO history(entity, record_id, policy, winner, reason, local, remote, result,
                             superseded, at, restorable, conflict_id, upload_mutation_id)
         VALUES (?1, ?2, ?3, 'local', ?4, ?5, ?6, ?5, ?7, ?8, 0, NULL, ?9)",
    )?
    .execute(params![
        entity,
        id,
        settings::policy(tx, entity)?.unwrap_or_default().as_str(),
        reason,
        to_json(local),
        to_json(remote),
        serde_json::to_string(superseded).unwrap_or_else(|_| "[]".into()),
        now.server,
        (!upload.is_empty()).then_some(upload)
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use ferry_protocol::Op;
    use serde_json::{json, Value};

    use super::*;
    use crate::store::WriteOp;

    const NOW: Times = Times { local: 100, server: 100 };

    fn fields(v: Value) -> Option<Fields> {
        v.as_object().cloned()
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    fn write(s: &Store, id: &str, op: Op, v: Value) {
        s.write(&WriteOp { entity: "a".into(), record_id: id.into(), op, payload: fields(v) }, 1, 1).unwrap();
    }

    /// A record as the server acknowledged it at `version` (nothing queued).
    fn synced(s: &Store, id: &str, version: u64, v: Value) {
        write(s, id, Op::Upsert, v.clone());
        s.conn().execute("DELETE FROM outbox WHERE record_id = ?1", [id]).unwrap();
        s.conn()
            .execute(
                "UPDATE records SET version = ?2, shadow = data, shadow_edited_at = 7 WHERE id = ?1",
                params![id, version as i64],
            )
            .unwrap();
    }

    fn remote(id: &str, version: u64, seq: u64, v: Option<Value>) -> RemoteRecord {
        RemoteRecord {
            entity: "a".into(),
            record_id: id.into(),
            version,
            seq,
            deleted: v.is_none(),
            data: v.and_then(fields),
            edited_at: 5,
            edited_by: "u".into(),
            server_time: 5,
        }
    }

    /// (op, payload, base the next push sends) of what is queued for `id`.
    fn queued(s: &Store, id: &str) -> Vec<(String, Option<Fields>, u64)> {
        s.next_batch(0, 100, 1 << 20)
            .unwrap()
            .into_iter()
            .filter(|b| b.mutation.record_id == id)
            .map(|b| (b.mutation.op.as_str().to_owned(), b.mutation.payload, b.mutation.base_version))
            .collect()
    }

    #[test]
    fn each_record_is_matched_taken_resent_or_contested_by_where_the_server_went_back_to() {
        let (_d, s) = store();
        synced(&s, "same", 5, json!({"n": 1})); // the server has it (renumbered)
        synced(&s, "behind", 2, json!({"n": 1})); // the server has a newer one from before the fork
        synced(&s, "lost", 4, json!({"n": 2})); // the server went back to version 3
        synced(&s, "contested", 4, json!({"n": 2})); // lost, and edited otherwise since
        synced(&s, "gone", 2, json!({"n": 1})); // the server has no trace of it
        s.begin_reconcile(10, None).unwrap();
        let page = [
            remote("same", 9, 12, Some(json!({"n": 1}))),
            remote("behind", 3, 8, Some(json!({"n": 9}))),
            remote("lost", 3, 9, Some(json!({"n": 1}))),
            remote("contested", 4, 11, Some(json!({"n": 7}))),
            remote("new", 1, 6, Some(json!({"n": 1}))),
        ];
        let mut tally = s.reconcile_page(&page, 12, NOW).unwrap();
        tally += s.finish_reconcile(NOW).unwrap();
        assert_eq!(tally, ReconcileTally { matched: 1, taken: 2, resent: 2, rebased: 0, contested: 1 });

        let get = |id: &str| s.get("a", id).unwrap().unwrap();
        assert_eq!((get("same").version, get("same").pending), (9, 0));
        assert_eq!((get("behind").data, get("behind").version), (fields(json!({"n": 9})), 3));
        assert_eq!(get("new").data, fields(json!({"n": 1})));
        // Sent again on the server's version, and it is in the history.
        assert_eq!(queued(&s, "lost"), [("upsert".into(), fields(json!({"n": 2})), 3)]);
        // Base 0 on a record the server has: answered with a conflict.
        assert_eq!(queued(&s, "contested"), [("upsert".into(), fields(json!({"n": 2})), 0)]);
        assert_eq!(queued(&s, "gone"), [("upsert".into(), fields(json!({"n": 1})), 0)]);
        let history: Vec<String> = s.history(10).unwrap().into_iter().map(|h| h.record_id).collect();
        assert_eq!(history, ["gone", "lost"]);
        assert_eq!(s.reconciling().unwrap(), None, "finished");
        assert_eq!(s.setting(settings::PULL_CURSOR).unwrap(), Some(12));
    }

    #[test]
    fn queued_edits_on_a_lost_base_carry_it_and_a_lost_deletion_is_resent() {
        let (_d, s) = store();
        // Version 4 ({"n": 2, "x": 1}) was lost; a patch waits on it.
        synced(&s, "patched", 4, json!({"n": 2, "x": 1}));
        write(&s, "patched", Op::Patch, json!({"m": 3}));
        // Deleted here at version 2, which the server lost.
        synced(&s, "deleted", 1, json!({"n": 1}));
        write(&s, "deleted", Op::Delete, json!(null));
        s.conn().execute("DELETE FROM outbox WHERE record_id = 'deleted'", []).unwrap();
        s.conn().execute("UPDATE records SET version = 2, shadow = NULL WHERE id = 'deleted'", []).unwrap();
        // Created and patched here, never on the restored server.
        synced(&s, "unknown", 1, json!({"k": 1}));
        write(&s, "unknown", Op::Patch, json!({"k": 2}));
        // Deleted here while queued, unknown there: nothing to send.
        synced(&s, "moot", 1, json!({"k": 1}));
        write(&s, "moot", Op::Delete, json!(null));

        s.begin_reconcile(10, None).unwrap();
        let page = [remote("patched", 3, 7, Some(json!({"n": 1}))), remote("deleted", 1, 5, Some(json!({"n": 1})))];
        let mut tally = s.reconcile_page(&page, 7, NOW).unwrap();
        tally += s.finish_reconcile(NOW).unwrap();
        assert_eq!(tally.rebased, 3, "{tally:?}");
        assert_eq!(tally.resent, 1, "{tally:?}");
        assert_eq!(queued(&s, "patched"), [("upsert".into(), fields(json!({"n": 2, "x": 1, "m": 3})), 3)]);
        assert_eq!(s.local_value("a", "patched").unwrap(), fields(json!({"n": 2, "x": 1, "m": 3})));
        assert_eq!(queued(&s, "deleted"), [("delete".into(), None, 1)]);
        assert_eq!(queued(&s, "unknown"), [("upsert".into(), fields(json!({"k": 2})), 0)]);
        assert_eq!(queued(&s, "moot"), []);
    }

    #[test]
    fn a_reconciliation_resumes_from_its_last_page() {
        let (_d, s) = store();
        synced(&s, "x", 4, json!({"n": 2}));
        synced(&s, "y", 4, json!({"n": 2}));
        s.begin_reconcile(3, None).unwrap();
        s.reconcile_page(&[remote("x", 2, 2, Some(json!({"n": 1})))], 2, NOW).unwrap();
        // A crash here: the store knows it is still reconciling, and where.
        assert_eq!(s.reconciling().unwrap(), Some(3));
        assert_eq!(s.setting(settings::PULL_CURSOR).unwrap(), Some(2));
        s.reconcile_page(&[remote("y", 2, 3, Some(json!({"n": 1})))], 3, NOW).unwrap();
        s.finish_reconcile(NOW).unwrap();
        assert_eq!(queued(&s, "x").len(), 1);
        assert_eq!(queued(&s, "y").len(), 1);
    }
}
