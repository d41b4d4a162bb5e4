//! `ferry` processes the workload may kill with SIGKILL at any moment, from
//! any thread (the fault proxy kills at protocol moments), with the wall-clock
//! window they ran in.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall clock in ms (the machine's clock is also the server's).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A running process.
pub struct Proc {
    child: Arc<Mutex<Child>>,
    started_ms: i64,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

/// Kills a [`Proc`] from anywhere; cheap to clone.
#[derive(Clone)]
pub struct Killer(Arc<Mutex<Child>>);

impl Killer {
    /// SIGKILL if it still runs; whether it did.
    pub fn kill(&self) -> bool {
        let mut c = self.0.lock().unwrap();
        matches!(c.try_wait(), Ok(None)) && c.kill().is_ok()
    }
}

/// How a process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    /// It died of SIGKILL.
    pub killed: bool,
    /// It ran past the limit and was killed for that.
    pub hung: bool,
    pub stdout: String,
    pub stderr: String,
    pub started_ms: i64,
    pub ended_ms: i64,
}

impl Exit {
    pub fn code_label(&self) -> String {
        match (self.code, self.killed) {
            (_, true) => "killed".into(),
            (Some(c), _) => c.to_string(),
            (None, _) => "signal".into(),
        }
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<String>> {
    let mut pipe = pipe?;
    Some(std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }))
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr captured (unless the caller set
    /// them), stdin closed.
    pub fn spawn(mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null());
        let started_ms = now_ms();
        let mut child = cmd.spawn().expect("spawn a ferry process");
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        Proc { child: Arc::new(Mutex::new(child)), started_ms, stdout, stderr }
    }

    pub fn piped(mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        Proc::spawn(cmd)
    }

    pub fn killer(&self) -> Killer {
        Killer(self.child.clone())
    }

    /// SIGTERM (a clean stop), if it still runs, once the process catches
    /// it: a process signalled between exec and installing its handler dies
    /// of the default action, which says nothing about how it stops.
    pub fn terminate(&self) {
        let pid = self.child.lock().unwrap().id();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !catches_sigterm(pid) && self.is_running() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut c = self.child.lock().unwrap();
        if let Ok(None) = c.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.child.lock().unwrap().try_wait(), Ok(None))
    }

    /// Waits for the end (killing it after `limit`).
    pub fn wait(mut self, limit: Duration) -> Exit {
        let deadline = Instant::now() + limit;
        let mut hung = false;
        let status = loop {
            if let Ok(Some(status)) = self.child.lock().unwrap().try_wait() {
                break status;
            }
            if Instant::now() > deadline && !hung {
                hung = true;
                self.killer().kill();
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let ended_ms = now_ms();
        let text = |h: Option<JoinHandle<String>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        Exit {
            code: status.code(),
            killed: status.signal() == Some(9) && !hung,
            hung,
            stdout: text(self.stdout.take()),
            stderr: text(self.stderr.take()),
            started_ms: self.started_ms,
            ended_ms,
        }
    }
}

/// Whether process `pid` has a handler for SIGTERM (Linux: the `SigCgt`
/// mask in /proc/PID/status, bit 15 - 1).
fn catches_sigterm(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << 14) != 0)
}
