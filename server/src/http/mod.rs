//! The HTTP layer: routing, handlers, pages and the helpers they share.

pub mod confirm;
pub mod cookie;
pub mod delivery;
pub mod health;
pub mod login;
pub mod logout;
pub mod pages;
pub mod params;
pub mod response;
pub mod router;
pub mod validate;
