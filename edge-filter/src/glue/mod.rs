//! The Workers entry point: reads the settings, handles single logout, looks up
//! revocations, and carries out the decision of [`crate::flow::decide`].

mod cas;
mod origin;
mod revocations;

use std::cell::RefCell;
use std::rc::Rc;

use worker::wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{console_error, console_log, Date, Env, Headers, Response, Result};

use crate::config::{FilterConfig, SettingSource};
use crate::flow::{
    decide_with_session, finish_validation, session_to_check, Decision, IncomingRequest,
    SessionCookie,
};
use crate::options::{Origin, SloMode};
use crate::pages::Page;
use crate::reply::Reply;
use crate::urls::RequestTarget;

/// Name of the static assets binding used when `STATIC_ASSETS` is `true`.
pub const ASSETS_BINDING: &str = "ASSETS";

/// Name of the Workers KV binding that stores revoked session ids.
pub const REVOCATIONS_BINDING: &str = "CAS_REVOCATIONS";

thread_local! {
    /// The checked settings, kept for the life of the isolate. Vars and secrets cannot
    /// change within an isolate, so the path rule regexes are compiled once, not on
    /// every request.
    static CONFIG: RefCell<Option<Rc<FilterConfig>>> = const { RefCell::new(None) };
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
/// It takes and returns the runtime's own `Request` and `Response` objects. The
/// `#[event(fetch)]` wrapper of the `worker` crate (0.8.7) reads `request.cf` and parses
/// the URL on every request, and its `Response` puts the origin's body stream into a new
/// response, so workerd cannot pass the origin's body through natively.
#[worker::wasm_bindgen::prelude::wasm_bindgen(
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
pub async fn fetch(
    request: web_sys::Request,
    env: Env,
    _context: JsValue,
) -> std::result::Result<JsValue, JsValue> {
    std::panic::AssertUnwindSafe(async move {
        let response = match handle(request, env).await {
            Ok(response) => response,
            Err(error) => {
                console_error!("{error}");
                Response::error("INTERNAL SERVER ERROR", 500)?.into()
            }
        };
        Ok(JsValue::from(response))
    })
    .await
}

async fn handle(request: web_sys::Request, env: Env) -> Result<web_sys::Response> {
    let incoming_headers = request.headers();
    let lang =
        cas_core::language::choose_language(incoming_headers.get("accept-language")?.as_deref());
    let config = match load_config(&env) {
        Ok(config) => config,
        Err(settings) => return into_raw_response(Page::Misconfigured { settings }.render(lang)),
    };

    let url = request.url();
    // The URL may contain a ticket, so the error does not quote it.
    let target = RequestTarget::from_serialized_url(&url)
        .ok_or_else(|| worker::Error::RustError("request URL has no path".to_owned()))?;
    let method = request.method();
    if revocations::may_be_logout(&config, target.path, &method) {
        let mut logout = worker::Request::from(Clone::clone(&request));
        if let Some(response) = revocations::single_logout(&mut logout, &config, &env, lang).await {
            return response.map(web_sys::Response::from);
        }
    }

    let mut incoming = IncomingRequest {
        method: &method,
        target,
        headers: Headers(Clone::clone(&incoming_headers)).entries().collect(),
        revoked: Vec::new(),
    };
    let now = now_seconds();
    let cookie = session_to_check(&config, &incoming, now);
    if let SessionCookie::Opened(Some(session)) = &cookie {
        match revocations::is_revoked(&env, &config, &session.sid, now).await {
            Ok(true) => incoming.revoked.push(session.sid.clone()),
            Ok(false) => {}
            Err(()) => return into_raw_response(Page::SessionCheckFailed.render(lang)),
        }
    }

    match decide_with_session(&config, incoming, cookie, now) {
        Decision::Forward(target) => {
            origin::forward(&request, &incoming_headers, target, &config, &env, lang).await
        }
        Decision::Validate(check) => {
            let fetched = cas::fetch_validation(&check, config.cas_timeout_ms).await;
            let (reply, outcome) = finish_validation(&config, &check, fetched, now_seconds());
            console_log!("{outcome}");
            into_raw_response(reply)
        }
        Decision::Reply(reply) => into_raw_response(reply),
    }
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

fn now_seconds() -> u64 {
    Date::now().as_millis() / 1000
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
