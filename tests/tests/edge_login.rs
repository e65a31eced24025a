//! A person's path through the edge: protected page, CAS login, ticket validation by the
//! wasm filter in workerd and the origin page. Then single sign-on, forged headers, a
//! replayed ticket and logout.

use e2e_tests::browser::{form_input, Browser, Page};
use e2e_tests::stack::{Stack, StackOptions};

const USER: &str = "alice";
const PASSWORD: &str = "alice-password";

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Follows the edge's redirect to CAS and returns the login page.
async fn open_login_page(browser: &mut Browser, stack: &Stack, protected: &str) -> (Page, String) {
    let first = browser.get(protected, &[]).await;
    assert_eq!(
        first.status.as_u16(),
        302,
        "protected page must redirect: {}",
        first.body
    );

    let login_url = first.location();
    let expected_prefix = format!("{}/login?service=", stack.cas);
    assert!(
        login_url.starts_with(&expected_prefix),
        "unexpected login redirect {login_url}"
    );
    let service = decode(&login_url[expected_prefix.len()..]);
    assert_eq!(
        service, protected,
        "service must be the protected URL, encoded once"
    );

    let form = browser.get(&login_url, &[]).await;
    (form, service)
}

/// Submits the form and returns the redirect to the service, which carries the ticket.
async fn submit_credentials(
    browser: &mut Browser,
    stack: &Stack,
    form: &Page,
    service: &str,
) -> Page {
    let login_token =
        form_input(&form.body, "lt").unwrap_or_else(|| panic!("no login token in {}", form.body));
    let fields = [
        ("username", USER),
        ("password", PASSWORD),
        ("lt", login_token.as_str()),
        ("service", service),
    ];
    browser
        .post_form(&format!("{}/login", stack.cas), &fields)
        .await
}

