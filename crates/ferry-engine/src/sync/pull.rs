//! Pull: remote changes since the cursor, page by page; and re-reading single
//! records whose local copy may be stale.

use std::sync::Arc;

use crate::account::Link;
use crate::clock::local_now_ms;
use crate::error::Result;
use crate::model::SyncReport;
use crate::state::Inner;
use crate::store::settings;

const PAGE: u32 = 1000;

pub(super) async fn pull_all(inner: &Arc<Inner>, link: &Link, report: &mut SyncReport) -> Result<()> {
    let mut since = inner.store.setting(settings::PULL_CURSOR)?.unwrap_or(0);
    loop {
        let page = super::with_token(inner, link, |token| async move {
            link.transport.pull(&token, since, PAGE, &inner.clock).await
        })
        .await?;
        if page.cursor < since {
            // A server must never move the cursor backwards; refuse
            // rather than re-apply old states.
            return Err(crate::transport::TransportError::BadResponse(format!(
                "pull cursor went backwards ({} after {since})",
                page.cursor
            ))
            .into());
        }
        if page.has_more && page.cursor == since {
            return Err(crate::transport::TransportError::BadResponse(format!(
                "pull cursor did not advance past {since} although more changes were announced"
            ))
            .into());
        }
        let applied = inner.store.apply_remote_page(&page.changes, page.cursor, local_now_ms())?;
        report.downloaded += applied;
        super::note_progress(inner, 0, applied);
        since = page.cursor;
        inner.publish();
        if !page.has_more || page.changes.is_empty() {
            return Ok(());
        }
    }
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
                    return Err(crate::transport::TransportError::BadResponse(format!(
                        "asked for {entity}/{id}, got another record"
                    ))
                    .into())
                }
                None => inner.store.refetch_done(&entity, &id)?,
            }
        }
    }
}
