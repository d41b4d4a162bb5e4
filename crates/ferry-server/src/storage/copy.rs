//! `ferry-server copy --from FILE.db --to postgres://…`: moves a SQLite
//! installation to PostgreSQL with everything clients rely on — users and
//! their password hashes, refresh-token families (so nobody signs in
//! again), the signing secret (so access tokens stay valid), records at
//! their versions and seqs (so cursors stay valid), applied mutation ids
//! (so nothing is applied twice) and the counters.
//!
//! The source is read in one read transaction (a consistent snapshot) and
//! streamed in chunks into one PostgreSQL transaction, which commits only
//! if the source did not change meanwhile: a SQLite server still taking
//! pushes would otherwise acknowledge changes the copy never sees.

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::postgres::PgStorage;
use super::sqlite::SqliteStorage;
use crate::error::{Error, Result};

/// Rows per chunk sent to PostgreSQL.
const CHUNK: usize = 5000;

/// What was copied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    pub users: u64,
    pub refresh_tokens: u64,
    pub organisations: u64,
    pub records: u64,
    pub applied_mutations: u64,
}

/// What the source looked like when the copy started; compared again
/// before committing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SourceMark {
    seq: i64,
    applied: i64,
    tokens: (i64, i64),
    users: i64,
}

/// A chunk of one table, as the column arrays PostgreSQL's `unnest` takes.
enum Chunk {
    Secret(Vec<u8>),
    Users(UserColumns),
    Tokens(TokenColumns),
    Records(RecordColumns),
    Applied(AppliedColumns),
    Counters(Vec<(String, i64)>),
    Done(SourceMark),
}

/// Column arrays of a table, filled row by row from SQLite.
trait Columns: Default {
    const SELECT: &'static str;
    fn push(&mut self, row: &rusqlite::Row<'_>) -> rusqlite::Result<()>;
    fn len(&self) -> usize;
}

#[derive(Default)]
struct UserColumns {
    name: Vec<String>,
    org: Vec<String>,
    password_hash: Vec<String>,
    created_at: Vec<i64>,
    disabled_at: Vec<Option<i64>>,
    session_epoch: Vec<i64>,
}

impl Columns for UserColumns {
    const SELECT: &'static str = "SELECT name, org, password_hash, created_at, disabled_at, session_epoch FROM users";
    fn push(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        self.name.push(r.get(0)?);
        self.org.push(r.get(1)?);
        self.password_hash.push(r.get(2)?);
        self.created_at.push(r.get(3)?);
        self.disabled_at.push(r.get(4)?);
        self.session_epoch.push(r.get(5)?);
        Ok(())
    }
    fn len(&self) -> usize {
        self.name.len()
    }
}

#[derive(Default)]
struct TokenColumns {
    id: Vec<i64>,
    token_hash: Vec<Vec<u8>>,
    family: Vec<String>,
    user_name: Vec<String>,
    expires_at: Vec<i64>,
    used: Vec<bool>,
    revoked: Vec<i16>,
    created_at: Vec<i64>,
}

impl Columns for TokenColumns {
    // Ids keep SQLite's rowids: a family's chain is their order.
    const SELECT: &'static str =
        "SELECT rowid, token_hash, family, user_name, expires_at, used, revoked, created_at FROM refresh_tokens ORDER BY rowid";
    fn push(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        self.id.push(r.get(0)?);
        self.token_hash.push(r.get(1)?);
        self.family.push(r.get(2)?);
        self.user_name.push(r.get(3)?);
        self.expires_at.push(r.get(4)?);
        self.used.push(r.get(5)?);
        self.revoked.push(r.get(6)?);
        self.created_at.push(r.get(7)?);
        Ok(())
    }
    fn len(&self) -> usize {
        self.id.len()
    }
}

#[derive(Default)]
struct RecordColumns {
    org: Vec<String>,
    entity: Vec<String>,
    record_id: Vec<String>,
    version: Vec<i64>,
    seq: Vec<i64>,
    deleted: Vec<bool>,
    data: Vec<Option<String>>,
    edited_at: Vec<i64>,
    edited_by: Vec<String>,
    server_time: Vec<i64>,
}

impl Columns for RecordColumns {
    const SELECT: &'static str =
        "SELECT org, entity, record_id, version, seq, deleted, data, edited_at, edited_by, server_time FROM records";
    fn push(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        self.org.push(r.get(0)?);
        self.entity.push(r.get(1)?);
        self.record_id.push(r.get(2)?);
        self.version.push(r.get(3)?);
        self.seq.push(r.get(4)?);
        self.deleted.push(r.get(5)?);
        self.data.push(r.get(6)?);
        self.edited_at.push(r.get(7)?);
        self.edited_by.push(r.get(8)?);
        self.server_time.push(r.get(9)?);
        Ok(())
    }
    fn len(&self) -> usize {
        self.org.len()
    }
}

#[derive(Default)]
struct AppliedColumns {
    org: Vec<String>,
    mutation_id: Vec<Uuid>,
    entity: Vec<String>,
    record_id: Vec<String>,
    version: Vec<i64>,
    seq: Vec<i64>,
    server_time: Vec<i64>,
}

impl Columns for AppliedColumns {
    const SELECT: &'static str =
        "SELECT org, mutation_id, entity, record_id, version, seq, server_time FROM applied_mutations";
    fn push(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        let id: String = r.get(1)?;
        let id = Uuid::parse_str(&id)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e)))?;
        self.org.push(r.get(0)?);
        self.mutation_id.push(id);
        self.entity.push(r.get(2)?);
        self.record_id.push(r.get(3)?);
        self.version.push(r.get(4)?);
        self.seq.push(r.get(5)?);
        self.server_time.push(r.get(6)?);
        Ok(())
    }
    fn len(&self) -> usize {
        self.org.len()
    }
}

