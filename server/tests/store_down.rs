//! A Redis ticket store that goes away and comes back: clear 503 pages and INTERNAL_ERROR
//! validation responses while it is down, normal service once it returns.

mod common;

use std::time::Duration;

use cas_server::users::password::PasswordEncoding;
use common::redis_server::{PrivateRedis, RedisPrefix};
use common::*;
use reqwest::StatusCode;

async fn ready_status(server: &TestServer) -> StatusCode {
    let response = server.client.get(server.url("/cas/ready")).send().await;
    response.expect("GET ready").status()
}

#[tokio::test]
async fn store_outage_gives_503_then_recovers() {
    let mut redis = PrivateRedis::start();
    let prefix = RedisPrefix::on(&redis.url());
    let database = TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ])
    .await;
    let url = database.url();
    let settings = prefix.settings();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.ticket_store = settings;
    })
    .await;
    let (ticket, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    redis.stop();

    let form = server.login_page(Some(APP), "en", None).await;
    assert_eq!(form.status(), StatusCode::SERVICE_UNAVAILABLE);
    let sso = server.login_page(Some(APP), "en", Some(&cookie)).await;
    assert_eq!(sso.status(), StatusCode::SERVICE_UNAVAILABLE);
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;
    assert!(xml.contains("INTERNAL_ERROR"), "{xml}");
    assert!(!xml.contains(&ticket), "{xml}");
    assert_eq!(ready_status(&server).await, StatusCode::SERVICE_UNAVAILABLE);
    let health = server.client.get(server.url("/cas/health")).send().await;
    assert_eq!(health.expect("GET health").status(), StatusCode::OK);

    redis.restart();

    let mut ready = false;
    for _ in 0..50 {
        if ready_status(&server).await == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "server did not become ready after Redis returned");
    // The restarted Redis kept no data, so the old session is gone and a new login works.
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;
    assert!(xml.contains("<cas:user>alice</cas:user>"), "{xml}");
    server.stop().await;
}

#[tokio::test]
async fn server_starts_while_redis_is_down() {
    let mut redis = PrivateRedis::start();
    let prefix = RedisPrefix::on(&redis.url());
    redis.stop();
    let settings = prefix.settings();
    let server = TestServer::start(move |config| {
        config.database_url = None;
        config.password_encoding = PasswordEncoding::Plain;
        config.ticket_store = settings;
    })
    .await;

    assert_eq!(ready_status(&server).await, StatusCode::SERVICE_UNAVAILABLE);

    redis.restart();
    let mut ready = false;
    for _ in 0..50 {
        if ready_status(&server).await == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ready, "server did not become ready after Redis started");
    server.stop().await;
}
