//! The same tests against every backend: a SQLite file always, and a
//! fresh PostgreSQL database when `FERRY_TEST_PG_URL` names a cluster
//! (scripts/test.sh starts one; `FERRY_REQUIRE_POSTGRES=1` makes its
//! absence a failure instead of a skip).

use std::sync::Arc;

use ferry_protocol::{Mutation, Op, Outcome};
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::auth::refresh::{self, REUSE_GRACE_MS};

struct Backend {
    name: &'static str,
    storage: Arc<dyn Storage>,
    _dir: Option<tempfile::TempDir>,
    pg_db: Option<(String, String)>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some((admin, db)) = self.pg_db.take() {
            drop_pg_database(&admin, &db);
        }
    }
}

fn pg_admin_url() -> Option<String> {
    match std::env::var("FERRY_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("FERRY_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FERRY_REQUIRE_POSTGRES=1 but FERRY_TEST_PG_URL is not set: start a cluster with scripts/pg-test-cluster.sh"
            );
            eprintln!("FERRY_TEST_PG_URL not set: PostgreSQL backend not tested here");
            None
        }
    }
}

/// `postgres://…/postgres` → `postgres://…/NAME`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn admin_exec(admin: &str, sql: &str) {
    let (client, conn) =
        tokio_postgres::connect(admin, tokio_postgres::NoTls).await.expect("connect to the test cluster");
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    drop(client);
    let _ = task.await;
}

fn drop_pg_database(admin: &str, db: &str) {
    let (admin, sql) = (admin.to_owned(), format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    // Drop runs outside any runtime (tests own theirs): a small one here.
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(admin_exec(&admin, &sql))
    })
    .join();
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = super::open(&DbLocation::Sqlite(dir.path().join("s.db"))).await.unwrap();
    let mut out = vec![Backend { name: "sqlite", storage: sqlite, _dir: Some(dir), pg_db: None }];
    if let Some(admin) = pg_admin_url() {
        let db = format!("ferry_unit_{}", Uuid::new_v4().simple());
        admin_exec(&admin, &format!("CREATE DATABASE {db}")).await;
        let storage = super::open(&DbLocation::Postgres(with_database(&admin, &db))).await.unwrap();
        out.push(Backend { name: "postgres", storage, _dir: None, pg_db: Some((admin, db)) });
    }
    out
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn upsert(record_id: &str, base: u64) -> Mutation {
    Mutation {
        id: Uuid::new_v4(),
        entity: "activity".into(),
        record_id: record_id.into(),
        op: Op::Upsert,
        payload: json!({"title": record_id}).as_object().cloned(),
        base_version: base,
        edited_at: 1,
    }
}

fn token(now: i64) -> (Vec<u8>, refresh::NewToken) {
    let (_, hash) = refresh::generate();
    (hash.clone(), refresh::NewToken { hash, expires_at: now + 10_000_000, created_at: now })
}

fn user(name: &str, org: &str) -> User {
    User {
        name: name.into(),
        org: org.into(),
        password_hash: "$argon2id$x".into(),
        created_at: 1,
        disabled_at: None,
        session_epoch: 1,
    }
}

#[test]
fn users_and_the_signing_secret() {
    runtime().block_on(async {
        for b in backends().await {
            let s = &b.storage;
            s.add_user(&user("ann", "org1")).await.unwrap();
            assert!(matches!(s.add_user(&user("ann", "org2")).await, Err(crate::Error::UserExists(_))), "{}", b.name);
            assert_eq!(s.find_user("ann").await.unwrap().unwrap().org, "org1");
            assert!(s.find_user("nobody").await.unwrap().is_none());
            let secret = s.signing_secret().await.unwrap();
            assert_eq!(secret.len(), 32);
            assert_eq!(s.signing_secret().await.unwrap(), secret, "{}: stable", b.name);
        }
    });
}

