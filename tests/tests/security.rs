//! Safe on the internet: HTTPS with a private CA and certificate renewal,
//! plain HTTP refused before anything leaves, login throttling shared by
//! every node, and offboarding (disable, enable, passwd, remove) that ends
//! sessions at once while the volunteer's queue stays.
//!
//! Real `ferry-server` and `ferry` processes, certificates made by rcgen;
//! every test runs on the backend `FERRY_TEST_BACKEND` names.

use std::io::Read;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferry_e2e::ferry::{wait_for, Ferry};
use ferry_e2e::server::{upsert, TestDb, TestServer};
use ferry_e2e::tls::TestCa;
use ferry_protocol::TokenResponse;
use serde_json::json;

fn ferry_with_ca(server: &TestServer, ca_file: &std::path::Path, user: &str, password: &str) -> Ferry {
    let f = Ferry::new();
    f.run(&["init", "--server", &server.url(), "--ca-cert", ca_file.to_str().unwrap()]).ok();
    f.login(user, password).ok();
    f
}

#[test]
fn clients_sync_over_https_trusting_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Chapter CA");
    let cert = ca.issue(dir.path(), "server");
    let server = TestServer::start_https(Arc::new(TestDb::new()), &cert, &ca);
    assert!(server.url().starts_with("https://"), "{}", server.url());
    server.add_user("ann", "red", "pw");
    server.add_user("bob", "red", "pw");

    let ca_file = ca.write_pem(&dir.path().join("ca.pem"));
    let a = ferry_with_ca(&server, &ca_file, "ann", "pw");
    // The CA is kept with the server setting: the file may go away.
    std::fs::remove_file(&ca_file).unwrap();
    a.put("activity", "act-1", &json!({"title": "Walk and talk"}));
    a.sync().ok();

    let ca_file = ca.write_pem(&dir.path().join("ca-again.pem"));
    let b = ferry_with_ca(&server, &ca_file, "bob", "pw");
    b.sync().ok();
    assert_eq!(b.get("activity", "act-1").unwrap()["title"], "Walk and talk");

    // Without the CA the server's certificate is not trusted: nothing is
    // sent, and what is queued stays queued.
    let c = Ferry::new();
    c.run(&["init", "--server", &server.url()]).ok();
    let login = c.login("ann", "pw");
    assert_ne!(login.code, 0, "a certificate nobody vouches for must not be accepted");
    assert!(login.stderr.to_lowercase().contains("certificate"), "{}", login.stderr);
    c.put("activity", "act-2", &json!({"title": "queued"}));
    assert_eq!(c.status()["pending"], 1);

    // A file that is not a certificate is refused with the reason.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let r = Ferry::new().run(&["init", "--server", &server.url(), "--ca-cert", junk.to_str().unwrap()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no PEM certificate"), "{}", r.stderr);
}

/// An address of this machine that is not loopback, as another machine on
/// the network would be reached (the route to a documentation address; no
/// packet is sent).
fn non_loopback_address() -> IpAddr {
    let socket = UdpSocket::bind("0.0.0.0:0").expect("udp socket");
    socket.connect("192.0.2.1:9").expect("this machine needs a network interface besides loopback for this test");
    let ip = socket.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "no non-loopback address here: {ip}");
    ip
}

#[test]
fn plain_http_to_another_machine_is_refused_before_anything_is_sent() {
    let ip = non_loopback_address();
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    {
        let connections = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                connections.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let mut buf = [0u8; 1024];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = stream.read(&mut buf);
                // Then close: not a Ferry server.
            }
        });
    }
    let url = format!("http://{ip}:{port}");
    let f = Ferry::new();
    let r = f.run(&["init", "--server", &url]);
    assert_ne!(r.code, 0, "http:// to {ip} must be refused");
    for says in ["unencrypted", "https://", "--allow-insecure-http"] {
        assert!(r.stderr.contains(says), "{says}: {}", r.stderr);
    }
    assert_eq!(f.status()["server"], serde_json::Value::Null, "nothing saved");
    sleep(Duration::from_millis(300));
    assert_eq!(connections.load(Ordering::SeqCst), 0, "a request left before the refusal");

    // The explicit opt-in for a lab network: now it is contacted (which
    // shows the listener above would have seen an attempt). It answers
    // nothing a Ferry server would, so it is saved as "not reachable now".
    let r = f.run(&["init", "--server", &url, "--allow-insecure-http"]).ok();
    assert!(r.stdout.contains("not reachable now"), "{}", r.stdout);
    wait_for(Duration::from_secs(5), "the opted-in client to connect", || {
        (connections.load(Ordering::SeqCst) > 0).then_some(())
    });
    assert_eq!(f.status()["server"], url.as_str());
}

