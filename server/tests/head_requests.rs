//! HEAD on every endpoint: the status and headers of GET, an empty body, never a 5xx,
//! and no ticket validated, consumed or issued and no session ended.

mod common;

use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::header::{HeaderMap, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, Response, StatusCode};

/// Headers whose value may differ between two requests: the clock.
const VARYING: [&str; 1] = ["date"];

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

    // Headers that GET sends and HEAD leaves out: the length of a body that only
    // issuing or validating a ticket could produce, the Location that would carry a new
    // ticket, and the cookie that GET /logout expires.
    let unknown_length: &[&str] = &["content-length"];
    let ticket_redirect: &[&str] = &["content-length", "location"];
    let expired_cookie: &[&str] = &["set-cookie"];
    let cases: Vec<(String, Option<&str>, &[&str])> = vec![
        ("/cas/login".into(), None, unknown_length),
        (
            format!("/cas/login?service={service}"),
            None,
            unknown_length,
        ),
        (
            format!("/cas/login?service={service}"),
            Some(tgc.as_str()),
            ticket_redirect,
        ),
        (
            format!("/cas/login?service={service}&method=POST"),
            Some(tgc.as_str()),
            unknown_length,
        ),
        ("/cas/login".into(), Some(tgc.as_str()), &[]),
        (
            "/cas/login?service=https%3A%2F%2Fevil.example.test%2F".into(),
            None,
            &[],
        ),
        ("/cas/logout".into(), None, expired_cookie),
        (
            format!("/cas/logout?service={service}"),
            None,
            expired_cookie,
        ),
        (
            format!("/cas/serviceValidate?ticket=ST-unknown&service={service}"),
            None,
            unknown_length,
        ),
        (
            format!("/cas/p3/serviceValidate?ticket=ST-unknown&service={service}"),
            None,
            unknown_length,
        ),
        (
            format!("/cas/proxyValidate?ticket=PT-unknown&service={service}"),
            None,
            unknown_length,
        ),
        (
            format!("/cas/p3/proxyValidate?ticket=PT-unknown&service={service}&format=JSON"),
            None,
            unknown_length,
        ),
        (
            format!("/cas/validate?ticket=ST-unknown&service={service}"),
            None,
            unknown_length,
        ),
        (
            format!("/cas/proxy?pgt=PGT-unknown&targetService={service}"),
            None,
            unknown_length,
        ),
        ("/cas/serviceValidate".into(), None, unknown_length),
        ("/cas/health".into(), None, &[]),
        ("/cas/ready".into(), None, &[]),
        ("/cas/metrics".into(), None, &[]),
        ("/cas/static/auto-submit.js".into(), None, &[]),
        ("/cas/no-such-endpoint".into(), None, &[]),
        ("/elsewhere".into(), None, &[]),
        ("/".into(), None, &[]),
    ];

    for (path, cookie, omitted) in cases {
        let get = send(&server, Method::GET, &path, cookie).await;
        let head = send(&server, Method::HEAD, &path, cookie).await;
        let case = format!("{path} with cookie: {}", cookie.is_some());

        assert!(
            !get.status().is_server_error(),
            "{case}: GET {}",
            get.status()
        );
        assert_eq!(head.status(), get.status(), "{case}");
        let expected_names: Vec<String> = names(get.headers())
            .into_iter()
            .filter(|name| !omitted.contains(&name.as_str()))
            .collect();
        assert_eq!(names(head.headers()), expected_names, "{case}");
        for name in expected_names {
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

        let get_length = get.content_length();
        let head_length = head.headers().get(CONTENT_LENGTH).cloned();
        let body = head.bytes().await.expect("HEAD body");
        assert!(body.is_empty(), "{case}: HEAD body {body:?}");
        let get_body = get.bytes().await.expect("GET body");
        assert_eq!(get_length, Some(get_body.len() as u64), "{case}");
        let length_known = !omitted.contains(&"content-length");
        assert_eq!(
            head_length.is_some(),
            length_known,
            "{case}: HEAD Content-Length {head_length:?}"
        );
    }
    server.stop().await;
}

/// Starts a server whose MariaDB user table contains alice.
async fn start_server() -> (TestServer, TestDatabase) {
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
    (server, database)
}

