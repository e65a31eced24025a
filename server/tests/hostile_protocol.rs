//! Hostile values on every protocol endpoint against real MariaDB and real HTTPS:
//! encoded, lookalike and malformed service URLs, injected and misplaced tickets,
//! repeated parameters, markup in user names and attributes, HEAD, and caching headers.
//! Each case asserts the exact outcome: HTTP status, CAS error code, no ticket issued,
//! no redirect to a foreign host and nothing echoed raw.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use cas_core::registry::ServiceDefinition;
use cas_core::validation::{Attributes, ErrorCode, ValidationResponse};
use cas_core::xml_parse::parse_validation_response;
use cas_server::tls::load_server_config;
use cas_server::users::password::PasswordEncoding;
use common::xml_tree::{self, Element};
use common::*;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

const ALICE_PASSWORD: &str = "alice-password";

/// A registered service that releases every attribute.
const ATTRS_APP: &str = "https://attrs.example.test/app";

/// A user name with non-ASCII characters.
const ZHANG: &str = "张三";

/// An attribute value with markup and both kinds of quotes.
const MARKUP_VALUE: &str = "<b class=\"x\">'single' & \"double\"</b>";

/// An attribute value that ends a CDATA section and contains line breaks and an emoji.
const MULTILINE_VALUE: &str = "line one\nline two ]]> 🎉\ttab\r\nline three\r";

/// Service URLs that no request may turn into a ticket or a redirect, with the status
/// `/login` returns: 400 when the URL is not acceptable at all, 403 when it is a valid
/// URL that no registered service admits.
fn hostile_services() -> Vec<(String, StatusCode)> {
    let bad = StatusCode::BAD_REQUEST;
    let forbidden = StatusCode::FORBIDDEN;
    vec![
        ("%68ttps://app.example.test/home".into(), bad),
        ("https%3A%2F%2Fapp.example.test%2Fhome".into(), bad),
        ("https://app.example.test.evil.example/".into(), forbidden),
        ("https://app.example.test@evil.example/".into(), bad),
        ("https://app.example.test%2f@evil.example/".into(), bad),
        ("https://app.example.test:443@evil.example/".into(), bad),
        (
            "https://evil.example/?https://app.example.test/".into(),
            forbidden,
        ),
        (
            "https://evil.example/#https://app.example.test/".into(),
            forbidden,
        ),
        ("https://app.example.test\\@evil.example/".into(), bad),
        ("https://app.example.test/home\\..\\..\\evil".into(), bad),
        ("https://app.example.test/../evil".into(), bad),
        (
            "https://app.example.test/home/%2e%2e/%2E%2E/evil".into(),
            bad,
        ),
        ("https:/\\evil.example/".into(), bad),
        ("//evil.example/".into(), bad),
        ("HTTPS://APP.EXAMPLE.TEST/home".into(), forbidden),
        ("https://APP.example.test/home".into(), forbidden),
        ("Https://app.example.test/home".into(), forbidden),
        ("javascript:alert(1)//https://app.example.test/".into(), bad),
        ("javascript://app.example.test/%0Aalert(1)".into(), bad),
        ("data:text/html,<script>alert(1)</script>".into(), bad),
        (
            format!("https://app.example.test/{}", "a".repeat(4096)),
            bad,
        ),
        (
            "https://app.example.test/\r\nLocation: https://evil.example/".into(),
            bad,
        ),
        ("https://app.example.test/home\u{0}".into(), bad),
        ("https://app.example.test/ home".into(), bad),
        ("https://app.example.test/\thome".into(), bad),
        ("https://app.example.test/home\u{85}".into(), bad),
    ]
}

/// Creates the user table with attribute columns: alice, 张三 with hostile attribute
/// values, and a user whose name contains a line break.
async fn database() -> TestDatabase {
    let zhang = format!(
        "insert into app_user values ('{ZHANG}', 'zhang-password', '{}', '{}')",
        sql_literal(MARKUP_VALUE),
        sql_literal(MULTILINE_VALUE),
    );
    TestDatabase::create(&[
        "create table app_user (username varchar(30) primary key, password varchar(45), \
         mail varchar(100), note varchar(100)) character set utf8mb4",
        "insert into app_user values ('alice', 'alice-password', 'alice@example.test', null)",
        &zhang,
        "insert into app_user values ('admin\\nevil', 'evil-password', null, null)",
    ])
    .await
}

/// Escapes `value` for a single-quoted MariaDB string literal.
fn sql_literal(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\'', "''")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
        .replace('\r', "\\r")
}

/// The registered services: `app` (prefix, may proxy to itself through the callback
/// and accepts proxy tickets), `other` (exact) and `attrs` (releases every attribute).
fn services(callback_port: u16) -> Vec<ServiceDefinition> {
    let definition = |id: &str, kind: &str, pattern: &str| ServiceDefinition {
        id: id.into(),
        name: format!("Service {id}"),
        kind: kind.into(),
        pattern: pattern.into(),
        ..Default::default()
    };
    vec![
        ServiceDefinition {
            proxy_callbacks: vec![format!("https://127.0.0.1:{callback_port}/cb")],
            accept_proxy_tickets: true,
            ..definition("app", "prefix", "https://app.example.test/")
        },
        definition("other", "exact", OTHER_APP),
        ServiceDefinition {
            attributes: vec!["*".into()],
            ..definition("attrs", "prefix", "https://attrs.example.test/")
        },
    ]
}

/// A server with the hostile users and a proxy callback served by the test.
struct Fixture {
    server: TestServer,
    callback: Callback,
    _database: TestDatabase,
}

