//! Several `ferry-server` nodes on one PostgreSQL database behind a real
//! load balancer (HAProxy, round-robin per request), as an organisation
//! deploys them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::free_port;
use crate::pg::{pg_admin_url, Backend, TestDb};
use crate::server::{Client, TestServer};

/// `FERRY_TEST_PG_URL` is needed for these tests; without it (a developer
/// machine without PostgreSQL) they are skipped with a note, unless
/// `FERRY_REQUIRE_POSTGRES=1` (CI), where its absence fails them.
pub fn postgres_available() -> bool {
    if std::env::var("FERRY_TEST_PG_URL").is_ok_and(|u| !u.is_empty()) {
        return true;
    }
    assert!(
        std::env::var("FERRY_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "FERRY_REQUIRE_POSTGRES=1 but FERRY_TEST_PG_URL is not set: start a cluster with scripts/pg-test-cluster.sh"
    );
    eprintln!("skipped: needs PostgreSQL (FERRY_TEST_PG_URL; scripts/test.sh starts a throwaway cluster)");
    false
}

/// N nodes on one fresh PostgreSQL database, and HAProxy in front.
pub struct TestCluster {
    db: Arc<TestDb>,
    nodes: Vec<TestServer>,
    lb: LoadBalancer,
}

impl TestCluster {
    pub fn start(nodes: usize) -> Self {
        Self::start_with(nodes, &[], &[])
    }

    /// Every node gets `extra_args` and `extra_env`.
    pub fn start_with(nodes: usize, extra_args: &[&str], extra_env: &[(&str, &str)]) -> Self {
        assert!(nodes > 0);
        let db = Arc::new(TestDb::on(&Backend::Postgres { admin_url: pg_admin_url() }));
        let nodes: Vec<TestServer> =
            (0..nodes).map(|_| TestServer::start_on(db.clone(), extra_args, extra_env)).collect();
        let lb = LoadBalancer::start(&nodes.iter().map(|n| n.port()).collect::<Vec<_>>());
        TestCluster { db, nodes, lb }
    }

    /// The load balancer's URL: what clients use.
    pub fn url(&self) -> String {
        self.lb.url()
    }

    pub fn db(&self) -> Arc<TestDb> {
        self.db.clone()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn node(&self, i: usize) -> &TestServer {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut TestServer {
        &mut self.nodes[i]
    }

    /// A client talking to the load balancer.
    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }

    pub fn add_user(&self, name: &str, org: &str, password: &str) {
        self.nodes[0].add_user(name, org, password);
    }

    pub fn stats(&self) -> Value {
        self.nodes[0].stats()
    }

    pub fn dump(&self) -> Vec<Value> {
        self.nodes[0].dump()
    }

    /// SIGKILL of node `i`; the load balancer notices within a second and
    /// sends everything to the others.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its port (the load balancer takes it back).
    pub fn restart_node(&mut self, i: usize) {
        self.nodes[i].restart();
    }

    /// Everything the nodes and the load balancer logged, for failures.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            out.push_str(&format!("==== node {i}\n{}\n", n.log()));
        }
        out.push_str(&format!("==== haproxy\n{}\n", self.lb.log()));
        out
    }
}

/// HAProxy on a free loopback port, round-robin over the nodes per request,
/// with health checks on `/health` so a killed node leaves the rotation.
pub struct LoadBalancer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl LoadBalancer {
    pub fn start(node_ports: &[u16]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let haproxy = which("haproxy")
            .unwrap_or_else(|| panic!("HAProxy is not installed: apt-get install haproxy (scripts/setup.sh does)"));
        let cfg = dir.path().join("haproxy.cfg");
        let log_path = dir.path().join("haproxy.log");
        let mut last = String::new();
        // A port that was free a moment ago may have been taken since.
        for _ in 0..5 {
            let port = free_port();
            std::fs::write(&cfg, config(port, node_ports)).expect("write haproxy.cfg");
            let log = std::fs::File::create(&log_path).expect("haproxy log");
            let child = Command::new(&haproxy)
                .args(["-db", "-f"])
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("run haproxy");
            let mut child = Some(child);
            match wait_ready(port, &mut child, &log_path) {
                Ok(()) => return LoadBalancer { port, dir, child },
                Err(e) => {
                    last = e;
                    if let Some(mut c) = child {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                }
            }
        }
        panic!("haproxy did not start: {last}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_ready(port: u16, child: &mut Option<Child>, log: &std::path::Path) -> Result<(), String> {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        if let Some(Ok(Some(status))) = child.as_mut().map(|c| c.try_wait()) {
            return Err(format!("haproxy exited with {status}: {}", log()));
        }
        match http.get(format!("http://127.0.0.1:{port}/health")).send() {
            Ok(r) if r.status().is_success() => return Ok(()),
            _ if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            other => return Err(format!("{other:?}; log: {}", log())),
        }
    }
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(port: u16, nodes: &[u16]) -> String {
    let mut cfg = String::new();
    // Health checks every 200 ms; two failures take a node out, one success
    // brings it back. A connection refused by a dead node is retried on
    // another (safe: nothing was sent); a request already sent is not, and
    // its client sees a 502 and retries itself, as it would on the internet.
    let _ = write!(
        cfg,
        "global\n    log stderr format short local0 notice\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n\
         \x20   retries 3\n    option redispatch\n\
         frontend ferry\n    bind 127.0.0.1:{port}\n    default_backend nodes\n\
         backend nodes\n    balance roundrobin\n    option httpchk GET /health\n    http-check expect status 200\n"
    );
    for (i, p) in nodes.iter().enumerate() {
        let _ = writeln!(cfg, "    server n{i} 127.0.0.1:{p} check inter 200ms fall 2 rise 1");
    }
    cfg
}

fn which(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
}
