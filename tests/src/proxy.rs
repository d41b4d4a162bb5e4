//! A fault-injecting HTTP proxy for tests. It sits between a client and the
//! real server on 127.0.0.1 and, per request, passes it through or injects a
//! fault: an error status (500/502/503, 429 with Retry-After), a hang, a
//! reset before or after the server saw the request, a truncated answer, a
//! delay. Every connection carries one request (`Connection: close`), so the
//! mode in force when a request arrives decides its fate.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Forward to the server.
    Pass,
    /// Answer this status without asking the server.
    Status { code: u16, retry_after: Option<u32> },
    /// Accept and never answer (until the mode changes or 120 s pass).
    Hang,
    /// Close the connection before the server sees the request.
    ResetBeforeRequest,
    /// Forward, let the server apply it, then close without the answer.
    ResetAfterRequest,
    /// Forward, then return only the first half of the answer.
    TruncateResponse,
    /// Forward after a delay.
    Delay(Duration),
    /// Accept, read the request, never answer for this long, then close
    /// (unlike [`Fault::Hang`] it does not depend on the proxy's mode, so
    /// it works with a chooser).
    HangFor(Duration),
    /// Forward only the head and the first half of the body, then close
    /// both sides: the server sees a request cut off mid-body, the client a
    /// connection closed before any answer.
    ResetMidRequest,
    /// Forward, then return only the first `n` bytes of the answer (cut
    /// inside the status line, the headers or the body) and close.
    TruncateAt(usize),
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub requests: u64,
    pub passed: u64,
    pub injected: u64,
}

struct Shared {
    upstream: String,
    fault: Mutex<Fault>,
    /// Optional: choose a fault per request (for random schedules).
    chooser: Mutex<Option<Box<dyn FnMut(&str) -> Fault + Send>>>,
    requests: AtomicU64,
    passed: AtomicU64,
    injected: AtomicU64,
    log: Mutex<Vec<(Instant, String, String)>>,
    stop: AtomicBool,
    /// While set, the listening socket is closed: connections are refused.
    refusing: AtomicBool,
    refused_windows: AtomicU64,
}

pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Starts a proxy to `upstream` ("127.0.0.1:PORT") on a free port.
    pub fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_start_matches("http://").to_string(),
            fault: Mutex::new(Fault::Pass),
            chooser: Mutex::new(None),
            requests: AtomicU64::new(0),
            passed: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            refusing: AtomicBool::new(false),
            refused_windows: AtomicU64::new(0),
        });
        let s = shared.clone();
        std::thread::spawn(move || accept_loop(s, listener, port));
        FaultProxy { port, shared }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, fault: Fault) {
        *self.shared.fault.lock().unwrap() = fault;
    }

    /// Decide each request's fault with `f(path)` (overrides [`set`]).
    pub fn set_chooser(&self, f: impl FnMut(&str) -> Fault + Send + 'static) {
        *self.shared.chooser.lock().unwrap() = Some(Box::new(f));
    }

    /// Removes a chooser set with [`set_chooser`]; [`set`] rules again.
    pub fn clear_chooser(&self) {
        *self.shared.chooser.lock().unwrap() = None;
    }

    /// While `true`, the proxy's port is closed: every connection attempt is
    /// refused (ECONNREFUSED), as when a server is down or a firewall
    /// rejects. `false` listens on the same port again.
    pub fn set_refusing(&self, refusing: bool) {
        let was = self.shared.refusing.swap(refusing, Ordering::SeqCst);
        if refusing && !was {
            self.shared.refused_windows.fetch_add(1, Ordering::SeqCst);
        }
        // Let the accept loop notice (it polls every few milliseconds).
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let closed = TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
                Duration::from_millis(200),
            )
            .is_err();
            if closed == refusing {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many times [`set_refusing`] started refusing connections.
    pub fn refused_windows(&self) -> u64 {
        self.shared.refused_windows.load(Ordering::SeqCst)
    }

    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.shared.requests.load(Ordering::SeqCst),
            passed: self.shared.passed.load(Ordering::SeqCst),
            injected: self.shared.injected.load(Ordering::SeqCst),
        }
    }

    /// (time, request line, fault) of every request so far.
    pub fn log(&self) -> Vec<(Instant, String, String)> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // unblock accept
    }
}

