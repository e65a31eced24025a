//! The `/login` parameters `method` (POST responses) and `warn` (confirmation before
//! single sign-on), over HTTPS against a MariaDB user table.

mod common;

use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Response, StatusCode};

async fn database() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password'), ('bob', 'bob-password')",
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

/// Fetches a form for `service` and posts the credentials with `extra` fields.
async fn login_with(
    server: &TestServer,
    service: &str,
    user: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Response {
    let form = server.open_form(Some(service), "en").await;
    let mut fields = vec![
        ("username", user),
        ("password", password),
        ("lt", form.login_ticket.as_str()),
        ("service", service),
    ];
    fields.extend_from_slice(extra);
    server.post_login(&fields, Some(&form.cookie)).await
}

/// GET /login with a query and an optional Cookie header.
async fn get_login(server: &TestServer, query: &[(&str, &str)], cookie: Option<&str>) -> Response {
    let mut request = server.client.get(server.url("/cas/login")).query(query);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("GET login")
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().expect("ascii").to_owned())
        .collect()
}

/// Returns the value of the hidden field `name` in a page.
fn hidden_value(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')?;
    Some(page[start..start + end].to_owned())
}

async fn validates(server: &TestServer, service: &str, ticket: &str, user: &str) -> bool {
    let xml = server
        .validate(
            "serviceValidate",
            &[("service", service), ("ticket", ticket)],
        )
        .await;
    xml.contains(&format!("<cas:user>{user}</cas:user>"))
}

