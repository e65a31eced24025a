//! Single logout against a real server and MariaDB: local receivers record the SAML
//! LogoutRequests the server posts when a session ends by logout or by expiry, and the
//! session policy (idle and hard timeouts) decides when that is.

mod common;

use std::time::Duration;

use cas_core::registry::ServiceDefinition;
use cas_server::config::TicketStoreSettings;
use cas_server::users::password::PasswordEncoding;
use cas_server::Config;
use common::logout_receiver::{Behaviour, LogoutReceiver, ReceivedPost};
use common::redis_server::RedisPrefix;
use common::xml_tree;
use common::*;
use reqwest::header::COOKIE;
use reqwest::StatusCode;

const SAML2_PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML2_ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

async fn users() -> TestDatabase {
    TestDatabase::create(&[
        CLASSIC_SCHEMA,
        "insert into app_user values ('alice', 'alice-password')",
    ])
    .await
}

fn service(id: &str, pattern: String) -> ServiceDefinition {
    ServiceDefinition {
        id: id.into(),
        name: format!("Service {id}"),
        kind: "prefix".into(),
        pattern,
        ..Default::default()
    }
}

async fn server(
    database: &TestDatabase,
    services: Vec<ServiceDefinition>,
    adjust: impl FnOnce(&mut Config),
) -> TestServer {
    let url = database.url();
    TestServer::start(move |config| {
        config.database_url = Some(url);
        config.password_encoding = PasswordEncoding::Plain;
        add_services(config, services);
        adjust(config);
    })
    .await
}

/// Returns the ticket that `GET /login?service=…` issues from the session in `cookie`.
async fn sso_ticket(server: &TestServer, service: &str, cookie: &str) -> String {
    let response = server.login_page(Some(service), "en", Some(cookie)).await;
    assert_eq!(response.status(), StatusCode::FOUND, "no single sign-on");
    ticket_from_location(response.headers())
}

/// Returns whether `cookie` still names a session, by asking for a ticket.
async fn session_lives(server: &TestServer, cookie: &str) -> bool {
    let response = server.login_page(Some(APP), "en", Some(cookie)).await;
    response.status() == StatusCode::FOUND
}

async fn logout(server: &TestServer, cookie: &str) {
    let response = server
        .client
        .get(server.url("/cas/logout"))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("GET logout");
    assert_eq!(response.status(), StatusCode::OK);
}

/// Checks the request's form and XML and returns its SessionIndex.
fn session_index(post: &ReceivedPost) -> String {
    assert_eq!(post.method, "POST");
    assert_eq!(post.content_type, "application/x-www-form-urlencoded");
    let xml = post.logout_request.as_deref().expect("logoutRequest field");

    let request = xml_tree::parse(xml);
    assert_eq!(request.name, "LogoutRequest");
    assert_eq!(request.namespace, SAML2_PROTOCOL);
    assert_eq!(request.attribute("Version"), Some("2.0"));
    assert!(request.attribute("ID").expect("ID").starts_with('_'));
    assert!(request
        .attribute("IssueInstant")
        .expect("IssueInstant")
        .ends_with('Z'));
    let name_id = request.child("NameID");
    assert_eq!(name_id.namespace, SAML2_ASSERTION);
    assert_eq!(name_id.text, "alice");
    let index = request.child("SessionIndex");
    assert_eq!(index.namespace, SAML2_PROTOCOL);
    index.text.clone()
}

