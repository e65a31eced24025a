//! Writes the SAML 1.1 response of `/samlValidate`: a `samlp:Response` in a SOAP 1.1
//! envelope, laid out as the sample response of the Apereo CAS 4.2 SAML protocol
//! documentation. Apache mod_auth_cas 1.0.10 reads the status code, the
//! `NameIdentifier` and the attributes from that layout.
//!
//! Every value goes through quick-xml's escaping after [`xml_safe_text`], and text
//! through [`xml_text`], which also keeps carriage returns.

use std::io;
use std::time::{Duration, SystemTime};

use quick_xml::events::{BytesDecl, Event};
use quick_xml::Writer;

use super::time::format_instant;
use super::{SAML1_ASSERTION_NAMESPACE, SAML1_PROTOCOL_NAMESPACE, SOAP_ENVELOPE_NAMESPACE};
use crate::validation::{Attributes, ErrorCode};
use crate::xml_write::{xml_safe_text, xml_text};

/// `AttributeNamespace` of every released attribute, as in the Apereo CAS sample.
pub const ATTRIBUTE_NAMESPACE: &str = "http://www.ja-sig.org/products/cas/";

/// Allowed clock difference between this server and the client: the assertion is valid
/// from this long before its issue instant until this long after it.
pub const ASSERTION_VALIDITY_SKEW: Duration = Duration::from_secs(30);

const PASSWORD_METHOD: &str = "urn:oasis:names:tc:SAML:1.0:am:password";
const ARTIFACT_CONFIRMATION: &str = "urn:oasis:names:tc:SAML:1.0:cm:artifact";

/// A `/samlValidate` response. The identifiers are random values from the caller, each
/// starting with a letter or `_` because SAML 1.1 types them as `xsd:ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlResponse {
    pub response_id: String,
    pub issue_instant: SystemTime,
    /// The request's `RequestID`, when it had one.
    pub in_response_to: Option<String>,
    /// The service URL (`TARGET`), when the request named one.
    pub recipient: Option<String>,
    pub outcome: SamlOutcome,
}

/// A validated ticket or the reason it did not validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SamlOutcome {
    Success(SamlAssertion),
    Failure(SamlFailure),
}

/// The statements of an assertion about the user who presented the ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlAssertion {
    pub assertion_id: String,
    /// The `Issuer` attribute: the CAS server's host name. Callers take it from their
    /// configuration, because a request's Host header is chosen by the client.
    pub issuer: String,
    pub user: String,
    /// The service the ticket was issued for, written as the only `Audience`.
    pub audience: String,
    pub authenticated_at: SystemTime,
    /// Released attributes. Each value becomes one `AttributeValue`.
    pub attributes: Attributes,
}

/// A failed validation with its CAS error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlFailure {
    pub code: ErrorCode,
    pub message: String,
}

impl SamlFailure {
    /// Returns the top-level SAML 1.1 status code and the second-level one, if any.
    /// The client is at fault except for [`ErrorCode::InternalError`].
    pub fn status_codes(&self) -> (&'static str, Option<&'static str>) {
        match self.code {
            ErrorCode::InternalError => ("samlp:Responder", None),
            ErrorCode::InvalidRequest => ("samlp:Requester", None),
            _ => ("samlp:Requester", Some("samlp:RequestDenied")),
        }
    }
}

/// Serialises a response in its SOAP envelope.
pub fn write_saml_response(response: &SamlResponse) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let written = write_envelope(&mut writer, response);

    // Writing into a Vec has no I/O error, so a failure here would be a quick-xml bug.
    debug_assert!(written.is_ok());
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

fn write_envelope(writer: &mut Writer<Vec<u8>>, response: &SamlResponse) -> io::Result<()> {
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer
        .create_element("SOAP-ENV:Envelope")
        .with_attribute(("xmlns:SOAP-ENV", SOAP_ENVELOPE_NAMESPACE))
        .write_inner_content(|writer| {
            writer.create_element("SOAP-ENV:Header").write_empty()?;
            writer
                .create_element("SOAP-ENV:Body")
                .write_inner_content(|writer| write_response(writer, response))?;
            Ok(())
        })?;
    Ok(())
}

