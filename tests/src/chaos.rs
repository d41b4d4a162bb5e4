//! The convergence workload: several real `ferry` clients, each behind its
//! own [`FaultProxy`], hammer one real `ferry-server` with random puts,
//! patches and deletes over a small key space (so they conflict), on
//! entities with every conflict policy, while requests fail at random, client
//! `ferry sync` processes are killed with SIGKILL mid-flight and the server is
//! killed and restarted on the same database and port. Then the faults stop,
//! every client syncs until quiet (open manual conflicts are resolved with a
//! random side), and the outcome is checked the way Jepsen checks a store:
//!
//! - **divergent**: every client's records equal the server's (`ferry list
//!   --json` per entity against `ferry-server dump`);
//! - **lost**: every acknowledged local write (a `ferry put/patch/delete`
//!   that exited 0 and printed a mutation id) is applied on the server (its id
//!   is in the server's idempotency table), or superseded by a resolution
//!   listed in that client's history, or still an open conflict;
//! - **duplicates**: no mutation applied twice: `mutations_applied` equals the
//!   number of distinct applied mutation ids, and the versions of each record
//!   were produced by exactly one applied mutation each (1, 2, ..., version,
//!   no repeats, no gaps).
//!
//! The run is driven by one seed (`FERRY_CHAOS_SEED` replays a run). Process
//! timing makes a replay follow the same workload and fault choices, but
//! not always the same interleaving.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

use crate::ferry::{Ferry, Run};
use crate::proxy::{Fault, FaultProxy};
use crate::server::TestServer;

/// Entities of the workload and their conflict policies.
pub const ENTITIES: &[(&str, &str)] = &[
    ("activity", "lww"),
    ("expense", "merge"),
    ("contact", "server-wins"),
    ("note", "client-wins"),
    ("task", "manual"),
];

const FIELDS: &[&str] = &["a", "b", "c", "d"];
const ORG: &str = "org1";

#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    pub clients: usize,
    /// Workload steps in total (over all clients).
    pub ops: usize,
    /// Record ids per entity: small, so clients collide.
    pub keys: usize,
    /// Share of requests that get a fault while chaos is on.
    pub fault_rate: f64,
    /// Client request timeout (`FERRY_HTTP_TIMEOUT_SECS`).
    pub http_timeout_secs: f64,
    /// Print each step.
    pub verbose: bool,
}

impl Config {
    pub fn new(seed: u64, clients: usize, ops: usize) -> Config {
        Config { seed, clients, ops, keys: 4, fault_rate: 0.25, http_timeout_secs: 1.5, verbose: false }
    }
}

/// `FERRY_CHAOS_SEED` if set (to replay a run), else a fresh random seed.
pub fn seed_from_env() -> u64 {
    match std::env::var("FERRY_CHAOS_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("FERRY_CHAOS_SEED={s:?} is not a number")),
        Err(_) => rand::random::<u64>() % 1_000_000_000,
    }
}

