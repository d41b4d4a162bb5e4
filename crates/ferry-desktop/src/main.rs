//! `ferry-app`: Ferry on the desktop. Runs the sync engine in a background
//! task, shows its state in the tray and in notifications, starts at login,
//! and opens the window (`ferry-window`, a separate Tauri process) on demand.
//!
//! Ferry lives in the tray all day, so this process loads no GUI toolkit:
//! the tray speaks D-Bus itself, and the window's WebKit exists only while
//! the window is open — closing it ends that process and gives its memory
//! back.

mod autostart;
mod commands;
mod demo;
mod demo_network;
mod diagnostics;
mod engine_bridge;
mod i18n;
mod instance;
mod logging;
mod memory;
mod notify;
mod prefs;
mod status_line;
mod tray;
mod window;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ferry_ipc::HostMessage;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::Notify;

use autostart::Autostart;
use engine_bridge::{Bridge, BridgeResult, Tokens};
use i18n::Locale;
use prefs::{AppPrefs, PrefsFile};
use tray::{Tray, TrayAction, TrayView};
use window::Window;

/// Shared state of the running app.
pub struct App {
    pub bridge: Bridge,
    /// The data dir (in the demo: the demo's root, holding both devices).
    pub data_dir: PathBuf,
    pub demo: bool,
    prefs_file: PrefsFile,
    pub prefs: Mutex<AppPrefs>,
    pub notifier: Arc<Mutex<notify::Notifier>>,
    /// Wakes the notification task when the digest changes.
    notify_wake: Arc<Notify>,
    pub autostart: Autostart,
    pub tray: Tray,
    /// Wakes the tray updater when something besides the status changed.
    tray_dirty: Notify,
    pub window: OnceLock<Window>,
}

impl App {
    pub fn update_prefs(&self, f: impl FnOnce(&mut AppPrefs)) -> BridgeResult<()> {
        let mut prefs = self.prefs.lock().unwrap();
        f(&mut prefs);
        self.prefs_file.save(&prefs).map_err(|e| format!("could not save settings: {e}"))
    }

    /// Turns start-at-login on or off; the tray's check item and an open
    /// settings view follow.
    pub fn set_autostart(&self, on: bool) -> BridgeResult<bool> {
        let now = self.autostart.set(on)?;
        self.tray_dirty.notify_one();
        self.settings_changed();
        Ok(now)
    }

    /// The language the tray, notifications and window speak now.
    pub fn locale(&self) -> Locale {
        Locale::for_preference(&self.prefs.lock().unwrap().language)
    }

    /// Switches the language: the tray redraws, notifications follow, an
    /// open window reloads its messages.
    pub fn set_language(&self, language: &str) -> BridgeResult<()> {
        if !i18n::PREFERENCES.contains(&language) {
            return Err(format!("unknown language {language:?}: choose one of {}", i18n::PREFERENCES.join(", ")));
        }
        self.update_prefs(|p| p.language = language.to_string())?;
        let locale = self.locale();
        self.notifier.lock().unwrap().locale = locale;
        tracing::info!(language, locale = locale.code(), "language changed");
        self.tray_dirty.notify_one();
        self.settings_changed();
        Ok(())
    }

    fn open_window(&self) {
        let Some(w) = self.window.get() else { return };
        if let Err(e) = w.open() {
            tracing::error!("{e}");
            let locale = self.locale();
            let title = i18n::tr(locale, "notify-window-failed-title");
            let body = i18n::tr_args(locale, "notify-window-failed", &[("error", e.to_string().into())]);
            tokio::task::spawn_blocking(move || notify::show(&title, &body));
        }
    }
}

struct Args {
    demo: bool,
    /// Started at login: stay in the tray, no window.
    minimized: bool,
    data_dir: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args =
        Args { demo: false, minimized: false, data_dir: std::env::var_os("FERRY_DATA_DIR").map(PathBuf::from) };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--demo" => args.demo = true,
            "--minimized" | "--hidden" => args.minimized = true,
            "--data-dir" => args.data_dir = it.next().map(PathBuf::from),
            "--help" | "-h" => {
                println!(
                    "ferry-app [--demo] [--minimized] [--data-dir DIR]\n  \
                     --demo        own data dir, embedded server, sample data and a second device\n  \
                     --minimized   start in the tray without opening the window\n  \
                     --data-dir    where the engine keeps its database (also FERRY_DATA_DIR)"
                );
                std::process::exit(0);
            }
            "--version" | "-V" => {
                println!("ferry-app {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            // Unknown arguments (from a desktop launcher, a test driver) are ignored.
            _ => {}
        }
    }
    // The login entry starts Ferry from another directory: keep it absolute.
    args.data_dir = args.data_dir.map(|d| std::path::absolute(&d).unwrap_or(d));
    args
}

