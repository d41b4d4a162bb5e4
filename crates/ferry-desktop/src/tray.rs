//! The tray icon and its menu: Ferry's face for most of the day.
//!
//! On Linux the item is published over D-Bus as a StatusNotifierItem with a
//! dbusmenu (the `ksni` crate, pure Rust, no GTK): the panel shows the
//! picture and the menu, and — unlike libappindicator — delivers left
//! clicks, which open the window. Panels do not reliably show tooltips, so
//! the menu's first, disabled line carries the status ("3 waiting ·
//! 1 conflict · synced 2 min ago"). Every word is in the user's language
//! (`i18n`), so a change of language is a new `TrayView`.

use std::sync::Mutex;

use ferry_engine::{Status, SyncState};
use tokio::sync::mpsc::UnboundedSender;

use crate::i18n::{tr, Locale};
use crate::status_line::status_line;

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
    /// stalled) > offline > syncing > paused > waiting to upload (the
    /// syncing picture) > synced. Attention wins even while paused or
    /// offline: a parked conflict must never hide behind a calmer picture,
    /// and "synced" is never shown while a change waits.
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
        } else if s.pending + s.in_flight > 0 {
            Picture::Syncing
        } else {
            Picture::Synced
        }
    }

    pub const ALL: [Picture; 5] =
        [Picture::Synced, Picture::Syncing, Picture::Offline, Picture::Paused, Picture::Attention];

    pub fn png(self) -> &'static [u8] {
        match self {
            Picture::Synced => include_bytes!("../../../icons/tray/synced.png"),
            Picture::Syncing => include_bytes!("../../../icons/tray/syncing.png"),
            Picture::Offline => include_bytes!("../../../icons/tray/offline.png"),
            Picture::Paused => include_bytes!("../../../icons/tray/paused.png"),
            Picture::Attention => include_bytes!("../../../icons/tray/attention.png"),
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

/// What the user picked in the tray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayAction {
    SyncNow,
    TogglePause,
    Open,
    ToggleAutostart,
    Quit,
}

/// Everything the tray shows; the tray is redrawn only when this changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayView {
    pub picture: Picture,
    pub status_line: String,
    pub paused: bool,
    pub autostart: bool,
    pub menu: MenuText,
}

/// The menu's and tooltip's words, in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuText {
    pub title: String,
    pub sync_now: String,
    /// "Pause", or "Resume" while paused.
    pub pause_or_resume: String,
    pub open: String,
    pub start_at_login: String,
    pub quit: String,
}

impl MenuText {
    pub fn new(locale: Locale, paused: bool) -> MenuText {
        MenuText {
            title: tr(locale, "tray-title"),
            sync_now: tr(locale, "tray-sync-now"),
            pause_or_resume: tr(locale, if paused { "tray-resume" } else { "tray-pause" }),
            open: tr(locale, "tray-open"),
            start_at_login: tr(locale, "tray-start-at-login"),
            quit: tr(locale, "tray-quit"),
        }
    }
}

impl TrayView {
    pub fn new(status: &Status, now_ms: i64, autostart: bool, locale: Locale) -> TrayView {
        TrayView {
            picture: Picture::for_status(status),
            status_line: status_line(status, now_ms, locale),
            paused: status.paused,
            autostart,
            menu: MenuText::new(locale, status.paused),
        }
    }
}

/// The running tray item (or none, where the desktop has no tray).
pub struct Tray {
    shown: Mutex<TrayView>,
    #[cfg(target_os = "linux")]
    handle: Option<ksni::Handle<sni::FerryTray>>,
}

impl Tray {
    /// Publishes the tray item. A desktop without a tray (no
    /// StatusNotifierWatcher) is not an error: Ferry keeps syncing and the
    /// window is the way in.
    pub async fn start(initial: TrayView, actions: UnboundedSender<TrayAction>) -> Tray {
        #[cfg(target_os = "linux")]
        {
            let handle = sni::spawn(initial.clone(), actions).await;
            Tray { shown: Mutex::new(initial), handle }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = actions;
            tracing::warn!("no tray icon on this platform yet; use the window");
            Tray { shown: Mutex::new(initial) }
        }
    }

    /// Brings the tray in line with `view`; costs nothing when unchanged.
    pub async fn show(&self, view: TrayView) {
        {
            let mut shown = self.shown.lock().unwrap();
            if *shown == view {
                return;
            }
            if shown.picture != view.picture {
                tracing::debug!(picture = view.picture.name(), "tray picture");
            }
            *shown = view.clone();
        }
        #[cfg(target_os = "linux")]
        if let Some(h) = &self.handle {
            h.update(move |t| t.view = view).await;
        }
    }

    pub fn view(&self) -> TrayView {
        self.shown.lock().unwrap().clone()
    }
}

#[cfg(target_os = "linux")]
mod sni {
    use std::sync::Arc;

    use ksni::menu::{CheckmarkItem, StandardItem};
    use ksni::{MenuItem, TrayMethods};
    use tokio::sync::mpsc::UnboundedSender;

