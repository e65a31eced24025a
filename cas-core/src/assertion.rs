//! The identity assertion the edge sends to origins: a JSON Web Token (RFC 7519) signed
//! with HMAC-SHA256 (`alg` `HS256`), so any JWT library can check it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::signing::{KeyRing, SigningKey};
use crate::validation::Attributes;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// The claims of an identity assertion. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityClaims {
    /// Issuer: the edge filter's name.
    pub iss: String,
    /// Audience: the origin the assertion is meant for.
    pub aud: String,
    /// The authenticated user.
    pub sub: String,
    /// Issued at.
    pub iat: u64,
    /// Expires at.
    pub exp: u64,
    /// Released attributes.
    #[serde(default)]
    pub attributes: Attributes,
}

/// Reason a token is not a well-signed assertion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssertionError {
    #[error("assertion is not three base64url parts")]
    Malformed,
    #[error("assertion header is not HS256 JWT")]
    UnsupportedAlgorithm,
    #[error("assertion signature is invalid")]
    BadSignature,
    #[error("assertion claims are invalid JSON: {0}")]
    BadClaims(String),
}

/// Encodes and signs `claims` as a compact JWT.
pub fn sign_assertion(key: &SigningKey, claims: &IdentityClaims) -> String {
    let header = URL_SAFE_NO_PAD.encode(HEADER);
    let body = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(body));

    let tag = key.tag(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Checks the header and signature of `token` and returns its claims. Expiry, audience
/// and issuer are the caller's policy.
pub fn open_assertion(keys: &KeyRing, token: &str) -> Result<IdentityClaims, AssertionError> {
    let mut parts = token.split('.');
    let (Some(header), Some(body), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed);
    };

    let header_json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AssertionError::Malformed)?;
    check_header(&header_json)?;

    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| AssertionError::Malformed)?;
    let signing_input = &token[..header.len() + 1 + body.len()];
    if !keys.verify(signing_input.as_bytes(), &tag) {
        return Err(AssertionError::BadSignature);
    }

    let body = URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| AssertionError::Malformed)?;
    serde_json::from_slice(&body).map_err(|e| AssertionError::BadClaims(e.to_string()))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

fn check_header(json: &[u8]) -> Result<(), AssertionError> {
    let header: Header = serde_json::from_slice(json).map_err(|_| AssertionError::Malformed)?;
    if header.alg != "HS256" {
        return Err(AssertionError::UnsupportedAlgorithm);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: char) -> SigningKey {
        SigningKey::from_secret(&fill.to_string().repeat(40)).expect("long enough")
    }

    fn claims() -> IdentityClaims {
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into()]);
        IdentityClaims {
            iss: "cas-edge".into(),
            aud: "http://127.0.0.1:8080".into(),
            sub: "张三".into(),
            iat: 1_000,
            exp: 1_060,
            attributes,
        }
    }

    #[test]
    fn signed_assertion_opens() {
        let token = sign_assertion(&key('a'), &claims());

        assert_eq!(
            open_assertion(&KeyRing::new(key('a'), None), &token),
            Ok(claims())
        );
    }

    #[test]
    fn wrong_key_is_rejected() {
        let token = sign_assertion(&key('a'), &claims());

        assert_eq!(
            open_assertion(&KeyRing::new(key('b'), None), &token),
            Err(AssertionError::BadSignature)
        );
    }

    #[test]
    fn alg_none_is_rejected() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).expect("json"));
        let token = format!("{header}.{body}.");

        let result = open_assertion(&KeyRing::new(key('a'), None), &token);
        assert_eq!(result, Err(AssertionError::UnsupportedAlgorithm));
    }

    #[test]
    fn swapped_body_is_rejected() {
        let token = sign_assertion(&key('a'), &claims());
        let mut forged_claims = claims();
        forged_claims.sub = "admin".into();
        let forged_body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).expect("json"));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_body, parts[2]);

        let result = open_assertion(&KeyRing::new(key('a'), None), &forged);
        assert_eq!(result, Err(AssertionError::BadSignature));
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let ring = KeyRing::new(key('a'), None);
        for token in ["", "a", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert!(open_assertion(&ring, token).is_err(), "{token}");
        }
    }

    /// The token of docs/verifying-identity.md. PyJWT 2.15.1 (`jwt.decode`) and jose 6.2.19
    /// (`jwtVerify`) both accepted it with this key, this audience and a clock before `exp`.
    #[test]
    fn known_vector_is_stable() {
        let key = SigningKey::from_secret("documentation-key-0123456789-abcdefghij")
            .expect("long enough");
        let mut attributes = Attributes::new();
        attributes.insert("memberOf".into(), vec!["staff".into(), "dev".into()]);
        let claims = IdentityClaims {
            iss: "cas-edge-filter".into(),
            aud: "https://origin.example.org".into(),
            sub: "张三".into(),
            iat: 1_900_000_000,
            exp: 1_900_000_060,
            attributes,
        };

        let token = sign_assertion(&key, &claims);
        assert_eq!(token, KNOWN_TOKEN);
    }

    const KNOWN_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJjYXMtZWRnZS1maWx0ZXIiLCJhdWQiOiJodHRwczovL29yaWdpbi5leGFtcGxlLm9yZyIsInN1YiI6IuW8oOS4iSIsImlhdCI6MTkwMDAwMDAwMCwiZXhwIjoxOTAwMDAwMDYwLCJhdHRyaWJ1dGVzIjp7Im1lbWJlck9mIjpbInN0YWZmIiwiZGV2Il19fQ.yLor1dQHBZBFXmKX2fwWVwL_BfDCgReDyw_TikyRN9w";
}
