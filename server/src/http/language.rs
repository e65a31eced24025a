//! The page language of a request and the language switch link. The language comes
//! from the `lang` query parameter, then the language cookie, then Accept-Language.

use http::header::ACCEPT_LANGUAGE;
use http::request::Parts;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use cas_core::language::choose_page_language;
use cas_core::service::ServiceUrl;

use super::cookie::language_cookie_value;
use super::delivery::ResponseMethod;
use super::params::Params;
use crate::i18n::Language;

/// Name of the query parameter that selects the page language.
pub const LANGUAGE_PARAMETER: &str = "lang";

/// Bytes percent-encoded in a query value: all but the unreserved characters of
/// RFC 3986.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The page language of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLanguage {
    pub language: Language,
    /// Whether the request selected it with a valid `lang` parameter, so the response
    /// sets the language cookie.
    pub explicit: bool,
}

/// Picks the page language of a request from its headers and its parsed query, which
/// is `None` when the query does not parse. Such a query, a repeated `lang` and an
/// unsupported value count as no parameter.
pub fn request_language(parts: &Parts, query: Option<&Params>) -> RequestLanguage {
    let parameter = query.and_then(|params| params.single(LANGUAGE_PARAMETER).ok().flatten());
    let explicit = parameter.and_then(Language::from_tag).is_some();

    let accept_language = parts
        .headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok());
    let language = choose_page_language(
        parameter,
        language_cookie_value(&parts.headers),
        accept_language,
    );
    RequestLanguage { language, explicit }
}

/// Request state that the login page's switch link keeps. Only checked values go in:
/// a service URL the registry admits, the `renew` flag and the response method.
pub struct LoginState<'a> {
    pub service: Option<&'a ServiceUrl>,
    pub renew: bool,
    pub method: ResponseMethod,
}

/// Returns the address of `login_path` in `target` with the kept login state. The
/// address is a path on this server, so it cannot lead elsewhere. `gateway` is left
/// out, because with it the request would return to the service without a page.
pub fn login_switch_href(login_path: &str, target: Language, state: &LoginState<'_>) -> String {
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(service) = state.service {
        pairs.push(("service", service.as_str()));
    }
    if state.renew {
        pairs.push(("renew", "true"));
    }
    if let Some(method) = state.method.form_value() {
        pairs.push(("method", method));
    }
    pairs.push((LANGUAGE_PARAMETER, target.tag()));

    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE)))
        .collect();
    format!("{login_path}?{}", query.join("&"))
}

/// Returns the switch address of a page that has no state to keep: the same path with
/// only the `lang` parameter. A relative reference with only a query cannot change the
/// scheme, host or path.
pub fn same_path_switch_href(target: Language) -> String {
    format!("?{LANGUAGE_PARAMETER}={}", target.tag())
}

#[cfg(test)]
mod tests {
    use http::Request;

    use super::*;

    fn parts(uri: &str, cookie: Option<&str>, accept: Option<&str>) -> Parts {
        let mut request = Request::get(uri);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(accept) = accept {
            request = request.header("accept-language", accept);
        }
        request.body(()).expect("request").into_parts().0
    }

    fn pick(uri: &str, cookie: Option<&str>, accept: Option<&str>) -> RequestLanguage {
        let parts = parts(uri, cookie, accept);
        let query = Params::from_query(parts.uri.query()).ok();
        request_language(&parts, query.as_ref())
    }

    #[test]
    fn parameter_wins_and_is_explicit() {
        let picked = pick("/cas/login?lang=en", Some("CASLANG=zh-CN"), Some("zh"));

        assert_eq!(picked.language, Language::English);
        assert!(picked.explicit);
    }

    #[test]
    fn bad_parameters_are_ignored() {
        for uri in [
            "/cas/login?lang=fr",
            "/cas/login?lang=en&lang=en",
            "/cas/login?lang=%FF",
            "/cas/login?lang=EN",
        ] {
            let picked = pick(uri, Some("CASLANG=zh-CN"), None);
            assert_eq!(picked.language, Language::SimplifiedChinese, "{uri}");
            assert!(!picked.explicit, "{uri}");
        }
    }

    #[test]
    fn switch_href_keeps_checked_state() {
        let service = ServiceUrl::parse("https://app.example/a?b=1&c=é#f").expect("valid");
        let state = LoginState {
            service: Some(&service),
            renew: true,
            method: ResponseMethod::Post,
        };

        assert_eq!(
            login_switch_href("/cas/login", Language::SimplifiedChinese, &state),
            "/cas/login?service=https%3A%2F%2Fapp.example%2Fa%3Fb%3D1%26c%3D%C3%A9%23f&renew=true&method=POST&lang=zh-CN"
        );
        let plain = LoginState {
            service: None,
            renew: false,
            method: ResponseMethod::Redirect,
        };
        assert_eq!(
            login_switch_href("/login", Language::English, &plain),
            "/login?lang=en"
        );
        assert_eq!(same_path_switch_href(Language::English), "?lang=en");
    }
}
