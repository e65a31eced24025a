//! Clients that send a request body too slowly lose their connection slot after the form
//! read timeout instead of holding it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestServer;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

async fn tls_connect(server: &TestServer) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(server.ca_cert()).expect("CA file") {
        roots
            .add(certificate.expect("CA certificate"))
            .expect("root added");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();

    let tcp = TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

#[tokio::test]
async fn stalled_form_body_times_out() {
    let server = TestServer::start(|config| config.database_url = None).await;
    let mut stream = tls_connect(&server).await;

    let head = "POST /cas/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nus";
    stream
        .write_all(head.as_bytes())
        .await
        .expect("request head sent");
    let started = Instant::now();

    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);

    assert!(read.is_ok(), "server kept the stalled connection for 20 s");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "timed out after {:?}",
        started.elapsed()
    );
    server.stop().await;
}
