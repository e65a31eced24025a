//! The login throttle: failed logins per typed user name and per client address lead to
//! 429 before any user lookup, a successful login clears the name's count, nodes
//! sharing a Redis key prefix share the counts, and the window slides instead of
//! restarting.

mod common;

use cas_core::forwarded::{ForwardedHeader, IpNetwork};
use cas_server::config::{ThrottleLimits, TicketStoreSettings};
use cas_server::users::password::PasswordEncoding;
use common::redis_server::RedisPrefix;
use common::*;
use reqwest::StatusCode;
use sqlx::{Connection, Executor, MySqlConnection};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

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
    attempt_with_headers(server, username, password, language, &[]).await
}

/// Posts a failed login with the extra request `headers` and returns the status.
async fn fail_with_header(server: &TestServer, username: &str, header: (&str, &str)) -> StatusCode {
    let (status, _) = attempt_with_headers(server, username, "guess", "en", &[header]).await;
    status
}

async fn attempt_with_headers(
    server: &TestServer,
    username: &str,
    password: &str,
    language: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, String) {
    let form = server.open_form(Some(APP), language).await;
    let mut request = server
        .client
        .post(server.url("/cas/login"))
        .header("accept-language", language)
        .header("cookie", &form.cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
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
        keys.iter().any(|key| key.contains("attempts:{login-user:")),
        "{keys:?}"
    );
    assert!(keys.iter().all(|key| !key.contains("alice")), "{keys:?}");
    first.stop().await;
    second.stop().await;
}

/// Window of the tests that wait for attempts to leave it.
const SHORT_WINDOW: Duration = Duration::from_secs(2);

fn short_limits(user_failures: u64, address_failures: u64) -> ThrottleLimits {
    ThrottleLimits {
        user_failures,
        address_failures,
        window: SHORT_WINDOW,
    }
}

/// Both stores: in memory, and in Redis under a fresh prefix.
fn stores(prefix: &RedisPrefix) -> [(&'static str, Option<TicketStoreSettings>); 2] {
    [("memory", None), ("redis", Some(prefix.settings()))]
}

/// A first failure starts a window, the limit is reached 1.5 s later, and right after
/// the 2 s edge the failures before it still count. A fixed window restarted at the
/// edge would let both attempts after it through.
#[tokio::test]
async fn limit_holds_across_window_edge() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    for (store_name, store) in stores(&prefix) {
        let server = server(&database, short_limits(3, 0), store).await;
        let (first, _) = attempt(&server, "alice", "wrong", "en").await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (second, _) = attempt(&server, "alice", "wrong", "en").await;
        let (third, _) = attempt(&server, "alice", "wrong", "en").await;
        let (full, _) = attempt(&server, "alice", "wrong", "en").await;

        tokio::time::sleep(Duration::from_millis(800)).await;
        let (after_edge, _) = attempt(&server, "alice", "wrong", "en").await;
        let (still_full, _) = attempt(&server, "alice", "alice-password", "en").await;

        assert_eq!(first, StatusCode::UNAUTHORIZED, "{store_name}");
        assert_eq!(second, StatusCode::UNAUTHORIZED, "{store_name}");
        assert_eq!(third, StatusCode::UNAUTHORIZED, "{store_name}");
        assert_eq!(full, StatusCode::TOO_MANY_REQUESTS, "{store_name}");
        assert_eq!(
            after_edge,
            StatusCode::UNAUTHORIZED,
            "{store_name}: the first failure left the window"
        );
        assert_eq!(
            still_full,
            StatusCode::TOO_MANY_REQUESTS,
            "{store_name}: the failures before the edge still count"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn throttle_ends_after_window() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    for (store_name, store) in stores(&prefix) {
        let server = server(&database, short_limits(2, 2), store).await;
        for _ in 0..2 {
            let (status, _) = attempt(&server, "alice", "wrong", "en").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{store_name}");
        }
        let (throttled, _) = attempt(&server, "alice", "alice-password", "en").await;

        tokio::time::sleep(SHORT_WINDOW + Duration::from_millis(300)).await;
        let (after_window, _) = attempt(&server, "alice", "alice-password", "en").await;

        assert_eq!(throttled, StatusCode::TOO_MANY_REQUESTS, "{store_name}");
        assert_eq!(after_window, StatusCode::SEE_OTHER, "{store_name}");
        server.stop().await;
    }
}

/// Twelve failed logins from one address at once, with room for eight: exactly eight
/// are checked and the other four get 429, also when the attempts race on two nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_failures_count_exactly() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    let memory = Arc::new(server(&database, limits(0, 8), None).await);
    let first = Arc::new(server(&database, limits(0, 8), Some(prefix.settings())).await);
    let second = Arc::new(server(&database, limits(0, 8), Some(prefix.settings())).await);

    for (name, nodes) in [("memory", [&memory, &memory]), ("redis", [&first, &second])] {
        let mut tasks = JoinSet::new();
        for i in 0..12 {
            let node = Arc::clone(nodes[i % 2]);
            tasks.spawn(async move { attempt(&node, &format!("user{i}"), "guess", "en").await.0 });
        }
        let statuses = tasks.join_all().await;

        let checked = statuses
            .iter()
            .filter(|status| **status == StatusCode::UNAUTHORIZED)
            .count();
        let throttled = statuses
            .iter()
            .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!(checked, 8, "{name}: {statuses:?}");
        assert_eq!(throttled, 4, "{name}: {statuses:?}");
    }
    for server in [memory, first, second] {
        let Ok(server) = Arc::try_unwrap(server) else {
            panic!("a task still holds the server");
        };
        server.stop().await;
    }
}

async fn proxied_server(database: &TestDatabase, trusted: &[&str], header: &str) -> TestServer {
    let url = database.url();
    let trusted: Vec<IpNetwork> = trusted
        .iter()
        .map(|text| IpNetwork::parse(text).expect("network"))
        .collect();
    let header = match header {
        "forwarded" => ForwardedHeader::Forwarded,
        _ => ForwardedHeader::XForwardedFor,
    };
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.throttle = limits(0, 2);
        config.trusted_proxies = trusted;
        config.forwarded_header = header;
    })
    .await
}

