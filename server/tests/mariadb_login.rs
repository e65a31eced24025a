//! Login, single sign-on, validation and logout against a real MariaDB user table.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cas_server::users::password::{hash_argon2id, PasswordEncoding};
use common::*;
use reqwest::header::CONTENT_LENGTH;
use reqwest::StatusCode;

/// Creates a database with the classic schema: alice with a plain password and dave with NULL.
async fn plain_database() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password'), ('dave', null)",
        // No primary key, so one name can appear twice: the user lookup must fail closed.
        "create table loose_user (username varchar(30), password varchar(45))",
        "insert into loose_user values ('carol', 'carol-password'), ('carol', 'carol-password')",
    ])
    .await
}

async fn plain_server(database: &TestDatabase) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
    })
    .await
}

#[tokio::test]
async fn login_form_in_both_languages() {
    let database = plain_database().await;
    let server = plain_server(&database).await;

    for (header, expected, lang) in [
        ("zh-CN,zh;q=0.9", "用户名", "zh-CN"),
        ("zh-Hans", "密码", "zh-CN"),
        ("en-US", "User name", "en"),
        ("fr", "Password", "en"),
    ] {
        let response = server.login_page(Some(APP), header, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("content-security-policy").is_some());

        let page = response.text().await.expect("body");
        assert!(page.contains(expected), "{header}: {page}");
        assert!(page.contains(&format!("lang=\"{lang}\"")), "{header}");
        assert!(login_ticket(&page).starts_with("LT-"));
        assert!(
            page.contains("Service app"),
            "registered service name shown"
        );
        assert!(!page.contains("<script"));
    }
    server.stop().await;
}

#[tokio::test]
async fn login_sets_cookie_and_redirects() {
    let database = plain_database().await;
    let server = plain_server(&database).await;

    let response = server.login(Some(APP), "alice", "alice-password").await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(response.headers()).expect("Set-Cookie");
    assert!(cookie.starts_with("TGC=TGT-"), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/cas"] {
        assert!(
            cookie.split("; ").any(|part| part == attribute),
            "{attribute} missing in {cookie}"
        );
    }
    let target = location(response.headers()).expect("Location");
    assert!(target.starts_with(&format!("{APP}?ticket=ST-")), "{target}");
    server.stop().await;
}

#[tokio::test]
async fn second_login_uses_sso() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let (first_ticket, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let response = server
        .login_page(Some(OTHER_APP), "en", Some(&cookie))
        .await;

    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(set_cookie(response.headers()).is_none());
    let second_ticket = ticket_from_location(response.headers());
    assert!(second_ticket.starts_with("ST-"));
    assert_ne!(second_ticket, first_ticket);
    assert!(location(response.headers())
        .expect("Location")
        .starts_with(OTHER_APP));

    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", OTHER_APP), ("ticket", &second_ticket)],
        )
        .await;
    assert!(xml.contains("<cas:user>alice</cas:user>"), "{xml}");
    assert!(
        xml.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"),
        "{xml}"
    );
    server.stop().await;
}

#[tokio::test]
async fn sso_without_service_shows_logged_in() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let (_, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let response = server.login_page(None, "zh-CN", Some(&cookie)).await;

    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("body");
    assert!(page.contains("已登录"), "{page}");
    assert!(!page.contains("name=\"lt\""));
    server.stop().await;
}

#[tokio::test]
async fn login_without_service_shows_logged_in() {
    let database = plain_database().await;
    let server = plain_server(&database).await;

    let response = server.login(None, "alice", "alice-password").await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(tgc_pair(response.headers()).is_some());
    let page = response.text().await.expect("body");
    assert!(page.contains("You are signed in"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn wrong_password_shows_form() {
    let database = plain_database().await;
    let server = plain_server(&database).await;

    for (user, password) in [
        ("alice", "wrong"),
        ("nobody", "alice-password"),
        ("dave", ""),
        ("dave", "x"),
    ] {
        let response = server.login(Some(APP), user, password).await;
        let status = response.status();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
            "{user}: {status}"
        );
        assert!(set_cookie(response.headers()).is_none(), "{user}");
        assert!(location(response.headers()).is_none(), "{user}");

        let page = response.text().await.expect("body");
        assert!(
            login_ticket(&page).starts_with("LT-"),
            "{user}: form shown again"
        );
    }

    let response = server.login(Some(APP), "alice", "wrong").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.expect("body").contains("incorrect"));
    server.stop().await;
}

#[tokio::test]
async fn wrong_password_message_in_chinese() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let form = server.open_form(Some(APP), "en").await;

    let response = server
        .client
        .post(server.url("/cas/login"))
        .header("accept-language", "zh-CN")
        .header("cookie", &form.cookie)
        .form(&[
            ("username", "alice"),
            ("password", "nope"),
            ("lt", &form.login_ticket),
            ("service", APP),
        ])
        .send()
        .await
        .expect("POST");

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response
        .text()
        .await
        .expect("body")
        .contains("用户名或密码错误"));
    server.stop().await;
}

