//! What Ferry's two desktop processes say to each other.
//!
//! `ferry-app` (crates/ferry-desktop) is the resident process: the engine,
//! the tray, notifications. `ferry-window` (src-tauri) exists only while the
//! window is open; it is a view. They talk over the window process's stdin
//! and stdout, one JSON document per line:
//!
//! - window → app: [`Call`] — a UI command with an id;
//! - app → window: [`HostMessage`] — the [`Reply`](HostMessage::Reply) to a
//!   call, and pushes (status, engine events, "settings changed", "come to
//!   the front", "close").
//!
//! Everything here is local to one user's session; no token ever crosses:
//! sign-in sends a password one way and gets ok/error back.

use std::io::{self, BufRead, Write};

use ferry_engine::{ConflictPolicy, EngineEvent, MutationState, Resolution, Side, Status};
use serde::{Deserialize, Serialize};
#[cfg(feature = "ts")]
use ts_rs::TS;

mod views;
pub use views::{AppInfo, PolicyRow, Settings};

/// The engine's value types that cross (the window uses only these).
pub mod engine {
    pub use ferry_engine::{
        ConflictPolicy, ConflictView, EngineEvent, LocalRecord, MutationState, QueueItem, Resolution, ResolutionEntry,
        Side, Status, SyncRun, SyncState,
    };
}

include!("command_names.rs");

/// A UI command. The variant names (snake case) are the Tauri command names
/// the window exposes to its web view; their fields are the arguments.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", content = "args", rename_all = "snake_case")]
pub enum Request {
    AppInfo,
    Status,
    QueuePage {
        filter: Option<MutationState>,
        after: Option<i64>,
        limit: Option<u32>,
    },
    Conflicts {
        limit: Option<u32>,
    },
    Resolve {
        conflict_id: String,
        resolution: Resolution,
    },
    ResolveAll {
        keep: Side,
        ids: Option<Vec<String>>,
    },
    /// Resolutions, newest first; `before`: older than this entry (paging).
    History {
        before: Option<i64>,
        limit: Option<u32>,
    },
    SyncRuns {
        limit: Option<u32>,
    },
    Restore {
        history_id: i64,
    },
    Retry {
        mutation_id: String,
    },
    RetryAll,
    /// A failed change replaced by the user's corrected fields and sent
    /// again, in one step.
    Correct {
        mutation_id: String,
        fields: serde_json::Map<String, serde_json::Value>,
    },
    Discard {
        mutation_id: String,
    },
    SyncNow,
    SetPaused {
        paused: bool,
    },
    Settings,
    SetServer {
        url: String,
    },
    SetPullInterval {
        secs: u64,
    },
    SetNotifications {
        on: bool,
    },
    SetAutostart {
        on: bool,
    },
    SetPolicy {
        entity: String,
        policy: ConflictPolicy,
    },
    /// The language of the window, tray and notifications: `"system"`,
    /// `"nb"` or `"en"`.
    SetLanguage {
        language: String,
    },
    /// Which field names an entity's records in lists (`None`: the default
    /// rule — `title`, `name`, `description`).
    SetTitleField {
        entity: String,
        field: Option<String>,
    },
    /// Writes a diagnostics archive for a helper to look at; answers its
    /// path. Records' contents only when `include_records`.
    SaveDiagnostics {
        include_records: bool,
    },
    Login {
        user: String,
        password: String,
    },
    Logout,
}

impl Request {
    /// The command's name, for logs (never its arguments: a login carries a
    /// password).
    pub fn name(&self) -> &'static str {
        match self {
            Request::AppInfo => "app_info",
            Request::Status => "status",
            Request::QueuePage { .. } => "queue_page",
            Request::Conflicts { .. } => "conflicts",
            Request::Resolve { .. } => "resolve",
            Request::ResolveAll { .. } => "resolve_all",
            Request::History { .. } => "history",
            Request::SyncRuns { .. } => "sync_runs",
            Request::Restore { .. } => "restore",
            Request::Retry { .. } => "retry",
            Request::RetryAll => "retry_all",
            Request::Correct { .. } => "correct",
            Request::Discard { .. } => "discard",
            Request::SyncNow => "sync_now",
            Request::SetPaused { .. } => "set_paused",
            Request::Settings => "settings",
            Request::SetServer { .. } => "set_server",
            Request::SetPullInterval { .. } => "set_pull_interval",
            Request::SetNotifications { .. } => "set_notifications",
            Request::SetAutostart { .. } => "set_autostart",
            Request::SetPolicy { .. } => "set_policy",
            Request::SetLanguage { .. } => "set_language",
            Request::SetTitleField { .. } => "set_title_field",
            Request::SaveDiagnostics { .. } => "save_diagnostics",
            Request::Login { .. } => "login",
            Request::Logout => "logout",
        }
    }
}

/// Only the name: arguments may hold a password.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Request::{}(…)", self.name())
    }
}

/// Window → app: one command to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: u64,
    #[serde(flatten)]
    pub request: Request,
}

/// A command's answer: its JSON result, or a message for people.
pub type Answer = Result<serde_json::Value, String>;

/// App → window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HostMessage {
    /// The answer to the [`Call`] with this id.
    Reply { id: u64, answer: Answer },
    /// The engine's status changed (or the periodic refresh of "synced
    /// 2 min ago").
    Status { status: Status },
    /// Something happened that views may want to reload for.
    Event { event: EngineEvent },
    /// Server, account, autostart, notification, language or title-field
    /// settings changed.
    SettingsChanged,
    /// Come to the front ("Open Ferry" while the window is already open).
    Focus,
    /// The app is quitting: close the window and exit.
    Close,
}

/// Names of the Tauri events the window emits to its web view.
pub mod events {
    pub const STATUS: &str = "ferry://status";
    pub const ENGINE: &str = "ferry://event";
    pub const SETTINGS: &str = "ferry://settings";
}

/// Writes one message as one line and flushes it.
pub fn write_line<W: Write, T: Serialize>(out: &mut W, msg: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Reads the next message. `Ok(None)` at the end of the stream; a line that
/// is not a message (e.g. a library printing to stdout) is an `Err` of kind
/// `InvalidData` that the caller may skip.
pub fn read_line<R: BufRead, T: for<'de> Deserialize<'de>>(input: &mut R, buf: &mut String) -> io::Result<Option<T>> {
    buf.clear();
    if input.read_line(buf)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(buf.trim_end())
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not a Ferry IPC message ({e})")))
}

#[cfg(feature = "ts")]
#[doc(hidden)]
pub fn export_bindings(dir: &std::path::Path) -> Result<(), ts_rs::ExportError> {
    use ferry_engine::{ConflictView, LocalRecord, QueueItem, ResolutionEntry, SyncRun, SyncState};
    macro_rules! export {
        ($($t:ty),* $(,)?) => { $( <$t as TS>::export_all_to(dir)?; )* };
    }
    export!(
        Status,
        SyncState,
        EngineEvent,
        MutationState,
        QueueItem,
        LocalRecord,
        ConflictPolicy,
        Side,
        ConflictView,
        ResolutionEntry,
        SyncRun,
        Resolution,
        AppInfo,
        PolicyRow,
        Settings,
    );
    Ok(())
}

#[cfg(test)]
mod tests;
