//! `GET /login` (form or single sign-on redirect) and `POST /login` (credential check).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use cas_core::forwarded;
use cas_core::service::ServiceUrl;
use cas_core::ticket::{digest_for_log, TicketGrantingTicket};

use super::confirm::{self, CONFIRM_FIELD};
use super::cookie::{
    expire_warn_cookie, has_warn_cookie, login_cookie_values, set_login_cookie, set_tgc,
    set_warn_cookie, tgc_values, LOGIN_COOKIE_BYTES,
};
use super::delivery::{self, deliver_ticket, ResponseMethod};
use super::language::{login_switch_href, LoginState};
use super::pages::{self, Link, LoginForm, Message, PageTheme};
use super::params::Params;
use super::response::{self, Body};
use super::theme::THEMES_PATH;
use crate::app::App;
use crate::i18n::{Language, LanguageTexts, Texts};
use crate::metrics::outcome;
use crate::sso::{self, ServiceRejection};
use crate::throttle::{self, LoginAttempt};
use crate::tickets::{SsoSession, StoreError};
use crate::users::{Authentication, FailureReason};
use cas_core::theme::{AccentColor, Theme};
use cas_core::validation::Attributes;

/// Largest accepted login form body, in bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Maximum wait for the whole form body. Without it, clients that declare a body and
/// send it a byte at a time could hold every connection slot.
pub const FORM_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A failure that ends the request with an error page.
struct Rejection(StatusCode, fn(&Texts) -> &'static str);

impl Rejection {
    /// Renders the error page. `switch_href` is the login address in the other language
    /// with the checked request state, when the request got that far.
    fn page(self, language: Language, switch_href: Option<String>) -> Response<Body> {
        match switch_href {
            Some(href) => pages::error_with_switch(language, self.0, self.1, href),
            None => pages::error(language, self.0, self.1),
        }
    }
}

impl From<StoreError> for Rejection {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "ticket store failed");
        Rejection(StatusCode::SERVICE_UNAVAILABLE, |t| t.unavailable)
    }
}

/// Handles `GET /login`: redirects with a new ticket when a session exists, otherwise
/// shows the form. HEAD gets the status and headers of that response, but issues no
/// service ticket, login ticket or confirmation token.
pub async fn get(app: &App, parts: &Parts, language: Language) -> Response<Body> {
    let mut switch_href = None;
    match try_get(app, parts, language, &mut switch_href).await {
        Ok(response) => response,
        Err(rejection) => rejection.page(language, switch_href),
    }
}

/// Handles `GET /login`. Once the parameters are checked, `switch_href` receives the
/// language switch address that an error page keeps them with.
async fn try_get(
    app: &App,
    parts: &Parts,
    language: Language,
    switch_href: &mut Option<String>,
) -> Result<Response<Body>, Rejection> {
    let params = Params::from_query(parts.uri.query()).map_err(|_| bad_request())?;
    let service = service_param(app, &params)?;
    let renew = params.flag("renew").map_err(|_| bad_request())?;
    let gateway = params.flag("gateway").map_err(|_| bad_request())?;
    let method = ResponseMethod::from_params(&params).map_err(|_| bad_request())?;

    let state = LoginState {
        service: service.as_ref(),
        renew,
        method,
    };
    *switch_href = Some(login_switch_href(
        &app.endpoint("login"),
        language.other(),
        &state,
    ));

    if !renew {
        if let Some((ticket, session)) = current_session(app, parts).await? {
            let sso = SingleSignOn {
                ticket: &ticket,
                session: &session,
                warn: has_warn_cookie(&parts.headers),
            };
            let head = parts.method == Method::HEAD;
            return single_sign_on(app, sso, service.as_ref(), method, language, head).await;
        }
    }

    // With gateway the service asked not to be shown a form: it gets its user back
    // without a ticket and treats them as anonymous.
    if let (true, false, Some(service)) = (gateway, renew, &service) {
        return Ok(response::redirect(StatusCode::FOUND, service.as_str()));
    }
    let options = LoginOptions {
        service,
        renew,
        method,
        warn: false,
    };
    form(app, parts, language, StatusCode::OK, &options, "", None).await
}

/// A live SSO session found by the request's TGC.
struct SingleSignOn<'a> {
    ticket: &'a TicketGrantingTicket,
    session: &'a SsoSession,
    /// Whether the browser carries the warn cookie, so the user confirms each service.
    warn: bool,
}

