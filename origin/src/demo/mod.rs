//! The demo origin: an HTTP server that shows the verified user and rejects every request
//! without a valid assertion.

pub mod handler;
pub mod page;
pub mod server;
pub mod settings;
pub mod websocket;
