//! Desktop notifications: summaries, never one per item or per sync cycle.
//!
//! Engine events are folded into a `Digest`; the digest is shown as one
//! notification when the rate limit allows — not during the quiet period after
//! start (the first cycle after a launch turns up everything that happened
//! while the app was closed) nor right after reconnecting (the backlog upload
//! produces its conflicts and failures in a burst), and at most once per
//! `min_gap`. What the user has to act on (sign-in, conflicts, failures) is
//! kept until it can be shown; it is never dropped by the rate limit.

use std::time::{Duration, Instant};

use fluent_bundle::FluentValue;

use crate::engine_bridge::{EngineEvent, Status, SyncState};
use crate::i18n::{tr, tr_args, Locale};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub quiet_after_start: Duration,
    pub quiet_after_reconnect: Duration,
    pub min_gap: Duration,
    /// Events arriving close together end up in the same notification.
    pub coalesce: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            quiet_after_start: Duration::from_secs(30),
            quiet_after_reconnect: Duration::from_secs(15),
            min_gap: Duration::from_secs(120),
            coalesce: Duration::from_secs(3),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Digest {
    pub uploaded_after_offline: u64,
    pub conflicts: u64,
    pub failed: u64,
    pub stalled_pending: Option<u64>,
    pub needs_sign_in: bool,
    first_at: Option<Instant>,
}

impl Digest {
    pub fn is_empty(&self) -> bool {
        self.uploaded_after_offline == 0
            && self.conflicts == 0
            && self.failed == 0
            && self.stalled_pending.is_none()
            && !self.needs_sign_in
    }

    /// Title and body of the one notification for this digest, in `locale`.
    pub fn message(&self, locale: Locale) -> (String, String) {
        let count = |id: &str, n: u64| tr_args(locale, id, &[("count", FluentValue::from(n))]);
        let mut parts = Vec::new();
        if self.needs_sign_in {
            parts.push(tr(locale, "notify-sign-in"));
        }
        if self.conflicts > 0 {
            parts.push(count("notify-conflicts", self.conflicts));
        }
        if self.failed > 0 {
            parts.push(count("notify-failed", self.failed));
        }
        if let Some(n) = self.stalled_pending {
            parts.push(count("notify-stalled", n));
        }
        if self.uploaded_after_offline > 0 {
            parts.push(count("notify-back-online", self.uploaded_after_offline));
        }
        let title = if self.needs_sign_in {
            "notify-title-sign-in"
        } else if self.conflicts > 0 || self.failed > 0 {
            "notify-title-decision"
        } else if self.stalled_pending.is_some() {
            "notify-title-stalled"
        } else {
            "notify-title-uploaded"
        };
        (tr(locale, title), parts.join(" "))
    }
}

/// The rate limiter and digest; pure, driven by the caller's clock.
pub struct Notifier {
    policy: Policy,
    started: Instant,
    reconnected: Option<Instant>,
    /// The last status seen said offline.
    offline: bool,
    last_sent: Option<Instant>,
    digest: Digest,
    pub enabled: bool,
    /// The language notifications are written in; follows the preference.
    pub locale: Locale,
}

impl Notifier {
    pub fn new(policy: Policy, now: Instant, enabled: bool, locale: Locale) -> Self {
        Notifier {
            locale,
            policy,
            started: now,
            reconnected: None,
            offline: false,
            last_sent: None,
            digest: Digest::default(),
            enabled,
        }
    }

    /// Follows the engine's status: the moment it is no longer offline the
    /// backlog starts uploading, and its conflicts and failures arrive in a
    /// burst — the quiet period starts there, not when the upload ends.
    pub fn on_status(&mut self, status: &Status, now: Instant) {
        let offline = status.state == SyncState::Offline;
        if self.offline && !offline {
            self.reconnected = Some(now);
        }
        self.offline = offline;
    }

    pub fn on_event(&mut self, event: &EngineEvent, now: Instant) {
        if !self.enabled {
            return;
        }
        let d = &mut self.digest;
        let before = d.is_empty();
        match event {
            EngineEvent::SyncCompleted { uploaded, after_offline, .. } => {
                if *after_offline {
                    self.reconnected = Some(now);
                    d.uploaded_after_offline += uploaded;
                }
                // A finished cycle clears a stall.
                d.stalled_pending = None;
            }
            EngineEvent::Stalled { pending } => d.stalled_pending = Some(*pending),
            EngineEvent::ConflictNeedsUser { .. } => d.conflicts += 1,
            EngineEvent::MutationFailed { .. } => d.failed += 1,
            EngineEvent::NeedsSignIn { .. } => d.needs_sign_in = true,
            // Offline is shown by the tray; automatic resolutions are in the history.
            EngineEvent::WentOffline { .. } | EngineEvent::ConflictAutoResolved { .. } => {}
        }
        if before && !d.is_empty() {
            d.first_at = Some(now);
        }
    }

