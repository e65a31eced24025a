//! The filter's own cookie in `Cookie` and `Set-Cookie` headers.

/// Name of the session cookie the filter sets.
pub const SESSION_COOKIE: &str = "cas_edge_session";

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

/// Removes every cookie called `name` from a `Cookie` header. Returns `None` when nothing remains.
pub fn without_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            pair.split_once('=')
                .map_or(*pair, |(pair_name, _)| pair_name)
                .trim()
                != name
        })
        .collect();

    if kept.is_empty() {
        return None;
    }
    Some(kept.join("; "))
}

/// Builds the `Set-Cookie` header value that stores a session for `max_age` seconds.
pub fn session_set_cookie(value: &str, max_age: u64) -> String {
    format!("{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}")
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
    fn without_cookie_keeps_others_in_order() {
        let header = "a=1; cas_edge_session=one; b=2; cas_edge_session=two";

        assert_eq!(
            without_cookie(header, SESSION_COOKIE),
            Some("a=1; b=2".to_owned())
        );
    }

    #[test]
    fn without_cookie_drops_empty_header() {
        assert_eq!(without_cookie("cas_edge_session=one", SESSION_COOKIE), None);
        assert_eq!(without_cookie(" ; ", SESSION_COOKIE), None);
    }

    #[test]
    fn set_cookie_has_required_attributes() {
        let header = session_set_cookie("v.t", 3600);

        assert_eq!(
            header,
            "cas_edge_session=v.t; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600"
        );
    }
}
