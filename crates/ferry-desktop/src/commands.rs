//! The window's commands, run here in the resident process (the window is
//! only a view). Each answers JSON or a message for people. None returns a
//! token: sign-in takes a password in and answers ok/error; the engine keeps
//! the tokens in the keyring.

use std::sync::Arc;
use std::time::Duration;

use ferry_engine::Resolution;
use ferry_ipc::{Answer, AppInfo, HostMessage, PolicyRow, Request, Settings};
use serde::Serialize;

use crate::engine_bridge::ConflictPolicy;
use crate::App;

/// Entity types the settings view always offers a policy for.
const KNOWN_ENTITIES: &[&str] = &["activity", "expense", "contact"];

fn ok<T: Serialize>(v: T) -> Answer {
    serde_json::to_value(v).map_err(|e| format!("could not encode the answer: {e}"))
}

/// Runs one command. Database work runs on a blocking thread: the store may
/// wait for another process's write, and the tray must stay responsive.
pub async fn handle(app: Arc<App>, req: Request) -> Answer {
    match req {
        Request::SetServer { url } => set_server(&app, url).await,
        Request::Login { user, password } => {
            app.bridge.login(user.trim(), &password).await?;
            app.bridge.sync_now();
            app.settings_changed();
            ok(())
        }
        Request::Logout => {
            app.bridge.logout().await?;
            app.settings_changed();
            ok(())
        }
        req => {
            let app = app.clone();
            tokio::task::spawn_blocking(move || handle_blocking(&app, req))
                .await
                .unwrap_or_else(|e| Err(format!("the command failed: {e}")))
        }
    }
}

fn handle_blocking(app: &App, req: Request) -> Answer {
    let bridge = &app.bridge;
    match req {
        Request::AppInfo => ok(AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            demo: app.demo,
            data_dir: app.data_dir.display().to_string(),
            locale: app.locale().code().to_string(),
        }),
        Request::Status => ok(bridge.status()),
        // Keyset paging on `seq`: page N costs what page 1 does, however
        // long the queue is.
        Request::QueuePage { filter, after, limit } => {
            ok(bridge.queue(filter, after, limit.unwrap_or(200).clamp(1, 1000))?)
        }
        // A page of cards: a long absence can leave thousands of conflicts,
        // and a window shows the oldest first ("Show more" asks for more).
        Request::Conflicts { limit } => ok(bridge.first_conflicts(limit.unwrap_or(50).clamp(1, 1000))?),
        Request::Resolve { conflict_id, resolution } => {
            if resolution.keep.is_none() && resolution.fields.is_empty() {
                return Err("choose a side or pick fields first".into());
            }
            bridge.resolve(&conflict_id, resolution)?;
            bridge.sync_now();
            ok(())
        }
        // Keep one side for every listed conflict (all open ones if none
        // are listed). Stops at the first error; what was settled before it
        // stays settled and is uploaded, and the answer says how many.
        Request::ResolveAll { keep, ids } => {
            let ids = match ids {
                Some(ids) if !ids.is_empty() => ids,
                _ => bridge.conflict_ids()?,
            };
            let total = ids.len();
            let mut n = 0u32;
            let mut failure = None;
            for id in ids {
                match bridge.resolve(&id, Resolution { keep: Some(keep), ..Default::default() }) {
                    Ok(()) => n += 1,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if n > 0 {
                bridge.sync_now();
            }
            match failure {
                None => ok(n),
                Some(e) => Err(format!("resolved {n} of {total}, then: {e}")),
            }
        }
        Request::History { before, limit } => ok(bridge.history(before, limit.unwrap_or(200).clamp(1, 1000))?),
        Request::SyncRuns { limit } => ok(bridge.sync_runs(limit.unwrap_or(100).min(1000))?),
        Request::Restore { history_id } => {
            bridge.restore(history_id)?;
            bridge.sync_now();
            ok(())
        }
        Request::Retry { mutation_id } => {
            bridge.retry(&mutation_id)?;
            bridge.sync_now();
            ok(())
        }
        Request::Correct { mutation_id, fields } => {
            bridge.correct(&mutation_id, fields)?;
            bridge.sync_now();
            ok(())
        }
        Request::RetryAll => {
            bridge.retry_all()?;
            bridge.sync_now();
            ok(())
        }
        Request::Discard { mutation_id } => ok(bridge.discard(&mutation_id)?),
        Request::SyncNow => {
            bridge.sync_now();
            ok(())
        }
        Request::SetPaused { paused } => {
            bridge.set_paused(paused);
            ok(())
        }
        Request::Settings => ok(settings(app)?),
        Request::SetPullInterval { secs } => {
            if !(10..=86_400).contains(&secs) {
                return Err("choose between 10 seconds and a day".into());
            }
            ok(bridge.set_pull_interval(Duration::from_secs(secs))?)
        }
        Request::SetNotifications { on } => {
            app.notifier.lock().unwrap().set_enabled(on);
            app.update_prefs(|p| p.notifications = on)?;
            ok(())
        }
        Request::SetAutostart { on } => ok(app.set_autostart(on)?),
        Request::SetPolicy { entity, policy } => ok(bridge.set_policy(&entity, policy)?),
        Request::SetLanguage { language } => ok(app.set_language(&language)?),
        Request::SetTitleField { entity, field } => {
            let field = field.as_deref().map(str::trim).filter(|f| !f.is_empty());
            bridge.set_title_field(entity.trim(), field)?;
            // Lists show the new labels when the window reloads.
            app.settings_changed();
            ok(())
        }
        Request::SaveDiagnostics { include_records } => {
            let to = crate::diagnostics::target_path();
            let written = bridge.save_diagnostics(&to, include_records)?;
            tracing::info!(path = %written.display(), include_records, "diagnostics saved");
            ok(written.display().to_string())
        }
        // Handled on the runtime (they talk to the server).
        Request::SetServer { .. } | Request::Login { .. } | Request::Logout => {
            Err("internal: an async command reached the blocking path".into())
        }
    }
}

/// Returns whether the server answered (an unreachable one is still saved).
async fn set_server(app: &App, url: String) -> Answer {
    let url = url.trim().to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("the server address starts with https:// (or http:// for a local test server)".into());
    }
    let reached = app.bridge.init(&url).await?;
    app.bridge.sync_now();
    app.settings_changed();
    ok(reached)
}

