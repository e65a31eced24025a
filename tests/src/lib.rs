//! Harness for end-to-end tests: starts the real CAS server, the demo origin and the edge
//! filter under wrangler dev on free loopback ports, and plays a browser against them.
//! The interop tests start the CAS server alone and put other CAS clients in front of it:
//! the Python library python-cas and Apache's mod_auth_cas.

pub mod apache;
pub mod browser;
pub mod cas_server;
pub mod database;
pub mod flows;
pub mod process;
pub mod raw_http;
pub mod stack;
pub mod webdriver;
