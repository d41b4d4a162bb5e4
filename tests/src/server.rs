//! Harness for the real `ferry-server` binary: start, stop, restart it on a
//! temporary database, run its CLI commands, and talk to it over HTTP with a
//! small blocking client.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use ferry_protocol::{
    ErrorBody, LoginRequest, Mutation, Op, PullResponse, PushRequest, PushResponse, RefreshRequest, TokenResponse,
};
use reqwest::blocking::Client as HttpClient;
use reqwest::Method;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{bin_path, free_port};

pub use crate::pg::{Backend, TestDb};

/// Generous: a loaded 2-core CI machine can be slow to start a process.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A `ferry-server` process on a temporary database.
///
/// The database is a SQLite file, or a fresh PostgreSQL database when
/// `FERRY_TEST_BACKEND=postgres` (see [`TestDb`]); the same tests run
/// against both. It listens on a port picked once, so
/// [`TestServer::restart`] brings it back at the same URL, as clients
/// expect of a real server. Killed on drop.
pub struct TestServer {
    dir: tempfile::TempDir,
    db: Arc<TestDb>,
    port: u16,
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
    /// The CA (PEM) its certificate is signed by when it serves HTTPS.
    ca_pem: Option<String>,
    child: Option<Child>,
}

impl TestServer {
    /// Starts a server serving HTTPS with `cert`, signed by `ca`.
    pub fn start_https(db: Arc<TestDb>, cert: &crate::tls::ServerCert, ca: &crate::tls::TestCa) -> Self {
        let (cert_path, key_path) = (cert.cert_path.display().to_string(), cert.key_path.display().to_string());
        Self::start_full(db, &["--tls-cert", &cert_path, "--tls-key", &key_path], &[], Some(ca.pem()))
    }

