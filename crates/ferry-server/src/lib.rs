//! Ferry's reference sync backend.
//!
//! Push, pull and auth over HTTP (see `docs/protocol.md`), on an embedded
//! SQLite database or on PostgreSQL shared by several nodes (see
//! [`storage`]). The `ferry-server` binary is a thin CLI over this
//! library; the desktop app's demo mode and the benchmarks embed it:
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferry_server::Error> {
//! let db = ferry_server::DbLocation::parse("/tmp/demo.db");
//! let storage = ferry_server::storage::open(&db).await?;
//! ferry_server::users::add_user(&*storage, "ann", "default", "secret").await?;
//! let server = ferry_server::serve(ferry_server::Config::new(db)).await?;
//! println!("{}", server.url());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

pub mod apply;
pub mod auth;
pub mod changes;
mod clock;
mod error;
mod http;
pub mod metrics;
pub mod schemas;
pub mod stats;
pub mod storage;
pub mod tls;
pub mod users;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use std::future::IntoFuture;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::now_ms;
pub use error::{Error, Result};
pub use schemas::Schemas;
pub use stats::{DumpRecord, Stats};
pub use storage::{DbLocation, Storage};
pub use tls::TlsFiles;

/// Default lifetime of an access token.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(900);
/// Default lifetime of a refresh token.
pub const DEFAULT_REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default listen address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);

/// How to run a server.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbLocation,
    /// Port 0 picks a free port; see [`RunningServer::addr`].
    pub listen: SocketAddr,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// Largest record accepted; at most [`ferry_protocol::limits::MAX_PAYLOAD_BYTES`].
    pub max_payload_bytes: usize,
    /// Per-entity content rules (`--schemas DIR`); none by default.
    pub schemas: Arc<Schemas>,
    /// Serve HTTPS with these; plain HTTP without (loopback, or behind a
    /// proxy that terminates TLS).
    pub tls: Option<TlsFiles>,
    /// Proxies whose `X-Forwarded-For` names the client (for throttling).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve `GET /metrics` (Prometheus) on this address; off when `None`.
    pub metrics_listen: Option<SocketAddr>,
}

impl Config {
    /// Defaults for everything but the database.
    pub fn new(db: impl Into<DbLocation>) -> Self {
        Self {
            db: db.into(),
            listen: DEFAULT_LISTEN,
            access_ttl: DEFAULT_ACCESS_TTL,
            refresh_ttl: DEFAULT_REFRESH_TTL,
            max_payload_bytes: ferry_protocol::limits::MAX_PAYLOAD_BYTES,
            schemas: Arc::new(Schemas::none()),
            tls: None,
            trusted_proxies: Vec::new(),
            metrics_listen: None,
        }
    }
}

/// A server accepting connections in the background of the current tokio
/// runtime. Dropping it starts a graceful shutdown without waiting for it;
/// [`RunningServer::shutdown`] waits.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    tls: Option<Arc<tls::CertStore>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `GET /metrics` is served, if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Base URL, e.g. `http://127.0.0.1:8080` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The certificate store of an HTTPS server, to reload on renewal
    /// ([`tls::CertStore::reload`]); `None` for plain HTTP.
    pub fn certificates(&self) -> Option<Arc<tls::CertStore>> {
        self.tls.clone()
    }

    /// Stops accepting connections, lets in-flight requests finish (a push
    /// batch commits or rolls back as a whole) and returns when done.
    pub async fn shutdown(self) -> Result<()> {
        // The receiver only disappears if the server task already ended.
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => Ok(result?),
            Err(e) => Err(Error::Task(e.to_string())),
        }
    }
}

/// Opens (creating and migrating) the database and starts serving.
pub async fn serve(config: Config) -> Result<RunningServer> {
    let storage = storage::open(&config.db).await?;
    serve_with(config, storage).await
}

/// Starts serving on an already opened database.
pub async fn serve_with(config: Config, storage: Arc<dyn Storage>) -> Result<RunningServer> {
    let secret = storage.signing_secret().await?;
    let auth = auth::Auth {
        keys: auth::JwtKeys::new(&secret),
        access_ttl: config.access_ttl,
        refresh_ttl: config.refresh_ttl,
    };
    let location = storage.location();
    // Load the certificate before binding: a bad file fails the start.
    let certs = config.tls.clone().map(tls::CertStore::load).transpose()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr()?;
    if certs.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "serving plain HTTP beyond loopback: passwords and tokens cross the network in clear text unless a \
             proxy in front terminates TLS (see docs/security.md); serve HTTPS with --tls-cert and --tls-key"
        );
    }
    let changes = Arc::new(changes::ChangeFeed::new());
    let forwarder = storage.forward_commits(changes.clone());
    let metrics = Arc::new(metrics::Metrics::new());
    let (metrics_addr, metrics_task) = match config.metrics_listen {
        Some(at) => {
            let (addr, task) = http::serve_metrics(at, metrics.clone(), storage.clone()).await?;
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    let state = http::AppState::with(
        storage,
        auth,
        apply::Rules { max_payload: config.max_payload_bytes, schemas: config.schemas.clone() },
        changes.clone(),
        config.trusted_proxies.clone(),
        metrics,
    );
    let app = http::router(state);
    let (stop, stopped) = oneshot::channel::<()>();
    let graceful = async move {
        // Either an explicit stop or the handle being dropped.
        let _ = stopped.await;
        tracing::info!("shutting down: finishing in-flight requests");
        // Waiting pulls answer now instead of at their deadline.
        changes.close();
    };
    let make_service = app.into_make_service_with_connect_info::<http::PeerAddr>();
    let served = match &certs {
        None => tokio::spawn(axum::serve(listener, make_service).with_graceful_shutdown(graceful).into_future()),
        Some(certs) => {
            let listener = tls::TlsListener::new(listener, certs)?;
            tokio::spawn(axum::serve(listener, make_service).with_graceful_shutdown(graceful).into_future())
        }
    };
    let task = tokio::spawn(async move {
        let result = served.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Some(forwarder) = forwarder {
            forwarder.abort();
        }
        if let Some(metrics_task) = metrics_task {
            metrics_task.abort();
        }
        result
    });
    let scheme = if certs.is_some() { "https" } else { "http" };
    tracing::info!(%addr, scheme, db = %location, "ferry-server listening");
    if let Some(at) = metrics_addr {
        tracing::info!(addr = %at, "metrics at http://{at}/metrics");
    }
    Ok(RunningServer { addr, metrics_addr, tls: certs, stop, task })
}
