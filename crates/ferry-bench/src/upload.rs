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
}

pub struct Measured {
    pub raw: Duration,
    pub enqueue: Duration,
    pub upload: Duration,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut section = Section::new(
        "Upload",
        "N queued 300-byte records (enqueued with `Engine::put_many` in chunks of 10 000) uploaded by one \
         `Engine::sync_once` to an embedded `ferry-server` over real HTTP on loopback (same process, same \
         machine). *raw SQLite* = the same rows inserted into a plain rusqlite table \
         `(entity, id, data, PRIMARY KEY(entity, id))`, WAL, synchronous=FULL (as the engine and server), one transaction, in the same \
         run. *ratio* = upload rate / raw insert rate.",
        &["records", "raw SQLite insert/s", "enqueue (put_many)/s", "upload (sync_once)/s", "upload time", "ratio"],
    );
    let mut worst: Option<f64> = None;
    for &n in &args.sizes {
        eprintln!("upload: {n} records…");
        let m = measure(n)?;
        let raw = rate(n, m.raw);
        let up = rate(n, m.upload);
        let ratio = up / raw;
        worst = Some(worst.map_or(ratio, |w: f64| w.min(ratio)));
        section.row(vec![
            thousands(n as u64),
            fmt_rate(raw),
            fmt_rate(rate(n, m.enqueue)),
            fmt_rate(up),
            format!("{:.2} s", m.upload.as_secs_f64()),
            format!("{ratio:.3}"),
        ]);
    }
    if let Some(w) = worst {
        section.goal("upload / raw SQLite", "≥ 0.25", format!("{w:.3} (worst size)"), w >= 0.25);
    }
    Ok(section)
}

pub fn measure(n: usize) -> Result<Measured> {
    let raw = raw_sqlite(n)?;
    let rt = runtime()?;
    rt.block_on(async {
        let server = BenchServer::start().await?;
        let dir = tempfile::tempdir()?;
        let engine = engine_at(dir.path(), Some(&server.url)).await?;
        let eng = engine.clone();
        let enqueue = tokio::task::spawn_blocking(move || enqueue(&eng, 0, n)).await??;
        ensure!(engine.refresh_status().pending as usize == n, "queue holds {} not {n}", engine.status().pending);
        let t = Instant::now();
        let report = engine.sync_once().await?;
        let upload = t.elapsed();
        ensure!(report.uploaded as usize == n, "uploaded {} of {n}", report.uploaded);
        let stats = server.stats().await?;
        ensure!(stats.mutations_applied as usize == n, "server applied {} of {n}", stats.mutations_applied);
        drop(engine);
        server.stop().await?;
        Ok(Measured { raw, enqueue, upload })
    })
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