impl Fixture {
    async fn start() -> Self {
        let database = database().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();

        let url = database.url();
        let server = TestServer::start(move |config| {
            *config = config
                .clone()
                .with_services(services(port))
                .expect("valid services");
            config.database_url = Some(url);
            config.password_encoding = PasswordEncoding::Plain;
            config.attribute_query =
                Some("select mail, note from app_user where username=?".into());
            config.outbound_ca_file = config.tls_cert.parent().map(|dir| dir.join("ca.pem"));
        })
        .await;

        let tls = load_server_config(&server.server_cert(), &server.server_key()).expect("TLS");
        Self {
            callback: Callback::start(listener, tls),
            server,
            _database: database,
        }
    }

    /// GETs `path_and_query` as written, with an optional cookie.
    async fn get(&self, path_and_query: &str, cookie: Option<&str>) -> Response {
        self.request(Method::GET, path_and_query, cookie).await
    }

    async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        cookie: Option<&str>,
    ) -> Response {
        let mut request = self
            .server
            .client
            .request(method, self.server.url(path_and_query));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.expect("request")
    }

    /// GETs `/cas/{endpoint}` with `query` form-encoded.
    async fn get_query(&self, endpoint: &str, query: &[(&str, &str)]) -> Response {
        self.server
            .client
            .get(self.server.url(&format!("/cas/{endpoint}")))
            .query(query)
            .send()
            .await
            .expect("request")
    }

    /// Logs alice in to APP and returns the service ticket and the TGC cookie pair.
    async fn alice_ticket(&self) -> (String, String) {
        self.server
            .login_for_ticket(APP, "alice", ALICE_PASSWORD)
            .await
    }

    /// Issues a fresh service ticket for `service` from the session of `cookie`.
    async fn sso_ticket(&self, service: &str, cookie: &str) -> String {
        let response = self
            .server
            .login_page(Some(service), "en", Some(cookie))
            .await;
        assert_eq!(response.status(), StatusCode::FOUND);
        ticket_from_location(response.headers())
    }

    /// Validates a fresh APP ticket with `pgtUrl` and returns the PGT and its IOU.
    async fn proxy_granting_ticket(&self, cookie: &str) -> (String, String) {
        let ticket = self.sso_ticket(APP, cookie).await;
        let pgt_url = self.callback.url();
        let xml = self
            .server
            .validate(
                "serviceValidate",
                &[("service", APP), ("ticket", &ticket), ("pgtUrl", &pgt_url)],
            )
            .await;
        let iou = element_text(&xml, "cas:proxyGrantingTicket").expect("PGT IOU");
        let pgt = self.callback.pgt_for(&iou);
        (pgt, iou)
    }

    /// POSTs a SAML 1.1 request with `artifact_xml` as its (already XML-escaped) text.
    async fn saml(&self, target: &str, artifact_xml: &str) -> Response {
        let body = format!(
            r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="_1" IssueInstant="2002-06-19T17:03:44.022Z"><samlp:AssertionArtifact>{artifact_xml}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
        );
        self.server
            .client
            .post(self.server.url("/cas/samlValidate"))
            .query(&[("TARGET", target)])
            .header(CONTENT_TYPE, "text/xml")
            .body(body)
            .send()
            .await
            .expect("POST samlValidate")
    }
}

/// A proxy callback over HTTPS that records every `pgtIou` → `pgtId` pair.
struct Callback {
    port: u16,
    pairs: Arc<Mutex<Vec<(String, String)>>>,
    task: JoinHandle<()>,
}

impl Callback {
    fn start(listener: TcpListener, tls: Arc<rustls::ServerConfig>) -> Self {
        let port = listener.local_addr().expect("address").port();
        let pairs = Arc::new(Mutex::new(Vec::new()));
        let recorded = pairs.clone();
        let acceptor = TlsAcceptor::from(tls);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(stream) = acceptor.accept(stream).await else {
                    continue;
                };
                let recorded = recorded.clone();
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let query = request.uri().query().unwrap_or_default().to_owned();
                    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                        .into_owned()
                        .collect();
                    let find = |name: &str| {
                        params
                            .iter()
                            .find(|(key, _)| key == name)
                            .map(|(_, value)| value.clone())
                    };
                    if let (Some(iou), Some(id)) = (find("pgtIou"), find("pgtId")) {
                        recorded
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push((iou, id));
                    }
                    async { Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new()))) }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self { port, pairs, task }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/cb", self.port)
    }

    fn pgt_for(&self, iou: &str) -> String {
        let pairs = self.pairs.lock().unwrap_or_else(PoisonError::into_inner);
        pairs
            .iter()
            .find(|(known, _)| known == iou)
            .map(|(_, pgt)| pgt.clone())
            .unwrap_or_else(|| panic!("no PGT delivered for {iou}"))
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Returns the text of the first `<name>` element of `xml`.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + end].to_owned())
}

/// Asserts that `response` redirects nowhere, or only to a registered host.
fn assert_no_foreign_redirect(response: &Response, case: &str) {
    let Some(target) = location(response.headers()) else {
        return;
    };
    let parsed = reqwest::Url::parse(&target).unwrap_or_else(|e| panic!("{case}: {e}: {target}"));
    let host = parsed.host_str().unwrap_or_default();
    assert!(
        [
            "app.example.test",
            "other.example.test",
            "attrs.example.test"
        ]
        .contains(&host),
        "{case}: redirect to {target}"
    );
}

/// Encodes `value` as one form-urlencoded query value.
fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn no_store(response: &Response, case: &str) {
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().expect("ascii")),
        Some("no-store"),
        "{case}"
    );
}

/// Parses a CAS XML response and returns its failure code.
fn xml_failure(body: &str) -> ErrorCode {
    match parse_validation_response(body).unwrap_or_else(|e| panic!("{e}: {body}")) {
        ValidationResponse::Failure(failure) => failure.code,
        ValidationResponse::Success(success) => panic!("unexpected success {success:?}"),
    }
}

