//! A fault-injecting HTTP proxy for tests. It sits between a client and the
//! real server on 127.0.0.1 and, per request, passes it through or injects a
//! fault: an error status (500/502/503, 429 with Retry-After), a hang, a TCP
//! reset (RST, not an orderly close) before the request, while the client is
//! still sending it, after the server applied it or in the middle of the
//! answer, a truncated answer, a delay. Every connection carries one request
//! (`Connection: close`), so the mode in force when a request arrives decides
//! its fate.
//!
//! It can also run an action (the harness kills the client with SIGKILL) at
//! a protocol moment, e.g. right after it forwarded the server's answer to
//! the n-th `/v1/push`: see [`FaultProxy::arm`].

use std::collections::BTreeMap;
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
    /// Read the request head, then reset the connection (RST): the server
    /// never sees the request.
    ResetBeforeRequest,
    /// Forward, let the server apply it, then reset the connection (RST)
    /// without the answer.
    ResetAfterRequest,
    /// Forward, then return only the first half of the answer and close
    /// normally (FIN): a body shorter than its `Content-Length`.
    TruncateResponse,
    /// Forward, send the first half of the answer, then reset (RST).
    ResetMidResponse,
    /// Forward after a delay.
    Delay(Duration),
    /// Accept, read the request, never answer for this long, then close
    /// (unlike [`Fault::Hang`] it does not depend on the proxy's mode, so
    /// it works with a chooser).
    HangFor(Duration),
    /// Read the head and half of the body, forward only that to the server,
    /// then reset both connections (RST) while the client is still sending:
    /// the server sees a request cut off mid-body, the client a reset.
    ResetMidRequest,
    /// Forward, then return only the first `n` bytes of the answer (cut
    /// inside the status line, the headers or the body) and close.
    TruncateAt(usize),
}

impl Fault {
    /// What the fault does, for summaries (one label per kind).
    pub fn label(&self) -> &'static str {
        match self {
            Fault::Pass => "pass",
            Fault::Status { code: 429, .. } => "HTTP 429 + Retry-After",
            Fault::Status { code: 500, .. } => "HTTP 500",
            Fault::Status { code: 502, .. } => "HTTP 502",
            Fault::Status { code: 503, .. } => "HTTP 503",
            Fault::Status { .. } => "HTTP error status",
            Fault::Hang | Fault::HangFor(_) => "accept, never answer (client timeout)",
            Fault::ResetBeforeRequest => "TCP reset before the request reached the server",
            Fault::ResetAfterRequest => "TCP reset after the server applied (answer lost)",
            Fault::ResetMidRequest => "TCP reset mid-request (body cut)",
            Fault::ResetMidResponse => "TCP reset mid-response",
            Fault::TruncateResponse => "response truncated at half (FIN)",
            Fault::TruncateAt(_) => "response cut in status line/headers",
            Fault::Delay(_) => "delay 50-400 ms",
        }
    }

    fn resets_client(&self) -> bool {
        matches!(
            self,
            Fault::ResetBeforeRequest | Fault::ResetAfterRequest | Fault::ResetMidRequest | Fault::ResetMidResponse
        )
    }
}

/// A moment in one proxied exchange at which an armed action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Moment {
    /// The whole request arrived; the server has not seen it yet (it will).
    RequestReceived,
    /// The server answered (and applied the request); the client has none
    /// of the answer yet.
    ServerAnswered,
    /// The client has the first half of the answer.
    MidAnswer,
    /// The client has the whole answer; it has not had time to act on it.
    AfterAnswer,
}

impl Moment {
    pub fn label(self) -> &'static str {
        match self {
            Moment::RequestReceived => "request received, not yet forwarded",
            Moment::ServerAnswered => "server applied, answer not yet sent",
            Moment::MidAnswer => "half of the answer sent",
            Moment::AfterAnswer => "whole answer sent",
        }
    }
}

