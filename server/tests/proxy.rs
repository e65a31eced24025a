//! Proxy authentication over real HTTPS: proxy callbacks served by the test with a
//! certificate from the harness's development CA (or a self-signed one), proxy-granting
//! tickets, `/proxy`, proxy ticket validation, `/validate`, and the JSON format.

mod common;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use cas_core::registry::ServiceDefinition;
use cas_core::validation::{AuthenticationSuccess, ErrorCode, ValidationResponse};
use cas_core::xml_parse::parse_validation_response;
use cas_server::config::TicketStoreSettings;
use cas_server::tls::load_server_config;
use cas_server::users::password::PasswordEncoding;
use common::redis_server::{PrivateRedis, RedisPrefix};
use common::*;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use reqwest::StatusCode;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A service that may obtain proxy-granting tickets (its callbacks are set per fixture).
const PORTAL: &str = "https://portal.example.test/app";
/// A back-end service that accepts proxy tickets and may proxy further.
const BACKEND: &str = "https://backend.example.test/api";
/// A second back-end service that accepts proxy tickets.
const THIRD: &str = "https://third.example.test/data";

const PASSWORD: &str = "alice-password";

/// One request a callback server received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    query: String,
}

impl Received {
    /// Returns the value of a query parameter. The values the tests read are tickets,
    /// which need no percent-decoding.
    fn param(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_owned())
    }
}

