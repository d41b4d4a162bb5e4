//! Versioned schema migrations.
//!
//! `PRAGMA user_version` holds how many entries of [`MIGRATIONS`] have been
//! applied. Released migrations are never edited: a schema change is a new
//! entry at the end. Pending ones run in order inside one transaction, so a
//! crash mid-upgrade leaves the old schema intact.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: first release.
    r#"
    -- Server-wide settings, e.g. the JWT signing secret.
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );

    CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        org           TEXT NOT NULL,
        password_hash TEXT NOT NULL,   -- argon2 PHC string
        created_at    INTEGER NOT NULL
    );

    -- Refresh tokens are stored only as SHA-256 hashes. A family is the chain
    -- of tokens descending from one login; reuse of a used token revokes it.
    CREATE TABLE refresh_tokens (
        token_hash BLOB PRIMARY KEY,
        family     TEXT NOT NULL,
        user_name  TEXT NOT NULL,
        expires_at INTEGER NOT NULL,   -- ms
        used       INTEGER NOT NULL DEFAULT 0,
        revoked    INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

    -- The latest version of every record; `seq` is its position in the change
    -- sequence, so pull needs no separate change log.
    CREATE TABLE records (
        org         TEXT NOT NULL,
        entity      TEXT NOT NULL,
        record_id   TEXT NOT NULL,
        version     INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        deleted     INTEGER NOT NULL DEFAULT 0,
        data        TEXT,              -- JSON object; NULL for tombstones
        edited_at   INTEGER NOT NULL,
        edited_by   TEXT NOT NULL,
        server_time INTEGER NOT NULL,
        PRIMARY KEY (org, entity, record_id)
    ) WITHOUT ROWID;
    CREATE INDEX records_org_seq ON records (org, seq);

    -- Results of applied mutations, the idempotency memory. Only applied
    -- mutations are remembered: conflicts and rejections may be retried.
    CREATE TABLE applied_mutations (
        org         TEXT NOT NULL,
        mutation_id TEXT NOT NULL,
        entity      TEXT NOT NULL,
        record_id   TEXT NOT NULL,
        version     INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        server_time INTEGER NOT NULL,
        PRIMARY KEY (org, mutation_id)
    ) WITHOUT ROWID;

    -- Persistent counters: the change sequence and the operator statistics.
    CREATE TABLE counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) VALUES
        ('seq', 0),
        ('mutations_applied', 0),
        ('mutations_duplicate', 0),
        ('conflicts', 0),
        ('rejected', 0);
    "#,
    // 2: offboarding and login throttling.
    r#"
    ALTER TABLE users ADD COLUMN disabled_at INTEGER;   -- ms; NULL while enabled
    ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX refresh_tokens_user ON refresh_tokens (user_name);

    -- Failed sign-ins per account and per client address (see
    -- auth/throttle.rs); rows of keys quiet for an hour are forgotten.
    CREATE TABLE login_failures (
        key             TEXT PRIMARY KEY,
        failures        INTEGER NOT NULL,
        last_failure_at INTEGER NOT NULL   -- ms
    );
    CREATE INDEX login_failures_age ON login_failures (last_failure_at);
    "#,
];

/// Brings the schema up to date.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > known {
        return Err(Error::SchemaTooNew { found: current, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        // PRAGMA takes no parameters; the value is our own integer.
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_fresh_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn refuses_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA user_version = 99").unwrap();
        assert!(matches!(migrate(&mut conn), Err(Error::SchemaTooNew { found: 99, .. })));
    }
}