/// An action to run at `moment` of the `nth` (1-based) request whose path
/// starts with `path_prefix`.
struct Trigger {
    path_prefix: String,
    nth: u32,
    seen: u32,
    moment: Moment,
    action: Box<dyn FnOnce() + Send>,
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub requests: u64,
    pub passed: u64,
    pub injected: u64,
    /// Injected faults by [`Fault::label`].
    pub by_kind: BTreeMap<&'static str, u64>,
}

type Chooser = Box<dyn FnMut(&str) -> Fault + Send>;

struct Shared {
    upstream: String,
    fault: Mutex<Fault>,
    /// Optional: choose a fault per request (for random schedules).
    chooser: Mutex<Option<Chooser>>,
    requests: AtomicU64,
    passed: AtomicU64,
    injected: AtomicU64,
    by_kind: Mutex<BTreeMap<&'static str, u64>>,
    trigger: Mutex<Option<Trigger>>,
    /// The moment an armed action last ran at, until [`FaultProxy::disarm`].
    fired: Mutex<Option<Moment>>,
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
            by_kind: Mutex::new(BTreeMap::new()),
            trigger: Mutex::new(None),
            fired: Mutex::new(None),
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

    /// Runs `action` once, at `moment` of the `nth` request (1-based,
    /// counted from now) whose path starts with `path_prefix`. That request
    /// passes through without a fault (the chooser is still asked, so its
    /// sequence does not shift). Replaces an earlier armed action.
    pub fn arm(&self, path_prefix: &str, nth: u32, moment: Moment, action: impl FnOnce() + Send + 'static) {
        *self.shared.fired.lock().unwrap() = None;
        *self.shared.trigger.lock().unwrap() = Some(Trigger {
            path_prefix: path_prefix.into(),
            nth: nth.max(1),
            seen: 0,
            moment,
            action: Box::new(action),
        });
    }