    use super::{Picture, TrayAction, TrayView};

    pub struct FerryTray {
        pub view: TrayView,
        icons: Arc<Vec<(Picture, ksni::Icon)>>,
        actions: UnboundedSender<TrayAction>,
    }

    impl FerryTray {
        fn send(&self, a: TrayAction) {
            let _ = self.actions.send(a);
        }

        fn item(label: &str, action: TrayAction) -> MenuItem<Self> {
            StandardItem {
                label: label.into(),
                activate: Box::new(move |t: &mut Self| t.send(action)),
                ..Default::default()
            }
            .into()
        }
    }

    impl ksni::Tray for FerryTray {
        fn id(&self) -> String {
            "ferry".into()
        }

        fn title(&self) -> String {
            self.view.menu.title.clone()
        }

        fn status(&self) -> ksni::Status {
            if self.view.picture == Picture::Attention {
                ksni::Status::NeedsAttention
            } else {
                ksni::Status::Active
            }
        }

        fn icon_pixmap(&self) -> Vec<ksni::Icon> {
            self.icons.iter().filter(|(p, _)| *p == self.view.picture).map(|(_, i)| i.clone()).collect()
        }

        // Panels that show an attention picture ask for this one instead.
        fn attention_icon_pixmap(&self) -> Vec<ksni::Icon> {
            self.icon_pixmap()
        }

        fn tool_tip(&self) -> ksni::ToolTip {
            ksni::ToolTip {
                title: self.view.menu.title.clone(),
                description: self.view.status_line.clone(),
                ..Default::default()
            }
        }

        fn activate(&mut self, _x: i32, _y: i32) {
            self.send(TrayAction::Open);
        }

        fn menu(&self) -> Vec<MenuItem<Self>> {
            let text = &self.view.menu;
            vec![
                StandardItem { label: self.view.status_line.clone(), enabled: false, ..Default::default() }.into(),
                MenuItem::Separator,
                Self::item(&text.sync_now, TrayAction::SyncNow),
                Self::item(&text.pause_or_resume, TrayAction::TogglePause),
                Self::item(&text.open, TrayAction::Open),
                MenuItem::Separator,
                CheckmarkItem {
                    label: text.start_at_login.clone(),
                    checked: self.view.autostart,
                    activate: Box::new(|t: &mut Self| t.send(TrayAction::ToggleAutostart)),
                    ..Default::default()
                }
                .into(),
                MenuItem::Separator,
                Self::item(&text.quit, TrayAction::Quit),
            ]
        }

        fn watcher_offline(&self, reason: ksni::OfflineReason) -> bool {
            tracing::warn!(?reason, "the desktop's tray went away; Ferry keeps syncing and shows up when it returns");
            true
        }
    }

