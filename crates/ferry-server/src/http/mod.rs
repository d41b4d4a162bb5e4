//! The HTTP API (see `docs/protocol.md`).

mod client_addr;
mod error;
mod extract;
mod routes;

use std::any::Any;
use std::sync::Arc;

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Router};
use ferry_protocol::{limits, SERVER_TIME_HEADER};
use tower_http::catch_panic::CatchPanicLayer;

use crate::apply::Rules;
use crate::auth::Auth;
use crate::changes::ChangeFeed;
use crate::clock::now_ms;
use crate::metrics::{self, Metrics};
use crate::storage::Storage;

pub use client_addr::PeerAddr;
pub use error::ApiError;

/// Shared by all handlers; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: Arc<dyn Storage>,
    pub auth: Auth,
    /// What pushed content must keep to: the largest record (operator
    /// setting, at most the protocol's) and the entities' schemas.
    pub rules: Rules,
    /// Wakes waiting pulls when their organisation commits.
    pub changes: Arc<ChangeFeed>,
    /// Reads by woken waiting pulls, a few at a time: thousands of waiters
    /// of one organisation wake at once, and must queue here rather than
    /// starve pushes of database connections.
    pub wake_reads: tokio::sync::Semaphore,
    /// Proxies whose `X-Forwarded-For` is believed (see [`client_addr`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub metrics: Arc<Metrics>,
}

/// Woken waiting pulls reading at once (half the PostgreSQL pool).
const WAKE_READS: usize = 8;

impl AppState {
    #[cfg(test)]
    pub fn new(db: Arc<dyn Storage>, auth: Auth) -> Self {
        let changes = Arc::new(ChangeFeed::new());
        let rules = Rules::max_payload(ferry_protocol::limits::MAX_PAYLOAD_BYTES);
        Self::with(db, auth, rules, changes, Vec::new(), Arc::default())
    }

    pub fn with(
        db: Arc<dyn Storage>,
        auth: Auth,
        rules: Rules,
        changes: Arc<ChangeFeed>,
        trusted_proxies: Vec<ipnet::IpNet>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self(Arc::new(Inner {
            db,
            auth,
            rules,
            changes,
            wake_reads: tokio::sync::Semaphore::new(WAKE_READS),
            trusted_proxies,
            metrics,
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// All routes with their middleware.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(routes::health))
        .route("/v1/auth/login", post(routes::login))
        .route("/v1/auth/refresh", post(routes::refresh))
        .route("/v1/auth/logout", post(routes::logout))
        .route("/v1/push", post(routes::push))
        .route("/v1/pull", get(routes::pull))
        .route("/v1/records/{entity}/{record_id}", get(routes::record))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state.clone())
        // Layers wrap everything added before them; the last is outermost.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .layer(middleware::from_fn(extract::reject_oversized_bodies))
        .layer(middleware::map_response(add_server_time))
        .layer(middleware::from_fn_with_state(state, count_request))
}

/// Every answer, by endpoint and status, with its time (outermost, so
/// rejections by the layers inside count too).
async fn count_request(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let endpoint = metrics::endpoint(req.uri().path(), req.uri().query());
    let started = Instant::now();
    let res = next.run(req).await;
    state.metrics.request(endpoint, res.status().as_u16(), started.elapsed());
    res
}

/// Serves `GET /metrics` on `at`, apart from the API; returns the address
/// bound and the task (aborted when the server stops).
pub async fn serve_metrics(
    at: SocketAddr,
    metrics: Arc<Metrics>,
    storage: Arc<dyn Storage>,
) -> crate::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(at).await.map_err(|source| crate::Error::Bind { addr: at, source })?;
    let addr = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let (metrics, storage) = (metrics.clone(), storage.clone());
            async move { ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render(&*storage)) }
        }),
    );
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok((addr, task))
}

/// Every answer, errors included, tells the client the server's clock.
async fn add_server_time(mut res: Response) -> Response {
    res.headers_mut().insert(HeaderName::from_static(SERVER_TIME_HEADER), HeaderValue::from(now_ms()));
    res
}

/// A bug must not take the connection down without an answer.
fn panic_response(_: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    ApiError::internal().into_response()
}

#[cfg(test)]
mod tests;
