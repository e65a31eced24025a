//! The proxy half of CAS 2.0 and 3.0 between HTTP and the ticket store: proxy-granting
//! tickets delivered to a service's proxy callback (`pgtUrl`), proxy tickets issued from
//! them at `/proxy`, and proxy ticket validation.

use std::time::Duration;

use http::StatusCode;

use cas_core::registry::ServiceRegistry;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{digest_for_log, ProxyGrantingTicket, ProxyGrantingTicketIou, ProxyTicket};
use cas_core::validation::ErrorCode;

use crate::outbound::Outbound;
use crate::sso::ValidationError;
use crate::tickets::{
    random_ticket_bytes, ProxyTicketGrant, ProxyingGrant, ServiceGrant, StoreError, TicketStore,
};

/// A validated service or proxy ticket: the identity it grants and the proxies it came
/// through, most recent first (empty for a service ticket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedTicket {
    pub grant: ServiceGrant,
    pub proxies: Vec<String>,
}

/// Checks the `pgtUrl` a validation request carried for `service`. The service must be
/// registered with proxy callbacks, else UNAUTHORIZED_SERVICE_PROXY. The URL must be a
/// valid HTTPS URL under one of its callback prefixes, else INVALID_PROXY_CALLBACK. It
/// must also be a URL the HTTP client can send, so a raw `"`, `<` or `>` in the query
/// gives INVALID_PROXY_CALLBACK too.
pub fn check_callback(
    registry: &ServiceRegistry,
    service: &ServiceUrl,
    pgt_url: &str,
) -> Result<ServiceUrl, ValidationError> {
    let Some(registered) = registry.find(service).filter(|s| s.may_proxy()) else {
        return Err(ValidationError {
            code: ErrorCode::UnauthorizedServiceProxy,
            message: "This service may not obtain proxy-granting tickets",
        });
    };

    let callback = ServiceUrl::parse(pgt_url).ok();
    let sendable = pgt_url.parse::<http::Uri>().is_ok();
    match callback.filter(|url| sendable && registered.allows_callback(url)) {
        Some(callback) => Ok(callback),
        None => Err(ValidationError {
            code: ErrorCode::InvalidProxyCallback,
            message: "pgtUrl is not an https URL registered for this service",
        }),
    }
}

/// Creates a proxy-granting ticket and its IOU, sends both to `callback` in a GET with
/// the query parameters `pgtId` and `pgtIou` added to the callback's own, and stores the
/// ticket only when the callback responds with 200. Returns the IOU for the validation response,
/// or `None` when no ticket was issued:
///
/// - The callback responds with another status: warning with the status. A 3xx counts as a
///   failure too, because redirects are not followed.
/// - The callback cannot be reached (refused connection, DNS failure), its certificate
///   does not verify against the trusted roots (setting `outbound_ca_file` adds to the
///   system's), or the TLS handshake fails: warning with the cause.
/// - No response within `outbound_timeout_seconds`: warning.
/// - The SSO session ended while the callback ran: warning. A ticket store failure:
///   error.
///
/// In each case the validation still succeeds without a `proxyGrantingTicket`, as
/// section 2.5.4 of the CAS 3.0 specification requires. Logs carry digests of the ticket
/// and the IOU, never the values.
pub async fn deliver_proxy_granting_ticket(
    store: &dyn TicketStore,
    outbound: &Outbound,
    callback: &ServiceUrl,
    grant: ProxyingGrant,
) -> Option<ProxyGrantingTicketIou> {
    let (ticket, iou) = match new_ticket_pair() {
        Ok(pair) => pair,
        Err(error) => {
            tracing::error!(%error, "cannot create a proxy-granting ticket");
            return None;
        }
    };
    let target =
        callback.with_query_params(&[("pgtId", ticket.as_str()), ("pgtIou", iou.as_str())]);
    let callback_text = callback.without_fragment();

    match outbound.get(&target).await {
        Ok(StatusCode::OK) => {}
        Ok(status) => {
            tracing::warn!(callback = %callback_text, status = status.as_u16(), "proxy callback returned a status other than 200; no proxy-granting ticket issued");
            return None;
        }
        Err(error) => {
            tracing::warn!(callback = %callback_text, %error, "proxy callback failed; no proxy-granting ticket issued");
            return None;
        }
    }

    let user = grant.user.clone();
    match store.put_proxy_granting_ticket(&ticket, grant).await {
        Ok(true) => {
            tracing::info!(target: "audit", event = "ticket_issued", kind = "proxy_granting_ticket", %user, callback = %callback_text, ticket = %digest_for_log(ticket.as_str()), iou = %digest_for_log(iou.as_str()));
            Some(iou)
        }
        Ok(false) => {
            tracing::warn!(%user, callback = %callback_text, "SSO session ended during the proxy callback; no proxy-granting ticket issued");
            None
        }
        Err(error) => {
            tracing::error!(%error, "ticket store failed while storing a proxy-granting ticket");
            None
        }
    }
}

