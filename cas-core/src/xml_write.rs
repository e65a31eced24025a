//! Writes CAS 3.0 `cas:serviceResponse` XML documents for validation and `/proxy`.
//!
//! Every value goes through quick-xml's escaping. Characters that XML 1.0 forbids
//! (controls other than tab, newline and carriage return) become U+FFFD. An attribute
//! name that is not an XML name is written with each offending character as `_xHHHH_`,
//! the convention of .NET's XmlConvert.EncodeName, so `given name` becomes `given_x0020_name`
//! (see [`encode_xml_name`]).

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::validation::{
    Attributes, AuthenticationFailure, AuthenticationSuccess, ProxyResponse, ValidationResponse,
};

/// The CAS XML namespace.
pub const CAS_NAMESPACE: &str = "http://www.yale.edu/tp/cas";

/// Serialises a validation response; `with_attributes` is false for CAS 2.0 endpoints.
pub fn write_validation_response(response: &ValidationResponse, with_attributes: bool) -> String {
    write_document(|writer| match response {
        ValidationResponse::Success(success) => write_success(writer, success, with_attributes),
        ValidationResponse::Failure(failure) => {
            write_failure(writer, "cas:authenticationFailure", failure)
        }
    })
}

/// Serialises a `/proxy` response: `cas:proxySuccess` or `cas:proxyFailure`.
pub fn write_proxy_response(response: &ProxyResponse) -> String {
    write_document(|writer| match response {
        ProxyResponse::Success { proxy_ticket } => {
            writer
                .create_element("cas:proxySuccess")
                .write_inner_content(|writer| {
                    write_text_element(writer, "cas:proxyTicket", proxy_ticket)
                })?;
            Ok(())
        }
        ProxyResponse::Failure(failure) => write_failure(writer, "cas:proxyFailure", failure),
    })
}

/// Writes the XML declaration and the `cas:serviceResponse` root around `content`.
fn write_document(content: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    let written = writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .and_then(|()| {
            writer
                .create_element("cas:serviceResponse")
                .with_attribute(("xmlns:cas", CAS_NAMESPACE))
                .write_inner_content(content)
                .map(|_| ())
        });

    // Writing into a Vec cannot fail; a failure here would be a quick-xml bug.
    debug_assert!(written.is_ok());
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

fn write_success(
    writer: &mut Writer<Vec<u8>>,
    success: &AuthenticationSuccess,
    with_attributes: bool,
) -> io::Result<()> {
    writer
        .create_element("cas:authenticationSuccess")
        .write_inner_content(|writer| {
            write_text_element(writer, "cas:user", &success.user)?;

            if with_attributes && !success.attributes.is_empty() {
                write_attributes(writer, &success.attributes)?;
            }
            if let Some(iou) = &success.proxy_granting_ticket_iou {
                write_text_element(writer, "cas:proxyGrantingTicket", iou)?;
            }
            if !success.proxies.is_empty() {
                writer
                    .create_element("cas:proxies")
                    .write_inner_content(|writer| {
                        for proxy in &success.proxies {
                            write_text_element(writer, "cas:proxy", proxy)?;
                        }
                        Ok(())
                    })?;
            }
            Ok(())
        })?;
    Ok(())
}

fn write_attributes(writer: &mut Writer<Vec<u8>>, attributes: &Attributes) -> io::Result<()> {
    writer
        .create_element("cas:attributes")
        .write_inner_content(|writer| {
            for (name, values) in attributes {
                let element = format!("cas:{}", encode_xml_name(name));
                for value in values {
                    write_text_element(writer, &element, value)?;
                }
            }
            Ok(())
        })?;
    Ok(())
}

fn write_failure(
    writer: &mut Writer<Vec<u8>>,
    element: &str,
    failure: &AuthenticationFailure,
) -> io::Result<()> {
    writer
        .create_element(element)
        .with_attribute(("code", failure.code.as_str()))
        .write_text_content(xml_text(&failure.message))?;
    Ok(())
}

fn write_text_element(writer: &mut Writer<Vec<u8>>, name: &str, text: &str) -> io::Result<()> {
    writer
        .create_element(name)
        .write_text_content(xml_text(text))?;
    Ok(())
}

/// Builds XML character data from `text`: characters XML 1.0 cannot carry become
/// U+FFFD, markup characters become entities, and a carriage return becomes `&#13;`.
/// A raw CR or CRLF would reach the client as LF, because XML parsers normalise line
/// ends (XML 1.0, section 2.11).
pub fn xml_text(text: &str) -> BytesText<'static> {
    let escaped = quick_xml::escape::escape(xml_safe_text(text)).replace('\r', "&#13;");
    BytesText::from_escaped(escaped)
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
