//! `ferry diagnostics`: one archive that explains a sync problem, with no
//! token in any byte of it and record contents only on request; the kind
//! of problem the status names; and `ferry title`, which chooses the label
//! the queue shows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ferry_e2e::ferry::{wait_for, Ferry};
use ferry_e2e::proxy::{Fault, FaultProxy};
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

/// A field value that looks like a secret: it must never leave the data
/// dir unless records are asked for.
const SECRET_VALUE: &str = "sk_live_9QwErTy-volunteer-api-key";
const RECORD_ID: &str = "visit-7f3c2a";
/// A refused expense: the server's reason quotes its amount, so neither the
/// log nor the queue may carry that reason without records.
const REFUSED_ID: &str = "exp-refused-41";
const REFUSED_AMOUNT: &str = "-157.25";

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The archive unpacked by the system's tar, and its uncompressed bytes.
fn unpack(archive: &Path, into: &Path) -> Vec<u8> {
    std::fs::create_dir_all(into).unwrap();
    let ok = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(into).status().unwrap();
    assert!(ok.success(), "tar could not unpack {}", archive.display());
    let raw = Command::new("gzip").arg("-dc").arg(archive).output().unwrap();
    assert!(raw.status.success());
    raw.stdout
}

/// Every file under `dir`, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_archive_explains_the_state_without_tokens_or_records() {
    let schemas = tempfile::tempdir().unwrap();
    let expense = json!({"type": "object", "properties": {"amount": {"type": "number", "exclusiveMinimum": 0}}});
    std::fs::write(schemas.path().join("expense.json"), expense.to_string()).unwrap();
    let server = TestServer::start_with(&["--schemas", schemas.path().to_str().unwrap()]);
    server.add_user("mentor", "org1", "pw");
    let mut a = Ferry::new();
    a.connect(&server.url(), "mentor", "pw");
    a.put("activity", "synced-1", &json!({"title": "Synced visit", "note": SECRET_VALUE}));
    let amount: f64 = REFUSED_AMOUNT.parse().unwrap();
    a.put("expense", REFUSED_ID, &json!({"description": "Taxi", "amount": amount}));
    // The daemon syncs, the server refuses the expense, and the daemon
    // writes both in its log file in the data dir.
    a.start_daemon(&[]);
    wait_for(Duration::from_secs(20), "the daemon to sync", || {
        let s = a.status();
        (s["pending"] == 0 && s["failed"] == 1 && s["last_sync_at"].is_number()).then_some(())
    });
    a.stop_daemon();
    // Something still queued, with a secret-looking field.
    a.put("activity", RECORD_ID, &json!({"title": "Visit to the Hansens", "api_key": SECRET_VALUE}));
    let tokens = a.stored_tokens();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    let out = a.dir().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let archive = out.join("ferry-diagnostics.tar.gz");
    let run = a.run(&["diagnostics", "--to", archive.to_str().unwrap()]).ok();
    assert!(run.stdout.contains(archive.to_str().unwrap()) && run.stdout.contains("queue.json"), "{}", run.stdout);

    let unpacked = out.join("unpacked");
    let raw = unpack(&archive, &unpacked);
    let gz = std::fs::read(&archive).unwrap();
    let manifest = read_json(unpacked.join("manifest.json"));
    let mut listed: Vec<String> =
        manifest["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_owned()).collect();
    listed.sort();
    assert_eq!(listed, files_under(&unpacked), "the manifest lists exactly the files");
    for name in ["status.json", "settings.json", "queue.json", "conflicts.json", "history.json", "sync-runs.json"] {
        assert!(listed.iter().any(|f| f == name), "{name} missing from {listed:?}");
    }
    assert!(listed.iter().any(|f| f.starts_with("logs/ferry.log.")), "the daemon's log is there: {listed:?}");
    assert_eq!(manifest["include_records"], false);
    assert!(manifest["ferry_version"].is_string());
    let status = read_json(unpacked.join("status.json"));
    assert_eq!(status["user"], "mentor");
    let queue = read_json(unpacked.join("queue.json"));
    assert_eq!(queue["counts"]["pending"], 1, "{queue}");
    assert_eq!(queue["counts"]["failed"], 1, "{queue}");
    let refused = queue["entries"].as_array().unwrap().iter().find(|e| e["entity"] == "expense").unwrap();
    assert_eq!(refused["state"], "failed");
    assert_eq!(refused["last_error"], "validation", "only the code of the server's reason: {refused}");
    let pending = queue["entries"].as_array().unwrap().iter().find(|e| e["entity"] == "activity").unwrap();
    assert_eq!(pending["state"], "pending");
    let runs = read_json(unpacked.join("sync-runs.json"));
    assert!(!runs.as_array().unwrap().is_empty(), "the daemon's run is there");

    for (what, secret) in [("access token", access.as_str()), ("refresh token", refresh.as_str())] {
        assert!(!contains(&raw, secret) && !contains(&gz, secret), "the {what} is in the archive");
    }
    for record_content in [SECRET_VALUE, RECORD_ID, "Visit to the Hansens", "synced-1", REFUSED_ID, REFUSED_AMOUNT] {
        let holding: Vec<String> = files_under(&unpacked)
            .into_iter()
            .filter(|f| contains(&std::fs::read(unpacked.join(f)).unwrap(), record_content))
            .collect();
        assert!(!contains(&raw, record_content), "{record_content} is in {holding:?} without --include-records");
    }

    // With records: their ids, labels and contents, still no token.
    let with = out.join("with-records.tar.gz");
    a.run(&["diagnostics", "--to", with.to_str().unwrap(), "--include-records"]).ok();
    let raw = unpack(&with, &out.join("with"));
    assert!(contains(&raw, SECRET_VALUE) && contains(&raw, RECORD_ID));
    let queue = read_json(out.join("with/queue.json"));
    let entries = queue["entries"].as_array().unwrap();
    let pending = entries.iter().find(|e| e["entity"] == "activity").unwrap();
    assert_eq!(pending["label"], "Visit to the Hansens");
    let refused = entries.iter().find(|e| e["entity"] == "expense").unwrap();
    let reason = refused["last_error"].as_str().unwrap();
    assert!(reason.starts_with("validation: ") && reason.contains("amount"), "the whole reason with records: {reason}");
    assert_eq!(read_json(out.join("with/manifest.json"))["include_records"], true);
    assert!(!contains(&raw, &access) && !contains(&raw, &refresh), "a token is in the archive with records");

    // An existing file is never replaced.
    let before = std::fs::read(&archive).unwrap();
    let again = a.run(&["diagnostics", "--to", archive.to_str().unwrap()]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already exists") && again.stderr.contains("another file name"), "{}", again.stderr);
    assert_eq!(std::fs::read(&archive).unwrap(), before, "the existing file is untouched");
}

#[test]
fn the_title_field_chooses_the_label_the_queue_shows() {
    let a = Ferry::new();
    a.put("activity", "a1", &json!({"title": "Visit", "ref": "R-7", "n": 12}));
    a.put("activity", "a2", &json!({"note": "no title here"}));
    let labels = || a.queue(None).iter().map(|i| i["label"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(labels(), ["Visit", "a2"]);
    assert_eq!(
        a.run(&["title", "activity"]).ok().stdout.trim(),
        "activity: (default: title, name or description, else the record id)"
    );

    assert_eq!(a.run(&["title", "activity", "ref"]).ok().stdout.trim(), "activity: ref");
    assert_eq!(labels(), ["R-7", "a2"]);
    assert!(a.run(&["queue"]).ok().stdout.contains("R-7"));
    a.run(&["title", "activity", "n"]).ok();
    assert_eq!(labels(), ["12", "a2"]);

    a.run(&["title", "activity", "--default"]).ok();
    assert_eq!(labels(), ["Visit", "a2"]);
    let bad = a.run(&["title", "Not An Entity", "x"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("entity name"), "{}", bad.stderr);
}

/// A server that answers 503 and one that cannot be reached are different
/// troubles, and other processes see which (`ferry status` after `ferry
/// sync`); a good sync clears both the error and its kind.
#[test]
fn the_status_names_the_kind_of_trouble() {
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw");
    let proxy = FaultProxy::start(&server.url());
    let a = Ferry::new();
    a.connect(&proxy.url(), "mentor", "pw");
    a.put("activity", "a1", &json!({"title": "Visit"}));
    assert_eq!(a.status()["problem"], Value::Null);

    proxy.set(Fault::Status { code: 503, retry_after: None });
    assert_eq!(a.sync().code, 5);
    let s = a.status();
    assert_eq!(s["problem"], "server-error", "{s}");
    assert!(s["last_error"].as_str().unwrap().contains("503"), "{s}");

    proxy.set(Fault::Pass);
    proxy.set_refusing(true);
    assert_eq!(a.sync().code, 5);
    let s = a.status();
    assert_eq!(s["problem"], "unreachable", "{s}");
    assert!(a.run(&["status"]).ok().stdout.contains("problem:    unreachable"));

    proxy.set_refusing(false);
    a.sync().ok();
    let s = a.status();
    assert_eq!((&s["problem"], &s["last_error"]), (&Value::Null, &Value::Null), "{s}");
}
