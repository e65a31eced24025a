//! URLs the filter builds: the service URL, the CAS login and validation URLs, and the
//! origin URL. The service URL comes from `SERVICE_BASE_URL`, never from the `Host` header,
//! so a client cannot make CAS issue tickets for a host of its choice.

use cas_core::service::strip_ticket_params;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

/// Bytes escaped in a query parameter value: everything except the RFC 3986 unreserved
/// characters, the same set as JavaScript's `encodeURIComponent` minus `!'()*`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The path and raw query of an incoming request, as received (already percent-encoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
}

impl<'a> RequestTarget<'a> {
    /// Splits a serialized absolute URL, such as `Request.url` in Workers, into its path
    /// and query without a full URL parse. The WHATWG serializer escapes `/`, `?` and `#`
    /// in the user info and forbids them in the host, so the path starts at the first of
    /// them after `://`. Returns `None` when the URL has no `://` or no path.
    pub fn from_serialized_url(url: &'a str) -> Option<Self> {
        let (_, after_scheme) = url.split_once("://")?;
        let start = after_scheme.find(['/', '?', '#'])?;
        let target = &after_scheme[start..];
        let target = target.split_once('#').map_or(target, |(before, _)| before);

        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        if !path.starts_with('/') {
            return None;
        }
        Some(Self { path, query })
    }

    /// `path?query`, without the `?` when there is no query.
    pub fn path_and_query(&self) -> String {
        match self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.to_owned(),
        }
    }
}

/// Builds the service URL of a request: `service_base` plus its path and query, with every
/// `ticket` parameter removed.
pub fn service_url(service_base: &str, target: RequestTarget<'_>) -> String {
    strip_ticket_params(&format!("{service_base}{}", target.path_and_query()))
}

/// Builds the origin URL of a request: `origin_base` plus its path and query, unchanged.
pub fn origin_url(origin_base: &str, target: RequestTarget<'_>) -> String {
    format!("{origin_base}{}", target.path_and_query())
}

/// The kind of login the filter requests from CAS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMode {
    /// A normal login: CAS may use its single sign-on session.
    Plain,
    /// `renew=true`: CAS must ask for credentials again.
    Renew,
    /// `gateway=true`: CAS must not show a form, and returns without a ticket when the
    /// user has no single sign-on session.
    Gateway,
}

/// Builds the CAS login URL that returns to `service`, which is percent-encoded once.
pub fn login_url(login: &Url, service: &str, mode: LoginMode) -> String {
    match mode {
        LoginMode::Plain => with_params(login, &[("service", service)]),
        LoginMode::Renew => with_params(login, &[("service", service), ("renew", "true")]),
        LoginMode::Gateway => with_params(login, &[("service", service), ("gateway", "true")]),
    }
}

/// Builds the CAS validation URL for `ticket` issued to `service`, with `renew=true` when
/// the ticket must come from a fresh login.
pub fn validation_url(validate: &Url, service: &str, ticket: &str, renew: bool) -> String {
    if renew {
        return with_params(
            validate,
            &[("service", service), ("ticket", ticket), ("renew", "true")],
        );
    }
    with_params(validate, &[("service", service), ("ticket", ticket)])
}

