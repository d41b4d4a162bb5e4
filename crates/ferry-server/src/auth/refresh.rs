//! Rotating refresh tokens.
//!
//! A refresh token is 32 random bytes (base64url), stored only as its SHA-256
//! hash. Each refresh marks the presented token used and issues the next one
//! in the same family. Presenting a used token means it leaked (or a client
//! replayed it): the whole family is revoked and its holder must sign in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::error::Result;

/// A fresh token and the hash to store.
pub fn generate() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn store(
    conn: &Connection,
    token_hash: &[u8],
    family: &str,
    user: &str,
    expires_at: i64,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, family, user_name, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((token_hash, family, user, expires_at, now))?;
    Ok(())
}

/// What presenting a refresh token amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// Valid: now marked used; issue the next token in `family`.
    Ok {
        family: String,
        user: String,
    },
    Unknown,
    Expired,
    Revoked,
    /// Used before: the family has just been revoked.
    Reused,
}

/// Checks `token` and marks it used. Run inside a transaction so two
/// concurrent refreshes with one token cannot both succeed.
pub fn consume(conn: &Connection, token: &str, now: i64) -> Result<Consumed> {
    let token_hash = hash(token);
    let row = conn
        .prepare_cached(
            "SELECT family, user_name, expires_at, used, revoked FROM refresh_tokens
             WHERE token_hash = ?1",
        )?
        .query_row([&token_hash], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .optional()?;
    let Some((family, user, expires_at, used, revoked)) = row else {
        return Ok(Consumed::Unknown);
    };
    if revoked {
        return Ok(Consumed::Revoked);
    }
    if used {
        revoke_family(conn, &family)?;
        return Ok(Consumed::Reused);
    }
    if expires_at <= now {
        return Ok(Consumed::Expired);
    }
    conn.prepare_cached("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?1")?
        .execute([&token_hash])?;
    Ok(Consumed::Ok { family, user })
}

pub fn revoke_family(conn: &Connection, family: &str) -> Result<()> {
    conn.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1")?
        .execute([family])?;
    Ok(())
}

/// Revokes the family of `token`, if it is known. Returns whether it was.
pub fn revoke_family_of(conn: &Connection, token: &str) -> Result<bool> {
    let family: Option<String> = conn
        .prepare_cached("SELECT family FROM refresh_tokens WHERE token_hash = ?1")?
        .query_row([hash(token)], |r| r.get(0))
        .optional()?;
    match family {
        Some(family) => {
            revoke_family(conn, &family)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Forgets tokens that expired long ago; they would be refused anyway.
pub fn purge_expired(conn: &Connection, now: i64) -> Result<()> {
    const GRACE_MS: i64 = 24 * 3600 * 1000;
    conn.prepare_cached("DELETE FROM refresh_tokens WHERE expires_at < ?1")?
        .execute([now - GRACE_MS])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn rotation_and_reuse() {
        let conn = db();
        let (t1, h1) = generate();
        assert_eq!(t1.len(), 43);
        store(&conn, &h1, "fam", "ann", 10_000, 0).unwrap();
        let (t2, h2) = generate();
        store(&conn, &h2, "fam", "ann", 10_000, 0).unwrap();

        assert_eq!(
            consume(&conn, &t1, 1).unwrap(),
            Consumed::Ok {
                family: "fam".into(),
                user: "ann".into()
            }
        );
        assert_eq!(consume(&conn, &t1, 2).unwrap(), Consumed::Reused);
        // The reuse revoked the sibling too.
        assert_eq!(consume(&conn, &t2, 3).unwrap(), Consumed::Revoked);
        assert_eq!(consume(&conn, "nope", 3).unwrap(), Consumed::Unknown);
    }

    #[test]
    fn expiry_and_logout() {
        let conn = db();
        let (t, h) = generate();
        store(&conn, &h, "f", "ann", 100, 0).unwrap();
        assert_eq!(consume(&conn, &t, 100).unwrap(), Consumed::Expired);
        let (t2, h2) = generate();
        store(&conn, &h2, "g", "ann", 1000, 0).unwrap();
        assert!(revoke_family_of(&conn, &t2).unwrap());
        assert!(!revoke_family_of(&conn, "unknown").unwrap());
        assert_eq!(consume(&conn, &t2, 1).unwrap(), Consumed::Revoked);
    }
}