/// What a run did and found.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub seed: u64,
    pub clients: usize,
    pub steps: usize,
    pub steps_by_kind: BTreeMap<&'static str, u64>,
    /// Local writes that exited 0 with a mutation id.
    pub acknowledged: u64,
    /// Writes refused locally (patch/delete of a record absent here): fine.
    pub refused_locally: u64,
    /// `ferry sync` runs, by exit code ("killed" for SIGKILLed ones).
    pub syncs_by_exit: BTreeMap<String, u64>,
    pub requests: u64,
    pub faults: BTreeMap<String, u64>,
    pub client_kills: u64,
    pub server_kills: u64,
    pub manual_resolutions: u64,
    pub heal_rounds: u64,
    pub converged: bool,
    pub server_records: u64,
    pub mutations_applied: u64,
    pub mutations_duplicate_answers: u64,
    pub conflicts_reported: u64,
    pub rejected: u64,
    pub distinct_applied_ids: u64,
    pub acked_applied: u64,
    pub acked_superseded_only: u64,
    /// Applied ids no `ferry put/patch/delete` printed: the uploads of
    /// conflict resolutions (a merged or kept-local result).
    pub resolution_uploads: u64,
    pub open_conflicts: u64,
    pub failed_mutations: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub divergent: u64,
    /// Commands that failed with SQLite's "database is locked" while another
    /// `ferry` process of the same data dir was syncing (a known engine bug,
    /// see docs/reliability.md; the write was not acknowledged, so nothing
    /// is lost, but the user saw an error).
    pub busy_errors: u64,
    /// Anything that should never happen: a panic, a hung process, an
    /// unexpected error; with enough detail to start debugging.
    pub findings: Vec<String>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.converged && self.lost == 0 && self.duplicates == 0 && self.divergent == 0 && self.findings.is_empty()
    }
    pub fn total_faults(&self) -> u64 {
        self.faults.values().sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "| {k:<44} | {v:>12} |");
        writeln!(f, "| {:<44} | {:>12} |", "ferry chaos run", "")?;
        writeln!(f, "|{}|{}|", "-".repeat(46), "-".repeat(14))?;
        row(f, "seed (FERRY_CHAOS_SEED)", self.seed.to_string())?;
        row(f, "clients", self.clients.to_string())?;
        row(f, "workload steps", self.steps.to_string())?;
        for (k, v) in &self.steps_by_kind {
            row(f, &format!("  steps: {k}"), v.to_string())?;
        }
        row(f, "local writes acknowledged", self.acknowledged.to_string())?;
        row(f, "local writes refused (no such record here)", self.refused_locally.to_string())?;
        for (k, v) in &self.syncs_by_exit {
            row(f, &format!("  `ferry sync` exit {k}"), v.to_string())?;
        }
        row(f, "HTTP requests through the proxies", self.requests.to_string())?;
        row(f, "faults injected (total)", self.total_faults().to_string())?;
        for (k, v) in &self.faults {
            row(f, &format!("  fault: {k}"), v.to_string())?;
        }
        row(f, "client kill -9 (mid-sync)", self.client_kills.to_string())?;
        row(f, "server kill -9 + restart", self.server_kills.to_string())?;
        row(f, "manual conflicts resolved by the harness", self.manual_resolutions.to_string())?;
        row(f, "heal rounds until quiet", self.heal_rounds.to_string())?;
        row(f, "server records (incl. tombstones)", self.server_records.to_string())?;
        row(f, "server: mutations_applied", self.mutations_applied.to_string())?;
        row(f, "server: distinct applied mutation ids", self.distinct_applied_ids.to_string())?;
        row(f, "server: re-sends answered `duplicate`", self.mutations_duplicate_answers.to_string())?;
        row(f, "server: conflicts answered", self.conflicts_reported.to_string())?;
        row(f, "server: rejected", self.rejected.to_string())?;
        row(f, "acknowledged writes applied on the server", self.acked_applied.to_string())?;
        row(f, "acknowledged writes superseded (in history)", self.acked_superseded_only.to_string())?;
        row(f, "resolution uploads (engine-made mutations)", self.resolution_uploads.to_string())?;
        row(f, "open conflicts after healing", self.open_conflicts.to_string())?;
        row(f, "failed mutations after healing", self.failed_mutations.to_string())?;
        row(f, "converged", self.converged.to_string())?;
        row(f, "LOST acknowledged writes", self.lost.to_string())?;
        row(f, "DUPLICATE applications", self.duplicates.to_string())?;
        row(f, "DIVERGENT records", self.divergent.to_string())?;
        row(f, "`database is locked` errors", self.busy_errors.to_string())?;
        row(f, "findings (panics, hangs, odd errors)", self.findings.len().to_string())?;
        row(f, "elapsed", format!("{:.1} s", self.elapsed.as_secs_f64()))?;
        for finding in &self.findings {
            writeln!(f, "finding: {finding}")?;
        }
        Ok(())
    }
}

type FaultCounts = Arc<Mutex<BTreeMap<String, u64>>>;

struct Client {
    idx: usize,
    ferry: Ferry,
    proxy: FaultProxy,
    /// Mutation ids of acknowledged local writes, with what they were.
    acked: Vec<(String, String)>,
}

/// Label of a fault for the summary.
fn fault_kind(f: &Fault) -> String {
    f.label().to_string()
}

fn random_fault(rng: &mut StdRng, http_timeout: f64) -> Fault {
    match rng.gen_range(0..100) {
        0..=7 => Fault::Status { code: 500, retry_after: None },
        8..=15 => Fault::Status { code: 502, retry_after: None },
        16..=23 => Fault::Status { code: 503, retry_after: None },
        24..=30 => Fault::Status { code: 429, retry_after: Some(1) },
        31..=34 => Fault::HangFor(Duration::from_secs_f64(http_timeout + 1.0)),
        35..=44 => Fault::ResetBeforeRequest,
        45..=62 => Fault::ResetAfterRequest,
        63..=71 => Fault::ResetMidRequest,
        72..=76 => Fault::TruncateResponse,
        77..=80 => Fault::ResetMidResponse,
        81..=88 => Fault::TruncateAt(rng.gen_range(0..40)),
        _ => Fault::Delay(Duration::from_millis(rng.gen_range(50..400))),
    }
}

