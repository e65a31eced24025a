//! The Redis ticket store against the machine's Redis, each test under its own key prefix.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cas_core::service::ServiceUrl;
use cas_core::ticket::{
    LoginTicket, ProxyGrantingTicket, ProxyTicket, ServiceTicket, TicketGrantingTicket,
};
use cas_core::validation::Attributes;
use cas_server::tickets::redis::RedisTicketStore;
use cas_server::tickets::redis_keys::cluster_slot;
use cas_server::tickets::{
    IndexedTicket, ProxyTicketGrant, ProxyingGrant, ServiceGrant, SsoSession, TicketStore,
};
use common::redis_server::{PrivateRedis, RedisPrefix, SHARED_REDIS_URL};

const MINUTE: Duration = Duration::from_secs(60);

fn open(prefix: &RedisPrefix) -> RedisTicketStore {
    RedisTicketStore::open(SHARED_REDIS_URL, &prefix.prefix, 2).expect("open store")
}

fn random_bytes() -> [u8; 20] {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("random");
    bytes
}

/// Attributes with non-ASCII text and characters that JSON and XML must escape, so that
/// every round trip checks the record encoding.
fn attributes() -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert("displayName".into(), vec!["张三 🎉".into()]);
    attributes.insert(
        "memberOf".into(),
        vec!["staff\"}".into(), "</cas:user>&]]>".into()],
    );
    attributes
}

fn session_value() -> SsoSession {
    SsoSession {
        user: "alice".into(),
        authenticated_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        attributes: attributes(),
    }
}

fn grant(session: &TicketGrantingTicket, service: &str) -> ServiceGrant {
    ServiceGrant {
        service: ServiceUrl::parse(service).expect("valid"),
        user: "alice".into(),
        session: session.clone(),
        authenticated_at: session_value().authenticated_at,
        from_new_login: true,
        attributes: attributes(),
    }
}

fn proxying(session: &TicketGrantingTicket) -> ProxyingGrant {
    ProxyingGrant {
        user: "alice".into(),
        session: session.clone(),
        authenticated_at: session_value().authenticated_at,
        proxies: vec![
            "https://b.example/cb".into(),
            "https://a.example/cb?x=1".into(),
        ],
    }
}

fn proxy_grant(session: &TicketGrantingTicket) -> ProxyTicketGrant {
    ProxyTicketGrant {
        service: ServiceUrl::parse("https://backend.example/api").expect("valid"),
        user: "alice".into(),
        session: session.clone(),
        authenticated_at: session_value().authenticated_at,
        proxies: vec!["https://a.example/cb".into()],
    }
}

async fn started_session(store: &RedisTicketStore) -> TicketGrantingTicket {
    let session = TicketGrantingTicket::from_random(random_bytes());
    store
        .put_session(&session, session_value(), MINUTE * 10)
        .await
        .expect("put session");
    session
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_succeed_once() {
    let prefix = RedisPrefix::new();
    let store = Arc::new(open(&prefix));
    let session = started_session(&store).await;
    let ticket = ServiceTicket::from_random(random_bytes());
    store
        .put_service_ticket(&ticket, grant(&session, "https://app.example/"), MINUTE)
        .await
        .expect("put");

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = Arc::clone(&store);
            let ticket = ticket.clone();
            tokio::spawn(async move { store.take_service_ticket(&ticket).await.expect("take") })
        })
        .collect();

    let mut grants = Vec::new();
    for task in tasks {
        grants.extend(task.await.expect("join"));
    }
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0], grant(&session, "https://app.example/"));
}