fn write_response(writer: &mut Writer<Vec<u8>>, response: &SamlResponse) -> io::Result<()> {
    let issue_instant = format_instant(response.issue_instant);
    let mut element = writer
        .create_element("samlp:Response")
        .with_attribute(("xmlns:samlp", SAML1_PROTOCOL_NAMESPACE))
        .with_attribute(("xmlns:saml", SAML1_ASSERTION_NAMESPACE))
        .with_attribute(("ResponseID", safe(&response.response_id).as_str()))
        .with_attribute(("IssueInstant", issue_instant.as_str()))
        .with_attribute(("MajorVersion", "1"))
        .with_attribute(("MinorVersion", "1"));
    if let Some(request_id) = &response.in_response_to {
        element = element.with_attribute(("InResponseTo", safe(request_id).as_str()));
    }
    if let Some(recipient) = &response.recipient {
        element = element.with_attribute(("Recipient", safe(recipient).as_str()));
    }

    element.write_inner_content(|writer| match &response.outcome {
        SamlOutcome::Success(assertion) => {
            write_status(writer, ("samlp:Success", None), None)?;
            write_assertion(writer, assertion, response.issue_instant)
        }
        SamlOutcome::Failure(failure) => {
            let message = format!("{}: {}", failure.code.as_str(), failure.message);
            write_status(writer, failure.status_codes(), Some(&message))
        }
    })?;
    Ok(())
}