fn install_chooser(
    proxy: &FaultProxy,
    seed: u64,
    rate: f64,
    http_timeout: f64,
    on: Arc<AtomicBool>,
    counts: FaultCounts,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    proxy.set_chooser(move |_path| {
        // Draw every time so the sequence does not depend on `on`.
        let roll: f64 = rng.gen();
        let fault = random_fault(&mut rng, http_timeout);
        if !on.load(Ordering::SeqCst) || roll >= rate {
            return Fault::Pass;
        }
        *counts.lock().unwrap().entry(fault_kind(&fault)).or_default() += 1;
        fault
    });
}

/// Runs a whole chaos session and checks it. Never panics on a finding:
/// everything goes into the summary.
pub fn run(cfg: &Config) -> Summary {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut sum = Summary { seed: cfg.seed, clients: cfg.clients, steps: cfg.ops, ..Default::default() };
    eprintln!(
        "ferry chaos: seed {} (replay with FERRY_CHAOS_SEED={}), {} clients, {} steps",
        cfg.seed, cfg.seed, cfg.clients, cfg.ops
    );

    let mut server = TestServer::start();
    let upstream = server.url();
    let chaos_on = Arc::new(AtomicBool::new(false));
    let counts: FaultCounts = Arc::default();
    let timeout = cfg.http_timeout_secs.to_string();
    let mut clients: Vec<Client> = (0..cfg.clients)
        .map(|idx| {
            let user = format!("device{idx}");
            server.add_user(&user, ORG, "pw");
            let proxy = FaultProxy::start(&upstream);
            install_chooser(
                &proxy,
                cfg.seed.wrapping_mul(31).wrapping_add(idx as u64 + 1),
                cfg.fault_rate,
                cfg.http_timeout_secs,
                chaos_on.clone(),
                counts.clone(),
            );
            let batch = rng.gen_range(2..9).to_string();
            let ferry = Ferry::new().with_env("FERRY_HTTP_TIMEOUT_SECS", &timeout).with_env("FERRY_BATCH_MAX", &batch);
            ferry.connect(&proxy.url(), &user, "pw");
            for (entity, policy) in ENTITIES {
                ferry.run(&["policy", entity, policy]).ok();
            }
            Client { idx, ferry, proxy, acked: Vec::new() }
        })
        .collect();

    chaos_on.store(true, Ordering::SeqCst);
    for step in 0..cfg.ops {
        let c = rng.gen_range(0..clients.len());
        let roll = rng.gen_range(0..100);
        let kind: &'static str = match roll {
            0..=49 => "write",
            50..=74 => "sync",
            75..=77 => "sync, connection refused",
            78..=89 => "sync + concurrent writes, kill -9 client",
            90..=94 => "sync, kill -9 server mid-flight",
            _ => "resolve open conflicts",
        };
        *sum.steps_by_kind.entry(kind).or_default() += 1;
        if cfg.verbose {
            eprintln!("step {step}: client {c}: {kind}");
        }
        match kind {
            "write" => write(&mut clients[c], &mut rng, cfg.keys, step, &mut sum),
            "sync" => {
                let r = clients[c].ferry.sync();
                note_sync(&r, &mut sum, c);
            }
            "sync, connection refused" => {
                clients[c].proxy.set_refusing(true);
                let r = clients[c].ferry.sync();
                clients[c].proxy.set_refusing(false);
                *counts.lock().unwrap().entry("connection refused (port closed)".into()).or_default() += 1;
                if r.code != 5 {
                    sum.findings.push(format!(
                        "sync with the port closed exited {} (expected 5): {}",
                        r.code,
                        r.stderr.trim()
                    ));
                }
                note_sync(&r, &mut sum, c);
            }
            "sync + concurrent writes, kill -9 client" => {
                // A write runs in its own process while the sync runs;
                // the sync dies with SIGKILL at a random moment.
                let child = spawn_sync(&clients[c].ferry);
                let (args, desc) = plan_write(&clients[c], &mut rng, cfg.keys, step);
                let writer = clients[c]
                    .ferry
                    .command()
                    .args(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn ferry write");
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..80)));
                finish_sync(child, true, &mut sum, c);
                let out = writer.wait_with_output().expect("wait ferry write");
                let r = Run {
                    code: out.status.code().unwrap_or(-1),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                };
                note_write(&mut clients[c], r, &args, desc, &mut sum);
            }
            "sync, kill -9 server mid-flight" => {
                let child = spawn_sync(&clients[c].ferry);
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..300)));
                server.kill();
                sum.server_kills += 1;
                finish_sync(child, false, &mut sum, c);
                server.restart();
            }
            _ => resolve_all(&clients[c], &mut rng, &mut sum),
        }
    }

    // Heal: no faults, the server up, every client syncs until quiet.
    chaos_on.store(false, Ordering::SeqCst);
    for cl in &clients {
        cl.proxy.set_refusing(false);
    }
    let mut quiet = false;
    for round in 0..40 {
        sum.heal_rounds = round + 1;
        let before = server.stats()["mutations_applied"].as_u64().unwrap_or(0);
        let mut all_zero = true;
        for (i, cl) in clients.iter().enumerate() {
            let r = cl.ferry.sync();
            note_sync(&r, &mut sum, i);
            if r.code != 0 {
                all_zero = false;
                if r.code == 3 {
                    resolve_all(cl, &mut rng, &mut sum);
                }
            }
        }
        let after = server.stats()["mutations_applied"].as_u64().unwrap_or(0);
        if all_zero && after == before {
            quiet = true;
            break;
        }
    }
    sum.converged = quiet;
    if !quiet {
        for cl in &clients {
            sum.findings.push(format!(
                "client {} did not settle after healing: status {}; queue {}",
                cl.idx,
                cl.ferry.status(),
                Value::Array(cl.ferry.queue(None))
            ));
        }
    }

    let c = counts.lock().unwrap().clone();
    sum.faults = c;
    sum.requests = clients.iter().map(|c| c.proxy.counts().requests).sum();

    check(&mut server, &clients, &mut sum);
    sum.elapsed = started.elapsed();
    sum
}

