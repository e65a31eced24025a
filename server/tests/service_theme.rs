//! Per-service names and themes on the login page: the heading in both languages, an
//! escaped name, the accent colour and a logo served from `theme_dir`.

mod common;

use cas_core::registry::ServiceDefinition;
use cas_server::config::{Config, ConfigLayer};
use common::*;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use reqwest::StatusCode;

/// The signature of a PNG file and some text. The server only copies the file, so it need
/// not be a whole image.
const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\nnot a real image";

const THEMED: &str = "https://themed.example.test/app";

fn themed_service(name: &str, color: Option<&str>, logo: Option<&str>) -> ServiceDefinition {
    ServiceDefinition {
        id: "themed".into(),
        name: name.into(),
        kind: "prefix".into(),
        pattern: "https://themed.example.test/".into(),
        theme_color: color.map(Into::into),
        theme_logo: logo.map(Into::into),
        ..Default::default()
    }
}

async fn page(server: &TestServer, service: &str, language: &str) -> String {
    let response = server.login_page(Some(service), language, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("body")
}

#[tokio::test]
async fn heading_names_the_service_in_both_languages() {
    let server = TestServer::start(|_| {}).await;

    let english = page(&server, APP, "en").await;
    let chinese = page(&server, APP, "zh-CN").await;
    let without_service = server.login_page(None, "en", None).await;
    let plain = without_service.text().await.expect("body");

    assert!(
        english.contains("<h1>Sign in to Service app</h1>"),
        "{english}"
    );
    assert!(chinese.contains("<h1>登录到 Service app</h1>"), "{chinese}");
    assert!(plain.contains("<h1>Central sign-in</h1>"), "{plain}");
    assert!(!english.contains("--accent:"), "no theme, no accent style");
    assert!(!english.contains("class=\"logo\""), "no theme, no logo");

    server.stop().await;
}

#[tokio::test]
async fn hostile_name_is_escaped() {
    let server = TestServer::start(|config| {
        let name = "<script>alert(1)</script> & \"Co\"";
        add_services(config, vec![themed_service(name, None, None)]);
    })
    .await;

    let html = page(&server, THEMED, "en").await;

    assert!(!html.contains("<script>"), "{html}");
    assert!(
        html.contains("Sign in to &#60;script&#62;alert(1)&#60;/script&#62; &#38; &#34;Co&#34;"),
        "{html}"
    );

    server.stop().await;
}

#[tokio::test]
async fn accent_colour_and_logo_are_shown() {
    let themes = tempfile::tempdir().expect("temp dir");
    std::fs::write(themes.path().join("themed-logo.png"), PNG_BYTES).expect("write logo");
    std::fs::write(themes.path().join("notes.txt"), "not a logo").expect("write file");
    let directory = themes.path().to_owned();
    let server = TestServer::start(move |config| {
        config.theme_dir = Some(directory);
        let service = themed_service("Themed", Some("#FF0"), Some("themed-logo.png"));
        add_services(config, vec![service]);
    })
    .await;

    let response = server.login_page(Some(THEMED), "en", None).await;
    let policy = response
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .expect("policy")
        .to_str()
        .expect("ascii")
        .to_owned();
    let html = response.text().await.expect("body");

    assert!(
        html.contains("<style>:root { --accent: #ffff00; --accent-text: #000000; }</style>"),
        "{html}"
    );
    assert!(
        html.contains("<img class=\"logo\" src=\"/cas/themes/themed-logo.png\" alt=\"\">"),
        "{html}"
    );
    assert!(policy.contains("script-src 'self';"), "{policy}");
    assert!(policy.contains("img-src 'self';"), "{policy}");
    assert!(
        !policy.contains("script-src 'self' 'unsafe-inline'"),
        "{policy}"
    );

    let logo = server
        .client
        .get(server.url("/cas/themes/themed-logo.png"))
        .send()
        .await
        .expect("GET logo");
    assert_eq!(logo.status(), StatusCode::OK);
    assert_eq!(logo.headers()[CONTENT_TYPE], "image/png");
    assert!(logo.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .contains("sandbox"));
    assert_eq!(logo.bytes().await.expect("bytes").as_ref(), PNG_BYTES);

    for path in [
        "/cas/themes/notes.txt",
        "/cas/themes/missing.png",
        "/cas/themes/..%2Fthemed-logo.png",
        "/cas/themes/%2E%2E%2Fetc%2Fpasswd.png",
        "/cas/themes/",
    ] {
        let response = server
            .client
            .get(server.url(path))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }

    server.stop().await;
}

#[test]
fn logo_needs_theme_dir_and_file() {
    let services = vec![themed_service("Themed", None, Some("absent.png"))];
    let layer = ConfigLayer {
        services: Some(services),
        ..Default::default()
    };

    let without_dir = Config::from_layer(ConfigLayer::defaults().overridden_by(layer.clone()))
        .expect_err("theme_dir is missing");
    assert!(
        without_dir.to_string().contains("theme_dir"),
        "{without_dir}"
    );

    let folder = tempfile::tempdir().expect("temp dir");
    let with_dir = ConfigLayer {
        theme_dir: Some(folder.path().to_owned()),
        ..layer
    };
    let missing_file = Config::from_layer(ConfigLayer::defaults().overridden_by(with_dir))
        .expect_err("the logo file is missing");
    assert!(
        missing_file.to_string().contains("absent.png"),
        "{missing_file}"
    );
}

#[test]
fn bad_colour_is_rejected_at_load() {
    for colour in ["red", "#12345", "#fff;}", "rgb(0,0,0)"] {
        let layer = ConfigLayer {
            services: Some(vec![themed_service("Themed", Some(colour), None)]),
            ..Default::default()
        };
        let error = Config::from_layer(ConfigLayer::defaults().overridden_by(layer))
            .expect_err("invalid colour");
        assert!(
            error.to_string().contains("theme_color"),
            "{colour}: {error}"
        );
    }
}
