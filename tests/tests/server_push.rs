//! Push outcomes: applied, duplicate, conflict, rejected, blocked; per-record
//! order; idempotency across restarts.

use std::sync::Arc;
use std::thread;

use ferry_e2e::server::{delete, patch, upsert, TestServer};
use ferry_protocol::{Outcome, RejectCode};
use serde_json::json;

fn applied(o: &Outcome) -> (u64, u64, i64) {
    match o {
        Outcome::Applied { version, seq, server_time } => (*version, *seq, *server_time),
        other => panic!("expected applied, got {other:?}"),
    }
}

fn rejected(o: &Outcome) -> RejectCode {
    match o {
        Outcome::Rejected { code, message } => {
            assert!(!message.is_empty());
            *code
        }
        other => panic!("expected rejected, got {other:?}"),
    }
}

#[test]
fn chained_mutations_of_one_record_apply_in_order() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");

    // A client predicts the base of each chained edit: 0, 1, 2, 3.
    let batch = [
        upsert("activity", "a1", 0, json!({"title": "Walk", "km": 3, "note": "x"})),
        patch("activity", "a1", 1, json!({"km": 5, "note": null})),
        patch("activity", "a1", 2, json!({"done": true})),
        delete("activity", "a1", 3),
        upsert("activity", "a1", 4, json!({"title": "Walk again"})),
    ];
    let res = client.push(&batch);
    assert_eq!(res.results.len(), 5);
    let mut last_seq = 0;
    for (i, (r, m)) in res.results.iter().zip(&batch).enumerate() {
        assert_eq!(r.mutation_id, m.id, "results come in request order");
        let (version, seq, _) = applied(&r.outcome);
        assert_eq!(version, i as u64 + 1);
        assert!(seq > last_seq, "seq increases");
        last_seq = seq;
    }
    let rec = client.get("/v1/records/activity/a1");
    assert_eq!(rec.status, 200);
    assert_eq!(rec.body["version"], 5);
    assert_eq!(rec.body["deleted"], false);
    assert_eq!(rec.body["data"], json!({"title": "Walk again"}));
    assert_eq!(rec.body["edited_by"], "ann");
    assert_eq!(rec.body["edited_at"], 1_700_000_000_000i64);

    let stats = server.stats();
    assert_eq!(stats["mutations_applied"], 5);
    assert_eq!(stats["records"]["activity"], 1);
    assert_eq!(stats["tombstones"], 0);
}

#[test]
fn patch_merges_fields_and_delete_leaves_a_tombstone() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    client.push(&[upsert("contact", "c1", 0, json!({"name": "Kari", "phone": "1", "tags": ["a"]}))]);
    client.push(&[patch("contact", "c1", 1, json!({"phone": null, "tags": ["b"], "city": "Oslo"}))]);
    let rec = client.get("/v1/records/contact/c1").body;
    assert_eq!(rec["data"], json!({"name": "Kari", "tags": ["b"], "city": "Oslo"}));

    client.push(&[delete("contact", "c1", 2)]);
    let rec = client.get("/v1/records/contact/c1");
    assert_eq!(rec.status, 200, "tombstones stay readable");
    assert_eq!(rec.body["deleted"], true);
    assert_eq!(rec.body["data"], serde_json::Value::Null);
    assert_eq!(rec.body["version"], 3);

    // Patch or delete of a tombstone: not found. Upsert on it resurrects.
    let res = client.push(&[patch("contact", "c1", 3, json!({"a": 1}))]);
    assert_eq!(rejected(&res.results[0].outcome), RejectCode::NotFound);
    let res = client.push(&[delete("contact", "c1", 3)]);
    assert_eq!(rejected(&res.results[0].outcome), RejectCode::NotFound);
    let res = client.push(&[upsert("contact", "c1", 3, json!({"name": "Kari"}))]);
    assert_eq!(applied(&res.results[0].outcome).0, 4);

    let stats = server.stats();
    assert_eq!(stats["records"]["contact"], 1);
    assert_eq!(stats["tombstones"], 0);
    assert_eq!(stats["rejected"], 2);
}

#[test]
fn duplicates_return_the_original_result() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    server.add_user("bob", "red", "pw");
    let ann = server.login("ann", "pw");
    let m = upsert("activity", "a1", 0, json!({"n": 1}));
    let first = ann.push(std::slice::from_ref(&m));
    let original = applied(&first.results[0].outcome);

    // Same id in one batch twice, and again later (a retry after a timeout).
    let again = ann.push(&[m.clone(), m.clone()]);
    for r in &again.results {
        assert_eq!(r.outcome, Outcome::Duplicate { version: original.0, seq: original.1, server_time: original.2 });
    }
    // A colleague in the same org re-sending it (e.g. a shared outbox) too.
    let bob = server.login("bob", "pw");
    let res = bob.push(std::slice::from_ref(&m));
    assert!(matches!(res.results[0].outcome, Outcome::Duplicate { .. }));

    // Applied once: the record is at version 1.
    assert_eq!(ann.get("/v1/records/activity/a1").body["version"], 1);
    // Same new id twice in one batch: the second is a duplicate of the first.
    let m2 = upsert("activity", "a2", 0, json!({}));
    let res = ann.push(&[m2.clone(), m2]);
    applied(&res.results[0].outcome);
    assert!(matches!(res.results[1].outcome, Outcome::Duplicate { .. }));

    let stats = server.stats();
    assert_eq!(stats["mutations_applied"], 2);
    assert_eq!(stats["mutations_duplicate"], 4);
}

