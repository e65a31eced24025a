//! Sessions of the wasm filter in workerd: single logout through Workers KV, key
//! rotation, idle expiry with refresh, the cookie domain and cookie names.

use std::time::Duration;

use e2e_tests::browser::Browser;
use e2e_tests::flows::{cookie_pair, sign_in, USER};
use e2e_tests::stack::{EdgeOptions, Stack, StackOptions};

fn logout_request(ticket: &str) -> String {
    format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-1" Version="2.0" IssueInstant="2026-12-04T20:00:00Z"><saml:NameID>@NOT_USED@</saml:NameID><samlp:SessionIndex>{ticket}</samlp:SessionIndex></samlp:LogoutRequest>"#
    )
}

fn ticket_of(url: &str) -> String {
    let (_, ticket) = url
        .split_once("ticket=")
        .unwrap_or_else(|| panic!("no ticket in {url}"));
    ticket.to_owned()
}

/// Signs in at `url` and returns the ticket and the session cookie pair.
async fn session_for(browser: &mut Browser, cas: &str, url: &str) -> (String, String) {
    let signed_in = sign_in(browser, cas, url).await;
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
    (ticket_of(&signed_in.ticket_url), cookie_pair(&cookie))
}

#[tokio::test(flavor = "multi_thread")]
async fn single_logout_revokes_session() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let mut browser = stack.browser();
    let edge = stack.edge.clone();
    let protected = format!("{edge}/private/slo");
    let (ticket, cookie) = session_for(&mut browser, &stack.cas, &protected).await;
    // A browser without a cookie jar, so each request carries exactly the cookie given.
    let mut browser = stack.browser();

    let before = browser.get(&protected, &[("Cookie", &cookie)]).await;
    assert_eq!(before.status.as_u16(), 200, "{}", before.body);

    // Hostile or malformed logout requests are rejected with 400, and revoke nothing.
    let mut cas_server = stack.browser();
    let doctype = format!(
        "<!DOCTYPE x [<!ENTITY e \"{ticket}\">]>{}",
        logout_request("&e;")
    );
    for xml in [
        doctype.as_str(),
        "<samlp:LogoutRequest",
        "<other/>",
        "not xml",
    ] {
        let rejected = cas_server
            .post_form(&format!("{edge}/"), &[("logoutRequest", xml)])
            .await;
        assert_eq!(rejected.status.as_u16(), 400, "{xml}: {}", rejected.body);
    }
    let still = browser.get(&protected, &[("Cookie", &cookie)]).await;
    assert_eq!(still.status.as_u16(), 200, "{}", still.body);

    // The CAS back-channel POST revokes the session that ticket started.
    let logout = logout_request(&ticket);
    let revoked = cas_server
        .post_form(&format!("{edge}/any/path"), &[("logoutRequest", &logout)])
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{}", revoked.body);
    let after = browser.get(&protected, &[("Cookie", &cookie)]).await;
    assert_eq!(
        after.status.as_u16(),
        302,
        "revoked cookie must not work: {}",
        after.body
    );
    assert!(after
        .location()
        .starts_with(&format!("{}/login?", stack.cas)));

    let logs = stack
        .wait_for_edge_log("single logout revoked session")
        .await;
    assert!(logs.contains("single logout revoked session"), "{logs}");
    assert!(!logs.contains(&ticket), "a ticket reached the filter log");
    stack.assert_running();
}

