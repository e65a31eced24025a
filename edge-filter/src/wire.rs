//! Text formats of the calls between the wasm glue and its JavaScript helpers in
//! `js/glue.js`. One string per call replaces one boundary crossing and one string
//! conversion per header.
//!
//! Every field ends with a newline. The Fetch standard forbids CR, LF and NUL in header
//! names and values, so a field read from the runtime never contains one, and fields
//! the filter makes are checked before they are joined.

use cas_core::language::Language;

use crate::headers::HeaderEdits;

/// An incoming request as `describeRequest` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDescription {
    /// The runtime's clock (`Date.now()`) in milliseconds since the Unix epoch, read in
    /// the same call so that the filter needs no second crossing for it.
    pub time_ms: u64,
    pub method: String,
    pub url: String,
    /// Every header as the runtime iterates them: names lowercase, repeated headers
    /// joined by the runtime.
    pub headers: Vec<(String, String)>,
}

/// Parses the output of `describeRequest`: the time, method, URL, then name and value
/// pairs. Returns `None` when a field is missing or the time is not a whole number.
pub fn parse_request(text: &str) -> Option<RequestDescription> {
    let mut fields = text.strip_suffix('\n')?.split('\n');
    let time_ms = fields.next()?.parse().ok()?;
    let method = fields.next()?.to_owned();
    let url = fields.next()?.to_owned();

    let mut headers = Vec::new();
    while let Some(name) = fields.next() {
        let value = fields.next()?;
        headers.push((name.to_owned(), value.to_owned()));
    }
    Some(RequestDescription {
        time_ms,
        method,
        url,
        headers,
    })
}

/// The fields of an origin request that `forward` needs besides the request itself:
/// its target, the response handling and the context of its error page.
#[derive(Debug, Clone, Copy)]
pub struct ForwardSpec<'a> {
    pub url: &'a str,
    /// Prefix of the filter's cookie names. A response that sets such a cookie goes to
    /// the response handler, which removes it.
    pub cookie_prefix: &'a str,
    /// Page language of the 502 page if the origin request fails.
    pub lang: Language,
    /// Session id for the log line of a failed origin request.
    pub sid: Option<&'a str>,
    /// `Set-Cookie` values to add to the response.
    pub set_cookies: &'a [String],
    pub edits: &'a HeaderEdits,
}

/// Writes `spec` as the one string that `forward` reads, so that the call decodes one
/// string instead of one per field. The fields are the URL, the cookie prefix, the
/// language tag, the session id (empty for none) and the number of `Set-Cookie` values.
/// Those values follow, then the header edits: `d` and a name for each deletion, `s` or
/// `a`, a name and a value for each replacement or addition. Returns `None` when a
/// field contains a character that would end it.
pub fn forward_fields(spec: &ForwardSpec) -> Option<String> {
    let mut text = String::with_capacity(256);
    let count = spec.set_cookies.len().to_string();
    push_fields(
        &mut text,
        &[
            spec.url,
            spec.cookie_prefix,
            spec.lang.tag(),
            spec.sid.unwrap_or_default(),
            &count,
        ],
    )?;
    for cookie in spec.set_cookies {
        push_fields(&mut text, &[cookie])?;
    }

    let edits = spec.edits;
    for name in &edits.delete {
        push_fields(&mut text, &["d", name])?;
    }
    for (name, value) in &edits.set {
        push_fields(&mut text, &["s", name, value])?;
    }
    for (name, value) in &edits.append {
        push_fields(&mut text, &["a", name, value])?;
    }
    Some(text)
}

/// Reads the `Set-Cookie` values that `forward` passes to the response handler, each
/// followed by a newline.
pub fn parse_cookie_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// Writes what the error handler of a forwarded request needs, as `forward` passes it:
/// the page language and the session id, empty for none.
pub fn forward_context(lang: Language, sid: Option<&str>) -> String {
    format!("{}\n{}", lang.tag(), sid.unwrap_or_default())
}

/// Reads the output of [`forward_context`]. An unknown language tag gives English.
pub fn parse_forward_context(text: &str) -> (Language, Option<String>) {
    let (tag, sid) = text.split_once('\n').unwrap_or((text, ""));
    let lang = Language::from_tag(tag).unwrap_or(Language::English);
    let sid = (!sid.is_empty()).then(|| sid.to_owned());
    (lang, sid)
}

