//! Redis ticket store, shared by every server node. Each key has a TTL, service, proxy
//! and login tickets are taken with GETDEL (one atomic round trip, so a ticket validates
//! once across nodes), and no command touches keys in two cluster slots.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{
    LoginTicket, ProxyGrantingTicket, ProxyTicket, ServiceTicket, TicketGrantingTicket,
};
use cas_core::validation::Attributes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, Script, ScriptInvocation, ServerErrorKind};
use serde::{Deserialize, Serialize};

use super::redis_keys::RedisKeys;
use super::{
    AttemptId, EndedSession, IndexedTicket, IssuedTicket, ProxyTicketGrant, ProxyingGrant,
    ServiceGrant, SsoSession, StoreError, TicketStore,
};

/// Time a command gets before it fails, so a hung Redis turns into a 503 quickly.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Time a connection attempt gets.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Adds a service ticket to its session's index only while the session lives. The use
/// moves the session's end to now (ARGV[3], Unix milliseconds) plus its idle timeout,
/// never past its hard deadline and never earlier than before. The index keeps the
/// session's user under [`INDEX_USER_FIELD`] and lives [`INDEX_GRACE`] (ARGV[5]) past
/// the session, so that a sweep can still read it. Returns the session's remaining
/// lifetime in milliseconds, or 0 when the session is gone. Both keys share the
/// session's hash tag.
const INDEX_SCRIPT: &str = r"
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
local record = cjson.decode(value)
if record.i and record.h then
  local extended = math.floor(math.min(record.i, record.h - tonumber(ARGV[3])))
  if extended > ttl then
    ttl = extended
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2], '@user', ARGV[4])
redis.call('PEXPIRE', KEYS[2], ttl + tonumber(ARGV[5]))
return ttl
";

/// Adds a proxy ticket (ARGV[1]) with its service (ARGV[2]) to its session's index only
/// while the session lives, for single logout. Unlike [`INDEX_SCRIPT`] it leaves the
/// session's deadline alone, because a proxy ticket is no use of the session. The index
/// keeps the user (ARGV[3]) and lives [`INDEX_GRACE`] (ARGV[4]) past the session, as
/// there. Returns the session's remaining lifetime in milliseconds, or 0 when the
/// session is gone. Both keys share the session's hash tag.
const PROXY_TICKET_INDEX_SCRIPT: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2], '@user', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ttl + tonumber(ARGV[4]))
return ttl
";

/// Adds a proxy-granting ticket to its session's set only while the session lives, gives
/// the set the session's remaining lifetime and returns that lifetime in milliseconds,
/// or 0 when the session is gone. Both keys share the session's hash tag.
const PROXY_GRANTING_INDEX_SCRIPT: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl)
return ttl
";

/// Reads and deletes the index of a session that has ended. When the session still
/// lives (a use moved its deadline), returns its remaining lifetime and an empty list
/// instead, so that the sweep puts it back with its new deadline.
const EXPIRED_SCRIPT: &str = r"
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then return {ttl, {}} end
local entries = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return {0, entries}
";

/// Records an attempt in the sliding-window log KEYS[1], a sorted set of attempt ids
/// (ARGV[3]) scored by the Redis server's time in milliseconds, unless ARGV[1] attempts
/// are already recorded within the last ARGV[2] milliseconds. Attempts that left the
/// window are removed first, and the set lives as long as its newest attempt counts.
/// The server's clock is used so that nodes with skewed clocks agree. Returns 1 when the
/// attempt was recorded, 0 when the limit is reached.
const RECORD_ATTEMPT_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
";

/// Returns the number of attempts in the log KEYS[1] made within the last ARGV[1]
/// milliseconds of the Redis server's time.
const RECENT_ATTEMPTS_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
";

/// Index field that contains the session's user, for a logout request sent after the
/// session's own key has expired. No service ticket has this name.
const INDEX_USER_FIELD: &str = "@user";