/// Two edges of one site share one KV namespace, as Workers in many locations do. A
/// logout request that reaches one edge ends the session on the other once that edge's
/// kept result expires.
#[tokio::test(flavor = "multi_thread")]
async fn single_logout_reaches_every_edge() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let first = stack.edge.clone();
    let second = stack
        .start_edge(EdgeOptions {
            vars: vec![
                ("REVOCATION_CACHE_SECONDS", "2".to_owned()),
                ("SERVICE_BASE_URL", first.clone()),
            ],
            ..Default::default()
        })
        .await;
    let mut browser = stack.browser();
    let (ticket, cookie) = session_for(&mut browser, &stack.cas, &format!("{first}/a")).await;
    let mut browser = stack.browser();
    let on_second = format!("{second}/b");

    let before = browser.get(&on_second, &[("Cookie", &cookie)]).await;
    assert_eq!(before.status.as_u16(), 200, "{}", before.body);

    let revoked = stack
        .browser()
        .post_form(
            &format!("{first}/"),
            &[("logoutRequest", &logout_request(&ticket))],
        )
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{}", revoked.body);
    let on_first = browser
        .get(&format!("{first}/a"), &[("Cookie", &cookie)])
        .await;
    assert_eq!(on_first.status.as_u16(), 302, "{}", on_first.body);

    let mut status = 200;
    for _ in 0..50 {
        status = browser
            .get(&on_second, &[("Cookie", &cookie)])
            .await
            .status
            .as_u16();
        if status != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 302, "the second edge kept the revoked session");
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn dedicated_slo_path_rejects_huge_bodies() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let options = EdgeOptions {
        vars: vec![("SLO_PATH", "/.cas/slo".to_owned())],
        ..Default::default()
    };
    let edge = stack.start_edge(options).await;
    let mut browser = stack.browser();
    let (ticket, cookie) = session_for(&mut browser, &stack.cas, &format!("{edge}/a")).await;
    let mut browser = stack.browser();

    let mut cas_server = stack.browser();
    let huge = logout_request(&"x".repeat(100_000));
    let too_big = cas_server
        .post_form(&format!("{edge}/.cas/slo"), &[("logoutRequest", &huge)])
        .await;
    assert_eq!(too_big.status.as_u16(), 400, "{}", too_big.body);
    let no_field = cas_server
        .post_form(&format!("{edge}/.cas/slo"), &[("a", "1")])
        .await;
    assert_eq!(no_field.status.as_u16(), 400, "{}", no_field.body);

    // Elsewhere a logout request is an ordinary POST: no session, so 401.
    let logout = logout_request(&ticket);
    let elsewhere = cas_server
        .post_form(&format!("{edge}/"), &[("logoutRequest", &logout)])
        .await;
    assert_eq!(elsewhere.status.as_u16(), 401, "{}", elsewhere.body);
    let alive = browser
        .get(&format!("{edge}/a"), &[("Cookie", &cookie)])
        .await;
    assert_eq!(alive.status.as_u16(), 200, "{}", alive.body);

    let revoked = cas_server
        .post_form(&format!("{edge}/.cas/slo"), &[("logoutRequest", &logout)])
        .await;
    assert_eq!(revoked.status.as_u16(), 200, "{}", revoked.body);
    let after = browser
        .get(&format!("{edge}/a"), &[("Cookie", &cookie)])
        .await;
    assert_eq!(after.status.as_u16(), 302, "{}", after.body);
    stack.assert_running();
}

/// Browsers send a host's cookies to all of its ports, and a parent domain's cookies to
/// every subdomain. A second site with the same `SESSION_KEY` still signs its users in
/// through CAS instead of taking the first site's session.
#[tokio::test(flavor = "multi_thread")]
async fn other_site_ignores_session_cookie() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let mut browser = stack.browser();
    let (_, cookie) = session_for(&mut browser, &stack.cas, &format!("{}/a", stack.edge)).await;
    let other_site = stack.start_edge(EdgeOptions::default()).await;

    let mut plain = stack.browser();
    let page = plain
        .get(&format!("{other_site}/a"), &[("Cookie", &cookie)])
        .await;

    assert_eq!(page.status.as_u16(), 302, "{}", page.body);
    let location = page.headers["location"].to_str().unwrap_or_default();
    assert!(
        location.starts_with(&format!("{}/login?service=", stack.cas)),
        "{location}"
    );
    stack.assert_running();
}

