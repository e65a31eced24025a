//! Parses CAS 3.0 `cas:serviceResponse` XML documents, as a client does after validation.
//!
//! The parser is strict: a document type declaration, an element outside the CAS
//! namespace where a CAS element is expected, an unknown entity, nesting deeper than
//! [`MAX_DEPTH`] or a body over [`MAX_RESPONSE_BYTES`] is an error, never a success.

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::validation::{
    AuthenticationFailure, AuthenticationSuccess, ErrorCode, ValidationResponse,
};
use crate::xml_write::{decode_xml_name, is_xml_char, is_xml_name, CAS_NAMESPACE};

/// Largest response body accepted, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 8;

/// Reason a body is not a CAS validation response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseParseError {
    #[error("response body exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("response is not well-formed XML: {0}")]
    Malformed(String),
    #[error("response contains a document type declaration")]
    DocumentType,
    #[error("response nests elements deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("unexpected element {0} in the response")]
    UnexpectedElement(String),
    #[error("response has neither authenticationSuccess nor authenticationFailure")]
    NoOutcome,
    #[error("authenticationSuccess has no user")]
    MissingUser,
    #[error("authenticationFailure has no known code")]
    UnknownCode,
}

/// Parses a validation response body.
pub fn parse_validation_response(body: &str) -> Result<ValidationResponse, ResponseParseError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(ResponseParseError::TooLarge);
    }
    if let Some(c) = body.chars().find(|c| !is_xml_char(*c)) {
        return Err(ResponseParseError::Malformed(format!(
            "U+{:04X} is not allowed in XML",
            u32::from(c)
        )));
    }

    let mut parser = Parser::default();
    let mut reader = NsReader::from_str(body);
    loop {
        let (namespace, event) = reader.read_resolved_event().map_err(malformed)?;
        let in_cas = matches!(namespace, ResolveResult::Bound(ns) if ns.as_ref() == CAS_NAMESPACE.as_bytes());
        match event {
            Event::Start(start) => parser.start(&start, in_cas)?,
            Event::Empty(start) => {
                parser.start(&start, in_cas)?;
                parser.end();
            }
            Event::End(_) => parser.end(),
            Event::Text(text) => parser.text(&text.decode().map_err(malformed)?),
            Event::CData(data) => parser.text(&data.decode().map_err(malformed)?),
            Event::GeneralRef(reference) => parser.text(&resolve_reference(&reference)?),
            Event::DocType(_) => return Err(ResponseParseError::DocumentType),
            Event::Eof if parser.path.is_empty() => break,
            Event::Eof => return Err(malformed("the document ends inside an element")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    parser.finish()
}

fn malformed(error: impl std::fmt::Display) -> ResponseParseError {
    ResponseParseError::Malformed(error.to_string())
}

fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, ResponseParseError> {
    if let Some(c) = reference.resolve_char_ref().map_err(malformed)? {
        if !is_xml_char(c) {
            return Err(ResponseParseError::Malformed(format!(
                "character reference to U+{:04X}",
                u32::from(c)
            )));
        }
        return Ok(c.to_string());
    }

    let name = reference.decode().map_err(malformed)?;
    let resolved = match name.as_ref() {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        other => {
            return Err(ResponseParseError::Malformed(format!(
                "unknown entity &{other};"
            )))
        }
    };
    Ok(resolved.to_owned())
}

#[derive(Default)]
struct Parser {
    /// Local names of the open elements, outermost first.
    path: Vec<String>,
    text: String,
    success: Option<AuthenticationSuccess>,
    user: Option<String>,
    failure_code: Option<Option<ErrorCode>>,
    failure_message: String,
}

impl Parser {
    fn start(&mut self, start: &BytesStart<'_>, in_cas: bool) -> Result<(), ResponseParseError> {
        let local = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        if self.path.len() >= MAX_DEPTH {
            return Err(ResponseParseError::TooDeep);
        }
        if !is_xml_name(&local) {
            return Err(malformed(format!("{local:?} is not an XML name")));
        }

        self.check_expected(&local, in_cas)?;
        if local == "authenticationFailure" && self.path.len() == 1 {
            self.failure_code = Some(failure_code(start)?);
        }
        if local == "authenticationSuccess" && self.path.len() == 1 {
            self.success = Some(AuthenticationSuccess::default());
        }

        self.path.push(local);
        self.text.clear();
        Ok(())
    }

    /// Checks that CAS elements appear only where the schema puts them. Elements inside
    /// `cas:attributes` may use any name; unknown extensions elsewhere are rejected.
    fn check_expected(&self, local: &str, in_cas: bool) -> Result<(), ResponseParseError> {
        let parent: Vec<&str> = self.path.iter().map(String::as_str).collect();
        let allowed = match parent.as_slice() {
            [] => local == "serviceResponse",
            ["serviceResponse"] => {
                matches!(local, "authenticationSuccess" | "authenticationFailure")
            }
            ["serviceResponse", "authenticationSuccess"] => {
                matches!(
                    local,
                    "user" | "attributes" | "proxyGrantingTicket" | "proxies"
                )
            }
            ["serviceResponse", "authenticationSuccess", "attributes"] => true,
            ["serviceResponse", "authenticationSuccess", "proxies"] => local == "proxy",
            _ => false,
        };
        if !allowed || !in_cas {
            return Err(ResponseParseError::UnexpectedElement(local.to_owned()));
        }
        Ok(())
    }

    fn text(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn end(&mut self) {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        // User names and attribute values stay byte for byte: trimming would make ` demo`
        // or `demo\u{a0}` the same identity as `demo`. Identifiers and messages are trimmed.
        let exact = std::mem::take(&mut self.text);
        let value = exact.trim().to_owned();

        match (path.as_slice(), self.success.as_mut()) {
            (["serviceResponse", "authenticationSuccess", "user"], Some(_)) => {
                self.user = Some(exact)
            }
            (["serviceResponse", "authenticationSuccess", "attributes", name], Some(success)) => {
                success
                    .attributes
                    .entry(decode_xml_name(name))
                    .or_default()
                    .push(exact);
            }
            (
                ["serviceResponse", "authenticationSuccess", "proxyGrantingTicket"],
                Some(success),
            ) => {
                success.proxy_granting_ticket_iou = Some(value);
            }
            (["serviceResponse", "authenticationSuccess", "proxies", "proxy"], Some(success)) => {
                success.proxies.push(value);
            }
            (["serviceResponse", "authenticationFailure"], _) => self.failure_message = value,
            _ => {}
        }
        self.path.pop();
    }

    fn finish(self) -> Result<ValidationResponse, ResponseParseError> {
        if let Some(code) = self.failure_code {
            let code = code.ok_or(ResponseParseError::UnknownCode)?;
            return Ok(ValidationResponse::Failure(AuthenticationFailure {
                code,
                message: self.failure_message,
            }));
        }

        let Some(mut success) = self.success else {
            return Err(ResponseParseError::NoOutcome);
        };
        success.user = self
            .user
            .filter(|user| !user.is_empty())
            .ok_or(ResponseParseError::MissingUser)?;
        Ok(ValidationResponse::Success(success))
    }
}

fn failure_code(start: &BytesStart<'_>) -> Result<Option<ErrorCode>, ResponseParseError> {
    let attribute = start.try_get_attribute("code").map_err(malformed)?;
    let Some(attribute) = attribute else {
        return Ok(None);
    };
    let value = attribute.unescape_value().map_err(malformed)?;
    Ok(ErrorCode::parse(value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml_write::write_validation_response;

    fn parse(body: &str) -> Result<ValidationResponse, ResponseParseError> {
        parse_validation_response(body)
    }

    fn success_of(body: &str) -> AuthenticationSuccess {
        match parse(body) {
            Ok(ValidationResponse::Success(success)) => success,
            other => panic!("expected success, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_written_success() {
        let mut expected = AuthenticationSuccess {
            user: "张三 <admin>&".into(),
            ..Default::default()
        };
        expected
            .attributes
            .insert("memberOf".into(), vec!["staff".into(), "a&b".into()]);
        expected
            .attributes
            .insert("显示名".into(), vec!["张三".into()]);
        expected.proxies = vec!["https://p2/".into(), "https://p1/".into()];
        expected.proxy_granting_ticket_iou = Some("PGTIOU-1".into());
        let xml = write_validation_response(&ValidationResponse::Success(expected.clone()), true);

        assert_eq!(success_of(&xml), expected);
    }

    #[test]
    fn round_trips_written_failure() {
        let expected = ValidationResponse::failure(ErrorCode::InvalidService, "service <mismatch>");
        let xml = write_validation_response(&expected, true);

        assert_eq!(parse(&xml), Ok(expected));
    }

    #[test]
    fn accepts_other_prefix_for_cas_namespace() {
        let body = r#"<x:serviceResponse xmlns:x="http://www.yale.edu/tp/cas"><x:authenticationSuccess><x:user>bob</x:user></x:authenticationSuccess></x:serviceResponse>"#;

        assert_eq!(success_of(body).user, "bob");
    }

    #[test]
    fn rejects_wrong_namespace() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://evil.example/"><cas:authenticationSuccess><cas:user>bob</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;

        assert!(matches!(
            parse(body),
            Err(ResponseParseError::UnexpectedElement(_))
        ));
    }

    #[test]
    fn rejects_doctype_and_entities() {
        let body = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "admin">]><cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>&e;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;

        assert_eq!(parse(body), Err(ResponseParseError::DocumentType));
    }

    #[test]
    fn rejects_unknown_entity() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>&e;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;

        assert!(matches!(parse(body), Err(ResponseParseError::Malformed(_))));
    }

    #[test]
    fn rejects_garbage_and_empty() {
        for body in [
            "",
            "not xml",
            "<html><body>502</body></html>",
            "<cas:serviceResponse",
            "\u{0}",
        ] {
            assert!(parse(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn rejects_success_without_user() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess></cas:authenticationSuccess></cas:serviceResponse>"#;

        assert_eq!(parse(body), Err(ResponseParseError::MissingUser));
    }

    #[test]
    fn rejects_user_injected_outside_success() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:user>admin</cas:user></cas:serviceResponse>"#;

        assert!(matches!(
            parse(body),
            Err(ResponseParseError::UnexpectedElement(_))
        ));
    }

    #[test]
    fn rejects_deep_nesting_and_huge_body() {
        let deep = format!(
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:attributes><cas:a>{}</cas:a></cas:attributes></cas:authenticationSuccess></cas:serviceResponse>"#,
            "<cas:b>".repeat(20)
        );
        assert!(parse(&deep).is_err());

        let huge = "x".repeat(MAX_RESPONSE_BYTES + 1);
        assert_eq!(parse(&huge), Err(ResponseParseError::TooLarge));
    }

    #[test]
    fn failure_with_unknown_code_is_an_error() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="WHATEVER">x</cas:authenticationFailure></cas:serviceResponse>"#;

        assert_eq!(parse(body), Err(ResponseParseError::UnknownCode));
    }

    #[test]
    fn decodes_character_references() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>a&#x5F20;&#65;&amp;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;

        assert_eq!(success_of(body).user, "a张A&");
    }

    #[test]
    fn user_whitespace_is_kept_exactly() {
        for user in [" demo", "demo\u{a0}", "demo\u{3000}", "demo\n", "de mo"] {
            let expected = AuthenticationSuccess {
                user: user.into(),
                ..Default::default()
            };
            let xml =
                write_validation_response(&ValidationResponse::Success(expected.clone()), true);

            assert_eq!(success_of(&xml).user, user, "{user:?}");
        }
    }

    #[test]
    fn attribute_values_are_kept_exactly() {
        let mut expected = AuthenticationSuccess {
            user: "alice".into(),
            ..Default::default()
        };
        expected
            .attributes
            .insert("title".into(), vec![" lead ".into(), "".into()]);
        let xml = write_validation_response(&ValidationResponse::Success(expected.clone()), true);

        assert_eq!(success_of(&xml).attributes, expected.attributes);
    }

    #[test]
    fn rejects_truncated_documents() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>alice</cas:user>"#;

        assert!(matches!(parse(body), Err(ResponseParseError::Malformed(_))));
    }

    #[test]
    fn rejects_invalid_element_names() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>alice</cas:user><cas:attributes><cas:a&b></cas:a&b></cas:attributes></cas:authenticationSuccess></cas:serviceResponse>"#;

        assert!(matches!(parse(body), Err(ResponseParseError::Malformed(_))));
    }

    #[test]
    fn rejects_raw_forbidden_characters() {
        let body = "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationFailure code=\"INVALID_TICKET\">a\u{0}b</cas:authenticationFailure></cas:serviceResponse>";

        assert!(matches!(parse(body), Err(ResponseParseError::Malformed(_))));
    }

    #[test]
    fn rejects_references_to_forbidden_characters() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>de&#1;mo</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#;

        assert!(matches!(parse(body), Err(ResponseParseError::Malformed(_))));
    }
}
