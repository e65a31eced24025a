//! `GET /serviceValidate` and `/proxyValidate` (CAS 2.0), `GET /p3/serviceValidate` and
//! `/p3/proxyValidate` (CAS 3.0 with attributes): consume a service or proxy ticket,
//! deliver a proxy-granting ticket when `pgtUrl` requests one, and return the CAS
//! response as XML or JSON.

use http::Response;

use cas_core::response_format::ResponseFormat;
use cas_core::ticket::{ProxyGrantingTicketIou, ProxyTicket};
use cas_core::validation::{Attributes, AuthenticationSuccess, ErrorCode, ValidationResponse};

use super::format::{self, requested_format, UNSUPPORTED_FORMAT};
use super::params::{Params, ParamsError};
use super::response::Body;
use crate::app::App;
use crate::proxy::{self, ValidatedTicket};
use crate::release::released_attributes;
use crate::sso::{self, ValidationError};
use crate::tickets::ServiceGrant;

/// CAS protocol version of a validation endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `/serviceValidate` and `/proxyValidate`: the user only.
    V2,
    /// `/p3/serviceValidate` and `/p3/proxyValidate`: the user and the attributes
    /// released to the service.
    V3,
}

/// The ticket kinds a validation endpoint accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TicketKinds {
    /// Service tickets only. A proxy ticket is consumed and rejected with
    /// INVALID_TICKET_SPEC, because it fails the endpoint's validation specification.
    ServiceOnly,
    /// Service tickets and proxy tickets.
    ServiceAndProxy,
}

const MISSING_PARAMETERS: &str =
    "Parameters ticket and service are required, each once; pgtUrl and renew at most once";

/// The parameters of one validation request, borrowed from the parsed query.
struct ValidationRequest<'a> {
    ticket: &'a str,
    service: &'a str,
    renew: bool,
    pgt_url: Option<&'a str>,
}

/// Handles `/serviceValidate` and `/p3/serviceValidate`, which reject proxy tickets.
pub async fn service_validate(
    app: &App,
    query: &Result<Params, ParamsError>,
    protocol: Protocol,
) -> Response<Body> {
    respond(app, query, protocol, TicketKinds::ServiceOnly).await
}

/// Handles `/proxyValidate` and `/p3/proxyValidate`, which also accept proxy tickets and
/// list their proxies.
pub async fn proxy_validate(
    app: &App,
    query: &Result<Params, ParamsError>,
    protocol: Protocol,
) -> Response<Body> {
    respond(app, query, protocol, TicketKinds::ServiceAndProxy).await
}

async fn respond(
    app: &App,
    query: &Result<Params, ParamsError>,
    protocol: Protocol,
    kinds: TicketKinds,
) -> Response<Body> {
    let (response_format, request) = parse_request(query);
    let outcome = match request {
        Ok(request) => validate(app, &request, protocol, kinds).await,
        Err(message) => ValidationResponse::failure(ErrorCode::InvalidRequest, message),
    };

    let code = match &outcome {
        ValidationResponse::Success(_) => "success",
        ValidationResponse::Failure(failure) => failure.code.as_str(),
    };
    app.metrics.count_validation(code);
    format::validation_response(&outcome, protocol == Protocol::V3, response_format)
}

/// Reads the format and the parameters from the parsed query. A request with an
/// unsupported format gets its INVALID_REQUEST failure in XML, and its ticket stays
/// untouched.
fn parse_request(
    query: &Result<Params, ParamsError>,
) -> (ResponseFormat, Result<ValidationRequest<'_>, &'static str>) {
    let Ok(params) = query else {
        return (ResponseFormat::Xml, Err(MISSING_PARAMETERS));
    };
    let Some(response_format) = requested_format(params) else {
        return (ResponseFormat::Xml, Err(UNSUPPORTED_FORMAT));
    };
    (
        response_format,
        required_params(params).ok_or(MISSING_PARAMETERS),
    )
}

fn required_params(params: &Params) -> Option<ValidationRequest<'_>> {
    let ticket = params.non_empty("ticket").ok()??;
    let service = params.non_empty("service").ok()??;
    let renew = params.flag("renew").ok()?;
    let pgt_url = params.non_empty("pgtUrl").ok()?;
    Some(ValidationRequest {
        ticket,
        service,
        renew,
        pgt_url,
    })
}

async fn validate(
    app: &App,
    request: &ValidationRequest<'_>,
    protocol: Protocol,
    kinds: TicketKinds,
) -> ValidationResponse {
    let validated = match validate_ticket(app, request, kinds).await {
        Ok(validated) => validated,
        Err(error) => return ValidationResponse::failure(error.code, error.message),
    };

    let mut iou = None;
    if let Some(pgt_url) = request.pgt_url {
        match proxy_granting_ticket(app, &validated, pgt_url).await {
            Ok(delivered) => iou = delivered,
            Err(error) => return ValidationResponse::failure(error.code, error.message),
        }
    }

    let mut success = success(app, validated.grant, protocol);
    success.proxy_granting_ticket_iou = iou.map(|iou| iou.as_str().to_owned());
    success.proxies = validated.proxies;
    ValidationResponse::Success(success)
}

/// Consumes the ticket in every case and returns what it grants.
async fn validate_ticket(
    app: &App,
    request: &ValidationRequest<'_>,
    kinds: TicketKinds,
) -> Result<ValidatedTicket, ValidationError> {
    let store = app.store();
    let is_proxy_ticket = request.ticket.starts_with(ProxyTicket::PREFIX);

    match (is_proxy_ticket, kinds) {
        (false, _) => {
            let grant =
                sso::validate_service_ticket(store, request.ticket, request.service, request.renew)
                    .await?;
            Ok(ValidatedTicket {
                grant,
                proxies: Vec::new(),
            })
        }
        (true, TicketKinds::ServiceAndProxy) => {
            proxy::validate_proxy_ticket(store, request.ticket, request.service, request.renew)
                .await
        }
        (true, TicketKinds::ServiceOnly) => {
            proxy::consume_rejected_proxy_ticket(store, request.ticket).await;
            Err(ValidationError {
                code: ErrorCode::InvalidTicketSpec,
                message: "Proxy tickets are accepted only by proxyValidate endpoints",
            })
        }
    }
}

/// Checks `pgt_url` against the registry and delivers a proxy-granting ticket to it.
/// `Ok(None)` means the callback failed, and the validation then succeeds without a
/// proxy-granting ticket; see [`proxy::deliver_proxy_granting_ticket`].
async fn proxy_granting_ticket(
    app: &App,
    validated: &ValidatedTicket,
    pgt_url: &str,
) -> Result<Option<ProxyGrantingTicketIou>, ValidationError> {
    let service = &validated.grant.service;
    let callback = proxy::check_callback(&app.registry(), service, pgt_url).inspect_err(|error| {
        tracing::warn!(service = %service.without_fragment(), code = %error.code, "pgtUrl rejected");
    })?;

    let grant = proxy::proxying_grant(validated, &callback);
    Ok(proxy::deliver_proxy_granting_ticket(app.store(), &app.outbound, &callback, grant).await)
}

fn success(app: &App, grant: ServiceGrant, protocol: Protocol) -> AuthenticationSuccess {
    let attributes = match protocol {
        Protocol::V2 => Attributes::new(),
        Protocol::V3 => released_attributes(&grant, &app.registry()),
    };
    AuthenticationSuccess {
        user: grant.user,
        attributes,
        ..Default::default()
    }
}
