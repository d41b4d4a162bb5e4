//! Errors of the server library.
//!
//! HTTP handlers turn these into `500 internal` answers, or `503
//! unavailable` with `Retry-After` while the database cannot be reached (see
//! `http::error`); the CLI prints them. Client mistakes are not errors here:
//! they are answered directly by the HTTP layer or become per-mutation
//! `rejected` outcomes. No database library's error type appears here: each
//! storage backend turns its own into these.

use std::net::SocketAddr;

/// Everything that can go wrong inside the server that is not the client's
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open database {location}: {message}")]
    Open { location: String, message: String },
    #[error("database error ({backend}): {message}")]
    Database { backend: &'static str, message: String },
    /// The database cannot be reached or is overloaded right now; nothing of
    /// the request was applied and it may be retried.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error(
        "database schema version {found} is newer than this ferry-server knows ({known}); \
         upgrade ferry-server"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("user {0:?} already exists")]
    UserExists(String),
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("invalid {what}: {reason}")]
    InvalidName { what: &'static str, reason: String },
    #[error("the password must not be empty")]
    EmptyPassword,
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    #[error("cannot sign access token: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("background task failed: {0}")]
    Task(String),
    /// A TLS certificate or key file that cannot be used.
    #[error("{0}")]
    Tls(String),
    /// `ferry-server copy` refused or found the source changing under it.
    #[error("{0}")]
    Copy(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