/// Waits long enough for a request that was going to be sent with others to arrive.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn logout_notifies_each_service_once() {
    let database = users().await;
    let mut plain = LogoutReceiver::http(Behaviour::Accept).await;
    let mut secure = LogoutReceiver::https(Behaviour::Accept).await;
    let mut moved = service("moved", secure.url("/moved/"));
    moved.logout_url = Some(secure.url("/moved-logout"));
    let mut quiet = service("quiet", secure.url("/quiet/"));
    quiet.single_logout = false;
    let services = vec![
        service("plain", plain.url("/a/")),
        service("secure", secure.url("/b/")),
        moved,
        quiet,
    ];
    let ca_cert = secure.ca_cert.clone();
    let server = server(&database, services, |config| {
        config.outbound_ca_file = ca_cert;
    })
    .await;

    let (plain_ticket, cookie) = server
        .login_for_ticket(&plain.url("/a/app"), "alice", "alice-password")
        .await;
    let secure_ticket = sso_ticket(&server, &secure.url("/b/app"), &cookie).await;
    let moved_ticket = sso_ticket(&server, &secure.url("/moved/app"), &cookie).await;
    sso_ticket(&server, &secure.url("/quiet/app"), &cookie).await;
    // A validated ticket stays in the session's index for single logout.
    let validated = server
        .validate(
            "serviceValidate",
            &[
                ("service", plain.url("/a/app").as_str()),
                ("ticket", plain_ticket.as_str()),
            ],
        )
        .await;
    assert!(
        validated.contains("<cas:user>alice</cas:user>"),
        "{validated}"
    );

    logout(&server, &cookie).await;

    let to_plain = plain.next_post().await;
    assert_eq!(to_plain.path, "/a/app");
    assert_eq!(session_index(&to_plain), plain_ticket);
    let mut to_secure = [secure.next_post().await, secure.next_post().await];
    to_secure.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(to_secure[0].path, "/b/app");
    assert_eq!(session_index(&to_secure[0]), secure_ticket);
    assert_eq!(to_secure[1].path, "/moved-logout");
    assert_eq!(session_index(&to_secure[1]), moved_ticket);

    settle().await;
    assert!(plain.try_post().is_none(), "second request to plain");
    let extra = secure.try_post();
    assert!(extra.is_none(), "unexpected request {extra:?}");
    server.stop().await;
}

#[tokio::test]
async fn failed_request_is_retried() {
    let database = users().await;
    let mut receiver = LogoutReceiver::http(Behaviour::FailFirst(1)).await;
    let services = vec![service("flaky", receiver.url("/a/"))];
    let server = server(&database, services, |_| {}).await;
    let (ticket, cookie) = server
        .login_for_ticket(&receiver.url("/a/app"), "alice", "alice-password")
        .await;

    logout(&server, &cookie).await;

    let first = receiver.next_post().await;
    let second = receiver.next_post().await;
    assert_eq!(session_index(&first), ticket);
    assert_eq!(session_index(&second), ticket);
    settle().await;
    assert!(receiver.try_post().is_none(), "retried after success");
    server.stop().await;
}

#[tokio::test]
async fn hanging_service_does_not_delay_logout() {
    let database = users().await;
    let mut receiver = LogoutReceiver::http(Behaviour::Hang).await;
    let services = vec![service("stuck", receiver.url("/a/"))];
    let server = server(&database, services, |config| {
        // Longer than the test client waits, so a logout that waited would fail.
        config.outbound_timeout = Duration::from_secs(3600);
        config.slo_retries = 0;
    })
    .await;
    let (ticket, cookie) = server
        .login_for_ticket(&receiver.url("/a/app"), "alice", "alice-password")
        .await;

    logout(&server, &cookie).await;
    let responded_at_logout = receiver.responded();
    let post = receiver.next_post().await;

    assert_eq!(responded_at_logout, 0);
    assert_eq!(session_index(&post), ticket);
    assert_eq!(receiver.responded(), 0, "receiver responded before release");
    receiver.release();
    server.stop().await;
}