fn payload(rng: &mut StdRng, client: usize, step: usize, allow_null: bool) -> Value {
    let mut m = Map::new();
    let n = rng.gen_range(1..=FIELDS.len());
    let mut fields = FIELDS.to_vec();
    fields.shuffle(rng);
    for f in &fields[..n] {
        let v = if allow_null && rng.gen_bool(0.15) { Value::Null } else { json!(format!("c{client}s{step}")) };
        m.insert(f.to_string(), v);
    }
    Value::Object(m)
}

fn write(cl: &mut Client, rng: &mut StdRng, keys: usize, step: usize, sum: &mut Summary) {
    let (args, desc) = plan_write(cl, rng, keys, step);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = cl.ferry.run(&a);
    note_write(cl, r, &args, desc, sum);
}

/// A random put, patch or delete: (arguments, description).
fn plan_write(cl: &Client, rng: &mut StdRng, keys: usize, step: usize) -> (Vec<String>, String) {
    let (entity, _) = ENTITIES[rng.gen_range(0..ENTITIES.len())];
    let key = format!("k{}", rng.gen_range(0..keys.max(1)));
    let op = rng.gen_range(0..10);
    let (args, desc): (Vec<String>, String) = match op {
        0..=3 => {
            let p = payload(rng, cl.idx, step, false).to_string();
            (vec!["put".into(), entity.into(), key.clone(), p.clone()], format!("put {entity}/{key} {p}"))
        }
        4..=7 => {
            let p = payload(rng, cl.idx, step, true).to_string();
            (vec!["patch".into(), entity.into(), key.clone(), p.clone()], format!("patch {entity}/{key} {p}"))
        }
        _ => (vec!["delete".into(), entity.into(), key.clone()], format!("delete {entity}/{key}")),
    };
    (args, desc)
}

fn note_write(cl: &mut Client, r: Run, args: &[String], desc: String, sum: &mut Summary) {
    check_no_panic(&r, &format!("client {} `ferry {}`", cl.idx, args[0]), sum);
    if r.code == 0 {
        let id = r.stdout.trim().to_string();
        if uuid::Uuid::parse_str(&id).is_err() {
            sum.findings.push(format!("client {}: `{desc}` exited 0 without a mutation id: {:?}", cl.idx, r.stdout));
            return;
        }
        sum.acknowledged += 1;
        cl.acked.push((id, desc));
    } else if r.stderr.contains("no record") {
        sum.refused_locally += 1;
    } else if r.stderr.contains("database is locked") {
        sum.busy_errors += 1;
    } else {
        sum.findings.push(format!("client {}: `{desc}` failed ({}): {}", cl.idx, r.code, r.stderr.trim()));
    }
}

