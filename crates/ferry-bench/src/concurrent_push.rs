//! `concurrent-push`: push throughput and latency with many clients at once,
//! on SQLite (one node) and on PostgreSQL with one, two and three nodes, in
//! one run so the figures compare as ratios.
//!
//! Every node is a real `ferry-server` process (the binary next to this
//! one). `--clients` clients sign in as users spread over `--orgs`
//! organisations and push new-record upserts in batches of `--batch`, each
//! client one request at a time, as a real client does; a client sends its
//! requests to the nodes in turn (round-robin per request, as the load
//! balancer of the multi-node tests does). Request bodies are built before
//! the clock starts. Everything — PostgreSQL, the nodes and the clients —
//! shares this machine's cores, so the multi-node figures show what the
//! shared database allows, not what more machines would add.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use ferry_protocol::{limits, LoginRequest, PushRequest, TokenResponse};
use ferry_server::DbLocation;
use uuid::Uuid;

use crate::common::{fmt_rate, ms_str, Section};
use crate::server_process::ServerProcess;
use crate::server_push::{ensure_all_applied, new_record, payload_of_size, push_body};
use crate::stats::percentile;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Clients pushing at the same time.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Organisations the clients belong to (client i in org i % orgs); one
    /// organisation's pushes are applied one at a time (its row lock).
    #[arg(long, default_value_t = 10)]
    pub orgs: usize,
    /// Push requests per client.
    #[arg(long, default_value_t = 40)]
    pub pushes: usize,
    /// Mutations per push request.
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Size of each serialized payload, in bytes.
    #[arg(long, default_value_t = 300)]
    pub payload_bytes: usize,
    /// Node counts to run on PostgreSQL.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    pub nodes: Vec<usize>,
    /// A PostgreSQL cluster the benchmark may create (and drop) a database
    /// on, e.g. postgres://postgres@127.0.0.1:5432/postgres. Without it only
    /// SQLite runs.
    #[arg(long, env = "FERRY_BENCH_PG_URL")]
    pub pg_url: Option<String>,
    /// Also print the table as Markdown, for docs/benchmarks.md.
    #[arg(long)]
    pub markdown: bool,
}

/// One configuration's figures.
pub struct Run {
    pub label: String,
    pub mutations: usize,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.mutations as f64 / self.elapsed.as_secs_f64()
    }
}

pub struct Report {
    pub args: Args,
    pub runs: Vec<Run>,
}

impl Report {
    pub fn section(&self) -> Section {
        let a = &self.args;
        let mut s = Section::new(
            "Concurrent push: SQLite and PostgreSQL nodes",
            &format!(
                "{} clients in {} organisations, {} pushes of {} new {}-byte records each, one request at a time \
                 per client, round-robin over the nodes; every node a real ferry-server process.",
                a.clients, a.orgs, a.pushes, a.batch, a.payload_bytes
            ),
            &["deployment", "mutations", "elapsed", "mutations/s", "vs SQLite", "push p50", "push p99"],
        );
        let base = self.runs.first().map(Run::rate).unwrap_or(0.0);
        for r in &self.runs {
            s.row(vec![
                r.label.clone(),
                r.mutations.to_string(),
                format!("{:.2} s", r.elapsed.as_secs_f64()),
                fmt_rate(r.rate()),
                if base > 0.0 { format!("{:.2}", r.rate() / base) } else { "-".into() },
                ms_str(r.p50),
                ms_str(r.p99),
            ]);
        }
        if self.args.pg_url.is_none() {
            s.note("PostgreSQL not measured: pass --pg-url (or FERRY_BENCH_PG_URL) naming a cluster.");
        }
        s.note(
            "All processes share the machine's cores: more nodes add no CPU here; what the rows show is that \
             nodes on one database stay correct and how much the shared database costs.",
        );
        s
    }

    pub fn print(&self) {
        let s = self.section();
        s.print();
        if self.args.markdown {
            println!("\n{}", s.markdown());
        }
    }
}

pub fn run(args: Args) -> Result<Report> {
    ensure!(args.clients > 0 && args.orgs > 0 && args.pushes > 0, "--clients, --orgs and --pushes must be positive");
    ensure!(
        (1..=limits::MAX_BATCH_MUTATIONS).contains(&args.batch),
        "--batch must be 1-{}",
        limits::MAX_BATCH_MUTATIONS
    );
    ensure!(args.payload_bytes >= 32, "--payload-bytes must be at least 32");
    ensure!(args.nodes.iter().all(|n| (1..=16).contains(n)), "--nodes takes counts from 1 to 16");
    crate::common::warn_debug();
    let runtime = crate::common::runtime()?;
    let mut runs = Vec::new();

    let dir = tempfile::tempdir()?;
    let sqlite = DbLocation::Sqlite(dir.path().join("bench.db"));
    runs.push(runtime.block_on(measure("SQLite, 1 node", &sqlite, 1, &args))?);

    if let Some(admin) = &args.pg_url {
        for &nodes in &args.nodes {
            let db = runtime.block_on(PgDatabase::create(admin))?;
            let result = runtime.block_on(measure(
                &format!("PostgreSQL, {nodes} node{}", if nodes == 1 { "" } else { "s" }),
                &DbLocation::Postgres(db.url.clone()),
                nodes,
                &args,
            ));
            runtime.block_on(db.drop_it())?;
            runs.push(result?);
        }
    }
    Ok(Report { args, runs })
}

