//! `latency`: local write to server acknowledgement with the background loop
//! running. In process (`Engine::run` in a task, `Engine::put`) and with the
//! real `ferry daemon` process fed by `ferry put` processes. The record is
//! seen on the server by polling `GET /v1/records/{entity}/{id}` every 0.5 ms.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::common::*;
use crate::stats::percentile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Writes through the in-process engine.
    #[arg(long, default_value_t = 200)]
    pub writes: usize,
    /// Writes through `ferry put` with a `ferry daemon` running (0 = skip).
    #[arg(long, default_value_t = 100)]
    pub daemon_writes: usize,
    /// Pause between writes, ms (a user does not type 1000 writes a second).
    #[arg(long, default_value_t = 30)]
    pub gap_ms: u64,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut section = Section::new(
        "Write-to-acknowledgement latency",
        "With the background loop running and the server reachable: time from the start of a local write \
         until the record can be read back from the server (`GET /v1/records/…`, polled every 0.5 ms, so \
         figures include up to ~1 ms of polling granularity). Writes are spaced by a short gap so each one \
         starts from an idle engine.",
        &["path", "writes", "median", "p99", "max"],
    );
    let rt = runtime()?;
    let (inproc, daemon) = rt.block_on(async {
        let server = BenchServer::start().await?;
        let reader = ServerReader::login(&server.url).await?;
        let inproc = in_process(&server, &reader, &args).await?;
        let daemon = if args.daemon_writes > 0 { Some(daemon(&server, &reader, &args).await?) } else { None };
        server.stop().await?;
        anyhow::Ok((inproc, daemon))
    })?;
    row(&mut section, "`Engine::put` → `Engine::run` loop → server", &inproc);
    let med = percentile(&inproc, 50.0);
    section.goal("write-to-ack median (engine)", "< 20 ms", ms_str(med), med < Duration::from_millis(20));
    if let Some((total, after)) = daemon {
        row(&mut section, "`ferry put` process → `ferry daemon` → server (from spawn)", &total);
        row(&mut section, "same, from `ferry put` exit", &after);
        let med = percentile(&total, 50.0);
        section.goal("write-to-ack median (CLI + daemon)", "< 20 ms", ms_str(med), med < Duration::from_millis(20));
    }
    Ok(section)
}

fn row(section: &mut Section, what: &str, lat: &[Duration]) {
    section.row(vec![
        what.into(),
        lat.len().to_string(),
        ms_str(percentile(lat, 50.0)),
        ms_str(percentile(lat, 99.0)),
        ms_str(percentile(lat, 100.0)),
    ]);
}

async fn in_process(server: &BenchServer, reader: &ServerReader, args: &Args) -> Result<Vec<Duration>> {
    let dir = tempfile::tempdir()?;
    let engine = engine_at(dir.path(), Some(&server.url)).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = engine.clone();
    let task = tokio::spawn(async move {
        runner
            .run(async {
                let _ = stopped.await;
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut lat = Vec::with_capacity(args.writes);
    for i in 0..args.writes {
        let id = format!("lat-{i:06}");
        let p = payload(i, RECORD_BYTES);
        let t = Instant::now();
        // Blocking SQLite write on the block_on thread, not a runtime worker.
        engine.put(ENTITY, &id, p)?;
        let seen = reader.wait_for(ENTITY, &id, Duration::from_secs(10)).await?;
        lat.push(seen - t);
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    }
    let _ = stop.send(());
    task.await??;
    Ok(lat)
}

async fn daemon(server: &BenchServer, reader: &ServerReader, args: &Args) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let dir = tempfile::tempdir()?;
    drop(engine_at(dir.path(), Some(&server.url)).await?);
    let mut cmd = ferry(dir.path())?;
    cmd.arg("daemon").stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = tokio::process::Command::from(cmd).kill_on_drop(true).spawn().context("start ferry daemon")?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let obj = serde_json::Value::Object(payload(0, RECORD_BYTES)).to_string();
    let mut total = Vec::new();
    let mut after = Vec::new();
    let result = async {
        for i in 0..args.daemon_writes {
            let id = format!("dlat-{i:06}");
            let mut c = ferry(dir.path())?;
            c.args(["put", ENTITY, &id, &obj]).stdout(Stdio::null());
            let t = Instant::now();
            let status = tokio::process::Command::from(c).status().await?;
            anyhow::ensure!(status.success(), "ferry put failed: {status}");
            let exited = Instant::now();
            let seen = reader.wait_for(ENTITY, &id, Duration::from_secs(10)).await?;
            total.push(seen - t);
            after.push(seen - exited);
            tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
        }
        anyhow::Ok(())
    }
    .await;
    terminate(&mut child).await;
    result?;
    Ok((total, after))
}

/// SIGTERM (the daemon's clean stop), then wait.
pub async fn terminate(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
