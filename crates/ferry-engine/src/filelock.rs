//! Advisory locks on files, for the things one process at a time must do
//! (renew an account's sign-in, run a sync cycle, run the loop). The lock is
//! released when the value is dropped, or by the OS if the process dies.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

pub(crate) struct FileLock(File);

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).truncate(false).write(true).open(path)
}

impl FileLock {
    /// Waits for the lock (on a blocking thread). An error means the lock
    /// could not be taken at all (no such directory, no permission, a file
    /// system without locks); the caller decides whether it can do without.
    pub async fn acquire(path: PathBuf) -> std::io::Result<FileLock> {
        tokio::task::spawn_blocking(move || FileLock::acquire_blocking(&path)).await.map_err(std::io::Error::other)?
    }

    /// [`FileLock::acquire`] on this thread, for callers that may block.
    pub fn acquire_blocking(path: &Path) -> std::io::Result<FileLock> {
        let f = open(path)?;
        f.lock()?;
        Ok(FileLock(f))
    }

    /// Takes the lock now, or says (`None`) that another process holds it.
    pub fn try_acquire(path: &Path) -> std::io::Result<Option<FileLock>> {
        let f = open(path)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(FileLock(f))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway.
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_errors_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/a.lock");
        let held = FileLock::acquire(path.clone()).await.unwrap();
        assert!(FileLock::try_acquire(&path).unwrap().is_none(), "held elsewhere");
        drop(held);
        assert!(FileLock::try_acquire(&path).unwrap().is_some());

        // A path that cannot be a lock file is an error, never a silent
        // "locked".
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        assert!(FileLock::acquire(blocker.join("under-a-file.lock")).await.is_err());
        assert!(FileLock::try_acquire(&blocker.join("under-a-file.lock")).is_err());
    }
}
