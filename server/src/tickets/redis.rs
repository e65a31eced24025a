//! Redis ticket store, shared by every server node. Each key has a TTL, service and
//! login tickets are taken with GETDEL (one atomic round trip, so a ticket validates
//! once across nodes), and no command touches keys in two cluster slots.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{LoginTicket, ServiceTicket, TicketGrantingTicket};
use cas_core::validation::Attributes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, Script};
use serde::{Deserialize, Serialize};

use super::redis_keys::RedisKeys;
use super::{IssuedTicket, ServiceGrant, SsoSession, StoreError, TicketStore};

/// Time a command gets before it fails, so a hung Redis turns into a 503 quickly.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Time a connection attempt gets.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Adds a service ticket to its session's index only while the session lives, and gives
/// the index the session's remaining lifetime. Both keys share the session's hash tag.
const INDEX_SCRIPT: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
";

/// A session as stored in Redis. Short field names keep every session small.
#[derive(Serialize, Deserialize)]
struct SessionRecord {
    #[serde(rename = "u")]
    user: String,
    /// Authentication time in milliseconds since the Unix epoch.
    #[serde(rename = "a")]
    authenticated_at: u64,
    /// User attributes. The field is absent when empty and in records written by servers
    /// without attributes.
    #[serde(rename = "x", default, skip_serializing_if = "Attributes::is_empty")]
    attributes: Attributes,
}

/// A service ticket's grant as stored in Redis.
#[derive(Serialize, Deserialize)]
struct GrantRecord {
    #[serde(rename = "s")]
    service: String,
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "t")]
    session: String,
    #[serde(rename = "a")]
    authenticated_at: u64,
    #[serde(rename = "n")]
    from_new_login: bool,
    #[serde(rename = "x", default, skip_serializing_if = "Attributes::is_empty")]
    attributes: Attributes,
}

/// Tickets in Redis, reached through a few multiplexed connections that reconnect on
/// their own after Redis comes back.
pub struct RedisTicketStore {
    connections: Vec<ConnectionManager>,
    next: AtomicUsize,
    keys: RedisKeys,
    index_script: Script,
}

impl RedisTicketStore {
    /// Opens `pool_size` connections to `url` (`redis://` or `rediss://`, with an
    /// optional password). The connections are made on first use, so the server starts
    /// while Redis is down and reports itself not ready until Redis answers.
    ///
    /// NOTE: `rediss://` checks the Redis certificate against the system's trusted roots
    /// only. No setting names a private CA yet.
    pub fn open(url: &str, prefix: &str, pool_size: usize) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(1);

        let connections = (0..pool_size.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        Ok(Self {
            connections,
            next: AtomicUsize::new(0),
            keys: RedisKeys::new(prefix),
            index_script: Script::new(INDEX_SCRIPT),
        })
    }

    /// Returns the key layout, for tests that inspect keys.
    pub fn keys(&self) -> &RedisKeys {
        &self.keys
    }

    fn connection(&self) -> ConnectionManager {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        self.connections[index].clone()
    }

    async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection();
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, command.query_async(&mut connection));
        reply.await.map_err(|_| timed_out())?.map_err(unavailable)
    }

    async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection();
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, pipeline.query_async(&mut connection));
        reply.await.map_err(|_| timed_out())?.map_err(unavailable)
    }

    async fn index_ticket(
        &self,
        session: &TicketGrantingTicket,
        ticket: &ServiceTicket,
        service: &str,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection();
        let mut invocation = self.index_script.prepare_invoke();
        invocation
            .key(self.keys.session(session))
            .key(self.keys.session_index(session))
            .arg(ticket.as_str())
            .arg(service);

        let reply = tokio::time::timeout(
            COMMAND_TIMEOUT,
            invocation.invoke_async::<i64>(&mut connection),
        );
        let added = reply.await.map_err(|_| timed_out())?.map_err(unavailable)?;
        Ok(added == 1)
    }

    /// Deletes the keys of a session's service tickets, one DEL each because they live
    /// in different cluster slots.
    async fn delete_tickets(&self, tickets: &[String]) -> Result<(), StoreError> {
        if tickets.is_empty() {
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        for ticket in tickets {
            pipeline.del(self.keys.service_ticket_text(ticket)).ignore();
        }
        self.query_pipeline::<()>(&pipeline).await
    }
}

#[async_trait]
impl TicketStore for RedisTicketStore {
    async fn put_login_ticket(
        &self,
        ticket: &LoginTicket,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.keys.login_ticket(ticket);
        self.query(&set_with_ttl(&key, "1", ttl)).await
    }

    async fn take_login_ticket(&self, ticket: &LoginTicket) -> Result<bool, StoreError> {
        let key = self.keys.login_ticket(ticket);
        let value: Option<String> = self.query(&redis::cmd("GETDEL").arg(key).clone()).await?;
        Ok(value.is_some())
    }

    async fn put_session(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let record = SessionRecord {
            user: session.user,
            authenticated_at: unix_millis(session.authenticated_at),
            attributes: session.attributes,
        };
        let value = encode(&record)?;
        self.query(&set_with_ttl(&self.keys.session(ticket), &value, ttl))
            .await
    }

