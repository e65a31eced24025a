//! Single logout: the CAS server's back-channel POST, whose form field `logoutRequest`
//! contains a SAML 2.0 `samlp:LogoutRequest` naming the service ticket that started the
//! session in `samlp:SessionIndex`. The parser is strict and bounded, so hostile input
//! is a 400, never a 500.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::flow::MAX_TICKET_BYTES;
use crate::session::session_id;

/// Largest logout request body read, in bytes. Apereo CAS sends well under 1 KB.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 4;

/// Name of the form field that carries the logout request.
pub const FORM_FIELD: &str = "logoutRequest";

/// The SAML 2.0 protocol namespace of `LogoutRequest` and `SessionIndex`.
const SAMLP_NAMESPACE: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";

/// Reason a body is not a usable logout request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutError {
    #[error("logout request body exceeds {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("logout request is not well-formed XML: {0}")]
    Malformed(String),
    #[error("logout request contains a document type declaration")]
    DocumentType,
    #[error("logout request nests elements deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("root element is not samlp:LogoutRequest")]
    NotLogoutRequest,
    #[error("logout request needs exactly one non-empty samlp:SessionIndex")]
    SessionIndex,
}

/// Returns the `logoutRequest` field of a form body, or `None` when the body has none.
pub fn logout_field(form_body: &str) -> Option<String> {
    form_urlencoded::parse(form_body.as_bytes())
        .find(|(name, _)| name == FORM_FIELD)
        .map(|(_, value)| value.into_owned())
}

/// Parses a logout request and returns the session id of the ticket it names.
pub fn revoked_session(xml: &str) -> Result<String, LogoutError> {
    let ticket = session_index(xml)?;
    Ok(session_id(&ticket))
}

/// Returns the text of the one `samlp:SessionIndex` of a `samlp:LogoutRequest` document.
pub fn session_index(xml: &str) -> Result<String, LogoutError> {
    if xml.len() > MAX_BODY_BYTES {
        return Err(LogoutError::TooLarge);
    }

    let mut reader = NsReader::from_str(xml);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut indexes: Vec<String> = Vec::new();
    loop {
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|e| LogoutError::Malformed(e.to_string()))?;
        let in_samlp =
            matches!(namespace, ResolveResult::Bound(ns) if ns.as_ref() == SAMLP_NAMESPACE);
        match event {
            Event::Start(start) => {
                let local = samlp_name(in_samlp, start.local_name().as_ref());
                enter(&mut path, &mut indexes, local)?;
            }
            Event::Empty(start) => {
                let local = samlp_name(in_samlp, start.local_name().as_ref());
                enter(&mut path, &mut indexes, local)?;
                path.pop();
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(text) if in_session_index(&path) => {
                let text = text
                    .decode()
                    .map_err(|e| LogoutError::Malformed(e.to_string()))?;
                if let Some(index) = indexes.last_mut() {
                    index.push_str(&text);
                }
            }
            Event::GeneralRef(_) => {
                return Err(LogoutError::Malformed("entity reference".to_owned()))
            }
            Event::DocType(_) => return Err(LogoutError::DocumentType),
            Event::Eof => break,
            _ => {}
        }
    }

    only_index(indexes)
}

/// Returns the local name of an element in the SAML protocol namespace, or an empty name
/// for any other element.
fn samlp_name(in_samlp: bool, local: &[u8]) -> Vec<u8> {
    if in_samlp {
        local.to_vec()
    } else {
        Vec::new()
    }
}

/// Enters an element and starts a new text for each `SessionIndex` under the root.
fn enter(
    path: &mut Vec<Vec<u8>>,
    indexes: &mut Vec<String>,
    local: Vec<u8>,
) -> Result<(), LogoutError> {
    if path.is_empty() && local != b"LogoutRequest" {
        return Err(LogoutError::NotLogoutRequest);
    }
    if path.len() >= MAX_DEPTH {
        return Err(LogoutError::TooDeep);
    }
    path.push(local);
    if in_session_index(path) {
        indexes.push(String::new());
    }
    Ok(())
}

