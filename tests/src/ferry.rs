//! Harness for the real `ferry` CLI: one [`Ferry`] per simulated device, each
//! with its own temporary data dir and a private token file (so tests run in
//! parallel without a keyring; the keyring itself has its own test).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bin_path;

pub struct Ferry {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    daemon: Option<Child>,
    keyring: bool,
}

/// What a `ferry` run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "ferry failed: {}\n{}", self.stderr, self.stdout);
        self
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl Default for Ferry {
    fn default() -> Self {
        Self::new()
    }
}

/// The one account's tokens in a token file (as JSON).
pub fn stored_tokens(token_file: &Path) -> Value {
    let all: Value = serde_json::from_slice(&std::fs::read(token_file).expect("token file")).unwrap();
    all.as_object().unwrap().values().next().expect("one account").clone()
}

impl Ferry {
    pub fn new() -> Ferry {
        Ferry { dir: tempfile::tempdir().expect("temp dir"), env: Vec::new(), daemon: None, keyring: false }
    }

    /// Keep tokens in the OS keyring (Secret Service) instead of a file.
    pub fn with_keyring(mut self) -> Ferry {
        self.keyring = true;
        self
    }

    /// Adds an environment variable to every run (e.g. a test clock skew).
    pub fn with_env(mut self, key: &str, value: &str) -> Ferry {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("tokens.json")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin_path("ferry"));
        c.env("FERRY_DATA_DIR", self.data_dir()).env_remove("FERRY_LOG").stdin(Stdio::null());
        if self.keyring {
            c.env_remove("FERRY_TOKEN_FILE");
        } else {
            c.env("FERRY_TOKEN_FILE", self.token_file());
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs `ferry ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command().args(args).output().expect("run ferry"))
    }

    /// Runs `ferry ARGS` with extra environment for this run only (e.g. a
    /// clock that was stepped since the last run).
    pub fn run_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Run::from(c.output().expect("run ferry"))
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferry");
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        Run::from(child.wait_with_output().expect("wait ferry"))
    }

    /// `init` + `login` against `url`.
    pub fn connect(&self, url: &str, user: &str, password: &str) {
        self.run(&["init", "--server", url]).ok();
        self.login(user, password).ok();
    }

    /// The one account's tokens in this client's token file (as JSON).
    pub fn stored_tokens(&self) -> Value {
        stored_tokens(&self.token_file())
    }

    /// `ferry login --user USER --password-stdin`, the password on stdin.
    pub fn login(&self, user: &str, password: &str) -> Run {
        self.run_stdin(&["login", "--user", user, "--password-stdin"], password)
    }

    pub fn put(&self, entity: &str, id: &str, data: &Value) -> String {
        self.run(&["put", entity, id, &data.to_string()]).ok().stdout.trim().to_string()
    }

    pub fn patch(&self, entity: &str, id: &str, data: &Value) -> String {
        self.run(&["patch", entity, id, &data.to_string()]).ok().stdout.trim().to_string()
    }

    pub fn delete(&self, entity: &str, id: &str) -> String {
        self.run(&["delete", entity, id]).ok().stdout.trim().to_string()
    }

    /// The record's fields, or `None` if absent or deleted here.
    pub fn get(&self, entity: &str, id: &str) -> Option<Value> {
        let r = self.run(&["get", entity, id]);
        (r.code == 0).then(|| r.json())
    }

    pub fn list(&self, entity: &str) -> Value {
        self.run(&["list", entity, "--json"]).ok().json()
    }

    pub fn sync(&self) -> Run {
        self.run(&["sync"])
    }

    pub fn status(&self) -> Value {
        self.run(&["status", "--json"]).ok().json()
    }

    pub fn queue(&self, state: Option<&str>) -> Vec<Value> {
        let mut args = vec!["queue", "--json"];
        if let Some(s) = state {
            args.extend(["--state", s]);
        }
        match self.run(&args).ok().json() {
            Value::Array(a) => a,
            other => panic!("queue --json is not an array: {other}"),
        }
    }

    pub fn conflicts(&self) -> Vec<Value> {
        match self.run(&["conflicts", "--json"]).ok().json() {
            Value::Array(a) => a,
            other => panic!("conflicts --json is not an array: {other}"),
        }
    }

    pub fn history(&self) -> Vec<Value> {
        match self.run(&["conflicts", "--history", "--json"]).ok().json() {
            Value::Array(a) => a,
            other => panic!("conflicts --history --json is not an array: {other}"),
        }
    }

    /// Starts `ferry daemon` with its log in the temp dir.
    pub fn start_daemon(&mut self, extra_env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.daemon_log_path()).expect("daemon log");
        let mut c = self.command();
        c.arg("daemon").env("FERRY_LOG", "info").stdout(Stdio::null()).stderr(log);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        self.daemon = Some(c.spawn().expect("spawn ferry daemon"));
    }

    pub fn daemon_log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.daemon_log_path()).unwrap_or_default()
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop_daemon(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.daemon.take()?;
        // SAFETY-free: plain kill(2) through the `kill` command keeps this
        // crate free of libc.
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout` with `what`.
#[track_caller]
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
