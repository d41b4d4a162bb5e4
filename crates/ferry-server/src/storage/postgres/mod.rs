//! The PostgreSQL backend: one database, any number of `ferry-server`
//! nodes.
//!
//! Nodes keep nothing of their own: the signing secret, users, refresh
//! families, applied mutation ids and each organisation's change sequence
//! live in the database, so any node answers any request. Connections come
//! from a deadpool pool; every operation is one transaction run as a task
//! of its own (so a dropped request never abandons it half-way) under a
//! deadline, so a database that went away is answered `503` with
//! `Retry-After` in bounded time, and the pool reconnects by itself when
//! it returns.
//!
//! Concurrency: a push locks its organisation's row in `orgs` first and
//! keeps it to its commit, so one organisation's batches apply one at a
//! time across all nodes, take their seqs in commit order, and never both
//! apply a mutation on the same base version. The primary key of
//! `applied_mutations` backs the idempotency check up: a second insert of
//! a mutation id fails the batch instead of applying it twice. Refresh
//! families are serialized by a transaction-scoped advisory lock on the
//! family.

mod accounts;
mod batch;
mod error;
mod identity;
mod listen;
pub mod migrations;
mod records;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use ferry_protocol::{DatabaseInfo, Mutation, RemoteRecord};
use rand::RngCore;
use tokio_postgres::NoTls;

pub use self::error::redact_url;
use super::{ChangesPage, Rotation, Storage};
use crate::apply::{BatchOutcome, Rules};
use crate::auth::refresh::NewToken;
use crate::auth::throttle::FailureCount;
use crate::error::{Error, Result};
use crate::stats::{DumpRecord, Stats};
use crate::storage::identity::Identity;
use crate::users::User;

/// Connections per node. PostgreSQL's default `max_connections` (100)
/// leaves room for several nodes and the operator's own tools.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, or for a new one to be made.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// The most one operation may take before it is answered `unavailable`
/// (a push of 1000 mutations takes well under a second).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(15);
/// Transactions that lose a deadlock or serialization race are run again.
const RETRIES: u32 = 3;

/// A pool of connections to the server database; cheap to clone.
#[derive(Clone)]
pub struct PgStorage {
    pool: Pool,
    location: String,
    /// For the connection that listens for other nodes' commits.
    config: tokio_postgres::Config,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage").field("location", &self.location).finish()
    }
}

impl PgStorage {
    /// Connects to `url`, migrates the schema (one node at a time) and
    /// makes sure the signing secret exists.
    pub async fn open(url: &str) -> Result<Self> {
        let location = redact_url(url);
        let open_err = |message: String| Error::Open { location: location.clone(), message };
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| open_err(format!("{e}; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")))?;
        // As libpq does: a URL without a password takes `PGPASSWORD`, so
        // neither `--db` nor `copy --to` needs a secret on the command line.
        if config.get_password().is_none() {
            if let Some(password) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
                config.password(password.as_encoded_bytes());
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_TIMEOUT);
        }
        // A database host that vanished without a reset is noticed by the
        // operation deadline; keepalives let the kernel drop the dead
        // connections soon after.
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("ferry-server");
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Verified });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let storage = Self { pool, location: location.clone(), config };
        let mut client = storage.pool.get().await.map_err(|e| open_err(error::describe_pool(&e)))?;
        migrations::migrate(&mut client).await?;
        let mut secret = vec![0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        client
            .execute("INSERT INTO meta (key, value) VALUES ('jwt_secret', $1) ON CONFLICT (key) DO NOTHING", &[&secret])
            .await
            .map_err(Error::from)?;
        identity::ensure(&client).await?;
        Ok(storage)
    }

    /// Runs `op` with a pooled connection as a task of its own under the
    /// operation deadline, again if it lost a deadlock or serialization
    /// race.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(deadpool_postgres::Object) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, error::PgError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        let task = tokio::spawn(async move {
            let mut attempt = 0;
            loop {
                let client = pool.get().await.map_err(error::from_pool)?;
                match op(client).await {
                    Err(e) if e.is_retryable() && attempt < RETRIES => {
                        attempt += 1;
                        tracing::debug!(attempt, "transaction lost a race ({e}); running it again");
                    }
                    other => return other.map_err(Error::from),
                }
            }
        });
        match tokio::time::timeout(OPERATION_TIMEOUT, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(Error::Task(join.to_string())),
            // The task goes on and commits or rolls back on its own.
            Err(_) => {
                Err(Error::Unavailable(format!("PostgreSQL did not answer within {} s", OPERATION_TIMEOUT.as_secs())))
            }
        }
    }

    /// A client for the copy from SQLite (no deadline: it may be long).
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(error::from_pool)
    }
}

#[async_trait]
impl Storage for PgStorage {
    fn location(&self) -> String {
        format!("PostgreSQL {}", self.location)
    }

    fn pool_status(&self) -> Option<super::PoolStatus> {
        let s = self.pool.status();
        Some(super::PoolStatus { size: s.size, available: s.available, max: s.max_size })
    }

    async fn signing_secret(&self) -> Result<Vec<u8>> {
        self.run(|c| async move {
            let row = c.query_one("SELECT value FROM meta WHERE key = 'jwt_secret'", &[]).await?;
            Ok(row.get(0))
        })
        .await
    }

    async fn add_user(&self, user: &User) -> Result<()> {
        let user = user.clone();
        self.run(move |c| {
            let user = user.clone();
            async move { accounts::add_user(&c, &user).await }
        })
        .await?
    }

