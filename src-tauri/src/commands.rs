//! The window's IPC commands. Each is listed in build.rs (ACL manifest) and
//! granted in capabilities/main-window.json. None returns a token: sign-in
//! takes a password in and answers only ok/error; the engine keeps the tokens
//! in the keyring.

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager, State};
use tauri_plugin_autostart::ManagerExt as _;

use crate::engine_bridge::{
    BridgeResult, ConflictPolicy, ConflictView, MutationState, QueueItem, Resolution, ResolutionEntry, Side,
    Status, SyncRun,
};
use crate::AppState;

/// Facts about this run of the app.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AppInfo {
    pub version: String,
    /// Running with `--demo` (own data dir, embedded server).
    pub demo: bool,
    pub data_dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PolicyRow {
    pub entity: String,
    pub policy: ConflictPolicy,
}

/// Everything the settings view shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Settings {
    pub server: Option<String>,
    pub user: Option<String>,
    pub autostart: bool,
    pub notifications: bool,
    #[cfg_attr(test, ts(type = "number"))]
    pub pull_interval_secs: u64,
    /// One row per entity type the app knows (set or default policy).
    pub policies: Vec<PolicyRow>,
}

/// Entity types the settings view always offers a policy for.
const KNOWN_ENTITIES: &[&str] = &["activity", "expense", "contact"];

pub const EV_STATUS: &str = "ferry://status";
pub const EV_ENGINE: &str = "ferry://event";
pub const EV_SETTINGS: &str = "ferry://settings";

#[tauri::command]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        demo: state.demo,
        data_dir: state.data_dir.display().to_string(),
    }
}

#[tauri::command]
pub fn status(state: State<'_, AppState>) -> Status {
    state.bridge.status()
}

/// One page of the outbox after `after` (keyset paging on `seq`, so page N
/// costs the same as page 1 however long the queue is).
#[tauri::command]
pub fn queue_page(
    state: State<'_, AppState>,
    filter: Option<MutationState>,
    after: Option<i64>,
    limit: Option<u32>,
) -> BridgeResult<Vec<QueueItem>> {
    let limit = limit.unwrap_or(200).clamp(1, 1000);
    state.bridge.queue(filter, after, limit)
}

#[tauri::command]
pub fn conflicts(state: State<'_, AppState>) -> BridgeResult<Vec<ConflictView>> {
    state.bridge.conflicts()
}

#[tauri::command]
pub fn resolve(state: State<'_, AppState>, conflict_id: String, resolution: Resolution) -> BridgeResult<()> {
    if resolution.keep.is_none() && resolution.fields.is_empty() {
        return Err("choose a side or pick fields first".into());
    }
    state.bridge.resolve(&conflict_id, resolution)?;
    state.bridge.sync_now();
    Ok(())
}

/// Bulk: keep one side for every listed conflict (all open ones if `ids` is
/// empty). Returns how many were resolved; stops at the first error.
#[tauri::command]
pub fn resolve_all(state: State<'_, AppState>, keep: Side, ids: Option<Vec<String>>) -> BridgeResult<u32> {
    let ids = match ids {
        Some(ids) if !ids.is_empty() => ids,
        _ => state.bridge.conflicts()?.into_iter().map(|c| c.id).collect(),
    };
    let mut n = 0;
    for id in ids {
        state.bridge.resolve(&id, Resolution { keep: Some(keep), ..Default::default() })?;
        n += 1;
    }
    state.bridge.sync_now();
    Ok(n)
}

#[tauri::command]
pub fn history(state: State<'_, AppState>, limit: Option<u32>) -> BridgeResult<Vec<ResolutionEntry>> {
    state.bridge.history(limit.unwrap_or(200).min(1000))
}

#[tauri::command]
pub fn sync_runs(state: State<'_, AppState>, limit: Option<u32>) -> BridgeResult<Vec<SyncRun>> {
    state.bridge.sync_runs(limit.unwrap_or(100).min(1000))
}

#[tauri::command]
pub fn restore(state: State<'_, AppState>, history_id: i64) -> BridgeResult<()> {
    state.bridge.restore(history_id)?;
    state.bridge.sync_now();
    Ok(())
}

