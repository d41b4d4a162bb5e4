//! Organisations: users of one org share records; other orgs see nothing.

use ferry_e2e::server::{patch, upsert, TestServer};
use ferry_protocol::Outcome;
use serde_json::json;

#[test]
fn one_org_shares_and_another_can_neither_read_nor_write() {
    let server = TestServer::start();
    server.add_user("coordinator", "red", "pw1");
    server.add_user("mentor", "red", "pw2");
    server.add_user("outsider", "blue", "pw3");
    let coord = server.login("coordinator", "pw1");
    let mentor = server.login("mentor", "pw2");
    let outsider = server.login("outsider", "pw3");
    assert_eq!(outsider.tokens.as_ref().unwrap().org, "blue");

    // The mentor registers an activity; the coordinator sees and edits it.
    let create = upsert("activity", "a1", 0, json!({"title": "Visit", "secret": "red-only"}));
    mentor.push(std::slice::from_ref(&create));
    let (seen, _) = coord.pull_all(0);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].edited_by, "mentor");
    let res = coord.push(&[patch("activity", "a1", 1, json!({"approved": true}))]);
    assert!(matches!(res.results[0].outcome, Outcome::Applied { version: 2, .. }));
    let back = mentor.get("/v1/records/activity/a1").body;
    assert_eq!(back["version"], 2);
    assert_eq!(back["edited_by"], "coordinator");

    // The outsider sees nothing of it.
    let (outside_view, cursor) = outsider.pull_all(0);
    assert!(outside_view.is_empty());
    assert_eq!(cursor, 0);
    outsider.get("/v1/records/activity/a1").assert_error(404, "not_found");

    // Writing the same key creates the outsider's own record...
    let res = outsider.push(&[upsert("activity", "a1", 0, json!({"title": "Blue's"}))]);
    assert!(matches!(res.results[0].outcome, Outcome::Applied { version: 1, .. }));
    // ...patching it with red's version conflicts with blue's record only...
    let res = outsider.push(&[patch("activity", "a1", 2, json!({"x": 1}))]);
    match &res.results[0].outcome {
        Outcome::Conflict { current } => {
            assert_eq!(current.version, 1);
            assert_eq!(current.edited_by, "outsider");
            let data = serde_json::to_string(&current.data).unwrap();
            assert!(!data.contains("red-only"), "conflict leaked another org's data: {data}");
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    // ...and reusing red's mutation id is a new mutation in blue, not a
    // duplicate that would reveal red's version and sequence.
    let mut replay = create.clone();
    replay.record_id = "a2".into();
    let res = outsider.push(&[replay]);
    assert!(matches!(res.results[0].outcome, Outcome::Applied { version: 1, .. }));
    // Patching a record only red has: not found in blue.
    let res = outsider.push(&[patch("activity", "only-red", 1, json!({}))]);
    assert!(matches!(res.results[0].outcome, Outcome::Rejected { .. }));

    // Red's record is untouched and red does not see blue's records.
    let red = coord.get("/v1/records/activity/a1").body;
    assert_eq!(red["version"], 2);
    assert_eq!(red["data"]["secret"], "red-only");
    let (red_view, _) = coord.pull_all(0);
    assert_eq!(red_view.len(), 1);
    let (blue_view, _) = outsider.pull_all(0);
    assert_eq!(blue_view.len(), 2);
    assert!(blue_view.iter().all(|r| r.edited_by == "outsider"));

    // The operator's dump shows both, separately.
    let dump = server.dump();
    let keys: Vec<_> = dump
        .iter()
        .map(|r| {
            format!(
                "{}/{}/{}",
                r["org"].as_str().unwrap(),
                r["entity"].as_str().unwrap(),
                r["record_id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(keys, ["blue/activity/a1", "blue/activity/a2", "red/activity/a1"]);
    let only_red = server.cli(&["dump", "--org", "red"], None);
    assert_eq!(String::from_utf8(only_red.stdout).unwrap().lines().count(), 1);
}
