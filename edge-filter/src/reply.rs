//! A response the filter produces itself, as plain data the wasm glue turns into a
//! Workers `Response`.

/// Status, headers and body of a filter-made response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// Builds a redirect to `location` that no cache may store, because it may set a session.
    pub fn redirect(status: u16, location: &str) -> Self {
        let headers = vec![
            ("Location".to_owned(), location.to_owned()),
            ("Cache-Control".to_owned(), "no-store".to_owned()),
        ];
        Self {
            status,
            headers,
            body: String::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Returns the first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}
