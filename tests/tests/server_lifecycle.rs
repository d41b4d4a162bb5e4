//! Process lifecycle and the operator CLI.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_e2e::bin_path;
use ferry_e2e::server::{run_cli, upsert, TestDb, TestServer};
use ferry_protocol::{Mutation, Outcome, PushRequest, PushResponse};
use serde_json::json;

#[test]
fn sigterm_stops_cleanly_with_exit_code_0_and_data_survives() {
    let mut server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    client.push(&[upsert("note", "n1", 0, json!({"a": 1}))]);
    let status = server.terminate();
    assert!(status.success(), "exit status {status}; log:\n{}", server.log());
    assert!(!server.is_running());
    assert_eq!(server.stats()["records"]["note"], 1);

    server.restart();
    let again = server.login("ann", "pw");
    assert_eq!(again.get("/v1/records/note/n1").body["data"]["a"], 1);
    // SIGINT (Ctrl-C) stops it the same way.
    let status = server.stop_with_signal("INT");
    assert!(status.success(), "exit status {status}; log:\n{}", server.log());
    assert!(server.log().contains("SIGINT"));
}

#[test]
fn user_add_validates_its_input() {
    let test_db = TestDb::new();
    let db = test_db.arg();
    let ok = run_cli(db, &["user", "add", "ann", "--org", "red", "--password-stdin"], Some("pw\n"));
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    let cases: [(&[&str], Option<&str>); 5] = [
        (&["user", "add", "ann", "--password-stdin"], Some("pw")),
        (&["user", "add", "bob", "--password-stdin"], Some("")),
        (&["user", "add", "bob", "--password-stdin"], Some("\n")),
        (&["user", "add", "bob"], Some("pw")),
        (&["user", "add", "bad\tname", "--password-stdin"], Some("pw")),
    ];
    for (args, stdin) in cases {
        let out = run_cli(db, args, stdin);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
    // The trailing newline was trimmed: "pw" signs in, "pw\n" does not;
    // the default organisation is "default".
    let server = TestServer::start();
    server.add_user("carl", "default", "pw");
    let out = run_cli(server.db_arg(), &["user", "add", "dora", "--password-stdin"], Some("pw\n"));
    assert!(out.status.success());
    let client = server.client();
    let ok = client.try_login("dora", "pw");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["org"], "default");
    client.try_login("dora", "pw\n").assert_error(401, "invalid_credentials");
}

