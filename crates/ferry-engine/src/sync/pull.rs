//! Pull: remote changes since the cursor, page by page; and re-reading single
//! records whose local copy may be stale.

use std::sync::Arc;

use ferry_protocol::PullResponse;

use crate::account::Link;
use crate::clock::local_now_ms;
use crate::error::Result;
use crate::model::SyncReport;
use crate::state::Inner;
use crate::store::settings;
use crate::transport::TransportError;

const PAGE: u32 = 1000;

/// How a full pull ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pulled {
    /// Every change up to the server's newest is here.
    Complete,
    /// The server has gone back in time: a reconciliation was started
    /// instead (see `reconcile.rs`); nothing of the page was applied.
    ServerBehind,
}

pub(super) async fn pull_all(inner: &Arc<Inner>, link: &Link, report: &mut SyncReport) -> Result<Pulled> {
    let mut since = inner.store.setting(settings::PULL_CURSOR)?.unwrap_or(0);
    loop {
        let page = super::with_token(inner, link, |token| async move {
            link.transport.pull(&token, since, PAGE, &inner.clock).await
        })
        .await?;
        check_cursor(since, &page)?;
        // Before anything is applied: after a restore, version numbers on
        // the two sides no longer compare.
        if super::reconcile::check(inner, since, &page)? {
            return Ok(Pulled::ServerBehind);
        }
        let applied = inner.store.apply_remote_page(&page.changes, page.cursor, local_now_ms())?;
        report.downloaded += applied;
        super::note_progress(inner, 0, applied);
        since = page.cursor;
        inner.publish();
        if !page.has_more || page.changes.is_empty() {
            return Ok(Pulled::Complete);
        }
    }
}

/// A page pulled from `since` must move the cursor on as the protocol says.
pub(super) fn check_cursor(since: u64, page: &PullResponse) -> Result<()> {
    if page.cursor < since {
        // A server must never move the cursor backwards; refuse rather
        // than re-apply old states.
        return Err(
            TransportError::BadResponse(format!("pull cursor went backwards ({} after {since})", page.cursor)).into()
        );
    }
    if page.has_more && page.cursor == since {
        return Err(TransportError::BadResponse(format!(
            "pull cursor did not advance past {since} although more changes were announced"
        ))
        .into());
    }
    Ok(())
}

pub(super) async fn refetch(inner: &Arc<Inner>, link: &Link) -> Result<()> {
    loop {
        let batch = inner.store.refetch_list(100)?;
        if batch.is_empty() {
            return Ok(());
        }
        for (entity, id) in batch {
            let (e, i) = (&entity, &id);
            let rec = super::with_token(inner, link, |token| async move {
                link.transport.record(&token, e, i, &inner.clock).await
            })
            .await?;
            match rec {
                Some(r) if r.entity == entity && r.record_id == id => {
                    inner.store.apply_remote(&r, local_now_ms())?;
                }
                Some(_) => {
                    return Err(
                        TransportError::BadResponse(format!("asked for {entity}/{id}, got another record")).into()
                    )
                }
                None => inner.store.refetch_done(&entity, &id)?,
            }
        }
    }
}
