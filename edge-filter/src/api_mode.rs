//! API mode: requests that cannot follow a redirect to the CAS login page get 401 with a
//! `WWW-Authenticate` hint instead.

use crate::reply::Reply;

/// Returns whether a request cannot follow a login redirect: a method other than GET or
/// HEAD, an `Upgrade` header, `X-Requested-With: XMLHttpRequest`, a `Sec-Fetch-Mode`
/// other than `navigate`, or an `Accept` header without `text/html`. A request without
/// `Accept` counts as a browser.
pub fn is_api_request(method: &str, header: impl Fn(&str) -> Option<String>) -> bool {
    if !method.eq_ignore_ascii_case("GET") && !method.eq_ignore_ascii_case("HEAD") {
        return true;
    }

    // A WebSocket handshake fails on any status but 101, so a redirect only costs the
    // client a round trip, and its counter cookie could trip the redirect loop page.
    // WebSocket clients outside browsers send neither `Accept` nor `Sec-Fetch-Mode`.
    if header("upgrade").is_some() {
        return true;
    }

    let requested_with = header("x-requested-with").unwrap_or_default();
    if requested_with.trim().eq_ignore_ascii_case("XMLHttpRequest") {
        return true;
    }

    let fetch_mode = header("sec-fetch-mode");
    if fetch_mode.is_some_and(|mode| !mode.trim().eq_ignore_ascii_case("navigate")) {
        return true;
    }

    header("accept").is_some_and(|accept| !accept.to_ascii_lowercase().contains("text/html"))
}

/// Builds the 401 reply that tells an API client where users sign in.
pub fn unauthorized(realm: &str, login_url: &str) -> Reply {
    let challenge = format!("CAS realm=\"{realm}\", login=\"{login_url}\"");
    Reply {
        status: 401,
        headers: vec![
            ("WWW-Authenticate".to_owned(), challenge),
            (
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            ),
            ("Cache-Control".to_owned(), "no-store".to_owned()),
        ],
        body: "authentication required\n".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(method: &str, headers: &[(&str, &str)]) -> bool {
        is_api_request(method, |name| {
            headers
                .iter()
                .find(|(header, _)| header.eq_ignore_ascii_case(name))
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn browser_navigation_is_not_api() {
        let headers = [
            ("Accept", "text/html,application/xhtml+xml"),
            ("Sec-Fetch-Mode", "navigate"),
        ];

        assert!(!api("GET", &headers));
        assert!(!api("HEAD", &headers));
        assert!(!api("GET", &[]));
    }

    #[test]
    fn each_api_signal_counts() {
        let html = ("Accept", "text/html");

        assert!(api("POST", &[html]));
        assert!(api("DELETE", &[html]));
        assert!(api("GET", &[html, ("X-Requested-With", "XMLHttpRequest")]));
        assert!(api("GET", &[html, ("Sec-Fetch-Mode", "cors")]));
        assert!(api("GET", &[("Accept", "application/json")]));
        assert!(api("GET", &[("Accept", "*/*")]));
    }

    #[test]
    fn upgrade_request_is_api() {
        let handshake = [("Connection", "Upgrade"), ("Upgrade", "websocket")];
        let browser_handshake = [
            ("Upgrade", "websocket"),
            ("Sec-Fetch-Mode", "websocket"),
            ("Accept", "text/html"),
        ];

        assert!(api("GET", &handshake));
        assert!(api("GET", &browser_handshake));
        assert!(api("GET", &[("Upgrade", "h2c")]));
        assert!(!api("GET", &[("Connection", "keep-alive")]));
    }

    #[test]
    fn unauthorized_names_realm_and_login() {
        let reply = unauthorized("CAS", "https://cas/login?service=x");

        assert_eq!(reply.status, 401);
        assert_eq!(
            reply.header("www-authenticate"),
            Some("CAS realm=\"CAS\", login=\"https://cas/login?service=x\"")
        );
    }
}