/// Signs in `attempts` times with a wrong password; the statuses seen.
fn wrong_logins(server: &TestServer, user: &str, attempts: usize) -> Vec<u16> {
    let client = server.client();
    (0..attempts).map(|_| client.try_login(user, "wrong").status).collect()
}

#[test]
fn wrong_passwords_are_throttled_per_account_on_every_node() {
    let db = Arc::new(TestDb::new());
    let server = TestServer::start_on(db.clone(), &[], &[]);
    server.add_user("ann", "red", "right pw");
    // Another node on the same database, started now so it is ready when
    // the lock is checked there.
    let other = db.is_postgres().then(|| TestServer::start_on(db.clone(), &[], &[]));

    // A script trying passwords as fast as it can: five free failures, then
    // 429 with no password looked at (the first lock is 5 s).
    let statuses = wrong_logins(&server, "ann", 50);
    assert_eq!(statuses[..5], [401; 5], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 40, "{statuses:?}");

    // While locked, even the right password gets the same 429, with a
    // Retry-After, the message saying how long.
    let client = server.client();
    let locked = client.try_login("ann", "right pw");
    locked.assert_error(429, "rate_limited");
    let retry_after: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    assert!(locked.message().contains("try again in"), "{}", locked.message());
    if let Some(other) = &other {
        other.client().try_login("ann", "right pw").assert_error(429, "rate_limited");
    }
    // The CLI says it in words.
    let f = Ferry::new();
    f.run(&["init", "--server", &server.url()]).ok();
    let r = f.login("ann", "right pw");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("too many attempts; try again in"), "{}", r.stderr);

    // After the wait the right password works, and clears the count.
    sleep(Duration::from_secs(retry_after));
    let mut client = server.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client.try_login("ann", "right pw");
        if r.status == 200 {
            break;
        }
        r.assert_error(429, "rate_limited");
        assert!(Instant::now() < deadline, "still locked long after Retry-After");
        sleep(Duration::from_millis(250));
    }
    client.login("ann", "right pw");
    f.login("ann", "right pw").ok();
    assert_eq!(wrong_logins(&server, "ann", 4), [401; 4], "the count started over");
}

#[test]
fn accounts_that_do_not_exist_are_throttled_alike() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let real = wrong_logins(&server, "ann", 8);
    let ghost = wrong_logins(&server, "nobody-here", 8);
    assert_eq!(real, ghost, "no difference tells which names are accounts");
    assert_eq!(ghost[..6], [401, 401, 401, 401, 401, 429]);
    let a = server.client().try_login("ann", "wrong");
    let b = server.client().try_login("nobody-here", "wrong");
    // The same words; the seconds left may differ by the time between the
    // two requests (one second, on a loaded machine), which tells nothing.
    let words = |m: String| m.replace(|c: char| c.is_ascii_digit(), "#");
    assert_eq!((a.status, words(a.message())), (b.status, words(b.message())));
}

