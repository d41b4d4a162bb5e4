//! One refresh for everybody who needs it: many tasks of one process, and
//! two processes on two data dirs of one account; a 401 costs exactly one
//! refresh; a renewed sign-in the token store refuses is kept in memory.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use ferry_e2e::ferry::{stored_tokens, wait_for, Ferry};
use ferry_e2e::server::TestServer;
use ferry_engine::auth::{Session, TokenStoreChoice};
use ferry_engine::clock::ServerClock;
use ferry_engine::transport::Transport;
use serde_json::{json, Value};

// Access tokens live 2 s, not 1: `exp` is whole seconds, so a 1-second
// token issued late in a second is already expiring when it arrives, and a
// second refresh would be right, not a failure to share one.

/// "token refreshed" lines the server logged since it last started.
fn refreshes(server: &TestServer) -> usize {
    let log = server.log();
    let since_start = log.rsplit("---- starting ferry-server").next().unwrap_or_default();
    since_start.matches("token refreshed").count()
}

/// Makes the token file's atomic replace fail: its temporary file's name is
/// taken by a directory. (Tests run as root, so permissions cannot.)
fn break_saves(token_file: &std::path::Path) -> std::path::PathBuf {
    let blocker = token_file.with_extension("tmp");
    std::fs::create_dir(&blocker).unwrap();
    blocker
}

#[test]
fn many_tasks_share_one_refresh() {
    let server = TestServer::start_with(&["--access-token-ttl", "2"]);
    server.add_user("mentor", "org1", "pw");
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let clock = Arc::new(ServerClock::new(None));
        let transport = Arc::new(Transport::new(&server.url()));
        let session =
            Arc::new(Session::new(&TokenStoreChoice::File(dir.path().join("tokens.json")), "mentor", &server.url()));
        session.save_login(&transport.login("mentor", "pw", &clock).await.unwrap()).unwrap();
        tokio::time::sleep(Duration::from_millis(2200)).await; // expired
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (session, transport, clock) = (session.clone(), transport.clone(), clock.clone());
                tokio::spawn(async move { session.access_token(&transport, &clock).await })
            })
            .collect();
        let mut tokens = Vec::new();
        for t in tasks {
            tokens.push(t.await.unwrap().expect("a token"));
        }
        tokens.dedup();
        assert_eq!(tokens.len(), 1, "every task got the one renewed token");
    });
    assert_eq!(refreshes(&server), 1, "one refresh for 16 tasks:\n{}", server.log());
}

#[test]
fn two_processes_on_two_data_dirs_of_one_account_share_one_refresh() {
    let server = TestServer::start_with(&["--access-token-ttl", "2"]);
    server.add_user("mentor", "org1", "pw");
    let shared = tempfile::tempdir().unwrap();
    let token_file = shared.path().join("tokens.json");
    let file = token_file.to_str().unwrap();
    let a = Ferry::new().with_env("FERRY_TOKEN_FILE", file);
    let b = Ferry::new().with_env("FERRY_TOKEN_FILE", file);
    a.connect(&server.url(), "mentor", "pw");
    b.connect(&server.url(), "mentor", "pw"); // the account's entry: b's sign-in
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(2200)); // expired
        a.put("activity", &format!("a{round}"), &json!({"round": round}));
        b.put("activity", &format!("b{round}"), &json!({"round": round}));
        let before = refreshes(&server);
        let syncs: Vec<_> = [&a, &b]
            .iter()
            .map(|f| f.command().arg("sync").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
            .collect();
        for s in syncs {
            let out = s.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(refreshes(&server) - before, 1, "round {round}: one refresh for both:\n{}", server.log());
    }
    assert_eq!(server.stats()["mutations_applied"], 6);
    assert!(!server.log().contains("reuse"), "{}", server.log());
}

#[test]
fn a_refused_access_token_costs_exactly_one_refresh() {
    let mut server = TestServer::start(); // 15-minute access tokens
    server.add_user("mentor", "org1", "pw");
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    a.put("activity", "a1", &json!({"n": 1}));
    a.sync().ok();
    let before = a.stored_tokens();

    // A new signing secret: every access token issued so far is refused,
    // although none has expired.
    rotate_signing_secret(&mut server);
    a.put("activity", "a2", &json!({"n": 2}));
    a.sync().ok();
    assert_eq!(refreshes(&server), 1, "{}", server.log());
    let after = a.stored_tokens();
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(after["refresh_token"], before["refresh_token"], "the rotated refresh token is saved");
    assert_eq!(server.stats()["mutations_applied"], 2);
    a.put("activity", "a3", &json!({"n": 3}));
    a.sync().ok();
    assert_eq!(refreshes(&server), 1, "the renewed token is used from then on");
}

