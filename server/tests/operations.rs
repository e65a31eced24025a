//! Operations endpoints and process behaviour: health, readiness, Prometheus metrics,
//! JSON logs and graceful shutdown on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cas_server::dev_certs::ensure_dev_certs;
use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

async fn plain_server(database: &TestDatabase) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
    })
    .await
}

async fn users() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ])
    .await
}

async fn get(server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = server
        .client
        .get(server.url(path))
        .send()
        .await
        .expect("GET");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn health_and_ready_answer_200() {
    let database = users().await;
    let server = plain_server(&database).await;

    assert_eq!(
        get(&server, "/cas/health").await,
        (StatusCode::OK, "ok\n".into())
    );
    assert_eq!(
        get(&server, "/cas/ready").await,
        (StatusCode::OK, "ready\n".into())
    );
    let post = server
        .client
        .post(server.url("/cas/ready"))
        .send()
        .await
        .expect("POST");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}

/// A TCP relay to MariaDB that the test can cut, to make the user database unreachable.
struct Relay {
    port: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let tasks = Arc::new(Mutex::new(Vec::new()));

        let registry = Arc::clone(&tasks);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    let Ok(mut upstream) = TcpStream::connect("127.0.0.1:3306").await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                });
                registry.lock().expect("lock").push(relay);
            }
        });
        tasks.lock().expect("lock").push(accept);
        Self { port, tasks }
    }

    /// Closes the listener and every relayed connection.
    fn cut(&self) {
        for task in self.tasks.lock().expect("lock").drain(..) {
            task.abort();
        }
    }
}

#[tokio::test]
async fn ready_is_503_without_database() {
    let database = users().await;
    let relay = Relay::start().await;
    let url = database
        .url()
        .replace(":3306/", &format!(":{}/", relay.port));
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
    })
    .await;
    assert_eq!(get(&server, "/cas/ready").await.0, StatusCode::OK);

    relay.cut();

    let (status, body) = get(&server, "/cas/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: user database\n");
    assert_eq!(get(&server, "/cas/health").await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_logins_and_validations() {
    let database = users().await;
    let server = plain_server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    server
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;
    server
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;
    server.login(Some(APP), "alice", "wrong").await;

    let response = server
        .client
        .get(server.url("/cas/metrics"))
        .send()
        .await
        .expect("GET");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for (name, value) in [
        ("strict-transport-security", "max-age=31536000"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(response.headers()[name], value, "{name}");
    }
    let text = response.text().await.expect("body");

    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for line in [
        "cas_logins_total{outcome=\"success\"} 1",
        "cas_logins_total{outcome=\"bad_credentials\"} 1",
        "cas_validations_total{code=\"success\"} 1",
        "cas_validations_total{code=\"INVALID_TICKET\"} 1",
        "cas_live_tickets{kind=\"session\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
    assert!(
        text.contains("cas_ticket_store_operation_seconds_bucket{le=\"0.0001\",operation=\"take_service_ticket\"}")
            || text.contains("cas_ticket_store_operation_seconds_count{operation=\"take_service_ticket\"} 2"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_path_is_configurable() {
    let database = users().await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.metrics_path = "/internal/metrics".into();
    })
    .await;

    let (status, text) = get(&server, "/internal/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("# TYPE cas_logins counter"), "{text}");
    assert!(
        text.contains("cas_logins_total{outcome=\"success\"} 0"),
        "{text}"
    );
    assert_eq!(get(&server, "/cas/metrics").await.0, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// The binary, started with JSON logs on a port the OS chooses; stderr is read by a thread.
struct Process {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    _folder: tempfile::TempDir,
}

impl Process {
    fn start_json() -> Self {
        let folder = tempfile::tempdir().expect("temp dir");
        let names = vec!["127.0.0.1".to_owned()];
        let certs = ensure_dev_certs(folder.path(), &names).expect("dev certs");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cas-server"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--password-encoding", "plain"])
            .arg("--tls-cert")
            .arg(&certs.server_cert)
            .arg("--tls-key")
            .arg(&certs.server_key)
            .arg("--sqlite-path")
            .arg(folder.path().join("users.db"))
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cas-server");

        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Self {
            child,
            lines,
            _folder: folder,
        }
    }

    /// Returns log lines until one has `message`, parsing each as JSON.
    fn wait_for(&self, message: &str) -> Vec<serde_json::Value> {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no log line with {message:?} after {seen:?}"));
            let value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let found = value["fields"]["message"] == message;
            seen.push(value);
            if found {
                return seen;
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn json_logs_and_graceful_sigterm() {
    let mut process = Process::start_json();

    let lines = process.wait_for("CAS server listening");
    let listening = lines.last().expect("line");
    assert_eq!(listening["level"], "INFO");
    assert!(listening["timestamp"].is_string(), "{listening}");
    assert!(listening["fields"]["address"]
        .as_str()
        .is_some_and(|a| a.starts_with("127.0.0.1:")));
    assert_eq!(listening["fields"]["tickets"], "memory");

    let killed = Command::new("kill")
        .args(["-TERM", &process.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());

    process.wait_for("server stopped");
    let status = process.child.wait().expect("wait");
    assert!(status.success(), "{status}");
}
