//! The HTTP layer: routing, handlers, pages and the helpers they share.

pub mod cookie;
pub mod health;
pub mod login;
pub mod logout;
pub mod pages;
pub mod params;
pub mod response;
pub mod router;
pub mod saml_validate;
pub mod validate;
