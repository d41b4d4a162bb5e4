//! Signing in and staying signed in: the session holds the tokens, refreshes
//! the access token before it expires (and once after a 401), and makes sure
//! only one refresh of an account runs at a time — across tasks and, through
//! a lock file keyed on the account, across processes (the CLI, the daemon
//! and the app share one refresh token, whatever their data dirs, and a
//! rotated refresh token used twice revokes the whole family).

mod lock;
mod store;

pub use store::{TokenStore, TokenStoreChoice, Tokens};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

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
    cached: Mutex<Option<Tokens>>,
    /// `cached` holds renewed tokens the store refused to save: they are
    /// the only valid ones, so they win over the store until saved.
    unsaved: AtomicBool,
    /// The refresh token the server last refused, to tell a sign-in made
    /// meanwhile (another process) from the refused one.
    refused: Mutex<Option<String>>,
    refreshing: tokio::sync::Mutex<()>,
    lock: lock::AccountLock,
}

impl Session {
    /// The session of `user` on `server`, with tokens in `choice`.
    pub fn new(choice: &TokenStoreChoice, user: &str, server: &str) -> Session {
        let account = Self::account(user, server);
        Session {
            store: store::open(choice, &account),
            cached: Default::default(),
            unsaved: AtomicBool::new(false),
            refused: Default::default(),
            refreshing: Default::default(),
            lock: lock::AccountLock::new(choice, &account),
        }
    }

    /// Keyring account name of a user on a server.
    pub fn account(user: &str, server: &str) -> String {
        format!("{user}@{server}")
    }

    pub fn save_login(&self, t: &TokenResponse) -> Result<(), AuthError> {
        let tokens = tokens_from(t);
        self.store.save(&tokens).map_err(AuthError::Store)?;
        *self.cached() = Some(tokens);
        self.unsaved.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub fn has_tokens(&self) -> Result<bool, AuthError> {
        Ok(self.load()?.is_some())
    }

    /// Forgets the tokens here; returns the refresh token so the caller can
    /// revoke it on the server.
    pub fn clear(&self) -> Result<Option<String>, AuthError> {
        let newest =
            if self.unsaved.load(Ordering::SeqCst) { self.cached().clone() } else { self.store.load().ok().flatten() };
        self.store.clear().map_err(AuthError::Store)?;
        *self.cached() = None;
        self.unsaved.store(false, Ordering::SeqCst);
        Ok(newest.map(|t| t.refresh_token))
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<Tokens>> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load(&self) -> Result<Option<Tokens>, AuthError> {
        if let Some(t) = self.cached().clone() {
            return Ok(Some(t));
        }
        let t = self.store.load().map_err(AuthError::Store)?;
        *self.cached() = t.clone();
        Ok(t)
    }

    /// Tries again to save renewed tokens the store refused earlier.
    fn retry_unsaved(&self) {
        if !self.unsaved.load(Ordering::SeqCst) {
            return;
        }
        let Some(tokens) = self.cached().clone() else { return };
        match self.store.save(&tokens) {
            Ok(()) => {
                self.unsaved.store(false, Ordering::SeqCst);
                tracing::info!("the renewed sign-in is saved now");
            }
            Err(e) => tracing::warn!(error = %e, "still cannot save the renewed sign-in; keeping it in memory"),
        }
    }

    /// Whether the store holds a sign-in other than the one the server last
    /// refused (someone signed in again meanwhile, e.g. `ferry login` in
    /// another process). If so, it is used from now on.
    pub fn signed_in_again(&self) -> bool {
        let Some(refused) = self.refused.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
            return false;
        };
        match self.store.load() {
            Ok(Some(t)) if t.refresh_token != refused => {
                *self.cached() = Some(t);
                self.unsaved.store(false, Ordering::SeqCst);
                true
            }
            _ => false,
        }
    }

    /// A valid access token, refreshed first if it is about to expire.
    pub async fn access_token(&self, transport: &Transport, clock: &ServerClock) -> Result<String, AuthError> {
        self.retry_unsaved();
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
        // Two processes refreshing one account at once would each send the
        // same refresh token; refuse rather than risk it.
        let _one_process = self.lock.acquire().await.map_err(AuthError::Store)?;
        self.retry_unsaved();
        // Another task or process may have refreshed while we waited: the
        // store is the source of truth (unless it refused our last save).
        let current = if self.unsaved.load(Ordering::SeqCst) {
            self.cached().clone()
        } else {
            self.store.load().map_err(AuthError::Store)?
        }
        .ok_or(AuthError::NotSignedIn)?;
        if current.access_token != stale && fresh(&current, clock.now_ms()) {
            *self.cached() = Some(current.clone());
            return Ok(current.access_token);
        }
        if current.refresh_expires_at <= clock.now_ms() {
            self.note_refused(&current);
            return Err(AuthError::NeedsSignIn("the sign-in expired after a long time offline".into()));
        }
        // A lost answer is retried at once with the same token: the server
        // accepts that within its grace window, and a CLI run would
        // otherwise give up before it could.
        let mut answer = transport.refresh(&current.refresh_token, clock).await;
        if matches!(&answer, Err(e) if e.is_transient()) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            answer = transport.refresh(&current.refresh_token, clock).await;
        }
        match answer {
            Ok(resp) => {
                let tokens = tokens_from(&resp);
                *self.cached() = Some(tokens.clone());
                // Save the rotated refresh token before anything uses the new
                // access token. If the store refuses, the tokens stay in
                // memory (the old refresh token is spent) and the save is
                // retried on every use until it works.
                match self.store.save(&tokens) {
                    Ok(()) => self.unsaved.store(false, Ordering::SeqCst),
                    Err(e) => {
                        self.unsaved.store(true, Ordering::SeqCst);
                        tracing::error!(
                            error = %e,
                            "cannot save the renewed sign-in; keeping it in memory and retrying. \
                             If Ferry stops before it is saved, you will have to sign in again"
                        );
                    }
                }
                tracing::debug!("access token refreshed");
                Ok(tokens.access_token)
            }
            Err(TransportError::Auth { message, .. }) => {
                self.note_refused(&current);
                Err(AuthError::NeedsSignIn(format!("the server refused to renew the sign-in: {message}")))
            }
            Err(e) => Err(AuthError::Transport(e)),
        }
    }

    fn note_refused(&self, t: &Tokens) {
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.refresh_token.clone());
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
