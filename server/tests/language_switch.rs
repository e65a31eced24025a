//! The language switch: the `lang` parameter, the `CASLANG` cookie and their precedence
//! over Accept-Language, the switch link on every page, and the login post in the
//! chosen language. Over HTTPS against a MariaDB user table.

mod common;

use std::time::Duration;

use cas_server::config::ThrottleLimits;
use cas_server::users::password::PasswordEncoding;
use common::*;
use reqwest::header::{HeaderMap, ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use reqwest::{Response, StatusCode};

const ENGLISH_FORM: &str = "User name";
const CHINESE_FORM: &str = "用户名";

async fn database() -> TestDatabase {
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

/// GET a path on the server with a raw query, an Accept-Language and an optional cookie.
async fn get(
    server: &TestServer,
    path_and_query: &str,
    accept: &str,
    cookie: Option<&str>,
) -> Response {
    let mut request = server
        .client
        .get(server.url(path_and_query))
        .header(ACCEPT_LANGUAGE, accept);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.expect("GET")
}

/// Returns the `CASLANG` Set-Cookie header, if any.
fn language_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().expect("ascii").to_owned())
        .find(|cookie| cookie.starts_with("CASLANG="))
}

/// Returns the href of the page's language switch link, with `&#38;` decoded.
fn switch_href(page: &str) -> String {
    let marker = "<nav class=\"language\"><a href=\"";
    let start = page
        .find(marker)
        .unwrap_or_else(|| panic!("no language switch in page: {page}"))
        + marker.len();
    let end = page[start..].find('"').expect("end quote");
    page[start..start + end].replace("&#38;", "&")
}

#[tokio::test]
async fn parameter_selects_language_and_sets_cookie() {
    let database = database().await;
    let server = server(&database).await;

    let response = get(&server, "/cas/login?lang=zh-CN", "en", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = language_cookie(response.headers()).expect("language cookie");
    let page = response.text().await.expect("body");

    assert_eq!(
        cookie,
        "CASLANG=zh-CN; Path=/cas; Max-Age=31536000; Secure; HttpOnly; SameSite=Lax"
    );
    assert!(page.contains("<html lang=\"zh-CN\">"), "{page}");
    assert!(page.contains(CHINESE_FORM), "{page}");
    assert_eq!(switch_href(&page), "/cas/login?lang=en");
    assert!(
        page.contains("hreflang=\"en\" lang=\"en\">English</a>"),
        "{page}"
    );

    server.stop().await;
}

#[tokio::test]
async fn precedence_is_parameter_cookie_header() {
    let database = database().await;
    let server = server(&database).await;

    let cookie_over_header = get(&server, "/cas/login", "en", Some("CASLANG=zh-CN")).await;
    assert!(language_cookie(cookie_over_header.headers()).is_none());
    let page = cookie_over_header.text().await.expect("body");
    assert!(page.contains(CHINESE_FORM), "cookie beats Accept-Language");
    assert_eq!(switch_href(&page), "/cas/login?lang=en");

    let parameter_over_cookie = get(
        &server,
        "/cas/login?lang=en",
        "zh-CN",
        Some("CASLANG=zh-CN"),
    )
    .await;
    let page = parameter_over_cookie.text().await.expect("body");
    assert!(page.contains(ENGLISH_FORM), "parameter beats the cookie");
    assert!(page.contains("简体中文</a>"), "{page}");

    let header_only = get(&server, "/cas/login", "zh-CN,zh;q=0.9", None).await;
    let page = header_only.text().await.expect("body");
    assert!(
        page.contains(CHINESE_FORM),
        "Accept-Language without a choice"
    );

    server.stop().await;
}

#[tokio::test]
async fn unsupported_values_are_ignored() {
    let database = database().await;
    let server = server(&database).await;

    for query in [
        "lang=fr",
        "lang=EN",
        "lang=zh",
        "lang=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "lang=en%0D%0ASet-Cookie:%20x=1",
        "lang=en&lang=zh-CN",
        "lang=%FF",
    ] {
        let response = get(&server, &format!("/cas/login?{query}"), "zh-CN", None).await;
        let status = response.status();
        let no_cookie = language_cookie(response.headers()).is_none();
        let page = response.text().await.expect("body");

        assert!(no_cookie, "{query}: no language cookie");
        assert!(
            page.contains("<html lang=\"zh-CN\">"),
            "{query}: Accept-Language decides"
        );
        assert!(!page.contains("<script>alert"), "{query}: not reflected");
        assert!(!page.contains("Set-Cookie"), "{query}: not reflected");
        assert!(!page.contains("fr"), "{query}: not reflected");
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{query}: {status}"
        );
    }

    for cookie in [
        "CASLANG=fr",
        "CASLANG=<script>",
        "CASLANG=",
        "CASLANG=zh-cn",
    ] {
        let response = get(&server, "/cas/login", "en", Some(cookie)).await;
        assert_eq!(response.status(), StatusCode::OK, "{cookie}");
        let page = response.text().await.expect("body");

        assert!(
            page.contains(ENGLISH_FORM),
            "{cookie}: Accept-Language decides"
        );
        assert!(!page.contains("<script>"), "{cookie}");
    }

    server.stop().await;
}

