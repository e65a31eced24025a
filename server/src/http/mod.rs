//! The HTTP layer: routing, handlers, pages and the helpers they share.

pub mod confirm;
pub mod cookie;
pub mod delivery;
pub mod format;
pub mod health;
pub mod language;
pub mod login;
pub mod logout;
pub mod pages;
pub mod params;
pub mod proxy;
pub mod response;
pub mod router;
pub mod saml_validate;
pub mod theme;
pub mod validate;
pub mod validate_v1;
