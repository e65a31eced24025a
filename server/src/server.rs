//! The HTTPS accept loop: TLS handshakes, HTTP/1.1 connections, connection limits,
//! the sweep of expired tickets and sessions, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use cas_core::ticket::digest_for_log;

use crate::http::router;

/// Time a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client gets to send a complete request head. Hyper starts it whenever it waits
/// for a request, so it also closes keep-alive connections that stay idle this long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Request head limit of hyper itself: twice the router's, so that heads between the two
/// get the router's 431 page with its headers.
///
/// NOTE: a head past this limit, or with more than twice the router's header fields,
/// gets hyper's own 431, and a request target past 64 KiB hyper's own 414. Neither has
/// a body or the security headers.
const HYPER_HEAD_BYTES: usize = 2 * router::MAX_HEAD_BYTES;
const HYPER_HEADER_FIELDS: usize = 2 * router::MAX_HEADER_FIELDS;

/// Time open connections get to finish their requests after shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Pause after a failed accept, so that running out of file descriptors does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves HTTPS on `listener` until `shutdown` completes, then lets open connections
/// finish for up to [`SHUTDOWN_GRACE`].
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    acceptor: TlsAcceptor,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let limit = Arc::new(Semaphore::new(app.config.max_connections));
    let sweeper = spawn_sweeper(Arc::clone(&app));
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => admit(stream, peer, &app, &acceptor, &limit, graceful.watcher()),
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            () = &mut shutdown => break,
        }
    }

    tracing::info!(open_connections = graceful.count(), "shutting down");
    drop(listener);
    sweeper.abort();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

fn admit(
    stream: TcpStream,
    peer: SocketAddr,
    app: &Arc<App>,
    acceptor: &TlsAcceptor,
    limit: &Arc<Semaphore>,
    watcher: Watcher,
) {
    let Ok(permit) = Arc::clone(limit).try_acquire_owned() else {
        let max = app.config.max_connections;
        tracing::warn!(%peer, max, "connection limit reached; dropping connection");
        return;
    };

    let app = Arc::clone(app);
    let acceptor = acceptor.clone();
    tokio::spawn(serve_connection(
        stream, peer, app, acceptor, watcher, permit,
    ));
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    acceptor: TlsAcceptor,
    watcher: Watcher,
    _permit: OwnedSemaphorePermit,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => return tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
    };

    let service = service_fn(move |request| {
        let app = Arc::clone(&app);
        async move { Ok::<_, std::convert::Infallible>(router::handle(&app, request, peer).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(HYPER_HEAD_BYTES)
        .max_buf_size(HYPER_HEAD_BYTES)
        .max_headers(HYPER_HEADER_FIELDS)
        .serve_connection(TokioIo::new(tls), service);

    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Sweeps every `session_sweep_interval`: sessions that expired get their single
/// logout requests, then other expired entries are dropped.
fn spawn_sweeper(app: Arc<App>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(app.config.session_sweep_interval);
        loop {
            interval.tick().await;
            end_expired_sessions(&app).await;
            match app.tickets.remove_expired().await {
                Ok(0) => {}
                Ok(removed) => tracing::debug!(removed, "expired tickets removed"),
                Err(error) => tracing::warn!(%error, "sweeping expired tickets failed"),
            }
        }
    })
}

async fn end_expired_sessions(app: &App) {
    let ended = match app.tickets.take_expired_sessions().await {
        Ok(ended) => ended,
        Err(error) => return tracing::warn!(%error, "sweeping expired sessions failed"),
    };
    for session in &ended {
        tracing::info!(user = %session.user, session = %digest_for_log(session.ticket.as_str()), "SSO session ended by expiry");
        app.slo.notify(&app.registry(), session);
    }
}