#[tokio::test]
async fn login_ticket_replay_fails() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let form = server.open_form(Some(APP), "en").await;
    let fields = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("lt", form.login_ticket.as_str()),
        ("service", APP),
    ];

    let first = server.post_login(&fields, Some(&form.cookie)).await;
    let replay = server.post_login(&fields, Some(&form.cookie)).await;

    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookie(replay.headers()).is_none());
    assert!(location(replay.headers()).is_none());
    assert!(replay
        .text()
        .await
        .expect("body")
        .contains("expired, was already used"));

    let forged_ticket = format!("LT-{}", "0".repeat(40));
    for lt in ["", "LT-forged", forged_ticket.as_str()] {
        let forged = server
            .post_login(
                &[
                    ("username", "alice"),
                    ("password", "alice-password"),
                    ("lt", lt),
                ],
                Some(&form.cookie),
            )
            .await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST, "{lt}");
        assert!(set_cookie(forged.headers()).is_none(), "{lt}");
    }
    server.stop().await;
}

#[tokio::test]
async fn unregistered_service_rejected() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let (_, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    for (language, text) in [("en", "not registered"), ("zh-CN", "未在本认证服务中注册")]
    {
        for session in [None, Some(cookie.as_str())] {
            let response = server.login_page(Some(STRANGER), language, session).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert!(location(response.headers()).is_none());
            assert!(
                response.text().await.expect("body").contains(text),
                "{language}"
            );
        }
    }

    for invalid in [
        "javascript:alert(1)",
        "/relative",
        "https://user:pw@app.example.test/",
    ] {
        let response = server.login_page(Some(invalid), "en", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{invalid}");
        assert!(location(response.headers()).is_none(), "{invalid}");
    }

    let form = server.open_form(Some(APP), "en").await;
    let fields = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("lt", &form.login_ticket),
        ("service", STRANGER),
    ];
    let posted = server.post_login(&fields, Some(&form.cookie)).await;
    assert_eq!(posted.status(), StatusCode::FORBIDDEN);
    assert!(location(posted.headers()).is_none());
    assert!(set_cookie(posted.headers()).is_none());
    server.stop().await;
}

#[tokio::test]
async fn validate_v3_and_v2() {
    let database = plain_database().await;
    let server = plain_server(&database).await;

    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let v3 = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;

    assert!(v3.contains("<cas:authenticationSuccess>"), "{v3}");
    assert!(v3.contains("<cas:user>alice</cas:user>"), "{v3}");
    assert!(v3.contains("<cas:authenticationDate>20"), "{v3}");
    assert!(
        v3.contains("<cas:isFromNewLogin>true</cas:isFromNewLogin>"),
        "{v3}"
    );
    assert!(
        v3.contains("<cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>"),
        "{v3}"
    );

    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let v2 = server
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;

    assert!(v2.contains("<cas:user>alice</cas:user>"), "{v2}");
    assert!(!v2.contains("cas:attributes"), "{v2}");
    server.stop().await;
}

#[tokio::test]
async fn replayed_ticket_is_invalid() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let first = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;
    let second = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;
    let other_endpoint = server
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;

    assert!(first.contains("authenticationSuccess"));
    assert!(second.contains("code=\"INVALID_TICKET\""), "{second}");
    assert!(
        other_endpoint.contains("code=\"INVALID_TICKET\""),
        "{other_endpoint}"
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_service_kills_ticket() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let wrong = server
        .validate(
            "p3/serviceValidate",
            &[("service", OTHER_APP), ("ticket", &ticket)],
        )
        .await;
    let right = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;

    assert!(wrong.contains("code=\"INVALID_SERVICE\""), "{wrong}");
    assert!(right.contains("code=\"INVALID_TICKET\""), "{right}");
    server.stop().await;
}

#[tokio::test]
async fn bad_ticket_kinds_are_invalid() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let proxy_ticket = format!("PT-{}", "a".repeat(40));
    let unknown = format!("ST-{}", "b".repeat(40));

    // A proxy ticket fails the serviceValidate specification, which admits service
    // tickets only.
    for (ticket, code) in [
        (proxy_ticket.as_str(), "INVALID_TICKET_SPEC"),
        (unknown.as_str(), "INVALID_TICKET"),
        ("ST-<x/>", "INVALID_TICKET"),
        ("garbage", "INVALID_TICKET"),
    ] {
        let xml = server
            .validate("serviceValidate", &[("service", APP), ("ticket", ticket)])
            .await;
        assert!(xml.contains(&format!("code=\"{code}\"")), "{ticket}: {xml}");
        assert!(!xml.contains("<x/>"), "{xml}");
    }
    server.stop().await;
}