/// Appends `params` to `base`, keeping any query the setting already has.
fn with_params(base: &Url, params: &[(&str, &str)]) -> String {
    let mut url = base.as_str().to_owned();
    let separator = match base.query() {
        None => "?",
        Some("") => "",
        Some(query) if query.ends_with('&') => "",
        Some(_) => "&",
    };
    url.push_str(separator);

    let encoded: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{name}={}", utf8_percent_encode(value, COMPONENT)))
        .collect();
    url.push_str(&encoded.join("&"));
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:8787";

    #[test]
    fn serialized_url_splits_like_url_crate() {
        for text in [
            "http://127.0.0.1:8787/",
            "http://edge.example/a/b?c=1&d=%20",
            "https://user:p%2F@edge.example:8443/x?",
            "http://edge.example/p?q=1#frag",
            "http://[::1]:8787/%E5%BC%A0?ticket=ST-1",
            "http://edge.example/a?b?c",
        ] {
            let parsed = url::Url::parse(text).expect("valid URL");
            let expected = RequestTarget {
                path: parsed.path(),
                query: parsed.query(),
            };

            assert_eq!(
                RequestTarget::from_serialized_url(text),
                Some(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn serialized_url_without_path_is_none() {
        assert_eq!(RequestTarget::from_serialized_url("/only/path"), None);
        assert_eq!(
            RequestTarget::from_serialized_url("http://edge.example"),
            None
        );
    }

    fn target<'a>(path: &'a str, query: Option<&'a str>) -> RequestTarget<'a> {
        RequestTarget { path, query }
    }

    fn url(text: &str) -> Url {
        Url::parse(text).expect("valid URL")
    }

    #[test]
    fn service_url_removes_every_ticket() {
        let query = Some("ticket=ST-1&ticketing=1&a=%20b&ticket=ST-2");

        assert_eq!(
            service_url(BASE, target("/docs/x", query)),
            "http://127.0.0.1:8787/docs/x?ticketing=1&a=%20b"
        );
    }

    #[test]
    fn service_url_without_query() {
        assert_eq!(
            service_url(BASE, target("/", None)),
            "http://127.0.0.1:8787/"
        );
        assert_eq!(
            service_url(BASE, target("/a", Some(""))),
            "http://127.0.0.1:8787/a"
        );
        assert_eq!(
            service_url(BASE, target("/a", Some("ticket=ST-1"))),
            "http://127.0.0.1:8787/a"
        );
    }

    #[test]
    fn service_url_keeps_encoded_path() {
        let service = service_url(
            BASE,
            target("/%E6%96%87%E6%A1%A3/a%2Fb", Some("q=%E4%B8%AD")),
        );

        assert_eq!(
            service,
            "http://127.0.0.1:8787/%E6%96%87%E6%A1%A3/a%2Fb?q=%E4%B8%AD"
        );
    }

    #[test]
    fn origin_url_keeps_query() {
        let origin = origin_url(
            "http://127.0.0.1:8080",
            target("/a", Some("ticket=ST-1&b=2")),
        );

        assert_eq!(origin, "http://127.0.0.1:8080/a?ticket=ST-1&b=2");
    }

    #[test]
    fn login_url_encodes_service_once() {
        let login = login_url(
            &url("https://127.0.0.1:8443/cas/login"),
            "http://127.0.0.1:8787/a?b=1&c=%20",
            LoginMode::Plain,
        );

        assert_eq!(
            login,
            "https://127.0.0.1:8443/cas/login?service=http%3A%2F%2F127.0.0.1%3A8787%2Fa%3Fb%3D1%26c%3D%2520"
        );
    }

    #[test]
    fn login_url_keeps_existing_query() {
        let login = login_url(
            &url("https://cas.example/login?locale=zh_CN"),
            "https://a/",
            LoginMode::Plain,
        );

        assert_eq!(
            login,
            "https://cas.example/login?locale=zh_CN&service=https%3A%2F%2Fa%2F"
        );
    }

    #[test]
    fn validation_url_encodes_both_params() {
        let validate = validation_url(
            &url("https://127.0.0.1:8443/cas/p3/serviceValidate"),
            "http://a/?x=1",
            "ST-1&x",
            false,
        );

        assert_eq!(
            validate,
            "https://127.0.0.1:8443/cas/p3/serviceValidate?service=http%3A%2F%2Fa%2F%3Fx%3D1&ticket=ST-1%26x"
        );
    }

    #[test]
    fn encoded_service_decodes_to_original() {
        let service = "http://127.0.0.1:8787/文档?a=1&b=%2F";
        let login = login_url(&url("https://cas/login"), service, LoginMode::Plain);
        let query = login.split_once('?').expect("has query").1;
        let decoded: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();

        assert_eq!(decoded, vec![("service".to_owned(), service.to_owned())]);
    }

    #[test]
    fn renew_and_gateway_flags() {
        let cas = url("https://cas/login");

        assert_eq!(
            login_url(&cas, "https://a/", LoginMode::Renew),
            "https://cas/login?service=https%3A%2F%2Fa%2F&renew=true"
        );
        assert_eq!(
            login_url(&cas, "https://a/", LoginMode::Gateway),
            "https://cas/login?service=https%3A%2F%2Fa%2F&gateway=true"
        );
        assert_eq!(
            validation_url(
                &url("https://cas/p3/serviceValidate"),
                "https://a/",
                "ST-1",
                true
            ),
            "https://cas/p3/serviceValidate?service=https%3A%2F%2Fa%2F&ticket=ST-1&renew=true"
        );
    }
}
