//! Restoring a server from an older backup loses nothing clients were told
//! is uploaded: the restore starts a new generation, clients notice on
//! their next sync, pull everything again, and upload what the backup
//! lacks — once, whichever client gets there first. Real server processes,
//! real `ferry` clients, a real backup (SQLite: `ferry-server backup` /
//! `restore`; PostgreSQL: pg_dump / pg_restore and `mark-restored`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use ferry_e2e::ferry::Ferry;
use ferry_e2e::proxy::{Fault, FaultProxy};
use ferry_e2e::server::{mutation, TestServer};
use ferry_protocol::{Op, PushRequest};
use serde_json::{json, Value};

/// Live records on the server: id → fields (`None`: a tombstone).
fn server_records(server: &TestServer) -> BTreeMap<String, Option<Value>> {
    server
        .dump()
        .into_iter()
        .map(|r| {
            let id = r["record_id"].as_str().unwrap().to_owned();
            let data = if r["deleted"].as_bool().unwrap() { None } else { Some(r["data"].clone()) };
            (id, data)
        })
        .collect()
}

/// A client's live records of `activity`: id → fields.
fn client_records(client: &Ferry) -> BTreeMap<String, Value> {
    let list = client.list("activity");
    list.as_array()
        .expect("list --json is an array")
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["data"].clone()))
        .collect()
}

fn live(records: &BTreeMap<String, Option<Value>>) -> BTreeMap<String, Value> {
    records.iter().filter_map(|(id, d)| d.clone().map(|d| (id.clone(), d))).collect()
}

fn applied(server: &TestServer) -> u64 {
    server.stats()["mutations_applied"].as_u64().unwrap()
}

fn back_up(server: &TestServer, file: &Path) {
    if server.db().is_postgres() {
        run(Command::new("pg_dump").args(["--format=custom", "--file"]).arg(file).arg(server.db_arg()));
    } else {
        let out = server.cli(&["backup", "--to", file.to_str().unwrap()], None);
        assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    }
}

