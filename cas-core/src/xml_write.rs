//! Writes CAS 3.0 `cas:serviceResponse` XML documents for validation and `/proxy`.
//!
//! Every value is escaped by [`crate::xml_document::push_escaped`]. Characters that
//! XML 1.0 forbids (controls other than tab, newline and carriage return) become U+FFFD.
//! An attribute name that is not an XML name is written with each offending character as `_xHHHH_`,
//! the convention of .NET's XmlConvert.EncodeName, so `given name` becomes `given_x0020_name`
//! (see [`encode_xml_name`]).

use quick_xml::events::BytesText;

use crate::validation::{
    Attributes, AuthenticationFailure, AuthenticationSuccess, ProxyResponse, ValidationResponse,
};
use crate::xml_document::XmlDocument;

/// The CAS XML namespace.
pub const CAS_NAMESPACE: &str = "http://www.yale.edu/tp/cas";

/// Serialises a validation response; `with_attributes` is false for CAS 2.0 endpoints.
pub fn write_validation_response(response: &ValidationResponse, with_attributes: bool) -> String {
    let mut document = start_document();
    match response {
        ValidationResponse::Success(success) => {
            write_success(&mut document, success, with_attributes)
        }
        ValidationResponse::Failure(failure) => {
            write_failure(&mut document, "cas:authenticationFailure", failure)
        }
    }
    finish_document(document)
}

/// Serialises a `/proxy` response: `cas:proxySuccess` or `cas:proxyFailure`.
pub fn write_proxy_response(response: &ProxyResponse) -> String {
    let mut document = start_document();
    match response {
        ProxyResponse::Success { proxy_ticket } => {
            document.start("cas:proxySuccess");
            document.text_element("cas:proxyTicket", None, proxy_ticket);
            document.end("cas:proxySuccess");
        }
        ProxyResponse::Failure(failure) => {
            write_failure(&mut document, "cas:proxyFailure", failure)
        }
    }
    finish_document(document)
}

/// Writes the XML declaration and opens the `cas:serviceResponse` root.
fn start_document() -> XmlDocument {
    let mut document = XmlDocument::new();
    document.start_with_attribute("cas:serviceResponse", Some(("xmlns:cas", CAS_NAMESPACE)));
    document
}

fn finish_document(mut document: XmlDocument) -> String {
    document.end("cas:serviceResponse");
    document.finish()
}

fn write_success(
    document: &mut XmlDocument,
    success: &AuthenticationSuccess,
    with_attributes: bool,
) {
    document.start("cas:authenticationSuccess");
    document.text_element("cas:user", None, &success.user);

    if with_attributes && !success.attributes.is_empty() {
        write_attributes(document, &success.attributes);
    }
    if let Some(iou) = &success.proxy_granting_ticket_iou {
        document.text_element("cas:proxyGrantingTicket", None, iou);
    }
    if !success.proxies.is_empty() {
        document.start("cas:proxies");
        for proxy in &success.proxies {
            document.text_element("cas:proxy", None, proxy);
        }
        document.end("cas:proxies");
    }
    document.end("cas:authenticationSuccess");
}

fn write_attributes(document: &mut XmlDocument, attributes: &Attributes) {
    document.start("cas:attributes");
    let mut element = String::new();
    for (name, values) in attributes {
        element.clear();
        element.push_str("cas:");
        element.push_str(&encode_xml_name(name));
        for value in values {
            document.text_element(&element, None, value);
        }
    }
    document.end("cas:attributes");
}

fn write_failure(document: &mut XmlDocument, element: &str, failure: &AuthenticationFailure) {
    let code = Some(("code", failure.code.as_str()));
    document.text_element(element, code, &failure.message);
}

/// Builds XML character data from `text`: characters XML 1.0 cannot carry become
/// U+FFFD, markup characters become entities, and a carriage return becomes `&#13;`.
/// A raw CR or CRLF would reach the client as LF, because XML parsers normalise line
/// ends (XML 1.0, section 2.11).
pub fn xml_text(text: &str) -> BytesText<'_> {
    if !text.chars().any(needs_escape) {
        return BytesText::from_escaped(text);
    }
    let escaped = quick_xml::escape::escape(xml_safe_text(text)).replace('\r', "&#13;");
    BytesText::from_escaped(escaped)
}

/// Returns whether [`xml_text`] changes `c`: a markup character, a carriage return or
/// a character XML 1.0 cannot carry.
fn needs_escape(c: char) -> bool {
    matches!(c, '<' | '>' | '&' | '\'' | '"' | '\r') || !is_xml_char(c)
}

