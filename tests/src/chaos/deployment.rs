//! What the chaos clients talk to: one `ferry-server`, or several nodes on
//! one PostgreSQL database behind HAProxy, as an organisation deploys them.
//! The run itself does not care which; a server kill hits one node, and on
//! a cluster the others keep serving while it is down.

use std::sync::Arc;

use serde_json::Value;

use super::audit;
use crate::cluster::TestCluster;
use crate::pg::{Backend, TestDb};
use crate::server::TestServer;

pub enum Deployment {
    One(TestServer),
    Cluster(TestCluster),
}

impl Deployment {
    /// One node on `backend`, or `nodes` (> 1) nodes on PostgreSQL behind
    /// a load balancer.
    pub fn start(backend: &Backend, nodes: usize) -> Deployment {
        assert!(nodes > 0, "at least one node");
        if nodes == 1 {
            Deployment::One(TestServer::start_on(Arc::new(TestDb::on(backend)), &[], &[]))
        } else {
            assert!(backend.is_postgres(), "several nodes need the PostgreSQL backend");
            Deployment::Cluster(TestCluster::start(nodes))
        }
    }

    /// Where clients connect: the server, or the load balancer.
    pub fn url(&self) -> String {
        match self {
            Deployment::One(s) => s.url(),
            Deployment::Cluster(c) => c.url(),
        }
    }

    pub fn nodes(&self) -> usize {
        match self {
            Deployment::One(_) => 1,
            Deployment::Cluster(c) => c.len(),
        }
    }

    pub fn add_user(&self, name: &str, org: &str, password: &str) {
        match self {
            Deployment::One(s) => s.add_user(name, org, password),
            Deployment::Cluster(c) => c.add_user(name, org, password),
        }
    }

    /// kill -9 of node `node % nodes`.
    pub fn kill(&mut self, node: usize) {
        match self {
            Deployment::One(s) => s.kill(),
            Deployment::Cluster(c) => {
                let i = node % c.len();
                c.kill_node(i)
            }
        }
    }

    /// Starts node `node % nodes` again on its port.
    pub fn restart(&mut self, node: usize) {
        match self {
            Deployment::One(s) => s.restart(),
            Deployment::Cluster(c) => {
                let i = node % c.len();
                c.restart_node(i)
            }
        }
    }

    /// The server's counters (read from the database, so any node's view).
    pub fn stats(&self) -> Value {
        match self {
            Deployment::One(s) => s.stats(),
            Deployment::Cluster(c) => c.stats(),
        }
    }

    pub fn dump(&self) -> Vec<Value> {
        match self {
            Deployment::One(s) => s.dump(),
            Deployment::Cluster(c) => c.dump(),
        }
    }

    /// Stops every node cleanly (SIGTERM), so what follows reads a database
    /// no one writes to.
    pub fn terminate(&mut self) {
        match self {
            Deployment::One(s) => {
                s.terminate();
            }
            Deployment::Cluster(c) => {
                for i in 0..c.len() {
                    if c.node_mut(i).is_running() {
                        c.node_mut(i).terminate();
                    }
                }
            }
        }
    }

    /// The idempotency table of `org`, on whichever backend holds it.
    pub fn applied(&self, org: &str) -> Vec<audit::Applied> {
        let db = match self {
            Deployment::One(s) => s.db(),
            Deployment::Cluster(c) => c.db(),
        };
        match db.sqlite_path() {
            Some(path) => read_applied_sqlite(path, org),
            None => read_applied_postgres(&db, org),
        }
    }

    /// Every node's log, for a failing run.
    pub fn logs(&self) -> String {
        match self {
            Deployment::One(s) => s.log(),
            Deployment::Cluster(c) => c.logs(),
        }
    }
}

fn read_applied_sqlite(path: &std::path::Path, org: &str) -> Vec<audit::Applied> {
    let conn = rusqlite::Connection::open(path).expect("open server db");
    let mut stmt = conn
        .prepare("SELECT mutation_id, entity, record_id, version FROM applied_mutations WHERE org = ?1")
        .expect("applied_mutations table");
    let rows = stmt
        .query_map([org], |r| {
            Ok(audit::Applied {
                id: r.get(0)?,
                entity: r.get(1)?,
                record_id: r.get(2)?,
                version: r.get::<_, i64>(3)? as u64,
            })
        })
        .expect("query applied_mutations");
    rows.map(|r| r.expect("applied_mutations row")).collect()
}

fn read_applied_postgres(db: &TestDb, org: &str) -> Vec<audit::Applied> {
    // The org is the harness's own constant, never input: quoting it as a
    // literal is enough for a test read.
    assert!(org.chars().all(|c| c.is_ascii_alphanumeric()), "plain org name");
    db.pg_query(&format!(
        "SELECT mutation_id::text, entity, record_id, version::text FROM applied_mutations WHERE org = '{org}'"
    ))
    .into_iter()
    .map(|row| {
        let col = |i: usize| row[i].clone().expect("applied_mutations has no NULL columns");
        audit::Applied {
            id: col(0),
            entity: col(1),
            record_id: col(2),
            version: col(3).parse().expect("version is a number"),
        }
    })
    .collect()
}