/// The test client connects from 127.0.0.1, which only 10.0.0.0/8 does not contain, so
/// every forged header is ignored and all attempts share the peer's count.
#[tokio::test]
async fn untrusted_peer_cannot_spoof_address() {
    let database = users().await;
    let server = proxied_server(&database, &["10.0.0.0/8"], "x-forwarded-for").await;

    let first = fail_with_header(&server, "carol", ("x-forwarded-for", "198.51.100.1")).await;
    let second = fail_with_header(&server, "dave", ("x-forwarded-for", "198.51.100.2")).await;
    let third = fail_with_header(&server, "erin", ("x-forwarded-for", "198.51.100.3")).await;

    assert_eq!(first, StatusCode::UNAUTHORIZED);
    assert_eq!(second, StatusCode::UNAUTHORIZED);
    assert_eq!(
        third,
        StatusCode::TOO_MANY_REQUESTS,
        "one address: the peer"
    );
    server.stop().await;
}

#[tokio::test]
async fn trusted_proxy_clients_throttled_separately() {
    let database = users().await;
    let server = proxied_server(
        &database,
        &["127.0.0.1/32", "10.0.0.0/8"],
        "x-forwarded-for",
    )
    .await;
    let header = |value| ("x-forwarded-for", value);

    for name in ["carol", "dave"] {
        let status = fail_with_header(&server, name, header("198.51.100.1, 10.0.0.7")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
    }
    let same_client = fail_with_header(&server, "erin", header("198.51.100.1")).await;
    let forged_left = fail_with_header(&server, "erin", header("198.51.100.1, 198.51.100.2")).await;
    let other_client = fail_with_header(&server, "erin", header("198.51.100.3")).await;

    assert_eq!(same_client, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        forged_left,
        StatusCode::UNAUTHORIZED,
        "the right-most untrusted entry is the client"
    );
    assert_eq!(other_client, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Malformed headers from a trusted proxy count against the proxy's own address.
#[tokio::test]
async fn malformed_forwarded_values_use_peer() {
    let database = users().await;
    let server = proxied_server(&database, &["127.0.0.1"], "x-forwarded-for").await;
    let header = |value| ("x-forwarded-for", value);

    let unknown = fail_with_header(&server, "carol", header("unknown")).await;
    let with_port = fail_with_header(&server, "dave", header("198.51.100.1:443")).await;
    let not_an_address = fail_with_header(&server, "erin", header("198.51.100.1, bogus")).await;
    let valid = fail_with_header(&server, "erin", header("198.51.100.1")).await;

    assert_eq!(unknown, StatusCode::UNAUTHORIZED);
    assert_eq!(with_port, StatusCode::UNAUTHORIZED);
    assert_eq!(
        not_an_address,
        StatusCode::TOO_MANY_REQUESTS,
        "peer count is full"
    );
    assert_eq!(valid, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn forwarded_header_names_client() {
    let database = users().await;
    let server = proxied_server(&database, &["127.0.0.1"], "forwarded").await;
    let header = |value| ("forwarded", value);

    for name in ["carol", "dave"] {
        let status = fail_with_header(
            &server,
            name,
            header("for=\"[2001:db8::1]:4711\";proto=https"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
    }
    let same_client = fail_with_header(&server, "erin", header("for=\"[2001:db8::1]\"")).await;
    let ignored_other_header =
        fail_with_header(&server, "erin", ("x-forwarded-for", "2001:db8::1")).await;
    let other_client = fail_with_header(&server, "erin", header("for=192.0.2.60")).await;

    assert_eq!(same_client, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        ignored_other_header,
        StatusCode::UNAUTHORIZED,
        "X-Forwarded-For is not read, so the peer counts"
    );
    assert_eq!(other_client, StatusCode::UNAUTHORIZED);
    server.stop().await;
}