fn push_fields(text: &mut String, fields: &[&str]) -> Option<()> {
    for field in fields {
        // A byte scan: `str::contains` with a set of chars decodes every character,
        // which took about 4 µs per request for the identity headers in workerd.
        if field.bytes().any(|byte| matches!(byte, b'\n' | b'\r' | 0)) {
            return None;
        }
        text.push_str(field);
        text.push('\n');
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_fields_split_into_pairs() {
        let text =
            "1733390000123\nGET\nhttps://site.example/a?b=c\ncookie\nx=1; y=2\naccept\ntext/html\n";

        let request = parse_request(text).expect("complete request");

        assert_eq!(request.time_ms, 1_733_390_000_123);
        assert_eq!(request.method, "GET");
        assert_eq!(request.url, "https://site.example/a?b=c");
        assert_eq!(
            request.headers,
            vec![
                ("cookie".to_owned(), "x=1; y=2".to_owned()),
                ("accept".to_owned(), "text/html".to_owned()),
            ]
        );
    }

    #[test]
    fn request_without_headers_parses() {
        let request = parse_request("1\nHEAD\nhttps://site.example/\n").expect("complete request");

        assert_eq!(request.method, "HEAD");
        assert!(request.headers.is_empty());
    }

    #[test]
    fn empty_header_value_is_kept() {
        let request =
            parse_request("1\nGET\nhttps://site.example/\nx-empty\n\n").expect("complete request");

        assert_eq!(request.headers, vec![("x-empty".to_owned(), String::new())]);
    }

    #[test]
    fn truncated_request_is_rejected() {
        assert_eq!(parse_request(""), None);
        assert_eq!(parse_request("1\nGET\n"), None);
        assert_eq!(
            parse_request("1\nGET\nhttps://site.example/\ncookie\n"),
            None
        );
        assert_eq!(parse_request("1\nGET\nhttps://site.example/"), None);
    }

    #[test]
    fn request_without_time_is_rejected() {
        assert_eq!(parse_request("GET\nhttps://site.example/\n"), None);
        assert_eq!(parse_request("1.5\nGET\nhttps://site.example/\n"), None);
    }

    fn spec<'a>(set_cookies: &'a [String], edits: &'a HeaderEdits) -> ForwardSpec<'a> {
        ForwardSpec {
            url: "http://origin.example/a?b=c",
            cookie_prefix: "cas_edge_",
            lang: Language::SimplifiedChinese,
            sid: Some("ab12"),
            set_cookies,
            edits,
        }
    }

    #[test]
    fn forward_fields_keep_order_and_kind() {
        let edits = HeaderEdits {
            delete: vec!["x-cas-user".to_owned(), "host".to_owned()],
            set: vec![("Cookie".to_owned(), "a=1".to_owned())],
            append: vec![("X-CAS-User".to_owned(), "demo".to_owned())],
        };

        let text = forward_fields(&spec(&[], &edits)).expect("no line breaks");

        assert_eq!(
            text,
            "http://origin.example/a?b=c\ncas_edge_\nzh-CN\nab12\n0\n\
             d\nx-cas-user\nd\nhost\ns\nCookie\na=1\na\nX-CAS-User\ndemo\n"
        );
    }

    #[test]
    fn forward_fields_count_cookies() {
        let cookies = vec!["a=1; Path=/".to_owned(), "b=2; Secure".to_owned()];
        let no_edits = HeaderEdits::default();
        let mut without_sid = spec(&cookies, &no_edits);
        without_sid.sid = None;

        let text = forward_fields(&without_sid).expect("no line breaks");

        assert_eq!(
            text,
            "http://origin.example/a?b=c\ncas_edge_\nzh-CN\n\n2\na=1; Path=/\nb=2; Secure\n"
        );
    }

    #[test]
    fn forward_field_with_line_break_is_rejected() {
        let edits = HeaderEdits {
            append: vec![("X-CAS-User".to_owned(), "a\nd".to_owned())],
            ..HeaderEdits::default()
        };
        let cookies = vec!["a=1\r".to_owned()];
        let no_edits = HeaderEdits::default();
        let mut bad_url = spec(&[], &no_edits);
        bad_url.url = "http://origin.example/\n";

        assert_eq!(forward_fields(&spec(&[], &edits)), None);
        assert_eq!(forward_fields(&spec(&cookies, &no_edits)), None);
        assert_eq!(forward_fields(&bad_url), None);
    }

    #[test]
    fn cookie_lines_parse() {
        assert_eq!(
            parse_cookie_lines("a=1; Path=/\nb=2; Secure\n"),
            vec!["a=1; Path=/".to_owned(), "b=2; Secure".to_owned()]
        );
        assert!(parse_cookie_lines("").is_empty());
    }

    #[test]
    fn context_round_trips() {
        let text = forward_context(Language::SimplifiedChinese, Some("ab12"));
        assert_eq!(
            parse_forward_context(&text),
            (Language::SimplifiedChinese, Some("ab12".to_owned()))
        );

        let text = forward_context(Language::English, None);
        assert_eq!(parse_forward_context(&text), (Language::English, None));
    }

    #[test]
    fn unknown_context_language_is_english() {
        assert_eq!(parse_forward_context("xx\n"), (Language::English, None));
        assert_eq!(parse_forward_context(""), (Language::English, None));
    }
}
