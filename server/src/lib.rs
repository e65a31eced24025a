//! CAS 3.0 single sign-on server: HTTPS login form, SSO sessions, service ticket
//! validation. [`serve`] runs it on a listener the caller binds, so tests use port 0.

pub mod app;
pub mod cli;
pub mod config;
pub mod config_check;
pub mod dev_certs;
pub mod http;
pub mod i18n;
pub mod log_writer;
pub mod metrics;
pub mod outbound;
pub mod proxy;
pub mod release;
pub mod reload;
pub mod server;
pub mod slo;
pub mod sso;
pub mod theme;
pub mod throttle;
pub mod tickets;
pub mod tls;
pub mod user_command;
pub mod users;

use std::future::Future;
use std::sync::{Arc, RwLock};

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use config::Config;

use app::App;
use config::TicketStoreSettings;
use metrics::Metrics;
use outbound::Outbound;
use tickets::memory::MemoryTicketStore;
use tickets::metered::MeteredTicketStore;
use tickets::redis::RedisTicketStore;
use tickets::{StoreError, TicketStore};
use users::password::PasswordEncoding;
use users::UserDirectory;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Database(#[from] users::sql::DatabaseError),
    #[error("cannot open the ticket store; check the setting redis_url: {0}")]
    TicketStore(#[from] StoreError),
    #[error(transparent)]
    Outbound(#[from] outbound::OutboundError),
}

/// Logs a warning at every start when the configured encoding is plain text or a fast
/// digest, which leaked tables give up to offline guessing.
fn warn_about_weak_encoding(config: &Config) {
    let encoding = config.password_encoding;
    if encoding == PasswordEncoding::Plain {
        tracing::warn!(
            "password_encoding is plain: passwords are stored unhashed; use argon2id outside demos"
        );
    } else if encoding.takes_salt_setting() {
        tracing::warn!(
            encoding = encoding.as_str(),
            upgrade = config.password_upgrade,
            "password_encoding is a fast hex digest; set password_upgrade = true to move users to argon2id"
        );
    }
}

/// Loads the TLS identity, connects the user directory, then serves HTTPS on `listener`
/// until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (tls, certificate) = tls::reloadable_server_config(&config.tls_cert, &config.tls_key)?;
    warn_about_weak_encoding(&config);

    let outbound = Outbound::new(config.outbound_ca_file.as_deref(), config.outbound_timeout)?;
    let users = UserDirectory::connect(&config).await?;
    let metrics = Arc::new(Metrics::new());
    let store = open_ticket_store(&config.ticket_store).await?;
    let single_logout = slo::SingleLogout::new(outbound.clone(), config.slo_retries);

    let app = Arc::new(App {
        registry: RwLock::new(Arc::new(config.registry.clone())),
        config,
        users,
        tickets: Arc::new(MeteredTicketStore::new(store, Arc::clone(&metrics))),
        metrics,
        slo: single_logout,
        outbound,
    });
    let config_file = app.config.config_file.clone();
    let reloader = reload::spawn_reload_on_hangup(Arc::clone(&app), config_file, certificate);
    log_start(&listener, &app.config);
    server::run(listener, Arc::clone(&app), TlsAcceptor::from(tls), shutdown).await;

    if let Some(reloader) = reloader {
        reloader.abort();
    }

    app.users.close().await;
    tracing::info!("server stopped");
    Ok(())
}

/// Opens the configured store. A Redis that does not answer yet is only a warning: the
/// server starts, reports itself not ready and connects once Redis is back.
pub async fn open_ticket_store(
    settings: &TicketStoreSettings,
) -> Result<Box<dyn TicketStore>, StoreError> {
    let redis = match settings {
        TicketStoreSettings::Memory { max_tickets } => {
            return Ok(Box::new(MemoryTicketStore::with_max_entries(*max_tickets)));
        }
        TicketStoreSettings::Redis(redis) => redis,
    };

    let store = RedisTicketStore::open(&redis.url, &redis.key_prefix, redis.pool_size)?;
    if let Err(error) = store.ping().await {
        tracing::warn!(%error, "Redis does not answer yet; the server starts but is not ready");
    }
    Ok(Box::new(store))
}

fn log_start(listener: &TcpListener, config: &Config) {
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let store = if config.database_url.is_some() {
        "mysql"
    } else {
        "embedded sqlite"
    };
    let tickets = match &config.ticket_store {
        TicketStoreSettings::Memory { .. } => "memory",
        TicketStoreSettings::Redis(_) => "redis",
    };
    tracing::info!(%address, base_path = %config.base_path, users = store, tickets, services = config.registry.len(), "CAS server listening");
}