pub fn settings(app: &App) -> Result<Settings, String> {
    let status = app.bridge.status();
    let policies = policy_rows(app.bridge.policies()?, app.bridge.title_fields()?);
    // One lock, released here: a second `lock()` in the same expression
    // would wait for the first (its guard lives to the statement's end).
    let prefs = app.prefs.lock().unwrap().clone();
    Ok(Settings {
        server: status.server,
        user: status.user,
        autostart: app.autostart.is_enabled(),
        notifications: prefs.notifications,
        pull_interval_secs: app.bridge.pull_interval().as_secs(),
        policies,
        language: prefs.language,
    })
}

/// One row per known entity, then per other entity that has a policy or a
/// title field set, in that order.
fn policy_rows(set: Vec<(String, ConflictPolicy)>, titles: Vec<(String, String)>) -> Vec<PolicyRow> {
    let mut entities: Vec<String> = KNOWN_ENTITIES.iter().map(|e| e.to_string()).collect();
    for name in set.iter().map(|(e, _)| e).chain(titles.iter().map(|(e, _)| e)) {
        if !entities.contains(name) {
            entities.push(name.clone());
        }
    }
    entities
        .into_iter()
        .map(|entity| PolicyRow {
            policy: set.iter().find(|(n, _)| *n == entity).map(|(_, p)| *p).unwrap_or_default(),
            title_field: titles.iter().find(|(n, _)| *n == entity).map(|(_, f)| f.clone()),
            entity,
        })
        .collect()
}

