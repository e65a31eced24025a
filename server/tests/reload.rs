//! SIGHUP reloads the service registry of a running `cas-server` process from its
//! configuration file and its TLS certificate from the certificate and key files, and
//! keeps the old registry or certificate when the new one is invalid.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use cas_server::dev_certs::ensure_dev_certs;
use common::redis_server::free_port;
use common::*;
use reqwest::{Client, StatusCode};

const APP_SERVICE: &str = r#"
[[services]]
id = "app"
name = "App"
match = "prefix"
pattern = "https://app.example.test/"
"#;

const OTHER_SERVICE: &str = r#"
[[services]]
id = "other"
name = "Other"
match = "exact"
pattern = "https://other.example.test/page"
"#;

const RENAMED_APP_SERVICE: &str = r##"
[[services]]
id = "app"
name = "App Renamed"
match = "prefix"
pattern = "https://app.example.test/"
theme_color = "#123456"
"##;

/// Two problems in one file: an invalid regular expression and a repeated id.
const BROKEN_SERVICES: &str = r#"
[[services]]
id = "app"
name = "App"
match = "regex"
pattern = "https://app\\.example\\.test/(unclosed"

[[services]]
id = "app"
name = "Again"
match = "prefix"
pattern = "https://again.example.test/"
"#;

/// A `cas-server` child process, killed by its PID when dropped.
struct ServerProcess {
    child: Child,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerProcess {
    fn send_hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -HUP failed");
    }
}

/// Starts `cas-server --config config` with its log in `log`, ignoring `CAS_*`
/// variables of the test's environment.
fn start_server(config: &Path, log: &Path) -> ServerProcess {
    let log = std::fs::File::create(log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_cas-server"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CAS_")) {
        command.env_remove(name);
    }
    ServerProcess {
        child: command
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cas-server"),
    }
}

fn write_config(path: &Path, settings: &str, services: &str) {
    std::fs::write(path, format!("{settings}\n{services}")).expect("write configuration");
}

async fn login_status(client: &Client, port: u16, service: &str) -> Option<StatusCode> {
    let response = client
        .get(format!("https://127.0.0.1:{port}/cas/login"))
        .query(&[("service", service)])
        .send()
        .await
        .ok()?;
    Some(response.status())
}

