//! `scale`: `ferry status --json` and one page of `ferry queue --json` (real
//! processes) and the in-process `Engine::refresh_status` / `Engine::queue`,
//! with an empty and a long queue.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};

use crate::common::*;
use crate::fixture::Fixture;
use crate::stats::percentile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Queue lengths, comma separated.
    #[arg(long, value_parser = parse_sizes, default_value = "0,1000000")]
    pub sizes: std::vec::Vec<usize>,
    /// Runs per CLI command.
    #[arg(long, default_value_t = 30)]
    pub cli_runs: usize,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut section = section();
    for &n in &args.sizes {
        let f = Fixture::build(n)?;
        measure(&mut section, &f, args.cli_runs)?;
    }
    finish(&mut section);
    Ok(section)
}

pub fn section() -> Section {
    Section::new(
        "Scale: status and queue pages",
        "Wall time of the real CLI processes (spawn to exit, including process start and opening the \
         database) and of the same calls in process on an open engine, at different queue lengths. \
         `Engine::refresh_status` recomputes the status from the database (what `ferry status` does); \
         `Engine::queue` reads one page of 50, first page and last page (keyset paging).",
        &["queued", "operation", "runs", "median", "p99"],
    )
}

pub fn finish(section: &mut Section) {
    // Goal: every status/queue figure under 10 ms at any queue length.
    for (kind, label) in
        [("ferry", "status and queue page, CLI process"), ("Engine", "status and queue page, in process")]
    {
        let rows: Vec<&Vec<String>> = section
            .rows
            .iter()
            .filter(|r| r[1].contains(kind) && (r[1].contains("status") || r[1].contains("queue")))
            .collect();
        let Some(worst) = rows.iter().max_by(|a, b| parse_ms(&a[4]).total_cmp(&parse_ms(&b[4]))) else {
            continue;
        };
        let measured = format!("worst p99 {} ({}, {} queued)", worst[4], worst[1], worst[0]);
        let met = parse_ms(&worst[4]) < 10.0;
        section.goal(label, "< 10 ms at any length", measured, met);
    }
}

fn parse_ms(s: &str) -> f64 {
    s.trim_end_matches(" ms").parse().unwrap_or(f64::MAX)
}

pub fn measure(section: &mut Section, f: &Fixture, cli_runs: usize) -> Result<()> {
    let q = thousands(f.queued as u64);
    // CLI processes.
    for (label, argv) in [
        ("`ferry status --json`", vec!["status", "--json"]),
        ("`ferry queue --json --limit 50`", vec!["queue", "--json", "--limit", "50"]),
    ] {
        let mut lat = Vec::new();
        for _ in 0..cli_runs {
            let mut c = ferry(f.path())?;
            c.args(&argv);
            let (out, d) = run_timed(c)?;
            if argv[0] == "status" {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
                ensure!(v["pending"].as_u64() == Some(f.queued as u64), "status says {}", v["pending"]);
            }
            lat.push(d);
        }
        row(section, &q, label, &lat);
    }
    // In process.
    let t = Instant::now();
    let engine = ferry_engine::Engine::open(engine_config(f.path()))?;
    row(section, &q, "`Engine::open`", &[t.elapsed()]);
    let runs = 200;
    let mut lat = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let s = engine.refresh_status();
        lat.push(t.elapsed());
        ensure!(s.pending as usize == f.queued);
    }
    row(section, &q, "`Engine::refresh_status`", &lat);
    let mut lat = Vec::new();
    let mut last_seq = None;
    for _ in 0..runs {
        let t = Instant::now();
        let page = engine.queue(None, None, 50)?;
        lat.push(t.elapsed());
        last_seq = page.last().map(|i| i.seq);
    }
    row(section, &q, "`Engine::queue` first page of 50", &lat);
    if f.queued > 100 {
        // The last page: the newest 50 (seq grows by one per write here).
        let after = last_seq.unwrap_or(0) + f.queued as i64 - 100;
        let mut lat = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let page = engine.queue(None, Some(after), 50)?;
            lat.push(t.elapsed());
            ensure!(!page.is_empty());
        }
        row(section, &q, "`Engine::queue` last page of 50", &lat);
        let mut lat = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            engine.queue(Some(ferry_engine::MutationState::Failed), None, 50)?;
            lat.push(t.elapsed());
        }
        row(section, &q, "`Engine::queue` state=failed page (none failed)", &lat);
    }
    Ok(())
}

fn row(section: &mut Section, q: &str, what: &str, lat: &[Duration]) {
    section.row(vec![
        q.to_string(),
        what.into(),
        lat.len().to_string(),
        ms_str(percentile(lat, 50.0)),
        ms_str(percentile(lat, 99.0)),
    ]);
}
