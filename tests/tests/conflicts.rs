//! Conflicts end to end: one real server, two or three real clients, every
//! policy, both edit orders, edit versus delete, clock skew, manual picks.

use std::time::Duration;

use ferry_e2e::ferry::Ferry;
use ferry_e2e::server::TestServer;
use serde_json::{json, Value};

struct World {
    server: TestServer,
    a: Ferry,
    b: Ferry,
}

const BASE: &str = r#"{"title":"Visit","minutes":30,"place":"Hall"}"#;

/// A and B (one organisation) both hold activity x at version 1.
fn world(policy: &str, a: Ferry, b: Ferry) -> World {
    let server = TestServer::start();
    server.add_user("mentor", "org1", "pw1");
    server.add_user("coordinator", "org1", "pw2");
    a.connect(&server.url(), "mentor", "pw1");
    b.connect(&server.url(), "coordinator", "pw2");
    for f in [&a, &b] {
        f.run(&["policy", "activity", policy]).ok();
    }
    a.run(&["put", "activity", "x", BASE]).ok();
    a.sync().ok();
    b.sync().ok();
    assert_eq!(b.get("activity", "x").unwrap(), serde_json::from_str::<Value>(BASE).unwrap());
    World { server, a, b }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Edits are milliseconds apart on one machine; make their order certain.
fn tick() {
    std::thread::sleep(Duration::from_millis(30));
}

impl World {
    /// Syncs everyone until quiet and checks that all agree with the server.
    fn converge(&self) -> Option<Value> {
        for _ in 0..2 {
            self.a.sync();
            self.b.sync();
        }
        let server = self
            .server
            .dump()
            .into_iter()
            .find(|r| r["entity"] == "activity" && r["record_id"] == "x")
            .expect("x on the server");
        let on_server = if server["deleted"] == true { None } else { Some(server["data"].clone()) };
        assert_eq!(self.a.get("activity", "x"), on_server, "client A agrees with the server");
        assert_eq!(self.b.get("activity", "x"), on_server, "client B agrees with the server");
        on_server
    }
}

fn patch(f: &Ferry, v: Value) {
    f.patch("activity", "x", &v);
    tick();
}

fn expect(fields: Value) -> Option<Value> {
    let mut base: Value = serde_json::from_str(BASE).unwrap();
    for (k, v) in fields.as_object().unwrap() {
        base[k] = v.clone();
    }
    Some(base)
}

/// `first` edits first, `second` edits later; `sync_first` uploads first.
fn edit_edit(policy: &str, later_syncs_first: bool) -> (World, Option<Value>) {
    let w = world(policy, Ferry::new(), Ferry::new());
    patch(&w.a, json!({"minutes": 45}));
    patch(&w.b, json!({"minutes": 60}));
    if later_syncs_first {
        w.b.sync().ok();
        w.a.sync();
    } else {
        w.a.sync().ok();
        w.b.sync();
    }
    let end = w.converge();
    (w, end)
}

#[test]
fn lww_keeps_the_edit_made_last_whatever_the_upload_order() {
    for later_first in [true, false] {
        let (w, end) = edit_edit("lww", later_first);
        assert_eq!(end, expect(json!({"minutes": 60})), "later edit wins (later_first={later_first})");
        // The loser's side is in the history, with the reason.
        let loser = if later_first { &w.a } else { &w.b };
        let h = loser.history();
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0]["policy"], "lww");
        assert!(h[0]["reason"].as_str().unwrap().contains("later"), "{}", h[0]);
    }
}

#[test]
fn server_wins_keeps_whatever_arrived_first() {
    let (_, end) = edit_edit("server-wins", true);
    assert_eq!(end, expect(json!({"minutes": 60})));
    let (w, end) = edit_edit("server-wins", false);
    assert_eq!(end, expect(json!({"minutes": 45})));
    // B lost; its edit can be restored from the history as a new edit.
    let h = w.b.history();
    assert_eq!(h[0]["restorable"], true);
    w.b.run(&["restore", &h[0]["id"].to_string()]).ok();
    assert_eq!(w.converge(), expect(json!({"minutes": 60})));
}