impl App {
    /// Tells an open window to reload its settings view.
    pub fn settings_changed(&self) {
        if let Some(w) = self.window.get() {
            w.send(HostMessage::SettingsChanged);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, OnceLock};
    use std::time::Instant;

    use super::*;
    use crate::autostart::Autostart;
    use crate::engine_bridge::{Bridge, Tokens};
    use crate::i18n::Locale;
    use crate::notify::{Notifier, Policy};
    use crate::prefs::{AppPrefs, PrefsFile};
    use crate::tray::{Tray, TrayView};

    /// The app as `run` builds it, on a temp data dir, without a window.
    async fn app(dir: &std::path::Path) -> Arc<App> {
        let bridge = Bridge::open(dir.join("engine"), Tokens::Memory).unwrap();
        let (actions, _) = tokio::sync::mpsc::unbounded_channel();
        let tray = Tray::start(TrayView::new(&bridge.status(), 0, false, Locale::En), actions).await;
        Arc::new(App {
            bridge,
            data_dir: dir.to_path_buf(),
            demo: true,
            prefs_file: PrefsFile::new(dir),
            prefs: Mutex::new(AppPrefs { language: "en".into(), ..AppPrefs::default() }),
            notifier: Arc::new(Mutex::new(Notifier::new(Policy::default(), Instant::now(), true, Locale::En))),
            notify_wake: Arc::new(tokio::sync::Notify::new()),
            autostart: Autostart::new(true, None),
            tray,
            tray_dirty: tokio::sync::Notify::new(),
            window: OnceLock::new(),
        })
    }

    async fn call(app: &Arc<App>, req: Request) -> Answer {
        handle(app.clone(), req).await
    }

    /// Ends the test process loudly if the test is still running after
    /// `secs`: a command stuck on a lock taken twice blocks the runtime's
    /// threads, so the test would hang instead of failing.
    struct Watchdog(Arc<std::sync::atomic::AtomicBool>);

    impl Watchdog {
        fn new(what: &'static str, secs: u64) -> Watchdog {
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = done.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(secs));
                if !seen.load(std::sync::atomic::Ordering::SeqCst) {
                    eprintln!("{what}: still running after {secs} s, a deadlock?");
                    std::process::abort();
                }
            });
            Watchdog(done)
        }
    }

    impl Drop for Watchdog {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_language_switches_tray_notifications_and_window_at_once() {
        let _watchdog = Watchdog::new("language switch", 20);
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path()).await;
        crate::spawn_status_forwarder(app.clone());
        let settings = call(&app, Request::Settings).await.unwrap();
        assert_eq!(settings["language"], "en");
        assert_eq!(call(&app, Request::AppInfo).await.unwrap()["locale"], "en");

        call(&app, Request::SetLanguage { language: "nb".into() }).await.unwrap();
        assert_eq!(call(&app, Request::Settings).await.unwrap()["language"], "nb");
        assert_eq!(call(&app, Request::AppInfo).await.unwrap()["locale"], "nb");
        assert_eq!(app.notifier.lock().unwrap().locale, Locale::Nb);
        assert_eq!(PrefsFile::new(dir.path()).load().language, "nb", "kept for the next start");
        // The tray redraws in Norwegian without waiting for a status change.
        let norwegian = async {
            while app.tray.view().menu.sync_now != "Synkroniser nå" {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), norwegian).await.expect("the tray menu turned Norwegian");
        assert!(app.tray.view().status_line.contains("synkronisert"), "{}", app.tray.view().status_line);

        let e = call(&app, Request::SetLanguage { language: "de".into() }).await.unwrap_err();
        assert!(e.contains("unknown language"), "{e}");
        assert_eq!(call(&app, Request::Settings).await.unwrap()["language"], "nb", "a refused choice changes nothing");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_title_field_shows_in_the_settings_and_goes_back_to_the_default() {
        let _watchdog = Watchdog::new("title field", 20);
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path()).await;
        let row = |s: &serde_json::Value, entity: &str| {
            s["policies"].as_array().unwrap().iter().find(|r| r["entity"] == entity).cloned().unwrap()
        };
        let set =
            |field: Option<&str>| Request::SetTitleField { entity: "expense".into(), field: field.map(str::to_string) };
        call(&app, set(Some(" description "))).await.unwrap();
        assert_eq!(row(&call(&app, Request::Settings).await.unwrap(), "expense")["title_field"], "description");
        call(&app, set(Some(""))).await.unwrap();
        assert!(row(&call(&app, Request::Settings).await.unwrap(), "expense")["title_field"].is_null());
        call(&app, set(Some("amount"))).await.unwrap();
        call(&app, set(None)).await.unwrap();
        assert!(row(&call(&app, Request::Settings).await.unwrap(), "expense")["title_field"].is_null());
    }

    #[test]
    fn policy_rows_carry_title_fields_and_every_entity_once() {
        let rows = policy_rows(
            vec![("activity".into(), ConflictPolicy::Manual), ("shift".into(), ConflictPolicy::Merge)],
            vec![("expense".into(), "description".into()), ("volunteer".into(), "full_name".into())],
        );
        let names: Vec<&str> = rows.iter().map(|r| r.entity.as_str()).collect();
        assert_eq!(names, ["activity", "expense", "contact", "shift", "volunteer"]);
        assert_eq!(rows[0].policy, ConflictPolicy::Manual);
        assert_eq!(rows[0].title_field, None);
        assert_eq!(rows[1].title_field.as_deref(), Some("description"));
        assert_eq!(rows[1].policy, ConflictPolicy::default());
        assert_eq!(rows[3].policy, ConflictPolicy::Merge);
        assert_eq!(rows[4].title_field.as_deref(), Some("full_name"));
    }
}
