//! WebSocket upgrades through the wasm filter in workerd to the demo origin's echo
//! endpoint, which requires a valid identity assertion and whose first message names
//! the verified user and every `X-CAS-User` value the origin received.

use std::time::Duration;

use e2e_tests::flows::{cookie_pair, sign_in, USER};
use e2e_tests::stack::{EdgeOptions, Stack, StackOptions};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, Response};
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The demo origin's WebSocket echo endpoint.
const ECHO_PATH: &str = "/ws/echo";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Handshake = Response<Option<Vec<u8>>>;

/// Signs in at `edge` and returns the `Cookie` pair of the session.
async fn session_pair(stack: &Stack, edge: &str) -> String {
    let mut browser = stack.browser();
    let signed_in = sign_in(&mut browser, &stack.cas, &format!("{edge}/private")).await;
    assert_eq!(
        signed_in.validated.status.as_u16(),
        302,
        "{}",
        signed_in.validated.body
    );
    let cookie = signed_in
        .validated
        .set_cookie("cas_edge_session")
        .unwrap_or_else(|| panic!("no session cookie"));
    cookie_pair(&cookie)
}

/// Opens a WebSocket to the echo endpoint through `edge` with `headers` added to the
/// handshake request.
async fn connect(
    edge: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Socket, Handshake), Error> {
    let url = format!("{}{ECHO_PATH}", edge.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap_or_else(|e| panic!("{e}"));
    for (name, value) in headers {
        let value = HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}"));
        request
            .headers_mut()
            .append(HeaderName::from_static(name), value);
    }
    let connected = tokio_tungstenite::connect_async(request).await?;
    Ok(connected)
}

/// Returns the HTTP response of a handshake that must fail, or panics when the socket
/// opened or the connection failed.
fn refusal(connected: Result<(Socket, Handshake), Error>) -> Handshake {
    match connected {
        Err(Error::Http(response)) => *response,
        Err(other) => panic!("expected an HTTP response, got {other}"),
        Ok((_, response)) => panic!("upgraded although it should not: {response:?}"),
    }
}

/// Returns the next message, failing after 10 s.
async fn next_message(socket: &mut Socket) -> Message {
    let next = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
    next.unwrap_or_else(|_| panic!("no message within 10 s"))
        .unwrap_or_else(|| panic!("socket closed"))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Returns the next message, which must be text.
async fn next_text(socket: &mut Socket) -> String {
    match next_message(socket).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Returns the echo endpoint's first message when the origin received exactly one
/// `X-CAS-User`, the filter's.
fn expected_greeting() -> String {
    format!("user={USER}\nx-cas-user={USER}\n")
}

/// Sends a text and a binary message and checks that both come back unchanged.
async fn assert_echoes(socket: &mut Socket) {
    socket
        .send(Message::text("hello through the edge"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(next_text(socket).await, "hello through the edge");

    let bytes = vec![0u8, 1, 2, 255];
    socket
        .send(Message::binary(bytes.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    match next_message(socket).await {
        Message::Binary(data) => assert_eq!(data.to_vec(), bytes),
        other => panic!("expected the binary echo, got {other:?}"),
    }
}

/// Returns the `Set-Cookie` value for `name` of a handshake response.
fn set_cookie(response: &Handshake, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread")]
async fn session_upgrade_reaches_origin() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack.edge.clone();
    let session = session_pair(&stack, &edge).await;

    let (mut socket, response) = connect(&edge, &[("cookie", &session)])
        .await
        .unwrap_or_else(|e| panic!("handshake failed: {e}"));

    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(set_cookie(&response, "cas_edge_session"), None);
    assert_eq!(next_text(&mut socket).await, expected_greeting());
    assert_echoes(&mut socket).await;
    socket.close(None).await.unwrap_or_else(|e| panic!("{e}"));
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_headers_do_not_reach_socket() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack.edge.clone();
    let session = session_pair(&stack, &edge).await;
    let spoofed = [
        ("cookie", session.as_str()),
        ("x-cas-user", "spoofed-admin"),
        ("x_cas_user", "spoofed-under"),
        ("x-cas-assertion", "spoofed.forged.jwt"),
        ("x-cas-attr-memberof", "spoofed-admin"),
    ];

    let (mut socket, response) = connect(&edge, &spoofed)
        .await
        .unwrap_or_else(|e| panic!("handshake failed: {e}"));

    assert_eq!(response.status().as_u16(), 101);
    let greeting = next_text(&mut socket).await;
    assert!(!greeting.contains("spoofed"), "{greeting}");
    assert_eq!(greeting, expected_greeting());
    assert_echoes(&mut socket).await;

    // Without a session the spoofed headers get no further than the filter.
    let refused = refusal(connect(&edge, &spoofed[1..]).await);
    assert_eq!(refused.status().as_u16(), 401);
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_without_session_gets_401() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack.edge.clone();

    for headers in [
        vec![],
        vec![("cookie", "cas_edge_session=forged; app=1")],
        vec![("sec-fetch-mode", "websocket")],
    ] {
        let refused = connect(&edge, &headers).await;

        let response = refusal(refused);
        assert_eq!(response.status().as_u16(), 401, "{headers:?}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("CAS realm="),
            "{headers:?}: {challenge}"
        );
        assert_eq!(
            set_cookie(&response, "cas_edge_redirects"),
            None,
            "{headers:?}"
        );
    }
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshed_session_cookie_comes_with_101() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack
        .start_edge(EdgeOptions {
            vars: vec![("SESSION_IDLE_SECONDS", "10".to_owned())],
            ..Default::default()
        })
        .await;
    let session = session_pair(&stack, &edge).await;
    // The filter refreshes a session idle for more than half of SESSION_IDLE_SECONDS
    // (10 s), counted in whole seconds. After 6.5 s the session is due for a refresh,
    // and a loaded machine still has 2.5 s before the session ends.
    tokio::time::sleep(Duration::from_millis(6500)).await;

    let (mut socket, response) = connect(&edge, &[("cookie", &session)])
        .await
        .unwrap_or_else(|e| panic!("handshake failed: {e}"));

    assert_eq!(response.status().as_u16(), 101);
    let refreshed = set_cookie(&response, "cas_edge_session")
        .unwrap_or_else(|| panic!("no refreshed cookie on the 101: {response:?}"));
    assert_ne!(cookie_pair(&refreshed), session);
    assert_eq!(next_text(&mut socket).await, expected_greeting());
    assert_echoes(&mut socket).await;
    socket.close(None).await.unwrap_or_else(|e| panic!("{e}"));

    // Past the first cookie's idle window, only the refreshed cookie opens a socket.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let idle = refusal(connect(&edge, &[("cookie", &session)]).await);
    assert_eq!(idle.status().as_u16(), 401);
    let (mut again, response) = connect(&edge, &[("cookie", &cookie_pair(&refreshed))])
        .await
        .unwrap_or_else(|e| panic!("handshake with the refreshed cookie failed: {e}"));
    assert_eq!(response.status().as_u16(), 101);
    assert_eq!(next_text(&mut again).await, expected_greeting());
    assert_echoes(&mut again).await;

    let logs = stack.edge_logs();
    assert!(
        !logs.contains("finishing the origin response failed"),
        "{logs}"
    );
    stack.assert_running();
}