fn check_no_panic(r: &Run, what: &str, sum: &mut Summary) {
    if r.stderr.contains("panicked") {
        sum.findings.push(format!("{what} panicked: {}", r.stderr.trim()));
    }
}

fn note_sync(r: &Run, sum: &mut Summary, client: usize) {
    check_no_panic(r, &format!("client {client} `ferry sync`"), sum);
    *sum.syncs_by_exit.entry(r.code.to_string()).or_default() += 1;
    if r.code == 1 && r.stderr.contains("database is locked") {
        sum.busy_errors += 1;
    } else if ![0, 3, 5].contains(&r.code) {
        sum.findings.push(format!("client {client} `ferry sync` exited {}: {}", r.code, r.stderr.trim()));
    }
}

fn spawn_sync(f: &Ferry) -> Child {
    f.command().arg("sync").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn ferry sync")
}

/// Waits for a `ferry sync` child (killing it with SIGKILL first if `kill`
/// and it still runs).
fn finish_sync(mut child: Child, kill: bool, sum: &mut Summary, client: usize) {
    if kill {
        if let Ok(None) = child.try_wait() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            sum.client_kills += 1;
            *sum.syncs_by_exit.entry("killed".into()).or_default() += 1;
            return;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                sum.findings.push(format!("client {client} `ferry sync` still ran after 120 s: killed"));
                break;
            }
        }
    }
    let out = child.wait_with_output().expect("wait ferry sync");
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    note_sync(&r, sum, client);
}