#[tokio::test]
async fn missing_params_are_invalid_request() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let cases: [&[(&str, &str)]; 5] = [
        &[],
        &[("service", APP)],
        &[("ticket", &ticket)],
        &[("service", APP), ("ticket", "")],
        &[("service", APP), ("ticket", &ticket), ("ticket", &ticket)],
    ];
    for query in cases {
        let xml = server.validate("p3/serviceValidate", query).await;
        assert!(xml.contains("code=\"INVALID_REQUEST\""), "{query:?}: {xml}");
    }

    // None of the invalid requests consumed the ticket.
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;
    assert!(xml.contains("authenticationSuccess"), "{xml}");
    server.stop().await;
}

#[tokio::test]
async fn expired_ticket_is_invalid() {
    let database = plain_database().await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.service_ticket_ttl = Duration::from_secs(1);
    })
    .await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", APP), ("ticket", &ticket)],
        )
        .await;

    assert!(xml.contains("code=\"INVALID_TICKET\""), "{xml}");
    server.stop().await;
}

#[tokio::test]
async fn padded_and_cased_names_rejected() {
    let database = plain_database().await;
    let server = plain_server(&database).await;

    for name in ["alice ", "ALICE", "Alice", " alice"] {
        let response = server.login(Some(APP), name, "alice-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name:?}");
        assert!(set_cookie(response.headers()).is_none(), "{name:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn duplicate_rows_fail_closed() {
    let database = plain_database().await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.username_query = "select username from loose_user where username=?".into();
        config.password_query = "select password from loose_user where username=?".into();
    })
    .await;

    let response = server.login(Some(APP), "carol", "carol-password").await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(response.headers()).is_none());
    server.stop().await;
}

#[tokio::test]
async fn argon2id_user_logs_in() {
    let hash = hash_argon2id("bob-password").expect("hash");
    let insert =
        format!("insert into bob_user values ('bob', '{hash}'), ('eve', 'not-a-phc-string')");
    let database = TestDatabase::create(&[
        // The classic varchar(45) cannot hold a PHC string, so this table is wider.
        "create table bob_user (username varchar(30) primary key, password varchar(255))",
        &insert,
    ])
    .await;
    let url = database.url();
    let server = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.username_query = "select username from bob_user where username=?".into();
        config.password_query = "select password from bob_user where username=?".into();
    })
    .await;

    let (ticket, _) = server.login_for_ticket(APP, "bob", "bob-password").await;
    let xml = server
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;
    assert!(xml.contains("<cas:user>bob</cas:user>"), "{xml}");

    assert_eq!(
        server
            .login(Some(APP), "bob", "bob-passwort")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        server
            .login(Some(APP), "eve", "not-a-phc-string")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test]
async fn logout_clears_session() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let (ticket, cookie) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let response = server
        .client
        .get(server.url("/cas/logout"))
        .header("cookie", &cookie)
        .header("accept-language", "zh")
        .send()
        .await
        .expect("logout");

    assert_eq!(response.status(), StatusCode::OK);
    let expired = set_cookie(response.headers()).expect("Set-Cookie");
    for attribute in [
        "TGC=",
        "Max-Age=0",
        "Path=/cas",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
    ] {
        assert!(
            expired.split("; ").any(|part| part == attribute),
            "{attribute} missing in {expired}"
        );
    }
    assert!(response.text().await.expect("body").contains("已退出"));

    let again = server.login_page(Some(APP), "en", Some(&cookie)).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(login_ticket(&again.text().await.expect("body")).starts_with("LT-"));

    // The ticket issued by the ended session died with it.
    let xml = server
        .validate("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;
    assert!(xml.contains("INVALID_TICKET"), "{xml}");
    server.stop().await;
}

#[tokio::test]
async fn logout_redirects_only_to_registered() {
    let database = plain_database().await;
    let server = plain_server(&database).await;

    let registered = server
        .client
        .get(server.url("/cas/logout"))
        .query(&[("service", APP)])
        .send()
        .await
        .expect("logout");
    let stranger = server
        .client
        .get(server.url("/cas/logout"))
        .query(&[("service", STRANGER)])
        .send()
        .await
        .expect("logout");

    // The CAS 2.0 `url` parameter is ignored, so it can neither redirect nor override.
    let url_only = server
        .client
        .get(server.url("/cas/logout"))
        .query(&[("url", STRANGER)])
        .send()
        .await
        .expect("logout");
    let url_and_service = server
        .client
        .get(server.url("/cas/logout"))
        .query(&[("service", APP), ("url", STRANGER)])
        .send()
        .await
        .expect("logout");

    assert_eq!(registered.status(), StatusCode::FOUND);
    assert_eq!(location(registered.headers()).as_deref(), Some(APP));
    assert_eq!(stranger.status(), StatusCode::OK);
    assert!(location(stranger.headers()).is_none());
    assert_eq!(url_only.status(), StatusCode::OK);
    assert!(location(url_only.headers()).is_none());
    assert_eq!(location(url_and_service.headers()).as_deref(), Some(APP));
    server.stop().await;
}

