//! `POST /samlValidate` against a real server and MariaDB: the SAML 1.1 response is
//! parsed and checked, tickets are single use, and hostile bodies get clean failures.

mod common;

use cas_server::config::ServerName;
use cas_server::users::password::PasswordEncoding;
use common::xml_tree::{self, Element};
use common::*;
use reqwest::header::{ALLOW, CONTENT_TYPE, HOST};
use reqwest::{Response, StatusCode};

const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SAMLP: &str = "urn:oasis:names:tc:SAML:1.0:protocol";
const SAML: &str = "urn:oasis:names:tc:SAML:1.0:assertion";

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

/// Builds the request body of the CAS protocol specification, with a RequestID.
fn request_body(ticket: &str) -> String {
    format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header/>
  <SOAP-ENV:Body>
    <samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1"
      MinorVersion="1" RequestID="_192.168.16.51.1024506224022"
      IssueInstant="2002-06-19T17:03:44.022Z">
      <samlp:AssertionArtifact>
        {ticket}
      </samlp:AssertionArtifact>
    </samlp:Request>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>"#
    )
}

async fn post(server: &TestServer, target: Option<&str>, body: String) -> Response {
    let mut request = server
        .client
        .post(server.url("/cas/samlValidate"))
        .header(CONTENT_TYPE, "text/xml")
        .body(body);
    if let Some(target) = target {
        request = request.query(&[("TARGET", target)]);
    }
    request.send().await.expect("POST samlValidate")
}

