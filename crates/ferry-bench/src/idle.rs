//! `idle`: the real `ferry daemon` process left alone: CPU time
//! (utime+stime from /proc/PID/stat) over a window and resident memory
//! (VmRSS, VmHWM from /proc/PID/status), with an empty and long queues.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::common::*;
use crate::fixture::Fixture;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Queue lengths for the offline daemon, comma separated.
    #[arg(long, value_parser = parse_sizes, default_value = "100000,1000000")]
    pub sizes: std::vec::Vec<usize>,
    /// Measurement window per case, seconds.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Also measure a paused daemon with the longest queue.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub paused: bool,
}

pub fn section(secs: u64) -> Section {
    Section::new(
        "Idle daemon",
        &format!(
            "The real `ferry daemon` process, started and left alone for 3 s, then measured over {secs} s: CPU \
             = (utime+stime) delta from `/proc/PID/stat` ÷ wall time (100 % = one core); RSS = `VmRSS` at the \
             end, peak = `VmHWM`. *online*: signed in, server reachable, nothing queued (one pull at start, one \
             per 60 s pull interval, and one waiting pull held open and renewed every 25 s). *offline*: the server's port is closed, so the queue stays and the \
             daemon retries with exponential backoff (1, 2, 4 … 60 s). *paused*: `ferry pause` before starting."
        ),
        &["case", "queued", "CPU time", "CPU % of a core", "RSS", "peak RSS"],
    )
}

pub fn run(args: Args) -> Result<Section> {
    warn_debug();
    let mut s = section(args.secs);
    online_empty(&mut s, args.secs)?;
    let mut longest: Option<Fixture> = None;
    for &n in &args.sizes {
        let f = Fixture::build(n)?;
        measure(&mut s, "offline", &f, args.secs, false)?;
        if longest.as_ref().is_none_or(|l| l.queued < n) {
            longest = Some(f);
        }
    }
    if args.paused {
        if let Some(f) = longest {
            measure(&mut s, "paused", &f, args.secs, true)?;
        }
    }
    finish(&mut s);
    Ok(s)
}

pub fn finish(s: &mut Section) {
    let (mut worst_cpu, mut worst_cpu_case) = (0.0f64, String::new());
    let (mut worst_rss, mut worst_rss_case) = (0.0f64, String::new());
    for r in &s.rows {
        let cpu: f64 = r[3].trim_end_matches(" %").parse().unwrap_or(f64::MAX);
        let rss: f64 = r[4].trim_end_matches(" MB").parse().unwrap_or(f64::MAX);
        if cpu >= worst_cpu {
            worst_cpu = cpu;
            worst_cpu_case = format!("{}, {} queued", r[0], r[1]);
        }
        if rss >= worst_rss {
            worst_rss = rss;
            worst_rss_case = format!("{}, {} queued", r[0], r[1]);
        }
    }
    if !s.rows.is_empty() {
        s.goal("idle CPU", "< 0.1 % of a core", format!("worst {worst_cpu:.3} % ({worst_cpu_case})"), worst_cpu < 0.1);
        s.goal("idle RSS", "< 30 MB", format!("worst {worst_rss:.1} MB ({worst_rss_case})"), worst_rss < 30.0);
    }
}

/// Signed in, server up, nothing queued.
pub fn online_empty(s: &mut Section, secs: u64) -> Result<()> {
    let rt = runtime()?;
    rt.block_on(async {
        let server = BenchServer::start().await?;
        let dir = tempfile::tempdir()?;
        drop(engine_at(dir.path(), Some(&server.url)).await?);
        let path = dir.path().to_path_buf();
        let r = tokio::task::spawn_blocking(move || sample(&path, secs)).await??;
        push(s, "online", 0, r);
        server.stop().await?;
        anyhow::Ok(())
    })
}

pub fn measure(s: &mut Section, case: &str, f: &Fixture, secs: u64, paused: bool) -> Result<()> {
    if paused {
        let mut c = ferry(f.path())?;
        c.arg("pause");
        run_timed(c)?;
    }
    let r = sample(f.path(), secs);
    if paused {
        let mut c = ferry(f.path())?;
        c.arg("resume");
        let _ = run_timed(c);
    }
    push(s, case, f.queued, r?);
    Ok(())
}

struct Sample {
    cpu: Duration,
    wall: Duration,
    rss_kb: u64,
    hwm_kb: u64,
}

fn push(s: &mut Section, case: &str, queued: usize, r: Sample) {
    s.row(vec![
        case.into(),
        thousands(queued as u64),
        format!("{:.2} s", r.cpu.as_secs_f64()),
        format!("{:.3} %", 100.0 * r.cpu.as_secs_f64() / r.wall.as_secs_f64()),
        format!("{:.1} MB", r.rss_kb as f64 / 1024.0),
        format!("{:.1} MB", r.hwm_kb as f64 / 1024.0),
    ]);
}

fn sample(dir: &std::path::Path, secs: u64) -> Result<Sample> {
    eprintln!("idle: daemon in {} for {secs} s…", dir.display());
    let mut cmd = ferry(dir)?;
    cmd.arg("daemon").stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = cmd.spawn().context("start ferry daemon")?;
    let r = (|| {
        std::thread::sleep(Duration::from_secs(3));
        let pid = child.id();
        let c0 = cpu_ticks(pid)?;
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let c1 = cpu_ticks(pid)?;
        let wall = t0.elapsed();
        let (rss_kb, hwm_kb) = memory_kb(pid)?;
        let tck = clk_tck();
        Ok(Sample { cpu: Duration::from_secs_f64((c1 - c0) as f64 / tck), wall, rss_kb, hwm_kb })
    })();
    stop(&mut child);
    r
}

fn stop(child: &mut Child) {
    let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// utime + stime, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("daemon exited early")?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.len() < 13 {
        bail!("unexpected /proc/{pid}/stat: {stat}");
    }
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

pub(crate) fn memory_kb(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

pub(crate) fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
