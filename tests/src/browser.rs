//! A browser stand-in: an HTTP client that never follows redirects and keeps cookies per
//! host and port, so every hop of the CAS flow can be checked.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, SET_COOKIE};
use reqwest::{Certificate, Client, Method, StatusCode};

/// One response, read in full.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Returns the Location header, which the test then follows by hand.
    pub fn location(&self) -> String {
        let value = self
            .headers
            .get(LOCATION)
            .unwrap_or_else(|| panic!("no Location in {self:?}"));
        value.to_str().unwrap_or_default().to_owned()
    }

    /// Returns every Set-Cookie header value.
    pub fn set_cookies(&self) -> Vec<String> {
        let values = self.headers.get_all(SET_COOKIE).iter();
        values
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Returns the Set-Cookie header that sets `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
}

/// A client with a cookie jar keyed by `host:port`.
pub struct Browser {
    client: Client,
    jar: HashMap<String, HashMap<String, String>>,
    pub accept_language: String,
}

impl Browser {
    /// Creates a browser that trusts `ca_pem` for HTTPS.
    pub fn new(ca_pem: &[u8]) -> Self {
        let ca =
            Certificate::from_pem(ca_pem).unwrap_or_else(|e| panic!("bad CA certificate: {e}"));
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(ca)
            .build()
            .unwrap_or_else(|e| panic!("cannot build HTTP client: {e}"));
        Self {
            client,
            jar: HashMap::new(),
            accept_language: "en".to_owned(),
        }
    }

    /// GET `url` with the stored cookies and `extra` headers.
    pub async fn get(&mut self, url: &str, extra: &[(&str, &str)]) -> Page {
        self.send(Method::GET, url, extra, None).await
    }

    /// POST `fields` as a form to `url`.
    pub async fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let header = [("content-type", "application/x-www-form-urlencoded")];
        self.send(Method::POST, url, &header, Some(body)).await
    }

    /// Returns the cookie `name` stored for the host of `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.jar.get(&host_key(url))?.get(name).cloned()
    }

    /// Forgets every cookie of the host of `url`, as a second site or a fresh browser would.
    pub fn clear_cookies(&mut self, url: &str) {
        self.jar.remove(&host_key(url));
    }

    async fn send(
        &mut self,
        method: Method,
        url: &str,
        extra: &[(&str, &str)],
        body: Option<String>,
    ) -> Page {
        let mut request = self
            .client
            .request(method, url)
            .header("accept-language", &self.accept_language);
        request = request.header("accept", "text/html,application/xhtml+xml");
        if let Some(cookie) = self.cookie_header(url) {
            request = request.header("cookie", cookie);
        }
        for (name, value) in extra {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            request = request.header(
                name,
                HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        if let Some(body) = body {
            request = request.body(body);
        }

        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let page = Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap_or_default(),
        };
        self.store_cookies(url, &page);
        page
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let cookies = self.jar.get(&host_key(url))?;
        if cookies.is_empty() {
            return None;
        }
        Some(
            cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    fn store_cookies(&mut self, url: &str, page: &Page) {
        let jar = self.jar.entry(host_key(url)).or_default();
        for header in page.set_cookies() {
            let pair = header.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = header.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if expired {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
    }
}

fn host_key(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Returns the `value` of the form input named `name` in `html`.
pub fn form_input(html: &str, name: &str) -> Option<String> {
    let input = regex::Regex::new(&format!(r#"<input[^>]*name="{name}"[^>]*>"#)).ok()?;
    let value = regex::Regex::new(r#"value="([^"]*)""#).ok()?;
    let tag = input.find(html)?.as_str();
    Some(value.captures(tag)?.get(1)?.as_str().replace("&amp;", "&"))
}
