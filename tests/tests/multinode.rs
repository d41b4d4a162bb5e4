//! Several `ferry-server` nodes on one PostgreSQL database, behind HAProxy:
//! one consistent server whichever node a request reaches.
//!
//! Needs `FERRY_TEST_PG_URL` (scripts/test.sh starts a throwaway cluster);
//! skipped without it unless `FERRY_REQUIRE_POSTGRES=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ferry_e2e::cluster::{postgres_available, TestCluster};
use ferry_e2e::ferry::{wait_for, Ferry};
use ferry_e2e::pg::{Backend, TestDb};
use ferry_e2e::server::{upsert, Client, TestServer};
use ferry_protocol::{Outcome, TokenResponse};
use serde_json::json;

macro_rules! needs_postgres {
    () => {
        if !postgres_available() {
            return;
        }
    };
}

fn node_client(c: &TestCluster, i: usize, tokens: &TokenResponse) -> Client {
    let mut client = c.node(i).client();
    client.tokens = Some(tokens.clone());
    client
}

#[test]
fn a_token_issued_on_one_node_is_accepted_and_refreshed_on_the_others() {
    needs_postgres!();
    let c = TestCluster::start(3);
    c.add_user("ann", "red", "pw");
    let tokens = c.node(0).login("ann", "pw").tokens.clone().unwrap();
    // The signing key is the database's: node 1 accepts node 0's token.
    let on1 = node_client(&c, 1, &tokens);
    let pushed = on1.push(&[upsert("activity", "a1", 0, json!({"title": "Walk"}))]);
    assert!(matches!(pushed.results[0].outcome, Outcome::Applied { .. }));
    // Node 2 rotates the refresh token node 0 issued…
    let refreshed = c.node(2).client().refresh(&tokens.refresh_token);
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let next: TokenResponse = refreshed.json();
    // …and the new access token works on node 0.
    let on0 = node_client(&c, 0, &next);
    assert_eq!(on0.get("/v1/records/activity/a1").body["data"]["title"], "Walk");
}

#[test]
fn refresh_token_reuse_is_detected_across_nodes() {
    needs_postgres!();
    let c = TestCluster::start(3);
    c.add_user("ann", "red", "pw");
    let t1 = c.node(0).login("ann", "pw").tokens.clone().unwrap();
    let t2: TokenResponse = c.node(1).client().refresh(&t1.refresh_token).json();
    let _t3: TokenResponse = c.node(2).client().refresh(&t2.refresh_token).json();
    // t1 again, on yet another node, after its successor was used: reuse.
    c.node(0).client().refresh(&t1.refresh_token).assert_error(401, "invalid_refresh_token");
    // The whole family is revoked, seen from every node.
    for i in 0..3 {
        c.node(i).client().refresh(&t2.refresh_token).assert_error(401, "invalid_refresh_token");
    }
    assert!(c.node(1).log().contains("reuse") || c.node(0).log().contains("reused"), "{}", c.logs());
}

