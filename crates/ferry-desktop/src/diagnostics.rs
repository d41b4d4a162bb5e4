//! Where "Save diagnostics" puts its archive: the user's download folder
//! (else home), under a name that says what and when, never over a file
//! already there.

use std::path::{Path, PathBuf};

/// `ferry-diagnostics-YYYYMMDD-HHMMSS.tar.gz`, local time.
pub fn archive_name(now: chrono::DateTime<chrono::Local>) -> String {
    format!("ferry-diagnostics-{}.tar.gz", now.format("%Y%m%d-%H%M%S"))
}

/// The XDG download dir if it is set and exists, else home, else the
/// current dir.
pub fn target_dir() -> PathBuf {
    let user = directories::UserDirs::new();
    choose_dir(
        user.as_ref().and_then(|u| u.download_dir().map(Path::to_path_buf)),
        user.as_ref().map(|u| u.home_dir().to_path_buf()),
    )
}

fn choose_dir(download: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    download.filter(|d| d.is_dir()).or(home).unwrap_or_else(|| PathBuf::from("."))
}

/// The path to write to now. Two saves within a second get `-2`, `-3`…
/// (the engine refuses to overwrite a file).
pub fn target_path() -> PathBuf {
    free_path(&target_dir(), &archive_name(chrono::Local::now()))
}

fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let stem = name.trim_end_matches(".tar.gz");
    (2..100).map(|n| dir.join(format!("{stem}-{n}.tar.gz"))).find(|p| !p.exists()).unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_name_says_when() {
        let t = chrono::Local.with_ymd_and_hms(2026, 3, 4, 9, 5, 7).unwrap();
        assert_eq!(archive_name(t), "ferry-diagnostics-20260304-090507.tar.gz");
    }

    #[test]
    fn downloads_else_home() {
        let dir = tempfile::tempdir().unwrap();
        let (dl, home) = (dir.path().join("Downloads"), dir.path().join("home"));
        assert_eq!(choose_dir(Some(dl.clone()), Some(home.clone())), home, "a download dir that does not exist");
        std::fs::create_dir(&dl).unwrap();
        assert_eq!(choose_dir(Some(dl.clone()), Some(home.clone())), dl);
        assert_eq!(choose_dir(None, Some(home.clone())), home);
        assert_eq!(choose_dir(None, None), PathBuf::from("."));
    }

    #[test]
    fn never_the_name_of_a_file_already_there() {
        let dir = tempfile::tempdir().unwrap();
        let name = "ferry-diagnostics-20260304-090507.tar.gz";
        assert_eq!(free_path(dir.path(), name), dir.path().join(name));
        std::fs::write(dir.path().join(name), b"x").unwrap();
        assert_eq!(free_path(dir.path(), name), dir.path().join("ferry-diagnostics-20260304-090507-2.tar.gz"));
    }
}
