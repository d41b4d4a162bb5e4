//! Logs to stderr and, once the data dir is known and ready, to the
//! engine's rolling log files (`DATA_DIR/logs`), which diagnostics archives
//! include. The file joins late because the demo empties its data dir after
//! start-up checks, and a file opened before that would be deleted under us.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_subscriber::fmt::writer::{EitherWriter, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// The log file's writer, set once it is open; lines before go to stderr only.
#[derive(Clone, Default)]
struct LateFile(Arc<OnceLock<NonBlocking>>);

impl<'a> MakeWriter<'a> for LateFile {
    type Writer = EitherWriter<NonBlocking, std::io::Sink>;

    fn make_writer(&'a self) -> Self::Writer {
        match self.0.get() {
            Some(w) => EitherWriter::A(w.clone()),
            None => EitherWriter::B(std::io::sink()),
        }
    }
}

/// Keeps the log file's background writer alive; dropping it (at exit)
/// flushes what is left.
pub struct Logs {
    file: LateFile,
    guard: Mutex<Option<WorkerGuard>>,
}

/// Installs the global subscriber: stderr now, the file once [`Logs::open_file`] runs.
pub fn init() -> Logs {
    let file = LateFile::default();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(file.clone()))
        .init();
    Logs { file, guard: Mutex::new(None) }
}

impl Logs {
    /// Starts writing to `data_dir`'s log files. A failure only costs the
    /// file (stderr goes on), so it is logged, not returned.
    pub fn open_file(&self, data_dir: &Path) {
        match crate::engine_bridge::log_file_writer(data_dir) {
            Ok((writer, guard)) => {
                if self.file.0.set(writer).is_ok() {
                    *self.guard.lock().unwrap_or_else(|e| e.into_inner()) = Some(guard);
                    tracing::info!(dir = %data_dir.display(), "logging to the data dir's logs");
                }
            }
            Err(e) => tracing::warn!("no log file in {} ({e}); logging to stderr only", data_dir.display()),
        }
    }
}
