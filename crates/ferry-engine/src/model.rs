//! Public value types the engine hands out: status, events, views of the
//! store. They serialize to JSON for the CLI's `--json` output and the
//! desktop app's IPC (with the `ts` feature they also derive TypeScript
//! definitions, so the UI never re-declares them by hand).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(feature = "ts")]
use ts_rs::TS;

pub type Fields = Map<String, Value>;

/// The engine's overall state, one word.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(TS))]
pub enum SyncState {
    Idle,
    Syncing,
    Offline,
    Paused,
    Error,
    Stalled,
    NeedsSignIn,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Idle => "idle",
            SyncState::Syncing => "syncing",
            SyncState::Offline => "offline",
            SyncState::Paused => "paused",
            SyncState::Error => "error",
            SyncState::Stalled => "stalled",
            SyncState::NeedsSignIn => "needs-sign-in",
        }
    }
}

/// What kind of trouble the last failure was, so the window and the tray
/// can say it in plain words (the text stays in `last_error` for Details).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(TS))]
pub enum Problem {
    /// No connection, DNS, timeout, connection reset.
    Unreachable,
    /// 5xx / server unavailable (503).
    ServerError,
    /// 429: the server asks to wait.
    RateLimited,
    /// TLS certificate not trusted / wrong host.
    UntrustedCertificate,
    /// Refresh failed for good / not signed in.
    SignInNeeded,
    /// Not a Ferry answer (proxy page, wrong JSON).
    BadAnswer,
    /// The server refused the request itself (a 4xx other than the above).
    Refused,
    /// The local database or disk (full, read-only, corrupt).
    LocalData,
    Other,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::Unreachable => "unreachable",
            Problem::ServerError => "server-error",
            Problem::RateLimited => "rate-limited",
            Problem::UntrustedCertificate => "untrusted-certificate",
            Problem::SignInNeeded => "sign-in-needed",
            Problem::BadAnswer => "bad-answer",
            Problem::Refused => "refused",
            Problem::LocalData => "local-data",
            Problem::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "unreachable" => Problem::Unreachable,
            "server-error" => Problem::ServerError,
            "rate-limited" => Problem::RateLimited,
            "untrusted-certificate" => Problem::UntrustedCertificate,
            "sign-in-needed" => Problem::SignInNeeded,
            "bad-answer" => Problem::BadAnswer,
            "refused" => Problem::Refused,
            "local-data" => Problem::LocalData,
            "other" => Problem::Other,
            _ => return None,
        })
    }
}

/// Progress of the current sync run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct Progress {
    /// Mutations settled (applied, failed or in conflict) in this run.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub uploaded: u64,
    /// Mutations that were pending when the run started plus those written since.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub to_upload: u64,
    /// Remote changes applied in this run.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub downloaded: u64,
}

/// Everything the app, the tray and the CLI show about sync, in one value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct Status {
    pub state: SyncState,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub pending: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub in_flight: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub failed: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub conflicts: u64,
    /// Last time a full cycle (push and pull) finished, ms since epoch.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub last_sync_at: Option<i64>,
    /// What went wrong last, for people (cleared by a successful cycle).
    pub last_error: Option<String>,
    /// What kind of trouble `last_error` is; `None` exactly when it is.
    pub problem: Option<Problem>,
    /// When the engine will try again after a transient failure.
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub next_retry_at: Option<i64>,
    pub progress: Option<Progress>,
    pub server: Option<String>,
    pub user: Option<String>,
    pub paused: bool,
}

impl Status {
    /// "3 waiting · 1 conflict · last sync 2 min ago" — the tray's status
    /// line. It says "synced" only when that is the whole truth: idle, not
    /// paused, nothing waiting, failed or in conflict.
    pub fn summary(&self, now_ms: i64) -> String {
        let mut parts = Vec::new();
        match self.state {
            SyncState::NeedsSignIn => parts.push("sign-in needed".to_string()),
            SyncState::Offline => parts.push("offline".to_string()),
            SyncState::Paused => parts.push("paused".to_string()),
            SyncState::Stalled => parts.push("stalled".to_string()),
            SyncState::Error => parts.push("error".to_string()),
            SyncState::Syncing => parts.push("syncing".to_string()),
            SyncState::Idle => {}
        }
        let waiting = self.pending + self.in_flight;
        if waiting > 0 {
            parts.push(format!("{waiting} waiting"));
        }
        if self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        if self.conflicts > 0 {
            let s = if self.conflicts == 1 { "" } else { "s" };
            parts.push(format!("{} conflict{s}", self.conflicts));
        }
        let settled = self.state == SyncState::Idle && !self.paused && parts.is_empty();
        match self.last_sync_at {
            Some(at) if settled => parts.push(format!("synced {}", ago(now_ms - at))),
            Some(at) => parts.push(format!("last sync {}", ago(now_ms - at))),
            None => parts.push("never synced".to_string()),
        }
        parts.join(" · ")
    }
}

/// "just now", "5 s ago", "2 min ago", "3 h ago", "2 d ago".
pub fn ago(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s < 5 {
        "just now".into()
    } else if s < 60 {
        format!("{s} s ago")
    } else if s < 3600 {
        format!("{} min ago", s / 60)
    } else if s < 86_400 {
        format!("{} h ago", s / 3600)
    } else {
        format!("{} d ago", s / 86_400)
    }
}

