//! What the server is doing, for Prometheus: `GET /metrics` on its own
//! address (`--metrics-listen`, off by default, so the numbers are not on
//! the internet with the API).
//!
//! Counters count since this process started (Prometheus takes rates and
//! survives restarts); `ferry-server stats` has the database's all-time
//! totals. Every node exports its own; a dashboard sums them.

use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use crate::apply::Tally;
use crate::storage::Storage;

/// The server's metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    push_mutations: Histogram,
    mutations: IntCounterVec,
    logins: IntCounterVec,
    open_waits: IntGauge,
    pool_size: IntGauge,
    pool_available: IntGauge,
    pool_max: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// Why a sign-in ended as it did, for `ferry_logins_total{result}`.
#[derive(Debug, Clone, Copy)]
pub enum LoginResult {
    Ok,
    Failed,
    Throttled,
    Disabled,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("ferry_http_requests_total", "HTTP requests answered, by endpoint and status code"),
            &["endpoint", "status"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new("ferry_http_request_duration_seconds", "Time to answer, by endpoint")
                // Pushes commit with an fsync; waiting pulls are their own
                // endpoint (`pull_wait`) and last up to a minute.
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0, 60.0,
                ]),
            &["endpoint"],
        )
        .expect("valid metric");
        let push_mutations = Histogram::with_opts(
            HistogramOpts::new("ferry_push_batch_mutations", "Mutations per push request")
                .buckets(vec![1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0]),
        )
        .expect("valid metric");
        let mutations = IntCounterVec::new(
            Opts::new("ferry_mutations_total", "Pushed mutations by outcome (as ferry-server stats counts them)"),
            &["outcome"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(
            Opts::new("ferry_logins_total", "Sign-ins by result (ok, failed, throttled, disabled)"),
            &["result"],
        )
        .expect("valid metric");
        let open_waits =
            IntGauge::new("ferry_pull_waits_open", "Waiting pulls held open right now").expect("valid metric");
        let pool_size =
            IntGauge::new("ferry_db_pool_connections", "Database connections open (PostgreSQL)").expect("valid metric");
        let pool_available = IntGauge::new("ferry_db_pool_idle", "Open database connections not in use (PostgreSQL)")
            .expect("valid metric");
        let pool_max = IntGauge::new("ferry_db_pool_max", "Most database connections a node opens (PostgreSQL)")
            .expect("valid metric");
        registry.register(Box::new(requests.clone())).expect("registered once");
        registry.register(Box::new(request_seconds.clone())).expect("registered once");
        registry.register(Box::new(push_mutations.clone())).expect("registered once");
        registry.register(Box::new(mutations.clone())).expect("registered once");
        registry.register(Box::new(logins.clone())).expect("registered once");
        for g in [&open_waits, &pool_size, &pool_available, &pool_max] {
            registry.register(Box::new(g.clone())).expect("registered once");
        }
        // Every outcome and result from the start, so rates exist at zero.
        for outcome in ["applied", "duplicate", "conflict", "rejected", "blocked"] {
            mutations.with_label_values(&[outcome]);
        }
        for result in ["ok", "failed", "throttled", "disabled"] {
            logins.with_label_values(&[result]);
        }
        Self {
            registry,
            requests,
            request_seconds,
            push_mutations,
            mutations,
            logins,
            open_waits,
            pool_size,
            pool_available,
            pool_max,
        }
    }

    /// One answered request.
    pub fn request(&self, endpoint: &str, status: u16, took: Duration) {
        self.requests.with_label_values(&[endpoint, &status.to_string()]).inc();
        self.request_seconds.with_label_values(&[endpoint]).observe(took.as_secs_f64());
    }

    /// One committed push batch.
    pub fn push(&self, mutations: usize, tally: &Tally) {
        self.push_mutations.observe(mutations as f64);
        for (outcome, n) in [
            ("applied", tally.applied),
            ("duplicate", tally.duplicate),
            ("conflict", tally.conflict),
            ("rejected", tally.rejected),
            ("blocked", tally.blocked),
        ] {
            self.mutations.with_label_values(&[outcome]).inc_by(n);
        }
    }

    pub fn login(&self, result: LoginResult) {
        let label = match result {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::Throttled => "throttled",
            LoginResult::Disabled => "disabled",
        };
        self.logins.with_label_values(&[label]).inc();
    }

    /// Counts a waiting pull as open until the guard drops (however the
    /// request ends: answered, timed out, or the client went away).
    pub fn wait_opened(&self) -> OpenWait {
        self.open_waits.inc();
        OpenWait(self.open_waits.clone())
    }

    /// The text exposition format, with the pool read now.
    pub fn render(&self, storage: &dyn Storage) -> String {
        if let Some(pool) = storage.pool_status() {
            self.pool_size.set(pool.size as i64);
            self.pool_available.set(pool.available as i64);
            self.pool_max.set(pool.max as i64);
        }
        let mut out = Vec::new();
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// See [`Metrics::wait_opened`].
pub struct OpenWait(IntGauge);

impl Drop for OpenWait {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// What a request is counted under: the API's endpoints by name, anything
/// else as `other` (so scanners cannot make up label values).
pub fn endpoint(path: &str, query: Option<&str>) -> &'static str {
    match path {
        "/v1/push" => "push",
        "/v1/pull" if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("wait=") && p != "wait=0")) => {
            "pull_wait"
        }
        "/v1/pull" => "pull",
        "/v1/auth/login" => "login",
        "/v1/auth/refresh" => "refresh",
        "/v1/auth/logout" => "logout",
        "/health" => "health",
        p if p.starts_with("/v1/records/") => "record",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_a_closed_set() {
        assert_eq!(endpoint("/v1/push", None), "push");
        assert_eq!(endpoint("/v1/pull", Some("since=3&wait=25")), "pull_wait");
        assert_eq!(endpoint("/v1/pull", Some("since=3&wait=0")), "pull");
        assert_eq!(endpoint("/v1/records/activity/a1", None), "record");
        assert_eq!(endpoint("/wp-admin", None), "other");
    }

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::new();
        m.request("push", 200, Duration::from_millis(3));
        m.push(3, &Tally { applied: 2, duplicate: 1, ..Default::default() });
        m.login(LoginResult::Failed);
        let _wait = m.wait_opened();
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::storage::sqlite::SqliteStorage::open(dir.path().join("m.db")).unwrap();
        let text = m.render(&storage);
        assert!(text.contains(r#"ferry_http_requests_total{endpoint="push",status="200"} 1"#), "{text}");
        assert!(text.contains(r#"ferry_mutations_total{outcome="applied"} 2"#), "{text}");
        assert!(text.contains(r#"ferry_mutations_total{outcome="rejected"} 0"#), "{text}");
        assert!(text.contains(r#"ferry_logins_total{result="failed"} 1"#), "{text}");
        assert!(text.contains("ferry_pull_waits_open 1"), "{text}");
    }
}
