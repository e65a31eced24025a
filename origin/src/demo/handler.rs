//! Request handling of the demo origin, without sockets: verify the assertion, then show
//! the user or respond with 401.

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_LANGUAGE, CONTENT_TYPE, VARY,
};
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::Full;

use cas_core::language::Language;

use super::page::{anonymous_page, identity_page, unauthorized_page, Received};
use crate::{Identity, Verifier, VerifyError};

/// Header carrying the edge filter's identity assertion.
pub const ASSERTION_HEADER: &str = "x-cas-assertion";

/// Header carrying the user name, shown on the page but never trusted on its own.
pub const USER_HEADER: &str = "x-cas-user";

/// Path that returns 200 without an assertion, so scripts can wait for startup.
pub const HEALTH_PATH: &str = "/healthz";

/// Paths under this prefix are public: without an assertion they show an anonymous page
/// instead of 401, as a site behind a gateway or exclude rule would.
pub const PUBLIC_PREFIX: &str = "/public/";

/// Prefix of the attribute headers the edge sends.
const ATTRIBUTE_PREFIX: &str = "x-cas-attr-";

/// Builds the response to one request at `now` (seconds since the Unix epoch).
pub fn respond(verifier: &Verifier, request: &Parts, now: u64) -> Response<Full<Bytes>> {
    if request.uri.path() == HEALTH_PATH {
        return plain_response(StatusCode::OK, "ok");
    }

    let accept_language = request
        .headers
        .get(ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok());
    let lang = cas_core::language::choose_language(accept_language);
    match verify_request(verifier, &request.headers, now) {
        Ok(identity) => {
            tracing::info!(path = request.uri.path(), user = %identity.user, "served a verified request");
            let received = received(&request.headers);
            let page = identity_page(
                lang,
                &identity.user,
                request.uri.path(),
                &identity.attributes,
                &received,
            );
            html_response(StatusCode::OK, lang, page)
        }
        Err(_) if request.uri.path().starts_with(PUBLIC_PREFIX) => {
            let page = anonymous_page(lang, request.uri.path(), &received(&request.headers));
            html_response(StatusCode::OK, lang, page)
        }
        Err(error) => {
            tracing::info!(path = request.uri.path(), %error, "rejected a request without a valid assertion");
            html_response(StatusCode::UNAUTHORIZED, lang, unauthorized_page(lang))
        }
    }
}

/// Verifies the request's only `X-CAS-Assertion` header. Two copies are rejected, because
/// a proxy in front could have appended its own to a client's.
pub fn verify_request(
    verifier: &Verifier,
    headers: &HeaderMap,
    now: u64,
) -> Result<Identity, VerifyError> {
    let mut values = headers.get_all(ASSERTION_HEADER).iter();
    let (first, second) = (values.next(), values.next());
    if second.is_some() {
        return Err(VerifyError::Duplicated);
    }

    // A header value outside visible ASCII cannot be a JWT, so it counts as malformed.
    let malformed = || VerifyError::Invalid(cas_core::assertion::AssertionError::Malformed);
    let token = first
        .map(|value| value.to_str().map_err(|_| malformed()))
        .transpose()?;
    verifier.verify_header(token, now)
}

fn received(headers: &HeaderMap) -> Received {
    let attribute_headers = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with(ATTRIBUTE_PREFIX))
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let cookie_names = header_values(headers, "cookie")
        .iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name.trim().to_owned()))
        .collect();

    Received {
        user_headers: header_values(headers, USER_HEADER),
        attribute_headers,
        cookie_names,
    }
}

/// Returns every value of header `name`, with invalid UTF-8 replaced.
pub(super) fn header_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    let values = headers.get_all(name).iter();
    values
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect()
}