#[tokio::test]
async fn expiry_sends_logout() {
    let database = users().await;
    let mut receiver = LogoutReceiver::http(Behaviour::Accept).await;
    let services = vec![service("receiver", receiver.url("/a/"))];
    let server = server(&database, services, |config| {
        config.sso_session_ttl = Duration::from_secs(2);
        config.session_sweep_interval = Duration::from_secs(1);
    })
    .await;
    let (ticket, cookie) = server
        .login_for_ticket(&receiver.url("/a/app"), "alice", "alice-password")
        .await;

    let post = receiver.next_post().await;

    assert_eq!(session_index(&post), ticket);
    assert!(!session_lives(&server, &cookie).await);
    settle().await;
    assert!(receiver.try_post().is_none(), "expiry sent twice");
    server.stop().await;
}

#[tokio::test]
async fn idle_session_ends_but_used_one_lives() {
    let database = users().await;
    let server = server(&database, Vec::new(), |config| {
        config.sso_session_idle = Duration::from_secs(3);
        config.sso_session_ttl = Duration::from_secs(6);
        config.session_sweep_interval = Duration::from_secs(1);
    })
    .await;
    let (_, unused) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;
    let (_, used) = server
        .login_for_ticket(APP, "alice", "alice-password")
        .await;

    // Each ticket issued from `used` restarts its idle timeout of 3 s.
    for second in 1..=4 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            session_lives(&server, &used).await,
            "used session at {second} s"
        );
    }
    assert!(
        !session_lives(&server, &unused).await,
        "unused session lived"
    );

    // The hard limit of 6 s ends the used session too.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !session_lives(&server, &used).await,
        "used session outlived hard limit"
    );
    server.stop().await;
}

#[tokio::test]
async fn expiry_logout_sent_once_across_nodes() {
    let database = users().await;
    let prefix = RedisPrefix::new();
    let mut receiver = LogoutReceiver::http(Behaviour::Accept).await;
    let node = |settings: TicketStoreSettings| {
        let services = vec![service("receiver", receiver.url("/a/"))];
        server(&database, services, move |config| {
            config.ticket_store = settings;
            config.sso_session_ttl = Duration::from_secs(2);
            config.session_sweep_interval = Duration::from_secs(1);
        })
    };
    let first = node(prefix.settings()).await;
    let second = node(prefix.settings()).await;
    let (ticket, _) = first
        .login_for_ticket(&receiver.url("/a/app"), "alice", "alice-password")
        .await;

    let post = receiver.next_post().await;

    assert_eq!(session_index(&post), ticket);
    // Both nodes sweep every second; give each several more sweeps.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(receiver.try_post().is_none(), "expiry sent twice");
    first.stop().await;
    second.stop().await;
}

/// A session of alice at a portal that obtained a proxy-granting ticket through the
/// receiver's `/callback` and, with it, a proxy ticket for a back end. The receiver is
/// both services and their logout endpoint.
struct ProxiedSession {
    server: TestServer,
    receiver: LogoutReceiver,
    cookie: String,
    service_ticket: String,
    proxy_ticket: String,
    _database: TestDatabase,
}

