//! The login throttle: failed logins per typed user name and per client address lead to
//! 429 before any user lookup, a successful login clears the name's count, and nodes
//! sharing a Redis key prefix share the counts.

mod common;

use cas_server::config::{ThrottleLimits, TicketStoreSettings};
use cas_server::users::password::PasswordEncoding;
use common::redis_server::RedisPrefix;
use common::*;
use reqwest::StatusCode;
use sqlx::{Connection, Executor, MySqlConnection};
use std::time::Duration;

const WINDOW: Duration = Duration::from_secs(300);

async fn users() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
        "insert into app_user values ('bob', 'bob-password')",
    ])
    .await
}

async fn server(
    database: &TestDatabase,
    limits: ThrottleLimits,
    store: Option<TicketStoreSettings>,
) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.throttle = limits;
        if let Some(store) = store {
            config.ticket_store = store;
        }
    })
    .await
}

fn limits(user_failures: u64, address_failures: u64) -> ThrottleLimits {
    ThrottleLimits {
        user_failures,
        address_failures,
        window: WINDOW,
    }
}

/// Posts a fresh form with `Accept-Language: language` and returns the status and page.
async fn attempt(
    server: &TestServer,
    username: &str,
    password: &str,
    language: &str,
) -> (StatusCode, String) {
    let form = server.open_form(Some(APP), language).await;
    let response = server
        .client
        .post(server.url("/cas/login"))
        .header("accept-language", language)
        .header("cookie", &form.cookie)
        .form(&[
            ("username", username),
            ("password", password),
            ("lt", form.login_ticket.as_str()),
            ("service", APP),
        ])
        .send()
        .await
        .expect("POST login");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

async fn metrics(server: &TestServer) -> String {
    let response = server
        .client
        .get(server.url("/cas/metrics"))
        .send()
        .await
        .expect("GET metrics");
    response.text().await.expect("body")
}

#[tokio::test]
async fn user_limit_returns_429_form() {
    let database = users().await;
    let server = server(&database, limits(2, 0), None).await;

    for _ in 0..2 {
        let (status, _) = attempt(&server, "alice", "wrong", "en").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (english_status, english) = attempt(&server, "alice", "alice-password", "en").await;
    let (chinese_status, chinese) = attempt(&server, "alice", "alice-password", "zh-CN").await;
    let (other_name, _) = attempt(&server, "Alice", "wrong", "en").await;
    let (other_user, _) = attempt(&server, "bob", "bob-password", "en").await;

    assert_eq!(english_status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        english.contains("Too many failed sign-in attempts"),
        "{english}"
    );
    assert!(
        login_ticket(&english).starts_with("LT-"),
        "form shown again"
    );
    assert_eq!(chinese_status, StatusCode::TOO_MANY_REQUESTS);
    assert!(chinese.contains("登录失败次数过多"), "{chinese}");
    assert_eq!(
        other_name,
        StatusCode::UNAUTHORIZED,
        "names count byte for byte"
    );
    assert_eq!(other_user, StatusCode::SEE_OTHER);
    server.stop().await;
}

#[tokio::test]
async fn address_limit_spans_user_names() {
    let database = users().await;
    let server = server(&database, limits(0, 3), None).await;

    for name in ["carol", "dave", "erin"] {
        let (status, _) = attempt(&server, name, "guess", "en").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
    }
    let (status, page) = attempt(&server, "bob", "bob-password", "en").await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many failed sign-in attempts"), "{page}");
    server.stop().await;
}

/// After the limit is reached the user table is dropped, so any user lookup would fail
/// with 503. A throttled attempt still gets 429: it ran no lookup and no password check.
#[tokio::test]
async fn throttled_attempt_skips_user_lookup() {
    let database = users().await;
    let server = server(&database, limits(1, 0), None).await;
    let (status, _) = attempt(&server, "alice", "wrong", "en").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut connection = MySqlConnection::connect(&database.url())
        .await
        .expect("connect");
    connection
        .execute("drop table app_user")
        .await
        .expect("drop table");
    connection.close().await.expect("close");
    let (throttled, _) = attempt(&server, "alice", "alice-password", "en").await;
    let (looked_up, _) = attempt(&server, "bob", "bob-password", "en").await;

    assert_eq!(throttled, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        looked_up,
        StatusCode::SERVICE_UNAVAILABLE,
        "lookup needs the table"
    );
    let text = metrics(&server).await;
    assert!(
        text.lines()
            .any(|line| line == "cas_logins_total{outcome=\"throttled\"} 1"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn success_resets_user_count() {
    let database = users().await;
    let server = server(&database, limits(3, 0), None).await;

    for _ in 0..2 {
        let (status, _) = attempt(&server, "alice", "wrong", "en").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (success, _) = attempt(&server, "alice", "alice-password", "en").await;
    assert_eq!(success, StatusCode::SEE_OTHER);
    for round in 0..2 {
        let (status, _) = attempt(&server, "alice", "wrong", "en").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "failure {round} after reset"
        );
    }
    let (third, _) = attempt(&server, "alice", "wrong", "en").await;
    let (fourth, _) = attempt(&server, "alice", "alice-password", "en").await;

    assert_eq!(third, StatusCode::UNAUTHORIZED);
    assert_eq!(fourth, StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;
}

#[tokio::test]
async fn nodes_on_redis_share_counts() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    let first = server(&database, limits(2, 0), Some(prefix.settings())).await;
    let second = server(&database, limits(2, 0), Some(prefix.settings())).await;

    let (on_first, _) = attempt(&first, "alice", "wrong", "en").await;
    let (on_second, _) = attempt(&second, "alice", "wrong", "en").await;
    let (throttled_first, _) = attempt(&first, "alice", "alice-password", "en").await;
    let (throttled_second, _) = attempt(&second, "alice", "alice-password", "en").await;

    assert_eq!(on_first, StatusCode::UNAUTHORIZED);
    assert_eq!(on_second, StatusCode::UNAUTHORIZED);
    assert_eq!(throttled_first, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled_second, StatusCode::TOO_MANY_REQUESTS);
    let keys = prefix.keys();
    assert!(
        keys.iter().any(|key| key.contains("counter:{login-user:")),
        "{keys:?}"
    );
    assert!(keys.iter().all(|key| !key.contains("alice")), "{keys:?}");
    first.stop().await;
    second.stop().await;
}