/// Parses a CAS JSON response and returns its failure code.
fn json_failure(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let response = &value["serviceResponse"];
    assert!(response.get("authenticationSuccess").is_none(), "{body}");
    response["authenticationFailure"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no failure code: {body}"))
        .to_owned()
}

/// Parses a SOAP-wrapped SAML response and returns the `samlp:Response` element.
fn saml_response(body: &str) -> Element {
    let envelope = xml_tree::parse(body);
    envelope.path(&["Body", "Response"]).clone()
}

/// Returns the top-level and the nested SAML status codes of a failure.
fn saml_status(response: &Element) -> (String, Option<String>) {
    let code = response.path(&["Status", "StatusCode"]);
    let nested = code
        .all("StatusCode")
        .first()
        .and_then(|inner| inner.attribute("Value"))
        .map(str::to_owned);
    (
        code.attribute("Value").unwrap_or_default().to_owned(),
        nested,
    )
}

#[tokio::test]
async fn hostile_services_get_no_ticket_and_no_redirect() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;

    for (service, status) in hostile_services() {
        let query = encoded(&service);
        for (path, cookie) in [
            (format!("/cas/login?service={query}"), None),
            (format!("/cas/login?service={query}"), Some(cookie.as_str())),
            (format!("/cas/login?service={query}&gateway=true"), None),
            (
                format!("/cas/login?service={query}&gateway=true"),
                Some(cookie.as_str()),
            ),
            (
                format!("/cas/login?service={query}&method=POST"),
                Some(cookie.as_str()),
            ),
        ] {
            let case = format!("{path} with cookie {}", cookie.is_some());
            let response = fixture.get(&path, cookie).await;
            assert_eq!(response.status(), status, "{case}");
            assert!(location(response.headers()).is_none(), "{case}");
            no_store(&response, &case);
            let body = response.text().await.expect("body");
            assert!(!body.contains("ST-"), "{case}: ticket in {body}");
            assert!(!body.contains("<script>"), "{case}: markup echoed");
            assert!(!body.contains("evil.example"), "{case}: URL echoed");
        }

        let response = fixture
            .get(&format!("/cas/logout?service={query}"), None)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "logout {service:?}");
        assert!(location(response.headers()).is_none(), "logout {service:?}");
    }

    // The session survived every request above and still signs in to a registered service.
    let ticket = fixture.sso_ticket(APP, &cookie).await;
    assert!(ticket.starts_with("ST-"));
    fixture.server.stop().await;
}

#[tokio::test]
async fn logout_with_session_redirects_only_to_registered() {
    let fixture = Fixture::start().await;

    for (service, _) in hostile_services() {
        let (_, cookie) = fixture.alice_ticket().await;
        let path = format!("/cas/logout?service={}", encoded(&service));
        let response = fixture.get(&path, Some(&cookie)).await;

        assert_eq!(response.status(), StatusCode::OK, "{service:?}");
        assert!(location(response.headers()).is_none(), "{service:?}");
        let body = response.text().await.expect("body");
        assert!(!body.contains("evil.example"), "{service:?}: URL echoed");
    }

    let response = fixture
        .get(&format!("/cas/logout?service={}", encoded(APP)), None)
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(response.headers()).as_deref(), Some(APP));
    fixture.server.stop().await;
}

#[tokio::test]
async fn encoded_service_forms() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;

    // Encoded once: the query parser decodes it to the registered URL.
    let once = "/cas/login?service=https%3A%2F%2Fapp.example.test%2Fhome";
    let response = fixture.get(once, Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_no_foreign_redirect(&response, once);
    let target = location(response.headers()).expect("Location");
    assert!(
        target.starts_with("https://app.example.test/home?ticket=ST-"),
        "{target}"
    );

    // Encoded twice: after one decoding it is not a URL, so nothing is issued.
    for path in [
        "/cas/login?service=%2568ttps%253A%252F%252Fapp.example.test%252Fhome",
        "/cas/login?service=https%253A%252F%252Fapp.example.test%252Fhome",
        "/cas/login?service=%2568ttps://app.example.test/home",
    ] {
        for cookie in [None, Some(cookie.as_str())] {
            let response = fixture.get(path, cookie).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
            assert!(location(response.headers()).is_none(), "{path}");
        }
        let gateway = format!("{path}&gateway=true");
        let response = fixture.get(&gateway, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{gateway}");
        assert!(location(response.headers()).is_none(), "{gateway}");
    }

    // A ticket issued for the decoded URL does not validate for the double-encoded one.
    let ticket = fixture.sso_ticket(APP, &cookie).await;
    let body = fixture
        .server
        .validate(
            "serviceValidate",
            &[
                ("service", "https%3A%2F%2Fapp.example.test%2Fhome"),
                ("ticket", &ticket),
            ],
        )
        .await;
    assert_eq!(xml_failure(&body), ErrorCode::InvalidService);
    fixture.server.stop().await;
}

#[tokio::test]
async fn fragment_stays_after_ticket() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;

    let cases = [
        (
            "https://app.example.test/home#section",
            "https://app.example.test/home?ticket=",
            "#section",
        ),
        (
            "https://app.example.test/home?x=1#/route?ticket=ST-fake",
            "https://app.example.test/home?x=1&ticket=",
            "#/route?ticket=ST-fake",
        ),
    ];
    for (service, before, fragment) in cases {
        let response = fixture
            .server
            .login_page(Some(service), "en", Some(&cookie))
            .await;
        assert_eq!(response.status(), StatusCode::FOUND, "{service}");
        assert_no_foreign_redirect(&response, service);
        let target = location(response.headers()).expect("Location");
        assert!(target.starts_with(before), "{target}");
        assert!(target.ends_with(fragment), "{target}");
        let ticket = &target[before.len()..target.len() - fragment.len()];
        assert!(
            ticket.starts_with("ST-") && !ticket.contains(['#', '&']),
            "{target}"
        );

        // With the fragment, as the browser's address bar may show it.
        let body = fixture
            .server
            .validate(
                "serviceValidate",
                &[("service", service), ("ticket", ticket)],
            )
            .await;
        assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");

        // Without the fragment, as the service reads its own URL.
        let without = service.split('#').next().expect("base");
        let ticket = fixture.sso_ticket(service, &cookie).await;
        let body = fixture
            .server
            .validate(
                "serviceValidate",
                &[("service", without), ("ticket", &ticket)],
            )
            .await;
        assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");
    }
    fixture.server.stop().await;
}