/// An HTTPS server standing in for proxy callbacks. It records every request it
/// receives and responds with 404 on `/missing`, 302 on `/moved` and 200 elsewhere.
struct CallbackServer {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl CallbackServer {
    fn start(listener: TcpListener, tls: Arc<rustls::ServerConfig>) -> Self {
        let port = listener.local_addr().expect("address").port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = Arc::clone(&received);
        let acceptor = TlsAcceptor::from(tls);

        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(acceptor.clone(), stream, Arc::clone(&log)));
            }
        });
        Self {
            port,
            received,
            task,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("https://127.0.0.1:{}{path_and_query}", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Returns the `pgtId` the callback received together with `iou`.
    fn pgt_for(&self, iou: &str) -> String {
        let received = self.received();
        let request = received
            .iter()
            .find(|r| r.param("pgtIou").as_deref() == Some(iou))
            .unwrap_or_else(|| panic!("no callback with pgtIou {iou}: {received:?}"));
        request.param("pgtId").expect("pgtId beside pgtIou")
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    log: Arc<Mutex<Vec<Received>>>,
) {
    // A client that does not trust the certificate aborts the handshake here.
    let Ok(tls) = acceptor.accept(stream).await else {
        return;
    };
    let service = service_fn(move |request: Request<Incoming>| {
        let response = record_and_respond(&log, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

fn record_and_respond(
    log: &Mutex<Vec<Received>>,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Received {
            path: path.clone(),
            query,
        });

    let status = match path.as_str() {
        "/missing" => 404,
        "/moved" => 302,
        _ => 200,
    };
    Response::builder()
        .status(status)
        .header("location", "https://127.0.0.1:1/elsewhere")
        .body(Full::new(Bytes::new()))
        .expect("response")
}

/// A TCP server that accepts connections and never responds, for callback timeouts.
struct SilentServer {
    port: u16,
    task: JoinHandle<()>,
}

impl SilentServer {
    fn start(listener: TcpListener) -> Self {
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            let mut open_connections = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open_connections.push(stream);
            }
        });
        Self { port, task }
    }
}

impl Drop for SilentServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Builds a TLS configuration with a fresh self-signed certificate for 127.0.0.1, which
/// no trusted root vouches for.
fn self_signed_tls() -> Arc<rustls::ServerConfig> {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .expect("self-signed certificate");
    let chain = vec![CertificateDer::from(certified.cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("TLS identity");
    Arc::new(config)
}

/// Returns a port nothing listens on: bound by the OS, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// The callback ports a fixture registers.
struct CallbackPorts {
    trusted: u16,
    untrusted: u16,
    silent: u16,
    closed: u16,
}

/// Returns the test services plus a proxying portal and two back ends.
fn proxy_services(ports: &CallbackPorts) -> Vec<ServiceDefinition> {
    let callback = |port: u16, path: &str| format!("https://127.0.0.1:{port}{path}");
    let definition = |id: &str, pattern: &str| ServiceDefinition {
        id: id.into(),
        name: format!("Service {id}"),
        kind: "prefix".into(),
        pattern: pattern.into(),
        ..Default::default()
    };

    let mut services = test_services();
    services.push(ServiceDefinition {
        proxy_callbacks: vec![
            callback(ports.trusted, "/cb"),
            callback(ports.trusted, "/missing"),
            callback(ports.trusted, "/moved"),
            callback(ports.untrusted, "/cb"),
            callback(ports.silent, "/cb"),
            callback(ports.closed, "/cb"),
        ],
        ..definition("portal", "https://portal.example.test/")
    });
    services.push(ServiceDefinition {
        proxy_callbacks: vec![callback(ports.trusted, "/backend-cb")],
        accept_proxy_tickets: true,
        ..definition("backend", "https://backend.example.test/")
    });
    services.push(ServiceDefinition {
        accept_proxy_tickets: true,
        ..definition("third", "https://third.example.test/")
    });
    services
}

/// A CAS server with alice in MariaDB, the proxy services, and the callback servers.
struct Fixture {
    server: TestServer,
    callback: CallbackServer,
    untrusted: CallbackServer,
    silent: SilentServer,
    closed_port: u16,
    _database: TestDatabase,
}

impl Fixture {
    /// Starts the fixture with the memory ticket store.
    async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts the fixture with `ticket_store`, or the memory store for `None`.
    async fn start_with(ticket_store: Option<TicketStoreSettings>) -> Self {
        let database = TestDatabase::create(&[
            CLASSIC_SCHEMA,
            "insert into app_user values ('alice', 'alice-password')",
        ])
        .await;
        let trusted = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let untrusted = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let ports = CallbackPorts {
            trusted: trusted.local_addr().expect("address").port(),
            untrusted: untrusted.local_addr().expect("address").port(),
            silent: silent.local_addr().expect("address").port(),
            closed: closed_port(),
        };
        let closed = ports.closed;

        let url = database.url();
        let server = TestServer::start(move |config| {
            config.database_url = Some(url);
            config.password_encoding = PasswordEncoding::Plain;
            config.outbound_ca_file = config.tls_cert.parent().map(|dir| dir.join("ca.pem"));
            config.outbound_timeout = Duration::from_secs(2);
            if let Some(ticket_store) = ticket_store {
                config.ticket_store = ticket_store;
            }
            *config = config
                .clone()
                .with_services(proxy_services(&ports))
                .expect("services");
        })
        .await;

        let tls = load_server_config(&server.server_cert(), &server.server_key()).expect("TLS");
        Self {
            callback: CallbackServer::start(trusted, tls),
            untrusted: CallbackServer::start(untrusted, self_signed_tls()),
            silent: SilentServer::start(silent),
            closed_port: closed,
            server,
            _database: database,
        }
    }

    async fn stop(self) {
        self.server.stop().await;
    }

    /// Logs alice in to `service` and returns the service ticket and the TGC cookie.
    async fn service_ticket(&self, service: &str) -> (String, String) {
        self.server
            .login_for_ticket(service, "alice", PASSWORD)
            .await
    }

    /// Validates at an XML endpoint and parses the response.
    async fn validated(&self, endpoint: &str, query: &[(&str, &str)]) -> ValidationResponse {
        let body = self.server.validate(endpoint, query).await;
        parse_validation_response(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Validates a portal service ticket with the trusted callback and returns the
    /// proxy-granting ticket the callback received, after checking the IOU.
    async fn portal_pgt(&self) -> (String, String) {
        let (ticket, cookie) = self.service_ticket(PORTAL).await;
        let pgt_url = self.callback.url("/cb");
        let response = self
            .validated(
                "serviceValidate",
                &[
                    ("ticket", &ticket),
                    ("service", PORTAL),
                    ("pgtUrl", &pgt_url),
                ],
            )
            .await;

        let iou = success(response)
            .proxy_granting_ticket_iou
            .expect("proxyGrantingTicket in the response");
        (self.callback.pgt_for(&iou), cookie)
    }

    /// GETs `/proxy` and returns the XML body.
    async fn proxy(&self, query: &[(&str, &str)]) -> String {
        let response = self
            .server
            .client
            .get(self.server.url("/cas/proxy"))
            .query(query)
            .send()
            .await
            .expect("proxy");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            content_type(response.headers()),
            "application/xml; charset=UTF-8"
        );
        response.text().await.expect("body")
    }

    /// Obtains a proxy ticket for `target` with `pgt`.
    async fn proxy_ticket(&self, pgt: &str, target: &str) -> String {
        let body = self.proxy(&[("pgt", pgt), ("targetService", target)]).await;
        element_text(&body, "cas:proxyTicket").unwrap_or_else(|| panic!("no proxy ticket: {body}"))
    }

    /// GETs an endpoint and parses its JSON body.
    async fn json(&self, endpoint: &str, query: &[(&str, &str)]) -> Value {
        let response = self
            .server
            .client
            .get(self.server.url(&format!("/cas/{endpoint}")))
            .query(query)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(content_type(response.headers()), "application/json");

        let body = response.text().await.expect("body");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// GETs the CAS 1.0 `/validate` and returns its text.
    async fn validate_v1(&self, query: &[(&str, &str)]) -> String {
        let response = self
            .server
            .client
            .get(self.server.url("/cas/validate"))
            .query(query)
            .send()
            .await
            .expect("validate");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            content_type(response.headers()),
            "text/plain; charset=utf-8"
        );
        response.text().await.expect("body")
    }
}

fn content_type(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .expect("Content-Type")
        .to_str()
        .expect("ascii")
        .to_owned()
}

fn success(response: ValidationResponse) -> AuthenticationSuccess {
    match response {
        ValidationResponse::Success(success) => success,
        ValidationResponse::Failure(failure) => panic!("validation failed: {failure:?}"),
    }
}

fn failure_code(response: &ValidationResponse) -> Option<ErrorCode> {
    match response {
        ValidationResponse::Success(_) => None,
        ValidationResponse::Failure(failure) => Some(failure.code),
    }
}

/// Returns the text of the first `<name>` element of `xml`.
fn element_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..start + end].to_owned())
}

/// Returns the code of a `cas:proxyFailure`.
fn proxy_failure_code(xml: &str) -> Option<String> {
    let marker = "<cas:proxyFailure code=\"";
    let start = xml.find(marker)? + marker.len();
    let end = xml[start..].find('"')?;
    Some(xml[start..start + end].to_owned())
}

#[tokio::test]
async fn full_chain_from_login_to_proxy_validation() {
    let fixture = Fixture::start().await;
    let (ticket, _) = fixture.service_ticket(PORTAL).await;
    let pgt_url = fixture.callback.url("/cb");

    let response = fixture
        .validated(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("pgtUrl", &pgt_url),
            ],
        )
        .await;
    let portal = success(response);
    let iou = portal.proxy_granting_ticket_iou.clone().expect("IOU");

    assert_eq!(portal.user, "alice");
    assert!(portal.proxies.is_empty());
    assert!(iou.starts_with("PGTIOU-"), "{iou}");
    let received = fixture.callback.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/cb");
    assert_eq!(received[0].param("pgtIou").as_deref(), Some(iou.as_str()));
    let pgt = received[0].param("pgtId").expect("pgtId");
    assert!(pgt.starts_with("PGT-"), "{pgt}");

    let body = fixture
        .proxy(&[("pgt", &pgt), ("targetService", BACKEND)])
        .await;
    let proxy_ticket = element_text(&body, "cas:proxyTicket").expect("proxy ticket");
    assert!(proxy_ticket.starts_with("PT-"), "{proxy_ticket}");
    assert!(body.contains("<cas:proxySuccess>"), "{body}");

    let body = fixture
        .server
        .validate(
            "proxyValidate",
            &[("ticket", &proxy_ticket), ("service", BACKEND)],
        )
        .await;
    let backend = success(parse_validation_response(&body).expect("valid XML"));
    assert_eq!(backend.user, "alice");
    assert_eq!(backend.proxies, [pgt_url.as_str()]);
    assert!(backend.proxy_granting_ticket_iou.is_none());
    assert!(backend.attributes.is_empty(), "CAS 2.0 has no attributes");
    assert!(
        body.contains(&format!(
            "<cas:proxies>\n      <cas:proxy>{pgt_url}</cas:proxy>"
        )),
        "{body}"
    );
    fixture.stop().await;
}

#[tokio::test]
async fn callback_query_is_kept() {
    let fixture = Fixture::start().await;
    let (ticket, _) = fixture.service_ticket(PORTAL).await;
    let pgt_url = fixture.callback.url("/cb/inner?app=portal&x=%2F");

    let response = fixture
        .validated(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("pgtUrl", &pgt_url),
            ],
        )
        .await;

    assert!(success(response).proxy_granting_ticket_iou.is_some());
    let received = fixture.callback.received();
    assert_eq!(received[0].path, "/cb/inner");
    assert!(
        received[0].query.starts_with("app=portal&x=%2F&pgtId=PGT-"),
        "{}",
        received[0].query
    );
    fixture.stop().await;
}

