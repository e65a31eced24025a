//! The HTTP client for calls the server makes on its own: proxy callbacks and single
//! logout requests. Rustls verifies HTTPS certificates against the system roots plus an
//! optional PEM file. The client does not follow redirects.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Failure of an outbound call that gave no HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("cannot read the trust roots {path} (setting outbound_ca_file): {reason}")]
    Roots { path: String, reason: String },
    #[error("no trusted root certificate: the system has none and outbound_ca_file is not set")]
    NoRoots,
    #[error("TLS settings rejected: {0}")]
    Tls(#[from] rustls::Error),
    #[error("not an http(s) URL")]
    BadUrl,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
}

/// A pooled HTTP/1.1 client with a per-request time limit.
#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Outbound {
    /// Builds the client. `extra_roots` is a PEM file of certificates trusted besides
    /// the system's roots, such as the development CA.
    pub fn new(extra_roots: Option<&Path>, timeout: Duration) -> Result<Self, OutboundError> {
        let roots = trust_roots(extra_roots)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { client, timeout })
    }

    /// Sends a GET and returns the response status.
    pub async fn get(&self, url: &str) -> Result<StatusCode, OutboundError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(parse_uri(url)?)
            .body(Full::new(Bytes::new()))
            .map_err(|_| OutboundError::BadUrl)?;
        self.send(request).await
    }

    /// Sends a POST of an `application/x-www-form-urlencoded` body and returns the
    /// response status.
    pub async fn post_form(&self, url: &str, body: String) -> Result<StatusCode, OutboundError> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(parse_uri(url)?)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| OutboundError::BadUrl)?;
        self.send(request).await
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<StatusCode, OutboundError> {
        let call = self.client.request(request);
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(OutboundError::Timeout(self.timeout)),
            Ok(Err(error)) => Err(OutboundError::Request(describe(&error))),
            Ok(Ok(response)) => Ok(response.status()),
        }
    }
}

fn parse_uri(url: &str) -> Result<Uri, OutboundError> {
    let uri: Uri = url.parse().map_err(|_| OutboundError::BadUrl)?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(OutboundError::BadUrl),
    }
}

/// Returns the error with its causes, which name TLS failures such as an unknown issuer.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn trust_roots(extra: Option<&Path>) -> Result<RootCertStore, OutboundError> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped, but an unreadable configured file is an error.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);

    if let Some(path) = extra {
        for certificate in read_pem(path)? {
            roots.add(certificate).map_err(|e| OutboundError::Roots {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        }
    }
    if roots.is_empty() {
        return Err(OutboundError::NoRoots);
    }
    Ok(roots)
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, OutboundError> {
    let error = |reason: String| OutboundError::Roots {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(error("no certificate in the file".into()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_host() {
        assert!(parse_uri("https://127.0.0.1:9/cb?x=1").is_ok());
        assert!(parse_uri("http://localhost/").is_ok());
        assert!(matches!(
            parse_uri("ftp://host/"),
            Err(OutboundError::BadUrl)
        ));
        assert!(matches!(parse_uri("/relative"), Err(OutboundError::BadUrl)));
        assert!(matches!(parse_uri("https://"), Err(OutboundError::BadUrl)));
    }

    #[test]
    fn missing_roots_file_names_setting() {
        let result = Outbound::new(
            Some(Path::new("/nonexistent/ca.pem")),
            Duration::from_secs(1),
        );

        let message = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("outbound_ca_file"), "{message}");
    }

    #[tokio::test]
    async fn refused_connection_is_an_error() {
        let outbound = Outbound::new(None, Duration::from_secs(2)).expect("client");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);

        let result = outbound.get(&format!("http://127.0.0.1:{port}/")).await;

        assert!(
            matches!(result, Err(OutboundError::Request(_))),
            "{result:?}"
        );
    }
}
