//! Authentication: password login, access JWTs, rotating refresh tokens.

pub mod jwt;
pub mod password;
pub mod refresh;
pub mod throttle;

use std::time::Duration;

use ferry_protocol::TokenResponse;
use uuid::Uuid;

use crate::clock::now_ms;
use crate::error::Result;
use crate::storage::{RefreshFailure, Rotation, Storage};
use crate::users::User;

pub use jwt::{JwtKeys, TokenError};

/// Token issuing policy of a running server.
pub struct Auth {
    pub keys: JwtKeys,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl Auth {
    fn next_token(&self, now: i64) -> (String, refresh::NewToken) {
        let (token, hash) = refresh::generate();
        let ttl_ms = i64::try_from(self.refresh_ttl.as_millis()).unwrap_or(i64::MAX / 2);
        (token, refresh::NewToken { hash, expires_at: now.saturating_add(ttl_ms), created_at: now })
    }

    fn pair(&self, user: &User, refresh_token: String, next: &refresh::NewToken, now: i64) -> Result<TokenResponse> {
        let (access_token, access_expires_at) = self.keys.issue(user, self.access_ttl, now)?;
        Ok(TokenResponse {
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at: next.expires_at,
            user: user.name.clone(),
            org: user.org.clone(),
            server_time: now,
        })
    }

    /// Starts a new refresh family for `user` (a login) and issues its
    /// first pair.
    pub async fn login(&self, storage: &dyn Storage, user: &User) -> Result<TokenResponse> {
        let now = now_ms();
        let (token, next) = self.next_token(now);
        let family = Uuid::new_v4().to_string();
        storage.store_refresh_token(&family, &user.name, &next).await?;
        self.pair(user, token, &next, now)
    }

    /// Rotates `token`: marks it used and issues the next pair of its family.
    /// A retry of a just-used token within the grace window (a client whose
    /// answer was lost) gets a new pair too; see [`refresh`].
    pub async fn refresh(&self, storage: &dyn Storage, token: &str) -> Result<Result<TokenResponse, RefreshFailure>> {
        let now = now_ms();
        let (next_token, next) = self.next_token(now);
        match storage.rotate_refresh_token(&refresh::hash(token), &next, now).await? {
            Rotation::Rotated { user, retried, .. } => {
                if retried {
                    tracing::info!(
                        "refresh token presented again within the grace window (a lost answer); unused successor revoked"
                    );
                }
                Ok(Ok(self.pair(&user, next_token, &next, now)?))
            }
            Rotation::Refused(failure) => Ok(Err(failure)),
        }
    }
}