/// Responds to a login request that found a live session. With `head` set, the request is
/// HEAD and gets the status and headers without a ticket or token being issued.
async fn single_sign_on(
    app: &App,
    sso: SingleSignOn<'_>,
    service: Option<&ServiceUrl>,
    method: ResponseMethod,
    language: Language,
    head: bool,
) -> Result<Response<Body>, Rejection> {
    let Some(service) = service else {
        return Ok(logged_in_page(
            app,
            language,
            StatusCode::OK,
            &sso.session.user,
        ));
    };
    if sso.warn && head {
        return Ok(confirm::head(app, language, service, method));
    }
    if sso.warn {
        let status = StatusCode::OK;
        return Ok(confirm::page(app, language, status, sso.ticket, service, method, None).await?);
    }

    if head {
        let status = StatusCode::FOUND;
        return Ok(delivery::head(app, language, method, status, service));
    }
    let ttl = app.config.service_ticket_ttl;
    let service_ticket =
        sso::issue_service_ticket(app.store(), sso.ticket, sso.session, service, false, ttl)
            .await?;
    Ok(deliver_ticket(
        app,
        language,
        method,
        StatusCode::FOUND,
        service,
        &service_ticket,
    ))
}

/// The options of a login request besides the credentials.
struct LoginOptions {
    service: Option<ServiceUrl>,
    /// Whether the request set `renew`, which the language switch keeps.
    renew: bool,
    method: ResponseMethod,
    /// Whether the user ticked "warn me before signing me in to other sites".
    warn: bool,
}

impl LoginOptions {
    /// Returns the login address in the other language with these options.
    fn switch_href(&self, app: &App, language: Language) -> String {
        let state = LoginState {
            service: self.service.as_ref(),
            renew: self.renew,
            method: self.method,
        };
        login_switch_href(&app.endpoint("login"), language.other(), &state)
    }
}

/// Handles the continue button of the confirmation page: checks its token against the
/// session and issues the ticket the page held back.
async fn continue_single_sign_on(
    app: &App,
    parts: &Parts,
    params: &Params,
    options: &LoginOptions,
    language: Language,
) -> Result<Response<Body>, Rejection> {
    let Some(service) = &options.service else {
        return Err(bad_request());
    };
    let token = params.single(CONFIRM_FIELD).map_err(|_| bad_request())?;

    let Some((ticket, session)) = current_session(app, parts).await? else {
        // The session ended while the page was open, so the user logs in again.
        return form(app, parts, language, StatusCode::OK, options, "", None).await;
    };
    if !sso::consume_confirmation_token(app.store(), token, &ticket).await? {
        tracing::info!("confirmation with a missing, used, expired or foreign token");
        let error = Some(language.texts().confirm_expired);
        let status = StatusCode::BAD_REQUEST;
        let method = options.method;
        return Ok(confirm::page(app, language, status, &ticket, service, method, error).await?);
    }

    let ttl = app.config.service_ticket_ttl;
    let service_ticket =
        sso::issue_service_ticket(app.store(), &ticket, &session, service, false, ttl).await?;
    Ok(deliver_ticket(
        app,
        language,
        options.method,
        StatusCode::SEE_OTHER,
        service,
        &service_ticket,
    ))
}

/// Handles `POST /login`: consumes the login ticket, checks the credentials, starts a
/// session and sends a new ticket to the service. A form with `confirm` is the continue
/// button of the confirmation page instead.
pub async fn post(app: &App, parts: &Parts, body: Incoming, language: Language) -> Response<Body> {
    let mut switch_href = None;
    match try_post(app, parts, body, language, &mut switch_href).await {
        Ok(response) => response,
        Err(rejection) => {
            if rejection.0 == StatusCode::SERVICE_UNAVAILABLE {
                app.metrics.count_login(outcome::ERROR);
                let client = client_address(app, parts);
                tracing::info!(target: "audit", event = "login_failed", reason = "unavailable", %client);
            }
            rejection.page(language, switch_href)
        }
    }
}

