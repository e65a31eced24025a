//! Single logout: when an SSO session ends, by logout or by expiry, every service that
//! received a ticket from it and takes single logout gets a SAML 2.0 `LogoutRequest`,
//! posted as the form field `logoutRequest` to its logout URL. That covers service
//! tickets and proxy tickets issued through the session's proxy-granting tickets, as in
//! Apereo CAS, with the ticket as the `SessionIndex`.
//!
//! Requests go out in a spawned task, so no user waits for a service. Each request is
//! retried after a failure (no response, or a status other than 2xx) with a doubling
//! delay, and at most [`MAX_CONCURRENT_REQUESTS`] are in flight across the server.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cas_core::registry::ServiceRegistry;
use cas_core::saml::{write_logout_request, LogoutRequest};
use cas_core::ticket::digest_for_log;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::outbound::Outbound;
use crate::tickets::{random_ticket_bytes, EndedSession};

/// Logout requests in flight at once, across all ended sessions.
const MAX_CONCURRENT_REQUESTS: usize = 16;

/// Delay before the first retry. Each further retry waits twice as long.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// One logout request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    /// Destination URL: the service's `logout_url`, or the URL the ticket was issued
    /// for.
    pub target: String,
    /// Id of the registered service, for logs.
    pub service_id: String,
    /// Digest of the service or proxy ticket, for logs.
    pub ticket_digest: String,
    /// The `application/x-www-form-urlencoded` body.
    pub body: String,
}

/// Sends logout requests with the server's outbound client.
#[derive(Clone)]
pub struct SingleLogout {
    outbound: Outbound,
    retries: u32,
    permits: Arc<Semaphore>,
}

impl SingleLogout {
    /// Creates the sender. `retries` is the number of attempts after the first.
    pub fn new(outbound: Outbound, retries: u32) -> Self {
        Self {
            outbound,
            retries,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS)),
        }
    }

    /// Sends a logout request for each ticket of `ended` whose service takes single
    /// logout, in a spawned task. Returns that task, or `None` when nothing is sent.
    ///
    /// NOTE: requests still waiting for a retry when the server shuts down are dropped
    /// unsent, because the task ends with the runtime.
    pub fn notify(
        &self,
        registry: &ServiceRegistry,
        ended: &EndedSession,
    ) -> Option<JoinHandle<()>> {
        let deliveries = plan(registry, ended);
        if deliveries.is_empty() {
            return None;
        }

        let sender = self.clone();
        Some(tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            for delivery in deliveries {
                let sender = sender.clone();
                tasks.spawn(async move { sender.deliver(delivery).await });
            }
            while tasks.join_next().await.is_some() {}
        }))
    }

    async fn deliver(&self, delivery: LogoutDelivery) {
        let attempts = self.retries.saturating_add(1);
        let mut delay = FIRST_RETRY_DELAY;

        for attempt in 1..=attempts {
            let outcome = self.attempt(&delivery).await;
            let error = match outcome {
                Ok(status) => {
                    tracing::info!(target: "audit", event = "single_logout_sent", outcome = "delivered", service = %delivery.service_id, target_url = %delivery.target, ticket = %delivery.ticket_digest, attempt, status);
                    return;
                }
                Err(error) => error,
            };

            if attempt == attempts {
                tracing::warn!(target: "audit", event = "single_logout_sent", outcome = "failed", service = %delivery.service_id, target_url = %delivery.target, ticket = %delivery.ticket_digest, attempts, %error, "single logout request failed; giving up");
                return;
            }
            tracing::info!(service = %delivery.service_id, target = %delivery.target, ticket = %delivery.ticket_digest, attempt, %error, retry_in = ?delay, "single logout request failed; retrying");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }

    /// Sends the request once and returns the 2xx status, or why the attempt failed.
    async fn attempt(&self, delivery: &LogoutDelivery) -> Result<u16, String> {
        // Nothing in this module closes the semaphore, so acquiring fails only if that changes.
        let Ok(_permit) = self.permits.acquire().await else {
            return Err("sender is shutting down".into());
        };
        let status = self
            .outbound
            .post_form(&delivery.target, delivery.body.clone())
            .await
            .map_err(|error| error.to_string())?;
        if !status.is_success() {
            return Err(format!("HTTP status {}", status.as_u16()));
        }
        Ok(status.as_u16())
    }
}

