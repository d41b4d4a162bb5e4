//! Certificates made in the test: a private certificate authority, as an
//! organisation running its own would have, and server certificates it
//! signs for `127.0.0.1` and `localhost`.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A certificate authority with its key, to sign server certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate and key written as PEM files.
pub struct ServerCert {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `path` (what `ferry init --ca-cert` reads).
    pub fn write_pem(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.pem()).expect("write CA certificate");
        path.to_path_buf()
    }

    /// A certificate for `127.0.0.1` and `localhost`, written as
    /// `NAME.crt` (leaf then CA: a full chain) and `NAME.key` in `dir`.
    pub fn issue(&self, dir: &Path, name: &str) -> ServerCert {
        let params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("params");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign server certificate");
        let cert_path = dir.join(format!("{name}.crt"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.pem())).expect("write certificate");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        ServerCert { cert_path, key_path }
    }
}
