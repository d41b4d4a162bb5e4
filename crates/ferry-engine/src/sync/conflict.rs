//! Settling a conflict the server reported, by the entity's policy.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferry_protocol::RemoteRecord;

use crate::clock::local_now_ms;
use crate::error::Result;
use crate::model::{ConflictView, EngineEvent};
use crate::resolve::{self, Decision, Version};
use crate::state::Inner;
use crate::store::{BatchItem, Settle};

impl Inner {
    /// Returns true if settled automatically, false if parked for the user.
    pub(super) fn settle_conflict_by_policy(self: &Arc<Self>, item: &BatchItem, remote: RemoteRecord) -> Result<bool> {
        let m = &item.mutation;
        let policy = self.policy(&m.entity)?;
        let base = self.store.shadow(&m.entity, &m.record_id)?.and_then(|(_, data, _)| data);
        let local = self.store.local_value(&m.entity, &m.record_id)?;
        let times = self.store.local_edit_times(&m.entity, &m.record_id)?;
        let local_edited_at = times.latest.unwrap_or(m.edited_at);
        let remote_value = if remote.deleted { None } else { remote.data.clone() };
        // Per field, the latest queued local mutation that touched it: a
        // later patch of another field must not make an older edit of this
        // one look new. (The server's side is known only as a whole.)
        let fields: BTreeSet<&String> = [base.as_ref(), local.as_ref(), remote_value.as_ref()]
            .into_iter()
            .flatten()
            .flat_map(|f| f.keys())
            .collect();
        let local_field_times: BTreeMap<String, i64> =
            fields.into_iter().filter_map(|k| times.field(k).map(|t| (k.clone(), t))).collect();
        let (decision, reason) = resolve::decide(
            policy,
            base.as_ref(),
            Version { value: local.as_ref(), edited_at: local_edited_at, field_edited_at: Some(&local_field_times) },
            Version::whole(remote_value.as_ref(), remote.edited_at),
        );
        tracing::info!(entity = %m.entity, record = %m.record_id, policy = policy.as_str(), winner = decision.winner(), "conflict");
        let (result, edited_at, restorable) = match &decision {
            Decision::Park => {
                let view = ConflictView {
                    id: uuid::Uuid::new_v4().to_string(),
                    entity: m.entity.clone(),
                    record_id: m.record_id.clone(),
                    differing_fields: resolve::differing_fields(local.as_ref(), remote_value.as_ref()),
                    base,
                    local,
                    remote: remote_value,
                    remote_version: remote.version,
                    local_edited_at,
                    remote_edited_at: remote.edited_at,
                    remote_edited_by: remote.edited_by.clone(),
                    detected_at: self.clock.now_ms(),
                };
                self.store.park_conflict(item.seq, &view)?;
                self.emit(EngineEvent::ConflictNeedsUser {
                    conflict_id: view.id,
                    entity: m.entity.clone(),
                    record_id: m.record_id.clone(),
                });
                return Ok(false);
            }
            Decision::Remote => (remote_value.clone(), remote.edited_at, local != remote_value),
            // Keep the original edit time: lww must keep judging when the
            // edit was made, not when it was re-sent.
            Decision::Local => (local.clone(), local_edited_at, false),
            Decision::Merged(v) => (v.clone(), local_edited_at.max(remote.edited_at), true),
        };
        self.store.settle_conflict_at(
            &Settle {
                entity: &m.entity,
                record_id: &m.record_id,
                remote: &remote,
                result,
                edited_at,
                policy,
                winner: decision.winner(),
                reason,
                local,
                restorable,
            },
            local_now_ms(),
            self.clock.now_ms(),
        )?;
        self.emit(EngineEvent::ConflictAutoResolved {
            entity: m.entity.clone(),
            record_id: m.record_id.clone(),
            winner: decision.winner().to_string(),
        });
        Ok(true)
    }
}
