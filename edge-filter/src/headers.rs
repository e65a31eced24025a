//! Headers of the request forwarded to the origin: client copies of the filter's headers
//! removed, the filter's cookies hidden, the identity headers added.

use cas_core::validation::Attributes;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::cookies::without_filter_cookies;

/// Every header the filter sets starts with this prefix, compared case-insensitively.
pub const FILTER_HEADER_PREFIX: &str = "x-cas-";

/// The signed-in user: UTF-8, percent-encoded as [`encode_user`] describes.
pub const USER_HEADER: &str = "X-CAS-User";

/// The HS256 identity assertion (JWT) origins must verify before trusting any identity.
pub const ASSERTION_HEADER: &str = "X-CAS-Assertion";

/// Prefix of the attribute headers: `X-CAS-Attr-` plus the name as [`attribute_header`] encodes it.
pub const ATTRIBUTE_HEADER_PREFIX: &str = "X-CAS-Attr-";

/// Bytes escaped in [`USER_HEADER`]: controls, space, `%` and everything outside ASCII
/// (which `utf8_percent_encode` always escapes).
const USER_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'%');

/// Bytes escaped in an attribute value: those of [`USER_ESCAPES`] plus `,`, which
/// separates the values of a multi-valued attribute.
const VALUE_ESCAPES: &AsciiSet = &USER_ESCAPES.add(b',');

/// Headers with which some origins replace the request path when routing, because IIS
/// URL Rewrite sets them: Symfony before 2.8.44 and 3.4.14, Zend Framework before its
/// August 2018 fix, and Yii 1 read them. The filter matches its rules against the
/// request path, so a client's copy could make such an origin serve a path under another
/// rule.
pub const PATH_OVERRIDE_HEADERS: [&str; 2] = ["x-original-url", "x-rewrite-url"];

/// Returns whether `name` is one of the filter's headers, which only the filter may set.
pub fn is_filter_header(name: &str) -> bool {
    let Some(start) = name.as_bytes().get(..FILTER_HEADER_PREFIX.len()) else {
        return false;
    };

    // CGI, PHP and WSGI origins read `X_CAS_User` as the same variable as `X-CAS-User`,
    // so underscores count as dashes here.
    let same = |(a, b): (&u8, &u8)| a.to_ascii_lowercase() == *b || (*a == b'_' && *b == b'-');
    start.iter().zip(FILTER_HEADER_PREFIX.as_bytes()).all(same)
}

/// Encodes a user name for [`USER_HEADER`]: its UTF-8 bytes with controls, space, `%` and
/// every non-ASCII byte percent-encoded, so `张三` becomes `%E5%BC%A0%E4%B8%89`. Any
/// percent-decoder restores the name.
pub fn encode_user(user: &str) -> String {
    utf8_percent_encode(user, USER_ESCAPES).to_string()
}

/// Builds the header name of attribute `name`: [`ATTRIBUTE_HEADER_PREFIX`] plus the name
/// with ASCII letters, digits and `-` kept and every other UTF-8 byte written as `_` and
/// two uppercase hex digits, so `member_of` becomes `X-CAS-Attr-member_5Fof`. Header names
/// are case-insensitive, so attributes whose names differ only in case share a header.
pub fn attribute_header(name: &str) -> String {
    let mut header = ATTRIBUTE_HEADER_PREFIX.to_owned();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            header.push(char::from(byte));
        } else {
            header.push_str(&format!("_{byte:02X}"));
        }
    }
    header
}

/// Encodes the values of an attribute: each percent-encoded like [`encode_user`] with `,`
/// escaped too, then joined with `,`. An attribute without values gives an empty string.
pub fn encode_values(values: &[String]) -> String {
    let encoded: Vec<String> = values
        .iter()
        .map(|value| utf8_percent_encode(value, VALUE_ESCAPES).to_string())
        .collect();
    encoded.join(",")
}

/// Changes that turn the client's headers into the origin request's headers. The glue
/// applies them to a copy of the incoming `Headers`, so headers that pass unchanged need
/// no `append` call each. [`HeaderEdits::apply`] is the same operation on a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Lowercase names whose every copy is removed, as `Headers.delete` does.
    pub delete: Vec<String>,
    /// Values that replace every copy of a header, as `Headers.set` does.
    pub set: Vec<(String, String)>,
    /// Headers added after the deletions and replacements, as `Headers.append` does.
    pub append: Vec<(String, String)>,
}