fn new_ticket_pair() -> Result<(ProxyGrantingTicket, ProxyGrantingTicketIou), StoreError> {
    let ticket = ProxyGrantingTicket::from_random(random_ticket_bytes()?);
    let iou = ProxyGrantingTicketIou::from_random(random_ticket_bytes()?);
    Ok((ticket, iou))
}

/// Returns the grant of a new proxy-granting ticket delivered to `callback` after
/// `validated`: the same user and session, and the chain with `callback` in front.
pub fn proxying_grant(validated: &ValidatedTicket, callback: &ServiceUrl) -> ProxyingGrant {
    let mut proxies = Vec::with_capacity(validated.proxies.len() + 1);
    proxies.push(callback.as_str().to_owned());
    proxies.extend(validated.proxies.iter().cloned());

    ProxyingGrant {
        user: validated.grant.user.clone(),
        session: validated.grant.session.clone(),
        authenticated_at: validated.grant.authenticated_at,
        proxies,
    }
}

/// Why `/proxy` issued no proxy ticket: the CAS error code and a message for the
/// service. Neither repeats the tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub code: ErrorCode,
    pub message: &'static str,
}

impl ProxyError {
    fn new(code: ErrorCode, message: &'static str) -> Self {
        Self { code, message }
    }

    fn store(error: StoreError) -> Self {
        tracing::error!(%error, "ticket store failed during a proxy ticket request");
        Self::new(
            ErrorCode::InternalError,
            "Proxy ticket request failed, try again later",
        )
    }
}

/// Issues a proxy ticket for `target_service` from a proxy-granting ticket. An unknown
/// ticket, or one whose SSO session has ended, gives INVALID_TICKET. A target that is not
/// registered or does not accept proxy tickets gives UNAUTHORIZED_SERVICE. The ticket is
/// checked first, so a caller without a valid ticket learns nothing about the registry.
pub async fn grant_proxy_ticket(
    store: &dyn TicketStore,
    registry: &ServiceRegistry,
    pgt: &str,
    target_service: &str,
    ttl: Duration,
) -> Result<ProxyTicket, ProxyError> {
    let not_recognized = || {
        ProxyError::new(
            ErrorCode::InvalidTicket,
            "Proxy-granting ticket not recognized",
        )
    };
    let pgt = ProxyGrantingTicket::parse(pgt).map_err(|_| not_recognized())?;
    let grant = store
        .get_proxy_granting_ticket(&pgt)
        .await
        .map_err(ProxyError::store)?
        .ok_or_else(not_recognized)?;
    if store
        .get_session(&grant.session)
        .await
        .map_err(ProxyError::store)?
        .is_none()
    {
        return Err(not_recognized());
    }

    let target = ServiceUrl::parse(target_service).ok();
    let accepts = target
        .as_ref()
        .and_then(|target| registry.find(target))
        .is_some_and(|service| service.accept_proxy_tickets);
    let Some(target) = target.filter(|_| accepts) else {
        tracing::warn!(user = %grant.user, ticket = %digest_for_log(pgt.as_str()), "proxy ticket rejected for a target service that does not accept proxy tickets");
        return Err(ProxyError::new(
            ErrorCode::UnauthorizedService,
            "The target service does not accept proxy tickets",
        ));
    };

    let ticket = ProxyTicket::from_random(random_ticket_bytes().map_err(ProxyError::store)?);
    let proxy_grant = ProxyTicketGrant {
        service: target.clone(),
        user: grant.user.clone(),
        session: grant.session,
        authenticated_at: grant.authenticated_at,
        proxies: grant.proxies,
    };
    store
        .put_proxy_ticket(&ticket, proxy_grant, ttl)
        .await
        .map_err(ProxyError::store)?;

    tracing::info!(target: "audit", event = "ticket_issued", kind = "proxy_ticket", user = %grant.user, service = %target.without_fragment(), ticket = %digest_for_log(ticket.as_str()), granting_ticket = %digest_for_log(pgt.as_str()));
    Ok(ticket)
}

