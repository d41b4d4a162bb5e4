//! One Ferry per data dir: a second launch hands over to the first (which
//! opens its window) and exits.
//!
//! The first instance listens on a Unix socket in its data dir; a later one
//! connects, says what it wants and leaves. A socket file left by a crashed
//! instance refuses connections and is replaced.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub const SOCKET: &str = "ferry-app.sock";

/// How long a later launch waits for the first one to take its request.
const HANDOVER: std::time::Duration = std::time::Duration::from_secs(3);

/// What a second launch asks of the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A launch from the menu or a terminal: show the window.
    Open,
    /// Start at login while Ferry already runs: nothing to do.
    Nothing,
}

pub enum Claim {
    /// We are the only one; hand requests over through this listener.
    First(Listener),
    /// Another instance runs and has been told.
    Second,
}

pub struct Listener {
    #[cfg(unix)]
    inner: tokio::net::UnixListener,
    path: PathBuf,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.unlink();
    }
}

#[cfg(unix)]
pub async fn claim(dir: &Path, ask: Ask) -> io::Result<Claim> {
    use tokio::net::{UnixListener, UnixStream};
    std::fs::create_dir_all(dir)?;
    let path = dir.join(SOCKET);
    for _ in 0..3 {
        match UnixStream::connect(&path).await {
            Ok(mut s) => {
                let word = match ask {
                    Ask::Open => "open\n",
                    Ask::Nothing => "hello\n",
                };
                // A first instance that hangs must not hang this launch too.
                let asked = tokio::time::timeout(HANDOVER, async {
                    s.write_all(word.as_bytes()).await?;
                    let mut answer = String::new();
                    BufReader::new(s).read_line(&mut answer).await
                })
                .await;
                return match asked {
                    Ok(Ok(_)) => Ok(Claim::Second),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "another Ferry holds {} but does not answer; end it, or remove the file",
                            path.display()
                        ),
                    )),
                };
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
                if e.kind() == io::ErrorKind::ConnectionRefused {
                    // Left by an instance that died: nobody listens.
                    let _ = std::fs::remove_file(&path);
                }
                match UnixListener::bind(&path) {
                    Ok(inner) => return Ok(Claim::First(Listener { inner, path })),
                    // Another launch bound it a moment ago: ask it instead.
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("could not claim {}", path.display())))
}

#[cfg(not(unix))]
pub async fn claim(dir: &Path, _ask: Ask) -> io::Result<Claim> {
    tracing::warn!("single-instance check not available on this platform");
    Ok(Claim::First(Listener { path: dir.join(SOCKET) }))
}

impl Listener {
    /// The next request from a later launch.
    #[cfg(unix)]
    pub async fn next(&self) -> io::Result<Ask> {
        loop {
            let (stream, _) = match self.inner.accept().await {
                Ok(s) => s,
                // Passing trouble (too many open files, a client gone at
                // once): later launches must still reach us.
                Err(e) => {
                    tracing::warn!("single-instance socket: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let mut reader = BufReader::new(stream);
            let mut word = String::new();
            // A stray or slow client must not block the next one for long.
            let read = tokio::time::timeout(HANDOVER, reader.read_line(&mut word)).await;
            if !matches!(read, Ok(Ok(_))) {
                continue;
            }
            let _ = reader.get_mut().write_all(b"ok\n").await;
            return Ok(match word.trim() {
                "open" => Ask::Open,
                _ => Ask::Nothing,
            });
        }
    }

    #[cfg(not(unix))]
    pub async fn next(&self) -> io::Result<Ask> {
        std::future::pending().await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file: later launches start afresh.
    pub fn unlink(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_launch_reaches_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path(), Ask::Open).await.unwrap() else { panic!("first") };
        let asks = tokio::spawn(async move {
            let a = first.next().await.unwrap();
            let b = first.next().await.unwrap();
            (a, b, first)
        });
        assert!(matches!(claim(dir.path(), Ask::Open).await.unwrap(), Claim::Second));
        assert!(matches!(claim(dir.path(), Ask::Nothing).await.unwrap(), Claim::Second));
        let (a, b, first) = asks.await.unwrap();
        assert_eq!((a, b), (Ask::Open, Ask::Nothing));
        let path = first.path().to_path_buf();
        drop(first);
        assert!(!path.exists(), "the socket goes with the instance");
    }

    #[tokio::test]
    async fn a_socket_left_by_a_crash_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // A bound-then-dropped std listener leaves the file behind, like a crash.
        let stale = std::os::unix::net::UnixListener::bind(dir.path().join(SOCKET)).unwrap();
        drop(stale);
        assert!(dir.path().join(SOCKET).exists());
        assert!(matches!(claim(dir.path(), Ask::Open).await.unwrap(), Claim::First(_)));
    }
}