#[tokio::test]
async fn service_holding_ticket_param() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;
    let service = "https://app.example.test/home?ticket=ST-planted";

    // The service URL is kept byte for byte, and the new ticket is appended after it.
    let response = fixture
        .server
        .login_page(Some(service), "en", Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let target = location(response.headers()).expect("Location");
    let prefix = "https://app.example.test/home?ticket=ST-planted&ticket=";
    assert!(target.starts_with(prefix), "{target}");
    let ticket = &target[prefix.len()..];

    // The ticket belongs to the whole URL, so the URL without the planted parameter is
    // another service and the ticket dies on that attempt.
    let body = fixture
        .server
        .validate("serviceValidate", &[("service", APP), ("ticket", ticket)])
        .await;
    assert_eq!(xml_failure(&body), ErrorCode::InvalidService);
    let body = fixture
        .server
        .validate(
            "serviceValidate",
            &[("service", service), ("ticket", ticket)],
        )
        .await;
    assert_eq!(xml_failure(&body), ErrorCode::InvalidTicket, "single use");

    let response = fixture
        .server
        .login_page(Some(service), "en", Some(&cookie))
        .await;
    let target = location(response.headers()).expect("Location");
    let ticket = target
        .strip_prefix(prefix)
        .expect("planted parameter first");
    let body = fixture
        .server
        .validate(
            "serviceValidate",
            &[("service", service), ("ticket", ticket)],
        )
        .await;
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");

    // The planted value is no ticket at all.
    let body = fixture
        .server
        .validate(
            "serviceValidate",
            &[("service", APP), ("ticket", "ST-planted")],
        )
        .await;
    assert_eq!(xml_failure(&body), ErrorCode::InvalidTicket);
    fixture.server.stop().await;
}

#[tokio::test]
async fn hostile_proxy_targets_get_no_ticket() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;
    let (pgt, _) = fixture.proxy_granting_ticket(&cookie).await;

    for (target, _) in hostile_services() {
        for format in ["XML", "JSON"] {
            let response = fixture
                .get_query(
                    "proxy",
                    &[
                        ("pgt", &pgt),
                        ("targetService", &target),
                        ("format", format),
                    ],
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{target:?}");
            no_store(&response, &target);
            let body = response.text().await.expect("body");
            assert!(!body.contains("PT-"), "{target:?}: {body}");
            assert!(!body.contains("evil.example"), "{target:?}: echoed {body}");
            let code = match format {
                "XML" => element_attribute(&body, "cas:proxyFailure", "code"),
                _ => {
                    let value: Value = serde_json::from_str(&body).expect("JSON");
                    value["serviceResponse"]["proxyFailure"]["code"]
                        .as_str()
                        .map(str::to_owned)
                }
            };
            assert_eq!(
                code.as_deref(),
                Some("UNAUTHORIZED_SERVICE"),
                "{target:?}: {body}"
            );
        }
    }

    // The same PGT still issues a ticket for the registered target.
    let response = fixture
        .get_query("proxy", &[("pgt", &pgt), ("targetService", APP)])
        .await;
    let body = response.text().await.expect("body");
    assert!(body.contains("<cas:proxyTicket>PT-"), "{body}");
    fixture.server.stop().await;
}

/// Returns the value of `attribute` on the first `<element` of `xml`.
fn element_attribute(xml: &str, element: &str, attribute: &str) -> Option<String> {
    let start = xml.find(&format!("<{element} "))?;
    let marker = format!("{attribute}=\"");
    let value_start = start + xml[start..].find(&marker)? + marker.len();
    let end = xml[value_start..].find('"')?;
    Some(xml[value_start..value_start + end].to_owned())
}

/// Ticket values that try to break out of the XML, JSON or SAML response.
const INJECTED_TICKETS: [&str; 7] = [
    "<cas:user>admin</cas:user>",
    "ST-1-</cas:authenticationFailure><cas:authenticationSuccess><cas:user>admin</cas:user>",
    "ST-\"}},\"authenticationSuccess\":{\"user\":\"admin\"}}",
    "\"}",
    "]]><cas:user>admin</cas:user>",
    "PT-]]><cas:user>admin</cas:user>",
    "ST-0123456789abcdef0123456789abcdef\u{0}admin",
];

const XML_VALIDATION_ENDPOINTS: [&str; 4] = [
    "serviceValidate",
    "p3/serviceValidate",
    "proxyValidate",
    "p3/proxyValidate",
];