/// Validates and consumes a proxy ticket, like a service ticket: removed before the
/// service is compared, bound to its target service, and never from a new login, so
/// `renew` rejects it. A ticket whose SSO session has ended is not recognized. Writes the
/// audit event `ticket_validated` or `ticket_rejected`.
pub async fn validate_proxy_ticket(
    store: &dyn TicketStore,
    ticket: &str,
    service: &str,
    renew: bool,
) -> Result<ValidatedTicket, ValidationError> {
    let result = check_proxy_ticket(store, ticket, service, renew).await;

    let digest = digest_for_log(ticket);
    match &result {
        Ok(validated) => {
            let grant = &validated.grant;
            let proxies = validated.proxies.len();
            tracing::info!(target: "audit", event = "ticket_validated", kind = "proxy_ticket", user = %grant.user, service = %grant.service.without_fragment(), ticket = %digest, proxies)
        }
        Err(error) => {
            tracing::info!(target: "audit", event = "ticket_rejected", code = %error.code, service = ?service, ticket = %digest)
        }
    }
    result
}

async fn check_proxy_ticket(
    store: &dyn TicketStore,
    ticket: &str,
    service: &str,
    renew: bool,
) -> Result<ValidatedTicket, ValidationError> {
    let not_recognized = ValidationError {
        code: ErrorCode::InvalidTicket,
        message: "Ticket not recognized",
    };
    let Ok(ticket) = ProxyTicket::parse(ticket) else {
        return Err(not_recognized);
    };

    let grant = match store.take_proxy_ticket(&ticket).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return Err(not_recognized),
        Err(error) => return Err(internal_error(error)),
    };

    let same = grant.service.same_service_as_text(service);
    if !same {
        tracing::warn!(ticket = %digest_for_log(ticket.as_str()), issued_for = %grant.service.without_fragment(), "proxy ticket presented for another service");
        return Err(ValidationError {
            code: ErrorCode::InvalidService,
            message: "Ticket was issued for another service",
        });
    }
    if renew {
        return Err(ValidationError {
            code: ErrorCode::InvalidTicket,
            message: "Ticket did not come from a new login",
        });
    }

    // The session must still live, and its attributes are released as for a service ticket.
    let session = match store.get_session(&grant.session).await {
        Ok(Some(session)) => session,
        Ok(None) => return Err(not_recognized),
        Err(error) => return Err(internal_error(error)),
    };
    Ok(ValidatedTicket {
        grant: ServiceGrant {
            service: grant.service,
            user: grant.user,
            session: grant.session,
            authenticated_at: grant.authenticated_at,
            from_new_login: false,
            attributes: session.attributes,
        },
        proxies: grant.proxies,
    })
}

/// Consumes a proxy ticket sent to an endpoint that does not accept proxy tickets, so it
/// is dead after this one validation attempt, as the specification requires.
pub async fn consume_rejected_proxy_ticket(store: &dyn TicketStore, ticket: &str) {
    let Ok(ticket) = ProxyTicket::parse(ticket) else {
        return;
    };
    match store.take_proxy_ticket(&ticket).await {
        Ok(taken) => {
            tracing::info!(target: "audit", event = "ticket_rejected", code = %ErrorCode::InvalidTicketSpec, ticket = %digest_for_log(ticket.as_str()), known = taken.is_some(), "proxy ticket sent to an endpoint for service tickets only")
        }
        Err(error) => tracing::error!(%error, "ticket store failed while consuming a proxy ticket"),
    }
}