pub async fn sqlite_to_postgres(from: &Path, to: &str) -> Result<CopyReport> {
    if !from.exists() {
        return Err(Error::Copy(format!("no SQLite database at {}; pass --from PATH", from.display())));
    }
    let source = {
        let from = from.to_path_buf();
        tokio::task::spawn_blocking(move || SqliteStorage::open(&from))
            .await
            .map_err(|e| Error::Task(e.to_string()))??
    };
    let target = PgStorage::open(to).await?;
    let mut client = target.client().await?;
    let tx = client.transaction().await?;
    let existing: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM records)
                  + (SELECT count(*) FROM applied_mutations) + (SELECT count(*) FROM refresh_tokens)",
            &[],
        )
        .await?
        .get(0);
    if existing > 0 {
        return Err(Error::Copy(
            "the PostgreSQL database already holds Ferry data; copy into a new, empty database".into(),
        ));
    }

    let (send, mut chunks) = mpsc::channel::<Result<Chunk>>(4);
    let reader = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || {
            let result = source.read_all(|tx| read_source(tx, &send));
            if let Err(e) = result {
                let _ = send.blocking_send(Err(e)); // the receiver may have given up already
            }
        })
    };

    let mut report = CopyReport::default();
    let mut mark = None;
    while let Some(chunk) = chunks.recv().await {
        match chunk? {
            Chunk::Secret(secret) => {
                tx.execute("UPDATE meta SET value = $1 WHERE key = 'jwt_secret'", &[&secret]).await?;
            }
            Chunk::Users(c) => {
                report.users += c.len() as u64;
                tx.execute(
                    "INSERT INTO users (name, org, password_hash, created_at, disabled_at, session_epoch)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])",
                    &[&c.name, &c.org, &c.password_hash, &c.created_at, &c.disabled_at, &c.session_epoch],
                )
                .await?;
            }
            Chunk::Tokens(c) => {
                report.refresh_tokens += c.len() as u64;
                tx.execute(
                    "INSERT INTO refresh_tokens (id, token_hash, family, user_name, expires_at, used, revoked, created_at)
                     SELECT * FROM unnest($1::int8[], $2::bytea[], $3::text[], $4::text[], $5::int8[], $6::bool[],
                                          $7::int2[], $8::int8[])",
                    &[&c.id, &c.token_hash, &c.family, &c.user_name, &c.expires_at, &c.used, &c.revoked, &c.created_at],
                )
                .await?;
            }
            Chunk::Records(c) => {
                report.records += c.len() as u64;
                tx.execute(
                    "INSERT INTO records (org, entity, record_id, version, seq, deleted, data, edited_at, edited_by,
                                          server_time)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::bool[],
                                          $7::text[], $8::int8[], $9::text[], $10::int8[])",
                    &[
                        &c.org,
                        &c.entity,
                        &c.record_id,
                        &c.version,
                        &c.seq,
                        &c.deleted,
                        &c.data,
                        &c.edited_at,
                        &c.edited_by,
                        &c.server_time,
                    ],
                )
                .await?;
            }
            Chunk::Applied(c) => {
                report.applied_mutations += c.len() as u64;
                tx.execute(
                    "INSERT INTO applied_mutations (org, mutation_id, entity, record_id, version, seq, server_time)
                     SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                                          $7::int8[])",
                    &[&c.org, &c.mutation_id, &c.entity, &c.record_id, &c.version, &c.seq, &c.server_time],
                )
                .await?;
            }
            Chunk::Counters(totals) => {
                for (name, value) in totals {
                    tx.execute("INSERT INTO counter_base (name, value) VALUES ($1, $2)", &[&name, &value]).await?;
                }
            }
            Chunk::Done(m) => mark = Some(m),
        }
    }
    reader.await.map_err(|e| Error::Task(e.to_string()))?;
    let Some(mark) = mark else {
        return Err(Error::Copy("the SQLite database could not be read to the end".into()));
    };

    // Each organisation's sequence goes on after its latest change; ids of
    // new refresh tokens after the copied ones.
    report.organisations =
        tx.execute("INSERT INTO orgs (org, seq) SELECT org, max(seq) FROM records GROUP BY org", &[]).await?;
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('refresh_tokens', 'id'), coalesce((SELECT max(id) FROM refresh_tokens), 0) + 1, false)",
        &[],
    )
    .await?;

    let now = {
        let source = source.clone();
        tokio::task::spawn_blocking(move || source.read_all(|tx| source_mark(tx)))
            .await
            .map_err(|e| Error::Task(e.to_string()))??
    };
    if now != mark {
        return Err(Error::Copy(format!(
            "the SQLite database changed during the copy (its server still runs: {} new changes, {} new \
             sign-ins or refreshes); nothing was committed to PostgreSQL: stop the SQLite server, then copy again",
            now.seq - mark.seq,
            now.tokens.1 - mark.tokens.1
        )));
    }
    tx.commit().await?;
    Ok(report)
}