#[tokio::test]
async fn every_key_has_ttl() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    store
        .put_login_ticket(&LoginTicket::from_random(random_bytes()), MINUTE)
        .await
        .expect("put login ticket");
    store
        .put_service_ticket(
            &ServiceTicket::from_random(random_bytes()),
            grant(&session, "https://app.example/"),
            MINUTE,
        )
        .await
        .expect("put service ticket");
    store
        .record_attempt("login:alice", 5, MINUTE)
        .await
        .expect("record attempt");
    let stored = store
        .put_proxy_granting_ticket(
            &ProxyGrantingTicket::from_random(random_bytes()),
            proxying(&session),
        )
        .await
        .expect("put proxy-granting ticket");
    store
        .put_proxy_ticket(
            &ProxyTicket::from_random(random_bytes()),
            proxy_grant(&session),
            MINUTE,
        )
        .await
        .expect("put proxy ticket");

    let deadlines = store.keys().session_deadlines();
    let keys: Vec<String> = prefix
        .keys()
        .into_iter()
        .filter(|key| *key != deadlines)
        .collect();
    let mut connection = prefix.connection();

    assert!(stored);
    // The index outlives its session by 15 minutes so that a sweep can still read it.
    assert_eq!(keys.len(), 8, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query(&mut connection)
            .expect("PTTL");
        assert!(ttl > 0, "{key} has PTTL {ttl}");
        assert!(ttl <= 600_000 + 900_000, "{key} has PTTL {ttl}");
    }
}

#[tokio::test]
async fn session_index_outlives_session() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    store
        .put_service_ticket(
            &ServiceTicket::from_random(random_bytes()),
            grant(&session, "https://app.example/"),
            MINUTE,
        )
        .await
        .expect("put");
    let mut connection = prefix.connection();

    let session_ttl: i64 = redis::cmd("PTTL")
        .arg(store.keys().session(&session))
        .query(&mut connection)
        .expect("PTTL");
    let index_ttl: i64 = redis::cmd("PTTL")
        .arg(store.keys().session_index(&session))
        .query(&mut connection)
        .expect("PTTL");

    let grace = 15 * MINUTE.as_millis() as i64;
    assert!(session_ttl > MINUTE.as_millis() as i64, "{session_ttl}");
    assert!(
        (session_ttl + grace - index_ttl).abs() < 1000,
        "{session_ttl} vs {index_ttl}"
    );
}

fn pttl(prefix: &RedisPrefix, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut prefix.connection())
        .expect("PTTL")
}

#[tokio::test]
async fn idle_session_starts_with_idle_ttl() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = TicketGrantingTicket::from_random(random_bytes());
    store
        .put_session_with_idle(&session, session_value(), MINUTE * 10, MINUTE)
        .await
        .expect("put");

    let ttl = pttl(&prefix, &store.keys().session(&session));

    assert!(ttl > 55_000, "{ttl}");
    assert!(ttl <= 60_000, "{ttl}");
}

#[tokio::test]
async fn use_extends_session_to_idle_timeout() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = TicketGrantingTicket::from_random(random_bytes());
    store
        .put_session_with_idle(&session, session_value(), MINUTE * 10, MINUTE)
        .await
        .expect("put");
    let session_key = store.keys().session(&session);
    // Stands for 50 idle seconds: the session has 10 s left.
    let _: i64 = redis::cmd("PEXPIRE")
        .arg(&session_key)
        .arg(10_000)
        .query(&mut prefix.connection())
        .expect("PEXPIRE");

    store
        .put_service_ticket(
            &ServiceTicket::from_random(random_bytes()),
            grant(&session, "https://app.example/"),
            MINUTE,
        )
        .await
        .expect("put");

    let ttl = pttl(&prefix, &session_key);
    assert!(ttl > 55_000, "{ttl}");
    assert!(ttl <= 60_000, "{ttl}");
    let deadline: f64 = redis::cmd("ZSCORE")
        .arg(store.keys().session_deadlines())
        .arg(session.as_str())
        .query(&mut prefix.connection())
        .expect("ZSCORE");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as f64;
    assert!(deadline > now + 55_000.0, "{deadline} vs {now}");
}

#[tokio::test]
async fn use_never_extends_past_hard_limit() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = TicketGrantingTicket::from_random(random_bytes());
    store
        .put_session_with_idle(&session, session_value(), MINUTE / 2, MINUTE)
        .await
        .expect("put");

    store
        .put_service_ticket(
            &ServiceTicket::from_random(random_bytes()),
            grant(&session, "https://app.example/"),
            MINUTE,
        )
        .await
        .expect("put");

    let ttl = pttl(&prefix, &store.keys().session(&session));
    assert!(ttl > 25_000, "{ttl}");
    assert!(ttl <= 30_000, "{ttl}");
}