#[tokio::test]
async fn head_answers_like_get() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let paths = [
        "/cas/login",
        "/cas/login?service=https%3A%2F%2Fevil.example.test%2F",
        "/cas/serviceValidate",
        "/cas/p3/serviceValidate?ticket=x&service=y",
        "/cas/logout",
        "/cas/nowhere",
        "/",
    ];

    for path in paths {
        let get = server
            .client
            .get(server.url(path))
            .send()
            .await
            .expect("GET");
        let head = server
            .client
            .head(server.url(path))
            .send()
            .await
            .expect("HEAD");

        assert_eq!(head.status(), get.status(), "{path}");
        assert!(!head.status().is_server_error(), "{path}");
        assert_eq!(
            head.headers().get("content-type"),
            get.headers().get("content-type"),
            "{path}"
        );
        let get_length = get.bytes().await.expect("body").len();
        let head_length = head.headers().get(CONTENT_LENGTH).map(|length| {
            let text = length.to_str().expect("ascii");
            text.parse::<usize>().expect("number")
        });
        // The login form and the validation endpoints compute their body from a ticket
        // that HEAD neither stores nor validates, so HEAD leaves the length out there.
        let length_known = !(path == "/cas/login" || path.contains("Validate"));
        assert_eq!(head_length.is_some(), length_known, "{path}");
        if let Some(head_length) = head_length {
            assert!(head_length > 0, "{path}");
            assert_eq!(head_length, get_length, "{path}");
        }
        assert!(head.bytes().await.expect("body").is_empty(), "{path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn concurrent_validations_succeed_once() {
    let database = plain_database().await;
    let server = Arc::new(plain_server(&database).await);
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let server = Arc::clone(&server);
            let ticket = ticket.clone();
            tokio::spawn(async move {
                server
                    .validate(
                        "p3/serviceValidate",
                        &[("service", APP), ("ticket", &ticket)],
                    )
                    .await
            })
        })
        .collect();

    let mut successes = 0;
    let mut invalid = 0;
    for task in tasks {
        let xml = task.await.expect("join");
        successes += usize::from(xml.contains("authenticationSuccess"));
        invalid += usize::from(xml.contains("INVALID_TICKET"));
    }
    assert_eq!(successes, 1);
    assert_eq!(invalid, 99);

    let server = Arc::into_inner(server).expect("sole owner");
    server.stop().await;
}

#[tokio::test]
async fn hostile_requests_get_4xx() {
    let database = plain_database().await;
    let server = plain_server(&database).await;
    let login = server.url("/cas/login");
    let form = "application/x-www-form-urlencoded";

    let huge = format!("username=alice&password={}", "x".repeat(20 * 1024));
    let oversized = server
        .client
        .post(&login)
        .header("content-type", form)
        .body(huge)
        .send()
        .await
        .expect("POST");
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let bad_utf8 = server
        .client
        .post(&login)
        .header("content-type", form)
        .body(&b"username=%FF%FE&password=\xff"[..])
        .send()
        .await
        .expect("POST");
    assert_eq!(bad_utf8.status(), StatusCode::BAD_REQUEST);

    let duplicate = server
        .client
        .post(&login)
        .header("content-type", form)
        .body("username=a&username=b&password=x&lt=y")
        .send()
        .await
        .expect("POST");
    assert_eq!(duplicate.status(), StatusCode::BAD_REQUEST);

    let json = server
        .client
        .post(&login)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let duplicate_service = server
        .client
        .get(&login)
        .query(&[("service", APP), ("service", OTHER_APP)])
        .send()
        .await
        .expect("GET");
    assert_eq!(duplicate_service.status(), StatusCode::BAD_REQUEST);

    let bad_query = server
        .client
        .get(server.url("/cas/login?service=%FF"))
        .send()
        .await
        .expect("GET");
    assert_eq!(bad_query.status(), StatusCode::BAD_REQUEST);

    let not_found = server
        .client
        .get(server.url("/cas/admin"))
        .send()
        .await
        .expect("GET");
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);

    let wrong_method = server
        .client
        .delete(server.url("/cas/logout"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    server.stop().await;
}
