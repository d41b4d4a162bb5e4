//! The user's decisions on conflicts: a side, a merge or per-field picks,
//! applied to the record as it is when applied.

use crate::clock::local_now_ms;
use crate::error::{EngineError, Result};
use crate::model::{ConflictPolicy, Resolution};
use crate::resolve;
use crate::state::Inner;

/// Settles an open conflict as the user chose; returns the mutation it
/// queued (`None` when the result is the server's version).
pub(crate) fn resolve_manually(inner: &Inner, conflict_id: &str, choice: &Resolution) -> Result<Option<uuid::Uuid>> {
    // The choice applies to the local side as it is when it is applied:
    // a write landing between reading and settling is judged again
    // with it, never superseded unseen.
    for _ in 0..20 {
        if let crate::store::Settled::Done(queued) = try_resolve_manually(inner, conflict_id, choice)? {
            return Ok(queued);
        }
    }
    Err(EngineError::Invalid(format!("conflict {conflict_id}: its record keeps changing here; try again in a moment")))
}

fn try_resolve_manually(inner: &Inner, conflict_id: &str, choice: &Resolution) -> Result<crate::store::Settled> {
    let head = inner.store.conflict(conflict_id)?;
    let judged_up_to = inner.store.queue_head(&head.entity, &head.record_id)?;
    let c = inner.store.conflict(conflict_id)?;
    let result = resolve::apply_choice(c.local.as_ref(), c.remote.as_ref(), choice).map_err(EngineError::Invalid)?;
    let remote = ferry_protocol::RemoteRecord {
        entity: c.entity.clone(),
        record_id: c.record_id.clone(),
        version: c.remote_version,
        seq: 0,
        deleted: c.remote.is_none(),
        data: c.remote.clone(),
        edited_at: c.remote_edited_at,
        edited_by: c.remote_edited_by.clone(),
        server_time: 0,
    };
    let winner = if result == c.local {
        "local"
    } else if result == c.remote {
        "remote"
    } else {
        "merged"
    };
    let restorable = result != c.local;
    inner.store.settle_conflict(
        &crate::store::Settle {
            entity: &c.entity,
            record_id: &c.record_id,
            remote: &remote,
            result,
            // A decision made now is an edit made now.
            edited_at: inner.clock.now_ms(),
            policy: ConflictPolicy::Manual,
            winner,
            reason: "chosen by the user".into(),
            local: c.local.clone(),
            restorable,
            judged_up_to,
        },
        local_now_ms(),
    )
}
