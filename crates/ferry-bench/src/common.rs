//! Shared harness for the benchmarks: an embedded loopback server, engines
//! in temporary data dirs, the `ferry` binary, record payloads, and the
//! report sections that are printed and written to `docs/benchmarks.md`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ferry_engine::{Engine, EngineConfig, Fields, TokenStoreChoice};
use serde_json::{json, Value};

pub const USER: &str = "bench";
pub const PASSWORD: &str = "bench-password";
pub const ENTITY: &str = "activity";
/// Serialized size of every benchmark record.
pub const RECORD_BYTES: usize = 300;

// ------------------------------------------------------------------ sizes

/// Parses `10000,100000` (underscores allowed).
pub fn parse_sizes(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().replace('_', "").parse::<usize>().map_err(|e| format!("{p:?}: {e}")))
        .collect()
}

/// 1000000 -> "1 000 000".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

pub fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

pub fn fmt_rate(r: f64) -> String {
    thousands(r.round() as u64)
}

// ------------------------------------------------------------------ records

/// A JSON object whose serialization is exactly `bytes` long, distinct per `i`.
pub fn payload(i: usize, bytes: usize) -> Fields {
    let mut map = Fields::new();
    map.insert("title".into(), json!(format!("Peer mentoring session {i:08}")));
    map.insert("minutes".into(), json!(90));
    map.insert("notes".into(), json!(""));
    let base = serde_json::to_vec(&map).map(|v| v.len()).unwrap_or(0);
    map.insert("notes".into(), json!("n".repeat(bytes.saturating_sub(base))));
    map
}

pub fn record_id(i: usize) -> String {
    format!("rec-{i:08}")
}

/// Rows `start..start+n` as put_many items.
pub fn items(start: usize, n: usize) -> Vec<(String, String, Fields)> {
    (start..start + n).map(|i| (ENTITY.to_string(), record_id(i), payload(i, RECORD_BYTES))).collect()
}

/// Enqueues `n` records through `Engine::put_many` in chunks; returns the
/// time spent inside put_many (building the rows is not timed).
pub fn enqueue(engine: &Engine, start: usize, n: usize) -> Result<Duration> {
    const CHUNK: usize = 10_000;
    let mut spent = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let k = CHUNK.min(n - done);
        let rows = items(start + done, k);
        let t = Instant::now();
        engine.put_many(rows)?;
        spent += t.elapsed();
        done += k;
    }
    Ok(spent)
}

// ------------------------------------------------------------------ server

/// An embedded ferry-server on a temporary database, loopback, free port.
pub struct BenchServer {
    pub url: String,
    storage: std::sync::Arc<dyn ferry_server::Storage>,
    server: Option<ferry_server::RunningServer>,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    /// Must be called inside a tokio runtime.
    pub async fn start() -> Result<BenchServer> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("server.db");
        let location = ferry_server::DbLocation::Sqlite(db);
        let storage = ferry_server::storage::open(&location).await?;
        ferry_server::users::add_user(&*storage, USER, "bench", PASSWORD).await?;
        let mut config = ferry_server::Config::new(location);
        config.listen = "127.0.0.1:0".parse()?;
        let server = ferry_server::serve_with(config, storage.clone()).await?;
        Ok(BenchServer { url: server.url(), storage, server: Some(server), _dir: dir })
    }

    pub async fn stop(mut self) -> Result<()> {
        if let Some(s) = self.server.take() {
            s.shutdown().await?;
        }
        Ok(())
    }

    pub async fn stats(&self) -> Result<ferry_server::Stats> {
        Ok(self.storage.stats().await?)
    }
}

