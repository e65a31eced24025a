//! CAS 3.0 client filter for Cloudflare Workers / workerd.
//!
//! Per request the filter first removes client-sent `X-CAS-*` headers and applies the
//! path rules. A request with a valid `cas_edge_session` cookie goes to the origin with
//! `X-CAS-User`, `X-CAS-Attr-*` and a signed `X-CAS-Assertion`. A request with a `ticket`
//! parameter has it validated by CAS, which starts a session. Any other request is
//! redirected to the CAS login page, or gets 401 when it cannot follow a redirect. A CAS
//! back-channel logout revokes a session through Workers KV. The decisions live in plain
//! Rust modules that are tested natively; the Workers glue in `glue/` exists only in wasm
//! builds.

pub mod api_mode;
pub mod config;
pub mod cookies;
pub mod flow;
pub mod headers;
pub mod login;
pub mod loop_guard;
pub mod options;
pub mod pages;
pub mod redact;
pub mod reply;
pub mod revocation_cache;
pub mod rules;
pub mod session;
pub mod session_cache;
pub mod slo;
pub mod urls;
pub mod wire;

// The Workers glue exists only in wasm builds, so the modules above build and test natively.
#[cfg(target_arch = "wasm32")]
mod glue;
