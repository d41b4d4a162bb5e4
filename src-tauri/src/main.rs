//! Ferry's desktop app: runs the sync engine in a background task and shows
//! its state in the tray, a window and notifications.
//!
//! Only this crate knows Tauri; only `engine_bridge` knows the engine.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;
mod demo;
mod engine_bridge;
mod notify;
mod settings;
mod tray;
mod window;

#[cfg(test)]
mod bindings;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tauri::{AppHandle, Emitter, Manager, RunEvent};
use tauri_plugin_autostart::ManagerExt as _;

use engine_bridge::{Bridge, BridgeResult, Tokens};
use settings::{AppPrefs, PrefsFile};

/// Shared state of the running app, managed by Tauri.
pub struct AppState {
    pub bridge: Bridge,
    pub data_dir: PathBuf,
    pub demo: bool,
    pub prefs_file: PrefsFile,
    pub prefs: Mutex<AppPrefs>,
    pub notifier: Arc<Mutex<notify::Notifier>>,
    /// Wakes the notification task when the digest changes.
    pub notify_wake: Arc<tokio::sync::Notify>,
    pub tray: tray::Tray<tauri::Wry>,
    pub demo_handle: tokio::sync::Mutex<Option<demo::Demo>>,
}

impl AppState {
    pub fn update_prefs(&self, f: impl FnOnce(&mut AppPrefs)) -> BridgeResult<()> {
        let mut prefs = self.prefs.lock().unwrap();
        f(&mut prefs);
        self.prefs_file.save(&prefs).map_err(|e| format!("could not save settings: {e}"))
    }
}

struct Args {
    demo: bool,
    /// Started at login: stay in the tray, no window.
    minimized: bool,
    data_dir: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args { demo: false, minimized: false, data_dir: std::env::var_os("FERRY_DATA_DIR").map(PathBuf::from) };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--demo" => args.demo = true,
            "--minimized" | "--hidden" => args.minimized = true,
            "--data-dir" => args.data_dir = it.next().map(PathBuf::from),
            "--help" | "-h" => {
                println!("ferry-app [--demo] [--minimized] [--data-dir DIR]\n  --demo        own data dir, embedded server, sample data and a second device\n  --minimized   start in the tray without opening the window");
                std::process::exit(0);
            }
            // Unknown arguments (e.g. from a desktop launcher) are ignored.
            _ => {}
        }
    }
    args
}

fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "ferry")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".ferry"))
}

/// Turns start-at-login on or off and keeps the tray's check item in line.
pub fn apply_autostart(app: &AppHandle, on: bool) -> BridgeResult<bool> {
    let al = app.autolaunch();
    let r = if on { al.enable() } else { al.disable() };
    r.map_err(|e| format!("could not change start at login: {e}"))?;
    let now = al.is_enabled().unwrap_or(on);
    app.state::<AppState>().tray.set_autostart_checked(now);
    let _ = app.emit(commands::EV_SETTINGS, ());
    Ok(now)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn on_menu(app: &AppHandle, event: tauri::menu::MenuEvent) {
    let Some(state) = app.try_state::<AppState>() else { return };
    match event.id().as_ref() {
        tray::ID_SYNC => state.bridge.sync_now(),
        tray::ID_PAUSE => {
            let paused = state.bridge.status().paused;
            state.bridge.set_paused(!paused);
        }
        tray::ID_OPEN => window::open(app),
        tray::ID_AUTOSTART => {
            let on = !app.autolaunch().is_enabled().unwrap_or(false);
            if let Err(e) = apply_autostart(app, on) {
                tracing::warn!("{e}");
            }
        }
        tray::ID_QUIT => quit(app.clone()),
        _ => {}
    }
}

/// Stops the engine cleanly (and the demo's server), then exits.
fn quit(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        tracing::info!("quitting: stopping the engine");
        if let Some(w) = app.get_webview_window(window::LABEL) {
            let _ = w.destroy();
        }
        let state = app.state::<AppState>();
        state.bridge.stop().await;
        if let Some(demo) = state.demo_handle.lock().await.take() {
            demo.stop().await;
        }
        tracing::info!("engine stopped; bye");
        app.exit(0);
    });
}

/// Forwards the engine's status channel to the tray and the window. The watch
/// channel only ever holds the latest value, so a burst of changes (a long
/// queue draining) costs one update per tick, not one per item.
fn spawn_status_forwarder(app: AppHandle) {
    let state = app.state::<AppState>();
    let mut rx = state.bridge.subscribe();
    tauri::async_runtime::spawn(async move {
        // The status line says "synced 2 min ago": refresh it now and then
        // even when nothing changes.
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            let status = rx.borrow_and_update().clone();
            app.state::<AppState>().tray.update(&status, now_ms());
            let _ = app.emit(commands::EV_STATUS, &status);
            tokio::select! {
                r = rx.changed() => if r.is_err() { break },
                _ = tick.tick() => {}
            }
            // Coalesce bursts: at most ~8 updates a second.
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    });
}

