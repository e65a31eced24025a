//! Origin-side checks for requests that come through the CAS edge filter.
//!
//! The filter sends `X-CAS-User` for display and `X-CAS-Assertion`, an HS256 JWT signed with
//! the shared `ASSERTION_KEY`. An origin trusts a user only after [`Verifier::verify`]
//! accepts the assertion: `X-CAS-User` alone proves nothing, because anyone who reaches the
//! origin directly can send it. The `demo` feature adds the demo origin server.

mod verifier;

#[cfg(feature = "demo")]
pub mod demo;

pub use verifier::{Identity, Verifier, VerifyError, DEFAULT_LEEWAY_SECONDS};
