//! Request dispatch: strips the base path, picks the handler by path and method, picks
//! the page language and serves HEAD as GET without a body.
//!
//! HEAD is a safe method (RFC 9110, section 9.2.1), so it never validates, issues or
//! consumes a ticket and never ends a session. The router builds the HEAD response of
//! the validation endpoints and `/proxy` without reaching the ticket store, and
//! `/login` and `/logout` check the method themselves.

use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tracing::Instrument;

use super::cookie::set_language_cookie;
use super::language::{request_language, RequestLanguage};
use super::pages;
use super::params::{Params, ParamsError};
use super::response::{self, Body, UnknownLength};
use super::theme::THEMES_PATH;
use super::validate::Protocol;
use super::{
    delivery, format, health, login, logout, proxy, saml_validate, theme, validate, validate_v1,
};
use crate::app::App;
use crate::i18n::Language;

/// Longest accepted request target (path and query), in bytes; a longer one gets 414.
/// Apache and nginx reject request lines past about 8 KiB by default, so CAS clients
/// and their service URLs already stay below it.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Largest request head (request line and header fields), in bytes; a larger one gets a
/// 431 page. Nginx accepts up to four 8 KiB header buffers by default, so 64 KiB leaves
/// room for large cookies while bounding the memory of each connection.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Most header fields in one request; more get a 431 page.
pub const MAX_HEADER_FIELDS: usize = 100;

/// Handles one request. Every error becomes an error response, so this cannot fail.
pub async fn handle(app: &App, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let mut request = request;
    request.extensions_mut().insert(peer);
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), %peer);
    async move {
        let is_head = request.method() == Method::HEAD;
        let response = route(app, request).await;
        tracing::debug!(status = response.status().as_u16(), "response");

        if is_head {
            return without_body(response).await;
        }
        response
    }
    .instrument(span)
    .await
}

async fn route(app: &App, request: Request<Incoming>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    // The query is parsed once, for the page language and for the validation endpoints.
    let query = Params::from_query(parts.uri.query());
    let RequestLanguage { language, explicit } = request_language(&parts, query.as_ref().ok());

    let mut response = route_endpoint(app, parts, body, language, &query).await;
    // A page opened with a valid `lang` parameter keeps that language for later pages,
    // the login post included. Responses that shared caches may store get no cookie,
    // because a cache could replay it to other clients.
    if explicit && !is_shared_cacheable(&response) {
        if let Some(cookie) = set_language_cookie(language.tag(), &app.config.base_path) {
            response::set_cookie(&mut response, cookie);
        }
    }
    response
}

