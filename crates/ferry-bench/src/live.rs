//! `live`: how fast another device hears of a change, and what waiting
//! clients cost a server.
//!
//! *Propagation*: two engines of one organisation, each with its background
//! loop (`Engine::run`) and default settings, on an embedded server over
//! loopback; a write on A (`Engine::put`) until B's local store has it
//! (`Engine::get`, polled every 0.5 ms).
//!
//! *Waiting clients*: a real `ferry-server` process (the binary next to this
//! one) holds `--waiters` waiting pulls (`GET /v1/pull?wait=60`), each on a
//! connection of its own; its RSS and CPU are read from /proc before and
//! while they wait, then one push wakes them all and the time until every
//! one has answered with the change is taken.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use ferry_protocol::{LoginRequest, PullResponse, PushRequest, TokenResponse};
use ferry_server::DbLocation;

use crate::common::*;
use crate::idle::{clk_tck, cpu_ticks, memory_kb};
use crate::server_process::ServerProcess;
use crate::server_push::new_record;
use crate::stats::percentile;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Writes on A whose arrival on B is timed.
    #[arg(long, default_value_t = 200)]
    pub writes: usize,
    /// Pause between writes, ms (each write starts from two idle engines).
    #[arg(long, default_value_t = 30)]
    pub gap_ms: u64,
    /// Waiting clients held by one server process (0 = skip).
    #[arg(long, default_value_t = 10_000)]
    pub waiters: usize,
    /// How long the waiting server is watched while idle, seconds.
    #[arg(long, default_value_t = 10)]
    pub idle_secs: u64,
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut section = Section::new(
        "Live changes",
        "*Propagation*: two engines of one organisation with their background loops and default settings \
         (pull interval 60 s; each holds one waiting pull, `GET /v1/pull?wait=25`), on an embedded \
         ferry-server over loopback; from the start of `Engine::put` on A until `Engine::get` on B returns \
         the record (polled every 0.5 ms). *Waiting clients*: one real `ferry-server` process (SQLite) \
         holding N waiting pulls of one organisation, each on its own connection; server RSS (`VmRSS`) and \
         CPU ((utime+stime) ÷ wall time, 100 % = one core) from /proc without clients and while they wait, \
         then one push of one record and the time until every waiter has answered with it.",
        &["measure", "figure"],
    );
    let rt = runtime()?;
    let delays = rt.block_on(propagation(&args))?;
    let (median, p99) = (percentile(&delays, 50.0), percentile(&delays, 99.0));
    section.row(vec![format!("propagation A → B, {} writes: median", delays.len()), ms_str(median)]);
    section.row(vec!["propagation A → B: p99".into(), ms_str(p99)]);
    section.row(vec!["propagation A → B: max".into(), ms_str(percentile(&delays, 100.0))]);
    section.goal("propagation median (loopback)", "< 100 ms", ms_str(median), median < Duration::from_millis(100));
    section.goal("propagation p99 (loopback)", "< 500 ms", ms_str(p99), p99 < Duration::from_millis(500));
    if args.waiters > 0 {
        raise_open_files_limit(args.waiters)?;
        let w = rt.block_on(waiting_clients(&args))?;
        let n = args.waiters;
        section.row(vec!["server RSS, no clients".into(), format!("{:.1} MB", w.rss_before_kb as f64 / 1024.0)]);
        section.row(vec![
            format!("server RSS, {} waiting", thousands(n as u64)),
            format!("{:.1} MB", w.rss_waiting_kb as f64 / 1024.0),
        ]);
        section.row(vec![
            "server memory per waiting client".into(),
            format!("{:.1} KB", (w.rss_waiting_kb.saturating_sub(w.rss_before_kb)) as f64 / n as f64),
        ]);
        section.row(vec![
            format!("server CPU while {} wait ({} s)", thousands(n as u64), args.idle_secs),
            format!("{:.3} % of a core", w.idle_cpu_percent),
        ]);
        section.row(vec![format!("time to open {} waits", thousands(n as u64)), ms_str(w.opened_in)]);
        section.row(vec!["one push → first waiter answered".into(), ms_str(w.first)]);
        section.row(vec!["one push → half answered".into(), ms_str(w.median)]);
        section.row(vec![format!("one push → all {} answered", thousands(n as u64)), ms_str(w.all)]);
        section.row(vec!["server peak RSS (VmHWM)".into(), format!("{:.1} MB", w.peak_kb as f64 / 1024.0)]);
    }
    Ok(section)
}