fn source_mark(tx: &Connection) -> Result<SourceMark> {
    Ok(tx.query_row(
        "SELECT (SELECT value FROM counters WHERE name = 'seq'), (SELECT value FROM counters WHERE name = 'mutations_applied'),
                (SELECT coalesce(max(rowid), 0) FROM refresh_tokens), (SELECT count(*) FROM refresh_tokens WHERE used = 1),
                (SELECT count(*) FROM users)",
        [],
        |r| Ok(SourceMark { seq: r.get(0)?, applied: r.get(1)?, tokens: (r.get(2)?, r.get(3)?), users: r.get(4)? }),
    )?)
}

/// Reads every table in chunks, in the read transaction `tx`.
fn read_source(tx: &Connection, send: &mpsc::Sender<Result<Chunk>>) -> Result<()> {
    let closed = || Error::Copy("the copy into PostgreSQL stopped".into());
    let put = |chunk: Chunk| send.blocking_send(Ok(chunk)).map_err(|_| closed());
    let mark = source_mark(tx)?;

    put(Chunk::Secret(tx.query_row("SELECT value FROM meta WHERE key = 'jwt_secret'", [], |r| r.get(0))?))?;
    stream::<UserColumns>(tx, |c| put(Chunk::Users(c)))?;
    stream::<TokenColumns>(tx, |c| put(Chunk::Tokens(c)))?;
    stream::<RecordColumns>(tx, |c| put(Chunk::Records(c)))?;
    stream::<AppliedColumns>(tx, |c| put(Chunk::Applied(c)))?;
    let mut stmt = tx.prepare(
        "SELECT name, value FROM counters WHERE name IN ('mutations_applied', 'mutations_duplicate', 'conflicts', 'rejected')",
    )?;
    let totals = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
    put(Chunk::Counters(totals))?;
    put(Chunk::Done(mark))
}

/// Reads `C::SELECT` and hands it on in chunks of [`CHUNK`] rows.
fn stream<C: Columns>(tx: &Connection, mut put: impl FnMut(C) -> Result<()>) -> Result<()> {
    let mut stmt = tx.prepare(C::SELECT)?;
    let mut rows = stmt.query([])?;
    let mut chunk = C::default();
    while let Some(r) = rows.next()? {
        chunk.push(r)?;
        if chunk.len() == CHUNK {
            put(std::mem::take(&mut chunk))?;
        }
    }
    if chunk.len() > 0 {
        put(chunk)?;
    }
    Ok(())
}
