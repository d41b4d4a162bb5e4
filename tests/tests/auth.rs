//! Staying signed in: token refresh across many expiries, revoked and expired
//! refresh tokens, secrets kept out of files and logs, the OS keyring.

use std::time::Duration;

use ferry_e2e::ferry::Ferry;
use ferry_e2e::proxy::{Fault, FaultProxy};
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

fn tokens(f: &Ferry) -> (String, String) {
    let t = f.stored_tokens();
    (t["access_token"].as_str().unwrap().into(), t["refresh_token"].as_str().unwrap().into())
}

#[test]
fn sync_keeps_working_across_many_access_token_expiries() {
    let server = TestServer::start_with(&["--access-token-ttl", "2"]);
    server.add_user("mentor", "org1", "pw");
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    let (first_access, first_refresh) = tokens(&a);
    for i in 0..5 {
        a.put("activity", &format!("t{i}"), &json!({"i": i}));
        a.sync().ok();
        std::thread::sleep(Duration::from_millis(2300)); // past the expiry
    }
    let (access, refresh) = tokens(&a);
    assert_ne!(access, first_access, "the access token was renewed");
    assert_ne!(refresh, first_refresh, "the refresh token rotated");
    assert_eq!(server.stats()["mutations_applied"], 5);
}

#[test]
fn reused_refresh_token_means_sign_in_again_with_the_queue_intact() {
    let server = TestServer::start_with(&["--access-token-ttl", "2"]);
    server.add_user("mentor", "org1", "pw");
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    let (_, refresh) = tokens(&a);
    // Someone else steals the refresh token and rotates on with it; when
    // this client then presents its (now used) token, the server sees the
    // replay and revokes the whole family.
    let http = reqwest::blocking::Client::new();
    let stolen: Value = http
        .post(format!("{}/v1/auth/refresh", server.url()))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rotated = http
        .post(format!("{}/v1/auth/refresh", server.url()))
        .json(&json!({"refresh_token": stolen["refresh_token"]}))
        .send()
        .unwrap();
    assert_eq!(rotated.status(), 200);
    std::thread::sleep(Duration::from_millis(2500));
    a.put("activity", "q1", &json!({"queued": true}));
    let r = a.sync();
    assert_eq!(r.code, 4, "sign-in needed exits 4: {}", r.stderr);
    assert!(r.stderr.contains("ferry login"), "{}", r.stderr);
    let s = a.status();
    assert_eq!(s["state"], "needs-sign-in");
    assert_eq!(s["pending"], 1);

    a.login("mentor", "pw").ok();
    a.sync().ok();
    assert_eq!(a.status()["pending"], 0);
    assert_eq!(a.status()["state"], "idle");
    assert!(server.dump().iter().any(|r| r["record_id"] == "q1"));
}

#[test]
fn a_lost_refresh_answer_costs_no_sign_in() {
    let server = TestServer::start_with(&["--access-token-ttl", "1"]);
    server.add_user("mentor", "org1", "pw");
    let proxy = FaultProxy::start(&server.url());
    let a = Ferry::new();
    a.connect(&proxy.url(), "mentor", "pw");
    // The server rotates the refresh token, but its answer is lost.
    let mut refreshes = 0;
    proxy.set_chooser(move |path| {
        if path.starts_with("/v1/auth/refresh") {
            refreshes += 1;
            if refreshes == 1 {
                return Fault::ResetAfterRequest;
            }
        }
        Fault::Pass
    });
    std::thread::sleep(Duration::from_millis(2500)); // the access token expired
    a.put("activity", "lost1", &json!({"n": 1}));
    // The client retries the refresh at once with the same token, and the
    // server accepts it within its grace window: this one sync succeeds.
    a.sync().ok();
    let s = a.status();
    assert_eq!(s["state"], "idle", "{s}");
    assert_eq!(s["pending"], 0);
    assert_eq!(server.stats()["mutations_applied"], 1);
    let resets = proxy.log().iter().filter(|(_, _, f)| f.contains("ResetAfterRequest")).count();
    assert_eq!(resets, 1, "the first refresh answer was lost");
    assert!(!server.log().contains("reuse"), "no reuse detected:\n{}", server.log());
}