fn ticket_of(location: &str) -> String {
    let (_, ticket) = location
        .split_once("ticket=")
        .unwrap_or_else(|| panic!("no ticket in {location}"));
    ticket.to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn edge_login_sso_and_logout() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let mut browser = stack.browser();
    browser.accept_language = "zh-CN,zh;q=0.9,en;q=0.5".to_owned();
    let protected = format!("{}/private/report.html?year=2026", stack.edge);

    // Protected page, redirect to CAS, Chinese login form.
    let (form, service) = open_login_page(&mut browser, &stack, &protected).await;
    assert_eq!(form.status.as_u16(), 200);
    assert!(
        form.body.contains("登录"),
        "login page must be Chinese for zh-CN: {}",
        form.body
    );

    // Credentials: TGC set with every flag, redirect to the service with a ticket.
    let redirect = submit_credentials(&mut browser, &stack, &form, &service).await;
    assert!(
        matches!(redirect.status.as_u16(), 302 | 303),
        "login must redirect: {}",
        redirect.body
    );
    let tgc = redirect
        .set_cookie("TGC")
        .unwrap_or_else(|| panic!("no TGC in {:?}", redirect.set_cookies()));
    for flag in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/cas"] {
        assert!(tgc.contains(flag), "TGC lacks {flag}: {tgc}");
    }
    let with_ticket = redirect.location();
    assert!(
        with_ticket.starts_with(&format!("{protected}&ticket=ST-")),
        "bad service redirect {with_ticket}"
    );

    // The filter validates the ticket, sets its session and redirects to the clean URL.
    let validated = browser.get(&with_ticket, &[]).await;
    assert_eq!(
        validated.status.as_u16(),
        302,
        "ticket must be validated: {}",
        validated.body
    );
    assert_eq!(validated.location(), protected);
    let session = validated
        .set_cookie("cas_edge_session")
        .unwrap_or_else(|| panic!("no edge session cookie"));
    for flag in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(
            session.contains(flag),
            "edge session cookie lacks {flag}: {session}"
        );
    }

    // The origin page shows the user, whatever user headers the browser adds.
    let forged = [
        ("X-CAS-User", "admin"),
        ("x-cas-user", "root"),
        ("X-Cas-Assertion", "forged"),
    ];
    let page = browser.get(&protected, &forged).await;
    assert_eq!(page.status.as_u16(), 200, "origin page: {}", page.body);
    assert!(
        page.body.contains(USER),
        "origin page must show the user: {}",
        page.body
    );
    let received = format!(r#"<ul id="user-headers"><li>{USER}</li></ul>"#);
    assert!(
        page.body.contains(&received),
        "origin must receive exactly the edge's X-CAS-User: {}",
        page.body
    );
    assert!(
        !page.body.contains("admin"),
        "forged header reached the origin: {}",
        page.body
    );
    assert!(
        !page.body.contains("root"),
        "forged header reached the origin: {}",
        page.body
    );

    // A second protected site: no edge session yet, but the CAS session signs in without a form.
    browser.clear_cookies(&stack.edge);
    let second = format!("{}/second/index.html", stack.edge);
    let to_cas = browser.get(&second, &[]).await;
    let sso = browser.get(&to_cas.location(), &[]).await;
    assert!(
        matches!(sso.status.as_u16(), 302 | 303),
        "single sign-on must skip the form: {}",
        sso.body
    );
    let back = browser.get(&sso.location(), &[]).await;
    assert_eq!(back.status.as_u16(), 302);
    let second_page = browser.get(&back.location(), &[]).await;
    assert_eq!(second_page.status.as_u16(), 200);
    assert!(second_page.body.contains(USER));

    // Logout ends single sign-on: the next login shows the form again.
    let logout = browser.get(&format!("{}/logout", stack.cas), &[]).await;
    assert_eq!(logout.status.as_u16(), 200);
    assert!(
        logout
            .set_cookie("TGC")
            .is_some_and(|c| c.contains("Max-Age=0")),
        "logout must expire the TGC"
    );
    browser.clear_cookies(&stack.edge);
    let (after_logout, _) = open_login_page(&mut browser, &stack, &protected).await;
    assert_eq!(
        after_logout.status.as_u16(),
        200,
        "after logout the form must show again"
    );
    assert!(form_input(&after_logout.body, "lt").is_some());

    stack.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_headers_and_replay_rejected() {
    let mut stack = Stack::start(StackOptions::default()).await;
    let mut browser = stack.browser();

    // A forged user header alone gets 401 at the origin and a login redirect at the edge.
    let direct = browser
        .get(
            &format!("{}/private", stack.origin),
            &[("X-CAS-User", USER)],
        )
        .await;
    assert_eq!(
        direct.status.as_u16(),
        401,
        "origin must reject unsigned identity: {}",
        direct.body
    );
    let at_edge = browser
        .get(&format!("{}/private", stack.edge), &[("X-CAS-User", USER)])
        .await;
    assert_eq!(
        at_edge.status.as_u16(),
        302,
        "edge must not trust the header: {}",
        at_edge.body
    );

    // A ticket validates once; a replay through the edge never reaches the origin.
    let protected = format!("{}/private", stack.edge);
    let (form, service) = open_login_page(&mut browser, &stack, &protected).await;
    let redirect = submit_credentials(&mut browser, &stack, &form, &service).await;
    let with_ticket = redirect.location();
    let first = browser.get(&with_ticket, &[]).await;
    assert_eq!(first.status.as_u16(), 302);

    let mut other = stack.browser();
    let replay = other.get(&with_ticket, &[]).await;
    assert_eq!(
        replay.status.as_u16(),
        403,
        "replayed ticket must fail: {}",
        replay.body
    );
    assert!(other.cookie(&stack.edge, "cas_edge_session").is_none());

    // The server rejects the used ticket when asked directly too.
    let ticket = ticket_of(&with_ticket);
    let validate = format!(
        "{}/p3/serviceValidate?service={}&ticket={ticket}",
        stack.cas,
        percent_encoding::utf8_percent_encode(&protected, percent_encoding::NON_ALPHANUMERIC)
    );
    let answer = other.get(&validate, &[]).await;
    assert!(
        answer.body.contains(r#"code="INVALID_TICKET""#),
        "replay at the server: {}",
        answer.body
    );

    stack.assert_running();
}
