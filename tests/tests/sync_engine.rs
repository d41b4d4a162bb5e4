//! The sync engine end to end: real `ferry-server`, real `ferry` processes,
//! temporary data dirs.

use std::time::{Duration, Instant};

use ferry_e2e::ferry::{wait_for, Ferry};
use ferry_e2e::proxy::{Fault, FaultProxy};
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

fn server_with_users() -> TestServer {
    let s = TestServer::start();
    s.add_user("mentor", "org1", "pw-mentor");
    s.add_user("coordinator", "org1", "pw-coord");
    s
}

fn sorted_list(f: &Ferry, entity: &str) -> Vec<Value> {
    let mut v = f.list(entity).as_array().cloned().unwrap_or_default();
    v.sort_by_key(|r| r["id"].as_str().unwrap_or("").to_string());
    v
}

fn server_records(s: &TestServer, entity: &str) -> Vec<Value> {
    s.dump().into_iter().filter(|r| r["entity"] == entity && r["deleted"] == false).collect()
}

#[test]
fn put_get_list_and_meta_work_offline_and_sync_to_a_second_client() {
    let server = server_with_users();
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw-mentor");
    a.put("activity", "a1", &json!({"title": "Visit", "minutes": 30}));
    a.patch("activity", "a1", &json!({"minutes": 45, "title": null, "place": "Hall"}));
    a.put("expense", "e1", &json!({"amount": 12.5}));
    assert_eq!(a.get("activity", "a1").unwrap(), json!({"minutes": 45, "place": "Hall"}));
    let meta = a.run(&["get", "activity", "a1", "--meta"]).ok().json();
    assert_eq!(meta["pending"], 2);
    assert_eq!(meta["version"], 0);
    assert_eq!(a.status()["pending"], 3);

    a.sync().ok();
    assert_eq!(a.status()["pending"], 0);
    let meta = a.run(&["get", "activity", "a1", "--meta"]).ok().json();
    assert_eq!(meta["version"], 2, "two mutations applied: version 2");
    assert_eq!(meta["pending"], 0);

    let b = Ferry::new();
    b.connect(&server.url(), "coordinator", "pw-coord");
    b.sync().ok();
    assert_eq!(sorted_list(&b, "activity"), sorted_list(&a, "activity"));
    assert_eq!(b.get("expense", "e1").unwrap(), json!({"amount": 12.5}));

    // A delete travels as a tombstone.
    b.delete("expense", "e1");
    b.sync().ok();
    a.sync().ok();
    assert!(a.get("expense", "e1").is_none());
    assert_eq!(a.list("expense"), json!([]));
}