fn rotate_signing_secret(server: &mut TestServer) {
    server.kill();
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    db.execute("DELETE FROM meta WHERE key = 'jwt_secret'", []).unwrap();
    drop(db);
    server.restart(); // makes a new secret
}

#[test]
fn the_daemon_rides_through_a_401_and_expiries() {
    let mut server = TestServer::start_with(&["--access-token-ttl", "30"]);
    server.add_user("mentor", "org1", "pw");
    let mut a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    a.start_daemon(&[("FERRY_PULL_INTERVAL_SECS", "1")]);
    let applied = |server: &TestServer, n: u64| {
        wait_for(Duration::from_secs(20), &format!("{n} applied"), || {
            (server.stats()["mutations_applied"] == n).then_some(())
        })
    };
    a.put("activity", "d0", &json!({"i": 0}));
    applied(&server, 1);
    // The daemon holds a 30-second token; the restarted server refuses it.
    server.set_args(&["--access-token-ttl", "2"]);
    rotate_signing_secret(&mut server);
    a.put("activity", "d1", &json!({"i": 1}));
    applied(&server, 2);
    // Then 2-second tokens expire between writes.
    for i in 2..5 {
        std::thread::sleep(Duration::from_millis(2500));
        a.put("activity", &format!("d{i}"), &json!({"i": i}));
        applied(&server, i + 1);
    }
    a.stop_daemon();
    let log = a.daemon_log();
    assert!(log.contains("refused the access token"), "a 401 was forced:\n{log}");
    assert!(refreshes(&server) >= 3, "renewed across expiries:\n{}", server.log());
    assert_ne!(a.status()["state"], "needs-sign-in");
    assert!(!log.contains("NeedsSignIn"), "{log}");
}

#[test]
fn a_renewed_sign_in_the_store_refuses_is_kept_in_memory_and_saved_later() {
    let server = TestServer::start_with(&["--access-token-ttl", "2"]);
    server.add_user("mentor", "org1", "pw");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("tokens.json");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let clock = ServerClock::new(None);
        let transport = Transport::new(&server.url());
        let session = Session::new(&TokenStoreChoice::File(token_file.clone()), "mentor", &server.url());
        session.save_login(&transport.login("mentor", "pw", &clock).await.unwrap()).unwrap();
        let first = stored_tokens(&token_file);
        let blocker = break_saves(&token_file);

        // Two refreshes while the store refuses: the second must use the
        // token the first got, not the spent one still in the file.
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_millis(2200)).await;
            session.access_token(&transport, &clock).await.expect("renewed despite the store");
        }
        assert_eq!(stored_tokens(&token_file), first, "the store did refuse");
        assert_eq!(refreshes(&server), 2);

        std::fs::remove_dir(&blocker).unwrap();
        let token = session.access_token(&transport, &clock).await.unwrap();
        let saved = stored_tokens(&token_file);
        assert_eq!(saved["access_token"], token.as_str(), "saved once the store works again");
        assert_ne!(saved["refresh_token"], first["refresh_token"]);
    });
    assert!(!server.log().contains("reuse"), "{}", server.log());
}

#[test]
fn a_sign_in_that_cannot_be_saved_is_revoked_on_the_server() {
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw");
    let a = Ferry::new();
    a.run(&["init", "--server", &server.url()]).ok();
    break_saves(&a.token_file());
    let r = a.login("mentor", "pw");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("was revoked again") && r.stderr.contains("ferry login"), "{}", r.stderr);
    assert_eq!(a.status()["user"], Value::Null, "no half sign-in recorded");
    let db = rusqlite::Connection::open(server.db_path()).unwrap();
    let live: i64 = db.query_row("SELECT count(*) FROM refresh_tokens WHERE revoked = 0", [], |r| r.get(0)).unwrap();
    assert_eq!(live, 0, "the session the server issued is revoked");
}
