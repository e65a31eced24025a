//! In-memory ticket store for a single server process: shards of hash maps behind
//! mutexes, a bound on the number of stored entries, and a sweep of expired ones.
//! Expiry uses tokio's clock, so tests can pause and advance time instead of sleeping.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{
    LoginTicket, ProxyGrantingTicket, ProxyTicket, ServiceTicket, TicketGrantingTicket,
    TICKET_RANDOM_BYTES,
};
use cas_core::validation::Attributes;
use tokio::time::Instant;

use super::attempt_log::AttemptLog;
use super::{
    AttemptId, EndedSession, IndexedTicket, IssuedTicket, LiveEntries, ProxyTicketGrant,
    ProxyingGrant, ServiceGrant, SsoSession, StoreError, TicketStore,
};

/// Number of shards. A power of two well above the core count keeps lock contention low.
const SHARDS: usize = 32;

/// Length below which a session index grows by exactly one entry.
const SMALL_INDEX: usize = 8;

/// Index entries searched for a service URL to share; a few cover a session that moves
/// between a handful of services.
const RECENT_SERVICES: usize = 8;

/// Maximum number of expired sessions kept for single logout until a sweep takes them.
/// Beyond it the oldest are dropped, so a store whose sweeps never take them stays bounded.
const MAX_PENDING_ENDED_SESSIONS: usize = 100_000;

/// The random bytes of a ticket this server issued, which is all a map key needs.
type TicketId = [u8; TICKET_RANDOM_BYTES];

/// Milliseconds on the store's clock, counted from its creation.
type Millis = u64;

/// User attributes shared by a session and its service tickets; `None` when empty, so
/// that users without attributes cost no allocation.
type SharedAttributes = Option<Arc<Attributes>>;

struct StoredSession {
    user: Arc<str>,
    attributes: SharedAttributes,
    authenticated_at: Millis,
    /// When the session ends unless it is used before: the earlier of the idle deadline
    /// and `hard_expires_at`.
    expires_at: Millis,
    hard_expires_at: Millis,
    idle: Millis,
    /// Service tickets issued by the session and proxy tickets issued through it, with
    /// their services, for single logout.
    index: Vec<IndexEntry>,
    /// Proxy-granting tickets issued from the session, removed with it.
    proxy_granting: Vec<TicketId>,
}

/// One ticket in a session's index. The kind fits in the padding after the ticket id, so
/// an entry takes no more memory than an id and service pair, as a unit test checks.
struct IndexEntry {
    id: TicketId,
    kind: IndexedKind,
    service: ServiceUrl,
}

/// The map that an index entry's ticket is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexedKind {
    Service,
    Proxy,
}

struct StoredGrant {
    service: ServiceUrl,
    user: Arc<str>,
    attributes: SharedAttributes,
    session: TicketId,
    /// Milliseconds since the Unix epoch.
    authenticated_at: Millis,
    expires_at: Millis,
    from_new_login: bool,
    /// Whether the session index contains this ticket, which then counts against the bound
    /// until the session ends.
    indexed: bool,
}

struct StoredProxying {
    user: Arc<str>,
    session: TicketId,
    /// Milliseconds since the Unix epoch.
    authenticated_at: Millis,
    /// The session's expiry, which the ticket never outlives.
    expires_at: Millis,
    proxies: Vec<String>,
}

struct StoredProxyTicket {
    service: ServiceUrl,
    user: Arc<str>,
    session: TicketId,
    /// Milliseconds since the Unix epoch.
    authenticated_at: Millis,
    expires_at: Millis,
    proxies: Vec<String>,
    /// Whether the session index contains this ticket, which then counts against the bound
    /// until the session ends.
    indexed: bool,
}

struct Counter {
    attempts: AttemptLog,
    /// When the newest attempt leaves the window, so the sweep can drop the counter.
    expires_at: Millis,
}

#[derive(Default)]
struct Shard {
    login_tickets: HashMap<TicketId, Millis>,
    sessions: HashMap<TicketId, StoredSession>,
    service_tickets: HashMap<TicketId, StoredGrant>,
    proxy_granting_tickets: HashMap<TicketId, StoredProxying>,
    proxy_tickets: HashMap<TicketId, StoredProxyTicket>,
    counters: HashMap<Box<str>, Counter>,
}

/// Tickets in [`SHARDS`] shards, each a set of hash maps behind its own mutex. A lock is
/// never held across an await, and never two at once.
///
/// At most `max_entries` entries are stored: login tickets, sessions, counters, service
/// tickets, proxy-granting tickets and proxy tickets. A service or proxy ticket counts
/// from its issue until its session ends, because the session's index keeps it for
/// single logout after validation.
///
/// A live service ticket without user attributes costs 273 resident bytes when its
/// session issued 100 and 339 when it is its session's only one (`cas-bench memory`
/// with 10,000 and 1,000,000 sessions, debug build, after grants gained attributes).
/// docs/benchmarks.md records the release runs from before that change. Sessions with
/// attributes add their attribute maps, shared with their tickets.
pub struct MemoryTicketStore {
    shards: Vec<Mutex<Shard>>,
    entries: AtomicUsize,
    max_entries: usize,
    epoch: Instant,
    hasher: RandomState,
    /// Sessions removed by expiry whose single logout has not been sent yet.
    ended: Mutex<Vec<EndedSession>>,
}

