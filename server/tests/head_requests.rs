//! HEAD on every endpoint: the status and headers of GET, an empty body, never a 5xx.

mod common;

use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::header::{HeaderMap, CONTENT_LENGTH, COOKIE};
use reqwest::{Method, Response};

/// Headers whose value may differ between two requests: the clock, and the new ticket
/// of a single sign-on redirect.
const VARYING: [&str; 2] = ["date", "location"];

async fn send(server: &TestServer, method: Method, path: &str, cookie: Option<&str>) -> Response {
    let mut request = server.client.request(method.clone(), server.url(path));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn names(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Returns the Location without its ticket, which each request gets anew.
fn location_without_ticket(headers: &HeaderMap) -> Option<String> {
    location(headers).map(|l| l.split("ticket=").next().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn head_matches_get_everywhere() {
    let database = TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ])
    .await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
    })
    .await;
    let (_, tgc) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let service = urlencode(APP);

    let cases: Vec<(String, Option<&str>)> = vec![
        ("/cas/login".into(), None),
        (format!("/cas/login?service={service}"), None),
        (format!("/cas/login?service={service}"), Some(tgc.as_str())),
        (
            format!("/cas/login?service={service}&method=POST"),
            Some(tgc.as_str()),
        ),
        ("/cas/login".into(), Some(tgc.as_str())),
        (
            "/cas/login?service=https%3A%2F%2Fevil.example.test%2F".into(),
            None,
        ),
        ("/cas/logout".into(), None),
        (
            format!("/cas/serviceValidate?ticket=ST-unknown&service={service}"),
            None,
        ),
        (
            format!("/cas/p3/serviceValidate?ticket=ST-unknown&service={service}"),
            None,
        ),
        ("/cas/serviceValidate".into(), None),
        ("/cas/health".into(), None),
        ("/cas/ready".into(), None),
        ("/cas/metrics".into(), None),
        ("/cas/static/auto-submit.js".into(), None),
        ("/cas/no-such-endpoint".into(), None),
        ("/elsewhere".into(), None),
        ("/".into(), None),
    ];

    for (path, cookie) in cases {
        let get = send(&server, Method::GET, &path, cookie).await;
        let head = send(&server, Method::HEAD, &path, cookie).await;
        let case = format!("{path} with cookie: {}", cookie.is_some());

        assert!(
            !get.status().is_server_error(),
            "{case}: GET {}",
            get.status()
        );
        assert_eq!(head.status(), get.status(), "{case}");
        assert_eq!(names(head.headers()), names(get.headers()), "{case}");
        for name in names(get.headers()) {
            let varies = VARYING.contains(&name.as_str())
                || (name == CONTENT_LENGTH.as_str() && path == "/cas/metrics");
            if varies {
                continue;
            }
            let get_values: Vec<_> = get.headers().get_all(&name).iter().collect();
            let head_values: Vec<_> = head.headers().get_all(&name).iter().collect();
            // A new session or login ticket changes cookie values, not their number.
            if name == "set-cookie" {
                assert_eq!(head_values.len(), get_values.len(), "{case}: {name}");
                continue;
            }
            assert_eq!(head_values, get_values, "{case}: {name}");
        }
        assert_eq!(
            location_without_ticket(head.headers()),
            location_without_ticket(get.headers()),
            "{case}"
        );

        let get_length = get.content_length();
        let head_length = head.headers().get(CONTENT_LENGTH).cloned();
        let body = head.bytes().await.expect("HEAD body");
        assert!(body.is_empty(), "{case}: HEAD body {body:?}");
        let get_body = get.bytes().await.expect("GET body");
        assert_eq!(get_length, Some(get_body.len() as u64), "{case}");
        assert!(head_length.is_some(), "{case}: HEAD has a Content-Length");
    }
    server.stop().await;
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