async fn proxied_session(adjust: impl FnOnce(&mut Config)) -> ProxiedSession {
    let database = users().await;
    let mut receiver = LogoutReceiver::https(Behaviour::Accept).await;
    let portal = ServiceDefinition {
        proxy_callbacks: vec![receiver.url("/callback")],
        ..service("portal", receiver.url("/portal/"))
    };
    let backend = ServiceDefinition {
        accept_proxy_tickets: true,
        ..service("backend", receiver.url("/backend/"))
    };
    let ca_cert = receiver.ca_cert.clone();
    let server = server(&database, vec![portal, backend], |config| {
        config.outbound_ca_file = ca_cert;
        adjust(config);
    })
    .await;
    let portal_url = receiver.url("/portal/app");
    let backend_url = receiver.url("/backend/api");
    let callback_url = receiver.url("/callback");

    let (service_ticket, cookie) = server
        .login_for_ticket(&portal_url, "alice", "alice-password")
        .await;
    let validated = server
        .validate(
            "serviceValidate",
            &[
                ("service", portal_url.as_str()),
                ("ticket", service_ticket.as_str()),
                ("pgtUrl", callback_url.as_str()),
            ],
        )
        .await;
    assert!(
        validated.contains("<cas:proxyGrantingTicket>"),
        "{validated}"
    );
    let callback = receiver.next_post().await;
    assert_eq!(callback.path, "/callback");
    let pgt = form_urlencoded::parse(callback.query.as_bytes())
        .find(|(name, _)| name == "pgtId")
        .map(|(_, value)| value.into_owned())
        .expect("pgtId");

    let proxy_body = server
        .client
        .get(server.url("/cas/proxy"))
        .query(&[
            ("pgt", pgt.as_str()),
            ("targetService", backend_url.as_str()),
        ])
        .send()
        .await
        .expect("GET proxy")
        .text()
        .await
        .expect("proxy body");
    let start = proxy_body.find("PT-").expect("proxy ticket");
    let end = proxy_body[start..].find('<').expect("end of ticket") + start;

    ProxiedSession {
        server,
        receiver,
        cookie,
        service_ticket,
        proxy_ticket: proxy_body[start..end].to_owned(),
        _database: database,
    }
}

/// Waits for the two logout requests of a [`ProxiedSession`] and checks that the back end
/// got the proxy ticket as its SessionIndex and the portal its service ticket.
async fn assert_both_services_notified(session: &mut ProxiedSession) {
    let receiver = &mut session.receiver;
    let mut posts = [receiver.next_post().await, receiver.next_post().await];

    posts.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(posts[0].path, "/backend/api");
    assert_eq!(session_index(&posts[0]), session.proxy_ticket);
    assert_eq!(posts[1].path, "/portal/app");
    assert_eq!(session_index(&posts[1]), session.service_ticket);
    settle().await;
    let extra = receiver.try_post();
    assert!(extra.is_none(), "unexpected request {extra:?}");
}

/// Logs out of a [`ProxiedSession`] whose proxy ticket was validated, with the given
/// ticket store, and checks both logout requests.
async fn logout_reaches_proxied_service(ticket_store: Option<TicketStoreSettings>) {
    let mut session = proxied_session(|config| {
        if let Some(ticket_store) = ticket_store {
            config.ticket_store = ticket_store;
        }
    })
    .await;
    let backend_url = session.receiver.url("/backend/api");
    let proxied = session
        .server
        .validate(
            "proxyValidate",
            &[
                ("service", backend_url.as_str()),
                ("ticket", session.proxy_ticket.as_str()),
            ],
        )
        .await;
    assert!(proxied.contains("<cas:user>alice</cas:user>"), "{proxied}");

    logout(&session.server, &session.cookie).await;

    assert_both_services_notified(&mut session).await;
    session.server.stop().await;
}

#[tokio::test]
async fn logout_reaches_proxied_service_memory() {
    logout_reaches_proxied_service(None).await;
}

#[tokio::test]
async fn logout_reaches_proxied_service_redis() {
    let prefix = RedisPrefix::new();
    logout_reaches_proxied_service(Some(prefix.settings())).await;
}

#[tokio::test]
async fn expiry_reaches_proxied_service() {
    let mut session = proxied_session(|config| {
        config.sso_session_ttl = Duration::from_secs(3);
        config.session_sweep_interval = Duration::from_secs(1);
    })
    .await;

    assert_both_services_notified(&mut session).await;
    session.server.stop().await;
}

#[tokio::test]
async fn expiry_reaches_proxied_service_redis() {
    let prefix = RedisPrefix::new();
    let settings = prefix.settings();
    let mut session = proxied_session(|config| {
        config.ticket_store = settings;
        config.sso_session_ttl = Duration::from_secs(3);
        config.session_sweep_interval = Duration::from_secs(1);
    })
    .await;

    assert_both_services_notified(&mut session).await;
    session.server.stop().await;
}
