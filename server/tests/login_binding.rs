//! Login CSRF defence: the login ticket of a form works only together with the login
//! cookie of the browser that opened the form.

mod common;

use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::header::SET_COOKIE;
use reqwest::{Response, StatusCode};

async fn users() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ])
    .await
}

async fn server(database: &TestDatabase) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
    })
    .await
}

async fn post(server: &TestServer, login_ticket: &str, cookie: Option<&str>) -> Response {
    let fields = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("lt", login_ticket),
        ("service", APP),
    ];
    server.post_login(&fields, cookie).await
}

#[tokio::test]
async fn form_sets_narrow_login_cookie() {
    let database = users().await;
    let server = server(&database).await;

    let response = server.login_page(Some(APP), "en", None).await;

    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("CASLOGIN="))
        .expect("login cookie");
    for attribute in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/cas/login",
        "Max-Age=600",
    ] {
        assert!(
            cookie.split("; ").any(|part| part == attribute),
            "{attribute} missing in {cookie}"
        );
    }
    let value = cookie["CASLOGIN=".len()..]
        .split(';')
        .next()
        .expect("value");
    assert_eq!(value.len(), 64, "{cookie}");
    let page = response.text().await.expect("body");
    assert!(!page.contains(value), "the page never repeats the cookie");
    server.stop().await;
}

#[tokio::test]
async fn form_with_its_cookie_logs_in() {
    let database = users().await;
    let server = server(&database).await;
    let form = server.open_form(Some(APP), "en").await;

    let response = post(&server, &form.login_ticket, Some(&form.cookie)).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(tgc_pair(response.headers()).is_some_and(|c| c.starts_with("TGC=TGT-")));
    server.stop().await;
}

#[tokio::test]
async fn second_form_reuses_browser_cookie() {
    let database = users().await;
    let server = server(&database).await;
    let first = server.open_form(Some(APP), "en").await;

    let second = server
        .login_page(Some(APP), "en", Some(&first.cookie))
        .await;
    let second_cookie = login_cookie_pair(second.headers()).expect("login cookie");
    let second_ticket = login_ticket(&second.text().await.expect("body"));
    let older_tab = post(&server, &first.login_ticket, Some(&first.cookie)).await;
    let newer_tab = post(&server, &second_ticket, Some(&first.cookie)).await;

    assert_eq!(second_cookie, first.cookie);
    assert_eq!(older_tab.status(), StatusCode::SEE_OTHER);
    assert_eq!(newer_tab.status(), StatusCode::SEE_OTHER);
    server.stop().await;
}

#[tokio::test]
async fn ticket_without_cookie_fails() {
    let database = users().await;
    let server = server(&database).await;
    let form = server.open_form(Some(APP), "en").await;

    let response = post(&server, &form.login_ticket, None).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(response.headers()).is_none(), "no TGC");
    assert!(location(response.headers()).is_none());
    let page = response.text().await.expect("body");
    assert!(
        page.contains("did not come back with its browser cookie"),
        "{page}"
    );
    assert!(login_ticket(&page).starts_with("LT-"), "form shown again");
    server.stop().await;
}

#[tokio::test]
async fn ticket_with_other_browser_cookie_fails() {
    let database = users().await;
    let server = server(&database).await;
    let victim = server.open_form(Some(APP), "en").await;
    let attacker = server.open_form(Some(APP), "zh-CN").await;
    assert_ne!(victim.cookie, attacker.cookie);

    let forged = post(&server, &attacker.login_ticket, Some(&victim.cookie)).await;
    let forged_status = forged.status();
    let forged_tgc = set_cookie(forged.headers());
    let forged_page = forged.text().await.expect("body");
    let own = post(&server, &attacker.login_ticket, Some(&attacker.cookie)).await;

    assert_eq!(forged_status, StatusCode::BAD_REQUEST);
    assert!(forged_tgc.is_none(), "no TGC");
    assert!(
        forged_page.contains("opened in another browser"),
        "{forged_page}"
    );
    assert_eq!(
        own.status(),
        StatusCode::SEE_OTHER,
        "the forged post left the ticket"
    );
    server.stop().await;
}