    /// When the pending digest may be shown (`None`: nothing to show).
    pub fn due_at(&self) -> Option<Instant> {
        if self.digest.is_empty() {
            return None;
        }
        let p = self.policy;
        let mut at = self.started + p.quiet_after_start;
        if let Some(r) = self.reconnected {
            at = at.max(r + p.quiet_after_reconnect);
        }
        if let Some(s) = self.last_sent {
            at = at.max(s + p.min_gap);
        }
        if let Some(f) = self.digest.first_at {
            at = at.max(f + p.coalesce);
        }
        Some(at)
    }

    /// The notification to show now, if one is due. What the user already
    /// dealt with meanwhile (a conflict resolved during the quiet period, a
    /// sign-in done) is left out, judged by the `current` status; if nothing
    /// is left, nothing is shown.
    pub fn take(&mut self, now: Instant, current: &Status) -> Option<(String, String)> {
        let due = self.due_at()?;
        if now < due {
            return None;
        }
        let mut d = std::mem::take(&mut self.digest);
        d.conflicts = d.conflicts.min(current.conflicts);
        d.failed = d.failed.min(current.failed);
        d.needs_sign_in &= current.state == SyncState::NeedsSignIn;
        if current.state != SyncState::Stalled {
            d.stalled_pending = None;
        }
        if d.is_empty() {
            return None;
        }
        self.last_sent = Some(now);
        Some(d.message(self.locale))
    }

    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
        if !on {
            self.digest = Digest::default();
        }
    }
}

