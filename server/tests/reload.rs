//! SIGHUP reloads the service registry of a running `cas-server` process from its
//! configuration file, and keeps the old registry when the file is invalid.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

    let log = std::fs::File::create(folder.path().join("server.log")).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_cas-server"));
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CAS_")) {
        command.env_remove(name);
    }
    let server = ServerProcess {
        child: command
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cas-server"),
    };
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
