//! `ferry-bench`: benchmarks that produce the throughput figures quoted in
//! closing notes and docs. Not tests: they assert little and print numbers.
//!
//! One module per benchmark, one subcommand each. Run them in release mode
//! (the CLI benchmarks also need `ferry` built next to this binary):
//! `cargo build --release -p ferry-bench -p ferry-cli -p ferry-server`, then
//! `target/release/ferry-bench all` (writes `docs/benchmarks.md`) or one
//! subcommand, e.g. `target/release/ferry-bench upload --sizes 10000`.

mod all;
mod common;
mod concurrent_push;
mod enqueue;
mod fixture;
mod idle;
mod latency;
mod list_memory;
mod live;
mod pull;
mod scale;
mod server_process;
mod server_push;
mod stats;
mod upload;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "ferry-bench", about = "Ferry benchmarks (run with --release)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Upserts per second through one push endpoint of an embedded
    /// ferry-server, over real HTTP on loopback.
    ServerPush(server_push::Args),
    /// Push throughput and p99 with many clients at once: SQLite, and
    /// PostgreSQL with 1, 2 and 3 ferry-server nodes.
    ConcurrentPush(concurrent_push::Args),
    /// Queued records uploaded by the engine vs raw SQLite inserts.
    Upload(upload::Args),
    /// `ferry put` / `Engine::put` latency and `ferry import` rate.
    Enqueue(enqueue::Args),
    /// Local write to server acknowledgement with the loop running.
    Latency(latency::Args),
    /// Another device hearing of a change; 10 000 waiting clients on one
    /// server.
    Live(live::Args),
    /// Remote changes applied by a fresh engine.
    Pull(pull::Args),
    /// CPU and memory of an idle `ferry daemon`.
    Idle(idle::Args),
    /// `ferry status` / `ferry queue` at long queue lengths.
    Scale(scale::Args),
    /// Peak memory of `ferry list` over a million records.
    ListMemory(list_memory::Args),
    /// Everything; writes docs/benchmarks.md.
    All(all::Args),
}

fn main() -> Result<()> {
    match Cli::parse().bench {
        Bench::ServerPush(args) => server_push::run(args),
        Bench::ConcurrentPush(args) => concurrent_push::run(args).map(|r| r.print()),
        Bench::Upload(args) => upload::run(args).map(|s| s.print()),
        Bench::Enqueue(args) => enqueue::run(args).map(|s| s.print()),
        Bench::Latency(args) => latency::run(args).map(|s| s.print()),
        Bench::Live(args) => live::run(args).map(|s| s.print()),
        Bench::Pull(args) => pull::run(args).map(|s| s.print()),
        Bench::Idle(args) => idle::run(args).map(|s| s.print()),
        Bench::Scale(args) => scale::run(args).map(|s| s.print()),
        Bench::ListMemory(args) => list_memory::run(args).map(|s| s.print()),
        Bench::All(args) => all::run(args),
    }
}
