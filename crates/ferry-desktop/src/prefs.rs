//! The app's own preferences (not the engine's, which it stores itself): kept as a small JSON file in
//! the data dir. Never holds credentials — those are the engine's, in the
//! keyring.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct AppPrefs {
    pub notifications: bool,
    /// `"system"` (follow LC_ALL/LC_MESSAGES/LANG), `"nb"` or `"en"`.
    pub language: String,
}

impl Default for AppPrefs {
    fn default() -> Self {
        AppPrefs { notifications: true, language: "system".into() }
    }
}

pub struct PrefsFile {
    path: PathBuf,
}

impl PrefsFile {
    pub fn new(data_dir: &Path) -> Self {
        PrefsFile { path: data_dir.join("app-settings.json") }
    }

    pub fn load(&self) -> AppPrefs {
        std::fs::read(&self.path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Write-then-rename, so a crash never leaves a half-written file.
    pub fn save(&self, prefs: &AppPrefs) -> std::io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(prefs)?)?;
        std::fs::rename(tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = PrefsFile::new(dir.path());
        assert_eq!(f.load(), AppPrefs::default());
        let p = AppPrefs { notifications: false, language: "nb".into() };
        f.save(&p).unwrap();
        assert_eq!(f.load(), p);
        // Unknown or missing fields fall back to defaults.
        std::fs::write(dir.path().join("app-settings.json"), r#"{"old":1}"#).unwrap();
        assert_eq!(f.load(), AppPrefs::default());
        // A file from before the language preference keeps its settings.
        std::fs::write(dir.path().join("app-settings.json"), r#"{"notifications":false}"#).unwrap();
        assert_eq!(f.load(), AppPrefs { notifications: false, language: "system".into() });
    }
}
