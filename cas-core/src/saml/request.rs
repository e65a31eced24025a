//! Parses the SOAP 1.1 envelope that a client posts to `/samlValidate`.
//!
//! Only the path `Envelope/Body/Request/AssertionArtifact` is read, with the envelope in
//! the SOAP 1.1 namespace and the request in the SAML 1.0 protocol namespace. A document
//! type declaration, an entity other than the five XML predefined ones, nesting deeper
//! than [`MAX_DEPTH`] or a body over [`MAX_SAML_REQUEST_BYTES`] is an error. A SOAP
//! `Header` and any other element outside that path are skipped.

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::{SAML1_PROTOCOL_NAMESPACE, SOAP_ENVELOPE_NAMESPACE};
use crate::xml_write::is_xml_char;

/// Maximum request body size, in bytes. A request carries one ticket, so real
/// clients send well under 1 KiB.
pub const MAX_SAML_REQUEST_BYTES: usize = 16 * 1024;

/// Maximum element nesting depth.
const MAX_DEPTH: usize = 16;

/// Maximum artifact length, in bytes. Longer text cannot be a ticket of this server.
const MAX_ARTIFACT_BYTES: usize = 256;

/// The parts of a SAML 1.1 request that validation uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlRequest {
    /// The `AssertionArtifact` text without surrounding whitespace: the service ticket.
    pub artifact: String,
    /// The `RequestID` attribute, echoed as `InResponseTo`. Apache mod_auth_cas 1.0.10
    /// sends none.
    pub request_id: Option<String>,
}

/// Reason a body is not an acceptable SAML 1.1 request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamlRequestError {
    #[error("request body exceeds {MAX_SAML_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("request is not well-formed XML: {0}")]
    Malformed(String),
    #[error("request contains a document type declaration")]
    DocumentType,
    #[error("request nests elements deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("request has no SOAP 1.1 Envelope with a Body and a SAML 1.0 Request")]
    NotSamlRequest,
    #[error("request has no AssertionArtifact")]
    MissingArtifact,
    #[error("request has more than one AssertionArtifact")]
    DuplicateArtifact,
    #[error("AssertionArtifact is longer than {MAX_ARTIFACT_BYTES} bytes")]
    ArtifactTooLong,
}

