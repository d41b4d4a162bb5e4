//! `upload`: N queued 300-byte records pushed by `Engine::sync_once` to an
//! embedded loopback ferry-server (real HTTP), against the raw SQLite insert
//! rate of the same rows in the same run.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use rusqlite::params;

use crate::common::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Queue lengths to upload, comma separated.
    #[arg(long, value_parser = parse_sizes, default_value = "10000,100000,1000000")]
    pub sizes: std::vec::Vec<usize>,
    /// Push depths (requests out at once) to compare, comma separated; 1 is
    /// the one-at-a-time push.
    #[arg(long, value_parser = parse_sizes, default_value = "1,3")]
    pub push_depths: std::vec::Vec<usize>,
}

pub struct Measured {
    pub raw: Duration,
    pub enqueue: Duration,
    pub upload: Duration,
    /// How far the benchmark process's (engine and embedded server)
    /// resident memory rose above its level at the start of the upload.
    pub upload_rss_growth: Option<u64>,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut section = Section::new(
        "Upload",
        "N queued 300-byte records (enqueued with `Engine::put_many` in chunks of 10 000) uploaded by one \
         `Engine::sync_once` to an embedded `ferry-server` over real HTTP on loopback (same process, same \
         machine), with at most *depth* push requests out at once (`EngineConfig::push_depth`; 1 = each \
         batch waits for the answer to the one before). *raw SQLite* = the same rows inserted into a plain \
         rusqlite table `(entity, id, data, PRIMARY KEY(entity, id))`, WAL, synchronous=FULL (as the engine \
         and server), one transaction, in the same run. *ratio* = upload rate / raw insert rate. *RSS growth* = \
         how far the process's (engine and embedded server) resident memory peaked above its level when \
         the upload started (`VmHWM` after resetting it, minus `VmRSS` then).",
        &[
            "records",
            "depth",
            "raw SQLite insert/s",
            "enqueue (put_many)/s",
            "upload (sync_once)/s",
            "upload time",
            "ratio",
            "vs depth 1",
            "RSS growth",
        ],
    );
    let mut worst: Option<f64> = None;
    let default_depth = ferry_engine::EngineConfig::default().push_depth;
    for &n in &args.sizes {
        let mut sequential: Option<f64> = None;
        for &depth in &args.push_depths {
            eprintln!("upload: {n} records, push depth {depth}…");
            let m = measure(n, depth)?;
            let raw = rate(n, m.raw);
            let up = rate(n, m.upload);
            let ratio = up / raw;
            if depth == 1 {
                sequential = Some(up);
            }
            if depth == default_depth {
                worst = Some(worst.map_or(ratio, |w: f64| w.min(ratio)));
            }
            section.row(vec![
                thousands(n as u64),
                depth.to_string(),
                fmt_rate(raw),
                fmt_rate(rate(n, m.enqueue)),
                fmt_rate(up),
                format!("{:.2} s", m.upload.as_secs_f64()),
                format!("{ratio:.3}"),
                sequential.map_or("".into(), |s| format!("{:.2}×", up / s)),
                m.upload_rss_growth.map_or("?".into(), |b| format!("{:.1} MB", b as f64 / 1e6)),
            ]);
        }
    }
    if let Some(w) = worst {
        section.goal(
            &format!("upload / raw SQLite (depth {default_depth}, the default)"),
            "≥ 0.25",
            format!("{w:.3} (worst size)"),
            w >= 0.25,
        );
    }
    Ok(section)
}

pub fn measure(n: usize, push_depth: usize) -> Result<Measured> {
    let raw = raw_sqlite(n)?;
    let rt = runtime()?;
    rt.block_on(async {
        let server = BenchServer::start().await?;
        let dir = tempfile::tempdir()?;
        let config = ferry_engine::EngineConfig { push_depth, ..engine_config(dir.path()) };
        let engine = engine_with(config, Some(&server.url)).await?;
        let eng = engine.clone();
        let enqueue = tokio::task::spawn_blocking(move || enqueue(&eng, 0, n)).await??;
        ensure!(engine.refresh_status().pending as usize == n, "queue holds {} not {n}", engine.status().pending);
        let rss_before = reset_peak_rss();
        let t = Instant::now();
        let report = engine.sync_once().await?;
        let upload = t.elapsed();
        let upload_rss_growth = match (rss_before, status_kb("VmHWM:")) {
            (Some(before), Some(peak)) => Some(peak.saturating_sub(before) * 1024),
            _ => None,
        };
        ensure!(report.uploaded as usize == n, "uploaded {} of {n}", report.uploaded);
        let stats = server.stats().await?;
        ensure!(stats.mutations_applied as usize == n, "server applied {} of {n}", stats.mutations_applied);
        ensure!(
            stats.mutations_applied == stats.distinct_applied_ids,
            "server applied {} mutations but only {} distinct ids",
            stats.mutations_applied,
            stats.distinct_applied_ids
        );
        drop(engine);
        server.stop().await?;
        Ok(Measured { raw, enqueue, upload, upload_rss_growth })
    })
}

/// Starts the peak-RSS count (`VmHWM`) of this process afresh (Linux:
/// writing 5 to `clear_refs`); returns `VmRSS` now, in kB (`None` where
/// the count cannot be reset).
fn reset_peak_rss() -> Option<u64> {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("upload: cannot reset the peak RSS ({e}); no memory figure");
        return None;
    }
    status_kb("VmRSS:")
}

/// A `kB` line of `/proc/self/status`.
fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Inserts the same rows into a plain table in one transaction.
pub fn raw_sqlite(n: usize) -> Result<Duration> {
    let dir = tempfile::tempdir()?;
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.db"))?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE raw (entity TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (entity, id));",
    )?;
    // Same rows, serialized before the clock starts: this is SQLite's rate.
    let rows: Vec<(String, String)> =
        (0..n).map(|i| (record_id(i), serde_json::Value::Object(payload(i, RECORD_BYTES)).to_string())).collect();
    let t = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare("INSERT INTO raw (entity, id, data) VALUES (?1, ?2, ?3)")?;
        for (id, data) in &rows {
            stmt.execute(params![ENTITY, id, data])?;
        }
    }
    tx.commit()?;
    Ok(t.elapsed())
}
