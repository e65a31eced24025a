//! Two server nodes on different ports sharing one Redis key prefix: tickets, SSO and
//! logout work across them, and a restarted node keeps every session.

mod common;

use cas_server::config::TicketStoreSettings;
use cas_server::users::password::PasswordEncoding;
use common::redis_server::RedisPrefix;
use common::*;
use reqwest::StatusCode;

async fn users() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ])
    .await
}

async fn node(database: &TestDatabase, store: TicketStoreSettings) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.ticket_store = store;
    })
    .await
}

/// Returns the ticket of a `GET /login?service=…` answered from the session in `cookie`.
async fn sso_ticket(server: &TestServer, cookie: &str) -> String {
    let response = server.login_page(Some(APP), "en", Some(cookie)).await;
    assert_eq!(response.status(), StatusCode::FOUND, "no single sign-on");
    ticket_from_location(response.headers())
}

#[tokio::test]
async fn ticket_validates_once_on_other_node() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    let first = node(&database, prefix.settings()).await;
    let second = node(&database, prefix.settings()).await;
    let (ticket, _) = first.login_for_ticket(APP, "alice", "alice-password").await;

    let query = [("service", APP), ("ticket", ticket.as_str())];
    let on_second = second.validate("p3/serviceValidate", &query).await;
    let on_first = first.validate("p3/serviceValidate", &query).await;
    let again = second.validate("p3/serviceValidate", &query).await;

    assert!(
        on_second.contains("<cas:user>alice</cas:user>"),
        "{on_second}"
    );
    assert!(on_first.contains("INVALID_TICKET"), "{on_first}");
    assert!(again.contains("INVALID_TICKET"), "{again}");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn single_sign_on_across_nodes() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    let first = node(&database, prefix.settings()).await;
    let second = node(&database, prefix.settings()).await;
    let (_, cookie) = first.login_for_ticket(APP, "alice", "alice-password").await;

    let ticket = sso_ticket(&second, &cookie).await;
    let xml = first
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;

    assert!(xml.contains("<cas:user>alice</cas:user>"), "{xml}");
    assert!(
        xml.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"),
        "{xml}"
    );
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn logout_on_one_node_ends_session_on_both() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    let first = node(&database, prefix.settings()).await;
    let second = node(&database, prefix.settings()).await;
    let (ticket, cookie) = first.login_for_ticket(APP, "alice", "alice-password").await;

    let logout = second
        .client
        .get(second.url("/cas/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);

    for server in [&first, &second] {
        let page = server.login_page(Some(APP), "en", Some(&cookie)).await;
        assert_eq!(page.status(), StatusCode::OK, "session still alive");
    }
    let xml = first
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;
    assert!(xml.contains("INVALID_TICKET"), "{xml}");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn restarted_node_keeps_sessions() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    let first = node(&database, prefix.settings()).await;
    let (_, cookie) = first.login_for_ticket(APP, "alice", "alice-password").await;
    first.stop().await;

    let restarted = node(&database, prefix.settings()).await;
    let ticket = sso_ticket(&restarted, &cookie).await;
    let xml = restarted
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;

    assert!(xml.contains("<cas:user>alice</cas:user>"), "{xml}");
    restarted.stop().await;
}

#[tokio::test]
async fn memory_nodes_do_not_share() {
    let database = users().await;
    let memory = TicketStoreSettings::Memory { max_tickets: 1000 };
    let first = node(&database, memory.clone()).await;
    let second = node(&database, memory).await;
    let (ticket, cookie) = first.login_for_ticket(APP, "alice", "alice-password").await;

    let page = second.login_page(Some(APP), "en", Some(&cookie)).await;
    let xml = second
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;

    assert_eq!(page.status(), StatusCode::OK);
    assert!(xml.contains("INVALID_TICKET"), "{xml}");
    first.stop().await;
    second.stop().await;
}
