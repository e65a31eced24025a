//! The demo origin's WebSocket echo endpoint. After a handshake with a valid identity
//! assertion it sends one text message that names the verified user and every
//! `X-CAS-User` value it received, then echoes each text and binary message.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::handler::{header_values, plain_response, respond, verify_request, USER_HEADER};
use crate::Verifier;

/// Path of the echo endpoint. A request there without `Upgrade: websocket` gets the
/// ordinary page.
pub const ECHO_PATH: &str = "/ws/echo";

/// The only WebSocket protocol version (RFC 6455).
const WEBSOCKET_VERSION: &str = "13";

/// Returns whether `request` is a WebSocket handshake at [`ECHO_PATH`].
pub fn is_echo_upgrade<B>(request: &Request<B>) -> bool {
    request.uri().path() == ECHO_PATH && asks_for_websocket(request.headers())
}

/// Builds the response to a WebSocket handshake at [`ECHO_PATH`] at `now` (seconds since the Unix
/// epoch). Without a valid assertion it returns the same 401 page as any protected path,
/// and 400 for a handshake that is not RFC 6455 version 13. Otherwise it returns 101 and
/// starts the echo task, which runs once hyper hands over the connection.
pub fn accept<B>(verifier: &Verifier, mut request: Request<B>, now: u64) -> Response<Full<Bytes>> {
    let identity = match verify_request(verifier, request.headers(), now) {
        Ok(identity) => identity,
        Err(_) => return respond(verifier, &request.into_parts().0, now),
    };
    let Some(accept_key) = accept_key(request.headers()) else {
        tracing::info!(user = %identity.user, "rejected an invalid WebSocket handshake");
        return bad_handshake();
    };

    let first_message = greeting(
        &identity.user,
        &header_values(request.headers(), USER_HEADER),
    );
    let upgrade = hyper::upgrade::on(&mut request);
    tracing::info!(path = ECHO_PATH, user = %identity.user, "opening a verified WebSocket");
    tokio::spawn(echo(upgrade, first_message));
    switching_protocols(&accept_key)
}

/// Returns whether the `Upgrade` header names `websocket`, compared case-insensitively.
fn asks_for_websocket(headers: &HeaderMap) -> bool {
    headers
        .get_all(UPGRADE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim().eq_ignore_ascii_case("websocket"))
}

/// Returns the `Sec-WebSocket-Accept` value of a version 13 handshake, or `None` when
/// `Sec-WebSocket-Key` is missing or `Sec-WebSocket-Version` is missing or another one.
fn accept_key(headers: &HeaderMap) -> Option<String> {
    let version = headers.get(SEC_WEBSOCKET_VERSION)?;
    if version.as_bytes() != WEBSOCKET_VERSION.as_bytes() {
        return None;
    }
    let key = headers.get(SEC_WEBSOCKET_KEY)?;
    Some(derive_accept_key(key.as_bytes()))
}

/// Builds the first message: a `user=` line with the verified user, then one
/// `x-cas-user=` line for each `X-CAS-User` value received, so a test can see that the
/// edge sent exactly one.
fn greeting(user: &str, user_headers: &[String]) -> String {
    let mut lines = format!("user={user}\n");
    for value in user_headers {
        lines.push_str(&format!("{USER_HEADER}={value}\n"));
    }
    lines
}

/// Sends `first_message` and then echoes every text and binary message until the client
/// closes the socket. tungstenite itself replies to ping and close frames.
async fn echo(upgrade: OnUpgrade, first_message: String) {
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::warn!(%error, "WebSocket upgrade failed");
            return;
        }
    };
    let mut socket =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;

    if let Err(error) = socket.send(Message::text(first_message)).await {
        tracing::debug!(%error, "sending the first WebSocket message failed");
        return;
    }
    while let Some(received) = socket.next().await {
        let message = match received {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "WebSocket connection ended with an error");
                return;
            }
        };
        if !(message.is_text() || message.is_binary()) {
            continue;
        }
        if let Err(error) = socket.send(message).await {
            tracing::debug!(%error, "echoing a WebSocket message failed");
            return;
        }
    }
}