/// Handles `POST /login`. Once the form's service and method are checked,
/// `switch_href` receives the language switch address that an error page keeps them with.
async fn try_post(
    app: &App,
    parts: &Parts,
    body: Incoming,
    language: Language,
    switch_href: &mut Option<String>,
) -> Result<Response<Body>, Rejection> {
    let params = read_form(parts, body).await?;
    let options = LoginOptions {
        service: service_param(app, &params)?,
        renew: false,
        method: ResponseMethod::from_params(&params).map_err(|_| bad_request())?,
        warn: params.flag("warn").map_err(|_| bad_request())?,
    };
    *switch_href = Some(options.switch_href(app, language));
    if params
        .single(CONFIRM_FIELD)
        .map_err(|_| bad_request())?
        .is_some()
    {
        return continue_single_sign_on(app, parts, &params, &options, language).await;
    }

    let login_ticket = params.single("lt").map_err(|_| bad_request())?;
    let username = params
        .single("username")
        .map_err(|_| bad_request())?
        .unwrap_or_default();
    let password = params
        .single("password")
        .map_err(|_| bad_request())?
        .unwrap_or_default();

    let client = client_address(app, parts);
    if !consume_login_ticket(app, parts, login_ticket).await? {
        let missing_cookie = login_cookie_values(&parts.headers).next().is_none();
        tracing::info!(target: "audit", event = "login_failed", reason = "bad_token", user = %username.escape_debug(), %client, missing_cookie);
        app.metrics.count_login(outcome::BAD_LOGIN_TICKET);
        let texts = language.texts();
        let message = match missing_cookie {
            true => texts.login_cookie_missing,
            false => texts.bad_login_ticket,
        };
        let status = StatusCode::BAD_REQUEST;
        return form(
            app,
            parts,
            language,
            status,
            &options,
            username,
            Some(message),
        )
        .await;
    }
    if username.is_empty() || password.is_empty() {
        app.metrics.count_login(outcome::MISSING_FIELDS);
        return form(
            app,
            parts,
            language,
            StatusCode::BAD_REQUEST,
            &options,
            username,
            Some(language.texts().missing_fields),
        )
        .await;
    }

    // The throttle comes before any user lookup or password hash, so a throttled
    // attempt costs one store call per limit.
    let attempt = LoginAttempt {
        username,
        address: client,
    };
    let limits = &app.config.throttle;
    let Some(admission) = throttle::admit(app.store(), limits, &attempt).await? else {
        tracing::info!(target: "audit", event = "login_failed", reason = "throttled", user = %username.escape_debug(), %client);
        app.metrics.count_login(outcome::THROTTLED);
        let status = StatusCode::TOO_MANY_REQUESTS;
        let message = Some(language.texts().throttled);
        return form(app, parts, language, status, &options, username, message).await;
    };

    let user = match app.users.authenticate(username, password).await {
        Ok(Authentication::Success { user }) => user,
        Ok(Authentication::Failure(reason)) => {
            // The admission keeps its places, so this failure counts against each limit.
            log_failure(username, client, reason);
            app.metrics.count_login(outcome::BAD_CREDENTIALS);
            return form(
                app,
                parts,
                language,
                StatusCode::UNAUTHORIZED,
                &options,
                username,
                Some(language.texts().bad_credentials),
            )
            .await;
        }
        Err(error) => {
            tracing::error!(%error, "user directory failed during login");
            throttle::withdraw(app.store(), &attempt, admission).await?;
            return Err(Rejection(StatusCode::SERVICE_UNAVAILABLE, |t| {
                t.unavailable
            }));
        }
    };
    throttle::record_success(app.store(), &attempt, admission).await?;
    // The attributes are read before the session starts, so a failing query leaves no
    // session behind.
    let attributes = match app.users.attributes(&user).await {
        Ok(attributes) => attributes,
        Err(error) => {
            tracing::error!(%error, user = ?user, "attribute query failed during login");
            return Err(Rejection(StatusCode::SERVICE_UNAVAILABLE, |t| {
                t.unavailable
            }));
        }
    };
    let response = logged_in(app, parts, &user, attributes, &options, language).await?;
    app.metrics.count_login(outcome::SUCCESS);
    Ok(response)
}

