//! Values only the window shows (the engine's own types come from
//! `ferry_engine`).

use ferry_engine::ConflictPolicy;
use serde::{Deserialize, Serialize};
#[cfg(feature = "ts")]
use ts_rs::TS;

/// Facts about this run of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct AppInfo {
    pub version: String,
    /// Running with `--demo` (own data dir, embedded server).
    pub demo: bool,
    pub data_dir: String,
    /// The language the window speaks: `"nb"` or `"en"` (the `language`
    /// setting, or the system's when that is `"system"`).
    pub locale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct PolicyRow {
    pub entity: String,
    pub policy: ConflictPolicy,
    /// The field set to name this entity's records, if one is set.
    pub title_field: Option<String>,
}

/// Everything the settings view shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(TS))]
pub struct Settings {
    pub server: Option<String>,
    pub user: Option<String>,
    pub autostart: bool,
    pub notifications: bool,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub pull_interval_secs: u64,
    /// One row per entity type the app knows (set or default policy).
    pub policies: Vec<PolicyRow>,
    /// The user's choice of language: `"system"`, `"nb"` or `"en"`.
    pub language: String,
}
