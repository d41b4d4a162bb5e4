//! The sync window. It exists only while the user looks at it: closing it
//! destroys the webview (and with it WebKit's web content process), so Ferry
//! idles in the tray with a fraction of the memory. Opening it builds a fresh
//! one; the UI loads its state through commands, so nothing is lost.

use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

pub const LABEL: &str = "main";

/// Shows the window, building it if it was closed; focuses it either way.
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

/// After the webview is gone, hand the freed heap back to the OS: glibc keeps
/// freed memory in its arenas, which would keep the tray-only app as large
/// as it was with the window open.
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    std::thread::spawn(|| {
        // Let GTK and WebKit finish tearing the window down first.
        std::thread::sleep(std::time::Duration::from_secs(2));
        // SAFETY: malloc_trim only returns free pages; callable any time.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}
