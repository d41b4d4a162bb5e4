// The window's commands, by name: one per `Request` variant. Kept in a file
// of its own, with no dependencies, so src-tauri's build script can
// `include!` it to generate the ACL manifest from the same list.
pub const COMMANDS: &[&str] = &[
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
    "correct",
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
