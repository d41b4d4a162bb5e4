//! Bad input of every kind gets a 4xx with the right error code, and leaves
//! the database exactly as it was.

use ferry_e2e::server::{upsert, AuthHeader, Client, TestServer};
use ferry_protocol::{limits, Outcome, RejectCode};
use reqwest::Method;
use serde_json::{json, Value};

/// A server with one record, a signed-in client and the state to compare
/// against after the abuse.
fn setup() -> (TestServer, Client, Value, Vec<Value>) {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    client.push(&[upsert("activity", "keep", 0, json!({"title": "untouched"}))]);
    let stats = server.stats();
    let dump = server.dump();
    (server, client, stats, dump)
}

fn assert_untouched(server: &TestServer, stats: &Value, dump: &[Value]) {
    assert_eq!(&server.stats(), stats, "counters changed");
    assert_eq!(server.dump(), dump, "records changed");
}

fn mutation_json(overrides: Value) -> Value {
    let mut m = json!({
        "id": uuid::Uuid::new_v4(),
        "entity": "activity",
        "record_id": "x1",
        "op": "upsert",
        "payload": {"a": 1},
        "base_version": 0,
        "edited_at": 1
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            m.as_object_mut().unwrap().remove(k);
        } else {
            m[k] = v.clone();
        }
    }
    m
}