#[tokio::test]
async fn end_session_returns_user_and_index() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let ticket = ServiceTicket::from_random(random_bytes());
    store
        .put_service_ticket(&ticket, grant(&session, "https://app.example/"), MINUTE)
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
    assert!(prefix.keys().is_empty(), "{:?}", prefix.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_is_taken_by_one_node() {
    let prefix = RedisPrefix::new();
    let first = Arc::new(open(&prefix));
    let second = Arc::new(open(&prefix));
    let session = TicketGrantingTicket::from_random(random_bytes());
    let ticket = ServiceTicket::from_random(random_bytes());
    first
        .put_session_with_idle(&session, session_value(), Duration::from_secs(1), MINUTE)
        .await
        .expect("put");
    first
        .put_service_ticket(&ticket, grant(&session, "https://app.example/"), MINUTE)
        .await
        .expect("put");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (on_first, on_second) = tokio::join!(
        first.take_expired_sessions(),
        second.take_expired_sessions()
    );
    let mut ended = on_first.expect("take");
    ended.extend(on_second.expect("take"));

    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].ticket, session);
    assert_eq!(ended[0].user, "alice");
    assert_eq!(ended[0].tickets.len(), 1);
    assert_eq!(ended[0].tickets[0].ticket, IndexedTicket::Service(ticket));
    assert!(prefix.keys().is_empty(), "{:?}", prefix.keys());
}

#[tokio::test]
async fn live_session_is_not_taken() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    // A deadline in the past, as a sweep reads it when a use moved the session's end
    // after the sweep read the set.
    let _: i64 = redis::cmd("ZADD")
        .arg(store.keys().session_deadlines())
        .arg(0)
        .arg(session.as_str())
        .query(&mut prefix.connection())
        .expect("ZADD");

    let ended = store.take_expired_sessions().await.expect("take");

    assert!(ended.is_empty(), "{ended:?}");
    assert!(store.get_session(&session).await.expect("get").is_some());
    let deadline: f64 = redis::cmd("ZSCORE")
        .arg(store.keys().session_deadlines())
        .arg(session.as_str())
        .query(&mut prefix.connection())
        .expect("ZSCORE");
    assert!(deadline > 0.0, "{deadline}");
}

#[tokio::test]
async fn removing_session_removes_its_tickets() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let other = started_session(&store).await;
    let mine = [
        ServiceTicket::from_random(random_bytes()),
        ServiceTicket::from_random(random_bytes()),
    ];
    let theirs = ServiceTicket::from_random(random_bytes());
    for ticket in &mine {
        store
            .put_service_ticket(ticket, grant(&session, "https://app.example/"), MINUTE)
            .await
            .expect("put");
    }
    store
        .put_service_ticket(&theirs, grant(&other, "https://app.example/"), MINUTE)
        .await
        .expect("put");

    let removed = store.remove_session(&session).await.expect("remove");

    assert_eq!(removed, Some(session_value()));
    assert_eq!(store.get_session(&session).await.expect("get"), None);
    for ticket in &mine {
        assert_eq!(store.take_service_ticket(ticket).await.expect("take"), None);
    }
    assert!(store
        .take_service_ticket(&theirs)
        .await
        .expect("take")
        .is_some());
    assert!(store
        .session_tickets(&session)
        .await
        .expect("index")
        .is_empty());
    let left = prefix.keys();
    assert!(
        left.iter().all(|key| !key.contains(session.as_str())),
        "{left:?}"
    );
}

#[tokio::test]
async fn session_index_lists_validated_tickets() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let first = ServiceTicket::from_random(random_bytes());
    let second = ServiceTicket::from_random(random_bytes());
    store
        .put_service_ticket(&first, grant(&session, "https://a.example/"), MINUTE)
        .await
        .expect("put");
    store
        .put_service_ticket(&second, grant(&session, "https://b.example/"), MINUTE)
        .await
        .expect("put");

    store.take_service_ticket(&first).await.expect("take");
    let mut index = store.session_tickets(&session).await.expect("index");
    index.sort_by(|a, b| a.service.as_str().cmp(b.service.as_str()));

    assert_eq!(index.len(), 2);
    assert_eq!(index[0].ticket, IndexedTicket::Service(first));
    assert_eq!(index[0].service.as_str(), "https://a.example/");
    assert_eq!(index[1].ticket, IndexedTicket::Service(second));
}

