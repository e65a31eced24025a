//! User attributes from a real MariaDB user database: both query shapes, NULLs,
//! non-ASCII and hostile values, attribute names that are not XML names, release per
//! service, and a failing attribute query at login.

mod common;

use cas_core::registry::ServiceDefinition;
use cas_core::validation::{Attributes, ValidationResponse};
use cas_core::xml_parse::parse_validation_response;
use cas_server::users::password::PasswordEncoding;
use common::redis_server::RedisPrefix;
use common::*;
use reqwest::StatusCode;

/// Releases no user attribute.
const NONE_APP: &str = "https://none.example.test/app";
/// Releases every user attribute (`"*"`).
const ALL_APP: &str = "https://all.example.test/app";
/// Releases `mail` and `memberOf` only.
const SOME_APP: &str = "https://some.example.test/app";

const HOSTILE: &str = "</cas:user><cas:user>admin";

const COLUMNS_QUERY: &str = "select mail, display_name, phone, age, `given name`, `1st`, score, born from app_user where username=?";
const PAIRS_QUERY: &str = "select name, value from app_user_attribute where username=?";

const STANDARD: [&str; 3] = [
    "authenticationDate",
    "isFromNewLogin",
    "longTermAuthenticationRequestTokenUsed",
];

fn services() -> Vec<ServiceDefinition> {
    let service = |id: &str, url: &str, release: &[&str]| ServiceDefinition {
        id: id.into(),
        name: format!("Service {id}"),
        kind: "prefix".into(),
        pattern: url.into(),
        attributes: release.iter().map(|name| (*name).to_owned()).collect(),
        ..Default::default()
    };
    vec![
        service("none", NONE_APP, &[]),
        service("all", ALL_APP, &["*"]),
        service("some", SOME_APP, &["mail", "memberOf"]),
    ]
}

/// Creates the user table with attribute columns and the name/value table, holding
/// alice (ordinary values and NULLs) and 张三 (non-ASCII name, hostile values).
async fn database() -> TestDatabase {
    TestDatabase::create(&[
        "create table app_user (username varchar(30) primary key, password varchar(45), \
         mail varchar(100), display_name varchar(100), phone varchar(30), age int, \
         `given name` varchar(50), `1st` varchar(10), score decimal(5,2), born date) \
         character set utf8mb4",
        "create table app_user_attribute (username varchar(30), name varchar(50), \
         value varchar(200)) character set utf8mb4",
        "insert into app_user values ('alice', 'alice-password', 'alice@example.test', \
         '爱丽丝 🎉', null, 42, 'Alice', 'yes', 3.50, '1990-01-01')",
        "insert into app_user values ('张三', 'zhang-password', '</cas:user><cas:user>admin', \
         ']]>', '&', null, null, null, null, null)",
        "insert into app_user_attribute values ('alice', 'memberOf', 'staff'), \
         ('alice', 'memberOf', 'dev'), ('alice', 'nickname', null), \
         ('张三', 'memberOf', '</cas:user><cas:user>admin'), ('张三', 'memberOf', '组 ]]> & 🎉'), \
         ('bob', 'memberOf', 'other user')",
    ])
    .await
}

async fn server(database: &TestDatabase, columns: Option<&str>, pairs: Option<&str>) -> TestServer {
    let url = database.url();
    let columns = columns.map(str::to_owned);
    let pairs = pairs.map(str::to_owned);
    TestServer::start(move |config| {
        *config = config
            .clone()
            .with_services(services())
            .expect("valid services");
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.attribute_query = columns;
        config.attribute_pairs_query = pairs;
    })
    .await
}

/// Logs in to `service`, validates the ticket on `/p3/serviceValidate` and returns the
/// raw XML with the parsed user and attributes.
async fn released(
    server: &TestServer,
    service: &str,
    user: &str,
    password: &str,
) -> (String, String, Attributes) {
    let (ticket, _) = server.login_for_ticket(service, user, password).await;
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", service), ("ticket", &ticket)],
        )
        .await;

    let parsed = parse_validation_response(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let ValidationResponse::Success(success) = parsed else {
        panic!("validation failed: {xml}");
    };
    (xml, success.user, success.attributes)
}

