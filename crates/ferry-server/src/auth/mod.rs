//! Authentication: password login, access JWTs, rotating refresh tokens.

pub mod jwt;
pub mod password;
pub mod refresh;

use std::time::Duration;

use ferry_protocol::TokenResponse;
use rusqlite::{Connection, TransactionBehavior};
use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::Result;
use crate::users;

pub use jwt::{JwtKeys, TokenError};

/// Token issuing policy of a running server.
pub struct Auth {
    pub keys: JwtKeys,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

/// Why a refresh was refused (all answered as `invalid_refresh_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFailure {
    /// Unknown, expired, revoked, or its user is gone.
    Invalid,
    /// A used token was presented again; its family is now revoked.
    Reused,
}

impl Auth {
    /// Issues an access token and a refresh token. `family` continues a
    /// refresh chain; `None` starts a new one (a login).
    pub fn issue_pair(&self, conn: &Connection, user: &str, org: &str, family: Option<&str>) -> Result<TokenResponse> {
        let now = now_ms();
        let (access_token, access_expires_at) = self.keys.issue(user, org, self.access_ttl, now)?;
        let (refresh_token, refresh_hash) = refresh::generate();
        let refresh_ttl_ms = i64::try_from(self.refresh_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let refresh_expires_at = now.saturating_add(refresh_ttl_ms);
        let family = family.map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
        refresh::store(conn, &refresh_hash, &family, user, refresh_expires_at, now)?;
        Ok(TokenResponse {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            user: user.to_owned(),
            org: org.to_owned(),
            server_time: now,
        })
    }

    /// Rotates `token`: marks it used and issues the next pair of its family.
    /// A retry of a just-used token within the grace window (a client whose
    /// answer was lost) gets a new pair too; see [`refresh`].
    pub fn refresh(&self, conn: &mut Connection, token: &str) -> Result<Result<TokenResponse, RefreshFailure>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let consumed = refresh::consume(&tx, token, now_ms())?;
        if matches!(consumed, refresh::Consumed::Retried { .. }) {
            tracing::info!(
                "refresh token presented again within the grace window (a lost answer); unused successor revoked"
            );
        }
        let answer = match consumed {
            refresh::Consumed::Ok { family, user } | refresh::Consumed::Retried { family, user } => {
                match users::find(&tx, &user)? {
                    Some(u) => Ok(self.issue_pair(&tx, &u.name, &u.org, Some(&family))?),
                    None => {
                        // The account was removed: its sessions end with it.
                        refresh::revoke_family(&tx, &family)?;
                        Err(RefreshFailure::Invalid)
                    }
                }
            }
            refresh::Consumed::Reused => Err(RefreshFailure::Reused),
            refresh::Consumed::Unknown | refresh::Consumed::Expired | refresh::Consumed::Revoked => {
                Err(RefreshFailure::Invalid)
            }
        };
        // Commit in every case: a reuse must persist the family's revocation.
        tx.commit()?;
        Ok(answer)
    }
}
