//! The convergence workload: several real `ferry` clients, each behind its
//! own [`FaultProxy`], hammer one real `ferry-server` with random puts,
//! patches and deletes over a small key space (so they conflict), on
//! entities with every conflict policy, while requests fail at random, client
//! processes (`ferry sync`, a concurrent writer, a long-running `ferry
//! daemon`) are killed with SIGKILL at random or at protocol moments (right
//! after a `/v1/push` answer reached them, or half of it), and the server is
//! killed and restarted on the same database and port. The server is one
//! node (SQLite or PostgreSQL) or several nodes on one PostgreSQL database
//! behind HAProxy ([`Deployment`]); there a kill hits one node mid-push
//! while the others keep serving. Daemons run during
//! some steps, so clients also push concurrently. Then the faults stop,
//! every client syncs until quiet (open manual conflicts are resolved with a
//! random side), and [`audit`] checks the outcome the way Jepsen checks a
//! store: nothing lost, nothing applied twice, nothing overwritten against
//! its policy, the server's content the replay of its mutations, every
//! client equal to the server.
//!
//! Replaying: every choice of step `s` (client, kind, write, kill moment,
//! delays) comes from a stream derived from (seed, s), and the fault of a
//! request from (seed, client, s, request number within the step), so a
//! replay with the same seed makes the same choices at every step, whatever
//! timing did to earlier steps. What timing still changes: how many requests
//! a process makes before a kill lands, when a daemon's requests happen (they
//! share the client's fault stream of the current step), and so the exact
//! interleaving. See docs/reliability.md.

mod audit;
mod deployment;
mod procs;
mod seeds;
mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

pub use audit::Audit;
use audit::{ClientView, HistoryRow, Ledger, ManualResolve, QueueItem, ServerRecord, ServerView, Write, WriteOp};
pub use deployment::Deployment;
use procs::{now_ms, Exit, Proc};
use seeds::Purpose;
pub use summary::Summary;

use crate::ferry::Ferry;
use crate::pg::Backend;
use crate::proxy::{Fault, FaultProxy, Moment};

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
/// Longest a `ferry` process may run before it counts as hung.
const PROCESS_LIMIT: Duration = Duration::from_secs(120);

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
    /// Where the server keeps its data.
    pub backend: Backend,
    /// Server processes; more than one needs PostgreSQL and puts HAProxy
    /// in front.
    pub nodes: usize,
}

impl Config {
    pub fn new(seed: u64, clients: usize, ops: usize) -> Config {
        Config {
            seed,
            clients,
            ops,
            keys: 4,
            fault_rate: 0.25,
            http_timeout_secs: 1.5,
            verbose: false,
            backend: Backend::Sqlite,
            nodes: 1,
        }
    }

    /// How far a client's estimate of the server clock can be off when the
    /// harness cannot read the estimate in use (another process of the
    /// client may change it): half a request's round trip, which the
    /// timeout bounds, plus scheduling slack.
    fn clock_error_bound_ms(&self) -> i64 {
        (self.http_timeout_secs * 500.0) as i64 + 250
    }
}

/// `FERRY_CHAOS_SEED` if set (to replay a run), else a fresh random seed.
pub fn seed_from_env() -> u64 {
    match std::env::var("FERRY_CHAOS_SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("FERRY_CHAOS_SEED={s:?} is not a number")),
        Err(_) => rand::random::<u64>() % 1_000_000_000,
    }
}

// ------------------------------------------------------------ step plans

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    Sync,
    SyncRefused,
    SyncConcurrentKill,
    SyncProtocolKill,
    SyncServerKill,
    Resolve,
    Restore,
    StartDaemon,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Write => "write",
            Kind::Sync => "sync",
            Kind::SyncRefused => "sync, connection refused",
            Kind::SyncConcurrentKill => "sync + concurrent write, kill -9 at random",
            Kind::SyncProtocolKill => "write, sync, kill -9 at a push moment",
            Kind::SyncServerKill => "sync, kill -9 server mid-flight",
            Kind::Resolve => "resolve open conflicts",
            Kind::Restore => "restore a losing local version",
            Kind::StartDaemon => "start a `ferry daemon`",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum KillTarget {
    Sync,
    Writer,
    Both,
}

#[derive(Debug, Clone, Copy)]
enum DaemonStop {
    Term,
    KillNow,
    /// Kill at this moment of its next push (a write provokes one).
    KillAt(Moment),
}

/// A random put, patch or delete.
#[derive(Debug, Clone)]
struct WritePlan {
    entity: &'static str,
    key: String,
    op: WriteOp,
    payload: Option<Map<String, Value>>,
}

