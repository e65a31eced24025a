//! The Workers entry point: reads the settings, handles single logout, looks up
//! revocations, and carries out the decision of [`crate::flow::decide`].

mod cas;
mod origin;
mod revocations;

use std::cell::RefCell;
use std::rc::Rc;

use cas_core::language::Language;
use worker::js_sys::Promise;
use worker::wasm_bindgen::prelude::wasm_bindgen;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::worker_sys::web_sys;
use worker::{console_error, console_log, Env, Headers, Response, Result};

use crate::config::{FilterConfig, SettingSource};
use crate::flow::{
    decide_with_session, finish_validation, request_target, session_to_check, Decision,
    IncomingRequest, SessionCookie, TicketCheck,
};
use crate::options::{Origin, SloMode};
use crate::pages::Page;
use crate::reply::Reply;
use crate::session_cache::SessionCache;
use crate::wire::{parse_request, RequestDescription};

/// Name of the static assets binding used when `STATIC_ASSETS` is `true`.
pub const ASSETS_BINDING: &str = "ASSETS";

/// Name of the Workers KV binding that stores revoked session ids.
pub const REVOCATIONS_BINDING: &str = "CAS_REVOCATIONS";

thread_local! {
    /// The checked settings, kept for the life of the isolate. Vars and secrets cannot
    /// change within an isolate, so the path rule regexes are compiled once, not on
    /// every request.
    static CONFIG: RefCell<Option<Rc<FilterConfig>>> = const { RefCell::new(None) };

    /// Sessions and identity headers of recent requests to this isolate.
    static SESSIONS: RefCell<SessionCache> = RefCell::new(SessionCache::default());
}

/// Settings from the Workers environment: `[vars]` and secrets.
struct WorkerSettings<'a>(&'a Env);

impl SettingSource for WorkerSettings<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0.var(name).ok().map(|value| value.to_string())
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.0.secret(name).ok().map(|value| value.to_string())
    }
}

/// The Workers `fetch` handler, exported under the name that worker-build's shim calls.
/// It takes the runtime's own `Request` and returns a `Promise` of the runtime's
/// `Response`. The `#[event(fetch)]` wrapper of the `worker` crate (0.8.7) reads
/// `request.cf` and parses the URL on every request, and its `Response` puts the
/// origin's body stream into a new response, so workerd cannot pass the origin's body
/// through natively.
///
/// Most requests need no waiting in Rust: a reply the filter makes itself, or a forward
/// whose session is known not to be revoked. Their promise comes straight from the
/// runtime's `fetch`, without the task queue of `wasm-bindgen-futures`. Only single
/// logout, revocation lookups in KV and ticket validation run as a Rust future.
#[worker::wasm_bindgen::prelude::wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
pub fn fetch(request: web_sys::Request, env: Env, _context: JsValue) -> Promise {
    let answered = match without_waiting(&request, &env) {
        Ok(Step::Answered(promise)) => Ok(promise),
        Ok(Step::Validate(config, check)) => {
            return future_to_promise(async move { Ok(validate(config, check).await) })
        }
        Ok(Step::Wait(read)) => return future_to_promise(with_waiting(request, env, read)),
        Err(error) => Err(error),
    };
    answered.unwrap_or_else(|error| {
        console_error!("{error}");
        Promise::resolve(&internal_error())
    })
}

/// The state in which [`without_waiting`] leaves a request.
enum Step {
    /// The response, or the promise of the origin's response.
    Answered(Promise),
    /// The ticket must be validated by a subrequest to CAS.
    Validate(Rc<FilterConfig>, TicketCheck),
    /// The request needs a KV lookup or may be a logout request, so [`with_waiting`]
    /// goes on from the request as read so far.
    Wait(ReadRequest),
}

/// A request as both paths read it first: its description, its page language and the
/// settings that apply to it.
struct ReadRequest {
    described: RequestDescription,
    lang: Language,
    config: Rc<FilterConfig>,
}

