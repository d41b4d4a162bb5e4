// tauri.conf.json lives at the repository's top level (next to icons/ and
// ui/), so point tauri-build at it. The window's commands come from
// ferry-ipc's list (one per IPC request), which gets `allow-*` permissions
// generated; the window's capability then grants exactly those (see
// capabilities/main-window.json; a test checks the two agree).
include!("../crates/ferry-ipc/src/command_names.rs");

fn main() {
    println!("cargo:rerun-if-changed=../crates/ferry-ipc/src/command_names.rs");
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .config_path("../tauri.conf.json")
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
