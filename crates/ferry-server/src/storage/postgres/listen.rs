//! Hears other nodes' commits: one connection per node runs
//! `LISTEN ferry_changes`; every push that changes records sends
//! `pg_notify('ferry_changes', org)` in its transaction, which PostgreSQL
//! delivers at commit (and never for a rolled-back batch).
//!
//! A notification lost while the connection was down cannot be asked for
//! again, so after every (re)connect all waiters are woken to read for
//! themselves; one that finds nothing new waits on.

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::changes::ChangeFeed;

pub const CHANNEL: &str = "ferry_changes";

/// Reconnect delays after the listening connection is lost.
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(15);

/// Runs until aborted (at shutdown).
pub async fn forward(config: tokio_postgres::Config, location: String, feed: std::sync::Arc<ChangeFeed>) {
    let mut delay = FIRST_RETRY;
    loop {
        let listened = listen_once(&config, &feed).await;
        // Whatever happened, waiters may have missed a commit.
        feed.notify_all();
        match listened {
            Ok(()) => delay = FIRST_RETRY,
            Err(e) => tracing::warn!(
                db = %location, error = %e,
                retry_in_ms = delay.as_millis() as u64,
                "cannot listen for other nodes' commits; waiting pulls answer at their deadline until it is back"
            ),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(LAST_RETRY);
    }
}

/// `Ok` when a connection that listened was closed; `Err` when none could
/// be made.
async fn listen_once(config: &tokio_postgres::Config, feed: &ChangeFeed) -> Result<(), String> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&statement);
    tokio::pin!(listen);
    // The connection must be driven for the LISTEN itself to complete.
    loop {
        tokio::select! {
            done = &mut listen => { done.map_err(|e| e.to_string())?; break; }
            message = messages.next() => match message {
                Some(Ok(m)) => deliver(feed, m),
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the connection closed".into()),
            },
        }
    }
    tracing::debug!("listening for other nodes' commits");
    // Commits made before the LISTEN took effect were not heard.
    feed.notify_all();
    while let Some(message) = messages.next().await {
        match message {
            Ok(m) => deliver(feed, m),
            Err(e) => {
                tracing::warn!(error = %e, "lost the connection that hears other nodes' commits; reconnecting");
                return Ok(());
            }
        }
    }
    tracing::warn!("the connection that hears other nodes' commits closed; reconnecting");
    Ok(())
}

fn deliver(feed: &ChangeFeed, message: AsyncMessage) {
    if let AsyncMessage::Notification(n) = message {
        feed.notify(n.payload());
    }
}
