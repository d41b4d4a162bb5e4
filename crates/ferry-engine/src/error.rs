//! The engine's error type. Every message says what is wrong and what to do.

use crate::transport::TransportError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad input from the caller (unknown entity name, non-object JSON, ...).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("no server configured: run `ferry init --server URL` first")]
    NotConfigured,
    #[error("not signed in: run `ferry login --user NAME --password-stdin`")]
    NotSignedIn,
    #[error("sign-in needed: {0}; run `ferry login --user NAME --password-stdin` (queued changes are kept)")]
    NeedsSignIn(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("token store: {0}")]
    TokenStore(String),
    #[error("local database {path}: {source}")]
    Database {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("local database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io { context: context.into(), source }
    }
}
