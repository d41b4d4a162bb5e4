//! Connectivity changes. Its own test binary: adding an address to the
//! loopback interface wakes every Ferry daemon on the machine, which would
//! disturb the request counts other tests make while it runs (test binaries
//! run one after another).

use std::time::{Duration, Instant};

use ferry_e2e::ferry::{wait_for, Ferry};
use ferry_e2e::proxy::{Fault, FaultProxy};
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

fn server_records(s: &TestServer, entity: &str) -> Vec<Value> {
    s.dump().into_iter().filter(|r| r["entity"] == entity && r["deleted"] == false).collect()
}

/// A new network address means the network changed: the daemon retries at
/// once instead of sitting out its backoff. Needs root to add an address to
/// the loopback interface (CI runs as root); elsewhere it says so and passes.
#[test]
fn a_network_change_retries_at_once_instead_of_waiting_out_the_backoff() {
    let probe = std::process::Command::new("ip").args(["addr", "add", "127.0.0.91/32", "dev", "lo"]).output();
    match probe {
        Ok(o) if o.status.success() => {
            let _ = std::process::Command::new("ip").args(["addr", "del", "127.0.0.91/32", "dev", "lo"]).output();
        }
        other => {
            eprintln!("cannot change network addresses here (not root?): {other:?}; network-change test not exercised");
            return;
        }
    }
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw-mentor");
    let proxy = FaultProxy::start(&server.url());
    let mut a = Ferry::new();
    a.connect(&proxy.url(), "mentor", "pw-mentor");
    a.put("activity", "net1", &json!({"queued": "before the change"}));
    // The server asks for two minutes of quiet.
    proxy.set(Fault::Status { code: 429, retry_after: Some(120) });
    a.start_daemon(&[("FERRY_PULL_INTERVAL_SECS", "3600")]);
    wait_for(Duration::from_secs(20), "the 429", || (proxy.counts().injected > 0).then_some(()));
    std::thread::sleep(Duration::from_millis(500));
    proxy.set(Fault::Pass);
    let t0 = Instant::now();
    let add = std::process::Command::new("ip").args(["addr", "add", "127.0.0.92/32", "dev", "lo"]).output().unwrap();
    assert!(add.status.success());
    let uploaded = std::panic::catch_unwind(|| {
        wait_for(Duration::from_secs(60), "upload after the network change", || {
            server_records(&server, "activity").iter().any(|r| r["record_id"] == "net1").then_some(())
        })
    });
    let _ = std::process::Command::new("ip").args(["addr", "del", "127.0.0.92/32", "dev", "lo"]).output();
    uploaded.expect("uploaded long before the 120 s Retry-After");
    eprintln!("uploaded {:?} after the network change", t0.elapsed());
    a.stop_daemon();
}