/// Offboarding: disable, enable, a new password and removal each end the
/// user's sessions in one step, on every backend.
#[test]
fn disabling_and_removing_users_end_their_sessions() {
    runtime().block_on(async {
        for b in backends().await {
            let s = &b.storage;
            s.add_user(&user("ann", "org1")).await.unwrap();
            s.add_user(&user("bob", "org1")).await.unwrap();
            let (h1, t1) = token(0);
            s.store_refresh_token("f-ann", "ann", &t1).await.unwrap();
            let (hb, tb) = token(0);
            s.store_refresh_token("f-bob", "bob", &tb).await.unwrap();

            assert!(s.set_user_disabled("ann", Some(50)).await.unwrap());
            assert!(!s.set_user_disabled("nobody", Some(50)).await.unwrap(), "{}", b.name);
            let ann = s.find_user("ann").await.unwrap().unwrap();
            assert_eq!((ann.disabled_at, ann.session_epoch), (Some(50), 2), "{}", b.name);
            // Disabling twice keeps the first time (and ends any session
            // begun meanwhile again: epoch 3).
            s.set_user_disabled("ann", Some(70)).await.unwrap();
            assert_eq!(s.find_user("ann").await.unwrap().unwrap().disabled_at, Some(50), "{}", b.name);
            let (_, next) = token(100);
            let r = s.rotate_refresh_token(&h1, &next, 100).await.unwrap();
            assert_eq!(r, Rotation::Refused(RefreshFailure::Disabled), "{}", b.name);
            // A family started while disabled (a login racing the disable)
            // is refused as disabled.
            let (h2, t2) = token(100);
            s.store_refresh_token("f-ann2", "ann", &t2).await.unwrap();
            let (_, next) = token(100);
            let r = s.rotate_refresh_token(&h2, &next, 100).await.unwrap();
            assert_eq!(r, Rotation::Refused(RefreshFailure::Disabled), "{}", b.name);
            // Bob is untouched.
            let (_, next) = token(100);
            assert!(matches!(s.rotate_refresh_token(&hb, &next, 100).await.unwrap(), Rotation::Rotated { .. }));

            assert!(s.set_user_disabled("ann", None).await.unwrap());
            assert_eq!(s.find_user("ann").await.unwrap().unwrap().disabled_at, None, "{}", b.name);

            let (h3, t3) = token(200);
            s.store_refresh_token("f-ann3", "ann", &t3).await.unwrap();
            assert!(s.set_password("ann", "$argon2id$new").await.unwrap());
            let ann = s.find_user("ann").await.unwrap().unwrap();
            assert_eq!((ann.password_hash.as_str(), ann.session_epoch), ("$argon2id$new", 4), "{}", b.name);
            let (_, next) = token(300);
            assert_eq!(
                s.rotate_refresh_token(&h3, &next, 300).await.unwrap(),
                Rotation::Refused(RefreshFailure::Invalid)
            );

            let names: Vec<_> = s.list_users().await.unwrap().into_iter().map(|u| u.name).collect();
            assert_eq!(names, ["ann", "bob"], "{}", b.name);
            s.push("org1", "ann", vec![upsert("a", 0)], &Rules::max_payload(262144), 400).await.unwrap();
            assert!(s.remove_user("ann").await.unwrap());
            assert!(!s.remove_user("ann").await.unwrap(), "{}", b.name);
            assert!(s.find_user("ann").await.unwrap().is_none());
            // Her records stay, still hers.
            assert_eq!(s.record("org1", "activity", "a").await.unwrap().unwrap().edited_by, "ann", "{}", b.name);
        }
    });
}

#[test]
fn login_failures_are_counted_per_key_and_forgotten() {
    runtime().block_on(async {
        for b in backends().await {
            let s = &b.storage;
            let keys = vec!["account:ann".to_owned(), "address:192.0.2.7".to_owned()];
            assert!(s.login_failures(&keys).await.unwrap().is_empty());
            for now in [10, 20, 30] {
                s.record_login_failure(&keys, now, 0).await.unwrap();
            }
            s.record_login_failure(&keys[1..], 40, 0).await.unwrap();
            let mut counts = s.login_failures(&keys).await.unwrap();
            counts.sort_by(|a, b| a.key.cmp(&b.key));
            let seen: Vec<_> = counts.iter().map(|c| (c.key.as_str(), c.failures, c.last_failure_at)).collect();
            assert_eq!(seen, [("account:ann", 3, 30), ("address:192.0.2.7", 4, 40)], "{}", b.name);
            s.clear_login_failures("account:ann").await.unwrap();
            assert_eq!(s.login_failures(&keys).await.unwrap().len(), 1, "{}", b.name);
            // Quiet since before `forget_before`: counted from one again.
            s.record_login_failure(&keys[1..], 1000, 500).await.unwrap();
            let counts = s.login_failures(&keys).await.unwrap();
            assert_eq!((counts[0].failures, counts[0].last_failure_at), (1, 1000), "{}", b.name);
        }
    });
}