#[tokio::test]
async fn switch_keeps_service_renew_and_method() {
    let database = database().await;
    let server = server(&database).await;

    let query = "service=https%3A%2F%2Fapp.example.test%2Fhome%3Fa%3D1%26b%3D2&renew=true&method=POST&gateway=true";
    let response = get(&server, &format!("/cas/login?{query}"), "en", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("body");
    let href = switch_href(&page);

    assert_eq!(
        href,
        "/cas/login?service=https%3A%2F%2Fapp.example.test%2Fhome%3Fa%3D1%26b%3D2&renew=true&method=POST&lang=zh-CN"
    );
    assert!(!href.contains("gateway"), "{href}");

    let followed = get(&server, &href, "en", None).await;
    assert_eq!(followed.status(), StatusCode::OK);
    assert!(language_cookie(followed.headers()).is_some());
    let page = followed.text().await.expect("body");
    assert!(page.contains(CHINESE_FORM), "{page}");
    assert!(
        page.contains("name=\"service\" value=\"https://app.example.test/home?a=1&#38;b=2\""),
        "{page}"
    );
    assert!(page.contains("name=\"method\" value=\"POST\""), "{page}");
    assert!(switch_href(&page).ends_with("&renew=true&method=POST&lang=en"));

    server.stop().await;
}

#[tokio::test]
async fn switch_never_leaves_the_server() {
    let database = database().await;
    let server = server(&database).await;

    let unregistered = get(
        &server,
        "/cas/login?service=https%3A%2F%2Fevil.example.test%2F",
        "en",
        None,
    )
    .await;
    assert_eq!(unregistered.status(), StatusCode::FORBIDDEN);
    let page = unregistered.text().await.expect("body");
    assert_eq!(switch_href(&page), "?lang=zh-CN");
    assert!(!switch_href(&page).contains("evil"));

    let not_found = get(&server, "//evil.example.test/x", "en", None).await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    let page = not_found.text().await.expect("body");
    assert_eq!(switch_href(&page), "?lang=zh-CN");

    let quoted = get(
        &server,
        "/cas/login?service=https%3A%2F%2Fapp.example.test%2F%22%3E%3Cscript%3E",
        "en",
        None,
    )
    .await;
    let page = quoted.text().await.expect("body");
    assert!(!page.contains("\"><script>"), "{page}");
    assert!(!page.contains("<script"), "{page}");

    server.stop().await;
}

#[tokio::test]
async fn failed_login_answers_in_chosen_language() {
    let database = database().await;
    let server = server(&database).await;

    let response = get(&server, "/cas/login?lang=zh-CN", "en", None).await;
    let language = language_cookie(response.headers()).expect("language cookie");
    let login = login_cookie_pair(response.headers()).expect("login cookie");
    let login_ticket = login_ticket(&response.text().await.expect("body"));
    let language_pair = language.split(';').next().expect("pair").to_owned();

    let cookies = format!("{login}; {language_pair}");
    let fields = [
        ("username", "alice"),
        ("password", "wrong"),
        ("lt", login_ticket.as_str()),
    ];
    let request = server
        .client
        .post(server.url("/cas/login"))
        .header(ACCEPT_LANGUAGE, "en")
        .header(COOKIE, cookies)
        .form(&fields);
    let failed = request.send().await.expect("POST login");

    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let page = failed.text().await.expect("body");
    assert!(page.contains("用户名或密码错误。"), "{page}");
    assert!(page.contains("id=\"login-error\""), "{page}");
    assert!(
        page.contains("aria-invalid=\"true\" aria-describedby=\"login-error\""),
        "{page}"
    );
    assert_eq!(switch_href(&page), "/cas/login?lang=en");

    server.stop().await;
}

#[tokio::test]
async fn message_pages_have_a_switch() {
    let database = database().await;
    let server = server(&database).await;

    let response = server.login(None, "alice", "alice-password").await;
    assert_eq!(response.status(), StatusCode::OK);
    let tgc = tgc_pair(response.headers()).expect("TGC");
    let page = response.text().await.expect("body");
    assert_eq!(switch_href(&page), "/cas/login?lang=zh-CN");

    let logged_in = get(&server, "/cas/login?lang=zh-CN", "en", Some(&tgc)).await;
    assert_eq!(logged_in.status(), StatusCode::OK);
    let page = logged_in.text().await.expect("body");
    assert!(
        page.contains("您已成功登录"),
        "the switch shows the same page: {page}"
    );
    assert!(page.contains("alice"), "{page}");

    let logged_out = get(&server, "/cas/logout", "en", Some(&tgc)).await;
    let page = logged_out.text().await.expect("body");
    assert_eq!(switch_href(&page), "?lang=zh-CN");
    let again = get(&server, "/cas/logout?lang=zh-CN", "en", None).await;
    let page = again.text().await.expect("body");
    assert!(page.contains("您已退出登录"), "{page}");

    let not_found = get(&server, "/cas/nothing?lang=zh-CN", "en", None).await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    let page = not_found.text().await.expect("body");
    assert!(page.contains("页面不存在。"), "{page}");
    assert_eq!(switch_href(&page), "?lang=en");

    server.stop().await;
}

#[tokio::test]
async fn throttled_and_unavailable_pages_have_a_switch() {
    let database = database().await;
    let url = database.url();
    let throttled_server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.throttle = ThrottleLimits {
            user_failures: 1,
            address_failures: 0,
            window: Duration::from_secs(300),
        };
    })
    .await;

    let first = throttled_server.login(Some(APP), "alice", "wrong").await;
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    let throttled = throttled_server.login(Some(APP), "alice", "wrong").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = throttled.text().await.expect("body");
    assert!(page.contains("Too many failed sign-in attempts"), "{page}");
    assert_eq!(
        switch_href(&page),
        "/cas/login?service=https%3A%2F%2Fapp.example.test%2Fhome&lang=zh-CN"
    );
    throttled_server.stop().await;

    // A database without the user table makes every user lookup fail.
    let empty = TestDatabase::create(&[]).await;
    let url = empty.url();
    let unavailable_server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
    })
    .await;
    let unavailable = unavailable_server
        .login(Some(APP), "alice", "alice-password")
        .await;
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = unavailable.text().await.expect("body");
    assert!(page.contains("temporarily unavailable"), "{page}");
    assert_eq!(
        switch_href(&page),
        "/cas/login?service=https%3A%2F%2Fapp.example.test%2Fhome&lang=zh-CN",
        "the error page keeps the checked service"
    );
    unavailable_server.stop().await;
}