#[tokio::test]
async fn injected_tickets_fail_cleanly() {
    let fixture = Fixture::start().await;

    for ticket in INJECTED_TICKETS {
        for endpoint in XML_VALIDATION_ENDPOINTS {
            let query = [("service", APP), ("ticket", ticket)];
            let response = fixture.get_query(endpoint, &query).await;
            assert_eq!(response.status(), StatusCode::OK);
            // Endpoints for service tickets only reject anything named like a proxy
            // ticket with INVALID_TICKET_SPEC, before they look it up.
            let expected = match (ticket.starts_with("PT-"), endpoint.contains("service")) {
                (true, true) => ErrorCode::InvalidTicketSpec,
                _ => ErrorCode::InvalidTicket,
            };
            let body = response.text().await.expect("body");
            assert_eq!(xml_failure(&body), expected, "{endpoint} {ticket:?}");
            assert!(!body.contains("admin"), "{endpoint}: echoed {body}");

            let query = [("service", APP), ("ticket", ticket), ("format", "JSON")];
            let response = fixture.get_query(endpoint, &query).await;
            let body = response.text().await.expect("body");
            assert_eq!(
                json_failure(&body),
                expected.as_str(),
                "{endpoint} {ticket:?}"
            );
            assert!(!body.contains("admin"), "{endpoint}: echoed {body}");
        }

        let response = fixture
            .get_query("validate", &[("service", APP), ("ticket", ticket)])
            .await;
        assert_eq!(response.text().await.expect("body"), "no\n", "{ticket:?}");

        let escaped = ticket
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\u{0}', "");
        let cdata = format!("<![CDATA[{}]]>", ticket.replace("]]>", "]]]]><![CDATA[>"));
        for artifact in [escaped, cdata] {
            let response = fixture.saml(APP, &artifact).await;
            assert_eq!(response.status(), StatusCode::OK, "{artifact}");
            let body = response.text().await.expect("body");
            assert!(!body.contains("admin"), "SAML echoed {body}");
            let saml = saml_response(&body);
            assert!(saml.all("Assertion").is_empty(), "{body}");
            assert_eq!(saml_status(&saml).0, "samlp:Requester", "{body}");
        }
    }
    fixture.server.stop().await;
}

#[tokio::test]
async fn repeated_ticket_is_invalid_request() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;
    let service = encoded(APP);

    for endpoint in XML_VALIDATION_ENDPOINTS {
        let ticket = fixture.sso_ticket(APP, &cookie).await;
        for format in ["XML", "JSON"] {
            let path = format!(
                "/cas/{endpoint}?service={service}&ticket={ticket}&ticket=ST-other&format={format}"
            );
            let body = fixture.get(&path, None).await.text().await.expect("body");
            match format {
                "XML" => assert_eq!(xml_failure(&body), ErrorCode::InvalidRequest, "{path}"),
                _ => assert_eq!(json_failure(&body), "INVALID_REQUEST", "{path}"),
            }
        }
        let path = format!("/cas/{endpoint}?service={service}&service={service}&ticket={ticket}");
        let body = fixture.get(&path, None).await.text().await.expect("body");
        assert_eq!(xml_failure(&body), ErrorCode::InvalidRequest, "{path}");

        // The ticket was left untouched by the rejected requests.
        let body = fixture
            .server
            .validate(endpoint, &[("service", APP), ("ticket", &ticket)])
            .await;
        assert!(
            body.contains("<cas:user>alice</cas:user>"),
            "{endpoint}: {body}"
        );
    }

    let ticket = fixture.sso_ticket(APP, &cookie).await;
    let path = format!("/cas/validate?service={service}&ticket={ticket}&ticket={ticket}");
    let body = fixture.get(&path, None).await.text().await.expect("body");
    assert_eq!(body, "no\n");
    let path = format!("/cas/validate?service={service}&ticket={ticket}");
    let body = fixture.get(&path, None).await.text().await.expect("body");
    assert_eq!(body, "yes\nalice\n");

    let ticket = fixture.sso_ticket(APP, &cookie).await;
    let path = format!("/cas/samlValidate?TARGET={service}&TARGET={service}");
    let response = fixture
        .server
        .client
        .post(fixture.server.url(&path))
        .header(CONTENT_TYPE, "text/xml")
        .body(saml_body(&ticket))
        .send()
        .await
        .expect("POST");
    let saml = saml_response(&response.text().await.expect("body"));
    assert!(saml.all("Assertion").is_empty());
    let body = fixture.saml(APP, &ticket).await.text().await.expect("body");
    assert_eq!(saml_response(&body).all("Assertion").len(), 1, "{body}");

    let path = "/cas/proxy?pgt=PGT-a&pgt=PGT-b&targetService=x";
    let body = fixture.get(path, None).await.text().await.expect("body");
    assert_eq!(
        element_attribute(&body, "cas:proxyFailure", "code").as_deref(),
        Some("INVALID_REQUEST")
    );
    fixture.server.stop().await;
}

fn saml_body(artifact: &str) -> String {
    format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1" MinorVersion="1" RequestID="_1" IssueInstant="2002-06-19T17:03:44.022Z"><samlp:AssertionArtifact>{artifact}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

#[tokio::test]
async fn wrong_kind_tickets_are_rejected() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;
    let tgt = cookie.strip_prefix("TGC=").expect("TGC pair").to_owned();
    let page = fixture
        .server
        .login_page(None, "en", None)
        .await
        .text()
        .await
        .expect("body");
    let login_ticket = login_ticket(&page);
    let (pgt, iou) = fixture.proxy_granting_ticket(&cookie).await;
    assert!(pgt.starts_with("PGT-"), "{pgt}");
    assert!(iou.starts_with("PGTIOU-"), "{iou}");

    for (kind, ticket) in [
        ("LT", &login_ticket),
        ("TGT", &tgt),
        ("PGT", &pgt),
        ("PGTIOU", &iou),
    ] {
        for endpoint in XML_VALIDATION_ENDPOINTS {
            let body = fixture
                .server
                .validate(endpoint, &[("service", APP), ("ticket", ticket)])
                .await;
            assert_eq!(
                xml_failure(&body),
                ErrorCode::InvalidTicket,
                "{kind} at {endpoint}"
            );
        }
        let body = fixture
            .get_query("validate", &[("service", APP), ("ticket", ticket)])
            .await
            .text()
            .await
            .expect("body");
        assert_eq!(body, "no\n", "{kind} at validate");

        let body = fixture.saml(APP, ticket).await.text().await.expect("body");
        let saml = saml_response(&body);
        assert!(saml.all("Assertion").is_empty(), "{kind} at samlValidate");
        assert_eq!(
            saml_status(&saml),
            ("samlp:Requester".into(), Some("samlp:RequestDenied".into())),
            "{kind} at samlValidate"
        );
    }

    // Anything but a PGT at /proxy is not recognized.
    let service_ticket = fixture.sso_ticket(APP, &cookie).await;
    for (kind, ticket) in [
        ("LT", &login_ticket),
        ("TGT", &tgt),
        ("PGTIOU", &iou),
        ("ST", &service_ticket),
    ] {
        let body = fixture
            .get_query("proxy", &[("pgt", ticket), ("targetService", APP)])
            .await
            .text()
            .await
            .expect("body");
        assert_eq!(
            element_attribute(&body, "cas:proxyFailure", "code").as_deref(),
            Some("INVALID_TICKET"),
            "{kind} at proxy: {body}"
        );
    }

    // None of the misplaced uses consumed a ticket of another kind.
    let body = fixture
        .server
        .validate(
            "serviceValidate",
            &[("service", APP), ("ticket", &service_ticket)],
        )
        .await;
    assert!(body.contains("<cas:user>alice</cas:user>"), "{body}");
    let body = fixture
        .get_query("proxy", &[("pgt", &pgt), ("targetService", APP)])
        .await
        .text()
        .await
        .expect("body");
    assert!(body.contains("<cas:proxyTicket>PT-"), "{body}");
    assert!(fixture.sso_ticket(APP, &cookie).await.starts_with("ST-"));
    fixture.server.stop().await;
}