/// Time a session's index outlives the session, for sweeps to read it. It exceeds the
/// longest accepted sweep interval (setting `session_sweep_interval_seconds`, at most
/// 300 s) with room for a slow sweep.
const INDEX_GRACE: Duration = Duration::from_secs(15 * 60);

/// Most expired sessions one sweep takes; the rest wait for the next sweep.
const SWEEP_BATCH: usize = 1000;

/// A session as stored in Redis. Short field names keep every session small.
#[derive(Serialize, Deserialize)]
struct SessionRecord {
    #[serde(rename = "u")]
    user: String,
    /// Authentication time in milliseconds since the Unix epoch.
    #[serde(rename = "a")]
    authenticated_at: u64,
    /// Hard deadline in milliseconds since the Unix epoch; read by [`INDEX_SCRIPT`].
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    hard_deadline: Option<u64>,
    /// Idle timeout in milliseconds; read by [`INDEX_SCRIPT`].
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    idle: Option<u64>,
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

/// A proxy-granting ticket's grant as stored in Redis.
#[derive(Serialize, Deserialize)]
struct ProxyingRecord {
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "t")]
    session: String,
    #[serde(rename = "a")]
    authenticated_at: u64,
    #[serde(rename = "p")]
    proxies: Vec<String>,
}

/// A proxy ticket's grant as stored in Redis.
#[derive(Serialize, Deserialize)]
struct ProxyTicketRecord {
    #[serde(rename = "s")]
    service: String,
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "t")]
    session: String,
    #[serde(rename = "a")]
    authenticated_at: u64,
    #[serde(rename = "p")]
    proxies: Vec<String>,
}

/// Tickets in Redis, reached through a few multiplexed connections that reconnect on
/// their own after Redis comes back.
pub struct RedisTicketStore {
    connections: Vec<ConnectionManager>,
    next: AtomicUsize,
    keys: RedisKeys,
    index_script: Script,
    proxy_ticket_index_script: Script,
    proxy_granting_index_script: Script,
    expired_script: Script,
    record_attempt_script: Script,
    recent_attempts_script: Script,
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
            proxy_ticket_index_script: Script::new(PROXY_TICKET_INDEX_SCRIPT),
            proxy_granting_index_script: Script::new(PROXY_GRANTING_INDEX_SCRIPT),
            expired_script: Script::new(EXPIRED_SCRIPT),
            record_attempt_script: Script::new(RECORD_ATTEMPT_SCRIPT),
            recent_attempts_script: Script::new(RECENT_ATTEMPTS_SCRIPT),
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