impl Default for MemoryTicketStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTicketStore {
    /// Default bound on stored entries, matching the `memory_max_tickets` default.
    pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

    pub fn new() -> Self {
        Self::with_max_entries(Self::DEFAULT_MAX_ENTRIES)
    }

    /// Creates a store that rejects new entries with [`StoreError::Full`] beyond `max`.
    pub fn with_max_entries(max: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            entries: AtomicUsize::new(0),
            max_entries: max,
            epoch: Instant::now(),
            hasher: RandomState::new(),
            ended: Mutex::default(),
        }
    }

    // A panic while a lock was held cannot leave a map half-updated (every change is a
    // single insert, remove or field update), so a poisoned lock is still safe to use.
    fn shard(&self, id: &TicketId) -> MutexGuard<'_, Shard> {
        self.lock(usize::from(id[0]) % SHARDS)
    }

    fn counter_shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let hash = self.hasher.hash_one(key) as usize;
        self.lock(hash % SHARDS)
    }

    fn lock(&self, index: usize) -> MutexGuard<'_, Shard> {
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Millis {
        millis(self.epoch.elapsed())
    }

    fn expiry(&self, ttl: Duration) -> Millis {
        self.now().saturating_add(millis(ttl))
    }

    /// Counts one more entry, or fails when the bound is reached.
    fn reserve(&self) -> Result<(), StoreError> {
        let before = self.entries.fetch_add(1, Ordering::Relaxed);
        if before >= self.max_entries {
            self.entries.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::Full {
                max: self.max_entries,
            });
        }
        Ok(())
    }

    fn release(&self, count: usize) {
        self.entries.fetch_sub(count, Ordering::Relaxed);
    }

    /// Removes the service and proxy tickets of an ended session. They were counted with
    /// its index.
    fn remove_indexed(&self, index: &[IndexEntry]) {
        for entry in index {
            let mut shard = self.shard(&entry.id);
            match entry.kind {
                IndexedKind::Service => shard.service_tickets.remove(&entry.id).map(drop),
                IndexedKind::Proxy => shard.proxy_tickets.remove(&entry.id).map(drop),
            };
        }
    }

    /// Removes the proxy-granting tickets of an ended session and returns how many were
    /// still stored.
    fn remove_proxy_granting(&self, ids: &[TicketId]) -> usize {
        ids.iter()
            .filter(|id| self.shard(id).proxy_granting_tickets.remove(*id).is_some())
            .count()
    }

    /// Adds a proxy-granting ticket to its session and returns the session's expiry, or
    /// `None` when the session is gone.
    fn index_proxy_granting(&self, session: &TicketId, id: TicketId) -> Option<Millis> {
        let now = self.now();
        let mut shard = self.shard(session);
        let stored = shard
            .sessions
            .get_mut(session)
            .filter(|s| now < s.expires_at)?;

        stored.proxy_granting.push(id);
        Some(stored.expires_at)
    }

    /// Adds a ticket to its session's index and returns the session's user and attributes
    /// with the service text to store, or `None` when the session is gone. A service
    /// ticket is a use of the session and moves its idle deadline. A proxy ticket is not.
    fn index_ticket(
        &self,
        session: &TicketId,
        id: TicketId,
        kind: IndexedKind,
        service: &ServiceUrl,
    ) -> Option<(Arc<str>, SharedAttributes, ServiceUrl)> {
        let now = self.now();
        let mut shard = self.shard(session);
        let stored = shard
            .sessions
            .get_mut(session)
            .filter(|s| now < s.expires_at)?;

        if kind == IndexedKind::Service {
            let idle_deadline = now.saturating_add(stored.idle);
            stored.expires_at = stored
                .expires_at
                .max(idle_deadline.min(stored.hard_expires_at));
        }

        let service = shared_service(&stored.index, service);
        // Most sessions issue a few tickets, so a small index grows one entry at a time
        // instead of doubling. A large one doubles, which keeps pushes cheap.
        if stored.index.len() < SMALL_INDEX {
            stored.index.reserve_exact(1);
        }
        stored.index.push(IndexEntry {
            id,
            kind,
            service: service.clone(),
        });
        Some((Arc::clone(&stored.user), stored.attributes.clone(), service))
    }

    /// Keeps expired sessions for [`TicketStore::take_expired_sessions`].
    fn keep_ended(&self, sessions: Vec<(TicketId, StoredSession)>) {
        if sessions.is_empty() {
            return;
        }
        let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        ended.extend(sessions.into_iter().map(|(id, s)| ended_session(id, &s)));
        let excess = ended.len().saturating_sub(MAX_PENDING_ENDED_SESSIONS);
        if excess > 0 {
            ended.drain(..excess);
            tracing::warn!(
                dropped = excess,
                "expired sessions dropped before their single logout was sent"
            );
        }
    }

    fn sweep_shard(&self, index: usize, now: Millis) -> (usize, Vec<(TicketId, StoredSession)>) {
        let mut shard = self.lock(index);
        let mut released = 0;

        let before = shard.login_tickets.len() + shard.counters.len();
        shard
            .login_tickets
            .retain(|_, expires_at| now < *expires_at);
        shard.counters.retain(|_, c| now < c.expires_at);
        released += before - shard.login_tickets.len() - shard.counters.len();

        let before = shard.proxy_granting_tickets.len();
        shard
            .proxy_granting_tickets
            .retain(|_, t| now < t.expires_at);
        released += before - shard.proxy_granting_tickets.len();
        shard.proxy_tickets.retain(|_, t| {
            let live = now < t.expires_at;
            released += usize::from(!live && !t.indexed);
            live
        });

        shard.service_tickets.retain(|_, g| {
            let live = now < g.expires_at;
            released += usize::from(!live && !g.indexed);
            live
        });

        let expired: Vec<TicketId> = shard
            .sessions
            .iter()
            .filter(|(_, s)| now >= s.expires_at)
            .map(|(id, _)| *id)
            .collect();
        let sessions = expired
            .iter()
            .filter_map(|id| shard.sessions.remove(id).map(|s| (*id, s)))
            .collect();
        (released, sessions)
    }
}