/// Consumes the form's login ticket with the login cookies of the request. A ticket
/// issued to another browser, or a request without the cookie, does not match.
async fn consume_login_ticket(
    app: &App,
    parts: &Parts,
    login_ticket: Option<&str>,
) -> Result<bool, StoreError> {
    for browser_key in login_cookie_values(&parts.headers) {
        if sso::consume_browser_login_ticket(app.store(), login_ticket, browser_key).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Returns the client address for throttling and the audit log: the IP address of the
/// TCP peer, which the router puts into the request's extensions, or, when that peer is
/// in `trusted_proxies`, the right-most untrusted address of the forwarding header. A
/// header that is malformed or not UTF-8 leaves the peer's address.
pub fn client_address(app: &App, parts: &Parts) -> IpAddr {
    let peer = parts
        .extensions
        .get::<SocketAddr>()
        .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |peer| {
            peer.ip().to_canonical()
        });
    let trusted = &app.config.trusted_proxies;
    if trusted.is_empty() {
        return peer;
    }

    let header = app.config.forwarded_header;
    let mut values = Vec::new();
    for value in parts.headers.get_all(header.name()) {
        let Ok(text) = value.to_str() else {
            return peer;
        };
        values.push(text);
    }
    forwarded::client_address(peer, trusted, header, &values)
}

async fn logged_in(
    app: &App,
    parts: &Parts,
    user: &str,
    attributes: Attributes,
    options: &LoginOptions,
    language: Language,
) -> Result<Response<Body>, Rejection> {
    end_previous_session(app, parts).await?;

    let (ticket, session) = sso::start_session_with_idle(
        app.store(),
        user,
        attributes,
        app.config.sso_session_ttl,
        app.config.sso_session_idle,
    )
    .await?;
    tracing::info!(
        target: "audit",
        event = "login_succeeded",
        user,
        client = %client_address(app, parts),
        service = options.service.as_ref().map(ServiceUrl::without_fragment),
        session = %digest_for_log(ticket.as_str()),
    );

    let mut response = match &options.service {
        Some(service) => {
            let ttl = app.config.service_ticket_ttl;
            let service_ticket =
                sso::issue_service_ticket(app.store(), &ticket, &session, service, true, ttl)
                    .await?;
            let status = StatusCode::SEE_OTHER;
            deliver_ticket(
                app,
                language,
                options.method,
                status,
                service,
                &service_ticket,
            )
        }
        None => logged_in_page(app, language, StatusCode::OK, user),
    };

    let base_path = &app.config.base_path;
    let cookie = set_tgc(ticket.as_str(), base_path).ok_or_else(bad_request)?;
    response::set_cookie(&mut response, cookie);
    set_warn_preference(&mut response, parts, options.warn, base_path);
    Ok(response)
}

/// Sets the warn cookie when the user ticked the box, and removes an old one otherwise.
fn set_warn_preference(response: &mut Response<Body>, parts: &Parts, warn: bool, base_path: &str) {
    let cookie = match (warn, has_warn_cookie(&parts.headers)) {
        (true, _) => set_warn_cookie(base_path),
        (false, true) => expire_warn_cookie(base_path),
        (false, false) => None,
    };
    if let Some(cookie) = cookie {
        response::set_cookie(response, cookie);
    }
}

/// Ends the browser's old sessions before a new login, so none lingers after the cookie
/// that named it is overwritten. Their services get logout requests.
async fn end_previous_session(app: &App, parts: &Parts) -> Result<(), StoreError> {
    for value in tgc_values(&parts.headers) {
        let Ok(ticket) = TicketGrantingTicket::parse(value) else {
            continue;
        };
        if let Some(ended) = app.store().end_session(&ticket).await? {
            app.slo.notify(&app.registry(), &ended);
        }
    }
    Ok(())
}

async fn read_form(parts: &Parts, body: Incoming) -> Result<Params, Rejection> {
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(Rejection(StatusCode::UNSUPPORTED_MEDIA_TYPE, |t| {
            t.bad_request
        }));
    }

    let reading = tokio::time::timeout(
        FORM_READ_TIMEOUT,
        Limited::new(body, MAX_FORM_BYTES).collect(),
    );
    let Ok(read) = reading.await else {
        tracing::info!("login form body not received within the read timeout");
        return Err(Rejection(StatusCode::REQUEST_TIMEOUT, |t| t.bad_request));
    };
    let bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(Rejection(StatusCode::PAYLOAD_TOO_LARGE, |t| {
                t.body_too_large
            }));
        }
        Err(error) => {
            tracing::info!(%error, "login form body could not be read");
            return Err(bad_request());
        }
    };
    Params::parse(&bytes).map_err(|error| {
        tracing::info!(%error, "login form rejected");
        bad_request()
    })
}

/// Checks the service parameter against the registry. An absent service is accepted.
fn service_param(app: &App, params: &Params) -> Result<Option<ServiceUrl>, Rejection> {
    let Some(raw) = params.non_empty("service").map_err(|_| bad_request())? else {
        return Ok(None);
    };

    match sso::check_service(&app.registry(), raw) {
        Ok(service) => Ok(Some(service)),
        Err(ServiceRejection::Invalid) => {
            tracing::info!("login request with an invalid service URL");
            Err(Rejection(StatusCode::BAD_REQUEST, |t| t.service_invalid))
        }
        Err(ServiceRejection::NotRegistered) => {
            tracing::warn!(service = %raw, "login request for an unregistered service");
            Err(Rejection(StatusCode::FORBIDDEN, |t| t.service_not_allowed))
        }
    }
}