#[tokio::test]
async fn switch_mid_login_keeps_form_binding() {
    let database = database().await;
    let server = server(&database).await;
    let form = server.open_form(Some(APP), "en").await;
    assert!(form.page.contains(ENGLISH_FORM));

    let switched = get(&server, &switch_href(&form.page), "en", Some(&form.cookie)).await;
    assert_eq!(switched.status(), StatusCode::OK);
    let switched_page = switched.text().await.expect("body");
    assert!(switched_page.contains(CHINESE_FORM), "{switched_page}");
    let switched_ticket = login_ticket(&switched_page);
    assert_ne!(switched_ticket, form.login_ticket);

    let post = |login_ticket: String| {
        let fields = [
            ("username", "alice".to_owned()),
            ("password", "alice-password".to_owned()),
            ("lt", login_ticket),
            ("service", APP.to_owned()),
        ];
        server
            .client
            .post(server.url("/cas/login"))
            .header(COOKIE, form.cookie.clone())
            .form(&fields)
            .send()
    };

    let first = post(form.login_ticket.clone()).await.expect("POST login");
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(location(first.headers())
        .expect("location")
        .starts_with(&format!("{APP}?ticket=ST-")));

    let replayed = post(form.login_ticket.clone()).await.expect("POST login");
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    assert!(location(replayed.headers()).is_none());
    let replayed_page = replayed.text().await.expect("body");
    assert!(
        replayed_page.contains("id=\"login-error\""),
        "{replayed_page}"
    );

    let second = post(switched_ticket).await.expect("POST login");
    assert_eq!(second.status(), StatusCode::SEE_OTHER);

    server.stop().await;
}