impl WritePlan {
    fn draw(rng: &mut StdRng, client: usize, step: usize, keys: usize) -> WritePlan {
        let (entity, _) = ENTITIES[rng.gen_range(0..ENTITIES.len())];
        let key = format!("k{}", rng.gen_range(0..keys.max(1)));
        let op = match rng.gen_range(0..10) {
            0..=3 => WriteOp::Put,
            4..=7 => WriteOp::Patch,
            _ => WriteOp::Delete,
        };
        // Values name the client and step that wrote them.
        let payload = (op != WriteOp::Delete).then(|| {
            let mut fields = FIELDS.to_vec();
            fields.shuffle(rng);
            let n = rng.gen_range(1..=FIELDS.len());
            fields[..n]
                .iter()
                .map(|f| {
                    let removed = op == WriteOp::Patch && rng.gen_bool(0.15);
                    let v = if removed { Value::Null } else { json!(format!("c{client}s{step}")) };
                    (f.to_string(), v)
                })
                .collect()
        });
        WritePlan { entity, key, op, payload }
    }

    fn args(&self) -> Vec<String> {
        let verb = match self.op {
            WriteOp::Put => "put",
            WriteOp::Patch => "patch",
            WriteOp::Delete => "delete",
        };
        let mut a = vec![verb.to_string(), self.entity.to_string(), self.key.clone()];
        if let Some(p) = &self.payload {
            a.push(Value::Object(p.clone()).to_string());
        }
        a
    }

    fn desc(&self) -> String {
        self.args().join(" ")
    }
}

/// Everything random about one step, drawn up front from the step's stream.
struct Plan {
    step: usize,
    client: usize,
    kind: Kind,
    write: WritePlan,
    delay_ms: u64,
    target: KillTarget,
    moment: Moment,
    nth: u32,
    daemon_span: usize,
    daemon_stop: DaemonStop,
}

const MOMENTS: [Moment; 4] = [Moment::RequestReceived, Moment::ServerAnswered, Moment::MidAnswer, Moment::AfterAnswer];

impl Plan {
    fn draw(cfg: &Config, step: usize) -> Plan {
        let mut rng = seeds::stream(cfg.seed, Purpose::Step, &[step as u64]);
        let client = rng.gen_range(0..cfg.clients);
        let kind = match rng.gen_range(0..100) {
            0..=44 => Kind::Write,
            45..=63 => Kind::Sync,
            64..=65 => Kind::SyncRefused,
            66..=72 => Kind::SyncConcurrentKill,
            73..=79 => Kind::SyncProtocolKill,
            80..=83 => Kind::SyncServerKill,
            84..=90 => Kind::Resolve,
            91..=93 => Kind::Restore,
            _ => Kind::StartDaemon,
        };
        let write = WritePlan::draw(&mut rng, client, step, cfg.keys);
        let delay_ms = rng.gen_range(0..300);
        let target = [KillTarget::Sync, KillTarget::Writer, KillTarget::Both][rng.gen_range(0..3)];
        let moment = MOMENTS[rng.gen_range(0..MOMENTS.len())];
        let nth = rng.gen_range(1..=2);
        let daemon_span = rng.gen_range(5..40);
        let daemon_stop = match rng.gen_range(0..3) {
            0 => DaemonStop::Term,
            1 => DaemonStop::KillNow,
            _ => DaemonStop::KillAt(MOMENTS[rng.gen_range(0..MOMENTS.len())]),
        };
        Plan { step, client, kind, write, delay_ms, target, moment, nth, daemon_span, daemon_stop }
    }
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

/// Each request's fault comes from (seed, client, current step, its number
/// within the step): the same request of a replayed step gets the same fault.
fn install_chooser(proxy: &FaultProxy, cfg: &Config, client: usize, on: Arc<AtomicBool>, step_now: Arc<AtomicU64>) {
    let (seed, rate, timeout) = (cfg.seed, cfg.fault_rate, cfg.http_timeout_secs);
    let mut count = (u64::MAX, 0u64);
    proxy.set_chooser(move |_path| {
        let step = step_now.load(Ordering::SeqCst);
        if count.0 != step {
            count = (step, 0);
        }
        count.1 += 1;
        let mut rng = seeds::stream(seed, Purpose::Fault, &[client as u64, step, count.1]);
        let roll: f64 = rng.gen();
        let fault = random_fault(&mut rng, timeout);
        if on.load(Ordering::SeqCst) && roll < rate {
            fault
        } else {
            Fault::Pass
        }
    });
}

// ------------------------------------------------------------ the run

struct Daemon {
    proc: Proc,
    until: usize,
    stop: DaemonStop,
    /// A write that provokes a push when the daemon is to die at one.
    provoke: WritePlan,
    log: PathBuf,
}

struct Client {
    idx: usize,
    ferry: Ferry,
    proxy: FaultProxy,
    daemon: Option<Daemon>,
}

struct World<'a> {
    cfg: &'a Config,
    server: Deployment,
    clients: Vec<Client>,
    ledger: Ledger,
    sum: Summary,
    chaos_on: Arc<AtomicBool>,
    step_now: Arc<AtomicU64>,
    /// What the current step did, for its log line.
    note: Vec<String>,
}