fn internal_error(error: StoreError) -> ValidationError {
    tracing::error!(%error, "ticket store failed during validation");
    ValidationError {
        code: ErrorCode::InternalError,
        message: "Validation failed, try again later",
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use cas_core::registry::ServiceDefinition;
    use cas_core::ticket::TicketGrantingTicket;

    use super::*;
    use crate::sso::start_session;
    use crate::tickets::memory::MemoryTicketStore;

    const TTL: Duration = Duration::from_secs(60);

    fn registry() -> ServiceRegistry {
        let proxying = ServiceDefinition {
            id: "portal".into(),
            name: "Portal".into(),
            kind: "prefix".into(),
            pattern: "https://portal.example/".into(),
            proxy_callbacks: vec!["https://portal.example/cb".into()],
            ..Default::default()
        };
        let backend = ServiceDefinition {
            id: "backend".into(),
            name: "Backend".into(),
            kind: "prefix".into(),
            pattern: "https://backend.example/".into(),
            accept_proxy_tickets: true,
            ..Default::default()
        };
        let plain = ServiceDefinition {
            id: "plain".into(),
            name: "Plain".into(),
            kind: "prefix".into(),
            pattern: "https://plain.example/".into(),
            ..Default::default()
        };
        ServiceRegistry::from_definitions(&[proxying, backend, plain]).expect("valid")
    }

    fn url(text: &str) -> ServiceUrl {
        ServiceUrl::parse(text).expect("valid URL")
    }

    async fn stored_pgt(store: &MemoryTicketStore) -> (ProxyGrantingTicket, TicketGrantingTicket) {
        let (session, _) = start_session(store, "alice", Default::default(), TTL)
            .await
            .expect("session");
        let ticket = ProxyGrantingTicket::from_random([5; 20]);
        let grant = ProxyingGrant {
            user: "alice".into(),
            session: session.clone(),
            authenticated_at: SystemTime::UNIX_EPOCH,
            proxies: vec!["https://portal.example/cb".into()],
        };
        let stored = store
            .put_proxy_granting_ticket(&ticket, grant)
            .await
            .expect("put");
        assert!(stored);
        (ticket, session)
    }

    #[test]
    fn callback_needs_a_proxying_service() {
        let result = check_callback(
            &registry(),
            &url("https://plain.example/x"),
            "https://portal.example/cb",
        );

        assert_eq!(
            result.map_err(|e| e.code),
            Err(ErrorCode::UnauthorizedServiceProxy)
        );
    }

    #[test]
    fn callback_must_be_registered_https() {
        let registry = registry();
        let service = url("https://portal.example/home");

        for pgt_url in [
            "http://portal.example/cb",
            "https://portal.example/cbx",
            "https://evil.example/cb",
            "not a url",
            "https://portal.example/cb#f",
            "https://portal.example/cb?x=<b>",
        ] {
            let result = check_callback(&registry, &service, pgt_url);
            assert_eq!(
                result.map_err(|e| e.code),
                Err(ErrorCode::InvalidProxyCallback),
                "{pgt_url}"
            );
        }
        assert!(check_callback(&registry, &service, "https://portal.example/cb/in?x=1").is_ok());
    }

    #[test]
    fn chain_puts_the_newest_callback_first() {
        let validated = ValidatedTicket {
            grant: ServiceGrant {
                service: url("https://backend.example/"),
                user: "alice".into(),
                session: TicketGrantingTicket::from_random([1; 20]),
                authenticated_at: SystemTime::UNIX_EPOCH,
                from_new_login: false,
                attributes: Default::default(),
            },
            proxies: vec!["https://portal.example/cb".into()],
        };

        let grant = proxying_grant(&validated, &url("https://backend.example/cb"));

        assert_eq!(
            grant.proxies,
            ["https://backend.example/cb", "https://portal.example/cb"]
        );
        assert_eq!(grant.session, validated.grant.session);
    }

    #[tokio::test]
    async fn proxy_ticket_validates_once_for_its_target() {
        let store = MemoryTicketStore::new();
        let (pgt, _) = stored_pgt(&store).await;

        let ticket = grant_proxy_ticket(
            &store,
            &registry(),
            pgt.as_str(),
            "https://backend.example/api",
            TTL,
        )
        .await
        .expect("issued");
        let validated = validate_proxy_ticket(
            &store,
            ticket.as_str(),
            "https://backend.example/api",
            false,
        )
        .await
        .expect("valid");
        let again = validate_proxy_ticket(
            &store,
            ticket.as_str(),
            "https://backend.example/api",
            false,
        )
        .await;

        assert_eq!(validated.grant.user, "alice");
        assert!(!validated.grant.from_new_login);
        assert_eq!(validated.proxies, ["https://portal.example/cb"]);
        assert_eq!(again.map_err(|e| e.code), Err(ErrorCode::InvalidTicket));
    }

    #[tokio::test]
    async fn proxy_ticket_is_bound_to_its_target() {
        let store = MemoryTicketStore::new();
        let (pgt, _) = stored_pgt(&store).await;
        let ticket = grant_proxy_ticket(
            &store,
            &registry(),
            pgt.as_str(),
            "https://backend.example/a",
            TTL,
        )
        .await
        .expect("issued");

        let wrong =
            validate_proxy_ticket(&store, ticket.as_str(), "https://backend.example/b", false)
                .await;
        let right =
            validate_proxy_ticket(&store, ticket.as_str(), "https://backend.example/a", false)
                .await;

        assert_eq!(wrong.map_err(|e| e.code), Err(ErrorCode::InvalidService));
        assert_eq!(right.map_err(|e| e.code), Err(ErrorCode::InvalidTicket));
    }

    #[tokio::test]
    async fn renew_rejects_proxy_tickets() {
        let store = MemoryTicketStore::new();
        let (pgt, _) = stored_pgt(&store).await;
        let ticket = grant_proxy_ticket(
            &store,
            &registry(),
            pgt.as_str(),
            "https://backend.example/",
            TTL,
        )
        .await
        .expect("issued");

        let result =
            validate_proxy_ticket(&store, ticket.as_str(), "https://backend.example/", true).await;

        assert_eq!(result.map_err(|e| e.code), Err(ErrorCode::InvalidTicket));
    }

    #[tokio::test]
    async fn proxy_request_failures_have_their_codes() {
        let store = MemoryTicketStore::new();
        let (pgt, session) = stored_pgt(&store).await;
        let registry = registry();
        let unknown = ProxyGrantingTicket::from_random([6; 20]);

        let cases = [
            (
                "PGT-short",
                "https://backend.example/",
                ErrorCode::InvalidTicket,
            ),
            (
                unknown.as_str(),
                "https://backend.example/",
                ErrorCode::InvalidTicket,
            ),
            (
                pgt.as_str(),
                "https://plain.example/",
                ErrorCode::UnauthorizedService,
            ),
            (
                pgt.as_str(),
                "https://stranger.example/",
                ErrorCode::UnauthorizedService,
            ),
            (pgt.as_str(), "not a url", ErrorCode::UnauthorizedService),
        ];
        for (ticket, target, code) in cases {
            let result = grant_proxy_ticket(&store, &registry, ticket, target, TTL).await;
            assert_eq!(result.map_err(|e| e.code), Err(code), "{ticket} {target}");
        }

        store.remove_session(&session).await.expect("logout");
        let after_logout = grant_proxy_ticket(
            &store,
            &registry,
            pgt.as_str(),
            "https://backend.example/",
            TTL,
        )
        .await;
        assert_eq!(
            after_logout.map_err(|e| e.code),
            Err(ErrorCode::InvalidTicket)
        );
    }

    /// Log lines written while a test runs, for checks on what the logs contain.
    #[derive(Clone, Default)]
    struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for CapturedLogs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut buffer = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            buffer.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl CapturedLogs {
        fn text(&self) -> String {
            let buffer = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            String::from_utf8_lossy(&buffer).into_owned()
        }
    }

    #[tokio::test]
    async fn failed_callback_logs_cause_without_tickets() {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let store = MemoryTicketStore::new();
        let (session, _) = start_session(&store, "alice", Default::default(), TTL)
            .await
            .expect("session");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        let callback = url(&format!("https://127.0.0.1:{port}/cb"));
        let outbound = Outbound::new(None, Duration::from_secs(2)).expect("client");
        let grant = ProxyingGrant {
            user: "alice".into(),
            session,
            authenticated_at: SystemTime::UNIX_EPOCH,
            proxies: vec![callback.as_str().to_owned()],
        };

        let iou = deliver_proxy_granting_ticket(&store, &outbound, &callback, grant).await;

        let text = logs.text();
        assert!(iou.is_none());
        assert!(text.contains("WARN"), "{text}");
        assert!(text.contains("proxy callback failed"), "{text}");
        assert!(text.to_lowercase().contains("connect"), "the cause: {text}");
        assert!(!text.contains("PGT-"), "{text}");
        assert!(!text.contains("PGTIOU-"), "{text}");
        assert!(!text.contains("pgtId"), "{text}");
    }

    #[tokio::test]
    async fn proxy_ticket_dies_with_its_session() {
        let store = MemoryTicketStore::new();
        let (pgt, session) = stored_pgt(&store).await;
        let ticket = grant_proxy_ticket(
            &store,
            &registry(),
            pgt.as_str(),
            "https://backend.example/",
            TTL,
        )
        .await
        .expect("issued");

        store.remove_session(&session).await.expect("logout");
        let result =
            validate_proxy_ticket(&store, ticket.as_str(), "https://backend.example/", false).await;

        assert_eq!(result.map_err(|e| e.code), Err(ErrorCode::InvalidTicket));
    }
}
