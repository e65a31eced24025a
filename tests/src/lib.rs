//! Harness for end-to-end tests: starts the real CAS server, the demo origin and the edge
//! filter under wrangler dev on free loopback ports, and plays a browser against them.

pub mod browser;
pub mod database;
pub mod flows;
pub mod process;
pub mod stack;
pub mod webdriver;
