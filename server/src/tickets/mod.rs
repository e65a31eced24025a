//! Server-side ticket state: SSO sessions (TGT), service tickets (ST) and login tickets
//! (LT), behind a store trait so that a shared store can replace the in-memory one.

pub mod memory;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{LoginTicket, ServiceTicket, TicketGrantingTicket, TICKET_RANDOM_BYTES};

/// An SSO session, named by its ticket-granting ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSession {
    /// The user name as stored in the user table.
    pub user: String,
    /// When the user typed their password.
    pub authenticated_at: SystemTime,
}

/// The identity a service ticket grants when it is validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceGrant {
    pub service: ServiceUrl,
    pub user: String,
    /// The session that issued the ticket; logging out of it destroys the ticket.
    pub session: TicketGrantingTicket,
    pub authenticated_at: SystemTime,
    /// Whether the ticket came from a password login, not from an existing session.
    pub from_new_login: bool,
}

/// Errors from a ticket store. The in-memory store returns none, but a networked one can.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ticket store unavailable: {0}")]
    Unavailable(String),
}

/// Storage for tickets with expiry. `take_*` methods remove and return in one atomic
/// step, so a ticket is used at most once even under concurrent requests.
/// Implementations must not return expired entries.
#[async_trait]
pub trait TicketStore: Send + Sync {
    async fn put_login_ticket(&self, ticket: &LoginTicket, ttl: Duration)
        -> Result<(), StoreError>;

    /// Removes the login ticket; returns whether it existed and had not expired.
    async fn take_login_ticket(&self, ticket: &LoginTicket) -> Result<bool, StoreError>;

    async fn put_session(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    async fn get_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError>;

    /// Removes the session and every service ticket it issued.
    async fn remove_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError>;

    async fn put_service_ticket(
        &self,
        ticket: &ServiceTicket,
        grant: ServiceGrant,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    async fn take_service_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> Result<Option<ServiceGrant>, StoreError>;

    /// Drops expired entries and returns how many were dropped.
    async fn remove_expired(&self) -> Result<usize, StoreError>;
}

/// Fresh random bytes for a ticket, from the operating system.
pub fn random_ticket_bytes() -> Result<[u8; TICKET_RANDOM_BYTES], StoreError> {
    let mut bytes = [0u8; TICKET_RANDOM_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("random source failed: {e}")))?;
    Ok(bytes)
}
