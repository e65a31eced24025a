//! The audit log: the server binary with JSON logs writes one line at target `audit`
//! per login, ticket and logout event, with digests in place of tickets and without any
//! password, ticket or cookie value.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use cas_server::dev_certs::ensure_dev_certs;
use common::*;
use reqwest::{Client, StatusCode};
use serde_json::Value;

/// A service the binary's default registry admits.
const SERVICE: &str = "https://127.0.0.1:8787/app";

/// The binary with JSON logs and the demo store; stderr is read by a thread.
struct Process {
    child: Child,
    lines: Receiver<String>,
    client: Client,
    address: String,
    seen: Vec<Value>,
    /// Login cookie values the server set, which must not reach the log.
    cookies: std::sync::Mutex<Vec<String>>,
    _folder: tempfile::TempDir,
}

impl Process {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts the binary with `extra` arguments after the common ones.
    fn start_with(extra: &[&str]) -> Self {
        let folder = tempfile::tempdir().expect("temp dir");
        let names = vec!["127.0.0.1".to_owned()];
        let certs = ensure_dev_certs(folder.path(), &names).expect("dev certs");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cas-server"))
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .args(["--password-encoding", "plain"])
            .args(["--throttle-user-failures", "2"])
            .arg("--tls-cert")
            .arg(&certs.server_cert)
            .arg("--tls-key")
            .arg(&certs.server_key)
            .arg("--sqlite-path")
            .arg(folder.path().join("users.db"))
            .args(extra)
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
        let mut process = Self {
            child,
            lines,
            client: client(&certs.ca_cert),
            address: String::new(),
            seen: Vec::new(),
            cookies: std::sync::Mutex::default(),
            _folder: folder,
        };
        let listening =
            process.wait_for(|line| line["fields"]["message"] == "CAS server listening");
        process.address = listening["fields"]["address"]
            .as_str()
            .expect("address")
            .to_owned();
        process
    }

    /// Reads log lines until one matches, keeping every line in `seen`.
    fn wait_for(&mut self, found: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("log line not found after {:?}", self.seen));
            let value: Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            self.seen.push(value.clone());
            if found(&value) {
                return value;
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.address)
    }

    /// Opens a form and posts it; `with_cookie` false leaves out the login cookie.
    async fn login(&self, username: &str, password: &str, with_cookie: bool) -> reqwest::Response {
        self.login_with_header(username, password, with_cookie, None)
            .await
    }

    /// Like [`Self::login`], with an extra request `header` on the POST.
    async fn login_with_header(
        &self,
        username: &str,
        password: &str,
        with_cookie: bool,
        header: Option<(&str, &str)>,
    ) -> reqwest::Response {
        let page = self
            .client
            .get(self.url("/cas/login"))
            .query(&[("service", SERVICE)])
            .send()
            .await
            .expect("GET login");
        let cookie = login_cookie_pair(page.headers()).expect("login cookie");
        let value = cookie.trim_start_matches("CASLOGIN=").to_owned();
        self.cookies.lock().expect("lock").push(value);
        let login_ticket = login_ticket(&page.text().await.expect("body"));

        let mut request = self.client.post(self.url("/cas/login")).form(&[
            ("username", username),
            ("password", password),
            ("lt", login_ticket.as_str()),
            ("service", SERVICE),
        ]);
        if with_cookie {
            request = request.header("cookie", cookie);
        }
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        request.send().await.expect("POST login")
    }

    async fn validate(&self, ticket: &str) -> String {
        let response = self
            .client
            .get(self.url("/cas/p3/serviceValidate"))
            .query(&[("service", SERVICE), ("ticket", ticket)])
            .send()
            .await
            .expect("validate");
        response.text().await.expect("body")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn audit_events(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|line| line["target"] == "audit")
        .map(|line| &line["fields"])
        .collect()
}

fn find<'a>(events: &[&'a Value], event: &str, reason: Option<&str>) -> &'a Value {
    events
        .iter()
        .find(|fields| {
            fields["event"] == event && reason.is_none_or(|reason| fields["reason"] == reason)
        })
        .copied()
        .unwrap_or_else(|| panic!("no {event} {reason:?} event in {events:#?}"))
}