fn resolve_all(cl: &Client, rng: &mut StdRng, sum: &mut Summary) {
    let r = cl.ferry.run(&["conflicts", "--json"]);
    check_no_panic(&r, "ferry conflicts", sum);
    if r.code != 0 {
        return;
    }
    for c in r.json().as_array().cloned().unwrap_or_default() {
        let Some(id) = c["id"].as_str() else { continue };
        let mut args = vec!["resolve".to_string(), id.to_string(), "--keep".into()];
        args.push(if rng.gen_bool(0.5) { "local" } else { "remote" }.into());
        // Sometimes pick one differing field from the other side.
        if let Some(field) = c["differing_fields"].as_array().and_then(|f| f.choose(rng)).and_then(|f| f.as_str()) {
            if rng.gen_bool(0.3) {
                args.push("--field".into());
                args.push(format!("{field}={}", if rng.gen_bool(0.5) { "local" } else { "remote" }));
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = cl.ferry.run(&args);
        check_no_panic(&r, "ferry resolve", sum);
        if r.code == 0 {
            sum.manual_resolutions += 1;
        } else {
            sum.findings.push(format!("client {}: `ferry resolve` failed: {}", cl.idx, r.stderr.trim()));
        }
    }
}

/// Mutation ids a client's resolutions superseded. The CLI shows the last
/// 1000 resolutions; past that, read the client's database.
fn superseded(cl: &Client) -> HashSet<String> {
    let history = cl.ferry.history();
    let mut out = HashSet::new();
    if history.len() < 1000 {
        for h in &history {
            for id in h["superseded"].as_array().into_iter().flatten() {
                out.insert(id.as_str().unwrap_or_default().to_string());
            }
        }
        return out;
    }
    let conn = rusqlite::Connection::open(cl.ferry.data_dir().join("ferry.db")).expect("open client db");
    let mut stmt = conn.prepare("SELECT superseded FROM history").expect("history table");
    for s in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().flatten() {
        let ids: Vec<String> = serde_json::from_str(&s).unwrap_or_default();
        out.extend(ids);
    }
    out
}

fn check(server: &mut TestServer, clients: &[Client], sum: &mut Summary) {
    // 1. Convergence: every client holds exactly the server's live records.
    let dump = server.dump();
    sum.server_records = dump.len() as u64;
    let mut on_server: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut versions: HashMap<(String, String), u64> = HashMap::new();
    for r in &dump {
        let key = (r["entity"].as_str().unwrap_or("").to_string(), r["record_id"].as_str().unwrap_or("").to_string());
        versions.insert(key.clone(), r["version"].as_u64().unwrap_or(0));
        if r["deleted"] != true {
            on_server.insert(key, r["data"].clone());
        }
    }
    for cl in clients {
        let mut here: BTreeMap<(String, String), Value> = BTreeMap::new();
        for (entity, _) in ENTITIES {
            for row in cl.ferry.list(entity).as_array().cloned().unwrap_or_default() {
                here.insert((entity.to_string(), row["id"].as_str().unwrap_or("").to_string()), row["data"].clone());
            }
        }
        let keys: BTreeSet<_> = here.keys().chain(on_server.keys()).cloned().collect();
        for k in keys {
            if here.get(&k) != on_server.get(&k) {
                sum.divergent += 1;
                sum.findings.push(format!(
                    "divergent: client {} has {}/{} = {:?}, the server {:?}",
                    cl.idx,
                    k.0,
                    k.1,
                    here.get(&k),
                    on_server.get(&k)
                ));
            }
        }
    }

    // 2. The server's record of applied mutations. Stop it first so its
    // database is quiet (SIGTERM: a clean shutdown).
    let stats = server.stats();
    sum.mutations_applied = stats["mutations_applied"].as_u64().unwrap_or(0);
    sum.mutations_duplicate_answers = stats["mutations_duplicate"].as_u64().unwrap_or(0);
    sum.conflicts_reported = stats["conflicts"].as_u64().unwrap_or(0);
    sum.rejected = stats["rejected"].as_u64().unwrap_or(0);
    server.terminate();
    let conn = rusqlite::Connection::open(server.db_path()).expect("open server db");
    let mut applied: HashMap<String, (String, String, u64)> = HashMap::new();
    let mut by_record: HashMap<(String, String), Vec<u64>> = HashMap::new();
    {
        let mut stmt = conn
            .prepare("SELECT mutation_id, entity, record_id, version FROM applied_mutations WHERE org = ?1")
            .expect("applied_mutations table");
        let rows = stmt
            .query_map([ORG], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })
            .expect("query applied_mutations");
        for row in rows.flatten() {
            by_record.entry((row.1.clone(), row.2.clone())).or_default().push(row.3 as u64);
            if applied.insert(row.0.clone(), (row.1, row.2, row.3 as u64)).is_some() {
                sum.duplicates += 1;
                sum.findings.push(format!("mutation {} is in applied_mutations twice", row.0));
            }
        }
    }
    sum.distinct_applied_ids = applied.len() as u64;
    if sum.mutations_applied != sum.distinct_applied_ids {
        let extra = sum.mutations_applied.abs_diff(sum.distinct_applied_ids);
        sum.duplicates += extra;
        sum.findings.push(format!(
            "stats say {} mutations applied but the server remembers {} distinct mutation ids",
            sum.mutations_applied, sum.distinct_applied_ids
        ));
    }
    // Each version of each record came from exactly one applied mutation.
    for (key, version) in &versions {
        let mut vs = by_record.remove(key).unwrap_or_default();
        vs.sort_unstable();
        let expected: Vec<u64> = (1..=*version).collect();
        if vs != expected {
            let repeats = vs.len().saturating_sub(vs.iter().collect::<BTreeSet<_>>().len()) as u64;
            sum.duplicates += repeats;
            sum.findings.push(format!(
                "{}/{} is at version {version} but applied mutations produced versions {vs:?}",
                key.0, key.1
            ));
        }
    }
    for (key, vs) in by_record {
        sum.findings.push(format!("applied mutations {vs:?} for {}/{}, which is not in the dump", key.0, key.1));
    }

    // 3. Every acknowledged write is accounted for.
    let mut all_acked = HashSet::new();
    for cl in clients {
        let superseded = superseded(cl);
        let queue = cl.ferry.queue(None);
        for q in &queue {
            match q["state"].as_str() {
                Some("conflict") => sum.open_conflicts += 1,
                Some("failed") => {
                    sum.failed_mutations += 1;
                    sum.findings.push(format!("client {}: failed mutation after healing: {q}", cl.idx));
                }
                _ => sum.findings.push(format!("client {}: still queued after healing: {q}", cl.idx)),
            }
        }
        let queued: HashSet<String> =
            queue.iter().filter_map(|q| q["mutation_id"].as_str().map(String::from)).collect();
        for (id, desc) in &cl.acked {
            all_acked.insert(id.clone());
            if applied.contains_key(id) {
                sum.acked_applied += 1;
            } else if superseded.contains(id) {
                sum.acked_superseded_only += 1;
            } else if queued.contains(id) {
                // Waiting as an open conflict or failed: reported above.
            } else {
                sum.lost += 1;
                sum.findings.push(format!("LOST: client {} acknowledged {id} ({desc}) but it is nowhere", cl.idx));
            }
        }
    }
    sum.resolution_uploads = applied.keys().filter(|id| !all_acked.contains(*id)).count() as u64;
}
