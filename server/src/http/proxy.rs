//! `GET /proxy?pgt=…&targetService=…`: issues a proxy ticket from a proxy-granting
//! ticket and returns `cas:proxySuccess` or `cas:proxyFailure`, as XML or JSON.

use http::request::Parts;
use http::Response;

use cas_core::response_format::ResponseFormat;
use cas_core::validation::{ErrorCode, ProxyResponse};

use super::format::{self, requested_format, UNSUPPORTED_FORMAT};
use super::params::Params;
use super::response::Body;
use crate::app::App;
use crate::proxy;

const MISSING_PARAMETERS: &str = "Parameters pgt and targetService are required, each once";

/// Handles a proxy ticket request. Failure codes: INVALID_REQUEST (missing or repeated
/// parameters, unsupported format), INVALID_TICKET (unknown proxy-granting ticket, or its
/// SSO session has ended), UNAUTHORIZED_SERVICE (target not registered or not accepting
/// proxy tickets) and INTERNAL_ERROR (ticket store failure).
pub async fn get(app: &App, parts: &Parts) -> Response<Body> {
    let (response_format, request) = parse_request(parts);
    let outcome = match request {
        Ok((pgt, target_service)) => issue(app, &pgt, &target_service).await,
        Err(message) => ProxyResponse::failure(ErrorCode::InvalidRequest, message),
    };
    format::proxy_response(&outcome, response_format)
}

async fn issue(app: &App, pgt: &str, target_service: &str) -> ProxyResponse {
    let issued = proxy::grant_proxy_ticket(
        app.store(),
        &app.registry(),
        pgt,
        target_service,
        app.config.proxy_ticket_ttl,
    )
    .await;

    match issued {
        Ok(ticket) => ProxyResponse::Success {
            proxy_ticket: ticket.as_str().to_owned(),
        },
        Err(error) => ProxyResponse::failure(error.code, error.message),
    }
}

fn parse_request(parts: &Parts) -> (ResponseFormat, Result<(String, String), &'static str>) {
    let Ok(params) = Params::from_query(parts.uri.query()) else {
        return (ResponseFormat::Xml, Err(MISSING_PARAMETERS));
    };
    let Some(response_format) = requested_format(&params) else {
        return (ResponseFormat::Xml, Err(UNSUPPORTED_FORMAT));
    };
    (
        response_format,
        required_params(&params).ok_or(MISSING_PARAMETERS),
    )
}

fn required_params(params: &Params) -> Option<(String, String)> {
    let pgt = params.non_empty("pgt").ok()??;
    let target_service = params.non_empty("targetService").ok()??;
    Some((pgt.to_owned(), target_service.to_owned()))
}
