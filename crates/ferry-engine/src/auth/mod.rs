//! Signing in and staying signed in: the session holds the tokens, refreshes
//! the access token before it expires (and once after a 401), and makes sure
//! only one refresh runs at a time — across tasks and across processes (the
//! CLI and the daemon share one refresh token, and a rotated refresh token
//! used twice revokes the whole family).

mod store;

pub use store::{TokenStore, TokenStoreChoice, Tokens};

use std::path::PathBuf;

use ferry_protocol::TokenResponse;

use crate::clock::ServerClock;
use crate::transport::{Transport, TransportError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("not signed in")]
    NotSignedIn,
    #[error("{0}")]
    NeedsSignIn(String),
    #[error(transparent)]
    Transport(TransportError),
    #[error("{0}")]
    Store(String),
}

pub struct Session {
    store: Box<dyn TokenStore>,
    cached: std::sync::Mutex<Option<Tokens>>,
    refreshing: tokio::sync::Mutex<()>,
    lock_path: PathBuf,
}

impl Session {
    pub fn new(choice: &TokenStoreChoice, account: &str, lock_path: PathBuf) -> Session {
        Session {
            store: store::open(choice, account),
            cached: Default::default(),
            refreshing: Default::default(),
            lock_path,
        }
    }

    /// Keyring account name of a user on a server.
    pub fn account(user: &str, server: &str) -> String {
        format!("{user}@{server}")
    }

    pub fn save_login(&self, t: &TokenResponse) -> Result<(), AuthError> {
        let tokens = tokens_from(t);
        self.store.save(&tokens).map_err(AuthError::Store)?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens);
        Ok(())
    }

    pub fn has_tokens(&self) -> Result<bool, AuthError> {
        Ok(self.load()?.is_some())
    }

    /// Forgets the tokens here; returns the refresh token so the caller can
    /// revoke it on the server.
    pub fn clear(&self) -> Result<Option<String>, AuthError> {
        let old = self.store.load().ok().flatten().map(|t| t.refresh_token);
        self.store.clear().map_err(AuthError::Store)?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(old)
    }

    fn load(&self) -> Result<Option<Tokens>, AuthError> {
        if let Some(t) = self.cached.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(Some(t));
        }
        let t = self.store.load().map_err(AuthError::Store)?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = t.clone();
        Ok(t)
    }

    /// A valid access token, refreshed first if it is about to expire.
    pub async fn access_token(&self, transport: &Transport, clock: &ServerClock) -> Result<String, AuthError> {
        let t = self.load()?.ok_or(AuthError::NotSignedIn)?;
        if fresh(&t, clock.now_ms()) {
            return Ok(t.access_token);
        }
        self.refresh(transport, clock, &t.access_token).await
    }

    /// Refreshes after the server refused `stale` (a 401), or because it is
    /// about to expire. Concurrent callers share one refresh.
    pub async fn refresh(&self, transport: &Transport, clock: &ServerClock, stale: &str) -> Result<String, AuthError> {
        let _one_task = self.refreshing.lock().await;
        let _one_process = crate::filelock::FileLock::acquire(self.lock_path.clone()).await;
        // Another task or process may have refreshed while we waited: the
        // store is the source of truth.
        let current = self.store.load().map_err(AuthError::Store)?.ok_or(AuthError::NotSignedIn)?;
        if current.access_token != stale && fresh(&current, clock.now_ms()) {
            *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(current.clone());
            return Ok(current.access_token);
        }
        if current.refresh_expires_at <= clock.now_ms() {
            return Err(AuthError::NeedsSignIn("the sign-in expired after a long time offline".into()));
        }
        match transport.refresh(&current.refresh_token, clock).await {
            Ok(resp) => {
                let tokens = tokens_from(&resp);
                // Save the rotated refresh token before anything uses the new
                // access token: losing it would mean signing in again.
                self.store.save(&tokens).map_err(AuthError::Store)?;
                *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(tokens.clone());
                tracing::debug!("access token refreshed");
                Ok(tokens.access_token)
            }
            Err(TransportError::Auth { message, .. }) => {
                Err(AuthError::NeedsSignIn(format!("the server refused to renew the sign-in: {message}")))
            }
            Err(e) => Err(AuthError::Transport(e)),
        }
    }
}

/// Usable for a while yet: refresh a quarter of the lifetime (at most a
/// minute) before expiry, so requests never race the expiry.
fn fresh(t: &Tokens, now: i64) -> bool {
    let lifetime = (t.access_expires_at - t.issued_at).max(0);
    let margin = (lifetime / 4).min(60_000);
    t.access_expires_at - margin > now
}

fn tokens_from(t: &TokenResponse) -> Tokens {
    Tokens {
        access_token: t.access_token.clone(),
        access_expires_at: t.access_expires_at,
        refresh_token: t.refresh_token.clone(),
        refresh_expires_at: t.refresh_expires_at,
        issued_at: t.server_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_margin() {
        let t = Tokens {
            access_token: String::new(),
            access_expires_at: 2000,
            refresh_token: String::new(),
            refresh_expires_at: 0,
            issued_at: 0,
        };
        assert!(fresh(&t, 1000));
        assert!(!fresh(&t, 1600)); // within the last quarter
        let long = Tokens { access_expires_at: 900_000, ..t };
        assert!(fresh(&long, 800_000));
        assert!(!fresh(&long, 845_000)); // within the last minute
    }
}
