//! Where tokens live: the OS keyring (default), or a 0600 file the user asked
//! for explicitly (headless machines without a Secret Service). Never the
//! database, the config, or a log.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The tokens of one signed-in account.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Tokens {
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: String,
    pub refresh_expires_at: i64,
    /// Server time when issued (to size the refresh margin).
    pub issued_at: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// Which token store to use; chosen explicitly, never by silent fallback.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TokenStoreChoice {
    /// The OS keyring: Secret Service, macOS Keychain, Windows Credential Manager.
    #[default]
    Keyring,
    /// A file readable only by the user (mode 0600), for headless machines.
    File(PathBuf),
    /// In memory only: tests and the demo.
    Memory,
}

pub trait TokenStore: Send + Sync {
    fn load(&self) -> Result<Option<Tokens>, String>;
    fn save(&self, tokens: &Tokens) -> Result<(), String>;
    fn clear(&self) -> Result<(), String>;
}

pub fn open(choice: &TokenStoreChoice, account: &str) -> Box<dyn TokenStore> {
    match choice {
        TokenStoreChoice::Keyring => Box::new(KeyringStore::new(account)),
        TokenStoreChoice::File(p) => Box::new(FileStore { path: p.clone(), account: account.to_string() }),
        TokenStoreChoice::Memory => Box::new(MemoryStore { account: account.to_string() }),
    }
}

const KEYRING_SERVICE: &str = "ferry";

/// One keyring entry, opened once and kept: every load and save of the
/// session goes through the same handle.
pub struct KeyringStore {
    entry: Result<keyring::Entry, String>,
}

impl KeyringStore {
    pub fn new(account: &str) -> KeyringStore {
        KeyringStore { entry: keyring::Entry::new(KEYRING_SERVICE, account).map_err(keyring_hint) }
    }

    fn entry(&self) -> Result<&keyring::Entry, String> {
        self.entry.as_ref().map_err(Clone::clone)
    }
}

fn keyring_hint(e: keyring::Error) -> String {
    match e {
        keyring::Error::PlatformFailure(_) | keyring::Error::NoStorageAccess(_) => format!(
            "no usable OS keyring ({e}). Start or unlock one (e.g. gnome-keyring), or keep tokens in a \
             private file instead with `--token-file PATH` or FERRY_TOKEN_FILE=PATH"
        ),
        other => format!("keyring: {other}"),
    }
}

impl TokenStore for KeyringStore {
    fn load(&self) -> Result<Option<Tokens>, String> {
        match self.entry()?.get_password() {
            Ok(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| format!("keyring entry is unreadable ({e}); sign in again")),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_hint(e)),
        }
    }
    fn save(&self, tokens: &Tokens) -> Result<(), String> {
        let s = serde_json::to_string(tokens).map_err(|e| e.to_string())?;
        self.entry()?.set_password(&s).map_err(keyring_hint)
    }
    fn clear(&self) -> Result<(), String> {
        match self.entry()?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_hint(e)),
        }
    }
}

/// Tokens in a JSON file with mode 0600, keyed by account so one file can
/// serve several data dirs.
pub struct FileStore {
    path: PathBuf,
    account: String,
}

impl FileStore {
    fn read_all(&self) -> Result<serde_json::Map<String, serde_json::Value>, String> {
        self.make_private();
        match std::fs::read(&self.path) {
            Ok(b) if b.is_empty() => Ok(Default::default()),
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                format!("token file {} is unreadable ({e}); delete it and sign in again", self.path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
            Err(e) => Err(format!("token file {}: {e}", self.path.display())),
        }
    }

    /// A token file others can read (copied, or made by hand) is made
    /// private at once, and the user told: its tokens may have been seen.
    fn make_private(&self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let Ok(meta) = std::fs::metadata(&self.path) else { return };
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                let fixed = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600)).is_ok();
                tracing::warn!(
                    path = %self.path.display(),
                    mode = format!("{mode:o}"),
                    "the token file was readable by other users{}; its tokens may have been seen: run `ferry logout` \
                     and `ferry login` to replace them",
                    if fixed { " (now 0600)" } else { ", and could not be made private" }
                );
            }
        }
    }

    /// Runs a read-modify-write of the file under a lock: processes of
    /// different accounts sharing the file must not lose each other's
    /// update.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let _lock = crate::filelock::FileLock::acquire_blocking(&lock_path)
            .map_err(|e| format!("cannot lock the token file ({}): {e}", lock_path.display()))?;
        f()
    }

    fn write_all(&self, all: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
        let tmp = self.path.with_extension("tmp");
        let err = |e: std::io::Error| format!("token file {}: {e}", self.path.display());
        {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp).map_err(err)?;
            f.write_all(serde_json::Value::Object(all.clone()).to_string().as_bytes()).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(err)
    }
}

