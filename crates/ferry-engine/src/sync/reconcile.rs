//! Noticing that the server went back in time (restored from a backup, or
//! replaced), and reconciling with it: the whole organisation is pulled
//! again and matched with the records here, and what the server lost is
//! queued to upload again (the rules are in `store/reconcile.rs`).
//!
//! The server says which database it is on every pull (`database`: an id
//! made with the database, a generation moved on by every restore, the
//! organisation's newest change). Pushes name the database the client last
//! pulled from, and a server that is another one refuses them before
//! applying anything, so no edit lands on a base the server lost.

use std::sync::Arc;

use ferry_protocol::{DatabaseInfo, DatabaseRef, PullResponse};

use crate::account::Link;
use crate::clock::local_now_ms;
use crate::error::Result;
use crate::model::SyncReport;
use crate::state::Inner;
use crate::store::{settings, ReconcileTally, Times};

const PAGE: u32 = 1000;

/// The fork (the newest change the server still has of what we saw) if
/// the server is behind us: another database than the one we saw, a later
/// generation of it, or a newest change older than our cursor `since`.
pub(super) fn fork_if_behind(seen: Option<DatabaseRef>, since: u64, server: Option<&DatabaseInfo>) -> Option<u64> {
    // A server that says nothing cannot be checked (older servers).
    let server = server?;
    match seen {
        Some(seen) if seen.id != server.id => Some(0),
        Some(seen) if seen.generation != server.generation => {
            // Every restore since the generation we saw went back to its
            // own point; the earliest bounds what survived. None listed
            // (a generation that went down): nothing is known to survive.
            server.restores.iter().filter(|r| r.generation > seen.generation).map(|r| r.seq).min().or(Some(0))
        }
        _ if since > server.head => Some(server.head),
        _ => None,
    }
}

/// Starts a reconciliation if `page` (pulled from `since`) shows the server
/// behind us; else remembers which database it is. Whether one started.
pub(super) fn check(inner: &Inner, since: u64, page: &PullResponse) -> Result<bool> {
    let seen = inner.store.setting(settings::SERVER_DATABASE)?;
    let server = page.database.as_ref();
    if let Some(fork) = fork_if_behind(seen, since, server) {
        tracing::warn!(
            fork,
            ?seen,
            server = ?server.map(DatabaseInfo::reference),
            "the server has gone back in time (restored from a backup?): pulling everything again to upload what it lost"
        );
        inner.store.begin_reconcile(fork, server.map(DatabaseInfo::reference))?;
        return Ok(true);
    }
    if let Some(server) = server.map(DatabaseInfo::reference).filter(|s| seen != Some(*s)) {
        inner.store.set_setting(settings::SERVER_DATABASE, &server)?;
    }
    Ok(false)
}

/// Runs the reconciliation under way, if there is one, to its end.
pub(super) async fn run(inner: &Arc<Inner>, link: &Link, report: &mut SyncReport) -> Result<()> {
    let Some(mut fork) = inner.store.reconciling()? else { return Ok(()) };
    let mut since = inner.store.setting(settings::PULL_CURSOR)?.unwrap_or(0);
    let mut tally = ReconcileTally::default();
    loop {
        let page = super::with_token(inner, link, |token| async move {
            link.transport.pull(&token, since, PAGE, &inner.clock).await
        })
        .await?;
        super::pull::check_cursor(since, &page)?;
        let target = inner.store.setting(settings::RECONCILE_DATABASE)?;
        if let Some(server) = page.database.as_ref().filter(|d| target.is_some_and(|t| t != d.reference())) {
            // Restored again meanwhile: start over against the new one,
            // keeping the earlier fork if it is earlier.
            fork = fork.min(fork_if_behind(target, 0, Some(server)).unwrap_or(0));
            tracing::warn!(fork, "the server changed again while reconciling; starting over");
            inner.store.begin_reconcile(fork, Some(server.reference()))?;
            since = 0;
            continue;
        }
        let now = Times { local: local_now_ms(), server: inner.clock.now_ms() };
        let done = inner.store.reconcile_page(&page.changes, page.cursor, now)?;
        report.downloaded += done.taken;
        super::note_progress(inner, 0, done.taken);
        tally += done;
        since = page.cursor;
        inner.publish();
        if !page.has_more || page.changes.is_empty() {
            break;
        }
    }
    tally += inner.store.finish_reconcile(Times { local: local_now_ms(), server: inner.clock.now_ms() })?;
    tracing::warn!(
        matched = tally.matched,
        taken = tally.taken,
        resent = tally.resent,
        rebased = tally.rebased,
        contested = tally.contested,
        "reconciled with the server; what it lost is queued to upload again"
    );
    inner.publish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use ferry_protocol::RestorePoint;
    use uuid::Uuid;

    use super::*;

    fn server(id: Uuid, generation: u64, head: u64, restores: &[(u64, u64)]) -> DatabaseInfo {
        DatabaseInfo {
            id,
            generation,
            head,
            restores: restores.iter().map(|&(generation, seq)| RestorePoint { generation, seq }).collect(),
        }
    }

    #[test]
    fn the_fork_is_where_the_server_went_back_to() {
        let id = Uuid::new_v4();
        let seen = Some(DatabaseRef { id, generation: 1 });
        // Same database, not behind.
        assert_eq!(fork_if_behind(seen, 10, Some(&server(id, 1, 12, &[]))), None);
        // Nothing known yet, or a server that tells nothing.
        assert_eq!(fork_if_behind(None, 10, Some(&server(id, 1, 12, &[]))), None);
        assert_eq!(fork_if_behind(seen, 10, None), None);
        // Restored: the restore's point, even if the server has moved on
        // past our cursor since.
        assert_eq!(fork_if_behind(seen, 10, Some(&server(id, 7, 30, &[(7, 6)]))), Some(6));
        // Restored twice since: the earlier point.
        assert_eq!(fork_if_behind(seen, 10, Some(&server(id, 9, 30, &[(7, 6), (9, 4)]))), Some(4));
        // Restores before the generation we saw do not count.
        let seen7 = Some(DatabaseRef { id, generation: 7 });
        assert_eq!(fork_if_behind(seen7, 10, Some(&server(id, 9, 30, &[(7, 2), (9, 8)]))), Some(8));
        // Put back without a restore mark: behind our cursor.
        assert_eq!(fork_if_behind(seen, 10, Some(&server(id, 1, 8, &[]))), Some(8));
        assert_eq!(fork_if_behind(None, 10, Some(&server(id, 1, 8, &[]))), Some(8));
        // Another database: nothing survived.
        assert_eq!(fork_if_behind(seen, 10, Some(&server(Uuid::new_v4(), 1, 50, &[]))), Some(0));
    }
}