#[tokio::test]
async fn chain_grows_through_a_second_proxy() {
    let fixture = Fixture::start().await;
    let (portal_pgt, _) = fixture.portal_pgt().await;
    let backend_ticket = fixture.proxy_ticket(&portal_pgt, BACKEND).await;
    let backend_callback = fixture.callback.url("/backend-cb");

    let response = fixture
        .validated(
            "proxyValidate",
            &[
                ("ticket", &backend_ticket),
                ("service", BACKEND),
                ("pgtUrl", &backend_callback),
            ],
        )
        .await;
    let backend_iou = success(response)
        .proxy_granting_ticket_iou
        .expect("IOU for the back end");
    let backend_pgt = fixture.callback.pgt_for(&backend_iou);
    let third_ticket = fixture.proxy_ticket(&backend_pgt, THIRD).await;

    let response = fixture
        .validated(
            "p3/proxyValidate",
            &[("ticket", &third_ticket), ("service", THIRD)],
        )
        .await;
    let third = success(response);
    assert_eq!(third.user, "alice");
    assert_eq!(
        third.proxies,
        [backend_callback, fixture.callback.url("/cb")],
        "most recent proxy first"
    );
    assert_ne!(backend_pgt, portal_pgt);
    fixture.stop().await;
}

#[tokio::test]
async fn p3_proxy_validate_returns_attributes() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;
    let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;

    let response = fixture
        .validated(
            "p3/proxyValidate",
            &[("ticket", &proxy_ticket), ("service", BACKEND)],
        )
        .await;

    let backend = success(response);
    assert_eq!(backend.user, "alice");
    assert_eq!(backend.proxies, [fixture.callback.url("/cb")]);
    let attributes = &backend.attributes;
    assert_eq!(attributes["isFromNewLogin"], ["false"]);
    assert_eq!(
        attributes["longTermAuthenticationRequestTokenUsed"],
        ["false"]
    );
    let date = &attributes["authenticationDate"][0];
    assert!(date.ends_with('Z'), "{date}");
    assert!(date.contains('T'), "{date}");
    fixture.stop().await;
}

