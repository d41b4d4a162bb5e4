//! HTTP to the backend, and what a failure means for the caller:
//! transient (retry with backoff), auth (refresh or sign in), permanent (the
//! request itself is wrong) or a bad response (a server or proxy that does not
//! speak the protocol: treated as transient, never as a reason to drop data).

use std::time::Duration;

use ferry_protocol::{
    ErrorBody, ErrorCode, Health, LoginRequest, PullResponse, PushRequest, PushResponse, RefreshRequest, RemoteRecord,
    TokenResponse, SERVER_TIME_HEADER,
};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{local_now_ms, ServerClock};
use crate::model::Problem;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// Could not reach the server, timed out, 5xx, 429: try again later.
    /// (Whether anything retries depends on the caller: the sync loop does, a
    /// sign-in does not; each says so in its own words.)
    #[error("cannot reach the server ({reason})")]
    Transient { reason: String, retry_after: Option<Duration>, cause: TransientCause },
    /// 401: the access token is missing/expired, or the refresh token is bad.
    #[error("the server refused the sign-in ({code:?}): {message}")]
    Auth { code: ErrorCode, message: String },
    /// Any other 4xx: retrying the same request cannot help.
    #[error("the server rejected the request ({status}, {code:?}): {message}")]
    Permanent { status: u16, code: ErrorCode, message: String },
    /// 429 `rate_limited`: the server wants us to wait (e.g. too many failed
    /// sign-ins). Transient for the sync loop, which waits `retry_after`.
    #[error("the server asks to wait: {message}")]
    RateLimited { message: String, retry_after: Option<Duration> },
    /// 409 `database_changed`: the server's database is not the one we
    /// last pulled from (restored from a backup, or replaced). The sync
    /// reconciles with it; nothing queued is touched by the refusal.
    #[error("the server's database changed: {message}")]
    DatabaseChanged { message: String },
    /// The answer was not what the protocol says (wrong JSON, a proxy page).
    #[error("bad response from the server: {0}; check the server URL (`ferry init --server URL`) and retry")]
    BadResponse(String),
}

/// Why a [`TransportError::Transient`] happened, for [`Problem`]: the
/// words for people are in its `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransientCause {
    /// No connection: refused, reset, DNS, timed out.
    Network,
    /// The server answered with this HTTP status (5xx, 408, a 429 without
    /// the protocol's `rate_limited`).
    Http(u16),
    /// The TLS handshake failed on the server's certificate.
    Certificate,
}

