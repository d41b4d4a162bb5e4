//! HTTPS: rustls on the listening socket, with certificates that can be
//! replaced while serving.
//!
//! [`CertStore`] holds the current certificate chain and key; every new
//! handshake asks it, so [`CertStore::reload`] (the CLI calls it on SIGHUP)
//! changes what new connections get without touching open ones. A reload
//! that fails (a half-written file, a key that does not match) keeps the
//! old certificate and says why.
//!
//! [`TlsListener`] is what `axum::serve` accepts from: handshakes run as
//! tasks of their own, so one slow or silent client never holds up the
//! others' connections.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// A handshake not done in this time is given up (its socket closed).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const ACCEPT_QUEUE: usize = 256;

/// Where the certificate chain and private key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate new handshakes get.
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore").field("files", &self.files).finish()
    }
}

impl CertStore {
    /// Loads the files; an error names the file and what is wrong with it.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>> {
        let key = load_certified_key(&files)?;
        Ok(Arc::new(Self { files, current: RwLock::new(Arc::new(key)) }))
    }

    /// Reads the files again. New connections get the new certificate;
    /// open ones keep theirs. On error nothing changes.
    pub fn reload(&self) -> Result<()> {
        let key = load_certified_key(&self.files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        Ok(())
    }

    fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("cannot set up TLS: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        // HTTP/1.1 only: the server is built without HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey> {
    let bad = |path: &Path, why: String| Error::Tls(format!("TLS file {}: {why}", path.display()));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad(&files.cert, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(&files.cert, "no PEM certificate in it (--tls-cert wants the certificate chain)".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| bad(&files.key, format!("{e} (--tls-key wants the PEM private key)")))?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(|e| {
        Error::Tls(format!(
            "the key in {} does not fit the certificate in {}: {e}",
            files.key.display(),
            files.cert.display()
        ))
    })
}

/// TLS connections for `axum::serve`: accepts TCP, hands each connection's
/// handshake to a task of its own and yields the finished ones.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, certs: &Arc<CertStore>) -> Result<Self> {
        let acceptor = certs.acceptor()?;
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(ACCEPT_QUEUE);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, retry.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            // The receiver is gone only when the server stops.
                            let _ = tx.send((tls, peer)).await;
                        }
                        // Scanners and clients that do not trust the
                        // certificate end here; nothing to answer them.
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local, accepting })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accepting task only ends when aborted by our drop.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
