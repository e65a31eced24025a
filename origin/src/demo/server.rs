//! The demo origin's HTTP/1.1 server: accept loop, connection limit, header read timeout
//! and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::handler::respond;
use crate::Verifier;

/// Connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 512;

/// Time a client has to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time open connections get to finish after shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves requests on `listener` until `shutdown` completes, then lets open connections
/// finish for up to [`SHUTDOWN_GRACE`].
pub async fn run(listener: TcpListener, verifier: Verifier, shutdown: impl Future<Output = ()>) {
    let verifier = Arc::new(verifier);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            () = &mut shutdown => break,
        };
        let Ok(permit) = permit else { break };

        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Running out of file descriptors is temporary; keep serving.
                    tracing::warn!(%error, "accepting a connection failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };

        let verifier = Arc::clone(&verifier);
        let service = service_fn(move |request: Request<Incoming>| {
            let response = respond(&verifier, &request.into_parts().0, unix_now());
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);

        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }

    tracing::info!("shutting down; waiting for open connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {} s; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
}

fn unix_now() -> u64 {
    // A clock before 1970 makes every assertion look unexpired-but-future, so it fails closed.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use cas_core::assertion::{sign_assertion, IdentityClaims};
    use cas_core::signing::{KeyRing, SigningKey};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;

    use super::*;

    const AUDIENCE: &str = "http://127.0.0.1:8080";

    fn key() -> SigningKey {
        SigningKey::from_secret(&"k".repeat(40)).expect("long enough")
    }

    async fn start() -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let address = listener.local_addr().expect("address").to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let verifier = Verifier::new(KeyRing::new(key(), None), AUDIENCE);
        let server = tokio::spawn(run(listener, verifier, async {
            let _ = stopped.await;
        }));
        (address, stop, server)
    }

    async fn get(address: &str, path: &str, headers: &[(&str, &str)]) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");

        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        response
    }

    #[tokio::test]
    async fn forged_user_header_gets_401_over_http() {
        let (address, stop, server) = start().await;

        let response = get(&address, "/private", &[("X-CAS-User", "alice")]).await;

        assert!(response.starts_with("HTTP/1.1 401"), "{response}");
        let _ = stop.send(());
        server.await.expect("server stops");
    }

    #[tokio::test]
    async fn signed_assertion_gets_200_over_http() {
        let (address, stop, server) = start().await;
        let now = unix_now();
        let claims = IdentityClaims {
            iss: "cas-edge-filter".into(),
            aud: AUDIENCE.into(),
            sub: "alice".into(),
            iat: now,
            exp: now + 60,
            attributes: Default::default(),
        };
        let token = sign_assertion(&key(), &claims);

        let response = get(&address, "/docs", &[("X-CAS-Assertion", &token)]).await;

        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.contains("alice"), "{response}");
        let _ = stop.send(());
        server.await.expect("server stops");
    }

    #[tokio::test]
    async fn health_answers_over_http() {
        let (address, stop, server) = start().await;

        let response = get(&address, "/healthz", &[]).await;

        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("ok"), "{response}");
        let _ = stop.send(());
        server.await.expect("server stops");
    }
}
