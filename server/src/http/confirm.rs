//! The confirmation page of the `warn` option: after a login with `warn` set, single
//! sign-on to a service waits for the user to press continue. The continue form carries
//! a single-use token bound to the SSO session, so a cross-site request cannot obtain a
//! ticket without the user's click.

use http::{Response, StatusCode};

use cas_core::service::ServiceUrl;
use cas_core::ticket::TicketGrantingTicket;

use super::delivery::ResponseMethod;
use super::language::{login_switch_href, LoginState};
use super::pages::{self, Confirmation};
use super::response::{self, Body};
use crate::app::App;
use crate::i18n::Language;
use crate::sso;
use crate::tickets::StoreError;

/// Name of the form field that carries the confirmation token to `POST /login`.
pub const CONFIRM_FIELD: &str = "confirm";

/// Renders the confirmation page for `service` with a new token for `session`.
pub async fn page(
    app: &App,
    language: Language,
    status: StatusCode,
    session: &TicketGrantingTicket,
    service: &ServiceUrl,
    method: ResponseMethod,
    error: Option<&'static str>,
) -> Result<Response<Body>, StoreError> {
    let token = sso::issue_confirmation_token(app.store(), session).await?;
    Ok(render(
        app,
        language,
        status,
        token.as_str(),
        service,
        method,
        error,
    ))
}

/// Builds the response to HEAD where GET would show the confirmation page: its status and
/// headers, without issuing a token.
pub fn head(
    app: &App,
    language: Language,
    service: &ServiceUrl,
    method: ResponseMethod,
) -> Response<Body> {
    let page = render(app, language, StatusCode::OK, "", service, method, None);
    response::with_unknown_length(page)
}

fn render(
    app: &App,
    language: Language,
    status: StatusCode,
    token: &str,
    service: &ServiceUrl,
    method: ResponseMethod,
    error: Option<&'static str>,
) -> Response<Body> {
    let action = app.endpoint("login");
    let registry = app.registry();
    let service_name = registry
        .find(service)
        .map_or(service.without_fragment(), |registered| {
            registered.name.as_str()
        });

    // Opening the login address again shows this page again, because the warn cookie
    // is still set.
    let state = LoginState {
        service: Some(service),
        renew: false,
        method,
    };
    let switch_href = login_switch_href(&action, language.other(), &state);

    let confirmation = Confirmation {
        action: &action,
        token,
        service: service.as_str(),
        service_name,
        method: method.form_value(),
        error,
        switch_href,
    };
    pages::confirm(language, status, confirmation)
}
