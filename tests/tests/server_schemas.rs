//! Content rules (`ferry-server --schemas DIR`): a record that breaks its
//! entity's JSON Schema is rejected with code `validation` and a message
//! naming the field and the rule; the client keeps it as a failed change
//! that the user corrects (`ferry retry ID --with JSON`) and that then
//! uploads and reaches a second client. Runs on both storage backends.

use std::path::Path;
use std::process::{Command, Stdio};

use ferry_e2e::bin_path;
use ferry_e2e::ferry::Ferry;
use ferry_e2e::pg::TestDb;
use ferry_e2e::server::{patch, upsert, TestServer};
use ferry_protocol::{Outcome, RejectCode};
use serde_json::json;

fn schema_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let expense = json!({
        "type": "object",
        "required": ["amount", "description"],
        "properties": {
            "amount": {"type": "number", "exclusiveMinimum": 0},
            "description": {"type": "string", "minLength": 3}
        }
    });
    std::fs::write(dir.path().join("expense.json"), expense.to_string()).unwrap();
    dir
}

fn start(dir: &Path) -> TestServer {
    let server = TestServer::start_with(&["--schemas", dir.to_str().unwrap()]);
    server.add_user("mentor", "org1", "pw-mentor");
    server.add_user("coordinator", "org1", "pw-coord");
    server
}

fn rejection(o: &Outcome) -> (RejectCode, String) {
    match o {
        Outcome::Rejected { code, message } => (*code, message.clone()),
        other => panic!("expected rejected, got {other:?}"),
    }
}

#[test]
fn a_record_breaking_its_schema_is_rejected_naming_the_field_and_rule() {
    let dir = schema_dir();
    let server = start(dir.path());
    let client = server.login("mentor", "pw-mentor");

    let res = client.push(&[
        upsert("expense", "e1", 0, json!({"amount": -40, "description": "Taxi"})),
        upsert("expense", "e2", 0, json!({"amount": 40, "description": "Taxi"})),
        upsert("activity", "a1", 0, json!({"anything": "goes"})),
    ]);
    let (code, message) = rejection(&res.results[0].outcome);
    assert_eq!(code, RejectCode::Validation);
    assert!(message.contains("expense/e1") && message.contains("amount: "), "{message}");
    assert!(message.contains("(rule: exclusiveMinimum)"), "{message}");
    assert!(matches!(res.results[1].outcome, Outcome::Applied { version: 1, .. }), "{res:?}");
    assert!(matches!(res.results[2].outcome, Outcome::Applied { version: 1, .. }), "no schema, no rule: {res:?}");

    // What a patch would make of the record is what is checked.
    let res = client.push(&[patch("expense", "e2", 1, json!({"description": null}))]);
    let (code, message) = rejection(&res.results[0].outcome);
    assert_eq!(code, RejectCode::Validation);
    assert!(message.contains("\"description\"") && message.contains("(rule: required)"), "{message}");
    let rec = client.get("/v1/records/expense/e2").body;
    assert_eq!(rec["version"], 1, "nothing of the refused patch was applied");
    assert_eq!(server.stats()["mutations_applied"], 2);
}

#[test]
fn a_broken_schema_directory_stops_the_server_with_one_line_naming_the_file() {
    let dir = schema_dir();
    std::fs::write(dir.path().join("contact.json"), "{ not json").unwrap();
    let db = TestDb::new();
    let out = Command::new(bin_path("ferry-server"))
        .arg("--db")
        .arg(db.arg())
        .args(["--listen", "127.0.0.1:0", "--schemas"])
        .arg(dir.path())
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "must not serve without its rules");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().last().unwrap_or_default();
    assert!(
        line.starts_with("ferry-server: ") && line.contains("contact.json") && line.contains("not JSON"),
        "{stderr}"
    );
}

#[test]
fn a_rejected_change_is_corrected_by_the_user_uploaded_and_seen_by_a_second_client() {
    let dir = schema_dir();
    let server = start(dir.path());
    let mentor = Ferry::new();
    mentor.connect(&server.url(), "mentor", "pw-mentor");
    let coordinator = Ferry::new();
    coordinator.connect(&server.url(), "coordinator", "pw-coord");

    mentor.put("expense", "bus", &json!({"amount": 0, "description": "Bus to the meeting"}));
    mentor.patch("expense", "bus", &json!({"receipt": true}));
    mentor.put("expense", "taxi", &json!({"amount": 120, "description": "Taxi home"}));
    assert_eq!(mentor.sync().code, 3, "an incomplete sync exits 3");
    let failed = mentor.queue(Some("failed"));
    assert_eq!(failed.len(), 1, "{failed:?}");
    let error = failed[0]["last_error"].as_str().unwrap();
    assert!(error.contains("validation") && error.contains("amount"), "{error}");
    assert_eq!(mentor.queue(Some("pending")).len(), 1, "the record's later patch waits behind it");

    // Correcting something that has not failed is refused, and changes nothing.
    let pending = mentor.queue(Some("pending"));
    let refused = mentor.run(&["retry", pending[0]["mutation_id"].as_str().unwrap(), "--with", "{}"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("not failed"), "{}", refused.stderr);

    let failed_id = failed[0]["mutation_id"].as_str().unwrap();
    let corrected = mentor
        .run(&["retry", failed_id, "--with", r#"{"amount": 35, "description": "Bus to the meeting"}"#])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(corrected, failed_id, "a correction is a new change");
    assert_eq!(
        mentor.get("expense", "bus").unwrap(),
        json!({"amount": 35, "description": "Bus to the meeting", "receipt": true})
    );
    let r = mentor.sync();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mentor.status()["failed"], 0);
    assert!(mentor.queue(None).is_empty());

    coordinator.sync().ok();
    assert_eq!(
        coordinator.get("expense", "bus").unwrap(),
        json!({"amount": 35, "description": "Bus to the meeting", "receipt": true})
    );
    assert_eq!(coordinator.get("expense", "taxi").unwrap(), json!({"amount": 120, "description": "Taxi home"}));
    assert_eq!(server.stats()["mutations_applied"], 3, "corrected put, its patch, the taxi: nothing twice");
}