#[test]
fn offline_writes_stay_pending_with_growing_backoff_then_drain() {
    let mut server = server_with_users();
    let mut a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw-mentor");
    server.kill();
    for i in 0..20 {
        a.put("activity", &format!("r{i:02}"), &json!({"n": i, "text": "offline"}));
    }
    let r = a.sync();
    assert_eq!(r.code, 5, "offline sync exits 5: {}", r.stderr);
    assert!(r.stderr.contains("stay queued"), "{}", r.stderr);
    assert_eq!(a.status()["pending"], 20);

    // The daemon retries on the backoff schedule: attempts grow, the next
    // retry moves further out.
    a.start_daemon(&[]);
    std::thread::sleep(Duration::from_secs(8));
    let s = a.status();
    assert!(s["next_retry_at"].as_i64().is_some(), "status shows when the next try is: {s}");
    assert_eq!(s["state"], "offline");
    let q = a.queue(Some("pending"));
    assert_eq!(q.len(), 20);
    let attempts = q[0]["attempts"].as_i64().unwrap();
    assert!(attempts >= 2, "the daemon kept retrying: {attempts} attempts");
    assert!(q[0]["last_error"].as_str().unwrap_or("").contains("reach"), "{}", q[0]);
    // Each waiting mutation says when it is tried next: the daemon's retry
    // time (which only moves later, so it is no earlier when read after).
    let later = a.status()["next_retry_at"].as_i64().unwrap();
    for item in &q {
        let at = item["next_attempt_at"].as_i64().unwrap_or_else(|| panic!("no next attempt time: {item}"));
        assert!(at <= later && at > later - 120_000, "next attempt {at}, daemon's next retry {later}: {item}");
    }
    a.stop_daemon();
    let log = a.daemon_log();
    let delays: Vec<u64> = log
        .lines()
        .filter(|l| l.contains("backing off"))
        .filter_map(|l| l.split("retry_in_ms=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(delays.len() >= 2, "backoff logged: {log}");
    // Full jitter: each delay is drawn from [0, ceiling] of 1 s, 2 s, 4 s, ...
    // (the backoff unit tests check the distribution).
    for (i, d) in delays.iter().enumerate() {
        let ceiling = (1000u64 << i.min(6)).min(60_000);
        assert!(*d <= ceiling, "delay {i} = {d} ms, ceiling {ceiling} ms");
    }

    server.restart();
    a.sync().ok();
    assert_eq!(a.status()["pending"], 0);
    let b = Ferry::new();
    b.connect(&server.url(), "coordinator", "pw-coord");
    b.sync().ok();
    assert_eq!(sorted_list(&b, "activity"), sorted_list(&a, "activity"));
    assert_eq!(server_records(&server, "activity").len(), 20);
    assert_eq!(server.stats()["mutations_applied"], 20);
}

#[test]
fn kill_9_while_syncing_never_loses_or_duplicates() {
    let server = server_with_users();
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw-mentor");
    let lines: String = (0..2000)
        .map(|i| {
            json!({"entity": "activity", "id": format!("k{i:04}"), "data": {"n": i, "pad": "x".repeat(250)}})
                .to_string()
                + "\n"
        })
        .collect();
    let file = a.dir().join("import.jsonl");
    std::fs::write(&file, lines).unwrap();
    a.run(&["import", file.to_str().unwrap()]).ok();
    // Smaller batches give more instants to die in.
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut kills = 0;
    for round in 0..12 {
        let mut child = a.command().arg("sync").env("FERRY_BATCH_MAX", "50").spawn().unwrap();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(20 + rng % 250));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
        // Edits keep arriving between crashes.
        a.patch("activity", &format!("k{:04}", round * 7), &json!({"edited": round}));
    }
    eprintln!("killed {kills} of 12 syncs");
    a.sync().ok();
    assert_eq!(a.status()["pending"], 0);
    let on_server = server_records(&server, "activity");
    assert_eq!(on_server.len(), 2000, "every record arrived");
    let stats = server.stats();
    assert_eq!(stats["mutations_applied"], 2000 + 12, "each mutation applied exactly once: {stats}");
    for round in 0..12 {
        let id = format!("k{:04}", round * 7);
        let rec = on_server.iter().find(|r| r["record_id"] == id.as_str()).unwrap();
        assert_eq!(rec["data"]["edited"], round, "{id}");
    }
}

#[test]
fn daemon_uploads_a_put_from_another_process_without_waiting_for_a_timer() {
    let server = server_with_users();
    let mut a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw-mentor");
    // An hour between pulls: only the write event can explain an upload.
    a.start_daemon(&[("FERRY_PULL_INTERVAL_SECS", "3600")]);
    wait_for(Duration::from_secs(20), "daemon start", || a.daemon_log().contains("starting").then_some(()));
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..3 {
        let id = format!("live{i}");
        let t0 = Instant::now();
        a.put("activity", &id, &json!({"i": i}));
        wait_for(Duration::from_secs(30), "upload by the daemon", || {
            server_records(&server, "activity").iter().any(|r| r["record_id"] == id.as_str()).then_some(())
        });
        eprintln!("write-to-server for {id}: {:?}", t0.elapsed());
    }
    let status = a.stop_daemon().expect("daemon ran");
    assert!(status.success(), "daemon exits cleanly on SIGTERM: {status:?}\n{}", a.daemon_log());
}

#[test]
fn rejected_mutation_fails_alone_and_can_be_retried_or_discarded() {
    let mut server = TestServer::start_with(&["--max-payload-bytes", "2000"]);
    server.add_user("mentor", "org1", "pw");
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    a.put("activity", "big", &json!({"notes": "x".repeat(5000)}));
    a.put("activity", "big2", &json!({"notes": "y".repeat(5000)}));
    a.patch("activity", "big", &json!({"later": true}));
    a.put("activity", "small", &json!({"ok": true}));
    let r = a.sync();
    assert_eq!(r.code, 3, "incomplete sync exits 3: {}", r.stderr);
    let failed = a.queue(Some("failed"));
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed[0]["last_error"].as_str().unwrap().contains("payload_too_large"), "{}", failed[0]);
    // The later patch of the failed record waits; other records went through.
    assert_eq!(a.queue(Some("pending")).len(), 1);
    assert_eq!(server_records(&server, "activity").len(), 1);

    // Retry while the server still refuses: fails again, with the reason.
    a.run(&["retry", failed[0]["mutation_id"].as_str().unwrap()]).ok();
    assert_eq!(a.sync().code, 3);
    assert_eq!(a.queue(Some("failed")).len(), 2);

    // Discard one: the record goes back to the server's state (absent).
    a.run(&["discard", failed[1]["mutation_id"].as_str().unwrap()]).ok();
    assert!(a.get("activity", "big2").is_none());

    // The operator raises the limit; retry --all drains the rest in order.
    server.set_args(&[]);
    server.restart();
    a.run(&["retry", "--all"]).ok();
    a.sync().ok();
    let big = server.dump().into_iter().find(|r| r["record_id"] == "big").unwrap();
    assert_eq!(big["data"]["later"], true);
    assert_eq!(big["version"], 2);

    // Bad ids get a message that says what to do.
    let r = a.run(&["discard", "no-such-id"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("ferry queue"), "{}", r.stderr);
}

#[test]
fn errors_from_bad_input_are_clear_and_lose_nothing() {
    let server = server_with_users();
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw-mentor");
    a.put("activity", "keep", &json!({"x": 1}));
    // Exit 2: the command line cannot mean anything (as clap's own errors).
    for (args, needle, code) in [
        (vec!["put", "activity", "x", "{not json"], "not valid JSON", 1),
        (vec!["put", "activity", "x", "[1,2]"], "JSON object", 1),
        (vec!["put", "Bad Entity", "x", "{}"], "entity name", 1),
        (vec!["patch", "activity", "nope", "{}"], "use `put`", 1),
        (vec!["delete", "activity", "nope"], "ferry list activity", 1),
        (vec!["import", "no-such-file.jsonl"], "check the path", 1),
        (vec!["queue", "--state", "weird"], "failed or conflict", 2),
        (vec!["policy", "activity", "yolo"], "lww", 2),
        (vec!["retry"], "--all", 2),
        (vec!["resolve", "c1"], "--keep", 2),
        (vec!["resolve", "c1", "--keep", "both"], "local or remote", 2),
        (vec!["resolve", "c1", "--field", "title"], "NAME=local", 2),
        (vec!["resolve", "nope", "--keep", "local"], "ferry conflicts", 1),
    ] {
        let r = a.run(&args);
        assert_eq!(r.code, code, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    let big = format!("{{\"blob\":\"{}\"}}", "z".repeat(300 * 1024));
    let r = a.run_stdin(&["put", "activity", "huge", "-"], &big);
    assert!(r.stderr.contains("limit"), "{}", r.stderr);
    // A bad import changes nothing.
    let file = a.dir().join("bad.jsonl");
    std::fs::write(&file, "{\"entity\":\"activity\",\"id\":\"i1\",\"data\":{}}\n{\"entity\":\"activity\"}\n").unwrap();
    let r = a.run(&["import", file.to_str().unwrap()]);
    assert!(r.stderr.contains("line 2") && r.stderr.contains("nothing was imported"), "{}", r.stderr);
    assert!(a.get("activity", "i1").is_none());
    assert_eq!(a.status()["pending"], 1);
    a.sync().ok();
}

#[test]
fn server_errors_and_hangs_back_off_on_schedule_and_lose_nothing() {
    let server = server_with_users();
    let proxy = FaultProxy::start(&server.url());
    let mut a = Ferry::new().with_env("FERRY_HTTP_TIMEOUT_SECS", "2");
    a.connect(&proxy.url(), "mentor", "pw-mentor");
    for i in 0..5 {
        a.put("activity", &format!("f{i}"), &json!({"i": i}));
    }
    // 500s: requests over a 10 s window follow the ceilings 1, 2, 4, 8 s
    // (each delay uniform in [0, ceiling]): the first three waits add up to
    // at most 7 s, so at least 4 tries (3 if the daemon starts slowly); more
    // than 9 needs eight waits summing under 10 s (p < 1e-5): never a storm.
    proxy.set(Fault::Status { code: 500, retry_after: None });
    let before = proxy.counts().requests;
    a.start_daemon(&[]);
    std::thread::sleep(Duration::from_secs(10));
    let tries = proxy.counts().requests - before;
    assert!((3..=9).contains(&tries), "{tries} requests in 10 s of 500s");

    // 429 with Retry-After: 3 s is honoured even at the 1 s step.
    a.stop_daemon();
    proxy.set(Fault::Status { code: 429, retry_after: Some(3) });
    a.start_daemon(&[]);
    std::thread::sleep(Duration::from_millis(500));
    let t0 = proxy.counts().requests;
    std::thread::sleep(Duration::from_secs(5));
    let tries = proxy.counts().requests - t0;
    assert!(tries <= 2, "{tries} requests in 5 s with Retry-After: 3");

    // A server that accepts and never answers: the request times out and
    // counts as offline, not as a failure of the data.
    proxy.set(Fault::Hang);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(a.status()["failed"], 0);

    proxy.set(Fault::Pass);
    a.stop_daemon();
    a.sync().ok();
    assert_eq!(server_records(&server, "activity").len(), 5);
    assert_eq!(server.stats()["mutations_applied"], 5);
}

#[test]
fn pending_items_without_progress_turn_the_state_to_stalled() {
    let mut server = server_with_users();
    let mut a = Ferry::new().with_env("FERRY_STALL_AFTER_SECS", "2");
    a.connect(&server.url(), "mentor", "pw-mentor");
    a.sync().ok();
    server.kill();
    a.put("activity", "s1", &json!({"waiting": true}));
    assert_eq!(a.status()["state"], "idle", "fresh changes are not stalled");
    a.start_daemon(&[]);
    wait_for(Duration::from_secs(30), "stalled state", || (a.status()["state"] == "stalled").then_some(()));
    wait_for(Duration::from_secs(10), "stalled event", || a.daemon_log().contains("Stalled").then_some(()));
    server.restart();
    a.stop_daemon();
    a.sync().ok();
    assert_eq!(a.status()["state"], "idle");
}

/// While a push is out, its mutations are *in flight* for every process
/// (`queue --state in-flight`); a push that times out leaves them pending
/// with the attempt counted and no made-up next attempt time; a process
/// killed mid-push leaves marks the next process clears (the next push, if
/// the sync lock cannot be used).
#[test]
fn queue_shows_mutations_in_flight_while_a_push_is_out() {
    let server = server_with_users();
    let proxy = FaultProxy::start(&server.url());
    let a = Ferry::new().with_env("FERRY_HTTP_TIMEOUT_SECS", "3");
    a.connect(&proxy.url(), "mentor", "pw-mentor");
    for i in 0..3 {
        a.put("activity", &format!("f{i}"), &json!({"i": i}));
    }
    // Pushes hang; everything else (the clock probe, sign-in) passes.
    proxy.set_chooser(
        |path| if path.starts_with("/v1/push") { Fault::HangFor(Duration::from_secs(6)) } else { Fault::Pass },
    );
    let in_flight = |f: &Ferry| f.queue(Some("in-flight")).len();
    let spawn_sync = || {
        a.command().arg("sync").stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap()
    };

    let sync = spawn_sync();
    wait_for(Duration::from_secs(20), "the batch in flight", || (in_flight(&a) == 3).then_some(()));
    let s = a.status();
    assert_eq!(
        (s["pending"].as_u64(), s["in_flight"].as_u64()),
        (Some(0), Some(3)),
        "another process sees them in flight: {s}"
    );
    let status = sync.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(5), "a push that times out is offline");
    assert_eq!(in_flight(&a), 0);
    for q in a.queue(Some("pending")) {
        assert_eq!(q["attempts"], 1, "{q}");
        assert_eq!(q["next_attempt_at"], Value::Null, "no retry is scheduled by a one-off sync: {q}");
    }

    // Killed mid-push: the next process finds no sync running and clears the marks.
    let mut sync = spawn_sync();
    wait_for(Duration::from_secs(20), "the batch in flight", || (in_flight(&a) == 3).then_some(()));
    sync.kill().unwrap();
    sync.wait().unwrap();
    assert_eq!(in_flight(&a), 0);
    assert_eq!(a.queue(Some("pending")).len(), 3);

    // Killed mid-push where the sync lock cannot be used at all (a
    // directory in its place): no process can tell that no push is running,
    // so the marks stay until the next push, which resets them rather than
    // leave the rows stranded.
    let mut sync = spawn_sync();
    wait_for(Duration::from_secs(20), "the batch in flight", || (in_flight(&a) == 3).then_some(()));
    sync.kill().unwrap();
    sync.wait().unwrap();
    let lock = a.data_dir().join("sync.lock");
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    assert_eq!(in_flight(&a), 3);

    proxy.clear_chooser();
    a.sync().ok();
    assert_eq!(server_records(&server, "activity").len(), 3);
    assert_eq!(server.stats()["mutations_applied"], 3);
}

/// A client does not pull its own changes back when nothing else changed
/// since its cursor, but another client's change in between is never
/// skipped: clients taking turns, in batches of one, end up identical.
#[test]
fn own_changes_skip_the_pull_but_others_changes_are_never_skipped() {
    let server = server_with_users();
    let a = Ferry::new().with_env("FERRY_BATCH_MAX", "1");
    let b = Ferry::new().with_env("FERRY_BATCH_MAX", "1");
    a.connect(&server.url(), "mentor", "pw-mentor");
    b.connect(&server.url(), "coordinator", "pw-coord");
    for round in 0..6 {
        for i in 0..3 {
            a.put("activity", &format!("a{round}-{i}"), &json!({"by": "a", "round": round}));
        }
        a.sync().ok();
        b.sync().ok();
        b.put("activity", &format!("b{round}"), &json!({"by": "b", "round": round}));
        if round % 2 == 0 {
            // b edits one of a's records, so a must pull an update of a
            // record it pushed itself.
            b.patch("activity", &format!("a{round}-0"), &json!({"seen_by_b": true}));
        }
        b.sync().ok();
    }
    a.sync().ok();
    b.sync().ok();
    let on_server = server_records(&server, "activity").len();
    assert_eq!(on_server, 6 * 4);
    assert_eq!(sorted_list(&a, "activity"), sorted_list(&b, "activity"));
    assert_eq!(sorted_list(&a, "activity").len(), on_server);
    assert_eq!(a.get("activity", "a4-0").unwrap()["seen_by_b"], true, "b's edit of a's record reached a");
}
