//! Hostile input on the client side: a fake server that answers the real
//! `ferry` client with garbage, random bytes fed to the engine's transport,
//! a corrupted local database, a read-only one and a full disk. Each must end
//! in a clear error on stderr, a non-zero exit, no panic, and the queue
//! intact.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_e2e::ferry::{Ferry, Run};
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

// ------------------------------------------------------------ fake server

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    body: Vec<u8>,
}

type Handler = Box<dyn FnMut(&Req) -> Option<Vec<u8>> + Send>;

/// A tiny HTTP/1.1 responder. Health and sign-in answer correctly; push and
/// pull answer correctly too unless a handler (set per test) returns raw
/// bytes to send instead.
struct FakeServer {
    port: u16,
    handler: Arc<Mutex<Option<Handler>>>,
    stop: Arc<AtomicBool>,
    seq: Arc<AtomicU64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn http(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn json_ok(v: &Value) -> Vec<u8> {
    http(200, "application/json", v.to_string().as_bytes())
}

impl FakeServer {
    fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fake = FakeServer {
            port,
            handler: Arc::new(Mutex::new(None)),
            stop: Arc::new(AtomicBool::new(false)),
            seq: Arc::new(AtomicU64::new(0)),
        };
        let (handler, stop, seq) = (fake.handler.clone(), fake.stop.clone(), fake.seq.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let Some(req) = read_request(&mut conn) else { continue };
                let custom = handler.lock().unwrap().as_mut().and_then(|h| h(&req));
                let resp = custom.unwrap_or_else(|| default_answer(&req, &seq));
                let _ = conn.write_all(&resp);
                let _ = conn.shutdown(std::net::Shutdown::Both);
            }
        });
        fake
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn answer(&self, h: impl FnMut(&Req) -> Option<Vec<u8>> + Send + 'static) {
        *self.handler.lock().unwrap() = Some(Box::new(h));
    }

    /// Push answers `bytes` (raw HTTP response); everything else is normal.
    fn push_answers(&self, bytes: Vec<u8>) {
        self.answer(move |r| (r.path == "/v1/push").then(|| bytes.clone()));
    }

