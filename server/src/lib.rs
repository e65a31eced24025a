//! CAS 3.0 single sign-on server: HTTPS login form, SSO sessions, service ticket
//! validation. [`serve`] runs it on a listener the caller binds, so tests use port 0.

pub mod app;
pub mod cli;
pub mod config;
pub mod dev_certs;
pub mod http;
pub mod i18n;
pub mod server;
pub mod sso;
pub mod tickets;
pub mod tls;
pub mod users;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use config::Config;

use app::App;
use tickets::memory::MemoryTicketStore;
use users::password::PasswordEncoding;
use users::UserDirectory;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Database(#[from] users::sql::DatabaseError),
}

/// Loads the TLS identity, connects the user directory, then serves HTTPS on `listener`
/// until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let tls = tls::load_server_config(&config.tls_cert, &config.tls_key)?;
    if config.password_encoding == PasswordEncoding::Plain {
        tracing::warn!(
            "password_encoding is plain: passwords are stored unhashed; use argon2id outside demos"
        );
    }

    let users = UserDirectory::connect(&config).await?;
    log_start(&listener, &config);

    let app = Arc::new(App {
        config,
        users,
        tickets: Arc::new(MemoryTicketStore::new()),
    });
    server::run(listener, Arc::clone(&app), TlsAcceptor::from(tls), shutdown).await;

    app.users.close().await;
    tracing::info!("server stopped");
    Ok(())
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
    tracing::info!(%address, base_path = %config.base_path, users = store, services = config.registry.len(), "CAS server listening");
}