/// A signed-in HTTP client for reading the server directly.
pub struct ServerReader {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl ServerReader {
    pub async fn login(url: &str) -> Result<ServerReader> {
        let http = reqwest::Client::new();
        let v: Value = http
            .post(format!("{url}/v1/auth/login"))
            .json(&json!({"username": USER, "password": PASSWORD}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = v["access_token"].as_str().context("no access_token in login answer")?.to_string();
        Ok(ServerReader { http, url: url.to_string(), token })
    }

    /// Whether the server holds `entity/id` (any version).
    pub async fn has(&self, entity: &str, id: &str) -> Result<bool> {
        let r = self.http.get(format!("{}/v1/records/{entity}/{id}", self.url)).bearer_auth(&self.token).send().await?;
        match r.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => bail!("GET record answered {s}: {}", r.text().await.unwrap_or_default()),
        }
    }

    /// Polls until the record is on the server; returns when it was seen.
    pub async fn wait_for(&self, entity: &str, id: &str, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.has(entity, id).await? {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("{entity}/{id} did not reach the server within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
}

// ------------------------------------------------------------------ engine

/// Where an engine keeps its token (a file, so the CLI can share it).
pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

pub fn engine_config(data_dir: &Path) -> EngineConfig {
    EngineConfig { token_store: TokenStoreChoice::File(token_file(data_dir)), ..EngineConfig::new(data_dir) }
}

/// Opens an engine in `data_dir`; with a server, points it there and signs in.
pub async fn engine_at(data_dir: &Path, server: Option<&str>) -> Result<Engine> {
    engine_with(engine_config(data_dir), server).await
}

/// An engine opened with `config`, signed in to `server` if given.
pub async fn engine_with(config: EngineConfig, server: Option<&str>) -> Result<Engine> {
    let engine = Engine::open(config)?;
    if let Some(url) = server {
        ensure_reached(engine.init(url).await?)?;
        engine.login(USER, PASSWORD).await?;
    }
    Ok(engine)
}

fn ensure_reached(reached: bool) -> Result<()> {
    if !reached {
        bail!("benchmark server not reachable");
    }
    Ok(())
}

// ------------------------------------------------------------------ CLI

/// The `ferry` binary next to this one (build it with
/// `cargo build --release -p ferry-cli`), or `FERRY_BIN`.
pub fn ferry_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("FERRY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe()?;
    let p = me.with_file_name("ferry");
    if !p.exists() {
        bail!("{} not found: build it with `cargo build --release -p ferry-cli` or set FERRY_BIN", p.display());
    }
    Ok(p)
}

/// A `ferry` command for `data_dir` (its token file, no keyring).
pub fn ferry(data_dir: &Path) -> Result<Command> {
    let mut c = Command::new(ferry_bin()?);
    c.env("FERRY_DATA_DIR", data_dir)
        .env("FERRY_TOKEN_FILE", token_file(data_dir))
        .env_remove("FERRY_LOG")
        .stdin(Stdio::null());
    Ok(c)
}

/// Runs a command, failing on a non-zero exit; returns output and wall time.
pub fn run_timed(mut c: Command) -> Result<(Output, Duration)> {
    let t = Instant::now();
    let out = c.output().with_context(|| format!("cannot run {c:?}"))?;
    let d = t.elapsed();
    if !out.status.success() {
        bail!("{c:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok((out, d))
}

// ------------------------------------------------------------------ report

/// A goal from issue 6 and whether this run met it.
pub struct Goal {
    pub what: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

/// One benchmark's result: a table, notes and goals.
pub struct Section {
    pub title: String,
    pub about: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
    pub goals: Vec<Goal>,
}

impl Section {
    pub fn new(title: &str, about: &str, headers: &[&str]) -> Section {
        Section {
            title: title.into(),
            about: about.into(),
            headers: headers.iter().map(|s| s.to_string()).collect(),
            rows: vec![],
            notes: vec![],
            goals: vec![],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    pub fn goal(&mut self, what: &str, target: &str, measured: String, met: bool) {
        self.goals.push(Goal { what: what.into(), target: target.into(), measured, met });
    }

    /// Plain-text table on stdout.
    pub fn print(&self) {
        println!("\n== {} ==", self.title);
        let n = self.headers.len();
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{:<width$}", c, width = w[i.min(n - 1)]))
                .collect::<Vec<_>>()
                .join("  ")
        };
        println!("{}", line(&self.headers));
        println!("{}", w.iter().map(|k| "-".repeat(*k)).collect::<Vec<_>>().join("  "));
        for r in &self.rows {
            println!("{}", line(r));
        }
        for g in &self.goals {
            println!(
                "goal {}: {} — measured {} — {}",
                g.what,
                g.target,
                g.measured,
                if g.met { "MET" } else { "MISSED" }
            );
        }
        for note in &self.notes {
            println!("note: {note}");
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("## {}\n\n{}\n\n", self.title, self.about);
        s += &format!("| {} |\n", self.headers.join(" | "));
        s += &format!("|{}\n", " --- |".repeat(self.headers.len()));
        for r in &self.rows {
            s += &format!("| {} |\n", r.join(" | "));
        }
        s.push('\n');
        if !self.goals.is_empty() {
            s += "| goal | target | measured | |\n| --- | --- | --- | --- |\n";
            for g in &self.goals {
                s += &format!(
                    "| {} | {} | {} | {} |\n",
                    g.what,
                    g.target,
                    g.measured,
                    if g.met { "met" } else { "**missed**" }
                );
            }
            s.push('\n');
        }
        for n in &self.notes {
            s += &format!("- {n}\n");
        }
        if !self.notes.is_empty() {
            s.push('\n');
        }
        s
    }
}

pub fn ms_str(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else if ms < 100.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub fn warn_debug() {
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
}
