//! In-memory ticket store for a single server process. Expiry uses tokio's clock, so
//! tests can pause and advance time instead of sleeping.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use cas_core::ticket::{LoginTicket, ServiceTicket, TicketGrantingTicket};
use tokio::time::Instant;

use super::{ServiceGrant, SsoSession, StoreError, TicketStore};

struct Expiring<T> {
    value: T,
    expires_at: Instant,
}

impl<T> Expiring<T> {
    fn new(value: T, ttl: Duration) -> Self {
        Self {
            value,
            expires_at: Instant::now() + ttl,
        }
    }

    fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

#[derive(Default)]
struct Tables {
    login_tickets: HashMap<String, Expiring<()>>,
    sessions: HashMap<String, Expiring<SsoSession>>,
    service_tickets: HashMap<String, Expiring<ServiceGrant>>,
}

/// Tickets in three hash maps behind one mutex. The lock is never held across an await.
#[derive(Default)]
pub struct MemoryTicketStore {
    tables: Mutex<Tables>,
}

impl MemoryTicketStore {
    pub fn new() -> Self {
        Self::default()
    }

    // A panic while the lock was held cannot leave a map half-updated (every change is
    // a single insert or remove), so a poisoned lock is still safe to use.
    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TicketStore for MemoryTicketStore {
    async fn put_login_ticket(
        &self,
        ticket: &LoginTicket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.tables()
            .login_tickets
            .insert(ticket.as_str().to_owned(), Expiring::new((), ttl));
        Ok(())
    }

    async fn take_login_ticket(&self, ticket: &LoginTicket) -> Result<bool, StoreError> {
        let entry = self.tables().login_tickets.remove(ticket.as_str());
        Ok(entry.is_some_and(|e| e.is_live(Instant::now())))
    }

    async fn put_session(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.tables()
            .sessions
            .insert(ticket.as_str().to_owned(), Expiring::new(session, ttl));
        Ok(())
    }

    async fn get_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        let tables = self.tables();
        let entry = tables
            .sessions
            .get(ticket.as_str())
            .filter(|e| e.is_live(Instant::now()));
        Ok(entry.map(|e| e.value.clone()))
    }

    async fn remove_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        let mut tables = self.tables();
        tables
            .service_tickets
            .retain(|_, e| e.value.session != *ticket);

        let entry = tables.sessions.remove(ticket.as_str());
        Ok(entry.filter(|e| e.is_live(Instant::now())).map(|e| e.value))
    }

    async fn put_service_ticket(
        &self,
        ticket: &ServiceTicket,
        grant: ServiceGrant,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.tables()
            .service_tickets
            .insert(ticket.as_str().to_owned(), Expiring::new(grant, ttl));
        Ok(())
    }

    async fn take_service_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> Result<Option<ServiceGrant>, StoreError> {
        let entry = self.tables().service_tickets.remove(ticket.as_str());
        Ok(entry.filter(|e| e.is_live(Instant::now())).map(|e| e.value))
    }

