//! Headers of the request forwarded to the origin: client copies of the filter's headers
//! removed, the session cookie hidden, the identity headers added.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::cookies::{without_cookie, SESSION_COOKIE};

/// Every header the filter sets starts with this prefix, compared case-insensitively.
pub const FILTER_HEADER_PREFIX: &str = "x-cas-";

/// The signed-in user: UTF-8, percent-encoded as [`encode_user`] describes.
pub const USER_HEADER: &str = "X-CAS-User";

/// The HS256 identity assertion (JWT) origins must verify before trusting any identity.
pub const ASSERTION_HEADER: &str = "X-CAS-Assertion";

/// Bytes escaped in [`USER_HEADER`]: controls, space, `%` and everything outside ASCII
/// (which `utf8_percent_encode` always escapes).
const USER_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'%');

/// Returns whether `name` is one of the filter's headers, which only the filter may set.
pub fn is_filter_header(name: &str) -> bool {
    let prefix = FILTER_HEADER_PREFIX.len();
    name.len() >= prefix
        && name.as_bytes()[..prefix].eq_ignore_ascii_case(FILTER_HEADER_PREFIX.as_bytes())
}

/// Removes every copy of every filter header, whatever its case.
pub fn scrub(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(name, _)| !is_filter_header(name))
        .collect()
}

/// Encodes a user name for [`USER_HEADER`]: its UTF-8 bytes with controls, space, `%` and
/// every non-ASCII byte percent-encoded, so `张三` becomes `%E5%BC%A0%E4%B8%89`. Any
/// percent-decoder restores the name.
pub fn encode_user(user: &str) -> String {
    utf8_percent_encode(user, USER_ESCAPES).to_string()
}

/// Builds the headers of the origin request: the client's headers without the filter's headers,
/// `Host` (the origin URL sets it) or the session cookie, plus the identity headers.
pub fn origin_headers(
    incoming: Vec<(String, String)>,
    user: &str,
    assertion: &str,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in scrub(incoming) {
        if name.eq_ignore_ascii_case("host") {
            continue;
        }
        if !name.eq_ignore_ascii_case("cookie") {
            headers.push((name, value));
            continue;
        }
        if let Some(kept) = without_cookie(&value, SESSION_COOKIE) {
            headers.push((name, kept));
        }
    }

    headers.push((USER_HEADER.to_owned(), encode_user(user)));
    headers.push((ASSERTION_HEADER.to_owned(), assertion.to_owned()));
    headers
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
    fn scrub_removes_every_copy() {
        let incoming = pairs(&[
            ("x-cas-user", "admin"),
            ("Accept", "text/html"),
            ("X-CAS-USER", "root"),
            ("X-Cas-Assertion", "forged"),
            ("x-cas-user", "again"),
            ("X-CAS-Whatever", "1"),
        ]);

        assert_eq!(scrub(incoming), pairs(&[("Accept", "text/html")]));
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

        let headers = origin_headers(incoming, "张三", "h.p.s");

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

        let headers = origin_headers(incoming, "alice", "h.p.s");

        assert!(headers
            .iter()
            .all(|(name, _)| !name.eq_ignore_ascii_case("cookie")));
    }
}