#[tokio::test]
async fn ticket_of_ended_session_is_not_indexed() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let ended = TicketGrantingTicket::from_random(random_bytes());
    let ticket = ServiceTicket::from_random(random_bytes());

    store
        .put_service_ticket(&ticket, grant(&ended, "https://app.example/"), MINUTE)
        .await
        .expect("put");

    assert!(store
        .session_tickets(&ended)
        .await
        .expect("index")
        .is_empty());
    assert_eq!(prefix.keys().len(), 1, "only the ticket itself");
}

#[tokio::test]
async fn login_ticket_is_single_use() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let ticket = LoginTicket::from_random(random_bytes());
    store.put_login_ticket(&ticket, MINUTE).await.expect("put");

    assert!(store.take_login_ticket(&ticket).await.expect("take"));
    assert!(!store.take_login_ticket(&ticket).await.expect("take"));
}

#[tokio::test]
async fn service_ticket_expires() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let ticket = ServiceTicket::from_random(random_bytes());
    store
        .put_service_ticket(
            &ticket,
            grant(&session, "https://app.example/"),
            Duration::from_millis(50),
        )
        .await
        .expect("put");

    tokio::time::sleep(Duration::from_millis(120)).await;

    assert_eq!(
        store.take_service_ticket(&ticket).await.expect("take"),
        None
    );
}

async fn record(store: &RedisTicketStore, key: &str, limit: u64, window: Duration) -> bool {
    let recorded = store.record_attempt(key, limit, window).await;
    recorded.expect("record attempt").is_some()
}

#[tokio::test]
async fn attempts_slide_past_boundary() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let window = Duration::from_secs(2);

    assert!(record(&store, "login:alice", 3, window).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(record(&store, "login:alice", 3, window).await);
    assert!(record(&store, "login:alice", 3, window).await);
    assert!(
        !record(&store, "login:alice", 3, window).await,
        "limit reached"
    );

    // A fixed window that started with the first attempt has ended here.
    tokio::time::sleep(Duration::from_millis(700)).await;

    assert!(
        record(&store, "login:alice", 3, window).await,
        "first attempt left"
    );
    assert!(
        !record(&store, "login:alice", 3, window).await,
        "the two attempts before the edge still count"
    );
}

#[tokio::test]
async fn attempts_expire_after_window() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let window = Duration::from_millis(300);
    assert!(record(&store, "login:alice", 2, window).await);
    assert!(record(&store, "login:alice", 2, window).await);
    assert!(!record(&store, "login:alice", 2, window).await);

    tokio::time::sleep(window + Duration::from_millis(100)).await;

    let recent = store.recent_attempts("login:alice", window).await;
    assert_eq!(recent.expect("count"), 0);
    assert!(
        prefix.keys().is_empty(),
        "the log expired with its last attempt"
    );
    assert!(record(&store, "login:alice", 2, window).await);
}

#[tokio::test]
async fn forget_and_reset_free_places() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let first = store.record_attempt("login:bob", 2, MINUTE).await;
    assert!(record(&store, "login:bob", 2, MINUTE).await);

    let id = first.expect("record").expect("recorded");
    store.forget_attempt("login:bob", id).await.expect("forget");
    assert!(record(&store, "login:bob", 2, MINUTE).await);
    assert!(!record(&store, "login:bob", 2, MINUTE).await);

    store.reset_counter("login:bob").await.expect("reset");
    let recent = store.recent_attempts("login:bob", MINUTE).await;
    assert_eq!(recent.expect("count"), 0);
}

#[tokio::test]
async fn racing_nodes_share_limit() {
    let prefix = RedisPrefix::new();
    let nodes = [Arc::new(open(&prefix)), Arc::new(open(&prefix))];

    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let store = Arc::clone(&nodes[i % 2]);
            tokio::spawn(async move { record(&store, "login:carol", 25, MINUTE).await })
        })
        .collect();

    let mut recorded = 0;
    for task in tasks {
        recorded += usize::from(task.await.expect("join"));
    }
    assert_eq!(recorded, 25);
    let recent = nodes[0].recent_attempts("login:carol", MINUTE).await;
    assert_eq!(recent.expect("count"), 25);
}