#[test]
fn conflicts_return_the_current_record_and_block_only_that_record() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    server.add_user("bob", "red", "pw");
    let ann = server.login("ann", "pw");
    let bob = server.login("bob", "pw");
    ann.push(&[upsert("activity", "a1", 0, json!({"title": "Ann's"}))]);
    bob.push(&[patch("activity", "a1", 1, json!({"title": "Bob's"}))]);

    // Ann edits on version 1, unaware of Bob's edit; she also queued a
    // follow-up on her own edit and an unrelated record.
    let stale = patch("activity", "a1", 1, json!({"title": "Ann's v2"}));
    let follow_up = patch("activity", "a1", 2, json!({"km": 1}));
    let unrelated = upsert("activity", "a2", 0, json!({"title": "other"}));
    let res = ann.push(&[stale.clone(), follow_up.clone(), unrelated]);
    match &res.results[0].outcome {
        Outcome::Conflict { current } => {
            assert_eq!(current.version, 2);
            assert_eq!(current.edited_by, "bob");
            assert_eq!(current.data.as_ref().unwrap()["title"], "Bob's");
            assert!(!current.deleted);
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(res.results[1].outcome, Outcome::Blocked);
    applied(&res.results[2].outcome);

    // Conflicts are not remembered: after rebasing, the same id applies.
    let mut rebased = stale.clone();
    rebased.base_version = 2;
    let res = ann.push(&[rebased]);
    assert_eq!(applied(&res.results[0].outcome).0, 3);

    // A conflict against a tombstone shows the tombstone.
    bob.push(&[delete("activity", "a2", 1)]);
    let res = ann.push(&[patch("activity", "a2", 1, json!({"x": 1}))]);
    match &res.results[0].outcome {
        Outcome::Conflict { current } => {
            assert!(current.deleted);
            assert_eq!(current.data, None);
            assert_eq!(current.version, 2);
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    let stats = server.stats();
    assert_eq!(stats["conflicts"], 2);
    assert_eq!(stats["tombstones"], 1);
}

#[test]
fn rejections_are_per_mutation_and_do_not_fail_the_batch() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    let mut no_payload = upsert("activity", "p", 0, json!({}));
    no_payload.payload = None;
    let batch = [
        upsert("Bad-Entity", "r", 0, json!({})),
        upsert("activity", "", 0, json!({})),
        no_payload,
        upsert("activity", "big", 0, json!({"x": "y".repeat(300 * 1024)})),
        patch("activity", "missing", 0, json!({"a": 1})),
        delete("activity", "missing-too", 0),
        upsert("activity", "never-existed", 4, json!({})),
        upsert("activity", "ok", 0, json!({"fine": true})),
    ];
    let res = client.push(&batch);
    use RejectCode::*;
    let expected = [InvalidEntity, InvalidRecordId, InvalidPayload, PayloadTooLarge, NotFound, NotFound, NotFound];
    for (r, code) in res.results.iter().zip(expected) {
        assert_eq!(rejected(&r.outcome), code);
    }
    applied(&res.results[7].outcome);
    // A rejection is permanent: the same mutation gets the same answer.
    let res = client.push(&batch[..1]);
    assert_eq!(rejected(&res.results[0].outcome), InvalidEntity);

    let stats = server.stats();
    assert_eq!(stats["rejected"], 8);
    assert_eq!(stats["mutations_applied"], 1);
    assert_eq!(stats["records"], json!({"activity": 1}));
}

#[test]
fn concurrent_writers_to_one_record_get_exactly_one_applied() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = Arc::new(server.login("ann", "pw"));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let client = Arc::clone(&client);
            thread::spawn(move || client.push(&[upsert("activity", "race", 0, json!({"writer": i}))]))
        })
        .collect();
    let outcomes: Vec<Outcome> =
        handles.into_iter().map(|h| h.join().unwrap().results.into_iter().next().unwrap().outcome).collect();
    let n_applied = outcomes.iter().filter(|o| matches!(o, Outcome::Applied { .. })).count();
    let n_conflict = outcomes.iter().filter(|o| matches!(o, Outcome::Conflict { .. })).count();
    assert_eq!((n_applied, n_conflict), (1, 7), "{outcomes:?}");
}

#[test]
fn restart_keeps_idempotency_and_sessions() {
    let mut server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    let batch: Vec<_> = (0..50).map(|i| upsert("activity", &format!("r{i}"), 0, json!({"i": i}))).collect();
    let first = client.push(&batch);
    let url = server.url();

    server.kill(); // crash, not a clean stop
    server.restart();
    assert_eq!(server.url(), url, "same address after restart");

    // The access token is still valid: the signing secret lives in the DB.
    let again = client.push(&batch);
    for (a, b) in first.results.iter().zip(&again.results) {
        let (version, seq, server_time) = applied(&a.outcome);
        assert_eq!(b.outcome, Outcome::Duplicate { version, seq, server_time });
    }
    let stats = server.stats();
    assert_eq!(stats["mutations_applied"], 50);
    assert_eq!(stats["mutations_duplicate"], 50);
    assert_eq!(stats["records"]["activity"], 50);

    // Versions and sequence continue where they were.
    let res = client.push(&[patch("activity", "r0", 1, json!({"i": -1}))]);
    let (version, seq, _) = applied(&res.results[0].outcome);
    assert_eq!(version, 2);
    assert_eq!(seq, 51);
}

#[test]
fn empty_batch_is_fine() {
    let server = TestServer::start();
    server.add_user("ann", "red", "pw");
    let client = server.login("ann", "pw");
    let res = client.push(&[]);
    assert!(res.results.is_empty());
    assert!(res.server_time > 0);
}
