use std::io::Read;

use serde_json::json;

use super::*;
use crate::EngineConfig;

const SECRET: &str = "sk_live_4f9a-value-nobody-may-see";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtZW50b3IifQ.c2lnbmF0dXJlLXBhcnQ";

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path().join("data"))).unwrap();
    let data = json!({"title": "Visit to the Hansens", "api_key": SECRET}).as_object().cloned().unwrap();
    engine.put("activity", "rec-0001", data).unwrap();
    (dir, engine)
}

/// Every file of the archive at `path`, by name.
fn unpack(path: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

fn contains(files: &[(String, Vec<u8>)], needle: &str) -> Vec<String> {
    files
        .iter()
        .filter(|(_, data)| data.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn metadata_only_unless_records_are_asked_for() {
    let (dir, engine) = engine();
    let to = dir.path().join("d.tar.gz");
    let report = engine.save_diagnostics(&to, DiagnosticsOptions::default()).unwrap();
    let files = unpack(&to);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "manifest.json",
            "status.json",
            "settings.json",
            "queue.json",
            "conflicts.json",
            "history.json",
            "sync-runs.json"
        ]
    );
    assert_eq!(report.files, names);
    assert_eq!(report.bytes, std::fs::metadata(&to).unwrap().len());
    let manifest: Value = serde_json::from_slice(&files[0].1).unwrap();
    assert_eq!(manifest["files"], json!(names));
    assert_eq!(manifest["include_records"], json!(false));
    let queue: Value = serde_json::from_slice(&files[3].1).unwrap();
    assert_eq!(queue["counts"]["pending"], json!(1));
    assert_eq!(queue["entries"][0]["entity"], json!("activity"));
    assert_eq!(queue["entries"][0].get("payload"), None);
    for needle in [SECRET, "rec-0001", "Visit to the Hansens"] {
        assert_eq!(contains(&files, needle), Vec::<String>::new(), "{needle} leaked");
    }

    let to = dir.path().join("with-records.tar.gz");
    engine.save_diagnostics(&to, DiagnosticsOptions { include_records: true }).unwrap();
    let files = unpack(&to);
    assert_eq!(contains(&files, SECRET), ["queue.json"]);
    let queue: Value = serde_json::from_slice(&files[3].1).unwrap();
    assert_eq!(queue["entries"][0]["label"], json!("Visit to the Hansens"));
    assert_eq!(queue["entries"][0]["record_id"], json!("rec-0001"));
}

#[test]
fn logs_are_scrubbed_and_settings_that_sound_secret_dropped() {
    let (dir, engine) = engine();
    let logs = crate::logs::log_dir(engine.data_dir());
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("ferry.log.2026-12-05"), "old day\n").unwrap();
    std::fs::write(
        logs.join("ferry.log.2026-12-06"),
        format!("INFO sent Authorization: Bearer {JWT}\nINFO refresh {{\"refresh_token\":\"rt-abcdef\"}}\nINFO ok\n"),
    )
    .unwrap();
    engine.inner.store.set_setting(crate::store::settings::USER, &"mentor".to_owned()).unwrap();
    engine.inner.store.put_raw_setting("oauth_refresh_token", "rt-abcdef").unwrap();
    let to = dir.path().join("d.tar.gz");
    engine.save_diagnostics(&to, DiagnosticsOptions::default()).unwrap();
    let files = unpack(&to);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[7..], ["logs/ferry.log.2026-12-06", "logs/ferry.log.2026-12-05"]);
    for needle in [JWT, "eyJzdWIiOiJtZW50b3IifQ", "rt-abcdef"] {
        assert_eq!(contains(&files, needle), Vec::<String>::new(), "{needle} leaked");
    }
    let log = String::from_utf8(files[7].1.clone()).unwrap();
    assert!(log.contains("Bearer [redacted]") && log.contains("INFO ok"), "{log}");
    let settings: Value = serde_json::from_slice(&files[2].1).unwrap();
    assert_eq!(settings["user"], json!("mentor"));
    assert_eq!(settings.get("oauth_refresh_token"), None);
}

#[test]
fn only_the_newest_part_of_a_long_log_is_taken() {
    let (dir, engine) = engine();
    let logs = crate::logs::log_dir(engine.data_dir());
    std::fs::create_dir_all(&logs).unwrap();
    let line = "INFO a line of the log that repeats itself many times over\n";
    let big = line.repeat((3 * LOG_BUDGET as usize) / line.len());
    std::fs::write(logs.join("ferry.log.2026-12-06"), format!("{big}INFO the very last line\n")).unwrap();
    std::fs::write(logs.join("ferry.log.2026-12-05"), "older\n").unwrap();
    let to = dir.path().join("d.tar.gz");
    engine.save_diagnostics(&to, DiagnosticsOptions::default()).unwrap();
    let files = unpack(&to);
    let (name, log) = files.last().unwrap();
    assert_eq!(name, "logs/ferry.log.2026-12-06", "the budget is spent on the newest file");
    assert!(log.len() as u64 <= LOG_BUDGET && log.len() as u64 > LOG_BUDGET - 200, "{}", log.len());
    assert!(log.starts_with(line.as_bytes()), "starts on a whole line");
    assert!(log.ends_with(b"INFO the very last line\n"));
}

#[test]
fn an_existing_target_is_refused_and_left_alone() {
    let (dir, engine) = engine();
    let to = dir.path().join("d.tar.gz");
    std::fs::write(&to, b"mine").unwrap();
    let err = engine.save_diagnostics(&to, DiagnosticsOptions::default()).unwrap_err().to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read(&to).unwrap(), b"mine");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "data dir and the file only");
}