#[test]
fn push_pull_idempotency_and_stats() {
    runtime().block_on(async {
        for b in backends().await {
            let s = &b.storage;
            let batch = vec![upsert("a", 0), upsert("b", 0), upsert("c", 0)];
            let first = s.push("org1", "ann", batch.clone(), &Rules::max_payload(262144), 10).await.unwrap();
            assert_eq!((first.seq_before, first.seq_after, first.tally.applied), (0, 3, 3), "{}", b.name);
            // The same ids again (a retry), and one in another organisation.
            let again = s.push("org1", "ann", batch.clone(), &Rules::max_payload(262144), 11).await.unwrap();
            assert_eq!(again.tally.duplicate, 3);
            for (r1, r2) in first.results.iter().zip(&again.results) {
                let Outcome::Applied { version, seq, server_time } = r1.outcome else { panic!() };
                assert_eq!(r2.outcome, Outcome::Duplicate { version, seq, server_time }, "{}", b.name);
            }
            s.push("org2", "bob", batch[..1].to_vec(), &Rules::max_payload(262144), 12).await.unwrap();
            // A stale base: a conflict showing the current record.
            let stale = s.push("org1", "ann", vec![upsert("a", 7)], &Rules::max_payload(262144), 13).await.unwrap();
            assert!(matches!(&stale.results[0].outcome, Outcome::Conflict { current } if current.version == 1));
            let st = s.stats().await.unwrap();
            assert_eq!(
                (st.mutations_applied, st.distinct_applied_ids, st.mutations_duplicate, st.conflicts),
                (4, 4, 3, 1),
                "{}",
                b.name
            );
            assert_eq!(st.records.get("activity"), Some(&4));

            // Pull pages org1 only, by seq.
            let p1 = s.pull("org1", 0, 2).await.unwrap();
            let ids: Vec<_> = p1.changes.iter().map(|c| c.record_id.as_str()).collect();
            assert_eq!((ids, p1.has_more), (vec!["a", "b"], true), "{}", b.name);
            let p2 = s.pull("org1", p1.cursor, 2).await.unwrap();
            assert_eq!(p2.changes.len(), 1);
            assert!(!p2.has_more);
            assert!(s.pull("org1", u64::MAX, 2).await.unwrap().changes.is_empty());
            assert_eq!(s.record("org1", "activity", "a").await.unwrap().unwrap().version, 1);
            assert!(s.record("org2", "activity", "b").await.unwrap().is_none());
            let dump = s.dump(None).await.unwrap();
            let keys: Vec<_> = dump.iter().map(|d| (d.org.as_str(), d.record.record_id.as_str())).collect();
            assert_eq!(keys, [("org1", "a"), ("org1", "b"), ("org1", "c"), ("org2", "a")], "{}", b.name);
        }
    });
}

/// Ported from the refresh rules' SQLite tests: rotation, reuse, the grace
/// window for a lost answer and theft, on every backend.
#[test]
fn refresh_families() {
    runtime().block_on(async {
        for b in backends().await {
            let s = &b.storage;
            s.add_user(&user("ann", "org1")).await.unwrap();
            let (h1, t1) = token(0);
            s.store_refresh_token("fam", "ann", &t1).await.unwrap();
            let rotate = |presented: Vec<u8>, now: i64| async move {
                let (h, t) = token(now);
                (s.rotate_refresh_token(&presented, &t, now).await.unwrap(), h)
            };
            let (r, h2) = rotate(h1.clone(), 1000).await;
            assert!(matches!(r, Rotation::Rotated { retried: false, .. }), "{}: {r:?}", b.name);
            // The answer carrying h2 was lost: a retry of h1 within the grace.
            let (r, h3) = rotate(h1.clone(), 1500).await;
            assert!(matches!(r, Rotation::Rotated { retried: true, .. }), "{}: {r:?}", b.name);
            // h2 was superseded: presenting it is theft and ends the family.
            let (r, _) = rotate(h2.clone(), 1600).await;
            assert_eq!(r, Rotation::Refused(RefreshFailure::Reused), "{}", b.name);
            let (r, _) = rotate(h3.clone(), 1700).await;
            assert_eq!(r, Rotation::Refused(RefreshFailure::Invalid), "{}: revoked with its family", b.name);

            // A new family: moving on makes the old token a replay.
            let (g1, t) = token(2000);
            s.store_refresh_token("gam", "ann", &t).await.unwrap();
            let (_, g2) = rotate(g1.clone(), 3000).await;
            let (r, _) = rotate(g2.clone(), 3500).await;
            assert!(matches!(r, Rotation::Rotated { .. }));
            let (r, _) = rotate(g1.clone(), 4000).await;
            assert_eq!(r, Rotation::Refused(RefreshFailure::Reused), "{}", b.name);

            // After the grace window a retry is reuse.
            let (k1, t) = token(5000);
            s.store_refresh_token("kam", "ann", &t).await.unwrap();
            let (_, k2) = rotate(k1.clone(), 6000).await;
            let (r, _) = rotate(k1.clone(), 6001 + REUSE_GRACE_MS).await;
            assert_eq!(r, Rotation::Refused(RefreshFailure::Reused));
            let (r, _) = rotate(k2, 6002 + REUSE_GRACE_MS).await;
            assert_eq!(r, Rotation::Refused(RefreshFailure::Invalid));

            // Logout revokes the family; unknown tokens are unknown.
            let (l1, t) = token(7000);
            s.store_refresh_token("lam", "ann", &t).await.unwrap();
            assert!(s.revoke_refresh_family(&l1).await.unwrap());
            assert!(!s.revoke_refresh_family(b"unknown").await.unwrap());
            let (r, _) = rotate(l1, 7001).await;
            assert_eq!(r, Rotation::Refused(RefreshFailure::Invalid), "{}", b.name);

            // Expired tokens are refused, then purged.
            let (e1, mut t) = token(0);
            t.expires_at = 100;
            s.store_refresh_token("eam", "ann", &t).await.unwrap();
            let (r, _) = rotate(e1, 100).await;
            assert_eq!(r, Rotation::Refused(RefreshFailure::Invalid));
            s.purge_refresh_tokens(101).await.unwrap();
        }
    });
}