/// Forwards engine events to the window and feeds the notification digest.
fn spawn_event_forwarder(app: AppHandle) {
    let (mut events, notifier, wake) = {
        let state = app.state::<AppState>();
        (state.bridge.events(), state.notifier.clone(), state.notify_wake.clone())
    };
    let (notifier2, wake2) = (notifier.clone(), wake.clone());
    tauri::async_runtime::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(ev) => {
                    let _ = app.emit(commands::EV_ENGINE, &ev);
                    notifier.lock().unwrap().on_event(&ev, Instant::now());
                    wake.notify_one();
                }
                // Missed some under load: the status still tells the whole story.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    });
    // Shows the digest when the rate limit allows.
    let (notifier, wake) = (notifier2, wake2);
    tauri::async_runtime::spawn(async move {
        loop {
            let due = notifier.lock().unwrap().due_at();
            match due {
                None => wake.notified().await,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = wake.notified() => continue,
                    }
                    let msg = notifier.lock().unwrap().take(Instant::now());
                    if let Some((title, body)) = msg {
                        let _ = tokio::task::spawn_blocking(move || notify::show(&title, &body)).await;
                    }
                }
            }
        }
    });
}

fn main() {
    let t0 = Instant::now();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = parse_args();

    let data_dir = if args.demo {
        demo::data_root()
    } else {
        args.data_dir.clone().unwrap_or_else(default_data_dir)
    };

    let app = tauri::Builder::default()
        // First, so a second launch is caught before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            tracing::info!("second launch: focusing the window");
            window::open(app);
        }))
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .args(["--minimized"])
                .app_name("Ferry")
                .build(),
        )
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
            commands::discard,
            commands::sync_now,
            commands::set_paused,
            commands::settings,
            commands::set_server,
            commands::set_pull_interval,
            commands::set_notifications,
            commands::set_autostart,
            commands::set_policy,
            commands::login,
            commands::logout,
        ])
        .on_window_event(|_window, event| {
            if let tauri::WindowEvent::Destroyed = event {
                window::release_memory();
            }
        })
        .setup(move |app| {
            let handle = app.handle().clone();
            let tray = tray::Tray::build(&handle, on_menu)?;
            tracing::info!(elapsed_ms = t0.elapsed().as_millis() as u64, "tray icon ready");

            if args.demo {
                demo::reset_data_root(&data_dir)?;
            }
            std::fs::create_dir_all(&data_dir)?;
            let engine_dir = if args.demo { data_dir.join("this-device") } else { data_dir.clone() };
            let tokens = if args.demo { Tokens::Memory } else { Tokens::Keyring };
            let bridge = Bridge::open(engine_dir, tokens)?;
            let prefs_file = PrefsFile::new(&data_dir);
            let prefs = prefs_file.load();
            let policy = if args.demo { demo::notify_policy() } else { notify::Policy::default() };
            let notifier = notify::Notifier::new(policy, Instant::now(), prefs.notifications);
            app.manage(AppState {
                bridge: bridge.clone(),
                data_dir: data_dir.clone(),
                demo: args.demo,
                prefs_file,
                prefs: Mutex::new(prefs),
                notifier: Arc::new(Mutex::new(notifier)),
                notify_wake: Arc::new(tokio::sync::Notify::new()),
                tray,
                demo_handle: tokio::sync::Mutex::new(None),
            });
            spawn_status_forwarder(handle.clone());
            spawn_event_forwarder(handle.clone());
            // A logout or `kill` ends Ferry like Quit does: the engine stops cleanly.
            #[cfg(unix)]
            {
                let h = handle.clone();
                tauri::async_runtime::spawn(async move {
                    use tokio::signal::unix::{signal, SignalKind};
                    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
                        return;
                    };
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                    quit(h);
                });
            }

            if args.demo {
                // The demo signs in against its own server before the engine
                // starts syncing; then it plays the sample script.
                let h = handle.clone();
                tauri::async_runtime::spawn(async move {
                    let root = h.state::<AppState>().data_dir.clone();
                    match demo::start(&bridge, &root).await {
                        Ok(d) => {
                            bridge.start();
                            let script = d.script(bridge.clone());
                            *h.state::<AppState>().demo_handle.lock().await = Some(d);
                            script.await;
                        }
                        Err(e) => {
                            tracing::error!("demo could not start: {e:#}");
                            bridge.start();
                        }
                    }
                });
            } else {
                bridge.start();
            }
            if !args.minimized {
                window::open(&handle);
            }
            Ok(())
        })
        .build(tauri::generate_context!("../tauri.conf.json"))
        .expect("Ferry could not start its window system (is a display available?)");

    app.run(|_app, event| {
        // Closing the last window must not end the app: Ferry keeps syncing
        // in the tray. Only Quit (which passes an exit code) ends it.
        if let RunEvent::ExitRequested { code: None, api, .. } = event {
            api.prevent_exit();
        }
    });
}
