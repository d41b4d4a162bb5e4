//! Which server this data dir talks to and who is signed in: the server
//! setting (`init`), signing in and out, the connection in use, and what
//! a refused sign-in means for the loop ("sign-in needed").

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferry_protocol::ErrorCode;

use crate::auth::{AuthError, Session};
use crate::error::{EngineError, Result};
use crate::model::EngineEvent;
use crate::server_url::{parse_server_url, ServerOptions, ServerSetting};
use crate::state::Inner;
use crate::store::settings;
use crate::transport::{Transport, TransportError};

/// The server connection: transport plus the signed-in session.
pub(crate) struct Link {
    pub server: String,
    pub user: String,
    pub transport: Transport,
    pub session: Session,
}

/// The connection in use, made again when the server or user changes.
#[derive(Default)]
pub(crate) struct Links(Mutex<Option<Arc<Link>>>);

impl Links {
    fn lock(&self) -> MutexGuard<'_, Option<Arc<Link>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the connection: the next use makes one from the settings.
    pub fn forget(&self) {
        *self.lock() = None;
    }
}

/// The connection to use, or why there is none.
pub(crate) fn link(inner: &Inner) -> Result<Arc<Link>> {
    let setting = ServerSetting::load(&inner.store)?.ok_or(EngineError::NotConfigured)?;
    let user = inner.store.setting(settings::USER)?.ok_or(EngineError::NotSignedIn)?;
    let mut guard = inner.links.lock();
    if let Some(l) = guard.as_ref() {
        if l.server == setting.url && l.user == user {
            return Ok(l.clone());
        }
    }
    let server = setting.url.clone();
    let link = Arc::new(Link {
        transport: transport_for(&setting)?,
        session: Session::new(&inner.config.token_store, &user, &server),
        server,
        user,
    });
    *guard = Some(link.clone());
    Ok(link)
}

