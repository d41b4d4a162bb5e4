//! Wire types of the Ferry sync protocol (version 1).
//!
//! This crate is the single definition of what travels between a Ferry client
//! and a Ferry backend. `docs/protocol.md` describes the same protocol in prose
//! for people writing their own backend; keep the two in step.
//!
//! Conventions:
//! - JSON bodies, UTF-8, `snake_case` field names.
//! - Times are integer milliseconds since the Unix epoch (`*_ms` / `*_at`).
//! - Unknown fields are ignored on both ends (forward compatibility); no type
//!   here uses `deny_unknown_fields`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Path prefix of every versioned endpoint.
pub const API_PREFIX: &str = "/v1";
/// Header carrying the server's clock on every response (ms since epoch).
pub const SERVER_TIME_HEADER: &str = "x-ferry-server-time";

/// Limits a conforming server enforces. Clients size their batches to stay
/// inside them.
pub mod limits {
    /// Largest request body accepted, in bytes.
    pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
    /// Most mutations in one push.
    pub const MAX_BATCH_MUTATIONS: usize = 1000;
    /// Largest serialized payload of one mutation, in bytes.
    pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
    /// Longest entity name.
    pub const MAX_ENTITY_LEN: usize = 64;
    /// Longest record id.
    pub const MAX_RECORD_ID_LEN: usize = 128;
    /// Most changes in one pull page.
    pub const MAX_PULL_LIMIT: u32 = 1000;
    /// Longest wait of a waiting pull (`GET /v1/pull?wait=SECS`).
    pub const MAX_PULL_WAIT_SECS: u32 = 60;
}

/// Why a name is not a valid entity name, or `Ok` if it is.
///
/// Entity names are 1–64 characters of `a-z`, `0-9`, `_`, starting with a
/// letter, so they are safe as identifiers everywhere (file names, SQL, URLs).
pub fn validate_entity(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > limits::MAX_ENTITY_LEN {
        return Err(format!("entity name must be 1-{} characters, got {}", limits::MAX_ENTITY_LEN, name.len()));
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or('_');
    if !first.is_ascii_lowercase() {
        return Err(format!("entity name {name:?} must start with a lowercase letter (a-z)"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        return Err(format!("entity name {name:?} contains {bad:?}; use only a-z, 0-9 and _"));
    }
    Ok(())
}

/// Why a record id is not valid, or `Ok` if it is.
///
/// Record ids are 1–128 bytes of printable characters without control
/// characters; clients usually use UUIDs.
pub fn validate_record_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > limits::MAX_RECORD_ID_LEN {
        return Err(format!("record id must be 1-{} bytes, got {}", limits::MAX_RECORD_ID_LEN, id.len()));
    }
    if id.chars().any(|c| c.is_control()) {
        return Err(format!("record id {id:?} contains a control character"));
    }
    Ok(())
}

// ---------------------------------------------------------------- auth

/// `POST /v1/auth/login`
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginRequest {
    // The password must never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

impl std::fmt::Debug for RefreshRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshRequest").field("refresh_token", &"<redacted>").finish()
    }
}

/// Answer to a successful login or refresh.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    /// Short-lived JWT (HS256) sent as `Authorization: Bearer ...`.
    pub access_token: String,
    /// When the access token stops being accepted (server clock, ms).
    pub access_expires_at: i64,
    /// Opaque, single-use; each refresh returns a new one.
    pub refresh_token: String,
    /// When the refresh token stops being accepted (server clock, ms).
    pub refresh_expires_at: i64,
    pub user: String,
    pub org: String,
    pub server_time: i64,
}

impl std::fmt::Debug for TokenResponse {
    // Tokens must never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_token", &"<redacted>")
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("user", &self.user)
            .field("org", &self.org)
            .field("server_time", &self.server_time)
            .finish()
    }
}

/// Claims inside the access JWT.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// User name.
    pub sub: String,
    /// Organisation name.
    pub org: String,
    /// Expiry, seconds since epoch (JWT convention).
    pub exp: i64,
    /// Issued at, seconds since epoch.
    pub iat: i64,
    /// The user's session epoch when issued: the server refuses the token
    /// once the account's epoch moves on (disabled, new password). Tokens
    /// from servers before it carry none.
    #[serde(default)]
    pub epoch: i64,
}

// ---------------------------------------------------------------- push

/// What a mutation does to its record.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Create or replace the record's fields with `payload`.
    Upsert,
    /// Merge `payload`'s top-level fields into the record; a `null` field
    /// removes that field.
    Patch,
    /// Delete the record (it becomes a tombstone).
    Delete,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Upsert => "upsert",
            Op::Patch => "patch",
            Op::Delete => "delete",
        }
    }
}

