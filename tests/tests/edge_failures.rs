//! CAS failures seen by the wasm filter in workerd: nothing listening, a server that sends
//! garbage, one that never responds. Each must give the 502 page, set no session and
//! log the cause without the ticket. Also the endpoint choice through `CAS_BASE_URL`.

use std::time::Duration;

use e2e_tests::flows::{open_signed_in, sign_in};
use e2e_tests::process::free_port;
use e2e_tests::stack::{EdgeOptions, Stack, StackOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a fake validation server behaves.
#[derive(Clone, Copy)]
enum Fake {
    /// Returns 200 with a body that is not a CAS response.
    Garbage,
    /// Accepts the connection and never responds.
    Silent,
}

/// Starts a fake validation server on a loopback port and returns its URL.
async fn fake_cas(kind: Fake) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                match kind {
                    Fake::Garbage => {
                        let body = "<html>maintenance \u{0}\u{1}</html";
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(reply.as_bytes()).await;
                    }
                    Fake::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    format!("http://127.0.0.1:{port}/cas/p3/serviceValidate")
}

#[tokio::test(flavor = "multi_thread")]
async fn cas_failures_are_bad_gateway() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let cases = [
        (
            "refused",
            "subrequest to CAS failed",
            format!("http://127.0.0.1:{}/cas/p3/serviceValidate", free_port()),
        ),
        (
            "garbage",
            "CAS response is unusable",
            fake_cas(Fake::Garbage).await,
        ),
        (
            "timeout",
            "CAS did not answer in time",
            fake_cas(Fake::Silent).await,
        ),
    ];

    let mut browser = stack.browser();
    for (name, cause, validate_url) in cases {
        let edge = stack
            .start_edge(EdgeOptions {
                vars: vec![
                    ("CAS_VALIDATE_URL", validate_url),
                    ("CAS_TIMEOUT_MS", "1500".to_owned()),
                ],
                ..Default::default()
            })
            .await;

        let signed_in = sign_in(&mut browser, &stack.cas, &format!("{edge}/{name}")).await;
        let page = signed_in.validated;
        assert_eq!(page.status.as_u16(), 502, "{name}: {}", page.body);
        assert!(
            page.body.contains("Sign-in service unavailable"),
            "{name}: {}",
            page.body
        );
        assert!(page.set_cookie("cas_edge_session").is_none(), "{name}");

        let (_, ticket) = signed_in
            .ticket_url
            .split_once("ticket=")
            .unwrap_or_default();
        let logs = stack.wait_for_edge_log(cause).await;
        assert!(logs.contains(cause), "{name}: {logs}");
        let filter_lines: Vec<&str> = logs.lines().filter(|l| l.contains("validation")).collect();
        assert!(
            filter_lines.iter().all(|line| !line.contains(ticket)),
            "{name}: ticket in log: {filter_lines:?}"
        );
    }

    let logs = stack.edge_logs();
    assert!(
        !logs.contains("cas_edge_session="),
        "a cookie reached the log"
    );
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn base_url_selects_endpoint() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack
        .start_edge(EdgeOptions {
            vars: vec![
                ("CAS_LOGIN_URL", String::new()),
                ("CAS_VALIDATE_URL", String::new()),
                ("CAS_BASE_URL", stack.cas.clone()),
                ("CAS_VALIDATION_ENDPOINT", "serviceValidate".to_owned()),
            ],
            ..Default::default()
        })
        .await;
    let mut browser = stack.browser();

    let page = open_signed_in(&mut browser, &stack.cas, &format!("{edge}/v2")).await;

    assert_eq!(page.status.as_u16(), 200, "{}", page.body);
    assert!(
        page.body.contains(r#"<strong id="user">alice</strong>"#),
        "{}",
        page.body
    );
    // CAS 2.0 validation releases no attributes.
    assert!(
        page.body.contains(r#"<ul id="attribute-headers"></ul>"#),
        "{}",
        page.body
    );
    stack.assert_running();
}

/// Starts an edge with `options` and checks that its configuration error page names
/// `setting`.
async fn assert_misconfigured(options: EdgeOptions, setting: &str) {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack.start_edge(options).await;
    let mut browser = stack.browser();

    let page = browser.get(&format!("{edge}/"), &[]).await;

    assert_eq!(page.status.as_u16(), 500, "{}", page.body);
    assert!(
        page.body.contains(&format!("<code>{setting}</code>")),
        "{}",
        page.body
    );
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_setting_names_itself() {
    let options = EdgeOptions {
        vars: vec![(
            "PATH_RULES",
            r#"[{"pattern": "/", "match": "fuzzy"}]"#.to_owned(),
        )],
        ..Default::default()
    };

    assert_misconfigured(options, "PATH_RULES").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_revocation_store_is_named() {
    let options = EdgeOptions {
        without_revocations_kv: true,
        ..Default::default()
    };

    assert_misconfigured(options, "CAS_REVOCATIONS").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn revocation_store_optional_without_slo() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack
        .start_edge(EdgeOptions {
            vars: vec![("SLO_PATH", "off".to_owned())],
            without_revocations_kv: true,
            ..Default::default()
        })
        .await;
    let mut browser = stack.browser();

    let page = open_signed_in(&mut browser, &stack.cas, &format!("{edge}/page")).await;

    assert_eq!(page.status.as_u16(), 200, "{}", page.body);
    assert!(page.body.contains("id=\"user\">alice"), "{}", page.body);
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_validate_endpoints_sign_in() {
    let mut stack = Stack::start(StackOptions::default()).await;

    for endpoint in ["proxyValidate", "p3/proxyValidate"] {
        let edge = stack
            .start_edge(EdgeOptions {
                vars: vec![
                    ("CAS_LOGIN_URL", String::new()),
                    ("CAS_VALIDATE_URL", String::new()),
                    ("CAS_BASE_URL", stack.cas.clone()),
                    ("CAS_VALIDATION_ENDPOINT", endpoint.to_owned()),
                ],
                ..Default::default()
            })
            .await;
        let mut browser = stack.browser();

        let page = open_signed_in(&mut browser, &stack.cas, &format!("{edge}/proxied")).await;

        assert_eq!(page.status.as_u16(), 200, "{endpoint}: {}", page.body);
        assert!(
            page.body.contains(r#"<strong id="user">alice</strong>"#),
            "{endpoint}: {}",
            page.body
        );
    }
    stack.assert_running();
}