#[tokio::test]
async fn parallel_attempts_count_exactly() {
    let prefix = RedisPrefix::new();
    let store = Arc::new(open(&prefix));

    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { record(&store, "login:dave", 100, MINUTE).await })
        })
        .collect();

    for task in tasks {
        assert!(task.await.expect("join"));
    }
    let recent = store.recent_attempts("login:dave", MINUTE).await;
    assert_eq!(recent.expect("count"), 40);
}

#[tokio::test]
async fn ping_answers() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);

    store.ping().await.expect("ping");
}

#[tokio::test]
async fn password_in_url_is_used() {
    let redis = PrivateRedis::start_with_password(Some("s3cret-pass"));
    let without = redis.url().replace(":s3cret-pass@", "");
    let wrong = redis.url().replace("s3cret-pass", "wrong-pass");

    let right = RedisTicketStore::open(&redis.url(), "cas-test:", 1).expect("open");
    let anonymous = RedisTicketStore::open(&without, "cas-test:", 1).expect("open");
    let mistaken = RedisTicketStore::open(&wrong, "cas-test:", 1).expect("open");

    right.ping().await.expect("ping with the password");
    assert!(anonymous.ping().await.is_err());
    let error = mistaken.ping().await.expect_err("wrong password");
    assert!(!error.to_string().contains("wrong-pass"), "{error}");
}

#[tokio::test]
async fn tls_url_against_plain_server_fails_cleanly() {
    let redis = PrivateRedis::start();
    let url = redis.url().replace("redis://", "rediss://");

    let store = RedisTicketStore::open(&url, "cas-test:", 1).expect("open");
    let result = store.ping().await;

    assert!(
        result.is_err(),
        "a TLS handshake with a plain server must fail"
    );
}

#[tokio::test]
async fn proxy_granting_ticket_lives_until_logout() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let other = started_session(&store).await;
    let mine = ProxyGrantingTicket::from_random(random_bytes());
    let theirs = ProxyGrantingTicket::from_random(random_bytes());

    let stored = store
        .put_proxy_granting_ticket(&mine, proxying(&session))
        .await
        .expect("put");
    store
        .put_proxy_granting_ticket(&theirs, proxying(&other))
        .await
        .expect("put");
    let first = store.get_proxy_granting_ticket(&mine).await.expect("get");
    let second = store.get_proxy_granting_ticket(&mine).await.expect("get");
    store.remove_session(&session).await.expect("remove");

    assert!(stored);
    assert_eq!(first, Some(proxying(&session)));
    assert_eq!(second, Some(proxying(&session)), "many uses");
    assert_eq!(
        store.get_proxy_granting_ticket(&mine).await.expect("get"),
        None
    );
    assert_eq!(
        store.get_proxy_granting_ticket(&theirs).await.expect("get"),
        Some(proxying(&other))
    );
    let left = prefix.keys();
    assert!(
        left.iter()
            .all(|key| !key.contains(session.as_str()) && !key.contains(mine.as_str())),
        "{left:?}"
    );
}

#[tokio::test]
async fn proxy_granting_ticket_shares_session_ttl() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let ticket = ProxyGrantingTicket::from_random(random_bytes());
    store
        .put_proxy_granting_ticket(&ticket, proxying(&session))
        .await
        .expect("put");
    let mut connection = prefix.connection();
    let mut pttl = |key: String| -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut connection)
            .expect("PTTL")
    };

    let session_ttl = pttl(store.keys().session(&session));
    let ticket_ttl = pttl(store.keys().proxy_granting_ticket(&ticket));
    let set_ttl = pttl(store.keys().session_proxy_granting(&session));

    assert!(ticket_ttl > 0, "{ticket_ttl}");
    // The ticket's TTL is copied from the session's PTTL a moment after that was set, so
    // it may end a few milliseconds later; /proxy checks the session anyway.
    assert!(
        ticket_ttl <= session_ttl + 50,
        "{ticket_ttl} vs {session_ttl}"
    );
    assert!(
        session_ttl - ticket_ttl < 1000,
        "{ticket_ttl} vs {session_ttl}"
    );
    assert!(
        (session_ttl - set_ttl).abs() < 1000,
        "{set_ttl} vs {session_ttl}"
    );
}