#[test]
fn the_same_refresh_token_on_two_nodes_at_once_rotates_once() {
    needs_postgres!();
    let c = TestCluster::start(2);
    c.add_user("ann", "red", "pw");
    for _ in 0..10 {
        let t = c.node(0).login("ann", "pw").tokens.clone().unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let answers: Vec<u16> = thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let (client, token, barrier) = (c.node(i).client(), t.refresh_token.clone(), barrier.clone());
                    s.spawn(move || {
                        barrier.wait();
                        client.refresh(&token).status
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // One rotation; the other is either the grace retry (a new pair in
        // the same family, the first one's successor superseded) — both 200 —
        // never two independent live chains from one token. Either way the
        // family has at most one live token afterwards.
        assert!(answers.contains(&200), "{answers:?}");
        let live = c.db().pg_query(
            "SELECT count(*)::text FROM refresh_tokens WHERE family = \
             (SELECT family FROM refresh_tokens ORDER BY id DESC LIMIT 1) AND revoked = 0 AND NOT used",
        );
        assert_eq!(live[0][0].as_deref(), Some("1"), "one live token in the family; answers {answers:?}");
    }
}

#[test]
fn the_same_mutation_pushed_to_two_nodes_at_once_is_applied_once() {
    needs_postgres!();
    let c = TestCluster::start(2);
    c.add_user("ann", "red", "pw");
    let tokens = c.node(0).login("ann", "pw").tokens.clone().unwrap();
    let clients = [node_client(&c, 0, &tokens), node_client(&c, 1, &tokens)];
    let rounds = 20;
    for round in 0..rounds {
        let batch: Vec<_> = (0..50).map(|i| upsert("activity", &format!("r{round}-{i}"), 0, json!({"i": i}))).collect();
        let barrier = Barrier::new(2);
        let answers: Vec<_> = thread::scope(|s| {
            let hs: Vec<_> = clients
                .iter()
                .map(|client| {
                    let (batch, barrier) = (&batch, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        client.push(batch)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for i in 0..batch.len() {
            let (a, b) = (&answers[0].results[i].outcome, &answers[1].results[i].outcome);
            match (a, b) {
                (
                    Outcome::Applied { version, seq, server_time },
                    Outcome::Duplicate { version: v, seq: s, server_time: t },
                )
                | (
                    Outcome::Duplicate { version: v, seq: s, server_time: t },
                    Outcome::Applied { version, seq, server_time },
                ) => {
                    assert_eq!((version, seq, server_time), (v, s, t), "the duplicate carries the original result");
                }
                other => panic!("round {round}, mutation {i}: expected one applied and one duplicate, got {other:?}"),
            }
        }
    }
    let stats = c.stats();
    assert_eq!(stats["mutations_applied"], rounds * 50);
    assert_eq!(stats["distinct_applied_ids"], rounds * 50);
    assert_eq!(stats["mutations_duplicate"], rounds * 50);
}

#[test]
fn two_nodes_never_both_apply_an_edit_on_the_same_base_version() {
    needs_postgres!();
    let c = TestCluster::start(2);
    c.add_user("ann", "red", "pw");
    c.add_user("bob", "red", "pw");
    let ann = c.node(0).login("ann", "pw");
    let bob = c.node(1).login("bob", "pw");
    ann.push(&[upsert("activity", "shared", 0, json!({"n": 0}))]);
    for round in 1..=20u64 {
        let barrier = Barrier::new(2);
        let outcomes: Vec<Outcome> = thread::scope(|s| {
            let hs: Vec<_> = [(&ann, "ann"), (&bob, "bob")]
                .into_iter()
                .map(|(client, who)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        // Both edit the version they last saw: round.
                        let m = upsert("activity", "shared", round, json!({"by": who, "round": round}));
                        barrier.wait();
                        client.push(&[m]).results.remove(0).outcome
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let applied = outcomes.iter().filter(|o| matches!(o, Outcome::Applied { .. })).count();
        let conflicts = outcomes.iter().filter(|o| matches!(o, Outcome::Conflict { .. })).count();
        assert_eq!((applied, conflicts), (1, 1), "round {round}: {outcomes:?}");
    }
    assert_eq!(ann.get("/v1/records/activity/shared").body["version"], 21);
}

/// The reason the pull cursor needs a sound scheme: a batch that takes its
/// seq and is slow to commit must not be overtaken by one that takes a
/// later seq and commits first, or a client that pulls in between moves its
/// cursor past the slow one's change and never sees it. Node 0 holds every
/// batch 400 ms before committing (`FERRY_SERVER_TEST_COMMIT_DELAY_MS`);
/// node 1 does not; a client pulls from node 1 all the while. With a plain
/// sequence (each batch takes nextval and commits when done) this loses
/// the slow changes; with the organisation's lock, the fast batch waits.
#[test]
fn a_pull_never_skips_a_change_committed_late_on_another_node() {
    needs_postgres!();
    let db = Arc::new(TestDb::on(&Backend::Postgres { admin_url: ferry_e2e::pg::pg_admin_url() }));
    let slow = TestServer::start_on(db.clone(), &[], &[("FERRY_SERVER_TEST_COMMIT_DELAY_MS", "400")]);
    let fast = TestServer::start_on(db.clone(), &[], &[]);
    slow.add_user("ann", "red", "pw");
    let tokens = slow.login("ann", "pw").tokens.clone().unwrap();
    let mut on_slow = slow.client();
    on_slow.tokens = Some(tokens.clone());
    let mut on_fast = fast.client();
    on_fast.tokens = Some(tokens.clone());
    let mut puller = fast.client();
    puller.tokens = Some(tokens);

    let rounds = 6;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen: BTreeSet<String> = thread::scope(|s| {
        let pulling = s.spawn(|| {
            let mut cursor = 0;
            let mut seen = BTreeSet::new();
            loop {
                let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                let (changes, next) = puller.pull_all(cursor);
                cursor = next;
                seen.extend(changes.into_iter().map(|c| c.record_id));
                if done {
                    return seen;
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
        for round in 0..rounds {
            thread::scope(|s2| {
                s2.spawn(|| on_slow.push(&[upsert("activity", &format!("slow{round}"), 0, json!({}))]));
                thread::sleep(Duration::from_millis(100));
                s2.spawn(|| on_fast.push(&[upsert("activity", &format!("fast{round}"), 0, json!({}))]));
            });
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        pulling.join().unwrap()
    });
    let expected: BTreeSet<String> = (0..rounds).flat_map(|r| [format!("slow{r}"), format!("fast{r}")]).collect();
    let missed: Vec<_> = expected.difference(&seen).collect();
    assert!(missed.is_empty(), "the incremental puller never saw {missed:?} (a cursor skipped them)");
}

#[test]
fn the_load_balancer_spreads_requests_over_every_node() {
    needs_postgres!();
    let c = TestCluster::start(3);
    c.add_user("ann", "red", "pw");
    let mut client = c.client();
    client.login("ann", "pw");
    for i in 0..30 {
        client.push(&[upsert("activity", &format!("a{i}"), 0, json!({}))]);
    }
    for i in 0..3 {
        let pushes = c.node(i).log().matches("\"push\"").count() + c.node(i).log().matches(" push").count();
        assert!(pushes >= 5, "node {i} served {pushes} of 30 pushes; logs:\n{}", c.logs());
    }
}

/// PostgreSQL refuses the nodes' connections (every session ended, new ones
/// over the database's limit): requests answer 503 with Retry-After within
/// the pool's deadline instead of hanging, nothing is half-applied, and the
/// nodes recover by themselves when the database takes connections again.
#[test]
fn a_database_gone_is_answered_503_and_the_nodes_recover() {
    needs_postgres!();
    let c = TestCluster::start(2);
    c.add_user("ann", "red", "pw");
    let tokens = c.node(0).login("ann", "pw").tokens.clone().unwrap();
    let client = node_client(&c, 1, &tokens);
    client.push(&[upsert("activity", "before", 0, json!({}))]);
    let db_name = c.db().pg_query("SELECT current_database()")[0][0].clone().unwrap();
    let admin = ferry_e2e::pg::pg_admin_url();
    ferry_e2e::pg::admin_sql(
        &admin,
        &format!(
            "ALTER DATABASE {db_name} WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db_name}' AND pid <> pg_backend_pid();"
        ),
    );
    for i in 0..2 {
        let client = node_client(&c, i, &tokens);
        let t = Instant::now();
        let r = client.try_push(&[upsert("activity", &format!("during{i}"), 0, json!({}))]);
        let took = t.elapsed();
        assert_eq!(r.status, 503, "{}; logs:\n{}", r.body, c.logs());
        r.assert_error(503, "unavailable");
        assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
        assert!(took < Duration::from_secs(20), "answered after {took:?}: it should not hang");
    }
    ferry_e2e::pg::admin_sql(&admin, &format!("ALTER DATABASE {db_name} WITH ALLOW_CONNECTIONS true"));
    let r = wait_for(Duration::from_secs(30), "the nodes to recover", || {
        let r = client.try_push(&[upsert("activity", "after", 0, json!({}))]);
        (r.status == 200).then_some(r)
    });
    assert_eq!(r.status, 200);
    let stats = c.stats();
    assert_eq!(stats["mutations_applied"], 2, "only the pushes answered 200 were applied: {stats}");
    assert_eq!(stats["distinct_applied_ids"], 2);
    let (changes, _) = client.pull_all(0);
    let ids: BTreeSet<_> = changes.iter().map(|c| c.record_id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["before", "after"]));
}

/// `ferry-server copy` moves a SQLite installation to PostgreSQL; clients
/// keep syncing against nodes on it without signing in again, without
/// uploading anything twice, and with their cursors still valid.
#[test]
fn copy_from_sqlite_then_clients_simply_keep_syncing() {
    needs_postgres!();
    let mut old = TestServer::start_on(Arc::new(TestDb::on(&Backend::Sqlite)), &[], &[]);
    old.add_user("ann", "red", "pw");
    old.add_user("bob", "red", "pw");
    old.add_user("eve", "blue", "pw");
    let (a, b, e) = (Ferry::new(), Ferry::new(), Ferry::new());
    a.connect(&old.url(), "ann", "pw");
    b.connect(&old.url(), "bob", "pw");
    e.connect(&old.url(), "eve", "pw");
    for i in 0..20 {
        a.put("activity", &format!("a{i}"), &json!({"title": format!("A{i}")}));
    }
    b.put("expense", "x1", &json!({"amount": 10}));
    e.put("activity", "blue1", &json!({"title": "other org"}));
    for f in [&a, &b, &e, &a, &b] {
        f.sync().ok();
    }
    assert_eq!(b.get("activity", "a7").unwrap()["title"], "A7");
    let before = old.stats();
    // Changes queued while the server is down for the move.
    old.terminate();
    a.patch("activity", "a3", &json!({"title": "edited during the move"}));

    let pg = Arc::new(TestDb::on(&Backend::Postgres { admin_url: ferry_e2e::pg::pg_admin_url() }));
    let out = ferry_e2e::server::run_cli(
        old.db_path(),
        &["copy", "--from", old.db_path().to_str().unwrap(), "--to", pg.arg()],
        None,
    );
    assert!(out.status.success(), "copy failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["users"], 3);
    assert_eq!(report["records"], 22);
    assert_eq!(report["applied_mutations"], before["distinct_applied_ids"]);
    // Copying again into a database that holds data is refused.
    let again = ferry_e2e::server::run_cli(
        old.db_path(),
        &["copy", "--from", old.db_path().to_str().unwrap(), "--to", pg.arg()],
        None,
    );
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // The new server takes the old one's address; a second node joins.
    let port = old.port();
    drop(old);
    let new = TestServer::start_on_port(pg.clone(), port, &[]);
    let _second = TestServer::start_on(pg.clone(), &[], &[]);
    assert_eq!(new.stats()["mutations_applied"], before["mutations_applied"]);
    for f in [&a, &b, &e] {
        let r = f.sync();
        assert_eq!(r.code, 0, "sync after the move: {}", r.stderr);
        assert_ne!(f.status()["state"], "needs-sign-in", "no sign-in needed: {}", f.status());
    }
    b.sync().ok();
    assert_eq!(b.get("activity", "a3").unwrap()["title"], "edited during the move");
    let after = new.stats();
    assert_eq!(after["mutations_applied"], before["mutations_applied"].as_u64().unwrap() + 1, "{after}");
    assert_eq!(after["distinct_applied_ids"], after["mutations_applied"], "nothing applied twice");
    // Organisations stay apart.
    assert!(e.get("activity", "a1").is_none());
    let blue: BTreeMap<String, serde_json::Value> =
        new.dump().into_iter().filter(|r| r["org"] == "blue").map(|r| (r["record_id"].to_string(), r)).collect();
    assert_eq!(blue.len(), 1);
}
