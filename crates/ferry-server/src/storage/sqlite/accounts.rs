//! Users and refresh tokens in SQLite.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::auth::refresh::{self, NewToken, Revocation, StoredToken, Successors, Verdict};
use crate::auth::throttle::FailureCount;
use crate::error::{Error, Result};
use crate::storage::{RefreshFailure, Rotation};
use crate::users::User;

const USER_COLUMNS: &str = "name, org, password_hash, created_at, disabled_at, session_epoch";

fn user_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        name: r.get(0)?,
        org: r.get(1)?,
        password_hash: r.get(2)?,
        created_at: r.get(3)?,
        disabled_at: r.get(4)?,
        session_epoch: r.get(5)?,
    })
}

pub fn add_user(conn: &Connection, user: &User) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO users (name, org, password_hash, created_at, disabled_at, session_epoch)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name) DO NOTHING",
        (&user.name, &user.org, &user.password_hash, user.created_at, user.disabled_at, user.session_epoch),
    )?;
    if inserted == 0 {
        return Err(Error::UserExists(user.name.clone()));
    }
    Ok(())
}

pub fn find_user(conn: &Connection, name: &str) -> Result<Option<User>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))?;
    Ok(stmt.query_row([name], user_from).optional()?)
}

pub fn list_users(conn: &Connection) -> Result<Vec<User>> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY org, name"))?;
    let users = stmt.query_map([], user_from)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(users)
}

/// Ends every session of `name`: its refresh families are revoked and its
/// access tokens, carrying the old epoch, refused.
fn end_sessions(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE name = ?1", [name])?;
    conn.execute("UPDATE refresh_tokens SET revoked = 1 WHERE user_name = ?1 AND revoked = 0", [name])?;
    Ok(())
}

pub fn set_disabled(conn: &mut Connection, name: &str, disabled_at: Option<i64>) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Disabling twice keeps the first time.
    let found = tx.execute(
        "UPDATE users SET disabled_at = CASE WHEN ?2 IS NULL THEN NULL ELSE coalesce(disabled_at, ?2) END
         WHERE name = ?1",
        (name, disabled_at),
    )? > 0;
    if found && disabled_at.is_some() {
        end_sessions(&tx, name)?;
    }
    tx.commit()?;
    Ok(found)
}

pub fn set_password(conn: &mut Connection, name: &str, password_hash: &str) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = tx.execute("UPDATE users SET password_hash = ?2 WHERE name = ?1", (name, password_hash))? > 0;
    if found {
        end_sessions(&tx, name)?;
    }
    tx.commit()?;
    Ok(found)
}

pub fn remove_user(conn: &mut Connection, name: &str) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("DELETE FROM refresh_tokens WHERE user_name = ?1", [name])?;
    let found = tx.execute("DELETE FROM users WHERE name = ?1", [name])? > 0;
    tx.commit()?;
    Ok(found)
}

pub fn login_failures(conn: &Connection, keys: &[String]) -> Result<Vec<FailureCount>> {
    let mut stmt = conn.prepare_cached("SELECT key, failures, last_failure_at FROM login_failures WHERE key = ?1")?;
    let mut out = Vec::new();
    for key in keys {
        let row = stmt
            .query_row([key], |r| Ok(FailureCount { key: r.get(0)?, failures: r.get(1)?, last_failure_at: r.get(2)? }))
            .optional()?;
        out.extend(row);
    }
    Ok(out)
}

pub fn record_login_failure(conn: &mut Connection, keys: &[String], now: i64, forget_before: i64) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached("DELETE FROM login_failures WHERE last_failure_at < ?1")?.execute([forget_before])?;
    let mut upsert = tx.prepare_cached(
        "INSERT INTO login_failures (key, failures, last_failure_at) VALUES (?1, 1, ?2)
         ON CONFLICT (key) DO UPDATE SET failures = failures + 1, last_failure_at = ?2",
    )?;
    for key in keys {
        upsert.execute((key, now))?;
    }
    drop(upsert);
    tx.commit()?;
    Ok(())
}

pub fn clear_login_failures(conn: &Connection, key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM login_failures WHERE key = ?1")?.execute([key])?;
    Ok(())
}

