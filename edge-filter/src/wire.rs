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
    pub method: String,
    pub url: String,
    /// Every header as the runtime iterates them: names lowercase, repeated headers
    /// joined by the runtime.
    pub headers: Vec<(String, String)>,
}

/// Parses the output of `describeRequest`: method, URL, then name and value pairs.
/// Returns `None` when a field is missing.
pub fn parse_request(text: &str) -> Option<RequestDescription> {
    let mut fields = text.strip_suffix('\n')?.split('\n');
    let method = fields.next()?.to_owned();
    let url = fields.next()?.to_owned();

    let mut headers = Vec::new();
    while let Some(name) = fields.next() {
        let value = fields.next()?;
        headers.push((name.to_owned(), value.to_owned()));
    }
    Some(RequestDescription {
        method,
        url,
        headers,
    })
}

/// Writes `edits` in the format that `forward` applies: `d` and a name for each
/// deletion, `s` or `a`, a name and a value for each replacement or addition. Returns
/// `None` when a name or value contains a character that would end a field.
pub fn edit_fields(edits: &HeaderEdits) -> Option<String> {
    let mut text = String::new();
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

/// Writes `Set-Cookie` values one per line. Returns `None` when a value contains a
/// character that would end a field.
pub fn cookie_lines(cookies: &[String]) -> Option<String> {
    let mut text = String::new();
    for cookie in cookies {
        push_fields(&mut text, &[cookie])?;
    }
    Some(text)
}

/// Reads the values written by [`cookie_lines`].
pub fn parse_cookie_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// Writes what the error handler of a forwarded request needs: the page language and
/// the session id, empty for none. A session id is hex, so it never contains a newline.
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
        if field.contains(['\n', '\r', '\0']) {
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
        let text = "GET\nhttps://site.example/a?b=c\ncookie\nx=1; y=2\naccept\ntext/html\n";

        let request = parse_request(text).expect("complete request");

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
        let request = parse_request("HEAD\nhttps://site.example/\n").expect("complete request");

        assert_eq!(request.method, "HEAD");
        assert!(request.headers.is_empty());
    }

    #[test]
    fn empty_header_value_is_kept() {
        let request =
            parse_request("GET\nhttps://site.example/\nx-empty\n\n").expect("complete request");

        assert_eq!(request.headers, vec![("x-empty".to_owned(), String::new())]);
    }

    #[test]
    fn truncated_request_is_rejected() {
        assert_eq!(parse_request(""), None);
        assert_eq!(parse_request("GET\n"), None);
        assert_eq!(parse_request("GET\nhttps://site.example/\ncookie\n"), None);
        assert_eq!(parse_request("GET\nhttps://site.example/"), None);
    }

    #[test]
    fn edits_keep_their_order_and_kind() {
        let edits = HeaderEdits {
            delete: vec!["x-cas-user".to_owned(), "host".to_owned()],
            set: vec![("Cookie".to_owned(), "a=1".to_owned())],
            append: vec![("X-CAS-User".to_owned(), "demo".to_owned())],
        };

        let text = edit_fields(&edits).expect("no line breaks");

        assert_eq!(
            text,
            "d\nx-cas-user\nd\nhost\ns\nCookie\na=1\na\nX-CAS-User\ndemo\n"
        );
    }

    #[test]
    fn edit_with_newline_is_rejected() {
        let edits = HeaderEdits {
            append: vec![("X-CAS-User".to_owned(), "a\nd".to_owned())],
            ..HeaderEdits::default()
        };

        assert_eq!(edit_fields(&edits), None);
    }

    #[test]
    fn no_edits_give_empty_text() {
        assert_eq!(edit_fields(&HeaderEdits::default()).expect("empty"), "");
    }

    #[test]
    fn cookies_round_trip() {
        let cookies = vec!["a=1; Path=/".to_owned(), "b=2; Secure".to_owned()];

        let text = cookie_lines(&cookies).expect("no line breaks");

        assert_eq!(parse_cookie_lines(&text), cookies);
        assert_eq!(cookie_lines(&[]).expect("empty"), "");
        assert_eq!(cookie_lines(&["a=1\r".to_owned()]), None);
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
