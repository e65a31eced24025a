//! Service URLs: parsing from outside input, the comparison rule between issue and
//! validation, and ticket parameters added or removed.
//!
//! The rule: a service is the query value decoded exactly once (by the caller's query
//! parser). Its fragment is kept for the redirect but ignored in every comparison, and
//! no other normalisation is applied, so `https://a/x` and `https://A/x` differ.

use std::fmt;
use std::sync::Arc;

/// Maximum length of an accepted service URL, in bytes.
pub const MAX_SERVICE_LEN: usize = 2048;

/// Reason a string is not an acceptable service URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ServiceParseError {
    #[error("service URL is empty")]
    Empty,
    #[error("service URL is longer than {MAX_SERVICE_LEN} bytes")]
    TooLong,
    #[error("service URL contains whitespace or control characters")]
    BadCharacter,
    #[error("service URL is not an absolute http or https URL with a host")]
    NotHttpUrl,
    #[error("service URL carries user credentials")]
    HasCredentials,
    #[error("service URL path contains a backslash or a `.` or `..` segment")]
    AmbiguousPath,
}

/// A service URL as the client sent it, validated as an absolute http(s) URL. Clones
/// share the text, so a store can keep one copy for many tickets of one service.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ServiceUrl {
    raw: Arc<str>,
}

impl ServiceUrl {
    /// Parses a service from its once-decoded query value.
    pub fn parse(text: &str) -> Result<Self, ServiceParseError> {
        if text.is_empty() {
            return Err(ServiceParseError::Empty);
        }
        if text.len() > MAX_SERVICE_LEN {
            return Err(ServiceParseError::TooLong);
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ServiceParseError::BadCharacter);
        }

        let parsed = url::Url::parse(text).map_err(|_| ServiceParseError::NotHttpUrl)?;
        let http = matches!(parsed.scheme(), "http" | "https");
        if !http || parsed.host_str().is_none_or(str::is_empty) {
            return Err(ServiceParseError::NotHttpUrl);
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ServiceParseError::HasCredentials);
        }
        if has_ambiguous_path(text) {
            return Err(ServiceParseError::AmbiguousPath);
        }

        Ok(Self { raw: text.into() })
    }

    /// Returns the URL as received, fragment included.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Returns the URL without its fragment, the form every comparison uses.
    pub fn without_fragment(&self) -> &str {
        split_fragment(&self.raw).0
    }

    /// Returns whether `other` names the same service under the comparison rule.
    pub fn same_service(&self, other: &ServiceUrl) -> bool {
        self.without_fragment() == other.without_fragment()
    }

    /// Returns whether `text`, a service from outside input, is a valid service URL
    /// that names the same service as this one. Text equal to this URL needs no parsing.
    pub fn same_service_as_text(&self, text: &str) -> bool {
        if split_fragment(text).0 != self.without_fragment() {
            return false;
        }
        text == self.as_str() || Self::parse(text).is_ok()
    }

    /// Returns the redirect target: this URL with `ticket=…` added to its query, before any fragment.
    pub fn with_ticket(&self, ticket: &str) -> String {
        let (base, fragment) = split_fragment(&self.raw);
        let separator = query_separator(base);

        let mut target = format!("{base}{separator}ticket={ticket}");
        if let Some(fragment) = fragment {
            target.push('#');
            target.push_str(fragment);
        }
        target
    }

    /// Returns this URL with `params` added to its query, form-urlencoded and in order,
    /// before any fragment. The URL's own query parameters stay as they are.
    pub fn with_query_params(&self, params: &[(&str, &str)]) -> String {
        let (base, fragment) = split_fragment(&self.raw);
        let separator = query_separator(base);
        let added = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();

        let mut target = format!("{base}{separator}{added}");
        if let Some(fragment) = fragment {
            target.push('#');
            target.push_str(fragment);
        }
        target
    }
}

impl fmt::Debug for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ServiceUrl").field(&self.raw).finish()
    }
}

