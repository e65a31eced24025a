//! The CAS flow between HTTP and the ticket store: which services may receive tickets,
//! issuing login tickets, sessions and service tickets, and validating a service ticket.

use std::time::{Duration, SystemTime};

use cas_core::registry::ServiceRegistry;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{digest_for_log, LoginTicket, ServiceTicket, TicketGrantingTicket};
use cas_core::validation::{Attributes, ErrorCode};
use sha2::{Digest, Sha256};

use crate::tickets::{random_ticket_bytes, ServiceGrant, SsoSession, StoreError, TicketStore};

/// How long a login form stays usable, in seconds.
pub const LOGIN_TICKET_TTL: Duration = Duration::from_secs(600);

/// Reason a service parameter cannot receive tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceRejection {
    /// Not an absolute http(s) URL under the rules of [`ServiceUrl::parse`].
    Invalid,
    /// A valid URL that no registered service admits.
    NotRegistered,
}

/// Parses `raw` and checks it against the registry.
pub fn check_service(
    registry: &ServiceRegistry,
    raw: &str,
) -> Result<ServiceUrl, ServiceRejection> {
    let service = ServiceUrl::parse(raw).map_err(|_| ServiceRejection::Invalid)?;
    if registry.find(&service).is_none() {
        return Err(ServiceRejection::NotRegistered);
    }
    Ok(service)
}

/// Creates and stores a login ticket for one login form.
pub async fn issue_login_ticket(store: &dyn TicketStore) -> Result<LoginTicket, StoreError> {
    let ticket = LoginTicket::from_random(random_ticket_bytes()?);
    store.put_login_ticket(&ticket, LOGIN_TICKET_TTL).await?;
    Ok(ticket)
}

/// Consumes the login ticket a form carried; false when it is malformed, unknown, used
/// or expired.
pub async fn consume_login_ticket(
    store: &dyn TicketStore,
    raw: Option<&str>,
) -> Result<bool, StoreError> {
    let Some(ticket) = raw.and_then(|raw| LoginTicket::parse(raw).ok()) else {
        return Ok(false);
    };
    store.take_login_ticket(&ticket).await
}

/// Creates a login ticket that only the browser holding the login cookie `browser_key`
/// can use.
///
/// The store keeps a login ticket derived from the form's ticket and a digest of the
/// cookie value, never the value itself. A form posted with another cookie, or with
/// none, derives another ticket and finds nothing, so no comparison of the cookie value
/// with a stored one happens whose time could leak it.
pub async fn issue_browser_login_ticket(
    store: &dyn TicketStore,
    browser_key: &str,
) -> Result<LoginTicket, StoreError> {
    let ticket = LoginTicket::from_random(random_ticket_bytes()?);
    let bound = bind_to_browser(&ticket, browser_key);
    store.put_login_ticket(&bound, LOGIN_TICKET_TTL).await?;
    Ok(ticket)
}

/// Consumes a login ticket issued by [`issue_browser_login_ticket`] for `browser_key`.
/// Returns false when it is malformed, unknown, used, expired or issued to another
/// browser.
pub async fn consume_browser_login_ticket(
    store: &dyn TicketStore,
    raw: Option<&str>,
    browser_key: &str,
) -> Result<bool, StoreError> {
    let Some(ticket) = raw.and_then(|raw| LoginTicket::parse(raw).ok()) else {
        return Ok(false);
    };
    store
        .take_login_ticket(&bind_to_browser(&ticket, browser_key))
        .await
}

/// Derives the stored login ticket from a form's ticket and the browser's login cookie.
/// The label keeps these tickets apart from confirmation tokens.
fn bind_to_browser(ticket: &LoginTicket, browser_key: &str) -> LoginTicket {
    let key_digest = Sha256::digest(browser_key.as_bytes());
    let digest = Sha256::new()
        .chain_update(b"login-form\0")
        .chain_update(ticket.as_str())
        .chain_update([0])
        .chain_update(key_digest)
        .finalize();
    let mut random = [0u8; cas_core::ticket::TICKET_RANDOM_BYTES];
    random.copy_from_slice(&digest[..cas_core::ticket::TICKET_RANDOM_BYTES]);
    LoginTicket::from_random(random)
}

