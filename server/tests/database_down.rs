//! A private MariaDB that stops, comes back, or blocks on a table lock: logins get a 503
//! page within the database timeout while validation and single sign-on, which need only
//! the ticket store, go on working. Logins work again once the database is back, also
//! when the server started while it was down.

mod common;

use std::time::Duration;

use cas_server::users::password::PasswordEncoding;
use common::mariadb_server::PrivateMariaDb;
use common::*;
use reqwest::header::ACCEPT_LANGUAGE;
use reqwest::StatusCode;
use sqlx::{Connection, Executor};

/// The server's `database_timeout_seconds` in these tests.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Time a request may take before the test calls it hanging: the database timeout for
/// each of the two credential lookups, plus a wide margin for a loaded machine.
const HANG_LIMIT: Duration = Duration::from_secs(15);

const ENGLISH_UNAVAILABLE: &str = "The sign-in service is temporarily unavailable.";
const CHINESE_UNAVAILABLE: &str = "认证服务暂时不可用，请稍后再试。";

async fn start_database() -> PrivateMariaDb {
    let database = PrivateMariaDb::start().await;
    let mut connection = database.connect().await;
    for statement in [
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ] {
        connection.execute(statement).await.expect(statement);
    }
    connection.close().await.expect("close");
    database
}

async fn start_server(database: &PrivateMariaDb) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.database_timeout = DATABASE_TIMEOUT;
    })
    .await
}

/// Fetches a login form, then posts alice's credentials with `language` as
/// Accept-Language, failing the test when the response takes longer than [`HANG_LIMIT`].
async fn post_credentials(server: &TestServer, language: &str) -> reqwest::Response {
    let page = server.login_page(Some(APP), language, None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = login_cookie_pair(page.headers()).expect("login cookie");
    let login_ticket = login_ticket(&page.text().await.expect("form"));

    let fields = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("lt", login_ticket.as_str()),
        ("service", APP),
    ];
    let sent = server
        .client
        .post(server.url("/cas/login"))
        .header(ACCEPT_LANGUAGE, language)
        .header(reqwest::header::COOKIE, cookie)
        .form(&fields)
        .timeout(HANG_LIMIT)
        .send()
        .await;
    sent.unwrap_or_else(|e| panic!("login POST did not finish within {HANG_LIMIT:?}: {e}"))
}

/// Checks that a login POST gets the unavailable page in `language` and no session.
async fn assert_login_unavailable(server: &TestServer, language: &str, message: &str) {
    let response = post_credentials(server, language).await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(set_cookie(response.headers()), None, "a TGC was set");
    let page = response.text().await.expect("body");
    assert!(page.contains(message), "{language}: {page}");
}

async fn ready(server: &TestServer) -> (StatusCode, String) {
    let response = server
        .client
        .get(server.url("/cas/ready"))
        .timeout(HANG_LIMIT)
        .send()
        .await
        .expect("GET ready");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

async fn wait_until_ready(server: &TestServer) {
    for _ in 0..50 {
        if ready(server).await.0 == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("server did not become ready after the database returned");
}

async fn assert_ticket_validates(server: &TestServer, ticket: &str) {
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", ticket)],
        )
        .await;
    assert!(xml.contains("<cas:user>alice</cas:user>"), "{xml}");
}

#[tokio::test]
async fn database_outage_spares_tickets_and_sessions() {
    let mut database = start_database().await;
    let server = start_server(&database).await;
    let (issued_ticket, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    database.stop();

    assert_login_unavailable(&server, "en", ENGLISH_UNAVAILABLE).await;
    assert_login_unavailable(&server, "zh-CN", CHINESE_UNAVAILABLE).await;

    assert_ticket_validates(&server, &issued_ticket).await;

    let sso = server.login_page(Some(APP), "en", Some(&cookie)).await;
    assert_eq!(sso.status(), StatusCode::FOUND);
    assert_ticket_validates(&server, &ticket_from_location(sso.headers())).await;

    let (status, body) = ready(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("user database"), "{body}");
    assert!(!body.contains("ticket store"), "{body}");

    database.restart().await;
    wait_until_ready(&server).await;

    let response = post_credentials(&server, "en").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        tgc_pair(response.headers()).is_some(),
        "no TGC after recovery"
    );
    assert_ticket_validates(&server, &ticket_from_location(response.headers())).await;
    server.stop().await;
}

#[tokio::test]
async fn server_starts_while_database_is_down() {
    let mut database = start_database().await;
    database.stop();

    let server = start_server(&database).await;

    let (status, body) = ready(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("user database"), "{body}");
    assert_login_unavailable(&server, "en", ENGLISH_UNAVAILABLE).await;

    database.restart().await;
    wait_until_ready(&server).await;

    let response = post_credentials(&server, "en").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ticket_validates(&server, &ticket_from_location(response.headers())).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_database_stops_the_start() {
    let database = start_database().await;
    let url = format!("{}_missing", database.url());
    let mut config = cas_server::Config::from_defaults().expect("defaults");
    config.database_url = Some(url);
    config.database_timeout = DATABASE_TIMEOUT;

    let started = cas_server::users::UserDirectory::connect(&config).await;

    assert!(
        started.is_err(),
        "a database the server does not have must stop the start"
    );
}

#[tokio::test]
async fn locked_user_table_gives_503() {
    let database = start_database().await;
    let server = start_server(&database).await;
    let mut locker = database.connect().await;
    locker
        .execute("lock tables app_user write")
        .await
        .expect("lock the user table");

    assert_login_unavailable(&server, "en", ENGLISH_UNAVAILABLE).await;
    // The lock blocks only the user table, so the database still counts as ready.
    assert_eq!(ready(&server).await.0, StatusCode::OK);

    locker.execute("unlock tables").await.expect("unlock");
    locker.close().await.expect("close");

    let response = post_credentials(&server, "en").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_ticket_validates(&server, &ticket_from_location(response.headers())).await;
    server.stop().await;
}