/// Things that happened, for notifications and logs. Status says how things
/// are; events say what just changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(TS))]
pub enum EngineEvent {
    /// A cycle finished with nothing left to upload.
    SyncCompleted {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        uploaded: u64,
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        downloaded: u64,
        /// The server could not be reached before this cycle.
        after_offline: bool,
    },
    /// The server could not be reached.
    WentOffline { reason: String },
    /// Items are pending and nothing progressed for the stall timeout.
    Stalled {
        #[cfg_attr(feature = "ts", ts(type = "number"))]
        pending: u64,
    },
    /// A conflict was parked for the user (`manual` policy).
    ConflictNeedsUser { conflict_id: String, entity: String, record_id: String },
    /// A conflict was settled by policy.
    ConflictAutoResolved { entity: String, record_id: String, winner: String },
    /// The server refused a mutation for good.
    MutationFailed { mutation_id: String, entity: String, record_id: String, reason: String },
    /// Refresh failed for good; the user must sign in again.
    NeedsSignIn { reason: String },
}

/// State of one outbox entry.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(TS))]
pub enum MutationState {
    Pending,
    InFlight,
    Failed,
    Conflict,
}

impl MutationState {
    pub fn as_str(self) -> &'static str {
        match self {
            MutationState::Pending => "pending",
            MutationState::InFlight => "in-flight",
            MutationState::Failed => "failed",
            MutationState::Conflict => "conflict",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => MutationState::Pending,
            "in-flight" | "in_flight" | "inflight" => MutationState::InFlight,
            "failed" => MutationState::Failed,
            "conflict" => MutationState::Conflict,
            _ => return None,
        })
    }
}

/// One outbox entry as the user sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct QueueItem {
    pub mutation_id: String,
    /// Position in the outbox (use as the `after` cursor for the next page).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: i64,
    pub entity: String,
    pub record_id: String,
    /// The record's human label (its title field, else the record id; see
    /// [`crate::label`]).
    pub label: String,
    pub op: String,
    pub state: MutationState,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub attempts: i64,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub next_attempt_at: Option<i64>,
    pub last_error: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub edited_at: i64,
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub payload: Option<Fields>,
}

/// A record as stored locally.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct LocalRecord {
    pub entity: String,
    pub id: String,
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub data: Option<Fields>,
    pub deleted: bool,
    /// Server version this local copy is based on (0 = never on the server).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub version: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub updated_at: i64,
    /// Local changes not yet on the server.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub pending: u64,
    pub in_conflict: bool,
}

/// How conflicts of one entity type are settled.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(TS))]
pub enum ConflictPolicy {
    /// The edit made last (server clock) wins; ties go to the server.
    #[default]
    Lww,
    ServerWins,
    ClientWins,
    /// Three-way merge per field; fields both sides changed fall back to lww.
    Merge,
    /// Parked for the user.
    Manual,
}

impl ConflictPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::Lww => "lww",
            ConflictPolicy::ServerWins => "server-wins",
            ConflictPolicy::ClientWins => "client-wins",
            ConflictPolicy::Merge => "merge",
            ConflictPolicy::Manual => "manual",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lww" => ConflictPolicy::Lww,
            "server-wins" => ConflictPolicy::ServerWins,
            "client-wins" => ConflictPolicy::ClientWins,
            "merge" => ConflictPolicy::Merge,
            "manual" => ConflictPolicy::Manual,
            _ => return None,
        })
    }
}

/// Which side of a conflict to keep.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(TS))]
pub enum Side {
    Local,
    Remote,
}

/// An open conflict, parked for the user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct ConflictView {
    pub id: String,
    pub entity: String,
    pub record_id: String,
    /// The record's human label (its title field, else the record id; see
    /// [`crate::label`]).
    pub label: String,
    /// The last server state both sides started from (`None`: the record was new).
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub base: Option<Fields>,
    /// This device's version (`None`: deleted here).
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub local: Option<Fields>,
    /// The server's version (`None`: deleted on the server).
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub remote: Option<Fields>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub remote_version: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub local_edited_at: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub remote_edited_at: i64,
    pub remote_edited_by: String,
    /// Fields whose local and remote values differ.
    pub differing_fields: Vec<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub detected_at: i64,
}

/// One automatic (or manual) resolution, kept for review.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct ResolutionEntry {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub id: i64,
    pub entity: String,
    pub record_id: String,
    /// The record's human label (its title field, else the record id; see
    /// [`crate::label`]).
    pub label: String,
    pub policy: ConflictPolicy,
    /// "local", "remote" or "merged".
    pub winner: String,
    /// Why, for people ("remote edit made later: 09:14 vs 08:02").
    pub reason: String,
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub local: Option<Fields>,
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub remote: Option<Fields>,
    #[cfg_attr(feature = "ts", ts(type = "Record<string, unknown> | null"))]
    pub result: Option<Fields>,
    /// Mutation ids of local edits this resolution superseded.
    pub superseded: Vec<String>,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub at: i64,
    /// The local side lost and can be restored (queued again as a new edit).
    pub restorable: bool,
    /// The open conflict this settled (`None`: settled by policy at once).
    pub conflict_id: Option<String>,
    /// The mutation this resolution queued to upload its result (`None`: the
    /// result was the server's version, nothing to upload).
    pub upload_mutation_id: Option<String>,
}

/// One finished sync run, for the history view.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct SyncRun {
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub started_at: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub finished_at: i64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub uploaded: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub downloaded: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub failed: u64,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub conflicts: u64,
    /// `None` if the run succeeded.
    pub error: Option<String>,
    /// What kind of trouble `error` was (`None` if the run succeeded, and
    /// for runs recorded before kinds were kept).
    pub problem: Option<Problem>,
}

/// The user's choice for an open conflict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct Resolution {
    /// Side for every field not listed in `fields` (and for delete-vs-edit).
    pub keep: Option<Side>,
    /// Per-field picks.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, Side>,
}

/// What one `sync_once` achieved.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct SyncReport {
    pub uploaded: u64,
    pub downloaded: u64,
    pub failed: u64,
    pub conflicts: u64,
    pub auto_resolved: u64,
}