#[tokio::test]
async fn audit_events_carry_no_secrets() {
    let mut process = Process::start();

    let unknown = process.login("nobody", "secret-guess-1", true).await;
    let wrong = process.login("demo", "secret-guess-2", true).await;
    let no_cookie = process.login("demo", "demo-password", false).await;
    let success = process.login("demo", "demo-password", true).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_cookie.status(), StatusCode::BAD_REQUEST);
    assert_eq!(success.status(), StatusCode::SEE_OTHER);
    let tgc = tgc_pair(success.headers()).expect("TGC");
    let ticket = ticket_from_location(success.headers());
    process.login("nobody", "secret-guess-3", true).await;
    let throttled = process.login("nobody", "secret-guess-4", true).await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);

    let valid = process.validate(&ticket).await;
    let replay = process.validate(&ticket).await;
    assert!(valid.contains("<cas:user>demo</cas:user>"), "{valid}");
    assert!(replay.contains("INVALID_TICKET"), "{replay}");
    let logout = process
        .client
        .get(process.url("/cas/logout"))
        .header("cookie", &tgc)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    process.wait_for(|line| line["fields"]["event"] == "logout");

    let events = audit_events(&process.seen);
    let failed_unknown = find(&events, "login_failed", Some("unknown_user"));
    assert_eq!(failed_unknown["user"], "nobody");
    assert_eq!(failed_unknown["client"], "127.0.0.1");
    assert_eq!(
        find(&events, "login_failed", Some("bad_password"))["user"],
        "demo"
    );
    assert_eq!(
        find(&events, "login_failed", Some("bad_token"))["client"],
        "127.0.0.1"
    );
    assert_eq!(
        find(&events, "login_failed", Some("throttled"))["user"],
        "nobody"
    );
    let succeeded = find(&events, "login_succeeded", None);
    assert_eq!(succeeded["user"], "demo");
    assert_eq!(succeeded["service"], SERVICE);
    assert_eq!(succeeded["client"], "127.0.0.1");
    let issued = find(&events, "ticket_issued", None);
    assert_eq!(issued["ticket"], cas_core::ticket::digest_for_log(&ticket));
    assert_eq!(issued["service"], SERVICE);
    assert_eq!(find(&events, "ticket_validated", None)["user"], "demo");
    assert_eq!(
        find(&events, "ticket_rejected", None)["code"],
        "INVALID_TICKET"
    );
    let tgt = tgc.trim_start_matches("TGC=");
    assert_eq!(
        find(&events, "logout", None)["session"],
        cas_core::ticket::digest_for_log(tgt)
    );

    let all = process
        .seen
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let cookies = process.cookies.lock().expect("lock").clone();
    assert_eq!(cookies.len(), 6);
    let secrets = ["secret-guess", "demo-password", ticket.as_str(), tgt];
    for secret in secrets
        .into_iter()
        .chain(cookies.iter().map(String::as_str))
    {
        assert!(!all.contains(secret), "{secret} in the log");
    }
}

/// Behind a trusted proxy the audit events name the forwarded client; a peer that is not
/// trusted is logged as itself whatever header it sends.
#[tokio::test]
async fn audit_client_follows_trusted_proxy() {
    let forwarded = Some(("x-forwarded-for", "198.51.100.7, 10.1.2.3"));
    let mut proxied = Process::start_with(&["--trusted-proxies", "10.0.0.0/8,127.0.0.1/32"]);
    let failed = proxied
        .login_with_header("nobody", "guess", true, forwarded)
        .await;
    let succeeded = proxied
        .login_with_header("demo", "demo-password", true, forwarded)
        .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(succeeded.status(), StatusCode::SEE_OTHER);
    proxied.wait_for(|line| line["fields"]["event"] == "login_succeeded");

    let mut direct = Process::start();
    let spoofed = direct
        .login_with_header("nobody", "guess", true, forwarded)
        .await;
    assert_eq!(spoofed.status(), StatusCode::UNAUTHORIZED);
    direct.wait_for(|line| line["fields"]["reason"] == "unknown_user");

    let proxied_events = audit_events(&proxied.seen);
    let direct_events = audit_events(&direct.seen);
    assert_eq!(
        find(&proxied_events, "login_failed", Some("unknown_user"))["client"],
        "198.51.100.7"
    );
    assert_eq!(
        find(&proxied_events, "login_succeeded", None)["client"],
        "198.51.100.7"
    );
    assert_eq!(
        find(&direct_events, "login_failed", Some("unknown_user"))["client"],
        "127.0.0.1"
    );
}