impl HeaderEdits {
    /// Applies the edits to `headers` in the order the glue does: deletions, then
    /// replacements, then additions. Names compare case-insensitively, as in `Headers`.
    pub fn apply(&self, mut headers: Vec<(String, String)>) -> Vec<(String, String)> {
        headers.retain(|(name, _)| !self.deletes(name));

        for (name, value) in &self.set {
            replace_header(&mut headers, name, value);
        }

        headers.extend(self.append.iter().cloned());
        headers
    }

    fn deletes(&self, name: &str) -> bool {
        self.delete
            .iter()
            .any(|deleted| deleted.eq_ignore_ascii_case(name))
    }

    fn delete_once(&mut self, name: &str) {
        if !self.deletes(name) {
            self.delete.push(name.to_ascii_lowercase());
        }
    }
}

/// Sets the first copy of `name` to `value` and removes the others, or adds the header
/// when there is none: the effect of `Headers.set`.
fn replace_header(headers: &mut Vec<(String, String)>, name: &str, value: &str) {
    let mut found = false;
    headers.retain_mut(|(header, current)| {
        if !header.eq_ignore_ascii_case(name) {
            return true;
        }
        if found {
            return false;
        }
        found = true;
        *current = value.to_owned();
        true
    });
    if !found {
        headers.push((name.to_owned(), value.to_owned()));
    }
}

/// Builds the edits of a request passed to the origin without identity: every filter
/// header, every [`PATH_OVERRIDE_HEADERS`] header and `Host` (the origin URL sets it)
/// deleted, and the filter's cookies removed from `Cookie`.
pub fn anonymous_edits(incoming: &[(String, String)]) -> HeaderEdits {
    let mut edits = HeaderEdits::default();
    for (name, _) in incoming {
        if is_filter_header(name) || is_path_override(name) || name.eq_ignore_ascii_case("host") {
            edits.delete_once(name);
        }
    }

    let cookies: Vec<&str> = incoming
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cookie"))
        .map(|(_, value)| value.as_str())
        .collect();
    let kept: Vec<String> = cookies
        .iter()
        .filter_map(|value| without_filter_cookies(value))
        .collect();
    let unchanged = kept.len() == cookies.len() && kept.iter().zip(&cookies).all(|(a, b)| a == b);
    if unchanged {
        return edits;
    }

    if kept.is_empty() {
        edits.delete_once("cookie");
    } else {
        edits.set.push(("Cookie".to_owned(), kept.join("; ")));
    }
    edits
}

/// Returns whether `name` is a [`PATH_OVERRIDE_HEADERS`] header, also with `_` for `-`,
/// which CGI, PHP and WSGI origins read as the same variable.
fn is_path_override(name: &str) -> bool {
    PATH_OVERRIDE_HEADERS.iter().any(|header| {
        header.len() == name.len()
            && header.bytes().zip(name.bytes()).all(|(wanted, byte)| {
                let byte = if byte == b'_' { b'-' } else { byte };
                byte.eq_ignore_ascii_case(&wanted)
            })
    })
}

/// Builds the edits of the origin request for a signed-in user: the anonymous edits plus
/// the `identity` headers that [`identity_headers`] made. The deletions remove every
/// client copy of these names first.
pub fn origin_edits(incoming: &[(String, String)], identity: &[(String, String)]) -> HeaderEdits {
    let mut edits = anonymous_edits(incoming);
    edits.append.extend(identity.iter().cloned());
    edits
}

/// Builds the identity headers of a signed-in user: `X-CAS-User`, `X-CAS-Assertion` and
/// one `X-CAS-Attr-*` header per attribute.
pub fn identity_headers(
    user: &str,
    assertion: &str,
    attributes: &Attributes,
) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(2 + attributes.len());
    headers.push((USER_HEADER.to_owned(), encode_user(user)));
    headers.push((ASSERTION_HEADER.to_owned(), assertion.to_owned()));
    for (name, values) in attributes {
        headers.push((attribute_header(name), encode_values(values)));
    }
    headers
}

