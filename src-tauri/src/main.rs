//! `ferry-window`: Ferry's window, a Tauri web view (ui/). It is started by
//! `ferry-app`, the resident process that runs the engine and the tray, and
//! talks to it over stdin/stdout (`ferry_ipc`): every command the page
//! invokes is answered there; status and events are pushed here and passed
//! to the page as Tauri events. Closing the window ends this process.
//!
//! Only this crate knows Tauri.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod host;
mod window;

#[cfg(test)]
mod tests;

use std::io::IsTerminal;

use host::HostLink;

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    if std::io::stdin().is_terminal() {
        eprintln!("ferry-window is Ferry's window and is started by ferry-app: run `ferry-app` instead.");
        std::process::exit(2);
    }
    let host = HostLink::new(Box::new(std::io::stdout()));
    let serving = host.clone();
    let app = tauri::Builder::default()
        .manage(host)
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::status,
            commands::queue_page,
            commands::conflicts,
            commands::resolve,
            commands::resolve_all,
            commands::history,
            commands::sync_runs,
            commands::restore,
            commands::retry,
            commands::retry_all,
            commands::correct,
            commands::discard,
            commands::sync_now,
            commands::set_paused,
            commands::settings,
            commands::set_server,
            commands::set_pull_interval,
            commands::set_notifications,
            commands::set_autostart,
            commands::set_policy,
            commands::set_language,
            commands::set_title_field,
            commands::save_diagnostics,
            commands::login,
            commands::logout,
        ])
        .setup(move |app| {
            window::open(app.handle());
            serving.serve(app.handle().clone(), std::io::BufReader::new(std::io::stdin()));
            Ok(())
        })
        .build(tauri::generate_context!("../tauri.conf.json"));
    match app {
        // The last window closing ends the app: that is the point.
        Ok(app) => app.run(|_, _| {}),
        Err(e) => {
            eprintln!("Ferry's window could not start its window system (is a display available?): {e}");
            std::process::exit(1);
        }
    }
}
