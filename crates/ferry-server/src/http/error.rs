//! Error answers: every non-2xx response carries an [`ErrorBody`].

use axum::http::{header::RETRY_AFTER, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferry_protocol::{ErrorBody, ErrorCode};

/// What a client is told to wait while the database is unavailable: long
/// enough not to hammer a database that is restarting, short enough that
/// sync resumes soon after it is back.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

/// An error answer: status, machine-readable code, message for people.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedRequest, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    pub fn invalid_credentials() -> Self {
        // Same words whether or not the user exists: no account probing.
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials, "wrong user name or password")
    }

    pub fn invalid_refresh_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidRefreshToken, message)
    }

    /// An operator disabled the account: 403 to a sign-in, 401 to a token.
    pub fn account_disabled(status: StatusCode) -> Self {
        Self::new(
            status,
            ErrorCode::AccountDisabled,
            "this account is disabled; ask your organisation's coordinator to enable it",
        )
    }

    /// Too many failed sign-ins: wait `retry_after_secs`.
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message);
        e.retry_after = Some(retry_after_secs);
        e
    }

    pub fn database_changed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::DatabaseChanged, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal server error; nothing of this request was applied, try again later",
        )
    }

    pub fn unavailable() -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the server's database is unavailable; nothing of this request was applied, try again shortly",
        );
        e.retry_after = Some(UNAVAILABLE_RETRY_AFTER_SECS);
        e
    }
}

impl From<crate::Error> for ApiError {
    fn from(err: crate::Error) -> Self {
        // The details are for the operator's log, not for the client.
        match err {
            crate::Error::Unavailable(_) => {
                tracing::warn!(error = %err, "request answered 503: database unavailable");
                Self::unavailable()
            }
            _ => {
                tracing::error!(error = %err, "request failed");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code, message: self.message };
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
