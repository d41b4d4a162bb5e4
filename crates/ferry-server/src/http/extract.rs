//! Request extractors and request-level middleware that answer with
//! [`ApiError`] bodies instead of axum's plain-text rejections.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferry_protocol::limits;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::AppState;
use crate::auth::TokenError;

/// A JSON request body. Unlike `axum::Json` it does not insist on a
/// `Content-Type` and its rejections are protocol errors:
/// `413 too_large` past the body limit, `400 malformed_request` with serde's
/// explanation otherwise.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // `Bytes` honours `DefaultBodyLimit`, which catches bodies without a
        // Content-Length (chunked) that grow past the limit.
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large_body()
            } else {
                ApiError::malformed(format!("cannot read the request body: {}", rejection.body_text()))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::malformed(format!("invalid request body: {e}")))
    }
}

fn too_large_body() -> ApiError {
    ApiError::too_large(format!(
        "request body is larger than {} bytes; send fewer mutations per push",
        limits::MAX_BODY_BYTES
    ))
}

/// Bodies up to this size are read and thrown away before answering 413, so
/// the client gets to read the answer instead of a connection reset (it is
/// still writing when we reply; closing a socket with unread data resets it).
const DRAIN_MAX_BYTES: u64 = 4 * limits::MAX_BODY_BYTES as u64;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Middleware: answers `413 too_large` to a request whose declared
/// `Content-Length` is over the limit, without parsing it.
pub async fn reject_oversized_bodies(req: Request, next: Next) -> Response {
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limits::MAX_BODY_BYTES as u64 => {
            if len <= DRAIN_MAX_BYTES {
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, drain(req.into_body())).await;
            }
            too_large_body().into_response()
        }
        _ => next.run(req).await,
    }
}

async fn drain(mut body: Body) {
    while let Some(frame) = poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if frame.is_err() {
            break;
        }
    }
}

/// The signed-in caller, from a valid `Authorization: Bearer` access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: String,
    pub org: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or_else(|| {
            ApiError::unauthorized(
                "missing access token: send `Authorization: Bearer <access token>`; \
                 sign in with POST /v1/auth/login to get one",
            )
        })?;
        match state.auth.keys.verify(token) {
            Ok(claims) => {
                // Every request, on every node: a disabled, removed or
                // re-passworded account's tokens stop now, not at expiry.
                match state.db.find_user(&claims.sub).await? {
                    Some(user) if user.disabled_at.is_some() => {
                        Err(ApiError::account_disabled(StatusCode::UNAUTHORIZED))
                    }
                    Some(user) if user.org == claims.org && user.session_epoch == claims.epoch => {
                        Ok(AuthUser { user: claims.sub, org: claims.org })
                    }
                    _ => Err(ApiError::unauthorized(
                        "this sign-in has ended (the account was removed or its password changed): refresh it with \
                         POST /v1/auth/refresh, or sign in again",
                    )),
                }
            }
            Err(TokenError::Expired) => Err(ApiError::unauthorized(
                "access token expired: refresh it with POST /v1/auth/refresh, or sign in again",
            )),
            Err(TokenError::Invalid) => Err(ApiError::unauthorized(
                "invalid access token: refresh it with POST /v1/auth/refresh, or sign in again",
            )),
        }
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