fn restore(server: &TestServer, file: &Path) {
    if server.db().is_postgres() {
        run(Command::new("pg_restore")
            .args(["--clean", "--if-exists", "--no-owner", "--dbname"])
            .arg(server.db_arg())
            .arg(file));
        let out = server.cli(&["mark-restored"], None);
        assert!(out.status.success(), "mark-restored: {}", String::from_utf8_lossy(&out.stderr));
    } else {
        let out = server.cli(&["restore", "--from", file.to_str().unwrap()], None);
        assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let kept = report["replaced"].as_str().expect("the replaced database is kept");
        assert!(Path::new(kept).exists(), "{kept} was set aside, not deleted");
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a PostgreSQL tool");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn sync_ok(client: &Ferry, who: &str) {
    let r = client.sync();
    assert_eq!(r.code, 0, "{who}'s sync failed: {}", r.stderr);
}

#[test]
fn after_a_restore_clients_upload_what_the_backup_lacks_once_and_converge() {
    // Ann's backlog goes up in batches of BATCH, DEPTH of them out at once.
    const BATCH: usize = 20;
    const DEPTH: usize = 3;
    let mut server = TestServer::start();
    server.add_user("ann", "north", "pw-ann");
    server.add_user("bob", "north", "pw-bob");
    // Ann goes through a proxy that can slow her down, in small batches,
    // so her big upload below is many pushes that take a while.
    let proxy = FaultProxy::start(&server.url());
    let ann =
        Ferry::new().with_env("FERRY_BATCH_MAX", &BATCH.to_string()).with_env("FERRY_PUSH_DEPTH", &DEPTH.to_string());
    let bob = Ferry::new();
    ann.connect(&proxy.url(), "ann", "pw-ann");
    bob.connect(&server.url(), "bob", "pw-bob");

    // Before the backup: both have registered activities, all uploaded.
    for i in 1..=6 {
        ann.put("activity", &format!("a{i}"), &json!({"title": format!("visit {i}"), "by": "ann"}));
    }
    bob.put("activity", "b1", &json!({"title": "call", "by": "bob"}));
    for c in [&ann, &bob, &ann] {
        sync_ok(c, "a client");
    }

    // The backup is taken while ann uploads a long backlog: pushes go on
    // meanwhile, and the copy holds some of it.
    let dir = tempfile::tempdir().unwrap();
    let backlog = dir.path().join("backlog.jsonl");
    let lines: Vec<String> = (0..600)
        .map(|i| {
            json!({"entity": "activity", "id": format!("bulk-{i:04}"), "data": {"title": "visit", "n": i}}).to_string()
        })
        .collect();
    std::fs::write(&backlog, lines.join("\n")).unwrap();
    ann.run(&["import", backlog.to_str().unwrap()]).ok();
    let backup = dir.path().join("backup");
    let uploaded = || server.stats()["mutations_applied"].as_u64().unwrap();
    let before_backlog = uploaded();
    proxy.set(Fault::Delay(std::time::Duration::from_millis(40)));
    std::thread::scope(|scope| {
        let upload = scope.spawn(|| ann.sync());
        ferry_e2e::ferry::wait_for(std::time::Duration::from_secs(60), "part of the backlog uploaded", || {
            (uploaded() > before_backlog + 100).then_some(())
        });
        back_up(&server, &backup);
        let r = upload.join().unwrap();
        assert_eq!(r.code, 0, "the upload during the backup failed: {}", r.stderr);
    });
    proxy.set(Fault::Pass);
    assert_eq!(uploaded() - before_backlog, 600, "the whole backlog was uploaded");

    // After it, acknowledged work of both that the backup will not have:
    // new records, an edit, a deletion.
    for i in 7..=9 {
        ann.put("activity", &format!("a{i}"), &json!({"title": format!("visit {i}"), "by": "ann"}));
    }
    ann.patch("activity", "a1", &json!({"hours": 2}));
    ann.delete("activity", "a2");
    bob.put("activity", "b2", &json!({"title": "meeting", "by": "bob"}));
    bob.patch("activity", "b1", &json!({"title": "long call"}));
    for c in [&ann, &bob, &ann] {
        sync_ok(c, "a client");
    }
    let before_restore = server_records(&server);
    assert_eq!(client_records(&ann), live(&before_restore));
    assert_eq!(client_records(&bob), live(&before_restore));
    let raw = server.login("ann", "pw-ann");
    let seen = raw.pull(0, 1).database.expect("the server names its database");
    // And one edit still queued on ann's laptop, made on a version the
    // backup lacks.
    ann.patch("activity", "a1", &json!({"place": "Bodø"}));
    ann.put("activity", "a10", &json!({"title": "visit 10", "by": "ann"}));

    // Disaster: the server goes back to the backup.
    server.terminate();
    restore(&server, &backup);
    server.restart();
    let at_backup = server_records(&server);
    let lost: Vec<&String> = before_restore.keys().filter(|id| at_backup.get(*id) != before_restore.get(*id)).collect();
    let bulk_in_backup = at_backup.keys().filter(|id| id.starts_with("bulk-")).count();
    eprintln!("the backup holds {bulk_in_backup} of the 600 backlog records; {} records lost", lost.len());
    assert!(bulk_in_backup < 600, "the backup was taken while the backlog was uploading");
    // The copy is the server as it was at one moment: the original a1, b1,
    // a2 (changed later), and the backlog uploaded in order up to a point —
    // give or take the batches that were out at once: pipelined pushes may
    // commit in another order than they were sent (one transaction each).
    assert_eq!(at_backup["a1"], Some(json!({"title": "visit 1", "by": "ann"})));
    assert_eq!(at_backup["a2"], Some(json!({"title": "visit 2", "by": "ann"})));
    assert_eq!(at_backup["b1"], Some(json!({"title": "call", "by": "bob"})));
    let held: Vec<bool> = (0..600).map(|i| at_backup.contains_key(&format!("bulk-{i:04}"))).collect();
    let first_missing = held.iter().position(|h| !h).unwrap();
    let last_held = held.iter().rposition(|h| *h).unwrap_or(0);
    assert!(
        last_held < first_missing + DEPTH * BATCH,
        "past the first missing record ({first_missing}) only batches that were out with it: the last held is {last_held}"
    );
    for id in ["a7", "a8", "a9", "a1", "a2", "b1", "b2"] {
        assert!(lost.contains(&&id.to_string()), "{id} changed after the backup");
    }
    let applied_at_restore = applied(&server);
    // A push made on what the client saw before is refused whole, saying
    // why; one naming the database as it is now goes through.
    let now = server.login("ann", "pw-ann").pull(0, 1).database.expect("the server names its database");
    assert_eq!(now.id, seen.id, "a restore keeps the database's identity");
    assert!(now.generation > seen.generation, "and starts a new generation: {seen:?} -> {now:?}");
    assert!(now.head < seen.head, "the server went back: {seen:?} -> {now:?}");
    let probe = vec![mutation(Op::Upsert, "probe", "p1", 0, Some(json!({"n": 1})))];
    let refused =
        raw.post_json("/v1/push", &PushRequest { mutations: probe.clone(), database: Some(seen.reference()) });
    refused.assert_error(409, "database_changed");
    assert!(refused.message().contains("restored from a backup"), "{}", refused.message());
    assert_eq!(applied(&server), applied_at_restore, "nothing of a refused push is applied");

    // Bob comes first: he holds ann's lost records too and uploads them;
    // ann then finds her copies there and uploads only what is hers alone.
    for c in [&bob, &ann, &bob, &ann] {
        sync_ok(c, "a client after the restore");
    }
    let after = server_records(&server);
    let mut expected = live(&before_restore);
    expected.insert("a1".into(), json!({"title": "visit 1", "by": "ann", "hours": 2, "place": "Bodø"}));
    expected.insert("a10".into(), json!({"title": "visit 10", "by": "ann"}));
    assert_eq!(live(&after), expected, "every record a client holds is on the server at its newest content");
    assert_eq!(after.get("a2"), Some(&None), "the lost deletion is on the server again");
    assert_eq!(client_records(&ann), expected, "ann converged");
    assert_eq!(client_records(&bob), expected, "bob converged");
    for (who, c) in [("ann", &ann), ("bob", &bob)] {
        let status = c.status();
        assert_eq!(status["pending"], 0, "{who}: {status}");
        assert_eq!(status["failed"], 0, "{who}: {status}");
        assert_eq!(status["conflicts"], 0, "{who}: {status}");
    }

    // Nothing doubled: the server applied exactly one mutation per lost
    // record (the backlog past the backup, a7-a9, a1's edit, a2's
    // deletion, b2, b1's edit) and ann's two queued ones, though both
    // clients held most of them.
    let stats = server.stats();
    assert_eq!(applied(&server) - applied_at_restore, lost.len() as u64 + 2, "{stats}");
    assert_eq!(stats["mutations_applied"], stats["distinct_applied_ids"], "{stats}");

    // What was uploaded again is in the history of whoever uploaded it.
    let reconciled = |c: &Ferry| -> Vec<String> {
        c.history()
            .iter()
            .filter(|h| h["reason"].as_str().unwrap_or("").contains("restored from a backup"))
            .map(|h| h["record_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (by_ann, by_bob) = (reconciled(&ann), reconciled(&bob));
    let mut all: Vec<&String> = by_ann.iter().chain(&by_bob).collect();
    all.sort();
    assert_eq!(all, lost, "ann: {by_ann:?}, bob: {by_bob:?}");
}

#[test]
fn a_restore_with_a_server_running_on_the_database_is_refused() {
    let server = TestServer::start();
    if server.db().is_postgres() {
        return; // PostgreSQL is restored with its own tools
    }
    server.add_user("ann", "north", "pw");
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.db");
    back_up(&server, &backup);
    let out = server.cli(&["restore", "--from", backup.to_str().unwrap()], None);
    assert!(!out.status.success(), "restore under a running server must refuse");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stop the ferry-server"), "{err}");
    // Not a backup at all: refused before anything moves.
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not a database").unwrap();
    let out = server.cli(&["restore", "--from", junk.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not a ferry-server backup") && err.contains("nothing was changed"), "{err}");
    let out = server.cli(&["restore", "--from", dir.path().join("missing").to_str().unwrap()], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no backup file at"));
    assert!(server.db_path().exists());
}