impl TokenStore for FileStore {
    fn load(&self) -> Result<Option<Tokens>, String> {
        let all = self.read_all()?;
        Ok(all.get(&self.account).and_then(|v| serde_json::from_value(v.clone()).ok()))
    }
    fn save(&self, tokens: &Tokens) -> Result<(), String> {
        let value = serde_json::to_value(tokens).map_err(|e| e.to_string())?;
        self.locked(|| {
            let mut all = self.read_all()?;
            all.insert(self.account.clone(), value);
            self.write_all(&all)
        })
    }
    fn clear(&self) -> Result<(), String> {
        self.locked(|| {
            let mut all = self.read_all()?;
            if all.remove(&self.account).is_some() {
                self.write_all(&all)?;
            }
            Ok(())
        })
    }
}

/// Tokens in this process's memory, shared by every session of the same
/// account (login and the sync loop are different sessions).
pub struct MemoryStore {
    account: String,
}

type MemoryMap = std::sync::Mutex<std::collections::HashMap<String, Tokens>>;

fn memory() -> &'static MemoryMap {
    static MEMORY: std::sync::OnceLock<MemoryMap> = std::sync::OnceLock::new();
    MEMORY.get_or_init(Default::default)
}

impl TokenStore for MemoryStore {
    fn load(&self) -> Result<Option<Tokens>, String> {
        Ok(memory().lock().unwrap_or_else(|e| e.into_inner()).get(&self.account).cloned())
    }
    fn save(&self, tokens: &Tokens) -> Result<(), String> {
        memory().lock().unwrap_or_else(|e| e.into_inner()).insert(self.account.clone(), tokens.clone());
        Ok(())
    }
    fn clear(&self) -> Result<(), String> {
        memory().lock().unwrap_or_else(|e| e.into_inner()).remove(&self.account);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Tokens {
        Tokens {
            access_token: "A".into(),
            access_expires_at: 1,
            refresh_token: "R".into(),
            refresh_expires_at: 2,
            issued_at: 0,
        }
    }

    #[test]
    fn keyring_store_with_mock_backend() {
        keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
        // The mock keeps a secret in its Entry value only; the store holds
        // one Entry, so this is a real round trip (the real Secret Service
        // is exercised end to end).
        let s = KeyringStore::new("u@http://x");
        assert_eq!(s.load().unwrap(), None);
        s.save(&t()).unwrap();
        assert_eq!(s.load().unwrap(), Some(t()));
        let rotated = Tokens { refresh_token: "R2".into(), ..t() };
        s.save(&rotated).unwrap();
        assert_eq!(s.load().unwrap(), Some(rotated));
        s.clear().unwrap();
        assert_eq!(s.load().unwrap(), None);
        s.clear().unwrap(); // clearing twice is fine
    }

    #[test]
    fn file_store_keeps_every_account_under_concurrent_saves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let s = FileStore { path, account: format!("user{i}@x") };
                    for n in 0..20 {
                        s.save(&Tokens { refresh_token: format!("{i}-{n}"), ..t() }).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        for i in 0..8 {
            let s = FileStore { path: path.clone(), account: format!("user{i}@x") };
            assert_eq!(s.load().unwrap().map(|t| t.refresh_token), Some(format!("{i}-19")), "user{i} lost");
        }
    }

    #[test]
    fn file_store_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let a = FileStore { path: path.clone(), account: "a".into() };
        let b = FileStore { path: path.clone(), account: "b".into() };
        a.save(&t()).unwrap();
        b.save(&Tokens { refresh_token: "other".into(), ..t() }).unwrap();
        assert_eq!(a.load().unwrap(), Some(t()));
        a.clear().unwrap();
        assert_eq!(a.load().unwrap(), None);
        assert!(b.load().unwrap().is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            // Made readable by others (copied, edited by hand): private
            // again at the next read.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(b.load().unwrap().is_some());
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn memory_store_is_shared_by_sessions_of_one_account() {
        let a = open(&TokenStoreChoice::Memory, "shared@test");
        let b = open(&TokenStoreChoice::Memory, "shared@test");
        let other = open(&TokenStoreChoice::Memory, "other@test");
        a.save(&t()).unwrap();
        assert_eq!(b.load().unwrap(), Some(t()));
        assert_eq!(other.load().unwrap(), None);
        b.clear().unwrap();
        assert_eq!(a.load().unwrap(), None);
    }

    #[test]
    fn debug_never_shows_tokens() {
        assert!(!format!("{:?}", t()).contains("\"A\""));
        assert!(!format!("{:?}", t()).contains("access_token"));
    }
}