fn in_session_index(path: &[Vec<u8>]) -> bool {
    path.len() == 2 && path[1] == b"SessionIndex"
}

fn only_index(indexes: Vec<String>) -> Result<String, LogoutError> {
    let [ticket] = indexes.as_slice() else {
        return Err(LogoutError::SessionIndex);
    };
    let ticket = ticket.trim().to_owned();
    let printable = ticket.bytes().all(|b| b.is_ascii_graphic());
    if ticket.is_empty() || ticket.len() > MAX_TICKET_BYTES || !printable {
        return Err(LogoutError::SessionIndex);
    }
    Ok(ticket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(index: &str) -> String {
        format!(
            r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-1" Version="2.0" IssueInstant="2026-12-04T20:00:00Z"><saml:NameID>@NOT_USED@</saml:NameID>{index}</samlp:LogoutRequest>"#
        )
    }

    #[test]
    fn apereo_logout_request_parses() {
        let xml = request("<samlp:SessionIndex>ST-1-abc</samlp:SessionIndex>");

        assert_eq!(session_index(&xml), Ok("ST-1-abc".to_owned()));
        assert_eq!(revoked_session(&xml), Ok(session_id("ST-1-abc")));
    }

    #[test]
    fn form_field_is_decoded() {
        let body = "a=1&logoutRequest=%3Cx%3E+y&b=2";

        assert_eq!(logout_field(body), Some("<x> y".to_owned()));
        assert_eq!(logout_field("a=1"), None);
    }

    #[test]
    fn hostile_documents_are_rejected() {
        let doctype = format!(
            "<!DOCTYPE x [<!ENTITY e \"ST-1\">]>{}",
            request("<samlp:SessionIndex>&e;</samlp:SessionIndex>")
        );
        let deep = request(&format!(
            "<samlp:SessionIndex>ST-1</samlp:SessionIndex>{}{}",
            "<a>".repeat(10),
            "</a>".repeat(10)
        ));
        let huge = request(&format!(
            "<samlp:SessionIndex>ST-{}</samlp:SessionIndex>",
            "x".repeat(MAX_BODY_BYTES)
        ));

        assert_eq!(session_index(&doctype), Err(LogoutError::DocumentType));
        assert_eq!(session_index(&deep), Err(LogoutError::TooDeep));
        assert_eq!(session_index(&huge), Err(LogoutError::TooLarge));
    }

    #[test]
    fn wrong_shapes_are_rejected() {
        let foreign_root = "<LogoutRequest><SessionIndex>ST-1</SessionIndex></LogoutRequest>";
        let two = request(
            "<samlp:SessionIndex>ST-1</samlp:SessionIndex><samlp:SessionIndex>ST-2</samlp:SessionIndex>",
        );
        let long = request(&format!(
            "<samlp:SessionIndex>ST-{}</samlp:SessionIndex>",
            "x".repeat(MAX_TICKET_BYTES)
        ));

        assert_eq!(
            session_index(foreign_root),
            Err(LogoutError::NotLogoutRequest)
        );
        assert_eq!(session_index(&request("")), Err(LogoutError::SessionIndex));
        assert_eq!(
            session_index(&request("<samlp:SessionIndex> </samlp:SessionIndex>")),
            Err(LogoutError::SessionIndex)
        );
        assert_eq!(session_index(&two), Err(LogoutError::SessionIndex));
        assert_eq!(session_index(&long), Err(LogoutError::SessionIndex));
        assert!(matches!(
            session_index("<samlp:x"),
            Err(LogoutError::Malformed(_))
        ));
        assert!(session_index("").is_err());
        assert!(session_index("not xml").is_err());
    }

    #[test]
    fn entity_references_are_rejected() {
        let xml = request("<samlp:SessionIndex>ST-1&amp;x</samlp:SessionIndex>");

        assert!(matches!(
            session_index(&xml),
            Err(LogoutError::Malformed(_))
        ));
    }
}
