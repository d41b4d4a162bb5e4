//! The engine's shared state and the operations that change who we talk to
//! (init, login, logout), plus status publishing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_protocol::ErrorCode;
use tokio::sync::{broadcast, watch, Notify};

use crate::auth::{AuthError, Session};
use crate::clock::{local_now_ms, ServerClock};
use crate::error::{EngineError, Result};
use crate::model::*;
use crate::resolve;
use crate::server_url::{parse_server_url, ServerOptions, ServerSetting};
use crate::store::Store;
use crate::transport::{Transport, TransportError};
use crate::EngineConfig;

/// What the loop knows that the database does not.
#[derive(Debug, Default, Clone)]
pub(crate) struct RunState {
    pub syncing: bool,
    pub offline: bool,
    pub error: Option<String>,
    pub needs_sign_in: Option<String>,
    pub next_retry_at: Option<i64>,
    pub progress: Option<Progress>,
    /// Mutations in the request being sent right now.
    pub in_flight: u64,
    pub last_progress_at: i64,
    pub stall_reported: bool,
}

/// The server connection: transport plus the signed-in session.
pub(crate) struct Link {
    pub server: String,
    pub user: String,
    pub transport: Transport,
    pub session: Session,
}

pub(crate) struct Inner {
    pub config: EngineConfig,
    pub store: Store,
    pub clock: ServerClock,
    pub status_tx: watch::Sender<Status>,
    pub events_tx: broadcast::Sender<EngineEvent>,
    /// Something to do: a local write, a timer change, a decision.
    pub wake: Notify,
    /// Skip the backoff wait on the next wake (sync now, connectivity).
    pub urgent: AtomicBool,
    pub run: Mutex<RunState>,
    link: Mutex<Option<Arc<Link>>>,
    /// One cycle at a time in this process.
    pub cycle_lock: tokio::sync::Mutex<()>,
}

pub(crate) const SIGNAL_FILE: &str = "outbox.signal";

impl Inner {
    pub fn new(config: EngineConfig, store: Store) -> Result<Inner> {
        let clock = ServerClock::new(store.setting_i64("clock_offset_ms")?);
        let needs_sign_in = store.setting("needs_sign_in")?;
        let (status_tx, _) = watch::channel(Status {
            state: SyncState::Idle,
            pending: 0,
            in_flight: 0,
            failed: 0,
            conflicts: 0,
            last_sync_at: None,
            last_error: None,
            next_retry_at: None,
            progress: None,
            server: None,
            user: None,
            paused: false,
        });
        let (events_tx, _) = broadcast::channel(256);
        let inner = Inner {
            config,
            store,
            clock,
            status_tx,
            events_tx,
            wake: Notify::new(),
            urgent: AtomicBool::new(false),
            run: Mutex::new(RunState {
                // Unknown until persisted: the stall clock then starts at the
                // oldest waiting change.
                last_progress_at: 0,
                needs_sign_in,
                offline: false,
                ..Default::default()
            }),
            link: Mutex::new(None),
            cycle_lock: Default::default(),
        };
        inner.restore_persisted_state()?;
        inner.publish();
        Ok(inner)
    }

    fn restore_persisted_state(&self) -> Result<()> {
        let mut run = self.run_state();
        run.offline = self.store.setting("offline")?.as_deref() == Some("1");
        run.error = self.store.setting("last_error")?;
        run.next_retry_at = self.store.setting_i64("next_retry_at")?;
        if let Some(t) = self.store.setting_i64("last_progress_at")? {
            run.last_progress_at = t;
        }
        Ok(())
    }