#[test]
fn failures_from_one_address_lock_it_and_only_trusted_proxies_name_other_addresses() {
    let server = TestServer::start_with(&["--trust-forwarded-for", "127.0.0.1"]);
    server.add_user("ann", "red", "pw");
    let http = reqwest::blocking::Client::new();
    let login = |user: &str, password: &str, forwarded_for: &str| {
        http.post(format!("{}/v1/auth/login", server.url()))
            .header("x-forwarded-for", forwarded_for)
            .json(&json!({"username": user, "password": password}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    // A guesser behind the proxy tries one password on many names.
    let statuses: Vec<u16> = (0..30).map(|i| login(&format!("name{i}"), "guess", "198.51.100.7")).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 20, "{statuses:?}");
    assert_eq!(login("ann", "pw", "198.51.100.7"), 429, "that address is locked, for every name");
    // Other clients of the same proxy are not.
    assert_eq!(login("ann", "pw", "203.0.113.5"), 200);

    // Without the trust, the header is the client's own word: ignored, and
    // the failures count for the connection's address.
    let untrusting = TestServer::start();
    untrusting.add_user("ann", "red", "pw");
    let client = untrusting.client();
    for i in 0..20 {
        assert_eq!(client.try_login(&format!("name{i}"), "x").status, 401);
    }
    let r = http
        .post(format!("{}/v1/auth/login", untrusting.url()))
        .header("x-forwarded-for", "203.0.113.99")
        .json(&json!({"username": "ann", "password": "pw"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 429, "a forged X-Forwarded-For does not escape the lock");
}

#[test]
fn disabling_a_user_ends_their_sessions_at_once_and_keeps_their_queue() {
    let db = Arc::new(TestDb::new());
    let server = TestServer::start_on(db.clone(), &[], &[]);
    // On PostgreSQL, a second node: revocation must hold there too.
    let other = db.is_postgres().then(|| TestServer::start_on(db.clone(), &[], &[]));
    server.add_user("ann", "red", "pw");
    server.add_user("bob", "red", "pw");
    let a = Ferry::new();
    a.connect(&server.url(), "ann", "pw");
    a.put("activity", "act-1", &json!({"title": "first"}));
    a.sync().ok();
    let api = server.login("ann", "pw");
    let bob = server.login("bob", "pw");

    let out = server.cli(&["user", "disable", "ann"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Her access token is refused from the next request, long before it
    // expires; bob is untouched.
    api.get("/v1/pull").assert_error(401, "account_disabled");
    assert_eq!(bob.get("/v1/pull").status, 200);
    if let Some(other) = &other {
        let mut there = other.client();
        there.tokens = api.tokens.clone();
        there.get("/v1/pull").assert_error(401, "account_disabled");
        there.refresh(&api.tokens.as_ref().unwrap().refresh_token).assert_error(401, "account_disabled");
    }

    a.put("activity", "act-2", &json!({"title": "offline work"}));
    a.put("expense", "exp-1", &json!({"amount": 120}));
    let r = a.sync();
    assert_eq!(r.code, 4, "needs a sign-in: {}", r.stderr);
    let s = a.status();
    assert_eq!(s["state"], "needs-sign-in", "{s}");
    assert!(s["last_error"].as_str().unwrap().contains("disabled"), "{s}");
    assert_eq!(s["pending"], 2, "the queue is kept: {s}");
    let r = a.login("ann", "pw");
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("disabled"), "{}", r.stderr);

    let list = String::from_utf8(server.cli(&["user", "list"], None).stdout).unwrap();
    assert!(list.contains("ann\tred\tdisabled") && list.contains("bob\tred\tenabled"), "{list}");

    assert!(server.cli(&["user", "enable", "ann"], None).status.success());
    a.login("ann", "pw").ok();
    a.sync().ok();
    assert_eq!(a.status()["pending"], 0);
    let ids: Vec<_> = server.dump().iter().map(|r| r["record_id"].as_str().unwrap().to_owned()).collect();
    assert!(ids.contains(&"act-2".to_owned()) && ids.contains(&"exp-1".to_owned()), "{ids:?}");
    assert_eq!(server.stats()["mutations_applied"], 3, "each change applied once");
}

#[test]
fn passwd_ends_old_sessions_and_remove_keeps_the_records() {
    let server = TestServer::start();
    server.add_user("ann", "red", "old pw");
    server.add_user("bob", "red", "pw");
    let mut api = server.login("ann", "old pw");
    api.push(&[upsert("activity", "act-1", 0, json!({"title": "by ann"}))]);
    let old: TokenResponse = api.tokens.clone().unwrap();

    // Passwords come from stdin only.
    let out = server.cli(&["user", "passwd", "ann"], Some("new pw"));
    assert!(!out.status.success(), "passwd without --password-stdin must refuse");
    let out = server.cli(&["user", "passwd", "ann", "--password-stdin"], Some("new pw\n"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    api.get("/v1/pull").assert_error(401, "unauthorized");
    api.refresh(&old.refresh_token).assert_error(401, "invalid_refresh_token");
    api.try_login("ann", "old pw").assert_error(401, "invalid_credentials");
    api.login("ann", "new pw");
    assert_eq!(api.get("/v1/pull").status, 200);

    let out = server.cli(&["user", "passwd", "nobody", "--password-stdin"], Some("x"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("user list"), "names the fix");

    assert!(server.cli(&["user", "remove", "ann"], None).status.success());
    api.get("/v1/pull").assert_error(401, "unauthorized");
    api.try_login("ann", "new pw").assert_error(401, "invalid_credentials");
    let dump = server.dump();
    let record = dump.iter().find(|r| r["record_id"] == "act-1").expect("her record stays");
    assert_eq!(record["edited_by"], "ann", "{record}");
    // The same name created again is a new account: the old one's tokens
    // never work for it.
    server.add_user("ann", "blue", "pw");
    api.get("/v1/pull").assert_error(401, "unauthorized");
}

#[test]
fn sighup_serves_a_renewed_certificate_to_new_connections_and_keeps_open_ones() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = TestCa::new("Old CA");
    let cert = old_ca.issue(dir.path(), "server");
    let server = TestServer::start_https(Arc::new(TestDb::new()), &cert, &old_ca);
    server.add_user("ann", "red", "pw");
    let waiting = server.login("ann", "pw");
    let writer = server.login("ann", "pw");
    let since = waiting.pull(0, 10).cursor;

    // A waiting pull holds its connection across the reload.
    let held = std::thread::spawn(move || waiting.get(&format!("/v1/pull?since={since}&wait=20")));
    sleep(Duration::from_millis(500));

    // Renewal: new files in place (a new CA, so the change is visible), then
    // SIGHUP.
    let new_ca = TestCa::new("New CA");
    let renewed = new_ca.issue(dir.path(), "renewed");
    std::fs::copy(&renewed.cert_path, &cert.cert_path).unwrap();
    std::fs::copy(&renewed.key_path, &cert.key_path).unwrap();
    let hup = std::process::Command::new("kill").args(["-s", "HUP", &server.pid().to_string()]).status().unwrap();
    assert!(hup.success());
    wait_for(Duration::from_secs(10), "the reload to be logged", || {
        server.log().contains("TLS certificate reloaded").then_some(())
    });

    let trusts_new = ferry_e2e::server::Client::with_ca(&server.url(), Some(&new_ca.pem()));
    assert_eq!(trusts_new.try_get("/health"), Ok(200), "new connections get the renewed certificate");
    let trusts_old = ferry_e2e::server::Client::with_ca(&server.url(), Some(&old_ca.pem()));
    let err = trusts_old.try_get("/health").expect_err("the old certificate is gone");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // The connection opened before the reload still answers.
    writer.push(&[upsert("activity", "act-1", 0, json!({"title": "after renewal"}))]);
    let reply = held.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["changes"][0]["record_id"], "act-1", "{}", reply.body);

    // A broken renewal keeps the certificate that works.
    std::fs::write(&cert.cert_path, "not a certificate").unwrap();
    let hup = std::process::Command::new("kill").args(["-s", "HUP", &server.pid().to_string()]).status().unwrap();
    assert!(hup.success());
    wait_for(Duration::from_secs(10), "the failed reload to be logged", || {
        server.log().contains("TLS certificate not reloaded").then_some(())
    });
    assert_eq!(trusts_new.try_get("/health"), Ok(200));
}
