//! Browser flows shared by the end-to-end tests: signing in through CAS and following
//! the redirects back to the edge.

use crate::browser::{form_input, Browser, Page};

/// The test user that [`crate::stack::Stack::start`] creates.
pub const USER: &str = "alice";

/// The password of [`USER`].
pub const PASSWORD: &str = "alice-password";

/// The steps of one sign-in, for tests that inspect them.
pub struct SignIn {
    /// The URL with the ticket that CAS redirected to.
    pub ticket_url: String,
    /// The edge's response to the ticket URL.
    pub validated: Page,
}

/// Opens `url`, which must redirect to CAS, and signs in there with the form unless a CAS
/// session signs in without it. Returns the edge's response to the ticket.
pub async fn sign_in(browser: &mut Browser, cas: &str, url: &str) -> SignIn {
    let first = browser.get(url, &[]).await;
    assert_eq!(
        first.status.as_u16(),
        302,
        "{url} must redirect: {}",
        first.body
    );
    let login = first.location();
    assert!(
        login.starts_with(&format!("{cas}/login?")),
        "not a CAS login: {login}"
    );

    let mut at_cas = browser.get(&login, &[]).await;
    if at_cas.status.as_u16() == 200 {
        at_cas = submit_form(browser, cas, &at_cas, &login).await;
    }
    assert!(
        matches!(at_cas.status.as_u16(), 302 | 303),
        "CAS must redirect to the service: {}",
        at_cas.body
    );

    let ticket_url = at_cas.location();
    assert!(
        ticket_url.contains("ticket=ST-"),
        "no ticket in {ticket_url}"
    );
    let validated = browser.get(&ticket_url, &[]).await;
    SignIn {
        ticket_url,
        validated,
    }
}

/// Signs in at `url` and follows the edge's redirect back to it. Returns the final page.
pub async fn open_signed_in(browser: &mut Browser, cas: &str, url: &str) -> Page {
    let signed_in = sign_in(browser, cas, url).await;
    assert_eq!(
        signed_in.validated.status.as_u16(),
        302,
        "ticket must validate: {}",
        signed_in.validated.body
    );
    browser.get(&signed_in.validated.location(), &[]).await
}

async fn submit_form(browser: &mut Browser, cas: &str, form: &Page, login_url: &str) -> Page {
    let login_token =
        form_input(&form.body, "lt").unwrap_or_else(|| panic!("no login token in {}", form.body));
    let service = service_of(login_url);
    let fields = [
        ("username", USER),
        ("password", PASSWORD),
        ("lt", login_token.as_str()),
        ("service", service.as_str()),
    ];
    browser.post_form(&format!("{cas}/login"), &fields).await
}

/// Returns the decoded `service` parameter of a CAS login URL.
pub fn service_of(login_url: &str) -> String {
    let query = login_url.split_once('?').map_or("", |(_, query)| query);
    let encoded = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("service="))
        .unwrap_or_else(|| panic!("no service in {login_url}"));
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8_lossy()
        .into_owned()
}

/// Returns the `name=value` pair of a `Set-Cookie` header value.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}
