//! Request handlers. Each one validates, does its database work through
//! the [`Storage`](crate::storage::Storage) boundary and maps the result to
//! the protocol's bodies.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::Json;
use ferry_protocol::{
    limits, validate_entity, validate_record_id, ErrorCode, Health, LoginRequest, PullResponse, PushRequest,
    PushResponse, RefreshRequest, RemoteRecord, TokenResponse, PROTOCOL_VERSION,
};
use serde::Deserialize;

use super::client_addr::ClientIp;
use super::error::ApiError;
use super::extract::{AuthUser, JsonBody};
use super::AppState;
use crate::auth::throttle::{self, ThrottleKey};
use crate::auth::{password, refresh};
use crate::clock::now_ms;
use crate::metrics::LoginResult;
use crate::storage::RefreshFailure;
use crate::users;

pub const DEFAULT_PULL_LIMIT: u32 = 500;

pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
        server_time: now_ms(),
    })
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let LoginRequest { username, password } = req;
    // A name no account can have (e.g. with a NUL, which PostgreSQL cannot
    // even compare) is an unknown user, answered like any other; it is
    // counted under its address only.
    let valid_name = users::validate_name("user name", &username).is_ok();
    let account_key = valid_name.then(|| ThrottleKey::account(&username));
    let keys: Vec<ThrottleKey> = account_key.iter().cloned().chain(client.map(ThrottleKey::address)).collect();
    let key_names: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
    // Locked: answered before the password is looked at, the same for
    // every name, so waiting out a lock is the only way on.
    let now = now_ms();
    if let Some(wait_ms) = throttle::wait_ms(&keys, &state.db.login_failures(&key_names).await?, now) {
        let secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
        tracing::warn!(client = ?client, retry_after = secs, "login refused: too many failed sign-ins");
        state.metrics.login(LoginResult::Throttled);
        return Err(ApiError::rate_limited(
            format!("too many failed sign-ins; try again in {}", throttle::describe_wait(secs)),
            secs,
        ));
    }
    let user = if valid_name { state.db.find_user(&username).await? } else { None };
    // argon2 is deliberately slow: keep it off the async workers.
    let user = tokio::task::spawn_blocking(move || match user {
        Some(u) if password::verify(&password, &u.password_hash) => Some(u),
        Some(_) => None,
        None => {
            password::verify_dummy(&password);
            None
        }
    })
    .await
    .map_err(|e| crate::Error::Task(e.to_string()))?;
    let Some(user) = user else {
        state.db.record_login_failure(&key_names, now_ms(), now_ms() - throttle::FORGET_AFTER_MS).await?;
        // No user name here: people sometimes type their password into it.
        tracing::info!(client = ?client, "login refused: wrong user name or password");
        state.metrics.login(LoginResult::Failed);
        return Err(ApiError::invalid_credentials());
    };
    if let Some(key) = &account_key {
        state.db.clear_login_failures(&key.key).await?;
    }
    if user.disabled_at.is_some() {
        tracing::info!(user = %user.name, "login refused: the account is disabled");
        state.metrics.login(LoginResult::Disabled);
        return Err(ApiError::account_disabled(StatusCode::FORBIDDEN));
    }
    state.db.purge_refresh_tokens(now_ms() - refresh::PURGE_AFTER_MS).await?;
    let tokens = state.auth.login(&*state.db, &user).await?;
    tracing::info!(user = %tokens.user, org = %tokens.org, "login");
    state.metrics.login(LoginResult::Ok);
    Ok(Json(tokens))
}

pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    match state.auth.refresh(&*state.db, &req.refresh_token).await? {
        Ok(tokens) => {
            tracing::info!(user = %tokens.user, org = %tokens.org, "token refreshed");
            Ok(Json(tokens))
        }
        Err(RefreshFailure::Reused) => {
            tracing::warn!("refresh token reused; its family is revoked");
            Err(ApiError::invalid_refresh_token("refresh token reuse detected: this session is revoked; sign in again"))
        }
        Err(RefreshFailure::Disabled) => Err(ApiError::account_disabled(StatusCode::UNAUTHORIZED)),
        Err(RefreshFailure::Invalid) => {
            Err(ApiError::invalid_refresh_token("refresh token is unknown, expired or revoked; sign in again"))
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<RefreshRequest>,
) -> Result<StatusCode, ApiError> {
    // Unknown tokens get the same answer: logging out twice is fine.
    state.db.revoke_refresh_family(&refresh::hash(&req.refresh_token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn push(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(req): JsonBody<PushRequest>,
) -> Result<Json<PushResponse>, ApiError> {
    let count = req.mutations.len();
    if count > limits::MAX_BATCH_MUTATIONS {
        return Err(ApiError::too_large(format!(
            "{count} mutations in one push; the limit is {}",
            limits::MAX_BATCH_MUTATIONS
        )));
    }
    if let Some(expected) = req.database {
        // Checked before the batch, not inside it: a restore needs the
        // servers stopped (see docs/operations.md), so the generation does
        // not move while they serve.
        let current = state.db.database(&auth.org).await?.reference();
        if current != expected {
            return Err(ApiError::database_changed(format!(
                "this server's database is not the one you last pulled from (it is {} generation {}, you saw {} \
                 generation {}): it was restored from a backup or replaced; pull everything again and upload \
                 what it no longer has before pushing",
                current.id, current.generation, expected.id, expected.generation
            )));
        }
    }
    let batch = state.db.push(&auth.org, &auth.user, req.mutations, &state.rules, now_ms()).await?;
    let t = batch.tally;
    state.metrics.push(count, &t);
    tracing::info!(
        user = %auth.user, org = %auth.org, mutations = count,
        applied = t.applied, duplicate = t.duplicate, conflict = t.conflict,
        rejected = t.rejected, blocked = t.blocked, "push"
    );
    if batch.seq_after > batch.seq_before {
        // Waiting pulls on this node; other nodes hear of it from the
        // database (see `Storage::forward_commits`).
        state.changes.notify(&auth.org);
    }
    Ok(Json(PushResponse {
        results: batch.results,
        server_time: now_ms(),
        seq_before: Some(batch.seq_before),
        seq_after: Some(batch.seq_after),
    }))
}

#[derive(Debug, Deserialize)]
pub struct PullParams {
    since: Option<u64>,
    limit: Option<u32>,
    wait: Option<u32>,
}

pub async fn pull(
    State(state): State<AppState>,
    auth: AuthUser,
    params: Result<Query<PullParams>, QueryRejection>,
) -> Result<Json<PullResponse>, ApiError> {
    let Query(params) = params.map_err(|e| {
        ApiError::invalid_request(format!(
            "{}; expected ?since=SEQ&limit=N&wait=SECS with non-negative integers",
            e.body_text()
        ))
    })?;
    let since = params.since.unwrap_or(0);
    let limit = params.limit.unwrap_or(DEFAULT_PULL_LIMIT);
    if limit == 0 || limit > limits::MAX_PULL_LIMIT {
        return Err(ApiError::invalid_request(format!(
            "limit must be between 1 and {}, got {limit}",
            limits::MAX_PULL_LIMIT
        )));
    }
    let wait = params.wait.unwrap_or(0);
    if wait > limits::MAX_PULL_WAIT_SECS {
        return Err(ApiError::invalid_request(format!(
            "wait must be between 0 and {} seconds, got {wait}",
            limits::MAX_PULL_WAIT_SECS
        )));
    }
    // Subscribed before the first read: a commit between the read and the
    // wait still wakes us.
    let mut subscription = (wait > 0).then(|| state.changes.subscribe(&auth.org));
    let _open = (wait > 0).then(|| state.metrics.wait_opened());
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(wait.into());
    let mut page = state.db.pull(&auth.org, since, limit).await?;
    if let Some(sub) = subscription.as_mut() {
        while page.changes.is_empty() && !state.changes.is_closing() {
            tokio::select! {
                _ = sub.changed() => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
            // A woken waiter may find nothing new (the wake-all after the
            // database connection that carries other nodes' commits was
            // made again): then it waits on.
            let _turn = state.wake_reads.acquire().await.map_err(|e| crate::Error::Task(e.to_string()))?;
            page = state.db.pull(&auth.org, since, limit).await?;
        }
    }
    // Read after the page: its head is then at least the page's cursor.
    let database = state.db.database(&auth.org).await?;
    Ok(Json(PullResponse {
        changes: page.changes,
        cursor: page.cursor,
        has_more: page.has_more,
        server_time: now_ms(),
        wait: Some(wait),
        database: Some(database),
    }))
}

pub async fn record(
    State(state): State<AppState>,
    auth: AuthUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<RemoteRecord>, ApiError> {
    let Path((entity, record_id)) = path.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    validate_entity(&entity).map_err(ApiError::invalid_request)?;
    validate_record_id(&record_id).map_err(ApiError::invalid_request)?;
    let found = state.db.record(&auth.org, &entity, &record_id).await?;
    found.map(Json).ok_or_else(|| ApiError::not_found(format!("no record {entity}/{record_id}")))
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no such endpoint: {}", uri.path()))
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::InvalidRequest,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
