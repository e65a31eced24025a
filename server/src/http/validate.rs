//! `GET /serviceValidate` (CAS 2.0) and `GET /p3/serviceValidate` (CAS 3.0 with
//! attributes): consume a service ticket and return the CAS XML response.

use http::request::Parts;
use http::Response;

use cas_core::validation::{Attributes, AuthenticationSuccess, ErrorCode, ValidationResponse};
use cas_core::xml_write::write_validation_response;

use super::params::Params;
use super::response::{self, Body};
use crate::app::App;
use crate::release::released_attributes;
use crate::sso;
use crate::tickets::ServiceGrant;

/// CAS protocol version of a validation endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `/serviceValidate`: the user only.
    V2,
    /// `/p3/serviceValidate`: the user and the attributes released to the service.
    V3,
}

/// Handles a validation request. Parameters other than `ticket`, `service` and `renew`
/// (such as `pgtUrl` and `format`) are ignored.
pub async fn service_validate(app: &App, parts: &Parts, protocol: Protocol) -> Response<Body> {
    let outcome = validate(app, parts, protocol).await;
    let code = match &outcome {
        ValidationResponse::Success(_) => "success",
        ValidationResponse::Failure(failure) => failure.code.as_str(),
    };
    app.metrics.count_validation(code);

    let document = write_validation_response(&outcome, protocol == Protocol::V3);
    response::xml(document)
}

async fn validate(app: &App, parts: &Parts, protocol: Protocol) -> ValidationResponse {
    let Some((ticket, service, renew)) = required_params(parts) else {
        return ValidationResponse::failure(
            ErrorCode::InvalidRequest,
            "Parameters ticket and service are required, each once",
        );
    };

    match sso::validate_service_ticket(app.store(), &ticket, &service, renew).await {
        Ok(grant) => ValidationResponse::Success(success(app, grant, protocol)),
        Err(error) => ValidationResponse::failure(error.code, error.message),
    }
}

fn required_params(parts: &Parts) -> Option<(String, String, bool)> {
    let params = Params::from_query(parts.uri.query()).ok()?;
    let ticket = params.non_empty("ticket").ok()??;
    let service = params.non_empty("service").ok()??;
    let renew = params.flag("renew").ok()?;
    Some((ticket.to_owned(), service.to_owned(), renew))
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
