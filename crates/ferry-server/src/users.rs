//! User accounts: each belongs to exactly one organisation.

use rusqlite::{Connection, OptionalExtension};

use crate::auth::password;
use crate::clock::now_ms;
use crate::error::{Error, Result};

/// Longest user or organisation name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub org: String,
    pub password_hash: String,
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

/// Creates a user. Hashing is deliberately slow (argon2), so call this off
/// the async workers.
pub fn add_user(conn: &Connection, name: &str, org: &str, password: &str) -> Result<()> {
    validate_name("user name", name)?;
    validate_name("organisation", org)?;
    if password.is_empty() {
        return Err(Error::EmptyPassword);
    }
    let hash = password::hash(password)?;
    let inserted = conn.execute(
        "INSERT INTO users (name, org, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO NOTHING",
        (name, org, hash, now_ms()),
    )?;
    if inserted == 0 {
        return Err(Error::UserExists(name.to_owned()));
    }
    Ok(())
}

pub fn find(conn: &Connection, name: &str) -> Result<Option<User>> {
    let mut stmt = conn.prepare_cached("SELECT name, org, password_hash FROM users WHERE name = ?1")?;
    Ok(stmt.query_row([name], |r| Ok(User { name: r.get(0)?, org: r.get(1)?, password_hash: r.get(2)? })).optional()?)
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

    #[test]
    fn add_and_find() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::db::migrations::migrate(&mut conn).unwrap();
        add_user(&conn, "ann", "org1", "pw").unwrap();
        assert!(matches!(add_user(&conn, "ann", "org2", "pw"), Err(Error::UserExists(_))));
        assert!(matches!(add_user(&conn, "bob", "org1", ""), Err(Error::EmptyPassword)));
        let u = find(&conn, "ann").unwrap().unwrap();
        assert_eq!(u.org, "org1");
        assert!(password::verify("pw", &u.password_hash));
        assert!(find(&conn, "nobody").unwrap().is_none());
    }
}
