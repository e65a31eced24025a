//! Verification of the `X-CAS-Assertion` JWT that the edge filter sends with each request:
//! signature, audience, optional issuer, and expiry and issue time with a clock leeway.

use cas_core::assertion::{open_assertion, AssertionError};
use cas_core::signing::KeyRing;
use cas_core::validation::Attributes;

/// Clock difference tolerated between the edge and the origin, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;

/// The user an assertion vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub attributes: Attributes,
    /// When the assertion expires, in seconds since the Unix epoch.
    pub expires_at: u64,
}

/// Reason an assertion was rejected. The request must then be treated as anonymous.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the X-CAS-Assertion header is missing")]
    Missing,
    #[error("the request carries more than one X-CAS-Assertion header")]
    Duplicated,
    #[error("the assertion is invalid: {0}")]
    Invalid(#[from] AssertionError),
    #[error("the assertion is for audience {found:?}, expected {expected:?}")]
    WrongAudience { expected: String, found: String },
    #[error("the assertion was issued by {found:?}, expected {expected:?}")]
    WrongIssuer { expected: String, found: String },
    #[error("the assertion expired at {exp}")]
    Expired { exp: u64 },
    #[error("the assertion is issued at {iat}, in the future")]
    IssuedInFuture { iat: u64 },
    #[error("the assertion names no user")]
    EmptyUser,
}

/// Checks assertions against a key ring, the expected audience and optionally the issuer.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: KeyRing,
    audience: String,
    issuer: Option<String>,
    leeway: u64,
}

impl Verifier {
    /// Creates a verifier for `audience` with [`DEFAULT_LEEWAY_SECONDS`] that accepts any issuer.
    pub fn new(keys: KeyRing, audience: impl Into<String>) -> Self {
        Self {
            keys,
            audience: audience.into(),
            issuer: None,
            leeway: DEFAULT_LEEWAY_SECONDS,
        }
    }

    /// Requires the `iss` claim to equal `issuer`.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets the clock leeway, in seconds.
    pub fn with_leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// Verifies a compact JWT at `now` (seconds since the Unix epoch).
    pub fn verify(&self, token: &str, now: u64) -> Result<Identity, VerifyError> {
        let claims = open_assertion(&self.keys, token.trim())?;

        if claims.aud != self.audience {
            return Err(VerifyError::WrongAudience {
                expected: self.audience.clone(),
                found: claims.aud,
            });
        }
        if let Some(issuer) = self.issuer.as_ref().filter(|issuer| **issuer != claims.iss) {
            return Err(VerifyError::WrongIssuer {
                expected: issuer.clone(),
                found: claims.iss,
            });
        }
        if now >= claims.exp.saturating_add(self.leeway) {
            return Err(VerifyError::Expired { exp: claims.exp });
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(VerifyError::IssuedInFuture { iat: claims.iat });
        }
        if claims.sub.is_empty() {
            return Err(VerifyError::EmptyUser);
        }

        Ok(Identity {
            user: claims.sub,
            attributes: claims.attributes,
            expires_at: claims.exp,
        })
    }

    /// Verifies the value of the `X-CAS-Assertion` header, `None` when the header is absent.
    pub fn verify_header(&self, value: Option<&str>, now: u64) -> Result<Identity, VerifyError> {
        match value.map(str::trim).filter(|value| !value.is_empty()) {
            Some(token) => self.verify(token, now),
            None => Err(VerifyError::Missing),
        }
    }
}

#[cfg(test)]
mod tests {
    use cas_core::assertion::{sign_assertion, IdentityClaims};
    use cas_core::signing::SigningKey;

    use super::*;

    const AUDIENCE: &str = "http://127.0.0.1:8080";
    const NOW: u64 = 1_800_000_000;

    fn key(fill: char) -> SigningKey {
        SigningKey::from_secret(&fill.to_string().repeat(40)).expect("long enough")
    }

    fn verifier() -> Verifier {
        Verifier::new(KeyRing::new(key('a'), None), AUDIENCE).with_issuer("cas-edge-filter")
    }

