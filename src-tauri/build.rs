// tauri.conf.json lives at the repository's top level (next to icons/ and
// ui/), so point tauri-build at it. The app's own commands are listed here to
// get `allow-*` permissions generated; the window's capability then grants
// exactly those (see capabilities/main-window.json).
const COMMANDS: &[&str] = &[
    "app_info",
    "status",
    "queue_page",
    "conflicts",
    "resolve",
    "resolve_all",
    "history",
    "sync_runs",
    "restore",
    "retry",
    "retry_all",
    "discard",
    "sync_now",
    "set_paused",
    "settings",
    "set_server",
    "set_pull_interval",
    "set_notifications",
    "set_autostart",
    "set_policy",
    "login",
    "logout",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .config_path("../tauri.conf.json")
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
