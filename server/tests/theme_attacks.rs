//! Hostile uses of the theme and language features: symbolic links that lead out of
//! `theme_dir`, files whose size the file system does not report, the language cookie
//! on responses that shared caches may store, and methods other than GET and HEAD.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use cas_core::registry::ServiceDefinition;
use cas_server::config::{Config, ConfigLayer};
use common::*;
use reqwest::header::{ALLOW, CACHE_CONTROL, SET_COOKIE};
use reqwest::{Method, StatusCode};

const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\nnot a real image";

fn themed_service(logo: &str) -> ServiceDefinition {
    ServiceDefinition {
        id: "themed".into(),
        name: "Themed".into(),
        kind: "prefix".into(),
        pattern: "https://themed.example.test/".into(),
        theme_logo: Some(logo.into()),
        ..Default::default()
    }
}

/// Creates `outside/secret.txt` and `themes/` with a real logo, `logo.png`, and a
/// symbolic link named `leak.png` to the secret.
fn theme_folders() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().expect("temp dir");
    let outside = root.path().join("outside");
    let themes = root.path().join("themes");
    std::fs::create_dir(&outside).expect("outside dir");
    std::fs::create_dir(&themes).expect("themes dir");

    std::fs::write(outside.join("secret.txt"), "SECRET-OUTSIDE").expect("write secret");
    std::fs::write(themes.join("logo.png"), PNG_BYTES).expect("write logo");
    symlink(outside.join("secret.txt"), themes.join("leak.png")).expect("symlink");
    (root, themes)
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    server
        .client
        .get(server.url(path))
        .send()
        .await
        .expect("GET")
}

fn load_error(theme_dir: &Path, logo: &str) -> String {
    let layer = ConfigLayer {
        services: Some(vec![themed_service(logo)]),
        theme_dir: Some(theme_dir.to_owned()),
        ..Default::default()
    };
    match Config::from_layer(ConfigLayer::defaults().overridden_by(layer)) {
        Ok(_) => String::new(),
        Err(error) => error.to_string(),
    }
}

#[tokio::test]
async fn outside_link_is_not_served() {
    let (_root, themes) = theme_folders();
    symlink("/proc/self/environ", themes.join("environ.png")).expect("symlink");
    let directory = themes.clone();
    let server = TestServer::start(move |config| {
        config.theme_dir = Some(directory);
        add_services(config, vec![themed_service("logo.png")]);
    })
    .await;

    for path in ["/cas/themes/leak.png", "/cas/themes/environ.png"] {
        let response = get(&server, path).await;
        let status = response.status();
        let body = response.text().await.expect("body");

        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!body.contains("SECRET-OUTSIDE"), "{path}");
        assert!(!body.contains("PATH="), "{path}");
    }
    let logo = get(&server, "/cas/themes/logo.png").await;
    assert_eq!(logo.status(), StatusCode::OK);

    server.stop().await;
}

#[tokio::test]
async fn inside_link_is_served() {
    let (_root, themes) = theme_folders();
    symlink("logo.png", themes.join("alias.png")).expect("symlink");
    let directory = themes.clone();
    let server = TestServer::start(move |config| {
        config.theme_dir = Some(directory);
        add_services(config, vec![themed_service("alias.png")]);
    })
    .await;

    let response = get(&server, "/cas/themes/alias.png").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG_BYTES);

    server.stop().await;
}

#[test]
fn outside_link_fails_load() {
    let (_root, themes) = theme_folders();

    let error = load_error(&themes, "leak.png");

    assert!(error.contains("leak.png"), "{error}");
    assert!(error.contains("outside"), "{error}");
    assert_eq!(load_error(&themes, "logo.png"), "");
}

#[tokio::test]
async fn public_responses_set_no_language_cookie() {
    let (_root, themes) = theme_folders();
    let directory = themes.clone();
    let server = TestServer::start(move |config| {
        config.theme_dir = Some(directory);
        add_services(config, vec![themed_service("logo.png")]);
    })
    .await;

    for path in [
        "/cas/themes/logo.png?lang=zh-CN",
        "/cas/static/auto-submit.js?lang=zh-CN",
    ] {
        let response = get(&server, path).await;
        let cache = response.headers()[CACHE_CONTROL].to_str().expect("ascii");

        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(cache.starts_with("public"), "{path}: {cache}");
        assert!(response.headers().get(SET_COOKIE).is_none(), "{path}");
    }
    let page = get(&server, "/cas/login?lang=zh-CN").await;
    let cookies: Vec<&str> = page
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().expect("ascii"))
        .collect();
    assert!(
        cookies
            .iter()
            .any(|cookie| cookie.starts_with("CASLANG=zh-CN;")),
        "{cookies:?}"
    );
    assert_eq!(page.headers()[CACHE_CONTROL], "no-store");

    server.stop().await;
}

#[tokio::test]
async fn logo_other_methods_get_405() {
    let (_root, themes) = theme_folders();
    let directory = themes.clone();
    let server = TestServer::start(move |config| {
        config.theme_dir = Some(directory);
        add_services(config, vec![themed_service("logo.png")]);
    })
    .await;

    for method in [Method::POST, Method::OPTIONS, Method::PUT, Method::DELETE] {
        let response = server
            .client
            .request(method.clone(), server.url("/cas/themes/logo.png"))
            .send()
            .await
            .expect("request");

        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()[ALLOW], "GET, HEAD", "{method}");
    }

    server.stop().await;
}