fn html_response(status: StatusCode, lang: Language, html: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;

    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CONTENT_LANGUAGE, HeaderValue::from_static(lang.tag()));
    headers.insert(VARY, HeaderValue::from_static("Accept-Language"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Returns a `text/plain` response with `status` and `text`.
pub(super) fn plain_response(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use cas_core::assertion::{sign_assertion, IdentityClaims};
    use cas_core::signing::{KeyRing, SigningKey};
    use http_body_util::BodyExt;

    use super::*;

    const AUDIENCE: &str = "http://127.0.0.1:8080";
    const NOW: u64 = 1_800_000_000;

    fn key() -> SigningKey {
        SigningKey::from_secret(&"k".repeat(40)).expect("long enough")
    }

    fn verifier() -> Verifier {
        Verifier::new(KeyRing::new(key(), None), AUDIENCE).with_issuer("cas-edge-filter")
    }

    fn assertion(user: &str) -> String {
        let claims = IdentityClaims {
            iss: "cas-edge-filter".into(),
            aud: AUDIENCE.into(),
            sub: user.into(),
            iat: NOW,
            exp: NOW + 60,
            attributes: Default::default(),
        };
        sign_assertion(&key(), &claims)
    }

    fn request(path: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("valid request").into_parts().0
    }

    async fn body_text(response: Response<Full<Bytes>>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("full body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn valid_assertion_shows_user() {
        let token = assertion("张三<b>");
        let response = respond(
            &verifier(),
            &request("/docs/a", &[("X-CAS-Assertion", &token)]),
            NOW,
        );

        assert_eq!(response.status(), StatusCode::OK);
        let body = body_text(response).await;
        assert!(body.contains("张三&lt;b&gt;"), "{body}");
        assert!(body.contains("/docs/a"), "{body}");
    }

    #[tokio::test]
    async fn forged_user_header_is_unauthorized() {
        let response = respond(
            &verifier(),
            &request("/private", &[("X-CAS-User", "admin")]),
            NOW,
        );

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body = body_text(response).await;
        assert!(!body.contains("admin"), "{body}");
    }

    #[tokio::test]
    async fn forged_assertion_is_unauthorized() {
        let headers = [
            ("X-CAS-User", "admin"),
            ("X-CAS-Assertion", "eyJhbGciOiJub25lIn0.e30."),
        ];

        let response = respond(&verifier(), &request("/private", &headers), NOW);

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn expired_assertion_is_unauthorized() {
        let token = assertion("alice");

        let response = respond(
            &verifier(),
            &request("/", &[("X-CAS-Assertion", &token)]),
            NOW + 3600,
        );

        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn duplicated_assertion_is_rejected() {
        let token = assertion("alice");
        let parts = request(
            "/",
            &[("X-CAS-Assertion", &token), ("x-cas-assertion", &token)],
        );

        assert_eq!(
            verify_request(&verifier(), &parts.headers, NOW),
            Err(VerifyError::Duplicated)
        );
    }

    #[tokio::test]
    async fn public_path_shows_anonymous_page() {
        let headers = [
            ("x-cas-attr-memberof", "staff"),
            ("cookie", "a=1; cas_edge_session=x"),
        ];
        let response = respond(&verifier(), &request("/public/news", &headers), NOW);

        assert_eq!(response.status(), StatusCode::OK);
        let body = body_text(response).await;
        assert!(body.contains(r#"id="anonymous""#), "{body}");
        assert!(
            body.contains("<li>x-cas-attr-memberof: staff</li>"),
            "{body}"
        );
        assert!(
            body.contains("<li>a</li><li>cas_edge_session</li>"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn identity_page_lists_attributes() {
        let mut attributes = cas_core::validation::Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into(), "dev".into()]);
        let claims = IdentityClaims {
            iss: "cas-edge-filter".into(),
            aud: AUDIENCE.into(),
            sub: "alice".into(),
            iat: NOW,
            exp: NOW + 60,
            attributes,
        };
        let token = sign_assertion(&key(), &claims);

        let response = respond(
            &verifier(),
            &request("/p", &[(ASSERTION_HEADER, &token)]),
            NOW,
        );

        let body = body_text(response).await;
        assert!(body.contains("<li>memberOf=staff|dev</li>"), "{body}");
        assert!(
            body.contains(r#"<ul id="attribute-headers"></ul>"#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn health_needs_no_assertion() {
        let response = respond(&verifier(), &request(HEALTH_PATH, &[]), NOW);

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_text(response).await, "ok");
    }

    #[tokio::test]
    async fn unauthorized_page_follows_language() {
        let response = respond(
            &verifier(),
            &request("/", &[("Accept-Language", "zh-CN,zh;q=0.9")]),
            NOW,
        );

        assert_eq!(response.headers()[CONTENT_LANGUAGE], "zh-CN");
        assert!(body_text(response).await.contains("未认证"));
    }
}
