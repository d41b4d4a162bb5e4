//! Test databases for both storage backends.
//!
//! `FERRY_TEST_BACKEND=postgres` runs the server tests on PostgreSQL: each
//! [`TestDb`] is then a fresh database on the cluster `FERRY_TEST_PG_URL`
//! names (scripts/pg-test-cluster.sh starts a throwaway one on loopback),
//! dropped when the last server using it is gone. Otherwise it is a SQLite
//! file in a temporary directory.

use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Which storage backend the tests run the server on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The admin URL of a cluster the tests may create databases on.
    Postgres {
        admin_url: String,
    },
}

impl Backend {
    /// From `FERRY_TEST_BACKEND` (`sqlite`, the default, or `postgres`).
    pub fn from_env() -> Backend {
        match std::env::var("FERRY_TEST_BACKEND").as_deref() {
            Ok("postgres") => Backend::Postgres { admin_url: pg_admin_url() },
            Ok("sqlite") | Ok("") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("FERRY_TEST_BACKEND={other:?}: use sqlite or postgres"),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres { .. })
    }
}

/// The cluster for PostgreSQL tests; panics with the fix when none is set.
pub fn pg_admin_url() -> String {
    std::env::var("FERRY_TEST_PG_URL").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| {
        panic!(
            "FERRY_TEST_PG_URL is not set: start a throwaway cluster with \
             `eval \"$(scripts/pg-test-cluster.sh start DIR)\"` (scripts/test.sh does)"
        )
    })
}

/// A database of its own for one test (shared by the nodes of a cluster).
pub struct TestDb {
    arg: String,
    sqlite: Option<PathBuf>,
    pg: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl TestDb {
    /// On the backend `FERRY_TEST_BACKEND` selects.
    pub fn new() -> TestDb {
        TestDb::on(&Backend::from_env())
    }

    pub fn on(backend: &Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let path = dir.path().join("ferry-server.db");
                TestDb { arg: path.to_string_lossy().into_owned(), sqlite: Some(path), pg: None, _dir: dir }
            }
            Backend::Postgres { admin_url } => {
                let name = format!("ferry_test_{}", Uuid::new_v4().simple());
                admin_sql(admin_url, &format!("CREATE DATABASE {name}"));
                TestDb {
                    arg: with_database(admin_url, &name),
                    sqlite: None,
                    pg: Some((admin_url.clone(), name)),
                    _dir: dir,
                }
            }
        }
    }

    /// What `ferry-server --db` gets.
    pub fn arg(&self) -> &str {
        &self.arg
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        self.sqlite.as_deref()
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }

    /// Runs SQL on this PostgreSQL database (test assertions and faults).
    pub fn pg_query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let url = self.pg.as_ref().map(|_| self.arg.clone()).expect("a PostgreSQL test database");
        query_text(&url, sql)
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // FORCE ends the connections of servers that were killed or are
            // still shutting down.
            admin_sql(&admin, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// `postgres://…/postgres` → `postgres://…/NAME`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Runs statements on the database at `url`; panics on failure.
pub fn admin_sql(url: &str, sql: &str) {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    // On a thread of its own: callers may be inside a runtime already.
    std::thread::spawn(move || {
        runtime().block_on(async {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("connect: {e}"));
            let task = tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            drop(client);
            let _ = task.await;
        })
    })
    .join()
    .expect("admin SQL thread");
}

/// Every row of `sql` with each column as text (cast in the query).
pub fn query_text(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        runtime().block_on(async {
            let (client, conn) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("connect: {e}"));
            let task = tokio::spawn(conn);
            let rows = client.simple_query(&sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            drop(client);
            let _ = task.await;
            rows.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                    }
                    _ => None,
                })
                .collect()
        })
    })
    .join()
    .expect("query thread")
}
