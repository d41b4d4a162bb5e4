//! Start at login: an XDG autostart entry on Linux (a launch agent on macOS,
//! the Run key on Windows), starting Ferry in the tray without its window.

use std::path::Path;

use auto_launch::{AutoLaunch, AutoLaunchBuilder};

pub struct Autostart {
    entry: Option<AutoLaunch>,
}

impl Autostart {
    /// `demo`: the demo gets its own entry ("Ferry (demo)"), so trying the
    /// demo never changes a real setup's.
    pub fn new(demo: bool, data_dir: Option<&Path>) -> Autostart {
        let exe = std::env::var_os("APPIMAGE").map(std::path::PathBuf::from).or_else(|| std::env::current_exe().ok());
        let Some(exe) = exe else {
            tracing::warn!("cannot tell where ferry-app is; start at login is unavailable");
            return Autostart { entry: None };
        };
        let mut args = vec!["--minimized".to_string()];
        if demo {
            args.push("--demo".into());
        }
        if let Some(dir) = data_dir {
            args.push("--data-dir".into());
            args.push(quote(&dir.display().to_string()));
        }
        let entry = AutoLaunchBuilder::new()
            .set_app_name(if demo { "Ferry (demo)" } else { "Ferry" })
            .set_app_path(&quote(&exe.display().to_string()))
            .set_args(&args)
            .build()
            .map_err(|e| tracing::warn!("start at login is unavailable: {e}"))
            .ok();
        Autostart { entry }
    }

    pub fn is_enabled(&self) -> bool {
        self.entry.as_ref().and_then(|e| e.is_enabled().ok()).unwrap_or(false)
    }

    /// Turns it on or off; returns whether it is on afterwards.
    pub fn set(&self, on: bool) -> Result<bool, String> {
        let Some(entry) = &self.entry else {
            return Err("start at login is not available on this system".into());
        };
        let r = if on { entry.enable() } else { entry.disable() };
        r.map_err(|e| format!("could not change start at login: {e}"))?;
        Ok(self.is_enabled())
    }
}

/// Desktop entries split Exec on spaces unless the argument is quoted.
fn quote(s: &str) -> String {
    if s.contains(char::is_whitespace) {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(super::quote("/usr/bin/ferry-app"), "/usr/bin/ferry-app");
        assert_eq!(super::quote("/home/a b/ferry"), "\"/home/a b/ferry\"");
    }
}
