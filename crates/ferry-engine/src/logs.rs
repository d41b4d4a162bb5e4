//! The log file of the processes that run all day (`ferry daemon`,
//! `ferry-app`): `DATA_DIR/logs/ferry.log.YYYY-MM-DD`, a new file each day
//! (UTC), the last [`KEEP_FILES`] kept, readable by the user alone. They add
//! it as a second tracing layer beside stderr; `Engine::save_diagnostics`
//! takes the newest part of it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tracing_appender::non_blocking::{NonBlocking, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};

/// Log files are named `ferry.log.YYYY-MM-DD`.
pub const FILE_PREFIX: &str = "ferry.log";

/// Daily files kept (today's included).
pub const KEEP_FILES: usize = 3;

/// Where the log files of the data dir `data_dir` are.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// A writer to today's log file (the dir made 0700 and the files 0600),
/// through a background thread so logging never waits on the disk. Keep
/// the guard for as long as the process logs: dropping it flushes.
pub fn file_writer(data_dir: &Path) -> io::Result<(NonBlocking, WorkerGuard)> {
    let dir = log_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    private(&dir, 0o700)?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(FILE_PREFIX)
        .max_log_files(KEEP_FILES)
        .build(&dir)
        .map_err(io::Error::other)?;
    let writer = PrivateFiles { inner: appender, dir, checked_day: None };
    Ok(tracing_appender::non_blocking(writer))
}

/// The log files in `dir`, oldest first (their names sort by date).
pub fn files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(FILE_PREFIX)))
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    found.sort();
    Ok(found)
}

/// The rolling appender creates each day's file with the process's umask;
/// once a day, after the first write to it, this makes every log file
/// 0600 (the 0700 dir already keeps others out in between).
struct PrivateFiles {
    inner: RollingFileAppender,
    dir: PathBuf,
    checked_day: Option<u64>,
}

impl Write for PrivateFiles {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let day = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or_default();
        if self.checked_day != Some(day) {
            self.checked_day = Some(day);
            for file in files(&self.dir).unwrap_or_default() {
                // Best effort: a log file left 0644 inside a 0700 dir is
                // still the user's alone.
                let _ = private(&file, 0o600);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(unix)]
fn private(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn private(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_private_dated_file_in_a_private_dir() {
        let data = tempfile::tempdir().unwrap();
        let (mut writer, guard) = file_writer(data.path()).unwrap();
        // As a tracing layer writes each event.
        writeln!(writer, "hello from the daemon").unwrap();
        drop(writer);
        drop(guard); // flushes
        let found = files(&log_dir(data.path())).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        let name = found[0].file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with("ferry.log.20") && name.len() == "ferry.log.YYYY-MM-DD".len(), "{name}");
        assert!(std::fs::read_to_string(&found[0]).unwrap().contains("hello from the daemon"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&log_dir(data.path())), 0o700);
            assert_eq!(mode(&found[0]), 0o600);
        }
    }
}
