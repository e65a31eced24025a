//! The `format` parameter of the CAS 2.0 and 3.0 validation endpoints and of `/proxy`.

/// Wire format of a CAS response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    /// `cas:serviceResponse` XML, the default.
    #[default]
    Xml,
    /// The same tree as JSON.
    Json,
}

impl ResponseFormat {
    /// Parses the `format` parameter: `XML` or `JSON` in any letter case, as Apereo CAS
    /// (which upper-cases the value) accepts them. Any other value is `None`, and the
    /// caller must then respond with an error code, as the specification requires for an
    /// unsupported value.
    pub fn parse(value: &str) -> Option<Self> {
        if value.eq_ignore_ascii_case("XML") {
            return Some(ResponseFormat::Xml);
        }
        if value.eq_ignore_ascii_case("JSON") {
            return Some(ResponseFormat::Json);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_both_names_in_any_case() {
        assert_eq!(ResponseFormat::parse("XML"), Some(ResponseFormat::Xml));
        assert_eq!(ResponseFormat::parse("xml"), Some(ResponseFormat::Xml));
        assert_eq!(ResponseFormat::parse("JSON"), Some(ResponseFormat::Json));
        assert_eq!(ResponseFormat::parse("Json"), Some(ResponseFormat::Json));
    }

    #[test]
    fn parse_rejects_other_values() {
        for value in ["", "YAML", "JSONP", " JSON", "<x/>"] {
            assert_eq!(ResponseFormat::parse(value), None, "{value:?}");
        }
    }
}
