//! `POST /samlValidate?TARGET=<service>`: SAML 1.1 validation of a service ticket. The
//! body is a SOAP envelope whose `samlp:AssertionArtifact` is the ticket. The response
//! is a `samlp:Response` in a SOAP envelope, with an assertion about the user on
//! success. The ticket is consumed exactly as by `/serviceValidate`.
//!
//! Every outcome the protocol covers is HTTP 200 with a SAML status in the body: a
//! missing `TARGET` or a body that is not a SAML 1.1 request gives `samlp:Requester`, an
//! unusable ticket `samlp:Requester` with `samlp:RequestDenied`, a store failure
//! `samlp:Responder`. Only a body larger than [`MAX_SAML_REQUEST_BYTES`] (413) or one
//! that does not arrive within [`FORM_READ_TIMEOUT`] (408) changes the HTTP status, and
//! those responses still carry a SAML failure. The router rejects GET and HEAD with 405.
//!
//! The assertion's `Issuer` is the host of the `server_name` setting. The Host header is
//! chosen by the client, so no part of the response comes from it.

use std::time::SystemTime;

use http::header::{HeaderValue, CONTENT_TYPE};
use http::request::Parts;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use cas_core::saml::{
    parse_saml_request, write_saml_response, SamlAssertion, SamlFailure, SamlOutcome, SamlRequest,
    SamlResponse, MAX_SAML_REQUEST_BYTES,
};
use cas_core::validation::ErrorCode;

use super::login::FORM_READ_TIMEOUT;
use super::params::Params;
use super::response::{self, Body};
use crate::app::App;
use crate::release::released_attributes;
use crate::sso;
use crate::tickets::random_ticket_bytes;

/// A request that ends before validation, with its HTTP status and SAML failure.
struct Rejection {
    status: StatusCode,
    failure: SamlFailure,
    request_id: Option<String>,
}

impl Rejection {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            failure: SamlFailure {
                code,
                message: message.into(),
            },
            request_id: None,
        }
    }
}

/// Handles `POST /samlValidate`.
pub async fn post(app: &App, parts: &Parts, body: Incoming) -> Response<Body> {
    let target = target_param(parts);
    let (status, request_id, outcome) = match read_request(body).await {
        Ok(request) => {
            let target = target
                .as_ref()
                .map(|t| t.as_deref().map_err(|message| *message));
            let outcome = validate(app, parts, target, &request).await;
            (StatusCode::OK, request.request_id, outcome)
        }
        Err(rejection) => (
            rejection.status,
            rejection.request_id,
            SamlOutcome::Failure(rejection.failure),
        ),
    };

    let code = match &outcome {
        SamlOutcome::Success(_) => "success",
        SamlOutcome::Failure(failure) => failure.code.as_str(),
    };
    app.metrics.count_validation(code);

    let document = write_saml_response(&SamlResponse {
        response_id: random_id().unwrap_or_else(|| "_0".into()),
        issue_instant: SystemTime::now(),
        in_response_to: request_id,
        recipient: target.and_then(|t| t.ok()),
        outcome,
    });
    soap_response(status, document)
}

/// Returns `TARGET` when the query has it once and not empty; the error is the message.
fn target_param(parts: &Parts) -> Option<Result<String, &'static str>> {
    let Ok(params) = Params::from_query(parts.uri.query()) else {
        return Some(Err("The query string is not valid"));
    };
    match params.non_empty("TARGET") {
        Ok(Some(target)) => Some(Ok(target.to_owned())),
        Ok(None) => None,
        Err(_) => Some(Err("Parameter TARGET is given more than once")),
    }
}

async fn read_request(body: Incoming) -> Result<SamlRequest, Rejection> {
    let reading = tokio::time::timeout(
        FORM_READ_TIMEOUT,
        Limited::new(body, MAX_SAML_REQUEST_BYTES).collect(),
    );
    let Ok(read) = reading.await else {
        tracing::info!("samlValidate body not received within the read timeout");
        return Err(Rejection::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::InvalidRequest,
            "The request body did not arrive in time",
        ));
    };
    let bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => {
            return Err(Rejection::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                format!("The request body exceeds {MAX_SAML_REQUEST_BYTES} bytes"),
            ));
        }
        Err(error) => {
            tracing::info!(%error, "samlValidate body could not be read");
            return Err(Rejection::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "The request body could not be read",
            ));
        }
    };

    parse_saml_request(&bytes).map_err(|error| {
        tracing::info!(%error, "samlValidate request rejected");
        Rejection::new(
            StatusCode::OK,
            ErrorCode::InvalidRequest,
            format!("The body is not a SAML 1.1 request: {error}"),
        )
    })
}

async fn validate(
    app: &App,
    parts: &Parts,
    target: Option<Result<&str, &'static str>>,
    request: &SamlRequest,
) -> SamlOutcome {
    let failure = |code, message: &str| {
        SamlOutcome::Failure(SamlFailure {
            code,
            message: message.to_owned(),
        })
    };
    let target = match target {
        Some(Ok(target)) => target,
        Some(Err(message)) => return failure(ErrorCode::InvalidRequest, message),
        None => return failure(ErrorCode::InvalidRequest, "Parameter TARGET is required"),
    };
    // A repeated `renew` fails like on the other validation endpoints. Reading it as
    // absent would accept a ticket from single sign-on that the service refuses.
    let Ok(renew) = Params::from_query(parts.uri.query()).and_then(|params| params.flag("renew"))
    else {
        return failure(
            ErrorCode::InvalidRequest,
            "Parameter renew is given more than once",
        );
    };

    let grant =
        match sso::validate_service_ticket(app.store(), &request.artifact, target, renew).await {
            Ok(grant) => grant,
            Err(error) => return failure(error.code, error.message),
        };
    let Some(assertion_id) = random_id() else {
        tracing::error!("random source failed during samlValidate");
        return failure(
            ErrorCode::InternalError,
            "Validation failed, try again later",
        );
    };

    SamlOutcome::Success(SamlAssertion {
        assertion_id,
        issuer: app.config.server_name.host().to_owned(),
        attributes: released_attributes(&grant, &app.registry()),
        audience: grant.service.as_str().to_owned(),
        authenticated_at: grant.authenticated_at,
        user: grant.user,
    })
}

/// Returns a random `xsd:ID`: an underscore and 40 hex digits.
fn random_id() -> Option<String> {
    let bytes = random_ticket_bytes().ok()?;
    Some(format!("_{}", hex::encode(bytes)))
}

fn soap_response(status: StatusCode, document: String) -> Response<Body> {
    let mut response = response::xml(document);
    *response.status_mut() = status;
    // SOAP 1.1 messages are text/xml.
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=UTF-8"),
    );
    response
}