#[test]
fn long_offline_past_the_refresh_lifetime_asks_for_one_sign_in_and_loses_nothing() {
    let mut server = TestServer::start_with(&["--access-token-ttl", "1", "--refresh-token-ttl", "3"]);
    server.add_user("mentor", "org1", "pw");
    let a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    server.kill();
    for i in 0..10 {
        a.put("expense", &format!("e{i}"), &json!({"amount": i}));
    }
    std::thread::sleep(Duration::from_secs(4));
    server.restart();
    let r = a.sync();
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(a.status()["pending"], 10);
    a.login("mentor", "pw").ok();
    a.sync().ok();
    assert_eq!(server.stats()["mutations_applied"], 10);
}

#[test]
fn no_token_in_the_data_dir_or_any_log() {
    let server = TestServer::start_with(&["--access-token-ttl", "2"]);
    server.add_user("mentor", "org1", "pw-secret-123");
    let mut a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw-secret-123");
    let mut seen = vec![tokens(&a)];
    a.start_daemon(&[("FERRY_LOG", "trace"), ("FERRY_PULL_INTERVAL_SECS", "1")]);
    for i in 0..3 {
        a.put("activity", &format!("s{i}"), &json!({"i": i}));
        std::thread::sleep(Duration::from_millis(2200));
        seen.push(tokens(&a));
    }
    a.stop_daemon();
    let mut haystacks: Vec<(String, Vec<u8>)> =
        vec![("daemon log".into(), a.daemon_log().into_bytes()), ("server log".into(), server.log().into_bytes())];
    // Every file, in folders too (the daemon's own log file is in logs/).
    let mut dirs = vec![a.data_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                haystacks.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    assert!(haystacks.iter().any(|(name, _)| name.contains("/logs/ferry.log.")), "the daemon's log file is read too");
    for (name, bytes) in &haystacks {
        let text = String::from_utf8_lossy(bytes);
        for (access, refresh) in &seen {
            assert!(!text.contains(access.as_str()), "access token found in {name}");
            assert!(!text.contains(refresh.as_str()), "refresh token found in {name}");
        }
        assert!(!text.contains("pw-secret-123"), "password found in {name}");
    }
    let status = a.run(&["status", "--json"]).ok().stdout;
    assert!(!seen.iter().any(|(x, r)| status.contains(x.as_str()) || status.contains(r.as_str())));
}

/// Against the real Secret Service (gnome-keyring under dbus-run-session in
/// CI). Where none runs, this says so and passes unless
/// FERRY_REQUIRE_KEYRING=1 demands it.
#[test]
fn tokens_live_in_the_os_keyring() {
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw");
    let probe = Ferry::new().with_keyring();
    probe.run(&["init", "--server", &server.url()]).ok();
    let r = probe.login("mentor", "pw");
    if r.code != 0 {
        assert!(
            r.stderr.contains("--token-file"),
            "without a keyring the error must offer the alternative: {}",
            r.stderr
        );
        if std::env::var("FERRY_REQUIRE_KEYRING").as_deref() == Ok("1") {
            panic!("FERRY_REQUIRE_KEYRING=1 but the keyring is unusable: {}", r.stderr);
        }
        eprintln!("no Secret Service here; keyring round trip not exercised: {}", r.stderr.trim());
        return;
    }
    probe.put("activity", "k1", &json!({"k": 1}));
    probe.sync().ok();
    assert!(!probe.token_file().exists(), "no token file when the keyring is used");
    probe.run(&["logout"]).ok();
    let r = probe.sync();
    assert_eq!(r.code, 4, "signed out: {}", r.stderr);
}

#[test]
fn without_a_secret_service_login_says_what_to_do() {
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw");
    let f = Ferry::new().with_keyring().with_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/ferry-test-bus");
    f.run(&["init", "--server", &server.url()]).ok();
    let r = f.login("mentor", "pw");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("--token-file") && r.stderr.contains("FERRY_TOKEN_FILE"), "{}", r.stderr);
    assert_eq!(f.status()["user"], Value::Null, "no half sign-in recorded");
}

