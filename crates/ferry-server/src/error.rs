//! Errors of the server library.
//!
//! HTTP handlers turn these into `500 internal` answers (see
//! `http::error`); the CLI prints them. Client mistakes are not errors here:
//! they are answered directly by the HTTP layer or become per-mutation
//! `rejected` outcomes.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong inside the server that is not the client's
/// fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
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
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