#[async_trait]
impl TicketStore for MemoryTicketStore {
    async fn put_login_ticket(
        &self,
        ticket: &LoginTicket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), LoginTicket::PREFIX) else {
            return Ok(());
        };
        self.reserve()?;

        let expires_at = self.expiry(ttl);
        if self
            .shard(&id)
            .login_tickets
            .insert(id, expires_at)
            .is_some()
        {
            self.release(1);
        }
        Ok(())
    }

    async fn take_login_ticket(&self, ticket: &LoginTicket) -> Result<bool, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), LoginTicket::PREFIX) else {
            return Ok(false);
        };

        let removed = self.shard(&id).login_tickets.remove(&id);
        if removed.is_some() {
            self.release(1);
        }
        Ok(removed.is_some_and(|expires_at| self.now() < expires_at))
    }

    async fn put_session(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.put_session_with_idle(ticket, session, ttl, ttl).await
    }

    async fn put_session_with_idle(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
        idle: Duration,
    ) -> Result<(), StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), TicketGrantingTicket::PREFIX) else {
            return Ok(());
        };
        self.reserve()?;

        let stored = StoredSession {
            user: session.user.into(),
            attributes: shared_attributes(session.attributes),
            authenticated_at: unix_millis(session.authenticated_at),
            expires_at: self.expiry(ttl.min(idle)),
            hard_expires_at: self.expiry(ttl),
            idle: millis(idle),
            index: Vec::new(),
            proxy_granting: Vec::new(),
        };
        let replaced = self.shard(&id).sessions.insert(id, stored);
        if let Some(old) = replaced {
            self.remove_indexed(&old.index);
            let proxying = self.remove_proxy_granting(&old.proxy_granting);
            self.release(1 + old.index.len() + proxying);
        }
        Ok(())
    }

    async fn get_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), TicketGrantingTicket::PREFIX) else {
            return Ok(None);
        };

        let now = self.now();
        let shard = self.shard(&id);
        let session = shard.sessions.get(&id).filter(|s| now < s.expires_at);
        Ok(session.map(|s| SsoSession {
            user: s.user.to_string(),
            authenticated_at: from_unix_millis(s.authenticated_at),
            attributes: owned_attributes(&s.attributes),
        }))
    }

    async fn remove_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), TicketGrantingTicket::PREFIX) else {
            return Ok(None);
        };
        let Some(stored) = self.shard(&id).sessions.remove(&id) else {
            return Ok(None);
        };

        self.remove_indexed(&stored.index);
        let proxying = self.remove_proxy_granting(&stored.proxy_granting);
        self.release(1 + stored.index.len() + proxying);

        let live = self.now() < stored.expires_at;
        Ok(live.then(|| SsoSession {
            user: stored.user.to_string(),
            authenticated_at: from_unix_millis(stored.authenticated_at),
            attributes: owned_attributes(&stored.attributes),
        }))
    }

    async fn put_service_ticket(
        &self,
        ticket: &ServiceTicket,
        grant: ServiceGrant,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), ServiceTicket::PREFIX) else {
            return Ok(());
        };
        self.reserve()?;

        let session = ticket_id(grant.session.as_str(), TicketGrantingTicket::PREFIX);
        let kind = IndexedKind::Service;
        let indexed = session.and_then(|s| self.index_ticket(&s, id, kind, &grant.service));
        let is_indexed = indexed.is_some();
        let (user, attributes, service) = match indexed {
            Some(shared) => shared,
            None => (
                grant.user.into(),
                shared_attributes(grant.attributes),
                grant.service,
            ),
        };
        let stored = StoredGrant {
            service,
            indexed: is_indexed,
            user,
            attributes,
            session: session.unwrap_or_default(),
            authenticated_at: unix_millis(grant.authenticated_at),
            expires_at: self.expiry(ttl),
            from_new_login: grant.from_new_login,
        };

        let replaced = self.shard(&id).service_tickets.insert(id, stored);
        if replaced.is_some() {
            self.release(1);
        }
        Ok(())
    }

    async fn take_service_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> Result<Option<ServiceGrant>, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), ServiceTicket::PREFIX) else {
            return Ok(None);
        };
        let Some(stored) = self.shard(&id).service_tickets.remove(&id) else {
            return Ok(None);
        };

        if !stored.indexed {
            self.release(1);
        }
        if self.now() >= stored.expires_at {
            return Ok(None);
        }
        Ok(Some(grant_from(stored)))
    }

    async fn put_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
        grant: ProxyingGrant,
    ) -> Result<bool, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), ProxyGrantingTicket::PREFIX) else {
            return Ok(false);
        };
        let Some(session) = ticket_id(grant.session.as_str(), TicketGrantingTicket::PREFIX) else {
            return Ok(false);
        };
        self.reserve()?;

        let Some(expires_at) = self.index_proxy_granting(&session, id) else {
            self.release(1);
            return Ok(false);
        };
        let stored = StoredProxying {
            user: grant.user.into(),
            session,
            authenticated_at: unix_millis(grant.authenticated_at),
            expires_at,
            proxies: grant.proxies,
        };
        let replaced = self.shard(&id).proxy_granting_tickets.insert(id, stored);
        if replaced.is_some() {
            self.release(1);
        }
        Ok(true)
    }

    async fn get_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
    ) -> Result<Option<ProxyingGrant>, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), ProxyGrantingTicket::PREFIX) else {
            return Ok(None);
        };

        let now = self.now();
        let shard = self.shard(&id);
        let stored = shard
            .proxy_granting_tickets
            .get(&id)
            .filter(|t| now < t.expires_at);
        Ok(stored.map(|t| ProxyingGrant {
            user: t.user.to_string(),
            session: TicketGrantingTicket::from_random(t.session),
            authenticated_at: from_unix_millis(t.authenticated_at),
            proxies: t.proxies.clone(),
        }))
    }

    async fn put_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
        grant: ProxyTicketGrant,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), ProxyTicket::PREFIX) else {
            return Ok(());
        };
        let Some(session) = ticket_id(grant.session.as_str(), TicketGrantingTicket::PREFIX) else {
            return Ok(());
        };
        self.reserve()?;

        let indexed = self.index_ticket(&session, id, IndexedKind::Proxy, &grant.service);
        let is_indexed = indexed.is_some();
        let (user, service) = match indexed {
            Some((user, _, service)) => (user, service),
            None => (grant.user.into(), grant.service),
        };
        let stored = StoredProxyTicket {
            service,
            user,
            session,
            authenticated_at: unix_millis(grant.authenticated_at),
            expires_at: self.expiry(ttl),
            proxies: grant.proxies,
            indexed: is_indexed,
        };
        let replaced = self.shard(&id).proxy_tickets.insert(id, stored);
        if replaced.is_some() {
            self.release(1);
        }
        Ok(())
    }

    async fn take_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
    ) -> Result<Option<ProxyTicketGrant>, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), ProxyTicket::PREFIX) else {
            return Ok(None);
        };
        let Some(stored) = self.shard(&id).proxy_tickets.remove(&id) else {
            return Ok(None);
        };

        if !stored.indexed {
            self.release(1);
        }
        if self.now() >= stored.expires_at {
            return Ok(None);
        }
        Ok(Some(proxy_grant_from(stored)))
    }

    async fn session_tickets(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Vec<IssuedTicket>, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), TicketGrantingTicket::PREFIX) else {
            return Ok(Vec::new());
        };

        let now = self.now();
        let shard = self.shard(&id);
        let Some(session) = shard.sessions.get(&id).filter(|s| now < s.expires_at) else {
            return Ok(Vec::new());
        };
        Ok(session.index.iter().map(issued_ticket).collect())
    }

    async fn end_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<EndedSession>, StoreError> {
        let Some(id) = ticket_id(ticket.as_str(), TicketGrantingTicket::PREFIX) else {
            return Ok(None);
        };
        let Some(stored) = self.shard(&id).sessions.remove(&id) else {
            return Ok(None);
        };

        self.remove_indexed(&stored.index);
        let proxying = self.remove_proxy_granting(&stored.proxy_granting);
        self.release(1 + stored.index.len() + proxying);
        Ok(Some(ended_session(id, &stored)))
    }

    async fn take_expired_sessions(&self) -> Result<Vec<EndedSession>, StoreError> {
        self.remove_expired().await?;
        let mut ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(std::mem::take(&mut *ended))
    }

    async fn record_attempt(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<Option<AttemptId>, StoreError> {
        let id = AttemptId::random()?;
        let now = self.now();
        let window_millis = millis(window);
        let mut shard = self.counter_shard(key);

        let counter = match shard.counters.entry(key.into()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.reserve()?;
                entry.insert(Counter {
                    attempts: AttemptLog::default(),
                    expires_at: now,
                })
            }
        };
        if !counter.attempts.try_record(now, window_millis, limit, id) {
            return Ok(None);
        }
        counter.expires_at = now.saturating_add(window_millis);
        Ok(Some(id))
    }

    async fn forget_attempt(&self, key: &str, attempt: AttemptId) -> Result<(), StoreError> {
        if let Some(counter) = self.counter_shard(key).counters.get_mut(key) {
            counter.attempts.remove(attempt);
        }
        Ok(())
    }

    async fn recent_attempts(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let now = self.now();
        let mut shard = self.counter_shard(key);

        let Some(counter) = shard.counters.get_mut(key) else {
            return Ok(0);
        };
        counter.attempts.drop_older(now, millis(window));
        Ok(counter.attempts.count())
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        if self.counter_shard(key).counters.remove(key).is_some() {
            self.release(1);
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn remove_expired(&self) -> Result<usize, StoreError> {
        let now = self.now();
        let mut removed = 0;

        for index in 0..SHARDS {
            let (released, sessions) = self.sweep_shard(index, now);
            removed += released;
            for (_, session) in &sessions {
                self.remove_indexed(&session.index);
                removed += 1 + session.index.len();
                removed += self.remove_proxy_granting(&session.proxy_granting);
            }
            self.keep_ended(sessions);
        }
        self.release(removed);
        Ok(removed)
    }

    fn live_entries(&self) -> Option<LiveEntries> {
        let mut live = LiveEntries::default();
        for index in 0..SHARDS {
            let shard = self.lock(index);
            live.login_tickets += shard.login_tickets.len();
            live.sessions += shard.sessions.len();
            live.service_tickets += shard.service_tickets.len();
            live.proxy_granting_tickets += shard.proxy_granting_tickets.len();
            live.proxy_tickets += shard.proxy_tickets.len();
            live.counters += shard.counters.len();
        }
        Some(live)
    }
}

/// Returns the service of a recent index entry when it is the same URL, so that a
/// session visiting one service many times stores its text once.
fn shared_service(index: &[IndexEntry], service: &ServiceUrl) -> ServiceUrl {
    let recent = index.iter().rev().take(RECENT_SERVICES);
    let found = recent
        .map(|entry| &entry.service)
        .find(|s| s.as_str() == service.as_str());
    found.unwrap_or(service).clone()
}

/// Decodes the random part of a ticket this server issued: the prefix followed by the
/// lowercase hex of [`TICKET_RANDOM_BYTES`] bytes. Any other text cannot be stored here.
fn ticket_id(text: &str, prefix: &str) -> Option<TicketId> {
    let hex_part = text.strip_prefix(prefix)?;
    if hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut id = TicketId::default();
    hex::decode_to_slice(hex_part, &mut id).ok()?;
    Some(id)
}

fn grant_from(stored: StoredGrant) -> ServiceGrant {
    ServiceGrant {
        service: stored.service,
        user: stored.user.to_string(),
        session: TicketGrantingTicket::from_random(stored.session),
        authenticated_at: from_unix_millis(stored.authenticated_at),
        from_new_login: stored.from_new_login,
        attributes: owned_attributes(&stored.attributes),
    }
}

fn proxy_grant_from(stored: StoredProxyTicket) -> ProxyTicketGrant {
    ProxyTicketGrant {
        service: stored.service,
        user: stored.user.to_string(),
        session: TicketGrantingTicket::from_random(stored.session),
        authenticated_at: from_unix_millis(stored.authenticated_at),
        proxies: stored.proxies,
    }
}

fn ended_session(id: TicketId, stored: &StoredSession) -> EndedSession {
    EndedSession {
        ticket: TicketGrantingTicket::from_random(id),
        user: stored.user.to_string(),
        tickets: stored.index.iter().map(issued_ticket).collect(),
    }
}

fn shared_attributes(attributes: Attributes) -> SharedAttributes {
    (!attributes.is_empty()).then(|| Arc::new(attributes))
}

fn owned_attributes(shared: &SharedAttributes) -> Attributes {
    shared.as_deref().cloned().unwrap_or_default()
}

fn issued_ticket(entry: &IndexEntry) -> IssuedTicket {
    let ticket = match entry.kind {
        IndexedKind::Service => IndexedTicket::Service(ServiceTicket::from_random(entry.id)),
        IndexedKind::Proxy => IndexedTicket::Proxy(ProxyTicket::from_random(entry.id)),
    };
    IssuedTicket {
        ticket,
        service: entry.service.clone(),
    }
}

fn millis(duration: Duration) -> Millis {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn unix_millis(time: SystemTime) -> Millis {
    millis(time.duration_since(UNIX_EPOCH).unwrap_or_default())
}

fn from_unix_millis(value: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn session_ticket(seed: u8) -> TicketGrantingTicket {
        TicketGrantingTicket::from_random([seed; 20])
    }

    fn session_value() -> SsoSession {
        SsoSession {
            user: "alice".into(),
            authenticated_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            attributes: Attributes::new(),
        }
    }

    fn grant(session: TicketGrantingTicket) -> ServiceGrant {
        ServiceGrant {
            service: ServiceUrl::parse("https://app.example/").expect("valid"),
            user: "alice".into(),
            session,
            authenticated_at: UNIX_EPOCH,
            from_new_login: true,
            attributes: Attributes::new(),
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

        let taken = store.take_service_ticket(&ticket).await.expect("take");
        let again = store.take_service_ticket(&ticket).await.expect("take");

        assert_eq!(taken, Some(grant(session_ticket(1))));
        assert!(again.is_none());
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
        store
            .put_session(&session, session_value(), MINUTE)
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
            Some(session_value())
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

    fn proxying(session: TicketGrantingTicket) -> ProxyingGrant {
        ProxyingGrant {
            user: "alice".into(),
            session,
            authenticated_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            proxies: vec!["https://b.example/cb".into(), "https://a.example/cb".into()],
        }
    }

    fn proxy_grant(session: TicketGrantingTicket) -> ProxyTicketGrant {
        ProxyTicketGrant {
            service: ServiceUrl::parse("https://backend.example/").expect("valid"),
            user: "alice".into(),
            session,
            authenticated_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            proxies: vec!["https://a.example/cb".into()],
        }
    }

    #[tokio::test(start_paused = true)]
    async fn proxy_granting_ticket_has_many_uses_until_logout() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(20);
        let ticket = ProxyGrantingTicket::from_random([20; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");

        let stored = store
            .put_proxy_granting_ticket(&ticket, proxying(session.clone()))
            .await
            .expect("put");
        let first = store.get_proxy_granting_ticket(&ticket).await.expect("get");
        let second = store.get_proxy_granting_ticket(&ticket).await.expect("get");
        store.remove_session(&session).await.expect("remove");
        let after_logout = store.get_proxy_granting_ticket(&ticket).await.expect("get");

        assert!(stored);
        assert_eq!(first, Some(proxying(session.clone())));
        assert_eq!(second, Some(proxying(session)));
        assert_eq!(after_logout, None);
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn proxy_granting_ticket_needs_a_live_session() {
        let store = MemoryTicketStore::new();
        let ticket = ProxyGrantingTicket::from_random([21; 20]);

        let stored = store
            .put_proxy_granting_ticket(&ticket, proxying(session_ticket(21)))
            .await
            .expect("put");

        assert!(!stored);
        assert!(store
            .get_proxy_granting_ticket(&ticket)
            .await
            .expect("get")
            .is_none());
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn proxy_granting_ticket_expires_with_its_session() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(22);
        let ticket = ProxyGrantingTicket::from_random([22; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_proxy_granting_ticket(&ticket, proxying(session))
            .await
            .expect("put");

        tokio::time::advance(MINUTE).await;

        assert!(store
            .get_proxy_granting_ticket(&ticket)
            .await
            .expect("get")
            .is_none());
        assert_eq!(store.remove_expired().await.expect("sweep"), 2);
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn proxy_ticket_is_taken_once_and_expires() {
        let store = MemoryTicketStore::new();
        let used = ProxyTicket::from_random([23; 20]);
        let late = ProxyTicket::from_random([24; 20]);
        store
            .put_proxy_ticket(&used, proxy_grant(session_ticket(23)), MINUTE)
            .await
            .expect("put");
        store
            .put_proxy_ticket(&late, proxy_grant(session_ticket(23)), MINUTE)
            .await
            .expect("put");

        let taken = store.take_proxy_ticket(&used).await.expect("take");
        let again = store.take_proxy_ticket(&used).await.expect("take");
        tokio::time::advance(MINUTE).await;
        let expired = store.take_proxy_ticket(&late).await.expect("take");

        assert_eq!(taken, Some(proxy_grant(session_ticket(23))));
        assert_eq!(again, None);
        assert_eq!(expired, None);
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn proxy_tickets_join_session_index() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(25);
        let service_ticket = ServiceTicket::from_random([25; 20]);
        let validated = ProxyTicket::from_random([26; 20]);
        let unused = ProxyTicket::from_random([27; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&service_ticket, grant(session.clone()), MINUTE)
            .await
            .expect("put");
        for ticket in [&validated, &unused] {
            store
                .put_proxy_ticket(ticket, proxy_grant(session.clone()), MINUTE)
                .await
                .expect("put");
        }
        store.take_proxy_ticket(&validated).await.expect("take");

        let index = store.session_tickets(&session).await.expect("index");
        let ended = store.end_session(&session).await.expect("end");
        let left = store.take_proxy_ticket(&unused).await.expect("take");

        let backend = "https://backend.example/";
        assert_eq!(index.len(), 3);
        assert_eq!(index[1].ticket, IndexedTicket::Proxy(validated.clone()));
        assert_eq!(index[1].service.as_str(), backend);
        assert_eq!(index[2].ticket, IndexedTicket::Proxy(unused));
        let ended = ended.expect("session existed");
        assert_eq!(ended.tickets, index);
        assert_eq!(left, None, "proxy ticket outlived its session");
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn proxy_ticket_is_no_use_of_session() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(28);
        let ticket = ProxyTicket::from_random([28; 20]);
        store
            .put_session_with_idle(&session, session_value(), MINUTE * 10, MINUTE)
            .await
            .expect("put");

        tokio::time::advance(Duration::from_secs(50)).await;
        store
            .put_proxy_ticket(&ticket, proxy_grant(session.clone()), MINUTE)
            .await
            .expect("put");
        tokio::time::advance(Duration::from_secs(11)).await;

        assert!(store.get_session(&session).await.expect("get").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_session_reports_proxy_tickets() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(29);
        let ticket = ProxyTicket::from_random([29; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_proxy_ticket(&ticket, proxy_grant(session.clone()), MINUTE * 5)
            .await
            .expect("put");

        tokio::time::advance(MINUTE * 2).await;
        let ended = store.take_expired_sessions().await.expect("take");
        let left = store.take_proxy_ticket(&ticket).await.expect("take");

        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].tickets.len(), 1);
        assert_eq!(ended[0].tickets[0].ticket, IndexedTicket::Proxy(ticket));
        assert_eq!(left, None, "proxy ticket outlived its session");
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn index_entry_fits_id_and_service() {
        let pair = std::mem::size_of::<(TicketId, ServiceUrl)>();

        assert_eq!(std::mem::size_of::<IndexEntry>(), pair);
    }

    #[tokio::test(start_paused = true)]
    async fn attributes_round_trip() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(11);
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into(), "组".into()]);
        let mut value = session_value();
        value.attributes = attributes.clone();
        store
            .put_session(&session, value, MINUTE)
            .await
            .expect("put");
        let indexed = ServiceTicket::from_random([11; 20]);
        let loose = ServiceTicket::from_random([12; 20]);
        let mut loose_grant = grant(session_ticket(99));
        loose_grant.attributes = attributes.clone();
        store
            .put_service_ticket(&indexed, grant(session.clone()), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&loose, loose_grant, MINUTE)
            .await
            .expect("put");

        let stored = store.get_session(&session).await.expect("get");
        let from_session = store.take_service_ticket(&indexed).await.expect("take");
        let own = store.take_service_ticket(&loose).await.expect("take");

        assert_eq!(stored.map(|s| s.attributes), Some(attributes.clone()));
        assert_eq!(from_session.map(|g| g.attributes), Some(attributes.clone()));
        assert_eq!(own.map(|g| g.attributes), Some(attributes));
    }

    #[tokio::test(start_paused = true)]
    async fn session_index_outlives_validation() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(10);
        let ticket = ServiceTicket::from_random([10; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&ticket, grant(session.clone()), MINUTE)
            .await
            .expect("put");

        store.take_service_ticket(&ticket).await.expect("take");
        let index = store.session_tickets(&session).await.expect("index");

        assert_eq!(index.len(), 1);
        assert_eq!(index[0].ticket, IndexedTicket::Service(ticket));
        assert_eq!(index[0].service.as_str(), "https://app.example/");
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_drops_only_expired() {
        let store = MemoryTicketStore::new();
        store
            .put_session(&session_ticket(7), session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_session(&session_ticket(8), session_value(), MINUTE * 3)
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
        assert_eq!(store.entries.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_of_session_drops_its_tickets() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(11);
        let ticket = ServiceTicket::from_random([11; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&ticket, grant(session), MINUTE * 5)
            .await
            .expect("put");

        tokio::time::advance(MINUTE * 2).await;

        assert_eq!(store.remove_expired().await.expect("sweep"), 2);
        assert!(store
            .take_service_ticket(&ticket)
            .await
            .expect("take")
            .is_none());
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_session_ends_early() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(12);
        store
            .put_session_with_idle(&session, session_value(), MINUTE * 10, MINUTE)
            .await
            .expect("put");

        tokio::time::advance(MINUTE - Duration::from_secs(1)).await;
        assert!(store.get_session(&session).await.expect("get").is_some());

        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(store.get_session(&session).await.expect("get").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn use_extends_session_until_hard_limit() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(13);
        store
            .put_session_with_idle(&session, session_value(), MINUTE * 3, MINUTE)
            .await
            .expect("put");

        for seed in 0..3u8 {
            tokio::time::advance(Duration::from_secs(45)).await;
            let ticket = ServiceTicket::from_random([100 + seed; 20]);
            store
                .put_service_ticket(&ticket, grant(session.clone()), MINUTE)
                .await
                .expect("put");
            assert!(
                store.get_session(&session).await.expect("get").is_some(),
                "alive after use {seed}"
            );
        }

        // The last use came 135 s after the login. Its idle deadline (195 s) lies past
        // the hard limit (180 s), so the hard limit ends the session.
        tokio::time::advance(Duration::from_secs(44)).await;
        assert!(store.get_session(&session).await.expect("get").is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(store.get_session(&session).await.expect("get").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn end_session_returns_user_and_index() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(14);
        let ticket = ServiceTicket::from_random([14; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&ticket, grant(session.clone()), MINUTE)
            .await
            .expect("put");

        let ended = store.end_session(&session).await.expect("end");
        let again = store.end_session(&session).await.expect("end");

        let ended = ended.expect("session existed");
        assert_eq!(ended.user, "alice");
        assert_eq!(ended.tickets.len(), 1);
        assert_eq!(
            ended.tickets[0].ticket,
            IndexedTicket::Service(ticket.clone())
        );
        assert!(again.is_none());
        assert!(store
            .take_service_ticket(&ticket)
            .await
            .expect("take")
            .is_none());
        assert_eq!(store.entries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn expired_sessions_are_taken_once() {
        let store = MemoryTicketStore::new();
        let session = session_ticket(15);
        let ticket = ServiceTicket::from_random([15; 20]);
        store
            .put_session(&session, session_value(), MINUTE)
            .await
            .expect("put");
        store
            .put_service_ticket(&ticket, grant(session.clone()), MINUTE)
            .await
            .expect("put");
        store
            .put_session(&session_ticket(16), session_value(), MINUTE * 5)
            .await
            .expect("put");

        tokio::time::advance(MINUTE * 2).await;
        let first = store.take_expired_sessions().await.expect("take");
        let second = store.take_expired_sessions().await.expect("take");

        assert_eq!(first.len(), 1);
        assert_eq!(first[0].ticket, session);
        assert_eq!(first[0].tickets[0].ticket, IndexedTicket::Service(ticket));
        assert!(second.is_empty());
        assert_eq!(store.entries.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn sweep_keeps_expired_sessions_for_logout() {
        let store = MemoryTicketStore::new();
        store
            .put_session(&session_ticket(17), session_value(), MINUTE)
            .await
            .expect("put");

        tokio::time::advance(MINUTE * 2).await;
        assert_eq!(store.remove_expired().await.expect("sweep"), 1);
        let taken = store.take_expired_sessions().await.expect("take");

        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].ticket, session_ticket(17));
    }

    #[tokio::test(start_paused = true)]
    async fn full_store_rejects_new_entries() {
        let store = MemoryTicketStore::with_max_entries(2);
        store
            .put_login_ticket(&LoginTicket::from_random([1; 20]), MINUTE)
            .await
            .expect("put");
        store
            .put_login_ticket(&LoginTicket::from_random([2; 20]), MINUTE)
            .await
            .expect("put");

        let third = store
            .put_login_ticket(&LoginTicket::from_random([3; 20]), MINUTE)
            .await;
        let counter = store.record_attempt("k", 5, MINUTE).await;

        assert!(
            matches!(third, Err(StoreError::Full { max: 2 })),
            "{third:?}"
        );
        assert!(matches!(counter, Err(StoreError::Full { max: 2 })));

        assert!(store
            .take_login_ticket(&LoginTicket::from_random([1; 20]))
            .await
            .expect("take"));
        store
            .put_login_ticket(&LoginTicket::from_random([3; 20]), MINUTE)
            .await
            .expect("room again after a take");
    }

    async fn record(store: &MemoryTicketStore, key: &str, limit: u64) -> bool {
        let recorded = store.record_attempt(key, limit, MINUTE).await;
        recorded.expect("record").is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_slide_out_of_window() {
        let store = MemoryTicketStore::new();
        assert!(record(&store, "login:alice", 2).await);
        tokio::time::advance(MINUTE - Duration::from_secs(1)).await;
        assert!(record(&store, "login:alice", 2).await);
        assert!(record(&store, "login:bob", 2).await);

        assert!(!record(&store, "login:alice", 2).await, "limit reached");
        tokio::time::advance(Duration::from_secs(2)).await;

        let after_edge = store.recent_attempts("login:alice", MINUTE).await;
        assert_eq!(after_edge.expect("count"), 1, "only the first attempt left");
        assert!(record(&store, "login:alice", 2).await);
        assert!(!record(&store, "login:alice", 2).await);
    }

    #[tokio::test(start_paused = true)]
    async fn forgotten_and_reset_attempts_free_places() {
        let store = MemoryTicketStore::new();
        let first = store.record_attempt("login:alice", 2, MINUTE).await;
        assert!(record(&store, "login:alice", 2).await);

        let id = first.expect("record").expect("recorded");
        store
            .forget_attempt("login:alice", id)
            .await
            .expect("forget");
        assert!(record(&store, "login:alice", 2).await);

        store.reset_counter("login:alice").await.expect("reset");
        let count = store.recent_attempts("login:alice", MINUTE).await;
        assert_eq!(count.expect("count"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn swept_counter_frees_its_entry() {
        let store = MemoryTicketStore::with_max_entries(1);
        assert!(record(&store, "a", 1).await);

        tokio::time::advance(MINUTE).await;
        assert_eq!(store.remove_expired().await.expect("sweep"), 1);

        assert!(record(&store, "b", 1).await, "room again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_attempts_stop_at_limit() {
        let store = Arc::new(MemoryTicketStore::new());

        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { record(&store, "login:alice", 20).await })
            })
            .collect();

        let mut recorded = 0;
        for task in tasks {
            recorded += usize::from(task.await.expect("join"));
        }
        assert_eq!(recorded, 20);
        let count = store.recent_attempts("login:alice", MINUTE).await;
        assert_eq!(count.expect("count"), 20);
    }

    #[test]
    fn recent_service_text_is_shared() {
        let url = |text| ServiceUrl::parse(text).expect("valid");
        let first = url("https://a.example/");
        let entry = |seed: u8, service: ServiceUrl| IndexEntry {
            id: [seed; 20],
            kind: IndexedKind::Service,
            service,
        };
        let index = vec![entry(1, first.clone()), entry(2, url("https://b.example/"))];

        let same = shared_service(&index, &url("https://a.example/"));
        let other = shared_service(&index, &url("https://c.example/"));

        assert!(std::ptr::eq(same.as_str(), first.as_str()));
        assert_eq!(other.as_str(), "https://c.example/");
    }

    #[test]
    fn ticket_id_accepts_only_issued_form() {
        let ticket = ServiceTicket::from_random([0xab; 20]);

        assert_eq!(ticket_id(ticket.as_str(), "ST-"), Some([0xab; 20]));
        assert_eq!(ticket_id(&format!("ST-{}", "AB".repeat(20)), "ST-"), None);
        assert_eq!(ticket_id("ST-abcdef", "ST-"), None);
        assert_eq!(ticket_id(ticket.as_str(), "TGT-"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_takes_succeed_once() {
        let store = Arc::new(MemoryTicketStore::new());
        let ticket = ServiceTicket::from_random([9; 20]);
        store
            .put_service_ticket(&ticket, grant(session_ticket(9)), MINUTE)
            .await
            .expect("put");

        let tasks: Vec<_> = (0..100)
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
