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
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::handler::respond;
use super::websocket;
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
    // hyper-util's `GracefulShutdown` (0.1.21) cannot watch a connection with upgrades,
    // so each connection task keeps a receiver: a sent value starts its graceful
    // shutdown, and the sender's `closed()` completes once every task has ended.
    let (stopping, _) = watch::channel(());
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
            let now = unix_now();
            let response = if websocket::is_echo_upgrade(&request) {
                websocket::accept(&verifier, request, now)
            } else {
                respond(&verifier, &request.into_parts().0, now)
            };
            async move { Ok::<_, Infallible>(response) }
        });
        // A WebSocket leaves this connection once upgraded, so it holds no permit and
        // graceful shutdown does not wait for it.
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stopping.subscribe();

        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(stop);
            drop(permit);
        });
    }

    tracing::info!("shutting down; waiting for open connections");
    // Sending fails only without receivers, when no connection is open.
    let _ = stopping.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, stopping.closed())
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
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::oneshot;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::handshake::client::Request as ClientRequest;
    use tokio_tungstenite::tungstenite::Message;

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

    /// Builds a WebSocket handshake to the echo endpoint with a valid assertion for `alice`.
    fn echo_request(address: &str) -> ClientRequest {
        let now = unix_now();
        let claims = IdentityClaims {
            iss: "cas-edge-filter".into(),
            aud: AUDIENCE.into(),
            sub: "alice".into(),
            iat: now,
            exp: now + 60,
            attributes: Default::default(),
        };
        let url = format!("ws://{address}{}", websocket::ECHO_PATH);
        let mut request = url.into_client_request().expect("valid URL");
        let token = sign_assertion(&key(), &claims);
        request
            .headers_mut()
            .insert("x-cas-assertion", token.parse().expect("valid header"));
        request
    }

    #[tokio::test]
    async fn websocket_echo_over_http() {
        let (address, stop, server) = start().await;

        let (mut socket, response) = tokio_tungstenite::connect_async(echo_request(&address))
            .await
            .expect("handshake succeeds");
        assert_eq!(response.status(), 101);
        let first = socket.next().await.expect("first message").expect("frame");
        assert_eq!(first, Message::text("user=alice\n"));
        socket.send(Message::text("ping 1")).await.expect("send");
        let echoed = socket.next().await.expect("echo").expect("frame");
        assert_eq!(echoed, Message::text("ping 1"));
        socket.close(None).await.expect("close");

        let _ = stop.send(());
        server.await.expect("server stops");
    }

    #[tokio::test]
    async fn open_websocket_does_not_delay_shutdown() {
        let (address, stop, server) = start().await;
        let (_socket, _) = tokio_tungstenite::connect_async(echo_request(&address))
            .await
            .expect("handshake succeeds");

        let _ = stop.send(());
        let stopped = tokio::time::timeout(Duration::from_secs(5), server).await;

        assert!(stopped.is_ok(), "the server waited for the open WebSocket");
    }

    #[tokio::test]
    async fn websocket_without_assertion_gets_401() {
        let (address, stop, server) = start().await;
        let url = format!("ws://{address}{}", websocket::ECHO_PATH);

        let refused = tokio_tungstenite::connect_async(url).await;

        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401);
            }
            other => panic!("expected 401, got {other:?}"),
        }
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
