//! SAML as CAS uses it: the SAML 1.1 ticket validation of `/samlValidate` (a SOAP
//! request that carries the service ticket as its artifact, and a response with an
//! assertion about the user), and the SAML 2.0 `LogoutRequest` of single logout.

mod logout;
mod request;
mod response;
mod time;

pub use logout::{write_logout_request, LogoutRequest};
pub use request::{parse_saml_request, SamlRequest, SamlRequestError, MAX_SAML_REQUEST_BYTES};
pub use response::{
    write_saml_response, SamlAssertion, SamlFailure, SamlOutcome, SamlResponse,
    ASSERTION_VALIDITY_SKEW, ATTRIBUTE_NAMESPACE,
};
pub use time::format_instant;

/// Namespace of SOAP 1.1 envelopes.
pub const SOAP_ENVELOPE_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Namespace of SAML 1.0 and 1.1 protocol messages (`samlp:`).
pub const SAML1_PROTOCOL_NAMESPACE: &str = "urn:oasis:names:tc:SAML:1.0:protocol";

/// Namespace of SAML 1.0 and 1.1 assertions (`saml:`).
pub const SAML1_ASSERTION_NAMESPACE: &str = "urn:oasis:names:tc:SAML:1.0:assertion";

/// Namespace of SAML 2.0 protocol messages.
pub const SAML2_PROTOCOL_NAMESPACE: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// Namespace of SAML 2.0 assertions.
pub const SAML2_ASSERTION_NAMESPACE: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