    /// The picture as SNI wants it: ARGB32, big-endian, per size.
    fn decode(png_bytes: &[u8]) -> Result<ksni::Icon, String> {
        let decoder = png::Decoder::new(png_bytes);
        let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
        if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
            return Err(format!(
                "tray pictures must be 8-bit RGBA PNGs, not {:?}/{:?}",
                info.color_type, info.bit_depth
            ));
        }
        let mut data = Vec::with_capacity(info.buffer_size());
        for px in buf[..info.buffer_size()].chunks_exact(4) {
            data.extend_from_slice(&[px[3], px[0], px[1], px[2]]);
        }
        Ok(ksni::Icon { width: info.width as i32, height: info.height as i32, data })
    }

    pub fn icons() -> Vec<(Picture, ksni::Icon)> {
        Picture::ALL
            .iter()
            .filter_map(|p| match decode(p.png()) {
                Ok(i) => Some((*p, i)),
                Err(e) => {
                    tracing::error!(picture = p.name(), "tray picture: {e}");
                    None
                }
            })
            .collect()
    }

    pub async fn spawn(view: TrayView, actions: UnboundedSender<TrayAction>) -> Option<ksni::Handle<FerryTray>> {
        let tray = FerryTray { view, icons: Arc::new(icons()), actions };
        // A panel that starts after Ferry (login) registers it when it comes:
        // no tray host yet is not a failure.
        match tray.assume_sni_available(true).spawn().await {
            Ok(h) => {
                tracing::info!("tray icon ready");
                Some(h)
            }
            Err(e) => {
                tracing::warn!("no tray icon ({e}); Ferry keeps syncing, open the window with `ferry-app`");
                None
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn pictures_decode_to_argb() {
            let icons = icons();
            assert_eq!(icons.len(), Picture::ALL.len());
            for (p, i) in &icons {
                assert_eq!(i.data.len() as i32, i.width * i.height * 4, "{}", p.name());
                assert!(i.width >= 16, "{}: {}px", p.name(), i.width);
            }
            // ARGB: the first byte of a pixel is alpha; the pictures have a
            // transparent corner and an opaque middle.
            let (_, synced) = &icons[0];
            assert_eq!(synced.data[0], 0, "corner alpha");
            let mid = ((synced.height / 2 * synced.width + synced.width / 2) * 4) as usize;
            assert_eq!(synced.data[mid], 255, "middle alpha");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn status(state: SyncState) -> Status {
        Status {
            state,
            pending: 0,
            in_flight: 0,
            failed: 0,
            conflicts: 0,
            last_sync_at: None,
            last_error: None,
            problem: None,
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

    /// The window shows the same picture as the tray (ui/src/format.ts
    /// `picture`). Rust is the source: this writes every combination that
    /// matters, with the tray's answer, to ui/test/pictures.json, and the
    /// UI's test checks its function against that file. Fails when the file
    /// is stale; refresh with `FERRY_UPDATE_BINDINGS=1 cargo test -p ferry-desktop pictures`.
    #[test]
    fn window_pictures_fixture_is_up_to_date() {
        use SyncState::*;
        let mut cases = Vec::new();
        for state in [Idle, Syncing, Offline, Paused, Error, Stalled, NeedsSignIn] {
            for (failed, conflicts, paused) in [(0, 0, false), (0, 0, true), (1, 0, false), (0, 1, true), (2, 3, false)]
            {
                for pending in [0, 4] {
                    let mut s = status(state);
                    (s.failed, s.conflicts, s.paused, s.pending) = (failed, conflicts, paused, pending);
                    cases.push(serde_json::json!({
                        "status": {"state": state, "failed": failed, "conflicts": conflicts, "paused": paused, "pending": pending},
                        "picture": Picture::for_status(&s).name(),
                    }));
                }
            }
        }
        let want = serde_json::to_string_pretty(&cases).unwrap() + "\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/test/pictures.json");
        if std::env::var_os("FERRY_UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &want).unwrap();
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "ui/test/pictures.json is stale: run FERRY_UPDATE_BINDINGS=1 cargo test -p ferry-desktop pictures"
        );
    }

    #[test]
    fn every_picture_is_distinct() {
        for (i, a) in Picture::ALL.iter().enumerate() {
            for b in &Picture::ALL[i + 1..] {
                assert_ne!(a.png(), b.png(), "{} and {} look the same", a.name(), b.name());
            }
        }
    }

    #[test]
    fn the_view_follows_the_status() {
        let mut s = status(SyncState::Idle);
        s.pending = 3;
        s.conflicts = 1;
        let v = TrayView::new(&s, 0, true, Locale::En);
        assert_eq!(v.picture, Picture::Attention);
        assert!(v.status_line.contains("3 waiting"), "{}", v.status_line);
        assert!(v.status_line.contains("1 conflict"), "{}", v.status_line);
        assert!(v.autostart);
    }

    /// The picture and the status line never say synced while anything
    /// waits, failed, is in conflict or needs a sign-in.
    #[test]
    fn synced_is_said_only_when_nothing_waits() {
        let synced = |s: &Status| {
            let v = TrayView::new(s, 10_000, false, Locale::En);
            (v.picture == Picture::Synced, v.status_line.contains("synced just now"))
        };
        let mut s = status(SyncState::Idle);
        s.last_sync_at = Some(9_000);
        assert_eq!(synced(&s), (true, true));
        for change in [
            |s: &mut Status| s.pending = 2,
            |s: &mut Status| s.in_flight = 1,
            |s: &mut Status| s.failed = 1,
            |s: &mut Status| s.conflicts = 1,
            |s: &mut Status| s.state = SyncState::NeedsSignIn,
            |s: &mut Status| s.paused = true,
        ] {
            let mut t = s.clone();
            change(&mut t);
            assert_eq!(
                synced(&t),
                (false, false),
                "{t:?}: {}",
                TrayView::new(&t, 10_000, false, Locale::En).status_line
            );
            assert!(TrayView::new(&t, 10_000, false, Locale::En).status_line.ends_with("last sync just now"));
        }
    }

    /// In Norwegian the whole tray is Norwegian: menu, tooltip title, status line.
    #[test]
    fn the_norwegian_tray_is_norwegian() {
        let mut s = status(SyncState::Idle);
        s.pending = 3;
        s.conflicts = 1;
        s.last_sync_at = Some(0);
        let v = TrayView::new(&s, 120_000, false, Locale::Nb);
        assert_eq!(v.status_line, "3 venter · 1 konflikt · sist synkronisert for 2 min siden");
        let m = &v.menu;
        assert_eq!(
            [&m.sync_now, &m.pause_or_resume, &m.open, &m.start_at_login, &m.quit],
            ["Synkroniser nå", "Sett på pause", "Åpne Ferry", "Start ved innlogging", "Avslutt Ferry"]
        );
        s.paused = true;
        assert_eq!(TrayView::new(&s, 120_000, false, Locale::Nb).menu.pause_or_resume, "Fortsett");
        // A change of language alone is a different view: the tray redraws.
        assert_ne!(TrayView::new(&s, 120_000, false, Locale::En), TrayView::new(&s, 120_000, false, Locale::Nb));
        assert_eq!(TrayView::new(&s, 120_000, false, Locale::En).menu.pause_or_resume, "Resume");
    }
}