impl TransportError {
    /// What kind of trouble this is, for the status (see [`Problem`]).
    pub fn problem(&self) -> Problem {
        match self {
            TransportError::Transient { cause, .. } => match cause {
                TransientCause::Network | TransientCause::Http(408) => Problem::Unreachable,
                TransientCause::Http(429) => Problem::RateLimited,
                TransientCause::Http(_) => Problem::ServerError,
                TransientCause::Certificate => Problem::UntrustedCertificate,
            },
            TransportError::Auth { .. } => Problem::SignInNeeded,
            TransportError::Permanent { .. } => Problem::Refused,
            TransportError::RateLimited { .. } => Problem::RateLimited,
            // Reconciled with by the next cycle: no problem of the user's.
            TransportError::DatabaseChanged { .. } => Problem::Other,
            TransportError::BadResponse(_) => Problem::BadAnswer,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Transient { .. } | TransportError::RateLimited { .. } | TransportError::BadResponse(_)
        )
    }
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            TransportError::Transient { retry_after, .. } | TransportError::RateLimited { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

pub struct Transport {
    http: reqwest::Client,
    base: String,
}

impl Transport {
    pub fn new(base_url: &str) -> Transport {
        Self::with_ca(base_url, None).expect("a client without extra CAs always builds")
    }

    /// Trusting, besides the public certificate authorities, those in
    /// `ca_pem` (an organisation's own); an error says why they cannot be
    /// used.
    pub fn with_ca(base_url: &str, ca_pem: Option<&str>) -> Result<Transport, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A server that accepts and never answers must not hang a sync.
            .timeout(request_timeout())
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("ferry/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
                format!("the saved CA certificate cannot be used ({e}): run `ferry init` with --ca-cert FILE again")
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| format!("cannot set up HTTPS: {e}"))?;
        Ok(Transport { http, base: base_url.trim_end_matches('/').to_string() })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub async fn health(&self, clock: &ServerClock) -> Result<Health, TransportError> {
        self.call::<(), Health>(Method::GET, "/health", None, None, clock).await
    }

    pub async fn login(
        &self,
        user: &str,
        password: &str,
        clock: &ServerClock,
    ) -> Result<TokenResponse, TransportError> {
        let body = LoginRequest { username: user.into(), password: password.into() };
        self.call(Method::POST, "/v1/auth/login", None, Some(&body), clock).await
    }

    pub async fn refresh(&self, refresh_token: &str, clock: &ServerClock) -> Result<TokenResponse, TransportError> {
        let body = RefreshRequest { refresh_token: refresh_token.into() };
        self.call(Method::POST, "/v1/auth/refresh", None, Some(&body), clock).await
    }

    pub async fn logout(&self, refresh_token: &str, clock: &ServerClock) -> Result<(), TransportError> {
        let body = RefreshRequest { refresh_token: refresh_token.into() };
        self.call::<_, serde::de::IgnoredAny>(Method::POST, "/v1/auth/logout", None, Some(&body), clock)
            .await
            .map(|_| ())
    }

    pub async fn push(
        &self,
        token: &str,
        req: &PushRequest,
        clock: &ServerClock,
    ) -> Result<PushResponse, TransportError> {
        let resp: PushResponse = self.call(Method::POST, "/v1/push", Some(token), Some(req), clock).await?;
        if resp.results.len() != req.mutations.len() {
            return Err(TransportError::BadResponse(format!(
                "push answered {} results for {} mutations",
                resp.results.len(),
                req.mutations.len()
            )));
        }
        for (m, r) in req.mutations.iter().zip(&resp.results) {
            if m.id != r.mutation_id {
                return Err(TransportError::BadResponse("push results are not in request order".into()));
            }
        }
        Ok(resp)
    }

    pub async fn pull(
        &self,
        token: &str,
        since: u64,
        limit: u32,
        clock: &ServerClock,
    ) -> Result<PullResponse, TransportError> {
        let path = format!("/v1/pull?since={since}&limit={limit}");
        self.call::<(), PullResponse>(Method::GET, &path, Some(token), None, clock).await
    }

    /// A waiting pull: answers when the organisation has changes after
    /// `since` or after `wait`, whichever is first (at most one change is
    /// asked for; the cycle then pulls under the usual rules). An answer
    /// without `wait` comes from a server that cannot wait.
    pub async fn wait_for_changes(
        &self,
        token: &str,
        since: u64,
        wait: Duration,
        clock: &ServerClock,
    ) -> Result<PullResponse, TransportError> {
        let path = format!("/v1/pull?since={since}&limit=1&wait={}", wait.as_secs());
        self.call_held::<(), PullResponse>(Method::GET, &path, Some(token), None, clock, Some(wait)).await
    }

    /// `Ok(None)` when the server has no such record.
    pub async fn record(
        &self,
        token: &str,
        entity: &str,
        id: &str,
        clock: &ServerClock,
    ) -> Result<Option<RemoteRecord>, TransportError> {
        let path = format!("/v1/records/{}/{}", entity, urlencode(id));
        match self.call::<(), RemoteRecord>(Method::GET, &path, Some(token), None, clock).await {
            Ok(r) => Ok(Some(r)),
            Err(TransportError::Permanent { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
        clock: &ServerClock,
    ) -> Result<R, TransportError> {
        self.call_held(method, path, token, body, clock, None).await
    }

    /// `held`: the server may hold the answer back that long (a waiting
    /// pull). The request may take that much longer, and its round trip
    /// says nothing about the clock offset.
    async fn call_held<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&B>,
        clock: &ServerClock,
        held: Option<Duration>,
    ) -> Result<R, TransportError> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(held) = held {
            req = req.timeout(held + request_timeout());
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let sent = local_now_ms();
        let started = std::time::Instant::now();
        let resp = req.send().await.map_err(classify_reqwest)?;
        // The server stamps its time as the answer starts: pair it with when
        // the headers arrived, not with the end of a possibly long body.
        let received = sent + started.elapsed().as_millis() as i64;
        let status = resp.status();
        let server_time =
            resp.headers().get(SERVER_TIME_HEADER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
        if let (Some(st), None) = (server_time, held) {
            clock.observe(sent, received, st);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            // A date is on the server's clock: compare it with the server's now.
            .and_then(|v| parse_retry_after(v, server_time.unwrap_or_else(|| clock.now_ms())));
        let bytes = read_capped(resp).await?;
        if status.is_success() {
            if status == StatusCode::NO_CONTENT || bytes.is_empty() {
                return serde_json::from_slice(b"null")
                    .or_else(|_| serde_json::from_slice(b"{}"))
                    .map_err(|e| TransportError::BadResponse(e.to_string()));
            }
            return serde_json::from_slice(&bytes).map_err(|e| TransportError::BadResponse(format!("{path}: {e}")));
        }
        let err: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let (code, message) = match err {
            Some(e) => (e.error, e.message),
            None => {
                let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
                // A 4xx that is not the protocol's error body comes from
                // something else (a captive portal, a proxy, a wrong URL):
                // never a reason to fail the data. 413 keeps its meaning so
                // batches still shrink behind a proxy's body limit.
                if status.is_client_error() && !matches!(status.as_u16(), 408 | 413 | 429) {
                    return Err(TransportError::BadResponse(format!(
                        "{path} answered HTTP {} with a non-Ferry body ({:?})",
                        status.as_u16(),
                        text.chars().take(80).collect::<String>()
                    )));
                }
                (ErrorCode::Unknown, text)
            }
        };
        Err(match status.as_u16() {
            401 => TransportError::Auth { code, message },
            429 if code == ErrorCode::RateLimited => TransportError::RateLimited { message, retry_after },
            409 if code == ErrorCode::DatabaseChanged => TransportError::DatabaseChanged { message },
            408 | 429 | 500..=599 => TransportError::Transient {
                reason: format!(
                    "HTTP {}{}",
                    status.as_u16(),
                    if message.is_empty() { String::new() } else { format!(": {message}") }
                ),
                retry_after,
                cause: TransientCause::Http(status.as_u16()),
            },
            s => TransportError::Permanent { status: s, code, message },
        })
    }
}

/// Largest answer read; anything bigger is not a Ferry server's answer.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, TransportError> {
    if resp.content_length().is_some_and(|n| n as usize > MAX_RESPONSE_BYTES) {
        return Err(TransportError::BadResponse(format!("answer larger than {MAX_RESPONSE_BYTES} bytes")));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(classify_reqwest)? {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(TransportError::BadResponse(format!("answer larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// How long one request may take. `FERRY_HTTP_TIMEOUT_SECS` shortens it for
/// tests of hanging servers; the default suits slow mobile links.
fn request_timeout() -> Duration {
    std::env::var("FERRY_HTTP_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(30))
}

fn classify_reqwest(e: reqwest::Error) -> TransportError {
    let chain = {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    };
    // Retrying cannot fix a certificate nobody here vouches for: say what can.
    if chain.contains("certificate") {
        let cause = chain.rsplit(": ").next().unwrap_or(&chain).to_owned();
        return TransportError::Transient {
            reason: format!(
                "the server's TLS certificate is not trusted ({cause}); if your organisation has its own \
                 certificate authority, run `ferry init --server URL --ca-cert FILE`"
            ),
            retry_after: None,
            cause: TransientCause::Certificate,
        };
    }
    let reason = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "connection broke while reading the answer".to_string()
    } else {
        // The source chain: reqwest's top-level message is vague.
        chain
    };
    TransportError::Transient { reason, retry_after: None, cause: TransientCause::Network }
}

/// A `Retry-After` value: delta-seconds, or an HTTP-date (IMF-fixdate, or the
/// obsolete RFC 850 and asctime forms every recipient must accept), turned
/// into a wait from `server_now_ms`. A date in the past means "now".
pub fn parse_retry_after(value: &str, server_now_ms: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at_ms = parse_http_date(value)?;
    Some(Duration::from_millis(at_ms.saturating_sub(server_now_ms).max(0) as u64))
}

/// Milliseconds since the epoch of an HTTP-date (RFC 9110 section 5.6.7:
/// IMF-fixdate, or the obsolete RFC 850 and asctime forms every recipient
/// must accept).
fn parse_http_date(value: &str) -> Option<i64> {
    let at = httpdate::parse_http_date(value).ok()?;
    i64::try_from(at.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis()).ok()
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_6_1994_08_49_37: i64 = 784_111_777_000;

    #[test]
    fn retry_after_takes_seconds_and_all_three_date_forms() {
        assert_eq!(parse_retry_after(" 120 ", 0), Some(Duration::from_secs(120)));
        let now = NOV_6_1994_08_49_37 - 30_000;
        for date in ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(30)), "{date}");
        }
    }

    #[test]
    fn a_past_date_means_now_and_garbage_means_nothing() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOV_6_1994_08_49_37 + 5_000),
            Some(Duration::ZERO)
        );
        for bad in [
            "",
            "soon",
            "-5",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 06 Nov 99999999999999999 08:49:37 GMT",
            "Sun Nov  6 08:49:37 -9223372036854775808",
            "Sun, 06 Nov 1994 -1:-1:-1 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad:?}");
        }
    }

    /// A server that sends its headers (with its time) at once and then
    /// trickles the body for a second: the clock sample pairs the server's
    /// time with the arrival of the headers, so the estimate stays near the
    /// true offset (0 here) instead of half the body's time off.
    #[tokio::test]
    async fn a_slow_body_does_not_bias_the_clock_offset() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = sock.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            let body = format!(
                r#"{{"status":"ok","version":"t","protocol":1,"server_time":{}}}"#,
                crate::clock::local_now_ms()
            );
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}: {}\r\n\r\n",
                body.len(),
                SERVER_TIME_HEADER,
                crate::clock::local_now_ms()
            );
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(1200)).await;
            sock.write_all(body.as_bytes()).await.unwrap();
        });
        let clock = ServerClock::new(None);
        Transport::new(&url).health(&clock).await.unwrap();
        server.await.unwrap();
        assert!(clock.offset_ms().abs() < 300, "offset {} ms for a server on this clock", clock.offset_ms());
    }

    /// A server that answers `status` with a protocol error body.
    async fn answering(status: u16) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = r#"{"error":"unknown","message":"busy"}"#;
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
        });
        url
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_and_a_503_a_server_error() {
        let clock = ServerClock::new(None);
        // A port nobody listens on (bound, then released).
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let e = Transport::new(&format!("http://{free}")).health(&clock).await.unwrap_err();
        assert_eq!(e.problem(), Problem::Unreachable, "{e}");
        for (status, problem) in [(503, Problem::ServerError), (500, Problem::ServerError), (408, Problem::Unreachable)]
        {
            let e = Transport::new(&answering(status).await).health(&clock).await.unwrap_err();
            assert!(e.is_transient(), "{e}");
            assert_eq!(e.problem(), problem, "HTTP {status}: {e}");
        }
        let e = Transport::new(&answering(400).await).health(&clock).await.unwrap_err();
        assert_eq!(e.problem(), Problem::Refused, "{e}");
        let e = Transport::new(&answering(401).await).health(&clock).await.unwrap_err();
        assert_eq!(e.problem(), Problem::SignInNeeded, "{e}");
    }

    #[test]
    fn every_failure_has_its_kind() {
        let transient = |cause| TransportError::Transient { reason: "x".into(), retry_after: None, cause };
        assert_eq!(transient(TransientCause::Network).problem(), Problem::Unreachable);
        assert_eq!(transient(TransientCause::Http(502)).problem(), Problem::ServerError);
        assert_eq!(transient(TransientCause::Http(429)).problem(), Problem::RateLimited);
        assert_eq!(transient(TransientCause::Certificate).problem(), Problem::UntrustedCertificate);
        let limited = TransportError::RateLimited { message: "x".into(), retry_after: None };
        assert_eq!(limited.problem(), Problem::RateLimited);
        assert_eq!(TransportError::BadResponse("html".into()).problem(), Problem::BadAnswer);
        let refused = TransportError::Permanent { status: 413, code: ErrorCode::Unknown, message: "big".into() };
        assert_eq!(refused.problem(), Problem::Refused);
    }

    #[test]
    fn http_dates_match_known_epochs() {
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 14 Nov 2023 22:13:20 GMT"), Some(1_700_000_000_000));
    }
}