    pub fn run_state(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn emit(&self, event: EngineEvent) {
        tracing::info!(?event, "engine event");
        let _ = self.events_tx.send(event);
    }

    pub fn urgent(&self) {
        self.urgent.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// After any local change: tell the loop (here and in other processes)
    /// and refresh the status.
    pub fn local_write_done(&self) {
        self.signal_other_processes();
        self.wake.notify_one();
        self.publish();
    }

    /// Touches the signal file a running loop of this data dir (the daemon,
    /// the app) watches: something it must look at changed in the database
    /// (a write, a sign-in, pause or resume, the server).
    pub fn signal_other_processes(&self) {
        let signal = self.config.data_dir.join(SIGNAL_FILE);
        if let Err(e) = std::fs::write(&signal, b"1") {
            tracing::warn!(error = %e, "could not signal other Ferry processes of a change");
        }
    }

    /// Re-reads what other processes may have changed in the database:
    /// whether a sign-in is needed (`ferry login` clears it) and the last
    /// error. The pause flag is always read from the database.
    pub fn reload_shared_state(&self) {
        let (Ok(needs_sign_in), Ok(error)) = (self.store.setting("needs_sign_in"), self.store.setting("last_error"))
        else {
            return; // keep what we know; the next wake reads again
        };
        let mut run = self.run_state();
        run.needs_sign_in = needs_sign_in;
        run.error = error;
    }

    pub fn paused(&self) -> bool {
        self.store.setting("paused").ok().flatten().as_deref() == Some("1")
    }

    pub fn set_paused(&self, paused: bool) -> Result<()> {
        self.store.set_setting("paused", if paused { "1" } else { "0" })?;
        self.signal_other_processes();
        if !paused {
            self.urgent();
        }
        self.publish();
        Ok(())
    }

    pub fn policy(&self, entity: &str) -> Result<ConflictPolicy> {
        Ok(self.store.setting(&format!("policy.{entity}"))?.and_then(|p| ConflictPolicy::parse(&p)).unwrap_or_default())
    }

    pub fn pull_interval(&self) -> Duration {
        self.store
            .setting_i64("pull_interval_ms")
            .ok()
            .flatten()
            .filter(|ms| *ms >= 1000)
            .map(|ms| Duration::from_millis(ms as u64))
            .unwrap_or(self.config.pull_interval)
    }

    // -------------------------------------------------------------- link

    /// The connection to use, or why there is none.
    pub fn link(&self) -> Result<Arc<Link>> {
        let setting = ServerSetting::load(&self.store)?.ok_or(EngineError::NotConfigured)?;
        let user = self.store.setting("user")?.ok_or(EngineError::NotSignedIn)?;
        let mut guard = self.link.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = guard.as_ref() {
            if l.server == setting.url && l.user == user {
                return Ok(l.clone());
            }
        }
        let server = setting.url.clone();
        let link = Arc::new(Link {
            transport: transport_for(&setting)?,
            session: Session::new(&self.config.token_store, &user, &server),
            server,
            user,
        });
        *guard = Some(link.clone());
        Ok(link)
    }

    pub async fn init(&self, server_url: &str, options: ServerOptions) -> Result<bool> {
        let old = self.store.setting("server")?;
        // Options not given again for the same server are kept (the
        // window's server setting offers none): a CA or lab-network opt-in
        // is part of that server's setting, not of one command.
        let kept = match old.as_deref() {
            Some(old) if parse_server_url(server_url, true).is_ok_and(|url| url == old) => {
                ServerSetting::load(&self.store).ok().flatten().map(|s| s.options).unwrap_or_default()
            }
            _ => ServerOptions::default(),
        };
        let options = ServerOptions {
            allow_insecure_http: options.allow_insecure_http || kept.allow_insecure_http,
            ca_cert_pem: options.ca_cert_pem.or(kept.ca_cert_pem),
        };
        let url = parse_server_url(server_url, options.allow_insecure_http)?;
        let changing = old.as_deref().is_some_and(|old| old != url);
        if let Some(old) = old.as_deref().filter(|_| changing) {
            self.check_server_change(old, &url)?;
        }
        let setting = ServerSetting { url: url.clone(), options };
        let transport = transport_for(&setting)?;
        let reached = match transport.health(&self.clock).await {
            Ok(health) => {
                tracing::info!(version = %health.version, protocol = health.protocol, "server reached");
                true
            }
            // It answered, but not as a Ferry server does: a wrong URL,
            // never worth saving.
            Err(
                e @ (TransportError::BadResponse(_) | TransportError::Permanent { .. } | TransportError::Auth { .. }),
            ) => {
                return Err(EngineError::Invalid(format!(
                    "{url} was reached, but it is not a Ferry server ({}): check the URL",
                    not_ferry_detail(&e)
                )));
            }
            Err(e) => {
                tracing::warn!(error = %e, "server not reachable now; it is saved and will be tried when syncing");
                false
            }
        };
        setting.save(&self.store)?;
        if reached {
            self.save_clock()?;
        }
        if changing {
            // What the loop remembers of the old server says nothing of the
            // new one.
            // Organisations are each server's own (the move is allowed only
            // while nothing here carries that server's versions); whose
            // queued changes these are is kept.
            for key in ["needs_sign_in", "last_error", "offline", "next_retry_at", "org"] {
                self.store.remove_setting(key)?;
            }
            let mut run = self.run_state();
            run.needs_sign_in = None;
            run.error = None;
            run.offline = false;
            run.next_retry_at = None;
        }
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.signal_other_processes();
        self.urgent();
        self.publish();
        Ok(reached)
    }

    /// A data dir may move to another server only while nothing ties it to
    /// the old one: a typo in `ferry init` must not strand offline work, but
    /// versions from one server mean nothing to another.
    fn check_server_change(&self, old: &str, new: &str) -> Result<()> {
        if self.store.setting("pull_cursor")?.is_some() || self.store.has_server_versions()? {
            return Err(EngineError::Invalid(format!(
                "this data dir already syncs with {old}: its records carry that server's versions. Keep it for \
                 {old}, and use another data dir for {new} (`ferry --data-dir DIR init --server {new}`)"
            )));
        }
        if let Some(user) = self.store.setting("user")? {
            return Err(EngineError::Invalid(format!(
                "this data dir is signed in to {old} as {user}: run `ferry logout` first, then \
                 `ferry init --server {new}` (queued changes are kept)"
            )));
        }
        Ok(())
    }

    /// A data dir holds one account's work. Another account must not upload
    /// its queued changes under a different name, nor, from another
    /// organisation, see or change its records.
    ///
    /// Data dirs from before `account` was kept know only the organisation
    /// once signed out: that check still holds for them.
    fn check_account_change(&self, user: &str, org: &str) -> Result<()> {
        let owner = self.store.setting("account")?.or(self.store.setting("user")?);
        let elsewhere = format!("or use another data dir for {user} (`ferry --data-dir DIR init --server URL`)");
        match (self.store.setting("org")?, owner) {
            (Some(owner_org), owner) if owner_org != org => {
                if self.store.setting("pull_cursor")?.is_some() || self.store.holds_any_data()? {
                    let last = owner.map(|o| format!(" (signed in last as {o})")).unwrap_or_default();
                    return Err(EngineError::Invalid(format!(
                        "this data dir holds the records of organisation {owner_org}{last}, and {user} belongs \
                         to {org}, which must not see or change them: sign in as a user of {owner_org}, \
                         {elsewhere}"
                    )));
                }
            }
            (_, Some(owner)) if owner != user => {
                let c = self.store.counts()?;
                let queued = c.pending + c.failed + c.conflict;
                if queued > 0 {
                    return Err(EngineError::Invalid(format!(
                        "this data dir holds {queued} change(s) by {owner} not uploaded yet, which signed in as \
                         {user} would go up under {user}'s name: sign in as {owner} and sync them first (or \
                         discard them), {elsewhere}"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub async fn login(&self, user: &str, password: &str) -> Result<()> {
        if user.trim().is_empty() {
            return Err(EngineError::Invalid("user name is empty: pass --user NAME".into()));
        }
        let setting = ServerSetting::load(&self.store)?.ok_or(EngineError::NotConfigured)?;
        let server = setting.url.clone();
        let transport = transport_for(&setting)?;
        let tokens = transport.login(user, password, &self.clock).await.map_err(|e| match e {
            TransportError::Auth { message, .. } => {
                EngineError::Invalid(format!("sign-in refused: {message}; check them and sign in again"))
            }
            TransportError::RateLimited { retry_after, .. } => EngineError::Invalid(format!(
                "too many attempts; try again in {}",
                describe_wait(retry_after.unwrap_or(Duration::from_secs(60)))
            )),
            TransportError::Permanent { code: ErrorCode::AccountDisabled, message, .. } => {
                EngineError::Invalid(format!("sign-in refused: {message}"))
            }
            other => EngineError::Transport(other),
        })?;
        self.save_clock()?;
        if let Err(e) = self.check_account_change(user, &tokens.org) {
            // Refused here: do not leave the sign-in valid on the server.
            let _ = transport.logout(&tokens.refresh_token, &self.clock).await;
            return Err(e);
        }
        let session = Session::new(&self.config.token_store, user, &server);
        if let Err(e) = session.save_login(&tokens) {
            // A sign-in that cannot be kept is of no use; do not leave it
            // valid on the server either.
            let revoked = transport.logout(&tokens.refresh_token, &self.clock).await.is_ok();
            return Err(EngineError::TokenStore(format!(
                "{e}. The server accepted the password, but the sign-in could not be kept here, so it {}; \
                 fix the token store as above and run `ferry login` again",
                if revoked { "was revoked again" } else { "will expire on its own" }
            )));
        }
        self.store.set_setting("user", user)?;
        // Whose work this data dir holds; unlike `user`, kept after logout.
        self.store.set_setting("account", user)?;
        self.store.set_setting("org", &tokens.org)?;
        self.clear_sign_in_trouble()?;
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::info!(user, "signed in");
        self.signal_other_processes();
        self.urgent();
        self.publish();
        Ok(())
    }

    pub async fn logout(&self) -> Result<()> {
        let link = match self.link() {
            Ok(l) => Some(l),
            Err(EngineError::NotSignedIn) => None,
            Err(e) => return Err(e),
        };
        if let Some(link) = link {
            let refresh = link.session.clear().map_err(|e| EngineError::TokenStore(e.to_string()))?;
            if let Some(rt) = refresh {
                if let Err(e) = link.transport.logout(&rt, &self.clock).await {
                    tracing::warn!(error = %e, "could not revoke the sign-in on the server; it expires on its own");
                }
            }
            self.store.remove_setting("user")?;
        }
        // Signed out on purpose: nothing to renew, so no "sign-in needed".
        self.clear_sign_in_trouble()?;
        *self.link.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.signal_other_processes();
        self.publish();
        Ok(())
    }

    /// Forgets a "sign-in needed" and the error that came with it (here and,
    /// through the database, in every process of this data dir).
    fn clear_sign_in_trouble(&self) -> Result<()> {
        self.store.remove_setting("needs_sign_in")?;
        self.store.remove_setting("last_error")?;
        let mut run = self.run_state();
        run.needs_sign_in = None;
        run.error = None;
        Ok(())
    }

    pub fn save_clock(&self) -> Result<()> {
        self.store.set_setting("clock_offset_ms", &self.clock.offset_ms().to_string())
    }

    /// Records that the server refused to renew the sign-in.
    pub fn needs_sign_in(&self, reason: String) {
        let _ = self.store.set_setting("needs_sign_in", &reason);
        let first = self.run_state().needs_sign_in.replace(reason.clone()).is_none();
        if first {
            self.emit(EngineEvent::NeedsSignIn { reason });
        }
        self.publish();
    }

    pub fn auth_error(&self, e: AuthError, link: &Link) -> EngineError {
        match e {
            AuthError::NotSignedIn => EngineError::NotSignedIn,
            AuthError::NeedsSignIn(reason) => {
                self.needs_sign_in(reason.clone());
                // A `ferry login` in another process may have saved a new
                // sign-in (and cleared the flag) while this refresh failed:
                // then the flag just set is stale and must not stick.
                if link.session.signed_in_again() {
                    tracing::info!("signed in again meanwhile; the next sync uses the new sign-in");
                    let _ = self.clear_sign_in_trouble();
                    self.wake.notify_one();
                    self.publish();
                }
                EngineError::NeedsSignIn(reason)
            }
            AuthError::Transport(t) => EngineError::Transport(t),
            AuthError::Store(s) => EngineError::TokenStore(s),
        }
    }

    // -------------------------------------------------------------- status

    pub fn compute_status(&self) -> Status {
        let counts = self.store.counts().unwrap_or_default();
        let now = local_now_ms();
        let paused = self.paused();
        let mut run = self.run_state();
        if counts.pending == 0 {
            run.last_progress_at = now;
            run.stall_reported = false;
        }
        // The stall clock starts at the last progress or when the oldest
        // waiting change was made, whichever is later.
        let oldest = self.store.oldest_pending_edit().ok().flatten().map(|t| t - self.clock.offset_ms());
        let stall_start = run.last_progress_at.max(oldest.unwrap_or(i64::MIN));
        let stalled = counts.pending > 0 && now - stall_start >= self.config.stall_after.as_millis() as i64;
        let state = if run.needs_sign_in.is_some() {
            SyncState::NeedsSignIn
        } else if paused {
            SyncState::Paused
        } else if stalled {
            SyncState::Stalled
        } else if run.syncing {
            SyncState::Syncing
        } else if run.offline {
            SyncState::Offline
        } else if run.error.is_some() {
            SyncState::Error
        } else {
            SyncState::Idle
        };
        // In flight by this process, or — seen from another one (`ferry
        // status` while the daemon pushes) — by whoever marked the rows.
        let in_flight = run.in_flight.max(counts.in_flight).min(counts.pending);
        Status {
            state,
            pending: counts.pending - in_flight,
            in_flight,
            failed: counts.failed,
            conflicts: counts.conflict,
            last_sync_at: self.store.setting_i64("last_sync_at").ok().flatten(),
            last_error: run.needs_sign_in.clone().or_else(|| run.error.clone()),
            next_retry_at: run.next_retry_at,
            progress: run.progress,
            server: self.store.setting("server").ok().flatten(),
            user: self.store.setting("user").ok().flatten(),
            paused,
        }
    }

    pub fn publish(&self) {
        let status = self.compute_status();
        self.status_tx.send_if_modified(|s| {
            if *s != status {
                *s = status;
                true
            } else {
                false
            }
        });
    }

    // -------------------------------------------------------------- manual resolution

    /// Settles an open conflict as the user chose; returns the mutation it
    /// queued (`None` when the result is the server's version).
    pub fn resolve_manually(&self, conflict_id: &str, choice: &Resolution) -> Result<Option<uuid::Uuid>> {
        // The choice applies to the local side as it is when it is applied:
        // a write landing between reading and settling is judged again
        // with it, never superseded unseen.
        for _ in 0..20 {
            if let crate::store::Settled::Done(queued) = self.try_resolve_manually(conflict_id, choice)? {
                return Ok(queued);
            }
        }
        Err(EngineError::Invalid(format!(
            "conflict {conflict_id}: its record keeps changing here; try again in a moment"
        )))
    }

    fn try_resolve_manually(&self, conflict_id: &str, choice: &Resolution) -> Result<crate::store::Settled> {
        let head = self.store.conflict(conflict_id)?;
        let judged_up_to = self.store.queue_head(&head.entity, &head.record_id)?;
        let c = self.store.conflict(conflict_id)?;
        let result =
            resolve::apply_choice(c.local.as_ref(), c.remote.as_ref(), choice).map_err(EngineError::Invalid)?;
        let remote = ferry_protocol::RemoteRecord {
            entity: c.entity.clone(),
            record_id: c.record_id.clone(),
            version: c.remote_version,
            seq: 0,
            deleted: c.remote.is_none(),
            data: c.remote.clone(),
            edited_at: c.remote_edited_at,
            edited_by: c.remote_edited_by.clone(),
            server_time: 0,
        };
        let winner = if result == c.local {
            "local"
        } else if result == c.remote {
            "remote"
        } else {
            "merged"
        };
        let restorable = result != c.local;
        self.store.settle_conflict(
            &crate::store::Settle {
                entity: &c.entity,
                record_id: &c.record_id,
                remote: &remote,
                result,
                // A decision made now is an edit made now.
                edited_at: self.clock.now_ms(),
                policy: ConflictPolicy::Manual,
                winner,
                reason: "chosen by the user".into(),
                local: c.local.clone(),
                restorable,
                judged_up_to,
            },
            local_now_ms(),
        )
    }
}

/// The transport a server setting asks for.
fn transport_for(setting: &ServerSetting) -> Result<Transport> {
    Transport::with_ca(&setting.url, setting.options.ca_cert_pem.as_deref()).map_err(EngineError::Invalid)
}

/// "3 minutes", "40 seconds": a wait, for people.
fn describe_wait(wait: Duration) -> String {
    let secs = wait.as_secs_f64().ceil() as u64;
    if secs < 60 {
        format!("{} second{}", secs.max(1), if secs <= 1 { "" } else { "s" })
    } else {
        let minutes = secs.div_ceil(60);
        format!("{minutes} minute{}", if minutes == 1 { "" } else { "s" })
    }
}

/// What a non-Ferry answer to `/health` was, briefly.
fn not_ferry_detail(e: &TransportError) -> String {
    match e {
        TransportError::Permanent { status, .. } => format!("/health answered HTTP {status}"),
        TransportError::Auth { .. } => "/health asked for a sign-in".into(),
        TransportError::BadResponse(why) => why.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_people() {
        assert_eq!(describe_wait(Duration::from_millis(300)), "1 second");
        assert_eq!(describe_wait(Duration::from_secs(40)), "40 seconds");
        assert_eq!(describe_wait(Duration::from_secs(60)), "1 minute");
        assert_eq!(describe_wait(Duration::from_secs(900)), "15 minutes");
    }
}