    /// Drops the armed action if it has not run; returns the moment it ran
    /// at, if it did.
    pub fn disarm(&self) -> Option<Moment> {
        self.shared.trigger.lock().unwrap().take();
        self.shared.fired.lock().unwrap().take()
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
            by_kind: self.shared.by_kind.lock().unwrap().clone(),
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

/// Closes `stream` with a TCP reset: SO_LINGER 0 makes close(2) send RST and
/// drop unsent data, so the peer gets ECONNRESET, not an end of stream.
fn reset(stream: TcpStream) {
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Takes the armed trigger if this request is the one it waits for.
fn take_trigger(s: &Shared, path: &str) -> Option<Trigger> {
    let mut slot = s.trigger.lock().unwrap();
    let t = slot.as_mut()?;
    if !path.starts_with(&t.path_prefix) {
        return None;
    }
    t.seen += 1;
    if t.seen < t.nth {
        return None;
    }
    slot.take()
}

/// Runs the trigger's action if `now` is its moment.
fn fire(s: &Shared, trigger: &mut Option<Trigger>, now: Moment) {
    if trigger.as_ref().is_some_and(|t| t.moment == now) {
        let t = trigger.take().unwrap();
        *s.fired.lock().unwrap() = Some(now);
        (t.action)();
    }
}

fn handle(s: Arc<Shared>, mut client: TcpStream) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((mut request, head_end)) = read_head(&mut client) else { return };
    let line = String::from_utf8_lossy(&request[..request.iter().position(|&b| b == b'\r').unwrap_or(0)]).to_string();
    let path = line.split(' ').nth(1).unwrap_or("").to_string();
    let body_len = content_length(&request[..head_end]);
    s.requests.fetch_add(1, Ordering::SeqCst);
    let chosen = match s.chooser.lock().unwrap().as_mut() {
        Some(f) => f(&path),
        None => s.fault.lock().unwrap().clone(),
    };
    let mut trigger = take_trigger(&s, &path);
    // The exchange the harness waits for must happen: it passes unharmed.
    let fault = if trigger.is_some() { Fault::Pass } else { chosen };
    s.log.lock().unwrap().push((Instant::now(), line, format!("{fault:?}")));
    if fault == Fault::Pass {
        s.passed.fetch_add(1, Ordering::SeqCst);
    } else {
        s.injected.fetch_add(1, Ordering::SeqCst);
        *s.by_kind.lock().unwrap().entry(fault.label()).or_default() += 1;
    }

    match &fault {
        Fault::ResetBeforeRequest => return reset(client),
        Fault::ResetMidRequest => {
            // Read only half of the body: the client is still sending.
            let cut = head_end + body_len / 2;
            if read_until(&mut client, &mut request, cut).is_some() {
                if let Ok(mut up) = TcpStream::connect(&s.upstream) {
                    let _ = up.write_all(&request[..cut]);
                    reset(up);
                }
            }
            return reset(client);
        }
        _ => {}
    }
    if read_until(&mut client, &mut request, head_end + body_len).is_none() {
        return;
    }
    match fault {
        Fault::Pass | Fault::Delay(_) => {
            if let Fault::Delay(d) = fault {
                std::thread::sleep(d);
            }
            fire(&s, &mut trigger, Moment::RequestReceived);
            if let Some(resp) = forward(&s.upstream, &request) {
                fire(&s, &mut trigger, Moment::ServerAnswered);
                let half = resp.len() / 2;
                let _ = client.write_all(&resp[..half]);
                if trigger.as_ref().is_some_and(|t| t.moment == Moment::MidAnswer) {
                    let _ = client.flush();
                    // Let the client read the half before it dies.
                    std::thread::sleep(Duration::from_millis(5));
                    fire(&s, &mut trigger, Moment::MidAnswer);
                }
                let _ = client.write_all(&resp[half..]);
                let _ = client.flush();
                fire(&s, &mut trigger, Moment::AfterAnswer);
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
        Fault::ResetAfterRequest => {
            let _ = forward(&s.upstream, &request);
        }
        Fault::TruncateResponse => {
            if let Some(resp) = forward(&s.upstream, &request) {
                let _ = client.write_all(&resp[..resp.len() / 2]);
            }
        }
        Fault::ResetMidResponse => {
            if let Some(resp) = forward(&s.upstream, &request) {
                let _ = client.write_all(&resp[..resp.len() / 2]);
                // Give the half a moment to be read: RST drops what is unread.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Fault::HangFor(d) => {
            let until = Instant::now() + d;
            while Instant::now() < until && !s.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Fault::TruncateAt(n) => {
            if let Some(resp) = forward(&s.upstream, &request) {
                let _ = client.write_all(&resp[..n.min(resp.len())]);
            }
        }
        Fault::ResetBeforeRequest | Fault::ResetMidRequest => unreachable!("handled above"),
    }
    // An armed action whose moment never came (the server was down): run it
    // now, so the harness's process still dies at this exchange.
    if let Some(t) = trigger.take() {
        *s.fired.lock().unwrap() = Some(t.moment);
        (t.action)();
    }
    if fault.resets_client() {
        reset(client);
    } else {
        let _ = client.shutdown(Shutdown::Both);
    }
}

/// Reads up to the end of the head: (bytes so far, head length).
fn read_head(c: &mut TcpStream) -> Option<(Vec<u8>, usize)> {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 16384];
    loop {
        let n = c.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            return Some((buf, p + 4));
        }
        if buf.len() > 1 << 20 {
            return None;
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .to_ascii_lowercase()
        .lines()
        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0)
}

/// Reads until `buf` holds at least `len` bytes.
fn read_until(c: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> Option<()> {
    let mut chunk = [0u8; 16384];
    while buf.len() < len {
        let want = (len - buf.len()).min(chunk.len());
        let n = c.read(&mut chunk[..want]).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(())
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

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::sync::mpsc;

    use super::*;

    /// An upstream that records how many bytes of each request it received
    /// and answers 200 with a 2 KiB body.
    fn upstream() -> (String, mpsc::Receiver<usize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut conn) = conn else { continue };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let Some((mut buf, head_end)) = read_head(&mut conn) else { return };
                    let want = head_end + content_length(&buf[..head_end]);
                    let complete = read_until(&mut conn, &mut buf, want).is_some();
                    let _ = tx.send(buf.len());
                    if complete {
                        let body = "x".repeat(2048);
                        let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                    }
                });
            }
        });
        (addr, rx)
    }

    /// Sends a request with a body of `body_len` bytes and reads the answer:
    /// (bytes of answer, the first error).
    fn exchange(proxy: &FaultProxy, body_len: usize) -> (usize, Option<ErrorKind>) {
        let mut c = TcpStream::connect(proxy.url().trim_start_matches("http://")).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!("POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: {body_len}\r\n\r\n");
        if let Err(e) = c.write_all(head.as_bytes()).and_then(|_| c.write_all(&vec![b'{'; body_len])) {
            return (0, Some(e.kind()));
        }
        let mut got = 0;
        let mut chunk = [0u8; 4096];
        loop {
            match c.read(&mut chunk) {
                Ok(0) => return (got, None),
                Ok(n) => got += n,
                Err(e) => return (got, Some(e.kind())),
            }
        }
    }

    fn is_reset(e: Option<ErrorKind>) -> bool {
        matches!(e, Some(ErrorKind::ConnectionReset | ErrorKind::BrokenPipe))
    }

    #[test]
    fn reset_faults_are_tcp_resets_and_cut_where_they_say() {
        let (up, seen) = upstream();
        let proxy = FaultProxy::start(&up);
        const BODY: usize = 8 << 20; // more than the socket buffers hold

        proxy.set(Fault::ResetBeforeRequest);
        let (_, err) = exchange(&proxy, 1000);
        assert!(is_reset(err), "reset before the request: {err:?}");
        assert!(seen.recv_timeout(Duration::from_millis(300)).is_err(), "the server saw nothing");

        proxy.set(Fault::ResetMidRequest);
        let (_, err) = exchange(&proxy, BODY);
        assert!(is_reset(err), "reset while the client still sends: {err:?}");
        let got = seen.recv_timeout(Duration::from_secs(10)).expect("the server saw the cut request");
        assert!(got > 100 && got < BODY, "the server got {got} of {BODY} body bytes");

        proxy.set(Fault::ResetAfterRequest);
        let (answer, err) = exchange(&proxy, 1000);
        assert!(is_reset(err), "reset after the request: {err:?}");
        assert_eq!(answer, 0);
        assert!(seen.recv_timeout(Duration::from_secs(10)).unwrap() > 1000, "the server got it all");

        proxy.set(Fault::ResetMidResponse);
        let (_, err) = exchange(&proxy, 10);
        assert!(is_reset(err), "reset mid-response: {err:?}");
        seen.recv_timeout(Duration::from_secs(10)).unwrap();

        // A truncation is an orderly close: part of the answer, then EOF.
        proxy.set(Fault::TruncateResponse);
        let (answer, err) = exchange(&proxy, 10);
        assert_eq!(err, None);
        assert!(answer > 100 && answer < 2048, "{answer}");
        seen.recv_timeout(Duration::from_secs(10)).unwrap();
    }

    #[test]
    fn an_armed_action_runs_at_its_moment_of_the_nth_matching_request() {
        let (up, seen) = upstream();
        let proxy = FaultProxy::start(&up);
        proxy.set(Fault::Status { code: 503, retry_after: None });
        let (tx, rx) = mpsc::channel();
        proxy.arm("/v1/push", 2, Moment::AfterAnswer, move || tx.send(()).unwrap());
        // First push: the fault; second: passes, then the action runs.
        assert!(exchange(&proxy, 10).0 > 0);
        assert!(rx.try_recv().is_err());
        let (answer, err) = exchange(&proxy, 10);
        assert_eq!(err, None);
        assert!(answer > 2048, "the armed request passed despite the fault: {answer}");
        rx.recv_timeout(Duration::from_secs(5)).expect("the action ran");
        assert_eq!(proxy.disarm(), Some(Moment::AfterAnswer));
        assert_eq!(proxy.disarm(), None, "disarm clears what fired");
        seen.recv_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(proxy.counts().by_kind.get("HTTP 503"), Some(&1));
    }
}