    async fn get_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        let value: Option<String> = self
            .query(&redis::cmd("GET").arg(self.keys.session(ticket)).clone())
            .await?;
        value.map(|text| decode_session(&text)).transpose()
    }

    async fn remove_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<SsoSession>, StoreError> {
        // The session and its index share a slot, so MULTI can read and delete both.
        let session_key = self.keys.session(ticket);
        let index_key = self.keys.session_index(ticket);
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("GETDEL")
            .arg(&session_key)
            .cmd("HKEYS")
            .arg(&index_key)
            .del(&index_key)
            .ignore();
        let (value, tickets): (Option<String>, Vec<String>) =
            self.query_pipeline(&pipeline).await?;

        self.delete_tickets(&tickets).await?;
        value.map(|text| decode_session(&text)).transpose()
    }

    async fn put_service_ticket(
        &self,
        ticket: &ServiceTicket,
        grant: ServiceGrant,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let record = GrantRecord {
            service: grant.service.as_str().to_owned(),
            user: grant.user,
            session: grant.session.as_str().to_owned(),
            authenticated_at: unix_millis(grant.authenticated_at),
            from_new_login: grant.from_new_login,
            attributes: grant.attributes,
        };
        let value = encode(&record)?;
        let key = self.keys.service_ticket(ticket);

        // Two slots, so two commands. Both go out at once on the multiplexed connections.
        let command = set_with_ttl(&key, &value, ttl);
        let stored = self.query::<()>(&command);
        let indexed = self.index_ticket(&grant.session, ticket, grant.service.as_str());
        let (stored, indexed) = tokio::join!(stored, indexed);
        stored?;
        indexed?;
        Ok(())
    }

    async fn take_service_ticket(
        &self,
        ticket: &ServiceTicket,
    ) -> Result<Option<ServiceGrant>, StoreError> {
        let key = self.keys.service_ticket(ticket);
        let value: Option<String> = self.query(&redis::cmd("GETDEL").arg(key).clone()).await?;
        value.map(|text| decode_grant(&text)).transpose()
    }

    async fn session_tickets(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Vec<IssuedTicket>, StoreError> {
        let index_key = self.keys.session_index(ticket);
        let entries: Vec<(String, String)> = self
            .query(&redis::cmd("HGETALL").arg(index_key).clone())
            .await?;
        Ok(entries
            .iter()
            .filter_map(|(ticket, service)| issued_ticket(ticket, service))
            .collect())
    }

    async fn incr_counter(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        // SET NX starts the window with its TTL only when the counter is new, and INCR
        // keeps that TTL, so the window is fixed from the first increment.
        let key = self.keys.counter(key);
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(0)
            .arg("PX")
            .arg(ttl_millis(window))
            .arg("NX")
            .ignore()
            .cmd("INCR")
            .arg(&key);
        let (count,): (u64,) = self.query_pipeline(&pipeline).await?;
        Ok(count)
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.query(&redis::cmd("DEL").arg(self.keys.counter(key)).clone())
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let reply: String = self.query(&redis::cmd("PING")).await?;
        if reply != "PONG" {
            return Err(StoreError::Unavailable(format!(
                "unexpected PING reply {reply:?}"
            )));
        }
        Ok(())
    }

    async fn remove_expired(&self) -> Result<usize, StoreError> {
        // Every key carries a TTL, so Redis removes expired entries itself.
        Ok(0)
    }
}

fn set_with_ttl(key: &str, value: &str, ttl: Duration) -> Cmd {
    redis::cmd("SET")
        .arg(key)
        .arg(value)
        .arg("PX")
        .arg(ttl_millis(ttl))
        .clone()
}

/// Returns the TTL in milliseconds, at least 1 because Redis rejects a zero expiry.
fn ttl_millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn unix_millis(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn from_unix_millis(value: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(value)
}

fn encode<T: Serialize>(record: &T) -> Result<String, StoreError> {
    serde_json::to_string(record)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode a record: {e}")))
}

fn decode_session(text: &str) -> Result<SsoSession, StoreError> {
    let record: SessionRecord = serde_json::from_str(text).map_err(corrupt)?;
    Ok(SsoSession {
        user: record.user,
        authenticated_at: from_unix_millis(record.authenticated_at),
        attributes: record.attributes,
    })
}

fn decode_grant(text: &str) -> Result<ServiceGrant, StoreError> {
    let record: GrantRecord = serde_json::from_str(text).map_err(corrupt)?;
    Ok(ServiceGrant {
        service: ServiceUrl::parse(&record.service).map_err(corrupt)?,
        user: record.user,
        session: TicketGrantingTicket::parse(&record.session).map_err(corrupt)?,
        authenticated_at: from_unix_millis(record.authenticated_at),
        from_new_login: record.from_new_login,
        attributes: record.attributes,
    })
}

fn issued_ticket(ticket: &str, service: &str) -> Option<IssuedTicket> {
    Some(IssuedTicket {
        ticket: ServiceTicket::parse(ticket).ok()?,
        service: ServiceUrl::parse(service).ok()?,
    })
}

fn corrupt(error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("unreadable record in Redis: {error}"))
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

fn timed_out() -> StoreError {
    StoreError::Unavailable(format!("no reply from Redis within {COMMAND_TIMEOUT:?}"))
}
