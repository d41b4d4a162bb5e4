//! PostgreSQL errors, classified: "unavailable, retry later" (the database
//! is unreachable, restarting or out of connections), a race lost (run the
//! transaction again), or a database error.

use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

use crate::error::Error;

/// An error of one attempt at a transaction.
#[derive(Debug)]
pub struct PgError(tokio_postgres::Error);

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        PgError(e)
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-postgres's Display of a database error omits the detail
        // that says which constraint or row; the DbError has it.
        f.write_str(&PgError::from_ref(&self.0))
    }
}

impl PgError {
    /// A deadlock or serialization failure: nothing was applied, and the
    /// same transaction run again will likely succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.0.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE)
    }

    fn is_unavailable(&self) -> bool {
        if self.0.is_closed() {
            return true;
        }
        match self.0.code() {
            Some(code) => {
                let c = code.code();
                // 08: connection exception; 53: insufficient resources (too
                // many connections, disk full); 57P01-57P03: shutting down,
                // crashed, starting up.
                c.starts_with("08") || c.starts_with("53") || matches!(c, "57P01" | "57P02" | "57P03")
            }
            // No SQLSTATE: the connection itself failed (I/O, TLS, closed).
            None => true,
        }
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        if e.is_unavailable() {
            Error::Unavailable(format!("PostgreSQL: {e}"))
        } else {
            Error::Database { backend: "postgres", message: e.to_string() }
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::from(PgError(e))
    }
}

/// Waiting for, making or checking a pooled connection failed: whatever
/// PostgreSQL said (down, refusing connections to this database, even a
/// wrong password after an operator's change), this node cannot serve now
/// and the client should retry; the message in the log says why.
pub fn from_pool(e: PoolError) -> Error {
    Error::Unavailable(describe_pool(&e))
}

pub fn describe_pool(e: &PoolError) -> String {
    match e {
        PoolError::Timeout(kind) => format!("no PostgreSQL connection within the pool's deadline ({kind:?})"),
        PoolError::Backend(e) => format!("cannot connect to PostgreSQL: {}", PgError::from_ref(e)),
        other => format!("PostgreSQL connection pool: {other}"),
    }
}

impl PgError {
    /// The message with its causes ("error connecting to server: Connection
    /// refused (os error 111)"), or the database's own error.
    fn from_ref(e: &tokio_postgres::Error) -> String {
        if let Some(db) = e.as_db_error() {
            return db.to_string();
        }
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text = format!("{text}: {cause_text}");
            }
            source = cause.source();
        }
        text
    }
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`: URLs go
/// into logs and error messages, passwords never.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    // A password can also come as a query parameter.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query.split('&').filter(|kv| !kv.starts_with("password=")).collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(redact_url("postgres://ann:s3cret@db.example:5432/ferry"), "postgres://ann@db.example:5432/ferry");
        assert_eq!(
            redact_url("postgresql://db/ferry?user=a&password=x&sslmode=require"),
            "postgresql://db/ferry?user=a&sslmode=require"
        );
        assert_eq!(redact_url("postgres://db/ferry?password=x"), "postgres://db/ferry");
        assert_eq!(redact_url("postgres://ann@db/ferry"), "postgres://ann@db/ferry");
        assert_eq!(redact_url("postgres://a:b:c@[::1]:5/x"), "postgres://a@[::1]:5/x");
    }
}
