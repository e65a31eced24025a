//! `GET /logout`: ends the SSO session, removes the cookie and starts single logout.
//! HEAD gets the same status and headers but ends no session and keeps the cookie.

use http::request::Parts;
use http::{Method, Response, StatusCode};

use cas_core::ticket::{digest_for_log, TicketGrantingTicket};

use super::cookie::{expire_tgc, tgc_values};
use super::language::same_path_switch_href;
use super::pages::{self, Message};
use super::params::Params;
use super::response::{self, Body};
use crate::app::App;
use crate::i18n::{Language, LanguageTexts};
use crate::sso;

/// Destroys every session the request's TGC cookies name, expires the cookie, then
/// redirects to a registered `service` or shows the logged-out page.
pub async fn get(app: &App, parts: &Parts, language: Language) -> Response<Body> {
    // HEAD must be safe. Expiring the cookie without ending the session would leave a
    // session that no browser can end, so HEAD keeps both.
    let head = parts.method == Method::HEAD;
    if !head {
        for value in tgc_values(&parts.headers) {
            end_session(app, value).await;
        }
    }

    let mut response = match registered_service(app, parts) {
        Some(target) => response::redirect(StatusCode::FOUND, &target),
        None => {
            let texts = language.texts();
            let content = Message {
                title: texts.logged_out_title,
                message: texts.logged_out_message,
                detail: None,
                link: None,
                // The switch opens /logout again. This request already ended the
                // browser's sessions, so it ends none unless the user signed in since.
                switch_href: same_path_switch_href(language.other()),
            };
            pages::message(language, StatusCode::OK, content)
        }
    };
    if head {
        return response;
    }
    if let Some(cookie) = expire_tgc(&app.config.base_path) {
        response::set_cookie(&mut response, cookie);
    }
    response
}

async fn end_session(app: &App, value: &str) {
    let Ok(ticket) = TicketGrantingTicket::parse(value) else {
        return;
    };

    match app.store().end_session(&ticket).await {
        Ok(Some(ended)) => {
            tracing::info!(target: "audit", event = "logout", user = %ended.user, session = %digest_for_log(value));
            app.slo.notify(&app.registry(), &ended);
        }
        Ok(None) => {}
        // The cookie is expired anyway; the session then ends when its lifetime runs out.
        Err(error) => tracing::error!(%error, "ticket store failed during logout"),
    }
}

/// Returns the `service` parameter when it is a registered service; otherwise no redirect, so
/// logout cannot be used as an open redirect.
fn registered_service(app: &App, parts: &Parts) -> Option<String> {
    let params = Params::from_query(parts.uri.query()).ok()?;
    let raw = params.non_empty("service").ok()??;
    sso::check_service(&app.registry(), raw)
        .ok()
        .map(|service| service.as_str().to_owned())
}