async fn route_endpoint(
    app: &App,
    parts: http::request::Parts,
    body: Incoming,
    language: Language,
    query: &Result<Params, ParamsError>,
) -> Response<Body> {
    if request_target_length(&parts.uri) > MAX_URI_BYTES {
        return pages::error(language, StatusCode::URI_TOO_LONG, |t| t.uri_too_long);
    }
    if head_length(&parts) > MAX_HEAD_BYTES || parts.headers.len() > MAX_HEADER_FIELDS {
        return pages::error(language, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, |t| {
            t.head_too_large
        });
    }
    let readable = parts.method == Method::GET || parts.method == Method::HEAD;
    let head = parts.method == Method::HEAD;
    if parts.uri.path() == app.config.metrics_path {
        return match readable {
            true => health::metrics(app),
            false => method_not_allowed(language, "GET, HEAD"),
        };
    }
    let Some(endpoint) = endpoint_name(&app.config.base_path, parts.uri.path()) else {
        return not_found(language);
    };

    match (endpoint, readable) {
        (
            "serviceValidate" | "p3/serviceValidate" | "proxyValidate" | "p3/proxyValidate"
            | "proxy",
            true,
        ) if head => format::head_response(query),
        ("validate", true) if head => validate_v1::head(),
        ("health", true) => health::health(),
        ("ready", true) => health::ready(app).await,
        ("login", true) => login::get(app, &parts, language).await,
        ("login", false) if parts.method == Method::POST => {
            login::post(app, &parts, body, language).await
        }
        ("login", false) => method_not_allowed(language, "GET, HEAD, POST"),
        ("serviceValidate", true) => validate::service_validate(app, query, Protocol::V2).await,
        ("p3/serviceValidate", true) => validate::service_validate(app, query, Protocol::V3).await,
        ("proxyValidate", true) => validate::proxy_validate(app, query, Protocol::V2).await,
        ("p3/proxyValidate", true) => validate::proxy_validate(app, query, Protocol::V3).await,
        ("validate", true) => validate_v1::validate(app, &parts).await,
        ("proxy", true) => proxy::get(app, &parts).await,
        ("logout", true) => logout::get(app, &parts, language).await,
        ("samlValidate", false) if parts.method == Method::POST => {
            saml_validate::post(app, &parts, body).await
        }
        ("samlValidate", _) => method_not_allowed(language, "POST"),
        (delivery::AUTO_SUBMIT_SCRIPT_PATH, true) => response::script(delivery::AUTO_SUBMIT_SCRIPT),
        (path, true) if path.starts_with(THEMES_PATH) => {
            theme::logo(app, &path[THEMES_PATH.len()..], language).await
        }
        (path, false) if path.starts_with(THEMES_PATH) => method_not_allowed(language, "GET, HEAD"),
        (
            "serviceValidate"
            | "p3/serviceValidate"
            | "proxyValidate"
            | "p3/proxyValidate"
            | "validate"
            | "proxy"
            | "logout"
            | "health"
            | "ready"
            | delivery::AUTO_SUBMIT_SCRIPT_PATH,
            false,
        ) => method_not_allowed(language, "GET, HEAD"),
        _ => not_found(language),
    }
}

/// Returns whether the response allows shared caches to store it: the logo files and
/// the static script, which are the same for every client.
fn is_shared_cacheable(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|directive| directive.trim() == "public")
        })
}

/// Returns the length of the path and query as the request line carried them.
fn request_target_length(uri: &http::Uri) -> usize {
    uri.path_and_query()
        .map_or(0, |target| target.as_str().len())
}

/// Returns the length of the request head as the client sent it: the request line and
/// each header field with its `: ` and line end.
fn head_length(parts: &http::request::Parts) -> usize {
    let request_line = parts.method.as_str().len() + request_target_length(&parts.uri) + 11;
    let fields: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    request_line + fields
}

/// Returns the endpoint path below the base path, or `None` when the path is outside it.
fn endpoint_name<'a>(base_path: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(base_path)?.strip_prefix('/')
}

fn not_found(language: Language) -> Response<Body> {
    pages::error(language, StatusCode::NOT_FOUND, |t| t.not_found)
}

fn method_not_allowed(language: Language, allowed: &'static str) -> Response<Body> {
    let mut response = pages::error(language, StatusCode::METHOD_NOT_ALLOWED, |t| {
        t.method_not_allowed
    });
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    response
}

/// Replaces the body of a GET response with nothing. Content-Length still gives the
/// length GET would send, unless the handler marked the length as unknown.
async fn without_body(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    if parts.extensions.get::<UnknownLength>().is_some() {
        parts.headers.remove(CONTENT_LENGTH);
        return Response::from_parts(parts, Full::new(Bytes::new()));
    }
    let length = body
        .collect()
        .await
        .map(|collected| collected.to_bytes().len())
        .unwrap_or_default();

    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    Response::from_parts(parts, Full::new(Bytes::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_needs_base_path_boundary() {
        assert_eq!(endpoint_name("/cas", "/cas/login"), Some("login"));
        assert_eq!(
            endpoint_name("/cas", "/cas/p3/serviceValidate"),
            Some("p3/serviceValidate")
        );
        assert_eq!(endpoint_name("/cas", "/caslogin"), None);
        assert_eq!(endpoint_name("/cas", "/cas"), None);
        assert_eq!(endpoint_name("/cas", "/other/login"), None);
        assert_eq!(endpoint_name("", "/login"), Some("login"));
    }
}