#[test]
fn client_wins_keeps_whatever_arrived_last() {
    let (_, end) = edit_edit("client-wins", true);
    assert_eq!(end, expect(json!({"minutes": 45})));
    let (_, end) = edit_edit("client-wins", false);
    assert_eq!(end, expect(json!({"minutes": 60})));
}

#[test]
fn merge_keeps_disjoint_fields_and_falls_back_to_lww_on_overlap() {
    for later_first in [true, false] {
        let w = world("merge", Ferry::new(), Ferry::new());
        patch(&w.a, json!({"minutes": 45, "title": "Home visit"}));
        patch(&w.b, json!({"place": "Library", "title": "Group visit"}));
        if later_first {
            w.b.sync().ok();
        } else {
            w.a.sync().ok();
        }
        let end = w.converge();
        assert_eq!(
            end,
            Some(json!({"minutes": 45, "place": "Library", "title": "Group visit"})),
            "later_first={later_first}"
        );
    }
}

#[test]
fn edit_versus_delete_both_ways_under_lww() {
    // Delete first, edit later: the edit wins and the record comes back.
    for later_first in [true, false] {
        let w = world("lww", Ferry::new(), Ferry::new());
        w.a.delete("activity", "x");
        tick();
        patch(&w.b, json!({"minutes": 99}));
        if later_first {
            w.b.sync().ok();
        } else {
            w.a.sync().ok();
        }
        assert_eq!(w.converge(), expect(json!({"minutes": 99})), "edit after delete, later_first={later_first}");
    }
    // Edit first, delete later: the delete wins.
    for later_first in [true, false] {
        let w = world("lww", Ferry::new(), Ferry::new());
        patch(&w.b, json!({"minutes": 99}));
        w.a.delete("activity", "x");
        tick();
        if later_first {
            w.a.sync().ok();
        } else {
            w.b.sync().ok();
        }
        assert_eq!(w.converge(), None, "delete after edit, later_first={later_first}");
    }
}

#[test]
fn lww_follows_real_edit_order_when_a_clock_is_hours_off() {
    const HOURS_3: &str = "10800000";
    // A's clock runs 3 h ahead: uncorrected, its earlier edit would win.
    let w = world("lww", Ferry::new().with_env("FERRY_TEST_CLOCK_SKEW_MS", HOURS_3), Ferry::new());
    patch(&w.a, json!({"minutes": 1}));
    patch(&w.b, json!({"minutes": 2}));
    w.b.sync().ok();
    assert_eq!(w.converge(), expect(json!({"minutes": 2})), "B edited last");
    // The history is dated on the server's clock too, not A's.
    let at = w.a.history()[0]["at"].as_i64().unwrap();
    assert!((at - now_ms()).abs() < 60_000, "resolution dated {} ms from now", at - now_ms());

    // A's clock runs 3 h behind: uncorrected, its later edit would lose.
    let w = world("lww", Ferry::new().with_env("FERRY_TEST_CLOCK_SKEW_MS", "-10800000"), Ferry::new());
    patch(&w.b, json!({"minutes": 3}));
    patch(&w.a, json!({"minutes": 4}));
    w.b.sync().ok();
    assert_eq!(w.converge(), expect(json!({"minutes": 4})), "A edited last");
}

