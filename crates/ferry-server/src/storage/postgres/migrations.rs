//! Versioned schema migrations for PostgreSQL.
//!
//! `ferry_schema.version` holds how many entries of [`MIGRATIONS`] have
//! been applied. Released migrations are never edited: a schema change is a
//! new entry at the end. Pending ones run in one transaction under an
//! advisory lock, so nodes starting at the same moment migrate once, and a
//! crash mid-upgrade leaves the old schema intact (PostgreSQL's DDL is
//! transactional).

use tokio_postgres::Client;

use super::error::PgError;
use crate::error::{Error, Result};

/// Key of the advisory lock that serializes migrations across nodes.
const MIGRATION_LOCK: i64 = 0x6665_7272_795f_6d67; // "ferry_mg"

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: first release on PostgreSQL.
    r#"
    -- Server-wide settings, e.g. the JWT signing secret.
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BYTEA NOT NULL
    );

    CREATE TABLE users (
        name          TEXT PRIMARY KEY,
        org           TEXT NOT NULL,
        password_hash TEXT NOT NULL,   -- argon2 PHC string
        created_at    BIGINT NOT NULL
    );

    -- Refresh tokens are stored only as SHA-256 hashes. A family is the chain
    -- of tokens descending from one login, in `id` order (only a refresh
    -- holding the family's lock adds to it); reuse of a used token revokes it.
    CREATE TABLE refresh_tokens (
        id         BIGSERIAL PRIMARY KEY,
        token_hash BYTEA NOT NULL UNIQUE,
        family     TEXT NOT NULL,
        user_name  TEXT NOT NULL,
        expires_at BIGINT NOT NULL,    -- ms
        used       BOOLEAN NOT NULL DEFAULT false,
        revoked    SMALLINT NOT NULL DEFAULT 0,  -- 1 revoked, 2 superseded by a retry
        created_at BIGINT NOT NULL
    );
    CREATE INDEX refresh_tokens_family ON refresh_tokens (family, id);
    CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

    -- One row per organisation: the lock its pushes hold to their commit,
    -- its change sequence (the last seq handed out, which is its latest
    -- change) and its counters.
    CREATE TABLE orgs (
        org                 TEXT PRIMARY KEY,
        seq                 BIGINT NOT NULL DEFAULT 0,
        mutations_applied   BIGINT NOT NULL DEFAULT 0,
        mutations_duplicate BIGINT NOT NULL DEFAULT 0,
        conflicts           BIGINT NOT NULL DEFAULT 0,
        rejected            BIGINT NOT NULL DEFAULT 0
    );

    -- The latest version of every record; `seq` is its position in the
    -- organisation's change sequence, so pull needs no separate change log.
    CREATE TABLE records (
        org         TEXT NOT NULL,
        entity      TEXT NOT NULL,
        record_id   TEXT NOT NULL,
        version     BIGINT NOT NULL,
        seq         BIGINT NOT NULL,
        deleted     BOOLEAN NOT NULL DEFAULT false,
        data        TEXT,              -- JSON object; NULL for tombstones
        edited_at   BIGINT NOT NULL,
        edited_by   TEXT NOT NULL,
        server_time BIGINT NOT NULL,
        PRIMARY KEY (org, entity, record_id)
    );
    -- Unique: two changes of one organisation never share a place in its
    -- sequence.
    CREATE UNIQUE INDEX records_org_seq ON records (org, seq);

    -- Results of applied mutations, the idempotency memory. Only applied
    -- mutations are remembered: conflicts and rejections may be retried.
    -- The primary key is what makes "applied at most once" hold even if
    -- two transactions ever raced past the organisation lock.
    CREATE TABLE applied_mutations (
        org         TEXT NOT NULL,
        mutation_id UUID NOT NULL,
        entity      TEXT NOT NULL,
        record_id   TEXT NOT NULL,
        version     BIGINT NOT NULL,
        seq         BIGINT NOT NULL,
        server_time BIGINT NOT NULL,
        PRIMARY KEY (org, mutation_id)
    );

    -- Counter totals carried over from a SQLite server by `ferry-server
    -- copy` (it kept totals, not counts per organisation).
    CREATE TABLE counter_base (
        name  TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    "#,
    // 2: offboarding and login throttling.
    r#"
    ALTER TABLE users ADD COLUMN disabled_at BIGINT;    -- ms; NULL while enabled
    ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX refresh_tokens_user ON refresh_tokens (user_name);

    -- Failed sign-ins per account and per client address (see
    -- auth/throttle.rs), shared by every node; rows of keys quiet for an
    -- hour are forgotten.
    CREATE TABLE login_failures (
        key             TEXT PRIMARY KEY,
        failures        BIGINT NOT NULL,
        last_failure_at BIGINT NOT NULL    -- ms
    );
    CREATE INDEX login_failures_age ON login_failures (last_failure_at);
    "#,
];

/// Brings the schema up to date.
pub async fn migrate(client: &mut Client) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let tx = client.transaction().await.map_err(PgError::from)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(PgError::from)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS ferry_schema (version BIGINT NOT NULL)")
        .await
        .map_err(PgError::from)?;
    let current: i64 = match tx.query_opt("SELECT version FROM ferry_schema", &[]).await.map_err(PgError::from)? {
        Some(row) => row.get(0),
        None => {
            tx.execute("INSERT INTO ferry_schema (version) VALUES (0)", &[]).await.map_err(PgError::from)?;
            0
        }
    };
    if current > known {
        return Err(Error::SchemaTooNew { found: current, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await.map_err(PgError::from)?;
        tx.execute("UPDATE ferry_schema SET version = $1", &[&(i as i64 + 1)]).await.map_err(PgError::from)?;
        tracing::info!(version = i + 1, "PostgreSQL schema migrated");
    }
    tx.commit().await.map_err(PgError::from)?;
    Ok(())
}
