//! Shared harness for the end-to-end tests in `tests/tests/`.
//!
//! Tests drive the real binaries (`ferry-server`, `ferry`) built by
//! `cargo build --bins` into the same target directory as the test binary;
//! nothing is mocked. Each test gets its own free port and temporary
//! directories, so tests run in parallel.

pub mod chaos;
pub mod cluster;
pub mod ferry;
pub mod pg;
pub mod proxy;
pub mod server;
pub mod tls;

use std::path::PathBuf;

/// Path of a workspace binary next to the running test executable.
///
/// Panics with the fix when it has not been built: tests never build
/// binaries themselves so the suite builds them once and shares them.
pub fn bin_path(name: &str) -> PathBuf {
    // An explicit directory (e.g. release binaries for the long chaos run).
    if let Some(dir) = std::env::var_os("FERRY_BIN_DIR") {
        let path = PathBuf::from(dir).join(name);
        assert!(path.exists(), "{} not found (FERRY_BIN_DIR)", path.display());
        return path;
    }
    let exe = std::env::current_exe().expect("current_exe");
    // A binary of this crate (ferry-chaos) lives next to the others.
    if let Some(sibling) = exe.parent().map(|d| d.join(name)) {
        if sibling.exists() && exe.parent().and_then(|d| d.file_name()) != Some("deps".as_ref()) {
            return sibling;
        }
    }
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let dir = exe.parent().and_then(|p| p.parent()).expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build --bins` (or scripts/test.sh) before the end-to-end tests",
        path.display()
    );
    path
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}