#[tokio::test]
async fn proxy_validate_accepts_service_tickets() {
    let fixture = Fixture::start().await;
    let (ticket, _) = fixture.service_ticket(PORTAL).await;

    let response = fixture
        .validated(
            "p3/proxyValidate",
            &[("ticket", &ticket), ("service", PORTAL)],
        )
        .await;

    let portal = success(response);
    assert_eq!(portal.user, "alice");
    assert!(portal.proxies.is_empty());
    assert_eq!(portal.attributes["isFromNewLogin"], ["true"]);
    fixture.stop().await;
}

#[tokio::test]
async fn service_validate_rejects_and_consumes_proxy_tickets() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;

    for endpoint in ["serviceValidate", "p3/serviceValidate"] {
        let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;

        let body = fixture
            .server
            .validate(endpoint, &[("ticket", &proxy_ticket), ("service", BACKEND)])
            .await;
        let rejected = parse_validation_response(&body).expect("valid XML");
        let afterwards = fixture
            .validated(
                "proxyValidate",
                &[("ticket", &proxy_ticket), ("service", BACKEND)],
            )
            .await;

        assert_eq!(
            failure_code(&rejected),
            Some(ErrorCode::InvalidTicketSpec),
            "{endpoint}"
        );
        assert!(body.contains("proxyValidate"), "{body}");
        assert_eq!(
            failure_code(&afterwards),
            Some(ErrorCode::InvalidTicket),
            "{endpoint}"
        );
    }
    fixture.stop().await;
}

#[tokio::test]
async fn validate_v1_rejects_and_consumes_proxy_tickets() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;
    let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;

    let answer = fixture
        .validate_v1(&[("ticket", &proxy_ticket), ("service", BACKEND)])
        .await;
    let afterwards = fixture
        .validated(
            "proxyValidate",
            &[("ticket", &proxy_ticket), ("service", BACKEND)],
        )
        .await;

    assert_eq!(answer, "no\n");
    assert_eq!(failure_code(&afterwards), Some(ErrorCode::InvalidTicket));
    fixture.stop().await;
}

#[tokio::test]
async fn validate_v1_answers_yes_and_no() {
    let fixture = Fixture::start().await;
    let (ticket, _) = fixture.service_ticket(APP).await;
    let (misused, _) = fixture.service_ticket(APP).await;

    let yes = fixture
        .validate_v1(&[("ticket", &ticket), ("service", APP)])
        .await;
    let reused = fixture
        .validate_v1(&[("ticket", &ticket), ("service", APP)])
        .await;
    let wrong_service = fixture
        .validate_v1(&[("ticket", &misused), ("service", OTHER_APP)])
        .await;
    let after_wrong_service = fixture
        .validate_v1(&[("ticket", &misused), ("service", APP)])
        .await;
    let missing_service = fixture.validate_v1(&[("ticket", &ticket)]).await;
    let missing_everything = fixture.validate_v1(&[]).await;

    assert_eq!(yes, "yes\nalice\n");
    assert_eq!(reused, "no\n");
    assert_eq!(wrong_service, "no\n");
    assert_eq!(
        after_wrong_service, "no\n",
        "a wrong service destroys the ticket"
    );
    assert_eq!(missing_service, "no\n");
    assert_eq!(missing_everything, "no\n");
    fixture.stop().await;
}

#[tokio::test]
async fn validate_v1_honours_renew() {
    let fixture = Fixture::start().await;
    let (_, cookie) = fixture.service_ticket(APP).await;
    let response = fixture
        .server
        .login_page(Some(APP), "en", Some(&cookie))
        .await;
    let single_sign_on_ticket = ticket_from_location(response.headers());

    let answer = fixture
        .validate_v1(&[
            ("ticket", &single_sign_on_ticket),
            ("service", APP),
            ("renew", "true"),
        ])
        .await;

    assert_eq!(answer, "no\n");
    fixture.stop().await;
}

#[tokio::test]
async fn proxy_ticket_is_single_use() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;
    let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;
    let query = [("ticket", proxy_ticket.as_str()), ("service", BACKEND)];

    let first = fixture.validated("proxyValidate", &query).await;
    let second = fixture.validated("proxyValidate", &query).await;

    assert_eq!(success(first).user, "alice");
    assert_eq!(failure_code(&second), Some(ErrorCode::InvalidTicket));
    fixture.stop().await;
}

#[tokio::test]
async fn head_neither_issues_nor_consumes_proxy_tickets() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;
    let client = &fixture.server.client;

    let head = client
        .head(fixture.server.url("/cas/proxy"))
        .query(&[("pgt", pgt.as_str()), ("targetService", BACKEND)])
        .send()
        .await
        .expect("HEAD proxy");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        content_type(head.headers()),
        "application/xml; charset=UTF-8"
    );
    assert_eq!(fixture.server.live_tickets("proxy_ticket").await, 0);

    let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;
    assert_eq!(fixture.server.live_tickets("proxy_ticket").await, 1);
    let query = [("ticket", proxy_ticket.as_str()), ("service", BACKEND)];
    for endpoint in ["proxyValidate", "p3/proxyValidate"] {
        let head = client
            .head(fixture.server.url(&format!("/cas/{endpoint}")))
            .query(&query)
            .send()
            .await
            .expect("HEAD validation");
        assert_eq!(head.status(), StatusCode::OK, "{endpoint}");
    }
    let validated = fixture.validated("proxyValidate", &query).await;

    assert_eq!(success(validated).user, "alice");
    fixture.stop().await;
}

