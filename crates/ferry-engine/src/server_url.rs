//! Which server a data dir talks to, and on what terms: the URL rules and
//! the TLS trust kept with the server setting.
//!
//! A sign-in sends the password, and every request a token, so plain
//! `http://` is refused for any host that is not this machine before a
//! single request leaves: over a network it would carry both in clear
//! text. A lab network may opt out explicitly ([`ServerOptions::
//! allow_insecure_http`]). Organisations with their own certificate
//! authority give its certificate, which is kept (as PEM text, so moving
//! the file later breaks nothing) with the server URL.

use std::net::IpAddr;
use std::path::Path;

use crate::error::{EngineError, Result};
use crate::store::settings::{SERVER, SERVER_CA_CERT, SERVER_INSECURE_HTTP};
use crate::store::Store;

/// How to reach the server, besides its URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerOptions {
    /// Allow `http://` to a host that is not loopback (a lab network you
    /// trust; passwords and tokens cross it unencrypted).
    pub allow_insecure_http: bool,
    /// A private certificate authority (PEM) to trust besides the public
    /// ones; see [`read_ca_cert`].
    pub ca_cert_pem: Option<String>,
}

/// The server setting as a data dir keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerSetting {
    pub url: String,
    pub options: ServerOptions,
}

impl ServerSetting {
    /// The stored setting, checked again: one saved by an older Ferry may
    /// break today's rules, and must not be used as it is.
    pub fn load(store: &Store) -> Result<Option<ServerSetting>> {
        let Some(url) = store.setting(SERVER)? else { return Ok(None) };
        let options = ServerOptions {
            allow_insecure_http: store.setting(SERVER_INSECURE_HTTP)?.unwrap_or(false),
            ca_cert_pem: store.setting(SERVER_CA_CERT)?,
        };
        check_not_plain_over_network(&url, options.allow_insecure_http)?;
        Ok(Some(ServerSetting { url, options }))
    }

    pub fn save(&self, store: &Store) -> Result<()> {
        store.set_setting(SERVER, &self.url)?;
        if self.options.allow_insecure_http {
            store.set_setting(SERVER_INSECURE_HTTP, &true)?;
        } else {
            store.remove_setting(SERVER_INSECURE_HTTP)?;
        }
        match &self.options.ca_cert_pem {
            Some(pem) => store.set_setting(SERVER_CA_CERT, pem)?,
            None => store.remove_setting(SERVER_CA_CERT)?,
        }
        Ok(())
    }
}

/// `server_url` checked and normalised (no trailing slash), or an error
/// naming the problem.
pub(crate) fn parse_server_url(server_url: &str, allow_insecure_http: bool) -> Result<String> {
    let trimmed = server_url.trim().trim_end_matches('/');
    let example = "give one like https://sync.example.org or http://127.0.0.1:8080";
    let bad = |why: String| EngineError::Invalid(format!("{server_url:?} is not a server URL ({why}): {example}"));
    let url = reqwest::Url::parse(trimmed).map_err(|e| bad(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("the scheme must be http or https, not {}", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host name".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("no user name or password in the URL; sign in with `ferry login`".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no ?query or #fragment".into()));
    }
    // The parser's form, minus the slash it adds to an empty path, so the
    // same server is always spelled the same way.
    let normalised = url.as_str().trim_end_matches('/').to_string();
    check_not_plain_over_network(&normalised, allow_insecure_http)?;
    Ok(normalised)
}

/// Refuses `http://` to anything but this machine, unless allowed.
fn check_not_plain_over_network(url: &str, allow_insecure_http: bool) -> Result<()> {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err(EngineError::Invalid(format!(
            "the saved server URL {url:?} is not a URL: run `ferry init --server URL`"
        )));
    };
    if parsed.scheme() != "http" || allow_insecure_http || parsed.host_str().is_some_and(is_loopback_host) {
        return Ok(());
    }
    let host = parsed.host_str().unwrap_or_default();
    let https = {
        // Only a suggestion for the message: http URLs always take https
        // and dropping a port, so the results can be ignored.
        let mut u = parsed.clone();
        let _ = u.set_scheme("https");
        if u.port() == Some(80) || u.port() == Some(8080) {
            let _ = u.set_port(None);
        }
        u.as_str().trim_end_matches('/').to_string()
    };
    Err(EngineError::Invalid(format!(
        "{url} is plain HTTP to {host}, another machine: your password and every change would cross the network \
         unencrypted, so Ferry sends nothing there. Use the server's https:// address (e.g. {https}); on a lab \
         network you trust, pass --allow-insecure-http to `ferry init`"
    )))
}

/// This machine: `localhost` and loopback addresses, the only places plain
/// HTTP never leaves.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The PEM certificate(s) of a private certificate authority at `path`,
/// checked to parse.
pub fn read_ca_cert(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        EngineError::Invalid(format!("cannot read the CA certificate {}: {e}; give a PEM file", path.display()))
    })?;
    check_ca_pem(&text).map_err(|why| EngineError::Invalid(format!("{}: {why}", path.display())))?;
    Ok(text)
}

/// Whether `pem` holds at least one certificate reqwest can use.
pub(crate) fn check_ca_pem(pem: &str) -> std::result::Result<(), String> {
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it; --ca-cert wants the CA's certificate".into()
        );
    }
    reqwest::Certificate::from_pem_bundle(pem.as_bytes())
        .map(|_| ())
        .map_err(|e| format!("not a usable PEM certificate: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        for (given, expected) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("  https://sync.example.org/ ", "https://sync.example.org"),
            ("HTTPS://Sync.Example.org", "https://sync.example.org"),
            ("https://example.org/ferry/", "https://example.org/ferry"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("http://127.3.2.1", "http://127.3.2.1"),
        ] {
            assert_eq!(parse_server_url(given, false).unwrap(), expected, "{given}");
        }
        for (given, says) in [
            ("http://exa mple.com", "invalid"),
            ("example.org", "relative URL"),
            ("ftp://example.org", "http or https"),
            ("http://", "empty host"),
            ("https://user:pw@example.org", "no user name or password"),
            ("https://example.org/?x=1", "query"),
            ("", "relative URL"),
        ] {
            let err = parse_server_url(given, false).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("https://sync.example.org"), "{given}: {err}");
        }
    }

    #[test]
    fn plain_http_leaves_this_machine_only_when_allowed() {
        for given in ["http://sync.example.org", "http://192.168.1.20:8080", "http://[2001:db8::1]:8080"] {
            let err = parse_server_url(given, false).unwrap_err().to_string();
            assert!(
                err.contains("unencrypted") && err.contains("https://") && err.contains("--allow-insecure-http"),
                "{err}"
            );
            assert!(parse_server_url(given, true).is_ok(), "{given}");
        }
        let err = parse_server_url("http://sync.example.org:8080/ferry", false).unwrap_err().to_string();
        assert!(err.contains("https://sync.example.org/ferry"), "{err}");
    }

    #[test]
    fn ca_certificates_must_be_pem() {
        assert!(check_ca_pem("hello").unwrap_err().contains("no PEM certificate"));
        let broken = "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(check_ca_pem(broken).is_err());
    }
}
