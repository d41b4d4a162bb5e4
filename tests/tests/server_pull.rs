//! Pull: cursor pagination, latest versions only, tombstones, parameters.

use std::collections::HashSet;

use ferry_e2e::server::{delete, patch, upsert, TestServer};
use serde_json::json;

#[test]
fn pages_through_changes_with_has_more() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    let batch: Vec<_> = (0..25).map(|i| upsert("note", &format!("n{i:02}"), 0, json!({"i": i}))).collect();
    client.push(&batch);

    let mut since = 0;
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = client.pull(since, 10);
        assert!(page.server_time > 0);
        if let Some(last) = page.changes.last() {
            assert_eq!(page.cursor, last.seq);
        } else {
            assert_eq!(page.cursor, since);
        }
        for w in page.changes.windows(2) {
            assert!(w[0].seq < w[1].seq, "ascending seq");
        }
        assert!(page.changes.iter().all(|c| c.seq > since));
        pages.push((page.changes.len(), page.has_more));
        seen.extend(page.changes.iter().map(|c| c.record_id.clone()));
        since = page.cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, [(10, true), (10, true), (5, false)]);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), 25);

    // Nothing new: an empty page keeps the cursor.
    let empty = client.pull(since, 10);
    assert!(empty.changes.is_empty());
    assert!(!empty.has_more);
    assert_eq!(empty.cursor, since);

    // Exactly a page full: has_more is false when nothing follows.
    let page = client.pull(since - 5, 5);
    assert_eq!(page.changes.len(), 5);
    assert!(!page.has_more);

    // Defaults: since=0, limit=500.
    let all = client.get("/v1/pull");
    assert_eq!(all.status, 200);
    assert_eq!(all.body["changes"].as_array().unwrap().len(), 25);
}

#[test]
fn only_latest_versions_and_tombstones_travel() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    client.push(&[
        upsert("note", "a", 0, json!({"v": 1})),
        upsert("note", "b", 0, json!({"v": 1})),
        upsert("note", "c", 0, json!({"v": 1})),
    ]);
    let (_, cursor) = client.pull_all(0);

    client.push(&[
        patch("note", "a", 1, json!({"v": 2})),
        patch("note", "a", 2, json!({"v": 3})),
        delete("note", "b", 1),
    ]);
    let (changes, _) = client.pull_all(cursor);
    let ids: Vec<_> = changes.iter().map(|c| c.record_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"], "each record once, in order of its last change");
    assert_eq!(changes[0].version, 3);
    assert_eq!(changes[0].data.as_ref().unwrap()["v"], 3);
    assert!(changes[1].deleted);
    assert_eq!(changes[1].data, None);
    assert_eq!(changes[1].version, 2);

    // A fresh client pulling from 0 sees the tombstone too (so a device that
    // was offline learns about deletes).
    let (all, _) = client.pull_all(0);
    assert_eq!(all.len(), 3);
    assert!(all.iter().any(|c| c.record_id == "b" && c.deleted));
    let raw = client.get("/v1/pull?since=0");
    let b = raw.body["changes"].as_array().unwrap().iter().find(|c| c["record_id"] == "b").unwrap().clone();
    assert_eq!(b["deleted"], true);
    assert!(b["data"].is_null());
}

#[test]
fn bad_pull_parameters_are_400_invalid_request() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    for query in [
        "since=-1",
        "since=abc",
        "since=1.5",
        "since=99999999999999999999999",
        "limit=0",
        "limit=1001",
        "limit=-3",
        "limit=ten",
    ] {
        let r = client.get(&format!("/v1/pull?{query}"));
        r.assert_error(400, "invalid_request");
        assert!(!r.message().is_empty(), "{query}");
    }
    // Unknown parameters are ignored; the largest cursor is simply past the end.
    assert_eq!(client.get("/v1/pull?since=0&limit=1000&future=1").status, 200);
    let r = client.get(&format!("/v1/pull?since={}", u64::MAX));
    assert_eq!(r.status, 200);
    assert_eq!(r.body["cursor"], json!(u64::MAX));
}

#[test]
fn records_endpoint() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    client.push(&[upsert("note", "with space/and%", 0, json!({"a": 1}))]);
    let r = client.get("/v1/records/note/with%20space%2Fand%25");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["record_id"], "with space/and%");
    client.get("/v1/records/note/nope").assert_error(404, "not_found");
    client.get("/v1/records/Note/x").assert_error(400, "invalid_request");
    client.get("/v1/records/a;drop%20table%20records/x").assert_error(400, "invalid_request");
    client.get("/v1/records/note/a%0Ab").assert_error(400, "invalid_request");
    client.get("/v1/nope").assert_error(404, "not_found");
}