#[tokio::test]
async fn proxy_ticket_is_bound_to_its_target_service() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;
    let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;

    let wrong = fixture
        .validated(
            "proxyValidate",
            &[("ticket", &proxy_ticket), ("service", THIRD)],
        )
        .await;
    let right_afterwards = fixture
        .validated(
            "proxyValidate",
            &[("ticket", &proxy_ticket), ("service", BACKEND)],
        )
        .await;

    assert_eq!(failure_code(&wrong), Some(ErrorCode::InvalidService));
    assert_eq!(
        failure_code(&right_afterwards),
        Some(ErrorCode::InvalidTicket)
    );
    fixture.stop().await;
}

#[tokio::test]
async fn insecure_or_unlisted_pgt_url_is_rejected() {
    let fixture = Fixture::start().await;
    let port = fixture.callback.port;
    let pgt_urls = [
        format!("http://127.0.0.1:{port}/cb"),
        format!("https://127.0.0.1:{port}/unlisted"),
        format!("https://127.0.0.1:{port}/cbx"),
        format!("https://localhost:{port}/cb"),
        "not a URL".to_owned(),
    ];

    for pgt_url in &pgt_urls {
        let (ticket, _) = fixture.service_ticket(PORTAL).await;
        let query = [
            ("ticket", ticket.as_str()),
            ("service", PORTAL),
            ("pgtUrl", pgt_url),
        ];

        let rejected = fixture.validated("serviceValidate", &query).await;
        let again = fixture
            .validated(
                "serviceValidate",
                &[("ticket", &ticket), ("service", PORTAL)],
            )
            .await;

        assert_eq!(
            failure_code(&rejected),
            Some(ErrorCode::InvalidProxyCallback),
            "{pgt_url}"
        );
        assert_eq!(
            failure_code(&again),
            Some(ErrorCode::InvalidTicket),
            "the ticket is consumed: {pgt_url}"
        );
    }
    assert!(fixture.callback.received().is_empty());
    fixture.stop().await;
}

#[tokio::test]
async fn service_without_callbacks_may_not_proxy() {
    let fixture = Fixture::start().await;
    let (ticket, _) = fixture.service_ticket(APP).await;
    let pgt_url = fixture.callback.url("/cb");

    let rejected = fixture
        .validated(
            "p3/serviceValidate",
            &[("ticket", &ticket), ("service", APP), ("pgtUrl", &pgt_url)],
        )
        .await;
    let again = fixture
        .validated("serviceValidate", &[("ticket", &ticket), ("service", APP)])
        .await;

    assert_eq!(
        failure_code(&rejected),
        Some(ErrorCode::UnauthorizedServiceProxy)
    );
    assert_eq!(failure_code(&again), Some(ErrorCode::InvalidTicket));
    assert!(fixture.callback.received().is_empty());
    fixture.stop().await;
}

/// Validates a fresh portal ticket with `pgt_url` and returns the success.
async fn validate_with_callback(fixture: &Fixture, pgt_url: &str) -> AuthenticationSuccess {
    let (ticket, _) = fixture.service_ticket(PORTAL).await;
    let response = fixture
        .validated(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("pgtUrl", pgt_url),
            ],
        )
        .await;
    success(response)
}

#[tokio::test]
async fn callback_answering_404_or_302_gives_no_pgt() {
    let fixture = Fixture::start().await;

    for path in ["/missing", "/moved"] {
        let portal = validate_with_callback(&fixture, &fixture.callback.url(path)).await;

        assert_eq!(portal.user, "alice", "{path}");
        assert!(portal.proxy_granting_ticket_iou.is_none(), "{path}");
    }

    let received = fixture.callback.received();
    assert_eq!(received.len(), 2, "both callbacks were called");
    for request in received {
        let pgt = request.param("pgtId").expect("pgtId sent");
        let body = fixture
            .proxy(&[("pgt", &pgt), ("targetService", BACKEND)])
            .await;
        assert_eq!(
            proxy_failure_code(&body).as_deref(),
            Some("INVALID_TICKET"),
            "the ticket sent to {} was never stored",
            request.path
        );
    }
    fixture.stop().await;
}

#[tokio::test]
async fn unreachable_callback_gives_no_pgt() {
    let fixture = Fixture::start().await;
    let pgt_url = format!("https://127.0.0.1:{}/cb", fixture.closed_port);

    let portal = validate_with_callback(&fixture, &pgt_url).await;

    assert_eq!(portal.user, "alice");
    assert!(portal.proxy_granting_ticket_iou.is_none());
    fixture.stop().await;
}

#[tokio::test]
async fn untrusted_callback_certificate_gives_no_pgt() {
    let fixture = Fixture::start().await;
    let pgt_url = fixture.untrusted.url("/cb");

    let portal = validate_with_callback(&fixture, &pgt_url).await;

    assert_eq!(portal.user, "alice");
    assert!(portal.proxy_granting_ticket_iou.is_none());
    assert!(
        fixture.untrusted.received().is_empty(),
        "no request may follow a failed certificate check"
    );
    fixture.stop().await;
}