#[test]
fn stats_and_dump_cli() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    let fresh = server.stats();
    assert_eq!(
        fresh,
        json!({"records": {}, "tombstones": 0, "mutations_applied": 0, "distinct_applied_ids": 0,
               "mutations_duplicate": 0, "conflicts": 0, "rejected": 0})
    );
    client.push(&[
        upsert("note", "b", 0, json!({"x": 1})),
        upsert("note", "a", 0, json!({"x": 2})),
        upsert("activity", "z", 0, json!({})),
        ferry_e2e::server::delete("activity", "z", 1),
    ]);
    let stats = server.stats();
    assert_eq!(stats["records"], json!({"note": 2}));
    assert_eq!(stats["tombstones"], 1);
    assert_eq!(stats["mutations_applied"], 4);

    let dump = server.dump();
    let ids: Vec<_> = dump.iter().map(|r| r["record_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["z", "a", "b"], "sorted by org, entity, record id");
    assert!(dump.iter().all(|r| r["org"] == "red"));
    assert_eq!(dump[0]["deleted"], true);

    // Human output, global flags after the subcommand, and the env variable.
    let human = std::process::Command::new(bin_path("ferry-server"))
        .args(["stats", "--db"])
        .arg(server.db_arg())
        .output()
        .unwrap();
    assert!(human.status.success());
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(text.contains("note: 2") && text.contains("tombstones: 1"), "{text}");
    let via_env = std::process::Command::new(bin_path("ferry-server"))
        .args(["stats", "--json"])
        .env("FERRY_SERVER_DB", server.db_arg())
        .output()
        .unwrap();
    assert!(via_env.status.success());
    let parsed: serde_json::Value = serde_json::from_slice(&via_env.stdout).unwrap();
    assert_eq!(parsed, stats);

    // A mistyped path is an error, not an empty database.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    let out = run_cli(&missing, &["stats", "--json"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"));
    assert!(!missing.exists());
}

#[test]
fn listen_on_port_0_prints_the_real_port() {
    let db = TestDb::new();
    let mut child = std::process::Command::new(bin_path("ferry-server"))
        .arg("--db")
        .arg(db.arg())
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let url = line.trim().strip_prefix("listening on http://127.0.0.1:").expect(&line);
    let port: u16 = url.parse().unwrap();
    assert_ne!(port, 0);
}

/// Stderr of a failed `ferry-server` run: one line saying what is wrong and
/// what to do, never a Debug dump or a backtrace (even when asked for one).
#[track_caller]
fn assert_one_line_error(out: &std::process::Output, needles: &[&str]) {
    assert!(!out.status.success(), "should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr.lines().last().unwrap_or_default();
    assert!(message.starts_with("ferry-server: "), "{stderr}");
    for needle in needles {
        assert!(message.contains(needle), "{needle:?} missing in: {stderr}");
    }
    for noise in ["Error: ", "backtrace", "Caused by", "stack"] {
        assert!(!stderr.contains(noise), "{noise:?} in: {stderr}");
    }
}

#[test]
fn operator_mistakes_get_one_line_with_a_hint() {
    let test_db = TestDb::new();
    let db = test_db.arg();
    let add_ann = || {
        let mut child = Command::new(bin_path("ferry-server"))
            .arg("--db")
            .arg(db)
            .args(["user", "add", "ann", "--password-stdin"])
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"pw").unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(add_ann().status.success());
    assert_one_line_error(&add_ann(), &["user \"ann\" already exists", "another name"]);

    // The port is taken by someone else.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(bin_path("ferry-server"))
        .arg("--db")
        .arg(db)
        .args(["--listen", &addr, "serve"])
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_one_line_error(&out, &[&addr, "in use", "--listen"]);
}

/// 1000 mutations of ~4 KB: a request the server needs a while to read,
/// check and apply.
fn large_batch() -> Vec<Mutation> {
    let filler = "x".repeat(4000);
    (0..1000).map(|i| upsert("note", &format!("n{i}"), 0, json!({"i": i, "filler": filler}))).collect()
}

#[test]
fn sigterm_during_a_large_push_applies_all_of_it_or_none() {
    let mut server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    let batch = large_batch();
    let body = serde_json::to_vec(&PushRequest { mutations: batch.clone(), database: None }).unwrap();
    let (url, token) = (format!("{}/v1/push", server.url()), client.access_token().to_owned());
    let answered = Arc::new(AtomicBool::new(false));
    let sender = {
        let answered = answered.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = reqwest::blocking::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.json::<PushResponse>());
            answered.store(true, Ordering::SeqCst);
            (reply, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let in_flight = !answered.load(Ordering::SeqCst);
    let status = server.terminate();
    assert!(status.success(), "exit status {status}; log:\n{}", server.log());
    let (reply, took) = sender.join().unwrap();
    assert!(in_flight, "the push was answered before SIGTERM ({took:?}); the test did not test shutdown");
    // This server drains: a request it accepted is finished and answered.
    assert!(reply.is_ok(), "no answer to the in-flight push: {reply:?}; log:\n{}", server.log());

    let stats = server.stats();
    let applied = stats["mutations_applied"].as_u64().unwrap();
    assert!(applied == 0 || applied == 1000, "half-applied batch: {stats}");
    assert_eq!(stats["records"]["note"].as_u64().unwrap_or(0), applied, "{stats}");
    if let Ok(answer) = &reply {
        // An answer means the batch committed, all of it.
        assert_eq!(applied, 1000, "{stats}");
        assert!(answer.results.iter().all(|r| matches!(r.outcome, Outcome::Applied { .. })));
    }

    // The client re-sends after the restart: exactly once, whatever happened.
    server.restart();
    let again = server.login("ann", "pw").push(&batch);
    let duplicates = again.results.iter().filter(|r| matches!(r.outcome, Outcome::Duplicate { .. })).count() as u64;
    let fresh = again.results.iter().filter(|r| matches!(r.outcome, Outcome::Applied { .. })).count() as u64;
    assert_eq!((duplicates, fresh), (applied, 1000 - applied));
    let stats = server.stats();
    assert_eq!(stats["mutations_applied"], 1000, "{stats}");
    assert_eq!(stats["distinct_applied_ids"], 1000, "nothing applied twice: {stats}");
    assert_eq!(stats["mutations_duplicate"].as_u64().unwrap(), applied, "{stats}");
    assert_eq!(stats["records"]["note"], 1000, "{stats}");
}