impl std::str::FromStr for Op {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "upsert" => Ok(Op::Upsert),
            "patch" => Ok(Op::Patch),
            "delete" => Ok(Op::Delete),
            other => Err(format!("unknown op {other:?}; expected upsert, patch or delete")),
        }
    }
}

/// One change made on a client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mutation {
    /// Idempotency key: a mutation id is applied at most once, ever.
    pub id: Uuid,
    pub entity: String,
    pub record_id: String,
    pub op: Op,
    /// JSON object for upsert and patch; ignored (may be absent) for delete.
    #[serde(default)]
    pub payload: Option<Map<String, Value>>,
    /// Version of the record this edit was made on; 0 = "the record did not
    /// exist". The server applies the mutation only if this equals the
    /// record's current version, otherwise it answers `conflict`.
    pub base_version: u64,
    /// When the edit was made, on the server's clock as estimated by the
    /// client (ms). Used for last-write-wins.
    pub edited_at: i64,
}

/// `POST /v1/push`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PushRequest {
    pub mutations: Vec<Mutation>,
    /// The server database the client last pulled from. A server whose
    /// database is another (a different one, or restored from a backup
    /// since) refuses the whole push with `409 database_changed`: the
    /// client's base versions may name states it no longer has. Optional
    /// (older clients send none and are not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseRef>,
}

/// `200` answer to a push: one result per mutation, in request order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PushResponse {
    pub results: Vec<MutationResult>,
    pub server_time: i64,
    /// The organisation's change sequence just before and just after this
    /// batch: the batch's applied mutations are exactly the organisation's
    /// changes in between. A client whose pull cursor is at least
    /// `seq_before` may move it to `seq_after` instead of pulling its own
    /// changes back. Optional (a server may omit them; older servers do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_before: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_after: Option<u64>,
}

impl PushResponse {
    /// The change seqs of the mutations applied now, in request order.
    pub fn applied_seqs(&self) -> Vec<u64> {
        self.results
            .iter()
            .filter_map(|r| match r.outcome {
                Outcome::Applied { seq, .. } => Some(seq),
                _ => None,
            })
            .collect()
    }
}

/// The outcome of one mutation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MutationResult {
    pub mutation_id: Uuid,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Applied now. `version` is the record's new version, `seq` its new
    /// position in the organisation's change sequence.
    Applied { version: u64, seq: u64, server_time: i64 },
    /// Applied before (same mutation id): the original result, unchanged.
    Duplicate { version: u64, seq: u64, server_time: i64 },
    /// Not applied: `base_version` was stale. `current` is the record as the
    /// server has it now (a tombstone if it was deleted).
    Conflict { current: RemoteRecord },
    /// Not applied and never will be as sent: a permanent, machine-readable
    /// reason. Retrying the same mutation gives the same answer.
    Rejected { code: RejectCode, message: String },
    /// Not attempted because an earlier mutation of the same record in this
    /// batch was not applied. Send it again once that one is settled.
    Blocked,
}

/// Machine-readable reasons for a rejected mutation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    InvalidEntity,
    InvalidRecordId,
    InvalidPayload,
    PayloadTooLarge,
    /// Patch or delete of a record that does not exist.
    NotFound,
    /// A server-side rule refused the content.
    Validation,
    #[serde(other)]
    Other,
}

impl RejectCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::InvalidEntity => "invalid_entity",
            RejectCode::InvalidRecordId => "invalid_record_id",
            RejectCode::InvalidPayload => "invalid_payload",
            RejectCode::PayloadTooLarge => "payload_too_large",
            RejectCode::NotFound => "not_found",
            RejectCode::Validation => "validation",
            RejectCode::Other => "other",
        }
    }
}

// ---------------------------------------------------------------- pull

/// A record as the server has it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemoteRecord {
    pub entity: String,
    pub record_id: String,
    /// Per-record version, 1 after creation, +1 per applied mutation.
    pub version: u64,
    /// Position in the organisation's change sequence (the pull cursor).
    pub seq: u64,
    /// `true` for a tombstone; `data` is then `null`.
    pub deleted: bool,
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    /// When the edit that produced this version was made (see
    /// [`Mutation::edited_at`]).
    pub edited_at: i64,
    /// User whose mutation produced this version.
    pub edited_by: String,
    /// When the server applied it (server clock).
    pub server_time: i64,
}

/// `GET /v1/pull?since=SEQ&limit=N[&wait=SECS]` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PullResponse {
    /// Changes with `seq > since`, ascending by `seq`; only the latest
    /// version of each record.
    pub changes: Vec<RemoteRecord>,
    /// Pass as `since` for the next page (the last change's seq, or `since`
    /// when there were none).
    pub cursor: u64,
    pub has_more: bool,
    pub server_time: i64,
    /// The wait the server honoured, in seconds (`0` for a plain pull).
    /// Absent from servers that cannot wait: a client then falls back to
    /// pulling on an interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<u32>,
    /// The server database this page came from (absent from older
    /// servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseInfo>,
}

