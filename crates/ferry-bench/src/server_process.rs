//! A real `ferry-server` process on a free loopback port, killed on drop
//! (the benchmarks that measure several nodes, or the server's own memory
//! and CPU).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_server::DbLocation;

/// A node; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    pub url: String,
    child: Child,
}

impl ServerProcess {
    /// Starts a node on `db` on a free loopback port (not yet ready: see
    /// [`ServerProcess::wait_ready`]).
    pub fn start(db: &DbLocation) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let db_arg = match db {
            DbLocation::Sqlite(p) => p.to_string_lossy().into_owned(),
            DbLocation::Postgres(url) => url.clone(),
        };
        let child = Command::new(server_bin()?)
            .args(["--db", &db_arg, "--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start ferry-server")?;
        Ok(ServerProcess { url: format!("http://127.0.0.1:{port}"), child })
    }

    pub async fn wait_ready(&self) -> Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{}/health", self.url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("ferry-server at {} not ready within 30 s", self.url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `ferry-server` binary next to this one, or `FERRY_SERVER_BIN`.
pub fn server_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FERRY_SERVER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let p = std::env::current_exe()?.with_file_name("ferry-server");
    if !p.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p ferry-server` or set FERRY_SERVER_BIN",
            p.display()
        );
    }
    Ok(p)
}

impl ServerProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}
