//! `GET /validate` (CAS 1.0): consumes a service ticket and returns `yes\n<user>\n` or
//! `no\n` in plain text.

use http::request::Parts;
use http::Response;

use cas_core::ticket::ProxyTicket;

use super::params::Params;
use super::response::{self, Body};
use crate::app::App;
use crate::proxy;
use crate::sso;

/// Handles a CAS 1.0 validation. Every failure is `no\n`: missing or repeated
/// parameters, an unknown, used or expired ticket, another service (the ticket is then
/// destroyed), `renew` without a fresh login, and any proxy ticket, which is consumed
/// too because CAS 1.0 has no proxying. `pgtUrl` and `format` are ignored.
pub async fn validate(app: &App, parts: &Parts) -> Response<Body> {
    let outcome = match required_params(parts) {
        Some((ticket, service, renew)) => validate_ticket(app, &ticket, &service, renew).await,
        None => Err("INVALID_REQUEST"),
    };

    match outcome {
        Ok(user) => {
            app.metrics.count_validation("success");
            response::text(format!("yes\n{user}\n"))
        }
        Err(code) => {
            app.metrics.count_validation(code);
            response::text("no\n".to_owned())
        }
    }
}

/// Handles HEAD: the status and headers of a CAS 1.0 response, without validating or
/// consuming the ticket.
pub fn head() -> Response<Body> {
    response::with_unknown_length(response::text(String::new()))
}

/// Returns the user, or the CAS error code the failure would have in CAS 2.0.
async fn validate_ticket(
    app: &App,
    ticket: &str,
    service: &str,
    renew: bool,
) -> Result<String, &'static str> {
    if ticket.starts_with(ProxyTicket::PREFIX) {
        proxy::consume_rejected_proxy_ticket(app.store(), ticket).await;
        return Err("INVALID_TICKET_SPEC");
    }

    sso::validate_service_ticket(app.store(), ticket, service, renew)
        .await
        .map(|grant| grant.user)
        .map_err(|error| error.code.as_str())
}

fn required_params(parts: &Parts) -> Option<(String, String, bool)> {
    let params = Params::from_query(parts.uri.query()).ok()?;
    let ticket = params.non_empty("ticket").ok()??;
    let service = params.non_empty("service").ok()??;
    let renew = params.flag("renew").ok()?;
    Some((ticket.to_owned(), service.to_owned(), renew))
}