    fn claims() -> IdentityClaims {
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into()]);
        IdentityClaims {
            iss: "cas-edge-filter".into(),
            aud: AUDIENCE.into(),
            sub: "张三".into(),
            iat: NOW,
            exp: NOW + 60,
            attributes,
        }
    }

    fn token(change: impl FnOnce(&mut IdentityClaims)) -> String {
        let mut claims = claims();
        change(&mut claims);
        sign_assertion(&key('a'), &claims)
    }

    #[test]
    fn valid_assertion_gives_identity() {
        let identity = verifier().verify(&token(|_| {}), NOW + 1).expect("valid");

        assert_eq!(identity.user, "张三");
        assert_eq!(identity.attributes["memberOf"], vec!["staff".to_owned()]);
        assert_eq!(identity.expires_at, NOW + 60);
    }

    #[test]
    fn expired_assertion_is_rejected() {
        let result = verifier().verify(&token(|_| {}), NOW + 60 + DEFAULT_LEEWAY_SECONDS);

        assert_eq!(result, Err(VerifyError::Expired { exp: NOW + 60 }));
    }

    #[test]
    fn expiry_leeway_edge() {
        let token = token(|_| {});

        assert!(verifier()
            .verify(&token, NOW + 60 + DEFAULT_LEEWAY_SECONDS - 1)
            .is_ok());
        assert!(verifier().with_leeway(0).verify(&token, NOW + 59).is_ok());
        assert!(verifier().with_leeway(0).verify(&token, NOW + 60).is_err());
    }

    #[test]
    fn future_iat_is_rejected() {
        let token = token(|claims| claims.iat = NOW + 100);

        assert_eq!(
            verifier().verify(&token, NOW),
            Err(VerifyError::IssuedInFuture { iat: NOW + 100 })
        );
    }

    #[test]
    fn iat_leeway_edge() {
        let token = token(|claims| claims.iat = NOW + DEFAULT_LEEWAY_SECONDS);

        assert!(verifier().verify(&token, NOW).is_ok());
        assert!(verifier().verify(&token, NOW - 1).is_err());
    }

    #[test]
    fn wrong_audience_is_rejected() {
        let token = token(|claims| claims.aud = "http://127.0.0.1:9090".into());

        let result = verifier().verify(&token, NOW);
        assert!(
            matches!(result, Err(VerifyError::WrongAudience { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn wrong_issuer_is_rejected() {
        let token = token(|claims| claims.iss = "someone-else".into());

        assert!(matches!(
            verifier().verify(&token, NOW),
            Err(VerifyError::WrongIssuer { .. })
        ));
        assert!(Verifier::new(KeyRing::new(key('a'), None), AUDIENCE)
            .verify(&token, NOW)
            .is_ok());
    }

    #[test]
    fn wrong_key_is_rejected() {
        let token = sign_assertion(&key('b'), &claims());

        let result = verifier().verify(&token, NOW);
        assert_eq!(
            result,
            Err(VerifyError::Invalid(AssertionError::BadSignature))
        );
    }

    #[test]
    fn previous_key_still_verifies() {
        let token = sign_assertion(&key('o'), &claims());
        let rotated = Verifier::new(KeyRing::new(key('n'), Some(key('o'))), AUDIENCE);

        assert!(rotated.verify(&token, NOW).is_ok());
    }

    #[test]
    fn empty_user_is_rejected() {
        let token = token(|claims| claims.sub = String::new());

        assert_eq!(verifier().verify(&token, NOW), Err(VerifyError::EmptyUser));
    }

    #[test]
    fn header_helper_handles_absence() {
        assert_eq!(
            verifier().verify_header(None, NOW),
            Err(VerifyError::Missing)
        );
        assert_eq!(
            verifier().verify_header(Some("  "), NOW),
            Err(VerifyError::Missing)
        );
        assert!(verifier().verify_header(Some("forged"), NOW).is_err());
        assert!(verifier()
            .verify_header(Some(&format!(" {} ", token(|_| {}))), NOW)
            .is_ok());
    }
}
