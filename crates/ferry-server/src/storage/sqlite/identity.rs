//! The database's identity and generation in SQLite's `meta` (see
//! [`crate::storage::identity`]).

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::records::counters;
use crate::error::Result;
use crate::storage::identity::{unreadable, Identity, GENERATION_KEY, ID_KEY, RESTORES_KEY};

fn meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?)
}

/// Gives a database its id on first open (databases from before
/// identities get one too, at generation 1).
pub fn ensure(conn: &Connection) -> Result<()> {
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", (ID_KEY, Identity::new_id().as_bytes()))?;
    Ok(())
}

pub fn read(conn: &Connection) -> Result<Identity> {
    let (id, generation, restores) = (meta(conn, ID_KEY)?, meta(conn, GENERATION_KEY)?, meta(conn, RESTORES_KEY)?);
    Identity::decode(id.as_deref(), generation.as_deref(), restores.as_deref()).ok_or_else(unreadable)
}

/// A new generation, beginning after the newest change in this copy.
pub fn mark_restored(conn: &mut Connection, now: i64) -> Result<Identity> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    ensure(&tx)?;
    // One sequence for every organisation: its last value bounds them all.
    let head = counters::get(&tx, counters::SEQ)?;
    let next = read(&tx)?.restored(now, BTreeMap::new(), head);
    for (key, value) in
        [(GENERATION_KEY, next.generation.to_string().into_bytes()), (RESTORES_KEY, next.encode_restores())]
    {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )?;
    }
    tx.commit()?;
    Ok(next)
}

/// `org`'s newest change seq.
pub fn head(conn: &Connection, org: &str) -> Result<u64> {
    let head: Option<i64> =
        conn.prepare_cached("SELECT max(seq) FROM records WHERE org = ?1")?.query_row([org], |r| r.get(0))?;
    Ok(head.unwrap_or(0).max(0) as u64)
}
