//! The filter's own cookies in `Cookie` and `Set-Cookie` headers. All of them start with
//! [`FILTER_COOKIE_PREFIX`] and none is ever forwarded to the origin.

/// Every cookie the filter sets starts with this prefix.
pub const FILTER_COOKIE_PREFIX: &str = "cas_edge_";

/// Name of the session cookie the filter sets.
pub const SESSION_COOKIE: &str = "cas_edge_session";

/// Name of the cookie that counts login redirects.
pub const REDIRECTS_COOKIE: &str = "cas_edge_redirects";

/// Name of the cookie that marks a gateway attempt.
pub const GATEWAY_COOKIE: &str = "cas_edge_gateway";

/// Returns the values of every cookie called `name` in a `Cookie` header, in order.
/// Browsers send several cookies of one name when paths or domains differ.
pub fn cookie_values<'a>(header: &'a str, name: &str) -> Vec<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(pair_name, _)| pair_name.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .collect()
}

/// Removes every cookie whose name starts with [`FILTER_COOKIE_PREFIX`] from a `Cookie`
/// header. Returns `None` when nothing remains.
pub fn without_filter_cookies(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            !pair
                .split_once('=')
                .map_or(*pair, |(pair_name, _)| pair_name)
                .trim()
                .starts_with(FILTER_COOKIE_PREFIX)
        })
        .collect();

    if kept.is_empty() {
        return None;
    }
    Some(kept.join("; "))
}

/// Builds the `Set-Cookie` header value that stores a session for `max_age` seconds.
pub fn session_set_cookie(value: &str, max_age: u64, domain: Option<&str>) -> String {
    filter_cookie(SESSION_COOKIE, value, max_age, domain)
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

    #[test]
    fn cookie_values_finds_every_copy() {
        let header = "a=1; cas_edge_session=one;cas_edge_session=\"two\" ; b=2";

        assert_eq!(cookie_values(header, SESSION_COOKIE), vec!["one", "two"]);
    }

    #[test]
    fn cookie_values_ignores_similar_names() {
        let header = "cas_edge_session_old=x; xcas_edge_session=y; noequals";

        assert!(cookie_values(header, SESSION_COOKIE).is_empty());
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
    fn without_filter_cookies_drops_empty_header() {
        assert_eq!(without_filter_cookies("cas_edge_session=one"), None);
        assert_eq!(without_filter_cookies(" ; "), None);
    }

    #[test]
    fn set_cookie_has_required_attributes() {
        let header = session_set_cookie("v.t", 3600, None);

        assert_eq!(
            header,
            "cas_edge_session=v.t; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600"
        );
    }

    #[test]
    fn set_cookie_names_configured_domain() {
        let header = session_set_cookie("v.t", 60, Some("example.org"));

        assert_eq!(
            header,
            "cas_edge_session=v.t; Path=/; Domain=example.org; Secure; HttpOnly; SameSite=Lax; Max-Age=60"
        );
    }
}
