//! Interoperability with Apache's mod_auth_cas (Debian package libapache2-mod-auth-cas):
//! a private Apache protects a CGI page, the test plays the browser, and mod_auth_cas
//! validates each ticket over its own back channel to the CAS server.

use e2e_tests::apache::{Apache, Validation};
use e2e_tests::browser::Browser;
use e2e_tests::cas_server::{
    CasServer, CasServerOptions, USER_DISPLAY_NAME, USER_GROUPS, USER_MAIL,
};
use e2e_tests::flows::{service_of, sign_in, USER};
use e2e_tests::process::free_port;

/// The name of the session cookie mod_auth_cas sets over plain HTTP.
const SESSION_COOKIE: &str = "MOD_AUTH_CAS";

/// A CAS server that admits every page of one Apache, and that Apache.
struct Fixture {
    server: CasServer,
    apache: Apache,
}

impl Fixture {
    async fn start(validation: Validation, user_attributes: bool) -> Self {
        let port = free_port();
        let services = format!(
            r#"
[[services]]
id = "apache"
name = "Apache with mod_auth_cas"
match = "prefix"
pattern = "http://127.0.0.1:{port}/"
attributes = ["*"]
single_logout = false
"#
        );
        let server = CasServer::start(CasServerOptions {
            services,
            user_attributes,
        })
        .await;
        let apache = Apache::start(port, &server.url, &server.ca_pem, validation).await;
        Self { server, apache }
    }

    fn describe(&self) -> String {
        format!(
            "{}\ncas-server log:\n{}",
            self.apache.logs(),
            self.server.log_tail()
        )
    }

    /// Signs in through mod_auth_cas and returns the protected page's text.
    async fn open_protected_page(&self, browser: &mut Browser) -> String {
        let page = self.apache.protected_page();

        let first = browser.get(&page, &[]).await;
        assert_eq!(first.status.as_u16(), 302, "{}", self.describe());
        let login = first.location();
        assert!(
            login.starts_with(&format!("{}/login?service=", self.server.url)),
            "mod_auth_cas did not redirect to the CAS login: {login}"
        );
        assert_eq!(service_of(&login), page);

        let signed_in = sign_in(browser, &self.server.url, &page).await;
        let validated = signed_in.validated;
        assert_eq!(
            validated.status.as_u16(),
            302,
            "mod_auth_cas rejected the ticket:\n{}",
            self.describe()
        );
        assert_eq!(
            validated.location(),
            page,
            "the redirect must drop the ticket"
        );
        assert!(
            validated.set_cookie(SESSION_COOKIE).is_some(),
            "no {SESSION_COOKIE} cookie in {:?}",
            validated.headers
        );

        let protected = browser.get(&page, &[]).await;
        assert_eq!(protected.status.as_u16(), 200, "{}", self.describe());
        protected.body
    }
}

fn assert_line(body: &str, expected: &str) {
    assert!(
        body.lines().any(|line| line == expected),
        "no line {expected:?} in the protected page:\n{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apache_cas2_login_shows_user() {
    let fixture = Fixture::start(Validation::ServiceValidate, false).await;
    let mut browser = Browser::new(&fixture.server.ca_pem);

    let body = fixture.open_protected_page(&mut browser).await;

    assert_line(&body, &format!("REMOTE_USER={USER}"));
    assert_line(&body, &format!("HTTP_CAS_USER={USER}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn apache_p3_authentication_attributes() {
    let fixture = Fixture::start(Validation::P3ServiceValidate, false).await;
    let mut browser = Browser::new(&fixture.server.ca_pem);

    let body = fixture.open_protected_page(&mut browser).await;

    assert_line(&body, &format!("REMOTE_USER={USER}"));
    assert_line(&body, "HTTP_CAS_ISFROMNEWLOGIN=true");
    assert_line(
        &body,
        "HTTP_CAS_LONGTERMAUTHENTICATIONREQUESTTOKENUSED=false",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apache_saml_user_attributes() {
    let fixture = Fixture::start(Validation::Saml, true).await;
    let mut browser = Browser::new(&fixture.server.ca_pem);

    let body = fixture.open_protected_page(&mut browser).await;

    assert_line(&body, &format!("REMOTE_USER={USER}"));
    assert_line(&body, &format!("HTTP_CAS_USER={USER}"));
    assert_line(&body, &format!("HTTP_CAS_MAIL={USER_MAIL}"));
    assert_line(&body, &format!("HTTP_CAS_DISPLAYNAME={USER_DISPLAY_NAME}"));
    assert_line(
        &body,
        &format!("HTTP_CAS_MEMBEROF={}", USER_GROUPS.join(",")),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apache_forged_ticket_denied() {
    let fixture = Fixture::start(Validation::ServiceValidate, false).await;
    let mut browser = Browser::new(&fixture.server.ca_pem);
    let forged = format!(
        "{}?ticket=ST-{}",
        fixture.apache.protected_page(),
        "forged0123456789abcdefghijklmnopqrstuvwxyz"
    );

    let response = browser.get(&forged, &[]).await;

    assert_ne!(response.status.as_u16(), 200, "{}", response.body);
    assert!(
        !response.body.contains("REMOTE_USER="),
        "the page was shown: {}",
        response.body
    );
    assert!(
        response.set_cookie(SESSION_COOKIE).is_none(),
        "a forged ticket got a session cookie"
    );
    // mod_auth_cas logs the failure code from the CAS response, which shows that it asked
    // the CAS server instead of failing before the back channel.
    let logs = fixture.apache.logs();
    assert!(
        logs.contains("INVALID_TICKET"),
        "no INVALID_TICKET from the CAS server in the Apache log:\n{}",
        fixture.describe()
    );
}
