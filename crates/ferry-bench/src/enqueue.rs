//! `enqueue`: single-write latency through the real `ferry put` process and
//! in-process `Engine::put`, and the bulk `ferry import` rate.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use crate::common::*;
use crate::stats::percentile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `ferry put` process runs.
    #[arg(long, default_value_t = 200)]
    pub cli_runs: usize,
    /// In-process `Engine::put` calls.
    #[arg(long, default_value_t = 2000)]
    pub engine_runs: usize,
    /// Lines in the `ferry import` file.
    #[arg(long, default_value_t = 100_000)]
    pub import_lines: usize,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut section = Section::new(
        "Enqueue",
        "Single local write until it is durable in the outbox. *ferry put*: the real CLI process, wall time \
         from spawn to exit (process start, open and check the database, one transaction, signal file). \
         *Engine::put*: the same write in process on an open engine. *ferry import*: one process, one \
         transaction, a JSONL file of 300-byte records. No daemon running, no server.",
        &["operation", "runs", "median", "p99", "rate"],
    );

    // ferry put (real process)
    let dir = tempfile::tempdir()?;
    let obj = serde_json::Value::Object(payload(0, RECORD_BYTES)).to_string();
    let mut lat = Vec::with_capacity(args.cli_runs);
    for i in 0..args.cli_runs {
        let mut c = ferry(dir.path())?;
        c.args(["put", ENTITY, &record_id(i), &obj]);
        let (_, d) = run_timed(c)?;
        lat.push(d);
    }
    let cli_median = percentile(&lat, 50.0);
    push_latency_row(&mut section, "`ferry put` (process)", &lat);

    // Engine::put (in process)
    let dir2 = tempfile::tempdir()?;
    let engine = ferry_engine::Engine::open(engine_config(dir2.path()))?;
    let mut lat = Vec::with_capacity(args.engine_runs);
    for i in 0..args.engine_runs {
        let p = payload(i, RECORD_BYTES);
        let id = record_id(i);
        let t = Instant::now();
        engine.put(ENTITY, &id, p)?;
        lat.push(t.elapsed());
    }
    push_latency_row(&mut section, "`Engine::put` (in process)", &lat);
    drop(engine);

    // ferry import (real process)
    let dir3 = tempfile::tempdir()?;
    let file = dir3.path().join("import.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file)?);
        for i in 0..args.import_lines {
            let line = serde_json::json!({"entity": ENTITY, "id": record_id(i), "data": payload(i, RECORD_BYTES)});
            writeln!(f, "{line}")?;
        }
    }
    let data = dir3.path().join("data");
    let mut c = ferry(&data)?;
    c.arg("import").arg(&file);
    let (out, d) = run_timed(c)?;
    let said = String::from_utf8_lossy(&out.stdout);
    ensure!(said.contains(&args.import_lines.to_string()), "import said {said:?}");
    section.row(vec![
        format!("`ferry import` {} lines (process)", thousands(args.import_lines as u64)),
        "1".into(),
        format!("{:.2} s total", d.as_secs_f64()),
        "".into(),
        format!("{} records/s", fmt_rate(rate(args.import_lines, d))),
    ]);
    section.note(format!(
        "`ferry put` median {}: almost all of it is process start-up and opening the database; the write itself is the `Engine::put` row.",
        ms_str(cli_median)
    ));
    Ok(section)
}

fn push_latency_row(section: &mut Section, what: &str, lat: &[Duration]) {
    let med = percentile(lat, 50.0);
    section.row(vec![
        what.into(),
        lat.len().to_string(),
        ms_str(med),
        ms_str(percentile(lat, 99.0)),
        format!("{} writes/s", fmt_rate(1.0 / med.as_secs_f64().max(1e-9))),
    ]);
}
