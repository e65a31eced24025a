//! Request limits and security headers. Oversized request lines, heads and bodies get a
//! clear 4xx, and slow or idle clients lose their connection. Connections past
//! `max_connections` are dropped. Every page and validation response carries the
//! security headers, and TLS below 1.2 is rejected.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, COOKIE};
use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Time a test waits for the server to close a connection. The server's header read
/// timeout is 10 s, so this leaves a margin for a loaded machine.
const CLOSE_LIMIT: Duration = Duration::from_secs(25);

async fn start() -> TestServer {
    TestServer::start(|config| config.database_url = None).await
}

fn client_config(
    server: &TestServer,
    versions: &[&'static SupportedProtocolVersion],
) -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(server.ca_cert()).expect("CA file") {
        roots
            .add(certificate.expect("CA certificate"))
            .expect("root added");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

async fn tls_connect_with(
    server: &TestServer,
    versions: &[&'static SupportedProtocolVersion],
) -> std::io::Result<TlsStream<TcpStream>> {
    let config = client_config(server, versions);
    let tcp = TcpStream::connect(("127.0.0.1", server.port())).await?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

async fn tls_connect(server: &TestServer) -> TlsStream<TcpStream> {
    tls_connect_with(server, rustls::DEFAULT_VERSIONS)
        .await
        .expect("TLS handshake")
}

/// Sends `request` while reading the response, so that a response sent before the
/// server read the whole request still arrives. Returns what arrived until the server
/// closed the connection or [`CLOSE_LIMIT`] passed.
async fn exchange(server: &TestServer, request: Vec<u8>) -> String {
    let stream = tls_connect(server).await;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let sender = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        writer
    });

    let mut answer = Vec::new();
    let read = tokio::time::timeout(CLOSE_LIMIT, reader.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "server kept the connection open");
    sender.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads one response head and returns it, leaving the connection open.
async fn read_head(stream: &mut TlsStream<TcpStream>) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).await.expect("read response");
        assert_eq!(read, 1, "connection closed inside the response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("missing {name}"))
        .to_str()
        .expect("ascii")
}

#[tokio::test]
async fn long_request_line_gets_414() {
    let server = start().await;
    let long_service = format!("{APP}?q={}", "a".repeat(9 * 1024));

    for language in ["en", "zh-CN"] {
        let response = server.login_page(Some(&long_service), language, None).await;

        assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
        assert!(header(response.headers(), "content-type").starts_with("text/html"));
        let page = response.text().await.expect("body");
        let message = match language {
            "en" => "The requested address is too long.",
            _ => "请求的地址过长。",
        };
        assert!(page.contains(message), "{page}");
    }

    let at_limit = format!(
        "/cas/health?{}",
        "a".repeat(8 * 1024 - "/cas/health?".len())
    );
    let response = server.client.get(server.url(&at_limit)).send().await;
    assert_eq!(response.expect("GET").status(), StatusCode::OK);
    server.stop().await;
}

/// Checks that a raw response is the server's own 431 page, with its security headers.
fn assert_head_too_large_page(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let lowered = answer.to_ascii_lowercase();
    assert!(
        lowered.contains("strict-transport-security: max-age="),
        "{answer}"
    );
    assert!(lowered.contains("content-security-policy:"), "{answer}");
    assert!(
        answer.contains("The request headers are too large."),
        "{answer}"
    );
}

#[tokio::test]
async fn request_line_near_head_limit_gets_414_page() {
    let server = start().await;
    let request = format!(
        "GET /cas/login?service={} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        "a".repeat(60 * 1024)
    );

    let answer = exchange(&server, request.into_bytes()).await;

    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert!(
        answer.contains("The requested address is too long."),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test]
async fn too_many_headers_get_431_page() {
    let server = start().await;
    let mut request =
        String::from("GET /cas/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for index in 0..120 {
        request.push_str(&format!("X-Filler-{index}: {index}\r\n"));
    }
    request.push_str("\r\n");

    let answer = exchange(&server, request.into_bytes()).await;

    assert_head_too_large_page(&answer);
    server.stop().await;
}

#[tokio::test]
async fn oversized_header_gets_431_page() {
    let server = start().await;
    let request = format!(
        "GET /cas/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: big={}\r\n\r\n",
        "c".repeat(70 * 1024)
    );

    let answer = exchange(&server, request.into_bytes()).await;

    assert_head_too_large_page(&answer);
    server.stop().await;
}

#[tokio::test]
async fn huge_head_gets_bare_431() {
    let server = start().await;
    let request = format!(
        "GET /cas/health HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: big={}\r\n\r\n",
        "c".repeat(140 * 1024)
    );

    let answer = exchange(&server, request.into_bytes()).await;

    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn headers_under_limits_are_served() {
    let server = start().await;
    let mut request = server
        .client
        .get(server.url("/cas/health"))
        .header(COOKIE, format!("big={}", "c".repeat(32 * 1024)));
    for index in 0..80 {
        request = request.header(format!("x-filler-{index}"), index.to_string());
    }

    let response = request.send().await.expect("GET health");

    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn oversized_form_gets_413() {
    let server = start().await;
    let password = "p".repeat(20 * 1024);

    for (language, message) in [
        ("en", "The submitted form is too large."),
        ("zh-CN", "提交的表单过大。"),
    ] {
        let response = server
            .client
            .post(server.url("/cas/login"))
            .header(ACCEPT_LANGUAGE, language)
            .form(&[("username", "demo"), ("password", password.as_str())])
            .send()
            .await
            .expect("POST login");

        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(set_cookie(response.headers()), None);
        let page = response.text().await.expect("body");
        assert!(page.contains(message), "{page}");
    }
    server.stop().await;
}

#[tokio::test]
async fn stalled_request_head_is_closed() {
    let server = start().await;
    let mut stream = tls_connect(&server).await;
    stream
        .write_all(b"GET /cas/login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("partial head sent");

    let mut answer = Vec::new();
    let read = tokio::time::timeout(CLOSE_LIMIT, stream.read_to_end(&mut answer)).await;

    assert!(read.is_ok(), "server kept the stalled connection");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer to a stalled head: {text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_past_maximum_are_dropped() {
    let mut server = TestServer::start(|config| {
        config.database_url = None;
        config.max_connections = 2;
    })
    .await;
    // The start-up check left a keep-alive connection in the shared client's pool;
    // dropping the client closes it and frees its slot.
    server.client = client(&server.ca_cert());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut stream = tls_connect(&server).await;
        stream
            .write_all(b"GET /cas/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("request sent");
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        idle.push(stream);
    }

    for _ in 0..5 {
        let refused = tls_connect_with(&server, rustls::DEFAULT_VERSIONS).await;
        assert!(refused.is_err(), "a connection past the maximum was served");
    }

    // The idle connections hold their slots only until the header read timeout closes
    // them, so a normal request gets through without the test closing anything.
    let mut served = false;
    for _ in 0..50 {
        let response = server.client.get(server.url("/cas/health")).send().await;
        if response.is_ok_and(|r| r.status() == StatusCode::OK) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        served,
        "no request was served after the idle connections timed out"
    );
    for stream in &mut idle {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(CLOSE_LIMIT, stream.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "an idle connection stayed open");
    }
    server.stop().await;
}

/// Checks the headers every HTML page carries.
fn assert_page_headers(what: &str, headers: &HeaderMap) {
    assert!(
        header(headers, "strict-transport-security").starts_with("max-age="),
        "{what}"
    );
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(headers, "cache-control"), "no-store", "{what}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{what}");

    let policy = header(headers, "content-security-policy");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    let script_source = policy
        .split(';')
        .map(str::trim)
        .find(|directive| directive.starts_with("script-src"))
        .unwrap_or_else(|| panic!("{what}: no script-src in {policy}"));
    assert!(
        !script_source.contains("'unsafe-inline'"),
        "{what}: {policy}"
    );
    assert!(policy.contains("default-src 'none'"), "{what}: {policy}");
}

/// Checks the headers every validation response carries.
fn assert_validation_headers(what: &str, headers: &HeaderMap) {
    assert!(
        header(headers, "strict-transport-security").starts_with("max-age="),
        "{what}"
    );
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{what}"
    );
    assert_eq!(header(headers, "cache-control"), "no-store", "{what}");
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let server = start().await;

    for language in ["en", "zh-CN"] {
        let form = server.login_page(Some(APP), language, None).await;
        assert_eq!(form.status(), StatusCode::OK);
        assert_page_headers("login form", form.headers());
    }

    let failed = server.login(Some(APP), "demo", "wrong-password").await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    assert_page_headers("failed login", failed.headers());

    let logged_in = server.login(None, "demo", "demo-password").await;
    assert_eq!(logged_in.status(), StatusCode::OK);
    assert_page_headers("logged-in page", logged_in.headers());
    let cookie = set_cookie(logged_in.headers()).expect("TGC");
    assert!(cookie.starts_with("TGC="), "{cookie}");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attributes.contains(&"Secure"), "{cookie}");
    assert!(attributes.contains(&"HttpOnly"), "{cookie}");
    assert!(
        attributes.iter().any(|a| a.starts_with("SameSite=")),
        "{cookie}"
    );

    let pair = tgc_pair(logged_in.headers()).expect("TGC pair");
    let session_page = server.login_page(None, "en", Some(&pair)).await;
    assert_page_headers("session page", session_page.headers());

    let missing = server.client.get(server.url("/cas/nowhere")).send().await;
    let missing = missing.expect("GET missing page");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_page_headers("not found page", missing.headers());

    let logout = server
        .client
        .get(server.url("/cas/logout"))
        .header(COOKIE, &pair)
        .send()
        .await;
    let logout = logout.expect("GET logout");
    assert_eq!(logout.status(), StatusCode::OK);
    assert_page_headers("logout page", logout.headers());
    server.stop().await;
}

#[tokio::test]
async fn validation_responses_carry_security_headers() {
    let server = start().await;

    for endpoint in [
        "serviceValidate",
        "p3/serviceValidate",
        "proxyValidate",
        "p3/proxyValidate",
        "validate",
    ] {
        let (ticket, _) = server.login_for_ticket(APP, "demo", "demo-password").await;
        let response = server
            .client
            .get(server.url(&format!("/cas/{endpoint}")))
            .query(&[("service", APP), ("ticket", ticket.as_str())])
            .send()
            .await
            .expect("validate");

        assert_eq!(response.status(), StatusCode::OK, "{endpoint}");
        assert_validation_headers(endpoint, response.headers());
        let body = response.text().await.expect("body");
        assert!(body.contains("demo"), "{endpoint}: {body}");
    }

    let (ticket, _) = server.login_for_ticket(APP, "demo", "demo-password").await;
    let saml = server
        .client
        .post(server.url("/cas/samlValidate"))
        .query(&[("TARGET", APP)])
        .header("content-type", "text/xml")
        .body(saml_request(&ticket))
        .send()
        .await
        .expect("samlValidate");
    assert_eq!(saml.status(), StatusCode::OK);
    assert_validation_headers("samlValidate", saml.headers());
    server.stop().await;
}

fn saml_request(ticket: &str) -> String {
    format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="_1" IssueInstant="2024-01-01T00:00:00Z"><samlp:AssertionArtifact>{ticket}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

#[tokio::test]
async fn tls_12_and_13_are_accepted() {
    let server = start().await;

    for (name, version) in [
        ("TLS 1.2", &rustls::version::TLS12),
        ("TLS 1.3", &rustls::version::TLS13),
    ] {
        let mut stream = tls_connect_with(&server, &[version])
            .await
            .unwrap_or_else(|e| panic!("{name} handshake failed: {e}"));
        stream
            .write_all(b"GET /cas/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("request sent");
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{name}: {head}");
    }
    server.stop().await;
}

/// Builds a TLS record with a ClientHello that offers only `version`, in the form a
/// TLS 1.0 or 1.1 client sends it: no extensions, two CBC cipher suites.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[0x5a; 32]);
    body.push(0);
    // TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA and TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend_from_slice(&[0x01, 0x00]);

    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&(body.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&body);

    let mut record = vec![0x16, version[0], version[1]];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn tls_10_and_11_are_rejected() {
    let server = start().await;

    for (name, version) in [("TLS 1.0", [0x03, 0x01]), ("TLS 1.1", [0x03, 0x02])] {
        let mut tcp = TcpStream::connect(("127.0.0.1", server.port()))
            .await
            .expect("connect");
        tcp.write_all(&legacy_client_hello(version))
            .await
            .expect("ClientHello sent");

        let mut answer = Vec::new();
        let read = tokio::time::timeout(CLOSE_LIMIT, tcp.read_to_end(&mut answer)).await;

        assert!(read.is_ok(), "{name}: server kept the connection open");
        // The whole response is one alert record (type 21) of level fatal (2), where a
        // server that accepted the version would send a ServerHello (type 22). rustls
        // 0.23 sends handshake_failure (40); protocol_version (70) is accepted too.
        assert_eq!(answer.len(), 7, "{name}: {answer:?}");
        assert_eq!(answer[0], 21, "{name}: {answer:?}");
        assert_eq!(answer[5], 2, "{name}: {answer:?}");
        assert!([40, 70].contains(&answer[6]), "{name}: {answer:?}");
    }
    server.stop().await;
}
