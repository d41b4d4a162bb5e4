//! The database's identity and generation in PostgreSQL's `meta` (see
//! [`crate::storage::identity`]).

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

use super::error::PgError;
use crate::storage::identity::{Identity, GENERATION_KEY, ID_KEY, RESTORES_KEY};

/// The raw values of the identity's keys: id, generation, restores.
pub type Stored = (Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

pub async fn ensure(c: &impl GenericClient) -> Result<(), PgError> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        &[&ID_KEY, &Identity::new_id().into_bytes()],
    )
    .await?;
    Ok(())
}

pub async fn read(c: &impl GenericClient) -> Result<Stored, PgError> {
    let rows = c
        .query("SELECT key, value FROM meta WHERE key IN ($1, $2, $3)", &[&ID_KEY, &GENERATION_KEY, &RESTORES_KEY])
        .await?;
    let mut stored: Stored = (None, None, None);
    for row in rows {
        let (key, value): (String, Vec<u8>) = (row.get(0), row.get(1));
        match key.as_str() {
            ID_KEY => stored.0 = Some(value),
            GENERATION_KEY => stored.1 = Some(value),
            _ => stored.2 = Some(value),
        }
    }
    Ok(stored)
}

/// `org`'s newest change seq (its row's last handed-out seq).
pub async fn head(c: &impl GenericClient, org: &str) -> Result<u64, PgError> {
    let row = c.query_opt("SELECT seq FROM orgs WHERE org = $1", &[&org]).await?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}

/// Every organisation's newest change seq.
pub async fn heads(c: &impl GenericClient) -> Result<BTreeMap<String, u64>, PgError> {
    let rows = c.query("SELECT org, seq FROM orgs", &[]).await?;
    Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64)).collect())
}

pub async fn write(c: &impl GenericClient, next: &Identity) -> Result<(), PgError> {
    for (key, value) in
        [(GENERATION_KEY, next.generation.to_string().into_bytes()), (RESTORES_KEY, next.encode_restores())]
    {
        c.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await?;
    }
    Ok(())
}
