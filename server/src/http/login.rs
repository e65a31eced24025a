//! `GET /login` (form or single sign-on redirect) and `POST /login` (credential check).

use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use cas_core::service::ServiceUrl;
use cas_core::ticket::TicketGrantingTicket;

use super::cookie::{set_tgc, tgc_values};
use super::pages::{self, Link, LoginForm};
use super::params::Params;
use super::response::{self, Body};
use crate::app::App;
use crate::i18n::{Language, LanguageTexts, Texts};
use crate::metrics::outcome;
use crate::sso::{self, ServiceRejection};
use crate::tickets::{SsoSession, StoreError};
use crate::users::Authentication;

/// Largest accepted login form body, in bytes.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Maximum wait for the whole form body. Without it, clients that declare a body and
/// send it a byte at a time could hold every connection slot.
pub const FORM_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A failure that ends the request with an error page.
struct Rejection(StatusCode, fn(&Texts) -> &'static str);

impl Rejection {
    fn page(self, language: Language) -> Response<Body> {
        pages::error(language, self.0, self.1)
    }
}

impl From<StoreError> for Rejection {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "ticket store failed");
        Rejection(StatusCode::SERVICE_UNAVAILABLE, |t| t.unavailable)
    }
}

/// Handles `GET /login`: redirects with a new ticket when a session exists, otherwise
/// shows the form.
pub async fn get(app: &App, parts: &Parts, language: Language) -> Response<Body> {
    match try_get(app, parts, language).await {
        Ok(response) => response,
        Err(rejection) => rejection.page(language),
    }
}

async fn try_get(
    app: &App,
    parts: &Parts,
    language: Language,
) -> Result<Response<Body>, Rejection> {
    let params = Params::from_query(parts.uri.query()).map_err(|_| bad_request())?;
    let service = service_param(app, &params)?;
    let renew = params.flag("renew").map_err(|_| bad_request())?;
    let gateway = params.flag("gateway").map_err(|_| bad_request())?;

    if !renew {
        if let Some((ticket, session)) = current_session(app, parts).await? {
            return single_sign_on(app, &ticket, &session, service.as_ref(), language).await;
        }
    }

    // With gateway the service asked not to be shown a form: it gets its user back
    // without a ticket and treats them as anonymous.
    if let (true, false, Some(service)) = (gateway, renew, &service) {
        return Ok(response::redirect(StatusCode::FOUND, service.as_str()));
    }
    form(app, language, StatusCode::OK, service.as_ref(), "", None).await
}

async fn single_sign_on(
    app: &App,
    ticket: &TicketGrantingTicket,
    session: &SsoSession,
    service: Option<&ServiceUrl>,
    language: Language,
) -> Result<Response<Body>, Rejection> {
    let Some(service) = service else {
        return Ok(logged_in_page(app, language, StatusCode::OK, &session.user));
    };

    let ttl = app.config.service_ticket_ttl;
    let service_ticket =
        sso::issue_service_ticket(app.store(), ticket, session, service, false, ttl).await?;
    Ok(response::redirect(
        StatusCode::FOUND,
        &service.with_ticket(service_ticket.as_str()),
    ))
}

/// Handles `POST /login`: consumes the login ticket, checks the credentials, starts a
/// session and redirects to the service with a new ticket.
pub async fn post(app: &App, parts: &Parts, body: Incoming, language: Language) -> Response<Body> {
    match try_post(app, parts, body, language).await {
        Ok(response) => response,
        Err(rejection) => {
            if rejection.0 == StatusCode::SERVICE_UNAVAILABLE {
                app.metrics.count_login(outcome::ERROR);
            }
            rejection.page(language)
        }
    }
}