#[tokio::test]
async fn proxy_granting_ticket_needs_a_live_session() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let ended = TicketGrantingTicket::from_random(random_bytes());
    let ticket = ProxyGrantingTicket::from_random(random_bytes());

    let stored = store
        .put_proxy_granting_ticket(&ticket, proxying(&ended))
        .await
        .expect("put");

    assert!(!stored);
    assert_eq!(
        store.get_proxy_granting_ticket(&ticket).await.expect("get"),
        None
    );
    assert!(prefix.keys().is_empty(), "{:?}", prefix.keys());
}

#[tokio::test]
async fn proxy_ticket_is_single_use_and_expires() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let used = ProxyTicket::from_random(random_bytes());
    let late = ProxyTicket::from_random(random_bytes());
    store
        .put_proxy_ticket(&used, proxy_grant(&session), MINUTE)
        .await
        .expect("put");
    store
        .put_proxy_ticket(&late, proxy_grant(&session), Duration::from_millis(50))
        .await
        .expect("put");

    let taken = store.take_proxy_ticket(&used).await.expect("take");
    let again = store.take_proxy_ticket(&used).await.expect("take");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let expired = store.take_proxy_ticket(&late).await.expect("take");

    assert_eq!(taken, Some(proxy_grant(&session)));
    assert_eq!(again, None);
    assert_eq!(expired, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proxy_ticket_takes_succeed_once() {
    let prefix = RedisPrefix::new();
    let store = Arc::new(open(&prefix));
    let session = started_session(&store).await;
    let ticket = ProxyTicket::from_random(random_bytes());
    store
        .put_proxy_ticket(&ticket, proxy_grant(&session), MINUTE)
        .await
        .expect("put");

    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = Arc::clone(&store);
            let ticket = ticket.clone();
            tokio::spawn(async move { store.take_proxy_ticket(&ticket).await.expect("take") })
        })
        .collect();

    let mut grants = Vec::new();
    for task in tasks {
        grants.extend(task.await.expect("join"));
    }
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0], proxy_grant(&session));
}

#[tokio::test]
async fn ticket_index_survives_script_flush() {
    let redis = PrivateRedis::start();
    let store = RedisTicketStore::open(&redis.url(), "cas-test:", 1).expect("open");
    let session = started_session(&store).await;
    let first = ServiceTicket::from_random(random_bytes());
    let second = ServiceTicket::from_random(random_bytes());
    let mut connection = redis::Client::open(redis.url())
        .expect("client")
        .get_connection()
        .expect("connect");

    // A new server has no script cached, so the first ticket loads the index script.
    store
        .put_service_ticket(&first, grant(&session, "https://app.example/a"), MINUTE)
        .await
        .expect("put first");
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut connection)
        .expect("flush scripts");
    store
        .put_service_ticket(&second, grant(&session, "https://app.example/b"), MINUTE)
        .await
        .expect("put second");

    let indexed = store.session_tickets(&session).await.expect("index");
    assert_eq!(indexed.len(), 2, "{indexed:?}");
    let taken_first = store.take_service_ticket(&first).await.expect("take");
    let taken_second = store.take_service_ticket(&second).await.expect("take");
    assert!(taken_first.is_some());
    assert!(taken_second.is_some());
}

