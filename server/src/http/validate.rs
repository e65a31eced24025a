//! `GET /serviceValidate` (CAS 2.0) and `GET /p3/serviceValidate` (CAS 3.0 with
//! attributes): consume a service ticket and return the CAS XML response.

use std::time::SystemTime;

use http::request::Parts;
use http::Response;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use cas_core::validation::{Attributes, AuthenticationSuccess, ErrorCode, ValidationResponse};
use cas_core::xml_write::write_validation_response;

use super::params::Params;
use super::response::{self, Body};
use crate::app::App;
use crate::sso;
use crate::tickets::ServiceGrant;

/// CAS protocol version of a validation endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `/serviceValidate`: the user only.
    V2,
    /// `/p3/serviceValidate`: the user and the authentication attributes.
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
        Ok(grant) => ValidationResponse::Success(success(grant, protocol)),
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

fn success(grant: ServiceGrant, protocol: Protocol) -> AuthenticationSuccess {
    let attributes = match protocol {
        Protocol::V2 => Attributes::new(),
        Protocol::V3 => authentication_attributes(&grant),
    };
    AuthenticationSuccess {
        user: grant.user,
        attributes,
        ..Default::default()
    }
}

/// Returns the attributes CAS 3.0 servers commonly release about the authentication itself.
/// `/p3/serviceValidate` and `/samlValidate` both release them.
pub(super) fn authentication_attributes(grant: &ServiceGrant) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(
        "authenticationDate".into(),
        vec![rfc3339(grant.authenticated_at)],
    );
    attributes.insert(
        "isFromNewLogin".into(),
        vec![grant.from_new_login.to_string()],
    );
    attributes.insert(
        "longTermAuthenticationRequestTokenUsed".into(),
        vec!["false".into()],
    );
    attributes
}

fn rfc3339(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);

        assert_eq!(rfc3339(time), "2023-11-14T22:13:20Z");
    }
}
