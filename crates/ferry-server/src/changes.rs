//! Wakes waiting pulls (`GET /v1/pull?wait=SECS`) when an organisation's
//! changes commit.
//!
//! One watch channel per organisation that has waiters, holding a counter
//! that every commit bumps. A waiter subscribes *before* it reads the
//! database, so a commit between its read and its wait still wakes it. On
//! one node the push handler bumps the counter after its commit; with
//! several nodes on PostgreSQL each node also bumps it when the database
//! tells it (LISTEN/NOTIFY) that another node committed. Memory is one
//! small entry per organisation with waiters; an entry nobody waits on is
//! dropped at its next bump.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

#[derive(Default)]
pub struct ChangeFeed {
    orgs: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// Flipped once, at shutdown: waiters answer at once, so a graceful stop
    /// does not wait out their timeouts.
    closing: watch::Sender<bool>,
}

/// What a waiter holds: a change of either means "read again".
pub struct Subscription {
    changes: watch::Receiver<u64>,
    closing: watch::Receiver<bool>,
}

impl ChangeFeed {
    pub fn new() -> Self {
        Self::default()
    }

    /// Call before reading the database, then [`Subscription::changed`].
    pub fn subscribe(&self, org: &str) -> Subscription {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        let changes = match orgs.get(org) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                orgs.insert(org.to_owned(), tx);
                rx
            }
        };
        Subscription { changes, closing: self.closing.subscribe() }
    }

    /// `org` committed changes: wake its waiters on this node.
    pub fn notify(&self, org: &str) {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = orgs.get(org) {
            if tx.receiver_count() == 0 {
                orgs.remove(org);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Wakes every waiter (after notifications may have been missed, e.g.
    /// the database connection that carries them was lost). A waiter that
    /// finds nothing new simply waits again.
    pub fn notify_all(&self) {
        let mut orgs = self.orgs.lock().unwrap_or_else(|e| e.into_inner());
        orgs.retain(|_, tx| tx.receiver_count() > 0);
        for tx in orgs.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Shutdown: every waiter answers now.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Organisations with an entry (for tests of the clean-up).
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.orgs.lock().unwrap().len()
    }
}

impl Subscription {
    /// Returns when the organisation committed something since the
    /// subscription (or the last return), or the server is stopping.
    pub async fn changed(&mut self) {
        if *self.closing.borrow() {
            return;
        }
        tokio::select! {
            r = self.changes.changed() => {
                if r.is_err() {
                    // The entry was replaced; nothing to wait on any more.
                    std::future::pending::<()>().await;
                }
            }
            // `wait_for`'s guard is not `Send`: drop it inside.
            _ = async { self.closing.wait_for(|c| *c).await.is_ok() } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn fires(sub: &mut Subscription) -> bool {
        tokio::time::timeout(Duration::from_millis(50), sub.changed()).await.is_ok()
    }

    #[tokio::test]
    async fn a_commit_wakes_only_its_own_organisation() {
        let feed = ChangeFeed::new();
        let mut red = feed.subscribe("red");
        let mut blue = feed.subscribe("blue");
        feed.notify("red");
        assert!(fires(&mut red).await);
        assert!(!fires(&mut blue).await);
        // Seen once: the next wait waits again.
        assert!(!fires(&mut red).await);
    }

    #[tokio::test]
    async fn a_commit_before_the_wait_still_wakes_it() {
        let feed = ChangeFeed::new();
        let mut sub = feed.subscribe("red");
        feed.notify("red"); // between the subscriber's read and its wait
        assert!(fires(&mut sub).await);
    }

    #[tokio::test]
    async fn close_and_notify_all_wake_everyone() {
        let feed = ChangeFeed::new();
        let mut a = feed.subscribe("red");
        let mut b = feed.subscribe("blue");
        feed.notify_all();
        assert!(fires(&mut a).await && fires(&mut b).await);
        feed.close();
        assert!(fires(&mut a).await && fires(&mut b).await);
        assert!(feed.is_closing());
    }

    #[tokio::test]
    async fn entries_without_waiters_are_dropped() {
        let feed = ChangeFeed::new();
        drop(feed.subscribe("red"));
        assert_eq!(feed.entries(), 1);
        feed.notify("red");
        assert_eq!(feed.entries(), 0);
    }
}