#[tokio::test]
async fn silent_callback_times_out_without_pgt() {
    let fixture = Fixture::start().await;
    let pgt_url = format!("https://127.0.0.1:{}/cb", fixture.silent.port);

    let portal = validate_with_callback(&fixture, &pgt_url).await;

    assert_eq!(portal.user, "alice");
    assert!(portal.proxy_granting_ticket_iou.is_none());
    fixture.stop().await;
}

#[tokio::test]
async fn logout_kills_the_proxy_granting_ticket() {
    let fixture = Fixture::start().await;
    let (pgt, cookie) = fixture.portal_pgt().await;
    let before = fixture.proxy_ticket(&pgt, BACKEND).await;

    let logout = fixture
        .server
        .client
        .get(fixture.server.url("/cas/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    let after = fixture
        .proxy(&[("pgt", &pgt), ("targetService", BACKEND)])
        .await;
    let issued_before = fixture
        .validated(
            "proxyValidate",
            &[("ticket", &before), ("service", BACKEND)],
        )
        .await;

    assert_eq!(
        proxy_failure_code(&after).as_deref(),
        Some("INVALID_TICKET"),
        "{after}"
    );
    assert!(!after.contains("PT-"), "{after}");
    assert_eq!(
        failure_code(&issued_before),
        Some(ErrorCode::InvalidTicket),
        "a proxy ticket dies with its session"
    );
    fixture.stop().await;
}

#[tokio::test]
async fn proxy_failure_codes() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;
    let (service_ticket, _) = fixture.service_ticket(PORTAL).await;
    let unknown_pgt = format!("PGT-{}", "ab".repeat(20));

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "INVALID_REQUEST"),
        (vec![("pgt", &pgt)], "INVALID_REQUEST"),
        (vec![("targetService", BACKEND)], "INVALID_REQUEST"),
        (
            vec![("pgt", ""), ("targetService", BACKEND)],
            "INVALID_REQUEST",
        ),
        (
            vec![("pgt", &pgt), ("pgt", &pgt), ("targetService", BACKEND)],
            "INVALID_REQUEST",
        ),
        (
            vec![("pgt", &unknown_pgt), ("targetService", BACKEND)],
            "INVALID_TICKET",
        ),
        (
            vec![("pgt", "PGT-short"), ("targetService", BACKEND)],
            "INVALID_TICKET",
        ),
        (
            vec![("pgt", &service_ticket), ("targetService", BACKEND)],
            "INVALID_TICKET",
        ),
        (
            vec![("pgt", &pgt), ("targetService", STRANGER)],
            "UNAUTHORIZED_SERVICE",
        ),
        (
            vec![("pgt", &pgt), ("targetService", APP)],
            "UNAUTHORIZED_SERVICE",
        ),
        (
            vec![("pgt", &pgt), ("targetService", PORTAL)],
            "UNAUTHORIZED_SERVICE",
        ),
        (
            vec![("pgt", &pgt), ("targetService", "javascript:alert(1)")],
            "UNAUTHORIZED_SERVICE",
        ),
    ];
    for (query, code) in &cases {
        let body = fixture.proxy(query).await;

        assert_eq!(
            proxy_failure_code(&body).as_deref(),
            Some(*code),
            "{query:?}: {body}"
        );
        assert!(!body.contains("PT-"), "no ticket on failure: {body}");
    }

    let still_valid = fixture.proxy_ticket(&pgt, BACKEND).await;
    assert!(
        still_valid.starts_with("PT-"),
        "failures leave the PGT usable"
    );
    fixture.stop().await;
}

#[tokio::test]
async fn json_format_on_validation_endpoints() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;
    let pgt_url = fixture.callback.url("/cb");
    let (ticket, _) = fixture.service_ticket(PORTAL).await;

    let portal = fixture
        .json(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("pgtUrl", &pgt_url),
                ("format", "JSON"),
            ],
        )
        .await;
    let success = &portal["serviceResponse"]["authenticationSuccess"];
    assert_eq!(success["user"], "alice");
    let iou = success["proxyGrantingTicket"].as_str().expect("IOU string");
    assert!(iou.starts_with("PGTIOU-"), "{portal}");
    assert_eq!(fixture.callback.pgt_for(iou).len(), "PGT-".len() + 40);
    assert!(success.get("attributes").is_none(), "{portal}");
    assert!(success.get("proxies").is_none(), "{portal}");

    for (endpoint, with_attributes) in [("proxyValidate", false), ("p3/proxyValidate", true)] {
        let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;
        let backend = fixture
            .json(
                endpoint,
                &[
                    ("ticket", &proxy_ticket),
                    ("service", BACKEND),
                    ("format", "json"),
                ],
            )
            .await;

        let success = &backend["serviceResponse"]["authenticationSuccess"];
        assert_eq!(success["user"], "alice", "{backend}");
        assert_eq!(success["proxies"], json!([pgt_url]), "{backend}");
        assert!(success.get("proxyGrantingTicket").is_none(), "{backend}");
        assert_eq!(
            success.get("attributes").is_some(),
            with_attributes,
            "{backend}"
        );
        if with_attributes {
            assert_eq!(success["attributes"]["isFromNewLogin"], json!(["false"]));
        }
    }

    for endpoint in [
        "serviceValidate",
        "p3/serviceValidate",
        "proxyValidate",
        "p3/proxyValidate",
    ] {
        let unknown = format!("ST-{}", "cd".repeat(20));
        let failed = fixture
            .json(
                endpoint,
                &[
                    ("ticket", &unknown),
                    ("service", PORTAL),
                    ("format", "JSON"),
                ],
            )
            .await;

        let failure = &failed["serviceResponse"]["authenticationFailure"];
        assert_eq!(failure["code"], "INVALID_TICKET", "{endpoint}: {failed}");
        assert!(failure["description"].is_string(), "{endpoint}: {failed}");
        assert_eq!(
            failed["serviceResponse"].as_object().map(|o| o.len()),
            Some(1)
        );
    }

    let incomplete = fixture
        .json(
            "p3/proxyValidate",
            &[("service", PORTAL), ("format", "JSON")],
        )
        .await;
    assert_eq!(
        incomplete["serviceResponse"]["authenticationFailure"]["code"], "INVALID_REQUEST",
        "{incomplete}"
    );
    fixture.stop().await;
}