/// Creates the single-use token of a confirmation page shown before single sign-on.
///
/// The store keeps a login ticket derived from the token and the session, so the token
/// works only with the session's cookie: a token that one browser obtained cannot
/// continue another browser's session.
pub async fn issue_confirmation_token(
    store: &dyn TicketStore,
    session: &TicketGrantingTicket,
) -> Result<LoginTicket, StoreError> {
    let token = LoginTicket::from_random(random_ticket_bytes()?);
    let bound = bind_to_session(&token, session);
    store.put_login_ticket(&bound, LOGIN_TICKET_TTL).await?;
    Ok(token)
}

/// Consumes a confirmation token issued for `session`. Returns false when it is
/// malformed, unknown, used, expired or issued for another session.
pub async fn consume_confirmation_token(
    store: &dyn TicketStore,
    raw: Option<&str>,
    session: &TicketGrantingTicket,
) -> Result<bool, StoreError> {
    let Some(token) = raw.and_then(|raw| LoginTicket::parse(raw).ok()) else {
        return Ok(false);
    };
    store
        .take_login_ticket(&bind_to_session(&token, session))
        .await
}

/// Derives the stored login ticket from a confirmation token and its session:
/// SHA-256 of both, cut to the length of a ticket's random part.
fn bind_to_session(token: &LoginTicket, session: &TicketGrantingTicket) -> LoginTicket {
    let digest = Sha256::new()
        .chain_update(token.as_str())
        .chain_update([0])
        .chain_update(session.as_str())
        .finalize();
    let mut random = [0u8; cas_core::ticket::TICKET_RANDOM_BYTES];
    random.copy_from_slice(&digest[..cas_core::ticket::TICKET_RANDOM_BYTES]);
    LoginTicket::from_random(random)
}

/// Starts an SSO session for `user`, who has just typed their password, with the
/// attributes read at that login.
pub async fn start_session(
    store: &dyn TicketStore,
    user: &str,
    attributes: Attributes,
    ttl: Duration,
) -> Result<(TicketGrantingTicket, SsoSession), StoreError> {
    start_session_with_idle(store, user, attributes, ttl, ttl).await
}

/// Starts an SSO session for `user` that ends `ttl` after the login at the latest, and
/// earlier when no service ticket is issued from it for `idle`.
pub async fn start_session_with_idle(
    store: &dyn TicketStore,
    user: &str,
    attributes: Attributes,
    ttl: Duration,
    idle: Duration,
) -> Result<(TicketGrantingTicket, SsoSession), StoreError> {
    let ticket = TicketGrantingTicket::from_random(random_ticket_bytes()?);
    let session = SsoSession {
        user: user.to_owned(),
        authenticated_at: SystemTime::now(),
        attributes,
    };
    store
        .put_session_with_idle(&ticket, session.clone(), ttl, idle)
        .await?;

    tracing::debug!(user, session = %digest_for_log(ticket.as_str()), "SSO session started");
    Ok((ticket, session))
}

/// Finds the live session named by a TGC cookie value.
pub async fn find_session(
    store: &dyn TicketStore,
    cookie: Option<&str>,
) -> Result<Option<(TicketGrantingTicket, SsoSession)>, StoreError> {
    let Some(ticket) = cookie.and_then(|value| TicketGrantingTicket::parse(value).ok()) else {
        return Ok(None);
    };
    let session = store.get_session(&ticket).await?;
    Ok(session.map(|session| (ticket, session)))
}

/// Issues a service ticket for `service` from a session.
pub async fn issue_service_ticket(
    store: &dyn TicketStore,
    session_ticket: &TicketGrantingTicket,
    session: &SsoSession,
    service: &ServiceUrl,
    from_new_login: bool,
    ttl: Duration,
) -> Result<ServiceTicket, StoreError> {
    let ticket = ServiceTicket::from_random(random_ticket_bytes()?);
    let grant = ServiceGrant {
        service: service.clone(),
        user: session.user.clone(),
        session: session_ticket.clone(),
        authenticated_at: session.authenticated_at,
        from_new_login,
        attributes: session.attributes.clone(),
    };
    store.put_service_ticket(&ticket, grant, ttl).await?;

    tracing::info!(
        target: "audit",
        event = "ticket_issued",
        kind = "service_ticket",
        user = %session.user,
        service = %service.without_fragment(),
        ticket = %digest_for_log(ticket.as_str()),
        session = %digest_for_log(session_ticket.as_str()),
        from_new_login,
    );
    Ok(ticket)
}