/// Two sites on one host receive each other's cookies. With their own
/// `COOKIE_NAME_PREFIX`, signing in at one leaves the other's session in place.
#[tokio::test(flavor = "multi_thread")]
async fn cookie_name_prefix_keeps_sites_apart() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let wiki = stack
        .start_edge(EdgeOptions {
            vars: vec![("COOKIE_NAME_PREFIX", "cas_edge_wiki_".to_owned())],
            ..Default::default()
        })
        .await;
    let mut browser = stack.browser();
    let (_, main_cookie) =
        session_for(&mut browser, &stack.cas, &format!("{}/a", stack.edge)).await;

    let signed_in = sign_in(&mut browser, &stack.cas, &format!("{wiki}/a")).await;
    let validated = &signed_in.validated;
    assert_eq!(validated.status.as_u16(), 302, "{}", validated.body);
    assert!(validated.set_cookie("cas_edge_session").is_none());
    let wiki_cookie = validated
        .set_cookie("cas_edge_wiki_session")
        .unwrap_or_else(|| panic!("no cas_edge_wiki_session cookie"));
    let both = format!("{main_cookie}; {}", cookie_pair(&wiki_cookie));

    for site in [stack.edge.clone(), wiki] {
        let page = browser
            .get(&format!("{site}/a"), &[("Cookie", &both)])
            .await;
        assert_eq!(page.status.as_u16(), 200, "{site}: {}", page.body);
        assert!(
            page.body
                .contains(&format!(r#"<strong id="user">{USER}</strong>"#)),
            "{site}: {}",
            page.body
        );
    }
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_key_accepts_old_cookie() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let mut browser = stack.browser();
    let (_, cookie) = session_for(&mut browser, &stack.cas, &format!("{}/a", stack.edge)).await;

    // The new edges serve the same site, as Workers updated with the new key would.
    let old_key = stack.session_key.clone();
    let site = vec![("SERVICE_BASE_URL", stack.edge.clone())];
    let rotated = stack
        .start_edge(EdgeOptions {
            vars: site.clone(),
            secrets: vec![
                ("SESSION_KEY", "n".repeat(48)),
                ("SESSION_KEY_PREVIOUS", old_key),
            ],
            ..Default::default()
        })
        .await;
    let replaced = stack
        .start_edge(EdgeOptions {
            vars: site,
            secrets: vec![("SESSION_KEY", "n".repeat(48))],
            ..Default::default()
        })
        .await;

    let accepted = browser
        .get(&format!("{rotated}/a"), &[("Cookie", &cookie)])
        .await;
    assert_eq!(accepted.status.as_u16(), 200, "{}", accepted.body);
    assert!(accepted
        .body
        .contains(&format!(r#"<strong id="user">{USER}</strong>"#)));
    let rejected = browser
        .get(&format!("{replaced}/a"), &[("Cookie", &cookie)])
        .await;
    assert_eq!(rejected.status.as_u16(), 302, "{}", rejected.body);
    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_session_expires_unless_refreshed() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let edge = stack
        .start_edge(EdgeOptions {
            vars: vec![
                ("SESSION_IDLE_SECONDS", "6".to_owned()),
                ("SESSION_COOKIE_DOMAIN", "127.0.0.1".to_owned()),
            ],
            ..Default::default()
        })
        .await;
    let mut browser = stack.browser();
    let page = format!("{edge}/idle");
    let (_, first) = session_for(&mut browser, &stack.cas, &page).await;
    // A browser without a cookie jar, so each request carries exactly the cookie given.
    let mut plain = stack.browser();

    // After more than half the idle window the response carries a refreshed cookie. The
    // filter counts whole seconds, so the waits leave a second of margin.
    tokio::time::sleep(Duration::from_millis(4_200)).await;
    let used = plain.get(&page, &[("Cookie", &first)]).await;
    assert_eq!(used.status.as_u16(), 200, "{}", used.body);
    let refreshed = used
        .set_cookie("cas_edge_session")
        .unwrap_or_else(|| panic!("no refresh"));
    assert!(refreshed.contains("; Domain=127.0.0.1;"), "{refreshed}");
    let refreshed = cookie_pair(&refreshed);
    assert_ne!(refreshed, first);

    // Past the idle window of the first cookie, only the refreshed one works.
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    plain.clear_cookies(&edge);
    let stale = plain.get(&page, &[("Cookie", &first)]).await;
    assert_eq!(stale.status.as_u16(), 302, "{}", stale.body);
    plain.clear_cookies(&edge);
    let fresh = plain.get(&page, &[("Cookie", &refreshed)]).await;
    assert_eq!(fresh.status.as_u16(), 200, "{}", fresh.body);
    stack.assert_running();
}
