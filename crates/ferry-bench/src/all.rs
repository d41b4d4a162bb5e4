//! `all`: every benchmark at the given sizes, printed and written to
//! `docs/benchmarks.md`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::common::*;
use crate::fixture::Fixture;
use crate::{concurrent_push, enqueue, idle, latency, list_memory, live, pull, scale, upload};

/// Hand-written analysis (profiles, fixes) kept next to the code so a re-run
/// does not lose it; read at run time.
fn analysis() -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("analysis.md");
    std::fs::read_to_string(&p).unwrap_or_else(|_| format!("(no {})\n", p.display()))
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Upload sizes, comma separated.
    #[arg(long, value_parser = parse_sizes, default_value = "10000,100000,1000000")]
    pub sizes: std::vec::Vec<usize>,
    /// Queue lengths for the idle and scale benchmarks (the longest is used
    /// for scale and for the paused daemon).
    #[arg(long, value_parser = parse_sizes, default_value = "100000,1000000")]
    pub queue_sizes: std::vec::Vec<usize>,
    /// Remote changes for the pull benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub pull_changes: usize,
    /// Idle measurement window per case, seconds.
    #[arg(long, default_value_t = 60)]
    pub idle_secs: u64,
    /// A PostgreSQL cluster for the server benchmark's PostgreSQL rows
    /// (see `concurrent-push --help`); without it only SQLite is measured.
    #[arg(long, env = "FERRY_BENCH_PG_URL")]
    pub pg_url: Option<String>,
    /// Where to write the report.
    #[arg(long, default_value_os_t = default_out())]
    pub out: PathBuf,
    /// Print only; do not write the report.
    #[arg(long)]
    pub no_write: bool,
}

fn default_out() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md")
}

pub fn run(args: Args) -> Result<()> {
    warn_debug();
    let started = Instant::now();
    let mut sections = Vec::new();

    let s = upload::run(upload::Args { sizes: args.sizes.clone(), push_depths: vec![1, 3] })?;
    s.print();
    sections.push(s);

    let s = enqueue::run(enqueue::Args { cli_runs: 200, engine_runs: 2000, import_lines: 100_000 })?;
    s.print();
    sections.push(s);

    let s = latency::run(latency::Args { writes: 200, daemon_writes: 100, gap_ms: 30 })?;
    s.print();
    sections.push(s);

    let s = live::run(live::Args { writes: 200, gap_ms: 30, waiters: 10_000, idle_secs: 10 })?;
    s.print();
    sections.push(s);

    let s = pull::run(pull::Args { changes: args.pull_changes })?;
    s.print();
    sections.push(s);

    let cp = concurrent_push::run(concurrent_push::Args {
        clients: 50,
        orgs: 10,
        pushes: 40,
        batch: 50,
        payload_bytes: 300,
        nodes: vec![1, 2, 3],
        pg_url: args.pg_url.clone(),
        markdown: false,
    })?;
    cp.print();
    sections.push(cp.section());

    // Queued data dirs, shared by scale and idle.
    let mut fixtures = vec![Fixture::build(0)?];
    for &n in &args.queue_sizes {
        fixtures.push(Fixture::build(n)?);
    }
    let longest = fixtures.iter().max_by_key(|f| f.queued).map(|f| f.queued).unwrap_or(0);

    let mut sc = scale::section();
    for f in fixtures.iter().filter(|f| f.queued == 0 || f.queued == longest) {
        scale::measure(&mut sc, f, 30)?;
    }
    scale::finish(&mut sc);
    sc.print();

    let mut lm = list_memory::section();
    for f in fixtures.iter().filter(|f| f.queued == longest && longest > 0) {
        list_memory::measure(&mut lm, f)?;
    }
    list_memory::finish(&mut lm);
    lm.print();

    let mut id = idle::section(args.idle_secs);
    idle::online_empty(&mut id, args.idle_secs)?;
    for f in fixtures.iter().filter(|f| f.queued > 0) {
        idle::measure(&mut id, "offline", f, args.idle_secs, false)?;
    }
    if let Some(f) = fixtures.iter().find(|f| f.queued == longest && longest > 0) {
        idle::measure(&mut id, "paused", f, args.idle_secs, true)?;
    }
    idle::finish(&mut id);
    id.print();
    for f in &fixtures {
        if f.queued > 0 {
            sc.note(format!(
                "Building the {}-item queue with `Engine::put_many` took {:.1} s.",
                thousands(f.queued as u64),
                f.fill_time.as_secs_f64()
            ));
        }
    }
    sections.push(sc);
    sections.push(lm);
    sections.push(id);

    let total = started.elapsed();
    println!("\nall benchmarks: {:.0} s", total.as_secs_f64());
    if !args.no_write {
        let md = render(&sections, total);
        if let Some(dir) = args.out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&args.out, md)?;
        println!("wrote {}", args.out.display());
    }
    Ok(())
}

fn render(sections: &[Section], total: std::time::Duration) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let nproc = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.1} GB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut md = String::new();
    md += "# Ferry benchmarks\n\n";
    md += "Generated by `ferry-bench all` (crates/ferry-bench); every figure below comes from one run on one \
           machine. Benchmarks print numbers, they never assert timings.\n\n";
    md += &format!(
        "- machine: {nproc} CPUs ({cpu}), {mem} RAM, Linux {}\n- date: {date}\n- command: \
         `cargo build --release -p ferry-bench -p ferry-cli -p ferry-server && target/release/ferry-bench {}`\n\
         - whole run: {:.0} s\n\n",
        kernel.trim(),
        argv.join(" "),
        total.as_secs_f64()
    );
    md += "## Goals\n\n| benchmark | goal | target | measured | |\n| --- | --- | --- | --- | --- |\n";
    for s in sections {
        for g in &s.goals {
            md += &format!(
                "| {} | {} | {} | {} | {} |\n",
                s.title,
                g.what,
                g.target,
                g.measured,
                if g.met { "met" } else { "**missed**" }
            );
        }
    }
    md += "\n";
    for s in sections {
        md += &s.markdown();
    }
    md += "## Desktop app\n\nThe tray app needs a display, so it is measured separately by \
           `scripts/app-bench.sh` (Xvfb): launch to tray icon, and PSS of all its processes with the \
           window open, closed and reopened. Figures: [benchmarks-app.md](benchmarks-app.md).\n\n";
    md += &analysis();
    md
}
