//! The tray icon and its menu: the app's face for most of the day.
//!
//! Linux trays (StatusNotifierItem) show no tooltip and usually deliver no
//! clicks, so the menu carries the status line and "Open Ferry".

use std::sync::Mutex;

use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Runtime};
use tauri_plugin_autostart::ManagerExt as _;

use crate::engine_bridge::{Status, SyncState};

/// What the tray picture says, one of five.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    Synced,
    Syncing,
    Offline,
    Paused,
    Attention,
}

impl Picture {
    /// Fixed precedence: attention (failed, conflict, sign-in, error,
    /// stalled) > offline > syncing > paused > synced. Attention wins even
    /// while paused or offline: a parked conflict must never hide behind a
    /// calmer picture.
    pub fn for_status(s: &Status) -> Picture {
        let attention = s.failed > 0
            || s.conflicts > 0
            || matches!(s.state, SyncState::NeedsSignIn | SyncState::Error | SyncState::Stalled);
        if attention {
            Picture::Attention
        } else if s.state == SyncState::Offline {
            Picture::Offline
        } else if s.state == SyncState::Syncing {
            Picture::Syncing
        } else if s.paused || s.state == SyncState::Paused {
            Picture::Paused
        } else {
            Picture::Synced
        }
    }

    fn png(self) -> &'static [u8] {
        match self {
            Picture::Synced => include_bytes!("../../icons/tray/synced.png"),
            Picture::Syncing => include_bytes!("../../icons/tray/syncing.png"),
            Picture::Offline => include_bytes!("../../icons/tray/offline.png"),
            Picture::Paused => include_bytes!("../../icons/tray/paused.png"),
            Picture::Attention => include_bytes!("../../icons/tray/attention.png"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Picture::Synced => "synced",
            Picture::Syncing => "syncing",
            Picture::Offline => "offline",
            Picture::Paused => "paused",
            Picture::Attention => "attention",
        }
    }
}

pub const ID_STATUS: &str = "status";
pub const ID_SYNC: &str = "sync-now";
pub const ID_PAUSE: &str = "pause";
pub const ID_OPEN: &str = "open";
pub const ID_AUTOSTART: &str = "autostart";
pub const ID_QUIT: &str = "quit";

/// Handles kept to update the tray as the status changes.
pub struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    status_line: MenuItem<R>,
    pause: MenuItem<R>,
    autostart: CheckMenuItem<R>,
    /// Last values set, so an unchanged status costs no D-Bus traffic.
    shown: Mutex<(Option<Picture>, String, bool)>,
}

impl<R: Runtime> Tray<R> {
    pub fn build(app: &AppHandle<R>, on_menu: impl Fn(&AppHandle<R>, MenuEvent) + Send + Sync + 'static) -> tauri::Result<Tray<R>> {
        let status_line = MenuItem::with_id(app, ID_STATUS, "Starting…", false, None::<&str>)?;
        let sync = MenuItem::with_id(app, ID_SYNC, "Sync now", true, None::<&str>)?;
        let pause = MenuItem::with_id(app, ID_PAUSE, "Pause", true, None::<&str>)?;
        let open = MenuItem::with_id(app, ID_OPEN, "Open Ferry", true, None::<&str>)?;
        let enabled = app.autolaunch().is_enabled().unwrap_or(false);
        let autostart = CheckMenuItem::with_id(app, ID_AUTOSTART, "Start at login", true, enabled, None::<&str>)?;
        let quit = MenuItem::with_id(app, ID_QUIT, "Quit Ferry", true, None::<&str>)?;
        let menu = Menu::with_items(
            app,
            &[
                &status_line,
                &PredefinedMenuItem::separator(app)?,
                &sync,
                &pause,
                &open,
                &PredefinedMenuItem::separator(app)?,
                &autostart,
                &PredefinedMenuItem::separator(app)?,
                &quit,
            ],
        )?;
        let icon = TrayIconBuilder::with_id("ferry")
            .icon(Image::from_bytes(Picture::Synced.png())?)
            .tooltip("Ferry")
            .menu(&menu)
            // Left click opens the window (where the platform reports
            // clicks); the menu stays on the right button.
            .show_menu_on_left_click(false)
            .on_menu_event(on_menu)
            .on_tray_icon_event(|tray, event| {
                if let TrayIconEvent::Click { button: MouseButton::Left, button_state: MouseButtonState::Up, .. } = event {
                    crate::window::open(tray.app_handle());
                }
            })
            .build(app)?;
        Ok(Tray { icon, status_line, pause, autostart, shown: Mutex::new((Some(Picture::Synced), String::new(), false)) })
    }

