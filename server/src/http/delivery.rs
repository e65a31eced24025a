//! Delivery of a new service ticket from `/login` to its service: a redirect by default,
//! or, with the CAS 3.0 parameter `method=POST`, a page whose form posts the ticket.

use http::header::LOCATION;
use http::{Response, StatusCode};

use cas_core::service::ServiceUrl;
use cas_core::ticket::ServiceTicket;

use super::pages;
use super::params::{Params, ParamsError};
use super::response::{self, Body};
use crate::app::App;
use crate::i18n::Language;

/// Path below the base path of the script that submits the `method=POST` form.
pub const AUTO_SUBMIT_SCRIPT_PATH: &str = "static/auto-submit.js";

/// The script that submits the `method=POST` form.
pub const AUTO_SUBMIT_SCRIPT: &str = include_str!("../../static/auto-submit.js");

/// The response method a service requested with the `method` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMethod {
    /// A redirect to the service URL with `ticket` added (`GET`, the default).
    Redirect,
    /// A page whose form posts `ticket` to the service URL.
    Post,
}

impl ResponseMethod {
    /// Reads the `method` parameter, case-insensitively. CAS 3.0 makes the redirect the
    /// default and lets each server choose which other methods it supports. This server
    /// supports `POST`, so `HEADER` and unknown values get the default redirect.
    pub fn from_params(params: &Params) -> Result<Self, ParamsError> {
        let Some(value) = params.non_empty("method")? else {
            return Ok(Self::Redirect);
        };

        if value.eq_ignore_ascii_case("POST") {
            return Ok(Self::Post);
        }
        if !value.eq_ignore_ascii_case("GET") {
            tracing::info!(method = ?value, "unsupported login response method; redirecting instead");
        }
        Ok(Self::Redirect)
    }

    /// Returns the `method` value that keeps this method through a form, or `None` for
    /// the default.
    pub fn form_value(self) -> Option<&'static str> {
        match self {
            Self::Redirect => None,
            Self::Post => Some("POST"),
        }
    }
}

/// Builds the response that sends `ticket` to `service`: a redirect with
/// `redirect_status`, or a 200 page that posts the ticket to the service URL without its
/// fragment.
pub fn deliver_ticket(
    app: &App,
    language: Language,
    method: ResponseMethod,
    redirect_status: StatusCode,
    service: &ServiceUrl,
    ticket: &ServiceTicket,
) -> Response<Body> {
    match method {
        ResponseMethod::Redirect => {
            response::redirect(redirect_status, &service.with_ticket(ticket.as_str()))
        }
        ResponseMethod::Post => pages::post_to_service(
            language,
            service.without_fragment(),
            ticket.as_str(),
            &app.endpoint(AUTO_SUBMIT_SCRIPT_PATH),
        ),
    }
}

/// Builds the response to HEAD where GET would deliver a new ticket with
/// [`deliver_ticket`]: the same status and headers, without issuing a ticket. The
/// redirect therefore has no Location, because that URL would carry the ticket.
pub fn head(
    app: &App,
    language: Language,
    method: ResponseMethod,
    redirect_status: StatusCode,
    service: &ServiceUrl,
) -> Response<Body> {
    let response = match method {
        ResponseMethod::Redirect => {
            let mut redirect = response::redirect(redirect_status, service.without_fragment());
            redirect.headers_mut().remove(LOCATION);
            redirect
        }
        ResponseMethod::Post => pages::post_to_service(
            language,
            service.without_fragment(),
            "",
            &app.endpoint(AUTO_SUBMIT_SCRIPT_PATH),
        ),
    };
    response::with_unknown_length(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(query: &str) -> ResponseMethod {
        let params = Params::from_query(Some(query)).expect("valid");
        ResponseMethod::from_params(&params).expect("single")
    }

    #[test]
    fn method_parameter_values() {
        assert_eq!(method(""), ResponseMethod::Redirect);
        assert_eq!(method("method=POST"), ResponseMethod::Post);
        assert_eq!(method("method=post"), ResponseMethod::Post);
        assert_eq!(method("method=GET"), ResponseMethod::Redirect);
        assert_eq!(method("method=HEADER"), ResponseMethod::Redirect);
        assert_eq!(method("method=%0Aforged"), ResponseMethod::Redirect);
    }

    #[test]
    fn repeated_method_is_an_error() {
        let params = Params::from_query(Some("method=POST&method=GET")).expect("valid");

        assert!(ResponseMethod::from_params(&params).is_err());
    }
}