/// Parses a `/samlValidate` request body.
pub fn parse_saml_request(body: &[u8]) -> Result<SamlRequest, SamlRequestError> {
    if body.len() > MAX_SAML_REQUEST_BYTES {
        return Err(SamlRequestError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(malformed)?;

    let mut parser = Parser::default();
    let mut reader = NsReader::from_str(text);
    loop {
        let (namespace, event) = reader.read_resolved_event().map_err(malformed)?;
        let namespace = match namespace {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(start) => parser.start(&start, &namespace)?,
            Event::Empty(start) => {
                parser.start(&start, &namespace)?;
                parser.end()?;
            }
            Event::End(_) => parser.end()?,
            Event::Text(text) => parser.text(&text.decode().map_err(malformed)?),
            Event::CData(data) => parser.text(&data.decode().map_err(malformed)?),
            Event::GeneralRef(reference) => parser.text(&resolve_reference(&reference)?),
            Event::DocType(_) => return Err(SamlRequestError::DocumentType),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    parser.finish()
}

fn malformed(error: impl std::fmt::Display) -> SamlRequestError {
    SamlRequestError::Malformed(error.to_string())
}

fn resolve_reference(reference: &BytesRef<'_>) -> Result<String, SamlRequestError> {
    if let Some(c) = reference.resolve_char_ref().map_err(malformed)? {
        if !is_xml_char(c) {
            return Err(SamlRequestError::Malformed(format!(
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
            return Err(SamlRequestError::Malformed(format!(
                "unknown entity &{other};"
            )))
        }
    };
    Ok(resolved.to_owned())
}

/// Position of an element relative to the path to the artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Envelope,
    Body,
    Request,
    Artifact,
    /// Any element off the path, such as a SOAP Header. Its content is ignored.
    Other,
}

#[derive(Default)]
struct Parser {
    open: Vec<Place>,
    saw_envelope: bool,
    saw_request: bool,
    request_id: Option<String>,
    text: String,
    artifact: Option<String>,
    artifact_count: usize,
}

impl Parser {
    fn start(&mut self, start: &BytesStart<'_>, namespace: &str) -> Result<(), SamlRequestError> {
        if self.open.len() >= MAX_DEPTH {
            return Err(SamlRequestError::TooDeep);
        }

        let local = start.local_name();
        let place = self.place_of(local.as_ref(), namespace)?;
        match place {
            Place::Envelope => self.saw_envelope = true,
            Place::Request => {
                self.saw_request = true;
                self.request_id = request_id(start)?;
            }
            Place::Artifact => {
                self.artifact_count += 1;
                self.text.clear();
            }
            Place::Body | Place::Other => {}
        }
        self.open.push(place);
        Ok(())
    }

    /// Places a new element by its parent. The root must be a SOAP Envelope.
    fn place_of(&self, local: &[u8], namespace: &str) -> Result<Place, SamlRequestError> {
        let in_soap = namespace == SOAP_ENVELOPE_NAMESPACE;
        let in_samlp = namespace == SAML1_PROTOCOL_NAMESPACE;
        let place = match (self.open.last(), local) {
            (None, b"Envelope") if in_soap && !self.saw_envelope => Place::Envelope,
            (None, _) => return Err(SamlRequestError::NotSamlRequest),
            (Some(Place::Envelope), b"Body") if in_soap => Place::Body,
            (Some(Place::Body), b"Request") if in_samlp && !self.saw_request => Place::Request,
            (Some(Place::Request), b"AssertionArtifact") if in_samlp => Place::Artifact,
            _ => Place::Other,
        };
        Ok(place)
    }

    fn text(&mut self, text: &str) {
        if self.open.last() != Some(&Place::Artifact) {
            return;
        }
        // Bounded so that a long run of text cannot grow the buffer past the limit.
        if self.text.len() <= MAX_ARTIFACT_BYTES {
            self.text.push_str(text);
        }
    }

    fn end(&mut self) -> Result<(), SamlRequestError> {
        if self.open.pop() == Some(Place::Artifact) {
            let artifact = self.text.trim();
            if artifact.len() > MAX_ARTIFACT_BYTES {
                return Err(SamlRequestError::ArtifactTooLong);
            }
            self.artifact = Some(artifact.to_owned());
        }
        Ok(())
    }

    fn finish(self) -> Result<SamlRequest, SamlRequestError> {
        if !self.open.is_empty() {
            return Err(SamlRequestError::Malformed(
                "document ends before its elements are closed".into(),
            ));
        }
        if !self.saw_envelope || !self.saw_request {
            return Err(SamlRequestError::NotSamlRequest);
        }
        if self.artifact_count > 1 {
            return Err(SamlRequestError::DuplicateArtifact);
        }
        let artifact = self
            .artifact
            .filter(|artifact| !artifact.is_empty())
            .ok_or(SamlRequestError::MissingArtifact)?;
        Ok(SamlRequest {
            artifact,
            request_id: self.request_id,
        })
    }
}

/// Reads `RequestID`. It is echoed in the response, so it must be short and printable.
fn request_id(start: &BytesStart<'_>) -> Result<Option<String>, SamlRequestError> {
    let Some(attribute) = start.try_get_attribute("RequestID").map_err(malformed)? else {
        return Ok(None);
    };
    let value = attribute.unescape_value().map_err(malformed)?;
    let value = value.trim();
    let printable = value.len() <= MAX_ARTIFACT_BYTES && value.chars().all(|c| !c.is_control());
    if value.is_empty() || !printable {
        return Ok(None);
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request Apache mod_auth_cas 1.0.10 sends, byte for byte apart from the ticket.
    const MOD_AUTH_CAS: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?><SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body><samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\"  MajorVersion=\"1\" MinorVersion=\"1\"><samlp:AssertionArtifact>ST-abc</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>";

    /// The request of the CAS protocol specification, with whitespace around the ticket.
    const SPECIFICATION: &str = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">
  <SOAP-ENV:Header/>
  <SOAP-ENV:Body>
    <samlp:Request xmlns:samlp="urn:oasis:names:tc:SAML:1.0:protocol" MajorVersion="1"
      MinorVersion="1" RequestID="_192.168.16.51.1024506224022"
      IssueInstant="2002-06-19T17:03:44.022Z">
      <samlp:AssertionArtifact>
        ST-1-u4hrm3td92cLxpCvrjylcas.example.com
      </samlp:AssertionArtifact>
    </samlp:Request>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>"#;

    fn parse(body: &str) -> Result<SamlRequest, SamlRequestError> {
        parse_saml_request(body.as_bytes())
    }

    fn envelope(request: &str) -> String {
        format!("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>{request}</s:Body></s:Envelope>")
    }

    #[test]
    fn mod_auth_cas_request_parses() {
        let request = parse(MOD_AUTH_CAS).expect("valid");

        assert_eq!(request.artifact, "ST-abc");
        assert_eq!(request.request_id, None);
    }

    #[test]
    fn specification_request_parses_trimmed() {
        let request = parse(SPECIFICATION).expect("valid");

        assert_eq!(request.artifact, "ST-1-u4hrm3td92cLxpCvrjylcas.example.com");
        assert_eq!(
            request.request_id.as_deref(),
            Some("_192.168.16.51.1024506224022")
        );
    }

    #[test]
    fn default_namespace_prefixes_are_accepted() {
        let body = envelope(
            "<Request xmlns=\"urn:oasis:names:tc:SAML:1.0:protocol\"><AssertionArtifact>ST-x</AssertionArtifact></Request>",
        );

        assert_eq!(parse(&body).expect("valid").artifact, "ST-x");
    }

    #[test]
    fn wrong_namespaces_are_rejected() {
        let no_namespace = "<Envelope><Body><Request><AssertionArtifact>ST-x</AssertionArtifact></Request></Body></Envelope>";
        let saml2 = envelope("<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:2.0:protocol\"><p:AssertionArtifact>ST-x</p:AssertionArtifact></p:Request>");

        assert_eq!(parse(no_namespace), Err(SamlRequestError::NotSamlRequest));
        assert_eq!(parse(&saml2), Err(SamlRequestError::NotSamlRequest));
    }

    #[test]
    fn document_type_is_rejected() {
        let body = format!(
            "<!DOCTYPE x [<!ENTITY t \"ST-x\">]>{}",
            envelope("<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"><p:AssertionArtifact>&t;</p:AssertionArtifact></p:Request>")
        );

        assert_eq!(parse(&body), Err(SamlRequestError::DocumentType));
    }

    #[test]
    fn unknown_entity_is_rejected() {
        let body = envelope("<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"><p:AssertionArtifact>&xxe;</p:AssertionArtifact></p:Request>");

        assert!(matches!(parse(&body), Err(SamlRequestError::Malformed(_))));
    }

    #[test]
    fn predefined_entities_resolve() {
        let body = envelope("<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"><p:AssertionArtifact>ST-&amp;&#x41;</p:AssertionArtifact></p:Request>");

        assert_eq!(parse(&body).expect("valid").artifact, "ST-&A");
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let huge = "a".repeat(MAX_SAML_REQUEST_BYTES + 1);
        let deep = format!(
            "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">{}",
            "<x>".repeat(MAX_DEPTH + 1)
        );
        let long_artifact = envelope(&format!(
            "<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"><p:AssertionArtifact>{}</p:AssertionArtifact></p:Request>",
            "S".repeat(MAX_ARTIFACT_BYTES + 1)
        ));

        assert_eq!(parse(&huge), Err(SamlRequestError::TooLarge));
        assert_eq!(parse(&deep), Err(SamlRequestError::TooDeep));
        assert_eq!(
            parse(&long_artifact),
            Err(SamlRequestError::ArtifactTooLong)
        );
    }

    #[test]
    fn missing_or_repeated_artifact_is_rejected() {
        let missing =
            envelope("<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"></p:Request>");
        let empty = envelope("<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"><p:AssertionArtifact> </p:AssertionArtifact></p:Request>");
        let twice = envelope("<p:Request xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\"><p:AssertionArtifact>ST-a</p:AssertionArtifact><p:AssertionArtifact>ST-b</p:AssertionArtifact></p:Request>");

        assert_eq!(parse(&missing), Err(SamlRequestError::MissingArtifact));
        assert_eq!(parse(&empty), Err(SamlRequestError::MissingArtifact));
        assert_eq!(parse(&twice), Err(SamlRequestError::DuplicateArtifact));
    }

    #[test]
    fn garbage_is_rejected() {
        let unclosed = MOD_AUTH_CAS.replace("</SOAP-ENV:Envelope>", "");
        for body in [
            "",
            "not xml",
            "<a><b></a>",
            "\u{0}\u{1}",
            "<s:Envelope",
            unclosed.as_str(),
        ] {
            assert!(parse(body).is_err(), "{body:?}");
        }
        assert!(matches!(
            parse_saml_request(&[0xff, 0xfe, 0x00]),
            Err(SamlRequestError::Malformed(_))
        ));
    }

    #[test]
    fn artifact_outside_request_is_ignored() {
        let body = envelope("<p:AssertionArtifact xmlns:p=\"urn:oasis:names:tc:SAML:1.0:protocol\">ST-x</p:AssertionArtifact>");

        assert_eq!(parse(&body), Err(SamlRequestError::NotSamlRequest));
    }
}
