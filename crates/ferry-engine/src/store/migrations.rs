//! Versioned schema migrations (PRAGMA user_version). Append only: a released
//! migration is never edited, a change is a new entry.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: initial schema
    r#"
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

    -- data: the local value (NULL when deleted here); version/shadow*: the
    -- last server state this copy is based on (the base of three-way merges).
    CREATE TABLE records (
        entity TEXT NOT NULL,
        id TEXT NOT NULL,
        data TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 0,
        shadow TEXT,
        shadow_edited_at INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (entity, id)
    ) WITHOUT ROWID;

    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        entity TEXT NOT NULL,
        record_id TEXT NOT NULL,
        op TEXT NOT NULL,
        payload TEXT,
        base_version INTEGER NOT NULL,
        edited_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        last_error TEXT,
        state TEXT NOT NULL DEFAULT 'pending'
    );
    CREATE INDEX outbox_by_record ON outbox(entity, record_id, seq);
    CREATE INDEX outbox_by_state ON outbox(state, seq);

    -- Counts per state kept by triggers, so status is O(1) at any queue length.
    CREATE TABLE outbox_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO outbox_counts VALUES ('pending', 0), ('in-flight', 0), ('failed', 0), ('conflict', 0);
    CREATE TRIGGER outbox_count_ins AFTER INSERT ON outbox BEGIN
        UPDATE outbox_counts SET n = n + 1 WHERE state = NEW.state;
    END;
    CREATE TRIGGER outbox_count_del AFTER DELETE ON outbox BEGIN
        UPDATE outbox_counts SET n = n - 1 WHERE state = OLD.state;
    END;
    CREATE TRIGGER outbox_count_upd AFTER UPDATE OF state ON outbox WHEN OLD.state != NEW.state BEGIN
        UPDATE outbox_counts SET n = n - 1 WHERE state = OLD.state;
        UPDATE outbox_counts SET n = n + 1 WHERE state = NEW.state;
    END;

    CREATE TABLE conflicts (
        id TEXT PRIMARY KEY,
        entity TEXT NOT NULL,
        record_id TEXT NOT NULL,
        base TEXT,
        local TEXT,
        remote TEXT,
        remote_version INTEGER NOT NULL,
        remote_edited_at INTEGER NOT NULL,
        remote_edited_by TEXT NOT NULL,
        local_edited_at INTEGER NOT NULL,
        detected_at INTEGER NOT NULL,
        UNIQUE (entity, record_id)
    );

    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        entity TEXT NOT NULL,
        record_id TEXT NOT NULL,
        policy TEXT NOT NULL,
        winner TEXT NOT NULL,
        reason TEXT NOT NULL,
        local TEXT,
        remote TEXT,
        result TEXT,
        superseded TEXT NOT NULL,
        at INTEGER NOT NULL,
        restorable INTEGER NOT NULL,
        restored INTEGER NOT NULL DEFAULT 0
    );

    CREATE TABLE sync_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at INTEGER NOT NULL,
        finished_at INTEGER NOT NULL,
        uploaded INTEGER NOT NULL,
        downloaded INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        conflicts INTEGER NOT NULL,
        error TEXT
    );

    -- Records whose local copy must be re-read from the server (after a
    -- discard, remote changes skipped while local edits were pending).
    CREATE TABLE refetch (entity TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (entity, id)) WITHOUT ROWID;
    "#,
    // 2: which open conflict a resolution settled and which mutation it
    // queued, so every uploaded mutation id can be traced to a decision.
    r#"
    ALTER TABLE history ADD COLUMN conflict_id TEXT;
    ALTER TABLE history ADD COLUMN upload_mutation_id TEXT;
    "#,
    // 3: evidence to re-stamp edits made without a trustworthy server-clock
    // offset (see store::stamps). A clock domain is a monotonic clock (one
    // boot, or one process); `check_*` pair one of its readings with the
    // server's time, from a fresh sample. Rows from before this migration
    // have no evidence (stamp_local_at NULL) and keep their stamps.
    r#"
    CREATE TABLE clock_domains (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        check_mono_ms INTEGER,
        check_server_ms INTEGER
    );
    ALTER TABLE outbox ADD COLUMN stamp_local_at INTEGER;
    ALTER TABLE outbox ADD COLUMN stamp_domain INTEGER;
    ALTER TABLE outbox ADD COLUMN stamp_mono_ms INTEGER;
    ALTER TABLE outbox ADD COLUMN stamp_offset_known INTEGER NOT NULL DEFAULT 1;
    "#,
    // 4: while reconciling with a restored server (see
    // store::reconcile): the local records it has not sent yet.
    r#"
    CREATE TABLE reconcile_unmatched (entity TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (entity, id)) WITHOUT ROWID;
    "#,
    // 5: what kind of trouble a failed sync run had (model::Problem, its
    // kebab-case name); runs from before have none.
    r#"
    ALTER TABLE sync_runs ADD COLUMN problem TEXT;
    "#,
];

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        // A newer Ferry wrote this database; refuse rather than guess.
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "schema version {current} is newer than this Ferry understands ({}); upgrade Ferry",
                MIGRATIONS.len()
            )),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrates_fresh_and_is_idempotent() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        super::migrate(&mut c).unwrap();
        super::migrate(&mut c).unwrap();
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v as usize, super::MIGRATIONS.len());
    }
}