/// Builds the logout requests for an ended session: one per issued ticket whose
/// registered service takes single logout. Tickets whose service is no longer
/// registered are skipped.
pub fn plan(registry: &ServiceRegistry, ended: &EndedSession) -> Vec<LogoutDelivery> {
    let mut deliveries = Vec::new();
    for issued in &ended.tickets {
        let Some(service) = registry.find(&issued.service) else {
            continue;
        };
        let Some(target) = service.logout_target(&issued.service) else {
            continue;
        };
        let Some(id) = request_id() else {
            tracing::error!("random source failed; single logout request not sent");
            continue;
        };

        let request = LogoutRequest {
            id,
            issue_instant: SystemTime::now(),
            user: ended.user.clone(),
            session_index: issued.ticket.as_str().to_owned(),
        };
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("logoutRequest", &write_logout_request(&request))
            .finish();
        deliveries.push(LogoutDelivery {
            target: target.without_fragment().to_owned(),
            service_id: service.id.clone(),
            ticket_digest: digest_for_log(issued.ticket.as_str()),
            body,
        });
    }
    deliveries
}

/// Returns a random `xsd:ID`: an underscore and 40 hex digits.
fn request_id() -> Option<String> {
    let bytes = random_ticket_bytes().ok()?;
    Some(format!("_{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use cas_core::registry::ServiceDefinition;
    use cas_core::service::ServiceUrl;
    use cas_core::ticket::{ProxyTicket, ServiceTicket, TicketGrantingTicket};

    use super::*;
    use crate::tickets::{IndexedTicket, IssuedTicket};

    fn registry() -> ServiceRegistry {
        let definition = |id: &str, pattern: &str| ServiceDefinition {
            id: id.into(),
            name: id.into(),
            kind: "prefix".into(),
            pattern: pattern.into(),
            ..Default::default()
        };
        let silent = ServiceDefinition {
            single_logout: false,
            ..definition("silent", "https://silent.example/")
        };
        let redirected = ServiceDefinition {
            logout_url: Some("https://back.example/slo".into()),
            ..definition("redirected", "https://redirected.example/")
        };
        ServiceRegistry::from_definitions(&[
            definition("plain", "https://plain.example/"),
            silent,
            redirected,
        ])
        .expect("valid")
    }

    fn issued(seed: u8, service: &str) -> IssuedTicket {
        IssuedTicket {
            ticket: IndexedTicket::Service(ServiceTicket::from_random([seed; 20])),
            service: ServiceUrl::parse(service).expect("valid"),
        }
    }

    #[test]
    fn plan_follows_service_policies() {
        let ended = EndedSession {
            ticket: TicketGrantingTicket::from_random([9; 20]),
            user: "alice".into(),
            tickets: vec![
                issued(1, "https://plain.example/app?x=1"),
                issued(2, "https://silent.example/"),
                issued(3, "https://redirected.example/page"),
                issued(4, "https://unregistered.example/"),
            ],
        };

        let deliveries = plan(&registry(), &ended);

        let targets: Vec<&str> = deliveries.iter().map(|d| d.target.as_str()).collect();
        assert_eq!(
            targets,
            ["https://plain.example/app?x=1", "https://back.example/slo"]
        );
        let form: Vec<(String, String)> = form_urlencoded::parse(deliveries[0].body.as_bytes())
            .into_owned()
            .collect();
        let ticket = issued(1, "https://plain.example/").ticket;
        assert_eq!(form.len(), 1);
        assert_eq!(form[0].0, "logoutRequest");
        assert!(form[0].1.contains(&format!(
            "<samlp:SessionIndex>{}</samlp:SessionIndex>",
            ticket.as_str()
        )));
        assert!(form[0].1.contains("<saml:NameID>alice</saml:NameID>"));
        assert_eq!(deliveries[0].ticket_digest, digest_for_log(ticket.as_str()));
    }

    #[test]
    fn plan_sends_proxy_ticket_as_session_index() {
        let proxy_ticket = ProxyTicket::from_random([5; 20]);
        let ended = EndedSession {
            ticket: TicketGrantingTicket::from_random([9; 20]),
            user: "alice".into(),
            tickets: vec![IssuedTicket {
                ticket: IndexedTicket::Proxy(proxy_ticket.clone()),
                service: ServiceUrl::parse("https://plain.example/api").expect("valid"),
            }],
        };

        let deliveries = plan(&registry(), &ended);

        assert_eq!(deliveries.len(), 1);
        assert_eq!(deliveries[0].target, "https://plain.example/api");
        let form: Vec<(String, String)> = form_urlencoded::parse(deliveries[0].body.as_bytes())
            .into_owned()
            .collect();
        assert!(form[0].1.contains(&format!(
            "<samlp:SessionIndex>{}</samlp:SessionIndex>",
            proxy_ticket.as_str()
        )));
    }
}
