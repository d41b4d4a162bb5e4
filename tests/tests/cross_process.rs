//! A running daemon follows what the CLI changes in the same data dir from
//! another process: a new sign-in, resume after pause, sign-out.

use std::time::Duration;

use ferry_e2e::ferry::{wait_for, Ferry};
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

fn applied(server: &TestServer) -> u64 {
    server.stats()["mutations_applied"].as_u64().unwrap()
}

/// A long pull interval, so only a wake-up (never the timer) can explain
/// an upload within the test's waits.
const SLOW_PULL: (&str, &str) = ("FERRY_PULL_INTERVAL_SECS", "300");

#[test]
fn a_login_from_another_process_gets_the_daemon_uploading_again() {
    let server = TestServer::start_with(&["--access-token-ttl", "1"]);
    server.add_user("mentor", "org1", "pw");
    let mut a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    a.start_daemon(&[SLOW_PULL]);
    // The session is revoked on the server (say, signed out elsewhere); once
    // the access token has expired the daemon cannot renew it.
    let revoked = server.client().logout(a.stored_tokens()["refresh_token"].as_str().unwrap());
    assert_eq!(revoked.status, 204);
    std::thread::sleep(Duration::from_millis(2100));
    a.put("activity", "x1", &json!({"n": 1}));
    wait_for(Duration::from_secs(10), "the daemon to need a sign-in", || {
        (a.status()["state"] == "needs-sign-in").then_some(())
    });

    a.login("mentor", "pw").ok();
    let s = a.status();
    assert_ne!(s["state"], "needs-sign-in", "{s}");
    assert_eq!(s["last_error"], Value::Null, "no stale sign-in message after login: {s}");
    a.put("activity", "y2", &json!({"n": 2}));
    wait_for(Duration::from_secs(10), "the daemon to upload both changes", || (applied(&server) == 2).then_some(()));
    wait_for(Duration::from_secs(5), "an idle, empty status", || {
        let s = a.status();
        (s["state"] == "idle" && s["pending"] == 0).then_some(())
    });
    a.stop_daemon();
    assert!(a.daemon_log().contains("NeedsSignIn"), "the daemon did need the sign-in:\n{}", a.daemon_log());
}

#[test]
fn resume_from_another_process_gets_the_paused_daemon_uploading() {
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw");
    let mut a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    a.start_daemon(&[SLOW_PULL]);
    a.run(&["pause"]).ok();
    a.put("activity", "p1", &json!({"n": 1}));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(applied(&server), 0, "paused: nothing goes up");
    assert_eq!(a.status()["state"], "paused");

    a.run(&["resume"]).ok();
    wait_for(Duration::from_secs(10), "the daemon to upload after resume", || (applied(&server) == 1).then_some(()));
    a.stop_daemon();
}

#[test]
fn after_logout_the_status_says_signed_out_not_sign_in_needed() {
    let server = TestServer::start_with(&["--access-token-ttl", "1", "--refresh-token-ttl", "1"]);
    server.add_user("mentor", "org1", "pw");
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    std::thread::sleep(Duration::from_millis(2100));
    a.put("activity", "q1", &json!({"n": 1}));
    assert_eq!(a.sync().code, 4);
    assert_eq!(a.status()["state"], "needs-sign-in");

    a.run(&["logout"]).ok();
    let s = a.status();
    assert_ne!(s["state"], "needs-sign-in", "{s}");
    assert_eq!(s["user"], Value::Null, "{s}");
    assert_eq!(s["last_error"], Value::Null, "{s}");
    assert_eq!(s["pending"], 1, "the queue is kept: {s}");
}