    /// Brings the picture, status line and Pause/Resume in line with `status`.
    pub fn update(&self, status: &Status, now_ms: i64) {
        let picture = Picture::for_status(status);
        let summary = status.summary(now_ms);
        let mut shown = self.shown.lock().unwrap();
        if shown.0 != Some(picture) {
            match Image::from_bytes(picture.png()) {
                Ok(img) => {
                    if let Err(e) = self.icon.set_icon(Some(img)) {
                        tracing::warn!("tray icon: {e}");
                    }
                }
                Err(e) => tracing::warn!("tray icon image: {e}"),
            }
            tracing::debug!(picture = picture.name(), "tray picture");
            shown.0 = Some(picture);
        }
        if shown.1 != summary {
            let _ = self.status_line.set_text(&summary);
            let _ = self.icon.set_tooltip(Some(format!("Ferry — {summary}")));
            shown.1 = summary;
        }
        if shown.2 != status.paused {
            let _ = self.pause.set_text(if status.paused { "Resume" } else { "Pause" });
            shown.2 = status.paused;
        }
    }

    pub fn set_autostart_checked(&self, on: bool) {
        let _ = self.autostart.set_checked(on);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: SyncState) -> Status {
        Status {
            state,
            pending: 0,
            in_flight: 0,
            failed: 0,
            conflicts: 0,
            last_sync_at: None,
            last_error: None,
            next_retry_at: None,
            progress: None,
            server: None,
            user: None,
            paused: false,
        }
    }

    #[test]
    fn precedence() {
        use Picture::*;
        assert_eq!(Picture::for_status(&status(SyncState::Idle)), Synced);
        assert_eq!(Picture::for_status(&status(SyncState::Syncing)), Syncing);
        assert_eq!(Picture::for_status(&status(SyncState::Offline)), Offline);
        let mut p = status(SyncState::Paused);
        p.paused = true;
        assert_eq!(Picture::for_status(&p), Paused);
        assert_eq!(Picture::for_status(&status(SyncState::NeedsSignIn)), Attention);
        assert_eq!(Picture::for_status(&status(SyncState::Stalled)), Attention);

        // attention beats offline, syncing and paused
        for st in [SyncState::Offline, SyncState::Syncing, SyncState::Paused, SyncState::Idle] {
            let mut s = status(st);
            s.conflicts = 1;
            assert_eq!(Picture::for_status(&s), Attention, "{st:?} + conflict");
            let mut s = status(st);
            s.failed = 2;
            s.paused = true;
            assert_eq!(Picture::for_status(&s), Attention, "{st:?} + failed");
        }
        // offline beats syncing-looking counts and paused
        let mut s = status(SyncState::Offline);
        s.pending = 5;
        s.paused = true;
        assert_eq!(Picture::for_status(&s), Offline);
    }

    #[test]
    fn every_picture_is_a_distinct_rgba_png() {
        use Picture::*;
        let all = [Synced, Syncing, Offline, Paused, Attention];
        for (i, a) in all.iter().enumerate() {
            let img = Image::from_bytes(a.png()).unwrap();
            assert_eq!(img.rgba().len() as u32, img.width() * img.height() * 4);
            for b in &all[i + 1..] {
                assert_ne!(a.png(), b.png(), "{} and {} look the same", a.name(), b.name());
            }
        }
    }
}