impl fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Returns whether a browser would resolve the path to another one than it reads: a backslash
/// (browsers take it as `/` in http URLs) or a `.` or `..` segment, raw or percent-encoded.
/// Registry rules compare the raw string, so `https://a/app1/../evil` must not pass as
/// being under `https://a/app1/`.
fn has_ambiguous_path(url: &str) -> bool {
    if url.contains('\\') {
        return true;
    }

    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let before_query = after_scheme.split(['?', '#']).next().unwrap_or_default();
    let path = before_query.split_once('/').map_or("", |(_, path)| path);
    path.split('/').any(|segment| {
        let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".."
    })
}

/// Returns what goes between `base` (a URL without fragment) and an added parameter.
fn query_separator(base: &str) -> &'static str {
    match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    }
}

fn split_fragment(url: &str) -> (&str, Option<&str>) {
    match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    }
}

/// Removes every `ticket` query parameter (name compared after percent-decoding) and the
/// fragment from `url`, keeping every other parameter byte for byte and in order.
pub fn strip_ticket_params(url: &str) -> String {
    let base = split_fragment(url).0;
    let Some((path, query)) = base.split_once('?') else {
        return base.to_owned();
    };

    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !is_ticket_pair(pair))
        .collect();
    let kept: Vec<&str> = kept.into_iter().filter(|pair| !pair.is_empty()).collect();
    if kept.is_empty() {
        return path.to_owned();
    }
    format!("{path}?{}", kept.join("&"))
}

/// Returns the values of every `ticket` parameter in a raw query string, decoded once.
pub fn ticket_params(query: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "ticket")
        .map(|(_, value)| value.into_owned())
        .collect()
}

