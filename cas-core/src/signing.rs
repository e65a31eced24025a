//! HMAC-SHA256 keys and compact signed tokens (`payload.tag`, both base64url without padding),
//! used for the edge session cookie and the identity assertion.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Shortest secret accepted as a key, in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// Reason a secret cannot be used as a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is shorter than {MIN_KEY_BYTES} bytes; generate one with `openssl rand -base64 48`")]
    TooShort,
}

/// A secret HMAC-SHA256 key. `Debug` never shows the bytes.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl SigningKey {
    /// Builds a key from a secret string, used as its UTF-8 bytes.
    pub fn from_secret(secret: &str) -> Result<Self, KeyError> {
        let secret = secret.trim();
        if secret.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort);
        }
        Ok(Self(secret.as_bytes().to_vec()))
    }

    /// Computes the HMAC-SHA256 tag of `data`.
    pub fn tag(&self, data: &[u8]) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    }

    /// Checks in constant time whether `tag` is the tag of `data`.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }

    /// Derives a key for one purpose: the HMAC-SHA256 of `context` under this key.
    /// Tokens signed with keys derived for different contexts do not verify under each
    /// other, so one secret can serve several purposes apart.
    pub fn derive(&self, context: &[u8]) -> SigningKey {
        SigningKey(self.tag(context))
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length, so this cannot fail.
        HmacSha256::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// The current key, which signs, and an optional previous key that still verifies, so
/// keys rotate without invalidating every token at once.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: SigningKey,
    previous: Option<SigningKey>,
}

impl KeyRing {
    /// Creates a ring with one signing key and an optional older key for verification only.
    pub fn new(current: SigningKey, previous: Option<SigningKey>) -> Self {
        Self { current, previous }
    }

    /// Returns the key that signs new tokens.
    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    /// Derives both keys of the ring for `context`, as [`SigningKey::derive`] does.
    pub fn derive(&self, context: &[u8]) -> KeyRing {
        KeyRing {
            current: self.current.derive(context),
            previous: self.previous.as_ref().map(|key| key.derive(context)),
        }
    }

    /// Checks whether any key of the ring produced `tag` over `data`.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let current = self.current.verify(data, tag);
        let previous = self
            .previous
            .as_ref()
            .is_some_and(|key| key.verify(data, tag));
        current || previous
    }
}

/// Signs `payload` as `base64url(payload).base64url(tag)`.
pub fn sign_token(key: &SigningKey, payload: &[u8]) -> String {
    let encoded = URL_SAFE_NO_PAD.encode(payload);
    let tag = key.tag(encoded.as_bytes());
    format!("{encoded}.{}", URL_SAFE_NO_PAD.encode(tag))
}

/// Returns the payload of a token that a key of `keys` signed, or `None` for anything else.
pub fn open_token(keys: &KeyRing, token: &str) -> Option<Vec<u8>> {
    let (encoded, tag) = token.split_once('.')?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if !keys.verify(encoded.as_bytes(), &tag) {
        return None;
    }
    URL_SAFE_NO_PAD.decode(encoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: char) -> SigningKey {
        SigningKey::from_secret(&fill.to_string().repeat(40)).expect("long enough")
    }

    #[test]
    fn short_keys_are_rejected() {
        assert_eq!(
            SigningKey::from_secret("short").map(|_| ()),
            Err(KeyError::TooShort)
        );
    }

    #[test]
    fn derived_keys_are_apart() {
        let ring = KeyRing::new(key('a'), Some(key('b')));
        let site_one = ring.derive(b"https://one.example.org");
        let site_two = ring.derive(b"https://two.example.org");

        let token = sign_token(site_one.current(), b"{}");

        assert_eq!(open_token(&site_one, &token), Some(b"{}".to_vec()));
        assert_eq!(
            open_token(&ring.derive(b"https://one.example.org"), &token),
            Some(b"{}".to_vec())
        );
        assert_eq!(open_token(&site_two, &token), None);
        assert_eq!(open_token(&ring, &token), None);
    }

    #[test]
    fn derived_ring_keeps_previous_key() {
        let old = KeyRing::new(key('b'), None).derive(b"site");
        let rotated = KeyRing::new(key('a'), Some(key('b'))).derive(b"site");

        let token = sign_token(old.current(), b"{}");

        assert_eq!(open_token(&rotated, &token), Some(b"{}".to_vec()));
    }

    #[test]
    fn signed_token_opens_with_same_key() {
        let ring = KeyRing::new(key('a'), None);
        let token = sign_token(ring.current(), b"{\"user\":\"alice\"}");

        assert_eq!(
            open_token(&ring, &token),
            Some(b"{\"user\":\"alice\"}".to_vec())
        );
    }

    #[test]
    fn token_from_other_key_is_rejected() {
        let token = sign_token(&key('a'), b"payload");

        assert_eq!(open_token(&KeyRing::new(key('b'), None), &token), None);
    }

    #[test]
    fn previous_key_still_verifies() {
        let old_token = sign_token(&key('a'), b"payload");
        let ring = KeyRing::new(key('b'), Some(key('a')));

        assert_eq!(open_token(&ring, &old_token), Some(b"payload".to_vec()));
    }

    #[test]
    fn tampered_tokens_are_rejected() {
        let ring = KeyRing::new(key('a'), None);
        let token = sign_token(ring.current(), b"{\"user\":\"alice\"}");
        let (payload, tag) = token.split_once('.').expect("two parts");
        let forged_payload = URL_SAFE_NO_PAD.encode(b"{\"user\":\"admin\"}");

        for forged in [
            format!("{forged_payload}.{tag}"),
            format!("{payload}.{}", &tag[1..]),
            format!("{payload}."),
            payload.to_owned(),
            String::new(),
            "..".to_owned(),
            "%%%.%%%".to_owned(),
        ] {
            assert_eq!(open_token(&ring, &forged), None, "{forged}");
        }
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(format!("{:?}", key('z')), "SigningKey(<redacted>)");
    }
}