/// Finds the live session named by one of the request's TGC cookies.
pub async fn current_session(
    app: &App,
    parts: &Parts,
) -> Result<Option<(TicketGrantingTicket, SsoSession)>, StoreError> {
    for value in tgc_values(&parts.headers) {
        if let Some(found) = sso::find_session(app.store(), Some(value)).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Shows the login form with a new login ticket bound to the browser's login cookie.
/// A request without a valid login cookie gets a new one. HEAD gets the form's status
/// and headers, the cookie included, without a login ticket being stored.
async fn form(
    app: &App,
    parts: &Parts,
    language: Language,
    status: StatusCode,
    options: &LoginOptions,
    username: &str,
    error: Option<&'static str>,
) -> Result<Response<Body>, Rejection> {
    let browser_key = match login_cookie_values(&parts.headers).next() {
        Some(existing) => existing.to_owned(),
        None => new_browser_key()?,
    };
    let head = parts.method == Method::HEAD;
    let login_ticket = match head {
        true => None,
        false => Some(sso::issue_browser_login_ticket(app.store(), &browser_key).await?),
    };
    let action = app.endpoint("login");
    let service = options.service.as_ref();
    let registry = app.registry();
    let registered = service.and_then(|s| registry.find(s));

    let form = LoginForm {
        action: &action,
        login_ticket: login_ticket.as_ref().map_or("", |ticket| ticket.as_str()),
        service: service.map(ServiceUrl::as_str),
        service_name: registered.map(|s| s.name.as_str()),
        method: options.method.form_value(),
        username,
        error,
        switch_href: options.switch_href(app, language),
        theme: registered.map(|s| page_theme(app, &s.theme)),
    };
    let mut response = pages::login(language, status, form);
    if head {
        response = response::with_unknown_length(response);
    }

    let max_age = sso::LOGIN_TICKET_TTL.as_secs();
    let cookie = set_login_cookie(&browser_key, &app.config.base_path, max_age);
    response::set_cookie(&mut response, cookie.ok_or_else(bad_request)?);
    Ok(response)
}

fn page_theme(app: &App, theme: &Theme) -> PageTheme {
    PageTheme {
        accent: theme.color.map(AccentColor::css),
        accent_text: theme.color.map_or("#ffffff", AccentColor::text_css),
        logo_src: theme
            .logo
            .as_ref()
            .map(|name| app.endpoint(&format!("{THEMES_PATH}{name}"))),
    }
}

fn new_browser_key() -> Result<String, StoreError> {
    let mut random = [0u8; LOGIN_COOKIE_BYTES];
    getrandom::fill(&mut random)
        .map_err(|e| StoreError::Unavailable(format!("random source failed: {e}")))?;
    Ok(hex::encode(random))
}

fn logged_in_page(app: &App, language: Language, status: StatusCode, user: &str) -> Response<Body> {
    let texts = language.texts();
    let link = Link {
        href: app.endpoint("logout"),
        label: texts.logout_link,
    };
    // Opening the login address without a service shows this page again while the
    // session lasts.
    let state = LoginState {
        service: None,
        renew: false,
        method: ResponseMethod::Redirect,
    };
    let content = Message {
        title: texts.logged_in_title,
        message: texts.logged_in_message,
        detail: Some(user),
        link: Some(link),
        switch_href: login_switch_href(&app.endpoint("login"), language.other(), &state),
    };
    pages::message(language, status, content)
}

/// Writes the audit event of a rejected credential check. The typed name is logged for
/// auditing; it is not a secret, unlike the password.
fn log_failure(username: &str, client: IpAddr, reason: FailureReason) {
    if reason == FailureReason::AmbiguousUser {
        tracing::error!(user = ?username, "user query returned more than one row; login rejected");
    }

    let audit_reason = match reason {
        FailureReason::WrongPassword | FailureReason::UnusablePassword => "bad_password",
        FailureReason::Disabled => "disabled",
        FailureReason::UnknownUser
        | FailureReason::NameMismatch
        | FailureReason::AmbiguousUser
        | FailureReason::UnusableName => "unknown_user",
    };
    tracing::info!(target: "audit", event = "login_failed", reason = audit_reason, detail = ?reason, user = %username.escape_debug(), %client);
}

fn bad_request() -> Rejection {
    Rejection(StatusCode::BAD_REQUEST, |t| t.bad_request)
}
