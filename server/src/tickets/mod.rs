//! Server-side ticket state: SSO sessions (TGT) with their index of issued service and
//! proxy tickets, service tickets (ST), proxy-granting tickets (PGT), proxy tickets (PT), login
//! tickets (LT) and throttling counters, behind one store trait with an in-memory and a
//! Redis implementation.

pub mod attempt_log;
pub mod memory;
pub mod metered;
pub mod redis;
pub mod redis_keys;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{
    LoginTicket, ProxyGrantingTicket, ProxyTicket, ServiceTicket, TicketGrantingTicket,
    TICKET_RANDOM_BYTES,
};
use cas_core::validation::Attributes;

/// An SSO session, named by its ticket-granting ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSession {
    /// The user name as stored in the user table.
    pub user: String,
    /// When the user typed their password.
    pub authenticated_at: SystemTime,
    /// The user's attributes, read once at the password login.
    pub attributes: Attributes,
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
    /// The session's user attributes, before any release policy is applied.
    pub attributes: Attributes,
}

/// The grant of a proxy-granting ticket: proxy tickets for the user of a live SSO
/// session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyingGrant {
    pub user: String,
    /// The session the proxied authentication belongs to; the ticket dies with it.
    pub session: TicketGrantingTicket,
    pub authenticated_at: SystemTime,
    /// Proxy callback URLs the authentication passed through, most recent first. The
    /// first is the callback that received this ticket.
    pub proxies: Vec<String>,
}

/// The identity a proxy ticket grants when it is validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTicketGrant {
    /// The `targetService` of `/proxy`, the only service that may validate the ticket.
    pub service: ServiceUrl,
    pub user: String,
    pub session: TicketGrantingTicket,
    pub authenticated_at: SystemTime,
    /// The chain of the proxy-granting ticket that issued it, most recent first.
    pub proxies: Vec<String>,
}

/// A ticket in a session's index: a service ticket issued from the session, or a proxy
/// ticket issued from one of the session's proxy-granting tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexedTicket {
    Service(ServiceTicket),
    Proxy(ProxyTicket),
}

impl IndexedTicket {
    /// Parses a service or proxy ticket, which its prefix identifies.
    pub fn parse(text: &str) -> Option<Self> {
        if text.starts_with(ProxyTicket::PREFIX) {
            return ProxyTicket::parse(text).ok().map(Self::Proxy);
        }
        ServiceTicket::parse(text).ok().map(Self::Service)
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Service(ticket) => ticket.as_str(),
            Self::Proxy(ticket) => ticket.as_str(),
        }
    }
}

/// One entry of a session's index: a service or proxy ticket and the service it was
/// issued for. Single logout sends that service a request with the ticket as its
/// SessionIndex, so entries stay after the ticket is validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTicket {
    pub ticket: IndexedTicket,
    pub service: ServiceUrl,
}

/// An SSO session that has ended, with what single logout needs: the user and every
/// service and proxy ticket in the session's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub ticket: TicketGrantingTicket,
    pub user: String,
    pub tickets: Vec<IssuedTicket>,
}

/// Errors from a ticket store. Handlers turn every one into a 503 page or an
/// INTERNAL_ERROR validation response.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ticket store unavailable: {0}")]
    Unavailable(String),
    #[error("ticket store is full: {max} entries held (setting memory_max_tickets)")]
    Full { max: usize },
}

