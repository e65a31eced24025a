//! The filter's own cookies in `Cookie` and `Set-Cookie` headers. All of them start with
//! [`FILTER_COOKIE_PREFIX`] and none is ever forwarded to the origin.

/// Every cookie the filter sets starts with this prefix, whatever `COOKIE_NAME_PREFIX`
/// is, so each site's filter also removes the cookies of other sites' filters.
pub const FILTER_COOKIE_PREFIX: &str = "cas_edge_";

/// Names of the cookies one site's filter sets: its `COOKIE_NAME_PREFIX` followed by
/// `session`, `redirects` and `gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieNames {
    /// The session cookie.
    pub session: String,
    /// The cookie that counts login redirects.
    pub redirects: String,
    /// The cookie that marks a gateway attempt.
    pub gateway: String,
}

impl CookieNames {
    /// Builds the names from `prefix`, which must start with [`FILTER_COOKIE_PREFIX`].
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            session: format!("{prefix}session"),
            redirects: format!("{prefix}redirects"),
            gateway: format!("{prefix}gateway"),
        }
    }
}

impl Default for CookieNames {
    fn default() -> Self {
        Self::with_prefix(FILTER_COOKIE_PREFIX)
    }
}

/// Returns the values of every cookie called `name` in a `Cookie` header, in order.
/// Browsers send several cookies of one name when paths or domains differ. A `,` also
/// separates cookies here, because workerd joins repeated `Cookie` headers with `, `.
/// The filter's own cookie values never contain `,`.
pub fn cookie_values<'a>(header: &'a str, name: &str) -> Vec<&'a str> {
    // A one-character pattern is found with `memchr`. A two-character pattern would
    // decode and compare the header one character at a time.
    header
        .split(';')
        .flat_map(|part| part.split(','))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(pair_name, _)| pair_name.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .collect()
}

/// Removes every cookie whose name starts with [`FILTER_COOKIE_PREFIX`] from a `Cookie`
/// header. Returns `None` when nothing remains.
pub fn without_filter_cookies(header: &str) -> Option<String> {
    let kept: Vec<String> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter_map(without_joined_filter_cookies)
        .collect();

    if kept.is_empty() {
        return None;
    }
    Some(kept.join("; "))
}

/// Removes the filter's cookies from one `;`-separated part of a `Cookie` header. The
/// part may hold several cookies joined with `,`, as workerd joins repeated `Cookie`
/// headers. A part without a filter cookie is kept as it is, so a `,` inside another
/// cookie's value stays untouched.
fn without_joined_filter_cookies(part: &str) -> Option<String> {
    let pieces: Vec<&str> = part.split(',').map(str::trim).collect();
    if !pieces.iter().any(|piece| is_filter_cookie(piece)) {
        return Some(part.to_owned());
    }

    let kept: Vec<&str> = pieces
        .into_iter()
        .filter(|piece| !piece.is_empty() && !is_filter_cookie(piece))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// Returns whether a `Set-Cookie` header value sets one of the filter's cookies.
pub fn sets_filter_cookie(set_cookie: &str) -> bool {
    is_filter_cookie(set_cookie.split(';').next().unwrap_or_default())
}

/// Returns whether the `name=value` pair `pair` is one of the filter's cookies.
fn is_filter_cookie(pair: &str) -> bool {
    pair.split_once('=')
        .map_or(pair, |(name, _)| name)
        .trim()
        .starts_with(FILTER_COOKIE_PREFIX)
}

/// Builds the `Set-Cookie` header value of a filter cookie. Without `domain` the cookie is
/// host-only: browsers send it back to the exact host that set it.
pub fn filter_cookie(name: &str, value: &str, max_age: u64, domain: Option<&str>) -> String {
    let domain = domain.map(|d| format!("; Domain={d}")).unwrap_or_default();
    format!("{name}={value}; Path=/{domain}; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
}

/// Builds the `Set-Cookie` header value that deletes a filter cookie.
pub fn expired_cookie(name: &str, domain: Option<&str>) -> String {
    filter_cookie(name, "", 0, domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> CookieNames {
        CookieNames::default()
    }

    #[test]
    fn cookie_values_finds_every_copy() {
        let header = "a=1; cas_edge_session=one;cas_edge_session=\"two\" ; b=2";

        assert_eq!(cookie_values(header, &names().session), vec!["one", "two"]);
    }

    #[test]
    fn cookie_values_ignores_similar_names() {
        let header = "cas_edge_session_old=x; xcas_edge_session=y; noequals";

        assert!(cookie_values(header, &names().session).is_empty());
    }

    #[test]
    fn filter_cookies_removed_others_kept_in_order() {
        let header =
            "a=1; cas_edge_session=one; b=2; cas_edge_session=two; cas_edge_gateway=1; cas_other=3";

        assert_eq!(
            without_filter_cookies(header),
            Some("a=1; b=2; cas_other=3".to_owned())
        );
    }

    #[test]
    fn comma_joined_cookie_headers_are_split() {
        let header = "a=1, cas_edge_session=one, cas_edge_redirects=2; b=2,cas_edge_gateway=1";

        assert_eq!(cookie_values(header, &names().session), vec!["one"]);
        assert_eq!(cookie_values(header, &names().redirects), vec!["2"]);
        assert_eq!(cookie_values(header, &names().gateway), vec!["1"]);
        assert_eq!(without_filter_cookies(header), Some("a=1; b=2".to_owned()));
        assert_eq!(
            without_filter_cookies("cas_edge_session=one, cas_edge_gateway=1"),
            None
        );
    }

    #[test]
    fn comma_in_other_cookie_value_is_kept() {
        let header = "list=a,b; cas_edge_session=one; c=x, y";

        assert_eq!(
            without_filter_cookies(header),
            Some("list=a,b; c=x, y".to_owned())
        );
    }

    #[test]
    fn set_cookie_of_filter_cookie_is_found() {
        assert!(sets_filter_cookie("cas_edge_session=x; Path=/"));
        assert!(sets_filter_cookie(" cas_edge_redirects=9"));
        assert!(sets_filter_cookie("cas_edge_gateway"));
        assert!(!sets_filter_cookie("app=1; Path=/cas_edge_session"));
        assert!(!sets_filter_cookie("app=cas_edge_session=x"));
        assert!(!sets_filter_cookie("CAS_EDGE_SESSION=x"));
    }

    #[test]
    fn without_filter_cookies_drops_empty_header() {
        assert_eq!(without_filter_cookies("cas_edge_session=one"), None);
        assert_eq!(without_filter_cookies(" ; "), None);
    }

    #[test]
    fn set_cookie_has_required_attributes() {
        let header = filter_cookie(&names().session, "v.t", 3600, None);

        assert_eq!(
            header,
            "cas_edge_session=v.t; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600"
        );
    }

    #[test]
    fn set_cookie_names_configured_domain() {
        let header = filter_cookie(&names().session, "v.t", 60, Some("example.org"));

        assert_eq!(
            header,
            "cas_edge_session=v.t; Path=/; Domain=example.org; Secure; HttpOnly; SameSite=Lax; Max-Age=60"
        );
    }
}
