//! CAS 3.0 protocol logic shared by the server and the edge filter. Nothing here does I/O:
//! randomness and time come from the caller.

pub mod assertion;
pub mod form;
pub mod forwarded;
pub mod html;
pub mod json_write;
pub mod language;
pub mod registry;
pub mod response_format;
pub mod saml;
pub mod service;
pub mod signing;
pub mod theme;
pub mod ticket;
pub mod validation;
pub mod xml_document;
pub mod xml_parse;
pub mod xml_write;
