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
    let password = password.to_owned();
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    storage.add_user(&User { name: name.to_owned(), org: org.to_owned(), password_hash, created_at: now_ms() }).await
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