fn default_data_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "ferry")
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".ferry"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let t0 = Instant::now();
    memory::limit_arenas();
    let logs = logging::init();
    let args = parse_args();
    // Two workers: the engine mostly waits on the network and SQLite.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ferry-app")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(args, t0, &logs))
}

async fn run(args: Args, t0: Instant, logs: &logging::Logs) -> anyhow::Result<()> {
    let root = if args.demo { demo::data_root() } else { args.data_dir.clone().unwrap_or_else(default_data_dir) };
    let ask = if args.minimized { instance::Ask::Nothing } else { instance::Ask::Open };
    let listener = match instance::claim(&root, ask).await {
        Ok(instance::Claim::First(l)) => Some(l),
        Ok(instance::Claim::Second) => {
            tracing::info!("Ferry is already running for {}; it opens its window", root.display());
            return Ok(());
        }
        // One is running but stuck: starting a second would fight it for
        // the data dir (and the demo would reset it under it).
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(e.into()),
        Err(e) => {
            tracing::warn!("cannot check for another running Ferry ({e}); starting anyway");
            None
        }
    };
    // Answer later launches from now on: one that comes while we start up
    // (opening the database, the demo's server, the tray) waits in the
    // queue instead of timing out and reporting us stuck.
    let (actions, mut actions_rx) = mpsc::unbounded_channel();
    let listener = listener.map(Arc::new);
    if let Some(l) = &listener {
        spawn_instance_listener(l.clone(), actions.clone());
    }
    if args.demo {
        demo::reset_data_root(&root).with_context(|| format!("cannot reset the demo dir {}", root.display()))?;
    }
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create the data dir {}", root.display()))?;
    let engine_dir = if args.demo { root.join("this-device") } else { root.clone() };
    // The engine's data dir: its diagnostics archive collects these logs.
    logs.open_file(&engine_dir);
    let tokens = if args.demo { Tokens::Memory } else { Tokens::Keyring };
    let bridge = Bridge::open(engine_dir, tokens)?;
    let prefs_file = PrefsFile::new(&root);
    let prefs = prefs_file.load();
    let policy = if args.demo { demo::notify_policy() } else { notify::Policy::default() };
    let locale = Locale::for_preference(&prefs.language);
    let notifier = notify::Notifier::new(policy, Instant::now(), prefs.notifications, locale);
    let autostart = Autostart::new(args.demo, if args.demo { None } else { args.data_dir.as_deref() });

    let tray =
        Tray::start(TrayView::new(&bridge.status(), now_ms(), autostart.is_enabled(), locale), actions.clone()).await;
    tracing::info!(elapsed_ms = t0.elapsed().as_millis() as u64, "tray ready");

    let app = Arc::new(App {
        bridge: bridge.clone(),
        data_dir: root.clone(),
        demo: args.demo,
        prefs_file,
        prefs: Mutex::new(prefs),
        notifier: Arc::new(Mutex::new(notifier)),
        notify_wake: Arc::new(Notify::new()),
        autostart,
        tray,
        tray_dirty: Notify::new(),
        window: OnceLock::new(),
    });
    let handler: window::Handler = {
        let app = app.clone();
        Arc::new(move |req| Box::pin(commands::handle(app.clone(), req)))
    };
    let greeting = {
        let bridge = bridge.clone();
        Arc::new(move || vec![HostMessage::Status { status: bridge.status() }])
    };
    let _ = app.window.set(Window::new(window::default_program(), Vec::new(), handler, greeting));

    spawn_status_forwarder(app.clone());
    spawn_event_forwarder(app.clone());
    spawn_signal_handler(actions.clone());

    let demo = if args.demo {
        Some(demo::launch(bridge.clone(), root.clone()))
    } else {
        bridge.start();
        None
    };
    if !args.minimized {
        app.open_window();
    }

    while let Some(action) = actions_rx.recv().await {
        match action {
            TrayAction::SyncNow => app.bridge.sync_now(),
            TrayAction::TogglePause => {
                let paused = app.bridge.status().paused;
                app.bridge.set_paused(!paused);
            }
            TrayAction::Open => app.open_window(),
            TrayAction::ToggleAutostart => {
                if let Err(e) = app.set_autostart(!app.autostart.is_enabled()) {
                    tracing::warn!("{e}");
                }
            }
            TrayAction::Quit => break,
        }
    }

    tracing::info!("quitting: closing the window, stopping the engine");
    if let Some(w) = app.window.get() {
        w.close().await;
    }
    app.bridge.stop().await;
    if let Some(demo) = demo {
        demo.stop().await;
    }
    if let Some(l) = &listener {
        l.unlink();
    }
    tracing::info!("engine stopped; bye");
    Ok(())
}

