//! Pull: remote changes since the cursor, page by page; and re-reading single
//! records whose local copy may be stale.

use std::sync::Arc;

use crate::clock::local_now_ms;
use crate::error::Result;
use crate::model::SyncReport;
use crate::state::{Inner, Link};

const PAGE: u32 = 1000;

impl Inner {
    pub(super) async fn pull_all(self: &Arc<Self>, link: &Link, report: &mut SyncReport) -> Result<()> {
        let mut since = self.store.setting_i64("pull_cursor")?.unwrap_or(0).max(0) as u64;
        loop {
            let page = self
                .with_token(link, |token| async move { link.transport.pull(&token, since, PAGE, &self.clock).await })
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
            let applied = self.store.apply_remote_page(&page.changes, page.cursor, local_now_ms())?;
            report.downloaded += applied;
            self.note_progress(0, applied);
            since = page.cursor;
            self.publish();
            if !page.has_more || page.changes.is_empty() {
                return Ok(());
            }
        }
    }

    pub(super) async fn refetch(self: &Arc<Self>, link: &Link) -> Result<()> {
        loop {
            let batch = self.store.refetch_list(100)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (entity, id) in batch {
                let (e, i) = (&entity, &id);
                let rec = self
                    .with_token(link, |token| async move { link.transport.record(&token, e, i, &self.clock).await })
                    .await?;
                match rec {
                    Some(r) if r.entity == entity && r.record_id == id => {
                        self.store.apply_remote(&r, local_now_ms())?;
                    }
                    Some(_) => {
                        return Err(crate::transport::TransportError::BadResponse(format!(
                            "asked for {entity}/{id}, got another record"
                        ))
                        .into())
                    }
                    None => self.store.refetch_done(&entity, &id)?,
                }
            }
        }
    }
}
