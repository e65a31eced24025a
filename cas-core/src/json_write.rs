//! Writes CAS 3.0 responses as JSON (`format=JSON`), mirroring the XML tree of
//! [`crate::xml_write`] without the `cas:` prefix:
//!
//! ```json
//! {"serviceResponse":{"authenticationSuccess":{"user":"alice","attributes":{"memberOf":["staff"]},
//!   "proxyGrantingTicket":"PGTIOU-…","proxies":["https://b.example/cb","https://a.example/cb"]}}}
//! {"serviceResponse":{"authenticationFailure":{"code":"INVALID_TICKET","description":"…"}}}
//! {"serviceResponse":{"proxySuccess":{"proxyTicket":"PT-…"}}}
//! {"serviceResponse":{"proxyFailure":{"code":"INVALID_REQUEST","description":"…"}}}
//! ```
//!
//! Members the XML leaves out are left out here too: `attributes` when empty or for a
//! CAS 2.0 endpoint, `proxyGrantingTicket` without a PGT IOU, and `proxies` when the
//! chain is empty. Every attribute is an array of strings, also when it has one value,
//! so a client reads one shape. `proxies` keeps the XML order, most recent proxy first.
//!
//! NOTE: the specification's JSON examples differ from its XML in two places: its
//! `/proxy` failure example is named `authenticationFailure`, and its `proxies` example
//! lists the first proxy first. This writer follows the XML in both, so the two formats
//! carry the same tree.

use serde::Serialize;

use crate::validation::{
    Attributes, AuthenticationFailure, AuthenticationSuccess, ProxyResponse, ValidationResponse,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    service_response: ServiceResponse<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ServiceResponse<'a> {
    AuthenticationSuccess(Success<'a>),
    AuthenticationFailure(Failure<'a>),
    ProxySuccess(ProxySuccess<'a>),
    ProxyFailure(Failure<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Success<'a> {
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a Attributes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_granting_ticket: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    proxies: &'a [String],
}

#[derive(Serialize)]
struct Failure<'a> {
    code: &'static str,
    description: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProxySuccess<'a> {
    proxy_ticket: &'a str,
}

/// Serialises a validation response; `with_attributes` is false for CAS 2.0 endpoints.
pub fn write_validation_response_json(
    response: &ValidationResponse,
    with_attributes: bool,
) -> String {
    let body = match response {
        ValidationResponse::Success(success) => {
            ServiceResponse::AuthenticationSuccess(success_of(success, with_attributes))
        }
        ValidationResponse::Failure(failure) => {
            ServiceResponse::AuthenticationFailure(failure_of(failure))
        }
    };
    to_json(body)
}

/// Serialises a `/proxy` response.
pub fn write_proxy_response_json(response: &ProxyResponse) -> String {
    let body = match response {
        ProxyResponse::Success { proxy_ticket } => ServiceResponse::ProxySuccess(ProxySuccess {
            proxy_ticket: proxy_ticket.as_str(),
        }),
        ProxyResponse::Failure(failure) => ServiceResponse::ProxyFailure(failure_of(failure)),
    };
    to_json(body)
}

fn success_of(success: &AuthenticationSuccess, with_attributes: bool) -> Success<'_> {
    let attributes = Some(&success.attributes).filter(|a| with_attributes && !a.is_empty());
    Success {
        user: &success.user,
        attributes,
        proxy_granting_ticket: success.proxy_granting_ticket_iou.as_deref(),
        proxies: &success.proxies,
    }
}

fn failure_of(failure: &AuthenticationFailure) -> Failure<'_> {
    Failure {
        code: failure.code.as_str(),
        description: &failure.message,
    }
}

fn to_json(body: ServiceResponse<'_>) -> String {
    let document = Document {
        service_response: body,
    };
    // Every field is a string, a list of strings or a map with string keys, and
    // serde_json serialises all of them. An empty string here would be a serde_json bug.
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::validation::ErrorCode;

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    fn full_success() -> AuthenticationSuccess {
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into(), "dev".into()]);
        attributes.insert("mail".into(), vec!["a@example.org".into()]);
        AuthenticationSuccess {
            user: "alice".into(),
            attributes,
            proxy_granting_ticket_iou: Some("PGTIOU-1".into()),
            proxies: vec!["https://b.example/cb".into(), "https://a.example/cb".into()],
        }
    }

    #[test]
    fn success_mirrors_the_xml_tree() {
        let text =
            write_validation_response_json(&ValidationResponse::Success(full_success()), true);

        assert_eq!(
            parse(&text),
            json!({"serviceResponse": {"authenticationSuccess": {
                "user": "alice",
                "attributes": {"mail": ["a@example.org"], "memberOf": ["staff", "dev"]},
                "proxyGrantingTicket": "PGTIOU-1",
                "proxies": ["https://b.example/cb", "https://a.example/cb"],
            }}})
        );
    }

    #[test]
    fn absent_members_are_omitted() {
        let success = AuthenticationSuccess {
            user: "alice".into(),
            ..Default::default()
        };
        let text = write_validation_response_json(&ValidationResponse::Success(success), true);

        assert_eq!(
            parse(&text),
            json!({"serviceResponse": {"authenticationSuccess": {"user": "alice"}}})
        );
    }

    #[test]
    fn attributes_omitted_without_v3() {
        let text =
            write_validation_response_json(&ValidationResponse::Success(full_success()), false);

        let tree = parse(&text);
        let success = &tree["serviceResponse"]["authenticationSuccess"];
        assert!(success.get("attributes").is_none(), "{text}");
        assert_eq!(success["user"], "alice");
    }

    #[test]
    fn failure_has_code_and_description() {
        let response =
            ValidationResponse::failure(ErrorCode::InvalidTicket, "Ticket not recognized");
        let text = write_validation_response_json(&response, true);

        assert_eq!(
            parse(&text),
            json!({"serviceResponse": {"authenticationFailure": {
                "code": "INVALID_TICKET",
                "description": "Ticket not recognized",
            }}})
        );
    }

    #[test]
    fn proxy_responses_mirror_the_xml_tree() {
        let success = ProxyResponse::Success {
            proxy_ticket: "PT-1".into(),
        };
        let failure = ProxyResponse::failure(ErrorCode::UnauthorizedService, "no");

        assert_eq!(
            parse(&write_proxy_response_json(&success)),
            json!({"serviceResponse": {"proxySuccess": {"proxyTicket": "PT-1"}}})
        );
        assert_eq!(
            parse(&write_proxy_response_json(&failure)),
            json!({"serviceResponse": {"proxyFailure": {
                "code": "UNAUTHORIZED_SERVICE",
                "description": "no",
            }}})
        );
    }

    #[test]
    fn hostile_values_stay_strings() {
        let success = AuthenticationSuccess {
            user: "\"},\"user\":\"admin\u{0}</x>".into(),
            ..Default::default()
        };
        let text = write_validation_response_json(&ValidationResponse::Success(success), true);

        let tree = parse(&text);
        assert_eq!(
            tree["serviceResponse"]["authenticationSuccess"]["user"],
            "\"},\"user\":\"admin\u{0}</x>"
        );
        assert!(!text.contains('\u{0}'));
    }
}
