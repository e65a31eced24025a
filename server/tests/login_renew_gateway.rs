//! The `/login` parameters `renew` (always ask for credentials) and `gateway` (never ask),
//! over HTTPS against a MariaDB user table.

mod common;

use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::header::COOKIE;
use reqwest::{Response, StatusCode};

async fn server(database: &TestDatabase) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
    })
    .await
}

async fn database() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ])
    .await
}

/// Logs in with the password for `APP` and returns the TGC pair and the ticket.
async fn password_login(server: &TestServer) -> (String, String) {
    let response = server.login(Some(APP), "alice", "alice-password").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let tgc = tgc_pair(response.headers()).expect("TGC");
    (tgc, ticket_from_location(response.headers()))
}

async fn get_login(server: &TestServer, query: &[(&str, &str)], cookie: Option<&str>) -> Response {
    let mut request = server.client.get(server.url("/cas/login")).query(query);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("GET login")
}

async fn validate_p3(server: &TestServer, ticket: &str, renew: bool) -> String {
    let mut query = vec![("service", APP), ("ticket", ticket)];
    if renew {
        query.push(("renew", "true"));
    }
    server.validate("p3/serviceValidate", &query).await
}

#[tokio::test]
async fn gateway_without_session_returns_without_ticket() {
    let database = database().await;
    let server = server(&database).await;

    let response = get_login(&server, &[("service", APP), ("gateway", "true")], None).await;

    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(response.headers()).as_deref(), Some(APP));
    assert!(tgc_pair(response.headers()).is_none());
}

#[tokio::test]
async fn gateway_with_session_issues_ticket() {
    let database = database().await;
    let server = server(&database).await;
    let (tgc, _) = password_login(&server).await;

    let response = get_login(
        &server,
        &[("service", APP), ("gateway", "true")],
        Some(&tgc),
    )
    .await;
    let ticket = ticket_from_location(response.headers());
    let xml = validate_p3(&server, &ticket, false).await;

    assert!(xml.contains("<cas:user>alice</cas:user>"), "{xml}");
    assert!(
        xml.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"),
        "{xml}"
    );
}

#[tokio::test]
async fn gateway_never_redirects_to_unregistered_service() {
    let database = database().await;
    let server = server(&database).await;

    let response = get_login(&server, &[("service", STRANGER), ("gateway", "true")], None).await;

    assert!(response.status().is_client_error(), "{}", response.status());
    assert!(location(response.headers()).is_none());
}

#[tokio::test]
async fn renew_asks_for_credentials_despite_session() {
    let database = database().await;
    let server = server(&database).await;
    let (tgc, _) = password_login(&server).await;

    let renew = get_login(&server, &[("service", APP), ("renew", "true")], Some(&tgc)).await;
    let both = get_login(
        &server,
        &[("service", APP), ("renew", "true"), ("gateway", "true")],
        Some(&tgc),
    )
    .await;
    let both_anonymous = get_login(
        &server,
        &[("service", APP), ("renew", "true"), ("gateway", "true")],
        None,
    )
    .await;

    for response in [renew, both, both_anonymous] {
        assert_eq!(response.status(), StatusCode::OK);
        assert!(location(response.headers()).is_none());
        let page = response.text().await.expect("body");
        assert!(page.contains("name=\"password\""), "{page}");
    }
}

#[tokio::test]
async fn renew_validation_needs_password_login() {
    let database = database().await;
    let server = server(&database).await;
    let (tgc, password_ticket) = password_login(&server).await;
    let sso = get_login(&server, &[("service", APP)], Some(&tgc)).await;
    let sso_ticket = ticket_from_location(sso.headers());

    let fresh = validate_p3(&server, &password_ticket, true).await;
    let from_session = validate_p3(&server, &sso_ticket, true).await;

    assert!(
        fresh.contains("<cas:isFromNewLogin>true</cas:isFromNewLogin>"),
        "{fresh}"
    );
    assert!(
        from_session.contains("code=\"INVALID_TICKET\""),
        "{from_session}"
    );
}