#[tauri::command]
pub fn retry(state: State<'_, AppState>, mutation_id: String) -> BridgeResult<()> {
    state.bridge.retry(&mutation_id)?;
    state.bridge.sync_now();
    Ok(())
}

#[tauri::command]
pub fn retry_all(state: State<'_, AppState>) -> BridgeResult<()> {
    state.bridge.retry_all()?;
    state.bridge.sync_now();
    Ok(())
}

#[tauri::command]
pub fn discard(state: State<'_, AppState>, mutation_id: String) -> BridgeResult<()> {
    state.bridge.discard(&mutation_id)
}

#[tauri::command]
pub fn sync_now(state: State<'_, AppState>) {
    state.bridge.sync_now()
}

#[tauri::command]
pub fn set_paused(state: State<'_, AppState>, paused: bool) {
    state.bridge.set_paused(paused)
}

pub fn current_settings(app: &AppHandle) -> BridgeResult<Settings> {
    let state = app.state::<AppState>();
    let status = state.bridge.status();
    let prefs = state.prefs.lock().unwrap().clone();
    let set = state.bridge.policies()?;
    let mut policies: Vec<PolicyRow> = KNOWN_ENTITIES
        .iter()
        .map(|e| PolicyRow {
            entity: e.to_string(),
            policy: set.iter().find(|(n, _)| n == e).map(|(_, p)| *p).unwrap_or_default(),
        })
        .collect();
    for (entity, policy) in set {
        if !KNOWN_ENTITIES.contains(&entity.as_str()) {
            policies.push(PolicyRow { entity, policy });
        }
    }
    Ok(Settings {
        server: status.server,
        user: status.user,
        autostart: app.autolaunch().is_enabled().unwrap_or(false),
        notifications: prefs.notifications,
        pull_interval_secs: state.bridge.pull_interval().as_secs(),
        policies,
    })
}

#[tauri::command]
pub fn settings(app: AppHandle) -> BridgeResult<Settings> {
    current_settings(&app)
}

/// Returns whether the server answered (an unreachable one is still saved).
#[tauri::command]
pub async fn set_server(app: AppHandle, url: String) -> BridgeResult<bool> {
    let url = url.trim().to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("the server address starts with https:// (or http:// for a local test server)".into());
    }
    let bridge = app.state::<AppState>().bridge.clone();
    let reached = bridge.init(&url).await?;
    bridge.sync_now();
    Ok(reached)
}

#[tauri::command]
pub fn set_pull_interval(state: State<'_, AppState>, secs: u64) -> BridgeResult<()> {
    if !(10..=86_400).contains(&secs) {
        return Err("choose between 10 seconds and a day".into());
    }
    state.bridge.set_pull_interval(std::time::Duration::from_secs(secs))
}

#[tauri::command]
pub fn set_notifications(state: State<'_, AppState>, on: bool) -> BridgeResult<()> {
    state.notifier.lock().unwrap().set_enabled(on);
    state.update_prefs(|p| p.notifications = on)
}

/// Returns whether start-at-login is on afterwards.
#[tauri::command]
pub fn set_autostart(app: AppHandle, on: bool) -> BridgeResult<bool> {
    crate::apply_autostart(&app, on)
}

#[tauri::command]
pub fn set_policy(state: State<'_, AppState>, entity: String, policy: ConflictPolicy) -> BridgeResult<()> {
    state.bridge.set_policy(&entity, policy)
}

#[tauri::command]
pub async fn login(app: AppHandle, user: String, password: String) -> BridgeResult<()> {
    let bridge = app.state::<AppState>().bridge.clone();
    bridge.login(user.trim(), &password).await?;
    bridge.sync_now();
    let _ = app.emit(EV_SETTINGS, ());
    Ok(())
}

#[tauri::command]
pub async fn logout(app: AppHandle) -> BridgeResult<()> {
    let bridge = app.state::<AppState>().bridge.clone();
    bridge.logout().await?;
    let _ = app.emit(EV_SETTINGS, ());
    Ok(())
}