    async fn run_script<T: FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection();
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, invocation.invoke_async(&mut connection));
        reply.await.map_err(|_| timed_out())?.map_err(unavailable)
    }

    /// Runs `pipeline`, which calls `script` with EVALSHA. When Redis has not cached the
    /// script (after a restart or SCRIPT FLUSH), loads it and runs the whole pipeline
    /// once more, so every command in the pipeline must be safe to repeat.
    async fn query_pipeline_with_script<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
        script: &Script,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection();
        let attempts = async {
            match pipeline.query_async(&mut connection).await {
                Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.load_async(&mut connection).await?;
                    pipeline.query_async(&mut connection).await
                }
                result => result,
            }
        };
        let reply = tokio::time::timeout(COMMAND_TIMEOUT, attempts);
        reply.await.map_err(|_| timed_out())?.map_err(unavailable)
    }

    /// Builds the EVALSHA of [`INDEX_SCRIPT`] that adds `ticket` to its session's index
    /// at `now`, in Unix milliseconds.
    fn index_command(
        &self,
        session: &TicketGrantingTicket,
        ticket: &ServiceTicket,
        service: &str,
        user: &str,
        now: u64,
    ) -> Cmd {
        redis::cmd("EVALSHA")
            .arg(self.index_script.get_hash())
            .arg(2)
            .arg(self.keys.session(session))
            .arg(self.keys.session_index(session))
            .arg(ticket.as_str())
            .arg(service)
            .arg(now)
            .arg(user)
            .arg(ttl_millis(INDEX_GRACE))
            .clone()
    }

    /// Builds the EVALSHA of [`PROXY_TICKET_INDEX_SCRIPT`] that adds `ticket` to its
    /// session's index.
    fn proxy_ticket_index_command(
        &self,
        session: &TicketGrantingTicket,
        ticket: &ProxyTicket,
        service: &str,
        user: &str,
    ) -> Cmd {
        redis::cmd("EVALSHA")
            .arg(self.proxy_ticket_index_script.get_hash())
            .arg(2)
            .arg(self.keys.session(session))
            .arg(self.keys.session_index(session))
            .arg(ticket.as_str())
            .arg(service)
            .arg(user)
            .arg(ttl_millis(INDEX_GRACE))
            .clone()
    }

    async fn record_deadline(
        &self,
        session: &TicketGrantingTicket,
        deadline: u64,
    ) -> Result<(), StoreError> {
        let command = redis::cmd("ZADD")
            .arg(self.keys.session_deadlines())
            .arg(deadline)
            .arg(session.as_str())
            .clone();
        self.query(&command).await
    }

    async fn forget_deadline(&self, session: &str) -> Result<bool, StoreError> {
        let command = redis::cmd("ZREM")
            .arg(self.keys.session_deadlines())
            .arg(session)
            .clone();
        let removed: i64 = self.query(&command).await?;
        Ok(removed == 1)
    }

    /// Reads and deletes the index of a session whose deadline has passed, after this
    /// node claimed it. Returns `None` when the session still lives.
    async fn collect_expired(
        &self,
        session: &TicketGrantingTicket,
        now: u64,
    ) -> Result<Option<EndedSession>, StoreError> {
        let mut connection = self.connection();
        let mut invocation = self.expired_script.prepare_invoke();
        invocation
            .key(self.keys.session(session))
            .key(self.keys.session_index(session));
        let reply = tokio::time::timeout(
            COMMAND_TIMEOUT,
            invocation.invoke_async::<(i64, Vec<String>)>(&mut connection),
        );
        let (ttl, flat) = reply.await.map_err(|_| timed_out())?.map_err(unavailable)?;

        if ttl > 0 {
            self.record_deadline(session, now + ttl as u64).await?;
            return Ok(None);
        }
        let entries: Vec<(String, String)> = flat
            .chunks_exact(2)
            .map(|pair| (pair[0].clone(), pair[1].clone()))
            .collect();
        self.delete_tickets(&ticket_fields(&entries)).await?;
        Ok(Some(ended_session(session, None, &entries)))
    }

    /// Adds a proxy-granting ticket to its session's set and returns the session's
    /// remaining lifetime, or `None` when the session is gone.
    async fn index_proxy_granting(
        &self,
        session: &TicketGrantingTicket,
        ticket: &ProxyGrantingTicket,
    ) -> Result<Option<Duration>, StoreError> {
        let mut connection = self.connection();
        let mut invocation = self.proxy_granting_index_script.prepare_invoke();
        invocation
            .key(self.keys.session(session))
            .key(self.keys.session_proxy_granting(session))
            .arg(ticket.as_str());

        let reply = tokio::time::timeout(
            COMMAND_TIMEOUT,
            invocation.invoke_async::<i64>(&mut connection),
        );
        let remaining = reply.await.map_err(|_| timed_out())?.map_err(unavailable)?;
        let remaining = u64::try_from(remaining).ok().filter(|&ms| ms > 0);
        Ok(remaining.map(Duration::from_millis))
    }

    /// Deletes the keys of the service and proxy tickets in a session's index, one DEL
    /// each because they live in different cluster slots.
    async fn delete_tickets(&self, tickets: &[String]) -> Result<(), StoreError> {
        let keys: Vec<String> = tickets
            .iter()
            .map(|ticket| self.keys.indexed_ticket_text(ticket))
            .collect();
        self.delete_keys(&keys).await
    }

    async fn delete_proxy_granting(&self, tickets: &[String]) -> Result<(), StoreError> {
        let keys: Vec<String> = tickets
            .iter()
            .map(|ticket| self.keys.proxy_granting_ticket_text(ticket))
            .collect();
        self.delete_keys(&keys).await
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut pipeline = redis::pipe();
        for key in keys {
            pipeline.del(key).ignore();
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
        self.put_session_with_idle(ticket, session, ttl, ttl).await
    }

    async fn put_session_with_idle(
        &self,
        ticket: &TicketGrantingTicket,
        session: SsoSession,
        ttl: Duration,
        idle: Duration,
    ) -> Result<(), StoreError> {
        let now = unix_millis(SystemTime::now());
        let record = SessionRecord {
            user: session.user,
            authenticated_at: unix_millis(session.authenticated_at),
            hard_deadline: Some(now.saturating_add(ttl_millis(ttl))),
            idle: Some(ttl_millis(idle)),
            attributes: session.attributes,
        };
        let value = encode(&record)?;
        let first_ttl = ttl.min(idle);

        // Two slots, so two commands, sent at once. A deadline recorded for a session
        // whose SET failed only makes a sweep find nothing to end.
        let command = set_with_ttl(&self.keys.session(ticket), &value, first_ttl);
        let stored = self.query::<()>(&command);
        let recorded = self.record_deadline(ticket, now.saturating_add(ttl_millis(first_ttl)));
        let (stored, recorded) = tokio::join!(stored, recorded);
        stored?;
        recorded
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
        // The session and its indexes share a slot, so MULTI can read and delete them all.
        let session_key = self.keys.session(ticket);
        let index_key = self.keys.session_index(ticket);
        let proxying_key = self.keys.session_proxy_granting(ticket);
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("GETDEL")
            .arg(&session_key)
            .cmd("HKEYS")
            .arg(&index_key)
            .cmd("SMEMBERS")
            .arg(&proxying_key)
            .del(&index_key)
            .ignore()
            .del(&proxying_key)
            .ignore();
        let (value, mut tickets, proxying): (Option<String>, Vec<String>, Vec<String>) =
            self.query_pipeline(&pipeline).await?;
        tickets.retain(|field| field != INDEX_USER_FIELD);

        self.delete_tickets(&tickets).await?;
        self.delete_proxy_granting(&proxying).await?;
        self.forget_deadline(ticket.as_str()).await?;
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

        // The ticket and the session's index are in two slots, so two commands, sent in
        // one pipeline and one round trip. SET and the index script are safe to repeat.
        let now = unix_millis(SystemTime::now());
        let service = grant.service.as_str();
        let index = self.index_command(&grant.session, ticket, service, &record.user, now);
        let mut pipeline = redis::pipe();
        pipeline
            .add_command(set_with_ttl(&key, &value, ttl))
            .ignore()
            .add_command(index);
        let (remaining,): (i64,) = self
            .query_pipeline_with_script(&pipeline, &self.index_script)
            .await?;

        // Records the session's end for the sweeps, because the index script may move it.
        if remaining > 0 {
            self.record_deadline(&grant.session, now + remaining as u64)
                .await?;
        }
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

    async fn put_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
        grant: ProxyingGrant,
    ) -> Result<bool, StoreError> {
        // The ticket lives in its own slot, so it is written after the session's set in a
        // second command, with the session's remaining lifetime as its TTL. A logout
        // between the two leaves the ticket until that TTL ends, which is why callers
        // also check the session when they use the ticket.
        let Some(remaining) = self.index_proxy_granting(&grant.session, ticket).await? else {
            return Ok(false);
        };

        let record = ProxyingRecord {
            user: grant.user,
            session: grant.session.as_str().to_owned(),
            authenticated_at: unix_millis(grant.authenticated_at),
            proxies: grant.proxies,
        };
        let value = encode(&record)?;
        let key = self.keys.proxy_granting_ticket(ticket);
        self.query::<()>(&set_with_ttl(&key, &value, remaining))
            .await?;
        Ok(true)
    }

    async fn get_proxy_granting_ticket(
        &self,
        ticket: &ProxyGrantingTicket,
    ) -> Result<Option<ProxyingGrant>, StoreError> {
        let key = self.keys.proxy_granting_ticket(ticket);
        let value: Option<String> = self.query(&redis::cmd("GET").arg(key).clone()).await?;
        value.map(|text| decode_proxying(&text)).transpose()
    }

    async fn put_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
        grant: ProxyTicketGrant,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let record = ProxyTicketRecord {
            service: grant.service.as_str().to_owned(),
            user: grant.user,
            session: grant.session.as_str().to_owned(),
            authenticated_at: unix_millis(grant.authenticated_at),
            proxies: grant.proxies,
        };
        let value = encode(&record)?;
        let key = self.keys.proxy_ticket(ticket);

        // As for a service ticket: two slots, so two commands in one pipeline, both safe
        // to repeat. A session that ended before the script ran leaves the ticket
        // unindexed, and its validation then fails because the session is gone.
        let index =
            self.proxy_ticket_index_command(&grant.session, ticket, &record.service, &record.user);
        let mut pipeline = redis::pipe();
        pipeline
            .add_command(set_with_ttl(&key, &value, ttl))
            .ignore()
            .add_command(index)
            .ignore();
        self.query_pipeline_with_script(&pipeline, &self.proxy_ticket_index_script)
            .await
    }

    async fn take_proxy_ticket(
        &self,
        ticket: &ProxyTicket,
    ) -> Result<Option<ProxyTicketGrant>, StoreError> {
        let key = self.keys.proxy_ticket(ticket);
        let value: Option<String> = self.query(&redis::cmd("GETDEL").arg(key).clone()).await?;
        value.map(|text| decode_proxy_ticket(&text)).transpose()
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
            .filter(|(field, _)| field != INDEX_USER_FIELD)
            .filter_map(|(ticket, service)| issued_ticket(ticket, service))
            .collect())
    }

    async fn end_session(
        &self,
        ticket: &TicketGrantingTicket,
    ) -> Result<Option<EndedSession>, StoreError> {
        // The session and its indexes share a slot, so MULTI can read and delete them all.
        let session_key = self.keys.session(ticket);
        let index_key = self.keys.session_index(ticket);
        let proxying_key = self.keys.session_proxy_granting(ticket);
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .cmd("GETDEL")
            .arg(&session_key)
            .cmd("HGETALL")
            .arg(&index_key)
            .cmd("SMEMBERS")
            .arg(&proxying_key)
            .del(&index_key)
            .ignore()
            .del(&proxying_key)
            .ignore();
        let (value, entries, proxying): (Option<String>, Vec<(String, String)>, Vec<String>) =
            self.query_pipeline(&pipeline).await?;

        self.delete_tickets(&ticket_fields(&entries)).await?;
        self.delete_proxy_granting(&proxying).await?;
        self.forget_deadline(ticket.as_str()).await?;
        if value.is_none() && entries.is_empty() {
            return Ok(None);
        }
        let session = value.map(|text| decode_session(&text)).transpose()?;
        Ok(Some(ended_session(ticket, session, &entries)))
    }

    async fn take_expired_sessions(&self) -> Result<Vec<EndedSession>, StoreError> {
        let now = unix_millis(SystemTime::now());
        let command = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.session_deadlines())
            .arg("-inf")
            .arg(now)
            .arg("LIMIT")
            .arg(0)
            .arg(SWEEP_BATCH)
            .clone();
        let due: Vec<String> = self.query(&command).await?;

        let mut ended = Vec::new();
        for member in due {
            // ZREM succeeds on one node only, so each session is sent once.
            if !self.forget_deadline(&member).await? {
                continue;
            }
            let Ok(session) = TicketGrantingTicket::parse(&member) else {
                continue;
            };
            // A session that issued no ticket has no index, so no user and nothing to send.
            if let Some(session) = self.collect_expired(&session, now).await? {
                if !session.tickets.is_empty() {
                    ended.push(session);
                }
            }
        }
        Ok(ended)
    }

    async fn record_attempt(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<Option<AttemptId>, StoreError> {
        let id = AttemptId::random()?;
        let mut invocation = self.record_attempt_script.key(self.keys.attempts(key));
        invocation
            .arg(limit)
            .arg(ttl_millis(window))
            .arg(attempt_member(id));
        let recorded: u64 = self.run_script(&invocation).await?;
        Ok((recorded == 1).then_some(id))
    }

    async fn forget_attempt(&self, key: &str, attempt: AttemptId) -> Result<(), StoreError> {
        let command = redis::cmd("ZREM")
            .arg(self.keys.attempts(key))
            .arg(attempt_member(attempt))
            .clone();
        let _removed: u64 = self.query(&command).await?;
        Ok(())
    }

    async fn recent_attempts(&self, key: &str, window: Duration) -> Result<u64, StoreError> {
        let mut invocation = self.recent_attempts_script.key(self.keys.attempts(key));
        invocation.arg(ttl_millis(window));
        self.run_script(&invocation).await
    }

    async fn reset_counter(&self, key: &str) -> Result<(), StoreError> {
        self.query(&redis::cmd("DEL").arg(self.keys.attempts(key)).clone())
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

/// Returns the sorted-set member of an attempt.
fn attempt_member(id: AttemptId) -> String {
    format!("{:016x}", id.0)
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

fn decode_proxying(text: &str) -> Result<ProxyingGrant, StoreError> {
    let record: ProxyingRecord = serde_json::from_str(text).map_err(corrupt)?;
    Ok(ProxyingGrant {
        user: record.user,
        session: TicketGrantingTicket::parse(&record.session).map_err(corrupt)?,
        authenticated_at: from_unix_millis(record.authenticated_at),
        proxies: record.proxies,
    })
}

fn decode_proxy_ticket(text: &str) -> Result<ProxyTicketGrant, StoreError> {
    let record: ProxyTicketRecord = serde_json::from_str(text).map_err(corrupt)?;
    Ok(ProxyTicketGrant {
        service: ServiceUrl::parse(&record.service).map_err(corrupt)?,
        user: record.user,
        session: TicketGrantingTicket::parse(&record.session).map_err(corrupt)?,
        authenticated_at: from_unix_millis(record.authenticated_at),
        proxies: record.proxies,
    })
}

fn issued_ticket(ticket: &str, service: &str) -> Option<IssuedTicket> {
    Some(IssuedTicket {
        ticket: IndexedTicket::parse(ticket)?,
        service: ServiceUrl::parse(service).ok()?,
    })
}

/// Returns the ticket fields of an index, without the user field.
fn ticket_fields(entries: &[(String, String)]) -> Vec<String> {
    entries
        .iter()
        .filter(|(field, _)| field != INDEX_USER_FIELD)
        .map(|(field, _)| field.clone())
        .collect()
}

/// Builds an ended session from its index. The user comes from the session record when
/// it was still there, otherwise from the index.
fn ended_session(
    ticket: &TicketGrantingTicket,
    session: Option<SsoSession>,
    entries: &[(String, String)],
) -> EndedSession {
    let indexed_user = entries
        .iter()
        .find(|(field, _)| field == INDEX_USER_FIELD)
        .map(|(_, user)| user.clone());
    EndedSession {
        ticket: ticket.clone(),
        user: session.map(|s| s.user).or(indexed_user).unwrap_or_default(),
        tickets: entries
            .iter()
            .filter(|(field, _)| field != INDEX_USER_FIELD)
            .filter_map(|(ticket, service)| issued_ticket(ticket, service))
            .collect(),
    }
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