#[tokio::test]
async fn json_format_on_proxy() {
    let fixture = Fixture::start().await;
    let (pgt, _) = fixture.portal_pgt().await;

    let issued = fixture
        .json(
            "proxy",
            &[
                ("pgt", &pgt),
                ("targetService", BACKEND),
                ("format", "JSON"),
            ],
        )
        .await;
    let rejected = fixture
        .json(
            "proxy",
            &[("pgt", &pgt), ("targetService", APP), ("format", "JSON")],
        )
        .await;

    let proxy_ticket = issued["serviceResponse"]["proxySuccess"]["proxyTicket"]
        .as_str()
        .expect("proxy ticket string");
    assert!(proxy_ticket.starts_with("PT-"), "{issued}");
    assert_eq!(
        rejected,
        json!({"serviceResponse": {"proxyFailure": {
            "code": "UNAUTHORIZED_SERVICE",
            "description": "The target service does not accept proxy tickets",
        }}})
    );
    let validated = fixture
        .validated(
            "proxyValidate",
            &[("ticket", proxy_ticket), ("service", BACKEND)],
        )
        .await;
    assert_eq!(success(validated).user, "alice");

    let incomplete = fixture
        .json("proxy", &[("pgt", &pgt), ("format", "JSON")])
        .await;
    assert_eq!(
        incomplete["serviceResponse"]["proxyFailure"]["code"], "INVALID_REQUEST",
        "{incomplete}"
    );
    fixture.stop().await;
}

#[tokio::test]
async fn unknown_format_is_an_invalid_request() {
    let fixture = Fixture::start().await;
    let (ticket, _) = fixture.service_ticket(PORTAL).await;
    let (pgt, _) = fixture.portal_pgt().await;

    for format in ["YAML", "JSONP", "<x/>"] {
        for endpoint in [
            "serviceValidate",
            "p3/serviceValidate",
            "proxyValidate",
            "p3/proxyValidate",
        ] {
            let body = fixture
                .server
                .validate(
                    endpoint,
                    &[("ticket", &ticket), ("service", PORTAL), ("format", format)],
                )
                .await;
            let response = parse_validation_response(&body).expect("XML");

            assert_eq!(
                failure_code(&response),
                Some(ErrorCode::InvalidRequest),
                "{endpoint} {format}"
            );
            assert!(!body.contains("<x/>"), "{body}");
        }

        let body = fixture
            .proxy(&[
                ("pgt", &pgt),
                ("targetService", BACKEND),
                ("format", format),
            ])
            .await;
        assert_eq!(
            proxy_failure_code(&body).as_deref(),
            Some("INVALID_REQUEST"),
            "{body}"
        );
    }

    let repeated = fixture
        .server
        .validate(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("format", "JSON"),
                ("format", "XML"),
            ],
        )
        .await;
    assert_eq!(
        failure_code(&parse_validation_response(&repeated).expect("XML")),
        Some(ErrorCode::InvalidRequest)
    );

    let validated = fixture
        .validated(
            "serviceValidate",
            &[("ticket", &ticket), ("service", PORTAL), ("format", "xml")],
        )
        .await;
    assert_eq!(
        success(validated).user,
        "alice",
        "a request refused for its format leaves the ticket unused"
    );
    fixture.stop().await;
}

