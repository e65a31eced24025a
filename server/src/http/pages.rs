//! HTML pages rendered from the askama templates in `server/templates`, which escape
//! every value.

use askama::Template;
use http::{Response, StatusCode};

use super::language::same_path_switch_href;
use super::response::{self, Body};
use crate::i18n::{Language, LanguageTexts, Texts};

/// A link shown under a message.
pub struct Link {
    pub href: String,
    pub label: &'static str,
}

/// The link at the top of a page that shows it in the other language.
pub struct LanguageSwitch {
    pub href: String,
    /// Tag of the language the link leads to, for its `lang` and `hreflang`.
    pub tag: &'static str,
    pub label: &'static str,
}

impl LanguageSwitch {
    /// Builds the switch from a page in `current` to the other language at `href`.
    pub fn new(current: Language, href: String) -> Self {
        let target = current.other();
        Self {
            href,
            tag: target.tag(),
            label: target.native_name(),
        }
    }
}

/// The theme values of a login page, all checked at configuration load.
pub struct PageTheme {
    /// Accent colour as `#rrggbb`.
    pub accent: Option<String>,
    /// Button text colour that contrasts with the accent colour.
    pub accent_text: &'static str,
    /// Address of the logo on this server.
    pub logo_src: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    lang: &'static str,
    title: &'static str,
    switch: Option<LanguageSwitch>,
    theme: Option<PageTheme>,
    texts: &'static Texts,
    action: &'a str,
    login_ticket: &'a str,
    service: Option<&'a str>,
    service_name: Option<&'a str>,
    method: Option<&'static str>,
    username: &'a str,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "post_to_service.html")]
struct PostToServicePage<'a> {
    lang: &'static str,
    title: &'static str,
    switch: Option<LanguageSwitch>,
    texts: &'static Texts,
    action: &'a str,
    ticket: &'a str,
    script: &'a str,
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage<'a> {
    lang: &'static str,
    title: &'static str,
    switch: Option<LanguageSwitch>,
    texts: &'static Texts,
    action: &'a str,
    token: &'a str,
    service: &'a str,
    service_name: &'a str,
    method: Option<&'static str>,
    error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    lang: &'static str,
    title: &'static str,
    switch: Option<LanguageSwitch>,
    message: &'static str,
    is_error: bool,
    detail: Option<&'a str>,
    link: Option<Link>,
}

/// Values the login form shows besides its labels.
pub struct LoginForm<'a> {
    /// The form's POST target.
    pub action: &'a str,
    pub login_ticket: &'a str,
    pub service: Option<&'a str>,
    pub service_name: Option<&'a str>,
    /// The `method` parameter to carry to the credential check, when not the default.
    pub method: Option<&'static str>,
    /// The name typed before, shown again after a failed attempt.
    pub username: &'a str,
    pub error: Option<&'static str>,
    /// Address of this form in the other language.
    pub switch_href: String,
    pub theme: Option<PageTheme>,
}

/// Renders the login form.
pub fn login(language: Language, status: StatusCode, form: LoginForm<'_>) -> Response<Body> {
    let texts = language.texts();
    let page = LoginPage {
        lang: language.tag(),
        title: texts.login_title,
        switch: Some(LanguageSwitch::new(language, form.switch_href)),
        theme: form.theme,
        texts,
        action: form.action,
        login_ticket: form.login_ticket,
        service: form.service,
        service_name: form.service_name,
        method: form.method,
        username: form.username,
        error: form.error,
    };
    render(status, &page)
}

/// Renders the page that posts `ticket` to `action`, the service URL without its
/// fragment. The script at `script` submits the form; without script the user presses
/// its button. The page has no language switch, because opening the login address again
/// would issue another ticket.
pub fn post_to_service(
    language: Language,
    action: &str,
    ticket: &str,
    script: &str,
) -> Response<Body> {
    let texts = language.texts();
    let page = PostToServicePage {
        lang: language.tag(),
        title: texts.post_title,
        switch: None,
        texts,
        action,
        ticket,
        script,
    };
    render(StatusCode::OK, &page)
}

/// Values of the confirmation page shown before single sign-on to a service.
pub struct Confirmation<'a> {
    /// The form's POST target.
    pub action: &'a str,
    /// The single-use token the continue button sends.
    pub token: &'a str,
    pub service: &'a str,
    pub service_name: &'a str,
    pub method: Option<&'static str>,
    pub error: Option<&'static str>,
    /// Address of this page in the other language.
    pub switch_href: String,
}

/// Renders the confirmation page shown before single sign-on when the warn cookie is set.
pub fn confirm(
    language: Language,
    status: StatusCode,
    confirmation: Confirmation<'_>,
) -> Response<Body> {
    let texts = language.texts();
    let page = ConfirmPage {
        lang: language.tag(),
        title: texts.confirm_title,
        switch: Some(LanguageSwitch::new(language, confirmation.switch_href)),
        texts,
        action: confirmation.action,
        token: confirmation.token,
        service: confirmation.service,
        service_name: confirmation.service_name,
        method: confirmation.method,
        error: confirmation.error,
    };
    render(status, &page)
}

