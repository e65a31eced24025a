//! Response builders with the headers every response of their kind carries.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// The body type of every response.
pub type Body = Full<Bytes>;

/// Pages load nothing from outside and run no inline script: the only script is the
/// server's own file that submits the `method=POST` form. Inline styles are allowed
/// because the page style sits in a `<style>` element. `form-action` is left out on
/// purpose: browsers apply it to the redirect after the login post and to the form
/// posted to the service, which both go to the service.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Builds an HTML page response.
pub fn html(status: StatusCode, page: String) -> Response<Body> {
    let mut response = with_common_headers(status, Bytes::from(page));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Builds the response of a static script file. It contains no secret, so browsers may
/// keep it for an hour.
pub fn script(source: &'static str) -> Response<Body> {
    let mut response = with_common_headers(StatusCode::OK, Bytes::from_static(source.as_bytes()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.remove(header::PRAGMA);
    response
}

/// Content-Security-Policy of logo responses. An SVG logo opened on its own runs no
/// script and loads nothing.
const IMAGE_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// Builds the response of a logo file. Browsers may keep it for an hour.
pub fn image(media_type: &'static str, bytes: Vec<u8>) -> Response<Body> {
    let mut response = with_common_headers(StatusCode::OK, Bytes::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(IMAGE_SECURITY_POLICY),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.remove(header::PRAGMA);
    response
}

/// Builds a CAS XML validation response. CAS reports failures inside the document, so the
/// status is always 200.
pub fn xml(document: String) -> Response<Body> {
    let mut response = with_common_headers(StatusCode::OK, Bytes::from(document));
    let content_type = HeaderValue::from_static("application/xml; charset=UTF-8");
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// Builds a CAS JSON response (`format=JSON`). Like the XML, failures are inside the
/// document and the status is always 200.
pub fn json(document: String) -> Response<Body> {
    let mut response = with_common_headers(StatusCode::OK, Bytes::from(document));
    let content_type = HeaderValue::from_static("application/json");
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// Builds a 200 plain-text response, such as the CAS 1.0 `/validate` response.
pub fn text(body: String) -> Response<Body> {
    let mut response = with_common_headers(StatusCode::OK, Bytes::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Builds a redirect to `location`, an absolute URL that has passed [`cas_core::service::ServiceUrl::parse`].
pub fn redirect(status: StatusCode, location: &str) -> Response<Body> {
    let mut response = with_common_headers(status, Bytes::new());
    match HeaderValue::from_str(&ascii_location(location)) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => {
            // ServiceUrl::parse rejects controls and whitespace, and everything else
            // was percent-encoded, so this branch means a bug, not bad input.
            tracing::error!("redirect target is not a valid header value");
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    response
}

/// Builds a plain-text response for the rare case where a page cannot be rendered.
pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = with_common_headers(status, Bytes::from_static(text.as_bytes()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Response extension of a HEAD response that carries the status and headers GET would
/// send, but whose GET body cannot be known without validating, issuing or consuming a
/// ticket. The router sends it without a body and without Content-Length, which
/// RFC 9110 (section 9.3.2) allows for fields that only generating the content
/// determines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownLength;

/// Marks `response` as a HEAD response whose GET body is unknown, as [`UnknownLength`]
/// describes.
pub fn with_unknown_length(mut response: Response<Body>) -> Response<Body> {
    response.extensions_mut().insert(UnknownLength);
    response
}

/// Adds a `Set-Cookie` header.
pub fn set_cookie(response: &mut Response<Body>, cookie: HeaderValue) {
    response.headers_mut().append(header::SET_COOKIE, cookie);
}

/// The server speaks HTTPS only, so browsers may refuse plain HTTP to this host for a
/// year. Subdomains are left out because they may be other servers.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

fn with_common_headers(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;

    // Pages carry login tickets and validation results carry identities: no cache may keep them.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
    );
    response
}

/// Bytes outside printable ASCII are percent-encoded, as browsers do when they follow a
/// link, because a header value must be ASCII.
const NON_ASCII: &AsciiSet = &CONTROLS.add(b' ');

fn ascii_location(location: &str) -> String {
    utf8_percent_encode(location, NON_ASCII).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_encodes_non_ascii() {
        let response = redirect(
            StatusCode::FOUND,
            "https://app.example/页面?q=é&ticket=ST-1",
        );
        let location = response.headers().get(header::LOCATION).expect("location");

        assert_eq!(
            location,
            "https://app.example/%E9%A1%B5%E9%9D%A2?q=%C3%A9&ticket=ST-1"
        );
        assert_eq!(response.status(), StatusCode::FOUND);
    }

    #[test]
    fn every_response_sets_transport_security() {
        for response in [
            html(StatusCode::OK, String::new()),
            xml(String::new()),
            json(String::new()),
            text(String::new()),
            script(""),
            plain(StatusCode::SERVICE_UNAVAILABLE, ""),
            redirect(StatusCode::FOUND, "https://a/"),
        ] {
            let headers = response.headers();

            assert_eq!(
                headers.get(header::STRICT_TRANSPORT_SECURITY),
                Some(&HeaderValue::from_static(STRICT_TRANSPORT_SECURITY))
            );
            assert_eq!(
                headers.get(header::X_CONTENT_TYPE_OPTIONS),
                Some(&HeaderValue::from_static("nosniff"))
            );
        }
    }

    #[test]
    fn every_response_is_not_cached() {
        for response in [
            html(StatusCode::OK, String::new()),
            xml(String::new()),
            json(String::new()),
            text(String::new()),
            redirect(StatusCode::FOUND, "https://a/"),
        ] {
            assert_eq!(
                response
                    .headers()
                    .get(header::CACHE_CONTROL)
                    .expect("header"),
                "no-store"
            );
        }
    }
}