/// Handles the request as far as it can without awaiting anything.
fn without_waiting(request: &web_sys::Request, env: &Env) -> Result<Step> {
    let described = describe(request)?;
    let lang = language(&described);
    let config = match load_config(env) {
        Ok(config) => config,
        Err(settings) => return answered(Page::Misconfigured { settings }.render(lang)),
    };
    let mut read = ReadRequest {
        described,
        lang,
        config,
    };

    let target = match request_target(&read.described.url, lang) {
        Ok(target) => target,
        Err(reply) => return answered(reply),
    };
    let method = read.described.method.as_str();
    if revocations::may_be_logout(&read.config, target.path, method) {
        return Ok(Step::Wait(read));
    }

    let config = Rc::clone(&read.config);
    let incoming = IncomingRequest {
        method,
        target,
        headers: std::mem::take(&mut read.described.headers),
        revoked: Vec::new(),
    };
    let now = read.described.time_ms / 1000;
    let cookie = with_sessions(|cache| session_to_check(&config, &incoming, now, cache));
    if let SessionCookie::Opened(Some(session)) = &cookie {
        if !revocations::known_not_revoked(&session.sid, now) {
            read.described.headers = incoming.headers;
            return Ok(Step::Wait(read));
        }
    }

    match with_sessions(|cache| decide_with_session(&config, incoming, cookie, now, cache)) {
        Decision::Forward(target) => {
            let promise = origin::forward(request, method, target, &config, env, lang)?;
            Ok(Step::Answered(promise))
        }
        Decision::Validate(check) => Ok(Step::Validate(config, check)),
        Decision::Reply(reply) => answered(reply),
    }
}

/// Handles a request that may need a single logout or a revocation lookup, awaiting both.
async fn with_waiting(
    request: web_sys::Request,
    env: Env,
    read: ReadRequest,
) -> std::result::Result<JsValue, JsValue> {
    match handle(request, env, read).await {
        Ok(response) => Ok(response),
        Err(error) => {
            console_error!("{error}");
            Ok(internal_error())
        }
    }
}

async fn handle(request: web_sys::Request, env: Env, read: ReadRequest) -> Result<JsValue> {
    let ReadRequest {
        described,
        lang,
        config,
    } = read;

    let target = match request_target(&described.url, lang) {
        Ok(target) => target,
        Err(reply) => return reply_value(reply),
    };
    let method = described.method.as_str();
    if revocations::may_be_logout(&config, target.path, method) {
        let mut logout = worker::Request::from(Clone::clone(&request));
        if let Some(response) = revocations::single_logout(&mut logout, &config, &env, lang).await {
            return response.map(|response| JsValue::from(web_sys::Response::from(response)));
        }
    }

    let mut incoming = IncomingRequest {
        method,
        target,
        headers: described.headers,
        revoked: Vec::new(),
    };
    let now = described.time_ms / 1000;
    let cookie = with_sessions(|cache| session_to_check(&config, &incoming, now, cache));
    if let SessionCookie::Opened(Some(session)) = &cookie {
        match revocations::is_revoked(&env, &config, &session.sid, now).await {
            Ok(true) => incoming.revoked.push(session.sid.clone()),
            Ok(false) => {}
            Err(()) => return reply_value(Page::SessionCheckFailed.render(lang)),
        }
    }

    match with_sessions(|cache| decide_with_session(&config, incoming, cookie, now, cache)) {
        // Resolving the handler's promise with the origin's promise makes it follow that one.
        Decision::Forward(target) => {
            origin::forward(&request, method, target, &config, &env, lang).map(JsValue::from)
        }
        Decision::Validate(check) => Ok(validate(config, check).await),
        Decision::Reply(reply) => reply_value(reply),
    }
}

/// Validates the ticket with CAS and returns the filter's reply: a redirect with the new
/// session cookie, or an error page.
async fn validate(config: Rc<FilterConfig>, check: TicketCheck) -> JsValue {
    let fetched = cas::fetch_validation(&check, config.cas_timeout_ms).await;
    let (reply, outcome) = finish_validation(&config, &check, fetched, now_seconds());
    console_log!("{outcome}");
    reply_value(reply).unwrap_or_else(|error| {
        console_error!("{error}");
        internal_error()
    })
}

