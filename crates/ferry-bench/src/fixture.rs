//! Data dirs with a long queue, shared by `scale` and `idle`: configured for
//! a server and signed in (token file), then the server is stopped, so the
//! dir points at a dead loopback port ("offline") and the queue stays.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::common::*;

pub struct Fixture {
    pub queued: usize,
    pub fill_time: Duration,
    dir: tempfile::TempDir,
}

impl Fixture {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Builds a dir with `queued` pending 300-byte records.
    pub fn build(queued: usize) -> Result<Fixture> {
        eprintln!("fixture: queueing {queued} records…");
        let dir = tempfile::tempdir()?;
        let rt = runtime()?;
        let t = Instant::now();
        rt.block_on(async {
            let server = BenchServer::start().await?;
            let engine = engine_at(dir.path(), Some(&server.url)).await?;
            let e = engine.clone();
            tokio::task::spawn_blocking(move || enqueue(&e, 0, queued)).await??;
            drop(engine);
            server.stop().await?;
            anyhow::Ok(())
        })?;
        Ok(Fixture { queued, fill_time: t.elapsed(), dir })
    }
}
