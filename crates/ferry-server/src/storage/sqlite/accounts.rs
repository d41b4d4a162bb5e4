//! Users and refresh tokens in SQLite.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::auth::refresh::{self, NewToken, Revocation, StoredToken, Successors, Verdict};
use crate::error::{Error, Result};
use crate::storage::{RefreshFailure, Rotation};
use crate::users::User;

pub fn add_user(conn: &Connection, user: &User) -> Result<()> {
    let inserted = conn.execute(
        "INSERT INTO users (name, org, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        (&user.name, &user.org, &user.password_hash, user.created_at),
    )?;
    if inserted == 0 {
        return Err(Error::UserExists(user.name.clone()));
    }
    Ok(())
}

pub fn find_user(conn: &Connection, name: &str) -> Result<Option<User>> {
    let mut stmt = conn.prepare_cached("SELECT name, org, password_hash, created_at FROM users WHERE name = ?1")?;
    Ok(stmt
        .query_row([name], |r| {
            Ok(User { name: r.get(0)?, org: r.get(1)?, password_hash: r.get(2)?, created_at: r.get(3)? })
        })
        .optional()?)
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
