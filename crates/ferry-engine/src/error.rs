//! The engine's error type. Every message says what is wrong and what to do.

use crate::model::Problem;
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
    #[error("local database {path}: {}", describe_db(.source))]
    Database {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("local database: {}", describe_db(.0))]
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
    /// What kind of trouble this is, in the status's terms (the text of
    /// the error stays the details).
    pub fn problem(&self) -> Problem {
        match self {
            EngineError::Transport(t) => t.problem(),
            EngineError::NotSignedIn | EngineError::NeedsSignIn(_) => Problem::SignInNeeded,
            EngineError::Database { .. } | EngineError::Db(_) | EngineError::Io { .. } => Problem::LocalData,
            EngineError::Invalid(_)
            | EngineError::NotFound(_)
            | EngineError::NotConfigured
            | EngineError::TokenStore(_) => Problem::Other,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io { context: context.into(), source }
    }
}

/// SQLite's error, plus what it means for the user and what to do, for the
/// failures a person can act on. A failed write's transaction rolled back,
/// so what was queued before it is still queued.
fn describe_db(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    const KEPT: &str = "; nothing already queued is lost";
    let hint = match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => format!("the disk is full: free some space and try again{KEPT}"),
        Some(ErrorCode::SystemIoFailure) => format!(
            "writing to the disk failed (it may be full, or a file size limit was reached): \
             free some space or check the disk, then try again{KEPT}"
        ),
        Some(ErrorCode::ReadOnly) => {
            format!("the data dir is read-only: make it writable again (or use another --data-dir){KEPT}")
        }
        Some(ErrorCode::CannotOpen) => "check that the data dir exists and is yours".to_string(),
        Some(ErrorCode::DatabaseCorrupt) | Some(ErrorCode::NotADatabase) => {
            "the file is damaged: move it away and restore a backup".to_string()
        }
        _ => return e.to_string(),
    };
    format!("{e} — {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> EngineError {
        EngineError::Db(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    #[test]
    fn database_failures_say_what_to_do() {
        let full = sqlite(13).to_string(); // SQLITE_FULL
        assert!(full.contains("disk is full") && full.contains("nothing already queued is lost"), "{full}");
        let io = sqlite(778).to_string(); // SQLITE_IOERR_WRITE, e.g. past a file size limit
        assert!(io.contains("file size limit") && io.contains("free some space"), "{io}");
        let ro = sqlite(8).to_string(); // SQLITE_READONLY
        assert!(ro.contains("read-only"), "{ro}");
        let bad = sqlite(26).to_string(); // SQLITE_NOTADB
        assert!(bad.contains("damaged") && !bad.contains("nothing already queued"), "{bad}");
        let other = sqlite(5).to_string(); // SQLITE_BUSY: no made-up advice
        assert!(!other.contains(" — "), "{other}");
    }

    #[test]
    fn failures_are_classified_for_the_status() {
        assert_eq!(sqlite(13).problem(), Problem::LocalData);
        let io = EngineError::io("cannot write", std::io::Error::other("read-only file system"));
        assert_eq!(io.problem(), Problem::LocalData);
        assert_eq!(EngineError::NeedsSignIn("refused".into()).problem(), Problem::SignInNeeded);
        assert_eq!(EngineError::NotSignedIn.problem(), Problem::SignInNeeded);
        assert_eq!(EngineError::NotConfigured.problem(), Problem::Other);
        let offline = TransportError::Transient {
            reason: "connection failed".into(),
            retry_after: None,
            cause: crate::transport::TransientCause::Network,
        };
        assert_eq!(EngineError::from(offline).problem(), Problem::Unreachable);
        let busy = TransportError::Transient {
            reason: "HTTP 503".into(),
            retry_after: None,
            cause: crate::transport::TransientCause::Http(503),
        };
        assert_eq!(EngineError::from(busy).problem(), Problem::ServerError);
        assert_eq!(EngineError::from(TransportError::BadResponse("x".into())).problem(), Problem::BadAnswer);
    }
}
