//! The request to the origin, or to the static assets, for a request the filter lets through.

use cas_core::language::Language;
use worker::js_sys::{Function, Promise, Reflect};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::web_sys;
use worker::{console_error, Env, Headers, Result};

use super::{into_raw_response, ASSETS_BINDING};
use crate::config::FilterConfig;
use crate::cookies::{sets_filter_cookie, FILTER_COOKIE_PREFIX};
use crate::flow::OriginRequest;
use crate::options::Origin;
use crate::pages::Page;
use crate::redact::without_queries;
use crate::wire::{
    forward_context, forward_fields, parse_cookie_lines, parse_forward_context, ForwardSpec,
};

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen, module = "/js/glue.js")]
extern "C" {
    /// Sends the request with edited headers and attaches the response handlers. It
    /// throws when an edit is rejected by `Headers`.
    #[wasm_bindgen(js_name = forward, catch)]
    fn forward_as_specified(
        request: &web_sys::Request,
        fetcher: &JsValue,
        spec: &str,
        with_body: bool,
        on_response: &Function,
        on_error: &Function,
    ) -> std::result::Result<Promise, JsValue>;
}

/// Sends the request to the origin with the filter's headers and the client's body. The
/// promise resolves to the origin's response as it is, redirects included, plus any
/// filter cookies, or to the 502 page when the origin cannot be reached.
pub fn forward(
    request: &web_sys::Request,
    method: &str,
    target: OriginRequest,
    config: &FilterConfig,
    env: &Env,
    lang: Language,
) -> Result<Promise> {
    let spec = ForwardSpec {
        url: &target.url,
        cookie_prefix: FILTER_COOKIE_PREFIX,
        lang,
        sid: target.sid.as_deref(),
        set_cookies: &target.set_cookies,
        edits: &target.headers,
    };
    let fields = forward_fields(&spec).ok_or_else(|| {
        worker::Error::RustError(
            "invalid origin request: the URL, a Set-Cookie value or a header edit contains a line break"
                .to_owned(),
        )
    })?;

    let sent = fetcher(config, env).and_then(|fetcher| {
        HANDLERS.with(|handlers| {
            forward_as_specified(
                request,
                &fetcher,
                &fields,
                may_have_body(method),
                &handlers.on_response,
                &handlers.on_error,
            )
        })
    });
    match sent {
        Ok(promise) => Ok(promise),
        Err(error) => {
            let context = forward_context(lang, target.sid.as_deref());
            let page = origin_failed(&error, &context)?;
            Ok(Promise::resolve(&JsValue::from(page)))
        }
    }
}

/// Returns the object whose `fetch` reaches the origin: the global scope, or the static
/// assets binding.
fn fetcher(config: &FilterConfig, env: &Env) -> std::result::Result<JsValue, JsValue> {
    match config.origin {
        Origin::Url(_) => Ok(worker::js_sys::global().into()),
        Origin::Assets => env
            .assets(ASSETS_BINDING)
            .map(|assets| assets.into_rpc::<JsValue>())
            .map_err(|error| JsValue::from(error.to_string())),
    }
}

thread_local! {
    /// The handlers of every origin promise, made once per isolate.
    static HANDLERS: OriginHandlers = OriginHandlers::new();
}

/// The two Rust functions that finish a forwarded request, made into JavaScript
/// functions once and kept for the life of the isolate. A Rust closure made per request
/// would stay allocated until a `FinalizationRegistry` freed it.
struct OriginHandlers {
    on_response: Function,
    on_error: Function,
}

impl OriginHandlers {
    fn new() -> Self {
        let on_response = Closure::<dyn Fn(web_sys::Response, String) -> JsValue>::new(
            |response: web_sys::Response, set_cookies: String| {
                let finished = with_cookies(response, &parse_cookie_lines(&set_cookies));
                finished.map_or_else(|error| failed_response(&error), JsValue::from)
            },
        );
        let on_error = Closure::<dyn Fn(JsValue, String) -> JsValue>::new(
            |error: JsValue, context: String| {
                let page = origin_failed(&error, &context);
                page.map_or_else(|error| failed_response(&error), JsValue::from)
            },
        );
        OriginHandlers {
            on_response: on_response.into_js_value().unchecked_into(),
            on_error: on_error.into_js_value().unchecked_into(),
        }
    }
}

/// Logs a failed origin request and returns the 502 page.
fn origin_failed(error: &JsValue, context: &str) -> Result<web_sys::Response> {
    let (lang, sid) = parse_forward_context(context);
    let sid = sid.as_deref().unwrap_or("none");
    // The error may quote the origin URL, whose query may carry a ticket.
    let error = without_queries(&worker::Error::from(error.clone()).to_string());
    console_error!("origin request failed for session {sid}: {error}");
    into_raw_response(Page::OriginUnavailable.render(lang))
}

/// Logs an error in finishing a forwarded response and returns a plain 500.
fn failed_response(error: &worker::Error) -> JsValue {
    console_error!("finishing the origin response failed: {error}");
    super::internal_error()
}

/// Returns whether a request with `method` may carry a body to the origin. An HTTP/1.1
/// client may send a body with GET or HEAD, but `fetch` rejects such a request, so the
/// filter drops that body instead of failing with the 502 page.
fn may_have_body(method: &str) -> bool {
    !method.eq_ignore_ascii_case("GET") && !method.eq_ignore_ascii_case("HEAD")
}

/// Adds `Set-Cookie` values to a response and removes the origin's `Set-Cookie` values
/// for the filter's cookies. The headers of a fetched response are immutable, so a
/// changed response gets new headers around the same body stream, or around the same
/// WebSocket for a 101.
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
    keep_web_socket(&response, &init)?;
    let body = response.body();
    Ok(web_sys::Response::new_with_opt_readable_stream_and_init(
        body.as_ref(),
        &init,
    )?)
}

/// Copies the origin's WebSocket into `init`. workerd (as in wrangler 4.164) makes a
/// `Response` with status 101 only when its init has a `webSocket` member, and throws a
/// `RangeError` otherwise. web_sys does not know this workerd extension, so the member
/// is read and set by name.
fn keep_web_socket(response: &web_sys::Response, init: &web_sys::ResponseInit) -> Result<()> {
    let key = JsValue::from_str("webSocket");
    let socket = Reflect::get(response, &key)?;
    if socket.is_null() || socket.is_undefined() {
        return Ok(());
    }
    Reflect::set(init, &key, &socket)?;
    Ok(())
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
