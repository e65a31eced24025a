//! Hostile requests through the wasm filter in workerd, in front of an origin that returns
//! the raw request it received. The origin must never see a client's identity headers,
//! the filter's cookies or an excluded-path trick, and a failed origin gives the 502 page.

use std::time::Duration;

use e2e_tests::flows::sign_in;
use e2e_tests::process::free_port;
use e2e_tests::raw_http::{raw, status};
use e2e_tests::stack::{EdgeOptions, Stack, StackOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const RULES: &str = r#"[{"pattern": "/public/", "action": "exclude"}]"#;

/// Starts an origin that returns each request as it arrived, as the body of a 200. Path
/// `/origin-cookie` also sets `app` and two of the filter's cookies, and `/not-modified`
/// returns 304.
async fn echo_origin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(echo(socket));
        }
    });
    format!("http://127.0.0.1:{port}")
}

async fn echo(mut socket: TcpStream) {
    let request = read_request(&mut socket).await;
    let line = request.lines().next().unwrap_or_default().to_owned();

    let reply = if line.contains("/not-modified") {
        "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n".to_owned()
    } else {
        let cookie = if line.contains("/origin-cookie") {
            "Set-Cookie: app=kept; Path=/\r\nSet-Cookie: cas_edge_session=from-origin; Path=/\r\nSet-Cookie: cas_edge_redirects=9\r\n"
        } else {
            ""
        };
        let body = if line.starts_with("HEAD ") {
            ""
        } else {
            &request
        };
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{cookie}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            request.len()
        )
    };
    let _ = socket.write_all(reply.as_bytes()).await;
}

/// Reads one request: the head, then a body of `Content-Length` bytes or a chunked body.
async fn read_request(socket: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut buffer)).await;
        let Ok(Ok(count)) = read else { break };
        if count == 0 {
            break;
        }
        data.extend_from_slice(&buffer[..count]);
        if request_complete(&data) {
            break;
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

fn request_complete(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let head = head.to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with("0\r\n\r\n");
    }
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

/// Returns the header lines of the request the origin echoed, lowercased.
fn echoed_headers(response: &str) -> Vec<String> {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let head = body.split_once("\r\n\r\n").map_or(body, |(head, _)| head);
    head.lines().skip(1).map(str::to_ascii_lowercase).collect()
}

/// Returns the request line the origin echoed.
fn echoed_request_line(response: &str) -> String {
    let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    body.lines().next().unwrap_or_default().to_owned()
}

/// Returns the echoed header lines whose name is a filter header name in any case, with
/// `_` for `-`.
fn filter_header_lines(response: &str) -> Vec<String> {
    echoed_headers(response)
        .into_iter()
        .filter(|line| line.replace('_', "-").starts_with("x-cas-"))
        .collect()
}

async fn start() -> (Stack, String, String) {
    let mut stack = Stack::start(StackOptions::default()).await;
    let origin = echo_origin().await;
    let edge = stack
        .start_edge(EdgeOptions {
            vars: vec![
                ("ORIGIN_URL", origin.clone()),
                ("PATH_RULES", RULES.to_owned()),
                ("SESSION_IDLE_SECONDS", "10".to_owned()),
            ],
            ..Default::default()
        })
        .await;
    (stack, edge, origin)
}

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
    let value = browser
        .cookie(edge, "cas_edge_session")
        .unwrap_or_else(|| panic!("no session cookie"));
    format!("cas_edge_session={value}")
}