    /// Starts a server with default settings.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra command-line flags, e.g.
    /// `["--access-token-ttl", "1"]`.
    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::start_on(Arc::new(TestDb::new()), extra_args, &[])
    }

    /// Starts a server (another node, if others use it) on `db`, with extra
    /// flags and environment variables.
    pub fn start_on(db: Arc<TestDb>, extra_args: &[&str], extra_env: &[(&str, &str)]) -> Self {
        Self::start_full(db, extra_args, extra_env, None)
    }

    fn start_full(db: Arc<TestDb>, extra_args: &[&str], extra_env: &[(&str, &str)], ca_pem: Option<String>) -> Self {
        let mut server = TestServer {
            dir: tempfile::tempdir().expect("temp dir"),
            db,
            port: 0,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            extra_env: extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ca_pem,
            child: None,
        };
        // A port that was free a moment ago may have been taken since: try
        // a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("ferry-server did not start: {last_error}");
    }

    /// Starts a server on `db` listening on `port` (e.g. the address of a
    /// server it replaces).
    pub fn start_on_port(db: Arc<TestDb>, port: u16, extra_args: &[&str]) -> Self {
        let mut server = TestServer {
            dir: tempfile::tempdir().expect("temp dir"),
            db,
            port,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            extra_env: Vec::new(),
            ca_pem: None,
            child: None,
        };
        server.restart();
        server
    }

    /// The database this server runs on (to start more nodes on it).
    pub fn db(&self) -> Arc<TestDb> {
        self.db.clone()
    }

    /// What `--db` gets: a file path or a PostgreSQL URL.
    pub fn db_arg(&self) -> &str {
        self.db.arg()
    }

    /// Replaces the extra command-line flags used by the next [`restart`](Self::restart).
    pub fn set_args(&mut self, extra_args: &[&str]) {
        self.extra_args = extra_args.iter().map(|s| s.to_string()).collect();
    }

    /// The port it listens on (the same across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (`https://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.ca_pem.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The process id, e.g. to send it a signal.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// The SQLite file, for tests that read it directly; panics on
    /// PostgreSQL.
    pub fn db_path(&self) -> &Path {
        self.db.sqlite_path().expect("this test reads the SQLite file directly: run it with the SQLite backend")
    }

    /// Everything the server wrote to stderr (its logs), across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut log = File::options().create(true).append(true).open(self.log_path()).map_err(|e| e.to_string())?;
        let _ = writeln!(log, "---- starting ferry-server on port {}", self.port);
        let mut child = Command::new(bin_path("ferry-server"))
            .arg("--db")
            .arg(self.db.arg())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .args(&self.extra_args)
            .arg("serve")
            .env("RUST_LOG", "info")
            .envs(self.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("cannot run ferry-server: {e}"))?;

        // Read stdout on a thread: the first `listening on` line says the
        // port is bound; later output is drained so the pipe never fills.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let announced = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(url) => break url,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("exited with {status}; log:\n{}", self.log()));
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("no `listening on` line within {STARTUP_TIMEOUT:?}; log:\n{}", self.log()));
                }
            }
        };
        assert_eq!(announced, self.url(), "announced URL");
        self.child = Some(child);
        self.wait_healthy(deadline)?;
        Ok(())
    }

    fn wait_healthy(&mut self, deadline: Instant) -> Result<(), String> {
        let http = http_client(Duration::from_secs(5), self.ca_pem.as_deref());
        loop {
            match http.get(format!("{}/health", self.url())).send() {
                Ok(r) if r.status().is_success() => return Ok(()),
                _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
                other => return Err(format!("/health not ready: {other:?}; log:\n{}", self.log())),
            }
        }
    }

    /// SIGKILL: the process dies at once, as in a crash or power loss of
    /// the process (the OS still flushes what SQLite wrote).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit and returns its status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with_signal("TERM")
    }

    /// Sends `signal` (a name for `kill -s`, e.g. `TERM`, `INT`), then waits
    /// for the process to exit and returns its status.
    pub fn stop_with_signal(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        let status = Command::new("kill").args(["-s", signal, &child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -s {signal} failed");
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ferry-server did not exit within {EXIT_TIMEOUT:?} of SIGTERM; log:\n{}", self.log());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server if it runs and starts it again on the same database
    /// and port.
    pub fn restart(&mut self) {
        self.kill();
        let mut last_error = String::new();
        // The port was ours a moment ago; retry briefly in case the OS has
        // not released it yet.
        for _ in 0..20 {
            match self.spawn() {
                Ok(()) => return,
                Err(e) => {
                    last_error = e;
                    thread::sleep(Duration::from_millis(500));
                }
            }
        }
        panic!("ferry-server did not restart: {last_error}");
    }

    /// Runs a `ferry-server` CLI command on this server's database.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_cli(self.db.arg(), args, stdin)
    }

    /// `ferry-server user add NAME --org ORG --password-stdin`; panics on
    /// failure.
    pub fn add_user(&self, name: &str, org: &str, password: &str) {
        let out = self.cli(&["user", "add", name, "--org", org, "--password-stdin"], Some(password));
        assert!(out.status.success(), "user add {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `ferry-server stats --json`.
    pub fn stats(&self) -> Value {
        let out = self.cli(&["stats", "--json"], None);
        assert!(out.status.success(), "stats failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("stats --json is JSON")
    }

    /// `ferry-server dump`: every record with its org, one per element.
    pub fn dump(&self) -> Vec<Value> {
        let out = self.cli(&["dump"], None);
        assert!(out.status.success(), "dump failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .expect("utf-8 dump")
            .lines()
            .map(|l| serde_json::from_str(l).expect("dump line is JSON"))
            .collect()
    }

    /// An HTTP client for this server (not signed in), trusting its CA.
    pub fn client(&self) -> Client {
        Client::with_ca(&self.url(), self.ca_pem.as_deref())
    }

    /// A client signed in as `user`.
    pub fn login(&self, user: &str, password: &str) -> Client {
        let mut c = self.client();
        c.login(user, password);
        c
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `ferry-server --db DB ARGS...`, feeding `stdin` if given.
pub fn run_cli(db: impl AsRef<std::ffi::OsStr>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(bin_path("ferry-server"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ferry-server");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // The command may exit without reading (e.g. a usage error): a
        // broken pipe here is its answer, not the harness's failure.
        let _ = pipe.write_all(input.as_bytes());
        drop(pipe);
    }
    child.wait_with_output().expect("wait for ferry-server")
}

fn http_client(timeout: Duration, ca_pem: Option<&str>) -> HttpClient {
    let mut builder = HttpClient::builder().timeout(timeout);
    if let Some(pem) = ca_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes()).expect("test CA is PEM") {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().expect("http client")
}

/// An HTTP answer: status, headers and the body parsed as JSON (`Null` when
/// empty, a string when not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `error` code of an [`ErrorBody`]; panics if the body is not one.
    pub fn error_code(&self) -> String {
        let parsed: ErrorBody = serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("not an ErrorBody ({e}): {}", self.body));
        assert!(!parsed.message.is_empty(), "empty error message");
        self.body["error"].as_str().unwrap_or_default().to_owned()
    }

    pub fn message(&self) -> String {
        self.body["message"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts status and error code, with the body in the failure message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "status; body: {}", self.body);
        assert_eq!(self.error_code(), code, "error code; body: {}", self.body);
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone()).unwrap_or_else(|e| panic!("unexpected body ({e}): {}", self.body))
    }
}

/// What to put in the `Authorization` header.
#[derive(Debug, Clone)]
pub enum AuthHeader {
    /// The client's current access token (none if not signed in).
    Session,
    None,
    /// This exact header value.
    Raw(String),
}

/// A small blocking client for the sync API.
pub struct Client {
    http: HttpClient,
    base: String,
    pub tokens: Option<TokenResponse>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self::with_ca(base, None)
    }

    /// A client that also trusts the CA in `ca_pem`.
    pub fn with_ca(base: &str, ca_pem: Option<&str>) -> Self {
        Client {
            http: http_client(Duration::from_secs(60), ca_pem),
            base: base.trim_end_matches('/').to_owned(),
            tokens: None,
        }
    }

    /// Sends a request; `Err` with the transport error's chain instead of
    /// panicking (for tests of connections that must fail).
    pub fn try_get(&self, path: &str) -> Result<u16, String> {
        match self.http.get(format!("{}{}", self.base, path)).send() {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => {
                let mut chain = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    chain = format!("{chain}: {s}");
                    source = s.source();
                }
                Err(chain)
            }
        }
    }

    pub fn access_token(&self) -> &str {
        &self.tokens.as_ref().expect("signed in").access_token
    }

    /// Sends a request; `body` is sent verbatim.
    pub fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>, auth: AuthHeader) -> Reply {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        match auth {
            AuthHeader::Session => {
                if let Some(t) = &self.tokens {
                    req = req.bearer_auth(&t.access_token);
                }
            }
            AuthHeader::None => {}
            AuthHeader::Raw(value) => req = req.header("authorization", value),
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let res = req.send().expect("HTTP request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Reply { status, headers, body }
    }

    pub fn post_json(&self, path: &str, body: &impl serde::Serialize) -> Reply {
        self.request(Method::POST, path, Some(serde_json::to_vec(body).unwrap()), AuthHeader::Session)
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None, AuthHeader::Session)
    }

    pub fn try_login(&self, user: &str, password: &str) -> Reply {
        self.post_json("/v1/auth/login", &LoginRequest { username: user.into(), password: password.into() })
    }

    /// Signs in; panics unless it succeeds.
    pub fn login(&mut self, user: &str, password: &str) -> TokenResponse {
        let reply = self.try_login(user, password);
        assert_eq!(reply.status, 200, "login as {user}: {}", reply.body);
        let tokens: TokenResponse = reply.json();
        self.tokens = Some(tokens.clone());
        tokens
    }

    pub fn refresh(&self, refresh_token: &str) -> Reply {
        self.post_json("/v1/auth/refresh", &RefreshRequest { refresh_token: refresh_token.into() })
    }

    pub fn logout(&self, refresh_token: &str) -> Reply {
        self.post_json("/v1/auth/logout", &RefreshRequest { refresh_token: refresh_token.into() })
    }

    pub fn try_push(&self, mutations: &[Mutation]) -> Reply {
        self.post_json("/v1/push", &PushRequest { mutations: mutations.to_vec(), database: None })
    }

    /// Pushes; panics unless the server answers 200.
    pub fn push(&self, mutations: &[Mutation]) -> PushResponse {
        let reply = self.try_push(mutations);
        assert_eq!(reply.status, 200, "push: {}", reply.body);
        reply.json()
    }

    /// Pushes a raw body with the session's token.
    pub fn push_raw(&self, body: impl Into<Vec<u8>>) -> Reply {
        self.request(Method::POST, "/v1/push", Some(body.into()), AuthHeader::Session)
    }

    pub fn pull(&self, since: u64, limit: u32) -> PullResponse {
        let reply = self.get(&format!("/v1/pull?since={since}&limit={limit}"));
        assert_eq!(reply.status, 200, "pull: {}", reply.body);
        reply.json()
    }

    /// Pulls every page from `since` on.
    pub fn pull_all(&self, mut since: u64) -> (Vec<ferry_protocol::RemoteRecord>, u64) {
        let mut all = Vec::new();
        loop {
            let page = self.pull(since, 1000);
            all.extend(page.changes);
            since = page.cursor;
            if !page.has_more {
                return (all, since);
            }
        }
    }
}

/// A JSON object from a `serde_json::json!` value.
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not a JSON object: {other}"),
    }
}

pub fn mutation(op: Op, entity: &str, record_id: &str, base_version: u64, payload: Option<Value>) -> Mutation {
    Mutation {
        id: Uuid::new_v4(),
        entity: entity.into(),
        record_id: record_id.into(),
        op,
        payload: payload.map(obj),
        base_version,
        edited_at: 1_700_000_000_000,
    }
}

pub fn upsert(entity: &str, record_id: &str, base_version: u64, payload: Value) -> Mutation {
    mutation(Op::Upsert, entity, record_id, base_version, Some(payload))
}

pub fn patch(entity: &str, record_id: &str, base_version: u64, payload: Value) -> Mutation {
    mutation(Op::Patch, entity, record_id, base_version, Some(payload))
}

pub fn delete(entity: &str, record_id: &str, base_version: u64) -> Mutation {
    mutation(Op::Delete, entity, record_id, base_version, None)
}