    fn pull_answers(&self, bytes: Vec<u8>) {
        self.answer(move |r| r.path.starts_with("/v1/pull").then(|| bytes.clone()));
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn default_answer(req: &Req, seq: &AtomicU64) -> Vec<u8> {
    let now = now_ms();
    let path = req.path.split('?').next().unwrap_or("");
    match (req.method.as_str(), path) {
        ("GET", "/health") => json_ok(&json!({"status":"ok","version":"fake","protocol":1,"server_time":now})),
        ("POST", "/v1/auth/login") | ("POST", "/v1/auth/refresh") => json_ok(&json!({
            "access_token":"fake.jwt.token","access_expires_at": now + 3_600_000,
            "refresh_token":"fake-refresh","refresh_expires_at": now + 86_400_000,
            "user":"u","org":"o","server_time":now})),
        ("POST", "/v1/auth/logout") => http(204, "application/json", b""),
        ("POST", "/v1/push") => {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let results: Vec<Value> = body["mutations"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let s = seq.fetch_add(1, Ordering::SeqCst) + 1;
                    json!({"mutation_id": m["id"], "status":"applied","version":1,"seq":s,"server_time":now})
                })
                .collect();
            json_ok(&json!({"results":results,"server_time":now}))
        }
        ("GET", "/v1/pull") => {
            let since: u64 = req
                .path
                .split("since=")
                .nth(1)
                .and_then(|s| s.split('&').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            json_ok(&json!({"changes":[],"cursor":since,"has_more":false,"server_time":now}))
        }
        _ => http(404, "application/json", br#"{"error":"not_found","message":"no such route"}"#),
    }
}

fn read_request(c: &mut TcpStream) -> Option<Req> {
    c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next().unwrap_or("").split(' ');
    Some(Req {
        method: first.next().unwrap_or("").to_string(),
        path: first.next().unwrap_or("").to_string(),
        body: buf[head_end..].to_vec(),
    })
}

// ------------------------------------------------------------ helpers

/// Runs `ferry ARGS` with a deadline: a hostile server must never hang it.
fn run_timed(f: &Ferry, args: &[&str], limit: Duration) -> Run {
    let mut child = f.command().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "`ferry {}` still ran after {limit:?}; stderr: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[track_caller]
fn assert_clear_failure(r: &Run, what: &str) {
    assert!(!r.stderr.contains("panicked"), "{what}: panic: {}", r.stderr);
    assert_ne!(r.code, 0, "{what}: must not report success; stdout {}", r.stdout);
    assert!(r.code != 101, "{what}: exit 101 is a panic: {}", r.stderr);
    assert!(
        r.stderr.trim().starts_with("ferry:") && r.stderr.trim().len() > 15,
        "{what}: unclear error: {:?}",
        r.stderr
    );
}

/// (mutation id, state) of every queued mutation.
fn queue_ids(f: &Ferry) -> Vec<(String, String)> {
    f.queue(None)
        .iter()
        .map(|q| (q["mutation_id"].as_str().unwrap().to_string(), q["state"].as_str().unwrap().to_string()))
        .collect()
}

fn client(fake: &FakeServer) -> Ferry {
    let f = Ferry::new().with_env("FERRY_HTTP_TIMEOUT_SECS", "5");
    f.connect(&fake.url(), "u", "pw");
    f
}

fn garbage_responses() -> Vec<(&'static str, Vec<u8>)> {
    let mut huge = b"{\"results\":[".to_vec();
    huge.extend(std::iter::repeat_n(b' ', 40 * 1024 * 1024));
    huge.extend_from_slice(b"]}");
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let html =
        b"<!DOCTYPE html><html><head><title>Hotel Wi-Fi</title></head><body>Please sign in to continue</body></html>";
    vec![
        ("malformed JSON", http(200, "application/json", br#"{"results":[{"mutation_id":"#)),
        ("wrong types", http(200, "application/json", br#"{"results":"all good","server_time":"noon"}"#)),
        ("JSON null", http(200, "application/json", b"null")),
        ("JSON array", http(200, "application/json", b"[1,2,3]")),
        ("200 with empty body", http(200, "application/json", b"")),
        ("204 no content", http(204, "application/json", b"")),
        ("huge body (40 MB)", http(200, "application/json", &huge)),
        ("deeply nested JSON", http(200, "application/json", nested.as_bytes())),
        ("non-UTF-8 body", http(200, "application/json", &[0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0x80])),
        ("HTML proxy page (200)", http(200, "text/html", html)),
        ("HTML proxy page (502)", http(502, "text/html", html)),
        ("Content-Length larger than the body", {
            let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n".to_vec();
            r.extend_from_slice(br#"{"results":[]"#);
            r
        }),
        ("not HTTP at all", b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()),
        ("status line only", b"HTTP/1.1 200 OK\r\n".to_vec()),
        ("no bytes, just close", Vec::new()),
        ("negative and overflowing numbers", http(200, "application/json",
            br#"{"results":[{"mutation_id":"00000000-0000-0000-0000-000000000000","status":"applied","version":-1,"seq":1e400,"server_time":18446744073709551616}],"server_time":0}"#)),
        ("unknown status tag", http(200, "application/json",
            br#"{"results":[{"mutation_id":"00000000-0000-0000-0000-000000000000","status":"exploded"}],"server_time":0}"#)),
        ("injection-shaped strings", http(200, "application/json",
            br#"{"results":[{"mutation_id":"'; DROP TABLE outbox; --","status":"applied","version":1,"seq":1,"server_time":0}],"server_time":"<script>alert(1)</script>"}"#)),
    ]
}

// ------------------------------------------------------------ push

#[test]
fn garbage_push_answers_end_in_a_clear_error_and_keep_the_queue() {
    let fake = FakeServer::start();
    let f = client(&fake);
    f.put("activity", "a1", &json!({"title": "Visit"}));
    f.put("activity", "a2", &json!({"title": "Call"}));
    f.patch("activity", "a1", &json!({"minutes": 5}));
    let before = queue_ids(&f);
    assert_eq!(before.len(), 3);
    let mut failures = Vec::new();
    for (what, bytes) in garbage_responses() {
        fake.push_answers(bytes);
        let r = run_timed(&f, &["sync"], Duration::from_secs(60));
        assert_clear_failure(&r, what);
        let after = queue_ids(&f);
        if after != before {
            failures
                .push(format!("{what}: queue changed from {before:?} to {after:?}; sync said: {}", r.stderr.trim()));
            // Put it back for the next case.
            f.run(&["retry", "--all"]).ok();
        }
    }
    // Count-mismatched and foreign results.
    fake.answer(|r| (r.path == "/v1/push").then(|| json_ok(&json!({"results": [], "server_time": now_ms()}))));
    let r = run_timed(&f, &["sync"], Duration::from_secs(30));
    assert_clear_failure(&r, "no results for 3 mutations");
    assert!(r.stderr.contains("results"), "{}", r.stderr);
    assert_eq!(queue_ids(&f), before);
    fake.answer(|r| {
        (r.path == "/v1/push").then(|| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            let results: Vec<Value> = body["mutations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|_| json!({"mutation_id": uuid::Uuid::new_v4(), "status":"applied","version":1,"seq":1,"server_time":0}))
                .collect();
            json_ok(&json!({"results": results, "server_time": now_ms()}))
        })
    });
    let r = run_timed(&f, &["sync"], Duration::from_secs(30));
    assert_clear_failure(&r, "results for other mutation ids");
    assert_eq!(queue_ids(&f), before);
    assert!(failures.is_empty(), "garbage answers changed the queue:\n{}", failures.join("\n"));

    // And once the server behaves, everything goes through.
    *fake.handler.lock().unwrap() = None;
    run_timed(&f, &["sync"], Duration::from_secs(30)).ok();
    assert!(queue_ids(&f).is_empty());
}

/// A 4xx that is not a Ferry error body (a captive portal's 403 page, a
/// wrong URL's 404, a proxy's 400) says nothing about the mutations: they
/// must stay pending, not become *failed* one by one.
///
/// Regression test (docs/reliability.md, bug 3): such a 4xx used to be taken
/// as a permanent refusal and the batch was bisected into failed mutations;
/// now a 4xx whose body is not an `ErrorBody` is a bad response (transient).
#[test]
fn non_protocol_4xx_pages_do_not_fail_queued_mutations() {
    let fake = FakeServer::start();
    let f = client(&fake);
    f.put("activity", "a1", &json!({"title": "Visit"}));
    f.put("activity", "a2", &json!({"title": "Call"}));
    let before = queue_ids(&f);
    let html = b"<!DOCTYPE html><html><body>Please sign in to the hotel Wi-Fi</body></html>";
    let mut changed = Vec::new();
    for (what, bytes) in [
        ("HTML page (404, wrong URL / captive portal)", http(404, "text/html", html)),
        ("HTML page (403, captive portal)", http(403, "text/html", html)),
        ("error body with wrong types (400)", http(400, "application/json", br#"{"error":42,"message":["x"]}"#)),
    ] {
        fake.push_answers(bytes);
        let r = run_timed(&f, &["sync"], Duration::from_secs(60));
        assert_clear_failure(&r, what);
        let after = queue_ids(&f);
        if after != before {
            changed.push(format!("{what}: {before:?} became {after:?} ({})", r.stderr.trim()));
            f.run(&["retry", "--all"]).ok();
        }
    }
    assert!(changed.is_empty(), "non-protocol answers failed queued mutations:\n{}", changed.join("\n"));
}

// ------------------------------------------------------------ pull

#[test]
fn garbage_pull_answers_end_in_a_clear_error_and_keep_local_records() {
    let fake = FakeServer::start();
    let f = client(&fake);
    // A remote record y arrives at cursor 10.
    fake.answer(|r| {
        r.path.starts_with("/v1/pull?since=0").then(|| {
            json_ok(&json!({"changes":[{"entity":"activity","record_id":"y","version":3,"seq":10,"deleted":false,
                "data":{"title":"from server"},"edited_at":1,"edited_by":"x","server_time":1}],
                "cursor":10,"has_more":false,"server_time":now_ms()}))
        })
    });
    run_timed(&f, &["sync"], Duration::from_secs(30)).ok();
    assert_eq!(f.get("activity", "y"), Some(json!({"title": "from server"})));
    f.put("note", "n1", &json!({"text": "local"}));
    run_timed(&f, &["sync"], Duration::from_secs(30)).ok();

    let change = |data: Value| {
        json!({"entity":"activity","record_id":"y","version":4,"seq":11,"deleted":false,
               "data":data,"edited_at":1,"edited_by":"x","server_time":1})
    };
    let mut cases = garbage_responses();
    cases.push((
        "pull cursor going backwards",
        json_ok(&json!({"changes":[change(json!({"title":"stale"}))],"cursor":5,"has_more":false,"server_time":0})),
    ));
    cases.push((
        "change with data of the wrong type",
        json_ok(&json!({"changes":[change(json!("a string"))],"cursor":11,"has_more":false,"server_time":0})),
    ));
    cases.push((
        "change with a version that is not a number",
        json_ok(&json!({"changes":[{"entity":"activity","record_id":"y","version":"four","seq":11,"deleted":false,
            "data":{},"edited_at":1,"edited_by":"x","server_time":1}],"cursor":11,"has_more":false,"server_time":0})),
    ));
    for (what, bytes) in cases {
        fake.pull_answers(bytes);
        let r = run_timed(&f, &["sync"], Duration::from_secs(60));
        assert_clear_failure(&r, what);
        assert_eq!(f.get("activity", "y"), Some(json!({"title": "from server"})), "{what}: local record changed");
        assert_eq!(f.get("note", "n1"), Some(json!({"text": "local"})), "{what}");
        assert_eq!(f.status()["pending"], 0, "{what}");
    }
    let r = run_timed(&f, &["sync"], Duration::from_secs(60));
    assert!(r.stderr.contains("backwards") || r.code != 0);
}

/// A server that says "more" forever with the same cursor must not keep a
/// sync running forever (or hot-loop the daemon).
///
/// Regression test (docs/reliability.md, bug 4): `pull_all` used to stop only
/// when `has_more` was false or a page empty, so a cursor that stood still
/// looped forever; now that is a bad response naming the problem.
#[test]
fn a_pull_that_never_advances_does_not_hang_the_sync() {
    let fake = FakeServer::start();
    let f = client(&fake);
    fake.answer(|r| {
        r.path.starts_with("/v1/pull").then(|| {
            let since: u64 = r
                .path
                .split("since=")
                .nth(1)
                .and_then(|s| s.split('&').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            json_ok(&json!({"changes":[{"entity":"activity","record_id":"z","version":1,"seq":since,"deleted":false,
                "data":{"n":1},"edited_at":1,"edited_by":"x","server_time":1}],
                "cursor":since,"has_more":true,"server_time":now_ms()}))
        })
    });
    let r = run_timed(&f, &["sync"], Duration::from_secs(30));
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert_ne!(r.code, 0, "a pull that never advances is not a successful sync: {}", r.stdout);
}

// ------------------------------------------------------------ random bytes

mod random {
    use super::*;
    use ferry_engine::clock::ServerClock;
    use ferry_engine::transport::Transport;
    use ferry_protocol::{Mutation, Op, PushRequest};
    use proptest::prelude::*;

    /// The one mutation every push sends: a fixed id, so a generated answer
    /// can be a well-formed one for it.
    const MUTATION_ID: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0042;

    fn push_request() -> PushRequest {
        let mut payload = serde_json::Map::new();
        payload.insert("title".into(), json!("Visit"));
        PushRequest {
            mutations: vec![Mutation {
                id: uuid::Uuid::from_u128(MUTATION_ID),
                entity: "activity".into(),
                record_id: "a1".into(),
                op: Op::Upsert,
                payload: Some(payload),
                base_version: 0,
                edited_at: 1,
            }],
            database: None,
        }
    }

    /// A fake server answering every request with `bytes`, in-process.
    fn serve_once(bytes: Vec<u8>) -> (u16, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            l.set_nonblocking(false).unwrap();
            if let Ok((mut c, _)) = l.accept() {
                let _ = read_request(&mut c);
                let _ = c.write_all(&bytes);
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        });
        (port, h)
    }

    fn exchange(bytes: Vec<u8>, pull: bool) -> Result<(), String> {
        let (port, h) = serve_once(bytes);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let t = Transport::new(&format!("http://127.0.0.1:{port}"));
        let clock = ServerClock::new(None);
        let res = rt.block_on(async {
            if pull {
                t.pull("token", 7, 100, &clock).await.map(|_| ())
            } else {
                t.push("token", &push_request(), &clock).await.map(|_| ())
            }
        });
        let _ = h.join();
        res.map_err(|e| e.to_string())
    }

    /// The oracle: `bytes` is a well-formed answer, a 2xx (with a body)
    /// whose body is the protocol's answer (for a push: one result, for the
    /// mutation that was sent).
    fn well_formed(bytes: &[u8], pull: bool) -> bool {
        let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
        let status: u16 = std::str::from_utf8(&bytes[..head_end])
            .ok()
            .and_then(|h| h.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = &bytes[head_end + 4..];
        let parses = if pull {
            serde_json::from_slice::<ferry_protocol::PullResponse>(body).is_ok()
        } else {
            serde_json::from_slice::<ferry_protocol::PushResponse>(body)
                .is_ok_and(|r| r.results.len() == 1 && r.results[0].mutation_id == uuid::Uuid::from_u128(MUTATION_ID))
        };
        (200..300).contains(&status) && status != 204 && status != 205 && parses
    }

    /// A well-formed answer, so the oracle's other side is exercised too.
    fn valid_answer(pull: bool) -> impl Strategy<Value = Vec<u8>> {
        (0u64..1_000, any::<bool>(), 1u64..50).prop_map(move |(cursor, has_more, version)| {
            let body = if pull {
                json!({"changes": [{"entity": "activity", "record_id": "x", "version": version, "seq": cursor,
                    "deleted": false, "data": {"n": 1}, "edited_at": 1, "edited_by": "u", "server_time": 1}],
                    "cursor": cursor, "has_more": has_more, "server_time": 1})
            } else {
                json!({"results": [{"mutation_id": uuid::Uuid::from_u128(MUTATION_ID), "status": "applied",
                    "version": version, "seq": cursor, "server_time": 1}], "server_time": 1})
            };
            http(200, "application/json", body.to_string().as_bytes())
        })
    }

    fn response(pull: bool) -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            // Random bytes as the whole answer.
            3 => proptest::collection::vec(any::<u8>(), 0..512),
            // A valid head with a random body and status.
            3 => (prop_oneof![Just(200u16), Just(201), Just(204), Just(400), Just(401), Just(404), Just(429), Just(500), Just(503), 100u16..600],
             proptest::collection::vec(any::<u8>(), 0..2048))
                .prop_map(|(s, b)| http(s, "application/json", &b)),
            // JSON-ish: random JSON-shaped text.
            3 => "[\\[\\]{}\":,0-9a-z \\-.]{0,300}".prop_map(|s| http(200, "application/json", s.as_bytes())),
            1 => valid_answer(pull),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, .. ProptestConfig::default() })]

        /// The engine's transport turns any answer into a value or an error
        /// naming the problem: never a panic, a success only from a
        /// well-formed answer, and a well-formed answer always a success.
        #[test]
        fn transport_survives_random_answers((pull, bytes) in any::<bool>().prop_flat_map(|pull| (Just(pull), response(pull)))) {
            match exchange(bytes.clone(), pull) {
                Ok(()) => prop_assert!(
                    well_formed(&bytes, pull),
                    "success from garbage: {:?}",
                    String::from_utf8_lossy(&bytes)
                ),
                Err(e) => {
                    prop_assert!(e.len() > 10, "unclear error: {e:?}");
                    prop_assert!(!well_formed(&bytes, pull), "a well-formed answer was refused: {e}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, .. ProptestConfig::default() })]

        /// The same through the real CLI (fewer cases: each is a process).
        #[test]
        fn cli_survives_random_push_answers(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let fake = FakeServer::start();
            let f = client(&fake);
            f.put("activity", "a1", &json!({"title": "Visit"}));
            let before = queue_ids(&f);
            fake.push_answers(bytes);
            let r = run_timed(&f, &["sync"], Duration::from_secs(30));
            prop_assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
            prop_assert_ne!(r.code, 0);
            prop_assert_eq!(queue_ids(&f), before);
        }
    }
}

// ------------------------------------------------------------ local database

#[test]
fn a_corrupted_local_database_is_a_clear_error_naming_the_file() {
    let fake = FakeServer::start();
    // Garbage from the first byte.
    let f = client(&fake);
    f.put("activity", "a1", &json!({"title": "Visit"}));
    let db = f.data_dir().join("ferry.db");
    std::fs::write(&db, b"this is not a database, it is a shopping list: milk, eggs\n".repeat(200)).unwrap();
    for args in [&["status", "--json"][..], &["put", "activity", "a2", "{}"], &["sync"], &["list", "activity"]] {
        let r = run_timed(&f, args, Duration::from_secs(30));
        assert_clear_failure(&r, &format!("garbage db, ferry {}", args.join(" ")));
        assert!(r.stderr.contains("ferry.db"), "names the file: {}", r.stderr);
    }

    // A real database cut short (a bad copy, a disk error).
    let f = client(&fake);
    for i in 0..200 {
        f.run(&["put", "activity", &format!("r{i}"), &json!({"pad": "x".repeat(200)}).to_string()]).ok();
    }
    let db = f.data_dir().join("ferry.db");
    let bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 16384, "db is {} bytes", bytes.len());
    std::fs::write(&db, &bytes[..8192]).unwrap();
    let _ = std::fs::remove_file(f.data_dir().join("ferry.db-wal"));
    let _ = std::fs::remove_file(f.data_dir().join("ferry.db-shm"));
    for args in [&["status", "--json"][..], &["queue", "--json"], &["put", "activity", "new", "{}"]] {
        let r = run_timed(&f, args, Duration::from_secs(30));
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert_clear_failure(&r, &format!("truncated db, ferry {}", args.join(" ")));
        assert!(
            r.stderr.contains("ferry.db") || r.stderr.contains(&f.data_dir().display().to_string()),
            "names the file or its folder: {}",
            r.stderr
        );
    }
}

/// Mounts a tmpfs on `dir` for the test (root with CAP_SYS_ADMIN only);
/// unmounts on drop.
struct Tmpfs(PathBuf);

/// `FERRY_REQUIRE_MOUNTS=1` (CI: root on a fresh machine) makes a test that
/// needs a mount fail when it cannot mount, instead of skipping.
fn mounts_required() -> bool {
    std::env::var("FERRY_REQUIRE_MOUNTS").is_ok_and(|v| v.trim() == "1")
}

/// Says loudly that a test did not run: written to the terminal directly,
/// past the test harness's output capture, so a passing run shows it.
fn skip_loudly(what: &str, why: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED {what}: {why}\n*** (set FERRY_REQUIRE_MOUNTS=1 to make this a failure)\n"
    );
}

/// Mounts a tmpfs, or skips loudly (fails under `FERRY_REQUIRE_MOUNTS=1`).
fn mount_or_skip(dir: &Path, size: &str, what: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(dir, size) {
        Ok(m) => Some(m),
        Err(e) if mounts_required() => {
            panic!("{what}: {e}; FERRY_REQUIRE_MOUNTS=1 says mounts work here (root with CAP_SYS_ADMIN)")
        }
        Err(e) => {
            skip_loudly(what, &format!("{e} (needs root with CAP_SYS_ADMIN)"));
            None
        }
    }
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }

    fn remount(&self, opts: &str) {
        let st = Command::new("mount").args(["-o", &format!("remount,{opts}")]).arg(&self.0).status().unwrap();
        assert!(st.success(), "remount {opts}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_read_only_data_dir_is_a_clear_error_and_keeps_the_queue() {
    let fake = FakeServer::start();
    let f = Ferry::new().with_env("FERRY_HTTP_TIMEOUT_SECS", "5");
    // A tmpfs remounted read-only: `chmod` does not bind root.
    let Some(fs) = mount_or_skip(&f.data_dir(), "8m", "read-only data dir") else { return };
    f.connect(&fake.url(), "u", "pw");
    f.put("activity", "a1", &json!({"title": "Visit"}));
    f.put("activity", "a2", &json!({"title": "Call"}));
    let before = queue_ids(&f);
    fs.remount("ro");
    for args in [&["put", "activity", "a3", "{}"][..], &["sync"], &["status", "--json"]] {
        let r = run_timed(&f, args, Duration::from_secs(30));
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        if r.code == 0 {
            // Reading may work on a read-only file system; writing may not.
            assert_ne!(args[0], "put", "a write on a read-only file system cannot succeed");
            continue;
        }
        assert_clear_failure(&r, &format!("read-only, ferry {}", args.join(" ")));
        assert!(
            r.stderr.contains("read-only")
                || r.stderr.contains("readonly")
                || r.stderr.contains("ferry.db")
                || r.stderr.contains(&f.data_dir().display().to_string()),
            "says what is wrong: {}",
            r.stderr
        );
    }
    fs.remount("rw");
    assert_eq!(queue_ids(&f), before, "nothing queued before was lost");
}

#[test]
fn a_full_disk_fails_writes_clearly_and_loses_nothing_queued_before() {
    let mut server = TestServer::start();
    server.add_user("u", "org1", "pw");
    let f = Ferry::new().with_env("FERRY_HTTP_TIMEOUT_SECS", "5");
    let Some(fs) = mount_or_skip(&f.data_dir(), "1m", "full disk (tmpfs)") else { return };
    f.connect(&server.url(), "u", "pw");
    let pad = "x".repeat(20_000);
    let mut acked = Vec::new();
    let mut error = None;
    for i in 0..200 {
        let r = f.run(&["put", "activity", &format!("r{i:03}"), &json!({"i": i, "pad": pad}).to_string()]);
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        if r.code == 0 {
            acked.push(r.stdout.trim().to_string());
        } else {
            error = Some(r);
            break;
        }
    }
    let r = error.expect("a 1 MiB disk fills up");
    assert_clear_failure(&r, "put on a full disk");
    assert!(r.stderr.contains("full") || r.stderr.contains("space"), "says the disk is full: {}", r.stderr);
    assert!(acked.len() >= 5, "some writes fit first: {}", acked.len());

    // Everything acknowledged before is still queued, readable while full.
    let status = run_timed(&f, &["status", "--json"], Duration::from_secs(30));
    assert!(!status.stderr.contains("panicked"), "{}", status.stderr);
    if status.code == 0 {
        assert_eq!(status.json()["pending"], acked.len(), "{}", status.stdout);
    }
    // A sync on the full disk must not lose anything either.
    let r = run_timed(&f, &["sync"], Duration::from_secs(60));
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);

    // Room again: everything acknowledged reaches the server exactly once.
    fs.remount("size=16m");
    run_timed(&f, &["sync"], Duration::from_secs(60)).ok();
    let dump = server.dump();
    assert_eq!(dump.len(), acked.len(), "every acknowledged write on the server");
    assert_eq!(server.stats()["mutations_applied"], acked.len(), "{}", server.stats());
    server.kill();
}

/// Runs `ferry ARGS` allowed to write files of at most `max_bytes` each
/// (RLIMIT_FSIZE via util-linux `prlimit`; SIGXFSZ ignored, so a write past
/// the limit fails with EFBIG instead of killing the process).
fn run_with_file_limit(f: &Ferry, max_bytes: u64, args: &[&str]) -> Run {
    let ferry = f.command();
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(r#"trap "" XFSZ; exec prlimit --fsize="$0" -- "$@""#)
        .arg(max_bytes.to_string())
        .arg(ferry.get_program())
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in ferry.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c.output().expect("run sh");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The full-disk path without a mount, so it runs everywhere: a file size
/// limit makes SQLite's writes fail part-way, as a full disk does.
#[test]
fn a_file_size_limit_fails_writes_clearly_and_loses_nothing_queued_before() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        if mounts_required() {
            panic!("prlimit (util-linux) is missing; FERRY_REQUIRE_MOUNTS=1 says this machine can run this test");
        }
        skip_loudly("file size limit", "prlimit (util-linux) is not installed");
        return;
    }
    const LIMIT: u64 = 400_000;
    let mut server = TestServer::start();
    server.add_user("u", "org1", "pw");
    let f = Ferry::new().with_env("FERRY_HTTP_TIMEOUT_SECS", "5");
    f.connect(&server.url(), "u", "pw");
    let pad = "x".repeat(20_000);
    let mut acked = Vec::new();
    let mut error = None;
    for i in 0..100 {
        let r = run_with_file_limit(
            &f,
            LIMIT,
            &["put", "activity", &format!("r{i:03}"), &json!({"i": i, "pad": pad}).to_string()],
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        if r.code == 0 {
            acked.push(r.stdout.trim().to_string());
        } else {
            error = Some(r);
            break;
        }
    }
    let r = error.expect("a 400 kB file size limit is reached");
    assert_clear_failure(&r, "put past the file size limit");
    assert!(
        r.stderr.contains("disk") || r.stderr.contains("full") || r.stderr.contains("writ"),
        "says the write failed: {}",
        r.stderr
    );
    assert!(acked.len() >= 3, "some writes fit first: {}", acked.len());
    assert_eq!(f.status()["pending"], acked.len(), "every acknowledged write is still queued");

    // A sync under the limit (it writes too: settling, the cursor) must not
    // lose or double anything either.
    let r = run_with_file_limit(&f, LIMIT, &["sync"]);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);

    // Without the limit: everything acknowledged reaches the server once.
    run_timed(&f, &["sync"], Duration::from_secs(60)).ok();
    let on_server: Vec<String> = server.dump().iter().map(|r| r["record_id"].as_str().unwrap().to_string()).collect();
    let expected: Vec<String> = (0..acked.len()).map(|i| format!("r{i:03}")).collect();
    assert_eq!(on_server, expected, "every acknowledged write on the server");
    assert_eq!(server.stats()["mutations_applied"], acked.len(), "{}", server.stats());
    assert_eq!(f.status()["pending"], 0);
    server.kill();
}
