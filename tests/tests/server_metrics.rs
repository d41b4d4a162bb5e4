//! `GET /metrics` on `--metrics-listen`: scraped from the real server
//! during a workload of every kind of outcome, parsed with a Prometheus
//! text-format parser, and checked against `ferry-server stats`.

use std::collections::HashMap;
use std::time::Duration;

use ferry_e2e::free_port;
use ferry_e2e::server::{upsert, TestServer};
use serde_json::json;

/// One scrape: sample name with sorted labels → value.
fn scrape(port: u16) -> HashMap<String, f64> {
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics")).unwrap().text().unwrap();
    let parsed =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");
    parsed
        .samples
        .into_iter()
        .map(|s| {
            let mut labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let value = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
                prometheus_parse::Value::Summary(_) => f64::NAN,
            };
            (format!("{}{{{}}}", s.metric, labels.join(",")), value)
        })
        .collect()
}

#[test]
fn metrics_agree_with_the_servers_stats_during_a_workload() {
    let metrics_port = free_port();
    let port_arg = format!("127.0.0.1:{metrics_port}");
    let server = TestServer::start_with(&["--metrics-listen", &port_arg]);
    server.add_user("ann", "red", "pw");
    let mut client = server.login("ann", "pw");
    for _ in 0..3 {
        client.try_login("ann", "wrong").assert_error(401, "invalid_credentials");
    }
    client.login("ann", "pw");

    // Applied, duplicate (the same ids again), conflict (a stale base),
    // rejected (a patch of nothing).
    let batch = vec![upsert("activity", "a1", 0, json!({"n": 1})), upsert("activity", "a2", 0, json!({"n": 2}))];
    client.push(&batch);
    client.push(&batch);
    client.push(&[upsert("activity", "a1", 0, json!({"n": 9}))]);
    client.push(&[ferry_e2e::server::patch("activity", "nothing-here", 0, json!({"n": 1}))]);
    client.pull(0, 100);

    // A waiting pull held open while we scrape.
    let waiting = server.login("ann", "pw");
    let cursor = waiting.pull(0, 100).cursor;
    let held = std::thread::spawn(move || waiting.get(&format!("/v1/pull?since={cursor}&wait=20")));
    let mut m = scrape(metrics_port);
    for _ in 0..100 {
        if m.get("ferry_pull_waits_open{}") == Some(&1.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        m = scrape(metrics_port);
    }
    assert_eq!(m.get("ferry_pull_waits_open{}"), Some(&1.0), "{m:#?}");

    let stats = server.stats();
    let stat = |k: &str| stats[k].as_f64().unwrap();
    let outcome = |o: &str| m[&format!("ferry_mutations_total{{outcome={o}}}")];
    assert_eq!(outcome("applied"), stat("mutations_applied"));
    assert_eq!(outcome("duplicate"), stat("mutations_duplicate"));
    assert_eq!(outcome("conflict"), stat("conflicts"));
    assert_eq!(outcome("rejected"), stat("rejected"));
    assert_eq!(
        (outcome("applied"), outcome("duplicate"), outcome("conflict"), outcome("rejected")),
        (2.0, 2.0, 1.0, 1.0)
    );
    assert_eq!(m["ferry_logins_total{result=failed}"], 3.0);
    assert_eq!(m["ferry_logins_total{result=ok}"], 3.0);
    assert_eq!(m["ferry_http_requests_total{endpoint=push,status=200}"], 4.0);
    assert_eq!(m["ferry_http_requests_total{endpoint=login,status=401}"], 3.0);
    assert_eq!(m["ferry_http_request_duration_seconds_count{endpoint=push}"], 4.0, "{m:#?}");
    assert!(m["ferry_http_requests_total{endpoint=pull,status=200}"] >= 2.0);
    if server.db().is_postgres() {
        assert!(m["ferry_db_pool_max{}"] >= 1.0 && m["ferry_db_pool_connections{}"] >= 1.0, "{m:#?}");
    }

    // The waiting pull answers a push, and is no longer counted as open.
    client.push(&[upsert("activity", "a3", 0, json!({"n": 3}))]);
    assert_eq!(held.join().unwrap().status, 200);
    let after = scrape(metrics_port);
    assert_eq!(after.get("ferry_pull_waits_open{}"), Some(&0.0));
    assert_eq!(after["ferry_http_requests_total{endpoint=pull_wait,status=200}"], 1.0);

    // Not on the API's port.
    assert_eq!(client.get("/metrics").status, 404);
}

#[test]
fn metrics_are_off_unless_asked_for() {
    let server = TestServer::start();
    assert_eq!(server.client().get("/metrics").status, 404);
    assert!(!server.log().contains("/metrics"), "{}", server.log());
}
