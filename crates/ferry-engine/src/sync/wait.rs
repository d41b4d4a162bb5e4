//! Hearing of others' changes as they happen: while online, the loop holds
//! one waiting pull (`GET /v1/pull?wait=SECS`, see `docs/protocol.md`) that
//! the server answers as soon as the organisation has changes past our
//! cursor. It only *hears*: what it heard is fetched by a normal cycle,
//! under the usual pull rules, so a wait that breaks off loses nothing.

use std::sync::Arc;
use std::time::Duration;

use ferry_protocol::CLIENT_PULL_WAIT_SECS;

use crate::error::EngineError;
use crate::state::Inner;
use crate::store::settings;

/// What one waiting pull heard.
#[derive(Debug)]
pub(crate) enum Heard {
    /// The organisation has changes past our cursor: run a cycle.
    Changes,
    /// The wait ran out (or the server is stopping): wait again.
    Nothing,
    /// The server answered at once without a `wait`: it cannot wait, so
    /// pulls follow the interval. `changes`: that answer had some.
    Unsupported { changes: bool },
    /// The wait failed; the cycle that follows finds out whether the
    /// server is reachable, and backs off if not.
    Failed(EngineError),
}

/// One waiting pull from the stored cursor. Owns its `Arc` so the loop
/// can keep it across wake-ups.
pub(crate) async fn wait_for_changes(inner: Arc<Inner>) -> Heard {
    match try_wait_for_changes(&inner).await {
        Ok(heard) => heard,
        Err(e) => Heard::Failed(e),
    }
}

async fn try_wait_for_changes(inner: &Inner) -> crate::error::Result<Heard> {
    let link = crate::account::link(inner)?;
    let link = &*link;
    let since = inner.store.setting(settings::PULL_CURSOR)?.unwrap_or(0);
    let wait = Duration::from_secs(CLIENT_PULL_WAIT_SECS.into());
    tracing::debug!(since, "waiting for changes");
    // An expired access token is renewed here as for any request (a
    // token that expires *during* the wait is not a problem: it was
    // checked when the wait began).
    let page = super::with_token(inner, link, |token| async move {
        link.transport.wait_for_changes(&token, since, wait, &inner.clock).await
    })
    .await?;
    // A server gone back in time has no changes past our cursor to tell
    // of: the cycle is what notices and reconciles.
    let behind = super::reconcile::fork_if_behind(
        inner.store.setting(settings::SERVER_DATABASE)?,
        since,
        page.database.as_ref(),
    )
    .is_some();
    let changes = !page.changes.is_empty() || behind;
    tracing::debug!(since, changes, wait = ?page.wait, "waiting pull answered");
    Ok(match page.wait {
        None => Heard::Unsupported { changes },
        Some(_) if changes => Heard::Changes,
        Some(_) => Heard::Nothing,
    })
}
