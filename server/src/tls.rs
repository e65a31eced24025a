//! The rustls server configuration: PEM certificate chain and key, the ring provider,
//! TLS 1.2 and 1.3 only, HTTP/1.1 by ALPN.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

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

/// Loads the chain and key and builds the server configuration.
pub fn load_server_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_chain(cert_path)?;
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.display().to_string(),
        reason: e.to_string(),
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;

    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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
