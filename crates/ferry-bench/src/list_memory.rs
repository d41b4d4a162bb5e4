//! `list-memory`: peak resident memory of the real `ferry list` process
//! printing every record of a large data dir, as text and as JSON. The CLI
//! reads and prints a page at a time, so its memory must not grow with the
//! number of records.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::common::*;
use crate::fixture::Fixture;
use crate::idle::memory_kb;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Record counts, comma separated.
    #[arg(long, value_parser = parse_sizes, default_value = "1000000")]
    pub sizes: std::vec::Vec<usize>,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut section = section();
    for &n in &args.sizes {
        let f = Fixture::build(n)?;
        measure(&mut section, &f)?;
    }
    finish(&mut section);
    Ok(section)
}

pub fn section() -> Section {
    Section::new(
        "CLI memory: listing every record",
        "The real `ferry list activity` process on a data dir of N queued 300-byte records, its output read \
         and counted by the benchmark: wall time, and peak RSS (`VmHWM` from `/proc/PID/status`, sampled \
         every 5 ms until the process exits).",
        &["records", "command", "wall time", "peak RSS"],
    )
}

pub fn finish(section: &mut Section) {
    let worst = section.rows.iter().map(|r| parse_mb(&r[3])).fold(0.0f64, f64::max);
    section.goal("`ferry list` peak RSS", "< 50 MB at any size", format!("worst {worst:.1} MB"), worst < 50.0);
}

fn parse_mb(s: &str) -> f64 {
    s.trim_end_matches(" MB").parse().unwrap_or(f64::MAX)
}

pub fn measure(section: &mut Section, f: &Fixture) -> Result<()> {
    for json in [false, true] {
        let mut c = ferry(f.path())?;
        c.args(["list", "activity"]);
        if json {
            c.arg("--json");
        }
        let started = Instant::now();
        let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().context("cannot run ferry list")?;
        let pid = child.id();
        let mut stdout = child.stdout.take().context("piped stdout")?;
        // Drain the output on a thread, counting lines, while this thread
        // samples the process's high-water mark.
        let reader = std::thread::spawn(move || -> std::io::Result<(u64, u64)> {
            let (mut bytes, mut lines, mut buf) = (0u64, 0u64, vec![0u8; 1 << 16]);
            loop {
                let n = stdout.read(&mut buf)?;
                if n == 0 {
                    return Ok((bytes, lines));
                }
                bytes += n as u64;
                lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            }
        });
        let mut peak_kb = 0;
        while child.try_wait()?.is_none() {
            if let Ok((_, hwm)) = memory_kb(pid) {
                peak_kb = peak_kb.max(hwm);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let wall = started.elapsed();
        let (_bytes, lines) = reader.join().expect("reader thread")?;
        ensure!(child.wait()?.success(), "ferry list failed");
        // Text: one line per record; JSON: an array of objects over lines.
        ensure!(lines >= f.queued as u64, "ferry list printed {lines} lines for {} records", f.queued);
        let command = if json { "`ferry list activity --json`" } else { "`ferry list activity`" };
        section.row(vec![
            thousands(f.queued as u64),
            command.into(),
            ms_str(wall),
            format!("{:.1} MB", peak_kb as f64 / 1024.0),
        ]);
    }
    Ok(())
}
