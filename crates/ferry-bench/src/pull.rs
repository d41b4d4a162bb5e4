//! `pull`: N remote changes (pushed by one engine) applied by a second,
//! fresh engine in one `sync_once`.

use std::time::Instant;

use anyhow::{ensure, Result};

use crate::common::*;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remote changes to pull.
    #[arg(long, default_value_t = 100_000)]
    pub changes: usize,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let n = args.changes;
    let mut section = Section::new(
        "Pull",
        "One engine pushes N 300-byte records to an embedded `ferry-server`; a second engine with an empty \
         data dir (same organisation) then runs one `sync_once`, which pulls them in pages of 1 000 over \
         loopback HTTP and applies each page in one transaction.",
        &["remote changes", "pull time", "applied/s"],
    );
    let rt = runtime()?;
    let (elapsed, downloaded) = rt.block_on(async {
        let server = BenchServer::start().await?;
        let a_dir = tempfile::tempdir()?;
        let a = engine_at(a_dir.path(), Some(&server.url)).await?;
        let a2 = a.clone();
        tokio::task::spawn_blocking(move || enqueue(&a2, 0, n)).await??;
        let pushed = a.sync_once().await?;
        ensure!(pushed.uploaded as usize == n, "pushed {} of {n}", pushed.uploaded);
        drop(a);
        let b_dir = tempfile::tempdir()?;
        let b = engine_at(b_dir.path(), Some(&server.url)).await?;
        let t = Instant::now();
        let report = b.sync_once().await?;
        let elapsed = t.elapsed();
        ensure!(report.downloaded as usize == n, "pulled {} of {n}", report.downloaded);
        drop(b);
        server.stop().await?;
        anyhow::Ok((elapsed, report.downloaded))
    })?;
    section.row(vec![
        thousands(downloaded),
        format!("{:.2} s", elapsed.as_secs_f64()),
        fmt_rate(rate(downloaded as usize, elapsed)),
    ]);
    Ok(section)
}
