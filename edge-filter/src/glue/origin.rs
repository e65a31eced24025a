//! The request to the origin, or to the static assets, for a request the filter lets through.

use cas_core::language::Language;
use worker::wasm_bindgen::JsValue;
use worker::{
    console_error, Env, Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response,
    Result,
};

use super::{into_response, ASSETS_BINDING};
use crate::config::FilterConfig;
use crate::flow::OriginRequest;
use crate::options::Origin;
use crate::pages::Page;

/// Sends the request to the origin with the filter's headers and the client's body, and
/// returns the origin's response as it is, redirects included, plus any filter cookies.
pub async fn forward(
    request: &Request,
    target: OriginRequest,
    config: &FilterConfig,
    env: &Env,
    lang: Language,
) -> Result<Response> {
    let method = request.method();
    let headers: Headers = target
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();

    let mut init = RequestInit::new();
    init.with_method(method.clone())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if !matches!(method, Method::Get | Method::Head) {
        init.with_body(request.inner().body().map(JsValue::from));
    }

    let sent = match config.origin {
        Origin::Url(_) => {
            let outgoing = Request::new_with_init(&target.url, &init)?;
            Fetch::Request(outgoing).send().await
        }
        Origin::Assets => match env.assets(ASSETS_BINDING) {
            Ok(assets) => assets.fetch(target.url.clone(), Some(init)).await,
            Err(error) => Err(error),
        },
    };

    match sent {
        Ok(response) => with_cookies(response, &target.set_cookies),
        Err(error) => {
            let sid = target.sid.as_deref().unwrap_or("none");
            console_error!("origin request failed for session {sid}: {error}");
            into_response(Page::OriginUnavailable.render(lang))
        }
    }
}

/// Adds `Set-Cookie` values to a response. The headers of a fetched response are
/// immutable, so they are copied into new ones.
fn with_cookies(response: Response, cookies: &[String]) -> Result<Response> {
    if cookies.is_empty() {
        return Ok(response);
    }

    let headers = Headers::new();
    for (name, value) in response.headers().entries() {
        headers.append(&name, &value)?;
    }
    for cookie in cookies {
        headers.append("Set-Cookie", cookie)?;
    }
    Ok(response.with_headers(headers))
}
