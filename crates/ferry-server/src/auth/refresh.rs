//! Rotating refresh tokens.
//!
//! A refresh token is 32 random bytes (base64url), stored only as its SHA-256
//! hash. Each refresh marks the presented token used and issues the next one
//! in the same family. Presenting a used token means it leaked (or a client
//! replayed it): the whole family is revoked and its holder must sign in.
//!
//! One exception keeps a lost answer from costing a sign-in: a client whose
//! refresh answer never arrived (timeout, dropped connection) still holds the
//! token it sent and retries with it. Within [`REUSE_GRACE_MS`] of its first
//! use, and while none of its successors has been used, such a retry is
//! accepted: the unused successors (the answers the client never saw) are
//! revoked and a new pair is issued in the same family.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::error::Result;

/// How long after its first use a refresh token may be presented again (a
/// client retrying after a lost answer). Long enough for a client's request
/// timeout and a retry, short enough to keep a stolen token's window small.
pub const REUSE_GRACE_MS: i64 = 60_000;

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

pub fn store(conn: &Connection, token_hash: &[u8], family: &str, user: &str, expires_at: i64, now: i64) -> Result<()> {
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
    /// A retry of a just-used token within the grace window: its unused
    /// successors are now revoked; issue the next token in `family`.
    Retried {
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
            "SELECT rowid, family, user_name, expires_at, used, revoked FROM refresh_tokens
             WHERE token_hash = ?1",
        )?
        .query_row([&token_hash], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .optional()?;
    let Some((rowid, family, user, expires_at, used, revoked)) = row else {
        return Ok(Consumed::Unknown);
    };
    if revoked == SUPERSEDED_BY_RETRY {
        // Only an answer lost on its way is superseded by a retry: its
        // client never saw it. Someone presenting it anyway got it from
        // elsewhere, and the retry may have been theirs: end the family.
        revoke_family(conn, &family)?;
        return Ok(Consumed::Reused);
    }
    if revoked != 0 {
        return Ok(Consumed::Revoked);
    }
    if used {
        if expires_at > now && retry_within_grace(conn, &family, rowid, now)? {
            revoke_successors(conn, &family, rowid)?;
            return Ok(Consumed::Retried { family, user });
        }
        revoke_family(conn, &family)?;
        return Ok(Consumed::Reused);
    }
    if expires_at <= now {
        return Ok(Consumed::Expired);
    }
    conn.prepare_cached("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?1")?.execute([&token_hash])?;
    Ok(Consumed::Ok { family, user })
}

/// Whether presenting the used token at `rowid` again is a client retrying
/// after a lost answer: its first successor (issued when it was first used)
/// is at most [`REUSE_GRACE_MS`] old and no successor has been used since.
///
/// Tokens of a family form a chain in insertion order, and SQLite gives each
/// new row a rowid above every existing one, so the successors of a token
/// are the rows of its family with a higher rowid.
fn retry_within_grace(conn: &Connection, family: &str, rowid: i64, now: i64) -> Result<bool> {
    let (first_use, successor_used): (Option<i64>, bool) = conn
        .prepare_cached(
            "SELECT (SELECT created_at FROM refresh_tokens
                     WHERE family = ?1 AND rowid > ?2 ORDER BY rowid LIMIT 1),
                    EXISTS(SELECT 1 FROM refresh_tokens
                           WHERE family = ?1 AND rowid > ?2 AND used = 1)",
        )?
        .query_row((family, rowid), |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(match first_use {
        Some(first_use) => !successor_used && now - first_use <= REUSE_GRACE_MS,
        // Used but never followed by a successor: not a lost answer.
        None => false,
    })
}

/// `revoked` of a token superseded by a grace retry (1: revoked).
const SUPERSEDED_BY_RETRY: i64 = 2;

/// Revokes the tokens issued after the one at `rowid` in its family: answers
/// the client never received and will never present (if one is presented,
/// it was stolen: see [`consume`]).
fn revoke_successors(conn: &Connection, family: &str, rowid: i64) -> Result<()> {
    conn.prepare_cached("UPDATE refresh_tokens SET revoked = ?3 WHERE family = ?1 AND rowid > ?2 AND revoked = 0")?
        .execute((family, rowid, SUPERSEDED_BY_RETRY))?;
    Ok(())
}

pub fn revoke_family(conn: &Connection, family: &str) -> Result<()> {
    conn.prepare_cached("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?1")?.execute([family])?;
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
    conn.prepare_cached("DELETE FROM refresh_tokens WHERE expires_at < ?1")?.execute([now - GRACE_MS])?;
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

    /// Stores a new token of `family` created at `now`, as a refresh does.
    fn issue(conn: &Connection, family: &str, now: i64) -> String {
        let (t, h) = generate();
        store(conn, &h, family, "ann", now + 10_000_000, now).unwrap();
        t
    }

    fn ok() -> Consumed {
        Consumed::Ok { family: "fam".into(), user: "ann".into() }
    }

    fn retried() -> Consumed {
        Consumed::Retried { family: "fam".into(), user: "ann".into() }
    }

    #[test]
    fn rotation_and_reuse() {
        let conn = db();
        let t1 = issue(&conn, "fam", 0);
        assert_eq!(t1.len(), 43);
        assert_eq!(consume(&conn, &t1, 1000).unwrap(), ok());
        let t2 = issue(&conn, "fam", 1000);
        assert_eq!(consume(&conn, &t2, 2000).unwrap(), ok());
        let t3 = issue(&conn, "fam", 2000);
        // t1's successor has been used: presenting t1 now is a replay,
        // even within the grace window, and the whole family dies.
        assert_eq!(consume(&conn, &t1, 3000).unwrap(), Consumed::Reused);
        assert_eq!(consume(&conn, &t3, 3000).unwrap(), Consumed::Revoked);
        assert_eq!(consume(&conn, "nope", 3000).unwrap(), Consumed::Unknown);
    }

    #[test]
    fn a_retry_within_the_grace_window_replaces_the_lost_answer() {
        let conn = db();
        let other_family = issue(&conn, "other", 0);
        let t1 = issue(&conn, "fam", 0);
        assert_eq!(consume(&conn, &t1, 1000).unwrap(), ok());
        let lost = issue(&conn, "fam", 1000);
        // The answer carrying `lost` never arrived; the client retries t1.
        assert_eq!(consume(&conn, &t1, 1500).unwrap(), retried());
        let _ = lost; // never presented: its client never saw it
                      // Lost again: the grace still runs from t1's first use.
        let _lost_again = issue(&conn, "fam", 1500);
        assert_eq!(consume(&conn, &t1, 1000 + REUSE_GRACE_MS).unwrap(), retried());
        let kept = issue(&conn, "fam", 1000 + REUSE_GRACE_MS);
        let last_moment = 1000 + REUSE_GRACE_MS;
        assert_eq!(consume(&conn, &kept, last_moment).unwrap(), ok());
        let next = issue(&conn, "fam", last_moment);
        // The client moved on with its new token: t1 is a replay now, even
        // though its grace window has not passed.
        assert_eq!(consume(&conn, &t1, last_moment).unwrap(), Consumed::Reused);
        assert_eq!(consume(&conn, &next, last_moment).unwrap(), Consumed::Revoked);
        // Other families are untouched.
        assert_eq!(
            consume(&conn, &other_family, last_moment).unwrap(),
            Consumed::Ok { family: "other".into(), user: "ann".into() }
        );
    }

    /// A thief replays a used token within the grace window and gets a
    /// fresh pair; the real client then presents the successor it did
    /// receive, now superseded: that is theft, and nobody keeps the session.
    #[test]
    fn a_superseded_successor_presented_is_theft_and_ends_the_family() {
        let conn = db();
        let t1 = issue(&conn, "fam", 0);
        assert_eq!(consume(&conn, &t1, 1000).unwrap(), ok());
        let clients = issue(&conn, "fam", 1000);
        assert_eq!(consume(&conn, &t1, 1500).unwrap(), retried(), "the thief's replay");
        let thiefs = issue(&conn, "fam", 1500);
        assert_eq!(consume(&conn, &clients, 2000).unwrap(), Consumed::Reused);
        assert_eq!(consume(&conn, &thiefs, 2000).unwrap(), Consumed::Revoked, "the thief's session is over too");
    }

    #[test]
    fn a_retry_after_the_grace_window_revokes_the_family() {
        let conn = db();
        let t1 = issue(&conn, "fam", 0);
        assert_eq!(consume(&conn, &t1, 1000).unwrap(), ok());
        let t2 = issue(&conn, "fam", 1000);
        assert_eq!(consume(&conn, &t1, 1001 + REUSE_GRACE_MS).unwrap(), Consumed::Reused);
        assert_eq!(consume(&conn, &t2, 1002 + REUSE_GRACE_MS).unwrap(), Consumed::Revoked);
    }

    #[test]
    fn a_used_token_without_a_successor_is_a_replay() {
        let conn = db();
        let t1 = issue(&conn, "fam", 0);
        assert_eq!(consume(&conn, &t1, 1000).unwrap(), ok());
        assert_eq!(consume(&conn, &t1, 1001).unwrap(), Consumed::Reused);
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