#[tokio::test]
async fn proxy_tickets_join_session_index() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = started_session(&store).await;
    let service_ticket = ServiceTicket::from_random(random_bytes());
    let validated = ProxyTicket::from_random(random_bytes());
    let unused = ProxyTicket::from_random(random_bytes());
    store
        .put_service_ticket(
            &service_ticket,
            grant(&session, "https://app.example/"),
            MINUTE,
        )
        .await
        .expect("put");
    for ticket in [&validated, &unused] {
        store
            .put_proxy_ticket(ticket, proxy_grant(&session), MINUTE)
            .await
            .expect("put");
    }
    store.take_proxy_ticket(&validated).await.expect("take");

    let index_key = store.keys().session_index(&session);
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&index_key)
        .query(&mut prefix.connection())
        .expect("HKEYS");
    let mut index = store.session_tickets(&session).await.expect("index");
    let ended = store.end_session(&session).await.expect("end");
    let left = store.take_proxy_ticket(&unused).await.expect("take");

    assert_eq!(
        cluster_slot(&index_key),
        cluster_slot(&store.keys().session(&session))
    );
    assert!(
        fields.contains(&validated.as_str().to_owned()),
        "{fields:?}"
    );
    assert!(fields.contains(&unused.as_str().to_owned()), "{fields:?}");
    index.sort_by(|a, b| a.ticket.as_str().cmp(b.ticket.as_str()));
    let mut expected = vec![
        IndexedTicket::Proxy(validated),
        IndexedTicket::Proxy(unused),
        IndexedTicket::Service(service_ticket),
    ];
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let tickets: Vec<IndexedTicket> = index.iter().map(|i| i.ticket.clone()).collect();
    assert_eq!(tickets, expected);
    let backend = index
        .iter()
        .find(|i| matches!(i.ticket, IndexedTicket::Proxy(_)))
        .expect("proxy ticket in index");
    assert_eq!(backend.service.as_str(), "https://backend.example/api");
    let mut ended = ended.expect("session existed").tickets;
    ended.sort_by(|a, b| a.ticket.as_str().cmp(b.ticket.as_str()));
    assert_eq!(ended, index);
    assert_eq!(left, None, "proxy ticket outlived its session");
    assert!(prefix.keys().is_empty(), "{:?}", prefix.keys());
}

#[tokio::test]
async fn proxy_ticket_keeps_session_deadline() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = TicketGrantingTicket::from_random(random_bytes());
    store
        .put_session_with_idle(&session, session_value(), MINUTE * 10, MINUTE)
        .await
        .expect("put");
    let before = pttl(&prefix, &store.keys().session(&session));

    store
        .put_proxy_ticket(
            &ProxyTicket::from_random(random_bytes()),
            proxy_grant(&session),
            MINUTE,
        )
        .await
        .expect("put");

    let after = pttl(&prefix, &store.keys().session(&session));
    let index_ttl = pttl(&prefix, &store.keys().session_index(&session));
    assert!(after <= before, "{before} then {after}");
    assert!(after > 55_000, "{after}");
    let grace = 15 * MINUTE.as_millis() as i64;
    assert!(
        (after + grace - index_ttl).abs() < 1000,
        "{after} vs {index_ttl}"
    );
}

#[tokio::test]
async fn proxy_ticket_of_ended_session_is_not_indexed() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = TicketGrantingTicket::from_random(random_bytes());
    let ticket = ProxyTicket::from_random(random_bytes());

    store
        .put_proxy_ticket(&ticket, proxy_grant(&session), MINUTE)
        .await
        .expect("put");

    let index = store.session_tickets(&session).await.expect("index");
    assert!(index.is_empty(), "{index:?}");
    assert_eq!(prefix.keys(), [store.keys().proxy_ticket(&ticket)]);
}

#[tokio::test]
async fn expired_session_reports_proxy_tickets() {
    let prefix = RedisPrefix::new();
    let store = open(&prefix);
    let session = TicketGrantingTicket::from_random(random_bytes());
    let ticket = ProxyTicket::from_random(random_bytes());
    store
        .put_session_with_idle(&session, session_value(), Duration::from_secs(1), MINUTE)
        .await
        .expect("put");
    store
        .put_proxy_ticket(&ticket, proxy_grant(&session), MINUTE)
        .await
        .expect("put");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let ended = store.take_expired_sessions().await.expect("take");

    assert_eq!(ended.len(), 1, "{ended:?}");
    assert_eq!(ended[0].user, "alice");
    assert_eq!(ended[0].tickets.len(), 1);
    assert_eq!(ended[0].tickets[0].ticket, IndexedTicket::Proxy(ticket));
    assert!(prefix.keys().is_empty(), "{:?}", prefix.keys());
}
