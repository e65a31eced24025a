//! The request to the origin, or to the static assets, for a request the filter lets through.

use cas_core::language::Language;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::{web_sys, Fetcher};
use worker::{console_error, js_sys, Env, Headers, Result};

use super::{into_raw_response, ASSETS_BINDING};
use crate::config::FilterConfig;
use crate::cookies::{sets_filter_cookie, FILTER_COOKIE_PREFIX};
use crate::flow::OriginRequest;
use crate::headers::HeaderEdits;
use crate::options::Origin;
use crate::pages::Page;

/// Sends the request to the origin with the filter's headers and the client's body, and
/// returns the origin's response as it is, redirects included, plus any filter cookies.
pub async fn forward(
    request: &web_sys::Request,
    incoming: &web_sys::Headers,
    target: OriginRequest,
    config: &FilterConfig,
    env: &Env,
    lang: Language,
) -> Result<web_sys::Response> {
    let headers = edited_headers(incoming, &target.headers)?;

    let method = request.method();
    let init = web_sys::RequestInit::new();
    init.set_method(&method);
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if let Some(body) = request.body().filter(|_| may_have_body(&method)) {
        init.set_body(&body);
    }

    match send(&target.url, &init, config, env).await {
        Ok(response) => with_cookies(response, &target.set_cookies),
        Err(error) => {
            let sid = target.sid.as_deref().unwrap_or("none");
            let error = worker::Error::from(error);
            console_error!("origin request failed for session {sid}: {error}");
            into_raw_response(Page::OriginUnavailable.render(lang))
        }
    }
}

/// Returns whether a request with `method` may carry a body to the origin. An HTTP/1.1
/// client may send a body with GET or HEAD, but `fetch` rejects such a request, so the
/// filter drops that body instead of failing with the 502 page.
fn may_have_body(method: &str) -> bool {
    !method.eq_ignore_ascii_case("GET") && !method.eq_ignore_ascii_case("HEAD")
}

/// Copies the incoming headers and applies `edits` to the copy, in the order that
/// [`HeaderEdits::apply`] describes.
fn edited_headers(incoming: &web_sys::Headers, edits: &HeaderEdits) -> Result<web_sys::Headers> {
    let headers = web_sys::Headers::new_with_headers(incoming)?;
    for name in &edits.delete {
        headers.delete(name)?;
    }
    for (name, value) in &edits.set {
        headers.set(name, value)?;
    }
    for (name, value) in &edits.append {
        headers.append(name, value)?;
    }
    Ok(headers)
}

/// Calls the global `fetch`, or the assets binding's, with the URL and the init.
async fn send(
    url: &str,
    init: &web_sys::RequestInit,
    config: &FilterConfig,
    env: &Env,
) -> std::result::Result<web_sys::Response, JsValue> {
    let promise = match config.origin {
        Origin::Url(_) => {
            let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
            global.fetch_with_str_and_init(url, init)
        }
        Origin::Assets => {
            let assets = env
                .assets(ASSETS_BINDING)
                .map_err(|error| JsValue::from(error.to_string()))?;
            assets
                .into_rpc::<Fetcher>()
                .fetch_with_str_and_init(url, init)?
        }
    };
    JsFuture::from(promise).await?.dyn_into()
}

/// Adds `Set-Cookie` values to a response and removes the origin's `Set-Cookie` values
/// for the filter's cookies. The headers of a fetched response are immutable, so a
/// changed response gets new headers around the same body stream.
fn with_cookies(response: web_sys::Response, cookies: &[String]) -> Result<web_sys::Response> {
    let origin_headers = response.headers();
    let foreign = sets_any_filter_cookie(&origin_headers)?;
    if cookies.is_empty() && !foreign {
        return Ok(response);
    }

    let headers = web_sys::Headers::new_with_headers(&origin_headers)?;
    if foreign {
        keep_origin_cookies(&headers, &origin_headers)?;
    }
    for cookie in cookies {
        headers.append("Set-Cookie", cookie)?;
    }

    let init = web_sys::ResponseInit::new();
    init.set_status(response.status());
    init.set_status_text(&response.status_text());
    init.set_headers(&headers);
    let body = response.body();
    Ok(web_sys::Response::new_with_opt_readable_stream_and_init(
        body.as_ref(),
        &init,
    )?)
}

/// Returns whether the origin's response may set one of the filter's cookies. It reads
/// the joined `Set-Cookie` value once, so responses without such a cookie stay cheap.
fn sets_any_filter_cookie(headers: &web_sys::Headers) -> Result<bool> {
    let joined = headers.get("set-cookie")?;
    Ok(joined.is_some_and(|value| value.contains(FILTER_COOKIE_PREFIX)))
}

/// Replaces the `Set-Cookie` values in `headers` with those of `origin_headers` that do
/// not set a filter cookie. The origin never receives the filter's cookies, so it cannot
/// set them either, and a bug in the origin cannot plant or clear a session.
fn keep_origin_cookies(
    headers: &web_sys::Headers,
    origin_headers: &web_sys::Headers,
) -> Result<()> {
    headers.delete("set-cookie")?;
    for (name, value) in Headers(origin_headers.clone()).entries() {
        if name.eq_ignore_ascii_case("set-cookie") && !sets_filter_cookie(&value) {
            headers.append("Set-Cookie", &value)?;
        }
    }
    Ok(())
}
