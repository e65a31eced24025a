//! The Workers entry point: reads the settings, handles single logout, looks up
//! revocations, and carries out the decision of [`crate::flow::decide`].

mod cas;
mod origin;
mod revocations;

use std::cell::RefCell;
use std::rc::Rc;

use worker::{
    console_error, console_log, event, Context, Date, Env, Headers, Request, Response, Result,
};

use crate::config::{FilterConfig, SettingSource};
use crate::flow::{decide, finish_validation, session_to_check, Decision, IncomingRequest};
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

#[event(fetch)]
async fn fetch(mut request: Request, env: Env, _context: Context) -> Result<Response> {
    let lang =
        cas_core::language::choose_language(request.headers().get("accept-language")?.as_deref());
    let config = match load_config(&env) {
        Ok(config) => config,
        Err(settings) => return into_response(Page::Misconfigured { settings }.render(lang)),
    };

    if let Some(response) = revocations::single_logout(&mut request, &config, &env, lang).await {
        return response;
    }

    let url = request.url()?;
    let method = request.method().to_string();
    let mut incoming = IncomingRequest {
        method: &method,
        target: RequestTarget {
            path: url.path(),
            query: url.query(),
        },
        headers: request.headers().entries().collect(),
        revoked: Vec::new(),
    };
    if let Some(session) = session_to_check(&config, &incoming, now_seconds()) {
        match revocations::is_revoked(&env, &config, &session.sid, now_seconds()).await {
            Ok(true) => incoming.revoked.push(session.sid),
            Ok(false) => {}
            Err(()) => return into_response(Page::SessionCheckFailed.render(lang)),
        }
    }

    match decide(&config, incoming, now_seconds()) {
        Decision::Forward(target) => origin::forward(&request, target, &config, &env, lang).await,
        Decision::Validate(check) => {
            let fetched = cas::fetch_validation(&check, config.cas_timeout_ms).await;
            let (reply, outcome) = finish_validation(&config, &check, fetched, now_seconds());
            console_log!("{outcome}");
            into_response(reply)
        }
        Decision::Reply(reply) => into_response(reply),
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
