//! The storage boundary: everything the server keeps, behind one trait.
//!
//! Two backends implement [`Storage`]: [`sqlite`] (one file, the embedded
//! default for a chapter with a handful of volunteers) and [`postgres`]
//! (one database shared by any number of `ferry-server` nodes). No SQL
//! lives outside this module; the rules (what a push does, what a refresh
//! token presented twice means) live outside it, in [`crate::apply`] and
//! [`crate::auth::refresh`], so both backends apply the same ones.
//!
//! Every operation is one transaction: it commits as a whole or not at all.
//! Operations that change an organisation's records hold its write lock for
//! the whole transaction, which is what makes the pull cursor safe with
//! several writers (see `docs/protocol.md`, "Why the cursor never skips").

pub mod copy;
pub mod identity;
pub mod postgres;
pub mod sqlite;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use ferry_protocol::{DatabaseInfo, Mutation, RemoteRecord};

use crate::apply::{BatchOutcome, Rules};
use crate::auth::refresh::NewToken;
use crate::auth::throttle::FailureCount;
use crate::changes::ChangeFeed;
use crate::error::Result;
use crate::stats::{DumpRecord, Stats};
use crate::users::User;

/// Where the server's database is: a SQLite file or a PostgreSQL URL.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL (libpq's connection URI).
    Postgres(String),
}

impl DbLocation {
    /// A `postgres://` / `postgresql://` URL, else a file path.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            DbLocation::Postgres(text.to_owned())
        } else {
            DbLocation::Sqlite(PathBuf::from(text))
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DbLocation::Postgres(_))
    }
}

impl From<&str> for DbLocation {
    fn from(text: &str) -> Self {
        DbLocation::parse(text)
    }
}

impl From<PathBuf> for DbLocation {
    fn from(path: PathBuf) -> Self {
        DbLocation::Sqlite(path)
    }
}

impl From<&std::path::Path> for DbLocation {
    fn from(path: &std::path::Path) -> Self {
        DbLocation::Sqlite(path.to_path_buf())
    }
}

/// For logs and messages: a PostgreSQL URL without its password.
impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DbLocation::Postgres(url) => f.write_str(&postgres::redact_url(url)),
        }
    }
}

impl fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DbLocation({self})")
    }
}

/// Why a refresh was refused (all answered as `invalid_refresh_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshFailure {
    /// Unknown, expired, revoked, or its user is gone.
    Invalid,
    /// A used token was presented again; its family is now revoked.
    Reused,
    /// Its user is disabled (the family is revoked).
    Disabled,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The next token is stored in `family`; issue the pair for `user`.
    Rotated {
        user: User,
        family: String,
        retried: bool,
    },
    Refused(RefreshFailure),
}

/// One page of an organisation's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    pub changes: Vec<RemoteRecord>,
    /// The seq of the last change in `changes` (`since` if none).
    pub cursor: u64,
    pub has_more: bool,
}

/// A connection pool's use, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// Connections open now.
    pub size: usize,
    /// Open and idle.
    pub available: usize,
    pub max: usize,
}

