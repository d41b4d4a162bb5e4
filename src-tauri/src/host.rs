//! The link to `ferry-app`, the resident process that started this window:
//! calls go out on stdout, answers and pushes come in on stdin, one
//! `ferry_ipc` line each. Only this module writes to stdout.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_ipc::{events, Answer, Call, HostMessage, Request};
use tauri::{AppHandle, Emitter, Runtime};
use tokio::sync::oneshot;

/// Longest wait for an answer; a sign-in against a slow server is the
/// slowest command.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone)]
pub struct HostLink {
    inner: Arc<Inner>,
}

struct Inner {
    out: Mutex<Box<dyn Write + Send>>,
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
}

impl HostLink {
    pub fn new(out: Box<dyn Write + Send>) -> HostLink {
        HostLink {
            inner: Arc::new(Inner { out: Mutex::new(out), next_id: AtomicU64::new(1), waiting: Default::default() }),
        }
    }

    /// Runs a command in `ferry-app` and waits for its answer.
    pub async fn call(&self, request: Request) -> Answer {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().unwrap().insert(id, tx);
        // A pipe write can block (ferry-app busy): keep it off the runtime.
        let inner = self.inner.clone();
        let call = Call { id, request };
        let sent = tokio::task::spawn_blocking(move || ferry_ipc::write_line(&mut *inner.out.lock().unwrap(), &call))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = sent {
            self.inner.waiting.lock().unwrap().remove(&id);
            return Err(format!("Ferry's background process is gone ({e}); start Ferry again"));
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err("Ferry's background process stopped answering; start Ferry again".into()),
            Err(_) => {
                self.inner.waiting.lock().unwrap().remove(&id);
                Err("Ferry's background process did not answer in time; try again".into())
            }
        }
    }

    pub(crate) fn deliver(&self, id: u64, answer: Answer) {
        if let Some(tx) = self.inner.waiting.lock().unwrap().remove(&id) {
            let _ = tx.send(answer);
        }
    }

    /// Reads `ferry-app`'s messages until it closes the pipe (it quit, or
    /// asked us to close): answers go to their callers, pushes become Tauri
    /// events for the web view.
    pub fn serve<R: Runtime>(&self, app: AppHandle<R>, input: impl BufRead + Send + 'static) {
        let link = self.clone();
        std::thread::Builder::new()
            .name("ferry-host".into())
            .spawn(move || {
                let mut input = input;
                let mut line = String::new();
                loop {
                    match ferry_ipc::read_line::<_, HostMessage>(&mut input, &mut line) {
                        Ok(Some(msg)) => {
                            if !link.handle(&app, msg) {
                                break;
                            }
                        }
                        Ok(None) => {
                            tracing::info!("ferry-app closed the connection; closing the window");
                            break;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                            tracing::warn!("{e}");
                        }
                        Err(e) => {
                            tracing::warn!("reading from ferry-app: {e}");
                            break;
                        }
                    }
                }
                app.exit(0);
            })
            .expect("cannot start a thread");
    }

    /// Returns false when the window should close.
    fn handle<R: Runtime>(&self, app: &AppHandle<R>, msg: HostMessage) -> bool {
        let emitted = match msg {
            HostMessage::Reply { id, answer } => {
                self.deliver(id, answer);
                Ok(())
            }
            HostMessage::Status { status } => app.emit(events::STATUS, status),
            HostMessage::Event { event } => app.emit(events::ENGINE, event),
            HostMessage::SettingsChanged => app.emit(events::SETTINGS, ()),
            HostMessage::Focus => {
                crate::window::open(app);
                Ok(())
            }
            HostMessage::Close => return false,
        };
        if let Err(e) = emitted {
            tracing::warn!("could not pass an update to the page: {e}");
        }
        true
    }
}
