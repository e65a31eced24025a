//! A small W3C WebDriver client for driving headless Chromium through chromedriver.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::process::{free_port, ManagedProcess};

/// A chromedriver process with one headless Chromium session.
pub struct Chromium {
    http: reqwest::Client,
    session_url: String,
    _driver: ManagedProcess,
}

impl Chromium {
    /// Starts chromedriver and a headless Chromium that trusts only `spki_sha256` as an
    /// extra TLS key and requests pages in `accept_language`.
    pub async fn start(dir: &Path, spki_sha256: &str, accept_language: &str) -> Self {
        let port = free_port();
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        let driver = ManagedProcess::start("chromedriver", command, dir);

        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_for_driver(&http, &base).await;

        let profile = dir.join(format!("chromium-profile-{port}"));
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1024,768".to_owned(),
            format!("--lang={accept_language}"),
            format!("--ignore-certificate-errors-spki-list={spki_sha256}"),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
                "prefs": {"intl.accept_languages": accept_language},
            },
        }}});
        let created = post(&http, &format!("{base}/session"), capabilities).await;
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"));
        Self {
            http,
            session_url: format!("{base}/session/{id}"),
            _driver: driver,
        }
    }

    /// Opens `url` and waits for the page to load.
    pub async fn open(&self, url: &str) {
        self.command("url", json!({ "url": url })).await;
    }

    /// Returns the address of the current page.
    pub async fn current_url(&self) -> String {
        let value = self.get("url").await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Returns the HTML of the current page.
    pub async fn page_source(&self) -> String {
        let value = self.get("source").await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Types `text` into the element matched by the CSS `selector`.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector).await;
        self.command(&format!("element/{element}/value"), json!({ "text": text }))
            .await;
    }

    /// Clicks the element matched by the CSS `selector`.
    pub async fn click(&self, selector: &str) {
        let element = self.find(selector).await;
        self.command(&format!("element/{element}/click"), json!({}))
            .await;
    }

    /// Returns the cookies the browser holds for the current page, as WebDriver objects.
    pub async fn cookies(&self) -> Vec<Value> {
        let value = self.get("cookie").await;
        value.as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let value = self.get("screenshot").await;
        let encoded = value.as_str().unwrap_or_default();
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path, png)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    async fn find(&self, selector: &str) -> String {
        let body = json!({ "using": "css selector", "value": selector });
        let value = self.command("element", body).await;
        let element = value
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str);
        element
            .unwrap_or_else(|| panic!("no element for {selector}: {value}"))
            .to_owned()
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        post(&self.http, &format!("{}/{path}", self.session_url), body).await["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/{path}", self.session_url))
            .send()
            .await;
        let response = response.unwrap_or_else(|e| panic!("chromedriver GET {path} failed: {e}"));
        let value: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
        value["value"].clone()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Ending the session closes Chromium before chromedriver's process group is stopped.
        let url = self.session_url.clone();
        let _ =
            std::thread::spawn(move || reqwest::blocking::Client::new().delete(url).send()).join();
    }
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> Value {
    let response = http
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url} failed: {e}"));
    let value: Value = response.json().await.unwrap_or_else(|e| panic!("{e}"));
    if value["value"].get("error").is_some() {
        panic!("WebDriver error for {url}: {value}");
    }
    value
}

async fn wait_for_driver(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http.get(format!("{base}/status")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not answer at {base} within 20 s");
}
