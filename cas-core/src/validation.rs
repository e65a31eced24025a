//! The outcomes of a ticket validation and of a proxy ticket request, independent of
//! their wire format.

use std::collections::BTreeMap;
use std::fmt;

/// Released attributes: name to values, several values for a multi-valued attribute.
pub type Attributes = BTreeMap<String, Vec<String>>;

/// The error codes of CAS 3.0 validation and proxy responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Required parameters are missing.
    InvalidRequest,
    /// The ticket does not meet the ticket specification.
    InvalidTicketSpec,
    /// The service may not receive proxy tickets.
    UnauthorizedServiceProxy,
    /// The proxy callback is not acceptable.
    InvalidProxyCallback,
    /// The ticket is unknown, used, expired, or not from a fresh login when `renew` was asked.
    InvalidTicket,
    /// The service differs from the one the ticket was issued for.
    InvalidService,
    /// The server failed while handling the request.
    InternalError,
    /// The target service of a `/proxy` request may not receive proxy tickets.
    UnauthorizedService,
}

impl ErrorCode {
    /// All codes, for exhaustive tests and parsing.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidTicketSpec,
        ErrorCode::UnauthorizedServiceProxy,
        ErrorCode::InvalidProxyCallback,
        ErrorCode::InvalidTicket,
        ErrorCode::InvalidService,
        ErrorCode::InternalError,
        ErrorCode::UnauthorizedService,
    ];

    /// Returns the code as written in the `code` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::InvalidTicketSpec => "INVALID_TICKET_SPEC",
            ErrorCode::UnauthorizedServiceProxy => "UNAUTHORIZED_SERVICE_PROXY",
            ErrorCode::InvalidProxyCallback => "INVALID_PROXY_CALLBACK",
            ErrorCode::InvalidTicket => "INVALID_TICKET",
            ErrorCode::InvalidService => "INVALID_SERVICE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::UnauthorizedService => "UNAUTHORIZED_SERVICE",
        }
    }

    /// Parses a code from its wire form.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A successful validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticationSuccess {
    pub user: String,
    pub attributes: Attributes,
    /// The PGT IOU, when a proxy callback received a proxy-granting ticket.
    pub proxy_granting_ticket_iou: Option<String>,
    /// Proxies the ticket passed through, most recent first.
    pub proxies: Vec<String>,
}

/// A failed validation: the code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticationFailure {
    pub code: ErrorCode,
    pub message: String,
}

/// The body of a CAS validation response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationResponse {
    Success(AuthenticationSuccess),
    Failure(AuthenticationFailure),
}

impl ValidationResponse {
    /// Creates a failure with `code` and `message`.
    pub fn failure(code: ErrorCode, message: impl Into<String>) -> Self {
        ValidationResponse::Failure(AuthenticationFailure {
            code,
            message: message.into(),
        })
    }
}

/// The body of a `/proxy` response: a proxy ticket or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyResponse {
    /// The proxy ticket issued for the target service.
    Success {
        proxy_ticket: String,
    },
    Failure(AuthenticationFailure),
}

impl ProxyResponse {
    /// Creates a failure with `code` and `message`.
    pub fn failure(code: ErrorCode, message: impl Into<String>) -> Self {
        ProxyResponse::Failure(AuthenticationFailure {
            code,
            message: message.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_round_trip() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("invalid_ticket"), None);
    }
}
