//! Error text made safe for logs. A URL's query may carry a service ticket, and the
//! runtime's fetch errors may quote the URL they failed on.

/// Replaces every query in `text`, from a `?` to the next whitespace or quote, with
/// `?<query>`.
pub fn without_queries(text: &str) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('?') {
        redacted.push_str(&rest[..start]);
        redacted.push_str("?<query>");

        let query = &rest[start + 1..];
        let end = query
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(query.len());
        rest = &query[end..];
    }
    redacted.push_str(rest);
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_url_loses_its_query() {
        let text = "TypeError: Fetch failed: http://origin.example/a?ticket=ST-1-abc&x=1 (refused)";

        let redacted = without_queries(text);

        assert_eq!(
            redacted,
            "TypeError: Fetch failed: http://origin.example/a?<query> (refused)"
        );
        assert!(!redacted.contains("ST-1"));
    }

    #[test]
    fn every_query_is_removed() {
        let text = "'https://a.example/?ticket=ST-1' then \"https://b.example/x?ticket=ST-2\"";

        let redacted = without_queries(text);

        assert_eq!(
            redacted,
            "'https://a.example/?<query>' then \"https://b.example/x?<query>\""
        );
    }

    #[test]
    fn text_without_query_is_unchanged() {
        assert_eq!(
            without_queries("network connection lost"),
            "network connection lost"
        );
        assert_eq!(without_queries(""), "");
    }

    #[test]
    fn lone_question_mark_is_marked() {
        assert_eq!(without_queries("why?"), "why?<query>");
    }
}