/// The first UUID in `text`.
fn find_uuid(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .find(|t| t.len() == 36 && uuid::Uuid::parse_str(t).is_ok())
        .map(String::from)
}

/// Runs a whole chaos session and checks it. Never panics on a finding:
/// everything goes into the summary.
pub fn run(cfg: &Config) -> Summary {
    assert!(cfg.clients > 0, "at least one client");
    let started = Instant::now();
    eprintln!(
        "ferry chaos: seed {} (replay with FERRY_CHAOS_SEED={}), {} clients, {} steps, {} server node(s) on {}",
        cfg.seed,
        cfg.seed,
        cfg.clients,
        cfg.ops,
        cfg.nodes,
        if cfg.backend.is_postgres() { "PostgreSQL" } else { "SQLite" }
    );
    let server = Deployment::start(&cfg.backend, cfg.nodes);
    let chaos_on = Arc::new(AtomicBool::new(false));
    let step_now = Arc::new(AtomicU64::new(0));
    let timeout = cfg.http_timeout_secs.to_string();
    let clients: Vec<Client> = (0..cfg.clients)
        .map(|idx| {
            let user = format!("device{idx}");
            server.add_user(&user, ORG, "pw");
            let proxy = FaultProxy::start(&server.url());
            install_chooser(&proxy, cfg, idx, chaos_on.clone(), step_now.clone());
            let mut rng = seeds::stream(cfg.seed, Purpose::Setup, &[idx as u64]);
            let batch = rng.gen_range(2..9).to_string();
            // 1: one push request at a time; more: pipelined pushes.
            let depth = rng.gen_range(1..5).to_string();
            let ferry = Ferry::new()
                .with_env("FERRY_HTTP_TIMEOUT_SECS", &timeout)
                .with_env("FERRY_BATCH_MAX", &batch)
                .with_env("FERRY_PUSH_DEPTH", &depth);
            ferry.connect(&proxy.url(), &user, "pw");
            for (entity, policy) in ENTITIES {
                ferry.run(&["policy", entity, policy]).ok();
            }
            Client { idx, ferry, proxy, daemon: None }
        })
        .collect();
    let sum = Summary {
        seed: cfg.seed,
        clients: cfg.clients,
        steps: cfg.ops,
        nodes: cfg.nodes,
        backend: if cfg.backend.is_postgres() { "postgres" } else { "sqlite" },
        ..Default::default()
    };
    let mut w = World { cfg, server, clients, ledger: Ledger::default(), sum, chaos_on, step_now, note: Vec::new() };

    w.chaos_on.store(true, Ordering::SeqCst);
    for step in 0..cfg.ops {
        w.step(step);
    }
    w.heal();
    w.check();
    w.sum.elapsed = started.elapsed();
    w.sum
}