async fn try_post(
    app: &App,
    parts: &Parts,
    body: Incoming,
    language: Language,
) -> Result<Response<Body>, Rejection> {
    let params = read_form(parts, body).await?;
    let service = service_param(app, &params)?;
    let login_ticket = params.single("lt").map_err(|_| bad_request())?;
    let username = params
        .single("username")
        .map_err(|_| bad_request())?
        .unwrap_or_default();
    let password = params
        .single("password")
        .map_err(|_| bad_request())?
        .unwrap_or_default();

    if !sso::consume_login_ticket(app.store(), login_ticket).await? {
        tracing::info!("login form with a missing, used or expired login ticket");
        app.metrics.count_login(outcome::BAD_LOGIN_TICKET);
        return form(
            app,
            language,
            StatusCode::BAD_REQUEST,
            service.as_ref(),
            username,
            Some(language.texts().bad_login_ticket),
        )
        .await;
    }
    if username.is_empty() || password.is_empty() {
        app.metrics.count_login(outcome::MISSING_FIELDS);
        return form(
            app,
            language,
            StatusCode::BAD_REQUEST,
            service.as_ref(),
            username,
            Some(language.texts().missing_fields),
        )
        .await;
    }

    let user = match app.users.authenticate(username, password).await {
        Ok(Authentication::Success { user }) => user,
        Ok(Authentication::Failure(reason)) => {
            log_failure(username, reason);
            app.metrics.count_login(outcome::BAD_CREDENTIALS);
            return form(
                app,
                language,
                StatusCode::UNAUTHORIZED,
                service.as_ref(),
                username,
                Some(language.texts().bad_credentials),
            )
            .await;
        }
        Err(error) => {
            tracing::error!(%error, "user directory failed during login");
            return Err(Rejection(StatusCode::SERVICE_UNAVAILABLE, |t| {
                t.unavailable
            }));
        }
    };
    let response = logged_in(app, parts, &user, service.as_ref(), language).await?;
    app.metrics.count_login(outcome::SUCCESS);
    Ok(response)
}

async fn logged_in(
    app: &App,
    parts: &Parts,
    user: &str,
    service: Option<&ServiceUrl>,
    language: Language,
) -> Result<Response<Body>, Rejection> {
    end_previous_session(app, parts).await?;

    let (ticket, session) = sso::start_session_with_idle(
        app.store(),
        user,
        app.config.sso_session_ttl,
        app.config.sso_session_idle,
    )
    .await?;
    let mut response = match service {
        Some(service) => {
            let ttl = app.config.service_ticket_ttl;
            let service_ticket =
                sso::issue_service_ticket(app.store(), &ticket, &session, service, true, ttl)
                    .await?;
            response::redirect(
                StatusCode::SEE_OTHER,
                &service.with_ticket(service_ticket.as_str()),
            )
        }
        None => logged_in_page(app, language, StatusCode::OK, user),
    };

    let cookie = set_tgc(ticket.as_str(), &app.config.base_path).ok_or_else(bad_request)?;
    response::set_cookie(&mut response, cookie);
    Ok(response)
}

/// Ends the browser's old sessions before a new login, so none lingers after the cookie
/// that named it is overwritten. Their services get logout requests.
async fn end_previous_session(app: &App, parts: &Parts) -> Result<(), StoreError> {
    for value in tgc_values(&parts.headers) {
        let Ok(ticket) = TicketGrantingTicket::parse(value) else {
            continue;
        };
        if let Some(ended) = app.store().end_session(&ticket).await? {
            app.slo.notify(&app.config.registry, &ended);
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

    match sso::check_service(&app.config.registry, raw) {
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

async fn form(
    app: &App,
    language: Language,
    status: StatusCode,
    service: Option<&ServiceUrl>,
    username: &str,
    error: Option<&'static str>,
) -> Result<Response<Body>, Rejection> {
    let login_ticket = sso::issue_login_ticket(app.store()).await?;
    let action = app.endpoint("login");
    let service_name = service
        .and_then(|s| app.config.registry.find(s))
        .map(|s| s.name.as_str());

    let form = LoginForm {
        action: &action,
        login_ticket: login_ticket.as_str(),
        service: service.map(ServiceUrl::as_str),
        service_name,
        username,
        error,
    };
    Ok(pages::login(language, status, form))
}

fn logged_in_page(app: &App, language: Language, status: StatusCode, user: &str) -> Response<Body> {
    let texts = language.texts();
    let link = Link {
        href: app.endpoint("logout"),
        label: texts.logout_link,
    };
    pages::message(
        language,
        status,
        texts.logged_in_title,
        texts.logged_in_message,
        Some(user),
        Some(link),
    )
}

fn log_failure(username: &str, reason: crate::users::FailureReason) {
    use crate::users::FailureReason;

    // The typed name is logged for auditing; it is not a secret, unlike the password.
    match reason {
        FailureReason::AmbiguousUser => {
            tracing::error!(user = ?username, "user query returned more than one row; login rejected")
        }
        _ => tracing::info!(user = ?username, ?reason, "login failed"),
    }
}

fn bad_request() -> Rejection {
    Rejection(StatusCode::BAD_REQUEST, |t| t.bad_request)
}
