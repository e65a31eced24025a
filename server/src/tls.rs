//! The rustls server configuration: PEM certificate chain and key, the ring provider,
//! TLS 1.2 and 1.3 only, HTTP/1.1 by ALPN. The certificate can be replaced while the
//! server runs: new handshakes get the new one, and open connections keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use sha2::{Digest, Sha256};

/// Errors from building the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path} (setting tls_cert): {reason}; run `cas-server dev-certs` for a development certificate")]
    Certificate { path: String, reason: String },
    #[error("cannot read the private key {path} (setting tls_key): {reason}")]
    Key { path: String, reason: String },
    #[error("the certificate chain {path} (setting tls_cert) contains no certificate")]
    EmptyChain { path: String },
    #[error("the certificate and key do not form a usable TLS identity: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's certificate and key, read from their files at start and again on each
/// [`ReloadableCertificate::reload`].
#[derive(Debug)]
pub struct ReloadableCertificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCertificate {
    /// Loads the chain and key, which must match.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = load_certified_key(cert_path, key_path, &provider)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(current),
        })
    }

    /// Reads the files again and uses the new pair for the next handshakes. A pair that
    /// cannot be read or does not match is returned as an error, and the current pair
    /// stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = load_certified_key(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// Returns the SHA-256 fingerprint of the current leaf certificate in hex, for logs.
    pub fn fingerprint(&self) -> String {
        let current = self.current();
        current
            .cert
            .first()
            .map(|leaf| hex::encode(Sha256::digest(leaf)))
            .unwrap_or_default()
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&current)
    }
}

impl ResolvesServerCert for ReloadableCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// Loads the chain and key and builds the server configuration, whose certificate
/// [`ReloadableCertificate::reload`] can replace later.
pub fn reloadable_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Arc<ServerConfig>, Arc<ReloadableCertificate>), TlsError> {
    let certificate = Arc::new(ReloadableCertificate::load(cert_path, key_path)?);
    let provider = Arc::clone(&certificate.provider);

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&certificate) as Arc<dyn ResolvesServerCert>);

    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), certificate))
}

/// Loads the chain and key and builds the server configuration.
pub fn load_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    reloadable_server_config(cert_path, key_path).map(|(config, _)| config)
}

fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = load_chain(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;

    let certified = CertifiedKey::from_der(chain, key, provider)?;
    Ok(Arc::new(certified))
}

fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |e: rustls::pki_types::pem::Error| TlsError::Certificate {
        path: path.display().to_string(),
        reason: e.to_string(),
    };

    let chain = CertificateDer::pem_file_iter(path)
        .map_err(error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(error)?;
    if chain.is_empty() {
        return Err(TlsError::EmptyChain {
            path: path.display().to_string(),
        });
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev_certs::ensure_dev_certs;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn reload_replaces_valid_pair_only() {
        let folder = tempfile::tempdir().expect("temp dir");
        let first = ensure_dev_certs(folder.path(), &names(&["localhost"])).expect("certs");
        let certificate =
            ReloadableCertificate::load(&first.server_cert, &first.server_key).expect("load");
        let first_fingerprint = certificate.fingerprint();

        ensure_dev_certs(folder.path(), &names(&["localhost", "127.0.0.1"])).expect("renew");
        certificate.reload().expect("reload");
        let second_fingerprint = certificate.fingerprint();

        let other_folder = tempfile::tempdir().expect("temp dir");
        let other = ensure_dev_certs(other_folder.path(), &names(&["localhost"])).expect("certs");
        std::fs::copy(&other.server_cert, &first.server_cert).expect("copy");
        let mismatch = certificate.reload();

        assert_ne!(first_fingerprint, second_fingerprint);
        assert!(matches!(mismatch, Err(TlsError::Rustls(_))), "{mismatch:?}");
        assert_eq!(
            certificate.fingerprint(),
            second_fingerprint,
            "old pair kept"
        );
    }
}