/// Accepts connections until the proxy is dropped; closes and re-opens the
/// listening socket when asked to refuse connections.
fn accept_loop(s: Arc<Shared>, listener: TcpListener, port: u16) {
    let mut listener = Some(listener);
    loop {
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        if s.refusing.load(Ordering::SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        if listener.is_none() {
            // std sets SO_REUSEADDR on Unix, so the port can be bound again
            // at once; retry briefly if the OS disagrees.
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => listener = Some(l),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        }
        let l = listener.as_ref().unwrap();
        if l.set_nonblocking(true).is_err() {
            return;
        }
        match l.accept() {
            Ok((conn, _)) => {
                let _ = conn.set_nonblocking(false);
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let s = s.clone();
                std::thread::spawn(move || handle(s, conn));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(2)),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn handle(s: Arc<Shared>, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(request) = read_request(&mut client) else { return };
    let line = String::from_utf8_lossy(&request[..request.iter().position(|&b| b == b'\r').unwrap_or(0)]).to_string();
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    s.requests.fetch_add(1, Ordering::SeqCst);
    let fault = match s.chooser.lock().unwrap().as_mut() {
        Some(f) => f(&path),
        None => s.fault.lock().unwrap().clone(),
    };
    s.log.lock().unwrap().push((Instant::now(), line, format!("{fault:?}")));
    if fault == Fault::Pass {
        s.passed.fetch_add(1, Ordering::SeqCst);
    } else {
        s.injected.fetch_add(1, Ordering::SeqCst);
    }
    match fault {
        Fault::Pass => {
            if let Some(resp) = forward(&s.upstream, &request) {
                let _ = client.write_all(&resp);
            }
        }
        Fault::Delay(d) => {
            std::thread::sleep(d);
            if let Some(resp) = forward(&s.upstream, &request) {
                let _ = client.write_all(&resp);
            }
        }
        Fault::Status { code, retry_after } => {
            let body = format!(r#"{{"error":"unavailable","message":"injected fault {code}"}}"#);
            let mut head = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            if let Some(ra) = retry_after {
                head.push_str(&format!("Retry-After: {ra}\r\n"));
            }
            head.push_str("\r\n");
            let _ = client.write_all(head.as_bytes());
            let _ = client.write_all(body.as_bytes());
        }
        Fault::Hang => {
            let until = Instant::now() + Duration::from_secs(120);
            while Instant::now() < until && !s.stop.load(Ordering::SeqCst) {
                if *s.fault.lock().unwrap() != Fault::Hang {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Fault::ResetBeforeRequest => {}
        Fault::ResetAfterRequest => {
            let _ = forward(&s.upstream, &request);
        }
        Fault::TruncateResponse => {
            if let Some(resp) = forward(&s.upstream, &request) {
                let _ = client.write_all(&resp[..resp.len() / 2]);
            }
        }
        Fault::HangFor(d) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !s.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Fault::ResetMidRequest => {
            if let Some(head_end) = find(&request, b"\r\n\r\n").map(|p| p + 4) {
                let body = request.len() - head_end;
                let cut = head_end + body / 2;
                if let Ok(mut up) = TcpStream::connect(&s.upstream) {
                    let _ = up.write_all(&request[..cut]);
                    let _ = up.shutdown(Shutdown::Both);
                }
            }
        }
        Fault::TruncateAt(n) => {
            if let Some(resp) = forward(&s.upstream, &request) {
                let _ = client.write_all(&resp[..n.min(resp.len())]);
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

/// One HTTP/1.1 request: head and `Content-Length` body.
fn read_request(c: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends the request with `Connection: close` and reads the whole answer.
fn forward(upstream: &str, request: &[u8]) -> Option<Vec<u8>> {
    let head_end = find(request, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&request[..head_end]);
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if line.is_empty() {
            continue;
        }
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).ok()?;
    up.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    up.write_all(out.as_bytes()).ok()?;
    up.write_all(&request[head_end..]).ok()?;
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).ok()?;
    Some(resp)
}
