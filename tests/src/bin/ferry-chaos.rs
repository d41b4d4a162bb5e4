//! The long convergence run: real `ferry` clients and a real `ferry-server`
//! through fault-injecting proxies, with kill -9 of clients and server, then
//! heal and check (see `ferry_e2e::chaos`). Prints a summary table and exits
//! 1 if anything was lost, applied twice, overwritten against its policy or
//! left divergent, listing the failing steps.
//!
//! ```text
//! cargo build --release --bins -p ferry-server -p ferry-cli
//! cargo run --release -p ferry-e2e --bin ferry-chaos -- --ops 4000 --clients 3 --seed 4242
//! # three nodes on PostgreSQL behind HAProxy (FERRY_TEST_PG_URL names a cluster
//! # the run may create a database on; scripts/pg-test-cluster.sh starts one):
//! cargo run --release -p ferry-e2e --bin ferry-chaos -- --backend postgres --nodes 3
//! ```

use ferry_e2e::chaos::{self, Config};
use ferry_e2e::pg::{pg_admin_url, Backend};

fn usage() -> ! {
    let d = Config::new(0, 3, 1000);
    eprintln!(
        "usage: ferry-chaos [--ops N] [--clients N] [--seed S] [--keys N] [--fault-rate F] [--timeout SECS]\n\
         \x20                  [--backend sqlite|postgres] [--nodes N] [--verbose]\n\
         \n  --ops N         workload steps over all clients (default {})\
         \n  --clients N     simulated devices, one `ferry` data dir each (default {})\
         \n  --seed S        replay a run (default: FERRY_CHAOS_SEED or random)\
         \n  --keys N        record ids per entity; small means many conflicts (default {})\
         \n  --fault-rate F  share of requests that get a fault, 0..1 (default {})\
         \n  --timeout SECS  client HTTP timeout, FERRY_HTTP_TIMEOUT_SECS (default {})\
         \n  --backend B     server storage: sqlite (default) or postgres (FERRY_TEST_PG_URL)\
         \n  --nodes N       server processes behind HAProxy; N > 1 needs postgres (default 1)\
         \n  --verbose       print each step as it ends\
         \n\nThe `ferry` and `ferry-server` binaries are taken from the same target\
         \ndirectory (build them with the same profile) or from FERRY_BIN_DIR.",
        d.ops, d.clients, d.keys, d.fault_rate, d.http_timeout_secs
    );
    std::process::exit(2)
}

fn main() {
    let mut cfg = Config::new(chaos::seed_from_env(), 3, 1000);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--ops" => cfg.ops = val().parse().unwrap_or_else(|_| usage()),
            "--clients" => cfg.clients = val().parse().unwrap_or_else(|_| usage()),
            "--seed" => cfg.seed = val().parse().unwrap_or_else(|_| usage()),
            "--keys" => cfg.keys = val().parse().unwrap_or_else(|_| usage()),
            "--fault-rate" => cfg.fault_rate = val().parse().unwrap_or_else(|_| usage()),
            "--timeout" => cfg.http_timeout_secs = val().parse().unwrap_or_else(|_| usage()),
            "--backend" => {
                cfg.backend = match val().as_str() {
                    "sqlite" => Backend::Sqlite,
                    "postgres" => Backend::Postgres { admin_url: pg_admin_url() },
                    _ => usage(),
                }
            }
            "--nodes" => cfg.nodes = val().parse().unwrap_or_else(|_| usage()),
            "--verbose" | "-v" => cfg.verbose = true,
            _ => usage(),
        }
    }
    if cfg.clients == 0 || cfg.nodes == 0 || !(0.0..=1.0).contains(&cfg.fault_rate) {
        usage();
    }
    if cfg.nodes > 1 && !cfg.backend.is_postgres() {
        eprintln!("ferry-chaos: --nodes {} needs --backend postgres (SQLite serves one process)", cfg.nodes);
        std::process::exit(2);
    }
    let summary = chaos::run(&cfg);
    println!("{summary}");
    if summary.ok() {
        println!("OK: nothing lost, nothing applied twice, nothing overwritten against its policy, every client agrees with the server");
    } else {
        println!(
            "FAILED: replay with --seed {} (or FERRY_CHAOS_SEED={}); add --verbose to print every step",
            summary.seed, summary.seed
        );
        std::process::exit(1);
    }
}
