//! The window, as a child process that exists only while it is open.
//!
//! `ferry-window` (src-tauri) is a Tauri web view. Keeping it in its own
//! process means that closing the window gives back everything WebKit and
//! GTK took — the resident `ferry-app` never loads either. The two talk over
//! the child's stdin/stdout in `ferry_ipc` lines: the window sends UI
//! commands, this side answers them and pushes status and events.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use ferry_ipc::{Call, HostMessage, Request};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};

/// The answer to one window command, computed later.
pub type PendingAnswer = std::pin::Pin<Box<dyn std::future::Future<Output = ferry_ipc::Answer> + Send>>;

/// Runs a window's command; given to the window manager by the app.
pub type Handler = Arc<dyn Fn(Request) -> PendingAnswer + Send + Sync>;

struct Open {
    to_window: mpsc::UnboundedSender<HostMessage>,
    pid: Option<u32>,
    kill: Option<oneshot::Sender<()>>,
}

/// The window process, if one is open.
#[derive(Clone)]
pub struct Window {
    open: Arc<Mutex<Option<Open>>>,
    program: PathBuf,
    args: Vec<String>,
    handler: Handler,
    /// What a freshly opened window is told first (the current status).
    greeting: Arc<dyn Fn() -> Vec<HostMessage> + Send + Sync>,
}

/// Where `ferry-window` is: `FERRY_WINDOW_BIN`, else next to this program.
pub fn default_program() -> PathBuf {
    if let Some(p) = std::env::var_os("FERRY_WINDOW_BIN") {
        return PathBuf::from(p);
    }
    let name = if cfg!(windows) { "ferry-window.exe" } else { "ferry-window" };
    std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join(name))).unwrap_or_else(|| PathBuf::from(name))
}

impl Window {
    pub fn new(
        program: PathBuf,
        args: Vec<String>,
        handler: Handler,
        greeting: Arc<dyn Fn() -> Vec<HostMessage> + Send + Sync>,
    ) -> Window {
        Window { open: Arc::new(Mutex::new(None)), program, args, handler, greeting }
    }

    pub fn is_open(&self) -> bool {
        self.open.lock().unwrap().is_some()
    }

    /// Shows the window: brings an open one to the front, or starts one.
    pub fn open(&self) -> std::io::Result<()> {
        let mut open = self.open.lock().unwrap();
        if let Some(o) = open.as_ref() {
            if o.to_window.send(HostMessage::Focus).is_ok() {
                return Ok(());
            }
        }
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot start the window ({}): {e}", self.program.display()))
            })?;
        let pid = child.id();
        tracing::info!(pid, "window opened");
        let (tx, rx) = mpsc::unbounded_channel();
        for m in (self.greeting)() {
            let _ = tx.send(m);
        }
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        tokio::spawn(write_messages(stdin, rx));
        tokio::spawn(serve_calls(stdout, tx.clone(), self.handler.clone()));
        let (kill, killed) = oneshot::channel();
        tokio::spawn(reap(child, killed, self.open.clone(), pid));
        *open = Some(Open { to_window: tx, pid, kill: Some(kill) });
        Ok(())
    }

    /// Pushes a message to the open window, if any.
    pub fn send(&self, msg: HostMessage) {
        if let Some(o) = self.open.lock().unwrap().as_ref() {
            let _ = o.to_window.send(msg);
        }
    }

    /// Asks the window to close and waits a little for it to go.
    pub async fn close(&self) {
        self.send(HostMessage::Close);
        for _ in 0..50 {
            if !self.is_open() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let kill = self.open.lock().unwrap().as_mut().and_then(|o| o.kill.take());
        if let Some(kill) = kill {
            tracing::warn!("the window did not close within 5 s; ending it");
            let _ = kill.send(());
        }
    }
}

async fn write_messages(mut stdin: ChildStdin, mut rx: mpsc::UnboundedReceiver<HostMessage>) {
    while let Some(msg) = rx.recv().await {
        let mut line = Vec::new();
        if ferry_ipc::write_line(&mut line, &msg).is_err() {
            continue;
        }
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            break; // the window is gone; `reap` cleans up
        }
        if matches!(msg, HostMessage::Close) {
            break;
        }
    }
}

/// Reads the window's calls and answers each on its own task, so a slow one
/// (a sign-in) never holds up the rest.
async fn serve_calls(stdout: ChildStdout, tx: mpsc::UnboundedSender<HostMessage>, handler: Handler) {
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!("reading from the window: {e}");
                break;
            }
        };
        let call: Call = match serde_json::from_str(&line) {
            Ok(c) => c,
            Err(_) => {
                // Something else wrote to the window's stdout: not ours.
                tracing::debug!(len = line.len(), "ignored a line from the window that is not a call");
                continue;
            }
        };
        let (tx, handler) = (tx.clone(), handler.clone());
        tokio::spawn(async move {
            let name = call.request.name();
            let answer = handler(call.request).await;
            if let Err(e) = &answer {
                tracing::info!(command = name, "command refused: {e}");
            }
            let _ = tx.send(HostMessage::Reply { id: call.id, answer });
        });
    }
}

async fn reap(mut child: Child, killed: oneshot::Receiver<()>, open: Arc<Mutex<Option<Open>>>, pid: Option<u32>) {
    let status = tokio::select! {
        s = child.wait() => s,
        Ok(()) = killed => {
            let _ = child.kill().await;
            child.wait().await
        }
    };
    match status {
        Ok(status) => tracing::info!(?pid, %status, "window closed"),
        Err(e) => tracing::warn!(?pid, "waiting for the window: {e}"),
    }
    let mut open = open.lock().unwrap();
    if open.as_ref().is_some_and(|o| o.pid == pid) {
        *open = None;
    }
    drop(open);
    crate::memory::release();
}
