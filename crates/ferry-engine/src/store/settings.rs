//! Key/value settings and sync state, each key defined once here with its
//! type: the server setting, who is signed in, the pull cursor, the clock
//! offset, what the loop must remember across restarts, conflict policies.
//! Never tokens: those live in the token store.

use std::marker::PhantomData;

use rusqlite::{params, Connection, OptionalExtension};

use super::Store;
use crate::error::Result;
use crate::model::{ConflictPolicy, Problem};

/// A setting's key and the type of its value.
pub struct Setting<T> {
    key: &'static str,
    value: PhantomData<fn() -> T>,
}

impl<T> Clone for Setting<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Setting<T> {}

impl<T> Setting<T> {
    const fn new(key: &'static str) -> Self {
        Self { key, value: PhantomData }
    }

    pub fn key(self) -> &'static str {
        self.key
    }
}

/// How a value is kept in the settings table (text).
pub trait SettingValue: Sized {
    fn encode(&self) -> String;
    /// `None` for text this type cannot hold: read as unset.
    fn decode(text: &str) -> Option<Self>;
}

impl SettingValue for String {
    fn encode(&self) -> String {
        self.clone()
    }
    fn decode(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

impl SettingValue for i64 {
    fn encode(&self) -> String {
        self.to_string()
    }
    fn decode(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

impl SettingValue for u64 {
    fn encode(&self) -> String {
        self.to_string()
    }
    fn decode(text: &str) -> Option<Self> {
        text.parse().ok()
    }
}

/// `"1"` and `"0"`, as data dirs have always kept flags.
impl SettingValue for bool {
    fn encode(&self) -> String {
        if *self { "1" } else { "0" }.to_owned()
    }
    fn decode(text: &str) -> Option<Self> {
        Some(text == "1")
    }
}

/// Its kebab-case name, as in JSON.
impl SettingValue for Problem {
    fn encode(&self) -> String {
        self.as_str().to_owned()
    }
    fn decode(text: &str) -> Option<Self> {
        Problem::parse(text)
    }
}

/// `ID/GENERATION`.
impl SettingValue for ferry_protocol::DatabaseRef {
    fn encode(&self) -> String {
        format!("{}/{}", self.id, self.generation)
    }
    fn decode(text: &str) -> Option<Self> {
        let (id, generation) = text.split_once('/')?;
        Some(Self { id: uuid::Uuid::parse_str(id).ok()?, generation: generation.parse().ok()? })
    }
}

/// The server's URL (normalised, no trailing slash).
pub const SERVER: Setting<String> = Setting::new("server");
/// Plain `http://` to another machine was explicitly allowed.
pub const SERVER_INSECURE_HTTP: Setting<bool> = Setting::new("server_insecure_http");
/// A private CA's certificate (PEM) to trust for the server.
pub const SERVER_CA_CERT: Setting<String> = Setting::new("server_ca_cert");
/// Who is signed in now.
pub const USER: Setting<String> = Setting::new("user");
/// Whose work this data dir holds; unlike [`USER`], kept after logout.
pub const ACCOUNT: Setting<String> = Setting::new("account");
/// The organisation of the account's records.
pub const ORG: Setting<String> = Setting::new("org");
/// Why a sign-in is needed (the server refused to renew it).
pub const NEEDS_SIGN_IN: Setting<String> = Setting::new("needs_sign_in");
/// The last sync's error, for the status of every process.
pub const LAST_ERROR: Setting<String> = Setting::new("last_error");
/// What kind of trouble [`LAST_ERROR`] is; written and removed with it.
pub const LAST_PROBLEM: Setting<Problem> = Setting::new("last_problem");
/// The last sync could not reach the server.
pub const OFFLINE: Setting<bool> = Setting::new("offline");
/// Syncing is paused by the user.
pub const PAUSED: Setting<bool> = Setting::new("paused");
/// When the loop tries again after a failure (local ms).
pub const NEXT_RETRY_AT: Setting<i64> = Setting::new("next_retry_at");
/// When a sync last completed (local ms).
pub const LAST_SYNC_AT: Setting<i64> = Setting::new("last_sync_at");
/// When an upload last made progress (local ms): the stall clock.
pub const LAST_PROGRESS_AT: Setting<i64> = Setting::new("last_progress_at");
/// The server clock's offset from this machine's, in ms.
pub const CLOCK_OFFSET_MS: Setting<i64> = Setting::new("clock_offset_ms");
/// How often to pull when nothing else wakes the loop (ms).
pub const PULL_INTERVAL_MS: Setting<i64> = Setting::new("pull_interval_ms");
/// The server sequence number everything up to is pulled.
pub const PULL_CURSOR: Setting<u64> = Setting::new("pull_cursor");
/// The outbox seq up to which edit stamps were judged (see `stamps`).
pub const RESTAMP_SEQ: Setting<i64> = Setting::new("restamp_seq");
/// The outbox seq up to which stamps were judged exact.
pub const RESTAMP_EXACT_SEQ: Setting<i64> = Setting::new("restamp_exact_seq");
/// The server database the records here came from (see
/// `sync/reconcile.rs`); pushes name it.
pub const SERVER_DATABASE: Setting<ferry_protocol::DatabaseRef> = Setting::new("server_database");
/// While a reconciliation runs: the last change seq the restored server
/// still has of what this client saw (the fork).
pub const RECONCILE_FORK: Setting<u64> = Setting::new("reconcile_fork");
/// While a reconciliation runs: the database it reconciles with (none for a
/// server that tells no identity), kept as [`SERVER_DATABASE`] at the end.
pub const RECONCILE_DATABASE: Setting<ferry_protocol::DatabaseRef> = Setting::new("reconcile_database");

/// Per-entity conflict policies are kept as `policy.ENTITY`.
const POLICY_PREFIX: &str = "policy.";
/// Per-entity title fields (see [`crate::label`]) are kept as `title.ENTITY`.
const TITLE_PREFIX: &str = "title.";

/// The title fields set, by entity: read once per page of labels.
#[derive(Debug, Default, Clone)]
pub struct TitleFields(std::collections::HashMap<String, String>);

impl TitleFields {
    pub fn get(&self, entity: &str) -> Option<&str> {
        self.0.get(entity).map(String::as_str)
    }

    /// The label of a record of `entity` (see [`crate::label::label`]).
    pub fn label(&self, entity: &str, record_id: &str, data: Option<&crate::model::Fields>) -> String {
        crate::label::label(record_id, self.get(entity), data)
    }
}

/// Every title field set, read on `conn` (also inside another module's
/// transaction).
pub(super) fn title_fields(conn: &Connection) -> Result<TitleFields> {
    Ok(TitleFields(prefixed(conn, TITLE_PREFIX)?.into_iter().collect()))
}

/// `(name after the prefix, value)` of every key starting with `prefix`,
/// by key: a range of the primary key, not a scan.
fn prefixed(conn: &Connection, prefix: &str) -> Result<Vec<(String, String)>> {
    // Every key starting with `prefix` sorts below `prefix` with its last
    // byte (an ASCII '.') raised by one.
    let mut end = prefix.to_owned();
    let last = end.pop().map_or('\u{0}', |c| char::from_u32(c as u32 + 1).unwrap_or(c));
    end.push(last);
    let mut stmt = conn.prepare_cached("SELECT key, value FROM settings WHERE key >= ?1 AND key < ?2 ORDER BY key")?;
    let rows = stmt
        .query_map(params![prefix, end], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().map(|(k, v)| (k[prefix.len()..].to_string(), v)).collect())
}

/// A setting read on `conn` (also inside another module's transaction).
pub(super) fn get<T: SettingValue>(conn: &Connection, setting: Setting<T>) -> Result<Option<T>> {
    Ok(get_text(conn, setting.key)?.and_then(|text| T::decode(&text)))
}

/// A setting written on `conn` (also inside another module's transaction).
pub(super) fn put<T: SettingValue>(conn: &Connection, setting: Setting<T>, value: &T) -> Result<()> {
    put_text(conn, setting.key, &value.encode())
}

/// The conflict policy set for `entity`, read on `conn` (also inside
/// another module's transaction); unknown names read as unset.
pub(super) fn policy(conn: &Connection, entity: &str) -> Result<Option<ConflictPolicy>> {
    Ok(get_text(conn, &format!("{POLICY_PREFIX}{entity}"))?.and_then(|p| ConflictPolicy::parse(&p)))
}

fn get_text(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

fn put_text(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO settings(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

impl Store {
    pub fn setting<T: SettingValue>(&self, setting: Setting<T>) -> Result<Option<T>> {
        get(&self.conn(), setting)
    }

    pub fn set_setting<T: SettingValue>(&self, setting: Setting<T>, value: &T) -> Result<()> {
        put(&self.conn(), setting, value)
    }

    pub fn remove_setting<T>(&self, setting: Setting<T>) -> Result<()> {
        self.conn().execute("DELETE FROM settings WHERE key = ?1", [setting.key])?;
        Ok(())
    }

    /// The conflict policy set for `entity`, if any (unknown names read as
    /// unset).
    pub fn policy(&self, entity: &str) -> Result<Option<ConflictPolicy>> {
        policy(&self.conn(), entity)
    }

    pub fn set_policy(&self, entity: &str, policy: ConflictPolicy) -> Result<()> {
        put_text(&self.conn(), &format!("{POLICY_PREFIX}{entity}"), policy.as_str())
    }

    /// Every policy set, by entity name.
    pub fn policies(&self) -> Result<Vec<(String, ConflictPolicy)>> {
        Ok(prefixed(&self.conn(), POLICY_PREFIX)?
            .into_iter()
            .filter_map(|(entity, v)| Some((entity, ConflictPolicy::parse(&v)?)))
            .collect())
    }

    /// Every setting as stored, by key (for diagnostics).
    pub fn all_settings(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT key, value FROM settings ORDER BY key")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A setting by its raw key, as an older or newer Ferry may have left it.
    #[cfg(test)]
    pub(crate) fn put_raw_setting(&self, key: &str, value: &str) -> Result<()> {
        put_text(&self.conn(), key, value)
    }

    /// Sets (or with `None` forgets) the title field of `entity`.
    pub fn set_title_field(&self, entity: &str, field: Option<&str>) -> Result<()> {
        let key = format!("{TITLE_PREFIX}{entity}");
        match field {
            Some(field) => put_text(&self.conn(), &key, field),
            None => {
                self.conn().execute("DELETE FROM settings WHERE key = ?1", [key])?;
                Ok(())
            }
        }
    }

    /// Every title field set, by entity name.
    pub fn title_fields(&self) -> Result<TitleFields> {
        title_fields(&self.conn())
    }

    /// Every title field set, as `(entity, field)` sorted by entity.
    pub fn title_field_list(&self) -> Result<Vec<(String, String)>> {
        prefixed(&self.conn(), TITLE_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_round_trip_and_odd_text_reads_as_unset() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("ferry.db")).unwrap();
        s.set_setting(PULL_CURSOR, &42).unwrap();
        assert_eq!(s.setting(PULL_CURSOR).unwrap(), Some(42));
        s.set_setting(PAUSED, &true).unwrap();
        assert_eq!(s.setting(PAUSED).unwrap(), Some(true));
        s.set_setting(SERVER, &"https://sync.example.org".to_owned()).unwrap();
        assert_eq!(s.setting(SERVER).unwrap().as_deref(), Some("https://sync.example.org"));
        s.remove_setting(SERVER).unwrap();
        assert_eq!(s.setting(SERVER).unwrap(), None);
        // Written by hand (or an older Ferry) as something else.
        put_text(&s.conn(), PULL_CURSOR.key(), "not a number").unwrap();
        assert_eq!(s.setting(PULL_CURSOR).unwrap(), None);

        s.set_policy("activity", ConflictPolicy::Manual).unwrap();
        put_text(&s.conn(), "policy.expense", "nonsense").unwrap();
        assert_eq!(s.policy("activity").unwrap(), Some(ConflictPolicy::Manual));
        assert_eq!(s.policy("expense").unwrap(), None);
        assert_eq!(s.policies().unwrap(), [("activity".to_owned(), ConflictPolicy::Manual)]);

        s.set_setting(LAST_PROBLEM, &Problem::UntrustedCertificate).unwrap();
        assert_eq!(s.setting(LAST_PROBLEM).unwrap(), Some(Problem::UntrustedCertificate));
        put_text(&s.conn(), LAST_PROBLEM.key(), "gremlins").unwrap();
        assert_eq!(s.setting(LAST_PROBLEM).unwrap(), None);
    }

    #[test]
    fn title_fields_are_per_entity_and_apart_from_policies() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("ferry.db")).unwrap();
        s.set_policy("activity", ConflictPolicy::Merge).unwrap();
        s.set_title_field("activity", Some("what")).unwrap();
        s.set_title_field("expense", Some("ref")).unwrap();
        // Keys that merely sort near the prefix are not title fields.
        put_text(&s.conn(), "title", "x").unwrap();
        put_text(&s.conn(), "title/x", "x").unwrap();
        put_text(&s.conn(), "titles", "x").unwrap();
        assert_eq!(
            s.title_field_list().unwrap(),
            [("activity".to_owned(), "what".to_owned()), ("expense".to_owned(), "ref".to_owned())]
        );
        let t = s.title_fields().unwrap();
        assert_eq!((t.get("activity"), t.get("other")), (Some("what"), None));
        s.set_title_field("activity", None).unwrap();
        assert_eq!(s.title_field_list().unwrap(), [("expense".to_owned(), "ref".to_owned())]);
        assert_eq!(s.policies().unwrap(), [("activity".to_owned(), ConflictPolicy::Merge)]);
    }
}
