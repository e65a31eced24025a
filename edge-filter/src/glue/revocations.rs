//! Single logout in Workers: the back-channel POST from CAS and the revoked session ids
//! in Workers KV.
//!
//! NOTE: a request with a valid session cookie costs one KV read unless the isolate read
//! the same session id within `REVOCATION_CACHE_SECONDS`. Cloudflare documents that a KV
//! write can take 60 seconds or more to be visible in other locations, so a revoked
//! cookie may still work there for that long, plus the cache time.

use std::cell::RefCell;

use cas_core::language::Language;
use futures_util::StreamExt;
use worker::{console_error, console_log, Env, Method, Request, Response, Result};

use super::{into_response, REVOCATIONS_BINDING};
use crate::config::FilterConfig;
use crate::options::SloMode;
use crate::pages::Page;
use crate::reply::Reply;
use crate::revocation_cache::RevocationCache;
use crate::slo::{logout_field, revoked_session, MAX_BODY_BYTES};

thread_local! {
    /// Recent "not revoked" results of this isolate.
    static CACHE: RefCell<RevocationCache> = RefCell::new(RevocationCache::default());
}

/// Workers KV rejects an expiration TTL below 60 seconds.
const MIN_KV_TTL_SECONDS: u64 = 60;

/// Largest form body read: the logout request percent-encoded, at most three bytes per byte.
const MAX_FORM_BYTES: usize = 3 * MAX_BODY_BYTES + 64;

/// Returns whether a request with this path and method may be a back-channel logout,
/// which [`single_logout`] then checks in full. Most requests are not, so they skip it.
pub fn may_be_logout(config: &FilterConfig, path: &str, method: &str) -> bool {
    match &config.slo {
        SloMode::Off => false,
        SloMode::AnyPost => method.eq_ignore_ascii_case("POST"),
        SloMode::Path(logout_path) => path == logout_path,
    }
}

/// Handles a back-channel logout. Returns `None` when the request is not one, so it takes
/// the normal path with its body intact.
pub async fn single_logout(
    request: &mut Request,
    config: &FilterConfig,
    env: &Env,
    lang: Language,
) -> Option<Result<Response>> {
    let dedicated = match &config.slo {
        SloMode::Off => return None,
        SloMode::AnyPost => false,
        SloMode::Path(path) => {
            let url = request.url().ok()?;
            if url.path() != path {
                return None;
            }
            true
        }
    };
    if request.method() != Method::Post {
        return dedicated.then(|| bad_request("logout request must be a POST"));
    }

    let form = is_form(request).then_some(()).and(read_form(request).await);
    let field = form.as_deref().and_then(logout_field);
    let Some(xml) = field else {
        return dedicated.then(|| bad_request("no logoutRequest form field within the size limit"));
    };
    Some(revoke(&xml, config, env, lang).await)
}

/// Returns whether this isolate found `sid` not revoked within the cache time, so the
/// request needs no KV read.
pub fn known_not_revoked(sid: &str, now: u64) -> bool {
    CACHE.with(|cache| cache.borrow().known_not_revoked(sid, now))
}

/// Returns whether a session id was revoked. A failed KV read is an error, so the filter
/// fails closed and does not trust a cookie it cannot check.
pub async fn is_revoked(
    env: &Env,
    config: &FilterConfig,
    sid: &str,
    now: u64,
) -> std::result::Result<bool, ()> {
    if known_not_revoked(sid, now) {
        return Ok(false);
    }

    let store = env.kv(REVOCATIONS_BINDING).map_err(|error| {
        console_error!(
            "revocation lookup for session {sid} failed: no {REVOCATIONS_BINDING} binding: {error}"
        );
    })?;
    let found = store.get(sid).text().await.map_err(|error| {
        console_error!("revocation lookup for session {sid} failed: {error}");
    })?;

    if found.is_none() {
        let seconds = config.revocation_cache_seconds;
        CACHE.with(|cache| cache.borrow_mut().remember_not_revoked(sid, now, seconds));
    }
    Ok(found.is_some())
}

async fn revoke(xml: &str, config: &FilterConfig, env: &Env, lang: Language) -> Result<Response> {
    let sid = match revoked_session(xml) {
        Ok(sid) => sid,
        Err(error) => return bad_request(&error.to_string()),
    };
    let Ok(store) = env.kv(REVOCATIONS_BINDING) else {
        console_error!("logout request received but the {REVOCATIONS_BINDING} KV binding is missing; add it or set SLO_PATH = \"off\"");
        return into_response(
            Page::Misconfigured {
                settings: vec![REVOCATIONS_BINDING],
            }
            .render(lang),
        );
    };

    // A session lasts at most SESSION_TTL_SECONDS from its ticket, so the entry may
    // expire then.
    let ttl = config.session_ttl.max(MIN_KV_TTL_SECONDS);
    let stored = match store.put(&sid, "1") {
        Ok(put) => put.expiration_ttl(ttl).execute().await,
        Err(error) => Err(error),
    };
    if let Err(error) = stored {
        console_error!("storing the revocation of session {sid} failed: {error}");
        return into_response(Page::RevocationFailed.render(lang));
    }

    CACHE.with(|cache| cache.borrow_mut().forget(&sid));
    console_log!("single logout revoked session {sid}");
    into_response(plain(200, "revoked\n"))
}

fn is_form(request: &Request) -> bool {
    let content_type = request
        .headers()
        .get("content-type")
        .ok()
        .flatten()
        .unwrap_or_default();
    content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
}

/// Reads the body of a copy of the request, so the original keeps its body for the
/// origin. Returns `None` when the body exceeds [`MAX_FORM_BYTES`] or cannot be read.
/// A declared `Content-Length` over the limit is rejected before copying, because the
/// runtime buffers what the copy leaves unread.
async fn read_form(request: &Request) -> Option<String> {
    let declared = request.headers().get("content-length").ok().flatten();
    let declared: Option<usize> = declared.and_then(|length| length.trim().parse().ok());
    if declared.is_some_and(|length| length > MAX_FORM_BYTES) {
        return None;
    }

    let mut copy = request.clone().ok()?;
    let mut stream = copy.stream().ok()?;
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.ok()?);
        if body.len() > MAX_FORM_BYTES {
            return None;
        }
    }
    String::from_utf8(body).ok()
}

fn bad_request(reason: &str) -> Result<Response> {
    console_log!("rejected logout request: {reason}");
    into_response(plain(400, "invalid logout request\n"))
}

fn plain(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![
            (
                "Content-Type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            ),
            ("Cache-Control".to_owned(), "no-store".to_owned()),
        ],
        body: body.to_owned(),
    }
}
