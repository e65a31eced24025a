//! HTTP/1.1 requests written byte for byte onto a TCP connection, for targets and
//! headers that an HTTP client library would normalize or reject.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` (request line and headers, without the closing empty line) and `body` to
/// `base_url` over one connection and returns the whole response. `Host` and
/// `Connection: close` are added after `head`.
pub async fn raw(base_url: &str, head: &str, body: &str) -> String {
    let address = base_url.trim_start_matches("http://");
    let mut socket = TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request = format!("{head}\r\nHost: {address}\r\nConnection: close\r\n\r\n{body}");
    socket
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Returns the status code of a raw `response`, or 0 when it has no status line.
pub fn status(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}