#[test]
fn malformed_bodies_are_400_malformed_request() {
    let (server, client, stats, dump) = setup();
    let deep = format!("{{\"mutations\":[{{\"payload\":{}1{}}}]}}", "{\"a\":".repeat(300), "}".repeat(300));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("truncated", b"{\"mutations\": [".to_vec()),
        ("not json", b"hello".to_vec()),
        ("array", b"[]".to_vec()),
        ("missing mutations", b"{}".to_vec()),
        ("mutations not a list", br#"{"mutations": {"a": 1}}"#.to_vec()),
        ("non-utf8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        ("non-utf8 in string", [br#"{"mutations":[{"entity":""#.as_slice(), &[0xc3, 0x28], br#""}]}"#].concat()),
        ("deeply nested", deep.into_bytes()),
        ("nested arrays", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
    ];
    for (what, body) in bodies {
        let r = client.push_raw(body);
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.error_code(), "malformed_request", "{what}");
    }
    let shapes = [
        ("bad id", json!({"id": "not-a-uuid"})),
        ("missing id", json!({"id": null})),
        ("missing entity", json!({"entity": null})),
        ("entity a number", json!({"entity": 5})),
        ("unknown op", json!({"op": "frobnicate"})),
        ("base_version a string", json!({"base_version": "one"})),
        ("negative base_version", json!({"base_version": -1})),
        ("fractional base_version", json!({"base_version": 1.5})),
        ("edited_at a string", json!({"edited_at": "yesterday"})),
        ("payload an array", json!({"payload": [1, 2]})),
        ("payload a string", json!({"payload": "text"})),
        ("payload a number", json!({"payload": 7})),
    ];
    for (what, overrides) in shapes {
        let body = json!({"mutations": [mutation_json(overrides)]});
        let r = client.push_raw(serde_json::to_vec(&body).unwrap());
        assert_eq!(r.status, 400, "{what}: {}", r.body);
        assert_eq!(r.error_code(), "malformed_request", "{what}");
        // serde's explanation says what is wrong.
        assert!(r.message().len() > 20, "{what}: {}", r.message());
    }
    for path in ["/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout"] {
        let r = client.request(Method::POST, path, Some(b"{\"nope\":1}".to_vec()), AuthHeader::None);
        r.assert_error(400, "malformed_request");
    }
    assert_untouched(&server, &stats, &dump);
}

#[test]
fn invalid_names_and_payloads_are_rejected_per_mutation() {
    let (server, client, stats, _) = setup();
    let long_entity = "a".repeat(limits::MAX_ENTITY_LEN + 1);
    let long_id = "x".repeat(limits::MAX_RECORD_ID_LEN + 1);
    let cases = [
        (json!({"entity": "a;drop table records"}), RejectCode::InvalidEntity),
        (json!({"entity": "activity' OR '1'='1"}), RejectCode::InvalidEntity),
        (json!({"entity": ""}), RejectCode::InvalidEntity),
        (json!({"entity": "Activity"}), RejectCode::InvalidEntity),
        (json!({"entity": "../etc/passwd"}), RejectCode::InvalidEntity),
        (json!({"entity": long_entity}), RejectCode::InvalidEntity),
        (json!({"record_id": ""}), RejectCode::InvalidRecordId),
        (json!({"record_id": "a\u{0}b"}), RejectCode::InvalidRecordId),
        (json!({"record_id": "line\nbreak"}), RejectCode::InvalidRecordId),
        (json!({"record_id": "esc\u{1b}[31m"}), RejectCode::InvalidRecordId),
        (json!({"record_id": long_id}), RejectCode::InvalidRecordId),
        (json!({"payload": null}), RejectCode::InvalidPayload),
        (json!({"op": "patch", "payload": null}), RejectCode::InvalidPayload),
        (json!({"payload": {"blob": "z".repeat(limits::MAX_PAYLOAD_BYTES)}}), RejectCode::PayloadTooLarge),
    ];
    let n = cases.len();
    // Distinct records, so no case is merely blocked behind another.
    let mutations: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (o, _))| {
            let mut m = mutation_json(o.clone());
            if o.get("record_id").is_none() {
                m["record_id"] = json!(format!("x{i}"));
            }
            m
        })
        .collect();
    let r = client.push_raw(serde_json::to_vec(&json!({"mutations": mutations})).unwrap());
    assert_eq!(r.status, 200, "{}", r.body);
    let res: ferry_protocol::PushResponse = r.json();
    for (result, (what, code)) in res.results.iter().zip(&cases) {
        match &result.outcome {
            Outcome::Rejected { code: got, message } => {
                assert_eq!(got, code, "{what}: {message}");
                assert!(!message.is_empty());
            }
            other => panic!("{what}: expected rejected, got {other:?}"),
        }
    }
    // Unknown fields are tolerated (forward compatibility).
    let future =
        json!({"mutations": [mutation_json(json!({"record_id": "fwd", "priority": "high"}))], "client": {"v": 9}});
    let r = client.push_raw(serde_json::to_vec(&future).unwrap());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["results"][0]["status"], "applied");

    let after = server.stats();
    assert_eq!(after["rejected"], json!(n));
    assert_eq!(after["records"], json!({"activity": 2}));
    assert_eq!(after["mutations_applied"], json!(stats["mutations_applied"].as_u64().unwrap() + 1));
    assert!(server.dump().iter().all(|r| r["entity"] == "activity"));
}

#[test]
fn oversized_requests_are_413_too_large() {
    let (server, client, stats, dump) = setup();
    // One mutation too many.
    let too_many: Vec<Value> =
        (0..=limits::MAX_BATCH_MUTATIONS).map(|i| mutation_json(json!({"record_id": format!("m{i}")}))).collect();
    let r = client.push_raw(serde_json::to_vec(&json!({"mutations": too_many})).unwrap());
    r.assert_error(413, "too_large");
    assert!(r.message().contains(&limits::MAX_BATCH_MUTATIONS.to_string()), "{}", r.message());

    // A body over the byte limit, valid JSON or not.
    let filler = "x".repeat(limits::MAX_BODY_BYTES);
    let big = serde_json::to_vec(&json!({"mutations": [mutation_json(json!({"payload": {"f": filler}}))]})).unwrap();
    assert!(big.len() > limits::MAX_BODY_BYTES);
    client.push_raw(big).assert_error(413, "too_large");
    client.push_raw(vec![b'{'; limits::MAX_BODY_BYTES + 1]).assert_error(413, "too_large");

    // The connection pool is still healthy afterwards.
    assert_eq!(client.get("/v1/pull").status, 200);
    assert_untouched(&server, &stats, &dump);
}

#[test]
fn auth_failures_do_not_touch_state() {
    let (server, client, stats, dump) = setup();
    let body = serde_json::to_vec(&json!({"mutations": [mutation_json(json!({}))]})).unwrap();
    for auth in [AuthHeader::None, AuthHeader::Raw("Bearer x".into()), AuthHeader::Raw("".into())] {
        client.request(Method::POST, "/v1/push", Some(body.clone()), auth).assert_error(401, "unauthorized");
    }
    // Wrong method and unknown paths get error bodies too.
    client.request(Method::GET, "/v1/push", None, AuthHeader::Session).assert_error(405, "invalid_request");
    client
        .request(Method::DELETE, "/v1/records/activity/keep", None, AuthHeader::Session)
        .assert_error(405, "invalid_request");
    client.request(Method::POST, "/v2/push", Some(body), AuthHeader::Session).assert_error(404, "not_found");
    assert_untouched(&server, &stats, &dump);
}

#[test]
fn every_answer_carries_the_server_time() {
    let (_server, client, _, _) = setup();
    let replies = [
        client.request(Method::GET, "/health", None, AuthHeader::None),
        client.get("/v1/pull"),
        client.request(Method::GET, "/v1/pull", None, AuthHeader::None),
        client.push_raw(b"nonsense".to_vec()),
        client.get("/nowhere"),
        client.try_login("ann", "wrong"),
    ];
    for r in replies {
        let t: i64 = r
            .headers
            .get(ferry_protocol::SERVER_TIME_HEADER)
            .unwrap_or_else(|| panic!("no server time header on {}", r.status))
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(t > 1_600_000_000_000, "{t} is in ms");
        if r.status >= 400 {
            r.error_code();
        }
    }
}
