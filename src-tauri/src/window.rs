//! The one window. This process exists for it: closing it ends the process
//! (and WebKit's with it), while `ferry-app` keeps syncing in the tray.

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

pub const LABEL: &str = "main";

/// Shows the window, building it if needed; focuses it either way.
pub fn open<R: Runtime>(app: &AppHandle<R>) {
    if let Some(w) = app.get_webview_window(LABEL) {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
        return;
    }
    let built = WebviewWindowBuilder::new(app, LABEL, WebviewUrl::App("index.html".into()))
        .title("Ferry")
        .inner_size(1000.0, 680.0)
        .min_inner_size(680.0, 440.0)
        .focused(true)
        .build();
    match built {
        Ok(w) => {
            let _ = w.set_focus();
        }
        Err(e) => tracing::error!("could not open the window: {e}"),
    }
}
