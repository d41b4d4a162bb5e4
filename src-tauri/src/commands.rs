//! The window's IPC commands. Each forwards to `ferry-app`, which owns the
//! engine (see `ferry_ipc::Request`); the names are ferry-ipc's COMMANDS,
//! listed in build.rs (ACL manifest) and granted in
//! capabilities/main-window.json. None returns a token.

use ferry_ipc::engine::{ConflictPolicy, MutationState, Resolution, Side};
use ferry_ipc::{Answer, Request};
use tauri::State;

use crate::host::HostLink;

/// `name => Variant { args }`: a command taking `args` from the web view and
/// answering what `ferry-app` answers.
macro_rules! forward {
    ($($name:ident => $variant:ident { $($arg:ident : $ty:ty),* $(,)? };)*) => {$(
        #[tauri::command]
        pub async fn $name(host: State<'_, HostLink>, $($arg: $ty),*) -> Answer {
            host.call(Request::$variant { $($arg),* }).await
        }
    )*};
}

forward! {
    app_info => AppInfo {};
    status => Status {};
    queue_page => QueuePage { filter: Option<MutationState>, after: Option<i64>, limit: Option<u32> };
    conflicts => Conflicts { limit: Option<u32> };
    resolve => Resolve { conflict_id: String, resolution: Resolution };
    resolve_all => ResolveAll { keep: Side, ids: Option<Vec<String>> };
    history => History { before: Option<i64>, limit: Option<u32> };
    sync_runs => SyncRuns { limit: Option<u32> };
    restore => Restore { history_id: i64 };
    retry => Retry { mutation_id: String };
    retry_all => RetryAll {};
    correct => Correct { mutation_id: String, fields: serde_json::Map<String, serde_json::Value> };
    discard => Discard { mutation_id: String };
    sync_now => SyncNow {};
    set_paused => SetPaused { paused: bool };
    settings => Settings {};
    set_server => SetServer { url: String };
    set_pull_interval => SetPullInterval { secs: u64 };
    set_notifications => SetNotifications { on: bool };
    set_autostart => SetAutostart { on: bool };
    set_policy => SetPolicy { entity: String, policy: ConflictPolicy };
    set_language => SetLanguage { language: String };
    set_title_field => SetTitleField { entity: String, field: Option<String> };
    save_diagnostics => SaveDiagnostics { include_records: bool };
    login => Login { user: String, password: String };
    logout => Logout {};
}