/// A data dir holds one account's work. A user of another organisation is
/// refused while it holds anything of the first one's, another user of the
/// same organisation while changes wait to be uploaded: nothing goes up
/// under the wrong name or into the wrong organisation.
#[test]
fn another_account_cannot_take_over_someone_elses_data_dir() {
    let server = TestServer::start();
    server.add_user("alice", "org1", "pw1");
    server.add_user("bob", "org1", "pw2");
    server.add_user("eve", "org2", "pw3");
    let a = Ferry::new();
    a.connect(&server.url(), "alice", "pw1");
    a.put("activity", "secret1", &json!({"t": "alice's"}));
    a.run(&["logout"]).ok();
    let login = |user: &str, pw: &str| a.login(user, pw);

    let r = login("eve", "pw3");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("organisation org1") && r.stderr.contains("another data dir"), "{}", r.stderr);
    let r = login("bob", "pw2");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("by alice not uploaded yet"), "{}", r.stderr);
    assert_ne!(a.sync().code, 0, "nobody is signed in");
    assert!(server.dump().is_empty(), "nothing uploaded: {:?}", server.dump());
    assert_eq!(a.queue(None).len(), 1, "alice's change still queued");

    // alice uploads her change under her name; then bob may sign in here,
    // over her sign-in.
    login("alice", "pw1").ok();
    a.sync().ok();
    login("bob", "pw2").ok();
    a.put("activity", "b1", &json!({"t": "bob's"}));
    a.sync().ok();
    let by: Vec<(String, String, String)> = server
        .dump()
        .iter()
        .map(|r| {
            (
                r["record_id"].as_str().unwrap().into(),
                r["org"].as_str().unwrap().into(),
                r["edited_by"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        by,
        vec![("b1".into(), "org1".into(), "bob".into()), ("secret1".into(), "org1".into(), "alice".into())],
        "each change under its author's name, in org1"
    );

    // Still org1's records here: eve stays out, also where the data dir
    // does not know whose it was (made before that was kept).
    a.run(&["logout"]).ok();
    assert_eq!(login("eve", "pw3").code, 1);
    let db = rusqlite::Connection::open(a.data_dir().join("ferry.db")).unwrap();
    db.execute("DELETE FROM settings WHERE key = 'account'", []).unwrap();
    drop(db);
    assert_eq!(login("eve", "pw3").code, 1);
}

/// Offline work made against a mistyped server moves with its author to the
/// right one (organisations are each server's own), and nobody else can
/// take it there.
#[test]
fn offline_work_follows_its_author_to_the_corrected_server() {
    let server = TestServer::start();
    server.add_user("alice", "acme", "pw1");
    server.add_user("bob", "acme", "pw2");
    let typo = TestServer::start();
    typo.add_user("alice", "other-org", "pw1");
    let a = Ferry::new();
    a.connect(&typo.url(), "alice", "pw1");
    a.put("activity", "v1", &json!({"minutes": 30}));
    a.run(&["logout"]).ok();
    a.run(&["init", "--server", &server.url()]).ok();
    let login = |user: &str, pw: &str| a.login(user, pw);
    let r = login("bob", "pw2");
    assert_eq!(r.code, 1, "alice's queued change is not bob's to upload: {r:?}");
    login("alice", "pw1").ok();
    a.sync().ok();
    let d = server.dump();
    assert_eq!((d.len(), d[0]["org"].as_str(), d[0]["edited_by"].as_str()), (1, Some("acme"), Some("alice")), "{d:?}");
    assert!(typo.dump().is_empty());
}