impl World<'_> {
    fn finding(&mut self, step: Option<usize>, text: String) {
        match step {
            Some(s) => {
                self.sum.failing_steps.insert(s);
                self.sum.findings.push(format!("step {s}: {text}"));
            }
            None => self.sum.findings.push(text),
        }
    }

    fn begin(&mut self, step: usize) -> i64 {
        self.step_now.store(step as u64, Ordering::SeqCst);
        self.note.clear();
        now_ms()
    }

    fn end(&mut self, step: usize, started: i64, head: String) {
        let ended = now_ms();
        self.ledger.step_windows.push((started, ended));
        let notes: String = self.note.iter().map(|n| format!("; {n}")).collect();
        let line = format!("step {step} ({} ms): {head}{notes}", ended - started);
        if self.cfg.verbose {
            eprintln!("{line}");
        }
        debug_assert_eq!(self.sum.step_log.len(), step);
        self.sum.step_log.push(line);
    }

    fn step(&mut self, step: usize) {
        let plan = Plan::draw(self.cfg, step);
        let t0 = self.begin(step);
        for c in 0..self.clients.len() {
            if self.clients[c].daemon.as_ref().is_some_and(|d| d.until <= step) {
                self.stop_daemon(c, step);
            }
        }
        let c = plan.client;
        let has_daemon = self.clients[c].daemon.is_some();
        // A kill aimed at `ferry sync` must not land on the client's daemon.
        let kind = match plan.kind {
            Kind::SyncConcurrentKill | Kind::SyncProtocolKill if has_daemon => Kind::Sync,
            Kind::StartDaemon if has_daemon => Kind::Write,
            k => k,
        };
        *self.sum.steps_by_kind.entry(kind.label()).or_default() += 1;
        match kind {
            Kind::Write => self.write(c, &plan.write, step),
            Kind::Sync => {
                let e = self.sync_proc(c).wait(PROCESS_LIMIT);
                self.note_sync(c, step, &e);
            }
            Kind::SyncRefused => {
                let proxy = &self.clients[c].proxy;
                proxy.set_refusing(true);
                let e = self.sync_proc(c).wait(PROCESS_LIMIT);
                self.clients[c].proxy.set_refusing(false);
                if e.code != Some(5) {
                    self.finding(
                        Some(step),
                        format!(
                            "client {c}: sync with the port closed exited {} (expected 5): {}",
                            e.code_label(),
                            e.stderr.trim()
                        ),
                    );
                }
                self.note_sync(c, step, &e);
            }
            Kind::SyncConcurrentKill => self.concurrent_kill(c, &plan),
            Kind::SyncProtocolKill => self.protocol_kill(c, &plan),
            Kind::SyncServerKill => {
                let sync = self.sync_proc(c);
                std::thread::sleep(Duration::from_millis(plan.delay_ms));
                // On a cluster the step picks the node; the sync's other
                // requests go to the nodes still up.
                self.server.kill(step);
                self.sum.server_kills += 1;
                let e = sync.wait(PROCESS_LIMIT);
                self.note_sync(c, step, &e);
                self.server.restart(step);
            }
            Kind::Resolve => self.resolve_all(c, step),
            Kind::Restore => self.restore_one(c, step),
            Kind::StartDaemon => self.start_daemon(c, &plan),
        }
        self.end(step, t0, format!("client {c}: {}", kind.label()));
    }

    fn ferry(&self, c: usize) -> &Ferry {
        &self.clients[c].ferry
    }

    fn sync_proc(&self, c: usize) -> Proc {
        let mut cmd = self.ferry(c).command();
        cmd.arg("sync");
        Proc::piped(cmd)
    }

    fn write_proc(&self, c: usize, plan: &WritePlan) -> Proc {
        let mut cmd = self.ferry(c).command();
        cmd.args(plan.args());
        Proc::piped(cmd)
    }

    fn write(&mut self, c: usize, plan: &WritePlan, step: usize) {
        let clock_error = self.clock_error(c);
        let e = self.write_proc(c, plan).wait(PROCESS_LIMIT);
        self.note_write(c, step, plan, &e, clock_error);
    }

    /// How far client `c`'s next edit stamp may be off the server clock.
    /// With no other process of the client running, the next `ferry`
    /// process uses the saved estimate; the server's clock is this machine's,
    /// so the estimate is its own error.
    fn clock_error(&mut self, c: usize) -> i64 {
        if self.clients[c].daemon.is_some() {
            return self.cfg.clock_error_bound_ms();
        }
        let offset = clock_offset(self.ferry(c)).unwrap_or(0).abs();
        self.sum.max_clock_offset_ms = self.sum.max_clock_offset_ms.max(offset);
        offset + 25
    }

    fn check_no_panic(&mut self, step: usize, what: &str, stderr: &str) {
        if stderr.contains("panicked") {
            self.finding(Some(step), format!("{what} panicked: {}", stderr.trim()));
        }
    }

    fn note_write(&mut self, c: usize, step: usize, plan: &WritePlan, e: &Exit, clock_error_ms: i64) {
        self.check_no_panic(step, &format!("client {c} `ferry {}`", plan.args()[0]), &e.stderr);
        let write = |id: String| Write {
            id,
            client: c,
            step,
            entity: plan.entity.to_string(),
            record_id: plan.key.clone(),
            op: plan.op,
            payload: plan.payload.clone(),
            window: (e.started_ms, e.ended_ms),
            clock_error_ms,
            desc: plan.desc(),
        };
        // An id on stdout means the write was committed, even if the process
        // was killed right after printing it.
        if let Some(id) = find_uuid(&e.stdout).filter(|_| e.code == Some(0) || e.killed) {
            self.note.push(format!("{} -> {id}", plan.desc()));
            self.ledger.writes.push(write(id));
        } else if e.killed {
            self.note.push(format!("{} -> killed before acknowledging", plan.desc()));
            self.ledger.maybe.push(write(String::new()));
        } else if e.code == Some(0) {
            self.finding(
                Some(step),
                format!("client {c}: `{}` exited 0 without a mutation id: {:?}", plan.desc(), e.stdout),
            );
        } else if e.stderr.contains("no record") {
            self.note.push(format!("{} -> refused here", plan.desc()));
            self.sum.refused_locally += 1;
        } else if e.stderr.contains("database is locked") {
            self.sum.busy_errors += 1;
            self.finding(Some(step), format!("client {c}: `{}`: database is locked", plan.desc()));
        } else {
            self.finding(
                Some(step),
                format!("client {c}: `{}` failed ({}): {}", plan.desc(), e.code_label(), e.stderr.trim()),
            );
        }
    }

    fn note_sync(&mut self, c: usize, step: usize, e: &Exit) {
        self.check_no_panic(step, &format!("client {c} `ferry sync`"), &e.stderr);
        *self.sum.syncs_by_exit.entry(e.code_label()).or_default() += 1;
        self.note.push(format!("sync exit {}", e.code_label()));
        if e.hung {
            self.finding(Some(step), format!("client {c}: `ferry sync` still ran after {PROCESS_LIMIT:?}: killed"));
        } else if e.killed {
            // Its own kill: nothing to judge.
        } else if e.code == Some(1) && e.stderr.contains("database is locked") {
            self.sum.busy_errors += 1;
            self.finding(Some(step), format!("client {c}: `ferry sync`: database is locked"));
        } else if !matches!(e.code, Some(0 | 3 | 5)) {
            self.finding(
                Some(step),
                format!("client {c}: `ferry sync` exited {}: {}", e.code_label(), e.stderr.trim()),
            );
        }
    }

    fn count_kill(&mut self, what: String) {
        self.note.push(format!("killed {what}"));
        *self.sum.kills.entry(what).or_default() += 1;
    }

    /// A sync and a write run at once; SIGKILL for one or both at a random
    /// moment.
    fn concurrent_kill(&mut self, c: usize, plan: &Plan) {
        let sync = self.sync_proc(c);
        let writer = self.write_proc(c, &plan.write);
        // A write lives tens of ms, a sync up to seconds: aim across each.
        let writer_at = 5 + plan.delay_ms % 20;
        let sync_at = plan.delay_ms;
        let kill_writer = matches!(plan.target, KillTarget::Writer | KillTarget::Both);
        let kill_sync = matches!(plan.target, KillTarget::Sync | KillTarget::Both);
        if kill_writer {
            std::thread::sleep(Duration::from_millis(writer_at));
            writer.killer().kill();
        }
        if kill_sync {
            let waited = if kill_writer { writer_at } else { 0 };
            std::thread::sleep(Duration::from_millis(sync_at.saturating_sub(waited)));
            sync.killer().kill();
        }
        let se = sync.wait(PROCESS_LIMIT);
        let we = writer.wait(PROCESS_LIMIT);
        if se.killed {
            self.count_kill("`ferry sync` (random moment)".into());
        }
        if we.killed {
            self.count_kill("concurrent `ferry put/patch/delete`".into());
        }
        self.note_sync(c, plan.step, &se);
        // The sync may save a new clock estimate while the write reads it.
        self.note_write(c, plan.step, &plan.write, &we, self.cfg.clock_error_bound_ms());
    }

    /// A write, then a sync killed at a protocol moment of its n-th push.
    fn protocol_kill(&mut self, c: usize, plan: &Plan) {
        self.write(c, &plan.write, plan.step);
        let sync = self.sync_proc(c);
        let killer = sync.killer();
        self.clients[c].proxy.arm("/v1/push", plan.nth, plan.moment, move || {
            killer.kill();
        });
        let e = sync.wait(PROCESS_LIMIT);
        let fired = self.clients[c].proxy.disarm();
        if e.killed {
            self.count_kill(format!("`ferry sync` at a push: {}", plan.moment.label()));
        } else if fired.is_none() {
            self.sum.kill_moments_missed += 1;
            self.note.push(format!("push #{} never came", plan.nth));
        }
        self.note_sync(c, plan.step, &e);
    }

    fn start_daemon(&mut self, c: usize, plan: &Plan) {
        let log = self.ferry(c).dir().join(format!("chaos-daemon-{}.log", plan.step));
        let mut cmd = self.ferry(c).command();
        cmd.arg("daemon")
            .env("FERRY_LOG", "warn")
            .env("FERRY_PULL_INTERVAL_SECS", "2")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("daemon log"));
        let proc = Proc::spawn(cmd);
        self.sum.daemons_started += 1;
        let until = plan.step + plan.daemon_span;
        self.note.push(format!("runs until step {until}, then {:?}", plan.daemon_stop));
        self.clients[c].daemon = Some(Daemon { proc, until, stop: plan.daemon_stop, provoke: plan.write.clone(), log });
    }

    fn stop_daemon(&mut self, c: usize, step: usize) {
        let Some(d) = self.clients[c].daemon.take() else { return };
        let mut stop = d.stop;
        if !self.chaos_on.load(Ordering::SeqCst) {
            stop = DaemonStop::Term;
        }
        let e = match stop {
            DaemonStop::Term => {
                d.proc.terminate();
                d.proc.wait(Duration::from_secs(30))
            }
            DaemonStop::KillNow => {
                d.proc.killer().kill();
                d.proc.wait(Duration::from_secs(30))
            }
            DaemonStop::KillAt(moment) => {
                let killer = d.proc.killer();
                self.clients[c].proxy.arm("/v1/push", 1, moment, move || {
                    killer.kill();
                });
                // The daemon pushes a write by another process at once.
                let provoke = d.provoke.clone();
                self.write(c, &provoke, step);
                let deadline = Instant::now() + Duration::from_secs(3);
                while d.proc.is_running() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(10));
                }
                if self.clients[c].proxy.disarm().is_none() {
                    self.sum.kill_moments_missed += 1;
                    d.proc.killer().kill();
                    stop = DaemonStop::KillNow;
                }
                d.proc.wait(Duration::from_secs(30))
            }
        };
        let log = std::fs::read_to_string(&d.log).unwrap_or_default();
        self.check_no_panic(step, &format!("client {c} `ferry daemon`"), &log);
        match stop {
            _ if e.hung => self.finding(Some(step), format!("client {c}: `ferry daemon` did not stop")),
            DaemonStop::Term if e.code != Some(0) => self.finding(
                Some(step),
                format!("client {c}: `ferry daemon` exited {} on SIGTERM: {}", e.code_label(), log.trim()),
            ),
            DaemonStop::Term => self.note.push(format!("client {c}'s daemon stopped (SIGTERM)")),
            DaemonStop::KillNow if e.killed => self.count_kill("`ferry daemon` (random moment)".into()),
            DaemonStop::KillAt(m) if e.killed => self.count_kill(format!("`ferry daemon` at a push: {}", m.label())),
            _ => self.finding(
                Some(step),
                format!("client {c}: `ferry daemon` had exited before its kill ({}): {}", e.code_label(), log.trim()),
            ),
        }
    }

    fn resolve_all(&mut self, c: usize, step: usize) {
        let r = self.ferry(c).run(&["conflicts", "--json"]);
        self.check_no_panic(step, "ferry conflicts", &r.stderr);
        if r.code != 0 {
            self.finding(Some(step), format!("client {c}: `ferry conflicts` failed: {}", r.stderr.trim()));
            return;
        }
        let mut open = r.json().as_array().cloned().unwrap_or_default();
        let record =
            |v: &Value| format!("{}/{}", v["entity"].as_str().unwrap_or(""), v["record_id"].as_str().unwrap_or(""));
        open.sort_by_key(&record);
        for conflict in open {
            let Some(id) = conflict["id"].as_str().map(String::from) else { continue };
            // One stream per conflict: how many others are open does not matter.
            let mut rng =
                seeds::stream(self.cfg.seed, Purpose::Resolve, &[step as u64, seeds::name_key(&record(&conflict))]);
            let side = |rng: &mut StdRng| if rng.gen_bool(0.5) { "local" } else { "remote" };
            let mut args = vec!["resolve".to_string(), id.clone(), "--keep".into(), side(&mut rng).into()];
            // Sometimes pick one differing field from the other side (not
            // against a delete: that is settled whole).
            let fields: Vec<&str> =
                conflict["differing_fields"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let field = fields.choose(&mut rng).map(|f| f.to_string());
            let both_sides = !conflict["local"].is_null() && !conflict["remote"].is_null();
            if let (Some(field), true, true) = (field, rng.gen_bool(0.3), both_sides) {
                args.push("--field".into());
                args.push(format!("{field}={}", side(&mut rng)));
            }
            let clock_error_ms = self.clock_error(c);
            let t0 = now_ms();
            let a: Vec<&str> = args.iter().map(String::as_str).chain(["--json"]).collect();
            let r = self.ferry(c).run(&a);
            let t1 = now_ms();
            self.check_no_panic(step, "ferry resolve", &r.stderr);
            if r.code == 0 {
                self.sum.manual_resolutions += 1;
                let printed = serde_json::from_str::<Value>(&r.stdout).unwrap_or_default();
                if printed["conflict_id"] != id.as_str() {
                    self.finding(Some(step), format!("client {c}: `ferry resolve --json` printed {:?}", r.stdout));
                }
                let printed_upload = printed["upload_mutation_id"].as_str().map(String::from);
                self.note.push(format!(
                    "resolved {} ({}) -> {printed_upload:?}",
                    record(&conflict),
                    args[2..].join(" ")
                ));
                self.ledger.resolves.push(ManualResolve {
                    client: c,
                    step,
                    conflict_id: id,
                    printed_upload,
                    window: (t0, t1),
                    clock_error_ms,
                });
            } else {
                self.finding(Some(step), format!("client {c}: `ferry {}` failed: {}", args.join(" "), r.stderr.trim()));
            }
        }
    }

    /// `ferry restore` of a random restorable resolution: its losing local
    /// version queued again as a new edit (an acknowledged write).
    fn restore_one(&mut self, c: usize, step: usize) {
        let rows = self.ferry(c).history();
        let mut restorable: Vec<&Value> = rows.iter().filter(|h| h["restorable"] == true).collect();
        restorable.sort_by_key(|h| h["id"].as_i64());
        let mut rng = seeds::stream(self.cfg.seed, Purpose::Restore, &[step as u64]);
        let Some(row) = restorable.choose(&mut rng) else {
            self.note.push("nothing to restore".into());
            return;
        };
        let hid = row["id"].as_i64().unwrap_or_default().to_string();
        let local = row["local"].as_object().cloned();
        let plan = WritePlan {
            entity: ENTITIES.iter().find(|(e, _)| row["entity"] == *e).map(|(e, _)| *e).unwrap_or("activity"),
            key: row["record_id"].as_str().unwrap_or_default().to_string(),
            op: if local.is_some() { WriteOp::Put } else { WriteOp::Delete },
            payload: local,
        };
        let mut cmd = self.ferry(c).command();
        cmd.args(["restore", &hid]);
        let clock_error = self.clock_error(c);
        let e = Proc::piped(cmd).wait(PROCESS_LIMIT);
        if e.code == Some(0) {
            self.sum.restores += 1;
        }
        self.note.push(format!("restore resolution #{hid}"));
        self.note_write(c, step, &plan, &e, clock_error);
    }

    /// No faults, the server up, daemons stopped; every client syncs until a
    /// round where all exit 0 and the server applies nothing new.
    fn heal(&mut self) {
        self.chaos_on.store(false, Ordering::SeqCst);
        let first = self.cfg.ops;
        let t0 = self.begin(first);
        for c in 0..self.clients.len() {
            self.stop_daemon(c, first);
            self.clients[c].proxy.set_refusing(false);
        }
        self.end(first, t0, "heal: daemons stopped, faults off".into());
        let mut quiet = false;
        for round in 0..40 {
            let step = first + 1 + round;
            let t0 = self.begin(step);
            self.sum.heal_rounds = round as u64 + 1;
            let before = self.server.stats()["mutations_applied"].as_u64().unwrap_or(0);
            let mut all_zero = true;
            for c in 0..self.clients.len() {
                let e = self.sync_proc(c).wait(PROCESS_LIMIT);
                self.note_sync(c, step, &e);
                if e.code != Some(0) {
                    all_zero = false;
                    if e.code == Some(3) {
                        self.resolve_all(c, step);
                    }
                }
            }
            let after = self.server.stats()["mutations_applied"].as_u64().unwrap_or(0);
            self.end(step, t0, format!("heal round {}", round + 1));
            if all_zero && after == before {
                quiet = true;
                break;
            }
        }
        self.sum.converged = quiet;
        if !quiet {
            for c in 0..self.clients.len() {
                let text = format!(
                    "client {c} did not settle after healing: status {}; queue {}",
                    self.ferry(c).status(),
                    Value::Array(self.ferry(c).queue(None))
                );
                self.finding(None, text);
            }
        }
    }

    fn check(&mut self) {
        let mut faults: BTreeMap<String, u64> = BTreeMap::new();
        for cl in &self.clients {
            let counts = cl.proxy.counts();
            self.sum.requests += counts.requests;
            for (k, v) in counts.by_kind {
                *faults.entry(k.to_string()).or_default() += v;
            }
            let refused = cl.proxy.refused_windows();
            if refused > 0 {
                *faults.entry("connection refused (port closed)".into()).or_default() += refused;
            }
        }
        self.sum.faults = faults;

        let stats = self.server.stats();
        let dump = self.server.dump();
        self.server.terminate();
        let applied = self.server.applied(ORG);
        let server = ServerView {
            records: dump
                .iter()
                .map(|r| ServerRecord {
                    entity: r["entity"].as_str().unwrap_or_default().into(),
                    record_id: r["record_id"].as_str().unwrap_or_default().into(),
                    version: r["version"].as_u64().unwrap_or(0),
                    deleted: r["deleted"] == true,
                    data: r["data"].as_object().cloned(),
                })
                .collect(),
            applied,
            mutations_applied: stats["mutations_applied"].as_u64().unwrap_or(0),
            distinct_applied_ids: stats["distinct_applied_ids"].as_u64().unwrap_or(u64::MAX),
        };
        self.sum.server_records = dump.len() as u64;
        self.sum.mutations_applied = server.mutations_applied;
        self.sum.distinct_applied_ids = server.distinct_applied_ids;
        self.sum.mutations_duplicate_answers = stats["mutations_duplicate"].as_u64().unwrap_or(0);
        self.sum.conflicts_reported = stats["conflicts"].as_u64().unwrap_or(0);
        self.sum.rejected = stats["rejected"].as_u64().unwrap_or(0);

        let mut views = Vec::new();
        for cl in &self.clients {
            let mut view = ClientView { idx: cl.idx, ..Default::default() };
            for (entity, _) in ENTITIES {
                for row in cl.ferry.list(entity).as_array().into_iter().flatten() {
                    let key = (entity.to_string(), row["id"].as_str().unwrap_or_default().to_string());
                    view.records.insert(key, row["data"].clone());
                }
            }
            view.queue = cl
                .ferry
                .queue(None)
                .iter()
                .map(|q| QueueItem {
                    mutation_id: q["mutation_id"].as_str().unwrap_or_default().into(),
                    state: q["state"].as_str().unwrap_or_default().into(),
                    entity: q["entity"].as_str().unwrap_or_default().into(),
                    record_id: q["record_id"].as_str().unwrap_or_default().into(),
                })
                .collect();
            view.history = history(&cl.ferry);
            let offset = clock_offset(&cl.ferry).unwrap_or(0);
            self.sum.max_clock_offset_ms = self.sum.max_clock_offset_ms.max(offset.abs());
            views.push(view);
        }
        if views.iter().any(|v| !v.history.is_empty())
            && views.iter().flat_map(|v| &v.history).all(|h| h.upload_mutation_id.is_none())
        {
            self.finding(
                None,
                "no resolution in any history names its upload_mutation_id: this `ferry` cannot account for \
                 the mutations its resolutions uploaded"
                    .into(),
            );
        }
        let policies = ENTITIES.iter().map(|(e, p)| (e.to_string(), p.to_string())).collect();
        let audit =
            audit::audit(&audit::Input { ledger: &self.ledger, server: &server, clients: &views, policies: &policies });
        for f in &audit.findings {
            let steps: Vec<String> = f.steps.iter().map(|s| s.to_string()).collect();
            let at = if steps.is_empty() { String::new() } else { format!("step {}: ", steps.join(", ")) };
            self.sum.findings.push(format!("{at}{}", f.text));
            self.sum.failing_steps.extend(&f.steps);
        }
        self.sum.acknowledged = self.ledger.writes.len() as u64;
        self.sum.audit = audit;
    }
}