async fn measure(label: &str, db: &DbLocation, nodes: usize, args: &Args) -> Result<Run> {
    eprintln!("concurrent-push: {label} …");
    {
        let storage = ferry_server::storage::open(db).await?;
        for c in 0..args.clients {
            ferry_server::users::add_user(&*storage, &user(c), &org(c, args), PASSWORD).await?;
        }
    }
    let servers: Vec<ServerProcess> = (0..nodes).map(|_| ServerProcess::start(db)).collect::<Result<_>>()?;
    for n in &servers {
        n.wait_ready().await?;
    }
    let urls: Arc<Vec<String>> = Arc::new(servers.iter().map(|n| n.url.clone()).collect());

    let payload = payload_of_size(args.payload_bytes);
    let mut clients = Vec::with_capacity(args.clients);
    for c in 0..args.clients {
        let bodies: Vec<Vec<u8>> = (0..args.pushes)
            .map(|p| {
                let mutations =
                    (0..args.batch).map(|m| new_record(format!("c{c:03}-p{p:05}-m{m:04}"), &payload)).collect();
                serde_json::to_vec(&PushRequest { mutations, database: None })
            })
            .collect::<Result<_, _>>()?;
        let http = reqwest::Client::new();
        let login: TokenResponse = http
            .post(format!("{}/v1/auth/login", urls[c % urls.len()]))
            .json(&LoginRequest { username: user(c), password: PASSWORD.into() })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        clients.push((http, login.access_token, bodies));
    }

    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, (http, token, bodies))| {
            let urls = urls.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(bodies.len());
                for (p, body) in bodies.into_iter().enumerate() {
                    let url = &urls[(c + p) % urls.len()];
                    let t = Instant::now();
                    let answer = push_body(&http, url, &token, body).await?;
                    latencies.push(t.elapsed());
                    ensure_all_applied(&answer)?;
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.context("client task")??);
    }
    let elapsed = started.elapsed();
    drop(servers);

    let mutations = args.clients * args.pushes * args.batch;
    let stats = ferry_server::storage::open(db).await?.stats().await?;
    ensure!(
        stats.mutations_applied == mutations as u64 && stats.distinct_applied_ids == mutations as u64,
        "{label}: server applied {} mutations ({} distinct ids), expected {mutations}",
        stats.mutations_applied,
        stats.distinct_applied_ids
    );
    Ok(Run {
        label: label.into(),
        mutations,
        elapsed,
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
    })
}

const PASSWORD: &str = "bench-password";

fn user(c: usize) -> String {
    format!("client{c:03}")
}

fn org(c: usize, args: &Args) -> String {
    format!("org{:03}", c % args.orgs)
}

/// A `ferry-server` child process on `db`, killed on drop.
/// A fresh database on the cluster at `admin`, dropped after its run.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin: &str) -> Result<PgDatabase> {
        let name = format!("ferry_bench_{}", Uuid::new_v4().simple());
        admin_sql(admin, &format!("CREATE DATABASE {name}")).await?;
        let url = with_database(admin, &name)?;
        Ok(PgDatabase { admin: admin.into(), name, url })
    }

    async fn drop_it(self) -> Result<()> {
        admin_sql(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await
    }
}

async fn admin_sql(admin: &str, sql: &str) -> Result<()> {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to {}", DbLocation::Postgres(admin.into())))?;
    let conn = tokio::spawn(connection);
    client.batch_execute(sql).await.with_context(|| sql.to_string())?;
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// `postgres://…/postgres` → `postgres://…/NAME` (query string kept).
fn with_database(url: &str, name: &str) -> Result<String> {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").context("not a postgres:// URL")? + 3;
    let path_start = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_replaces_the_path() {
        assert_eq!(super::with_database("postgres://u@h:1/postgres", "x").unwrap(), "postgres://u@h:1/x");
        assert_eq!(super::with_database("postgres://u@h:1", "x").unwrap(), "postgres://u@h:1/x");
        assert_eq!(
            super::with_database("postgres://u@h/p?sslmode=disable", "x").unwrap(),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