/// Why a service ticket did not validate: the CAS error code and a message for the
/// service. Neither repeats the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub code: ErrorCode,
    pub message: &'static str,
}

impl ValidationError {
    fn new(code: ErrorCode, message: &'static str) -> Self {
        Self { code, message }
    }
}

/// Validates and consumes a service ticket. The ticket is removed before the service is
/// compared, so a ticket presented with the wrong service is dead afterwards. Writes the
/// audit event `ticket_validated` or `ticket_rejected`.
pub async fn validate_service_ticket(
    store: &dyn TicketStore,
    ticket: &str,
    service: &str,
    renew: bool,
) -> Result<ServiceGrant, ValidationError> {
    let result = check_service_ticket(store, ticket, service, renew).await;

    let digest = digest_for_log(ticket);
    match &result {
        Ok(grant) => {
            tracing::info!(target: "audit", event = "ticket_validated", kind = "service_ticket", user = %grant.user, service = %grant.service.without_fragment(), ticket = %digest)
        }
        Err(error) => {
            tracing::info!(target: "audit", event = "ticket_rejected", code = %error.code, service = ?service, ticket = %digest)
        }
    }
    result
}

async fn check_service_ticket(
    store: &dyn TicketStore,
    ticket: &str,
    service: &str,
    renew: bool,
) -> Result<ServiceGrant, ValidationError> {
    let Ok(ticket) = ServiceTicket::parse(ticket) else {
        return Err(ValidationError::new(
            ErrorCode::InvalidTicket,
            "Ticket not recognized",
        ));
    };

    let grant = match store.take_service_ticket(&ticket).await {
        Ok(Some(grant)) => grant,
        Ok(None) => {
            return Err(ValidationError::new(
                ErrorCode::InvalidTicket,
                "Ticket not recognized",
            ))
        }
        Err(error) => {
            tracing::error!(%error, "ticket store failed during validation");
            return Err(ValidationError::new(
                ErrorCode::InternalError,
                "Validation failed, try again later",
            ));
        }
    };

    let same = grant.service.same_service_as_text(service);
    if !same {
        tracing::warn!(ticket = %digest_for_log(ticket.as_str()), issued_for = %grant.service.without_fragment(), "service ticket presented for another service");
        return Err(ValidationError::new(
            ErrorCode::InvalidService,
            "Ticket was issued for another service",
        ));
    }
    if renew && !grant.from_new_login {
        return Err(ValidationError::new(
            ErrorCode::InvalidTicket,
            "Ticket did not come from a new login",
        ));
    }
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use cas_core::registry::ServiceDefinition;

    use super::*;
    use crate::tickets::memory::MemoryTicketStore;

    const TTL: Duration = Duration::from_secs(60);

    fn registry() -> ServiceRegistry {
        let definition = ServiceDefinition {
            id: "app".into(),
            name: "App".into(),
            kind: "prefix".into(),
            pattern: "https://app.example/".into(),
            ..Default::default()
        };
        ServiceRegistry::from_definitions(&[definition]).expect("valid")
    }

    async fn issued_ticket(
        store: &MemoryTicketStore,
        service: &str,
        from_new_login: bool,
    ) -> ServiceTicket {
        let (session_ticket, session) = start_session(store, "alice", Attributes::new(), TTL)
            .await
            .expect("session");
        let service = ServiceUrl::parse(service).expect("valid");
        issue_service_ticket(
            store,
            &session_ticket,
            &session,
            &service,
            from_new_login,
            TTL,
        )
        .await
        .expect("issue")
    }

    #[test]
    fn service_check_separates_invalid_and_unregistered() {
        let registry = registry();

        assert!(check_service(&registry, "https://app.example/x").is_ok());
        assert_eq!(
            check_service(&registry, "https://evil.example/"),
            Err(ServiceRejection::NotRegistered)
        );
        assert_eq!(
            check_service(&registry, "javascript:alert(1)"),
            Err(ServiceRejection::Invalid)
        );
    }

    #[tokio::test]
    async fn ticket_validates_once() {
        let store = MemoryTicketStore::new();
        let ticket = issued_ticket(&store, "https://app.example/x", true).await;

        let grant =
            validate_service_ticket(&store, ticket.as_str(), "https://app.example/x", false)
                .await
                .expect("valid");
        let again =
            validate_service_ticket(&store, ticket.as_str(), "https://app.example/x", false).await;

        assert_eq!(grant.user, "alice");
        assert_eq!(again.map_err(|e| e.code), Err(ErrorCode::InvalidTicket));
    }

    #[tokio::test]
    async fn wrong_service_destroys_ticket() {
        let store = MemoryTicketStore::new();
        let ticket = issued_ticket(&store, "https://app.example/x", true).await;

        let wrong =
            validate_service_ticket(&store, ticket.as_str(), "https://app.example/y", false).await;
        let right =
            validate_service_ticket(&store, ticket.as_str(), "https://app.example/x", false).await;

        assert_eq!(wrong.map_err(|e| e.code), Err(ErrorCode::InvalidService));
        assert_eq!(right.map_err(|e| e.code), Err(ErrorCode::InvalidTicket));
    }

    #[tokio::test]
    async fn renew_needs_new_login() {
        let store = MemoryTicketStore::new();
        let ticket = issued_ticket(&store, "https://app.example/x", false).await;

        let result =
            validate_service_ticket(&store, ticket.as_str(), "https://app.example/x", true).await;

        assert_eq!(result.map_err(|e| e.code), Err(ErrorCode::InvalidTicket));
    }

    #[tokio::test]
    async fn other_ticket_kinds_are_invalid() {
        let store = MemoryTicketStore::new();
        let proxy_ticket = cas_core::ticket::ProxyTicket::from_random([1; 20]);

        for ticket in [proxy_ticket.as_str(), "", "ST-short", "garbage"] {
            let result =
                validate_service_ticket(&store, ticket, "https://app.example/x", false).await;
            assert_eq!(
                result.map_err(|e| e.code),
                Err(ErrorCode::InvalidTicket),
                "{ticket}"
            );
        }
    }

    #[tokio::test]
    async fn confirmation_token_is_bound_and_single_use() {
        let store = MemoryTicketStore::new();
        let (mine, _) = start_session(&store, "alice", Attributes::new(), TTL)
            .await
            .expect("session");
        let (theirs, _) = start_session(&store, "bob", Attributes::new(), TTL)
            .await
            .expect("session");
        let token = issue_confirmation_token(&store, &mine)
            .await
            .expect("issue");

        let other_session = consume_confirmation_token(&store, Some(token.as_str()), &theirs)
            .await
            .expect("take");
        let as_login_ticket = consume_login_ticket(&store, Some(token.as_str()))
            .await
            .expect("take");
        let first = consume_confirmation_token(&store, Some(token.as_str()), &mine)
            .await
            .expect("take");
        let again = consume_confirmation_token(&store, Some(token.as_str()), &mine)
            .await
            .expect("take");

        assert!(!other_session);
        assert!(!as_login_ticket);
        assert!(first);
        assert!(!again);
    }

    #[tokio::test]
    async fn browser_login_ticket_needs_its_cookie() {
        let store = MemoryTicketStore::new();
        let ticket = issue_browser_login_ticket(&store, "cookie-one")
            .await
            .expect("issue");

        let other_browser = consume_browser_login_ticket(&store, Some(ticket.as_str()), "other")
            .await
            .expect("take");
        let unbound = consume_login_ticket(&store, Some(ticket.as_str()))
            .await
            .expect("take");
        let own = consume_browser_login_ticket(&store, Some(ticket.as_str()), "cookie-one")
            .await
            .expect("take");
        let again = consume_browser_login_ticket(&store, Some(ticket.as_str()), "cookie-one")
            .await
            .expect("take");

        assert!(!other_browser);
        assert!(!unbound);
        assert!(own);
        assert!(!again);
    }

    #[tokio::test]
    async fn login_ticket_is_consumed() {
        let store = MemoryTicketStore::new();
        let ticket = issue_login_ticket(&store).await.expect("issue");

        assert!(consume_login_ticket(&store, Some(ticket.as_str()))
            .await
            .expect("take"));
        assert!(!consume_login_ticket(&store, Some(ticket.as_str()))
            .await
            .expect("take"));
        assert!(!consume_login_ticket(&store, Some("LT-forged"))
            .await
            .expect("take"));
        assert!(!consume_login_ticket(&store, None).await.expect("take"));
    }
}