/// Which server database, and which generation of it: a restore from a
/// backup starts a new generation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseRef {
    /// Made when the database was created; a backup keeps it.
    pub id: Uuid,
    /// Moves on (upwards) with every restore.
    pub generation: u64,
}

/// What a pull tells about the server's database, so a client can tell
/// when the server went back in time (a restore) and reconcile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub id: Uuid,
    pub generation: u64,
    /// The organisation's newest change seq. A client cursor past it
    /// means the server lost changes the client has seen.
    pub head: u64,
    /// The restores this database went through, oldest first.
    #[serde(default)]
    pub restores: Vec<RestorePoint>,
}

impl DatabaseInfo {
    pub fn reference(&self) -> DatabaseRef {
        DatabaseRef { id: self.id, generation: self.generation }
    }
}

/// One restore: generation `generation` began from a copy whose newest
/// change of the organisation was `seq`. Changes after `seq` that a client
/// saw in an earlier generation are not on the server any more.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestorePoint {
    pub generation: u64,
    pub seq: u64,
}

/// How long clients ask a waiting pull to wait: well inside the idle
/// timeouts of common proxies and load balancers (nginx 60 s, AWS 60 s).
pub const CLIENT_PULL_WAIT_SECS: u32 = 25;

// ---------------------------------------------------------------- errors

/// Body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// What is wrong and what to do about it, for people.
    pub message: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not valid JSON or not the expected shape.
    MalformedRequest,
    /// 400: a field is out of range (e.g. pull limit).
    InvalidRequest,
    /// 413: body or batch too large.
    TooLarge,
    /// 401: wrong user name or password.
    InvalidCredentials,
    /// 401: missing, malformed or expired access token.
    Unauthorized,
    /// 401: refresh token unknown, expired, reused or revoked: sign in again.
    InvalidRefreshToken,
    /// 401 (a token) or 403 (a sign-in): an operator disabled the account;
    /// signing in works again once they enable it.
    AccountDisabled,
    /// 404
    NotFound,
    /// 429
    RateLimited,
    /// 409: the push names a server database that is not this one (see
    /// [`PushRequest::database`]): pull, reconcile, push again.
    DatabaseChanged,
    /// 503: shutting down or overloaded; retry later.
    Unavailable,
    /// 500
    Internal,
    #[serde(other)]
    Unknown,
}

/// `GET /health`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub protocol: u32,
    pub server_time: i64,
}

pub const PROTOCOL_VERSION: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_names() {
        assert!(validate_entity("activity").is_ok());
        assert!(validate_entity("contact_edit2").is_ok());
        assert!(validate_entity("").is_err());
        assert!(validate_entity("Activity").is_err());
        assert!(validate_entity("1abc").is_err());
        assert!(validate_entity("a-b").is_err());
        assert!(validate_entity("a;drop table").is_err());
        assert!(validate_entity(&"a".repeat(65)).is_err());
    }

    #[test]
    fn record_ids() {
        assert!(validate_record_id("a1b2").is_ok());
        assert!(validate_record_id("").is_err());
        assert!(validate_record_id("a\nb").is_err());
        assert!(validate_record_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn outcome_wire_shape() {
        let r = MutationResult {
            mutation_id: Uuid::nil(),
            outcome: Outcome::Applied { version: 2, seq: 9, server_time: 5 },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "applied");
        assert_eq!(v["version"], 2);
        let back: MutationResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let blocked: MutationResult = serde_json::from_str(
            r#"{"mutation_id":"00000000-0000-0000-0000-000000000000","status":"blocked","extra":1}"#,
        )
        .unwrap();
        assert_eq!(blocked.outcome, Outcome::Blocked);
    }

    #[test]
    fn unknown_codes_are_tolerated() {
        let e: ErrorBody = serde_json::from_str(r#"{"error":"brand_new","message":"m"}"#).unwrap();
        assert_eq!(e.error, ErrorCode::Unknown);
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = TokenResponse {
            access_token: "secret-a".into(),
            access_expires_at: 0,
            refresh_token: "secret-r".into(),
            refresh_expires_at: 0,
            user: "u".into(),
            org: "o".into(),
            server_time: 0,
        };
        let s = format!("{t:?}");
        assert!(!s.contains("secret"));
    }

    #[test]
    fn request_debug_is_redacted() {
        let login = LoginRequest { username: "ann".into(), password: "secret-pw".into() };
        let s = format!("{login:?} {login:#?}");
        assert!(s.contains("ann") && !s.contains("secret"), "{s}");
        let refresh = RefreshRequest { refresh_token: "secret-r".into() };
        let s = format!("{refresh:?} {refresh:#?}");
        assert!(s.contains("RefreshRequest") && !s.contains("secret"), "{s}");
    }
}