pub(crate) async fn init(inner: &Inner, server_url: &str, options: ServerOptions) -> Result<bool> {
    let old = inner.store.setting(settings::SERVER)?;
    // Options not given again for the same server are kept (the
    // window's server setting offers none): a CA or lab-network opt-in
    // is part of that server's setting, not of one command.
    let kept = match old.as_deref() {
        Some(old) if parse_server_url(server_url, true).is_ok_and(|url| url == old) => {
            ServerSetting::load(&inner.store).ok().flatten().map(|s| s.options).unwrap_or_default()
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
        check_server_change(inner, old, &url)?;
    }
    let setting = ServerSetting { url: url.clone(), options };
    let transport = transport_for(&setting)?;
    let reached = match transport.health(&inner.clock).await {
        Ok(health) => {
            tracing::info!(version = %health.version, protocol = health.protocol, "server reached");
            true
        }
        // It answered, but not as a Ferry server does: a wrong URL,
        // never worth saving.
        Err(e @ (TransportError::BadResponse(_) | TransportError::Permanent { .. } | TransportError::Auth { .. })) => {
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
    setting.save(&inner.store)?;
    if reached {
        inner.save_clock()?;
    }
    if changing {
        // What the loop remembers of the old server says nothing of the
        // new one.
        // Organisations are each server's own (the move is allowed only
        // while nothing here carries that server's versions); whose
        // queued changes these are is kept.
        inner.store.remove_setting(settings::NEEDS_SIGN_IN)?;
        inner.store.remove_setting(settings::LAST_ERROR)?;
        inner.store.remove_setting(settings::LAST_PROBLEM)?;
        inner.store.remove_setting(settings::OFFLINE)?;
        inner.store.remove_setting(settings::NEXT_RETRY_AT)?;
        inner.store.remove_setting(settings::ORG)?;
        let mut run = inner.run_state();
        run.needs_sign_in = None;
        run.error = None;
        run.problem = None;
        run.offline = false;
        run.next_retry_at = None;
    }
    inner.links.forget();
    inner.signal_other_processes();
    inner.urgent();
    inner.publish();
    Ok(reached)
}

/// A data dir may move to another server only while nothing ties it to
/// the old one: a typo in `ferry init` must not strand offline work, but
/// versions from one server mean nothing to another.
fn check_server_change(inner: &Inner, old: &str, new: &str) -> Result<()> {
    if inner.store.setting(settings::PULL_CURSOR)?.is_some() || inner.store.has_server_versions()? {
        return Err(EngineError::Invalid(format!(
            "this data dir already syncs with {old}: its records carry that server's versions. Keep it for \
             {old}, and use another data dir for {new} (`ferry --data-dir DIR init --server {new}`)"
        )));
    }
    if let Some(user) = inner.store.setting(settings::USER)? {
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
// Folding the first arm's test into its guard would let another
// organisation with nothing here fall through to the same-organisation arm.
#[allow(clippy::collapsible_match)]
fn check_account_change(inner: &Inner, user: &str, org: &str) -> Result<()> {
    let owner = inner.store.setting(settings::ACCOUNT)?.or(inner.store.setting(settings::USER)?);
    let elsewhere = format!("or use another data dir for {user} (`ferry --data-dir DIR init --server URL`)");
    match (inner.store.setting(settings::ORG)?, owner) {
        (Some(owner_org), owner) if owner_org != org => {
            if inner.store.setting(settings::PULL_CURSOR)?.is_some() || inner.store.holds_any_data()? {
                let last = owner.map(|o| format!(" (signed in last as {o})")).unwrap_or_default();
                return Err(EngineError::Invalid(format!(
                    "this data dir holds the records of organisation {owner_org}{last}, and {user} belongs \
                     to {org}, which must not see or change them: sign in as a user of {owner_org}, \
                     {elsewhere}"
                )));
            }
        }
        (_, Some(owner)) if owner != user => {
            let c = inner.store.counts()?;
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

pub(crate) async fn login(inner: &Inner, user: &str, password: &str) -> Result<()> {
    if user.trim().is_empty() {
        return Err(EngineError::Invalid("user name is empty: pass --user NAME".into()));
    }
    let setting = ServerSetting::load(&inner.store)?.ok_or(EngineError::NotConfigured)?;
    let server = setting.url.clone();
    let transport = transport_for(&setting)?;
    let tokens = transport.login(user, password, &inner.clock).await.map_err(|e| match e {
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
    inner.save_clock()?;
    if let Err(e) = check_account_change(inner, user, &tokens.org) {
        // Refused here: do not leave the sign-in valid on the server. If
        // the server cannot be told, the sign-in expires on its own.
        let _ = transport.logout(&tokens.refresh_token, &inner.clock).await;
        return Err(e);
    }
    let session = Session::new(&inner.config.token_store, user, &server);
    if let Err(e) = session.save_login(&tokens) {
        // A sign-in that cannot be kept is of no use; do not leave it
        // valid on the server either.
        let revoked = transport.logout(&tokens.refresh_token, &inner.clock).await.is_ok();
        return Err(EngineError::TokenStore(format!(
            "{e}. The server accepted the password, but the sign-in could not be kept here, so it {}; \
             fix the token store as above and run `ferry login` again",
            if revoked { "was revoked again" } else { "will expire on its own" }
        )));
    }
    inner.store.set_setting(settings::USER, &user.to_owned())?;
    // Whose work this data dir holds; unlike `user`, kept after logout.
    inner.store.set_setting(settings::ACCOUNT, &user.to_owned())?;
    inner.store.set_setting(settings::ORG, &tokens.org)?;
    clear_sign_in_trouble(inner)?;
    inner.links.forget();
    tracing::info!(user, "signed in");
    inner.signal_other_processes();
    inner.urgent();
    inner.publish();
    Ok(())
}

pub(crate) async fn logout(inner: &Inner) -> Result<()> {
    let link = match link(inner) {
        Ok(l) => Some(l),
        Err(EngineError::NotSignedIn) => None,
        Err(e) => return Err(e),
    };
    if let Some(link) = link {
        let refresh = link.session.clear().map_err(|e| EngineError::TokenStore(e.to_string()))?;
        if let Some(rt) = refresh {
            if let Err(e) = link.transport.logout(&rt, &inner.clock).await {
                tracing::warn!(error = %e, "could not revoke the sign-in on the server; it expires on its own");
            }
        }
        inner.store.remove_setting(settings::USER)?;
    }
    // Signed out on purpose: nothing to renew, so no "sign-in needed".
    clear_sign_in_trouble(inner)?;
    inner.links.forget();
    inner.signal_other_processes();
    inner.publish();
    Ok(())
}

/// Forgets a "sign-in needed" and the error that came with it (here and,
/// through the database, in every process of this data dir).
fn clear_sign_in_trouble(inner: &Inner) -> Result<()> {
    inner.store.remove_setting(settings::NEEDS_SIGN_IN)?;
    inner.store.remove_setting(settings::LAST_ERROR)?;
    inner.store.remove_setting(settings::LAST_PROBLEM)?;
    let mut run = inner.run_state();
    run.needs_sign_in = None;
    run.error = None;
    run.problem = None;
    Ok(())
}

/// Records that the server refused to renew the sign-in.
pub(crate) fn needs_sign_in(inner: &Inner, reason: String) {
    if let Err(e) = inner.store.set_setting(settings::NEEDS_SIGN_IN, &reason) {
        // This process still knows (run state below); other processes
        // find out at their own next refresh.
        tracing::warn!(error = %e, "cannot record that a sign-in is needed");
    }
    let first = inner.run_state().needs_sign_in.replace(reason.clone()).is_none();
    if first {
        inner.emit(EngineEvent::NeedsSignIn { reason });
    }
    inner.publish();
}

pub(crate) fn auth_error(inner: &Inner, e: AuthError, link: &Link) -> EngineError {
    match e {
        AuthError::NotSignedIn => EngineError::NotSignedIn,
        AuthError::NeedsSignIn(reason) => {
            needs_sign_in(inner, reason.clone());
            // A `ferry login` in another process may have saved a new
            // sign-in (and cleared the flag) while this refresh failed:
            // then the flag just set is stale and must not stick.
            if link.session.signed_in_again() {
                tracing::info!("signed in again meanwhile; the next sync uses the new sign-in");
                if let Err(e) = clear_sign_in_trouble(inner) {
                    // The next cycle, with the new sign-in, clears it again.
                    tracing::warn!(error = %e, "cannot clear the sign-in-needed flag");
                }
                inner.wake.notify_one();
                inner.publish();
            }
            EngineError::NeedsSignIn(reason)
        }
        AuthError::Transport(t) => EngineError::Transport(t),
        AuthError::Store(s) => EngineError::TokenStore(s),
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