fn is_ticket_pair(pair: &str) -> bool {
    let name = pair.split_once('=').map_or(pair, |(name, _)| name);
    let decoded: String = form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default();
    decoded == "ticket"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(text: &str) -> ServiceUrl {
        ServiceUrl::parse(text).expect("valid service")
    }

    #[test]
    fn parse_accepts_http_and_https() {
        assert!(ServiceUrl::parse("https://app.example.org/").is_ok());
        assert!(ServiceUrl::parse("http://127.0.0.1:8787/a?b=c").is_ok());
    }

    #[test]
    fn parse_rejects_other_schemes_and_relative() {
        for text in [
            "javascript:alert(1)",
            "/relative",
            "ftp://x/",
            "data:text/html,x",
            "https://",
        ] {
            assert_eq!(
                ServiceUrl::parse(text),
                Err(ServiceParseError::NotHttpUrl),
                "{text}"
            );
        }
    }

    #[test]
    fn parse_rejects_credentials() {
        let result = ServiceUrl::parse("https://app.example.org@evil.example/");

        assert_eq!(result, Err(ServiceParseError::HasCredentials));
    }

    #[test]
    fn parse_rejects_whitespace_and_controls() {
        assert_eq!(
            ServiceUrl::parse("https://a/\r\nSet-Cookie:x"),
            Err(ServiceParseError::BadCharacter)
        );
        assert_eq!(
            ServiceUrl::parse("https://a/ b"),
            Err(ServiceParseError::BadCharacter)
        );
    }

    #[test]
    fn parse_rejects_dot_segments_and_backslashes() {
        let ambiguous = [
            "https://a.example/app1/../evil/x",
            "https://a.example/app1/%2e%2e/evil/x",
            "https://a.example/app1/%2E./evil/x",
            "https://a.example/app1/./x",
            "https://a.example/app1/..",
            "https://a.example/app1\\..\\evil",
        ];
        for text in ambiguous {
            assert_eq!(
                ServiceUrl::parse(text),
                Err(ServiceParseError::AmbiguousPath),
                "{text}"
            );
        }
    }

    #[test]
    fn parse_keeps_dots_inside_names_and_query() {
        for text in [
            "https://a.example/app1/file.v2..txt",
            "https://a.example/p?x=../y",
            "https://a.example/.well-known/x",
        ] {
            assert!(ServiceUrl::parse(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn parse_rejects_empty_and_huge() {
        assert_eq!(ServiceUrl::parse(""), Err(ServiceParseError::Empty));

        let huge = format!("https://a/{}", "x".repeat(MAX_SERVICE_LEN));
        assert_eq!(ServiceUrl::parse(&huge), Err(ServiceParseError::TooLong));
    }

    #[test]
    fn same_service_ignores_fragment_only() {
        let issued = service("https://app/x?a=1#top");

        assert!(issued.same_service(&service("https://app/x?a=1")));
        assert!(!issued.same_service(&service("https://app/x?a=2")));
        assert!(!issued.same_service(&service("https://APP/x?a=1")));
        assert!(!issued.same_service(&service("https://app/x%3Fa=1")));
    }

    #[test]
    fn same_service_as_text_checks_the_text() {
        let issued = service("https://app/x?a=1#top");

        assert!(issued.same_service_as_text("https://app/x?a=1#top"));
        assert!(issued.same_service_as_text("https://app/x?a=1"));
        assert!(issued.same_service_as_text("https://app/x?a=1#other"));
        assert!(!issued.same_service_as_text("https://app/x?a=2"));
        assert!(!issued.same_service_as_text("https://APP/x?a=1"));
        assert!(!issued.same_service_as_text("https://app/x?a=1#bad\r\nfragment"));
        assert!(!issued.same_service_as_text(""));
    }

    #[test]
    fn with_ticket_picks_separator() {
        assert_eq!(
            service("https://a/p").with_ticket("ST-1"),
            "https://a/p?ticket=ST-1"
        );
        assert_eq!(
            service("https://a/p?x=1").with_ticket("ST-1"),
            "https://a/p?x=1&ticket=ST-1"
        );
        assert_eq!(
            service("https://a/p?").with_ticket("ST-1"),
            "https://a/p?ticket=ST-1"
        );
    }

    #[test]
    fn with_ticket_goes_before_fragment() {
        let target = service("https://a/p?x=1#frag").with_ticket("ST-1");

        assert_eq!(target, "https://a/p?x=1&ticket=ST-1#frag");
    }

    #[test]
    fn query_params_keep_the_existing_query() {
        let params = [("pgtId", "PGT-1"), ("pgtIou", "PGTIOU-2")];

        assert_eq!(
            service("https://a/cb").with_query_params(&params),
            "https://a/cb?pgtId=PGT-1&pgtIou=PGTIOU-2"
        );
        assert_eq!(
            service("https://a/cb?app=x&y=%2F").with_query_params(&params),
            "https://a/cb?app=x&y=%2F&pgtId=PGT-1&pgtIou=PGTIOU-2"
        );
        assert_eq!(
            service("https://a/cb?x=1#f").with_query_params(&[("k", "a b&c")]),
            "https://a/cb?x=1&k=a+b%26c#f"
        );
    }

    #[test]
    fn strip_removes_only_ticket() {
        let url = "https://a/p?ticketing=1&ticket=ST-1&x=2&ticket=ST-2&tickets=3";

        assert_eq!(
            strip_ticket_params(url),
            "https://a/p?ticketing=1&x=2&tickets=3"
        );
    }

    #[test]
    fn strip_handles_encoded_name_and_fragment() {
        assert_eq!(
            strip_ticket_params("https://a/p?ticke%74=ST-1#f"),
            "https://a/p"
        );
        assert_eq!(strip_ticket_params("https://a/p?ticket"), "https://a/p");
        assert_eq!(strip_ticket_params("https://a/p"), "https://a/p");
    }

    #[test]
    fn ticket_params_decodes_values() {
        let values = ticket_params("a=1&ticket=ST-1&ticket=ST%2D2");

        assert_eq!(values, vec!["ST-1".to_owned(), "ST-2".to_owned()]);
    }
}
