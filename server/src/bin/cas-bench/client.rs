//! HTTPS client connections for the load generator: rustls with ring trusting one CA,
//! HTTP/1.1 with keep-alive through hyper's connection API.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, COOKIE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// An HTTPS origin (`https://ip:port`) that connections are opened to.
#[derive(Clone)]
pub struct Target {
    address: SocketAddr,
    authority: HeaderValue,
    connector: TlsConnector,
}

impl Target {
    /// Parses `https://ip:port[/…]` and trusts the PEM certificates in `ca`.
    pub fn new(url: &str, ca: &Path) -> Result<Self, BenchError> {
        let rest = url
            .strip_prefix("https://")
            .ok_or("the URL must start with https://")?;
        let authority = rest.split('/').next().unwrap_or_default();
        let address: SocketAddr = authority.parse()?;

        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca)? {
            roots.add(certificate?)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];

        Ok(Self {
            address,
            authority: HeaderValue::from_str(authority)?,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Opens one TLS connection and completes the HTTP/1.1 handshake.
    pub async fn connect(&self) -> Result<Connection, BenchError> {
        let tcp = TcpStream::connect(self.address).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(self.address.ip().into());
        let tls = self.connector.connect(name, tcp).await?;

        let (sender, connection) = http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection {
            sender,
            authority: self.authority.clone(),
        })
    }
}

/// One keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    authority: HeaderValue,
}

/// The parts of a response the scenarios read.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Connection {
    /// Sends a GET with an optional Cookie header and reads the whole response.
    pub async fn get(&mut self, path: &str, cookie: Option<&str>) -> Result<Reply, BenchError> {
        let mut request = self.request(Method::GET, path, Bytes::new())?;
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert(COOKIE, HeaderValue::from_str(cookie)?);
        }
        self.send(request).await
    }

    /// Sends a form POST with an optional Cookie header and reads the whole response.
    pub async fn post_form(
        &mut self,
        path: &str,
        form: String,
        cookie: Option<&str>,
    ) -> Result<Reply, BenchError> {
        let mut request = self.request(Method::POST, path, Bytes::from(form))?;
        let form_type = HeaderValue::from_static("application/x-www-form-urlencoded");
        request.headers_mut().insert(CONTENT_TYPE, form_type);
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert(COOKIE, HeaderValue::from_str(cookie)?);
        }
        self.send(request).await
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, BenchError> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.authority.clone())
            .body(Full::new(body))?;
        Ok(request)
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> Result<Reply, BenchError> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}
