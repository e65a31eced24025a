//! The `format` parameter (`XML` or `JSON`) and the CAS response written in the format
//! it selects.

use http::Response;

use cas_core::json_write::{write_proxy_response_json, write_validation_response_json};
use cas_core::response_format::ResponseFormat;
use cas_core::validation::{ProxyResponse, ValidationResponse};
use cas_core::xml_write::{write_proxy_response, write_validation_response};

use super::params::{Params, ParamsError};
use super::response::{self, Body};

/// Message of the failure for an unsupported or repeated `format` parameter, which is
/// written as XML because no other format was validly requested.
pub const UNSUPPORTED_FORMAT: &str = "Parameter format must be XML or JSON, given at most once";

/// Returns the requested format: XML when `format` is absent or empty, `None` when it
/// is repeated or names another format.
pub fn requested_format(params: &Params) -> Option<ResponseFormat> {
    match params.non_empty("format") {
        Ok(None) => Some(ResponseFormat::Xml),
        Ok(Some(value)) => ResponseFormat::parse(value),
        Err(_) => None,
    }
}

/// Builds the response to a validation; `with_attributes` is false for CAS 2.0 endpoints.
pub fn validation_response(
    outcome: &ValidationResponse,
    with_attributes: bool,
    format: ResponseFormat,
) -> Response<Body> {
    match format {
        ResponseFormat::Xml => response::xml(write_validation_response(outcome, with_attributes)),
        ResponseFormat::Json => {
            response::json(write_validation_response_json(outcome, with_attributes))
        }
    }
}

/// Builds the response to `/proxy`.
pub fn proxy_response(outcome: &ProxyResponse, format: ResponseFormat) -> Response<Body> {
    match format {
        ResponseFormat::Xml => response::xml(write_proxy_response(outcome)),
        ResponseFormat::Json => response::json(write_proxy_response_json(outcome)),
    }
}

/// Builds the response to HEAD on a validation endpoint or `/proxy`: status 200 and the
/// headers of the GET response in the requested format (XML for an unsupported one, as
/// GET does). Nothing is validated or issued, so no ticket is consumed, and the body's
/// length stays unknown.
pub fn head_response(query: &Result<Params, ParamsError>) -> Response<Body> {
    let format = query
        .as_ref()
        .ok()
        .and_then(requested_format)
        .unwrap_or(ResponseFormat::Xml);
    let response = match format {
        ResponseFormat::Xml => response::xml(String::new()),
        ResponseFormat::Json => response::json(String::new()),
    };
    response::with_unknown_length(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(query: &str) -> Option<ResponseFormat> {
        requested_format(&Params::from_query(Some(query)).expect("valid query"))
    }

    #[test]
    fn format_defaults_to_xml() {
        assert_eq!(format_of(""), Some(ResponseFormat::Xml));
        assert_eq!(format_of("format="), Some(ResponseFormat::Xml));
        assert_eq!(format_of("format=json"), Some(ResponseFormat::Json));
    }

    #[test]
    fn unknown_or_repeated_format_is_an_error() {
        assert_eq!(format_of("format=HTML"), None);
        assert_eq!(format_of("format=JSON&format=XML"), None);
    }
}
