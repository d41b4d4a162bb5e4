//! Advisory locks on files in the data dir, for the things one process at a
//! time must do (refresh the sign-in, run a sync cycle, run the loop). The
//! lock is released when the value is dropped, or by the OS if the process
//! dies.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

pub(crate) struct FileLock(Option<File>);

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).truncate(false).write(true).open(path)
}

impl FileLock {
    /// Waits for the lock (on a blocking thread). If the file cannot be
    /// opened or locked at all, carries on unlocked: the lock avoids wasted
    /// work, correctness never depends on it.
    pub async fn acquire(path: PathBuf) -> FileLock {
        let file = tokio::task::spawn_blocking(move || {
            let f = open(&path).ok()?;
            f.lock().ok()?;
            Some(f)
        })
        .await
        .ok()
        .flatten();
        FileLock(file)
    }

    /// Takes the lock now, or says that another process holds it.
    pub fn try_acquire(path: &Path) -> std::io::Result<Option<FileLock>> {
        let f = open(path)?;
        Ok(f.try_lock().is_ok().then_some(FileLock(Some(f))))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            let _ = f.unlock();
        }
    }
}