/// Many concurrent batches of one organisation: every seq taken once, and
/// each batch's stretch of the sequence its own.
#[test]
fn concurrent_batches_of_one_organisation_take_distinct_seqs() {
    runtime().block_on(async {
        for b in backends().await {
            let mut tasks = Vec::new();
            for t in 0..8 {
                let s = b.storage.clone();
                tasks.push(tokio::spawn(async move {
                    let batch: Vec<_> = (0..20).map(|i| upsert(&format!("t{t}-{i}"), 0)).collect();
                    s.push("org1", "ann", batch, &Rules::max_payload(262144), 1).await.unwrap()
                }));
            }
            let mut seqs = Vec::new();
            for t in tasks {
                let out = t.await.unwrap();
                assert_eq!(out.seq_after - out.seq_before, 20, "{}: a batch's stretch is its own", b.name);
                for r in out.results {
                    let Outcome::Applied { seq, .. } = r.outcome else { panic!("{:?}", r.outcome) };
                    assert!(seq > out.seq_before && seq <= out.seq_after);
                    seqs.push(seq);
                }
            }
            seqs.sort();
            assert_eq!(seqs, (1..=160).collect::<Vec<u64>>(), "{}", b.name);
        }
    });
}

/// A database has one identity for its life; a restore mark starts a new
/// generation that remembers each organisation's newest change then.
#[test]
fn identity_heads_and_restore_marks() {
    runtime().block_on(async {
        for b in backends().await {
            let s = &b.storage;
            let first = s.database("org1").await.unwrap();
            assert_eq!((first.generation, first.head, first.restores.len()), (1, 0, 0), "{}", b.name);
            s.push("org1", "ann", vec![upsert("r1", 0), upsert("r2", 0)], &Rules::max_payload(1 << 20), 10)
                .await
                .unwrap();
            s.push("org2", "bob", vec![upsert("r1", 0)], &Rules::max_payload(1 << 20), 10).await.unwrap();
            let org1 = s.database("org1").await.unwrap();
            assert_eq!(org1.id, first.id, "{}: one identity", b.name);
            let head1 = org1.head;
            assert!(head1 >= 2, "{}: {org1:?}", b.name);
            assert_eq!(s.pull("org1", 0, 10).await.unwrap().cursor, head1, "{}: the head is the newest change", b.name);

            let generation = s.mark_restored(5_000).await.unwrap();
            let after = s.database("org1").await.unwrap();
            assert_eq!((after.id, after.generation), (first.id, generation), "{}", b.name);
            assert!(generation > first.generation);
            assert_eq!(after.restores.len(), 1);
            assert_eq!(after.restores[0].generation, generation);
            assert!(after.restores[0].seq >= head1, "{}: the fork covers org1's changes: {after:?}", b.name);
            // Pushes after the restore come after the fork.
            s.push("org1", "ann", vec![upsert("r3", 0)], &Rules::max_payload(1 << 20), 20).await.unwrap();
            let later = s.database("org1").await.unwrap();
            assert!(later.head > after.restores[0].seq, "{}: {later:?}", b.name);
            assert!(s.mark_restored(5_000).await.unwrap() > generation, "{}: never the same generation twice", b.name);
        }
    });
}