fn fields(v: &Value) -> Option<Map<String, Value>> {
    v.as_object().cloned()
}

fn history_row(h: &Value) -> HistoryRow {
    let text = |k: &str| h[k].as_str().unwrap_or_default().to_string();
    HistoryRow {
        id: h["id"].as_i64().unwrap_or_default(),
        entity: text("entity"),
        record_id: text("record_id"),
        policy: text("policy"),
        winner: text("winner"),
        local: fields(&h["local"]),
        remote: fields(&h["remote"]),
        result: fields(&h["result"]),
        superseded: h["superseded"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        at: h["at"].as_i64().unwrap_or_default(),
        conflict_id: h["conflict_id"].as_str().map(String::from),
        upload_mutation_id: h["upload_mutation_id"].as_str().map(String::from),
    }
}

/// A client's whole resolution history.
fn history(f: &Ferry) -> Vec<HistoryRow> {
    f.history().iter().map(history_row).collect()
}

/// The client's estimate of `server clock - local clock`, in ms.
fn clock_offset(f: &Ferry) -> Option<i64> {
    let conn = rusqlite::Connection::open(f.data_dir().join("ferry.db")).ok()?;
    let v: String =
        conn.query_row("SELECT value FROM settings WHERE key = 'clock_offset_ms'", [], |r| r.get(0)).ok()?;
    v.parse().ok()
}