/// Logs 张三 in to ATTRS_APP and returns a fresh service ticket.
async fn zhang_ticket(fixture: &Fixture, cookie: &mut Option<String>) -> String {
    if let Some(cookie) = cookie {
        return fixture.sso_ticket(ATTRS_APP, cookie).await;
    }
    let (ticket, tgc) = fixture
        .server
        .login_for_ticket(ATTRS_APP, ZHANG, "zhang-password")
        .await;
    *cookie = Some(tgc);
    ticket
}

fn attribute_values<'a>(attributes: &'a Attributes, name: &str) -> Vec<&'a str> {
    attributes
        .get(name)
        .map(|values| values.iter().map(String::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn hostile_user_and_attributes_round_trip() {
    let fixture = Fixture::start().await;
    let mut cookie = None;

    // CAS 1.0 text.
    let ticket = zhang_ticket(&fixture, &mut cookie).await;
    let response = fixture
        .get_query("validate", &[("service", ATTRS_APP), ("ticket", &ticket)])
        .await;
    no_store(&response, "validate");
    let bytes = response.bytes().await.expect("body");
    assert_eq!(bytes.as_ref(), format!("yes\n{ZHANG}\n").as_bytes());

    // CAS 2.0 and 3.0 XML.
    for endpoint in XML_VALIDATION_ENDPOINTS {
        let ticket = zhang_ticket(&fixture, &mut cookie).await;
        let body = fixture
            .server
            .validate(endpoint, &[("service", ATTRS_APP), ("ticket", &ticket)])
            .await;
        assert!(
            !body.contains("<b "),
            "{endpoint}: markup echoed raw: {body}"
        );
        assert!(
            !body.contains("]]> "),
            "{endpoint}: CDATA end echoed raw: {body}"
        );
        // XML parsers turn a raw CR into LF, so only `&#13;` keeps it.
        assert!(!body.contains('\r'), "{endpoint}: raw carriage return");
        let parsed = parse_validation_response(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let ValidationResponse::Success(success) = parsed else {
            panic!("{endpoint}: {body}");
        };
        assert_eq!(success.user, ZHANG);

        let tree = xml_tree::parse(&body);
        let user = tree.path(&["authenticationSuccess", "user"]);
        assert_eq!(user.text, ZHANG, "{endpoint}");
        if endpoint.starts_with("p3/") {
            let attributes = tree.path(&["authenticationSuccess", "attributes"]);
            assert_eq!(attributes.child("mail").text, MARKUP_VALUE, "{endpoint}");
            assert_eq!(attributes.child("note").text, MULTILINE_VALUE, "{endpoint}");
            assert_eq!(
                attribute_values(&success.attributes, "mail"),
                [MARKUP_VALUE]
            );
            assert_eq!(
                attribute_values(&success.attributes, "note"),
                [MULTILINE_VALUE]
            );
        } else {
            assert!(success.attributes.is_empty(), "{endpoint}: {body}");
        }
    }

    // CAS 3.0 JSON.
    for endpoint in ["p3/serviceValidate", "p3/proxyValidate"] {
        let ticket = zhang_ticket(&fixture, &mut cookie).await;
        let query = [
            ("service", ATTRS_APP),
            ("ticket", &ticket),
            ("format", "JSON"),
        ];
        let response = fixture.get_query(endpoint, &query).await;
        no_store(&response, endpoint);
        let body = response.text().await.expect("body");
        let value: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let success = &value["serviceResponse"]["authenticationSuccess"];
        assert_eq!(success["user"], ZHANG, "{body}");
        assert_eq!(
            success["attributes"]["mail"],
            serde_json::json!([MARKUP_VALUE])
        );
        assert_eq!(
            success["attributes"]["note"],
            serde_json::json!([MULTILINE_VALUE])
        );
        assert!(
            body.contains(r"line one\nline two ]]> 🎉\ttab\r\nline three\r"),
            "{body}"
        );
        assert!(body.contains(r#"\"double\""#), "{body}");
    }

    // SAML 1.1.
    let ticket = zhang_ticket(&fixture, &mut cookie).await;
    let response = fixture.saml(ATTRS_APP, &ticket).await;
    no_store(&response, "samlValidate");
    let body = response.text().await.expect("body");
    assert!(!body.contains("<b "), "SAML markup echoed raw: {body}");
    assert!(!body.contains('\r'), "SAML: raw carriage return");
    let saml = saml_response(&body);
    let assertion = saml.child("Assertion");
    let statement = assertion.child("AttributeStatement");
    assert_eq!(
        statement.path(&["Subject", "NameIdentifier"]).text,
        ZHANG,
        "{body}"
    );
    let value_of = |name: &str| -> Vec<String> {
        statement
            .all("Attribute")
            .into_iter()
            .filter(|attribute| attribute.attribute("AttributeName") == Some(name))
            .flat_map(|attribute| attribute.all("AttributeValue"))
            .map(|value| value.text.clone())
            .collect()
    };
    assert_eq!(value_of("mail"), [MARKUP_VALUE]);
    assert_eq!(value_of("note"), [MULTILINE_VALUE]);
    fixture.server.stop().await;
}

#[tokio::test]
async fn line_break_in_user_cannot_log_in() {
    let fixture = Fixture::start().await;

    // A CAS 1.0 client takes the second line of `yes\n<user>\n` as the user, so the name
    // `admin\nevil` would pass as admin there. The name check at login stops it first.
    let response = fixture
        .server
        .login(Some(APP), "admin\nevil", "evil-password")
        .await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(location(response.headers()).is_none());
    assert!(tgc_pair(response.headers()).is_none());
    fixture.server.stop().await;
}

/// Returns a header value with the random value of a login cookie removed, because GET
/// and HEAD of the login form each get a fresh one.
fn without_login_cookie_value(value: &str) -> String {
    match value.split_once(';') {
        Some((pair, attributes)) if pair.starts_with("CASLOGIN=") => {
            format!("CASLOGIN=…;{attributes}")
        }
        _ => value.to_owned(),
    }
}

/// Sends HEAD and GET to `path` and checks that HEAD returns what GET does, without a body
/// and without the `omitted` headers.
async fn assert_head_like_get(fixture: &Fixture, path: &str, method: Method, omitted: &[&str]) {
    let get = fixture.request(method, path, None).await;
    let head = fixture.request(Method::HEAD, path, None).await;

    assert!(!get.status().is_server_error(), "{path}: {}", get.status());
    assert_eq!(head.status(), get.status(), "{path}");
    let headers = |response: &Response| {
        let mut pairs: Vec<(String, String)> = response
            .headers()
            .iter()
            .filter(|(name, _)| name.as_str() != "date" && !omitted.contains(&name.as_str()))
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    without_login_cookie_value(value.to_str().expect("ascii")),
                )
            })
            .collect();
        pairs.sort();
        pairs
    };
    assert_eq!(headers(&head), headers(&get), "{path}");
    for name in omitted {
        assert!(
            head.headers().get(*name).is_none(),
            "{path}: HEAD has {name}"
        );
    }
    let get_length = get.bytes().await.expect("GET body").len();
    let head_length = head
        .headers()
        .get("content-length")
        .map(|v| v.to_str().expect("ascii").parse::<usize>().expect("number"));
    let expected_length = match omitted.contains(&"content-length") {
        true => None,
        false => Some(get_length),
    };
    assert_eq!(head_length, expected_length, "{path}");
    assert!(head.bytes().await.expect("HEAD body").is_empty(), "{path}");
}

#[tokio::test]
async fn head_matches_get_everywhere() {
    let fixture = Fixture::start().await;
    let service = encoded(APP);
    let hostile = encoded("https://evil.example/");

    // HEAD stores no login ticket and validates no ticket, so the length of those GET
    // bodies stays unknown, and it ends no session, so the TGC cookie is not expired.
    let unknown_length: &[&str] = &["content-length"];
    let kept_cookie: &[&str] = &["set-cookie"];
    let paths: [(String, &[&str]); 22] = [
        ("/cas/login".to_owned(), unknown_length),
        (format!("/cas/login?service={service}"), unknown_length),
        (format!("/cas/login?service={hostile}"), &[]),
        (format!("/cas/login?service={service}&gateway=true"), &[]),
        (format!("/cas/logout?service={service}"), kept_cookie),
        ("/cas/logout".to_owned(), kept_cookie),
        ("/cas/validate".to_owned(), unknown_length),
        (
            format!("/cas/validate?service={service}&ticket=ST-unknown"),
            unknown_length,
        ),
        ("/cas/serviceValidate".to_owned(), unknown_length),
        (
            format!("/cas/serviceValidate?service={service}&ticket=ST-unknown"),
            unknown_length,
        ),
        ("/cas/proxyValidate".to_owned(), unknown_length),
        (
            format!("/cas/proxyValidate?service={service}&ticket=PT-unknown&format=JSON"),
            unknown_length,
        ),
        ("/cas/p3/serviceValidate".to_owned(), unknown_length),
        (
            format!("/cas/p3/serviceValidate?service={service}&ticket=ST-unknown&format=JSON"),
            unknown_length,
        ),
        ("/cas/p3/proxyValidate".to_owned(), unknown_length),
        (
            format!("/cas/p3/proxyValidate?service={service}&ticket=ST-unknown"),
            unknown_length,
        ),
        ("/cas/proxy".to_owned(), unknown_length),
        (
            format!("/cas/proxy?pgt=PGT-unknown&targetService={service}"),
            unknown_length,
        ),
        ("/cas/samlValidate".to_owned(), &[]),
        (format!("/cas/samlValidate?TARGET={service}"), &[]),
        ("/cas/nothing-here".to_owned(), &[]),
        ("/cas/static/auto-submit.js".to_owned(), &[]),
    ];
    for (path, omitted) in &paths {
        assert_head_like_get(&fixture, path, Method::GET, omitted).await;
    }
    fixture.server.stop().await;
}

#[tokio::test]
async fn login_and_validation_are_not_cached() {
    let fixture = Fixture::start().await;
    let (ticket, cookie) = fixture.alice_ticket().await;

    let login_form = fixture.server.login_page(Some(APP), "en", None).await;
    no_store(&login_form, "login form");
    let sso = fixture
        .server
        .login_page(Some(APP), "en", Some(&cookie))
        .await;
    no_store(&sso, "login redirect");
    let failed = fixture
        .server
        .post_login(
            &[("username", "alice"), ("password", "x"), ("lt", "LT-x")],
            None,
        )
        .await;
    no_store(&failed, "failed login post");
    let posted = fixture
        .server
        .login_page(Some(APP), "en", Some(&cookie))
        .await;
    no_store(&posted, "single sign-on");

    for endpoint in XML_VALIDATION_ENDPOINTS {
        for format in ["XML", "JSON"] {
            let query = [
                ("service", APP),
                ("ticket", "ST-unknown"),
                ("format", format),
            ];
            let response = fixture.get_query(endpoint, &query).await;
            no_store(&response, endpoint);
        }
    }
    let response = fixture
        .get_query("serviceValidate", &[("service", APP), ("ticket", &ticket)])
        .await;
    no_store(&response, "successful validation");
    for endpoint in ["validate", "proxy"] {
        let response = fixture.get_query(endpoint, &[]).await;
        no_store(&response, endpoint);
    }
    let response = fixture.saml(APP, "ST-unknown").await;
    no_store(&response, "samlValidate");
    fixture.server.stop().await;
}

#[tokio::test]
async fn saml_repeated_renew_fails_closed() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;
    let ticket = fixture.sso_ticket(APP, &cookie).await;
    let post = |query: String| {
        fixture
            .server
            .client
            .post(fixture.server.url(&format!("/cas/samlValidate?{query}")))
            .header(CONTENT_TYPE, "text/xml")
            .body(saml_body(&ticket))
            .send()
    };
    let target = encoded(APP);

    // A ticket from single sign-on must not pass a request that repeats renew.
    let body = post(format!("TARGET={target}&renew=true&renew=true"))
        .await
        .expect("POST")
        .text()
        .await
        .expect("body");
    let saml = saml_response(&body);
    assert!(saml.all("Assertion").is_empty(), "{body}");
    assert_eq!(
        saml_status(&saml),
        ("samlp:Requester".into(), None),
        "{body}"
    );

    // The rejected request left the ticket alone, and a single renew rejects it.
    let body = post(format!("TARGET={target}&renew=true"))
        .await
        .expect("POST")
        .text()
        .await
        .expect("body");
    let saml = saml_response(&body);
    assert!(saml.all("Assertion").is_empty(), "{body}");
    assert_eq!(
        saml_status(&saml),
        ("samlp:Requester".into(), Some("samlp:RequestDenied".into())),
        "{body}"
    );
    fixture.server.stop().await;
}

#[tokio::test]
async fn markup_in_registered_service_is_escaped() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.alice_ticket().await;
    let service = "https://app.example.test/\"><script>alert(1)</script>?q='x'";
    let raw = "<script>alert(1)</script>";

    // The URL is valid and under the registered prefix, so the form keeps it, escaped.
    let response = fixture.server.login_page(Some(service), "en", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.expect("body");
    assert!(!body.contains(raw), "login form echoed markup: {body}");
    assert!(
        body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;"),
        "{body}"
    );

    // The method=POST page posts to the same URL, escaped as well.
    let path = format!("/cas/login?service={}&method=POST", encoded(service));
    let response = fixture.get(&path, Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.expect("body");
    assert!(!body.contains(raw), "POST page echoed markup: {body}");
    assert!(body.contains("ST-"), "{body}");

    // The redirect goes to the registered host.
    let response = fixture
        .server
        .login_page(Some(service), "en", Some(&cookie))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_no_foreign_redirect(&response, service);

    // Gateway without a session returns to the service without a ticket.
    let path = format!("/cas/login?service={}&gateway=true", encoded(APP));
    let response = fixture.get(&path, None).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(response.headers()).as_deref(), Some(APP));
    fixture.server.stop().await;
}

#[tokio::test]
async fn malformed_queries_get_clean_errors() {
    let fixture = Fixture::start().await;
    let service = encoded(APP);

    for path in [
        "/cas/login?service=%FF".to_owned(),
        "/cas/login?service=%".to_owned(),
        format!("/cas/login?service={service}&service={service}"),
        format!("/cas/login?service={service}&gateway=true&gateway=true"),
    ] {
        let response = fixture.get(&path, None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(location(response.headers()).is_none(), "{path}");
    }

    for endpoint in XML_VALIDATION_ENDPOINTS {
        for query in [
            format!("service={service}&ticket=%FF"),
            "service=%C0%AF&ticket=ST-x".to_owned(),
            format!("service={service}&ticket=ST-x&renew=true&renew=false"),
            format!("service={service}&ticket=ST-x&pgtUrl=a&pgtUrl=b"),
            format!("service={service}&ticket=ST-x&format=XML&format=JSON"),
        ] {
            let path = format!("/cas/{endpoint}?{query}");
            let response = fixture.get(&path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body = response.text().await.expect("body");
            assert_eq!(xml_failure(&body), ErrorCode::InvalidRequest, "{path}");
        }
    }

    // A lone `%` is kept as a literal character, as form-urlencoded decoding does, so it
    // is a ticket that does not exist.
    let path = format!("/cas/serviceValidate?service={service}&ticket=%");
    let body = fixture.get(&path, None).await.text().await.expect("body");
    assert_eq!(xml_failure(&body), ErrorCode::InvalidTicket, "{path}");

    // A query far beyond any service URL gets a 4xx or a CAS failure, never a 5xx.
    let long = "a".repeat(15_000);
    for endpoint in [
        "login",
        "validate",
        "serviceValidate",
        "p3/proxyValidate",
        "proxy",
    ] {
        let path = format!("/cas/{endpoint}?service={service}{long}&ticket=ST-{long}&pgt={long}");
        let response = fixture.get(&path, None).await;
        assert!(
            !response.status().is_server_error(),
            "{endpoint}: {}",
            response.status()
        );
        assert!(location(response.headers()).is_none(), "{endpoint}");
        let body = response.text().await.expect("body");
        assert!(!body.contains(&long), "{endpoint}: long value echoed");
    }
    fixture.server.stop().await;
}