/// Builds the headers of a request passed to the origin without identity: the client's
/// headers without the filter's headers, `Host` or the filter's cookies.
pub fn anonymous_headers(incoming: Vec<(String, String)>) -> Vec<(String, String)> {
    anonymous_edits(&incoming).apply(incoming)
}

/// Builds the headers of the origin request for a signed-in user: the anonymous headers
/// plus `X-CAS-User`, `X-CAS-Assertion` and one `X-CAS-Attr-*` header per attribute.
pub fn origin_headers(
    incoming: Vec<(String, String)>,
    user: &str,
    assertion: &str,
    attributes: &Attributes,
) -> Vec<(String, String)> {
    let identity = identity_headers(user, assertion, attributes);
    origin_edits(&incoming, &identity).apply(incoming)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn filter_header_match_ignores_case() {
        for name in [
            "x-cas-user",
            "X-CAS-User",
            "X-Cas-Assertion",
            "x-CaS-anything",
            "x-cas-",
            "X_CAS_User",
            "x_cas-assertion",
            "X-CAS_Attr-mail",
        ] {
            assert!(is_filter_header(name), "{name}");
        }
        for name in [
            "x-cas",
            "x-casuser",
            "cas-user",
            "x-forwarded-for",
            "",
            "xx-cas-user",
        ] {
            assert!(!is_filter_header(name), "{name}");
        }
    }

    #[test]
    fn anonymous_headers_remove_every_copy() {
        let incoming = pairs(&[
            ("x-cas-user", "admin"),
            ("Accept", "text/html"),
            ("X-CAS-USER", "root"),
            ("X-Cas-Assertion", "forged"),
            ("x-cas-user", "again"),
            ("X-CAS-Whatever", "1"),
        ]);

        assert_eq!(
            anonymous_headers(incoming),
            pairs(&[("Accept", "text/html")])
        );
    }

    #[test]
    fn edits_delete_each_filter_name_once() {
        let incoming = pairs(&[
            ("x-cas-user", "admin"),
            ("X-CAS-USER", "root"),
            ("X_CAS_Assertion", "forged"),
            ("Host", "edge.example"),
            ("Accept", "text/html"),
        ]);

        let edits = anonymous_edits(&incoming);

        assert_eq!(edits.delete, vec!["x-cas-user", "x_cas_assertion", "host"]);
        assert!(edits.set.is_empty());
        assert!(edits.append.is_empty());
    }

    #[test]
    fn edits_delete_path_override_headers() {
        let incoming = pairs(&[
            ("X-Original-URL", "/admin/secret"),
            ("x-rewrite-url", "/admin/secret"),
            ("X_Original_Url", "/admin/secret"),
            ("X-Original-Host", "edge.example"),
            ("Accept", "text/html"),
        ]);

        let edits = anonymous_edits(&incoming);

        assert_eq!(
            edits.delete,
            vec!["x-original-url", "x-rewrite-url", "x_original_url"]
        );
        assert_eq!(
            edits.apply(incoming),
            pairs(&[("X-Original-Host", "edge.example"), ("Accept", "text/html")])
        );
    }

    #[test]
    fn edits_leave_plain_cookies_alone() {
        let incoming = pairs(&[("cookie", "a=1; b=2")]);

        assert_eq!(anonymous_edits(&incoming), HeaderEdits::default());
    }

    #[test]
    fn edits_join_kept_cookie_headers() {
        let incoming = pairs(&[
            ("Cookie", "a=1; cas_edge_session=s"),
            ("cookie", "cas_edge_gateway=1"),
            ("Cookie", "b=2"),
        ]);

        let edits = anonymous_edits(&incoming);

        assert_eq!(edits.set, pairs(&[("Cookie", "a=1; b=2")]));
        assert_eq!(edits.apply(incoming), pairs(&[("Cookie", "a=1; b=2")]));
    }

    #[test]
    fn edits_remove_filter_cookies_from_joined_headers() {
        let incoming = pairs(&[("cookie", "a=1, cas_edge_session=s, b=2")]);

        let edits = anonymous_edits(&incoming);

        assert_eq!(edits.set, pairs(&[("Cookie", "a=1, b=2")]));
    }

    #[test]
    fn apply_follows_headers_methods() {
        let edits = HeaderEdits {
            delete: vec!["x-cas-user".to_owned()],
            set: pairs(&[("accept", "*/*"), ("Cookie", "a=1")]),
            append: pairs(&[("X-CAS-User", "alice")]),
        };
        let headers = pairs(&[
            ("X-Cas-User", "admin"),
            ("Accept", "text/html"),
            ("ACCEPT", "image/png"),
        ]);

        assert_eq!(
            edits.apply(headers),
            pairs(&[
                ("Accept", "*/*"),
                ("Cookie", "a=1"),
                ("X-CAS-User", "alice"),
            ])
        );
    }

    #[test]
    fn encode_user_escapes_non_ascii() {
        assert_eq!(encode_user("alice"), "alice");
        assert_eq!(encode_user("张三"), "%E5%BC%A0%E4%B8%89");
        assert_eq!(encode_user("a b%c"), "a%20b%25c");
        assert_eq!(
            encode_user("evil\r\nX-CAS-User: admin"),
            "evil%0D%0AX-CAS-User:%20admin"
        );
    }

    #[test]
    fn origin_headers_replace_identity() {
        let incoming = pairs(&[
            ("Host", "attacker.example"),
            ("X-CAS-User", "admin"),
            ("x-cas-assertion", "forged"),
            ("Cookie", "a=1; cas_edge_session=secret; b=2"),
            ("Accept-Language", "zh-CN"),
        ]);

        let headers = origin_headers(incoming, "张三", "h.p.s", &Attributes::new());

        assert_eq!(
            headers,
            pairs(&[
                ("Cookie", "a=1; b=2"),
                ("Accept-Language", "zh-CN"),
                ("X-CAS-User", "%E5%BC%A0%E4%B8%89"),
                ("X-CAS-Assertion", "h.p.s"),
            ])
        );
    }

    #[test]
    fn origin_headers_drop_cookie_with_only_session() {
        let incoming = pairs(&[("cookie", "cas_edge_session=secret")]);

        let headers = origin_headers(incoming, "alice", "h.p.s", &Attributes::new());

        assert!(headers
            .iter()
            .all(|(name, _)| !name.eq_ignore_ascii_case("cookie")));
    }

    #[test]
    fn attribute_names_become_tokens() {
        assert_eq!(attribute_header("memberOf"), "X-CAS-Attr-memberOf");
        assert_eq!(attribute_header("member_of"), "X-CAS-Attr-member_5Fof");
        assert_eq!(attribute_header("a b:c"), "X-CAS-Attr-a_20b_3Ac");
        assert_eq!(attribute_header("部"), "X-CAS-Attr-_E9_83_A8");
        assert_eq!(attribute_header("x\r\ny"), "X-CAS-Attr-x_0D_0Ay");
    }

    #[test]
    fn attribute_values_join_with_commas() {
        let values = vec!["staff".to_owned(), "a,b".to_owned(), "张 三".to_owned()];

        assert_eq!(encode_values(&values), "staff,a%2Cb,%E5%BC%A0%20%E4%B8%89");
        assert_eq!(encode_values(&[]), "");
    }

    #[test]
    fn origin_headers_carry_attributes() {
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into(), "dev".into()]);
        attributes.insert("mail".into(), vec!["a@example.org".into()]);
        let incoming = pairs(&[("X-CAS-Attr-memberOf", "admin")]);

        let headers = origin_headers(incoming, "alice", "h.p.s", &attributes);

        assert_eq!(
            headers,
            pairs(&[
                ("X-CAS-User", "alice"),
                ("X-CAS-Assertion", "h.p.s"),
                ("X-CAS-Attr-mail", "a@example.org"),
                ("X-CAS-Attr-memberOf", "staff,dev"),
            ])
        );
    }

    #[test]
    fn anonymous_headers_drop_filter_cookies() {
        let incoming = pairs(&[
            ("x-cas-user", "admin"),
            ("cookie", "cas_edge_gateway=1; a=1; cas_edge_session=s"),
        ]);

        assert_eq!(anonymous_headers(incoming), pairs(&[("cookie", "a=1")]));
    }
}
