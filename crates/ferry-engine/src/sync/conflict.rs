//! Settling a conflict the server reported, by the entity's policy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferry_protocol::RemoteRecord;

use crate::clock::local_now_ms;
use crate::error::Result;
use crate::model::{ConflictView, EngineEvent};
use crate::resolve::{self, Decision, Version};
use crate::state::Inner;
use crate::store::{BatchItem, Settle, Settled};

/// Judging again because another process wrote the record meanwhile can
/// only repeat while writes keep landing in those milliseconds.
const MAX_JUDGEMENTS: usize = 20;

/// Returns true if settled automatically, false if parked for the user.
pub(super) fn settle_conflict_by_policy(inner: &Arc<Inner>, item: &BatchItem, remote: RemoteRecord) -> Result<bool> {
    for _ in 0..MAX_JUDGEMENTS {
        if let Some(settled) = try_settle_by_policy(inner, item, &remote)? {
            return Ok(settled);
        }
        tracing::info!(entity = %item.mutation.entity, mutation = %item.mutation.id, "record written meanwhile; judging again");
    }
    Err(crate::error::EngineError::Invalid(format!(
        "{}/{} keeps changing while its conflict is settled; the next sync tries again",
        item.mutation.entity, item.mutation.record_id
    )))
}

/// One judgement: `None` if a local write landed after the local side
/// was read (nothing was changed).
fn try_settle_by_policy(inner: &Arc<Inner>, item: &BatchItem, remote: &RemoteRecord) -> Result<Option<bool>> {
    let m = &item.mutation;
    let policy = inner.policy(&m.entity)?;
    // First, so any write after it is noticed when settling.
    let judged_up_to = inner.store.queue_head(&m.entity, &m.record_id)?;
    let base = inner.store.shadow(&m.entity, &m.record_id)?.and_then(|(_, data, _)| data);
    let local = inner.store.local_value(&m.entity, &m.record_id)?;
    let times = inner.store.local_edit_times(&m.entity, &m.record_id)?;
    let local_edited_at = times.latest.unwrap_or(m.edited_at);
    let remote_value = if remote.deleted { None } else { remote.data.clone() };
    // Per field, the latest queued local mutation that touched it: a
    // later patch of another field must not make an older edit of this
    // one look new. (The server's side is known only as a whole.)
    let fields: BTreeSet<&String> =
        [base.as_ref(), local.as_ref(), remote_value.as_ref()].into_iter().flatten().flat_map(|f| f.keys()).collect();
    let local_field_times: BTreeMap<String, i64> =
        fields.into_iter().filter_map(|k| times.field(k).map(|t| (k.clone(), t))).collect();
    let (decision, reason) = resolve::decide(
        policy,
        base.as_ref(),
        Version { value: local.as_ref(), edited_at: local_edited_at, field_edited_at: Some(&local_field_times) },
        Version::whole(remote_value.as_ref(), remote.edited_at),
    );
    tracing::info!(entity = %m.entity, mutation = %m.id, policy = policy.as_str(), winner = decision.winner(), "conflict");
    let (result, edited_at, restorable) = match &decision {
        Decision::Park => {
            let view = ConflictView {
                id: uuid::Uuid::new_v4().to_string(),
                entity: m.entity.clone(),
                record_id: m.record_id.clone(),
                // Not stored: every read of the conflict labels it afresh.
                label: crate::label::label(
                    &m.record_id,
                    inner.store.title_fields()?.get(&m.entity),
                    local.as_ref().or(remote_value.as_ref()).or(base.as_ref()),
                ),
                differing_fields: resolve::differing_fields(local.as_ref(), remote_value.as_ref()),
                base,
                local,
                remote: remote_value,
                remote_version: remote.version,
                local_edited_at,
                remote_edited_at: remote.edited_at,
                remote_edited_by: remote.edited_by.clone(),
                detected_at: inner.clock.now_ms(),
            };
            inner.store.park_conflict(item.seq, &view)?;
            inner.emit(EngineEvent::ConflictNeedsUser {
                conflict_id: view.id,
                entity: m.entity.clone(),
                record_id: m.record_id.clone(),
            });
            return Ok(Some(false));
        }
        Decision::Remote => (remote_value.clone(), remote.edited_at, local != remote_value),
        // Keep the original edit time: lww must keep judging when the
        // edit was made, not when it was re-sent.
        Decision::Local => (local.clone(), local_edited_at, false),
        Decision::Merged(v) => (v.clone(), local_edited_at.max(remote.edited_at), true),
    };
    let settled = inner.store.settle_conflict_at(
        &Settle {
            entity: &m.entity,
            record_id: &m.record_id,
            remote,
            result,
            edited_at,
            policy,
            winner: decision.winner(),
            reason,
            local,
            restorable,
            judged_up_to,
        },
        local_now_ms(),
        inner.clock.now_ms(),
    )?;
    if settled == Settled::LocalChanged {
        return Ok(None);
    }
    inner.emit(EngineEvent::ConflictAutoResolved {
        entity: m.entity.clone(),
        record_id: m.record_id.clone(),
        winner: decision.winner().to_string(),
    });
    Ok(Some(true))
}

#[cfg(test)]
mod tests {
    use ferry_protocol::Op;
    use serde_json::json;

    use super::*;
    use crate::store::{Store, WriteOp};
    use crate::EngineConfig;

    fn remote(version: u64) -> RemoteRecord {
        RemoteRecord {
            entity: "activity".into(),
            record_id: "x".into(),
            version,
            seq: 7,
            deleted: false,
            data: json!({"title": "theirs"}).as_object().cloned(),
            edited_at: 5,
            edited_by: "coordinator".into(),
            server_time: 5,
        }
    }

    /// Sets up a queued local edit of activity/x under `policy`, reports a
    /// conflict for it, and returns what was settled and the events sent.
    fn conflict_under(policy: &str) -> (Arc<Inner>, bool, Vec<EngineEvent>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("ferry.db")).unwrap();
        let inner = Arc::new(Inner::new(EngineConfig::new(dir.path()), store).unwrap());
        inner.store.set_policy("activity", crate::model::ConflictPolicy::parse(policy).unwrap()).unwrap();
        let w = WriteOp {
            entity: "activity".into(),
            record_id: "x".into(),
            op: Op::Upsert,
            payload: json!({"title": "mine"}).as_object().cloned(),
        };
        inner.store.write(&w, 1, 1).unwrap();
        let mut events = inner.events_tx.subscribe();
        let item = inner.store.next_batch(0, 10, 1 << 20).unwrap().remove(0);
        let settled = settle_conflict_by_policy(&inner, &item, remote(3)).unwrap();
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            seen.push(e);
        }
        (inner, settled, seen, dir)
    }

    #[test]
    fn a_new_manual_conflict_is_an_event_naming_it() {
        let (inner, settled, events, _dir) = conflict_under("manual");
        assert!(!settled, "parked for the user");
        let open = inner.store.open_conflicts(None, 10).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(
            events,
            vec![EngineEvent::ConflictNeedsUser {
                conflict_id: open[0].id.clone(),
                entity: "activity".into(),
                record_id: "x".into(),
            }]
        );
    }

    #[test]
    fn an_automatic_resolution_does_not_ask_the_user() {
        let (inner, settled, events, _dir) = conflict_under("server-wins");
        assert!(settled);
        assert!(inner.store.open_conflicts(None, 10).unwrap().is_empty());
        assert!(matches!(events.as_slice(), [EngineEvent::ConflictAutoResolved { winner, .. }] if winner == "remote"));
    }
}