fn switching_protocols(accept_key: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;

    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(accept_key) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

fn bad_handshake() -> Response<Full<Bytes>> {
    plain_response(
        StatusCode::BAD_REQUEST,
        "invalid WebSocket handshake: send Sec-WebSocket-Key and Sec-WebSocket-Version: 13\n",
    )
}

#[cfg(test)]
mod tests {
    use cas_core::assertion::{sign_assertion, IdentityClaims};
    use cas_core::signing::{KeyRing, SigningKey};

    use super::*;

    const AUDIENCE: &str = "http://127.0.0.1:8080";
    const NOW: u64 = 1_800_000_000;

    /// The example key of RFC 6455, section 1.3.
    const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn key() -> SigningKey {
        SigningKey::from_secret(&"k".repeat(40)).expect("long enough")
    }

    fn verifier() -> Verifier {
        Verifier::new(KeyRing::new(key(), None), AUDIENCE)
    }

    fn assertion(user: &str) -> String {
        let claims = IdentityClaims {
            iss: "cas-edge-filter".into(),
            aud: AUDIENCE.into(),
            sub: user.into(),
            iat: NOW,
            exp: NOW + 60,
            attributes: Default::default(),
        };
        sign_assertion(&key(), &claims)
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("valid request")
    }

    fn handshake<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut headers = vec![
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", SAMPLE_KEY),
        ];
        headers.extend_from_slice(extra);
        headers
    }

    #[test]
    fn echo_upgrade_needs_path_and_header() {
        assert!(is_echo_upgrade(&request(ECHO_PATH, &handshake(&[]))));
        assert!(is_echo_upgrade(&request(
            ECHO_PATH,
            &[("Upgrade", "h2c, WebSocket")]
        )));
        assert!(!is_echo_upgrade(&request(ECHO_PATH, &[])));
        assert!(!is_echo_upgrade(&request(ECHO_PATH, &[("Upgrade", "h2c")])));
        assert!(!is_echo_upgrade(&request("/ws/other", &handshake(&[]))));
    }

    #[test]
    fn accept_key_follows_rfc_example() {
        let parts = request(ECHO_PATH, &handshake(&[]));

        assert_eq!(
            accept_key(parts.headers()).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }

    #[test]
    fn accept_key_needs_version_13() {
        let old = request(
            ECHO_PATH,
            &[
                ("Sec-WebSocket-Version", "8"),
                ("Sec-WebSocket-Key", SAMPLE_KEY),
            ],
        );
        let no_key = request(ECHO_PATH, &[("Sec-WebSocket-Version", "13")]);

        assert_eq!(accept_key(old.headers()), None);
        assert_eq!(accept_key(no_key.headers()), None);
    }

    #[test]
    fn greeting_lists_received_user_headers() {
        let received = vec!["alice".to_owned(), "admin".to_owned()];

        assert_eq!(
            greeting("alice", &received),
            "user=alice\nx-cas-user=alice\nx-cas-user=admin\n"
        );
        assert_eq!(greeting("alice", &[]), "user=alice\n");
    }

    #[tokio::test]
    async fn handshake_without_assertion_is_unauthorized() {
        let forged = handshake(&[("X-CAS-User", "admin")]);

        let response = accept(&verifier(), request(ECHO_PATH, &forged), NOW);

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn verified_handshake_switches_protocols() {
        let token = assertion("alice");
        let headers = handshake(&[("X-CAS-Assertion", token.as_str())]);

        let response = accept(&verifier(), request(ECHO_PATH, &headers), NOW);

        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers()[SEC_WEBSOCKET_ACCEPT],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(response.headers()[UPGRADE], "websocket");
    }

    #[tokio::test]
    async fn invalid_handshake_is_bad_request() {
        let token = assertion("alice");
        let headers = [
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "8"),
            ("X-CAS-Assertion", token.as_str()),
        ];

        let response = accept(&verifier(), request(ECHO_PATH, &headers), NOW);

        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
}