fn write_status(
    writer: &mut Writer<Vec<u8>>,
    (code, second_level): (&str, Option<&str>),
    message: Option<&str>,
) -> io::Result<()> {
    writer
        .create_element("samlp:Status")
        .write_inner_content(|writer| {
            let status = writer
                .create_element("samlp:StatusCode")
                .with_attribute(("Value", code));
            match second_level {
                Some(inner) => {
                    status.write_inner_content(|writer| {
                        writer
                            .create_element("samlp:StatusCode")
                            .with_attribute(("Value", inner))
                            .write_empty()?;
                        Ok(())
                    })?;
                }
                None => {
                    status.write_empty()?;
                }
            }
            if let Some(message) = message {
                write_text_element(writer, "samlp:StatusMessage", message)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_assertion(
    writer: &mut Writer<Vec<u8>>,
    assertion: &SamlAssertion,
    issue_instant: SystemTime,
) -> io::Result<()> {
    let not_before = issue_instant
        .checked_sub(ASSERTION_VALIDITY_SKEW)
        .unwrap_or(issue_instant);
    let not_on_or_after = issue_instant + ASSERTION_VALIDITY_SKEW;

    writer
        .create_element("saml:Assertion")
        .with_attribute(("AssertionID", safe(&assertion.assertion_id).as_str()))
        .with_attribute(("IssueInstant", format_instant(issue_instant).as_str()))
        .with_attribute(("Issuer", safe(&assertion.issuer).as_str()))
        .with_attribute(("MajorVersion", "1"))
        .with_attribute(("MinorVersion", "1"))
        .write_inner_content(|writer| {
            writer
                .create_element("saml:Conditions")
                .with_attribute(("NotBefore", format_instant(not_before).as_str()))
                .with_attribute(("NotOnOrAfter", format_instant(not_on_or_after).as_str()))
                .write_inner_content(|writer| {
                    writer
                        .create_element("saml:AudienceRestrictionCondition")
                        .write_inner_content(|writer| {
                            write_text_element(writer, "saml:Audience", &assertion.audience)
                        })?;
                    Ok(())
                })?;
            // SAML 1.1 requires at least one Attribute in an AttributeStatement.
            if !assertion.attributes.is_empty() {
                write_attribute_statement(writer, assertion)?;
            }
            write_authentication_statement(writer, assertion)
        })?;
    Ok(())
}

fn write_authentication_statement(
    writer: &mut Writer<Vec<u8>>,
    assertion: &SamlAssertion,
) -> io::Result<()> {
    let instant = format_instant(assertion.authenticated_at);
    writer
        .create_element("saml:AuthenticationStatement")
        .with_attribute(("AuthenticationInstant", instant.as_str()))
        .with_attribute(("AuthenticationMethod", PASSWORD_METHOD))
        .write_inner_content(|writer| write_subject(writer, &assertion.user))?;
    Ok(())
}

fn write_attribute_statement(
    writer: &mut Writer<Vec<u8>>,
    assertion: &SamlAssertion,
) -> io::Result<()> {
    writer
        .create_element("saml:AttributeStatement")
        .write_inner_content(|writer| {
            write_subject(writer, &assertion.user)?;
            for (name, values) in &assertion.attributes {
                writer
                    .create_element("saml:Attribute")
                    .with_attribute(("AttributeName", safe(name).as_str()))
                    .with_attribute(("AttributeNamespace", ATTRIBUTE_NAMESPACE))
                    .write_inner_content(|writer| {
                        for value in values {
                            write_text_element(writer, "saml:AttributeValue", value)?;
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_subject(writer: &mut Writer<Vec<u8>>, user: &str) -> io::Result<()> {
    writer
        .create_element("saml:Subject")
        .write_inner_content(|writer| {
            write_text_element(writer, "saml:NameIdentifier", user)?;
            writer
                .create_element("saml:SubjectConfirmation")
                .write_inner_content(|writer| {
                    write_text_element(writer, "saml:ConfirmationMethod", ARTIFACT_CONFIRMATION)
                })?;
            Ok(())
        })?;
    Ok(())
}

fn write_text_element(writer: &mut Writer<Vec<u8>>, name: &str, text: &str) -> io::Result<()> {
    writer
        .create_element(name)
        .write_text_content(xml_text(text))?;
    Ok(())
}

/// Replaces characters XML cannot carry; quick-xml then escapes markup characters.
fn safe(text: &str) -> String {
    xml_safe_text(text)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn instant() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn success(attributes: Attributes) -> SamlResponse {
        SamlResponse {
            response_id: "_r1".into(),
            issue_instant: instant(),
            in_response_to: Some("_q1".into()),
            recipient: Some("https://app.example/".into()),
            outcome: SamlOutcome::Success(SamlAssertion {
                assertion_id: "_a1".into(),
                issuer: "cas.example".into(),
                user: "alice".into(),
                audience: "https://app.example/".into(),
                authenticated_at: instant(),
                attributes,
            }),
        }
    }

    fn failure(code: ErrorCode) -> SamlResponse {
        SamlResponse {
            outcome: SamlOutcome::Failure(SamlFailure {
                code,
                message: "Ticket not recognized".into(),
            }),
            ..success(Attributes::new())
        }
    }

    #[test]
    fn success_has_status_conditions_and_subject() {
        let xml = write_saml_response(&success(Attributes::new()));

        assert!(xml.contains(r#"<samlp:StatusCode Value="samlp:Success"/>"#));
        assert!(xml.contains(r#"InResponseTo="_q1""#));
        assert!(xml.contains(r#"NotBefore="2023-11-14T22:12:50.000Z""#));
        assert!(xml.contains(r#"NotOnOrAfter="2023-11-14T22:13:50.000Z""#));
        assert!(xml.contains("<saml:Audience>https://app.example/</saml:Audience>"));
        assert!(xml.contains("<saml:NameIdentifier>alice</saml:NameIdentifier>"));
        assert!(xml.contains(PASSWORD_METHOD));
    }

    #[test]
    fn attribute_statement_only_with_attributes() {
        let without = write_saml_response(&success(Attributes::new()));
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into(), "dev".into()]);
        let with = write_saml_response(&success(attributes));

        assert!(!without.contains("saml:AttributeStatement"));
        assert!(with.contains(r#"<saml:Attribute AttributeName="memberOf" AttributeNamespace="http://www.ja-sig.org/products/cas/">"#));
        assert_eq!(with.matches("<saml:AttributeValue>").count(), 2);
    }

    #[test]
    fn failure_statuses_follow_error_code() {
        let denied = write_saml_response(&failure(ErrorCode::InvalidTicket));
        let internal = write_saml_response(&failure(ErrorCode::InternalError));
        let bad_request = write_saml_response(&failure(ErrorCode::InvalidRequest));

        assert!(denied.contains(r#"<samlp:StatusCode Value="samlp:Requester">"#));
        assert!(denied.contains(r#"<samlp:StatusCode Value="samlp:RequestDenied"/>"#));
        assert!(denied.contains(
            "<samlp:StatusMessage>INVALID_TICKET: Ticket not recognized</samlp:StatusMessage>"
        ));
        assert!(!denied.contains("saml:Assertion"));
        assert!(internal.contains(r#"<samlp:StatusCode Value="samlp:Responder"/>"#));
        assert!(bad_request.contains(r#"<samlp:StatusCode Value="samlp:Requester"/>"#));
    }

    #[test]
    fn hostile_values_are_escaped() {
        let mut attributes = Attributes::new();
        attributes.insert("a\"b<".into(), vec!["</saml:AttributeValue>&\u{0}".into()]);
        let mut response = success(attributes);
        response.recipient = Some("https://app.example/?a=1&b=\"2\"".into());
        if let SamlOutcome::Success(assertion) = &mut response.outcome {
            assertion.user = "</saml:NameIdentifier>admin".into();
        }
        let xml = write_saml_response(&response);

        assert!(xml.contains("&lt;/saml:NameIdentifier&gt;admin"));
        assert!(xml.contains(r#"AttributeName="a&quot;b&lt;""#));
        assert!(xml.contains("&lt;/saml:AttributeValue&gt;&amp;\u{FFFD}"));
        assert!(xml.contains(r#"Recipient="https://app.example/?a=1&amp;b=&quot;2&quot;""#));
    }
}