/// Storage for tickets with expiry. `take_*` methods remove and return in one atomic
/// step, so a ticket is used at most once even under concurrent requests and across
/// server nodes sharing the store. Implementations never return expired entries.
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

    /// Stores a session that ends `idle` after its last use and at the latest `ttl`
    /// from now. Each service ticket stored for the session by `put_service_ticket` is a
    /// use. [`TicketStore::put_session`] stores a session without an idle timeout.
    async fn put_session_with_idle(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
        idle: Duration,
    ) -> Result<(), StoreError>;

    async fn get_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError>;

    /// Removes the session, its index, every service and proxy ticket in the index and
    /// every proxy-granting ticket it issued.
    async fn remove_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError>;

    /// Stores a service ticket and adds it to the index of `grant.session`. When that
    /// session has already ended, the ticket is still stored but not indexed. Indexing
    /// is a use of the session: its idle deadline moves to now plus its idle timeout,
    /// never past its hard deadline.
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

    /// Stores a proxy-granting ticket until `grant.session` ends, and indexes it there so
    /// that removing the session removes it. Returns false and stores nothing when that
    /// session has already ended.
    async fn put_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
        grant: ProxyingGrant,
    ) -> Result<bool, StoreError>;

    /// Returns a proxy-granting ticket without consuming it, because it has many uses.
    /// A ticket stored while its session was being removed can outlive the session up
    /// to that session's expiry, so callers check the session too.
    async fn get_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
    ) -> Result<Option<ProxyingGrant>, StoreError>;

    /// Stores a proxy ticket and adds it to the index of `grant.session`, the session of
    /// the proxy-granting ticket that issued it, so that single logout reaches its
    /// service. When that session has already ended, the ticket is still stored but not
    /// indexed. Unlike a service ticket, it is no use of the session: the idle deadline
    /// stays, because no browser took part.
    async fn put_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
        grant: ProxyTicketGrant,
        ttl: Duration,
    ) -> Result<(), StoreError>;

    async fn take_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
    ) -> Result<Option<ProxyTicketGrant>, StoreError>;

    /// Returns the index of a live session: every service ticket it issued and every
    /// proxy ticket issued through it, validated or not, with its service. Empty when the
    /// session is unknown.
    async fn session_tickets(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Vec<IssuedTicket>, StoreError>;

    /// Removes the session, its index and its tickets like `remove_session`, and
    /// returns the user with the index in the same step, for single logout. A session
    /// that has expired but was not swept yet is returned too, because no sweep will see
    /// it afterwards. `None` when nothing of the session is left.
    ///
    /// The default reads the index before removing the session, so a ticket issued
    /// between the two steps is missed. The stores of this crate override it.
    async fn end_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<EndedSession>, StoreError> {
        let tickets = self.session_tickets(ticket).await?;
        let session = self.remove_session(ticket).await?;
        Ok(session.map(|session| EndedSession {
            ticket: ticket.clone(),
            user: session.user,
            tickets,
        }))
    }

    /// Removes sessions that have expired and returns each with its index, once, also
    /// when several nodes share the store and sweep at the same time. Sessions that
    /// issued no ticket may be left out.
    async fn take_expired_sessions(&self) -> Result<Vec<EndedSession>, StoreError> {
        Ok(Vec::new())
    }

    /// Records one attempt in the sliding window of `key` unless `limit` attempts are
    /// already recorded within the last `window`. Returns the id of the recorded attempt,
    /// or `None` when the limit is reached, in which case nothing is recorded. Checking
    /// and recording are one atomic step, also across nodes that share the store.
    async fn record_attempt(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<Option<AttemptId>, StoreError>;

    /// Removes one attempt recorded by [`TicketStore::record_attempt`]. Nothing happens
    /// when it has already left the window.
    async fn forget_attempt(&self, key: &str, attempt: AttemptId) -> Result<(), StoreError>;

    /// Returns the number of attempts of `key` recorded within the last `window`.
    async fn recent_attempts(&self, key: &str, window: Duration) -> Result<u64, StoreError>;

    /// Deletes every attempt of `key`, for instance after a successful login.
    async fn reset_counter(&self, key: &str) -> Result<(), StoreError>;

    /// Checks that the store answers; the readiness endpoint calls it.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Drops expired entries and returns how many were dropped. Stores whose entries
    /// expire on their own return 0.
    async fn remove_expired(&self) -> Result<usize, StoreError>;

    /// Returns the number of live entries by kind, when the store can count them
    /// without scanning a shared database.
    fn live_entries(&self) -> Option<LiveEntries> {
        None
    }
}

/// Entry counts of an in-memory store, for the live tickets gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveEntries {
    pub login_tickets: usize,
    pub sessions: usize,
    pub service_tickets: usize,
    pub proxy_granting_tickets: usize,
    pub proxy_tickets: usize,
    pub counters: usize,
}

/// The id of one attempt recorded in a sliding window, for removing it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptId(pub u64);

impl AttemptId {
    /// Returns a random id, so that attempts recorded by different nodes in the same
    /// millisecond stay distinct.
    pub fn random() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| StoreError::Unavailable(format!("random source failed: {e}")))?;
        Ok(Self(u64::from_le_bytes(bytes)))
    }
}

/// Fresh random bytes for a ticket, from the operating system.
pub fn random_ticket_bytes() -> Result<[u8; TICKET_RANDOM_BYTES], StoreError> {
    let mut bytes = [0u8; TICKET_RANDOM_BYTES];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("random source failed: {e}")))?;
    Ok(bytes)
}