/// Polls until the login page for `service` returns `expected`, for at most ten seconds.
async fn wait_for_status(client: &Client, port: u16, service: &str, expected: StatusCode) {
    let mut last = None;
    for _ in 0..200 {
        last = login_status(client, port, service).await;
        if last == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{service}: expected {expected}, last status {last:?}");
}

#[tokio::test]
async fn hangup_reloads_services() {
    let database = TestDatabase::create(&[CLASSIC_SCHEMA]).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let names = vec!["127.0.0.1".to_owned()];
    let certs = ensure_dev_certs(&folder.path().join("certs"), &names).expect("dev certs");
    let port = free_port();
    let settings = format!(
        "listen = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\ndatabase_url = {:?}\npassword_encoding = \"plain\"\n",
        certs.server_cert.display().to_string(),
        certs.server_key.display().to_string(),
        database.url(),
    );
    let config = folder.path().join("cas.toml");
    write_config(&config, &settings, APP_SERVICE);

    let server = start_server(&config, &folder.path().join("server.log"));
    let client = client(&certs.ca_cert);
    wait_for_status(&client, port, APP, StatusCode::OK).await;
    assert_eq!(
        login_status(&client, port, OTHER_APP).await,
        Some(StatusCode::FORBIDDEN),
        "other is not registered yet"
    );

    write_config(&config, &settings, &format!("{APP_SERVICE}{OTHER_SERVICE}"));
    server.send_hangup();
    wait_for_status(&client, port, OTHER_APP, StatusCode::OK).await;

    let renamed = format!("{RENAMED_APP_SERVICE}{OTHER_SERVICE}");
    write_config(&config, &settings, &renamed);
    server.send_hangup();
    wait_for_page_text(&client, port, APP, "Sign in to App Renamed").await;
    wait_for_page_text(&client, port, APP, "--accent: #123456").await;

    write_config(&config, &settings, BROKEN_SERVICES);
    server.send_hangup();
    let logs = folder.path().join("server.log");
    wait_for_log_count(&logs, "service registry not reloaded", 1).await;
    let text = std::fs::read_to_string(&logs).expect("read log");
    assert!(text.contains("invalid regular expression"), "{text}");
    assert!(text.contains("service id app appears twice"), "{text}");
    assert_eq!(
        login_status(&client, port, OTHER_APP).await,
        Some(StatusCode::OK),
        "the previous registry stays"
    );
    assert_eq!(login_status(&client, port, APP).await, Some(StatusCode::OK));

    std::fs::write(&config, "services = [").expect("write");
    server.send_hangup();
    wait_for_log_count(&logs, "service registry not reloaded", 2).await;
    assert_eq!(
        login_status(&client, port, OTHER_APP).await,
        Some(StatusCode::OK),
        "an unreadable file keeps the registry too"
    );
}

/// Polls until the login page for `service` contains `needle`, for at most ten seconds.
async fn wait_for_page_text(client: &Client, port: u16, service: &str, needle: &str) {
    let mut last = String::new();
    for _ in 0..200 {
        let response = client
            .get(format!("https://127.0.0.1:{port}/cas/login"))
            .query(&[("service", service)])
            .send()
            .await;
        if let Ok(response) = response {
            last = response.text().await.unwrap_or_default();
            if last.contains(needle) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{service}: page never contained {needle:?}; last page: {last}");
}

/// Polls the log until `needle` appears `count` times, for at most ten seconds.
async fn wait_for_log_count(path: &Path, needle: &str, count: usize) {
    let mut text = String::new();
    for _ in 0..200 {
        text = std::fs::read_to_string(path).expect("read log");
        if text.matches(needle).count() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{needle:?} not logged {count} times: {text}");
}

/// Opens a TLS connection to the server on `port`, trusting only `ca_cert`.
async fn connect_tls(
    ca_cert: &Path,
    port: u16,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_cert).expect("read CA") {
        roots.add(cert.expect("CA certificate")).expect("add CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));

    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// Returns the SHA-256 fingerprint of the certificate the server presents.
async fn served_fingerprint(ca_cert: &Path, port: u16) -> String {
    let stream = connect_tls(ca_cert, port).await;
    let (_, connection) = stream.get_ref();
    let leaf = &connection.peer_certificates().expect("peer certificates")[0];
    hex::encode(Sha256::digest(leaf))
}

/// Returns the SHA-256 fingerprint of the first certificate in a PEM file.
fn file_fingerprint(path: &Path) -> String {
    let leaf = CertificateDer::pem_file_iter(path)
        .expect("read certificate")
        .next()
        .expect("one certificate")
        .expect("PEM certificate");
    hex::encode(Sha256::digest(&leaf))
}

/// Sends one HTTP request on an open TLS connection and returns the response's status line.
async fn status_line(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> String {
    let request = "GET /cas/login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok();
    let text = String::from_utf8_lossy(&response);
    text.lines().next().unwrap_or_default().to_owned()
}

/// Polls until the server presents the certificate with `expected` fingerprint, for at
/// most ten seconds.
async fn wait_for_fingerprint(ca_cert: &Path, port: u16, expected: &str) {
    let mut last = String::new();
    for _ in 0..200 {
        last = served_fingerprint(ca_cert, port).await;
        if last == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected certificate {expected}, still served {last}");
}

#[tokio::test]
async fn hangup_reloads_certificate() {
    let database = TestDatabase::create(&[CLASSIC_SCHEMA]).await;
    let folder = tempfile::tempdir().expect("temp dir");
    let cert_dir = folder.path().join("certs");
    let first = ensure_dev_certs(&cert_dir, &["127.0.0.1".to_owned()]).expect("dev certs");
    let port = free_port();
    let settings = format!(
        "listen = \"127.0.0.1:{port}\"\ntls_cert = {:?}\ntls_key = {:?}\ndatabase_url = {:?}\npassword_encoding = \"plain\"\n",
        first.server_cert.display().to_string(),
        first.server_key.display().to_string(),
        database.url(),
    );
    let config = folder.path().join("cas.toml");
    write_config(&config, &settings, APP_SERVICE);
    let logs = folder.path().join("server.log");
    let server = start_server(&config, &logs);
    let client = client(&first.ca_cert);
    wait_for_status(&client, port, APP, StatusCode::OK).await;
    let first_fingerprint = file_fingerprint(&first.server_cert);
    assert_eq!(
        served_fingerprint(&first.ca_cert, port).await,
        first_fingerprint
    );
    let mut open_connection = connect_tls(&first.ca_cert, port).await;

    // Other names make the same CA issue a new certificate and key in the same files.
    let names = ["127.0.0.1".to_owned(), "localhost".to_owned()];
    let second = ensure_dev_certs(&cert_dir, &names).expect("second certificate");
    let second_fingerprint = file_fingerprint(&second.server_cert);
    assert_ne!(first_fingerprint, second_fingerprint);
    server.send_hangup();
    wait_for_fingerprint(&first.ca_cert, port, &second_fingerprint).await;
    wait_for_log_count(&logs, "TLS certificate reloaded", 1).await;

    let status = status_line(&mut open_connection).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "open connection: {status:?}"
    );

    // A certificate from another CA next to the current key: the pair does not match.
    let other = ensure_dev_certs(&folder.path().join("other"), &names).expect("other certificate");
    std::fs::copy(&other.server_cert, &second.server_cert).expect("copy certificate");
    server.send_hangup();
    wait_for_log_count(&logs, "TLS certificate not reloaded", 1).await;

    assert_eq!(
        served_fingerprint(&first.ca_cert, port).await,
        second_fingerprint,
        "the previous certificate stays"
    );
    std::fs::write(&second.server_key, "not a key").expect("write key");
    server.send_hangup();
    wait_for_log_count(&logs, "TLS certificate not reloaded", 2).await;
    assert_eq!(
        served_fingerprint(&first.ca_cert, port).await,
        second_fingerprint,
        "an unreadable key keeps the certificate too"
    );
}