/// Shows a notification through the desktop's notification service. Blocking
/// D-Bus call, so callers run it on a blocking thread. A desktop without a
/// notification service just logs.
pub fn show(title: &str, body: &str) {
    let r = notify_rust::Notification::new()
        .appname("Ferry")
        .summary(title)
        .body(body)
        .icon("mail-send-receive")
        .timeout(notify_rust::Timeout::Milliseconds(8000))
        .show();
    match r {
        Ok(_) => tracing::info!(title, "notification shown"),
        Err(e) => tracing::warn!("could not show a notification: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            quiet_after_start: Duration::from_secs(30),
            quiet_after_reconnect: Duration::from_secs(15),
            min_gap: Duration::from_secs(120),
            coalesce: Duration::from_secs(3),
        }
    }
    fn conflict() -> EngineEvent {
        EngineEvent::ConflictNeedsUser { conflict_id: "c".into(), entity: "activity".into(), record_id: "a".into() }
    }
    fn failed() -> EngineEvent {
        EngineEvent::MutationFailed {
            mutation_id: "m".into(),
            entity: "e".into(),
            record_id: "r".into(),
            reason: "bad".into(),
        }
    }
    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }
    fn state(state: SyncState) -> Status {
        crate::tray::tests::status(state)
    }
    /// The status while `conflicts` and `failed` still wait for the user.
    fn needing(conflicts: u64, failed: u64) -> Status {
        Status { conflicts, failed, ..state(SyncState::Idle) }
    }

    #[test]
    fn quiet_after_start_then_one_summary() {
        let t0 = Instant::now();
        let mut n = Notifier::new(policy(), t0, true, Locale::En);
        for _ in 0..5 {
            n.on_event(&conflict(), t0 + s(1));
        }
        n.on_event(&failed(), t0 + s(2));
        let now = needing(5, 1);
        assert!(n.take(t0 + s(10), &now).is_none(), "quiet after start");
        let (title, body) = n.take(t0 + s(30), &now).expect("due after the quiet period");
        assert_eq!(title, "Ferry needs your decision");
        assert!(body.contains("5 conflicts to resolve"), "{body}");
        assert!(body.contains("1 change was refused"), "{body}");
        assert!(n.take(t0 + s(31), &now).is_none(), "digest emptied");
    }

    #[test]
    fn never_one_per_cycle() {
        let t0 = Instant::now();
        let mut n = Notifier::new(policy(), t0, true, Locale::En);
        let mut shown = 0;
        // A failure every 10 s for 10 minutes: at most one notification per min_gap.
        for i in 0..60 {
            let now = t0 + s(31 + i * 10);
            n.on_event(&failed(), now);
            if n.take(now + s(5), &needing(0, 60)).is_some() {
                shown += 1;
            }
        }
        assert!(shown <= 600 / 120 + 1, "{shown} notifications");
        assert!(shown >= 2);
    }

    #[test]
    fn reconnect_is_quiet_and_summarised() {
        // In the order it really happens: offline, back (the backlog starts
        // uploading), a conflict turns up mid-upload, the upload ends.
        let t0 = Instant::now();
        let mut n = Notifier::new(policy(), t0, true, Locale::En);
        let t = t0 + s(100);
        n.on_event(&EngineEvent::WentOffline { reason: "no route".into() }, t - s(60));
        n.on_status(&state(SyncState::Offline), t - s(60));
        n.on_status(&state(SyncState::Syncing), t);
        n.on_event(&conflict(), t + s(1));
        let now = needing(1, 0);
        assert!(n.take(t + s(5), &now).is_none(), "quiet after reconnecting, although the conflict came first");
        n.on_event(&EngineEvent::SyncCompleted { uploaded: 40, downloaded: 0, after_offline: true }, t + s(3));
        assert!(n.take(t + s(16), &now).is_none(), "still quiet while the upload just ended");
        let (_, body) = n.take(t + s(20), &now).unwrap();
        assert!(body.contains("1 conflict to resolve"), "{body}");
        assert!(body.contains("Back online: 40 changes uploaded"), "{body}");
    }

    #[test]
    fn what_the_user_dealt_with_meanwhile_is_left_out() {
        let t0 = Instant::now();
        let mut n = Notifier::new(policy(), t0, true, Locale::En);
        n.on_event(&conflict(), t0 + s(1));
        n.on_event(&conflict(), t0 + s(1));
        // One of the two resolved during the quiet period.
        let (_, body) = n.take(t0 + s(40), &needing(1, 0)).unwrap();
        assert!(body.contains("1 conflict to resolve"), "{body}");
        // Both resolved: nothing to say at all.
        n.on_event(&conflict(), t0 + s(300));
        assert!(n.take(t0 + s(400), &needing(0, 0)).is_none());
        assert!(n.due_at().is_none(), "the digest is spent");
        // A sign-in prompt after the user signed in again says nothing.
        n.on_event(&EngineEvent::NeedsSignIn { reason: "expired".into() }, t0 + s(500));
        assert!(n.take(t0 + s(700), &state(SyncState::Idle)).is_none());
    }

    #[test]
    fn ordinary_cycles_and_offline_say_nothing() {
        let t0 = Instant::now();
        let mut n = Notifier::new(policy(), t0, true, Locale::En);
        n.on_event(&EngineEvent::WentOffline { reason: "x".into() }, t0 + s(40));
        n.on_event(&EngineEvent::SyncCompleted { uploaded: 3, downloaded: 2, after_offline: false }, t0 + s(50));
        assert!(n.due_at().is_none());
    }

    #[test]
    fn disabled_drops_everything() {
        let t0 = Instant::now();
        let mut n = Notifier::new(policy(), t0, true, Locale::En);
        n.on_event(&conflict(), t0);
        n.set_enabled(false);
        n.on_event(&conflict(), t0 + s(1));
        assert!(n.take(t0 + s(60), &needing(2, 0)).is_none());
    }

    #[test]
    fn sign_in_title_wins() {
        let mut d = Digest { needs_sign_in: true, conflicts: 2, ..Default::default() };
        assert_eq!(d.message(Locale::En).0, "Ferry: sign-in needed");
        d.needs_sign_in = false;
        d.conflicts = 0;
        d.stalled_pending = Some(7);
        assert_eq!(d.message(Locale::En), ("Ferry: sync stalled".into(), "7 changes waiting and not moving.".into()));
    }

    #[test]
    fn norwegian_notifications() {
        let d = Digest { conflicts: 1, failed: 2, uploaded_after_offline: 40, ..Default::default() };
        let (title, body) = d.message(Locale::Nb);
        assert_eq!(title, "Ferry trenger en avgjørelse fra deg");
        assert_eq!(
            body,
            "1 konflikt må løses. 2 endringer ble avvist av serveren. Tilkoblet igjen: 40 endringer er lastet opp."
        );
        let d = Digest { needs_sign_in: true, stalled_pending: Some(1), ..Default::default() };
        let (title, body) = d.message(Locale::Nb);
        assert_eq!(title, "Ferry: du må logge inn");
        assert!(body.ends_with("1 endring venter og kommer ikke videre."), "{body}");
        // The notifier writes in the language it is set to.
        let t0 = Instant::now();
        let mut n = Notifier::new(policy(), t0, true, Locale::En);
        n.locale = Locale::Nb;
        n.on_event(&conflict(), t0 + s(1));
        let (_, body) = n.take(t0 + s(40), &needing(1, 0)).unwrap();
        assert_eq!(body, "1 konflikt må løses.");
    }
}