fn assert_post_page(headers: &HeaderMap, page: &str, action: &str) {
    let policy = headers
        .get(CONTENT_SECURITY_POLICY)
        .expect("CSP")
        .to_str()
        .expect("ascii");
    let script_sources: Vec<&str> = policy
        .split(';')
        .map(str::trim)
        .filter(|directive| directive.starts_with("script-src"))
        .collect();
    assert_eq!(script_sources, ["script-src 'self'"], "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(headers.get("cache-control").expect("header"), "no-store");

    assert!(
        page.contains(&format!(
            "<form id=\"cas-post\" method=\"post\" action=\"{action}\">"
        )),
        "{page}"
    );
    assert!(
        page.contains("<script src=\"/cas/static/auto-submit.js\"></script>"),
        "{page}"
    );
    assert_eq!(
        page.matches("<script").count(),
        1,
        "no inline script: {page}"
    );
    assert!(page.contains("<button type=\"submit\">"), "fallback button");
}

#[tokio::test]
async fn post_method_after_password_login() {
    let database = database().await;
    let server = server(&database).await;

    let form = get_login(&server, &[("service", APP), ("method", "POST")], None)
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(hidden_value(&form, "method").as_deref(), Some("POST"));

    let response = login_with(
        &server,
        APP,
        "alice",
        "alice-password",
        &[("method", "POST")],
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("location").is_none());
    assert!(tgc_pair(response.headers()).is_some_and(|c| c.starts_with("TGC=TGT-")));
    let headers = response.headers().clone();
    let page = response.text().await.expect("body");
    assert_post_page(&headers, &page, APP);
    let ticket = hidden_value(&page, "ticket").expect("ticket field");
    assert!(validates(&server, APP, &ticket, "alice").await);
    server.stop().await;
}

#[tokio::test]
async fn post_method_on_single_sign_on() {
    let database = database().await;
    let server = server(&database).await;
    let (_, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let service = "https://app.example.test/home?a=1&b=2#section";

    let response = get_login(
        &server,
        &[("service", service), ("method", "POST")],
        Some(&cookie),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    let page = response.text().await.expect("body");
    assert_post_page(&headers, &page, "https://app.example.test/home?a=1&#38;b=2");
    assert!(!page.contains("section"), "fragment dropped: {page}");
    let ticket = hidden_value(&page, "ticket").expect("ticket field");
    assert!(validates(&server, service, &ticket, "alice").await);
    server.stop().await;
}

#[tokio::test]
async fn post_page_in_both_languages() {
    let database = database().await;
    let server = server(&database).await;
    let (_, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    for (language, text) in [("zh-CN", "继续"), ("en", "Continue")] {
        let page = server
            .client
            .get(server.url("/cas/login"))
            .query(&[("service", APP), ("method", "POST")])
            .header(COOKIE, &cookie)
            .header("accept-language", language)
            .send()
            .await
            .expect("GET login")
            .text()
            .await
            .expect("body");
        assert!(page.contains(text), "{language}: {page}");
    }
    server.stop().await;
}

#[tokio::test]
async fn unsupported_method_redirects() {
    let database = database().await;
    let server = server(&database).await;
    let (_, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    for method in ["HEADER", "GET", "get", "put"] {
        let response = get_login(
            &server,
            &[("service", APP), ("method", method)],
            Some(&cookie),
        )
        .await;
        assert_eq!(response.status(), StatusCode::FOUND, "{method}");
        assert!(location(response.headers()).is_some_and(|l| l.contains("ticket=ST-")));
    }

    let twice = get_login(
        &server,
        &[("service", APP), ("method", "POST"), ("method", "GET")],
        Some(&cookie),
    )
    .await;
    assert_eq!(twice.status(), StatusCode::BAD_REQUEST);

    let response = login_with(&server, APP, "bob", "bob-password", &[("method", "HEADER")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    server.stop().await;
}

#[tokio::test]
async fn auto_submit_script_is_served() {
    let database = database().await;
    let server = server(&database).await;

    let response = server
        .client
        .get(server.url("/cas/static/auto-submit.js"))
        .send()
        .await
        .expect("GET script");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get(CONTENT_TYPE).expect("type"),
        "text/javascript; charset=utf-8"
    );
    let script = response.text().await.expect("body");
    assert!(script.contains("getElementById(\"cas-post\")"), "{script}");
    assert!(script.contains(".submit()"), "{script}");

    let post = server
        .client
        .post(server.url("/cas/static/auto-submit.js"))
        .send()
        .await
        .expect("POST script");
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}

#[tokio::test]
async fn login_form_offers_warn() {
    let database = database().await;
    let server = server(&database).await;

    for (language, text) in [("zh-CN", "登录其他网站前提醒我"), ("en", "Warn me before")]
    {
        let page = server
            .login_page(Some(APP), language, None)
            .await
            .text()
            .await
            .expect("body");
        assert!(
            page.contains("type=\"checkbox\" name=\"warn\" value=\"true\""),
            "{page}"
        );
        assert!(page.contains(text), "{language}");
    }
    server.stop().await;
}

/// Logs in with `warn` ticked and returns the Cookie header value with TGC and the warn
/// cookie.
async fn warned_login(server: &TestServer, user: &str, password: &str) -> String {
    let response = login_with(server, APP, user, password, &[("warn", "true")]).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the first login redirects"
    );

    let cookies = set_cookies(response.headers());
    let warn = cookies
        .iter()
        .find(|c| c.starts_with("CASPRIVACY="))
        .expect("warn cookie");
    assert_eq!(
        warn,
        "CASPRIVACY=true; Path=/cas/login; Secure; HttpOnly; SameSite=Lax"
    );
    let tgc = tgc_pair(response.headers()).expect("TGC");
    format!("{tgc}; CASPRIVACY=true")
}

async fn post_confirm(
    server: &TestServer,
    fields: &[(&str, &str)],
    cookie: Option<&str>,
) -> Response {
    server.post_login(fields, cookie).await
}

#[tokio::test]
async fn warn_asks_before_single_sign_on() {
    let database = database().await;
    let server = server(&database).await;
    let cookie = warned_login(&server, "alice", "alice-password").await;

    let response = get_login(&server, &[("service", OTHER_APP)], Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("location").is_none(), "no redirect");
    let page = response.text().await.expect("body");
    assert!(page.contains("<strong>Service other</strong>"), "{page}");
    assert!(!page.contains("ST-"), "no ticket before the click: {page}");
    let token = hidden_value(&page, "confirm").expect("token");

    let fields = [("confirm", token.as_str()), ("service", OTHER_APP)];
    let continued = post_confirm(&server, &fields, Some(&cookie)).await;
    assert_eq!(continued.status(), StatusCode::SEE_OTHER);
    let ticket = ticket_from_location(continued.headers());
    assert!(validates(&server, OTHER_APP, &ticket, "alice").await);

    let replayed = post_confirm(&server, &fields, Some(&cookie)).await;
    assert_eq!(
        replayed.status(),
        StatusCode::BAD_REQUEST,
        "token is single-use"
    );
    assert!(location(replayed.headers()).is_none());
    server.stop().await;
}

#[tokio::test]
async fn confirmation_in_both_languages() {
    let database = database().await;
    let server = server(&database).await;
    let cookie = warned_login(&server, "alice", "alice-password").await;

    for (language, text) in [
        ("zh-CN", "您即将登录"),
        ("en", "You are about to be signed in to"),
    ] {
        let page = server
            .client
            .get(server.url("/cas/login"))
            .query(&[("service", OTHER_APP)])
            .header(COOKIE, &cookie)
            .header("accept-language", language)
            .send()
            .await
            .expect("GET login")
            .text()
            .await
            .expect("body");
        assert!(page.contains(text), "{language}: {page}");
    }
    server.stop().await;
}

#[tokio::test]
async fn confirmation_token_resists_forgery() {
    let database = database().await;
    let server = server(&database).await;
    let alice = warned_login(&server, "alice", "alice-password").await;
    let bob = warned_login(&server, "bob", "bob-password").await;

    // An attacker's own token, obtained with their own session, does not work with the
    // victim's cookie.
    let attacker_page = get_login(&server, &[("service", OTHER_APP)], Some(&bob))
        .await
        .text()
        .await
        .expect("body");
    let attacker_token = hidden_value(&attacker_page, "confirm").expect("token");
    let forged = post_confirm(
        &server,
        &[("confirm", attacker_token.as_str()), ("service", OTHER_APP)],
        Some(&alice),
    )
    .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(location(forged.headers()).is_none());

    // A login ticket from the public form is no confirmation token.
    let form = server
        .login_page(Some(OTHER_APP), "en", None)
        .await
        .text()
        .await
        .expect("body");
    let login_ticket = login_ticket(&form);
    let with_login_ticket = post_confirm(
        &server,
        &[("confirm", login_ticket.as_str()), ("service", OTHER_APP)],
        Some(&alice),
    )
    .await;
    assert_eq!(with_login_ticket.status(), StatusCode::BAD_REQUEST);

    for token in ["", "LT-forged", "x"] {
        let response = post_confirm(
            &server,
            &[("confirm", token), ("service", OTHER_APP)],
            Some(&alice),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{token:?}");
        assert!(location(response.headers()).is_none(), "{token:?}");
    }

    // Without the session cookie, as in a cross-site POST that SameSite=Lax strips, the
    // user sees the login form and no ticket.
    let alice_page = get_login(&server, &[("service", OTHER_APP)], Some(&alice))
        .await
        .text()
        .await
        .expect("body");
    let alice_token = hidden_value(&alice_page, "confirm").expect("token");
    let without_cookie = post_confirm(
        &server,
        &[("confirm", alice_token.as_str()), ("service", OTHER_APP)],
        None,
    )
    .await;
    assert_eq!(without_cookie.status(), StatusCode::OK);
    assert!(location(without_cookie.headers()).is_none());
    let page = without_cookie.text().await.expect("body");
    assert!(page.contains("name=\"password\""), "login form: {page}");
    server.stop().await;
}

#[tokio::test]
async fn warn_with_post_method() {
    let database = database().await;
    let server = server(&database).await;
    let cookie = warned_login(&server, "alice", "alice-password").await;

    let page = get_login(
        &server,
        &[("service", OTHER_APP), ("method", "POST")],
        Some(&cookie),
    )
    .await
    .text()
    .await
    .expect("body");
    assert_eq!(hidden_value(&page, "method").as_deref(), Some("POST"));
    let token = hidden_value(&page, "confirm").expect("token");

    let continued = post_confirm(
        &server,
        &[
            ("confirm", token.as_str()),
            ("service", OTHER_APP),
            ("method", "POST"),
        ],
        Some(&cookie),
    )
    .await;

    assert_eq!(continued.status(), StatusCode::OK);
    let headers = continued.headers().clone();
    let page = continued.text().await.expect("body");
    assert_post_page(&headers, &page, OTHER_APP);
    let ticket = hidden_value(&page, "ticket").expect("ticket");
    assert!(validates(&server, OTHER_APP, &ticket, "alice").await);
    server.stop().await;
}

#[tokio::test]
async fn login_without_warn_clears_cookie() {
    let database = database().await;
    let server = server(&database).await;
    let form = server.open_form(Some(APP), "en").await;
    let cookies = format!("CASPRIVACY=true; {}", form.cookie);

    let response = server
        .post_login(
            &[
                ("username", "alice"),
                ("password", "alice-password"),
                ("lt", form.login_ticket.as_str()),
                ("service", APP),
            ],
            Some(&cookies),
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(response.headers());
    assert!(
        cookies.contains(
            &"CASPRIVACY=; Path=/cas/login; Secure; HttpOnly; SameSite=Lax; Max-Age=0".to_owned()
        ),
        "{cookies:?}"
    );

    // Without the warn cookie, single sign-on redirects at once.
    let tgc = tgc_pair(response.headers()).expect("TGC");
    let sso = get_login(&server, &[("service", OTHER_APP)], Some(&tgc)).await;
    assert_eq!(sso.status(), StatusCode::FOUND);
    server.stop().await;
}

#[tokio::test]
async fn confirmation_switch_shows_confirmation_again() {
    let database = database().await;
    let server = server(&database).await;
    let cookie = warned_login(&server, "alice", "alice-password").await;

    let response = get_login(&server, &[("service", OTHER_APP)], Some(&cookie)).await;
    let page = response.text().await.expect("body");
    let href = "/cas/login?service=https%3A%2F%2Fother.example.test%2Fpage&#38;lang=zh-CN";
    assert!(page.contains(&format!("<a href=\"{href}\"")), "{page}");

    let switched = server
        .client
        .get(server.url(&href.replace("&#38;", "&")))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("GET switch");
    assert_eq!(switched.status(), StatusCode::OK);
    assert!(
        switched.headers().get("location").is_none(),
        "no ticket without the click"
    );
    let page = switched.text().await.expect("body");
    assert!(page.contains("<html lang=\"zh-CN\">"), "{page}");
    assert!(page.contains("您即将登录"), "{page}");
    assert!(!page.contains("ST-"), "{page}");
    server.stop().await;
}
