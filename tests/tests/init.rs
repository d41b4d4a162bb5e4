//! `ferry init --server URL`: bad URLs are refused with a clear error, a
//! URL that answers but is not a Ferry server says so, and a typo can be
//! corrected as long as nothing was synced with the wrong server.

use std::io::{Read, Write};
use std::net::TcpListener;

use ferry_e2e::ferry::Ferry;
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

#[test]
fn a_malformed_url_is_refused_and_not_saved() {
    let f = Ferry::new();
    for bad in ["http://exa mple.com", "example.org", "ftp://example.org", "http://"] {
        let r = f.run(&["init", "--server", bad]);
        assert_ne!(r.code, 0, "{bad} accepted");
        assert!(r.stderr.contains("is not a server URL"), "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("https://"), "shows an example: {}", r.stderr);
    }
    assert_eq!(f.status()["server"], Value::Null);
}

/// Answers every request with a web server's 404 page, as a wrong path on a
/// real web server does.
fn html_404_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = "<html><body><h1>404 Not Found</h1></body></html>";
            let _ = write!(
                conn,
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_url_that_answers_but_is_not_ferry_says_so() {
    let server = TestServer::start();
    let f = Ferry::new();
    for wrong in [format!("{}/wrong/path", html_404_server()), format!("{}/api", server.url())] {
        let r = f.run(&["init", "--server", &wrong]);
        assert_ne!(r.code, 0, "{wrong} accepted: {}", r.stdout);
        assert!(r.stderr.contains("reached, but it is not a Ferry server"), "{wrong}: {}", r.stderr);
        assert!(r.stderr.contains("check the URL"), "{}", r.stderr);
    }
    assert_eq!(f.status()["server"], Value::Null, "a wrong URL is not saved");
    f.run(&["init", "--server", &server.url()]).ok();
    assert_eq!(f.status()["server"], server.url());
}

#[test]
fn a_typo_can_be_fixed_while_nothing_was_synced() {
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw");
    let f = Ferry::new();
    // Nothing listens there: saved anyway (offline-first), work queues up.
    let typo = format!("http://127.0.0.1:{}", ferry_e2e::free_port());
    let r = f.run(&["init", "--server", &typo]).ok();
    assert!(r.stdout.contains("not reachable"), "{}", r.stdout);
    f.put("activity", "a1", &json!({"title": "Visit"}));
    assert_ne!(f.sync().code, 0);

    f.run(&["init", "--server", &server.url()]).ok();
    f.login("mentor", "pw").ok();
    f.sync().ok();
    assert!(server.dump().iter().any(|r| r["record_id"] == "a1"), "the offline work went to the right server");
    let s = f.status();
    assert_eq!((s["state"].as_str(), s["pending"].as_u64()), (Some("idle"), Some(0)), "{s}");
}

#[test]
fn moving_a_synced_or_signed_in_data_dir_is_refused_with_what_to_do() {
    let first = TestServer::start();
    let second = TestServer::start();
    first.add_user("mentor", "org1", "pw");
    let f = Ferry::new();
    f.connect(&first.url(), "mentor", "pw");

    // Signed in, nothing synced yet: sign out first.
    let r = f.run(&["init", "--server", &second.url()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("ferry logout"), "{}", r.stderr);

    // Synced: the records carry the first server's versions.
    f.put("activity", "a1", &json!({"title": "Visit"}));
    f.sync().ok();
    f.run(&["logout"]).ok();
    let r = f.run(&["init", "--server", &second.url()]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("already syncs with") && r.stderr.contains("--data-dir"), "{}", r.stderr);
    assert_eq!(f.status()["server"], first.url());
}