    async fn remove_expired(&self) -> Result<usize, StoreError> {
        let now = Instant::now();
        let mut tables = self.tables();
        let before =
            tables.login_tickets.len() + tables.sessions.len() + tables.service_tickets.len();

        tables.login_tickets.retain(|_, e| e.is_live(now));
        tables.sessions.retain(|_, e| e.is_live(now));
        tables.service_tickets.retain(|_, e| e.is_live(now));

        let after =
            tables.login_tickets.len() + tables.sessions.len() + tables.service_tickets.len();
        Ok(before - after)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use cas_core::service::ServiceUrl;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn session_ticket(seed: u8) -> TicketGrantingTicket {
        TicketGrantingTicket::from_random([seed; 20])
    }

    fn grant(session: TicketGrantingTicket) -> ServiceGrant {
        ServiceGrant {
            service: ServiceUrl::parse("https://app.example/").expect("valid"),
            user: "alice".into(),
            session,
            authenticated_at: SystemTime::UNIX_EPOCH,
            from_new_login: true,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn service_ticket_is_taken_once() {
        let store = MemoryTicketStore::new();
        let ticket = ServiceTicket::from_random([1; 20]);
        store
            .put_service_ticket(&ticket, grant(session_ticket(1)), MINUTE)
            .await
            .expect("put");

        assert!(store
            .take_service_ticket(&ticket)
            .await
            .expect("take")
            .is_some());
        assert!(store
            .take_service_ticket(&ticket)
            .await
            .expect("take")
            .is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn service_ticket_expires() {
        let store = MemoryTicketStore::new();
        let ticket = ServiceTicket::from_random([2; 20]);
        store
            .put_service_ticket(&ticket, grant(session_ticket(2)), MINUTE)
            .await
            .expect("put");

        tokio::time::advance(MINUTE).await;

        assert!(store
            .take_service_ticket(&ticket)
            .await
            .expect("take")
            .is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn login_ticket_is_single_use_and_expires() {
        let store = MemoryTicketStore::new();
        let used = LoginTicket::from_random([3; 20]);
        let late = LoginTicket::from_random([4; 20]);
        store.put_login_ticket(&used, MINUTE).await.expect("put");
        store.put_login_ticket(&late, MINUTE).await.expect("put");

        assert!(store.take_login_ticket(&used).await.expect("take"));
        assert!(!store.take_login_ticket(&used).await.expect("take"));

        tokio::time::advance(MINUTE + Duration::from_secs(1)).await;
        assert!(!store.take_login_ticket(&late).await.expect("take"));
    }

    #[tokio::test(start_paused = true)]
    async fn removing_session_kills_its_service_tickets() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(5);
        let other = session_ticket(6);
        let mine = ServiceTicket::from_random([5; 20]);
        let theirs = ServiceTicket::from_random([6; 20]);
        let value = SsoSession {
            user: "alice".into(),
            authenticated_at: SystemTime::UNIX_EPOCH,
        };
        store
            .put_session(&session, value.clone(), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&mine, grant(session.clone()), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&theirs, grant(other), MINUTE)
            .await
            .expect("put");

        assert_eq!(
            store.remove_session(&session).await.expect("remove"),
            Some(value)
        );
        assert!(store.get_session(&session).await.expect("get").is_none());
        assert!(store
            .take_service_ticket(&mine)
            .await
            .expect("take")
            .is_none());
        assert!(store
            .take_service_ticket(&theirs)
            .await
            .expect("take")
            .is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_drops_only_expired() {
        let store = MemoryTicketStore::new();
        let value = SsoSession {
            user: "alice".into(),
            authenticated_at: SystemTime::UNIX_EPOCH,
        };
        store
            .put_session(&session_ticket(7), value.clone(), MINUTE)
            .await
            .expect("put");
        store
            .put_session(&session_ticket(8), value, MINUTE * 3)
            .await
            .expect("put");
        store
            .put_login_ticket(&LoginTicket::from_random([7; 20]), MINUTE)
            .await
            .expect("put");

        tokio::time::advance(MINUTE * 2).await;

        assert_eq!(store.remove_expired().await.expect("sweep"), 2);
        assert!(store
            .get_session(&session_ticket(8))
            .await
            .expect("get")
            .is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_takes_succeed_once() {
        let store = Arc::new(MemoryTicketStore::new());
        let ticket = ServiceTicket::from_random([9; 20]);
        store
            .put_service_ticket(&ticket, grant(session_ticket(9)), MINUTE)
            .await
            .expect("put");

        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = Arc::clone(&store);
                let ticket = ticket.clone();
                tokio::spawn(async move {
                    store
                        .take_service_ticket(&ticket)
                        .await
                        .expect("take")
                        .is_some()
                })
            })
            .collect();

        let mut successes = 0;
        for task in tasks {
            successes += usize::from(task.await.expect("join"));
        }
        assert_eq!(successes, 1);
    }
}
