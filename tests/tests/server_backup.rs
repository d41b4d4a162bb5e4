//! `ferry-server backup`: a consistent copy taken while pushes go on, on
//! the real server process. PostgreSQL is backed up with its own tools, so
//! on that backend the command must say so instead of copying anything.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ferry_e2e::server::{run_cli, upsert, TestServer};
use serde_json::{json, Value};

/// Pushes acknowledged so far: when each answer arrived and its record ids.
type Acked = Arc<Mutex<Vec<(Instant, Vec<String>)>>>;

#[test]
fn a_backup_taken_while_pushes_go_on_is_consistent_and_loses_no_acknowledged_write() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");

    if server.db().is_postgres() {
        let out = server.cli(&["backup", "--to", copy.to_str().unwrap()], None);
        assert!(!out.status.success(), "backup of PostgreSQL must refuse");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("pg_dump"), "names the tool to use: {err}");
        assert!(!copy.exists());
        return;
    }

    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (client, acked, stop) = (server.login("ann", "pw"), acked.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0;
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<_> = (0..50)
                    .map(|i| upsert("activity", &format!("act-{:06}", n + i), 0, json!({"title": "visit", "n": n + i})))
                    .collect();
                let sent = Instant::now();
                let reply = client.try_push(&batch);
                slowest = slowest.max(sent.elapsed());
                assert_eq!(reply.status, 200, "a push failed during the backup: {}", reply.body);
                acked.lock().unwrap().push((Instant::now(), batch.iter().map(|m| m.record_id.clone()).collect()));
                n += 50;
            }
            slowest
        })
    };
    // Some data first, then the backup while the pushes go on.
    while acked.lock().unwrap().len() < 100 {
        thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let out = server.cli(&["backup", "--to", copy.to_str().unwrap()], None);
    let finished = Instant::now();
    assert!(out.status.success(), "backup failed: {}", String::from_utf8_lossy(&out.stderr));
    let pushes_during = acked.lock().unwrap().iter().filter(|(at, _)| *at > started && *at < finished).count();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let slowest = pusher.join().expect("every push succeeded");
    eprintln!(
        "backup took {:?}; {pushes_during} pushes answered meanwhile; slowest push {slowest:?}",
        finished - started
    );

    // The copy is whole and is a server database of its own.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bytes"].as_u64(), Some(std::fs::metadata(&copy).unwrap().len()));

    // A snapshot from within the backup: everything acknowledged before it
    // began is there, nothing that was never acknowledged, and its counters
    // agree with its records.
    let dump = run_cli(&copy, &["dump"], None);
    assert!(dump.status.success());
    let in_copy: BTreeSet<String> = String::from_utf8(dump.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["record_id"].as_str().unwrap().to_owned())
        .collect();
    let acked = acked.lock().unwrap();
    let before: BTreeSet<String> =
        acked.iter().filter(|(at, _)| *at < started).flat_map(|(_, ids)| ids.iter().cloned()).collect();
    let ever: BTreeSet<String> = acked.iter().flat_map(|(_, ids)| ids.iter().cloned()).collect();
    assert!(
        before.is_subset(&in_copy),
        "{} acknowledged writes missing from the copy",
        before.difference(&in_copy).count()
    );
    assert!(in_copy.is_subset(&ever), "the copy holds records never acknowledged");
    let stats = run_cli(&copy, &["stats", "--json"], None);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["records"]["activity"].as_u64(), Some(in_copy.len() as u64), "{stats}");
    assert_eq!(stats["mutations_applied"], stats["distinct_applied_ids"], "{stats}");
    assert_eq!(stats["mutations_applied"].as_u64(), Some(in_copy.len() as u64), "{stats}");

    // Never over an existing file.
    let again = server.cli(&["backup", "--to", copy.to_str().unwrap()], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