async fn propagation(args: &Args) -> Result<Vec<Duration>> {
    let server = BenchServer::start().await?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a = engine_at(dir_a.path(), Some(&server.url)).await?;
    let b = engine_at(dir_b.path(), Some(&server.url)).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loops: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|engine| {
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                engine
                    .run(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            })
        })
        .collect();
    // Both loops through their first cycle and into their waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut delays = Vec::with_capacity(args.writes);
    for i in 0..args.writes {
        let id = format!("live-{i:06}");
        let started = Instant::now();
        a.put(ENTITY, &id, payload(i, RECORD_BYTES))?;
        let deadline = started + Duration::from_secs(30);
        loop {
            if b.get(ENTITY, &id)?.is_some() {
                delays.push(started.elapsed());
                break;
            }
            if Instant::now() > deadline {
                bail!("{id} written on A did not reach B within 30 s");
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    }
    let _ = stop.send(true);
    for l in loops {
        l.await??;
    }
    server.stop().await?;
    Ok(delays)
}

struct Waiting {
    rss_before_kb: u64,
    rss_waiting_kb: u64,
    peak_kb: u64,
    idle_cpu_percent: f64,
    opened_in: Duration,
    first: Duration,
    median: Duration,
    all: Duration,
}

async fn waiting_clients(args: &Args) -> Result<Waiting> {
    eprintln!("live: {} waiting clients on one ferry-server process …", args.waiters);
    let dir = tempfile::tempdir()?;
    let db = DbLocation::Sqlite(dir.path().join("server.db"));
    {
        let storage = ferry_server::storage::open(&db).await?;
        ferry_server::users::add_user(&*storage, USER, "bench", PASSWORD).await?;
    }
    let server = ServerProcess::start(&db)?;
    server.wait_ready().await?;
    let url = server.url.clone();
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let login: TokenResponse = http
        .post(format!("{url}/v1/auth/login"))
        .json(&LoginRequest { username: USER.into(), password: PASSWORD.into() })
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = Arc::new(login.access_token);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before_kb, _) = memory_kb(server.pid())?;

    // Every waiter its own client, so its own connection (as devices are).
    let opened = Instant::now();
    let mut waiters = Vec::with_capacity(args.waiters);
    let (started_tx, mut started_rx) = tokio::sync::mpsc::channel::<()>(args.waiters);
    for i in 0..args.waiters {
        let (url, token, started) = (url.clone(), token.clone(), started_tx.clone());
        waiters.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build()?;
            // Connect first: the wait then goes over the pooled connection,
            // so "started" means the connection is up.
            client.get(format!("{url}/health")).send().await?.error_for_status()?;
            let _ = started.send(()).await;
            let request = client.get(format!("{url}/v1/pull?since=0&limit=1&wait=60")).bearer_auth(&*token);
            let page: PullResponse = request.send().await?.error_for_status()?.json().await?;
            anyhow::Ok((Instant::now(), page))
        }));
        if i % 500 == 499 {
            // Stay within the listener's accept backlog.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(started_tx);
    for _ in 0..args.waiters {
        started_rx.recv().await.context("a waiter failed before it started waiting")?;
    }
    let opened_in = opened.elapsed();
    // Let the last requests reach their handlers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticks = clk_tck();
    let (cpu0, t0) = (cpu_ticks(server.pid())?, Instant::now());
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle_cpu_percent = (cpu_ticks(server.pid())? - cpu0) as f64 / ticks / t0.elapsed().as_secs_f64() * 100.0;
    let (rss_waiting_kb, _) = memory_kb(server.pid())?;
    ensure!(
        opened.elapsed() < Duration::from_secs(50),
        "opening the waits took too long: they would time out before the push"
    );

    let push =
        PushRequest { mutations: vec![new_record("wake-all".into(), &payload(0, RECORD_BYTES))], database: None };
    let pushed = Instant::now();
    http.post(format!("{url}/v1/push")).bearer_auth(&*token).json(&push).send().await?.error_for_status()?;
    let mut answered = Vec::with_capacity(args.waiters);
    for w in waiters {
        let (at, page) = w.await??;
        ensure!(
            page.changes.len() == 1 && page.changes[0].record_id == "wake-all",
            "a waiter answered without the change: {page:?}"
        );
        answered.push(at.saturating_duration_since(pushed));
    }
    let (_, peak_kb) = memory_kb(server.pid())?;
    answered.sort();
    Ok(Waiting {
        rss_before_kb,
        rss_waiting_kb,
        peak_kb,
        idle_cpu_percent,
        opened_in,
        first: answered[0],
        median: percentile(&answered, 50.0),
        all: *answered.last().unwrap_or(&Duration::ZERO),
    })
}

/// Each waiting client holds one socket here and one in the server (which
/// inherits this limit): raise the soft limit on open files to the hard one.
fn raise_open_files_limit(waiters: usize) -> Result<()> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            bail!("getrlimit: {}", std::io::Error::last_os_error());
        }
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
            bail!("setrlimit: {}", std::io::Error::last_os_error());
        }
    }
    let needed = waiters as u64 + 1000;
    ensure!(
        limit.rlim_cur >= needed,
        "{waiters} waiters need about {needed} open files, the hard limit is {}: raise it (ulimit -Hn) or pass --waiters",
        limit.rlim_cur
    );
    Ok(())
}