#[test]
fn manual_conflict_blocks_only_its_record_survives_restart_and_resolves_by_field() {
    let mut w = world("manual", Ferry::new(), Ferry::new());
    patch(&w.a, json!({"minutes": 45, "title": "Mine"}));
    patch(&w.b, json!({"minutes": 60, "place": "Theirs"}));
    w.b.sync().ok();
    w.a.put("activity", "other", &json!({"n": 1}));
    let r = w.a.sync();
    assert_eq!(r.code, 3, "a parked conflict leaves the sync incomplete: {}", r.stderr);
    assert!(r.stderr.contains("conflict"), "{}", r.stderr);
    // Other records kept syncing.
    assert!(w.server.dump().iter().any(|r| r["record_id"] == "other"));
    // Later edits of x wait behind the conflict.
    patch(&w.a, json!({"note": "added while in conflict"}));
    assert_eq!(w.a.queue(Some("pending")).len(), 1);
    assert_eq!(w.a.queue(Some("conflict")).len(), 1);
    assert_eq!(w.a.status()["conflicts"], 1);

    // The conflict survives a server restart and new client processes.
    w.server.restart();
    w.a.sync();
    let c = w.a.conflicts();
    assert_eq!(c.len(), 1);
    let c = &c[0];
    assert_eq!(c["base"], serde_json::from_str::<Value>(BASE).unwrap());
    assert_eq!(c["local"]["note"], "added while in conflict");
    assert_eq!(c["remote"]["place"], "Theirs");
    assert_eq!(c["differing_fields"], json!(["minutes", "note", "place", "title"]));

    // Picks that leave fields undecided are refused: nothing is chosen for
    // the user.
    let id = c["id"].as_str().unwrap();
    let r = w.a.run(&["resolve", id, "--field", "title=local", "--field", "note=local"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("minutes, place not picked") && r.stderr.contains("--keep"), "{}", r.stderr);
    assert_eq!(w.a.conflicts().len(), 1);

    // Keep theirs, but my title and note.
    w.a.run(&["resolve", id, "--keep", "remote", "--field", "title=local", "--field", "note=local"]).ok();
    assert!(w.a.conflicts().is_empty());
    let chosen = json!({"title": "Mine", "minutes": 60, "place": "Theirs", "note": "added while in conflict"});
    assert_eq!(w.converge(), Some(chosen));
    let h = w.a.history();
    assert_eq!(h[0]["policy"], "manual");
    assert_eq!(h[0]["winner"], "merged");
}

#[test]
fn manual_keep_mine_and_three_clients_agree() {
    let w = world("manual", Ferry::new(), Ferry::new());
    let c = Ferry::new();
    w.server.add_user("third", "org1", "pw3");
    c.connect(&w.server.url(), "third", "pw3");
    c.run(&["policy", "activity", "manual"]).ok();
    c.sync().ok();
    patch(&w.a, json!({"minutes": 1}));
    patch(&w.b, json!({"minutes": 2}));
    patch(&c, json!({"minutes": 3}));
    w.a.sync().ok();
    w.b.sync();
    c.sync();
    for f in [&w.b, &c] {
        let conflicts = f.conflicts();
        assert_eq!(conflicts.len(), 1);
        f.run(&["resolve", conflicts[0]["id"].as_str().unwrap(), "--keep", "local"]).ok();
        f.sync();
    }
    // B resolved first and uploaded; C's resolution then met B's version:
    // a second conflict for C, which keeps its own again.
    for _ in 0..3 {
        if let Some(cf) = c.conflicts().first() {
            c.run(&["resolve", cf["id"].as_str().unwrap(), "--keep", "local"]).ok();
        }
        c.sync();
        w.b.sync();
        w.a.sync();
    }
    let end = w.converge();
    assert_eq!(end, expect(json!({"minutes": 3})));
    assert_eq!(c.get("activity", "x"), end);
}

#[test]
fn other_organisations_never_conflict_with_us() {
    let w = world("lww", Ferry::new(), Ferry::new());
    w.server.add_user("stranger", "org2", "pw9");
    let s = Ferry::new();
    s.connect(&w.server.url(), "stranger", "pw9");
    s.put("activity", "x", &json!({"title": "Other org"}));
    s.sync().ok();
    patch(&w.a, json!({"minutes": 1}));
    w.a.sync().ok();
    assert!(w.a.history().is_empty(), "no conflict with another organisation's record");
    assert_eq!(s.get("activity", "x"), Some(json!({"title": "Other org"})));
    assert_eq!(w.converge(), expect(json!({"minutes": 1})));
}

/// Whether the server applied mutation `id` (its idempotency table).
fn applied_on_server(server: &TestServer, id: &str) -> bool {
    let db = rusqlite::Connection::open_with_flags(server.db_path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the server's database");
    db.query_row("SELECT EXISTS(SELECT 1 FROM applied_mutations WHERE mutation_id = ?1)", [id], |r| r.get(0))
        .expect("query applied_mutations")
}

#[test]
fn every_resolution_names_the_mutation_it_queued() {
    // lww, the local edit is later: the resolution uploads it as a new
    // mutation, and the history says which.
    let w = world("lww", Ferry::new(), Ferry::new());
    patch(&w.a, json!({"minutes": 45}));
    let superseded = w.b.patch("activity", "x", &json!({"minutes": 60}));
    w.a.sync().ok();
    w.b.sync().ok();
    let h = w.b.history();
    assert_eq!(h[0]["winner"], "local", "{h:?}");
    assert_eq!(h[0]["superseded"], json!([superseded]));
    let upload = h[0]["upload_mutation_id"].as_str().expect("the local win queued an upload").to_string();
    assert_ne!(upload, superseded);
    assert!(applied_on_server(&w.server, &upload), "the named mutation reached the server");
    assert!(!applied_on_server(&w.server, &superseded), "the superseded one never did");

    // server-wins: the result is the server's version, nothing is queued.
    w.a.run(&["policy", "activity", "server-wins"]).ok();
    w.b.run(&["policy", "activity", "server-wins"]).ok();
    patch(&w.b, json!({"minutes": 61}));
    patch(&w.a, json!({"minutes": 46}));
    w.b.sync().ok();
    w.a.sync().ok();
    let h = w.a.history();
    assert_eq!(h[0]["winner"], "remote", "{h:?}");
    assert_eq!(h[0]["upload_mutation_id"], Value::Null);
    // Restoring the loser queues a mutation and says which.
    let r = w.a.run(&["restore", &h[0]["id"].to_string(), "--json"]).ok().json();
    let restored = r["upload_mutation_id"].as_str().expect("restore names its mutation").to_string();
    assert_eq!(w.a.queue(None)[0]["mutation_id"], restored.as_str());
    w.a.sync().ok();
    assert!(applied_on_server(&w.server, &restored));
    w.b.sync().ok();

    // manual: `resolve` prints the mutation it queued, and the history agrees.
    w.a.run(&["policy", "activity", "manual"]).ok();
    patch(&w.b, json!({"minutes": 62}));
    patch(&w.a, json!({"minutes": 47, "title": "Mine"}));
    w.b.sync().ok();
    assert_eq!(w.a.sync().code, 3);
    let c = w.a.conflicts();
    let cid = c[0]["id"].as_str().unwrap();
    let r = w.a.run(&["resolve", cid, "--keep", "remote", "--field", "title=local", "--json"]).ok().json();
    assert_eq!(r["conflict_id"], cid);
    let queued = r["upload_mutation_id"].as_str().expect("resolve names its mutation").to_string();
    let h = w.a.history();
    assert_eq!(h[0]["conflict_id"], cid);
    assert_eq!(h[0]["upload_mutation_id"], queued.as_str());
    let human = w.a.run(&["conflicts", "--history"]).ok().stdout;
    assert!(human.contains(&queued), "{human}");
    w.a.sync().ok();
    assert!(applied_on_server(&w.server, &queued));
    assert_eq!(w.converge(), expect(json!({"minutes": 62, "title": "Mine"})));

    // A manual pick that equals the server's version queues nothing.
    patch(&w.b, json!({"minutes": 63}));
    patch(&w.a, json!({"minutes": 48}));
    w.b.sync().ok();
    assert_eq!(w.a.sync().code, 3);
    let cid = w.a.conflicts()[0]["id"].as_str().unwrap().to_string();
    let r = w.a.run(&["resolve", &cid, "--keep", "remote", "--json"]).ok().json();
    assert_eq!(r["upload_mutation_id"], Value::Null, "{r}");
    let r = w.a.run(&["resolve", &cid, "--keep", "remote"]);
    assert_ne!(r.code, 0, "a settled conflict cannot be settled again");
}

const DAY_MS: &str = "86400000";
const SKEW: &str = "FERRY_TEST_CLOCK_SKEW_MS";

/// The auditor's case: C's clock runs a day ahead and C edits before it ever
/// reached the server (`init` while it was down). B edits later and syncs.
/// C's edit must be dated on the server's clock at C's first contact, so the
/// later edit (B's) wins everywhere.
#[test]
fn lww_dates_an_edit_made_before_any_server_contact_by_the_servers_clock() {
    let mut server = TestServer::start();
    server.add_user("mentor", "org1", "pw1");
    server.add_user("coordinator", "org1", "pw2");
    let url = server.url();
    server.kill();
    let c = Ferry::new().with_env(SKEW, DAY_MS);
    let r = c.run(&["init", "--server", &url]).ok();
    assert!(r.stdout.contains("not reachable"), "{}", r.stdout);
    c.put("activity", "x", &json!({"title": "C's early version"}));
    tick();
    server.restart();
    let b = Ferry::new();
    b.connect(&url, "coordinator", "pw2");
    b.put("activity", "x", &json!({"title": "B's later version"}));
    b.sync().ok();

    c.login("mentor", "pw1").ok();
    c.sync().ok();
    b.sync().ok();
    let later = Some(json!({"title": "B's later version"}));
    assert_eq!(c.get("activity", "x"), later, "C's older edit must not win");
    assert_eq!(b.get("activity", "x"), later);
    let h = c.history();
    assert_eq!(h[0]["winner"], "remote", "{h:?}");
}

/// C synced with a right clock (its saved offset is ~0); then its clock was
/// stepped a day ahead. Its next edit is stamped with the stale offset; at
/// the next sync it is re-dated, so B's later edit still wins.
#[test]
fn lww_corrects_an_edit_stamped_with_a_stale_offset_after_a_clock_step() {
    let w = world("lww", Ferry::new(), Ferry::new());
    let stepped = [(SKEW, DAY_MS)];
    w.a.run_with_env(&stepped, &["patch", "activity", "x", r#"{"minutes":1}"#]).ok();
    tick();
    patch(&w.b, json!({"minutes": 2}));
    w.b.sync().ok();
    w.a.run_with_env(&stepped, &["sync"]).ok();
    w.b.sync().ok();
    assert_eq!(w.a.get("activity", "x"), expect(json!({"minutes": 2})), "B edited last");
    assert_eq!(w.b.get("activity", "x"), expect(json!({"minutes": 2})));
}

/// Merge judges a field both sides changed by when each side changed *that
/// field*: A's later edit of another field must not make A's older title
/// look newer than B's.
#[test]
fn merge_judges_each_field_by_the_last_local_edit_of_that_field() {
    let w = world("merge", Ferry::new(), Ferry::new());
    patch(&w.a, json!({"title": "A's title"})); // 1st
    patch(&w.b, json!({"title": "B's title"})); // 2nd
    w.b.sync().ok();
    patch(&w.a, json!({"note": "A's note"})); // 3rd
    w.a.sync().ok();
    assert_eq!(w.converge(), expect(json!({"title": "B's title", "note": "A's note"})));
}

/// Delete versus edit: A deletes x and B patches it, `delete_first` says
/// which was made first; `later_syncs_first` whether the later of the two
/// reaches the server first. Returns the world and whether the deleter (A)
/// uploaded first.
fn edit_vs_delete(policy: &str, delete_first: bool, later_syncs_first: bool) -> (World, bool) {
    let w = world(policy, Ferry::new(), Ferry::new());
    if delete_first {
        w.a.delete("activity", "x");
        tick();
        patch(&w.b, json!({"minutes": 99}));
    } else {
        patch(&w.b, json!({"minutes": 99}));
        w.a.delete("activity", "x");
        tick();
    }
    // Whether the deleter (A) uploads first.
    let deleter_first = delete_first != later_syncs_first;
    let (first, second) = if deleter_first { (&w.a, &w.b) } else { (&w.b, &w.a) };
    first.sync().ok();
    second.sync();
    (w, deleter_first)
}

const EDIT_VS_DELETE_CASES: [(bool, bool); 4] = [(true, true), (true, false), (false, true), (false, false)];

#[test]
fn edit_versus_delete_both_ways_under_server_wins_and_client_wins() {
    let edited = expect(json!({"minutes": 99}));
    for (delete_first, later_first) in EDIT_VS_DELETE_CASES {
        let case = format!("delete_first={delete_first} later_syncs_first={later_first}");
        // server-wins: whatever reached the server first stays.
        let (w, deleter_first) = edit_vs_delete("server-wins", delete_first, later_first);
        let want = if deleter_first { None } else { edited.clone() };
        assert_eq!(w.converge(), want, "server-wins, {case}");
        // client-wins: whatever reached the server last stays.
        let (w, deleter_first) = edit_vs_delete("client-wins", delete_first, later_first);
        let want = if deleter_first { edited.clone() } else { None };
        assert_eq!(w.converge(), want, "client-wins, {case}");
    }
}

#[test]
fn edit_versus_delete_both_ways_under_merge_is_decided_by_edit_time() {
    let edited = expect(json!({"minutes": 99}));
    for (delete_first, later_first) in EDIT_VS_DELETE_CASES {
        // No fields to merge against a delete: the later edit wins whole.
        let (w, deleter_first) = edit_vs_delete("merge", delete_first, later_first);
        let want = if delete_first { edited.clone() } else { None };
        assert_eq!(w.converge(), want, "merge, delete_first={delete_first} later_syncs_first={later_first}");
        // The second to upload met the conflict.
        let h = if deleter_first { w.b.history() } else { w.a.history() };
        assert!(h[0]["reason"].as_str().unwrap().contains("delete versus edit"), "{}", h[0]);
    }
}

#[test]
fn edit_versus_delete_both_ways_under_manual_waits_for_the_user() {
    let edited = expect(json!({"minutes": 99}));
    for (delete_first, later_first, keep) in
        [(true, false, "local"), (false, false, "local"), (true, true, "remote"), (false, true, "remote")]
    {
        let case = format!("delete_first={delete_first} later_syncs_first={later_first} keep={keep}");
        let (w, deleter_first) = edit_vs_delete("manual", delete_first, later_first);
        let second = if deleter_first { &w.b } else { &w.a };
        assert_eq!(second.sync().code, 3, "parked: {case}");
        let c = second.conflicts();
        assert_eq!(c.len(), 1, "{case}");
        // One side of the conflict is the delete.
        let (local_deleted, remote_deleted) = (c[0]["local"].is_null(), c[0]["remote"].is_null());
        assert_eq!((local_deleted, remote_deleted), (!deleter_first, deleter_first), "{case}: {}", c[0]);
        second.run(&["resolve", c[0]["id"].as_str().unwrap(), "--keep", keep]).ok();
        // The second syncer's side (local) or the first's (remote) stays.
        let keeps_delete = (keep == "local") != deleter_first;
        let want = if keeps_delete { None } else { edited.clone() };
        assert_eq!(w.converge(), want, "manual, {case}");
    }
}

/// A long resolution history is listed whole, past the CLI's page of 1 000
/// (it used to stop at the newest 1 000). The entries are written straight
/// into the data dir's database: making 1 234 real conflicts would take
/// minutes and test nothing more about listing them.
#[test]
fn history_lists_every_entry_past_a_page() {
    let f = Ferry::new();
    f.run(&["init", "--server", "http://127.0.0.1:9"]).ok();
    let db = rusqlite::Connection::open(f.data_dir().join("ferry.db")).unwrap();
    for i in 0..1234 {
        db.execute(
            "INSERT INTO history(entity, record_id, policy, winner, reason, local, remote, result, superseded, at, restorable, restored)
             VALUES ('activity', ?1, 'lww', 'remote', 'edited later on the server', '{}', '{}', '{}', '[]', 1, 0, 0)",
            [format!("r{i}")],
        )
        .unwrap();
    }
    drop(db);
    let ids: Vec<i64> = f.history().iter().map(|h| h["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 1234);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first, each once");
    let text = f.run(&["conflicts", "--history"]).ok().stdout;
    assert_eq!(text.lines().count(), 1234, "one line per entry");
}