/// Posts and returns the `samlp:Response` element after checking the envelope.
async fn saml_response(server: &TestServer, target: Option<&str>, body: String) -> Element {
    let response = post(server, target, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    response_element(response).await
}

async fn response_element(response: Response) -> Element {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .expect("content type")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(content_type.starts_with("text/xml"), "{content_type}");

    let text = response.text().await.expect("body");
    let envelope = xml_tree::parse(&text);
    assert_eq!(envelope.name, "Envelope");
    assert_eq!(envelope.namespace, SOAP);
    let saml = envelope.path(&["Body", "Response"]).clone();
    assert_eq!(saml.namespace, SAMLP);
    assert_eq!(saml.attribute("MajorVersion"), Some("1"));
    assert_eq!(saml.attribute("MinorVersion"), Some("1"));
    saml
}

fn status_code(response: &Element) -> String {
    let code = response.path(&["Status", "StatusCode"]);
    code.attribute("Value").expect("Value").to_owned()
}

fn status_message(response: &Element) -> String {
    response.path(&["Status", "StatusMessage"]).text.clone()
}

fn attributes(assertion: &Element) -> Vec<(String, Vec<String>)> {
    assertion
        .child("AttributeStatement")
        .all("Attribute")
        .into_iter()
        .map(|attribute| {
            assert_eq!(
                attribute.attribute("AttributeNamespace"),
                Some("http://www.ja-sig.org/products/cas/")
            );
            let values = attribute
                .all("AttributeValue")
                .into_iter()
                .map(|value| value.text.clone())
                .collect();
            let name = attribute.attribute("AttributeName").expect("name");
            (name.to_owned(), values)
        })
        .collect()
}

#[tokio::test]
async fn success_carries_assertion_and_attributes() {
    let database = users().await;
    let server = server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let response = saml_response(&server, Some(APP), request_body(&ticket)).await;

    assert_eq!(status_code(&response), "samlp:Success");
    assert_eq!(
        response.attribute("InResponseTo"),
        Some("_192.168.16.51.1024506224022")
    );
    assert_eq!(response.attribute("Recipient"), Some(APP));
    let assertion = response.child("Assertion");
    assert_eq!(assertion.namespace, SAML);
    assert_eq!(assertion.attribute("Issuer"), Some("127.0.0.1"));

    let conditions = assertion.child("Conditions");
    let not_before = conditions.attribute("NotBefore").expect("NotBefore");
    let not_on_or_after = conditions.attribute("NotOnOrAfter").expect("NotOnOrAfter");
    // Both are fixed-width UTC timestamps, so text order is time order.
    assert!(
        not_before < not_on_or_after,
        "{not_before} {not_on_or_after}"
    );
    assert!(not_before.ends_with('Z'), "{not_before}");
    assert_eq!(
        conditions
            .path(&["AudienceRestrictionCondition", "Audience"])
            .text,
        APP
    );

    let statement = assertion.child("AuthenticationStatement");
    assert_eq!(
        statement.attribute("AuthenticationMethod"),
        Some("urn:oasis:names:tc:SAML:1.0:am:password")
    );
    assert_eq!(statement.path(&["Subject", "NameIdentifier"]).text, "alice");
    assert_eq!(
        assertion
            .path(&["AttributeStatement", "Subject", "NameIdentifier"])
            .text,
        "alice"
    );

    let released = attributes(assertion);
    let names: Vec<&str> = released.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "authenticationDate",
            "isFromNewLogin",
            "longTermAuthenticationRequestTokenUsed"
        ]
    );
    assert_eq!(released[1].1, ["true"]);
    assert_eq!(released[0].1.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn ticket_validates_once() {
    let database = users().await;
    let server = server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let first = saml_response(&server, Some(APP), request_body(&ticket)).await;
    let second = saml_response(&server, Some(APP), request_body(&ticket)).await;

    assert_eq!(status_code(&first), "samlp:Success");
    assert_eq!(status_code(&second), "samlp:Requester");
    assert_eq!(
        second
            .path(&["Status", "StatusCode", "StatusCode"])
            .attribute("Value"),
        Some("samlp:RequestDenied")
    );
    assert!(status_message(&second).starts_with("INVALID_TICKET"));
    assert!(second.all("Assertion").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn wrong_target_kills_ticket() {
    let database = users().await;
    let server = server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let wrong = saml_response(&server, Some(OTHER_APP), request_body(&ticket)).await;
    let right = saml_response(&server, Some(APP), request_body(&ticket)).await;

    assert_eq!(status_code(&wrong), "samlp:Requester");
    assert!(status_message(&wrong).starts_with("INVALID_SERVICE"));
    assert!(status_message(&right).starts_with("INVALID_TICKET"));
    server.stop().await;
}

#[tokio::test]
async fn missing_target_keeps_ticket() {
    let database = users().await;
    let server = server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let missing = saml_response(&server, None, request_body(&ticket)).await;
    let later = saml_response(&server, Some(APP), request_body(&ticket)).await;

    assert_eq!(status_code(&missing), "samlp:Requester");
    assert!(status_message(&missing).contains("TARGET"));
    assert_eq!(status_code(&later), "samlp:Success");
    server.stop().await;
}

#[tokio::test]
async fn hostile_bodies_fail_cleanly() {
    let database = users().await;
    let server = server(&database).await;
    let (ticket, _) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    let entity = format!(
        "<!DOCTYPE e [<!ENTITY t \"{ticket}\">]>{}",
        request_body("&t;")
    );
    let external = format!(
        "<!DOCTYPE e [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
        request_body("&x;")
    );
    let cases = [
        ("entity", entity),
        ("external entity", external),
        ("undeclared entity", request_body("&xxe;")),
        ("garbage", "\u{1}\u{2}not xml at all".to_owned()),
        ("empty", String::new()),
        (
            "unclosed",
            request_body(&ticket).replace("</SOAP-ENV:Envelope>", ""),
        ),
        (
            "missing artifact",
            request_body(&ticket).replace(&ticket, ""),
        ),
        (
            "SAML 2.0 namespace",
            request_body(&ticket).replace("SAML:1.0:protocol", "SAML:2.0:protocol"),
        ),
    ];
    for (case, body) in cases {
        let response = saml_response(&server, Some(APP), body).await;
        assert_eq!(status_code(&response), "samlp:Requester", "{case}");
        assert!(
            status_message(&response).starts_with("INVALID_REQUEST"),
            "{case}"
        );
    }

    let huge = post(&server, Some(APP), "<".repeat(64 * 1024)).await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let huge = response_element(huge).await;
    assert_eq!(status_code(&huge), "samlp:Requester");

    // None of the hostile bodies consumed the ticket.
    let valid = saml_response(&server, Some(APP), request_body(&ticket)).await;
    assert_eq!(status_code(&valid), "samlp:Success");
    server.stop().await;
}

#[tokio::test]
async fn read_methods_are_not_allowed() {
    let database = users().await;
    let server = server(&database).await;

    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let response = server
            .client
            .request(method.clone(), server.url("/cas/samlValidate"))
            .query(&[("TARGET", APP)])
            .send()
            .await
            .expect("request");

        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers().get(ALLOW).expect("Allow"), "POST");
    }
    server.stop().await;
}

/// Posts a request for `ticket` with the Host header `host` and returns the body.
async fn post_with_host(server: &TestServer, ticket: &str, host: &str) -> String {
    let response = server
        .client
        .post(server.url("/cas/samlValidate"))
        .query(&[("TARGET", APP)])
        .header(CONTENT_TYPE, "text/xml")
        .header(HOST, host)
        .body(request_body(ticket))
        .send()
        .await
        .expect("POST samlValidate");
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.expect("body")
}

fn issuer(body: &str) -> String {
    let envelope = xml_tree::parse(body);
    let assertion = envelope.path(&["Body", "Response", "Assertion"]);
    assertion.attribute("Issuer").expect("Issuer").to_owned()
}

#[tokio::test]
async fn issuer_ignores_host_header() {
    let database = users().await;
    let url = database.url();
    let named = TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        config.server_name = ServerName::parse("https://cas.example.org:8443").expect("valid");
    })
    .await;
    let unnamed = server(&database).await;
    let spoofed = "evil.example.test:8443";

    let (ticket, _) = named.login_for_ticket(APP, "alice", "alice-password").await;
    let named_body = post_with_host(&named, &ticket, spoofed).await;
    let (ticket, _) = unnamed
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let unnamed_body = post_with_host(&unnamed, &ticket, spoofed).await;

    assert_eq!(issuer(&named_body), "cas.example.org");
    assert!(!named_body.contains("evil"), "{named_body}");
    // Without server_name the issuer comes from the listen address, 127.0.0.1:8443.
    assert_eq!(issuer(&unnamed_body), "127.0.0.1");
    assert!(!unnamed_body.contains("evil"), "{unnamed_body}");
    named.stop().await;
    unnamed.stop().await;
}
