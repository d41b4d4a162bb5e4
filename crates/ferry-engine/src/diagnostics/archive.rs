//! Writing one `.tar.gz` safely: to a private temp file beside the target,
//! fsynced, then put in place without ever replacing an existing file.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::{EngineError, Result};

/// An archive being written; [`Archive::finish`] puts it in place, and
/// dropping it unfinished removes the temp file.
pub struct Archive {
    tar: Option<tar::Builder<GzEncoder<File>>>,
    temp: PathBuf,
    to: PathBuf,
    mtime: u64,
}

impl Archive {
    /// Starts an archive bound for `to`, refused at once if `to` exists.
    pub fn create(to: &Path, mtime_ms: i64) -> Result<Archive> {
        refuse_existing(to)?;
        let name = to.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            EngineError::Invalid(format!("{} is not a file name: name the archive to write", to.display()))
        })?;
        let temp = to.with_file_name(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
        let file = create_private(&temp)
            .map_err(|e| EngineError::io(format!("cannot write a file in {}", parent(to).display()), e))?;
        Ok(Archive {
            tar: Some(tar::Builder::new(GzEncoder::new(file, Compression::default()))),
            temp,
            to: to.to_owned(),
            mtime: u64::try_from(mtime_ms / 1000).unwrap_or_default(),
        })
    }

    /// Adds one file, `name` inside the archive, readable by its owner.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        let tar = self.tar.as_mut().expect("only finish takes the builder, consuming self");
        tar.append_data(&mut header, name, data).map_err(|e| self.write_error(e))
    }

    /// Completes the archive, fsyncs it, and moves it to its name. Returns
    /// its size.
    pub fn finish(mut self) -> Result<u64> {
        let tar = self.tar.take().expect("finish runs once");
        let file = tar.into_inner().and_then(GzEncoder::finish).map_err(|e| self.write_error(e))?;
        file.sync_all().map_err(|e| self.write_error(e))?;
        let bytes = file.metadata().map_err(|e| self.write_error(e))?.len();
        drop(file);
        place(&self.temp, &self.to)?;
        sync_dir(parent(&self.to));
        Ok(bytes)
    }

    fn write_error(&self, e: io::Error) -> EngineError {
        EngineError::io(format!("cannot write {}", self.to.display()), e)
    }
}

impl Drop for Archive {
    fn drop(&mut self) {
        // Unfinished, or finished and linked into place: the temp name goes.
        let _ = std::fs::remove_file(&self.temp);
    }
}

fn refuse_existing(to: &Path) -> Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(EngineError::Invalid(format!(
            "{} already exists; it was left as it is: choose another file name, or move that file away first",
            to.display()
        )));
    }
    Ok(())
}

/// Moves `temp` to `to` unless `to` exists: a hard link fails on an
/// existing name (no race with another writer); where the file system has
/// no hard links, a rename after a last look.
fn place(temp: &Path, to: &Path) -> Result<()> {
    match std::fs::hard_link(temp, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => refuse_existing(to),
        Err(_) => {
            refuse_existing(to)?;
            std::fs::rename(temp, to).map_err(|e| EngineError::io(format!("cannot write {}", to.display()), e))
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

/// The new name survives a crash once the directory is synced too.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!(error = %e, dir = %dir.display(), "cannot sync the directory of the archive");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_in_place_and_never_over_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("d.tar.gz");
        let mut a = Archive::create(&to, 0).unwrap();
        a.add("a.json", b"{}").unwrap();
        let bytes = a.finish().unwrap();
        assert_eq!(std::fs::metadata(&to).unwrap().len(), bytes);
        // Only the archive is left: no temp file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut names = Vec::new();
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&to).unwrap()));
        for e in t.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names, ["a.json"]);

        let err = Archive::create(&to, 0).err().unwrap().to_string();
        assert!(err.contains("already exists") && err.contains("left as it is"), "{err}");
        assert_eq!(std::fs::metadata(&to).unwrap().len(), bytes);
    }

    /// Someone else creates the target while the archive is written.
    #[test]
    fn a_target_that_appears_meanwhile_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("d.tar.gz");
        let mut a = Archive::create(&to, 0).unwrap();
        a.add("a.json", b"{}").unwrap();
        std::fs::write(&to, b"theirs").unwrap();
        assert!(a.finish().is_err());
        assert_eq!(std::fs::read(&to).unwrap(), b"theirs");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "the temp file is gone");
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Archive::create(&dir.path().join("no/such/d.tar.gz"), 0).err().unwrap().to_string();
        assert!(err.contains("no/such"), "{err}");
    }
}