pub fn store_token(conn: &Connection, family: &str, user: &str, token: &NewToken) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, family, user_name, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((&token.hash, family, user, token.expires_at, token.created_at))?;
    Ok(())
}

/// Presents a token and carries out the verdict, in one IMMEDIATE
/// transaction (the only writer, so its family cannot change meanwhile).
pub fn rotate(conn: &mut Connection, presented: &[u8], next: &NewToken, now: i64) -> Result<Rotation> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = tx
        .prepare_cached(
            "SELECT rowid, family, user_name, expires_at, used, revoked FROM refresh_tokens WHERE token_hash = ?1",
        )?
        .query_row([presented], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                StoredToken {
                    family: r.get(1)?,
                    user: r.get(2)?,
                    expires_at: r.get(3)?,
                    used: r.get(4)?,
                    revocation: Revocation::from_code(r.get(5)?),
                },
            ))
        })
        .optional()?;
    // Tokens of a family form a chain in insertion order, and SQLite gives
    // each new row a rowid above every existing one, so the successors of
    // a token are the rows of its family with a higher rowid.
    let successors = match &row {
        Some((rowid, token)) if refresh::needs_successors(token, now) => Some(
            tx.prepare_cached(
                "SELECT (SELECT created_at FROM refresh_tokens WHERE family = ?1 AND rowid > ?2 ORDER BY rowid LIMIT 1),
                        EXISTS(SELECT 1 FROM refresh_tokens WHERE family = ?1 AND rowid > ?2 AND used = 1)",
            )?
            .query_row((&token.family, rowid), |r| Ok(Successors { first_created_at: r.get(0)?, any_used: r.get(1)? }))?,
        ),
        _ => None,
    };
    let verdict = refresh::judge(row.as_ref().map(|(_, t)| t), successors, now);
    let rotation = match (verdict, row) {
        // A disabled account's tokens are revoked; say why they fail.
        (Verdict::Refuse, Some((_, token)))
            if find_user(&tx, &token.user)?.is_some_and(|u| u.disabled_at.is_some()) =>
        {
            Rotation::Refused(RefreshFailure::Disabled)
        }
        (Verdict::Refuse, _) | (_, None) => Rotation::Refused(RefreshFailure::Invalid),
        (Verdict::Reused, Some((_, token))) => {
            revoke_family(&tx, &token.family)?;
            Rotation::Refused(RefreshFailure::Reused)
        }
        (Verdict::Rotate | Verdict::RotateRetry, Some((rowid, token))) => {
            let retried = verdict == Verdict::RotateRetry;
            if retried {
                tx.prepare_cached(
                    "UPDATE refresh_tokens SET revoked = ?3 WHERE family = ?1 AND rowid > ?2 AND revoked = 0",
                )?
                .execute((&token.family, rowid, Revocation::SupersededByRetry.to_code()))?;
            } else {
                tx.prepare_cached("UPDATE refresh_tokens SET used = 1 WHERE rowid = ?1")?.execute([rowid])?;
            }
            match find_user(&tx, &token.user)? {
                Some(user) if user.disabled_at.is_some() => {
                    revoke_family(&tx, &token.family)?;
                    Rotation::Refused(RefreshFailure::Disabled)
                }
                Some(user) => {
                    store_token(&tx, &token.family, &user.name, next)?;
                    Rotation::Rotated { user, family: token.family, retried }
                }
                None => {
                    // The account was removed: its sessions end with it.
                    revoke_family(&tx, &token.family)?;
                    Rotation::Refused(RefreshFailure::Invalid)
                }
            }
        }
    };
    // Commit in every case: a reuse must persist the family's revocation.
    tx.commit()?;
    Ok(rotation)
}

fn revoke_family(conn: &Connection, family: &str) -> Result<()> {
    conn.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1")?.execute([family])?;
    Ok(())
}

pub fn revoke_family_of(conn: &Connection, presented: &[u8]) -> Result<bool> {
    let family: Option<String> = conn
        .prepare_cached("SELECT family FROM refresh_tokens WHERE token_hash = ?1")?
        .query_row([presented], |r| r.get(0))
        .optional()?;
    match family {
        Some(family) => {
            revoke_family(conn, &family)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

pub fn purge_tokens(conn: &Connection, before: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM refresh_tokens WHERE expires_at < ?1")?.execute([before])?;
    Ok(())
}