fn values<'a>(attributes: &'a Attributes, name: &str) -> Vec<&'a str> {
    attributes
        .get(name)
        .map(|values| values.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn columns_shape() {
    let database = database().await;
    let server = server(&database, Some(COLUMNS_QUERY), None).await;

    let (xml, user, attributes) = released(&server, ALL_APP, "alice", "alice-password").await;

    assert_eq!(user, "alice");
    assert_eq!(values(&attributes, "mail"), ["alice@example.test"]);
    assert_eq!(values(&attributes, "display_name"), ["爱丽丝 🎉"]);
    assert_eq!(values(&attributes, "age"), ["42"], "INT read as text");
    assert_eq!(
        values(&attributes, "score"),
        ["3.50"],
        "DECIMAL read as text"
    );
    assert!(!attributes.contains_key("phone"), "NULL skipped");
    assert!(!attributes.contains_key("born"), "DATE skipped: {xml}");
    for name in STANDARD {
        assert_eq!(values(&attributes, name).len(), 1, "{name}");
    }
    server.stop().await;
}

#[tokio::test]
async fn names_that_are_not_xml_names() {
    let database = database().await;
    let server = server(&database, Some(COLUMNS_QUERY), None).await;

    let (xml, _, attributes) = released(&server, ALL_APP, "alice", "alice-password").await;

    assert!(
        xml.contains("<cas:given_x0020_name>Alice</cas:given_x0020_name>"),
        "{xml}"
    );
    assert!(xml.contains("<cas:_x0031_st>yes</cas:_x0031_st>"), "{xml}");
    // The parser decodes names back to what the user store returned.
    assert_eq!(values(&attributes, "given name"), ["Alice"]);
    assert_eq!(values(&attributes, "1st"), ["yes"]);
    server.stop().await;
}

#[tokio::test]
async fn pairs_shape_is_multi_valued() {
    let database = database().await;
    let server = server(&database, None, Some(PAIRS_QUERY)).await;

    let (xml, _, attributes) = released(&server, ALL_APP, "alice", "alice-password").await;

    let mut groups = values(&attributes, "memberOf");
    groups.sort_unstable();
    assert_eq!(groups, ["dev", "staff"], "{xml}");
    assert!(!attributes.contains_key("nickname"), "NULL value skipped");
    assert!(!attributes.contains_key("mail"), "columns query is off");
    assert!(!xml.contains("other user"), "another user's rows");
    server.stop().await;
}

#[tokio::test]
async fn both_shapes_together() {
    let database = database().await;
    let server = server(&database, Some(COLUMNS_QUERY), Some(PAIRS_QUERY)).await;

    let (_, _, attributes) = released(&server, ALL_APP, "alice", "alice-password").await;

    assert_eq!(values(&attributes, "mail"), ["alice@example.test"]);
    assert_eq!(values(&attributes, "memberOf").len(), 2);
    assert_eq!(attributes.len(), 6 + 1 + STANDARD.len(), "{attributes:?}");
    server.stop().await;
}

#[tokio::test]
async fn hostile_and_non_ascii_values() {
    let database = database().await;
    let server = server(&database, Some(COLUMNS_QUERY), Some(PAIRS_QUERY)).await;

    let (xml, user, attributes) = released(&server, ALL_APP, "张三", "zhang-password").await;

    assert_eq!(user, "张三");
    assert_eq!(xml.matches("<cas:user>").count(), 1, "{xml}");
    assert!(xml.contains("<cas:user>张三</cas:user>"), "{xml}");
    assert!(!xml.contains(HOSTILE), "{xml}");
    assert!(!xml.contains("<![CDATA["), "{xml}");
    assert_eq!(values(&attributes, "mail"), [HOSTILE]);
    assert_eq!(values(&attributes, "display_name"), ["]]>"]);
    assert_eq!(values(&attributes, "phone"), ["&"]);
    let mut groups = values(&attributes, "memberOf");
    groups.sort_unstable();
    assert_eq!(groups, [HOSTILE, "组 ]]> & 🎉"]);
    server.stop().await;
}

#[tokio::test]
async fn release_follows_service_policy() {
    let database = database().await;
    let server = server(&database, Some(COLUMNS_QUERY), Some(PAIRS_QUERY)).await;

    let (_, _, none) = released(&server, NONE_APP, "alice", "alice-password").await;
    let (_, _, some) = released(&server, SOME_APP, "alice", "alice-password").await;
    let (_, _, all) = released(&server, ALL_APP, "alice", "alice-password").await;

    let names = |attributes: &Attributes| -> Vec<String> { attributes.keys().cloned().collect() };
    assert_eq!(names(&none), STANDARD, "none releases the standard three");
    let mut expected_some = vec!["mail".to_owned(), "memberOf".to_owned()];
    expected_some.extend(STANDARD.map(str::to_owned));
    expected_some.sort();
    assert_eq!(names(&some), expected_some);
    assert_eq!(all.len(), 10, "{all:?}");
    server.stop().await;
}

#[tokio::test]
async fn v2_validation_has_no_attributes() {
    let database = database().await;
    let server = server(&database, Some(COLUMNS_QUERY), None).await;

    let (ticket, _) = server
        .login_for_ticket(ALL_APP, "alice", "alice-password")
        .await;
    let xml = server
        .validate(
            "serviceValidate",
            &[("service", ALL_APP), ("ticket", &ticket)],
        )
        .await;

    assert!(xml.contains("<cas:user>alice</cas:user>"), "{xml}");
    assert!(!xml.contains("alice@example.test"), "{xml}");
    server.stop().await;
}

#[tokio::test]
async fn single_sign_on_keeps_attributes() {
    let database = database().await;
    let server = server(&database, Some(COLUMNS_QUERY), Some(PAIRS_QUERY)).await;

    let (_, cookie) = server
        .login_for_ticket(NONE_APP, "alice", "alice-password")
        .await;
    let response = server.login_page(Some(ALL_APP), "en", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let ticket = ticket_from_location(response.headers());
    let xml = server
        .validate(
            "p3/serviceValidate",
            &[("service", ALL_APP), ("ticket", &ticket)],
        )
        .await;

    assert!(
        xml.contains("<cas:mail>alice@example.test</cas:mail>"),
        "{xml}"
    );
    assert!(
        xml.contains("<cas:isFromNewLogin>false</cas:isFromNewLogin>"),
        "{xml}"
    );
    server.stop().await;
}

#[tokio::test]
async fn redis_store_keeps_attributes() {
    let database = database().await;
    let prefix = RedisPrefix::new();
    let url = database.url();
    let settings = prefix.settings();
    let server = TestServer::start(move |config| {
        *config = config
            .clone()
            .with_services(services())
            .expect("valid services");
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.attribute_query = Some(COLUMNS_QUERY.into());
        config.attribute_pairs_query = Some(PAIRS_QUERY.into());
        config.ticket_store = settings;
    })
    .await;

    let (_, _, attributes) = released(&server, ALL_APP, "张三", "zhang-password").await;

    assert_eq!(values(&attributes, "mail"), [HOSTILE]);
    assert_eq!(values(&attributes, "memberOf").len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn broken_attribute_query_fails_login() {
    let database = database().await;
    let server = server(
        &database,
        Some("select no_such_column from app_user where username=?"),
        None,
    )
    .await;

    let response = server.login(Some(ALL_APP), "alice", "alice-password").await;

    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(set_cookie(response.headers()), None, "no TGC");
    let page = response.text().await.expect("body");
    assert!(page.contains("temporarily unavailable"), "{page}");
    server.stop().await;
}
