//! User accounts: each belongs to exactly one organisation.

use crate::auth::password;
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::storage::Storage;

/// Longest user or organisation name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub org: String,
    /// argon2 PHC string.
    pub password_hash: String,
    pub created_at: i64,
    /// When an operator disabled the account (ms); `None` while it may sign in.
    pub disabled_at: Option<i64>,
    /// Access tokens carry the epoch they were issued in; disabling the
    /// account or changing its password moves it on, which ends every
    /// session at its next request. Starts at `created_at`, so a name
    /// removed and created again never accepts the old account's tokens.
    pub session_epoch: i64,
}

/// User and organisation names: 1-64 characters, no control characters, no
/// surrounding whitespace (they end up in tokens, logs and `edited_by`).
pub fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        Some(format!("must be 1-{MAX_NAME_CHARS} characters"))
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if name.trim() != name {
        Some("must not start or end with whitespace".to_owned())
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName { what, reason: format!("{name:?} {reason}") }),
        None => Ok(()),
    }
}

/// Creates user `name` in organisation `org`. The password is hashed with
/// argon2 on the blocking pool (it is deliberately slow).
pub async fn add_user(storage: &dyn Storage, name: &str, org: &str, password: &str) -> Result<()> {
    validate_name("user name", name)?;
    validate_name("organisation", org)?;
    if password.is_empty() {
        return Err(Error::EmptyPassword);
    }
    let password_hash = hash_password(password).await?;
    let now = now_ms();
    storage
        .add_user(&User {
            name: name.to_owned(),
            org: org.to_owned(),
            password_hash,
            created_at: now,
            disabled_at: None,
            session_epoch: now,
        })
        .await
}

/// Replaces `name`'s password and ends every session it has (its refresh
/// families are revoked and its access tokens refused from the next
/// request). `Error::NoSuchUser` if there is no such account.
pub async fn set_password(storage: &dyn Storage, name: &str, password: &str) -> Result<()> {
    if password.is_empty() {
        return Err(Error::EmptyPassword);
    }
    let hash = hash_password(password).await?;
    found(name, storage.set_password(name, &hash).await?)
}

/// Disables (`true`) or enables `name`. Disabling ends every session at
/// once, as [`set_password`] does; enabling lets the user sign in again
/// (old sessions stay ended).
pub async fn set_disabled(storage: &dyn Storage, name: &str, disabled: bool) -> Result<()> {
    found(name, storage.set_user_disabled(name, disabled.then(now_ms)).await?)
}

/// Removes `name` and its sessions. The organisation's records stay, and
/// so does their `edited_by`.
pub async fn remove(storage: &dyn Storage, name: &str) -> Result<()> {
    found(name, storage.remove_user(name).await?)
}

fn found(name: &str, found: bool) -> Result<()> {
    if found {
        Ok(())
    } else {
        Err(Error::NoSuchUser(name.to_owned()))
    }
}

async fn hash_password(password: &str) -> Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&password)).await.map_err(|e| Error::Task(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("user name", "ann").is_ok());
        assert!(validate_name("user name", "Ann Smith").is_ok());
        assert!(validate_name("user name", "").is_err());
        assert!(validate_name("user name", " ann").is_err());
        assert!(validate_name("user name", "a\nb").is_err());
        assert!(validate_name("user name", &"a".repeat(65)).is_err());
    }
}