#[tokio::test]
async fn head_leaves_service_ticket_valid() {
    let (server, _database) = start_server().await;
    let service = urlencode(APP);
    let endpoints = [
        ("serviceValidate", ""),
        ("p3/serviceValidate", ""),
        ("proxyValidate", ""),
        ("p3/proxyValidate", ""),
        ("p3/serviceValidate", "&format=JSON"),
        ("validate", ""),
    ];

    for (endpoint, extra) in endpoints {
        let (ticket, _) = server
            .login_for_ticket(APP, "alice", "alice-password")
            .await;
        let path = format!("/cas/{endpoint}?ticket={ticket}&service={service}{extra}");

        let head = send(&server, Method::HEAD, &path, None).await;
        let head_type = head.headers().get(CONTENT_TYPE).cloned();
        let head_length = head.headers().get(CONTENT_LENGTH).cloned();
        let head_body = head.bytes().await.expect("HEAD body");
        let get = send(&server, Method::GET, &path, None).await;
        let get_type = get.headers().get(CONTENT_TYPE).cloned();
        let body = get.text().await.expect("GET body");

        assert_eq!(head_type, get_type, "{endpoint}{extra}");
        assert_eq!(head_length, None, "{endpoint}{extra}");
        assert!(head_body.is_empty(), "{endpoint}{extra}");
        let validated = match endpoint {
            "validate" => body == "yes\nalice\n",
            _ if extra.contains("JSON") => {
                let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
                json["serviceResponse"]["authenticationSuccess"]["user"] == "alice"
            }
            _ => body.contains("<cas:user>alice</cas:user>"),
        };
        assert!(validated, "GET {endpoint}{extra} after HEAD: {body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn head_login_issues_no_ticket() {
    let (server, _database) = start_server().await;
    let (_, tgc) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let service = urlencode(APP);
    let service_tickets = server.live_tickets("service_ticket").await;
    let login_tickets = server.live_tickets("login_ticket").await;
    let warn = format!("{tgc}; CASPRIVACY=true");

    let redirect = send(
        &server,
        Method::HEAD,
        &format!("/cas/login?service={service}"),
        Some(&tgc),
    )
    .await;
    let posted = send(
        &server,
        Method::HEAD,
        &format!("/cas/login?service={service}&method=POST"),
        Some(&tgc),
    )
    .await;
    let confirmation = send(
        &server,
        Method::HEAD,
        &format!("/cas/login?service={service}"),
        Some(&warn),
    )
    .await;
    let form = send(&server, Method::HEAD, "/cas/login", None).await;

    assert_eq!(redirect.status(), StatusCode::FOUND);
    assert_eq!(redirect.headers().get(LOCATION), None);
    assert_eq!(posted.status(), StatusCode::OK);
    assert_eq!(confirmation.status(), StatusCode::OK);
    assert_eq!(form.status(), StatusCode::OK);
    assert_eq!(
        server.live_tickets("service_ticket").await,
        service_tickets,
        "HEAD issued a service ticket"
    );
    assert_eq!(
        server.live_tickets("login_ticket").await,
        login_tickets,
        "HEAD stored a login ticket or confirmation token"
    );

    // The same GET requests issue what the HEAD requests did not.
    let redirect = send(
        &server,
        Method::GET,
        &format!("/cas/login?service={service}"),
        Some(&tgc),
    )
    .await;
    let confirmation = send(
        &server,
        Method::GET,
        &format!("/cas/login?service={service}"),
        Some(&warn),
    )
    .await;
    send(&server, Method::GET, "/cas/login", None).await;
    assert!(location(redirect.headers()).is_some_and(|l| l.contains("ticket=ST-")));
    assert_eq!(confirmation.status(), StatusCode::OK);
    assert_eq!(
        server.live_tickets("service_ticket").await,
        service_tickets + 1
    );
    assert_eq!(
        server.live_tickets("login_ticket").await,
        login_tickets + 2,
        "a confirmation token and a login ticket"
    );
    server.stop().await;
}

#[tokio::test]
async fn head_logout_keeps_session() {
    let (server, _database) = start_server().await;
    let (_, tgc) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let service = urlencode(APP);
    let sso_path = format!("/cas/login?service={service}");

    let head = send(&server, Method::HEAD, "/cas/logout", Some(&tgc)).await;
    let after_head = send(&server, Method::GET, &sso_path, Some(&tgc)).await;

    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers().get(SET_COOKIE), None);
    assert_eq!(
        after_head.status(),
        StatusCode::FOUND,
        "session ended by HEAD"
    );
    assert_eq!(server.live_tickets("session").await, 1);

    let get = send(&server, Method::GET, "/cas/logout", Some(&tgc)).await;
    let after_get = send(&server, Method::GET, &sso_path, Some(&tgc)).await;

    assert_eq!(get.status(), StatusCode::OK);
    assert!(get.headers().get(SET_COOKIE).is_some());
    assert_eq!(
        after_get.status(),
        StatusCode::OK,
        "GET logout left the session"
    );
    assert_eq!(server.live_tickets("session").await, 0);
    server.stop().await;
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
