//! Users and refresh tokens in PostgreSQL.

use deadpool_postgres::{GenericClient, Object};

use super::error::PgError;
use crate::auth::refresh::{self, NewToken, Revocation, StoredToken, Successors, Verdict};
use crate::auth::throttle::FailureCount;
use crate::error::{Error, Result};
use crate::storage::{RefreshFailure, Rotation};
use crate::users::User;

/// Class of the advisory locks that serialize changes to one refresh
/// family (the second key is a hash of the family id; a collision only
/// makes two families wait for each other).
const FAMILY_LOCK_CLASS: i32 = 0x6665_7272; // "ferr"

const USER_COLUMNS: &str = "name, org, password_hash, created_at, disabled_at, session_epoch";

fn user_from(r: &tokio_postgres::Row) -> User {
    User {
        name: r.get(0),
        org: r.get(1),
        password_hash: r.get(2),
        created_at: r.get(3),
        disabled_at: r.get(4),
        session_epoch: r.get(5),
    }
}

pub async fn add_user(c: &impl GenericClient, user: &User) -> Result<Result<()>, PgError> {
    let inserted = c
        .execute(
            "INSERT INTO users (name, org, password_hash, created_at, disabled_at, session_epoch)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO NOTHING",
            &[&user.name, &user.org, &user.password_hash, &user.created_at, &user.disabled_at, &user.session_epoch],
        )
        .await?;
    Ok(if inserted == 0 { Err(Error::UserExists(user.name.clone())) } else { Ok(()) })
}

pub async fn find_user(c: &impl GenericClient, name: &str) -> Result<Option<User>, PgError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
    let row = c.query_opt(&c.prepare_cached(&sql).await?, &[&name]).await?;
    Ok(row.as_ref().map(user_from))
}

/// The user's row, locked against [`set_disabled`] and [`set_password`]
/// until the transaction ends: a refresh judged under it cannot store a
/// live token after they revoked the user's families.
async fn find_user_for_share(c: &impl GenericClient, name: &str) -> Result<Option<User>, PgError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1 FOR SHARE");
    Ok(c.query_opt(&sql, &[&name]).await?.as_ref().map(user_from))
}

pub async fn list_users(c: &impl GenericClient) -> Result<Vec<User>, PgError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY org, name");
    Ok(c.query(&sql, &[]).await?.iter().map(user_from).collect())
}

/// Ends every session of `name`: its refresh families are revoked and its
/// access tokens, carrying the old epoch, refused. The caller holds the
/// user's row lock (its UPDATE).
async fn end_sessions(c: &impl GenericClient, name: &str) -> Result<(), PgError> {
    c.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE name = $1", &[&name]).await?;
    c.execute("UPDATE refresh_tokens SET revoked = 1 WHERE user_name = $1 AND revoked = 0", &[&name]).await?;
    Ok(())
}

pub async fn set_disabled(mut c: Object, name: &str, disabled_at: Option<i64>) -> Result<bool, PgError> {
    let tx = c.transaction().await?;
    // Disabling twice keeps the first time.
    let found = tx
        .execute(
            "UPDATE users SET disabled_at = CASE WHEN $2::int8 IS NULL THEN NULL ELSE coalesce(disabled_at, $2) END
             WHERE name = $1",
            &[&name, &disabled_at],
        )
        .await?
        > 0;
    if found && disabled_at.is_some() {
        end_sessions(&tx, name).await?;
    }
    tx.commit().await?;
    Ok(found)
}

pub async fn set_password(mut c: Object, name: &str, password_hash: &str) -> Result<bool, PgError> {
    let tx = c.transaction().await?;
    let found = tx.execute("UPDATE users SET password_hash = $2 WHERE name = $1", &[&name, &password_hash]).await? > 0;
    if found {
        end_sessions(&tx, name).await?;
    }
    tx.commit().await?;
    Ok(found)
}

pub async fn remove_user(mut c: Object, name: &str) -> Result<bool, PgError> {
    let tx = c.transaction().await?;
    // The user's row first: a refresh holding it (FOR SHARE) finishes before.
    let found = tx.execute("DELETE FROM users WHERE name = $1", &[&name]).await? > 0;
    tx.execute("DELETE FROM refresh_tokens WHERE user_name = $1", &[&name]).await?;
    tx.commit().await?;
    Ok(found)
}

pub async fn login_failures(c: &impl GenericClient, keys: &[String]) -> Result<Vec<FailureCount>, PgError> {
    let rows = c
        .query(
            &c.prepare_cached("SELECT key, failures, last_failure_at FROM login_failures WHERE key = ANY($1)").await?,
            &[&keys],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| FailureCount {
            key: r.get(0),
            failures: u32::try_from(r.get::<_, i64>(1)).unwrap_or(u32::MAX),
            last_failure_at: r.get(2),
        })
        .collect())
}

pub async fn record_login_failure(
    c: &impl GenericClient,
    keys: &[String],
    now: i64,
    forget_before: i64,
) -> Result<(), PgError> {
    // One statement: atomic per row, so failures counted on several nodes
    // at once all count.
    c.execute(
        &c.prepare_cached(
            "INSERT INTO login_failures AS f (key, failures, last_failure_at)
             SELECT k, 1, $2 FROM unnest($1::text[]) AS k
             ON CONFLICT (key) DO UPDATE
             SET failures = CASE WHEN f.last_failure_at < $3 THEN 1 ELSE f.failures + 1 END,
                 last_failure_at = $2",
        )
        .await?,
        &[&keys, &now, &forget_before],
    )
    .await?;
    c.execute(&c.prepare_cached("DELETE FROM login_failures WHERE last_failure_at < $1").await?, &[&forget_before])
        .await?;
    Ok(())
}