/// Replaces characters that XML 1.0 cannot carry with U+FFFD.
pub fn xml_safe_text(text: &str) -> String {
    text.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

/// Returns whether XML 1.0 can carry `c` in text.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Returns whether `name` is an XML element name without a colon.
pub(crate) fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Encodes `name` as an XML element name without a colon, as .NET's
/// `XmlConvert.EncodeName` does. Each invalid character becomes `_xHHHH_` (`_xHHHHHHHH_`
/// beyond U+FFFF). An underscore that would start such a sequence becomes `_x005F_`, so
/// every encoded name decodes back to its original.
pub fn encode_xml_name(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for (index, c) in name.char_indices() {
        let valid = if index == 0 {
            is_name_start(c)
        } else {
            is_name_char(c)
        };
        if c == '_' && starts_escape(&name[index..]) {
            encoded.push_str("_x005F_");
        } else if valid {
            encoded.push(c);
        } else if u32::from(c) > 0xFFFF {
            encoded.push_str(&format!("_x{:08X}_", u32::from(c)));
        } else {
            encoded.push_str(&format!("_x{:04X}_", u32::from(c)));
        }
    }
    if encoded.is_empty() {
        encoded.push_str("_x0000_");
    }
    encoded
}

/// Returns whether `text` starts with `_xHHHH_` or `_xHHHHHHHH_`.
/// Decodes a name written by [`encode_xml_name`]: each `_xHHHH_` or `_xHHHHHHHH_`
/// becomes its character. A sequence for a character that XML cannot carry stays as it is,
/// and the name `_x0000_` is the empty name.
pub fn decode_xml_name(name: &str) -> String {
    if name == "_x0000_" {
        return String::new();
    }

    let mut decoded = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        match escaped_char(rest) {
            Some((escaped, length)) => {
                decoded.push(escaped);
                rest = &rest[length..];
            }
            None => {
                decoded.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    decoded
}

/// Returns the character of the escape sequence at the start of `text` and the
/// sequence's length in bytes.
fn escaped_char(text: &str) -> Option<(char, usize)> {
    let rest = text.strip_prefix("_x")?;
    [8, 4].iter().find_map(|&digits| {
        let hex = rest.get(..digits)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || rest.as_bytes().get(digits) != Some(&b'_')
        {
            return None;
        }
        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
        is_xml_char(c).then_some((c, digits + 3))
    })
}

fn starts_escape(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("_x") else {
        return false;
    };
    [4, 8].iter().any(|&digits| {
        rest.len() > digits
            && rest.as_bytes()[..digits].iter().all(u8::is_ascii_hexdigit)
            && rest.as_bytes()[digits] == b'_'
    })
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!c.is_ascii() && c.is_alphabetic())
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::ErrorCode;

    fn success(user: &str) -> AuthenticationSuccess {
        AuthenticationSuccess {
            user: user.into(),
            ..Default::default()
        }
    }

    #[test]
    fn success_contains_user_in_namespace() {
        let xml = write_validation_response(&ValidationResponse::Success(success("alice")), true);

        assert!(xml.contains(r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">"#));
        assert!(xml.contains("<cas:user>alice</cas:user>"));
    }

    #[test]
    fn failure_carries_code() {
        let response =
            ValidationResponse::failure(ErrorCode::InvalidTicket, "Ticket not recognized");
        let xml = write_validation_response(&response, true);

        assert!(xml.contains(r#"<cas:authenticationFailure code="INVALID_TICKET">Ticket not recognized</cas:authenticationFailure>"#));
    }

    #[test]
    fn hostile_values_are_escaped() {
        let mut value = success("</cas:user><cas:user>admin");
        value
            .attributes
            .insert("mail".into(), vec!["a&b<c>\"d'".into()]);
        let xml = write_validation_response(&ValidationResponse::Success(value), true);

        assert!(xml.contains("<cas:user>&lt;/cas:user&gt;&lt;cas:user&gt;admin</cas:user>"));
        assert!(xml.contains("a&amp;b&lt;c&gt;"));
        assert_eq!(xml.matches("<cas:user>").count(), 1);
    }

    #[test]
    fn forbidden_characters_are_replaced() {
        let xml = write_validation_response(
            &ValidationResponse::Success(success("a\u{0}b\u{1b}c")),
            true,
        );

        assert!(xml.contains("<cas:user>a\u{FFFD}b\u{FFFD}c</cas:user>"));
    }

    #[test]
    fn carriage_return_survives_parsing() {
        let xml =
            write_validation_response(&ValidationResponse::Success(success("a\r\nb\rc\nd")), true);

        assert!(
            xml.contains("<cas:user>a&#13;\nb&#13;c\nd</cas:user>"),
            "{xml}"
        );
        assert!(!xml.contains('\r'), "{xml}");
    }

    #[test]
    fn attribute_names_are_encoded() {
        assert_eq!(encode_xml_name("memberOf"), "memberOf");
        assert_eq!(encode_xml_name("given name"), "given_x0020_name");
        assert_eq!(encode_xml_name("1st"), "_x0031_st");
        assert_eq!(encode_xml_name("a:b><x"), "a_x003A_b_x003E__x003C_x");
        assert_eq!(encode_xml_name("部门"), "部门");
        assert_eq!(encode_xml_name(""), "_x0000_");
        assert_eq!(encode_xml_name("-a"), "_x002D_a");
    }

    #[test]
    fn encoded_names_stay_unambiguous() {
        assert_eq!(encode_xml_name("a_x0020_b"), "a_x005F_x0020_b");
        assert_eq!(encode_xml_name("_x0001F600_"), "_x005F_x0001F600_");
        assert_eq!(encode_xml_name("snake_case_x"), "snake_case_x");
        assert_eq!(encode_xml_name("mood😀"), "mood_x0001F600_");
    }

    #[test]
    fn success_document_layout() {
        let mut value = success("alice");
        value
            .attributes
            .insert("mail".into(), vec!["a@b".into(), "x&y".into()]);
        value
            .attributes
            .insert("given name".into(), vec![String::new()]);
        value.proxy_granting_ticket_iou = Some("PGTIOU-1".into());
        value.proxies = vec!["https://b/cb".into(), "https://a/cb?x=1&y=2".into()];
        let xml = write_validation_response(&ValidationResponse::Success(value), true);

        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>alice</cas:user>
    <cas:attributes>
      <cas:given_x0020_name></cas:given_x0020_name>
      <cas:mail>a@b</cas:mail>
      <cas:mail>x&amp;y</cas:mail>
    </cas:attributes>
    <cas:proxyGrantingTicket>PGTIOU-1</cas:proxyGrantingTicket>
    <cas:proxies>
      <cas:proxy>https://b/cb</cas:proxy>
      <cas:proxy>https://a/cb?x=1&amp;y=2</cas:proxy>
    </cas:proxies>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#;
        assert_eq!(xml, expected);
    }

    #[test]
    fn failure_document_layout() {
        let response = ValidationResponse::failure(ErrorCode::InvalidRequest, "<b>&\r");
        let xml = write_validation_response(&response, true);

        let expected = r#"<?xml version="1.0" encoding="UTF-8"?>
<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationFailure code="INVALID_REQUEST">&lt;b&gt;&amp;&#13;</cas:authenticationFailure>
</cas:serviceResponse>"#;
        assert_eq!(xml, expected);
    }

    #[test]
    fn attributes_omitted_without_v3() {
        let mut value = success("alice");
        value
            .attributes
            .insert("mail".into(), vec!["a@example.org".into()]);
        let xml = write_validation_response(&ValidationResponse::Success(value), false);

        assert!(!xml.contains("cas:attributes"));
    }

    #[test]
    fn proxy_success_carries_ticket() {
        let response = ProxyResponse::Success {
            proxy_ticket: "PT-0123456789abcdef0123456789abcdef".into(),
        };
        let xml = write_proxy_response(&response);

        assert!(xml.contains(r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">"#));
        assert!(xml.contains(
            "<cas:proxySuccess>\n    <cas:proxyTicket>PT-0123456789abcdef0123456789abcdef</cas:proxyTicket>"
        ));
    }

    #[test]
    fn proxy_failure_carries_code_escaped() {
        let response = ProxyResponse::failure(ErrorCode::UnauthorizedService, "<b>&");
        let xml = write_proxy_response(&response);

        assert!(xml.contains(
            r#"<cas:proxyFailure code="UNAUTHORIZED_SERVICE">&lt;b&gt;&amp;</cas:proxyFailure>"#
        ));
        assert!(!xml.contains("authenticationFailure"));
    }

    #[test]
    fn proxies_keep_their_order() {
        let mut value = success("alice");
        value.proxies = vec!["https://b.example/cb".into(), "https://a.example/cb".into()];
        let xml = write_validation_response(&ValidationResponse::Success(value), false);

        let second = xml.find("https://b.example/cb").expect("most recent proxy");
        let first = xml.find("https://a.example/cb").expect("first proxy");
        assert!(second < first);
        assert!(xml.contains("<cas:proxies>"));
    }

    #[test]
    fn multi_valued_attributes_repeat() {
        let mut value = success("alice");
        value
            .attributes
            .insert("memberOf".into(), vec!["staff".into(), "dev".into()]);
        let xml = write_validation_response(&ValidationResponse::Success(value), true);

        assert!(xml.contains("<cas:memberOf>staff</cas:memberOf>"));
        assert!(xml.contains("<cas:memberOf>dev</cas:memberOf>"));
    }

    #[test]
    fn decoding_reverses_encoding() {
        for name in [
            "memberOf",
            "given name",
            "1st",
            "a:b",
            "a_x0020_b",
            "",
            "部门",
            "😀x",
            "_x",
        ] {
            assert_eq!(decode_xml_name(&encode_xml_name(name)), name, "{name}");
        }
    }

    #[test]
    fn decoding_keeps_unusable_sequences() {
        assert_eq!(decode_xml_name("a_x0000_b"), "a_x0000_b");
        assert_eq!(decode_xml_name("a_xD800_b"), "a_xD800_b");
        assert_eq!(decode_xml_name("a_x00_b"), "a_x00_b");
        assert_eq!(decode_xml_name("_x0041_"), "A");
    }
}
