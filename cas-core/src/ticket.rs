//! Ticket identifiers: one newtype per ticket kind, generated from caller-supplied
//! random bytes and parsed strictly from outside input.

use std::fmt;

/// Random bytes in every generated ticket: 160 bits, above the 128 the protocol requires.
pub const TICKET_RANDOM_BYTES: usize = 20;

/// Shortest ticket accepted from outside input, prefix included.
pub const MIN_TICKET_LEN: usize = 32;

/// Maximum length of a ticket accepted from outside input, as the CAS 3.0 specification requires.
pub const MAX_TICKET_LEN: usize = 256;

/// Reason a string is not a ticket of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketParseError {
    #[error("ticket does not start with the expected prefix")]
    WrongPrefix,
    #[error("ticket length is outside {MIN_TICKET_LEN}..={MAX_TICKET_LEN}")]
    BadLength,
    #[error("ticket contains a character outside [A-Za-z0-9-]")]
    BadCharacter,
}

macro_rules! ticket_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Prefix of every ticket of this kind, dash included.
            pub const PREFIX: &'static str = $prefix;

            /// Builds a ticket from fresh random bytes, which the caller takes from a CSPRNG.
            pub fn from_random(random: [u8; TICKET_RANDOM_BYTES]) -> Self {
                Self(format!("{}{}", Self::PREFIX, hex::encode(random)))
            }

            /// Parses a ticket from outside input, checking prefix, length and alphabet.
            pub fn parse(text: &str) -> Result<Self, TicketParseError> {
                check_ticket_text(text, Self::PREFIX)?;
                Ok(Self(text.to_owned()))
            }

            /// Returns the ticket as sent on the wire. Never log it, because it is a bearer secret.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(<redacted>)", stringify!($name))
            }
        }
    };
}

ticket_type!(
    /// Service ticket (`ST-`): one validation for one service.
    ServiceTicket,
    "ST-"
);
ticket_type!(
    /// Proxy ticket (`PT-`): a service ticket obtained through a proxy-granting ticket.
    ProxyTicket,
    "PT-"
);
ticket_type!(
    /// Proxy-granting ticket (`PGT-`): lets a service obtain proxy tickets.
    ProxyGrantingTicket,
    "PGT-"
);
ticket_type!(
    /// Proxy-granting ticket IOU (`PGTIOU-`): correlates a callback with a validation.
    ProxyGrantingTicketIou,
    "PGTIOU-"
);
ticket_type!(
    /// Ticket-granting ticket (`TGT-`): the SSO session, carried in the TGC cookie.
    TicketGrantingTicket,
    "TGT-"
);
ticket_type!(
    /// Login ticket (`LT-`): single-use token that guards the login form.
    LoginTicket,
    "LT-"
);

fn check_ticket_text(text: &str, prefix: &str) -> Result<(), TicketParseError> {
    if !text.starts_with(prefix) {
        return Err(TicketParseError::WrongPrefix);
    }

    if !(MIN_TICKET_LEN..=MAX_TICKET_LEN).contains(&text.len()) {
        return Err(TicketParseError::BadLength);
    }

    let valid = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !valid {
        return Err(TicketParseError::BadCharacter);
    }
    Ok(())
}

/// Short, non-reversible digest of a secret for logs and session ids: the first
/// 16 hex digits of its SHA-256.
pub fn digest_for_log(secret: &str) -> String {
    use sha2::{Digest, Sha256};

    let hash = Sha256::digest(secret.as_bytes());
    hex::encode(&hash[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; TICKET_RANDOM_BYTES] {
        [seed; TICKET_RANDOM_BYTES]
    }

    #[test]
    fn generated_ticket_has_prefix_and_alphabet() {
        let ticket = ServiceTicket::from_random(random(0xab));

        assert!(ticket.as_str().starts_with("ST-"));
        assert!(ticket.as_str().len() >= MIN_TICKET_LEN);
        assert!(ticket
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn generated_ticket_carries_all_random_bits() {
        let ticket = TicketGrantingTicket::from_random(random(0x5a));
        let body = &ticket.as_str()[TicketGrantingTicket::PREFIX.len()..];

        assert_eq!(body.len(), TICKET_RANDOM_BYTES * 2);
        const { assert!(TICKET_RANDOM_BYTES * 8 >= 128) };
    }

    #[test]
    fn different_random_bytes_give_different_tickets() {
        let a = ServiceTicket::from_random(random(1));
        let b = ServiceTicket::from_random(random(2));

        assert_ne!(a, b);
    }

    #[test]
    fn generated_ticket_parses_back() {
        let ticket = ProxyGrantingTicketIou::from_random(random(7));

        assert_eq!(ProxyGrantingTicketIou::parse(ticket.as_str()), Ok(ticket));
    }

    #[test]
    fn parse_rejects_other_prefix() {
        let pt = ProxyTicket::from_random(random(3));

        assert_eq!(
            ServiceTicket::parse(pt.as_str()),
            Err(TicketParseError::WrongPrefix)
        );
    }

    #[test]
    fn parse_rejects_short_and_long() {
        assert_eq!(
            ServiceTicket::parse("ST-abc"),
            Err(TicketParseError::BadLength)
        );

        let long = format!("ST-{}", "a".repeat(MAX_TICKET_LEN));
        assert_eq!(
            ServiceTicket::parse(&long),
            Err(TicketParseError::BadLength)
        );
    }

    #[test]
    fn parse_rejects_hostile_characters() {
        let hostile = [
            "ST-0123456789abcdef0123456789<x/>&amp;",
            "ST-0123456789abcdef0123456789 abcdef",
            "ST-0123456789abcdef0123456789%00abcdef",
            "ST-0123456789abcdef0123456789_abcdef",
            "ST-0123456789abcdef0123456789ÄÖÜabcdef",
        ];

        for text in hostile {
            assert_eq!(
                ServiceTicket::parse(text),
                Err(TicketParseError::BadCharacter),
                "{text}"
            );
        }
    }

    #[test]
    fn debug_redacts_ticket() {
        let ticket = ServiceTicket::from_random(random(9));

        let shown = format!("{ticket:?}");
        assert!(!shown.contains(ticket.as_str()));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn digest_hides_secret() {
        let digest = digest_for_log("ST-secret-value-that-must-not-leak");

        assert_eq!(digest.len(), 16);
        assert!(!digest.contains("secret"));
    }
}