pub async fn clear_login_failures(c: &impl GenericClient, key: &str) -> Result<(), PgError> {
    c.execute(&c.prepare_cached("DELETE FROM login_failures WHERE key = $1").await?, &[&key]).await?;
    Ok(())
}

pub async fn store_token(c: &impl GenericClient, family: &str, user: &str, token: &NewToken) -> Result<(), PgError> {
    c.execute(
        &c.prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, family, user_name, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?,
        &[&token.hash, &family, &user, &token.expires_at, &token.created_at],
    )
    .await?;
    Ok(())
}

async fn lock_family(c: &impl GenericClient, family: &str) -> Result<(), PgError> {
    c.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&FAMILY_LOCK_CLASS, &family]).await?;
    Ok(())
}

async fn family_of(c: &impl GenericClient, presented: &[u8]) -> Result<Option<String>, PgError> {
    Ok(c.query_opt("SELECT family FROM refresh_tokens WHERE token_hash = $1", &[&presented]).await?.map(|r| r.get(0)))
}

/// Presents a token and carries out the verdict in one transaction holding
/// the family's lock, so two nodes handed the same token at once judge it
/// one after the other: the second sees it used.
pub async fn rotate(mut c: Object, presented: &[u8], next: &NewToken, now: i64) -> Result<Rotation, PgError> {
    let tx = c.transaction().await?;
    let Some(family) = family_of(&tx, presented).await? else {
        return Ok(Rotation::Refused(RefreshFailure::Invalid));
    };
    lock_family(&tx, &family).await?;
    // Read again under the lock: READ COMMITTED shows each statement what
    // committed before it began, so this sees every earlier rotation.
    let row = tx
        .query_opt(
            "SELECT id, family, user_name, expires_at, used, revoked FROM refresh_tokens WHERE token_hash = $1",
            &[&presented],
        )
        .await?
        .map(|r| {
            (
                r.get::<_, i64>(0),
                StoredToken {
                    family: r.get(1),
                    user: r.get(2),
                    expires_at: r.get(3),
                    used: r.get(4),
                    revocation: Revocation::from_code(i64::from(r.get::<_, i16>(5))),
                },
            )
        });
    let successors = match &row {
        Some((id, token)) if refresh::needs_successors(token, now) => {
            let r = tx
                .query_one(
                    "SELECT (SELECT created_at FROM refresh_tokens WHERE family = $1 AND id > $2 ORDER BY id LIMIT 1),
                            EXISTS(SELECT 1 FROM refresh_tokens WHERE family = $1 AND id > $2 AND used)",
                    &[&token.family, id],
                )
                .await?;
            Some(Successors { first_created_at: r.get(0), any_used: r.get(1) })
        }
        _ => None,
    };
    let verdict = refresh::judge(row.as_ref().map(|(_, t)| t), successors, now);
    let disabled = match (&verdict, &row) {
        (Verdict::Refuse, Some((_, token))) => {
            find_user(&tx, &token.user).await?.is_some_and(|u| u.disabled_at.is_some())
        }
        _ => false,
    };
    let rotation = match (verdict, row) {
        // A disabled account's tokens are revoked; say why they fail.
        (Verdict::Refuse, Some(_)) if disabled => Rotation::Refused(RefreshFailure::Disabled),
        (Verdict::Refuse, _) | (_, None) => Rotation::Refused(RefreshFailure::Invalid),
        (Verdict::Reused, Some((_, token))) => {
            revoke_family(&tx, &token.family).await?;
            Rotation::Refused(RefreshFailure::Reused)
        }
        (Verdict::Rotate | Verdict::RotateRetry, Some((id, token))) => {
            let retried = verdict == Verdict::RotateRetry;
            if retried {
                tx.execute(
                    "UPDATE refresh_tokens SET revoked = $3 WHERE family = $1 AND id > $2 AND revoked = 0",
                    &[&token.family, &id, &Revocation::SupersededByRetry.to_code()],
                )
                .await?;
            } else {
                tx.execute("UPDATE refresh_tokens SET used = true WHERE id = $1", &[&id]).await?;
            }
            match find_user_for_share(&tx, &token.user).await? {
                Some(user) if user.disabled_at.is_some() => {
                    revoke_family(&tx, &token.family).await?;
                    Rotation::Refused(RefreshFailure::Disabled)
                }
                Some(user) => {
                    store_token(&tx, &token.family, &user.name, next).await?;
                    Rotation::Rotated { user, family: token.family, retried }
                }
                None => {
                    // The account was removed: its sessions end with it.
                    revoke_family(&tx, &token.family).await?;
                    Rotation::Refused(RefreshFailure::Invalid)
                }
            }
        }
    };
    // Commit in every case: a reuse must persist the family's revocation.
    tx.commit().await?;
    Ok(rotation)
}

async fn revoke_family(c: &impl GenericClient, family: &str) -> Result<(), PgError> {
    c.execute("UPDATE refresh_tokens SET revoked = 1 WHERE family = $1", &[&family]).await?;
    Ok(())
}

pub async fn revoke_family_of(mut c: Object, presented: &[u8]) -> Result<bool, PgError> {
    let tx = c.transaction().await?;
    let Some(family) = family_of(&tx, presented).await? else { return Ok(false) };
    // Under the lock, so a rotation running now cannot add a live token to
    // the family after this revokes it.
    lock_family(&tx, &family).await?;
    revoke_family(&tx, &family).await?;
    tx.commit().await?;
    Ok(true)
}