/// Everything the server keeps. Implementations are cheap to share
/// (`Arc<dyn Storage>`) and safe to call from many requests at once.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Where this is, for logs (never with a password).
    fn location(&self) -> String;

    /// The connection pool's use; `None` where there is no pool (SQLite's
    /// one connection).
    fn pool_status(&self) -> Option<PoolStatus> {
        None
    }

    /// The secret that signs access tokens: created once per database, so
    /// every node accepts every node's tokens and restarts keep sessions.
    async fn signing_secret(&self) -> Result<Vec<u8>>;

    /// Creates a user; `Error::UserExists` if the name is taken.
    async fn add_user(&self, user: &User) -> Result<()>;
    async fn find_user(&self, name: &str) -> Result<Option<User>>;
    /// Every user, sorted by organisation, then name.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Disables the user (`Some(when)`) or enables it (`None`). Disabling
    /// revokes all its refresh families and moves its session epoch on, in
    /// one transaction. Whether the user exists.
    async fn set_user_disabled(&self, name: &str, disabled_at: Option<i64>) -> Result<bool>;
    /// Replaces the password hash, revokes all the user's refresh families
    /// and moves its session epoch on, in one transaction. Whether the user
    /// exists.
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool>;
    /// Deletes the user and its refresh tokens (records keep their
    /// `edited_by`). Whether the user existed.
    async fn remove_user(&self, name: &str) -> Result<bool>;

    /// The stored failure counts of those of `keys` that have one.
    async fn login_failures(&self, keys: &[String]) -> Result<Vec<FailureCount>>;
    /// Counts one failed sign-in under each of `keys` at `now`; a count
    /// whose last failure is before `forget_before` starts over, and rows
    /// that old are deleted.
    async fn record_login_failure(&self, keys: &[String], now: i64, forget_before: i64) -> Result<()>;
    async fn clear_login_failures(&self, key: &str) -> Result<()>;

    /// Stores the first token of a new refresh family (a login).
    async fn store_refresh_token(&self, family: &str, user: &str, token: &NewToken) -> Result<()>;
    /// Presents the token with hash `presented`: judged by
    /// [`crate::auth::refresh::judge`]; on success `next` is stored as its
    /// family's next token, in the same transaction.
    async fn rotate_refresh_token(&self, presented: &[u8], next: &NewToken, now: i64) -> Result<Rotation>;
    /// Revokes the family of the token with hash `presented`; whether it
    /// was known.
    async fn revoke_refresh_family(&self, presented: &[u8]) -> Result<bool>;
    /// Forgets tokens that expired before `before`.
    async fn purge_refresh_tokens(&self, before: i64) -> Result<()>;

    /// Applies a push batch of `user` in `org` by the rules of
    /// [`crate::apply`], stamped `now`, and commits. An `Err` means nothing
    /// of it was applied.
    async fn push(
        &self,
        org: &str,
        user: &str,
        mutations: Vec<Mutation>,
        rules: &Rules,
        now: i64,
    ) -> Result<BatchOutcome>;
    /// `org`'s records changed after `since`, oldest change first, at most
    /// `limit`; each record once, at its latest version.
    async fn pull(&self, org: &str, since: u64, limit: u32) -> Result<ChangesPage>;
    /// One record, tombstones included.
    async fn record(&self, org: &str, entity: &str, record_id: &str) -> Result<Option<RemoteRecord>>;

    /// Starts telling `feed` of commits made by *other* processes (other
    /// nodes on one database); `None` where there can be none. This node's
    /// own pushes notify the feed themselves.
    fn forward_commits(&self, feed: Arc<ChangeFeed>) -> Option<tokio::task::JoinHandle<()>>;

    /// The database's identity as `org`'s clients see it: its id and
    /// generation, `org`'s newest change, the restores it went through.
    async fn database(&self, org: &str) -> Result<DatabaseInfo>;
    /// Starts a new generation: this database was just restored from a
    /// copy, and every change after the copy's newest is gone (see
    /// [`identity`]). Returns the new generation.
    async fn mark_restored(&self, now: i64) -> Result<u64>;

    async fn stats(&self) -> Result<Stats>;
    /// Every record (tombstones included), sorted by org, entity, record id;
    /// only `org`'s when given.
    async fn dump(&self, org: Option<&str>) -> Result<Vec<DumpRecord>>;
}

/// Opens (creating and migrating) the database at `location`.
pub async fn open(location: &DbLocation) -> Result<Arc<dyn Storage>> {
    Ok(match location {
        DbLocation::Sqlite(path) => {
            let path = path.clone();
            let db = tokio::task::spawn_blocking(move || sqlite::SqliteStorage::open(&path))
                .await
                .map_err(|e| crate::Error::Task(e.to_string()))??;
            Arc::new(db)
        }
        DbLocation::Postgres(url) => Arc::new(postgres::PgStorage::open(url).await?),
    })
}