    async fn find_user(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_owned();
        self.run(move |c| {
            let name = name.clone();
            async move { accounts::find_user(&c, &name).await }
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.run(|c| async move { accounts::list_users(&c).await }).await
    }

    async fn set_user_disabled(&self, name: &str, disabled_at: Option<i64>) -> Result<bool> {
        let name = name.to_owned();
        self.run(move |c| {
            let name = name.clone();
            async move { accounts::set_disabled(c, &name, disabled_at).await }
        })
        .await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.run(move |c| {
            let (name, hash) = (name.clone(), hash.clone());
            async move { accounts::set_password(c, &name, &hash).await }
        })
        .await
    }

    async fn remove_user(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.run(move |c| {
            let name = name.clone();
            async move { accounts::remove_user(c, &name).await }
        })
        .await
    }

    async fn login_failures(&self, keys: &[String]) -> Result<Vec<FailureCount>> {
        let keys = keys.to_vec();
        self.run(move |c| {
            let keys = keys.clone();
            async move { accounts::login_failures(&c, &keys).await }
        })
        .await
    }

    async fn record_login_failure(&self, keys: &[String], now: i64, forget_before: i64) -> Result<()> {
        let keys = keys.to_vec();
        self.run(move |c| {
            let keys = keys.clone();
            async move { accounts::record_login_failure(&c, &keys, now, forget_before).await }
        })
        .await
    }

    async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.run(move |c| {
            let key = key.clone();
            async move { accounts::clear_login_failures(&c, &key).await }
        })
        .await
    }

    async fn store_refresh_token(&self, family: &str, user: &str, token: &NewToken) -> Result<()> {
        let (family, user, token) = (family.to_owned(), user.to_owned(), token.clone());
        self.run(move |c| {
            let (family, user, token) = (family.clone(), user.clone(), token.clone());
            async move { accounts::store_token(&c, &family, &user, &token).await }
        })
        .await
    }

    async fn rotate_refresh_token(&self, presented: &[u8], next: &NewToken, now: i64) -> Result<Rotation> {
        let (presented, next) = (presented.to_vec(), next.clone());
        self.run(move |c| {
            let (presented, next) = (presented.clone(), next.clone());
            async move { accounts::rotate(c, &presented, &next, now).await }
        })
        .await
    }

    async fn revoke_refresh_family(&self, presented: &[u8]) -> Result<bool> {
        let presented = presented.to_vec();
        self.run(move |c| {
            let presented = presented.clone();
            async move { accounts::revoke_family_of(c, &presented).await }
        })
        .await
    }

    async fn purge_refresh_tokens(&self, before: i64) -> Result<()> {
        self.run(move |c| async move {
            c.execute("DELETE FROM refresh_tokens WHERE expires_at < $1", &[&before]).await?;
            Ok(())
        })
        .await
    }

    async fn push(
        &self,
        org: &str,
        user: &str,
        mutations: Vec<Mutation>,
        rules: &Rules,
        now: i64,
    ) -> Result<BatchOutcome> {
        let job = std::sync::Arc::new((org.to_owned(), user.to_owned(), mutations, rules.clone()));
        self.run(move |c| {
            let job = job.clone();
            async move {
                let (org, user, mutations, rules) = &*job;
                batch::apply(c, org, user, mutations, rules, now).await
            }
        })
        .await?
    }

    async fn pull(&self, org: &str, since: u64, limit: u32) -> Result<ChangesPage> {
        let org = org.to_owned();
        self.run(move |c| {
            let org = org.clone();
            async move { records::pull(&c, &org, since, limit).await }
        })
        .await?
    }

    async fn record(&self, org: &str, entity: &str, record_id: &str) -> Result<Option<RemoteRecord>> {
        let key = (org.to_owned(), entity.to_owned(), record_id.to_owned());
        self.run(move |c| {
            let key = key.clone();
            async move { records::load(&c, &key.0, &key.1, &key.2).await }
        })
        .await?
        .map(|r| r.into_remote())
        .transpose()
    }

    fn forward_commits(&self, feed: std::sync::Arc<crate::changes::ChangeFeed>) -> Option<tokio::task::JoinHandle<()>> {
        Some(tokio::spawn(listen::forward(self.config.clone(), self.location.clone(), feed)))
    }

    async fn stats(&self) -> Result<Stats> {
        self.run(|c| async move { records::stats(&c).await }).await
    }

    async fn dump(&self, org: Option<&str>) -> Result<Vec<DumpRecord>> {
        let org = org.map(str::to_owned);
        self.run(move |c| {
            let org = org.clone();
            async move { records::dump(&c, org.as_deref()).await }
        })
        .await?
    }

    async fn database(&self, org: &str) -> Result<DatabaseInfo> {
        let key = org.to_owned();
        let (stored, head) = self
            .run(move |c| {
                let org = key.clone();
                async move { Ok((identity::read(&c).await?, identity::head(&c, &org).await?)) }
            })
            .await?;
        let current = Identity::decode(stored.0.as_deref(), stored.1.as_deref(), stored.2.as_deref())
            .ok_or_else(crate::storage::identity::unreadable)?;
        Ok(current.info(org, head))
    }

    async fn mark_restored(&self, now: i64) -> Result<u64> {
        self.run(move |mut c| async move {
            let tx = c.transaction().await?;
            identity::ensure(&tx).await?;
            let stored = identity::read(&tx).await?;
            let heads = identity::heads(&tx).await?;
            let Some(current) = Identity::decode(stored.0.as_deref(), stored.1.as_deref(), stored.2.as_deref()) else {
                return Ok(Err(crate::storage::identity::unreadable()));
            };
            let next = current.restored(now, heads, 0);
            identity::write(&tx, &next).await?;
            tx.commit().await?;
            Ok(Ok(next.generation))
        })
        .await?
    }
}