#[tokio::test]
async fn hostile_parameters_are_never_echoed() {
    let fixture = Fixture::start().await;
    let injection = "<cas:user>admin</cas:user>";
    let (pgt, _) = fixture.portal_pgt().await;

    for endpoint in [
        "serviceValidate",
        "proxyValidate",
        "p3/proxyValidate",
        "validate",
    ] {
        let query = [("ticket", injection), ("service", PORTAL)];
        let response = fixture
            .server
            .client
            .get(fixture.server.url(&format!("/cas/{endpoint}")))
            .query(&query)
            .send()
            .await
            .expect("request");
        let body = response.text().await.expect("body");

        assert!(!body.contains(injection), "{endpoint}: {body}");
        assert!(!body.contains("admin"), "{endpoint}: {body}");
    }

    for pgt_value in [injection, pgt.as_str()] {
        let body = fixture
            .proxy(&[("pgt", pgt_value), ("targetService", injection)])
            .await;
        assert!(!body.contains("admin"), "{body}");
        assert!(proxy_failure_code(&body).is_some(), "{body}");
    }

    let (ticket, _) = fixture.service_ticket(PORTAL).await;
    let hostile_pgt_url = format!("https://evil.example.test/{injection}");
    let body = fixture
        .server
        .validate(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("pgtUrl", &hostile_pgt_url),
            ],
        )
        .await;
    assert!(!body.contains("admin"), "{body}");
    assert!(body.contains("INVALID_PROXY_CALLBACK"), "{body}");

    // A listed callback with raw markup in its query cannot be sent, so it is rejected.
    let (ticket, _) = fixture.service_ticket(PORTAL).await;
    let raw_markup = fixture.callback.url(&format!("/cb?x={injection}"));
    let body = fixture
        .server
        .validate(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("pgtUrl", &raw_markup),
            ],
        )
        .await;
    assert!(!body.contains("admin"), "{body}");
    assert!(body.contains("INVALID_PROXY_CALLBACK"), "{body}");

    // A listed callback with encoded markup and a quote: the callback gets the PGT, and
    // the URL later comes back in the proxy chain, escaped.
    let (ticket, _) = fixture.service_ticket(PORTAL).await;
    let listed = fixture.callback.url("/cb?x=%3Cb%3E&y='&z=&amp;");
    let portal = fixture
        .validated(
            "serviceValidate",
            &[
                ("ticket", &ticket),
                ("service", PORTAL),
                ("pgtUrl", &listed),
            ],
        )
        .await;
    let chained_pgt = fixture
        .callback
        .pgt_for(&success(portal).proxy_granting_ticket_iou.expect("IOU"));
    let proxy_ticket = fixture.proxy_ticket(&chained_pgt, BACKEND).await;
    let body = fixture
        .server
        .validate(
            "proxyValidate",
            &[("ticket", &proxy_ticket), ("service", BACKEND)],
        )
        .await;
    let backend = success(parse_validation_response(&body).expect("XML"));
    assert_eq!(backend.proxies, [listed]);
    assert!(body.contains("z=&amp;amp;"), "{body}");
    fixture.stop().await;
}

#[tokio::test]
async fn full_chain_on_the_redis_store() {
    let prefix = RedisPrefix::new();
    let fixture = Fixture::start_with(Some(prefix.settings())).await;
    let (pgt, cookie) = fixture.portal_pgt().await;
    let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;
    let query = [("ticket", proxy_ticket.as_str()), ("service", BACKEND)];

    let first = fixture.validated("p3/proxyValidate", &query).await;
    let second = fixture.validated("p3/proxyValidate", &query).await;

    let backend = success(first);
    assert_eq!(backend.user, "alice");
    assert_eq!(backend.proxies, [fixture.callback.url("/cb")]);
    assert_eq!(failure_code(&second), Some(ErrorCode::InvalidTicket));
    assert!(
        prefix.keys().iter().any(|key| key.contains(&pgt)),
        "the PGT lives in Redis: {:?}",
        prefix.keys()
    );

    let logout = fixture
        .server
        .client
        .get(fixture.server.url("/cas/logout"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    let after = fixture
        .proxy(&[("pgt", &pgt), ("targetService", BACKEND)])
        .await;
    assert_eq!(
        proxy_failure_code(&after).as_deref(),
        Some("INVALID_TICKET"),
        "{after}"
    );
    assert!(
        prefix.keys().iter().all(|key| !key.contains(&pgt)),
        "{:?}",
        prefix.keys()
    );
    fixture.stop().await;
}

#[tokio::test]
async fn store_outage_gives_internal_error() {
    let mut redis = PrivateRedis::start();
    let prefix = RedisPrefix::on(&redis.url());
    let fixture = Fixture::start_with(Some(prefix.settings())).await;
    let (pgt, _) = fixture.portal_pgt().await;
    let proxy_ticket = fixture.proxy_ticket(&pgt, BACKEND).await;

    redis.stop();
    let proxy = fixture
        .proxy(&[("pgt", &pgt), ("targetService", BACKEND)])
        .await;
    let proxy_json = fixture
        .json(
            "proxy",
            &[
                ("pgt", &pgt),
                ("targetService", BACKEND),
                ("format", "JSON"),
            ],
        )
        .await;
    let validation = fixture
        .validated(
            "proxyValidate",
            &[("ticket", &proxy_ticket), ("service", BACKEND)],
        )
        .await;

    assert_eq!(
        proxy_failure_code(&proxy).as_deref(),
        Some("INTERNAL_ERROR"),
        "{proxy}"
    );
    assert!(!proxy.contains(&pgt), "{proxy}");
    assert_eq!(
        proxy_json["serviceResponse"]["proxyFailure"]["code"],
        "INTERNAL_ERROR"
    );
    assert_eq!(failure_code(&validation), Some(ErrorCode::InternalError));
    fixture.stop().await;
}
