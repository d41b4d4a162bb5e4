//! Key/value settings and sync state (server URL, user, cursor, clock offset,
//! conflict policies, pause flag). Never tokens: those live in the keyring.

use rusqlite::{params, Connection, OptionalExtension};

use super::Store;
use crate::error::Result;

/// A setting read on `conn` (also inside another module's transaction).
pub(super) fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

pub(super) fn get_i64(conn: &Connection, key: &str) -> Result<Option<i64>> {
    Ok(get(conn, key)?.and_then(|v| v.parse().ok()))
}

/// A setting written on `conn` (also inside another module's transaction).
pub(super) fn put(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO settings(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

impl Store {
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        get(&self.conn(), key)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        put(&self.conn(), key, value)
    }

    pub fn remove_setting(&self, key: &str) -> Result<()> {
        self.conn().execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    pub fn setting_i64(&self, key: &str) -> Result<Option<i64>> {
        get_i64(&self.conn(), key)
    }

    /// Settings whose key starts with `prefix`, prefix stripped.
    pub fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT key, value FROM settings WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key")?;
        let rows = stmt
            .query_map([prefix], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows.into_iter().map(|(k, v)| (k[prefix.len()..].to_string(), v)).collect())
    }
}