/// The content of a message page.
pub struct Message<'a> {
    pub title: &'static str,
    pub message: &'static str,
    /// Text shown in bold under the message.
    pub detail: Option<&'a str>,
    pub link: Option<Link>,
    /// Address of this page in the other language.
    pub switch_href: String,
}

/// Renders a page with a title, a message, an optional bold detail and an optional link.
pub fn message(language: Language, status: StatusCode, content: Message<'_>) -> Response<Body> {
    let Message {
        title,
        message,
        detail,
        link,
        switch_href,
    } = content;
    let page = MessagePage {
        lang: language.tag(),
        title,
        switch: Some(LanguageSwitch::new(language, switch_href)),
        message,
        is_error: false,
        detail,
        link,
    };
    render(status, &page)
}

/// Renders an error page: `status` and a message chosen from the page texts. Its
/// language switch opens the same path with no other parameter, so it never repeats a
/// form post.
pub fn error(
    language: Language,
    status: StatusCode,
    pick: fn(&Texts) -> &'static str,
) -> Response<Body> {
    let href = same_path_switch_href(language.other());
    error_with_switch(language, status, pick, href)
}

/// Renders an error page whose language switch opens `switch_href`.
pub fn error_with_switch(
    language: Language,
    status: StatusCode,
    pick: fn(&Texts) -> &'static str,
    switch_href: String,
) -> Response<Body> {
    let texts = language.texts();
    let page = MessagePage {
        lang: language.tag(),
        title: texts.error_title,
        switch: Some(LanguageSwitch::new(language, switch_href)),
        message: pick(texts),
        is_error: true,
        detail: None,
        link: None,
    };
    render(status, &page)
}

fn render(status: StatusCode, page: &impl Template) -> Response<Body> {
    match page.render() {
        Ok(html) => response::html(status, html),
        Err(error) => {
            tracing::error!(%error, "page template failed to render");
            response::plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn body_text(response: Response<Body>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn login_escapes_values() {
        let form = LoginForm {
            action: "/cas/login",
            login_ticket: "LT-1",
            service: Some("https://a/?x=\"><script>"),
            service_name: Some("<b>App</b>"),
            method: None,
            username: "\"onfocus=alert(1)",
            error: None,
            switch_href: "/cas/login?service=%22%3E&lang=zh-CN".into(),
            theme: None,
        };
        let html = body_text(login(Language::English, StatusCode::OK, form)).await;

        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>App"));
        assert!(!html.contains("\"onfocus"));
        assert!(
            html.contains("value=\"https://a/?x=&#34;&#62;&#60;script&#62;\""),
            "{html}"
        );
    }

    #[tokio::test]
    async fn login_is_localised() {
        let form = || LoginForm {
            action: "/cas/login",
            login_ticket: "LT-1",
            service: None,
            service_name: None,
            method: None,
            username: "",
            error: None,
            switch_href: "/cas/login?lang=en".into(),
            theme: None,
        };

        let chinese = body_text(login(Language::SimplifiedChinese, StatusCode::OK, form())).await;
        let english = body_text(login(Language::English, StatusCode::OK, form())).await;

        assert!(chinese.contains("lang=\"zh-CN\""));
        assert!(chinese.contains("用户名"));
        assert!(english.contains("lang=\"en\""));
        assert!(english.contains("User name"));
        assert!(!chinese.contains("<script"));
        assert!(!english.contains("<script"));
    }

    #[tokio::test]
    async fn login_error_is_tied_to_fields() {
        let form = |error| LoginForm {
            action: "/cas/login",
            login_ticket: "LT-1",
            service: None,
            service_name: None,
            method: None,
            username: "alice",
            error,
            switch_href: "/cas/login?lang=zh-CN".into(),
            theme: None,
        };

        let failed = body_text(login(
            Language::English,
            StatusCode::UNAUTHORIZED,
            form(Some("The user name or password is incorrect.")),
        ))
        .await;
        let fresh = body_text(login(Language::English, StatusCode::OK, form(None))).await;

        assert!(failed.contains("<p class=\"error\" id=\"login-error\" role=\"alert\">"));
        assert_eq!(
            failed.matches("aria-describedby=\"login-error\"").count(),
            2
        );
        assert_eq!(failed.matches("aria-invalid=\"true\"").count(), 2);
        assert!(!fresh.contains("aria-describedby"), "{fresh}");
        assert!(!fresh.contains("aria-invalid"), "{fresh}");
        assert!(fresh.contains("<label for=\"username\">"), "{fresh}");
        assert!(fresh.contains("<label for=\"password\">"), "{fresh}");
        assert!(fresh.contains("<label class=\"check\" for=\"warn\"><input id=\"warn\""));
    }

    #[tokio::test]
    async fn post_page_escapes_and_has_no_inline_script() {
        let response = post_to_service(
            Language::English,
            "https://a/?x=\"><script>alert(1)</script>",
            "ST-1",
            "/cas/static/auto-submit.js",
        );
        let html = body_text(response).await;

        assert!(!html.contains("<script>"), "{html}");
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains("<script src=\"/cas/static/auto-submit.js\"></script>"));
        assert!(html.contains("name=\"ticket\" value=\"ST-1\""));
    }
}