#[wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen, module = "/js/glue.js")]
extern "C" {
    #[wasm_bindgen(js_name = describeRequest)]
    fn describe_request(request: &web_sys::Request) -> Vec<u8>;
}

/// Reads the method, URL and headers of `request` in one call.
fn describe(request: &web_sys::Request) -> Result<RequestDescription> {
    let bytes = describe_request(request);
    // The Encoding standard has `TextEncoder` replace lone surrogates, so its output is
    // always valid UTF-8 and this error is not expected.
    let text = std::str::from_utf8(&bytes).map_err(|error| {
        worker::Error::RustError(format!("request description is not UTF-8: {error}"))
    })?;
    parse_request(text)
        .ok_or_else(|| worker::Error::RustError("request description is incomplete".to_owned()))
}

fn language(request: &RequestDescription) -> Language {
    let accept_language = request
        .headers
        .iter()
        .find(|(name, _)| name == "accept-language")
        .map(|(_, value)| value.as_str());
    cas_core::language::choose_language(accept_language)
}

fn answered(reply: Reply) -> Result<Step> {
    let response = into_raw_response(reply)?;
    Ok(Step::Answered(Promise::resolve(&JsValue::from(response))))
}

fn reply_value(reply: Reply) -> Result<JsValue> {
    into_raw_response(reply).map(JsValue::from)
}

/// Returns the 500 response for an error that is a bug or a runtime failure, not bad input.
fn internal_error() -> JsValue {
    Response::error("INTERNAL SERVER ERROR", 500)
        .map(|response| JsValue::from(web_sys::Response::from(response)))
        .unwrap_or(JsValue::UNDEFINED)
}

/// Returns the settings, loading and checking them and the bindings they need on the
/// first request of the isolate. Returns the names of the bad settings on failure, after
/// logging the details. Failures are not kept, so every request reports them.
fn load_config(env: &Env) -> std::result::Result<Rc<FilterConfig>, Vec<&'static str>> {
    if let Some(config) = CONFIG.with(|cached| cached.borrow().clone()) {
        return Ok(config);
    }

    let config = Rc::new(check_config(env)?);
    CONFIG.with(|cached| *cached.borrow_mut() = Some(Rc::clone(&config)));
    Ok(config)
}

fn check_config(env: &Env) -> std::result::Result<FilterConfig, Vec<&'static str>> {
    let config = FilterConfig::load(&WorkerSettings(env)).map_err(|error| {
        console_error!("{error}");
        error.settings()
    })?;

    if config.origin == Origin::Assets && env.assets(ASSETS_BINDING).is_err() {
        console_error!("STATIC_ASSETS is true but the {ASSETS_BINDING} binding is missing; add [assets] with binding = \"{ASSETS_BINDING}\"");
        return Err(vec![ASSETS_BINDING]);
    }
    if config.slo != SloMode::Off && env.kv(REVOCATIONS_BINDING).is_err() {
        console_error!("single logout is on but the {REVOCATIONS_BINDING} KV binding is missing; add [[kv_namespaces]] with binding = \"{REVOCATIONS_BINDING}\" or set SLO_PATH = \"off\"");
        return Err(vec![REVOCATIONS_BINDING]);
    }
    Ok(config)
}

/// Runs `use_cache` with the isolate's session cache. Nothing in it awaits or calls
/// back into the handler, so the cache is never borrowed twice.
fn with_sessions<T>(use_cache: impl FnOnce(&mut SessionCache) -> T) -> T {
    SESSIONS.with(|cache| use_cache(&mut cache.borrow_mut()))
}

fn now_seconds() -> u64 {
    // An f64 of milliseconds since the epoch; `as` saturates, and the clock is past 1970.
    (worker::js_sys::Date::now() / 1000.0) as u64
}

/// Turns a filter-made reply into a runtime `Response`.
fn into_raw_response(reply: Reply) -> Result<web_sys::Response> {
    into_response(reply).map(web_sys::Response::from)
}

/// Turns a filter-made reply into a Workers response.
fn into_response(reply: Reply) -> Result<Response> {
    let headers: Headers = reply
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    Ok(Response::builder()
        .with_status(reply.status)
        .with_headers(headers)
        .fixed(reply.body.into_bytes()))
}
