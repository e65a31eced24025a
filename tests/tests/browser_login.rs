//! A real browser through the whole system: headless Chromium driven by chromedriver signs
//! in at the CAS server through one edge, switches the login page's language, reaches a
//! second site by single sign-on, checks the cookie flags and logs out. With `CAS_UPDATE_SCREENSHOTS=1` it also saves the login
//! page in both languages under docs/screenshots/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_tests::process::repo_root;
use e2e_tests::stack::{EdgeOptions, Stack, StackOptions};
use e2e_tests::webdriver::Chromium;
use serde_json::Value;

/// Returns the base64 SHA-256 of the server certificate's public key, the form Chromium's
/// `--ignore-certificate-errors-spki-list` takes, so the browser trusts exactly this key.
fn server_key_hash(work_dir: &Path) -> String {
    let script = "openssl x509 -in server.pem -pubkey -noout \
                  | openssl pkey -pubin -outform der \
                  | openssl dgst -sha256 -binary | base64";
    let output = Command::new("sh")
        .args(["-c", script])
        .current_dir(work_dir)
        .output();
    let output = output.unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        output.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Returns where screenshots go: docs/screenshots/ when asked for, else the stack folder.
fn screenshot_dir(stack: &Stack) -> PathBuf {
    if std::env::var("CAS_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        return repo_root().join("docs/screenshots");
    }
    stack.work_dir().to_path_buf()
}

/// Waits until the browser's address starts with `prefix`, after a form submission.
async fn wait_for_url(browser: &Chromium, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = browser.current_url().await;
        if url.starts_with(prefix) {
            return url;
        }
        assert!(
            Instant::now() < deadline,
            "browser stayed at {url}, expected {prefix}…"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page source contains `needle`, after following a link.
async fn wait_for_source(browser: &Chromium, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let source = browser.page_source().await;
        if source.contains(needle) {
            return source;
        }
        assert!(
            Instant::now() < deadline,
            "page never contained {needle:?}: {source}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cookie<'a>(cookies: &'a [Value], name: &str) -> Option<&'a Value> {
    cookies.iter().find(|c| c["name"] == name)
}

fn assert_flags(cookie: &Value, path: &str) {
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Lax", "{cookie}");
    assert_eq!(cookie["path"], path, "{cookie}");
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_login_sso_and_logout() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let second_site = stack.start_edge(EdgeOptions::default()).await;
    let key_hash = server_key_hash(stack.work_dir());
    let shots = screenshot_dir(&stack);
    std::fs::create_dir_all(&shots).unwrap_or_else(|e| panic!("{e}"));

    // A protected page sends the browser to the Chinese login page.
    let browser = Chromium::start(stack.work_dir(), &key_hash, "zh-CN").await;
    browser
        .open(&format!("{}/private/report.html", stack.edge))
        .await;
    let login_url = browser.current_url().await;
    assert!(
        login_url.starts_with(&format!("{}/login?service=", stack.cas)),
        "{login_url}"
    );
    let form = browser.page_source().await;
    assert!(form.contains(r#"lang="zh-CN""#), "{form}");
    assert!(form.contains("<h1>登录到 "), "{form}");
    assert!(form.contains(">English</a>"), "{form}");
    assert!(form.contains(r#"id="warn""#), "{form}");
    browser.screenshot(&shots.join("login-zh-CN.png")).await;

    // The language link shows the same form in English, for the same service, and keeps
    // the choice in a cookie that the login post then carries.
    browser.click("nav.language a").await;
    let switched = wait_for_source(&browser, r#"<html lang="en">"#).await;
    assert!(switched.contains("<h1>Sign in to "), "{switched}");
    assert!(switched.contains(">简体中文</a>"), "{switched}");
    let switched_url = browser.current_url().await;
    assert!(switched_url.contains("lang=en"), "{switched_url}");
    let kept_service = format!(
        r#"name="service" value="{}/private/report.html""#,
        stack.edge
    );
    assert!(switched.contains(&kept_service), "{switched}");
    let cas_cookies = browser.cookies().await;
    let language = cookie(&cas_cookies, "CASLANG").unwrap_or_else(|| panic!("{cas_cookies:?}"));
    assert_eq!(language["value"], "en", "{language}");
    assert_flags(language, "/cas");

    // Signing in lands on the origin page, which shows the user.
    browser.type_into("#username", "alice").await;
    browser.type_into("#password", "alice-password").await;
    browser.click("button[type=submit]").await;
    wait_for_url(&browser, &format!("{}/private/report.html", stack.edge)).await;
    let page = browser.page_source().await;
    assert!(page.contains(r#"id="user">alice<"#), "{page}");

    let edge_cookies = browser.cookies().await;
    let session =
        cookie(&edge_cookies, "cas_edge_session").unwrap_or_else(|| panic!("{edge_cookies:?}"));
    assert_flags(session, "/");

    // The second site signs in through the CAS session, without a form.
    browser
        .open(&format!("{second_site}/other/index.html"))
        .await;
    let url = wait_for_url(&browser, &second_site).await;
    assert!(url.ends_with("/other/index.html"), "{url}");
    let page = browser.page_source().await;
    assert!(page.contains(r#"id="user">alice<"#), "{page}");

    // The CAS cookie carries every flag and the narrow path.
    browser.open(&format!("{}/login", stack.cas)).await;
    let cas_cookies = browser.cookies().await;
    let tgc = cookie(&cas_cookies, "TGC").unwrap_or_else(|| panic!("{cas_cookies:?}"));
    assert_flags(tgc, "/cas");

    // Logout removes the CAS cookie, so the next login shows the form again.
    browser.open(&format!("{}/logout", stack.cas)).await;
    assert!(
        cookie(&browser.cookies().await, "TGC").is_none(),
        "logout must remove the TGC"
    );
    browser
        .open(&format!(
            "{}/login?service={}/again",
            stack.cas, second_site
        ))
        .await;
    let form_again = browser.page_source().await;
    assert!(form_again.contains(r#"id="password""#), "{form_again}");
    drop(browser);

    // The English login page, for the screenshot and the language check.
    let english = Chromium::start(stack.work_dir(), &key_hash, "en-US").await;
    english
        .open(&format!("{}/private/report.html", stack.edge))
        .await;
    let form = english.page_source().await;
    assert!(form.contains(r#"lang="en""#), "{form}");
    assert!(form.contains(">简体中文</a>"), "{form}");
    english.screenshot(&shots.join("login-en.png")).await;

    stack.assert_running();
}
