//! The lock that makes one process at a time renew an account's sign-in.
//!
//! Tokens belong to an account (`user@server`), not to a data dir: the app
//! and the CLI, or two data dirs, may share one keyring entry or token file.
//! So the lock is keyed on the account and lives where every process of the
//! user finds it: next to the token file when there is one, else in the
//! user's runtime (or cache) directory.

use std::path::{Path, PathBuf};

use super::TokenStoreChoice;
use crate::filelock::FileLock;

pub(crate) struct AccountLock {
    /// Where the lock file is, or why there is no place for it.
    path: Result<PathBuf, String>,
}

impl AccountLock {
    pub fn new(choice: &TokenStoreChoice, account: &str) -> AccountLock {
        let name = format!("ferry-auth-{:016x}.lock", fnv1a(account.as_bytes()));
        AccountLock { path: lock_dir(choice).map(|dir| dir.join(name)) }
    }

    #[cfg(test)]
    pub fn path(&self) -> Result<&Path, &String> {
        self.path.as_deref()
    }

    /// Waits for the lock. An error says why it cannot be taken and what to
    /// do; the caller must not renew the sign-in without it.
    pub async fn acquire(&self) -> Result<FileLock, String> {
        let path = self.path.clone()?;
        FileLock::acquire(path.clone()).await.map_err(|e| {
            format!(
                "cannot take the sign-in lock {} ({e}); not renewing the sign-in without it, because another \
                 Ferry process could renew it at the same time and sign both out. Make that directory writable",
                path.display()
            )
        })
    }
}

fn lock_dir(choice: &TokenStoreChoice) -> Result<PathBuf, String> {
    match choice {
        // Whoever shares the token file shares its directory.
        TokenStoreChoice::File(file) => Ok(match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }),
        TokenStoreChoice::Keyring | TokenStoreChoice::Memory => {
            let dirs = directories::BaseDirs::new().ok_or_else(|| {
                "cannot find this user's home directory for the sign-in lock: set HOME (or XDG_RUNTIME_DIR)".to_string()
            })?;
            let base: &Path = dirs.runtime_dir().unwrap_or_else(|| dirs.cache_dir());
            Ok(base.join("ferry"))
        }
    }
}

/// FNV-1a, 64 bit: a stable name for the account's lock file (every build
/// of every Ferry program must agree on it; std's hasher makes no promise).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_on_the_account_not_the_data_dir() {
        let file = TokenStoreChoice::File(PathBuf::from("/somewhere/tokens.json"));
        let a = AccountLock::new(&file, "ann@https://x");
        let b = AccountLock::new(&file, "ann@https://x");
        let other = AccountLock::new(&file, "bob@https://x");
        assert_eq!(a.path(), b.path());
        assert_ne!(a.path(), other.path());
        assert_eq!(a.path().unwrap().parent(), Some(Path::new("/somewhere")));
        // Stable across builds: a fixed value.
        assert_eq!(fnv1a(b"ann@https://x"), fnv1a(b"ann@https://x"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[tokio::test]
    async fn an_unusable_lock_place_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        std::fs::write(&not_a_dir, b"").unwrap();
        let lock = AccountLock::new(&TokenStoreChoice::File(not_a_dir.join("tokens.json")), "ann@x");
        let err = lock.acquire().await.err().expect("no lock, no refresh");
        assert!(err.contains("not renewing the sign-in"), "{err}");
    }
}
