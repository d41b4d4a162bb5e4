//! The systemd unit shipped with the server
//! (`crates/ferry-server/systemd/ferry-server.service`): `systemd-analyze
//! verify` accepts it, it is hardened as docs/operations.md says, and the
//! command line it runs is one the real server serves with (JSON logs, a
//! clean stop on the unit's stop signal).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_e2e::{bin_path, free_port};

fn unit_text() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates/ferry-server/systemd/ferry-server.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The value of `key=` in the unit (the last one, as systemd reads it).
fn setting<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    unit.lines().rev().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn the_unit_is_hardened_and_passes_systemd_analyze_verify() {
    let unit = unit_text();
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("StateDirectory", "ferry-server"),
        ("ConfigurationDirectory", "ferry-server"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("KillSignal", "SIGTERM"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
    ] {
        assert_eq!(setting(&unit, key), value, "{key}");
    }
    // Pointed at the binary under test (verify checks the executable).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ferry-server.service");
    std::fs::write(&file, unit.replace("/usr/bin/ferry-server", bin_path("ferry-server").to_str().unwrap())).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze runs (Debian package systemd; scripts/setup.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify failed:\n{stderr}");
    assert!(!stderr.contains("ferry-server.service"), "warnings about the unit:\n{stderr}");
}

#[test]
fn the_units_command_line_serves_logs_json_and_stops_on_sigterm() {
    let unit = unit_text();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ferry-server.db");
    let port = free_port();
    // ExecStart as systemd would run it: the environment's database, and
    // FERRY_SERVER_ARGS naming a free port.
    let exec = setting(&unit, "ExecStart").replace("$FERRY_SERVER_ARGS", &format!("--listen 127.0.0.1:{port}"));
    let mut words = exec.split_whitespace();
    assert_eq!(words.next(), Some("/usr/bin/ferry-server"));
    let db_env = setting(&unit, "Environment").strip_prefix("FERRY_SERVER_DB=").expect("the unit sets FERRY_SERVER_DB");
    assert!(db_env.starts_with("/var/lib/ferry-server/"), "the database lives in the state directory: {db_env}");
    let mut child = Command::new(bin_path("ferry-server"))
        .args(words)
        .env("FERRY_SERVER_DB", &db)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("listening on http://127.0.0.1:{port}"));
    assert!(db.exists(), "the database is where FERRY_SERVER_DB says");

    let term = Command::new("kill").args(["-s", "TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within the unit's TimeoutStopSec");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit on SIGTERM: {status}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    assert!(!lines.is_empty());
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("ferry-server listening")), "{logs}");
}
