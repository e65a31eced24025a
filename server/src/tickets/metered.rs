//! A ticket store wrapper that records the latency of every operation in the metrics.

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cas_core::ticket::{
    LoginTicket, ProxyGrantingTicket, ProxyTicket, ServiceTicket, TicketGrantingTicket,
};

use super::{
    AttemptId, EndedSession, IssuedTicket, LiveEntries, ProxyTicketGrant, ProxyingGrant,
    ServiceGrant, SsoSession, StoreError, TicketStore,
};
use crate::metrics::SharedMetrics;

/// Times each call to the inner store under the operation's name.
pub struct MeteredTicketStore {
    inner: Box<dyn TicketStore>,
    metrics: SharedMetrics,
}

impl MeteredTicketStore {
    pub fn new(inner: Box<dyn TicketStore>, metrics: SharedMetrics) -> Self {
        Self { inner, metrics }
    }

    async fn timed<T>(&self, operation: &'static str, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let result = call.await;
        self.metrics.observe_store(operation, started.elapsed());
        result
    }
}

#[async_trait]
impl TicketStore for MeteredTicketStore {
    async fn put_login_ticket(
        &self,
        ticket: &LoginTicket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.timed("put_login_ticket", self.inner.put_login_ticket(ticket, ttl))
            .await
    }

    async fn take_login_ticket(&self, ticket: &LoginTicket) -> Result<bool, StoreError> {
        self.timed("take_login_ticket", self.inner.take_login_ticket(ticket))
            .await
    }

    async fn put_session(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.timed("put_session", self.inner.put_session(ticket, session, ttl))
            .await
    }

    async fn put_session_with_idle(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
        idle: Duration,
    ) -> Result<(), StoreError> {
        self.timed(
            "put_session",
            self.inner.put_session_with_idle(ticket, session, ttl, idle),
        )
        .await
    }

    async fn get_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        self.timed("get_session", self.inner.get_session(ticket))
            .await
    }

    async fn remove_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        self.timed("remove_session", self.inner.remove_session(ticket))
            .await
    }

    async fn put_service_ticket(
        &self,
        ticket: &ServiceTicket,
        grant: ServiceGrant,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.timed(
            "put_service_ticket",
            self.inner.put_service_ticket(ticket, grant, ttl),
        )
        .await
    }

    async fn take_service_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> Result<Option<ServiceGrant>, StoreError> {
        self.timed(
            "take_service_ticket",
            self.inner.take_service_ticket(ticket),
        )
        .await
    }

    async fn put_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
        grant: ProxyingGrant,
    ) -> Result<bool, StoreError> {
        self.timed(
            "put_proxy_granting_ticket",
            self.inner.put_proxy_granting_ticket(ticket, grant),
        )
        .await
    }

    async fn get_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
    ) -> Result<Option<ProxyingGrant>, StoreError> {
        self.timed(
            "get_proxy_granting_ticket",
            self.inner.get_proxy_granting_ticket(ticket),
        )
        .await
    }

    async fn put_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
        grant: ProxyTicketGrant,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.timed(
            "put_proxy_ticket",
            self.inner.put_proxy_ticket(ticket, grant, ttl),
        )
        .await
    }

    async fn take_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
    ) -> Result<Option<ProxyTicketGrant>, StoreError> {
        self.timed("take_proxy_ticket", self.inner.take_proxy_ticket(ticket))
            .await
    }

    async fn session_tickets(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Vec<IssuedTicket>, StoreError> {
        self.timed("session_tickets", self.inner.session_tickets(ticket))
            .await
    }

    async fn end_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<EndedSession>, StoreError> {
        self.timed("end_session", self.inner.end_session(ticket))
            .await
    }

    async fn take_expired_sessions(&self) -> Result<Vec<EndedSession>, StoreError> {
        self.timed("take_expired_sessions", self.inner.take_expired_sessions())
            .await
    }

    async fn record_attempt(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<Option<AttemptId>, StoreError> {
        self.timed(
            "record_attempt",
            self.inner.record_attempt(key, limit, window),
        )
        .await
    }

    async fn forget_attempt(&self, key: &str, attempt: AttemptId) -> Result<(), StoreError> {
        self.timed("forget_attempt", self.inner.forget_attempt(key, attempt))
            .await
    }

    async fn recent_attempts(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        self.timed("recent_attempts", self.inner.recent_attempts(key, window))
            .await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.timed("reset_counter", self.inner.reset_counter(key))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn remove_expired(&self) -> Result<usize, StoreError> {
        self.timed("remove_expired", self.inner.remove_expired())
            .await
    }

    fn live_entries(&self) -> Option<LiveEntries> {
        self.inner.live_entries()
    }
}
