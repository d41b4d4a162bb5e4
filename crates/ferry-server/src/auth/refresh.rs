//! Rotating refresh tokens: the rules, without a database.
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
//!
//! The storage backend reads the presented token (and, for a used one, its
//! successors) under a lock on its family, asks [`judge`], and carries out
//! the verdict in the same transaction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long after its first use a refresh token may be presented again (a
/// client retrying after a lost answer). Long enough for a client's request
/// timeout and a retry, short enough to keep a stolen token's window small.
pub const REUSE_GRACE_MS: i64 = 60_000;

/// Expired tokens are forgotten this long after they expire.
pub const PURGE_AFTER_MS: i64 = 24 * 3600 * 1000;

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

/// A token to store: a login's first, or a refresh's next in its family.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub hash: Vec<u8>,
    pub expires_at: i64,
    pub created_at: i64,
}

/// Whether and why a stored token no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Live,
    /// Revoked: logout, reuse, or the account was disabled.
    Revoked,
    /// An answer lost on its way, superseded by a retry of its predecessor.
    SupersededByRetry,
}

impl Revocation {
    /// Stored as a small integer by both backends.
    pub fn to_code(self) -> i16 {
        match self {
            Revocation::Live => 0,
            Revocation::Revoked => 1,
            Revocation::SupersededByRetry => 2,
        }
    }

    pub fn from_code(code: i64) -> Self {
        match code {
            0 => Revocation::Live,
            2 => Revocation::SupersededByRetry,
            _ => Revocation::Revoked,
        }
    }
}

/// The presented token as stored.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub family: String,
    pub user: String,
    pub expires_at: i64,
    pub used: bool,
    pub revocation: Revocation,
}

/// What the tokens issued after a used one say. Tokens of a family form a
/// chain in insertion order, so its successors are the family's later rows.
#[derive(Debug, Clone, Copy)]
pub struct Successors {
    /// When the first successor was issued (the token's first use).
    pub first_created_at: Option<i64>,
    pub any_used: bool,
}

/// Whether [`judge`] needs the token's successors.
pub fn needs_successors(token: &StoredToken, now: i64) -> bool {
    token.revocation == Revocation::Live && token.used && token.expires_at > now
}

/// What presenting a refresh token amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: mark it used and issue the next token of its family.
    Rotate,
    /// A retry of a just-used token within the grace window: revoke its
    /// unused successors (as superseded) and issue the next token.
    RotateRetry,
    /// Used before (or a superseded answer presented): revoke the family.
    Reused,
    /// Unknown, expired or revoked: refuse, change nothing.
    Refuse,
}

pub fn judge(token: Option<&StoredToken>, successors: Option<Successors>, now: i64) -> Verdict {
    let Some(token) = token else { return Verdict::Refuse };
    match token.revocation {
        // Only an answer lost on its way is superseded by a retry: its
        // client never saw it. Someone presenting it anyway got it from
        // elsewhere, and the retry may have been theirs: end the family.
        Revocation::SupersededByRetry => return Verdict::Reused,
        Revocation::Revoked => return Verdict::Refuse,
        Revocation::Live => {}
    }
    if token.used {
        let within_grace = match successors {
            Some(Successors { first_created_at: Some(first_use), any_used }) => {
                !any_used && now - first_use <= REUSE_GRACE_MS
            }
            // Used but never followed by a successor: not a lost answer.
            _ => false,
        };
        return if token.expires_at > now && within_grace { Verdict::RotateRetry } else { Verdict::Reused };
    }
    if token.expires_at <= now {
        return Verdict::Refuse;
    }
    Verdict::Rotate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(used: bool, revocation: Revocation) -> StoredToken {
        StoredToken { family: "f".into(), user: "ann".into(), expires_at: 10_000_000, used, revocation }
    }

    #[test]
    fn verdicts() {
        let fresh = token(false, Revocation::Live);
        assert_eq!(judge(Some(&fresh), None, 1), Verdict::Rotate);
        assert_eq!(judge(None, None, 1), Verdict::Refuse);
        assert_eq!(judge(Some(&token(false, Revocation::Revoked)), None, 1), Verdict::Refuse);
        assert_eq!(judge(Some(&token(false, Revocation::SupersededByRetry)), None, 1), Verdict::Reused);
        let expired = StoredToken { expires_at: 5, ..fresh.clone() };
        assert_eq!(judge(Some(&expired), None, 5), Verdict::Refuse);

        let used = token(true, Revocation::Live);
        assert!(needs_successors(&used, 1));
        let lost = Successors { first_created_at: Some(1000), any_used: false };
        assert_eq!(judge(Some(&used), Some(lost), 1000 + REUSE_GRACE_MS), Verdict::RotateRetry);
        assert_eq!(judge(Some(&used), Some(lost), 1001 + REUSE_GRACE_MS), Verdict::Reused);
        let moved_on = Successors { any_used: true, ..lost };
        assert_eq!(judge(Some(&used), Some(moved_on), 1500), Verdict::Reused);
        let none = Successors { first_created_at: None, any_used: false };
        assert_eq!(judge(Some(&used), Some(none), 1500), Verdict::Reused);
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = generate();
        let (b, _) = generate();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(hash(&a), ha);
    }
}