/// Client copies of the filter's headers; every value contains `spoofed`.
const SPOOFED: &str = "X-CAS-User: spoofed-admin\r\nx-cas-user: spoofed-root\r\nX_CAS_USER: spoofed-under\r\nx-Cas_User: spoofed-mixed\r\nX-CAS-Assertion: spoofed.forged.jwt\r\nX-CAS-User:\r\nX-CAS-User:   spoofed-padded   \r\nX-CAS-Attr-memberOf: spoofed-admin\r\nX-CAS-Attr-: spoofed-empty\r\nX-CAS-Attr-member_5Fof: spoofed-admin\r\nX_CAS_Attr_mail: spoofed@evil\r\nX-Cas-Attr-%41: spoofed-odd\r\nx-cas-user-0: spoofed-0";

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_identity_headers_are_removed() {
    let (stack, edge, _origin) = start().await;
    let session = session_pair(&stack, &edge).await;
    let many: Vec<String> = (0..150)
        .map(|n| format!("X-CAS-User-{n}: spoofed-{n}"))
        .collect();
    let many = many.join("\r\n");

    let protected = raw(
        &edge,
        &format!("GET /private HTTP/1.1\r\nCookie: {session}\r\n{SPOOFED}\r\n{many}"),
        "",
    )
    .await;
    assert_eq!(status(&protected), 200, "{protected}");
    let lines = filter_header_lines(&protected);
    let users: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("x-cas-user"))
        .collect();
    assert_eq!(users, vec!["x-cas-user: alice"], "{protected}");
    let spoofed: Vec<&String> = lines
        .iter()
        .filter(|line| !line.starts_with("x-cas-assertion:") && line.contains("spoofed"))
        .collect();
    assert!(spoofed.is_empty(), "{spoofed:?}");
    assert_eq!(
        lines
            .iter()
            .filter(|line| line.starts_with("x-cas-assertion:"))
            .count(),
        1,
        "{lines:?}"
    );

    let excluded = raw(
        &edge,
        &format!("GET /public/x HTTP/1.1\r\nCookie: {session}\r\n{SPOOFED}\r\n{many}"),
        "",
    )
    .await;
    assert_eq!(status(&excluded), 200, "{excluded}");
    assert_eq!(filter_header_lines(&excluded), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn folded_identity_header_is_not_a_header() {
    let (_stack, edge, _origin) = start().await;

    let folded = raw(
        &edge,
        "GET /public/x HTTP/1.1\r\nX-Note: a\r\n X-CAS-User: folded\r\n\tX-CAS-User: tab",
        "",
    )
    .await;

    assert!(
        status(&folded) == 400 || filter_header_lines(&folded).is_empty(),
        "{folded}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filter_cookies_never_reach_origin() {
    let (stack, edge, _origin) = start().await;
    let session = session_pair(&stack, &edge).await;
    let cases = [
        format!("Cookie: a=1; {session}; cas_edge_redirects=3; b=2"),
        format!("Cookie: a=1\r\nCookie: {session}\r\nCookie: cas_edge_gateway=1; b=2"),
        format!("Cookie: a=1;{session};cas_edge_redirects=1"),
        format!("Cookie: {session}\r\nCookie: cas_edge_redirects=2"),
    ];

    for cookies in &cases {
        for path in ["/private", "/public/x"] {
            let response = raw(&edge, &format!("GET {path} HTTP/1.1\r\n{cookies}"), "").await;
            assert_eq!(status(&response), 200, "{path} {cookies}: {response}");
            let echoed = echoed_headers(&response).join("\n");
            assert!(!echoed.contains("cas_edge_"), "{path} {cookies}: {echoed}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_forms_never_reach_origin() {
    let (stack, edge, _origin) = start().await;
    let session = session_pair(&stack, &edge).await;
    let queries = [
        "ticket=ST-1-fake",
        "a=1&ticket=ST-1-fake&b=2",
        "%74icket=ST-1-fake",
        "ticket=ST-1-fake&ticket=ST-2-fake",
        "a=1#ticket=ST-1-fake",
        "a=1&%74icket=ST-1-fake#x",
        "ticket",
    ];

    for query in queries {
        let response = raw(
            &edge,
            &format!("GET /private?{query} HTTP/1.1\r\nCookie: {session}"),
            "",
        )
        .await;
        assert_eq!(status(&response), 200, "{query}: {response}");
        let request_line = echoed_request_line(&response);
        assert!(!request_line.contains("icket"), "{query}: {request_line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn excluded_prefix_tricks_stay_protected() {
    let (_stack, edge, _origin) = start().await;
    let targets = [
        "/public/../private",
        "/public/%2e%2e/private",
        "/public/%2E%2E/private",
        "/public/..%2Fprivate",
        "/public%2F..%2Fprivate",
        "/public/..%5Cprivate",
        "/public/.%2e/private",
        "//public/../private",
        "/public/%252e%252e/private",
        "/public/..;/private",
        "/public/..;x=1/private",
        "http://evil.example/public/../private",
    ];

    for target in targets {
        let response = raw(&edge, &format!("GET {target} HTTP/1.1"), "").await;
        let code = status(&response);
        if code == 302 {
            let location = response
                .lines()
                .find_map(|line| {
                    line.strip_prefix("location: ")
                        .or_else(|| line.strip_prefix("Location: "))
                })
                .unwrap_or_default();
            assert!(
                location.contains("service=http%3A%2F%2F127.0.0.1"),
                "{target}: {location}"
            );
            continue;
        }
        assert!(code == 200 || code == 400, "{target}: {response}");
        if code == 200 {
            let line = echoed_request_line(&response);
            let decoded = percent_encoding::percent_decode_str(&line).decode_utf8_lossy();
            assert!(!decoded.contains("/../"), "{target}: origin saw {line}");
            // Tomcat resolves `..;x` like `..`.
            assert!(!decoded.contains("/..;"), "{target}: origin saw {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn host_header_does_not_change_service() {
    let (_stack, edge, _origin) = start().await;
    let heads = [
        "GET /private HTTP/1.1\r\nX-Forwarded-Host: evil.example".to_owned(),
        "GET http://evil.example/private HTTP/1.1".to_owned(),
        "GET //evil.example/private HTTP/1.1".to_owned(),
    ];

    for head in heads {
        let response = raw(&edge, &head, "").await;
        assert_eq!(status(&response), 302, "{head}: {response}");
        let location = response
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with("location:"))
            .unwrap_or_default()
            .to_owned();
        let expected = format!(
            "service={}%2F",
            edge.replace(':', "%3A").replace('/', "%2F")
        );
        assert!(location.contains(&expected), "{head}: {location}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_and_bodies_pass_through() {
    let (stack, edge, _origin) = start().await;
    let session = session_pair(&stack, &edge).await;

    for path in ["/private", "/public/x"] {
        let post = raw(
            &edge,
            &format!("POST {path} HTTP/1.1\r\nCookie: {session}\r\nContent-Type: text/plain\r\nContent-Length: 11"),
            "hello world",
        )
        .await;
        assert_eq!(status(&post), 200, "{path}: {post}");
        assert!(post.contains("POST "), "{path}: {post}");
        assert!(post.ends_with("hello world"), "{path}: {post}");

        let head = raw(
            &edge,
            &format!("HEAD {path} HTTP/1.1\r\nCookie: {session}"),
            "",
        )
        .await;
        assert_eq!(status(&head), 200, "{path}: {head}");

        let options = raw(
            &edge,
            &format!("OPTIONS {path} HTTP/1.1\r\nCookie: {session}"),
            "",
        )
        .await;
        assert_eq!(status(&options), 200, "{path}: {options}");
        assert!(options.contains("OPTIONS "), "{path}: {options}");

        let get_body = raw(
            &edge,
            &format!("GET {path} HTTP/1.1\r\nCookie: {session}\r\nContent-Length: 4"),
            "body",
        )
        .await;
        assert_eq!(status(&get_body), 200, "{path}: {get_body}");
        assert!(get_body.contains("GET "), "{path}: {get_body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshed_cookie_on_not_modified() {
    let (stack, edge, _origin) = start().await;
    let session = session_pair(&stack, &edge).await;
    // The filter refreshes a session idle for more than half of SESSION_IDLE_SECONDS
    // (10 s), counted in whole seconds. After 6.5 s the session is due for a refresh,
    // and a loaded machine still has 2.5 s before the session ends.
    tokio::time::sleep(Duration::from_millis(6500)).await;

    let response = raw(
        &edge,
        &format!("GET /private/not-modified HTTP/1.1\r\nCookie: {session}"),
        "",
    )
    .await;

    assert_eq!(status(&response), 304, "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("set-cookie: cas_edge_session="),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_cannot_set_filter_cookies() {
    let (stack, edge, _origin) = start().await;
    let session = session_pair(&stack, &edge).await;

    for path in ["/private/origin-cookie", "/public/origin-cookie"] {
        let response = raw(
            &edge,
            &format!("GET {path} HTTP/1.1\r\nCookie: {session}"),
            "",
        )
        .await;
        assert_eq!(status(&response), 200, "{path}: {response}");
        let head = response
            .split_once("\r\n\r\n")
            .map_or("", |(head, _)| head)
            .to_ascii_lowercase();
        assert!(!head.contains("from-origin"), "{path}: {head}");
        assert!(!head.contains("cas_edge_redirects=9"), "{path}: {head}");
        assert!(
            head.contains("set-cookie: app=kept; path=/"),
            "{path}: {head}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_down_gives_bad_gateway() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack
        .start_edge(EdgeOptions {
            vars: vec![
                ("ORIGIN_URL", format!("http://127.0.0.1:{}", free_port())),
                ("PATH_RULES", RULES.to_owned()),
            ],
            ..Default::default()
        })
        .await;
    let session = session_pair(&stack, &edge).await;

    for (method, path, body) in [
        ("GET", "/private", ""),
        ("POST", "/private", "data"),
        ("GET", "/public/x", ""),
        ("POST", "/public/x", "data"),
    ] {
        let response = raw(
            &edge,
            &format!(
                "{method} {path} HTTP/1.1\r\nCookie: {session}\r\nContent-Length: {}",
                body.len()
            ),
            body,
        )
        .await;
        assert_eq!(status(&response), 502, "{method} {path}: {response}");
    }

    // The 502 page comes from the fetch error handler, which gets the page language
    // through the forwarding context.
    for (path, cookie) in [("/private", session.as_str()), ("/public/x", "a=1")] {
        let response = raw(
            &edge,
            &format!("GET {path} HTTP/1.1\r\nCookie: {cookie}\r\nAccept-Language: zh-CN"),
            "",
        )
        .await;
        assert_eq!(status(&response), 502, "{path}: {response}");
        assert!(
            response
                .to_ascii_lowercase()
                .contains("content-language: zh-cn"),
            "{path}: {response}"
        );
    }
}