/// Later launches ask through the instance socket: open the window.
fn spawn_instance_listener(listener: Arc<instance::Listener>, actions: UnboundedSender<TrayAction>) {
    tracing::debug!(socket = %listener.path().display(), "listening for later launches");
    tokio::spawn(async move {
        loop {
            match listener.next().await {
                Ok(instance::Ask::Open) => {
                    tracing::info!("second launch: opening the window");
                    let _ = actions.send(TrayAction::Open);
                }
                Ok(instance::Ask::Nothing) => {}
                Err(e) => {
                    tracing::warn!("single-instance socket: {e}");
                    break;
                }
            }
        }
    });
}

/// A logout or `kill` ends Ferry like Quit does: the engine stops cleanly.
fn spawn_signal_handler(actions: UnboundedSender<TrayAction>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = actions.send(TrayAction::Quit);
    });
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = actions.send(TrayAction::Quit);
        }
    });
}

/// Forwards the engine's status to the tray and the window. The watch
/// channel only ever holds the latest value, so a burst of changes (a long
/// queue draining) costs one update per tick, not one per item.
fn spawn_status_forwarder(app: Arc<App>) {
    let mut rx = app.bridge.subscribe();
    tokio::spawn(async move {
        // "synced 2 min ago" ages: refresh now and then even when nothing changes.
        let mut tick = tokio::time::interval(Duration::from_secs(30));
        loop {
            let status = rx.borrow_and_update().clone();
            app.notifier.lock().unwrap().on_status(&status, Instant::now());
            app.tray.show(TrayView::new(&status, now_ms(), app.autostart.is_enabled(), app.locale())).await;
            if let Some(w) = app.window.get() {
                w.send(HostMessage::Status { status });
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { break },
                _ = tick.tick() => {}
                _ = app.tray_dirty.notified() => {}
            }
            // Coalesce bursts: at most ~8 updates a second.
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    });
}

/// Forwards engine events to the window and feeds the notification digest.
fn spawn_event_forwarder(app: Arc<App>) {
    let mut events = app.bridge.events();
    let (notifier, wake) = (app.notifier.clone(), app.notify_wake.clone());
    let forwarder = app.clone();
    tokio::spawn(async move {
        let app = forwarder;
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(ev) => {
                    notifier.lock().unwrap().on_event(&ev, Instant::now());
                    wake.notify_one();
                    if let Some(w) = app.window.get() {
                        w.send(HostMessage::Event { event: ev });
                    }
                }
                // Missed some under load: the status still tells the whole story.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => break,
            }
        }
    });
    // Shows the digest when the rate limit allows.
    let (notifier, wake) = (app.notifier.clone(), app.notify_wake.clone());
    let bridge = app.bridge.clone();
    tokio::spawn(async move {
        loop {
            let due = notifier.lock().unwrap().due_at();
            match due {
                None => wake.notified().await,
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at.into()) => {}
                        _ = wake.notified() => continue,
                    }
                    let msg = notifier.lock().unwrap().take(Instant::now(), &bridge.status());
                    if let Some((title, body)) = msg {
                        let _ = tokio::task::spawn_blocking(move || notify::show(&title, &body)).await;
                    }
                }
            }
        }
    });
}
