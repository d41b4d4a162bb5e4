//! `server-push`: how many mutations per second one push endpoint applies.
//!
//! Embeds the server (library, not a child process) on a temporary database
//! on loopback, signs in, and pushes `--mutations` new-record upserts with
//! `--payload-bytes` payloads in batches of `--batch`, one request at a time,
//! over real HTTP. Request bodies are serialized before the clock starts, so
//! the figure is the server's: HTTP, JSON parsing, the SQLite transaction and
//! the answer.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ferry_protocol::{limits, LoginRequest, Mutation, Op, Outcome, PushRequest, PushResponse, TokenResponse};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::stats::{ms, percentile};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Total number of mutations to push.
    #[arg(long, default_value_t = 100_000)]
    mutations: usize,
    /// Mutations per push request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Size of each serialized payload, in bytes.
    #[arg(long, default_value_t = 300)]
    payload_bytes: usize,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.mutations > 0, "--mutations must be positive");
    ensure!(
        (1..=limits::MAX_BATCH_MUTATIONS).contains(&args.batch),
        "--batch must be 1-{}",
        limits::MAX_BATCH_MUTATIONS
    );
    ensure!(args.payload_bytes >= 32, "--payload-bytes must be at least 32");
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }

    let dir = tempfile::tempdir()?;
    let db = ferry_server::DbLocation::Sqlite(dir.path().join("bench.db"));
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let storage = ferry_server::storage::open(&db).await?;
        ferry_server::users::add_user(&*storage, "bench", "bench", "bench-password").await?;
        let mut config = ferry_server::Config::new(db);
        config.listen = "127.0.0.1:0".parse()?;
        let server = ferry_server::serve_with(config, storage.clone()).await?;
        let result = push_all(&server.url(), &args).await;
        server.shutdown().await?;
        let stats = storage.stats().await?;
        ensure!(
            stats.mutations_applied == args.mutations as u64,
            "server applied {} mutations, expected {}",
            stats.mutations_applied,
            args.mutations
        );
        result
    })
}

async fn push_all(url: &str, args: &Args) -> Result<()> {
    let http = reqwest::Client::new();
    let login: TokenResponse = http
        .post(format!("{url}/v1/auth/login"))
        .json(&LoginRequest { username: "bench".into(), password: "bench-password".into() })
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;

    let payload = payload_of_size(args.payload_bytes);
    let bodies: Vec<Vec<u8>> = (0..args.mutations)
        .collect::<Vec<_>>()
        .chunks(args.batch)
        .map(|chunk| {
            let mutations = chunk.iter().map(|i| new_record(format!("rec-{i:08}"), &payload)).collect();
            serde_json::to_vec(&PushRequest { mutations, database: None })
        })
        .collect::<Result<_, _>>()?;

    println!(
        "server-push: {} mutations, batches of {}, {}-byte payloads, {} requests",
        args.mutations,
        args.batch,
        args.payload_bytes,
        bodies.len()
    );
    let mut latencies: Vec<Duration> = Vec::with_capacity(bodies.len());
    let started = Instant::now();
    for body in bodies {
        let t = Instant::now();
        let answer = push_body(&http, url, &login.access_token, body).await?;
        latencies.push(t.elapsed());
        ensure_all_applied(&answer)?;
    }
    let elapsed = started.elapsed();

    let rate = args.mutations as f64 / elapsed.as_secs_f64();
    println!("elapsed: {:.2} s", elapsed.as_secs_f64());
    println!("throughput: {rate:.0} mutations/s");
    println!(
        "batch latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(percentile(&latencies, 100.0))
    );
    Ok(())
}

/// Sends one serialized push request and reads its answer.
pub(crate) async fn push_body(http: &reqwest::Client, url: &str, token: &str, body: Vec<u8>) -> Result<PushResponse> {
    let response = http
        .post(format!("{url}/v1/push"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .context("push request")?;
    let status = response.status();
    if !status.is_success() {
        bail!("push answered {status}: {}", response.text().await.unwrap_or_default());
    }
    Ok(response.json().await?)
}

/// The benchmarks push new records only: anything but `applied` is a bug.
pub(crate) fn ensure_all_applied(answer: &PushResponse) -> Result<()> {
    if let Some(bad) = answer.results.iter().find(|r| !matches!(r.outcome, Outcome::Applied { .. })) {
        bail!("mutation not applied: {bad:?}");
    }
    Ok(())
}

/// An upsert creating `record_id` (base version 0) with `payload`.
pub(crate) fn new_record(record_id: String, payload: &Map<String, Value>) -> Mutation {
    Mutation {
        id: Uuid::new_v4(),
        entity: "activity".into(),
        record_id,
        op: Op::Upsert,
        payload: Some(payload.clone()),
        base_version: 0,
        edited_at: 1_700_000_000_000,
    }
}

/// A JSON object whose serialization is exactly `bytes` long.
pub(crate) fn payload_of_size(bytes: usize) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("title".into(), json!("Peer mentoring session"));
    map.insert("minutes".into(), json!(90));
    map.insert("notes".into(), json!(""));
    let base = serde_json::to_vec(&map).map(|v| v.len()).unwrap_or(0);
    map.insert("notes".into(), json!("n".repeat(bytes.saturating_sub(base))));
    map
}

#[cfg(test)]
mod tests {
    #[test]
    fn payload_size_is_exact() {
        for n in [64, 300, 1000] {
            let p = super::payload_of_size(n);
            assert_eq!(serde_json::to_vec(&p).unwrap().len(), n);
        }
    }
}
