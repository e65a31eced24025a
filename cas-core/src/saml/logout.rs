//! Writes the SAML 2.0 `samlp:LogoutRequest` that CAS posts to a service, as the form
//! field `logoutRequest`, when an SSO session that gave the service a ticket ends.

use std::io;
use std::time::SystemTime;

use quick_xml::Writer;

use super::time::format_instant;
use super::{SAML2_ASSERTION_NAMESPACE, SAML2_PROTOCOL_NAMESPACE};
use crate::xml_write::{xml_safe_text, xml_text};

/// One logout request. Services find their local session by `session_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// A random identifier from the caller that starts with a letter or `_` (`xsd:ID`).
    pub id: String,
    pub issue_instant: SystemTime,
    /// The user name, as `saml:NameID`.
    pub user: String,
    /// The service ticket the service received, as `samlp:SessionIndex`.
    pub session_index: String,
}

/// Serialises `request` without an XML declaration, as CAS servers send it.
pub fn write_logout_request(request: &LogoutRequest) -> String {
    let mut writer = Writer::new(Vec::new());
    let written = write(&mut writer, request);

    // Writing into a Vec has no I/O error, so a failure here would be a quick-xml bug.
    debug_assert!(written.is_ok());
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

fn write(writer: &mut Writer<Vec<u8>>, request: &LogoutRequest) -> io::Result<()> {
    writer
        .create_element("samlp:LogoutRequest")
        .with_attribute(("xmlns:samlp", SAML2_PROTOCOL_NAMESPACE))
        .with_attribute(("xmlns:saml", SAML2_ASSERTION_NAMESPACE))
        .with_attribute(("ID", xml_safe_text(&request.id).as_str()))
        .with_attribute(("Version", "2.0"))
        .with_attribute((
            "IssueInstant",
            format_instant(request.issue_instant).as_str(),
        ))
        .write_inner_content(|writer| {
            writer
                .create_element("saml:NameID")
                .write_text_content(xml_text(&request.user))?;
            writer
                .create_element("samlp:SessionIndex")
                .write_text_content(xml_text(&request.session_index))?;
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn request_carries_ticket_as_session_index() {
        let request = LogoutRequest {
            id: "_abc".into(),
            issue_instant: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            user: "alice".into(),
            session_index: "ST-0123".into(),
        };

        assert_eq!(
            write_logout_request(&request),
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_abc\" Version=\"2.0\" \
             IssueInstant=\"2023-11-14T22:13:20.000Z\"><saml:NameID>alice</saml:NameID>\
             <samlp:SessionIndex>ST-0123</samlp:SessionIndex></samlp:LogoutRequest>"
        );
    }

    #[test]
    fn user_is_escaped() {
        let request = LogoutRequest {
            id: "_abc".into(),
            issue_instant: UNIX_EPOCH,
            user: "<x>&".into(),
            session_index: "ST-1".into(),
        };

        assert!(
            write_logout_request(&request).contains("<saml:NameID>&lt;x&gt;&amp;</saml:NameID>")
        );
    }
}
