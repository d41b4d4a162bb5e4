//! The database's identity and generation, kept in `meta` by both
//! backends: what lets a client tell that the server went back in time.
//!
//! A database gets a random id when it is created; a backup copies it. A
//! restore (`ferry-server restore`, or `mark-restored` after restoring by
//! other means) starts a new generation and remembers where it began: each
//! organisation's newest change in the restored copy. A client that saw an
//! earlier generation knows that what it saw after that point is gone, and
//! uploads it again (see the engine's `sync/reconcile.rs`).

use std::collections::BTreeMap;

use ferry_protocol::{DatabaseInfo, RestorePoint};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `meta` keys. Values are UTF-8 text.
pub const ID_KEY: &str = "database_id";
pub const GENERATION_KEY: &str = "generation";
pub const RESTORES_KEY: &str = "restores";

/// The generation of a database that was never restored.
pub const FIRST_GENERATION: u64 = 1;

/// One restore, as kept in `meta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    pub generation: u64,
    /// When it was marked (ms).
    pub at: i64,
    /// Each organisation's newest change seq in the restored copy.
    pub heads: BTreeMap<String, u64>,
    /// The newest seq of organisations not in `heads` (SQLite's seqs are
    /// one sequence for all organisations, PostgreSQL's are per
    /// organisation and an organisation without a row had none).
    pub others: u64,
}

/// The identity as stored, before it is told to one organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: Uuid,
    pub generation: u64,
    pub restores: Vec<Restore>,
}

impl Identity {
    /// Reads the stored values (`None`: not there, e.g. a database older
    /// than identities; the caller creates them).
    pub fn decode(id: Option<&[u8]>, generation: Option<&[u8]>, restores: Option<&[u8]>) -> Option<Identity> {
        let id = Uuid::parse_str(std::str::from_utf8(id?).ok()?).ok()?;
        let generation = generation.and_then(|g| std::str::from_utf8(g).ok()?.parse().ok()).unwrap_or(FIRST_GENERATION);
        // A list that cannot be read only costs clients precision (they
        // re-check everything), never data.
        let restores = restores.and_then(|r| serde_json::from_slice(r).ok()).unwrap_or_default();
        Some(Identity { id, generation, restores })
    }

    pub fn new_id() -> String {
        Uuid::new_v4().to_string()
    }

    /// What `org`'s clients are told, with `head` its newest change.
    pub fn info(&self, org: &str, head: u64) -> DatabaseInfo {
        DatabaseInfo {
            id: self.id,
            generation: self.generation,
            head,
            restores: self
                .restores
                .iter()
                .map(|r| RestorePoint { generation: r.generation, seq: r.heads.get(org).copied().unwrap_or(r.others) })
                .collect(),
        }
    }

    /// The identity after a restore marked at `now` with these heads: a
    /// generation above every earlier one — and above the time, so that
    /// restoring an old copy twice never gives the same generation twice.
    pub fn restored(&self, now: i64, heads: BTreeMap<String, u64>, others: u64) -> Identity {
        let mut restores = self.restores.clone();
        let generation = (self.generation + 1).max(u64::try_from(now).unwrap_or(0));
        restores.push(Restore { generation, at: now, heads, others });
        Identity { id: self.id, generation, restores }
    }

    pub fn encode_restores(&self) -> Vec<u8> {
        serde_json::to_vec(&self.restores).unwrap_or_else(|_| b"[]".to_vec())
    }
}

/// The error for a database whose identity cannot be read.
pub fn unreadable() -> crate::Error {
    crate::Error::Open {
        location: "the server database".into(),
        message: "its database id (table meta) is missing or unreadable; ferry-server makes it when it opens the \
                  database, so start it on this database once"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_moves_the_generation_past_the_clock_and_remembers_heads() {
        let first = Identity::decode(Some(Identity::new_id().as_bytes()), None, None).unwrap();
        assert_eq!(first.generation, FIRST_GENERATION);
        let heads = BTreeMap::from([("north".to_string(), 40)]);
        let second = first.restored(5_000, heads.clone(), 7);
        assert_eq!(second.generation, 5_000);
        assert_eq!(second.id, first.id);
        // The same old copy restored again, even with a clock gone back:
        // still a generation never seen before.
        let third = second.restored(10, heads, 7);
        assert_eq!(third.generation, 5_001);
        let info = third.info("north", 41);
        assert_eq!(info.restores.iter().map(|r| (r.generation, r.seq)).collect::<Vec<_>>(), [(5_000, 40), (5_001, 40)]);
        assert_eq!(third.info("south", 0).restores[0].seq, 7);
        let again = Identity::decode(
            Some(third.id.to_string().as_bytes()),
            Some(third.generation.to_string().as_bytes()),
            Some(&third.encode_restores()),
        )
        .unwrap();
        assert_eq!(again, third);
    }
}
